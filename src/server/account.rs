//! The caller's identity and devices.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::state::AppState;
use crate::api::{DeviceInfo, ErrorBody, Me, RemovedDevicesPage, RemovedDevicesQuery};
use crate::policy::{REMOVED_PAGE_MAX, RemovedDevice, RemovedDeviceList, format_time, now};

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

/// `DELETE /v1/devices/{id}`: the device loses its tokens at once, and
/// goes on the list of removed devices (`GET /v1/devices/removed`), so
/// that readers refuse every version it signed, whatever time it claims.
#[utoipa::path(
    delete, path = "/v1/devices/{id}", tag = "account",
    summary = "Remove a device and its tokens",
    params(("id" = String, Path, description = "device id")),
    responses(
        (status = 204, description = "removed; listed as removed from now on"),
        (status = 404, description = "no such device of the caller's", body = ErrorBody),
    )
)]
pub async fn delete_device(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    if state
        .store
        .delete_device(caller.email.as_str(), &id, Some(now()))
        .await?
    {
        tracing::info!(email = %caller.email, device = %id, "device removed");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(
            "no_device",
            format!("you have no device {id}; list them with GET /v1/devices"),
        ))
    }
}

/// `GET /v1/devices/removed`: a page of the devices removed from their
/// accounts, signed with the server's key. Readers refuse every version
/// signed by a device on it, so they need every account's removals, not
/// only the caller's: the list names random device ids and removal times
/// and nothing else, so it does not tell who has an account.
#[utoipa::path(
    get, path = "/v1/devices/removed", operation_id = "removed_devices", tag = "account",
    summary = "The devices removed from their accounts (ids and times), signed, a page at a time",
    params(
        ("after" = Option<String>, Query, description = "the `next` of the previous page; none for the first"),
    ),
    responses(
        (status = 200, description = "one signed page of at most 10,000 devices, by id", body = RemovedDevicesPage),
    )
)]
pub async fn removed_devices(
    State(state): State<AppState>,
    _caller: Caller,
    Query(q): Query<RemovedDevicesQuery>,
) -> ApiResult<axum::Json<RemovedDevicesPage>> {
    let after = q.after.unwrap_or_default();
    if after.len() > 255 {
        return Err(ApiError::bad_request(
            "bad_after",
            "after must be a device id from a previous page",
        ));
    }
    // One more than a page holds tells whether another page follows.
    let mut rows = state
        .store
        .list_removed_devices(&after, REMOVED_PAGE_MAX as i64 + 1)
        .await?;
    let last = rows.len() <= REMOVED_PAGE_MAX;
    rows.truncate(REMOVED_PAGE_MAX);
    let next = (!last).then(|| rows.last().map(|(id, _)| id.clone())).flatten();
    let page = RemovedDeviceList {
        issued_at: now(),
        after,
        last,
        devices: rows
            .into_iter()
            .map(|(device_id, removed_at)| RemovedDevice { device_id, removed_at })
            .collect(),
    };
    Ok(axum::Json(RemovedDevicesPage {
        list: STANDARD.encode(page.sign(&state.keys.signing)),
        next,
    }))
}
