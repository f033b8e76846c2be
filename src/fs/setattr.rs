//! `setattr`: size, mode, owner and times of an entry, never through a
//! link put in its place, and never claiming a right (write bits on a
//! file the user may only view) the licence does not give.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::UNIX_EPOCH;

use fuser::{Errno, FileAttr};

use super::beneath::SrcPath;
use super::inodes::Kind;
use super::open::Handle;
use super::state::{RightsFs, io};
use super::views::refuse_plain_write;

impl RightsFs {
    /// Changes size, mode, owner or times.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn setattr(
        &self,
        ino: u64,
        fh: Option<u64>,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<fuser::TimeOrNow>,
        mtime: Option<fuser::TimeOrNow>,
    ) -> Result<FileAttr, Errno> {
        if let Some(size) = size {
            self.truncate(ino, fh, size)?;
        }
        let path = || self.src(ino);
        if let Some(mode) = mode {
            if mode & 0o222 != 0 && self.view_only(ino)? {
                // Write bits would claim a right the licence does not
                // give (and that opening refuses anyway).
                tracing::warn!(file = %path()?.display(), "refused a chmod adding write permission: you may only view this file");
                return Err(Errno::EPERM);
            }
            chmod_nofollow(&path()?, mode & 0o7777)?;
        }
        if uid.is_some() || gid.is_some() {
            std::os::unix::fs::lchown(path()?, uid, gid).map_err(io)?;
        }
        if atime.is_some() || mtime.is_some() {
            // Commit the open view first: a commit after the times are set
            // (at close) would write the source file and move its mtime to
            // now, losing the time `tar`, `cp -a` and `rsync` set through a
            // descriptor they have not closed yet.
            let open = self.table().get(ino).and_then(|n| n.open().cloned());
            if let Some(of) = open.filter(|of| of.writable) {
                let r = of.write().flush();
                r.map_err(|e| of.errno("utimens", e))?;
            }
            set_times(path()?.as_ref(), atime, mtime)?;
        }
        self.getattr(ino)
    }

    pub(super) fn truncate(&self, ino: u64, fh: Option<u64>, size: u64) -> Result<(), Errno> {
        if let Some(fh) = fh
            && let Ok(h) = self.handle(fh)
        {
            match &*h {
                Handle::Protected { file, .. } => {
                    if !file.writable {
                        return Err(Errno::EACCES);
                    }
                    let r = file.write().set_len(size);
                    return r.map_err(|e| file.errno("truncate", e));
                }
                Handle::Plain { file, .. } => return file.set_len(size).map_err(io),
                Handle::Dir(_) => return Err(Errno::EISDIR),
            }
        }
        let (kind, path) = {
            let t = self.table();
            (t.get(ino).ok_or(Errno::ENOENT)?.kind, t.path(ino))
        };
        match kind {
            Kind::Protected => {
                let (of, _) = self.open_shared(ino, path)?;
                let r = if of.writable {
                    let mut pf = of.write();
                    pf.set_len(size)
                        .and_then(|_| pf.flush())
                        .map_err(|e| of.errno("truncate", e))
                } else {
                    Err(Errno::EACCES)
                };
                self.close_shared(ino);
                r
            }
            Kind::Plain => {
                refuse_plain_write(path?.shown());
                Err(Errno::EACCES)
            }
            Kind::Dir => Err(Errno::EISDIR),
            _ => Err(Errno::EINVAL),
        }
    }
}

/// `chmod` of the entry at `p` itself: a link someone put in the place of
/// a file or folder is not followed (`EOPNOTSUPP`, as links have no mode
/// of their own).
pub(super) fn chmod_nofollow(p: &SrcPath, mode: u32) -> Result<(), Errno> {
    use std::os::fd::AsRawFd;
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(p)
        .map_err(io)?;
    if f.metadata().map_err(io)?.file_type().is_symlink() {
        return Err(Errno::EOPNOTSUPP);
    }
    let at = format!("/proc/self/fd/{}", f.as_raw_fd());
    std::fs::set_permissions(at, std::os::unix::fs::PermissionsExt::from_mode(mode)).map_err(io)
}

pub(super) fn set_times(
    path: &Path,
    atime: Option<fuser::TimeOrNow>,
    mtime: Option<fuser::TimeOrNow>,
) -> Result<(), Errno> {
    use rustix::fs::{AtFlags, CWD, Timespec, Timestamps, UTIME_NOW, UTIME_OMIT};
    fn ts(t: Option<fuser::TimeOrNow>) -> Timespec {
        match t {
            None => Timespec {
                tv_sec: 0,
                tv_nsec: UTIME_OMIT,
            },
            Some(fuser::TimeOrNow::Now) => Timespec {
                tv_sec: 0,
                tv_nsec: UTIME_NOW,
            },
            Some(fuser::TimeOrNow::SpecificTime(t)) => {
                let (s, n) = match t.duration_since(UNIX_EPOCH) {
                    Ok(d) => (d.as_secs() as i64, d.subsec_nanos() as i64),
                    Err(e) => (-(e.duration().as_secs() as i64), 0),
                };
                Timespec { tv_sec: s, tv_nsec: n }
            }
        }
    }
    let times = Timestamps {
        last_access: ts(atime),
        last_modification: ts(mtime),
    };
    rustix::fs::utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| io(e.into()))
}
