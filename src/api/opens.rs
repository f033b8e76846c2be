//! Late entries of the access log: opens that licences cached on a device
//! served without the server, and versions its account saved, reported
//! when it next answers.

use serde::{Deserialize, Serialize};

/// Most opens one `POST /v1/opens` takes.
pub const REPORT_OPENS_MAX: usize = 100;

/// `POST /v1/opens`: the caller's device reports for itself only (the
/// account and device come from its token).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReportOpens {
    /// At most [`REPORT_OPENS_MAX`].
    pub opens: Vec<ReportedOpen>,
}

/// One open served by a cached licence, or one version saved.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReportedOpen {
    /// `open` (when absent) or `save`: a version of the content the
    /// caller's account saved on this device, taken only from the owner
    /// or an account holding `edit` (403 `not_an_editor` for the whole
    /// request otherwise).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// For a save: the generation of the version saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    /// The content (hex id).
    pub content_id: String,
    /// Unix time of the open, by the device's clock.
    pub at: i64,
    /// Whether the cached licence let it open (true for a save).
    pub opened: bool,
    /// Rights the cached licence gave (empty when refused).
    #[serde(default)]
    pub rights: String,
    /// Why it was refused (a short code), or empty.
    #[serde(default)]
    pub reason: String,
}

/// Answer to `POST /v1/opens`, item by item in the order sent.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct OpensRecorded {
    /// `recorded`, `duplicate` (already in the log) or why it was not:
    /// `not_found`, `no_licence` (this device was never issued one for the
    /// content), `bad_time`, `bad_result`.
    pub results: Vec<String>,
}
