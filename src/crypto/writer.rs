//! A device's writer key: the Ed25519 key that signs every version of a
//! protected file the device saves.
//!
//! It is derived from the device's RSA key (HKDF over its PKCS#8 DER), so a
//! device has exactly one writer key, kept nowhere else and recovered with
//! the device key itself. The server certifies its public half for the
//! account the device belongs to; readers then check a version's signature
//! with one Ed25519 verification (about 50 us) instead of an RSA one.

use ed25519_dalek::Signer;

use super::CryptoError;

/// Length of a writer's public key.
pub const WRITER_KEY_LEN: usize = 32;
/// Length of a writer's signature.
pub const WRITER_SIGNATURE_LEN: usize = 64;

/// A writer's signing key. `ed25519_dalek` zeroizes the secret on drop.
pub struct WriterKey(ed25519_dalek::SigningKey);

impl WriterKey {
    /// The key derived from 32 secret bytes (see the module documentation
    /// for where they come from).
    pub(super) fn from_secret(secret: &[u8; 32]) -> Self {
        Self(ed25519_dalek::SigningKey::from_bytes(secret))
    }

    /// A fresh random key (tests and test vectors).
    pub fn generate() -> Self {
        Self::from_secret(&super::hash::random_array())
    }

    /// The public half, as certified by the server.
    pub fn public(&self) -> [u8; WRITER_KEY_LEN] {
        self.0.verifying_key().to_bytes()
    }

    /// Signs `msg` (deterministic Ed25519).
    pub fn sign(&self, msg: &[u8]) -> [u8; WRITER_SIGNATURE_LEN] {
        self.0.sign(msg).to_bytes()
    }
}

/// Checks a writer's signature over `msg` (strict verification: no
/// malleable signatures, no small-order keys).
pub fn verify_writer(public: &[u8; WRITER_KEY_LEN], msg: &[u8], sig: &[u8]) -> Result<(), CryptoError> {
    let vk = ed25519_dalek::VerifyingKey::from_bytes(public).map_err(|_| CryptoError::Malformed("writer key"))?;
    let sig: [u8; WRITER_SIGNATURE_LEN] = sig.try_into().map_err(|_| CryptoError::Malformed("signature length"))?;
    vk.verify_strict(msg, &ed25519_dalek::Signature::from_bytes(&sig))
        .map_err(|_| CryptoError::Authentication)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_signatures_verify_only_for_their_key_and_message() {
        let k = WriterKey::generate();
        let s = k.sign(b"state");
        verify_writer(&k.public(), b"state", &s).unwrap();
        assert!(verify_writer(&k.public(), b"statf", &s).is_err());
        assert!(verify_writer(&WriterKey::generate().public(), b"state", &s).is_err());
        assert!(verify_writer(&k.public(), b"state", &s[1..]).is_err());
    }
}
