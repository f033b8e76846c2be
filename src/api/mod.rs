//! The HTTP API's wire types: every request and response body the server
//! takes and sends, defined once so that the server and the client cannot
//! drift apart. The server derives its OpenAPI document from them.
//!
//! Requests refuse unknown fields, so that a typo is an error instead of a
//! silently ignored option. Responses accept unknown fields, so that an
//! older client keeps working with a newer server.

mod account;
mod content;
mod error;
mod opens;
#[cfg(feature = "server")]
mod schema;
mod send;

pub use account::{
    AuthStart, AuthStarted, AuthVerify, DeviceInfo, Me, RefreshRequest, Refreshed, RemovedDevicesPage,
    RemovedDevicesQuery, ServerKey, Tokens, WriterCertificate, WriterCertificateRequest,
};
pub use content::{
    AuditEntry, BatchOutcome, ContentInfo, ContentPage, Empty, ItemOutcome, LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX,
    LicenceRequest, ListQuery, PutGrants, REGISTER_BATCH_MAX, RegisterContent, RegisterContentBatch,
};
pub use error::{ErrorBody, ErrorDetail};
pub use opens::{OpensRecorded, REPORT_OPENS_MAX, ReportOpens, ReportedOpen};
pub use send::{SendFile, SentOutcome};
