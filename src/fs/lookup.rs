//! Names to inodes: which source entry a shown name means (a protected
//! `NAME.rights`, else `NAME` itself), counting the kernel's references,
//! and the targets of symbolic links.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use fuser::{Errno, FileAttr};

use super::beneath::SrcPath;
use super::inodes::{Kind, Located, ROOT};
use super::names;
use super::stat::Stat;
use super::state::{RightsFs, io};

impl RightsFs {
    /// Which source entry `name` in `parent` means: a protected file
    /// `name.rights`, else `name` itself (a folder, link, or a plain file
    /// whose name does not carry the suffix).
    pub(super) fn resolve(&self, parent: u64, name: &OsStr) -> Result<(OsString, Kind, Stat), Errno> {
        check_name(parent, name)?;
        self.resolve_in(&self.src_dir(parent)?, parent, name)
    }

    /// [`Self::resolve`] in the folder `dir` (the source folder of
    /// `parent`), already open.
    fn resolve_in(&self, dir: &SrcPath, parent: u64, name: &OsStr) -> Result<(OsString, Kind, Stat), Errno> {
        check_name(parent, name)?;
        let pname = names::protected(name);
        if let Ok(md) = dir.stat_child(&pname)
            && md.is_file()
        {
            return Ok((pname, Kind::Protected, md));
        }
        let md = dir.stat_child(name).map_err(io)?;
        let kind = if md.is_dir() {
            Kind::Dir
        } else if md.is_symlink() {
            Kind::Symlink
        } else if md.is_file() {
            if names::has_suffix(name) {
                // Shown under its plain name; `name` itself would be `name.rights.rights`.
                return Err(Errno::ENOENT);
            }
            Kind::Plain
        } else {
            Kind::Special
        };
        Ok((name.to_owned(), kind, md))
    }

    /// The source path of `name` in `parent` if the table holds it as a
    /// protected file (from an earlier lookup), without asking the source.
    pub(super) fn known_protected(&self, parent: u64, name: &OsStr) -> Option<Located> {
        if parent == ROOT && names::is_hidden_at_root(name) {
            return None;
        }
        let pname = names::protected(name);
        let t = self.table();
        let ino = t.by_name(parent, &pname)?;
        if t.get(ino)?.kind != Kind::Protected {
            return None;
        }
        t.child_path(parent, &pname).ok()
    }

    /// Looks `name` up and counts a kernel reference to it.
    pub(super) fn lookup(&self, parent: u64, name: &OsStr) -> Result<FileAttr, Errno> {
        // A name no entry can have costs no folder reached.
        check_name(parent, name)?;
        self.lookup_in(&self.src_dir(parent)?, parent, name)
    }

    /// [`Self::lookup`] in `dir`, the source folder of `parent` already
    /// reached: a listing's page of entries reaches its folder once.
    pub(super) fn lookup_in(&self, dir: &SrcPath, parent: u64, name: &OsStr) -> Result<FileAttr, Errno> {
        let (bname, kind, md) = self.resolve_in(dir, parent, name)?;
        let (ino, held) = {
            let mut t = self.table();
            if t.elsewhere(md.dev()) {
                tracing::error!(
                    path = %t.child_path(parent, &bname).map(|p| p.shown().display().to_string()).unwrap_or_default(),
                    "another file system is mounted below the source folder; it is not shown (EXDEV)"
                );
                return Err(Errno::EXDEV);
            }
            if kind == Kind::Plain
                && let Some(was) = t.by_name(parent, &names::protected(name))
                && t.get(was).is_some_and(|n| n.kind == Kind::Protected)
            {
                // Someone replaced a protected file by a plain one in the
                // source folder: writes to it would land in plaintext.
                tracing::error!(
                    file = %t.child_path(parent, name).map(|p| p.shown().display().to_string()).unwrap_or_default(),
                    "a protected file was replaced by a plain file in the source folder; it is shown read-only"
                );
            }
            let ino = t.ino_for(md.ino());
            t.remember(ino, kind, parent, &bname, true);
            (ino, t.size())
        };
        self.pruner.check(held);
        self.attr_from(ino, kind, &md)
    }

    /// Reads a link.
    pub(super) fn readlink(&self, ino: u64) -> Result<Vec<u8>, Errno> {
        let p = self.src(ino)?;
        Ok(std::fs::read_link(p).map_err(io)?.as_os_str().as_bytes().to_vec())
    }

    /// `forget`: the kernel dropped `n` references to an inode.
    pub(super) fn forget(&self, ino: u64, n: u64) {
        self.table().forget(ino, n);
    }
}

/// Refuses a name too long for the source, or one the mount hides.
fn check_name(parent: u64, name: &OsStr) -> Result<(), Errno> {
    names::check_len(name)?;
    if (parent == ROOT && names::is_hidden_at_root(name)) || names::is_reserved(name) {
        return Err(Errno::ENOENT);
    }
    Ok(())
}
