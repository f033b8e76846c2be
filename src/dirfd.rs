//! Files in a folder that others may write to (a synced or shared source
//! folder), reached through a held folder descriptor, one name at a time,
//! never through a symbolic link: a link planted under a housekeeping name
//! makes the call fail instead of sending a write somewhere else.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, CWD, Mode, OFlags};

/// An open folder; every name given to its methods is one component.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
}

/// `name`, if it is one file name (a NUL in it is refused by the call).
fn one(name: &str) -> io::Result<&str> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a single file name"));
    }
    Ok(name)
}

/// A folder, opened without following a link in its last component.
fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

impl Dir {
    /// Opens the folder at `path`; its last component must not be a link.
    pub fn open(path: &Path) -> io::Result<Self> {
        Ok(Self {
            fd: rustix::fs::open(path, dir_flags(), Mode::empty())?,
        })
    }

    /// Creates `path` (and parents) readable by the user only, then opens it.
    pub fn create_private(path: &Path) -> io::Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(path)?;
        Self::open(path)
    }

    /// The folder `name` inside this one, made (mode 0700) if missing;
    /// a link in its place is refused (`ELOOP` or `ENOTDIR`).
    pub fn private_subdir(&self, name: &str) -> io::Result<Self> {
        let n = one(name)?;
        match rustix::fs::mkdirat(&self.fd, n, Mode::from_raw_mode(0o700)) {
            Err(e) if e != rustix::io::Errno::EXIST => return Err(e.into()),
            _ => {}
        }
        Ok(Self {
            fd: rustix::fs::openat(&self.fd, n, dir_flags(), Mode::empty())?,
        })
    }

    /// Opens `name` with `flags` (`O_NOFOLLOW` and `O_CLOEXEC` are added).
    pub fn open_file(&self, name: &str, flags: libc::c_int, mode: libc::mode_t) -> io::Result<File> {
        let flags = OFlags::from_bits_retain(flags as u32) | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.fd, one(name)?, flags, Mode::from_raw_mode(mode))?;
        Ok(File::from(fd))
    }

    /// A new file with no name in this folder (`O_TMPFILE`, mode 0600),
    /// open for reading and writing: no other process can open it, and it
    /// is gone with its last descriptor.
    pub fn unnamed_file(&self) -> io::Result<File> {
        let flags = OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.fd, ".", flags, Mode::from_raw_mode(0o600))?;
        Ok(File::from(fd))
    }

    /// A new, empty file `name` (mode 0600) open for writing: whatever was
    /// there (a stale file, a planted link) is removed first, and the create
    /// is exclusive, so nothing is ever written through an existing entry.
    pub fn create_new(&self, name: &str, extra: libc::c_int) -> io::Result<File> {
        self.remove(name)?;
        self.open_file(name, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | extra, 0o600)
    }

    /// The bytes of the regular file `name`, `None` if there is none. A
    /// link or anything else in its place is an error.
    pub fn read(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        let mut f = match self.open_file(name, libc::O_RDONLY | libc::O_NONBLOCK, 0) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if !f.metadata()?.is_file() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "not a regular file"));
        }
        let mut v = Vec::new();
        io::Read::read_to_end(&mut f, &mut v)?;
        Ok(Some(v))
    }

    /// Removes the entry `name` (a link itself, never its target); a
    /// missing entry is fine.
    pub fn remove(&self, name: &str) -> io::Result<()> {
        match rustix::fs::unlinkat(&self.fd, one(name)?, AtFlags::empty()) {
            Err(e) if e != rustix::io::Errno::NOENT => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Renames `from` to `to` inside this folder (replacing `to` itself,
    /// never what a link there points to).
    pub fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        Ok(rustix::fs::renameat(&self.fd, one(from)?, &self.fd, one(to)?)?)
    }

    /// Renames `from` in this folder to the path `to` elsewhere on the same
    /// filesystem (replacing `to` itself, never what a link there points
    /// to): moves a file made here into place in one step.
    pub fn rename_out(&self, from: &str, to: &Path) -> io::Result<()> {
        Ok(rustix::fs::renameat(&self.fd, one(from)?, CWD, to)?)
    }

    /// Gives the file at `from` (not following a link there) the second
    /// name `name` in this folder.
    pub fn link_in(&self, from: &Path, name: &str) -> io::Result<()> {
        Ok(rustix::fs::linkat(CWD, from, &self.fd, one(name)?, AtFlags::empty())?)
    }

    /// Gives the file `name` of this folder the second name `to` (a path
    /// that must not exist).
    pub fn link_out(&self, name: &str, to: &Path) -> io::Result<()> {
        Ok(rustix::fs::linkat(&self.fd, one(name)?, CWD, to, AtFlags::empty())?)
    }

    /// Makes creations, renames and removals in this folder durable.
    pub fn sync(&self) -> io::Result<()> {
        Ok(rustix::fs::fsync(&self.fd)?)
    }

    /// Writes back everything of the filesystem this folder is on.
    pub fn sync_filesystem(&self) -> io::Result<()> {
        Ok(rustix::fs::syncfs(&self.fd)?)
    }

    /// The names in this folder.
    pub fn names(&self) -> io::Result<Vec<OsString>> {
        let rd = std::fs::read_dir(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))?;
        Ok(rd.flatten().map(|e| e.file_name()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_never_followed() {
        let t = tempfile::tempdir().unwrap();
        let outside = t.path().join("outside");
        std::fs::write(&outside, b"keep").unwrap();
        let d = Dir::create_private(&t.path().join("d")).unwrap();
        std::os::unix::fs::symlink(&outside, t.path().join("d/j")).unwrap();
        let e = d.open_file("j", libc::O_WRONLY, 0).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
        assert!(d.read("j").is_err());
        io::Write::write_all(&mut d.create_new("j", 0).unwrap(), b"new").unwrap();
        assert_eq!(std::fs::read(&outside).unwrap(), b"keep");
        assert_eq!(d.read("j").unwrap().unwrap(), b"new");
        assert!(d.open_file("../outside", libc::O_RDONLY, 0).is_err());
        std::os::unix::fs::symlink(t.path(), t.path().join("d/sub")).unwrap();
        assert!(d.private_subdir("sub").is_err());
        std::os::unix::fs::symlink(t.path(), t.path().join("link")).unwrap();
        assert!(Dir::open(&t.path().join("link")).is_err());
    }
}
