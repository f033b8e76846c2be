//! Server-signed certificates that say who may sign a version of a file.
//!
//! A *device certificate* binds a device's writer key (an Ed25519 public
//! key) to the account the device is registered to. An *edit certificate*
//! says that this writer key may save versions of one content id until a
//! given time, because its account holds `edit` there. Readers check them
//! with the server's Ed25519 key, offline and without RSA.
//!
//! Both use a fixed binary layout (docs/FORMAT.md, "Writer records") rather
//! than postcard, so that a reader in another language parses them with a
//! few lines and no schema.

use super::{ContentId, Email, PolicyError, Rights, Timestamp};
use crate::crypto::{SERVER_SIGNATURE_LEN, ServerSigningKey, ServerVerifyingKey, WRITER_KEY_LEN};

const DEVICE_DOMAIN: &[u8] = b"rightsfs device certificate v1\0";
const EDIT_DOMAIN: &[u8] = b"rightsfs edit certificate v1\0";
const VERSION: u8 = 1;
/// Device certificates carry a `not_after` since version 2; version 1
/// ones (which never ended) are refused, so a removed device cannot keep
/// signing with one.
const DEVICE_VERSION: u8 = 2;
const PROOF_DOMAIN: &[u8] = b"rightsfs writer key proof v1\0";

/// What a device signs with its RSA key (PSS) to ask the server for a
/// device certificate: that the writer key is its own. The server checks
/// it with the device's registered public key, a public operation, so a
/// stolen access token alone cannot get a key of the thief's choosing
/// certified for the account.
pub fn writer_key_proof(device_id: &str, key: &[u8; WRITER_KEY_LEN]) -> Vec<u8> {
    let mut out = PROOF_DOMAIN.to_vec();
    put_str(&mut out, device_id);
    out.extend_from_slice(key);
    out
}

/// The server's statement "this writer key belongs to this account's
/// device until `not_after`". It is short-lived (days) so that a device
/// removed from its account stops being able to sign versions readers
/// accept once its last certificate ends: the server certifies only
/// devices still registered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceCertificate {
    /// The account the device is registered to.
    pub account: Email,
    /// The device's id on the server.
    pub device_id: String,
    /// The device's writer key.
    pub key: [u8; WRITER_KEY_LEN],
    /// When the server issued it.
    pub issued_at: Timestamp,
    /// The last second a version signed under it may claim.
    pub not_after: Timestamp,
}

/// The server's statement "this writer key may save versions of this
/// content until `not_after`".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EditCertificate {
    /// The content.
    pub content_id: ContentId,
    /// The account holding the grant.
    pub account: Email,
    /// The writer key of the account's device it was issued to.
    pub key: [u8; WRITER_KEY_LEN],
    /// The account's rights on the content when it was issued.
    pub rights: Rights,
    /// When the server issued it.
    pub issued_at: Timestamp,
    /// The last second a version signed under it may claim.
    pub not_after: Timestamp,
}

/// Appends `s` with a one-byte length (addresses and device ids are short).
pub(super) fn put_str(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    out.push(u8::try_from(b.len()).expect("addresses and device ids are under 256 bytes"));
    out.extend_from_slice(b);
}

/// A cursor over a certificate body; every read is bounds-checked.
pub(super) struct Reader<'a>(pub(super) &'a [u8], pub(super) &'static str);

impl<'a> Reader<'a> {
    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], PolicyError> {
        if self.0.len() < n {
            return Err(PolicyError::Malformed(self.1));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    pub(super) fn u8(&mut self) -> Result<u8, PolicyError> {
        Ok(self.take(1)?[0])
    }
    pub(super) fn i64(&mut self) -> Result<i64, PolicyError> {
        Ok(i64::from_be_bytes(self.take(8)?.try_into().expect("took 8")))
    }
    pub(super) fn array<const N: usize>(&mut self) -> Result<[u8; N], PolicyError> {
        Ok(self.take(N)?.try_into().expect("took N"))
    }
    pub(super) fn str(&mut self) -> Result<&'a str, PolicyError> {
        let n = self.u8()? as usize;
        std::str::from_utf8(self.take(n)?).map_err(|_| PolicyError::Malformed(self.1))
    }
    pub(super) fn email(&mut self) -> Result<Email, PolicyError> {
        let s = self.str()?;
        let e = Email::parse(s).map_err(|_| PolicyError::Malformed(self.1))?;
        // Only the normal form is accepted, so one account has one encoding.
        if e.as_str() != s {
            return Err(PolicyError::Malformed(self.1));
        }
        Ok(e)
    }
    pub(super) fn end(self) -> Result<(), PolicyError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(PolicyError::Malformed(self.1))
        }
    }
}

/// `u16 length || body || Ed25519(server, domain || body)`.
fn sign(domain: &[u8], body: &[u8], server: &ServerSigningKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + body.len() + SERVER_SIGNATURE_LEN);
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&server.sign(&[domain, body].concat()));
    out
}

/// Splits a signed certificate into body and signature.
fn split<'a>(bytes: &'a [u8], what: &'static str) -> Result<(&'a [u8], &'a [u8]), PolicyError> {
    let mut r = Reader(bytes, what);
    let n = u16::from_be_bytes(r.array()?) as usize;
    let body = r.take(n)?;
    let sig = r.take(SERVER_SIGNATURE_LEN)?;
    r.end()?;
    Ok((body, sig))
}

impl DeviceCertificate {
    /// Encodes and signs (server side).
    pub fn sign(&self, server: &ServerSigningKey) -> Vec<u8> {
        let mut body = vec![DEVICE_VERSION];
        put_str(&mut body, self.account.as_str());
        put_str(&mut body, &self.device_id);
        body.extend_from_slice(&self.key);
        body.extend_from_slice(&self.issued_at.to_be_bytes());
        body.extend_from_slice(&self.not_after.to_be_bytes());
        sign(DEVICE_DOMAIN, &body, server)
    }

    /// Decodes without checking the signature: only to name who a
    /// certificate claims to be in an error.
    pub fn decode_unverified(bytes: &[u8]) -> Result<Self, PolicyError> {
        Self::decode(split(bytes, "device certificate")?.0)
    }

    /// Checks the server's signature, then decodes.
    pub fn verify(bytes: &[u8], server: &ServerVerifyingKey) -> Result<Self, PolicyError> {
        let (body, sig) = split(bytes, "device certificate")?;
        server
            .verify(&[DEVICE_DOMAIN, body].concat(), sig)
            .map_err(|_| PolicyError::BadSignature("device certificate"))?;
        Self::decode(body)
    }

    fn decode(body: &[u8]) -> Result<Self, PolicyError> {
        let mut r = Reader(body, "device certificate");
        if r.u8()? != DEVICE_VERSION {
            return Err(PolicyError::Malformed("device certificate version"));
        }
        let c = Self {
            account: r.email()?,
            device_id: r.str()?.to_string(),
            key: r.array()?,
            issued_at: r.i64()?,
            not_after: r.i64()?,
        };
        r.end()?;
        Ok(c)
    }
}

impl EditCertificate {
    /// Encodes and signs (server side).
    pub fn sign(&self, server: &ServerSigningKey) -> Vec<u8> {
        let mut body = vec![VERSION];
        body.extend_from_slice(&self.content_id.0);
        put_str(&mut body, self.account.as_str());
        body.extend_from_slice(&self.key);
        body.push(self.rights.bits());
        body.extend_from_slice(&self.issued_at.to_be_bytes());
        body.extend_from_slice(&self.not_after.to_be_bytes());
        sign(EDIT_DOMAIN, &body, server)
    }

    /// Checks the server's signature, then decodes.
    pub fn verify(bytes: &[u8], server: &ServerVerifyingKey) -> Result<Self, PolicyError> {
        let (body, sig) = split(bytes, "edit certificate")?;
        server
            .verify(&[EDIT_DOMAIN, body].concat(), sig)
            .map_err(|_| PolicyError::BadSignature("edit certificate"))?;
        Self::decode(body)
    }

    /// Decodes without checking the signature: only for a writer's own
    /// certificate, checked when it was received, to know when it ends.
    pub fn decode_unverified(bytes: &[u8]) -> Result<Self, PolicyError> {
        Self::decode(split(bytes, "edit certificate")?.0)
    }

    fn decode(body: &[u8]) -> Result<Self, PolicyError> {
        let mut r = Reader(body, "edit certificate");
        if r.u8()? != VERSION {
            return Err(PolicyError::Malformed("edit certificate version"));
        }
        let c = Self {
            content_id: ContentId(r.array()?),
            account: r.email()?,
            key: r.array()?,
            rights: Rights::from_bits(r.u8()?).ok_or(PolicyError::Malformed("edit certificate rights"))?,
            issued_at: r.i64()?,
            not_after: r.i64()?,
        };
        r.end()?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::WriterKey;

    #[test]
    fn certificates_round_trip_and_bind_the_server() {
        let server = ServerSigningKey::generate();
        let other = ServerSigningKey::generate();
        let dc = DeviceCertificate {
            account: Email::parse("bob@example.com").unwrap(),
            device_id: "d-1".into(),
            key: WriterKey::generate().public(),
            issued_at: 1_700_000_000,
            not_after: 1_700_604_800,
        };
        let signed = dc.sign(&server);
        assert_eq!(DeviceCertificate::verify(&signed, &server.verifying_key()).unwrap(), dc);
        assert!(DeviceCertificate::verify(&signed, &other.verifying_key()).is_err());
        let ec = EditCertificate {
            content_id: ContentId([9; 16]),
            account: dc.account.clone(),
            key: dc.key,
            rights: Rights::parse("edit").unwrap(),
            issued_at: 1_700_000_000,
            not_after: 1_700_086_400,
        };
        let signed_ec = ec.sign(&server);
        assert_eq!(
            EditCertificate::verify(&signed_ec, &server.verifying_key()).unwrap(),
            ec
        );
        // A device certificate is not an edit certificate, whatever its bytes.
        assert!(EditCertificate::verify(&signed, &server.verifying_key()).is_err());
        for i in 0..signed_ec.len() {
            let mut bad = signed_ec.clone();
            bad[i] ^= 1;
            assert!(
                EditCertificate::verify(&bad, &server.verifying_key()).is_err(),
                "byte {i}"
            );
        }
        assert!(EditCertificate::verify(&signed_ec[..signed_ec.len() - 1], &server.verifying_key()).is_err());
    }
}
