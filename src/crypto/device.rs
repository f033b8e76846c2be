//! A device's RSA-2048 key pair: licences wrap content keys to its public
//! half with OAEP-SHA256, and it signs publishing licences with PSS-SHA256.
//! The private half never leaves the device.

use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use rsa::sha2::Sha256;
use rsa::traits::PublicKeyParts;
use rsa::{PrivateKey as RsaPrivateKey, PublicKey as RsaPublicKey};
use zeroize::Zeroizing;

use std::sync::OnceLock;

use super::CryptoError;
use super::aead::ContentKey;
use super::delegated::DelegatedSigner;
use super::writer::WriterKey;

const RSA_BITS: usize = 2048;

/// A device's private key. `rsa` zeroizes its limbs on drop. The
/// delegated signer and the local sealing key are made on first use.
pub struct DeviceKeyPair {
    rsa: RsaPrivateKey,
    signer: OnceLock<DelegatedSigner>,
    local: OnceLock<Zeroizing<[u8; 32]>>,
}

/// A device's public key, exchanged as SubjectPublicKeyInfo DER.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevicePublicKey(RsaPublicKey);

fn rsa_err(e: impl std::fmt::Display) -> CryptoError {
    CryptoError::Rsa(e.to_string())
}

impl DeviceKeyPair {
    /// Generates a fresh RSA-2048 key pair (takes a moment: once per device).
    pub fn generate() -> Result<Self, CryptoError> {
        RsaPrivateKey::new(&mut rand::rng(), RSA_BITS)
            .map(Self::from_rsa)
            .map_err(rsa_err)
    }

    /// Restores a key from PKCS#8 DER (as kept in the keyring).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, CryptoError> {
        let k = RsaPrivateKey::from_pkcs8_der(der).map_err(|_| CryptoError::Malformed("device private key"))?;
        if k.size() * 8 != RSA_BITS {
            return Err(CryptoError::Malformed("device key must be RSA-2048"));
        }
        Ok(Self::from_rsa(k))
    }

    fn from_rsa(rsa: RsaPrivateKey) -> Self {
        Self {
            rsa,
            signer: OnceLock::new(),
            local: OnceLock::new(),
        }
    }

    /// PKCS#8 DER in a zeroizing buffer, for the keyring.
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let doc = self.rsa.to_pkcs8_der().map_err(rsa_err)?;
        Ok(Zeroizing::new(doc.as_bytes().to_vec()))
    }

    /// The public half.
    pub fn public(&self) -> DevicePublicKey {
        DevicePublicKey(self.rsa.to_public_key())
    }

    /// Unwraps a content key from a licence. Call only on licences whose
    /// server signature has been verified: this is a private operation.
    pub fn unwrap_key(&self, wrapped: &[u8]) -> Result<ContentKey, CryptoError> {
        let pt = Zeroizing::new(
            self.rsa
                .oaep_decrypt::<Sha256>(wrapped)
                .map_err(|_| CryptoError::Authentication)?,
        );
        let bytes: [u8; 32] = pt
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::Malformed("wrapped key length"))?;
        Ok(ContentKey::from_bytes(bytes))
    }

    /// RSA-PSS-SHA256 signature, used by owners on publishing licences.
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.rsa.pss_sign::<Sha256>(msg).map_err(rsa_err)
    }

    /// This process's Ed25519 signer, certified by this device on first
    /// use: signing with it costs microseconds instead of milliseconds.
    pub fn delegated_signer(&self) -> Result<&DelegatedSigner, CryptoError> {
        if let Some(s) = self.signer.get() {
            return Ok(s);
        }
        let s = DelegatedSigner::certify(self)?;
        Ok(self.signer.get_or_init(|| s))
    }

    /// Seals a small secret (an owner's content key) so that only this
    /// device can open it: AES-256-GCM under a key derived from the device
    /// key, with `aad` bound. No RSA operation, so owner licences cost
    /// microseconds to write and read.
    pub fn seal_local(&self, aad: &[u8], secret: &[u8]) -> Vec<u8> {
        super::aead::seal_small(self.local_key(), aad, secret)
    }

    /// Opens what [`seal_local`](Self::seal_local) sealed with the same `aad`.
    pub fn open_local(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        super::aead::open_small(self.local_key(), aad, sealed).map(Zeroizing::new)
    }

    /// This device's writer key (see `crypto::writer`): derived from the
    /// device key, so every process of the device signs as the same writer
    /// and the server certifies it once.
    pub fn writer_key(&self) -> WriterKey {
        let der = self.to_pkcs8_der().expect("an RSA private key always encodes");
        WriterKey::from_secret(&super::hash::derive_key(
            &der,
            b"rightsfs device",
            b"writer signing key v1",
        ))
    }

    /// The key that authenticates the mount's index of header facts
    /// (`fs/facts_index.rs`): the index lives in a folder others may write
    /// to, so only what this device wrote may be believed. Derived from the
    /// local sealing key, so it costs no RSA operation.
    pub fn facts_index_key(&self) -> Zeroizing<[u8; 32]> {
        super::hash::derive_key(self.local_key(), b"rightsfs device", b"header facts index v1")
    }

    fn local_key(&self) -> &[u8; 32] {
        self.local.get_or_init(|| {
            let der = self.to_pkcs8_der().expect("an RSA private key always encodes");
            super::hash::derive_key(&der, b"rightsfs device", b"local sealing key v1")
        })
    }
}

impl DevicePublicKey {
    /// Parses SubjectPublicKeyInfo DER, accepting only RSA-2048 with the
    /// usual exponent so that odd keys cannot slow the server down.
    pub fn from_der(der: &[u8]) -> Result<Self, CryptoError> {
        let k = RsaPublicKey::from_public_key_der(der).map_err(|_| CryptoError::Malformed("device public key"))?;
        if k.size() * 8 != RSA_BITS {
            return Err(CryptoError::Malformed("device key must be RSA-2048"));
        }
        if k.e() != &rsa::BoxedUint::from(65_537u32) {
            return Err(CryptoError::Malformed("device key exponent must be 65537"));
        }
        Ok(Self(k))
    }

    /// SubjectPublicKeyInfo DER.
    pub fn to_der(&self) -> Vec<u8> {
        self.0
            .to_public_key_der()
            .expect("an RSA public key always encodes")
            .as_bytes()
            .to_vec()
    }

    /// Wraps a content key to this device with OAEP-SHA256: a public-key
    /// operation, fast and safe for the server to run.
    pub fn wrap_key(&self, cek: &ContentKey) -> Result<Vec<u8>, CryptoError> {
        self.0.oaep_encrypt::<Sha256>(cek.as_bytes()).map_err(rsa_err)
    }

    /// Checks an RSA-PSS-SHA256 signature made by [`DeviceKeyPair::sign`].
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), CryptoError> {
        self.0
            .pss_verify::<Sha256>(msg, sig)
            .map_err(|_| CryptoError::Authentication)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oaep_and_pss_round_trip() {
        let kp = DeviceKeyPair::generate().unwrap();
        let pk = DevicePublicKey::from_der(&kp.public().to_der()).unwrap();
        let cek = ContentKey::generate();
        let w = pk.wrap_key(&cek).unwrap();
        assert_eq!(kp.unwrap_key(&w).unwrap().as_bytes(), cek.as_bytes());
        let mut bad = w.clone();
        bad[5] ^= 1;
        assert!(kp.unwrap_key(&bad).is_err());
        let sig = kp.sign(b"pl").unwrap();
        pk.verify(b"pl", &sig).unwrap();
        assert!(pk.verify(b"pm", &sig).is_err());
        let restored = DeviceKeyPair::from_pkcs8_der(&kp.to_pkcs8_der().unwrap()).unwrap();
        assert_eq!(restored.public(), kp.public());
        assert!(DevicePublicKey::from_der(b"garbage").is_err());
    }
}
