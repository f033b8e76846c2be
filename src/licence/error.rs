//! Why access to content was refused. Each variant maps to a distinct
//! message (and, in the mount, an errno and a log line).

use crate::policy::{Email, Timestamp, format_time};

/// What a [`super::LicenceSource`] reports.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// No answer in time.
    #[error("server unreachable: {0}")]
    Unreachable(String),
    /// The server refuses: this user has no rights.
    #[error("no rights")]
    Denied,
    /// The server refuses: this user's access ended (the server's words).
    #[error("{0}")]
    AccessEnded(String),
    /// The owner revoked the content.
    #[error("revoked")]
    Revoked,
    /// The server does not know the content.
    #[error("not registered")]
    NotRegistered,
    /// No valid session.
    #[error("not logged in")]
    NotLoggedIn,
    /// Anything else the server said.
    #[error("{0}")]
    Other(String),
}

/// Why [`super::Licensing::key_for`] gave no key.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// This user holds no rights to the content.
    #[error("you have no rights to this file: ask its owner {owner} to share it with you")]
    NoRights {
        /// Whom to ask.
        owner: Email,
    },
    /// The user's grant (or the content) expired: renewing cannot help.
    #[error("{0}")]
    AccessEnded(String),
    /// The cached licence ran out and could not be renewed.
    #[error("{}", expired_msg(*until, *offline))]
    Expired {
        /// When it lapsed.
        until: Timestamp,
        /// Whether renewal failed because the server was unreachable.
        offline: bool,
    },
    /// The owner revoked the content.
    #[error("the owner {owner} has revoked access to this file")]
    Revoked {
        /// The owner.
        owner: Email,
    },
    /// The content is not (yet) known to the server.
    #[error("the server does not know this file yet: its owner {owner} must run `rights sync`")]
    NotRegistered {
        /// The owner.
        owner: Email,
    },
    /// The server registered this content id for another owner or with
    /// another publishing licence than the file's header carries.
    #[error("{}", not_the_owners_msg(claimed, registered))]
    NotTheOwners {
        /// The owner the header names.
        claimed: Email,
        /// The owner the server registered.
        registered: Email,
    },
    /// No cached licence and no server answer.
    #[error("no licence for this file is cached and the server cannot be reached ({0}); connect and try again")]
    ServerUnreachable(String),
    /// No identity on this device.
    #[error("not logged in on this device: run `rights login EMAIL`")]
    NotLoggedIn,
    /// A licence failed verification or does not fit.
    #[error("invalid licence: {0}")]
    BadLicence(String),
    /// The server said something unexpected.
    #[error("licence request failed: {0}")]
    Server(String),
    /// This device cannot sign the versions it would save: it has no
    /// device certificate from the server, or no edit certificate for the
    /// file. Readers would refuse unsigned versions, so nothing is saved.
    #[error("this device cannot sign changes to this file: {0}")]
    CannotSign(String),
    /// The local licence store failed.
    #[error("licence store: {0}")]
    Io(#[from] std::io::Error),
}

fn not_the_owners_msg(claimed: &Email, registered: &Email) -> String {
    if claimed == registered {
        format!(
            "this file's header is not the one its owner {registered} registered: it was rebuilt or altered; do not trust it"
        )
    } else {
        format!(
            "this file claims its owner is {claimed} but the server registered it to {registered}: it is not {claimed}'s file; do not trust it"
        )
    }
}

fn expired_msg(until: Timestamp, offline: bool) -> String {
    if offline {
        format!(
            "your licence for this file expired at {} and the server cannot be reached to renew it; connect and try again",
            format_time(until)
        )
    } else {
        format!("your licence for this file expired at {}", format_time(until))
    }
}

impl AccessError {
    /// The errno the mount answers an open with. Every refusal, whatever
    /// its reason (no rights, revoked, lapsed, the server away), is
    /// `EACCES`: it is what programs expect of a file they may not open,
    /// and the reason goes to the log. `EIO` is kept for what is broken
    /// rather than refused: a licence that fails verification, or the
    /// local licence store failing.
    pub fn errno(&self) -> i32 {
        match self {
            Self::NoRights { .. }
            | Self::Revoked { .. }
            | Self::Expired { .. }
            | Self::AccessEnded(_)
            | Self::NotRegistered { .. }
            | Self::NotTheOwners { .. }
            | Self::NotLoggedIn
            | Self::ServerUnreachable(_)
            | Self::Server(_)
            | Self::CannotSign(_) => libc::EACCES,
            Self::BadLicence(_) | Self::Io(_) => libc::EIO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::AccessError;
    use crate::policy::Email;

    #[test]
    fn refusals_are_eacces_and_breakage_is_eio() {
        let owner = || Email::parse("owner@example.com").unwrap();
        for refused in [
            AccessError::NoRights { owner: owner() },
            AccessError::Revoked { owner: owner() },
            AccessError::NotRegistered { owner: owner() },
            AccessError::Expired {
                until: 0,
                offline: true,
            },
            AccessError::NotLoggedIn,
            AccessError::ServerUnreachable("timed out".into()),
            AccessError::Server("500".into()),
        ] {
            assert_eq!(refused.errno(), libc::EACCES, "{refused}");
        }
        assert_eq!(AccessError::BadLicence("signature".into()).errno(), libc::EIO);
        assert_eq!(AccessError::Io(std::io::Error::other("disk")).errno(), libc::EIO);
    }
}
