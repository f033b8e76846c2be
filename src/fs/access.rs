//! What the mount asks of the licensing layer, and the default policy of
//! files created in the mount.

use std::path::Path;

use crate::format::{FileHeader, Fresh};
use crate::licence::{Access, AccessError};
use crate::policy::{ContentId, Email, Grant, Policy, Rights};

/// Where the mount gets content keys. The `rights` command line implements
/// it over the user's [`crate::licence::Licensing`] and registration queue;
/// tests may implement it with fixed keys.
///
/// Every method is called from a FUSE worker thread, so each must bound its
/// own time (network requests carry a timeout): the kernel waits on it.
pub trait KeySource: Send + Sync + 'static {
    /// The key and rights for an existing file (memory, licence cache, or
    /// the server).
    fn access(&self, header: &FileHeader) -> Result<Access, AccessError>;

    /// The rights a cached licence grants, without the network or any
    /// private-key operation (`None` when nothing is cached), so listings
    /// can show view-only files read-only.
    fn cached_rights(&self, id: &ContentId) -> Option<Rights>;

    /// The first bytes of a file created in the mount (header with a new
    /// content key and signed publishing licence, keys, empty state). Must
    /// not wait for the server: registration is queued.
    fn create(&self, policy: Policy) -> Result<Fresh, AccessError>;

    /// Makes the registrations of content created so far durable. Creating
    /// defers it; the mount calls this before it syncs a protected file, so
    /// a file that outlives a power cut is registered too. (Its key needs no
    /// such care: the owner's copy travels in the file's header.)
    fn sync_new(&self) -> Result<(), AccessError>;

    /// The mounting user: the owner of files created in the mount.
    fn me(&self) -> &Email;
}

/// Grants and offline validity given to files created in the mount: those
/// of the nearest `.rights-policy` file in the source (walking up to its
/// root), else the mount's own defaults.
///
/// `.rights-policy` is TOML:
///
/// ```toml
/// grants = ["bob@example.com:view,edit", "*@example.com:view:30d"]
/// offline_days = 3
/// ```
#[derive(Clone, Debug, Default)]
pub struct DefaultPolicy {
    /// Grants (`EMAIL[:RIGHTS[:EXPIRY]]` already parsed).
    pub grants: Vec<Grant>,
    /// Offline validity of licences.
    pub offline_days: u32,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    grants: Vec<String>,
    offline_days: Option<u32>,
}

impl DefaultPolicy {
    /// The policy for a new file in `dir` (a folder under `root`).
    pub fn for_dir(&self, owner: &Email, root: &Path, dir: &Path) -> Policy {
        let mut base = self.clone();
        let mut cur = Some(dir);
        while let Some(d) = cur {
            let f = d.join(super::names::POLICY_FILE);
            if let Ok(text) = std::fs::read_to_string(&f) {
                match parse_policy_file(&text, self.offline_days) {
                    Ok(p) => {
                        base = p;
                        break;
                    }
                    Err(e) => tracing::warn!(file = %f.display(), error = %e, "ignoring a bad .rights-policy"),
                }
            }
            if d == root {
                break;
            }
            cur = d.parent();
        }
        let mut policy = Policy::owner_only(owner.clone(), base.offline_days);
        for g in base.grants {
            policy.upsert_grant(g);
        }
        policy
    }
}

/// Parses a `.rights-policy` file.
pub fn parse_policy_file(text: &str, default_offline_days: u32) -> Result<DefaultPolicy, String> {
    let f: PolicyFile = toml::from_str(text).map_err(|e| e.to_string())?;
    let grants = f
        .grants
        .iter()
        .map(|s| Grant::parse_spec(s).map_err(|e| format!("{s}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(DefaultPolicy {
        grants,
        offline_days: f.offline_days.unwrap_or(default_offline_days),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_policy_file_wins() {
        let root = tempfile::tempdir().unwrap();
        let sub = root.path().join("a/b");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(
            root.path().join("a").join(super::super::names::POLICY_FILE),
            "grants = [\"bob@example.com:view\"]\noffline_days = 2\n",
        )
        .unwrap();
        let me = Email::parse("alice@example.com").unwrap();
        let d = DefaultPolicy {
            grants: vec![],
            offline_days: 7,
        };
        let p = d.for_dir(&me, root.path(), &sub);
        assert_eq!(p.offline_days, 2);
        assert_eq!(p.grants.len(), 1);
        let top = d.for_dir(&me, root.path(), root.path());
        assert_eq!(top.offline_days, 7);
        assert!(top.grants.is_empty());
    }

    #[test]
    fn bad_policy_files_are_reported() {
        assert!(parse_policy_file("grants = [\"not an email\"]", 1).is_err());
        assert!(parse_policy_file("colour = 1", 1).is_err());
    }
}
