//! Mode and owner of entries created through the mount.
//!
//! The kernel hands the daemon the mode the caller asked for, already
//! masked by the caller's umask; the daemon creates the source entry with
//! its own system calls, which apply the daemon's umask a second time (and
//! a protected file is created readable and writable by its owner, so that
//! the daemon can write its header). Each new entry is therefore given the
//! exact mode asked for afterwards, when it differs from what the kernel
//! made. With `--allow-other` a daemon running as root would otherwise own
//! every file another user creates: it hands the entry to the caller, as a
//! local filesystem would.

use std::fs::File;
use std::path::Path;

use rustix::fs::{AtFlags, CWD, Gid, Mode, Uid};

use super::perm::Caller;

/// Who creates an entry, and with which permission bits.
#[derive(Clone, Copy, Debug)]
pub struct Creation {
    /// The calling process's user and primary group.
    pub caller: Caller,
    /// Permission bits (`0o7777`), the caller's umask already applied.
    pub mode: u32,
}

impl Creation {
    /// From a request's `mode` and `umask`.
    pub fn new(caller: Caller, mode: u32, umask: u32) -> Self {
        Self {
            caller,
            mode: mode & !umask & 0o7777,
        }
    }
}

/// The daemon's own creation context, read once at mount.
#[derive(Clone, Copy, Debug)]
pub struct Maker {
    /// The daemon's umask (applied by every `open`/`mkdir`/`mknod` it makes).
    umask: u32,
    /// The daemon may give entries away (it runs as root).
    root: bool,
}

impl Maker {
    /// The running process's umask (from `/proc`, which reads it without
    /// changing it: `umask(2)` would, for every thread at once) and rights.
    pub fn current() -> Self {
        let umask = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Umask:"))
                    .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
            })
            .unwrap_or(0o022);
        let root = rustix::process::geteuid().is_root();
        Self { umask, root }
    }

    /// The mode the daemon's own `open(O_CREAT, made)` or `mkdir` left.
    fn made(&self, requested: u32) -> u32 {
        requested & !self.umask & 0o7777
    }

    /// Settles a regular file just created at `path`, open as `file`,
    /// with mode `created` (what the daemon asked `open` for).
    pub fn settle_file(&self, file: &File, path: &Path, c: &Creation, created: u32) -> std::io::Result<()> {
        let chowned = self.give_away(c, path, |uid, gid| rustix::fs::fchown(file, uid, gid))?;
        if chowned || self.made(created) != c.mode {
            rustix::fs::fchmod(file, Mode::from_raw_mode(c.mode))?;
        }
        Ok(())
    }

    /// Settles a folder, FIFO, socket or device node just made at `path`
    /// with mode `c.mode`. A folder keeps the set-group-id bit it inherited.
    pub fn settle_path(&self, path: &Path, c: &Creation, dir: bool) -> std::io::Result<()> {
        let chowned = self.give_away(c, path, |uid, gid| lchown(path, uid, gid))?;
        if !chowned && self.made(c.mode) == c.mode {
            return Ok(());
        }
        let inherited = if dir {
            use std::os::unix::fs::MetadataExt;
            std::fs::symlink_metadata(path)?.mode() & libc::S_ISGID
        } else {
            0
        };
        Ok(rustix::fs::chmod(path, Mode::from_raw_mode(c.mode | inherited))?)
    }

    /// Hands a symbolic link just made at `path` to the caller.
    pub fn settle_link(&self, path: &Path, c: &Creation) -> std::io::Result<()> {
        self.give_away(c, path, |uid, gid| lchown(path, uid, gid)).map(|_| ())
    }

    /// Changes the owner to the caller when the daemon runs as root and
    /// the caller is someone else; true when it did. The group stays what
    /// the kernel chose when the folder passes its own group on (set-gid).
    fn give_away(
        &self,
        c: &Creation,
        at: &Path,
        chown: impl FnOnce(Option<Uid>, Option<Gid>) -> rustix::io::Result<()>,
    ) -> std::io::Result<bool> {
        if !self.root || (c.caller.uid == 0 && c.caller.gid == 0) {
            return Ok(false);
        }
        use std::os::unix::fs::MetadataExt;
        let folder = at.parent().map(std::fs::metadata).transpose()?;
        let gid = match folder {
            Some(md) if md.mode() & libc::S_ISGID != 0 => None,
            _ => Some(Gid::from_raw(c.caller.gid)),
        };
        chown(Some(Uid::from_raw(c.caller.uid)), gid)?;
        Ok(true)
    }
}

/// `lchown(2)`: changes the owner of the entry at `path` itself, not
/// following a final link.
fn lchown(path: &Path, uid: Option<Uid>, gid: Option<Gid>) -> rustix::io::Result<()> {
    rustix::fs::chownat(CWD, path, uid, gid, AtFlags::SYMLINK_NOFOLLOW)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_callers_umask_applies_once() {
        let c = Creation::new(Caller { uid: 1, gid: 1 }, 0o100777, 0o022);
        assert_eq!(c.mode, 0o755);
        let c = Creation::new(Caller { uid: 1, gid: 1 }, 0o4751, 0);
        assert_eq!(c.mode, 0o4751);
        let m = Maker {
            umask: 0o022,
            root: false,
        };
        assert_eq!(m.made(0o777), 0o755);
    }
}
