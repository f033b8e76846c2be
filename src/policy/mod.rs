//! Who may do what with a protected file, and the signed documents that
//! carry that decision: the publishing licence (owner -> server) and the use
//! licence (server -> one user's device).
//!
//! These are plain serde types with validation; they know nothing of files,
//! networks or storage.

mod b64;
mod certificate;
mod email;
mod folder;
mod grant;
mod publishing;
mod removed;
#[cfg(test)]
pub(crate) use publishing::tests::body as test_publishing_body;
mod rights;
mod sealed;
mod use_licence;

pub use certificate::{DeviceCertificate, EditCertificate, writer_key_proof};
pub use email::{Email, Principal};
pub use folder::{FolderPolicy, FolderPolicyError};
pub use grant::{DEFAULT_OFFLINE_DAYS, Grant, Policy, parse_duration, parse_expiry};
pub use publishing::{ContentId, PublishingLicence, PublishingLicenceBody};
pub use removed::{REMOVED_PAGE_MAX, RemovedDevice, RemovedDeviceList};
pub use rights::{Right, Rights};
pub use sealed::SealedGrants;
pub use use_licence::{USE_LICENCE_VERSION, UseLicence, UseLicenceBody};

/// Seconds since the Unix epoch, UTC. One integer type for every instant in
/// licences keeps the signed encodings simple and unambiguous.
pub type Timestamp = i64;

/// The current time as a [`Timestamp`].
pub fn now() -> Timestamp {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Formats a timestamp as RFC 3339 for people and JSON output.
pub fn format_time(t: Timestamp) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| t.to_string())
}

/// Why a policy, grant or licence was rejected. Messages name the bad value
/// and what would be accepted, because users type these by hand.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    /// Not an email address we accept.
    #[error("'{0}' is not a valid email address (expected name@example.com)")]
    BadEmail(String),
    /// Not a known right.
    #[error("unknown right '{0}' (known rights: view, edit, export, share, owner)")]
    UnknownRight(String),
    /// A grant that grants nothing.
    #[error("the grant to {0} names no rights (give at least one of: view, edit, export, share, owner)")]
    EmptyRights(String),
    /// An expiry we could not read.
    #[error("'{0}' is not a date (use YYYY-MM-DD, an RFC 3339 time, or a duration: 120s, 90m, 12h, 7d, 2w)")]
    BadExpiry(String),
    /// An expiry already in the past.
    #[error("the expiry {0} is in the past")]
    ExpiryInPast(String),
    /// A malformed `EMAIL[:RIGHTS[:EXPIRY]]` spec.
    #[error("'{0}' is not a grant (expected EMAIL[:RIGHTS[:EXPIRY]], e.g. bob@example.com:view,edit:30d)")]
    BadGrantSpec(String),
    /// Offline validity out of range.
    #[error("offline validity of {0} days is out of range (0 to 3650)")]
    BadOfflineDays(u32),
    /// The same principal granted twice.
    #[error("{0} is granted twice; merge the grants into one")]
    DuplicateGrant(String),
    /// A signed document that does not decode.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// A signature that does not verify.
    #[error("the {0} signature does not verify: the document was altered or signed by someone else")]
    BadSignature(&'static str),
}
