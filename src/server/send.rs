//! Sharing mail sent by the server: `POST /v1/content/{id}/send` takes a
//! protected file (never plaintext), grants `view` (or the rights asked)
//! to recipients who hold none, mails each of them the file with a link
//! that opens it in the web viewer, and keeps the protected bytes for that
//! link (`GET /v1/content/{id}/file`) until the retention ends or the owner
//! revokes.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use base64::Engine;

use super::auth::Caller;
use super::content::{has_grant, load, load_for_sharing, parse_id, policy_of, share_limits, update_policy};
use super::error::{ApiError, ApiResult};
use super::json::ApiJson;
use super::mail::share_mail;
use super::state::AppState;
use crate::api::{ErrorBody, SendFile, SentOutcome};
use crate::policy::{Email, Grant, Principal, Rights, format_time, now};

/// Most recipients of one request.
const MAX_RECIPIENTS: usize = 50;
const MAGIC: &[u8] = b"\x89RIGHTS\n";

/// `POST /v1/content/{id}/send`.
#[utoipa::path(
    post, path = "/v1/content/{id}/send", operation_id = "send_file", tag = "content",
    summary = "Mail the protected file to recipients (owner or holders of share)",
    params(("id" = String, Path, description = "content id (32 hex digits)")),
    request_body = SendFile,
    responses(
        (status = 200, description = "sent", body = SentOutcome),
        (status = 403, description = "neither owner nor holder of share", body = ErrorBody),
        (status = 410, description = "revoked", body = ErrorBody),
        (status = 502, description = "the mail could not be handed to the relay", body = ErrorBody),
    )
)]
pub async fn send(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<SendFile>,
) -> ApiResult<axum::Json<SentOutcome>> {
    let (rec, is_owner) = load_for_sharing(&state, &caller, &id).await?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(req.file.trim())
        .map_err(|_| ApiError::bad_request("bad_file", "file must be the protected file in base64"))?;
    if bytes.len() > state.sent.max_bytes {
        return Err(ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "file_too_large",
            format!("the server mails files up to {} bytes", state.sent.max_bytes),
        ));
    }
    check_is_this_content(&bytes, &rec)?;
    let name = file_name(&req.name)?;
    let message = match &req.message_file {
        Some(m) => Some(message_file(&state, &caller, m).await?),
        None => None,
    };
    if req.to.is_empty() || req.to.len() > MAX_RECIPIENTS {
        return Err(ApiError::bad_request(
            "bad_recipients",
            format!("name 1 to {MAX_RECIPIENTS} recipients"),
        ));
    }
    let mut to: Vec<Email> = req
        .to
        .iter()
        .map(|a| Email::parse(a).map_err(|e| ApiError::bad_request("bad_email", e.to_string())))
        .collect::<ApiResult<_>>()?;
    let rights = match &req.rights {
        Some(r) => Rights::parse(r).map_err(|e| ApiError::bad_request("bad_grant", e.to_string()))?,
        None => Rights::parse("view").map_err(ApiError::internal)?,
    };
    if rights.is_empty() {
        return Err(ApiError::bad_request("bad_grant", "name at least one right"));
    }
    to.sort();
    to.dedup();
    // A sharer hands out what the grants path lets them, no more: the
    // grants end when the sharer's own access does.
    let t = now();
    let policy = policy_of(&rec)?;
    let expires = if is_owner {
        None
    } else {
        policy.access_ends(&caller.email, t)
    };
    let grant_to = |u: &Email| Grant {
        to: Principal::User(u.clone()),
        rights,
        expires,
    };
    if !is_owner {
        let mine = policy.rights_for(&caller.email, t);
        for u in &to {
            share_limits(&policy, &caller.email, mine, &grant_to(u))?;
        }
    }
    // Within the mail limits, or nothing is granted and nothing is sent.
    let addrs: Vec<&str> = to.iter().map(Email::as_str).collect();
    state
        .mail_limits
        .reserve(state.store.as_ref(), caller.email.as_str(), &addrs)
        .await?;
    // Recipients who hold nothing get the rights asked; others keep theirs
    // (a sharer never changes a grant, even one that ended).
    let rec = update_policy(&state, &rec.id, |p| {
        for u in &to {
            let holds = !p.rights_for(u, t).is_empty() || (!is_owner && has_grant(p, &Principal::User(u.clone())));
            if u.as_str() != rec.owner && !holds {
                p.upsert_grant(grant_to(u));
            }
        }
        Ok(())
    })
    .await?;
    let kept = state
        .sent
        .keep(&rec.id, &name, &bytes)
        .await
        .map_err(ApiError::internal)?;
    if let Some((id, bytes)) = &message {
        state
            .sent
            .keep(id, MESSAGE_NAME, bytes)
            .await
            .map_err(ApiError::internal)?;
    }
    let mut link = format!("{}/app/#file={}", state.public_url, rec.id);
    if let Some((id, _)) = &message {
        link.push_str(&format!("&message={id}"));
    }
    let mut files: Vec<(&str, &[u8])> = Vec::new();
    if let Some((_, m)) = &message {
        files.push((MESSAGE_NAME, m));
    }
    files.push((&name, &bytes));
    let policy = policy_of(&rec)?;
    let mut sent = Vec::new();
    for u in &to {
        let granted = policy.rights_for(u, t);
        let until = policy.access_ends(u, t).map(format_time);
        let mail = share_mail(
            caller.email.as_str(),
            &name,
            &granted.to_string(),
            until.as_deref(),
            kept.is_some().then_some(link.as_str()),
            &state.public_url,
            message.as_ref().map(|_| MESSAGE_NAME),
        );
        match state
            .mailer
            .send_file(u.as_str(), caller.email.as_str(), &mail, &files)
            .await
        {
            Ok(()) => sent.push(u.to_string()),
            Err(e) => tracing::warn!(error = %e, to = %u, "cannot send the file"),
        }
    }
    if sent.is_empty() {
        return Err(ApiError::new(
            axum::http::StatusCode::BAD_GATEWAY,
            "mail_failed",
            "no mail could be sent; try again later",
        ));
    }
    tracing::info!(content = %rec.id, by = %caller.email, recipients = sent.len(), "file sent");
    Ok(axum::Json(SentOutcome {
        sent,
        link: kept.map(|_| link),
        kept_until: kept.map(format_time),
    }))
}

/// The sender's protected message: a registered content of the caller's
/// own, checked like the file. Returns its id and bytes.
async fn message_file(state: &AppState, caller: &Caller, b64: &str) -> ApiResult<(String, Vec<u8>)> {
    let bad = || {
        ApiError::bad_request(
            "bad_message",
            "message_file must be a protected message you registered, in base64",
        )
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| bad())?;
    if bytes.len() < 30 || bytes.len() > state.sent.max_bytes {
        return Err(bad());
    }
    let id = crate::policy::ContentId(bytes[14..30].try_into().map_err(|_| bad())?);
    let rec = load(state, &id).await?;
    if rec.owner != caller.email.as_str() || rec.revoked {
        return Err(bad());
    }
    check_is_this_content(&bytes, &rec)?;
    Ok((rec.id, bytes))
}

/// The name a protected message is attached under.
const MESSAGE_NAME: &str = "message.txt.rights";

/// The bytes must be a protected file of this very content: the magic,
/// the content id that opens the header body, and the registered
/// publishing licence inside it. The server cannot check more without the
/// content key, and needs not: readers verify everything.
fn check_is_this_content(bytes: &[u8], rec: &crate::store::ContentRecord) -> ApiResult<()> {
    let bad = || ApiError::bad_request("not_this_file", "the file is not the protected file of this content");
    let id = hex::decode(&rec.id).map_err(ApiError::internal)?;
    if bytes.len() < 30 || &bytes[..8] != MAGIC || bytes[14..30] != id[..] {
        return Err(bad());
    }
    let pl: crate::policy::PublishingLicence = serde_json::from_str(&rec.pl).map_err(ApiError::internal)?;
    let header = &bytes[..bytes.len().min(14 + 64 * 1024 + 32)];
    if !header.windows(pl.body.len()).any(|w| w == pl.body.as_slice()) {
        return Err(bad());
    }
    Ok(())
}

/// A file name safe for a mail header and a download: the last path
/// component, printable, ending in `.rights`.
fn file_name(name: &str) -> ApiResult<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("").trim();
    if base.is_empty() || base.len() > 200 || base.chars().any(|c| c.is_control() || c == '"') {
        return Err(ApiError::bad_request(
            "bad_name",
            "name must be a file name of 1 to 200 printable characters",
        ));
    }
    Ok(if base.ends_with(".rights") {
        base.to_string()
    } else {
        format!("{base}.rights")
    })
}

/// `GET /v1/content/{id}/file`: the kept protected file, for the owner and
/// anyone holding rights now.
#[utoipa::path(
    get, path = "/v1/content/{id}/file", operation_id = "kept_file", tag = "content",
    summary = "The protected file the server keeps for a sharing mail's link (owner, or anyone holding rights now)",
    params(("id" = String, Path, description = "content id (32 hex digits)")),
    responses(
        (status = 200, description = "the protected file", body = Vec<u8>, content_type = "application/octet-stream"),
        (status = 404, description = "not kept (any more)", body = ErrorBody),
        (status = 410, description = "revoked", body = ErrorBody),
    )
)]
pub async fn file(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let rec = load(&state, &parse_id(&id)?).await?;
    let is_owner = rec.owner == caller.email.as_str();
    if rec.revoked && !is_owner {
        return Err(ApiError::new(
            axum::http::StatusCode::GONE,
            "revoked",
            format!(
                "the owner {} revoked this file; nobody else can open it any more",
                rec.owner
            ),
        ));
    }
    if !is_owner && policy_of(&rec)?.rights_for(&caller.email, now()).is_empty() {
        return Err(ApiError::forbidden(
            "no_rights",
            format!(
                "you have no rights on this file; ask its owner {} to share it with you",
                rec.owner
            ),
        ));
    }
    let (meta, bytes) = state
        .sent
        .get(&rec.id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| {
            ApiError::not_found(
                "file_gone",
                format!(
                    "the server no longer keeps this file; ask {} to send it again",
                    rec.owner
                ),
            )
        })?;
    let mut resp = Response::new(Body::from(bytes));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{}\"", meta.name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}
