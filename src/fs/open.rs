//! Open files: one decrypted view per inode, shared by every handle on it,
//! so that two processes writing one file see one length and one set of
//! blocks (two views of one file would overwrite each other's state).

use std::fs::File;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use fuser::Errno;

use crate::format::{FormatError, ProtectedFile};
use crate::policy::Rights;

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
}

impl OpenFile {
    /// Wraps an opened protected file.
    pub fn new(pf: ProtectedFile, writable: bool, rights: Rights, name: String, created: bool) -> Self {
        Self {
            pf: RwLock::new(pf),
            writable,
            rights,
            name,
            dir_unsynced: AtomicBool::new(created),
            next_read: AtomicU64::new(0),
            ahead_until: AtomicU64::new(0),
        }
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
        if offset + len + super::core::READ_AHEAD / 2 < ahead {
            return false;
        }
        self.ahead_until
            .store(offset + len + super::core::READ_AHEAD, Ordering::Relaxed);
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

    /// Exclusive access.
    pub fn write(&self) -> std::sync::RwLockWriteGuard<'_, ProtectedFile> {
        self.pf.write().unwrap_or_else(|p| p.into_inner())
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
        FormatError::WriterUnsigned
        | FormatError::WriterRecordMalformed(_)
        | FormatError::WriterCertificate { .. }
        | FormatError::WriterSignatureInvalid { .. }
        | FormatError::WriterNotAllowed { .. } => {
            tracing::error!(file = %name, op, error = %e, "refused: this version was not saved by the owner or an editor")
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
    /// A folder listing, read once at `opendir`.
    Dir(Vec<DirEntry>),
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
