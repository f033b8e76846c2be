//! `config.toml`: the server this user talks to, who they are on it, the
//! server's public keys (so protecting works offline) and preferences.

use serde::{Deserialize, Serialize};

use super::{ClientError, Paths};
use crate::crypto::{ServerKemPublic, ServerVerifyingKey};
use crate::policy::Email;

/// Where secrets are kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum KeystoreKind {
    /// The desktop keyring: the freedesktop Secret Service over D-Bus
    /// (GNOME Keyring, KWallet).
    #[default]
    Keyring,
    /// A 0600 file sealed with a passphrase (Argon2id), for headless hosts.
    File,
}

/// Outgoing mail settings for `rights send`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// SMTP host.
    pub host: String,
    /// Port (default 587).
    pub port: Option<u16>,
    /// `none` (loopback only), `starttls` (default) or `tls`.
    pub tls: Option<String>,
    /// Login name, if the server needs one.
    pub username: Option<String>,
    /// Password, if the server needs one (prefer `RIGHTS_SMTP_PASSWORD`).
    pub password: Option<String>,
    /// From address (default: the logged-in email).
    pub from: Option<String>,
}

/// The whole configuration file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Base URL of the licensing server.
    pub server_url: Option<String>,
    /// The logged-in address.
    pub email: Option<Email>,
    /// This device's id on the server.
    pub device_id: Option<String>,
    /// Where secrets live.
    #[serde(default)]
    pub keystore: KeystoreKind,
    /// Server X25519 key (hex), fetched at login: content keys are wrapped to it.
    pub server_kem_key: Option<String>,
    /// Server Ed25519 key (hex), fetched at login: licences are checked with it.
    pub server_signing_key: Option<String>,
    /// Default offline validity for newly protected files, in days.
    pub offline_days: Option<u32>,
    /// Mail settings for `rights send`.
    pub smtp: Option<SmtpConfig>,
}

fn hex32(s: &Option<String>, what: &str) -> Result<[u8; 32], ClientError> {
    let s = s.as_deref().ok_or(ClientError::NotLoggedIn)?;
    hex::decode(s).ok().and_then(|v| v.try_into().ok()).ok_or_else(|| {
        ClientError::Config(format!(
            "{what} in config.toml is not 64 hex digits; run `rights login` again"
        ))
    })
}

impl Config {
    /// Loads the file, or an empty configuration if there is none yet.
    pub fn load(paths: &Paths) -> Result<Self, ClientError> {
        let p = paths.config_file();
        match std::fs::read_to_string(&p) {
            Ok(s) => toml::from_str(&s).map_err(|e| ClientError::Config(format!("{}: {e}", p.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(ClientError::Config(format!("{}: {e}", p.display()))),
        }
    }

    /// Saves atomically with mode 0600.
    pub fn save(&self, paths: &Paths) -> Result<(), ClientError> {
        let s = toml::to_string_pretty(self).map_err(|e| ClientError::Config(e.to_string()))?;
        crate::durable::write_private_atomic(&paths.config_file(), s.as_bytes())?;
        Ok(())
    }

    /// The server URL, or a message saying how to set one.
    pub fn server(&self) -> Result<&str, ClientError> {
        self.server_url.as_deref().ok_or(ClientError::NotLoggedIn)
    }

    /// The logged-in address.
    pub fn me(&self) -> Result<&Email, ClientError> {
        self.email.as_ref().ok_or(ClientError::NotLoggedIn)
    }

    /// The server's wrapping key.
    pub fn server_kem(&self) -> Result<ServerKemPublic, ClientError> {
        Ok(ServerKemPublic(hex32(&self.server_kem_key, "server_kem_key")?))
    }

    /// The server's licence-signing key.
    pub fn server_verifying(&self) -> Result<ServerVerifyingKey, ClientError> {
        Ok(ServerVerifyingKey(hex32(
            &self.server_signing_key,
            "server_signing_key",
        )?))
    }
}
