//! How names in the source folder appear in the mount: `NAME.rights`
//! (a protected file) shows as `NAME`; everything else shows as itself.
//! Kept apart so that the one rule is written once.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use crate::format::SUFFIX;

/// The folder at the top of the source that holds the mount's own state
/// (the write journal). Never shown in the mount.
pub const STATE_DIR: &str = ".rightsfs";

/// The per-folder default-policy file (see [`super::DefaultPolicy`]).
pub const POLICY_FILE: &str = ".rights-policy";

/// `NAME.rights` for `NAME`.
pub fn protected(name: &OsStr) -> OsString {
    let mut s = OsString::with_capacity(name.len() + SUFFIX.len());
    s.push(name);
    s.push(SUFFIX);
    s
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
    fn suffix_round_trips() {
        let n = OsStr::new("report.odt");
        assert_eq!(strip(&protected(n)), Some(n));
        assert_eq!(strip(OsStr::new(".rights")), None);
        assert_eq!(strip(OsStr::new("plain.txt")), None);
        assert!(has_suffix(OsStr::new("a.rights")));
        assert!(is_hidden_at_root(OsStr::new(STATE_DIR)));
    }
}
