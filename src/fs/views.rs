//! Opening and closing files. A protected inode has one shared decrypted
//! view however many descriptors hold it: the first open reads and checks
//! the file (replaying what a crash left), the last close commits it.
//! Plain files are opened as they are, never for writing.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use fuser::Errno;

use super::beneath::SrcPath;
use super::inodes::{Kind, Located};
use super::open::{Handle, OpenFile, errno_for};
use super::stat::Stat;
use super::state::{RightsFs, io};
use crate::format::{ProtectedFile, read_header};
use crate::policy::Rights;

impl RightsFs {
    /// Opens an inode; returns the handle number and whether the kernel
    /// may keep its cached pages.
    pub(super) fn open(&self, ino: u64, flags: i32) -> Result<(u64, bool), Errno> {
        let (kind, path) = {
            let t = self.table();
            let node = t.get(ino).ok_or(Errno::ENOENT)?;
            (node.kind, t.path(ino))
        };
        let acc = flags & libc::O_ACCMODE;
        let write = acc != libc::O_RDONLY;
        let trunc = flags & libc::O_TRUNC != 0;
        match kind {
            Kind::Protected => {
                let (of, keep) = self.open_shared(ino, path)?;
                if (write || trunc) && !of.writable {
                    self.close_shared(ino);
                    tracing::warn!(file = %of.name, "refused a write open: you may only view this file");
                    return Err(Errno::EACCES);
                }
                if trunc {
                    let r = of.write().set_len(0);
                    if let Err(e) = r {
                        self.close_shared(ino);
                        return Err(of.errno("truncate", e));
                    }
                }
                let fh = self.add_handle(Handle::Protected {
                    ino,
                    file: of,
                    write,
                    append: flags & libc::O_APPEND != 0,
                });
                Ok((fh, keep && !trunc))
            }
            Kind::Plain if write || trunc => {
                refuse_plain_write(path?.shown());
                Err(Errno::EACCES)
            }
            Kind::Plain | Kind::Special => {
                let path = self.reach(path?)?;
                let mut o = OpenOptions::new();
                o.read(acc != libc::O_WRONLY).write(write).truncate(trunc && write);
                // Never through a link someone put in the file's place.
                let passed = flags & (libc::O_APPEND | libc::O_NONBLOCK | libc::O_SYNC | libc::O_DSYNC);
                o.custom_flags(passed | libc::O_NOFOLLOW);
                let file = o.open(path).map_err(io)?;
                self.table().get_mut(ino).ok_or(Errno::ENOENT)?.in_use_or_new().opens += 1;
                Ok((self.add_handle(Handle::Plain { ino, file }), false))
            }
            Kind::Dir | Kind::Symlink => Err(Errno::EISDIR),
        }
    }

    /// The shared view of a protected inode, opening it if no handle has
    /// it open yet. Counts one more user of it.
    pub(super) fn open_shared(&self, ino: u64, path: Result<Located, Errno>) -> Result<(Arc<OpenFile>, bool), Errno> {
        let gate = {
            let mut t = self.table();
            let node = t.get_mut(ino).ok_or(Errno::ENOENT)?;
            let u = node.in_use_or_new();
            if let Some(of) = u.open.clone() {
                u.opens += 1;
                return Ok((of, true));
            }
            u.gate.clone()
        };
        let _g = gate.lock().unwrap_or_else(|p| p.into_inner());
        {
            let mut t = self.table();
            let u = t.get_mut(ino).ok_or(Errno::ENOENT)?.in_use_or_new();
            if let Some(of) = u.open.clone() {
                u.opens += 1;
                return Ok((of, true));
            }
        }
        let path = self.reach(path?)?;
        let of = Arc::new(self.open_protected(&path)?);
        let md = of.read().file().metadata().map_err(io)?;
        let mut t = self.table();
        let node = t.get_mut(ino).ok_or(Errno::ENOENT)?;
        node.set_rights(of.rights);
        let u = node.in_use_or_new();
        let keep = u.cache_stamp == Some(stamp(&Stat::from(&md)));
        u.open = Some(of.clone());
        u.opens += 1;
        Ok((of, keep))
    }

    /// Opens the protected file at `path` with the user's key; replays or
    /// discards what a crash left, and reports it.
    pub(super) fn open_protected(&self, path: &SrcPath) -> Result<OpenFile, Errno> {
        let name = path.display().to_string();
        // Never through a link: one planted at the name of a file the
        // kernel already knows would send the writes to another file.
        let open = |write: bool| {
            OpenOptions::new()
                .read(true)
                .write(write)
                .custom_flags(libc::O_NOFOLLOW)
                .open(path)
                .inspect_err(|e| {
                    if e.raw_os_error() == Some(libc::ELOOP) {
                        tracing::error!(file = %name, "a symbolic link is in place of this protected file: not followed");
                    }
                })
        };
        let (file, rw) = match open(true) {
            Ok(f) => (f, true),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES | libc::EROFS | libc::EPERM)) => {
                (open(false).map_err(io)?, false)
            }
            Err(e) => return Err(io(e)),
        };
        if file.metadata().map_err(io)?.len() == 0 && rw {
            // Created but never written before a crash: start it afresh.
            tracing::warn!(file = %name, "empty protected file (interrupted creation): giving it a new header");
            let shown = path.shown();
            let pf = self.new_protected(file, shown.parent().unwrap_or(shown))?;
            return Ok(OpenFile::new(pf, true, Rights::owner(), name, false).renewing(self.keys.clone()));
        }
        let header = read_header(&file).map_err(|e| errno_for(&name, "open", e))?;
        let access = self.keys.access(&header).map_err(|e| {
            tracing::warn!(file = %name, owner = %header.licence.policy.owner, error = %e, "access refused");
            Errno::from_i32(e.errno())
        })?;
        // A version this user saves must be signed, or every reader would
        // refuse it: without a writer the file opens read-only.
        let writer = match self.keys.writer(&header, &access) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(file = %name, error = %e, "opening read-only");
                None
            }
        };
        let writable = rw && writer.is_some();
        let server = &self.verifier;
        let pf = if rw {
            let (pf, rec) = ProtectedFile::open_journaled_verified(file, &access.key, &self.journal, server)
                .map_err(|e| errno_for(&name, "open", e))?;
            if rec.any() {
                self.reporter.recovered(&name, &rec);
            }
            match writer {
                Some(w) => pf.with_writer(w),
                None => pf,
            }
        } else {
            ProtectedFile::open_verified(file, &access.key, server).map_err(|e| errno_for(&name, "open", e))?
        };
        let of = OpenFile::new(pf, writable, access.rights, name, false);
        Ok(if writable { of.renewing(self.keys.clone()) } else { of })
    }

    /// A fresh protected file in `file` (in folder `dir`) with the folder's
    /// default policy; the key comes without a network round trip.
    pub(super) fn new_protected(&self, file: File, dir: &Path) -> Result<ProtectedFile, Errno> {
        let root = self.table().root().to_path_buf();
        let vouch = |signer: &_, key: &_, at: &_| self.vouches(signer, key, at);
        let policy = self.defaults.for_dir(self.keys.me(), &root, dir, &vouch);
        let fresh = self.keys.create(policy).map_err(|e| {
            tracing::error!(folder = %dir.display(), error = %e, "cannot make a key for a new file");
            Errno::EIO
        })?;
        let name = dir.display().to_string();
        let pf = ProtectedFile::create_from(file, fresh).map_err(|e| errno_for(&name, "create", e))?;
        Ok(self.cached(pf).with_journal(&self.journal))
    }

    /// Drops one user of the shared view; the last one commits and closes it.
    /// The view stays reachable while it commits, so an open arriving
    /// meanwhile shares it (a second view of the file would overwrite the
    /// commit's state record); it is dropped only if still unused after.
    pub(super) fn close_shared(&self, ino: u64) {
        let of = {
            let mut t = self.table();
            let Some(u) = t.get_mut(ino).and_then(|n| n.in_use_mut()) else {
                return;
            };
            u.opens = u.opens.saturating_sub(1);
            if u.opens > 0 {
                return;
            }
            u.open.clone()
        };
        let Some(of) = of else { return };
        let r = of.write().flush();
        if let Err(e) = r {
            let _ = of.errno("close", e);
        }
        if let Some(g) = of.unreported_save() {
            self.keys.saved(of.read().header(), g);
        }
        let (md, memo) = {
            let pf = of.read();
            (
                pf.file().metadata().ok().map(|m| Stat::from(&m)),
                self.memo(pf.header()),
            )
        };
        if let Some(md) = &md {
            // Remember the header under the file's state after this commit:
            // a later `stat` (even after the kernel dropped its caches)
            // then needs no read of the source.
            let key = (md.ino(), md.ctime().0, md.ctime().1);
            self.headers().put(key, memo);
            if let Some(x) = &self.facts_index {
                x.put(md, memo);
            }
        }
        let mut t = self.table();
        if let Some(u) = t.get_mut(ino).and_then(|n| n.in_use_mut())
            && u.opens == 0
        {
            u.open = None;
            u.cache_stamp = md.as_ref().map(stamp);
        }
        t.release_if_unused(ino);
    }

    /// Closes a plain handle's bookkeeping.
    pub(super) fn close_plain(&self, ino: u64) {
        let mut t = self.table();
        if let Some(u) = t.get_mut(ino).and_then(|n| n.in_use_mut()) {
            u.opens = u.opens.saturating_sub(1);
        }
        t.release_if_unused(ino);
    }

    /// Closes a file handle: the last handle on an inode commits it.
    pub(super) fn release_fh(&self, fh: u64) {
        match self.take_handle(fh).as_deref() {
            Some(Handle::Protected { ino, .. }) => self.close_shared(*ino),
            Some(Handle::Plain { ino, .. }) => self.close_plain(*ino),
            _ => {}
        }
    }

    /// `release`: closes the handle, calls `answered` (the reply), then,
    /// once nothing of the mount is open, hands freed memory back.
    pub(super) fn release(&self, fh: u64, answered: impl FnOnce()) {
        self.release_fh(fh);
        answered();
        if self.no_open_handles() {
            super::memory::trim_when_idle();
        }
    }
}

pub(super) fn stamp(md: &Stat) -> (i64, i64, u64) {
    (md.mtime().0, md.mtime().1, md.len())
}

/// A write through the mount to a file without the suffix would land on
/// disk in plaintext (a protected file may have been swapped for a plain
/// one behind the mount's back): refused, and logged with the file's name.
pub(super) fn refuse_plain_write(path: &Path) {
    tracing::warn!(file = %path.display(), "refused a write to a plain (unprotected) file: protect it first (`rights protect`)");
}
