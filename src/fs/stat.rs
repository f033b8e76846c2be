//! A source entry's status, as `stat(2)` gives it, read either from the
//! standard library's metadata or straight from a folder descriptor.
//!
//! Why not `std::fs::Metadata` alone: the standard library can only
//! `stat` a path, and a path below the source is reached through
//! `/proc/self/fd/N/NAME` (`beneath.rs`), which the kernel resolves
//! through procfs on every call. A lookup or a listing's entry instead
//! asks `fstatat` on the folder's descriptor: in a warm listing of 1,000
//! files the procfs walk was a third of the daemon's time.

use std::ffi::OsStr;
use std::fs::Metadata;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

use rustix::fs::{AtFlags, FileType};

/// What the mount uses of a source entry's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    dev: u64,
    ino: u64,
    mode: u32,
    nlink: u64,
    uid: u32,
    gid: u32,
    rdev: u64,
    size: u64,
    blocks: u64,
    atime: (i64, i64),
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stat {
    /// The entry `name` of the folder `dir`, not following a link there.
    pub fn at(dir: impl AsFd, name: &OsStr) -> std::io::Result<Self> {
        Ok(rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?.into())
    }

    pub fn dev(&self) -> u64 {
        self.dev
    }
    pub fn ino(&self) -> u64 {
        self.ino
    }
    pub fn mode(&self) -> u32 {
        self.mode
    }
    pub fn nlink(&self) -> u64 {
        self.nlink
    }
    pub fn uid(&self) -> u32 {
        self.uid
    }
    pub fn gid(&self) -> u32 {
        self.gid
    }
    pub fn rdev(&self) -> u64 {
        self.rdev
    }
    /// Size in bytes (`st_size`).
    pub fn len(&self) -> u64 {
        self.size
    }
    pub fn blocks(&self) -> u64 {
        self.blocks
    }
    pub fn atime(&self) -> (i64, i64) {
        self.atime
    }
    pub fn mtime(&self) -> (i64, i64) {
        self.mtime
    }
    pub fn ctime(&self) -> (i64, i64) {
        self.ctime
    }

    fn file_type(&self) -> FileType {
        FileType::from_raw_mode(self.mode)
    }
    pub fn is_file(&self) -> bool {
        self.file_type() == FileType::RegularFile
    }
    pub fn is_dir(&self) -> bool {
        self.file_type() == FileType::Directory
    }
    pub fn is_symlink(&self) -> bool {
        self.file_type() == FileType::Symlink
    }

    /// The kind FUSE reports for a special file (FIFO, socket, device).
    pub fn fuse_kind(&self) -> fuser::FileType {
        match self.file_type() {
            FileType::Directory => fuser::FileType::Directory,
            FileType::Symlink => fuser::FileType::Symlink,
            FileType::Fifo => fuser::FileType::NamedPipe,
            FileType::Socket => fuser::FileType::Socket,
            FileType::CharacterDevice => fuser::FileType::CharDevice,
            FileType::BlockDevice => fuser::FileType::BlockDevice,
            _ => fuser::FileType::RegularFile,
        }
    }
}

impl From<&Metadata> for Stat {
    fn from(md: &Metadata) -> Self {
        Self {
            dev: md.dev(),
            ino: md.ino(),
            mode: md.mode(),
            nlink: md.nlink(),
            uid: md.uid(),
            gid: md.gid(),
            rdev: md.rdev(),
            size: md.size(),
            blocks: md.blocks(),
            atime: (md.atime(), md.atime_nsec()),
            mtime: (md.mtime(), md.mtime_nsec()),
            ctime: (md.ctime(), md.ctime_nsec()),
        }
    }
}

impl From<rustix::fs::Stat> for Stat {
    fn from(st: rustix::fs::Stat) -> Self {
        // The field types differ between architectures (`as` widens).
        #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
        Self {
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            mode: st.st_mode as u32,
            nlink: st.st_nlink as u64,
            uid: st.st_uid as u32,
            gid: st.st_gid as u32,
            rdev: st.st_rdev as u64,
            size: st.st_size as u64,
            blocks: st.st_blocks as u64,
            atime: (st.st_atime as i64, st.st_atime_nsec as i64),
            mtime: (st.st_mtime as i64, st.st_mtime_nsec as i64),
            ctime: (st.st_ctime as i64, st.st_ctime_nsec as i64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_descriptors_status_of_an_entry_matches_the_standard_librarys() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"hello").unwrap();
        std::os::unix::fs::symlink("f", dir.path().join("l")).unwrap();
        let fd = std::fs::File::open(dir.path()).unwrap();
        for name in ["f", "l"] {
            let std = Stat::from(&std::fs::symlink_metadata(dir.path().join(name)).unwrap());
            assert_eq!(Stat::at(&fd, OsStr::new(name)).unwrap(), std, "{name}");
        }
        let l = Stat::at(&fd, OsStr::new("l")).unwrap();
        assert!(l.is_symlink() && !l.is_file());
        assert!(Stat::at(&fd, OsStr::new(".")).unwrap().is_dir());
    }
}
