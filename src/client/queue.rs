//! Publishing licences waiting to be registered with the server: content
//! protected offline is usable by its owner at once and becomes shareable
//! once `rights sync` (or any later online command) registers it.

use std::path::PathBuf;

use super::{ClientError, Paths};
use crate::policy::{ContentId, PublishingLicence};

/// The on-disk queue (one JSON file per content id).
pub struct RegistrationQueue {
    dir: PathBuf,
}

impl RegistrationQueue {
    /// The queue of the user whose folders are `paths`.
    pub fn new(paths: &Paths) -> Self {
        Self { dir: paths.queue_dir() }
    }

    /// A queue in `dir` (tests).
    #[cfg(test)]
    pub(super) fn at(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The queue folder (the mount's pending log lives there too).
    pub(super) fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    fn path(&self, id: &ContentId) -> PathBuf {
        self.dir.join(format!("{}.json", id.to_hex()))
    }

    /// Adds a licence to register later.
    pub fn push(&self, id: &ContentId, pl: &PublishingLicence) -> Result<(), ClientError> {
        let j = serde_json::to_vec(pl).expect("licences always encode");
        super::write_private_atomic(&self.path(id), &j)?;
        Ok(())
    }

    /// Whether `id` has a queue file.
    pub fn contains(&self, id: &ContentId) -> bool {
        self.path(id).exists()
    }

    /// Everything waiting for registration: the queue (see
    /// [`list`](Self::list)) and what running mounts have not sent yet.
    pub fn waiting(&self) -> Vec<(ContentId, Result<PublishingLicence, std::io::Error>)> {
        let mut out = self.list();
        for (id, pl) in super::pending::live_entries(self) {
            if !out.iter().any(|(i, _)| *i == id) {
                out.push((id, Ok(pl)));
            }
        }
        out.sort_by_key(|(id, _)| *id);
        out
    }

    /// Drops an entry once registered.
    pub fn remove(&self, id: &ContentId) -> Result<(), ClientError> {
        match std::fs::remove_file(self.path(id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Every waiting entry; unreadable entries are skipped (and reported).
    /// Registrations logged by a mount that died are queued first.
    pub fn list(&self) -> Vec<(ContentId, Result<PublishingLicence, std::io::Error>)> {
        super::pending::adopt_orphans(self);
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out: Vec<_> = rd
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let id = ContentId::from_hex(name.strip_suffix(".json")?).ok()?;
                let pl = std::fs::read(e.path()).and_then(|b| {
                    serde_json::from_slice(&b).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
                });
                Some((id, pl))
            })
            .collect();
        out.sort_by_key(|(id, _)| *id);
        out
    }
}
