//! Renames, with `RENAME_NOREPLACE` and `RENAME_EXCHANGE`: a protected
//! file keeps its suffix under its new name, a file renamed over another
//! document is a save of that document (see `save.rs`), and a target of
//! the other sort under the same shown name goes too.

use std::ffi::OsStr;
use std::path::Path;

use fuser::Errno;

use super::inodes::{Kind, ROOT};
use super::names;
use super::state::{RightsFs, io};

impl RightsFs {
    /// Renames, atomically replacing the target (or not, or exchanging,
    /// as `flags` ask).
    pub(super) fn rename(
        &self,
        parent: u64,
        name: &OsStr,
        newparent: u64,
        newname: &OsStr,
        flags: u32,
    ) -> Result<(), Errno> {
        names::check_len(newname)?;
        if newparent == ROOT && names::is_hidden_at_root(newname) {
            return Err(Errno::EACCES);
        }
        if names::is_reserved(newname) {
            return Err(Errno::EINVAL);
        }
        let (bname, kind, _) = self.resolve(parent, name)?;
        let target = match kind {
            Kind::Protected => names::protected(newname),
            _ => newname.to_owned(),
        };
        let noreplace = flags & libc::RENAME_NOREPLACE != 0;
        let exchange = flags & libc::RENAME_EXCHANGE != 0;
        let existing = self.resolve(newparent, newname).ok();
        // A file renamed over another document's protected file is a save:
        // the target keeps its identity (see `save.rs`).
        if let Some((tname, Kind::Protected, _)) = &existing
            && !noreplace
            && !exchange
            && matches!(kind, Kind::Protected | Kind::Plain)
            && self.save_over(parent, &bname, kind, newparent, newname, tname)?
        {
            return Ok(());
        }
        // A target of the other sort (plain vs protected) under the same
        // shown name must go too, or it would shadow or be shadowed.
        let other = existing.filter(|(b, _, _)| *b != target);
        let (from, to, other_path) = {
            let t = self.table();
            (
                t.child_path(parent, &bname)?,
                t.child_path(newparent, &target)?,
                other.as_ref().map(|(b, _, _)| t.child_path(newparent, b)).transpose()?,
            )
        };
        let moved = from.shown() != to.shown();
        let (from, to) = (self.reach(from)?, self.reach(to)?);
        let other_path = other_path.map(|at| self.reach(at)).transpose()?;
        if other.is_some() && (noreplace || exchange) {
            return Err(if noreplace { Errno::EEXIST } else { Errno::EINVAL });
        }
        if let Some((_, Kind::Dir, _)) = &other
            && std::fs::read_dir(other_path.as_ref().unwrap())
                .map_err(io)?
                .next()
                .is_some()
        {
            return Err(Errno::ENOTEMPTY);
        }
        if kind == Kind::Protected {
            names::prepare(to.dir(), newname).map_err(io)?;
        }
        // A protected file leaving its name: a file created under it soon
        // continues the document (vim's and Emacs's backup saves).
        let departing = (kind == Kind::Protected && !exchange && (parent, name) != (newparent, newname))
            .then(|| super::save::open_nofollow(&from).ok())
            .flatten();
        renameat2(from.as_ref(), to.as_ref(), flags)?;
        if kind == Kind::Protected && !exchange && moved {
            names::forget(from.dir(), &bname);
        }
        if let Some(f) = departing {
            self.departed(parent, name, f);
        }
        self.name_taken(newparent, newname);
        if let (Some((oname, okind, _)), Some(op)) = (other, other_path) {
            let r = if okind == Kind::Dir {
                std::fs::remove_dir(&op)
            } else {
                std::fs::remove_file(&op)
            };
            if let Err(e) = r {
                tracing::warn!(path = %op.display(), error = %e, "could not remove the replaced entry");
            }
            self.table().unlink_name(newparent, &oname);
        }
        let mut t = self.table();
        if exchange {
            t.exchange((parent, &bname), (newparent, &target));
        } else {
            t.rename(parent, &bname, newparent, &target);
        }
        Ok(())
    }
}

pub(super) fn renameat2(from: &Path, to: &Path, flags: u32) -> Result<(), Errno> {
    if flags == 0 {
        return std::fs::rename(from, to).map_err(io);
    }
    use rustix::fs::{CWD, RenameFlags};
    let flags = RenameFlags::from_bits_retain(flags);
    rustix::fs::renameat_with(CWD, from, CWD, to, flags).map_err(|e| io(e.into()))
}
