//! The files this device protected or opened: content id to file name,
//! path and owner. The server knows content only by id; this index lets
//! commands take a file's name or id where a path is meant, and lets
//! `rights list` show names. It is a private file (0600) holding no key,
//! rewritten whole under a lock, so a mount and a command cannot lose each
//! other's entries.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{ClientError, Paths};
use crate::policy::{ContentId, Email, Timestamp, now};

/// Entries kept at most: the least recently seen go first.
const MAX_ENTRIES: usize = 100_000;

/// One file this device knows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// The content (hex id).
    pub content_id: String,
    /// The file's name (`NAME.rights`).
    pub name: String,
    /// Where it was last seen (absolute).
    pub path: PathBuf,
    /// The owner its header names.
    pub owner: String,
    /// Whether it was protected on this device.
    pub protected_here: bool,
    /// When a command last saw it here.
    pub seen_at: Timestamp,
}

/// The index of one user.
pub struct Index {
    file: PathBuf,
}

impl Index {
    /// The index of the user whose folders are `paths`.
    pub fn new(paths: &Paths) -> Self {
        Self {
            file: paths.data_dir.join("index.json"),
        }
    }

    fn load(&self) -> BTreeMap<String, IndexEntry> {
        // An unreadable index is rebuilt as commands see files again.
        std::fs::read(&self.file)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Remembers that `path` holds content `id` owned by `owner`.
    pub fn note(&self, id: &ContentId, path: &Path, owner: &Email, protected_here: bool) -> Result<(), ClientError> {
        let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dir = self.file.parent().unwrap_or(Path::new("."));
        super::ensure_private_dir(dir)?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("index.lock"))?;
        super::pending::lock(&lock, true)?;
        let mut all = self.load();
        let key = id.to_hex();
        let protected_here = protected_here || all.get(&key).is_some_and(|e| e.protected_here);
        all.insert(
            key.clone(),
            IndexEntry {
                content_id: key,
                name,
                path,
                owner: owner.to_string(),
                protected_here,
                seen_at: now(),
            },
        );
        if all.len() > MAX_ENTRIES {
            let mut by_age: Vec<(Timestamp, String)> =
                all.values().map(|e| (e.seen_at, e.content_id.clone())).collect();
            by_age.sort();
            for (_, k) in by_age.into_iter().take(all.len() - MAX_ENTRIES) {
                all.remove(&k);
            }
        }
        let bytes = serde_json::to_vec(&all).expect("the index always encodes");
        super::write_private_atomic(&self.file, &bytes)?;
        Ok(())
    }

    /// The entry for `id`.
    pub fn get(&self, id: &ContentId) -> Option<IndexEntry> {
        self.load().remove(&id.to_hex())
    }

    /// The entries whose file is called `name` (`NAME.rights`, or `NAME`
    /// for it).
    pub fn named(&self, name: &str) -> Vec<IndexEntry> {
        let with_suffix = format!("{name}{}", crate::format::SUFFIX);
        self.load()
            .into_values()
            .filter(|e| e.name == name || e.name == with_suffix)
            .collect()
    }

    /// Every entry.
    pub fn all(&self) -> Vec<IndexEntry> {
        self.load().into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_found_by_id_and_by_name_with_or_without_the_suffix() {
        let d = tempfile::tempdir().unwrap();
        let paths = Paths {
            config_dir: d.path().join("c"),
            data_dir: d.path().join("d"),
            cache_dir: d.path().join("k"),
        };
        let idx = Index::new(&paths);
        let id = ContentId::generate();
        let owner: Email = "a@example.com".parse().unwrap();
        let f = d.path().join("q3.odt.rights");
        std::fs::write(&f, b"x").unwrap();
        idx.note(&id, &f, &owner, true).unwrap();
        idx.note(&id, &f, &owner, false).unwrap();
        let e = idx.get(&id).unwrap();
        assert!(e.protected_here, "once protected here, always");
        assert_eq!(e.name, "q3.odt.rights");
        assert_eq!(idx.named("q3.odt").len(), 1);
        assert_eq!(idx.named("q3.odt.rights").len(), 1);
        assert!(idx.named("q3").is_empty());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(paths.data_dir.join("index.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
