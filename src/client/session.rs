//! A logged-in session: the API client plus tokens, refreshing the access
//! token silently from the refresh token kept in the keystore.
//!
//! The access token is kept in the keystore too, beside the refresh token,
//! and shared by every process of the user until it is about to expire: a
//! command is a new process, and if each refreshed, a script or a test
//! polling `rights status` would spend a refresh token per call, each
//! counted by the server as a sign-in (30 a minute per address), and be
//! refused with 429 within seconds, as would everything after it.

use std::sync::{Arc, Mutex};

use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::keystore::{ACCESS_TOKEN, REFRESH_TOKEN};
use super::{Api, ClientError, Keystore};
use crate::policy::now;

/// A stored access token is used while it has at least this long to live.
const ACCESS_MARGIN_SECS: i64 = 60;

/// The keystore entry of an access token that expires at `expires_at`
/// (RFC 3339): what sign-in and refresh store under [`ACCESS_TOKEN`].
pub fn access_entry(token: &str, expires_at: &str) -> String {
    let expires = time::OffsetDateTime::parse(expires_at, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .unwrap_or_default();
    format!("{expires} {token}")
}

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

    /// The access token another process of this user stored, while it
    /// stays valid for [`ACCESS_MARGIN_SECS`] more at least.
    fn stored_access(&self) -> Option<String> {
        let v = self.keystore.get(ACCESS_TOKEN).ok()??;
        let (expires, token) = std::str::from_utf8(&v).ok()?.split_once(' ')?;
        (expires.parse::<i64>().ok()? > now() + ACCESS_MARGIN_SECS).then(|| token.to_string())
    }

    /// Swaps the refresh token for a new pair, unless another process did
    /// so since `stale` (the access token the server refused, if any) was
    /// stored. The server spends a refresh token on use and ends the
    /// session when a spent one comes back, so the read-send-store runs
    /// under a lock shared by every process of this user (a mount and a
    /// command refreshing at the same moment would otherwise both send the
    /// same token).
    fn refresh(&self, stale: Option<&str>) -> Result<String, ClientError> {
        let dir = &self.keystore.paths().data_dir;
        std::fs::create_dir_all(dir)?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("refresh.lock"))?;
        super::pending::lock(&lock, true)?;
        if let Some(t) = self.stored_access().filter(|t| Some(t.as_str()) != stale) {
            *self.access.lock().unwrap_or_else(|p| p.into_inner()) = Some(t.clone());
            return Ok(t);
        }
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
        let access = access_entry(&pair.access_token, &pair.access_expires_at);
        self.keystore.set_many(&[
            (REFRESH_TOKEN, pair.refresh_token.as_bytes()),
            (ACCESS_TOKEN, access.as_bytes()),
        ])?;
        *self.access.lock().unwrap_or_else(|p| p.into_inner()) = Some(pair.access_token.clone());
        Ok(pair.access_token)
    }

    fn token(&self) -> Result<String, ClientError> {
        let cached = self.access.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(t) = cached {
            return Ok(t);
        }
        if let Some(t) = self.stored_access() {
            *self.access.lock().unwrap_or_else(|p| p.into_inner()) = Some(t.clone());
            return Ok(t);
        }
        self.refresh(None)
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
                let t = self.refresh(Some(&t))?;
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
