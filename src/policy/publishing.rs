//! The publishing licence: the owner's signed statement of a file's policy
//! and content key (wrapped to the server). It travels in the file header
//! and is registered with the server.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::sealed::SealedGrants;
use super::{Email, Policy, PolicyError, Timestamp};
use crate::crypto::{
    CertCache, CryptoError, DeviceKeyPair, DevicePublicKey, ServerKemPublic, WRAPPED_KEY_LEN, WrapToServer, WrappedKey,
};

const PL_DOMAIN: &[u8] = b"rightsfs publishing licence v1\0";
const PL_DOMAIN_V2: &[u8] = b"rightsfs publishing licence v2\0";
const PL_DOMAIN_V3: &[u8] = b"rightsfs publishing licence v3\0";
/// Domain of the owner binding in a wrapped key's context.
const OWNER_BINDING: &[u8] = b"rightsfs owner binding v2\0";
/// Domain of a publishing licence's hash, as use licences name it.
const PL_HASH_DOMAIN: &[u8] = b"rightsfs publishing licence hash\0";

/// A protected file's random 128-bit identity, fixed when it is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContentId(pub [u8; 16]);

impl ContentId {
    /// A fresh random id.
    pub fn generate() -> Self {
        Self(crate::crypto::random_array())
    }

    /// Lower-case hex, as used in URLs and file listings.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 32 hex digits.
    pub fn from_hex(s: &str) -> Result<Self, PolicyError> {
        let v = hex::decode(s.trim()).map_err(|_| PolicyError::Malformed("content id"))?;
        Ok(Self(v.try_into().map_err(|_| PolicyError::Malformed("content id"))?))
    }
}

impl std::fmt::Display for ContentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for ContentId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_hex())
        } else {
            self.0.serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for ContentId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            Self::from_hex(&String::deserialize(d)?).map_err(serde::de::Error::custom)
        } else {
            Ok(Self(<[u8; 16]>::deserialize(d)?))
        }
    }
}

/// What the owner signs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishingLicenceBody {
    /// How the body is signed and what it shows: 1, RSA-PSS by the device
    /// key; 2, by a delegated Ed25519 key the device key certified (the
    /// fields are the same, grants in the clear); 3, signed as 2 with the
    /// grants sealed (see [`SealedGrants`]). New licences are version
    /// [`CURRENT_VERSION`](Self::CURRENT_VERSION).
    pub version: u8,
    /// The content this licence is for.
    pub content_id: ContentId,
    /// Base URL of the licensing server to ask for use licences.
    pub server_url: String,
    /// The server X25519 key the content key is wrapped to.
    pub server_key: [u8; 32],
    /// The signing device's RSA public key (SubjectPublicKeyInfo DER).
    #[serde(with = "super::b64")]
    pub owner_device_key: Vec<u8>,
    /// The policy at protection time (the server's copy is authoritative
    /// afterwards: sharing changes never rewrite the file). From version 3
    /// the grants are sealed when signing, and a decoded body has none:
    /// only [`PublishingLicence::open_grants_as_owner`] and the server read
    /// them (see [`grants_sealed`](Self::grants_sealed)).
    pub policy: Policy,
    /// The content key wrapped to `server_key`, bound to `content_id`,
    /// the owner and the owner's device key (see [`key_context`](Self::key_context)).
    #[serde(with = "super::b64")]
    pub wrapped_key: Vec<u8>,
    /// When the file was protected.
    pub created_at: Timestamp,
}

/// A publishing licence as stored: the exact signed bytes plus signature.
/// Keeping the bytes (not re-encoding) makes verification independent of
/// encoder details.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishingLicence {
    /// `postcard` encoding of a [`PublishingLicenceBody`].
    #[serde(with = "super::b64")]
    pub body: Vec<u8>,
    /// Version 1: RSA-PSS-SHA256 by the owner's device over domain tag ||
    /// body. Version 2: a delegated signature (Ed25519 key, the device's
    /// RSA-PSS certificate of it, Ed25519 signature over domain tag || body).
    #[serde(with = "super::b64")]
    pub signature: Vec<u8>,
}

/// A version 3 body as encoded: the policy's grants are replaced by their
/// sealed form, which only the server and the owner's device open.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SealedBody {
    version: u8,
    content_id: ContentId,
    server_url: String,
    server_key: [u8; 32],
    #[serde(with = "super::b64")]
    owner_device_key: Vec<u8>,
    owner: Email,
    expires: Option<Timestamp>,
    offline_days: u32,
    grants: SealedGrants,
    #[serde(with = "super::b64")]
    wrapped_key: Vec<u8>,
    created_at: Timestamp,
}

impl SealedBody {
    /// The body the owner's `device` signs for `b`, its grants sealed.
    fn seal(b: &PublishingLicenceBody, device: &DeviceKeyPair, wrap: &dyn WrapToServer) -> Self {
        Self {
            version: b.version,
            content_id: b.content_id,
            server_url: b.server_url.clone(),
            server_key: b.server_key,
            owner_device_key: b.owner_device_key.clone(),
            owner: b.policy.owner.clone(),
            expires: b.policy.expires,
            offline_days: b.policy.offline_days,
            grants: SealedGrants::seal(&b.policy.grants, &b.key_context(), wrap, device),
            wrapped_key: b.wrapped_key.clone(),
            created_at: b.created_at,
        }
    }

    /// The body as readers see it: no grants.
    fn public(self) -> (PublishingLicenceBody, SealedGrants) {
        let body = PublishingLicenceBody {
            version: self.version,
            content_id: self.content_id,
            server_url: self.server_url,
            server_key: self.server_key,
            owner_device_key: self.owner_device_key,
            policy: Policy {
                owner: self.owner,
                grants: Vec::new(),
                expires: self.expires,
                offline_days: self.offline_days,
            },
            wrapped_key: self.wrapped_key,
            created_at: self.created_at,
        };
        (body, self.grants)
    }
}

impl PublishingLicenceBody {
    /// The version new publishing licences are made with.
    pub const CURRENT_VERSION: u8 = 3;

    /// Whether the grants are sealed (version 3 on): a decoded body then
    /// shows none, which does not mean there are none.
    pub fn grants_sealed(&self) -> bool {
        self.version >= 3
    }

    /// The owner of the content.
    pub fn owner(&self) -> &Email {
        &self.policy.owner
    }

    /// The wrapped key in its fixed-size form.
    pub fn wrapped(&self) -> Result<WrappedKey, PolicyError> {
        let arr: [u8; WRAPPED_KEY_LEN] = self
            .wrapped_key
            .as_slice()
            .try_into()
            .map_err(|_| PolicyError::Malformed("wrapped content key"))?;
        Ok(WrappedKey(arr))
    }

    /// The server key as a typed public key.
    pub fn server_public(&self) -> ServerKemPublic {
        ServerKemPublic(self.server_key)
    }

    /// The context the content key is wrapped under for this licence: the
    /// content id, then SHA-256 over a domain tag, the owner's address
    /// (length-prefixed) and the owner's device key. A wrapped key copied
    /// into a licence that names another owner or device no longer
    /// unwraps, so nobody can register someone else's key as their own.
    pub fn key_context(&self) -> Vec<u8> {
        Self::wrap_context(&self.content_id, self.owner(), &self.owner_device_key)
    }

    /// [`key_context`](Self::key_context) before the body exists (the
    /// wrapped key is one of its fields).
    pub fn wrap_context(content_id: &ContentId, owner: &Email, owner_device_key: &[u8]) -> Vec<u8> {
        let owner = owner.as_str().as_bytes();
        let len = u32::try_from(owner.len()).expect("addresses are short").to_be_bytes();
        let binding = crate::crypto::sha256_parts(&[OWNER_BINDING, &len, owner, owner_device_key]);
        [content_id.0.as_slice(), &binding].concat()
    }
}

impl PublishingLicence {
    /// Encodes and signs `body` with the owner's device key, in the way its
    /// version says.
    pub fn sign(body: &PublishingLicenceBody, device: &DeviceKeyPair) -> Result<Self, CryptoError> {
        Self::sign_wrapping(body, device, &body.server_public())
    }

    /// [`sign`](Self::sign), wrapping the sealed grants' key through `wrap`
    /// (so a mount's [`SharedAgreements`](crate::crypto::SharedAgreements)
    /// serve it too) when `wrap` is for the licence's server key.
    pub fn sign_wrapping(
        body: &PublishingLicenceBody,
        device: &DeviceKeyPair,
        wrap: &dyn WrapToServer,
    ) -> Result<Self, CryptoError> {
        let fresh = body.server_public();
        let wrap = if wrap.server() == fresh { wrap } else { &fresh };
        let bytes = match body.version {
            1 | 2 => postcard::to_stdvec(body),
            3 => postcard::to_stdvec(&SealedBody::seal(body, device, wrap)),
            _ => return Err(CryptoError::Malformed("publishing licence version")),
        }
        .expect("licence bodies always encode");
        let signature = match body.version {
            1 => device.sign(&[PL_DOMAIN, &bytes].concat())?,
            2 => device.delegated_signer()?.sign(&[PL_DOMAIN_V2, &bytes].concat()),
            _ => device.delegated_signer()?.sign(&[PL_DOMAIN_V3, &bytes].concat()),
        };
        Ok(Self { body: bytes, signature })
    }

    /// SHA-256 over a domain tag and the signed body: what a use licence
    /// names so a reader can tell the registered licence from another one
    /// carrying the same content id.
    pub fn hash(&self) -> [u8; 32] {
        crate::crypto::sha256_parts(&[PL_HASH_DOMAIN, &self.body])
    }

    /// Decodes the body without checking the signature (for display of a
    /// file you cannot verify, e.g. `rights info` on a damaged file).
    /// From version 3 the body shows no grants (they are sealed).
    pub fn decode_unverified(&self) -> Result<PublishingLicenceBody, PolicyError> {
        Ok(self.decode_parts()?.0)
    }

    /// The body and, from version 3, the sealed grants.
    fn decode_parts(&self) -> Result<(PublishingLicenceBody, Option<SealedGrants>), PolicyError> {
        let bad = || PolicyError::Malformed("publishing licence");
        let (b, sealed) = match self.body.first() {
            Some(1 | 2) => (postcard::from_bytes(&self.body).map_err(|_| bad())?, None),
            Some(3) => {
                let (b, s) = postcard::from_bytes::<SealedBody>(&self.body)
                    .map_err(|_| bad())?
                    .public();
                (b, Some(s))
            }
            Some(_) => return Err(PolicyError::Malformed("publishing licence version")),
            None => return Err(bad()),
        };
        b.policy.validate()?;
        Ok((b, sealed))
    }

    /// The sealed grants of a version 3 licence (`None` before).
    pub fn sealed_grants(&self) -> Result<Option<SealedGrants>, PolicyError> {
        Ok(self.decode_parts()?.1)
    }

    /// The whole policy as the server reads it: a version 3 licence's
    /// grants opened with the server's X25519 secret (they fail to open if
    /// they were altered or taken from another file or owner), earlier
    /// versions' as they stand. Checks nothing else: see [`verify`](Self::verify).
    pub fn policy_for_server(&self, server: &crate::crypto::ServerKemSecret) -> Result<Policy, PolicyError> {
        let (b, sealed) = self.decode_parts()?;
        let context = b.key_context();
        Self::with_grants(b, sealed.map(|s| s.open_as_server(server, &context)))
    }

    /// The whole policy as the owner's device that protected the file
    /// reads it (grants opened from the owner copy).
    pub fn open_grants_as_owner(&self, device: &DeviceKeyPair) -> Result<Policy, PolicyError> {
        let (b, sealed) = self.decode_parts()?;
        let context = b.key_context();
        Self::with_grants(b, sealed.map(|s| s.open_as_owner(device, &context)))
    }

    fn with_grants(
        b: PublishingLicenceBody,
        grants: Option<Result<Vec<super::Grant>, PolicyError>>,
    ) -> Result<Policy, PolicyError> {
        let mut policy = b.policy;
        if let Some(g) = grants {
            policy.grants = g?;
            policy.validate()?;
        }
        Ok(policy)
    }

    /// Decodes the body and checks the signature against the device key it
    /// names. Whether that device belongs to the owner is the server's
    /// check (it knows each account's devices).
    pub fn verify(&self) -> Result<PublishingLicenceBody, PolicyError> {
        self.verify_with(None)
    }

    /// [`verify`](Self::verify), remembering checked device certificates
    /// in `certs` (a caller's own cache) and finding them there.
    pub fn verify_with(&self, certs: Option<&CertCache>) -> Result<PublishingLicenceBody, PolicyError> {
        self.check(certs, true)
    }

    /// [`verify_with`](Self::verify_with) for a licence this process has
    /// just signed, on its way into a file it makes: the body decodes and
    /// the device it names certified the key that signed it, as a reader
    /// checks, but the Ed25519 signature over the body is taken as made
    /// (checking it again would spend about 40 us per file made, a sixth
    /// of a mount's creation, to find what the signer just computed).
    /// Never for a licence read from a file or received.
    pub fn verify_signed_here(&self, certs: Option<&CertCache>) -> Result<PublishingLicenceBody, PolicyError> {
        self.check(certs, false)
    }

    /// The checks of [`verify_with`](Self::verify_with); with `maths`
    /// false, a delegated signature's Ed25519 check is left out.
    fn check(&self, certs: Option<&CertCache>, maths: bool) -> Result<PublishingLicenceBody, PolicyError> {
        let b = self.decode_unverified()?;
        let key =
            || DevicePublicKey::from_der(&b.owner_device_key).map_err(|_| PolicyError::Malformed("owner device key"));
        let signed = match b.version {
            1 => key()?.verify(&[PL_DOMAIN, &self.body].concat(), &self.signature),
            // The device key is parsed only for a certificate not checked yet.
            v if maths => DevicePublicKey::verify_delegated_der(
                &b.owner_device_key,
                &[if v == 2 { PL_DOMAIN_V2 } else { PL_DOMAIN_V3 }, &self.body].concat(),
                &self.signature,
                certs,
            ),
            _ => DevicePublicKey::delegated_key_der(&b.owner_device_key, &self.signature, certs).map(|_| ()),
        };
        if signed.is_err() {
            // Say which: a key that does not parse, or a bad signature.
            key()?;
            return Err(PolicyError::BadSignature("publishing licence"));
        }
        Ok(b)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::crypto::{ContentKey, ServerKemSecret};

    /// A body for a fresh content owned by alice@example.com (for tests
    /// elsewhere in the crate too).
    pub(crate) fn body(device: &DeviceKeyPair, version: u8) -> PublishingLicenceBody {
        let kem = ServerKemSecret::generate();
        let id = ContentId::generate();
        let owner = Email::parse("alice@example.com").unwrap();
        let context = PublishingLicenceBody::wrap_context(&id, &owner, &device.public().to_der());
        PublishingLicenceBody {
            version,
            content_id: id,
            server_url: "http://127.0.0.1:1".into(),
            server_key: kem.public().0,
            owner_device_key: device.public().to_der(),
            policy: Policy::owner_only(owner, 7),
            wrapped_key: kem.public().wrap(&ContentKey::generate(), &context).0.to_vec(),
            created_at: 1_700_000_000,
        }
    }

    #[test]
    fn both_versions_sign_and_verify_and_neither_passes_for_the_other() {
        let device = DeviceKeyPair::generate().unwrap();
        let v1 = PublishingLicence::sign(&body(&device, 1), &device).unwrap();
        let v2 = PublishingLicence::sign(&body(&device, 2), &device).unwrap();
        let v3 = PublishingLicence::sign(&body(&device, 3), &device).unwrap();
        assert_eq!(v1.verify().unwrap().version, 1);
        assert_eq!(v2.verify().unwrap().version, 2);
        assert_eq!(v3.verify().unwrap().version, 3);
        // Versions 2 and 3 sign under their own tags.
        let mut relabelled = v3.clone();
        relabelled.signature = device
            .delegated_signer()
            .unwrap()
            .sign(&[PL_DOMAIN_V2, &v3.body].concat());
        assert!(relabelled.verify().is_err());
        assert_eq!(v2.signature.len(), crate::crypto::DELEGATED_SIGNATURE_LEN);
        // A signature moved between versions never verifies.
        let mut swapped = v2.clone();
        swapped.signature = v1.signature.clone();
        assert!(swapped.verify().is_err());
        let mut swapped = v1.clone();
        swapped.signature = v2.signature.clone();
        assert!(swapped.verify().is_err());
        // Relabelling the version changes the signed bytes.
        let mut relabelled = v2.clone();
        relabelled.body[0] = 1;
        assert!(relabelled.verify().is_err());
        // Another device's delegated signature over the same body.
        let other = DeviceKeyPair::generate().unwrap();
        let mut foreign = v2.clone();
        foreign.signature = other
            .delegated_signer()
            .unwrap()
            .sign(&[PL_DOMAIN_V2, &v2.body].concat());
        assert!(foreign.verify().is_err());
        let mut future = body(&device, 4);
        assert!(PublishingLicence::sign(&future, &device).is_err());
        future.version = 2;
        assert!(PublishingLicence::sign(&future, &device).is_ok());
    }

    #[test]
    fn version_3_grants_are_sealed_to_the_server_and_the_owner_only() {
        let device = DeviceKeyPair::generate().unwrap();
        let kem = ServerKemSecret::generate();
        let mut b = body(&device, 3);
        b.server_key = kem.public().0;
        b.policy.grants = vec![
            crate::policy::Grant::parse_spec("bob@example.com:view,edit").unwrap(),
            crate::policy::Grant::parse_spec("carol@example.com:view").unwrap(),
        ];
        let pl = PublishingLicence::sign(&b, &device).unwrap();
        // The signed bytes name no recipient.
        for who in [b"bob@example.com".as_slice(), b"carol@example.com"] {
            assert!(!pl.body.windows(who.len()).any(|w| w == who));
        }
        let read = pl.verify().unwrap();
        assert!(read.grants_sealed() && read.policy.grants.is_empty());
        assert_eq!(read.policy.owner, b.policy.owner);
        assert_eq!(pl.policy_for_server(&kem).unwrap(), b.policy);
        assert_eq!(pl.open_grants_as_owner(&device).unwrap(), b.policy);
        assert!(pl.open_grants_as_owner(&DeviceKeyPair::generate().unwrap()).is_err());
        assert!(pl.policy_for_server(&ServerKemSecret::generate()).is_err());
        // Sealed grants moved from another of the owner's files, re-signed
        // by the owner's device: they do not open for this content.
        let mut other = body(&device, 3);
        other.server_key = kem.public().0;
        other.policy.grants = vec![crate::policy::Grant::parse_spec("eve@example.com:view,share").unwrap()];
        let theirs = PublishingLicence::sign(&other, &device).unwrap();
        let mut moved: SealedBody = postcard::from_bytes(&pl.body).unwrap();
        moved.grants = theirs.sealed_grants().unwrap().unwrap();
        let bytes = postcard::to_stdvec(&moved).unwrap();
        let swapped = PublishingLicence {
            signature: device
                .delegated_signer()
                .unwrap()
                .sign(&[PL_DOMAIN_V3, &bytes].concat()),
            body: bytes,
        };
        assert!(
            swapped.verify().is_ok(),
            "the owner's signature alone does not catch it"
        );
        assert!(swapped.policy_for_server(&kem).is_err());
        assert!(swapped.open_grants_as_owner(&device).is_err());
        // Earlier versions: the grants are in the clear and read as such.
        let mut v2 = b.clone();
        v2.version = 2;
        let v2 = PublishingLicence::sign(&v2, &device).unwrap();
        assert_eq!(v2.policy_for_server(&kem).unwrap(), b.policy);
        assert!(v2.sealed_grants().unwrap().is_none());
    }
}
