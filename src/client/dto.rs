//! The few server answers the client needs typed; everything it only
//! displays is handled as JSON values so that display follows the server.

use serde::{Deserialize, Serialize};

/// `GET /v1/server-key`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ServerKeys {
    /// X25519 key content keys are wrapped to (hex).
    #[serde(alias = "kem_public", alias = "kem_key", alias = "wrap_key")]
    pub kem_public_key: String,
    /// Ed25519 key that signs use licences (hex).
    #[serde(alias = "signing_public", alias = "signing_key", alias = "verify_key")]
    pub signing_public_key: String,
}

/// `POST /v1/auth/verify` and `/v1/auth/refresh`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TokenPair {
    /// Short-lived bearer token.
    pub access_token: String,
    /// Long-lived token to get the next access token.
    pub refresh_token: Option<String>,
    /// This device's id (at verify).
    pub device_id: Option<String>,
}

/// One licence's outcome in `POST /v1/content/batch`.
#[derive(Clone, Debug, Deserialize)]
pub struct BatchItem {
    /// The HTTP status `POST /v1/content` would have answered for it.
    pub status: u16,
    /// Error code, for a failed item.
    #[serde(default)]
    pub error: Option<String>,
    /// Error message, for a failed item.
    #[serde(default)]
    pub message: Option<String>,
}

/// `POST /v1/content/batch`.
#[derive(Clone, Debug, Deserialize)]
pub struct BatchResults {
    /// One per licence sent, in order.
    pub results: Vec<BatchItem>,
}
