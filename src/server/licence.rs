//! Issuing use licences: rights from the registry's policy, the content key
//! from the publishing licence (unwrapped once, then cached), wrapped to
//! the caller's device with an RSA public operation and signed. Every
//! issue and refusal is audited.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;

use super::auth::Caller;
use super::content::{load, parse_id, policy_of};
use super::error::{ApiError, ApiResult};
use super::json::ApiJson;
use super::metrics::Metrics;
use super::state::AppState;
use crate::api::{ErrorBody, LicenceRequest};
use crate::crypto::{ContentKey, DevicePublicKey};
use crate::policy::{
    ContentId, Email, PublishingLicence, Rights, USE_LICENCE_VERSION, UseLicence, UseLicenceBody, format_time, now,
};
use crate::store::{AuditRecord, ContentRecord};

/// Validity of a licence for content that must be checked online at every open.
const ONLINE_ONLY_TTL: i64 = 60;

/// `POST /v1/content/{id}/licence`.
#[utoipa::path(
    post, path = "/v1/content/{id}/licence", operation_id = "issue_licence", tag = "content",
    summary = "Issue a use licence for the caller's device; audited",
    params(("id" = String, Path, description = "content id (32 hex digits)")),
    request_body = LicenceRequest,
    responses(
        (status = 200, description = "use licence", body = UseLicence),
        (status = 403, description = "no rights, or they ended (`access_expired`)", body = ErrorBody),
        (status = 404, description = "not registered", body = ErrorBody),
        (status = 410, description = "revoked by the owner", body = ErrorBody),
    )
)]
pub async fn issue(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<LicenceRequest>,
) -> ApiResult<axum::Json<UseLicence>> {
    let id = parse_id(&id)?;
    let rec = load(&state, &id).await?;
    let audit = |rights: Rights, result: &str, reason: &str| AuditRecord {
        content_id: rec.id.clone(),
        time: now(),
        email: caller.email.to_string(),
        device_id: caller.device_id.clone(),
        rights: rights.to_string(),
        result: result.into(),
        reason: reason.into(),
        client_addr: addr.ip().to_string(),
    };
    match decide(&state, &caller, &id, &rec, req.device_certificate.as_deref()).await {
        Ok((licence, rights)) => {
            state.store.add_audit(&audit(rights, "issued", "")).await?;
            Metrics::inc(&state.metrics.licences_issued);
            Ok(axum::Json(licence))
        }
        Err(e) if e.status.is_client_error() => {
            state.store.add_audit(&audit(Rights::NONE, "refused", e.code)).await?;
            Metrics::inc(&state.metrics.licences_refused);
            Err(e)
        }
        Err(e) => Err(e),
    }
}

async fn decide(
    state: &AppState,
    caller: &Caller,
    id: &ContentId,
    rec: &ContentRecord,
    device_certificate: Option<&str>,
) -> ApiResult<(UseLicence, Rights)> {
    let t = now();
    let is_owner = rec.owner == caller.email.as_str();
    if rec.revoked && !is_owner {
        return Err(ApiError::new(
            StatusCode::GONE,
            "revoked",
            format!(
                "the owner {} revoked this file; nobody else can open it any more",
                rec.owner
            ),
        ));
    }
    let policy = policy_of(rec)?;
    let rights = policy.rights_for(&caller.email, t);
    if let Some(ended) = policy.access_ended(&caller.email, t).filter(|_| rights.is_empty()) {
        return Err(ApiError::forbidden(
            "access_expired",
            format!(
                "your access to this file expired on {}; ask its owner {} to renew it",
                format_time(ended),
                rec.owner
            ),
        ));
    }
    if rights.is_empty() {
        return Err(ApiError::forbidden(
            "no_rights",
            format!(
                "you have no rights on this file; ask its owner {} to share it with you",
                rec.owner
            ),
        ));
    }
    let offline_days = policy.offline_days.min(state.max_offline_days);
    let mut valid_until = if offline_days == 0 {
        t + ONLINE_ONLY_TTL
    } else {
        t + i64::from(offline_days) * 86_400
    };
    let access_ends = policy.access_ends(&caller.email, t);
    if let Some(end) = access_ends {
        valid_until = valid_until.min(end);
    }
    // Checked before anything is unwrapped: a bad certificate is the
    // caller's mistake, answered 400 whatever their rights.
    let edit_certificate =
        super::certificates::for_licence(state, caller, *id, rights, is_owner, valid_until, device_certificate)?;
    let device_key = device_key(state, &caller.device_id).await?;
    let (cek, licence_hash) = content_key(state, id, rec)?;
    let wrapped_key = device_key.wrap_key(&cek).map_err(ApiError::internal)?;
    let owner = Email::parse(&rec.owner).map_err(ApiError::internal)?;
    let body = UseLicenceBody {
        version: USE_LICENCE_VERSION,
        content_id: *id,
        user: caller.email.clone(),
        device_id: caller.device_id.clone(),
        rights,
        issued_at: t,
        valid_until,
        wrapped_key,
        owner,
        licence_hash,
    };
    let mut licence = UseLicence::sign(&body, &state.keys.signing);
    licence.edit_certificate = edit_certificate;
    licence.access_ends = access_ends;
    Ok((licence, rights))
}

/// The caller's device key from the cache, or the store.
async fn device_key(state: &AppState, id: &str) -> ApiResult<DevicePublicKey> {
    if let Some(k) = state.device_keys.lock().unwrap_or_else(|p| p.into_inner()).get(id) {
        return Ok(k.clone());
    }
    let device = state
        .store
        .get_device(id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("this device was removed; sign in again"))?;
    let key = DevicePublicKey::from_der(&device.public_key).map_err(ApiError::internal)?;
    state
        .device_keys
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .put(id.to_string(), key.clone());
    Ok(key)
}

/// The content key (from the cache, or unwrapped from the registered
/// licence) and the registered licence's hash.
fn content_key(state: &AppState, id: &ContentId, rec: &ContentRecord) -> ApiResult<(ContentKey, [u8; 32])> {
    let pl: PublishingLicence = serde_json::from_str(&rec.pl).map_err(ApiError::internal)?;
    if let Some(k) = state.ceks.lock().unwrap_or_else(|p| p.into_inner()).get(&id.0) {
        return Ok((k.clone(), pl.hash()));
    }
    // Verified at registration; decoding is enough here.
    let body = pl.decode_unverified().map_err(ApiError::internal)?;
    let wrapped = body.wrapped().map_err(ApiError::internal)?;
    let cek = state
        .keys
        .kem
        .unwrap(&wrapped, &body.key_context())
        .map_err(ApiError::internal)?;
    state
        .ceks
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .put(id.0, cek.clone());
    Ok((cek, pl.hash()))
}
