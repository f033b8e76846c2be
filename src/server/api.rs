//! Request and response bodies of the HTTP API. Requests refuse unknown
//! fields so that a typo is an error instead of a silently ignored option.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use crate::policy::{Grant, Policy, PublishingLicence};

/// A JSON body whose every rejection (syntax, type, content type, size)
/// answers in the API's error shape.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(e) => Err(json_rejection(e)),
        }
    }
}

fn json_rejection(e: JsonRejection) -> ApiError {
    match e {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with the header Content-Type: application/json",
        ),
        JsonRejection::JsonSyntaxError(e) => ApiError::bad_request(
            "malformed_json",
            format!("the body is not valid JSON ({}); fix it and retry", e.body_text()),
        ),
        JsonRejection::JsonDataError(e) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            format!("{}; fix the request and retry", e.body_text()),
        ),
        JsonRejection::BytesRejection(_) => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "the body is larger than the server accepts (256 KiB); send less",
        ),
        other => ApiError::bad_request("bad_body", format!("{}; fix the request and retry", other.body_text())),
    }
}

/// `GET /v1/server-key`.
#[derive(Serialize)]
pub struct ServerKeyResponse {
    /// Stable id of this server's key set.
    pub server_id: String,
    /// X25519 public key (hex) content keys are wrapped to.
    pub kem_public_key: String,
    /// Ed25519 public key (hex) that signs use licences.
    pub signing_public_key: String,
}

/// `POST /v1/auth/start`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthStart {
    /// Address to mail the code to.
    pub email: String,
    /// Sign-up (true) or login (false): only the mail's wording differs.
    #[serde(default)]
    pub signup: bool,
}

/// Answer to `POST /v1/auth/start`.
#[derive(Serialize)]
pub struct AuthStarted {
    /// Always true: the answer does not reveal whether the address is known.
    pub sent: bool,
    /// Seconds the code stays valid.
    pub expires_in: i64,
}

/// `POST /v1/auth/verify`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthVerify {
    /// Address the code was sent to.
    pub email: String,
    /// The code from the mail.
    pub code: String,
    /// Name of the new device, shown in device lists.
    pub device_name: String,
    /// Base64 SubjectPublicKeyInfo DER of the device's RSA-2048 key.
    pub device_public_key: String,
    /// The device this machine was signed in as before: it is kept (same
    /// id, new key and tokens) instead of adding another, when it belongs
    /// to the same address.
    #[serde(default)]
    pub replace_device: Option<String>,
    /// A device that only reads (a browser, whose WebCrypto key is bound to
    /// RSA-OAEP): it gets use licences but never signs publishing licences.
    #[serde(default)]
    pub reader_only: bool,
}

/// Answer to `POST /v1/auth/verify`.
#[derive(Serialize)]
pub struct Tokens {
    /// Bearer token for `Authorization`, valid 15 minutes.
    pub access_token: String,
    /// Long-lived, revocable token to get new access tokens.
    pub refresh_token: String,
    /// Id of the device just registered.
    pub device_id: String,
    /// The normalised address.
    pub email: String,
    /// RFC 3339 expiry of the access token.
    pub access_expires_at: String,
}

/// `POST /v1/auth/refresh` and `/v1/auth/logout`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token from verify.
    pub refresh_token: String,
    /// The device the token was issued to: when the token is no longer
    /// valid because that device was removed, the answer says so
    /// (`device_removed`). Device ids are random 128-bit values.
    #[serde(default)]
    pub device_id: Option<String>,
}

/// Answer to `POST /v1/auth/refresh`.
#[derive(Serialize)]
pub struct Refreshed {
    /// A new bearer token.
    pub access_token: String,
    /// The refresh token to use next time; the one sent no longer works.
    pub refresh_token: String,
    /// RFC 3339 expiry of the access token.
    pub access_expires_at: String,
}

/// `GET /v1/me`.
#[derive(Serialize)]
pub struct Me {
    /// The caller's address.
    pub email: String,
    /// The caller's device.
    pub device_id: String,
}

/// One entry of `GET /v1/devices`.
#[derive(Serialize)]
pub struct DeviceInfo {
    /// Device id.
    pub id: String,
    /// Name given at login.
    pub name: String,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// RFC 3339 time of last use.
    pub last_seen: String,
    /// Whether the device only reads (a browser).
    pub reader_only: bool,
}

/// `POST /v1/content`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterContent {
    /// The owner-signed publishing licence from the file header.
    pub publishing_licence: PublishingLicence,
}

/// `POST /v1/content/batch`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterContentBatch {
    /// Owner-signed publishing licences, each as `POST /v1/content` takes it.
    pub publishing_licences: Vec<PublishingLicence>,
}

/// The outcome of each licence of a batch, in order.
#[derive(Serialize, Deserialize)]
pub struct BatchOutcome {
    /// One per licence sent.
    pub results: Vec<ItemOutcome>,
}

/// One licence's outcome: the status `POST /v1/content` would have
/// answered (201 registered, 200 already registered as sent, else an
/// error with its code and message).
#[derive(Serialize, Deserialize)]
pub struct ItemOutcome {
    /// The content id, when the licence decodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_id: Option<String>,
    /// HTTP status of this item.
    pub status: u16,
    /// Error code, for a failed item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Error message, for a failed item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A registered content as the API shows it.
#[derive(Serialize)]
pub struct ContentInfo {
    /// Content id (hex).
    pub content_id: String,
    /// Owner's address: the account that registered it.
    pub owner: String,
    /// Hash of the registered publishing licence (hex), as use licences
    /// name it: a file whose header carries another licence is not this
    /// content.
    pub licence_hash: String,
    /// Current policy (the registry's, which sharing changes).
    pub policy: Policy,
    /// Whether the owner revoked it.
    pub revoked: bool,
    /// RFC 3339 time the file was protected.
    pub created_at: String,
    /// RFC 3339 time it was registered here.
    pub registered_at: String,
}

/// `POST /v1/content/{id}/licence`, `/revoke`: an empty object.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// `PUT /v1/content/{id}/grants`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutGrants {
    /// Grants to add, or to replace for the same principal.
    pub grants: Vec<Grant>,
    /// The file's name as its owner calls it: put in the invitation mail
    /// so that recipients know what was shared, and not stored.
    #[serde(default)]
    pub file_name: Option<String>,
}

/// `GET /v1/content` query.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `owned` (default) or `shared`.
    pub role: Option<String>,
}

/// One audit entry.
#[derive(Serialize)]
pub struct AuditEntry {
    /// RFC 3339 time.
    pub time: String,
    /// Caller.
    pub email: String,
    /// Caller's device.
    pub device_id: String,
    /// Rights issued (empty when refused).
    pub rights: String,
    /// `issued` or `refused`.
    pub result: String,
    /// Why it was refused.
    pub reason: String,
    /// Client address.
    pub client_addr: String,
}

/// `POST /v1/content/{id}/send`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendFile {
    /// Recipients' addresses.
    pub to: Vec<String>,
    /// Rights given to recipients who hold none yet (default `view`).
    #[serde(default)]
    pub rights: Option<String>,
    /// The file's name, as attached (`NAME.rights`).
    pub name: String,
    /// The protected file, base64.
    pub file: String,
    /// A message protected as a file of its own (registered, owned by the
    /// sender), base64: attached first, shown first by the viewer link.
    #[serde(default)]
    pub message_file: Option<String>,
}

/// Answer to `POST /v1/content/{id}/send`.
#[derive(Serialize)]
pub struct SentOutcome {
    /// Recipients mailed.
    pub sent: Vec<String>,
    /// The link in the mails that opens the file in the web viewer (none
    /// when the server keeps no copies).
    pub link: Option<String>,
    /// RFC 3339 time the server deletes its copy.
    pub kept_until: Option<String>,
}
