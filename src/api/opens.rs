//! Late entries of the access log: opens that licences cached on a device
//! served without the server, reported when it next answers.

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

/// One open served by a cached licence.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReportedOpen {
    /// The content (hex id).
    pub content_id: String,
    /// Unix time of the open, by the device's clock.
    pub at: i64,
    /// Whether the cached licence let it open.
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
