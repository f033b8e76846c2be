//! New entries: protected files (with the folder's default policy, or
//! continuing a document whose name was just left), folders, links and
//! special files, each given the mode and owner its creator asked for.

use std::ffi::OsStr;
use std::fs::OpenOptions;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;

use fuser::{Errno, FileAttr};

use super::inodes::{Kind, ROOT};
use super::names;
use super::open::{Handle, OpenFile};
use super::ownership::Creation;
use super::stat::Stat;
use super::state::{RightsFs, io};
use crate::policy::Rights;

impl RightsFs {
    /// Creates a protected file `name` in `parent` and opens it.
    pub(super) fn create(
        &self,
        parent: u64,
        name: &OsStr,
        who: &Creation,
        flags: i32,
    ) -> Result<(FileAttr, u64), Errno> {
        names::check_len(name)?;
        if parent == ROOT && names::is_hidden_at_root(name) {
            return Err(Errno::EACCES);
        }
        if names::is_reserved(name) {
            return Err(Errno::EINVAL);
        }
        let dir = self.src_dir(parent)?;
        names::prepare(dir.as_ref(), name).map_err(io)?;
        if std::fs::symlink_metadata(dir.child(name)).is_ok() && !names::has_suffix(name) {
            return Err(Errno::EEXIST);
        }
        let bname = names::protected(name);
        let path = dir.child(&bname);
        let shown = dir.shown().join(&bname);
        // A name a protected file just left belongs to that document.
        let continued = self.continued(parent, name)?;
        // Readable and writable by its owner while the daemon writes the
        // header; then exactly the mode asked for (this descriptor keeps
        // its access, as one from `open(O_CREAT)` does).
        let made = who.mode | 0o600;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(made)
            .open(&path)
            .map_err(io)?;
        if let Err(e) = self.maker.settle_file(&file, &path, who, made) {
            let _ = std::fs::remove_file(&path);
            return Err(io(e));
        }
        let version = match continued {
            Some(doc) => self.continue_in(file, doc, &shown),
            None => self.new_protected(file, dir.shown()).map(|pf| (pf, Rights::owner())),
        };
        let (pf, rights) = match version {
            Ok(version) => version,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        };
        let md = Stat::from(&pf.file().metadata().map_err(io)?);
        let of =
            Arc::new(OpenFile::new(pf, true, rights, shown.display().to_string(), true).renewing(self.keys.clone()));
        let (ino, held) = {
            let mut t = self.table();
            let ino = t.ino_for(md.ino());
            t.remember(ino, Kind::Protected, parent, &bname, true);
            let node = t.get_mut(ino).ok_or(Errno::EIO)?;
            let u = node.in_use_or_new();
            u.open = Some(of.clone());
            u.opens += 1;
            node.set_facts(None);
            (ino, t.size())
        };
        self.pruner.check(held);
        let acc = flags & libc::O_ACCMODE;
        let fh = self.add_handle(Handle::Protected {
            ino,
            file: of,
            write: acc != libc::O_RDONLY,
            append: flags & libc::O_APPEND != 0,
        });
        Ok((self.attr_from(ino, Kind::Protected, &md)?, fh))
    }

    /// Makes a folder.
    pub(super) fn mkdir(&self, parent: u64, name: &OsStr, who: &Creation) -> Result<FileAttr, Errno> {
        self.check_free(parent, name)?;
        let p = self.src_child(parent, name)?;
        let p = p.as_ref();
        std::fs::DirBuilder::new().mode(who.mode).create(p).map_err(io)?;
        settled(p, self.maker.settle_path(p, who, true), true)?;
        self.lookup(parent, name)
    }

    /// `mknod(2)`: a regular file is a new protected file, created and
    /// closed at once; anything else is made as itself (see
    /// [`make_special`](Self::make_special)).
    pub(super) fn mknod(
        &self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        rdev: u32,
        who: &Creation,
    ) -> Result<FileAttr, Errno> {
        let kind = mode & libc::S_IFMT;
        if kind != libc::S_IFREG && kind != 0 {
            return self.make_special(parent, name, kind, rdev, who);
        }
        let (attr, fh) = self.create(parent, name, who, libc::O_WRONLY)?;
        self.release_fh(fh);
        Ok(attr)
    }

    /// Makes a FIFO, socket or device node: stored in the source as
    /// itself (they hold no content to protect), as a local filesystem
    /// would; the kernel answers their opens without the daemon.
    pub(super) fn make_special(
        &self,
        parent: u64,
        name: &OsStr,
        kind: u32,
        rdev: u32,
        who: &Creation,
    ) -> Result<FileAttr, Errno> {
        self.check_free(parent, name)?;
        let p = self.src_child(parent, name)?;
        let p = p.as_ref();
        let made = rustix::fs::mknodat(
            rustix::fs::CWD,
            p,
            rustix::fs::FileType::from_raw_mode(kind),
            rustix::fs::Mode::from_raw_mode(who.mode),
            rustix::fs::Dev::from(rdev),
        );
        made.map_err(|e| io(e.into()))?;
        settled(p, self.maker.settle_path(p, who, false), false)?;
        self.lookup(parent, name)
    }

    /// Makes a symbolic link (stored as is: links are not protected).
    pub(super) fn symlink(&self, parent: u64, name: &OsStr, target: &Path, who: &Creation) -> Result<FileAttr, Errno> {
        self.check_free(parent, name)?;
        let p = self.src_child(parent, name)?;
        let p = p.as_ref();
        std::os::unix::fs::symlink(target, p).map_err(io)?;
        settled(p, self.maker.settle_link(p, who), false)?;
        self.lookup(parent, name)
    }

    /// A second name for a file (the content is bound to its id, not its
    /// name, so both names open the same shared view).
    pub(super) fn link(&self, ino: u64, newparent: u64, newname: &OsStr) -> Result<FileAttr, Errno> {
        self.check_free(newparent, newname)?;
        let (kind, from) = {
            let t = self.table();
            (t.get(ino).ok_or(Errno::ENOENT)?.kind, t.path(ino)?)
        };
        let from = self.reach(from)?;
        let bname = match kind {
            Kind::Protected => names::protected(newname),
            Kind::Dir => return Err(Errno::EPERM),
            _ => newname.to_owned(),
        };
        let to = self.src_child(newparent, &bname)?;
        if kind == Kind::Protected {
            names::prepare(to.dir(), newname).map_err(io)?;
        }
        std::fs::hard_link(&from, &to).map_err(io)?;
        self.lookup(newparent, newname)
    }

    pub(super) fn check_free(&self, parent: u64, name: &OsStr) -> Result<(), Errno> {
        names::check_len(name)?;
        if names::is_reserved(name) {
            return Err(Errno::EINVAL);
        }
        if parent == ROOT && names::is_hidden_at_root(name) {
            return Err(Errno::EEXIST);
        }
        match self.resolve(parent, name) {
            Ok(_) => Err(Errno::EEXIST),
            Err(_) => Ok(()),
        }
    }
}

/// Removes a new entry whose mode or owner could not be set, so that a
/// failed creation leaves nothing behind.
pub(super) fn settled(p: &Path, r: std::io::Result<()>, dir: bool) -> Result<(), Errno> {
    r.map_err(|e| {
        let _ = if dir {
            std::fs::remove_dir(p)
        } else {
            std::fs::remove_file(p)
        };
        io(e)
    })
}
