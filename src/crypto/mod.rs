//! The only module that calls cryptographic crates.
//!
//! Everything else in rightsfs handles keys through the types defined here, so
//! that a change of primitive or backend is a change in one place, and so that
//! every secret is held in a type that zeroizes itself when dropped.

mod aead;
mod delegated;
mod device;
mod hash;
mod passphrase;
mod reuse;
mod server;
mod writer;

pub use aead::{BLOCK_OVERHEAD, BlockCipher, ContentKey, NONCE_LEN, TAG_LEN, open_small, seal_small};
pub use delegated::{CertCache, DELEGATED_SIGNATURE_LEN, DelegatedSigner};
pub use device::{DeviceKeyPair, DevicePublicKey};
pub use hash::{
    KeyedHmac, Sha256Digest, ct_eq, derive_key, hmac_sha256, random_array, random_bytes, sha256, sha256_parts,
};
pub use passphrase::{
    PASSPHRASE_SALT_LEN, PassphraseKey, open_with_passphrase, open_with_passphrase_key, seal_with_passphrase,
    seal_with_passphrase_key,
};
pub use reuse::{SharedAgreements, WrapToServer};
pub use server::{
    SERVER_SIGNATURE_LEN, ServerKemPublic, ServerKemSecret, ServerSigningKey, ServerVerifyingKey, WRAPPED_KEY_LEN,
    WrappedKey,
};
pub use writer::{WRITER_KEY_LEN, WRITER_SIGNATURE_LEN, WriterKey, verify_writer};

/// Why a cryptographic operation failed. Deliberately coarse: callers learn
/// *that* authentication failed, never *where* inside the primitive.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// A ciphertext, tag or signature did not verify.
    #[error("authentication failed: the data was altered or the key is wrong")]
    Authentication,
    /// A key or encoded value had the wrong shape.
    #[error("malformed key material: {0}")]
    Malformed(&'static str),
    /// The RSA backend refused an operation (key generation, padding).
    #[error("RSA operation failed: {0}")]
    Rsa(String),
}
