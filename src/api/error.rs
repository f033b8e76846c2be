//! The shape of every error answer.

use serde::{Deserialize, Serialize};

/// Every 4xx and 5xx answer: `{"error": {"code": ..., "message": ...}}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// One error.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// Stable, machine-readable code (`not_owner`, `revoked`, ...).
    pub code: String,
    /// A sentence for people, saying what to do next.
    pub message: String,
}
