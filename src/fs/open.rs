//! Open files: one decrypted view per inode, shared by every handle on it,
//! so that two processes writing one file see one length and one set of
//! blocks (two views of one file would overwrite each other's state).

use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use fuser::Errno;

use super::KeySource;
use crate::format::{FormatError, ProtectedFile};
use crate::licence::{Access, AccessError};
use crate::policy::{Rights, now};

/// The shared state of an open protected file.
pub struct OpenFile {
    /// Reads take the read lock (they run in parallel), writes the write lock.
    pub pf: RwLock<ProtectedFile>,
    /// Whether this user may write it (edit right and a writable source).
    pub writable: bool,
    /// What the user's licence allows (shown as permission bits).
    pub rights: Rights,
    /// The source path when opened, for log lines.
    pub name: String,
    /// Created in this mount and its folder entry not yet synced.
    pub dir_unsynced: AtomicBool,
    /// Where the last read ended, and the end of the range already asked
    /// to be read ahead: detects sequential readers.
    next_read: AtomicU64,
    ahead_until: AtomicU64,
    /// For a writable file: where renewed certificates come from.
    keys: Option<Arc<dyn KeySource>>,
    /// The generation last reported as saved (or opened at): a close
    /// after commits past it reports a save.
    reported: AtomicU64,
    /// Whether saves are reported (not for files created in the mount,
    /// often an editor's temporary file that a rename-over saves from).
    reports_saves: bool,
    /// When renewal was last tried: at most one try per [`RENEW_BEFORE`]
    /// / 3 seconds, so that a server away does not stall every write.
    renew_tried: AtomicI64,
}

/// Seconds before a writer's device or edit certificate ends at which the
/// mount renews it (at the next write or commit), so that a version is
/// never signed past it.
const RENEW_BEFORE: i64 = 30;

impl OpenFile {
    /// Wraps an opened protected file.
    pub fn new(pf: ProtectedFile, writable: bool, rights: Rights, name: String, created: bool) -> Self {
        Self {
            reported: AtomicU64::new(pf.generation()),
            reports_saves: writable && !created,
            pf: RwLock::new(pf),
            writable,
            rights,
            name,
            dir_unsynced: AtomicBool::new(created),
            next_read: AtomicU64::new(0),
            ahead_until: AtomicU64::new(0),
            keys: None,
            renew_tried: AtomicI64::new(i64::MIN),
        }
    }

    /// Renews the writer's certificates from `keys` when one is about to
    /// end (the device certificate of every writer, an editor's edit
    /// certificate).
    pub fn renewing(mut self, keys: Arc<dyn KeySource>) -> Self {
        self.keys = Some(keys);
        self
    }

    /// Records a read of `len` bytes at `offset`; true when it continues
    /// (or nearly continues) the previous one and the read-ahead should be extended (at most once
    /// per half window, to keep the advice syscalls rare).
    pub fn sequential(&self, offset: u64, len: u64) -> bool {
        // Reads of one stream arrive out of order from several FUSE
        // threads: near the previous end counts as sequential.
        let prev = self.next_read.swap(offset + len, Ordering::Relaxed);
        if prev.abs_diff(offset) > 2 << 20 {
            return false;
        }
        let ahead = self.ahead_until.load(Ordering::Relaxed);
        if offset + len + super::io::READ_AHEAD / 2 < ahead {
            return false;
        }
        self.ahead_until
            .store(offset + len + super::io::READ_AHEAD, Ordering::Relaxed);
        true
    }

    /// The plaintext length.
    pub fn len(&self) -> u64 {
        self.read().len()
    }

    /// Shared access (a poisoned lock still holds consistent state: every
    /// mutation of `ProtectedFile` either completes or returns an error).
    pub fn read(&self) -> std::sync::RwLockReadGuard<'_, ProtectedFile> {
        self.pf.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Exclusive access (every write and commit goes through it), with the
    /// writer renewed first when a certificate of it is about to end.
    /// Should renewal fail, the commit is refused by the format
    /// (`WriterExpired`) once the certificate has ended.
    pub fn write(&self) -> std::sync::RwLockWriteGuard<'_, ProtectedFile> {
        let mut pf = self.pf.write().unwrap_or_else(|p| p.into_inner());
        if let Some(keys) = &self.keys
            && pf
                .writer()
                .and_then(|w| w.expires())
                .is_some_and(|t| now() + RENEW_BEFORE >= t)
            && now() - self.renew_tried.swap(now(), Ordering::Relaxed) >= RENEW_BEFORE / 3
        {
            let h = pf.header();
            let signer = |a: Access| {
                keys.writer(h, &a)?
                    .ok_or_else(|| AccessError::CannotSign("the edit right was withdrawn".into()))
            };
            // The device certificate renews with the writer; an edit
            // certificate only with a licence fresh from the server.
            let renewed = keys.access(h).and_then(signer).and_then(|w| {
                if w.expires().is_some_and(|t| now() + RENEW_BEFORE >= t) {
                    keys.renew(h).and_then(signer)
                } else {
                    Ok(w)
                }
            });
            match renewed {
                Ok(w) => pf.set_writer(w),
                Err(e) => tracing::warn!(file = %self.name, error = %e, "cannot renew the right to save this file"),
            }
        }
        pf
    }

    /// The generation to report as saved, when commits were made since
    /// the last report (called as the last descriptor closes).
    pub fn unreported_save(&self) -> Option<u64> {
        let g = self.read().generation();
        (self.reports_saves && self.reported.swap(g, Ordering::AcqRel) < g).then_some(g)
    }

    /// Whether the folder entry still needs an fsync (once).
    pub fn take_dir_unsynced(&self) -> bool {
        self.dir_unsynced.swap(false, Ordering::AcqRel)
    }

    /// Turns a format error into the errno for the application, logging
    /// every failure that is not the application's own (a damaged file,
    /// a failing disk) with the file's name.
    pub fn errno(&self, op: &str, e: FormatError) -> Errno {
        errno_for(&self.name, op, e)
    }
}

/// Logs a format error with the file name and answers its errno
/// ([`FormatError::errno`], the one mapping of format errors).
pub fn errno_for(name: &str, op: &str, e: FormatError) -> Errno {
    let code = e.errno();
    match &e {
        FormatError::Io(_) if code == libc::ENOSPC || code == libc::EDQUOT => {
            tracing::warn!(file = %name, op, "disk full: the write failed and the file keeps its previous content");
        }
        FormatError::Io(io) => tracing::error!(file = %name, op, error = %io, "I/O error on the source file"),
        FormatError::TooLarge => {}
        FormatError::KeyWornOut => tracing::error!(file = %name, op, error = %e, "file must be re-protected"),
        FormatError::WriterExpired { .. } => {
            tracing::error!(file = %name, op, error = %e, "not saved: the edit certificate ended")
        }
        FormatError::WriterUnsigned
        | FormatError::WriterRecordMalformed(_)
        | FormatError::WriterCertificate { .. }
        | FormatError::WriterSignatureInvalid { .. }
        | FormatError::WriterNotAllowed { .. } => {
            tracing::error!(file = %name, op, error = %e, "refused: this version was not saved by the owner or an editor")
        }
        FormatError::WriterRemoved { .. } => {
            tracing::error!(file = %name, op, error = %e, "refused: this version was saved by a removed device")
        }
        other => tracing::error!(file = %name, op, error = %other, "protected file is damaged or was tampered with"),
    }
    Errno::from_i32(code)
}

/// What a kernel file handle refers to.
pub enum Handle {
    /// A protected file.
    Protected {
        /// The inode.
        ino: u64,
        /// The shared view.
        file: std::sync::Arc<OpenFile>,
        /// Opened for writing.
        write: bool,
        /// Opened with `O_APPEND`.
        append: bool,
    },
    /// A plain file passed through.
    Plain {
        /// The inode.
        ino: u64,
        /// The source file.
        file: File,
    },
    /// A folder listing (see `readdir.rs`).
    Dir(super::readdir::Listing),
}

/// One entry of a folder listing.
pub struct DirEntry {
    /// Inode number.
    pub ino: u64,
    /// Kind for `d_type`.
    pub kind: fuser::FileType,
    /// Name shown in the mount.
    pub name: std::ffi::OsString,
}

#[cfg(test)]
mod tests {
    use fuser::Errno;

    use super::errno_for;
    use crate::format::FormatError;

    #[test]
    fn the_mount_answers_the_formats_errno() {
        let worn = errno_for("f", "write", FormatError::KeyWornOut);
        assert_eq!(worn, Errno::from_i32(libc::EROFS));
        let full = FormatError::Io(std::io::Error::from_raw_os_error(libc::ENOSPC));
        assert_eq!(errno_for("f", "write", full), Errno::from_i32(libc::ENOSPC));
        assert_eq!(
            errno_for("f", "read", FormatError::StaleBlock),
            Errno::from_i32(libc::EIO)
        );
        assert_eq!(
            errno_for("f", "write", FormatError::TooLarge),
            Errno::from_i32(libc::EFBIG)
        );
    }
}
