//! Attributes as the mount shows them: protected files report their
//! plaintext size and lose write bits when the licence allows viewing
//! only; `access(2)` is answered from the same shape.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{Errno, FileAttr, FileType, INodeNo};

use super::inodes::Kind;
use super::perm::{self, Caller, Shown};
use super::stat::Stat;
use super::state::{RightsFs, io};
use crate::policy::Right;

impl RightsFs {
    /// Attributes of a known inode.
    pub(super) fn getattr(&self, ino: u64) -> Result<FileAttr, Errno> {
        let (kind, md) = self.source_metadata(ino)?;
        self.attr_from(ino, kind, &md)
    }

    /// A known inode's kind and source metadata (from the open view's
    /// descriptor when there is one, so unlinked open files still answer).
    pub(super) fn source_metadata(&self, ino: u64) -> Result<(Kind, Stat), Errno> {
        let (kind, open, path) = {
            let t = self.table();
            let node = t.get(ino).ok_or(Errno::ENOENT)?;
            (node.kind, node.open().cloned(), t.path(ino))
        };
        let md = match (&open, path) {
            (Some(of), _) => Stat::from(&of.read().file().metadata().map_err(io)?),
            (None, Ok(p)) => self.reach(p)?.stat().map_err(io)?,
            (None, Err(e)) => return Err(e),
        };
        Ok((kind, md))
    }

    /// Attributes from source metadata: protected files report their
    /// plaintext size (from the open view, or from the header's geometry,
    /// with no key) and lose write bits when the user may only view.
    pub(super) fn attr_from(&self, ino: u64, kind: Kind, md: &Stat) -> Result<FileAttr, Errno> {
        Ok(self.shape(ino, kind, md).0)
    }

    /// Attributes, and whether the licence allows viewing only.
    pub(super) fn shape(&self, ino: u64, kind: Kind, md: &Stat) -> (FileAttr, bool) {
        let (size, view_only) = match kind {
            Kind::Protected => self.protected_shape(ino, md),
            _ => (md.len(), false),
        };
        let mut perm = (md.mode() & 0o7777) as u16;
        if view_only {
            perm &= !0o222;
        }
        let attr = FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: md.blocks(),
            atime: time_of(md.atime()),
            mtime: time_of(md.mtime()),
            ctime: time_of(md.ctime()),
            crtime: time_of(md.ctime()),
            kind: file_type(kind, md),
            perm,
            nlink: md.nlink() as u32,
            uid: md.uid(),
            gid: md.gid(),
            rdev: md.rdev() as u32,
            blksize: 4096,
            flags: 0,
        };
        (attr, view_only)
    }

    /// A protected inode's plaintext size and whether its licence allows
    /// viewing only.
    pub(super) fn protected_shape(&self, ino: u64, md: &Stat) -> (u64, bool) {
        let (open, known) = {
            let t = self.table();
            t.get(ino).map(|n| (n.open().cloned(), n.facts())).unwrap_or_default()
        };
        if let Some(of) = open {
            return (of.len(), !of.writable);
        }
        match known.or_else(|| self.learn_facts(ino, md)) {
            Some(f) => (
                f.geometry.plaintext_len(md.len()).unwrap_or(0),
                f.rights.is_some_and(|r| !r.has(Right::Edit)),
            ),
            None => (0, false),
        }
    }

    /// Whether the inode is a protected file its licence lets this user
    /// only view.
    pub(super) fn view_only(&self, ino: u64) -> Result<bool, Errno> {
        let (kind, md) = self.source_metadata(ino)?;
        Ok(kind == Kind::Protected && self.shape(ino, kind, &md).1)
    }

    /// Answers `access(2)` (see `perm.rs` for why the kernel asks).
    pub(super) fn access(&self, ino: u64, caller: Caller, mask: i32) -> Result<(), Errno> {
        let (kind, md) = self.source_metadata(ino)?;
        let (attr, view_only) = self.shape(ino, kind, &md);
        let shown = Shown {
            kind: attr.kind,
            perm: attr.perm,
            uid: attr.uid,
            gid: attr.gid,
            view_only,
        };
        if perm::allows(caller, &shown, mask) {
            Ok(())
        } else {
            Err(Errno::EACCES)
        }
    }
}

pub(super) fn time_of((secs, nsecs): (i64, i64)) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nsecs as u32)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

pub(super) fn file_type(kind: Kind, md: &Stat) -> FileType {
    match kind {
        Kind::Dir => FileType::Directory,
        Kind::Protected | Kind::Plain => FileType::RegularFile,
        Kind::Symlink => FileType::Symlink,
        Kind::Special => md.fuse_kind(),
    }
}
