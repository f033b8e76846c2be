//! Hashing, MACs, randomness and constant-time comparison.

use hmac::{Hmac, KeyInit, Mac};
use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A SHA-256 output; hashes of public data, not secrets.
pub type Sha256Digest = [u8; 32];

/// SHA-256 of one byte string.
pub fn sha256(data: &[u8]) -> Sha256Digest {
    Sha256::digest(data).into()
}

/// SHA-256 over several parts, as if concatenated, without allocating.
pub fn sha256_parts(parts: &[&[u8]]) -> Sha256Digest {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// HMAC-SHA256 over several parts. Used for keyed PRFs (block commitments,
/// code hashing) where a plain hash would let anyone recompute the value.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Sha256Digest {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// HMAC-SHA256 keyed once: the padded key's two hash states are computed
/// at construction, so each evaluation costs two compressions instead of
/// four. For PRFs evaluated per block (the state commitment), where keying
/// dominated. The states are key material and are wiped on drop.
#[derive(Clone)]
pub struct KeyedHmac(Hmac<Sha256>);

impl KeyedHmac {
    /// Keys the PRF.
    pub fn new(key: &[u8]) -> Self {
        Self(<Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length"))
    }

    /// HMAC over several parts, as if concatenated; equals
    /// [`hmac_sha256`] with the same key.
    pub fn mac(&self, parts: &[&[u8]]) -> Sha256Digest {
        let mut m = self.0.clone();
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().into()
    }
}

/// Derives an independent 32-byte subkey with HKDF-SHA256, so that no key
/// serves two purposes (blocks, state records, MACs each get their own).
pub fn derive_key(ikm: &[u8], salt: &[u8], info: &[u8]) -> zeroize::Zeroizing<[u8; 32]> {
    let mut okm = zeroize::Zeroizing::new([0u8; 32]);
    hkdf::Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, okm.as_mut())
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    okm
}

/// Compares secrets (codes, token hashes, MACs) in time independent of where
/// they first differ, so a remote guesser learns nothing from timing.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Fills a fresh array from the operating system's CSPRNG (via `rand`'s
/// thread RNG, which is reseeded from the OS).
pub fn random_array<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    rand::rng().fill_bytes(&mut out);
    out
}

/// Random bytes of any length, e.g. for tokens.
pub fn random_bytes(len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    rand::rng().fill_bytes(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_known_answer() {
        assert_eq!(
            hex::encode(sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(sha256_parts(&[b"a", b"bc"]), sha256(b"abc"));
    }

    #[test]
    fn hmac_known_answer() {
        // RFC 4231 test case 2.
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let keyed = KeyedHmac::new(b"Jefe");
        for _ in 0..2 {
            assert_eq!(keyed.mac(&[b"what do ya want ", b"for nothing?"]), mac);
        }
    }

    #[test]
    fn ct_eq_behaves() {
        assert!(ct_eq(b"123456", b"123456"));
        assert!(!ct_eq(b"123456", b"123457"));
        assert!(!ct_eq(b"12345", b"123456"));
    }
}
