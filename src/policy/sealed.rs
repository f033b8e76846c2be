//! Sealed grants: who a file is shared with, readable only by the server
//! and the owner's device (publishing licence version 3).
//!
//! Every copy of a protected file carries its publishing licence, so a
//! policy in the clear tells anyone holding a copy every recipient's
//! address and rights. The grants are therefore encrypted under a fresh
//! random key, and that key is carried twice: wrapped to the server's
//! X25519 key (as the content key is, under its own context label) and
//! sealed to the owner's device (as the owner slot is). Recipients learn
//! their own rights from their use licences; nobody else learns the list.
//! The owner's signature covers the sealed bytes, and the context binds
//! the content id, the owner and the owner's device, so sealed grants
//! cannot be moved to another file or another owner.

use serde::{Deserialize, Serialize};

use super::{Grant, PolicyError};
use crate::crypto::{
    ContentKey, DeviceKeyPair, ServerKemSecret, WRAPPED_KEY_LEN, WrapToServer, WrappedKey, open_small, seal_small,
};

/// Context label of the grants key wrapped to the server (followed by the
/// licence's key context).
const SERVER_LABEL: &[u8] = b"rightsfs sealed grants v3\0";
/// Associated data label of the grants key sealed to the owner's device.
const OWNER_LABEL: &[u8] = b"rightsfs owner grants v3\0";
/// Associated data label of the encrypted grant list.
const GRANTS_LABEL: &[u8] = b"rightsfs grants v3\0";

/// The grants of a version 3 publishing licence, as signed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedGrants {
    /// The grants key wrapped to the server's X25519 key (80 bytes).
    #[serde(with = "super::b64")]
    pub to_server: Vec<u8>,
    /// The grants key sealed for the owner's device (60 bytes).
    #[serde(with = "super::b64")]
    pub to_owner: Vec<u8>,
    /// `nonce || AES-256-GCM(grants key, postcard(Vec<Grant>)) || tag`.
    #[serde(with = "super::b64")]
    pub sealed: Vec<u8>,
}

fn labelled(label: &[u8], key_context: &[u8]) -> Vec<u8> {
    [label, key_context].concat()
}

impl SealedGrants {
    /// Seals `grants` under a fresh key for the server `server` and the
    /// owner's `device`. `key_context` is the licence's
    /// [`key_context`](super::PublishingLicenceBody::key_context).
    pub fn seal(grants: &[Grant], key_context: &[u8], server: &dyn WrapToServer, device: &DeviceKeyPair) -> Self {
        let key = ContentKey::generate();
        let plain = zeroize::Zeroizing::new(postcard::to_stdvec(grants).expect("grants always encode"));
        Self {
            to_server: server.wrap(&key, &labelled(SERVER_LABEL, key_context)).0.to_vec(),
            to_owner: device.seal_local(&labelled(OWNER_LABEL, key_context), key.as_bytes()),
            sealed: seal_small(key.as_bytes(), &labelled(GRANTS_LABEL, key_context), &plain),
        }
    }

    /// The grants, opened with the server's X25519 secret.
    pub fn open_as_server(&self, server: &ServerKemSecret, key_context: &[u8]) -> Result<Vec<Grant>, PolicyError> {
        let wrapped: [u8; WRAPPED_KEY_LEN] = self
            .to_server
            .as_slice()
            .try_into()
            .map_err(|_| PolicyError::Malformed("sealed grants"))?;
        let key = server
            .unwrap(&WrappedKey(wrapped), &labelled(SERVER_LABEL, key_context))
            .map_err(|_| PolicyError::Malformed("sealed grants"))?;
        self.open_with(key.as_bytes(), key_context)
    }

    /// The grants, opened by the owner's device that sealed them.
    pub fn open_as_owner(&self, device: &DeviceKeyPair, key_context: &[u8]) -> Result<Vec<Grant>, PolicyError> {
        let key = device
            .open_local(&labelled(OWNER_LABEL, key_context), &self.to_owner)
            .map_err(|_| PolicyError::Malformed("sealed grants"))?;
        // Copied straight into wiped memory: a plain array on the stack
        // would leave the key behind when it moved.
        let mut grants_key = zeroize::Zeroizing::new([0u8; 32]);
        if key.len() != grants_key.len() {
            return Err(PolicyError::Malformed("sealed grants"));
        }
        grants_key.copy_from_slice(&key);
        self.open_with(&grants_key, key_context)
    }

    fn open_with(&self, key: &[u8; 32], key_context: &[u8]) -> Result<Vec<Grant>, PolicyError> {
        let plain = zeroize::Zeroizing::new(
            open_small(key, &labelled(GRANTS_LABEL, key_context), &self.sealed)
                .map_err(|_| PolicyError::Malformed("sealed grants"))?,
        );
        postcard::from_bytes(&plain).map_err(|_| PolicyError::Malformed("sealed grants"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_server_and_the_owners_device_open_them_in_their_context() {
        let server = ServerKemSecret::generate();
        let device = DeviceKeyPair::generate().unwrap();
        let grants = vec![
            Grant::parse_spec("bob@example.com:view,edit").unwrap(),
            Grant::parse_spec("carol@example.com").unwrap(),
        ];
        let s = SealedGrants::seal(&grants, b"context-1", &server.public(), &device);
        assert_eq!(s.to_server.len(), WRAPPED_KEY_LEN);
        assert_eq!(s.open_as_server(&server, b"context-1").unwrap(), grants);
        assert_eq!(s.open_as_owner(&device, b"context-1").unwrap(), grants);
        // Not in the clear, in any of its parts.
        let all = [s.to_server.as_slice(), &s.to_owner, &s.sealed].concat();
        assert!(!all.windows(3).any(|w| w == b"bob"));
        // Another file's context, another server, another device.
        assert!(s.open_as_server(&server, b"context-2").is_err());
        assert!(s.open_as_owner(&device, b"context-2").is_err());
        assert!(s.open_as_server(&ServerKemSecret::generate(), b"context-1").is_err());
        assert!(
            s.open_as_owner(&DeviceKeyPair::generate().unwrap(), b"context-1")
                .is_err()
        );
        // A changed byte, or the list of another sealing.
        let mut bad = s.clone();
        *bad.sealed.last_mut().unwrap() ^= 1;
        assert!(bad.open_as_server(&server, b"context-1").is_err());
        let other = SealedGrants::seal(&grants, b"context-1", &server.public(), &device);
        let mut mixed = s.clone();
        mixed.sealed = other.sealed;
        assert!(mixed.open_as_server(&server, b"context-1").is_err());
    }
}
