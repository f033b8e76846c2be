//! The client side of rightsfs, below the command line: configuration and
//! XDG paths, secret storage, the HTTP API client, the registration
//! queue and the registrar that sends it. The `rights` commands and the mount build on this.

mod account;
mod claims;
mod config;
mod content;
mod http;
mod identity;
mod index;
mod keystore;
mod paths;
mod pending;
mod queue;
mod registrar;
mod secret_service;
mod session;
mod source;

pub use crate::api::REGISTER_BATCH_MAX;
pub use crate::durable::{ensure_private_dir, sync_dir, write_private_atomic};
pub use claims::{Claim, Claims};
pub use config::{Config, KeystoreKind, SmtpConfig};
pub use http::{Api, DEFAULT_TIMEOUT};
pub use identity::{device_key, licensing, session};
pub use index::{Index, IndexEntry};
pub use keystore::{ACCESS_TOKEN, DEVICE_KEY, Keystore, REFRESH_TOKEN};
pub use paths::Paths;
pub use pending::{Batch, PendingLog, SendRule};
pub use queue::RegistrationQueue;
pub use registrar::{Outcome, Registrar, Registration, transient};
pub use session::{Session, access_entry};

/// Why a client operation failed. Every message says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No identity on this device yet (or it was logged out).
    #[error("not logged in on this device: run `rights login EMAIL --server URL` (or `rights signup`)")]
    NotLoggedIn,
    /// The server could not be reached in time.
    #[error("cannot reach the server at {url} ({reason}); check the network and try again")]
    Unreachable {
        /// The server.
        url: String,
        /// What the transport said.
        reason: String,
    },
    /// The server answered with an error.
    #[error("{message} (server said {status} {code})")]
    Server {
        /// HTTP status.
        status: u16,
        /// Machine-readable code from the error body.
        code: String,
        /// Human-readable message from the error body.
        message: String,
    },
    /// This device was removed from the account (from another device).
    #[error("this device was removed from your account on the server: run `rights login {0}` to sign it in again")]
    DeviceRemoved(String),
    /// The login session is no longer valid.
    #[error("your session has expired or was revoked: run `rights login {0}` again")]
    SessionExpired(String),
    /// Configuration could not be read or is incomplete.
    #[error("configuration problem: {0}")]
    Config(String),
    /// Secrets could not be read or written.
    #[error("{0}")]
    Keystore(String),
    /// The desktop keyring (Secret Service) does not answer or cannot
    /// keep secrets: no D-Bus session, no keyring daemon on it, or a
    /// locked collection. Carries what the layers below said.
    #[error(
        "this device's keys are kept in the desktop keyring (Secret Service), which cannot be used here \
         ({0}); run this in the desktop session that holds them (or start and unlock its keyring daemon, \
         e.g. `gnome-keyring-daemon --unlock`), or sign in again with `rights login EMAIL --keystore file`"
    )]
    NoSecretService(String),
    /// A local file operation failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl ClientError {
    /// The error code from a server error, if this is one.
    pub fn server_code(&self) -> Option<(u16, &str)> {
        match self {
            Self::Server { status, code, .. } => Some((*status, code.as_str())),
            _ => None,
        }
    }
}
