//! Where the client keeps its files: XDG config, data and cache folders
//! (so that `XDG_CONFIG_HOME` and friends give each user, or each test
//! user, a home of their own).

use std::path::PathBuf;

use super::ClientError;

/// The client's three folders.
#[derive(Clone, Debug)]
pub struct Paths {
    /// `config.toml` (server, identity, preferences).
    pub config_dir: PathBuf,
    /// Owner licences, the registration queue, the credential file, this
    /// device's certificate from the server (`device-certificate`).
    pub data_dir: PathBuf,
    /// Cached use licences.
    pub cache_dir: PathBuf,
}

impl Paths {
    /// The XDG folders of the current user, honouring `XDG_*_HOME`.
    pub fn from_env() -> Result<Self, ClientError> {
        let d = directories::ProjectDirs::from("org", "rightsfs", "rightsfs")
            .ok_or_else(|| ClientError::Config("cannot find a home directory: set HOME or XDG_CONFIG_HOME".into()))?;
        Ok(Self {
            config_dir: d.config_dir().to_path_buf(),
            data_dir: d.data_dir().to_path_buf(),
            cache_dir: d.cache_dir().to_path_buf(),
        })
    }

    /// The configuration file.
    pub fn config_file(&self) -> PathBuf {
        self.config_dir.join("config.toml")
    }

    /// The passphrase-sealed credential file (used with `keystore = "file"`).
    pub fn credential_file(&self) -> PathBuf {
        self.data_dir.join("credentials.sealed")
    }

    /// Owner licences of content protected on this device.
    pub fn owner_licences(&self) -> PathBuf {
        self.data_dir.join("owner-licences")
    }

    /// Publishing licences waiting to be registered with the server.
    pub fn queue_dir(&self) -> PathBuf {
        self.data_dir.join("pending")
    }

    /// Records of this user's running mounts.
    pub fn mounts_dir(&self) -> PathBuf {
        self.data_dir.join("mounts")
    }

    /// Opens served from cached licences, sealed, until they are reported.
    pub fn opens_dir(&self) -> PathBuf {
        self.data_dir.join("opens")
    }

    /// Cached server-signed use licences.
    pub fn licence_cache(&self) -> PathBuf {
        self.cache_dir.join("licences")
    }
}
