//! The content registry: registration, sharing, revocation, listings and
//! the access log.

use serde::{Deserialize, Serialize};

use crate::policy::{Grant, Policy, PublishingLicence};

/// Most publishing licences one `POST /v1/content/batch` takes (about
/// 130 KiB of JSON, within the server's body limit).
pub const REGISTER_BATCH_MAX: usize = 100;

/// `POST /v1/content`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RegisterContent {
    /// The owner-signed publishing licence from the file header.
    pub publishing_licence: PublishingLicence,
}

/// `POST /v1/content/batch`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RegisterContentBatch {
    /// Owner-signed publishing licences, each as `POST /v1/content` takes
    /// it; at most [`REGISTER_BATCH_MAX`].
    pub publishing_licences: Vec<PublishingLicence>,
}

/// The outcome of each licence of a batch, in order.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct BatchOutcome {
    /// One per licence sent.
    pub results: Vec<ItemOutcome>,
}

/// One licence's outcome: the status `POST /v1/content` would have
/// answered (201 registered, 200 already registered as sent, else an
/// error with its code and message).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct ItemOutcome {
    /// The content id, when the licence decodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_id: Option<String>,
    /// HTTP status of this item.
    pub status: u16,
    /// Error code, for a failed item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Error message, for a failed item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A registered content as the API shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct ContentInfo {
    /// Content id (hex).
    pub content_id: String,
    /// Owner's address: the account that registered it.
    pub owner: String,
    /// Hash of the registered publishing licence (hex), as use licences
    /// name it: a file whose header carries another licence is not this
    /// content.
    pub licence_hash: String,
    /// Current policy (the registry's, which sharing changes): every grant
    /// for the owner, only the grants naming the caller (or their domain)
    /// for anyone else.
    pub policy: Policy,
    /// Whether the owner revoked it.
    pub revoked: bool,
    /// RFC 3339 time the file was protected.
    pub created_at: String,
    /// RFC 3339 time it was registered here.
    pub registered_at: String,
}

/// `POST /v1/content/{id}/licence`.
#[derive(Clone, Debug, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LicenceRequest {
    /// Base64 of the caller's device certificate: with it, a licence whose
    /// rights include `edit` comes with an edit certificate for the key it
    /// certifies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_certificate: Option<String>,
}

/// `POST /v1/content/{id}/revoke`: an empty object.
#[derive(Clone, Debug, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// `PUT /v1/content/{id}/grants`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PutGrants {
    /// Grants to add, or to replace for the same principal.
    pub grants: Vec<Grant>,
    /// The file's name as its owner calls it: put in the invitation mail
    /// so that recipients know what was shared, and not stored.
    #[serde(default)]
    pub file_name: Option<String>,
}

/// Items a page of `GET /v1/content` holds when the query names no limit.
pub const LIST_LIMIT_DEFAULT: u32 = 200;

/// Most items one page of `GET /v1/content` holds.
pub const LIST_LIMIT_MAX: u32 = 1000;

/// `GET /v1/content` query.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `owned` (default) or `shared`.
    pub role: Option<String>,
    /// Where to go on: the `next` of the previous page, as it came.
    pub cursor: Option<String>,
    /// Items per page, 1 to 1000 (default 200).
    pub limit: Option<u32>,
}

/// One page of a listing, newest first.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct ContentPage {
    /// The items of this page.
    pub contents: Vec<ContentInfo>,
    /// Opaque cursor of the next page (pass it as `cursor` with the same
    /// role, as the same account); none after the last page. Pages never
    /// repeat an item; one registered or shared after the listing began
    /// shows only if older than where the listing has got to.
    #[serde(default)]
    pub next: Option<String>,
}

/// One audit entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    /// RFC 3339 time.
    pub time: String,
    /// Caller.
    pub email: String,
    /// Caller's device.
    pub device_id: String,
    /// Rights issued (empty when refused).
    pub rights: String,
    /// `issued` or `refused` by the server; `opened_offline` or
    /// `refused_offline` for opens a cached licence served, reported late;
    /// `saved` for a version the account saved on that device.
    pub result: String,
    /// Why it was refused.
    pub reason: String,
    /// Client address.
    pub client_addr: String,
    /// Whether a cached licence served this open without the server (the
    /// time is the device's; it reached the server at `reported_at`).
    #[serde(default)]
    pub offline: bool,
    /// RFC 3339 time an offline open or a save reached the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_at: Option<String>,
    /// For a save: the generation of the version saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
}
