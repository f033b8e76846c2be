//! A small blocking HTTP client for the server's JSON API. Blocking keeps
//! it usable from plain threads (FUSE workers) as well as the CLI; every
//! request has a bounded timeout so that no caller hangs on the network.

use std::time::Duration;

use reqwest::Method;
use reqwest::blocking::{Client, RequestBuilder, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::ClientError;
use crate::api::ErrorBody;

/// Default bound on one request, connect included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// An unauthenticated connection to one server.
#[derive(Clone, Debug)]
pub struct Api {
    base: String,
    http: Client,
}

impl Api {
    /// A client for `base` (e.g. `https://rights.example.com`) with a
    /// per-request timeout.
    pub fn new(base: &str, timeout: Duration) -> Result<Self, ClientError> {
        let base = base.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::Config(format!(
                "'{base}' is not a server URL (expected https://host or http://127.0.0.1:PORT)"
            )));
        }
        let http = Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("rights/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Config(format!("HTTP client: {e}")))?;
        Ok(Self { base, http })
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn unreachable(&self, e: reqwest::Error) -> ClientError {
        let reason = if e.is_timeout() {
            "timed out".to_string()
        } else if e.is_connect() {
            "connection failed".to_string()
        } else {
            e.to_string()
        };
        ClientError::Unreachable {
            url: self.base.clone(),
            reason,
        }
    }

    /// Sends a request and decodes a JSON answer (or `()` from an empty one).
    pub fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let mut rb: RequestBuilder = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let resp = rb.send().map_err(|e| self.unreachable(e))?;
        self.decode(resp)
    }

    fn decode<T: DeserializeOwned>(&self, resp: Response) -> Result<T, ClientError> {
        let status = resp.status();
        let bytes = resp.bytes().map_err(|e| self.unreachable(e))?;
        if !status.is_success() {
            let (code, message) = match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(b) => (b.error.code, b.error.message),
                // Something in between (a proxy) answered, not the server.
                Err(_) => ("unknown".to_string(), format!("the server answered {status}")),
            };
            return Err(ClientError::Server {
                status: status.as_u16(),
                code,
                message,
            });
        }
        let raw: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
        serde_json::from_slice(raw).map_err(|e| ClientError::Server {
            status: status.as_u16(),
            code: "bad_response".into(),
            message: format!("unexpected answer from the server: {e}"),
        })
    }
}
