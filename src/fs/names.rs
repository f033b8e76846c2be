//! How names in the source folder appear in the mount: `NAME.rights`
//! (a protected file) shows as `NAME`; everything else shows as itself.
//! Kept apart so that the one rule is written once.
//!
//! A name too long for the suffix to fit in a folder entry (249 to 255
//! bytes) is stored as `.rights-long-HASH.rights`, HASH the SHA-256 of the
//! name, with the name itself in `.rights-long-HASH.name` beside it. Names
//! are not secret (they are in the clear for short names too): the side
//! file only has to say the name, and its hash makes a torn or foreign
//! one detectable. It is written and synced before the file takes the long
//! name and removed after the name is gone, so a crash can leave an unused
//! side file (hidden, harmless) but never a file without its name.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::format::SUFFIX;

/// The folder at the top of the source that holds the mount's own state
/// (the write journal). Never shown in the mount.
pub const STATE_DIR: &str = ".rightsfs";

/// The per-folder default-policy file (see [`super::DefaultPolicy`]).
pub const POLICY_FILE: &str = ".rights-policy";

/// The longest name of a folder entry, in bytes (that of the source
/// filesystems the mount runs on).
pub const NAME_MAX: usize = 255;

/// `ENAMETOOLONG` for a name no entry may have, before any path is built
/// from it (the kernel passes FUSE names of up to 1,024 bytes).
pub fn check_len(name: &OsStr) -> Result<(), fuser::Errno> {
    if name.len() > NAME_MAX {
        Err(fuser::Errno::ENAMETOOLONG)
    } else {
        Ok(())
    }
}

/// What long names are stored under (see the module's documentation).
/// Shown names starting with it are reserved: not listed, not creatable.
const LONG_PREFIX: &str = ".rights-long-";

/// The end of a long name's side file.
const SIDE_SUFFIX: &str = ".name";

/// `NAME.rights` for `NAME`, or its hashed form when that would not fit.
pub fn protected(name: &OsStr) -> OsString {
    if name.len() + SUFFIX.len() > NAME_MAX {
        let mut s = long_stem(name);
        s.push(SUFFIX);
        return s;
    }
    let mut s = OsString::with_capacity(name.len() + SUFFIX.len());
    s.push(name);
    s.push(SUFFIX);
    s
}

/// `.rights-long-HASH` for a long `name`.
fn long_stem(name: &OsStr) -> OsString {
    let hash = hex::encode(crate::crypto::sha256(name.as_bytes()));
    OsString::from(format!("{LONG_PREFIX}{hash}"))
}

/// Whether a shown name is reserved for the long-name scheme.
pub fn is_reserved(name: &OsStr) -> bool {
    name.as_bytes().starts_with(LONG_PREFIX.as_bytes())
}

/// The side file of a backing name, if it is a long one.
pub fn side_file(backing: &OsStr) -> Option<OsString> {
    let b = backing.as_bytes();
    let hash_len = b.len().checked_sub(LONG_PREFIX.len() + SUFFIX.len())?;
    if hash_len != 64 || !is_reserved(backing) || !b.ends_with(SUFFIX.as_bytes()) {
        return None;
    }
    let mut s = OsString::from(OsStr::from_bytes(&b[..b.len() - SUFFIX.len()]));
    s.push(SIDE_SUFFIX);
    Some(s)
}

/// Whether a source file is a long name's side file: kept by the mount
/// beside the protected file, never protected or reported as plain itself.
pub fn is_side_file(name: &OsStr) -> bool {
    is_reserved(name) && name.as_bytes().ends_with(SIDE_SUFFIX.as_bytes())
}

/// The shown name of the long backing name `backing` in folder `dir`,
/// from its side file; `None` when that is missing or names another file.
pub fn read_long(dir: &Path, backing: &OsStr) -> Option<OsString> {
    let side = side_file(backing)?;
    let name = OsString::from(OsStr::from_bytes(&std::fs::read(dir.join(side)).ok()?));
    (protected(&name) == backing).then_some(name)
}

/// Before a protected file takes the name `name` in `dir`: writes and
/// syncs the side file when the name is a long one.
pub fn prepare(dir: &Path, name: &OsStr) -> std::io::Result<()> {
    let Some(side) = side_file(&protected(name)) else {
        return Ok(());
    };
    let mut f = std::fs::File::create(dir.join(side))?;
    f.write_all(name.as_bytes())?;
    f.sync_data()
}

/// After a protected file's backing name `backing` in `dir` is gone:
/// removes its side file, if it had one.
pub fn forget(dir: &Path, backing: &OsStr) {
    if let Some(side) = side_file(backing)
        && let Err(e) = std::fs::remove_file(dir.join(&side))
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(folder = %dir.display(), file = %side.to_string_lossy(), error = %e, "could not remove a long name's side file");
    }
}

/// `NAME` for a backing `NAME.rights`, or `None` when the name does not
/// carry the suffix (or is nothing but the suffix).
pub fn strip(name: &OsStr) -> Option<&OsStr> {
    let b = name.as_bytes();
    let s = SUFFIX.as_bytes();
    (b.len() > s.len() && b.ends_with(s)).then(|| OsStr::from_bytes(&b[..b.len() - s.len()]))
}

/// Whether a name ends with the protection suffix.
pub fn has_suffix(name: &OsStr) -> bool {
    strip(name).is_some()
}

/// Whether `name` in the top folder is the mount's private state.
pub fn is_hidden_at_root(name: &OsStr) -> bool {
    name == STATE_DIR
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_get_a_hashed_backing_name_and_a_side_file() {
        let dir = tempfile::tempdir().unwrap();
        let short = OsString::from("s".repeat(NAME_MAX - SUFFIX.len()));
        assert_eq!(strip(&protected(&short)), Some(short.as_os_str()));
        assert_eq!(side_file(&protected(&short)), None);
        let long = OsString::from("l".repeat(NAME_MAX));
        let backing = protected(&long);
        assert!(backing.len() < NAME_MAX && is_reserved(&backing));
        assert_eq!(read_long(dir.path(), &backing), None, "no side file yet");
        prepare(dir.path(), &long).unwrap();
        assert!(is_side_file(&side_file(&backing).unwrap()) && !is_side_file(&backing));
        assert_eq!(read_long(dir.path(), &backing), Some(long.clone()));
        // A side file naming another file does not count.
        let other = OsString::from("o".repeat(NAME_MAX));
        std::fs::write(dir.path().join(side_file(&backing).unwrap()), other.as_bytes()).unwrap();
        assert_eq!(read_long(dir.path(), &backing), None);
        forget(dir.path(), &backing);
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
        assert!(check_len(&long).is_ok());
        assert_eq!(check_len(OsStr::new(&"x".repeat(256))), Err(fuser::Errno::ENAMETOOLONG));
    }

    #[test]
    fn suffix_round_trips() {
        let n = OsStr::new("report.odt");
        assert_eq!(strip(&protected(n)), Some(n));
        assert_eq!(strip(OsStr::new(".rights")), None);
        assert_eq!(strip(OsStr::new("plain.txt")), None);
        assert!(has_suffix(OsStr::new("a.rights")));
        assert!(is_hidden_at_root(OsStr::new(STATE_DIR)));
    }
}
