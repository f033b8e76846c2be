//! The on-disk cache of server-signed use licences, one JSON file per
//! content id in a folder per device.

use std::path::PathBuf;

use serde::Serialize;

use crate::policy::{ContentId, Rights, Timestamp, UseLicence, UseLicenceBody};

/// What `rights status` and `rights info` show about a cached licence.
#[derive(Clone, Debug, Serialize)]
pub struct CachedLicence {
    /// The content.
    pub content_id: ContentId,
    /// Granted rights.
    pub rights: Rights,
    /// Usable offline until (none for owner licences).
    pub valid_until: Option<Timestamp>,
    /// Whether it is this device's owner licence.
    pub owner: bool,
}

impl CachedLicence {
    pub(super) fn owner(id: ContentId) -> Self {
        Self {
            content_id: id,
            rights: Rights::owner(),
            valid_until: None,
            owner: true,
        }
    }

    pub(super) fn from_body(b: &UseLicenceBody) -> Self {
        Self {
            content_id: b.content_id,
            rights: b.rights,
            valid_until: Some(b.valid_until),
            owner: false,
        }
    }

    /// Whether it can be used now without the server.
    pub fn valid_now(&self) -> bool {
        self.valid_until.is_none_or(|v| crate::policy::now() < v)
    }
}

pub(super) struct LicenceStore {
    dir: PathBuf,
}

impl LicenceStore {
    pub(super) fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn path(&self, id: &ContentId) -> PathBuf {
        self.dir.join(format!("{}.json", id.to_hex()))
    }

    pub(super) fn load(&self, id: &ContentId) -> std::io::Result<Option<UseLicence>> {
        match std::fs::read(self.path(id)) {
            // A damaged cache entry is as good as none: the server re-issues.
            Ok(b) => Ok(serde_json::from_slice(&b).ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(super) fn save(&self, id: &ContentId, ul: &UseLicence) -> std::io::Result<()> {
        let j = serde_json::to_vec(ul).expect("licences always encode");
        crate::durable::write_private_atomic(&self.path(id), &j)
    }

    pub(super) fn remove(&self, id: &ContentId) -> std::io::Result<()> {
        match std::fs::remove_file(self.path(id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    pub(super) fn all(&self) -> Vec<(ContentId, UseLicence)> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        rd.flatten()
            .filter_map(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                let id = ContentId::from_hex(n.strip_suffix(".json")?).ok()?;
                Some((id, serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok()?))
            })
            .collect()
    }

    pub(super) fn clear(&self) -> std::io::Result<()> {
        match std::fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}
