//! The server's keys: X25519 for unwrapping content keys (HPKE-style) and
//! Ed25519 for signing use licences. The server never needs an RSA private
//! key, so it cannot become an RSA decryption oracle.

use std::sync::Mutex;

use ed25519_dalek::Signer;
use hkdf::Hkdf;
use sha2::Sha256;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::CryptoError;
use super::aead::{BlockCipher, ContentKey, TAG_LEN};
use super::reuse;

/// Length of a [`WrappedKey`]: ephemeral public key, encrypted CEK, tag.
pub const WRAPPED_KEY_LEN: usize = 32 + 32 + TAG_LEN;
/// Length of an Ed25519 signature.
pub const SERVER_SIGNATURE_LEN: usize = 64;

const WRAP_INFO: &[u8] = b"rightsfs v1 cek wrap";

/// A content key sealed to the server's X25519 key:
/// `ephemeral_public(32) || AES-256-GCM(cek)(32) || tag(16)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrappedKey(pub [u8; WRAPPED_KEY_LEN]);

/// The server's X25519 public key: what clients wrap content keys to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerKemPublic(pub [u8; 32]);

/// The server's X25519 secret; zeroized on drop by `x25519-dalek`.
pub struct ServerKemSecret {
    secret: StaticSecret,
    /// Derived once: every registration checks it and every unwrap binds it.
    public: ServerKemPublic,
    /// Shared secrets of recent ephemeral keys: a client that reuses an
    /// agreement (see [`reuse`](super::reuse)) sends its ephemeral key with
    /// many wrapped keys, and each scalar multiplication saved is most of
    /// what a registration costs. Keyed by public values only.
    recent: Mutex<lru::LruCache<[u8; 32], Zeroizing<[u8; 32]>>>,
}

/// Ephemeral keys whose shared secrets the server keeps: more than the
/// clients registering at once.
const RECENT_AGREEMENTS: usize = 1024;

fn wrap_key(shared: &[u8; 32], epk: &[u8; 32], recipient: &[u8; 32], context: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(epk);
    salt[32..].copy_from_slice(recipient);
    let hk = Hkdf::<Sha256>::new(Some(&salt), shared);
    let mut okm = Zeroizing::new([0u8; 32]);
    hk.expand_multi_info(&[WRAP_INFO, context], okm.as_mut())
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    okm
}

impl ServerKemPublic {
    /// Wraps `cek` so that only the holder of the matching secret can unwrap
    /// it. `context` (the content id) is bound in, so a wrapped key cannot be
    /// moved to another file. Works offline: only public material is needed.
    /// Every wrap has its own key agreement; wraps share one only through a
    /// [`SharedAgreements`](super::SharedAgreements) their owner made.
    pub fn wrap(&self, cek: &ContentKey, context: &[u8]) -> WrappedKey {
        self.wrap_with(reuse::Agreement::new(&self.0), cek, context)
    }

    /// `cek` wrapped for `context` under `agreement` with this key.
    pub(super) fn wrap_with(&self, agreement: reuse::Agreement, cek: &ContentKey, context: &[u8]) -> WrappedKey {
        let reuse::Agreement { epk, shared } = agreement;
        let key = wrap_key(&shared, &epk, &self.0, context);
        let mut buf = *cek.as_bytes();
        // The wrapping key is fresh for every wrap (a shared agreement never
        // wraps one context twice), so a fixed nonce is safe.
        let tag = BlockCipher::new(&key).seal_with_nonce(&[0u8; 12], context, &mut buf);
        let mut out = [0u8; WRAPPED_KEY_LEN];
        out[..32].copy_from_slice(&epk);
        out[32..64].copy_from_slice(&buf);
        out[64..].copy_from_slice(&tag);
        WrappedKey(out)
    }
}

impl ServerKemSecret {
    /// A new random key pair, made once when a server first starts.
    pub fn generate() -> Self {
        Self::from_bytes(super::hash::random_array::<32>())
    }

    /// Restores the secret from its 32 stored bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let secret = StaticSecret::from(bytes);
        let public = ServerKemPublic(PublicKey::from(&secret).to_bytes());
        Self {
            secret,
            public,
            recent: Mutex::new(crate::cache::bounded(RECENT_AGREEMENTS)),
        }
    }

    /// The secret's bytes, for writing to the 0600 key file.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.secret.to_bytes())
    }

    /// The matching public key.
    pub fn public(&self) -> ServerKemPublic {
        self.public
    }

    /// The X25519 shared secret with the ephemeral key `epk`, remembered
    /// for the next wrapped key that carries it.
    fn shared_with(&self, epk: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        let lock = || self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = lock().get(epk) {
            return Ok(s.clone());
        }
        let shared = self.secret.diffie_hellman(&PublicKey::from(*epk));
        if !shared.was_contributory() {
            return Err(CryptoError::Malformed("low-order ephemeral key"));
        }
        let shared = Zeroizing::new(*shared.as_bytes());
        lock().put(*epk, shared.clone());
        Ok(shared)
    }

    /// Recovers the content key from a [`WrappedKey`] made for `context`.
    pub fn unwrap(&self, wrapped: &WrappedKey, context: &[u8]) -> Result<ContentKey, CryptoError> {
        let w = &wrapped.0;
        let epk: [u8; 32] = w[..32].try_into().unwrap();
        let shared = self.shared_with(&epk)?;
        let key = wrap_key(&shared, &epk, &self.public.0, context);
        let mut buf = Zeroizing::new([0u8; 32]);
        buf.copy_from_slice(&w[32..64]);
        let tag: [u8; TAG_LEN] = w[64..].try_into().unwrap();
        BlockCipher::new(&key).open(&[0u8; 12], context, buf.as_mut(), &tag)?;
        Ok(ContentKey::from_bytes(*buf))
    }
}

/// The server's Ed25519 signing key: signs use licences so that devices can
/// check a licence before doing any RSA private operation on it.
pub struct ServerSigningKey(ed25519_dalek::SigningKey);

/// The server's Ed25519 public key, published at `/v1/server-key`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerVerifyingKey(pub [u8; 32]);

impl ServerSigningKey {
    /// A new random signing key.
    pub fn generate() -> Self {
        Self(ed25519_dalek::SigningKey::from_bytes(&super::hash::random_array()))
    }

    /// Restores the key from its 32 stored bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(ed25519_dalek::SigningKey::from_bytes(&bytes))
    }

    /// The secret's bytes, for writing to the 0600 key file.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The matching public key.
    pub fn verifying_key(&self) -> ServerVerifyingKey {
        ServerVerifyingKey(self.0.verifying_key().to_bytes())
    }

    /// Signs `msg` (deterministic Ed25519).
    pub fn sign(&self, msg: &[u8]) -> [u8; SERVER_SIGNATURE_LEN] {
        self.0.sign(msg).to_bytes()
    }
}

impl ServerVerifyingKey {
    /// Checks a server signature over `msg` (strict verification: no
    /// malleable signatures accepted).
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), CryptoError> {
        let vk = ed25519_dalek::VerifyingKey::from_bytes(&self.0)
            .map_err(|_| CryptoError::Malformed("server public key"))?;
        let sig: [u8; 64] = sig.try_into().map_err(|_| CryptoError::Malformed("signature length"))?;
        vk.verify_strict(msg, &ed25519_dalek::Signature::from_bytes(&sig))
            .map_err(|_| CryptoError::Authentication)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_unwrap_round_trip_and_context_binding() {
        let sk = ServerKemSecret::generate();
        let cek = ContentKey::generate();
        let w = sk.public().wrap(&cek, b"content-1");
        assert_eq!(sk.unwrap(&w, b"content-1").unwrap().as_bytes(), cek.as_bytes());
        assert!(sk.unwrap(&w, b"content-2").is_err());
        let mut bad = w.clone();
        bad.0[40] ^= 1;
        assert!(sk.unwrap(&bad, b"content-1").is_err());
        let other = ServerKemSecret::generate();
        assert!(other.unwrap(&w, b"content-1").is_err());
        let restored = ServerKemSecret::from_bytes(*sk.to_bytes());
        assert!(restored.unwrap(&w, b"content-1").is_ok());
    }

    #[test]
    fn low_order_point_is_rejected() {
        let sk = ServerKemSecret::generate();
        let w = WrappedKey([0u8; WRAPPED_KEY_LEN]);
        assert_eq!(
            sk.unwrap(&w, b"c").err(),
            Some(CryptoError::Malformed("low-order ephemeral key"))
        );
    }

    #[test]
    fn sign_verify() {
        let k = ServerSigningKey::generate();
        let s = k.sign(b"licence");
        k.verifying_key().verify(b"licence", &s).unwrap();
        assert!(k.verifying_key().verify(b"licencf", &s).is_err());
        assert!(k.verifying_key().verify(b"licence", &s[..10]).is_err());
    }
}
