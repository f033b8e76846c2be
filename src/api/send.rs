//! Mailing a protected file through the server.

use serde::{Deserialize, Serialize};

/// `POST /v1/content/{id}/send`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
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
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct SentOutcome {
    /// Recipients mailed.
    pub sent: Vec<String>,
    /// The link in the mails that opens the file in the web viewer (none
    /// when the server keeps no copies).
    pub link: Option<String>,
    /// RFC 3339 time the server deletes its copy.
    pub kept_until: Option<String>,
}
