//! The caller's identity and devices.

use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::state::AppState;
use crate::api::{DeviceInfo, ErrorBody, Me};
use crate::policy::format_time;

/// `GET /v1/me`.
#[utoipa::path(
    get, path = "/v1/me", tag = "account",
    summary = "The caller",
    responses((status = 200, description = "caller", body = Me))
)]
pub async fn me(caller: Caller) -> axum::Json<Me> {
    axum::Json(Me {
        email: caller.email.to_string(),
        device_id: caller.device_id,
    })
}

/// `GET /v1/devices`.
#[utoipa::path(
    get, path = "/v1/devices", tag = "account",
    summary = "The caller's devices",
    responses((status = 200, description = "devices", body = Vec<DeviceInfo>))
)]
pub async fn devices(State(state): State<AppState>, caller: Caller) -> ApiResult<axum::Json<Vec<DeviceInfo>>> {
    let list = state.store.list_devices(caller.email.as_str()).await?;
    Ok(axum::Json(
        list.into_iter()
            .map(|d| DeviceInfo {
                id: d.id,
                name: d.name,
                created_at: format_time(d.created_at),
                last_seen: format_time(d.last_seen),
                reader_only: d.reader,
            })
            .collect(),
    ))
}

/// `DELETE /v1/devices/{id}`: the device loses its tokens at once.
#[utoipa::path(
    delete, path = "/v1/devices/{id}", tag = "account",
    summary = "Remove a device and its tokens",
    params(("id" = String, Path, description = "device id")),
    responses(
        (status = 204, description = "removed"),
        (status = 404, description = "no such device of the caller's", body = ErrorBody),
    )
)]
pub async fn delete_device(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    if state.store.delete_device(caller.email.as_str(), &id).await? {
        tracing::info!(email = %caller.email, device = %id, "device removed");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(
            "no_device",
            format!("you have no device {id}; list them with GET /v1/devices"),
        ))
    }
}
