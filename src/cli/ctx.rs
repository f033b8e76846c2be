//! What every command needs: folders, configuration, secrets, and (made
//! on demand) the server session and the licence store.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context as _;

use crate::client::{ClientError, Config, Keystore, KeystoreKind, Paths, Session};
use crate::licence::Licensing;

/// Per-invocation state.
pub struct Ctx {
    pub paths: Paths,
    pub config: Config,
    pub keystore: Arc<Keystore>,
    /// `--keystore` was given: a sign-in keeps the secrets there or fails,
    /// never falling back to another store.
    pub keystore_chosen: bool,
    pub json: bool,
    /// Print nothing on success (commands run inside other commands).
    pub quiet: bool,
    licensing: OnceLock<Arc<Licensing>>,
    session: OnceLock<Arc<Session>>,
}

/// Bound on each request to the server.
pub fn timeout() -> Duration {
    std::env::var("RIGHTS_TIMEOUT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(crate::client::DEFAULT_TIMEOUT)
}

impl Ctx {
    pub fn new(keystore: Option<KeystoreKind>, json: bool) -> anyhow::Result<Self> {
        let paths = Paths::from_env()?;
        let mut config = Config::load(&paths)?;
        if let Some(k) = keystore {
            config.keystore = k;
        }
        Ok(Self {
            keystore: Arc::new(Keystore::new(config.keystore, &paths)),
            keystore_chosen: keystore.is_some(),
            paths,
            config,
            json,
            quiet: false,
            licensing: OnceLock::new(),
            session: OnceLock::new(),
        })
    }

    /// An authenticated session with the configured server, made once per
    /// context so that its access token serves every request (each new
    /// session would refresh, which the server counts as a sign-in).
    pub fn session(&self) -> Result<Arc<Session>, ClientError> {
        if let Some(s) = self.session.get() {
            return Ok(s.clone());
        }
        let s = Arc::new(crate::client::session(&self.config, self.keystore.clone(), timeout())?);
        let _ = self.session.set(s.clone());
        Ok(s)
    }

    /// The licence store, with the server as source.
    pub fn licensing(&self) -> anyhow::Result<Arc<Licensing>> {
        if let Some(l) = self.licensing.get() {
            return Ok(l.clone());
        }
        let l = Arc::new(crate::client::licensing(
            &self.paths,
            &self.config,
            self.keystore.clone(),
            timeout(),
            true,
        )?);
        let _ = self.licensing.set(l.clone());
        Ok(l)
    }

    /// A second context for the same user (e.g. to run a command quietly
    /// inside another); the licence store is shared.
    pub fn clone_for_quiet(&self) -> anyhow::Result<Self> {
        let l = OnceLock::new();
        if let Some(x) = self.licensing.get() {
            let _ = l.set(x.clone());
        }
        let session = OnceLock::new();
        if let Some(x) = self.session.get() {
            let _ = session.set(x.clone());
        }
        Ok(Self {
            paths: self.paths.clone(),
            config: self.config.clone(),
            keystore: self.keystore.clone(),
            keystore_chosen: self.keystore_chosen,
            json: self.json,
            quiet: true,
            licensing: l,
            session,
        })
    }

    /// Keeps this device's secrets in `kind` from now on (in config.toml
    /// once the configuration is saved).
    pub fn switch_keystore(&mut self, kind: KeystoreKind) {
        self.config.keystore = kind;
        self.keystore = Arc::new(Keystore::new(kind, &self.paths));
    }

    /// Saves the configuration.
    pub fn save_config(&self) -> anyhow::Result<()> {
        self.config.save(&self.paths).context("saving config.toml")
    }
}
