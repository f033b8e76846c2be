//! Issuing use licences: rights from the registry's policy, the content key
//! from the publishing licence (unwrapped once, then cached), wrapped to
//! the caller's device with an RSA public operation and signed. Every
//! issue and refusal is audited.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;

use super::audit_queue::NotWritten;
use super::auth::{BearerHash, Caller, licence_caller};
use super::content::{load, parse_id, policy_of};
use super::error::{ApiError, ApiResult};
use super::json::ApiJson;
use super::metrics::Metrics;
use super::state::{AppState, HotContent};
use crate::api::{ErrorBody, LicenceRequest};
use crate::crypto::{ContentKey, DevicePublicKey};
use crate::policy::{
    ContentId, Email, PublishingLicence, Rights, USE_LICENCE_VERSION, UseLicence, UseLicenceBody, format_time, now,
};
use crate::store::{AuditRecord, ContentRecord, IssueCheck, StoreError};

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
    token: BearerHash,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<LicenceRequest>,
) -> ApiResult<axum::Json<UseLicence>> {
    let id = parse_id(&id)?;
    // The first try may read the token and the content from this
    // replica's caches; a licence is issued only when its audit row's
    // transaction confirms both, and nothing is refused on cached data:
    // either way the next try reads the database.
    for fresh in [false, true, true] {
        let caller = licence_caller(&state, &token.0, fresh).await?;
        let hot = content(&state, &id, fresh).await?;
        let audit = |rights: Rights, result: &str, reason: &str| AuditRecord {
            content_id: hot.rec.id.clone(),
            time: now(),
            email: caller.email.to_string(),
            device_id: caller.device_id.clone(),
            rights: rights.to_string(),
            result: result.into(),
            reason: reason.into(),
            client_addr: addr.ip().to_string(),
        };
        match decide(&state, &caller, &id, &hot, req.device_certificate.as_deref()).await {
            Ok((licence, rights)) => {
                let check = IssueCheck {
                    token_hash: token.0.to_vec(),
                    now: now(),
                    policy: hot.rec.policy.clone(),
                    revoked: hot.rec.revoked,
                };
                match state.audit.write(audit(rights, "issued", ""), Some(check)).await {
                    Ok(()) => {
                        Metrics::inc(&state.metrics.licences_issued);
                        return Ok(axum::Json(licence));
                    }
                    Err(NotWritten::CheckFailed) => {
                        state.tokens.remove(&token.0);
                        state.contents.remove(&id.0);
                    }
                    Err(NotWritten::Store(e)) => return Err(StoreError::Corrupt(e).into()),
                }
            }
            Err(e) if e.status.is_client_error() && !fresh => {}
            Err(e) if e.status.is_client_error() => {
                if let Err(NotWritten::Store(s)) = state.audit.write(audit(Rights::NONE, "refused", e.code), None).await
                {
                    return Err(StoreError::Corrupt(s).into());
                }
                Metrics::inc(&state.metrics.licences_refused);
                return Err(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::new(
        StatusCode::CONFLICT,
        "busy",
        "the sharing of this file changed while the licence was made; retry",
    ))
}

/// The content as the licence route reads it: from the cache unless
/// `fresh`, else (and on a miss) from the store, then kept.
async fn content(state: &AppState, id: &ContentId, fresh: bool) -> ApiResult<Arc<HotContent>> {
    if !fresh && let Some(hot) = state.contents.get(&id.0) {
        return Ok(hot);
    }
    let rec = load(state, id).await?;
    let pl: PublishingLicence = serde_json::from_str(&rec.pl).map_err(ApiError::internal)?;
    let hot = Arc::new(HotContent {
        policy: policy_of(&rec)?,
        owner: Email::parse(&rec.owner).map_err(ApiError::internal)?,
        licence_hash: pl.hash(),
        rec,
    });
    state.contents.put(id.0, hot.clone());
    Ok(hot)
}

async fn decide(
    state: &AppState,
    caller: &Caller,
    id: &ContentId,
    hot: &HotContent,
    device_certificate: Option<&str>,
) -> ApiResult<(UseLicence, Rights)> {
    let t = now();
    let rec = &hot.rec;
    let policy = &hot.policy;
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
    let wrapped_key = wrapped_key(state, id, &caller.device_id, &device_key, rec)?;
    let body = UseLicenceBody {
        version: USE_LICENCE_VERSION,
        content_id: *id,
        user: caller.email.clone(),
        device_id: caller.device_id.clone(),
        rights,
        issued_at: t,
        valid_until,
        wrapped_key,
        owner: hot.owner.clone(),
        licence_hash: hot.licence_hash,
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

/// The content key wrapped to the caller's device: kept from an earlier
/// licence of the same device for the same content, or made with one RSA
/// public operation. Reusing it is safe: it only ever goes to that same
/// device key (a device id names one key for good), the content key of a
/// content never changes, and the wrap says nothing a licence for that
/// device does not already say; whether the caller may have it at all is
/// decided before, on every request.
fn wrapped_key(
    state: &AppState,
    id: &ContentId,
    device_id: &str,
    device_key: &DevicePublicKey,
    rec: &ContentRecord,
) -> ApiResult<Vec<u8>> {
    let key = (id.0, device_id.to_string());
    if let Some(w) = state.wraps.as_ref().and_then(|c| c.get(&key)) {
        return Ok(w);
    }
    let cek = content_key(state, id, rec)?;
    let w = device_key.wrap_key(&cek).map_err(ApiError::internal)?;
    if let Some(c) = &state.wraps {
        c.put(key, w.clone());
    }
    Ok(w)
}

/// The content key, from the cache or unwrapped from the registered licence.
fn content_key(state: &AppState, id: &ContentId, rec: &ContentRecord) -> ApiResult<ContentKey> {
    if let Some(k) = state.ceks.lock().unwrap_or_else(|p| p.into_inner()).get(&id.0) {
        return Ok(k.clone());
    }
    let pl: PublishingLicence = serde_json::from_str(&rec.pl).map_err(ApiError::internal)?;
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
    Ok(cek)
}
