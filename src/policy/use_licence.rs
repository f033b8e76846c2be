//! The use licence: the server's signed permission for one user on one
//! device, carrying the content key wrapped to that device.

use serde::{Deserialize, Serialize};

use super::{ContentId, Email, PolicyError, Rights, Timestamp};
use crate::crypto::{ServerSigningKey, ServerVerifyingKey};

const UL_DOMAIN: &[u8] = b"rightsfs use licence v1\0";
/// The layout version this build issues and accepts.
pub const USE_LICENCE_VERSION: u8 = 2;

/// What the server signs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UseLicenceBody {
    /// Layout version ([`USE_LICENCE_VERSION`]).
    pub version: u8,
    /// The content.
    pub content_id: ContentId,
    /// The user it was issued to.
    pub user: Email,
    /// The device it was issued to.
    pub device_id: String,
    /// What the user may do.
    pub rights: Rights,
    /// When it was issued.
    pub issued_at: Timestamp,
    /// Until when it may be used without asking the server again.
    pub valid_until: Timestamp,
    /// The content key, RSA-OAEP-SHA256 to the device key.
    #[serde(with = "super::b64")]
    pub wrapped_key: Vec<u8>,
    /// The account the server registered the content to: a reader shows
    /// this owner, never the one a file's header claims.
    pub owner: Email,
    /// [`PublishingLicence::hash`](super::PublishingLicence::hash) of the
    /// registered publishing licence; a file whose header carries another
    /// licence is not the registered content.
    pub licence_hash: [u8; 32],
}

/// A signed use licence as stored in the client cache and sent over HTTP.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UseLicence {
    /// `postcard` encoding of a [`UseLicenceBody`].
    #[serde(with = "super::b64")]
    pub body: Vec<u8>,
    /// Ed25519 by the server over domain tag || body.
    #[serde(with = "super::b64")]
    pub signature: Vec<u8>,
    /// For a licence whose rights include `edit`, issued to a device that
    /// showed its device certificate: the server-signed edit certificate
    /// ([`EditCertificate`](super::EditCertificate)) with which the
    /// device signs the versions it saves. Signed on its own, so it needs
    /// no place in the body.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "super::b64::opt")]
    pub edit_certificate: Option<Vec<u8>>,
    /// When the user's access ends on its own (their grant's or the
    /// content's expiry) as the server's policy said at issue. Files do not
    /// show a recipient their grant (the grants are sealed), so this is how
    /// a device whose licence lapsed offline can say "your access expired"
    /// rather than "connect to renew". Not signed: it chooses only which
    /// refusal is shown, never whether the file opens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_ends: Option<Timestamp>,
}

impl UseLicenceBody {
    /// Whether this licence is for the file whose header carries `pl`,
    /// which claims `owner`: the server registered that very licence to
    /// that owner. A header rebuilt to claim another owner, or carrying
    /// another licence for the same content id, is not the registered
    /// content and must be refused.
    pub fn is_for(&self, pl: &super::PublishingLicence, owner: &Email) -> bool {
        &self.owner == owner && crate::crypto::ct_eq(&self.licence_hash, &pl.hash())
    }
}

impl UseLicence {
    /// Encodes and signs a licence (server side).
    pub fn sign(body: &UseLicenceBody, key: &ServerSigningKey) -> Self {
        let bytes = postcard::to_stdvec(body).expect("licence bodies always encode");
        let signature = key.sign(&[UL_DOMAIN, &bytes].concat()).to_vec();
        Self {
            body: bytes,
            signature,
            edit_certificate: None,
            access_ends: None,
        }
    }

    /// Checks the server's signature, then decodes. Devices must call this
    /// before any RSA private operation on the wrapped key.
    pub fn verify(&self, server: &ServerVerifyingKey) -> Result<UseLicenceBody, PolicyError> {
        server
            .verify(&[UL_DOMAIN, &self.body].concat(), &self.signature)
            .map_err(|_| PolicyError::BadSignature("use licence"))?;
        let b: UseLicenceBody = postcard::from_bytes(&self.body).map_err(|_| PolicyError::Malformed("use licence"))?;
        if b.version != USE_LICENCE_VERSION {
            return Err(PolicyError::Malformed("use licence version"));
        }
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{ContentKey, DeviceKeyPair, ServerKemSecret};
    use crate::policy::{Policy, PublishingLicence, PublishingLicenceBody, now};

    #[test]
    fn publishing_and_use_licence_chain() {
        let device = DeviceKeyPair::generate().unwrap();
        let kem = ServerKemSecret::generate();
        let sig = ServerSigningKey::generate();
        let cek = ContentKey::generate();
        let id = ContentId::generate();
        let alice = Email::parse("alice@example.com").unwrap();
        let context = PublishingLicenceBody::wrap_context(&id, &alice, &device.public().to_der());
        let body = PublishingLicenceBody {
            version: 1,
            content_id: id,
            server_url: "http://127.0.0.1:1".into(),
            server_key: kem.public().0,
            owner_device_key: device.public().to_der(),
            policy: Policy::owner_only(alice.clone(), 7),
            wrapped_key: kem.public().wrap(&cek, &context).0.to_vec(),
            created_at: now(),
        };
        let pl = PublishingLicence::sign(&body, &device).unwrap();
        let back = pl.verify().unwrap();
        assert_eq!(back, body);
        assert_eq!(
            kem.unwrap(&back.wrapped().unwrap(), &back.key_context())
                .unwrap()
                .as_bytes(),
            cek.as_bytes()
        );
        // The same wrapped key in a licence naming another owner or device
        // does not unwrap.
        let mut taken = back.clone();
        taken.policy.owner = Email::parse("mallory@example.com").unwrap();
        assert!(kem.unwrap(&taken.wrapped().unwrap(), &taken.key_context()).is_err());
        let mut taken = back.clone();
        taken.owner_device_key = DeviceKeyPair::generate().unwrap().public().to_der();
        assert!(kem.unwrap(&taken.wrapped().unwrap(), &taken.key_context()).is_err());
        let json = serde_json::to_string(&pl).unwrap();
        assert_eq!(serde_json::from_str::<PublishingLicence>(&json).unwrap(), pl);
        let mut forged = pl.clone();
        let n = forged.body.len();
        forged.body[n - 1] ^= 1;
        assert!(forged.verify().is_err());

        let ul = UseLicence::sign(
            &UseLicenceBody {
                version: USE_LICENCE_VERSION,
                content_id: id,
                user: Email::parse("bob@example.com").unwrap(),
                device_id: "d1".into(),
                rights: Rights::parse("view").unwrap(),
                issued_at: now(),
                valid_until: now() + 60,
                wrapped_key: device.public().wrap_key(&cek).unwrap(),
                owner: alice,
                licence_hash: pl.hash(),
            },
            &sig,
        );
        let b = ul.verify(&sig.verifying_key()).unwrap();
        assert_eq!(device.unwrap_key(&b.wrapped_key).unwrap().as_bytes(), cek.as_bytes());
        assert!(ul.verify(&ServerSigningKey::generate().verifying_key()).is_err());
    }
}
