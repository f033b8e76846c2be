//! What can go wrong reading or writing a protected file. Each kind of
//! damage has its own variant so that logs and tests can tell them apart.

/// A protected-file failure.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// The underlying file could not be read or written.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// Zero bytes long.
    #[error("the file is empty: it is not a protected file")]
    Empty,
    /// Does not start with the rightsfs magic.
    #[error("not a protected file (no rightsfs magic)")]
    NotProtected,
    /// A format version this build does not read.
    #[error(
        "protected-file format version {0} is not supported by this version of rightsfs (it reads version 2); upgrade rightsfs"
    )]
    UnsupportedVersion(u16),
    /// The file ends inside its header.
    #[error("the header is truncated")]
    HeaderTruncated,
    /// The header does not decode or breaks a rule.
    #[error("the header is malformed: {0}")]
    HeaderMalformed(&'static str),
    /// The key does not belong to this file.
    #[error("wrong key for this file")]
    WrongKey,
    /// The header decodes but fails its MAC or signature.
    #[error("the header was altered ({0})")]
    HeaderTampered(&'static str),
    /// A state slot fails authentication.
    #[error("the file's state record was altered or torn")]
    StateTampered,
    /// The file is shorter than its state says.
    #[error("the file is truncated: {actual} bytes on disk, {expected} expected")]
    Truncated {
        /// Bytes the state record implies.
        expected: u64,
        /// Bytes found.
        actual: u64,
    },
    /// The file is longer than its state says.
    #[error("the file has {actual} bytes on disk but only {expected} are accounted for (data appended)")]
    TrailingData {
        /// Bytes the state record implies.
        expected: u64,
        /// Bytes found.
        actual: u64,
    },
    /// A block fails authentication where it stands.
    #[error("block {index} is corrupt (fails authentication)")]
    BlockCorrupt {
        /// Block index.
        index: u64,
    },
    /// A block authenticates, but as another position.
    #[error("block {index} holds block {belongs_at} (blocks were swapped or moved)")]
    BlockMoved {
        /// Where the block was found.
        index: u64,
        /// Where it belongs.
        belongs_at: u64,
    },
    /// Every block authenticates but they are not the set the state
    /// commits to: an older version of a block was put back.
    #[error("a block was replaced by an older version of itself (replay)")]
    StaleBlock,
    /// The current version carries no writer record.
    #[error("a version of this file is not signed by its writer, so who wrote it cannot be checked")]
    WriterUnsigned,
    /// The writer record does not decode.
    #[error("the writer record is malformed: {0}")]
    WriterRecordMalformed(&'static str),
    /// The writer's device certificate is not the server's.
    #[error(
        "a version of this file claims to be saved by {writer}, but its device certificate is not signed by this file's server"
    )]
    WriterCertificate {
        /// Who the certificate claims.
        writer: String,
    },
    /// The writer's signature does not match this version.
    #[error(
        "a version of this file claims to be saved by {writer}, but its signature does not match it (it was altered or forged)"
    )]
    WriterSignatureInvalid {
        /// Who the certified key belongs to.
        writer: String,
    },
    /// A certified writer without the right to edit signed this version.
    #[error("this file was changed by {writer}, who may not edit it: {reason}")]
    WriterNotAllowed {
        /// The writer's account.
        writer: String,
        /// Which check failed.
        reason: String,
    },
    /// The version was signed by a device the server lists as removed
    /// from its account: whatever time it claims, it is refused.
    #[error(
        "this version of the file was saved by {writer} with device {device}, which was removed from the account on {}: \
         nothing that device signed is accepted any more (save the file again from another device)",
        crate::policy::format_time(*removed_at)
    )]
    WriterRemoved {
        /// The writer's account.
        writer: String,
        /// The removed device's id.
        device: String,
        /// When it was removed.
        removed_at: crate::policy::Timestamp,
    },
    /// This writer's device or edit certificate ended: a version it signed now would
    /// be refused by every reader, so it is not written.
    #[error(
        "cannot save: this device's right to sign versions of this file was certified until {}; connect to the server to renew it",
        crate::policy::format_time(*until)
    )]
    WriterExpired {
        /// When the certificate ended.
        until: crate::policy::Timestamp,
    },
    /// The key reached its safe number of encryptions.
    #[error("this file's key has sealed 2^32 blocks; re-protect the file to get a fresh key")]
    KeyWornOut,
    /// Plaintext length past what the format can address.
    #[error("file too large")]
    TooLarge,
}

impl FormatError {
    /// The errno a filesystem answers with; the mount uses this mapping
    /// and no other. The disk's own errors pass through (`ENOSPC` tells a
    /// program what to do, `EIO` would not). A worn-out key is `EROFS`:
    /// the file can still be read, only no longer written. Damage of any
    /// kind is `EIO`, as a failing disk's would be.
    pub fn errno(&self) -> i32 {
        match self {
            Self::Io(e) => e.raw_os_error().unwrap_or(libc::EIO),
            Self::KeyWornOut => libc::EROFS,
            Self::WriterExpired { .. } => libc::EACCES,
            Self::TooLarge => libc::EFBIG,
            _ => libc::EIO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::FormatError;

    #[test]
    fn errnos_tell_disk_errors_wear_size_and_damage_apart() {
        let disk = FormatError::Io(std::io::Error::from_raw_os_error(libc::ENOSPC));
        assert_eq!(disk.errno(), libc::ENOSPC);
        assert_eq!(FormatError::Io(std::io::Error::other("no errno")).errno(), libc::EIO);
        assert_eq!(FormatError::KeyWornOut.errno(), libc::EROFS);
        assert_eq!(FormatError::TooLarge.errno(), libc::EFBIG);
        for damage in [
            FormatError::StaleBlock,
            FormatError::StateTampered,
            FormatError::BlockCorrupt { index: 3 },
            FormatError::Truncated { expected: 2, actual: 1 },
        ] {
            assert_eq!(damage.errno(), libc::EIO, "{damage}");
        }
    }
}
