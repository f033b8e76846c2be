//! A logged-in session: the API client plus tokens, refreshing the access
//! token silently from the refresh token kept in the keystore.

use std::sync::{Arc, Mutex};

use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::keystore::REFRESH_TOKEN;
use super::{Api, ClientError, Keystore};

/// Authenticated access to the server for the logged-in user.
pub struct Session {
    api: Api,
    keystore: Arc<Keystore>,
    email: String,
    device_id: Option<String>,
    access: Mutex<Option<String>>,
}

impl Session {
    /// A session that will authenticate on first use.
    pub fn new(api: Api, keystore: Arc<Keystore>, email: String) -> Self {
        Self {
            api,
            keystore,
            email,
            device_id: None,
            access: Mutex::new(None),
        }
    }

    /// Names this device in refreshes, so that a removed device is told so.
    pub fn for_device(mut self, device_id: Option<String>) -> Self {
        self.device_id = device_id;
        self
    }

    /// The unauthenticated client underneath.
    pub fn api(&self) -> &Api {
        &self.api
    }

    /// Swaps the refresh token for a new pair. The server spends a refresh
    /// token on use and ends the session when a spent one comes back, so
    /// the read-send-store runs under a lock shared by every process of
    /// this user (a mount and a command refreshing at the same moment would
    /// otherwise both send the same token).
    fn refresh(&self) -> Result<String, ClientError> {
        let dir = &self.keystore.paths().data_dir;
        std::fs::create_dir_all(dir)?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("refresh.lock"))?;
        super::pending::lock(&lock, true)?;
        let rt = self.keystore.require(REFRESH_TOKEN)?;
        let rt = String::from_utf8_lossy(&rt).into_owned();
        let pair = self
            .api
            .refresh(&rt, self.device_id.as_deref())
            .map_err(|e| match e.server_code() {
                Some((401, "device_removed")) => ClientError::DeviceRemoved(self.email.clone()),
                Some((400 | 401 | 403, _)) => ClientError::SessionExpired(self.email.clone()),
                _ => e,
            })?;
        if pair.refresh_token != rt {
            self.keystore.set(REFRESH_TOKEN, pair.refresh_token.as_bytes())?;
        }
        *self.access.lock().unwrap_or_else(|p| p.into_inner()) = Some(pair.access_token.clone());
        Ok(pair.access_token)
    }

    fn token(&self) -> Result<String, ClientError> {
        let cached = self.access.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match cached {
            Some(t) => Ok(t),
            None => self.refresh(),
        }
    }

    /// An authenticated call; on 401 refreshes the access token once and retries.
    pub fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let t = self.token()?;
        match self.api.call(method.clone(), path, Some(&t), body) {
            Err(e) if e.server_code().is_some_and(|(s, _)| s == 401) => {
                let t = self.refresh()?;
                self.api.call(method, path, Some(&t), body)
            }
            r => r,
        }
    }

    /// GET returning JSON.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call::<(), T>(Method::GET, path, None)
    }

    /// The refresh token, for logout.
    pub fn refresh_token(&self) -> Result<Option<String>, ClientError> {
        Ok(self
            .keystore
            .get(REFRESH_TOKEN)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }
}
