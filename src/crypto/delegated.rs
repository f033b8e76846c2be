//! Delegated device signatures: a device's RSA key certifies a short-lived
//! Ed25519 key once per process, and that key signs publishing licences.
//!
//! Why: an RSA-2048 signature costs about 2.4 ms, an Ed25519 one about
//! 20 us. A mount that protects every new file (editors' temp and swap
//! files included) would otherwise spend most of a create signing. The
//! certificate keeps the RSA device key the root of trust, so the server's
//! check "this device is one of the owner's" is unchanged.

use ed25519_dalek::Signer;

use super::CryptoError;
use super::device::{DeviceKeyPair, DevicePublicKey};
use super::hash::{Sha256Digest, sha256_parts};

const CERT_DOMAIN: &[u8] = b"rightsfs delegated signing key v1\0";
const ED_PUBLIC_LEN: usize = 32;
const RSA_SIGNATURE_LEN: usize = 256;
const ED_SIGNATURE_LEN: usize = 64;

/// Length of a delegated signature: Ed25519 public key, the device's
/// RSA-PSS certificate over it, and the Ed25519 signature.
pub const DELEGATED_SIGNATURE_LEN: usize = ED_PUBLIC_LEN + RSA_SIGNATURE_LEN + ED_SIGNATURE_LEN;

/// An Ed25519 key living only in this process's memory, certified by the
/// device key. `ed25519_dalek` zeroizes the secret on drop.
pub struct DelegatedSigner {
    key: ed25519_dalek::SigningKey,
    cert: Vec<u8>,
}

impl DelegatedSigner {
    /// A fresh key certified by `device` (one RSA signature).
    pub(super) fn certify(device: &DeviceKeyPair) -> Result<Self, CryptoError> {
        let key = ed25519_dalek::SigningKey::from_bytes(&super::hash::random_array());
        let public = key.verifying_key().to_bytes();
        let cert = device.sign(&[CERT_DOMAIN, &public].concat())?;
        if cert.len() != RSA_SIGNATURE_LEN {
            return Err(CryptoError::Malformed("device signature length"));
        }
        Ok(Self { key, cert })
    }

    /// Signs `msg`: public key || certificate || Ed25519 signature.
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(DELEGATED_SIGNATURE_LEN);
        out.extend_from_slice(&self.key.verifying_key().to_bytes());
        out.extend_from_slice(&self.cert);
        out.extend_from_slice(&self.key.sign(msg).to_bytes());
        out
    }
}

/// Certificates already checked, by hash of device key (DER), delegated
/// key and certificate, with the delegated key decoded: every file a
/// process protects carries the same certificate, so neither its RSA
/// verification (about 80 us) nor parsing the device key or decompressing
/// the Ed25519 point need be repeated (a server checks a hundred licences
/// from one process per registration request). Owned by whoever verifies
/// many (the mount, the server) and passed to
/// [`DevicePublicKey::verify_delegated_der`].
pub struct CertCache(crate::cache::Shared<Sha256Digest, ed25519_dalek::VerifyingKey>);
const GOOD_CERTS_KEPT: usize = 1024;

impl Default for CertCache {
    fn default() -> Self {
        Self(crate::cache::Shared::new(GOOD_CERTS_KEPT))
    }
}

impl CertCache {
    /// How many certificates are remembered.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl DevicePublicKey {
    /// Checks a signature made by [`DelegatedSigner::sign`] of a signer the
    /// device whose public key is `der` certified. The key is parsed only
    /// if its certificate was not found in `certs`; one that does not parse
    /// is `Malformed`.
    pub fn verify_delegated_der(
        der: &[u8],
        msg: &[u8],
        sig: &[u8],
        certs: Option<&CertCache>,
    ) -> Result<(), CryptoError> {
        let vk = Self::delegated_key_der(der, sig, certs)?;
        let ed_sig: [u8; ED_SIGNATURE_LEN] = sig[ED_PUBLIC_LEN + RSA_SIGNATURE_LEN..]
            .try_into()
            .expect("length checked");
        vk.verify_strict(msg, &ed25519_dalek::Signature::from_bytes(&ed_sig))
            .map_err(|_| CryptoError::Authentication)
    }

    /// The Ed25519 key a delegated signature was made with, once the
    /// device whose public key is `der` is found to have certified it:
    /// [`verify_delegated_der`](Self::verify_delegated_der) but for the
    /// Ed25519 check of the message. Only for a signature this process
    /// has just made itself (a reader checking it again would find what
    /// the signer just computed); anything read from elsewhere is
    /// verified in full.
    pub fn delegated_key_der(
        der: &[u8],
        sig: &[u8],
        certs: Option<&CertCache>,
    ) -> Result<ed25519_dalek::VerifyingKey, CryptoError> {
        if sig.len() != DELEGATED_SIGNATURE_LEN {
            return Err(CryptoError::Malformed("delegated signature length"));
        }
        let (public, rest) = sig.split_at(ED_PUBLIC_LEN);
        let cert = &rest[..RSA_SIGNATURE_LEN];
        let memo = sha256_parts(&[der, public, cert]);
        if let Some(vk) = certs.and_then(|c| c.0.get(&memo)) {
            return Ok(vk);
        }
        DevicePublicKey::from_der(der)?.verify(&[CERT_DOMAIN, public].concat(), cert)?;
        let public: [u8; ED_PUBLIC_LEN] = public.try_into().expect("split at its length");
        let vk = ed25519_dalek::VerifyingKey::from_bytes(&public).map_err(|_| CryptoError::Authentication)?;
        if let Some(c) = certs {
            c.0.put(memo, vk);
        }
        Ok(vk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delegated_signatures_verify_only_for_their_device_and_message() {
        let device = DeviceKeyPair::generate().unwrap();
        let other = DeviceKeyPair::generate().unwrap();
        let signer = device.delegated_signer().unwrap();
        let sig = signer.sign(b"licence");
        assert_eq!(sig.len(), DELEGATED_SIGNATURE_LEN);
        let der = device.public().to_der();
        let certs = CertCache::default();
        let check = |d: &[u8], m: &[u8], s: &[u8]| DevicePublicKey::verify_delegated_der(d, m, s, Some(&certs));
        check(&der, b"licence", &sig).unwrap();
        assert_eq!(certs.len(), 1);
        // Again, now from the certificate memo; without one, checked in full.
        check(&der, b"licence", &sig).unwrap();
        DevicePublicKey::verify_delegated_der(&der, b"licence", &sig, None).unwrap();
        assert!(check(&der, b"licencf", &sig).is_err());
        assert!(check(&other.public().to_der(), b"licence", &sig).is_err());
        // Any flipped bit, in the key, the certificate or the signature.
        for i in [0, 31, 32, 100, 287, 288, DELEGATED_SIGNATURE_LEN - 1] {
            let mut bad = sig.clone();
            bad[i] ^= 1;
            assert!(check(&der, b"licence", &bad).is_err(), "byte {i}");
        }
        assert!(check(&der, b"licence", &sig[1..]).is_err());
        // A key the device never certified, with a certificate lifted from
        // a real signature, is refused.
        let rogue = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        let mut forged = rogue.verifying_key().to_bytes().to_vec();
        forged.extend_from_slice(&sig[ED_PUBLIC_LEN..ED_PUBLIC_LEN + RSA_SIGNATURE_LEN]);
        forged.extend_from_slice(&rogue.sign(b"licence").to_bytes());
        assert!(check(&der, b"licence", &forged).is_err());
        // A key that does not parse is malformed rather than a bad signature.
        assert!(matches!(
            check(&der[1..], b"licence", &sig),
            Err(CryptoError::Malformed(_))
        ));
        // Another owner's cache learnt nothing from these.
        assert!(CertCache::default().is_empty());
        // One process, one certificate: the signer is made once.
        assert!(std::ptr::eq(signer, device.delegated_signer().unwrap()));
    }
}
