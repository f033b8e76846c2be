//! Permission answers for `access(2)` and `chdir`.
//!
//! A mount only its user can enter runs without the kernel's
//! `default_permissions`: with it, every create, rename or unlink marks the
//! folder's attributes stale and the next path walk costs the daemon a
//! GETATTR round trip for the folder, only to check bits the source
//! filesystem checks again anyway (the daemon acts as that same user). The
//! kernel then asks the daemon about `access(2)` instead, answered here from
//! the attributes the mount shows: the source's mode bits, with the write
//! bits taken away where the licence only allows viewing. Writes the licence
//! refuses are refused again at open and truncate, whoever asks.

use fuser::FileType;

/// The caller of an `access(2)` request.
#[derive(Clone, Copy, Debug)]
pub struct Caller {
    /// User id of the caller.
    pub uid: u32,
    /// Primary group id of the caller (supplementary groups are not in a
    /// FUSE request, so group bits apply to the primary group only).
    pub gid: u32,
}

/// What the mount shows of an inode, as far as permissions go.
#[derive(Clone, Copy, Debug)]
pub struct Shown {
    /// Kind of the inode.
    pub kind: FileType,
    /// Permission bits shown (write bits already removed for view-only).
    pub perm: u16,
    /// Owner of the source.
    pub uid: u32,
    /// Group of the source.
    pub gid: u32,
    /// The licence allows viewing only: no write, not even for root.
    pub view_only: bool,
}

/// Whether `caller` may do what `mask` (`R_OK | W_OK | X_OK`, or `F_OK`)
/// asks: the usual owner/group/other rule; root reads and writes anything
/// the licence allows and executes what has an execute bit (or is a
/// folder), as the kernel's own check does.
pub fn allows(caller: Caller, shown: &Shown, mask: i32) -> bool {
    let want_w = mask & libc::W_OK != 0;
    if want_w && shown.view_only {
        return false;
    }
    if caller.uid == 0 {
        let want_x = mask & libc::X_OK != 0;
        return !want_x || shown.kind == FileType::Directory || shown.perm & 0o111 != 0;
    }
    let class = if caller.uid == shown.uid {
        (shown.perm >> 6) & 7
    } else if caller.gid == shown.gid {
        (shown.perm >> 3) & 7
    } else {
        shown.perm & 7
    };
    let want = (mask & (libc::R_OK | libc::W_OK | libc::X_OK)) as u16;
    class & want == want
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: Caller = Caller { uid: 1000, gid: 1000 };
    const ROOT: Caller = Caller { uid: 0, gid: 0 };

    fn file(perm: u16, view_only: bool) -> Shown {
        Shown {
            kind: FileType::RegularFile,
            perm,
            uid: 1000,
            gid: 1000,
            view_only,
        }
    }

    #[test]
    fn owner_bits_apply_to_the_owner() {
        let f = file(0o640, false);
        assert!(allows(ME, &f, libc::R_OK | libc::W_OK));
        assert!(!allows(ME, &f, libc::X_OK));
        assert!(allows(ME, &f, libc::F_OK));
        let other = Caller { uid: 1001, gid: 1001 };
        assert!(!allows(other, &f, libc::R_OK));
        let group = Caller { uid: 1001, gid: 1000 };
        assert!(allows(group, &f, libc::R_OK));
        assert!(!allows(group, &f, libc::W_OK));
    }

    #[test]
    fn view_only_refuses_writing_even_to_root() {
        let f = file(0o444, true);
        assert!(allows(ME, &f, libc::R_OK));
        assert!(!allows(ME, &f, libc::W_OK));
        assert!(!allows(ROOT, &f, libc::W_OK));
        assert!(allows(ROOT, &f, libc::R_OK));
    }

    #[test]
    fn root_passes_mode_bits_but_needs_an_execute_bit() {
        let f = file(0o000, false);
        assert!(allows(ROOT, &f, libc::R_OK | libc::W_OK));
        assert!(!allows(ROOT, &f, libc::X_OK));
        assert!(allows(ROOT, &file(0o100, false), libc::X_OK));
        let d = Shown {
            kind: FileType::Directory,
            ..file(0o000, false)
        };
        assert!(allows(ROOT, &d, libc::X_OK));
    }
}
