//! Content ids someone else registered first. The server registers a
//! content id once, for the owner whose device signed its publishing
//! licence; when this user's own registration is answered "already
//! registered with a different licence", another account took the id
//! first (it saw the file before its registration arrived). That is an
//! alarm, not a success: the id is recorded here for `rights status` and
//! `rights info` to show, and the file is not treated as registered.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{ClientError, Paths};
use crate::policy::{ContentId, Timestamp, format_time, now};

/// One claim.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claim {
    /// The content id someone else registered.
    pub content_id: ContentId,
    /// When this device found out.
    pub noticed_at: Timestamp,
    /// What the server said.
    pub server_said: String,
}

impl Claim {
    /// The alarm in words, for logs and messages.
    pub fn alarm(&self) -> String {
        format!(
            "ALARM: someone else registered content {} with the server before you did ({}); \
             the file is NOT registered as yours and nobody can be given access to it; \
             protect the original again to make a new file",
            self.content_id, self.server_said
        )
    }

    /// When it was noticed, for people.
    pub fn noticed(&self) -> String {
        format_time(self.noticed_at)
    }
}

/// The claims of one user (one JSON file per content id).
pub struct Claims {
    dir: PathBuf,
}

impl Claims {
    /// The claims of the user whose folders are `paths`.
    pub fn new(paths: &Paths) -> Self {
        Self {
            dir: paths.data_dir.join("claimed"),
        }
    }

    fn path(&self, id: &ContentId) -> PathBuf {
        self.dir.join(format!("{}.json", id.to_hex()))
    }

    /// Records that someone else holds `id`; returns the claim.
    pub fn record(&self, id: &ContentId, server_said: &str) -> Result<Claim, ClientError> {
        let claim = Claim {
            content_id: *id,
            noticed_at: now(),
            server_said: server_said.to_string(),
        };
        crate::durable::ensure_private_dir(&self.dir)?;
        let j = serde_json::to_vec(&claim).expect("claims always encode");
        super::write_private_atomic(&self.path(id), &j)?;
        Ok(claim)
    }

    /// The claim on `id`, if any.
    pub fn get(&self, id: &ContentId) -> Option<Claim> {
        let bytes = std::fs::read(self.path(id)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Every claim, by content id.
    pub fn list(&self) -> Vec<Claim> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out: Vec<Claim> = rd
            .flatten()
            .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
            .collect();
        out.sort_by_key(|c| c.content_id);
        out
    }
}
