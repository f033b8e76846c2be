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
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

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
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        Self { umask, root }
    }

    /// The mode the daemon's own `open(O_CREAT, made)` or `mkdir` left.
    fn made(&self, requested: u32) -> u32 {
        requested & !self.umask & 0o7777
    }

    /// Settles a regular file just created at `path`, open as `file`,
    /// with mode `created` (what the daemon asked `open` for).
    pub fn settle_file(&self, file: &File, path: &Path, c: &Creation, created: u32) -> std::io::Result<()> {
        let fd = file.as_raw_fd();
        let chowned = self.give_away(c, path, |uid, gid| {
            // SAFETY: plain syscall on a descriptor the caller owns.
            unsafe { libc::fchown(fd, uid, gid) }
        })?;
        if chowned || self.made(created) != c.mode {
            // SAFETY: as above.
            check(unsafe { libc::fchmod(fd, c.mode) })?;
        }
        Ok(())
    }

    /// Settles a folder, FIFO, socket or device node just made at `path`
    /// with mode `c.mode`. A folder keeps the set-group-id bit it inherited.
    pub fn settle_path(&self, path: &Path, c: &Creation, dir: bool) -> std::io::Result<()> {
        let cp = cstring(path)?;
        let chowned = self.give_away(c, path, |uid, gid| {
            // SAFETY: valid C string; does not follow a final link.
            unsafe { libc::lchown(cp.as_ptr(), uid, gid) }
        })?;
        if !chowned && self.made(c.mode) == c.mode {
            return Ok(());
        }
        let inherited = if dir {
            use std::os::unix::fs::MetadataExt;
            std::fs::symlink_metadata(path)?.mode() & libc::S_ISGID
        } else {
            0
        };
        // SAFETY: valid C string.
        check(unsafe { libc::chmod(cp.as_ptr(), c.mode | inherited) })
    }

    /// Hands a symbolic link just made at `path` to the caller.
    pub fn settle_link(&self, path: &Path, c: &Creation) -> std::io::Result<()> {
        let cp = cstring(path)?;
        self.give_away(c, path, |uid, gid| {
            // SAFETY: valid C string; does not follow the link.
            unsafe { libc::lchown(cp.as_ptr(), uid, gid) }
        })
        .map(|_| ())
    }

    /// Changes the owner to the caller when the daemon runs as root and
    /// the caller is someone else; true when it did. The group stays what
    /// the kernel chose when the folder passes its own group on (set-gid).
    fn give_away(&self, c: &Creation, at: &Path, chown: impl FnOnce(u32, u32) -> i32) -> std::io::Result<bool> {
        if !self.root || (c.caller.uid == 0 && c.caller.gid == 0) {
            return Ok(false);
        }
        use std::os::unix::fs::MetadataExt;
        let folder = at.parent().map(std::fs::metadata).transpose()?;
        let gid = match folder {
            Some(md) if md.mode() & libc::S_ISGID != 0 => u32::MAX,
            _ => c.caller.gid,
        };
        check(chown(c.caller.uid, gid))?;
        Ok(true)
    }
}

fn cstring(p: &Path) -> std::io::Result<std::ffi::CString> {
    std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))
}

fn check(r: i32) -> std::io::Result<()> {
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
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
