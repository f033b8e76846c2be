//! Owner licences: the content key of a file protected on this device,
//! wrapped to this device's own RSA key and signed by it, kept in the data
//! folder. Earlier versions wrote one per protected file; files now carry
//! the owner's key in their header (the owner slot), and these are only
//! read. Checked with the device's public key before the private unwrap,
//! so a planted file cannot turn the unwrap into an oracle.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::AccessError;
use crate::crypto::{ContentKey, DeviceKeyPair};
use crate::policy::ContentId;

const DOMAIN: &[u8] = b"rightsfs owner licence v1\0";

/// An owner licence as stored (JSON, base64 bytes).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OwnerLicence {
    /// The content.
    pub content_id: ContentId,
    /// The content key, RSA-OAEP-SHA256 to this device.
    pub wrapped_key: String,
    /// RSA-PSS by this device over domain || id || wrapped key.
    pub signature: String,
}

fn signed_bytes(id: &ContentId, wrapped: &[u8]) -> Vec<u8> {
    [DOMAIN, &id.0, wrapped].concat()
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

pub(super) struct OwnerStore {
    dir: PathBuf,
}

impl OwnerStore {
    pub(super) fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn path(&self, id: &ContentId) -> PathBuf {
        self.dir.join(format!("{}.json", id.to_hex()))
    }

    pub(super) fn contains(&self, id: &ContentId) -> bool {
        self.path(id).exists()
    }

    pub(super) fn load(&self, id: &ContentId, device: &DeviceKeyPair) -> Result<Option<ContentKey>, AccessError> {
        use base64::Engine;
        let bytes = match std::fs::read(self.path(id)) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let bad = || AccessError::BadLicence("the owner licence on this device is damaged".into());
        let ol: OwnerLicence = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        let wrapped = b64().decode(&ol.wrapped_key).map_err(|_| bad())?;
        let sig = b64().decode(&ol.signature).map_err(|_| bad())?;
        if &ol.content_id != id {
            return Err(bad());
        }
        device
            .public()
            .verify(&signed_bytes(id, &wrapped), &sig)
            .map_err(|_| bad())?;
        device.unwrap_key(&wrapped).map(Some).map_err(|_| bad())
    }

    pub(super) fn ids(&self) -> Vec<ContentId> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        rd.flatten()
            .filter_map(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                ContentId::from_hex(n.strip_suffix(".json")?).ok()
            })
            .collect()
    }
}
