//! AES-256-GCM for file blocks and small sealed values.

use aes_gcm::aead::inout::InOutBuf;
use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce, Tag};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::CryptoError;
use super::hash::random_array;

/// Bytes of the random nonce stored before each block.
pub const NONCE_LEN: usize = 12;
/// Bytes of the GCM tag stored after each block.
pub const TAG_LEN: usize = 16;
/// What each encrypted block adds to its plaintext on disk.
pub const BLOCK_OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// A file's content-encryption key (CEK). Never written to disk in the clear:
/// only wrapped to the server or to a device. Zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct ContentKey([u8; 32]);

impl ContentKey {
    /// A fresh random key, one per protected file.
    pub fn generate() -> Self {
        Self(random_array())
    }

    /// Rebuilds a key from unwrapped bytes (the caller zeroizes its copy).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Raw key bytes, for wrapping. Keep the borrow short.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContentKey(..)")
    }
}

/// An AES-256-GCM instance keyed once per open file, so that the key schedule
/// is not recomputed per block on the hot path.
#[derive(Clone)]
pub struct BlockCipher {
    aead: Aes256Gcm,
}

impl BlockCipher {
    /// Expands the key schedule for `key`.
    pub fn new(key: &[u8; 32]) -> Self {
        Self {
            aead: Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key)),
        }
    }

    /// Encrypts `buf` in place with a fresh random nonce and returns
    /// `(nonce, tag)`. A random 96-bit nonce per call is what makes in-place
    /// rewrites of the same block index safe.
    pub fn seal(&self, aad: &[u8], buf: &mut [u8]) -> ([u8; NONCE_LEN], [u8; TAG_LEN]) {
        let nonce: [u8; NONCE_LEN] = random_array();
        let tag = self.seal_with_nonce(&nonce, aad, buf);
        (nonce, tag)
    }

    /// Encrypts `plain` into `out` (same length) with a fresh random nonce,
    /// returning `(nonce, tag)`: one pass instead of a copy and an in-place
    /// seal, and no plaintext left in `out`.
    pub fn seal_into(&self, aad: &[u8], plain: &[u8], out: &mut [u8]) -> ([u8; NONCE_LEN], [u8; TAG_LEN]) {
        let nonce: [u8; NONCE_LEN] = random_array();
        let buf = InOutBuf::new(plain, out).expect("seal_into needs buffers of equal length");
        let tag = self
            .aead
            .encrypt_inout_detached(&Nonce::from(nonce), aad, buf)
            .expect("AES-GCM accepts blocks far below its length limit");
        (nonce, tag.into())
    }

    /// Encrypts with a caller-chosen nonce. Only for test vectors and for
    /// nonces that are unique by construction (fresh random keys).
    pub fn seal_with_nonce(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], buf: &mut [u8]) -> [u8; TAG_LEN] {
        let tag = self
            .aead
            .encrypt_inout_detached(&Nonce::from(*nonce), aad, buf.into())
            .expect("AES-GCM accepts blocks far below its length limit");
        tag.into()
    }

    /// Decrypts `buf` in place; on failure `buf` holds no plaintext.
    pub fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), CryptoError> {
        self.aead
            .decrypt_inout_detached(&Nonce::from(*nonce), aad, buf.into(), &Tag::from(*tag))
            .map_err(|_| CryptoError::Authentication)
    }
}

/// Seals a small value as `nonce || ciphertext || tag` under a one-purpose key.
pub fn seal_small(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let c = BlockCipher::new(key);
    let mut buf = plaintext.to_vec();
    let (nonce, tag) = c.seal(aad, &mut buf);
    let mut out = Vec::with_capacity(BLOCK_OVERHEAD + buf.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&buf);
    out.extend_from_slice(&tag);
    buf.zeroize();
    out
}

/// Opens a value made by [`seal_small`].
pub fn open_small(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if sealed.len() < BLOCK_OVERHEAD {
        return Err(CryptoError::Malformed("sealed value too short"));
    }
    let (nonce, rest) = sealed.split_at(NONCE_LEN);
    let (ct, tag) = rest.split_at(rest.len() - TAG_LEN);
    let mut buf = ct.to_vec();
    BlockCipher::new(key).open(nonce.try_into().unwrap(), aad, &mut buf, tag.try_into().unwrap())?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nist_gcm_known_answer() {
        // NIST GCM test case 14 (AES-256, zero key, zero IV, one zero block).
        let c = BlockCipher::new(&[0u8; 32]);
        let mut buf = [0u8; 16];
        let tag = c.seal_with_nonce(&[0u8; 12], b"", &mut buf);
        assert_eq!(hex::encode(buf), "cea7403d4d606b6e074ec5d3baf39d18");
        assert_eq!(hex::encode(tag), "d0d1c8a799996bf0265b98b5d48ab919");
    }

    #[test]
    fn seal_open_round_trip_and_tamper() {
        let key = ContentKey::generate();
        let c = BlockCipher::new(key.as_bytes());
        let mut buf = *b"hello block";
        let (n, t) = c.seal(b"aad", &mut buf);
        let mut copy = buf;
        c.open(&n, b"aad", &mut copy, &t).unwrap();
        assert_eq!(&copy, b"hello block");
        let mut copy = buf;
        assert_eq!(c.open(&n, b"aae", &mut copy, &t), Err(CryptoError::Authentication));
        let sealed = seal_small(key.as_bytes(), b"x", b"secret");
        assert_eq!(open_small(key.as_bytes(), b"x", &sealed).unwrap(), b"secret");
        assert!(open_small(key.as_bytes(), b"y", &sealed).is_err());
        assert!(open_small(key.as_bytes(), b"x", &sealed[..10]).is_err());
    }
}
