//! Sign-in, tokens, the account and its devices, and the server's keys.

use serde::{Deserialize, Serialize};

/// `GET /v1/server-key`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct ServerKey {
    /// Stable id of this server's key set.
    pub server_id: String,
    /// X25519 public key (hex) content keys are wrapped to.
    pub kem_public_key: String,
    /// Ed25519 public key (hex) that signs use licences.
    pub signing_public_key: String,
}

/// `POST /v1/auth/start`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AuthStart {
    /// Address to mail the code to.
    pub email: String,
    /// Sign-up (true) or login (false): only the mail's wording differs.
    #[serde(default)]
    pub signup: bool,
}

/// Answer to `POST /v1/auth/start`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct AuthStarted {
    /// Always true: the answer does not reveal whether the address is known.
    pub sent: bool,
    /// Seconds the code stays valid.
    pub expires_in: i64,
}

/// `POST /v1/auth/verify`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
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
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
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
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
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
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct Refreshed {
    /// A new bearer token.
    pub access_token: String,
    /// The refresh token to use next time; the one sent no longer works.
    pub refresh_token: String,
    /// RFC 3339 expiry of the access token.
    pub access_expires_at: String,
}

/// `GET /v1/me`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct Me {
    /// The caller's address.
    pub email: String,
    /// The caller's device.
    pub device_id: String,
}

/// One entry of `GET /v1/devices`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
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

/// `POST /v1/devices/writer-certificate`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct WriterCertificateRequest {
    /// Hex of the device's Ed25519 writer key (32 bytes).
    pub writer_key: String,
    /// Base64 RSA-PSS-SHA256 signature by the device key over
    /// `policy::writer_key_proof(device id, writer key)`.
    pub proof: String,
}

/// Answer to `POST /v1/devices/writer-certificate`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct WriterCertificate {
    /// Base64 of the signed device certificate (docs/FORMAT.md 5.1).
    pub certificate: String,
}

/// `GET /v1/devices/removed` query.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RemovedDevicesQuery {
    /// The last device id of the previous page (its `next`); none for the
    /// first page.
    pub after: Option<String>,
}

/// Answer to `GET /v1/devices/removed`: one signed page of the devices
/// removed from their accounts, in every account (ids and removal times
/// only).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct RemovedDevicesPage {
    /// Base64 of the server-signed page (docs/FORMAT.md, "Removed
    /// devices"): its issue time, where it starts, whether it is the last
    /// page, and each device id with its removal time.
    pub list: String,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(default)]
    pub next: Option<String>,
}
