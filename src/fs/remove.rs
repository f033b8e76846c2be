//! Removing files, links and folders; a protected file's name stays bound
//! to its document for a moment after (see `save.rs`).

use std::ffi::OsStr;

use fuser::Errno;

use super::inodes::Kind;
use super::names;
use super::state::{RightsFs, io};

impl RightsFs {
    /// Removes a file or link.
    pub(super) fn unlink(&self, parent: u64, name: &OsStr) -> Result<(), Errno> {
        // The kernel looked the name up before unlinking it, so the table
        // usually knows it is a protected file: no second lookup in the
        // source. If the entry is gone or no longer a file (the source
        // changed meanwhile), the slow path finds what the name means now
        // and gives the error that goes with it.
        if let Some(p) = self.known_protected(parent, name).and_then(|at| self.reach(at).ok())
            && self.remove_protected(parent, name, &p).is_ok()
        {
            let bname = names::protected(name);
            names::forget(p.dir(), &bname);
            self.table().unlink_name(parent, &bname);
            return Ok(());
        }
        let (bname, kind, _) = self.resolve(parent, name)?;
        if kind == Kind::Dir {
            return Err(Errno::EISDIR);
        }
        let p = self.src_child(parent, &bname)?;
        if kind == Kind::Protected {
            self.remove_protected(parent, name, &p).map_err(io)?;
            names::forget(p.dir(), &bname);
        } else {
            std::fs::remove_file(&p).map_err(io)?;
        }
        self.table().unlink_name(parent, &bname);
        Ok(())
    }

    /// Removes an empty folder.
    pub(super) fn rmdir(&self, parent: u64, name: &OsStr) -> Result<(), Errno> {
        let (bname, kind, _) = self.resolve(parent, name)?;
        if kind != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        let p = self.src_child(parent, &bname)?;
        std::fs::remove_dir(&p).map_err(io)?;
        self.table().unlink_name(parent, &bname);
        Ok(())
    }
}
