//! Sign-in, the account and its devices as typed methods: [`Api`] for
//! what needs no token, [`Session`] for the rest.

use reqwest::Method;

use super::{Api, ClientError, Session};
use crate::api::{AuthStart, AuthStarted, AuthVerify, DeviceInfo, Me, RefreshRequest, Refreshed, ServerKey, Tokens};

impl Api {
    /// `GET /v1/server-key`: the keys content keys are wrapped to and
    /// use licences are signed with.
    pub fn server_key(&self) -> Result<ServerKey, ClientError> {
        self.call::<(), _>(Method::GET, "/v1/server-key", None, None)
    }

    /// `POST /v1/auth/start`: mails a sign-in code to `email`.
    pub fn start_sign_in(&self, email: &str, signup: bool) -> Result<AuthStarted, ClientError> {
        let body = AuthStart {
            email: email.to_string(),
            signup,
        };
        self.call(Method::POST, "/v1/auth/start", None, Some(&body))
    }

    /// `POST /v1/auth/verify`: trades the mailed code for tokens and
    /// registers (or keeps) this device.
    pub fn verify(&self, body: &AuthVerify) -> Result<Tokens, ClientError> {
        self.call(Method::POST, "/v1/auth/verify", None, Some(body))
    }

    /// `POST /v1/auth/refresh`: a new access token; `refresh_token` is
    /// spent and the answer carries the next one.
    pub fn refresh(&self, refresh_token: &str, device_id: Option<&str>) -> Result<Refreshed, ClientError> {
        let body = RefreshRequest {
            refresh_token: refresh_token.to_string(),
            device_id: device_id.map(str::to_string),
        };
        self.call(Method::POST, "/v1/auth/refresh", None, Some(&body))
    }

    /// `POST /v1/auth/logout`: ends the session `refresh_token` belongs to.
    pub fn logout(&self, refresh_token: &str) -> Result<(), ClientError> {
        let body = RefreshRequest {
            refresh_token: refresh_token.to_string(),
            device_id: None,
        };
        self.call::<_, serde::de::IgnoredAny>(Method::POST, "/v1/auth/logout", None, Some(&body))
            .map(drop)
    }
}

impl Session {
    /// `GET /v1/me`: who the server takes this session for.
    pub fn me(&self) -> Result<Me, ClientError> {
        self.get("/v1/me")
    }

    /// `GET /v1/devices`: the account's devices.
    pub fn devices(&self) -> Result<Vec<DeviceInfo>, ClientError> {
        self.get("/v1/devices")
    }

    /// `DELETE /v1/devices/{id}`: removes a device and ends its sessions.
    pub fn remove_device(&self, id: &str) -> Result<(), ClientError> {
        self.call::<(), serde::de::IgnoredAny>(Method::DELETE, &format!("/v1/devices/{id}"), None)
            .map(drop)
    }
}
