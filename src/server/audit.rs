//! The access log's late entries: opens that licences cached on a device
//! served without asking the server, and versions saved on a device,
//! reported by that device when it next reaches the server (`POST
//! /v1/opens`), and how the owner's log shows them.
//!
//! A device can only report for itself (the caller's account and device
//! come from its token, never from the body). Opens only for content the
//! server once issued a licence to that very device for, at times from
//! that first licence to now; saves only when its account is the owner or
//! holds `edit` now, at times from the content's protection to now. It
//! cannot put words in another account's mouth, nor make up opens of files
//! it never held or saves of files it may not change.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;

use super::auth::Caller;
use super::content::policy_of;
use super::error::{ApiError, ApiResult};
use super::json::ApiJson;
use super::state::AppState;
use crate::api::{AuditEntry, OpensRecorded, REPORT_OPENS_MAX, ReportOpens, ReportedOpen};
use crate::policy::{ContentId, Right, Rights, format_time, now};
use crate::store::{AuditRecord, ContentRecord};

/// `result` of an open a cached licence served.
const OPENED_OFFLINE: &str = "opened_offline";
/// `result` of an open a cached licence refused (it had lapsed).
const REFUSED_OFFLINE: &str = "refused_offline";
/// `result` of a version saved on a device, as that device reported it.
const SAVED: &str = "saved";
/// `kind` of a reported save.
const SAVE: &str = "save";
/// Prefix of a save row's code: the generation saved.
const GENERATION: &str = "generation=";
/// How far ahead of the server's clock a device's clock may run.
const CLOCK_SKEW_SECS: i64 = 300;

/// The audit table predates late reports: their reporting time travels in
/// `reason` (`reported=UNIX` then the refusal code, if any), so that no
/// existing database needs a migration. Only rows whose `result` says
/// offline are read this way.
fn late_reason(reported: i64, code: &str) -> String {
    if code.is_empty() {
        format!("reported={reported}")
    } else {
        format!("reported={reported} {code}")
    }
}

/// `(reported_at, reason)` of a late row's `reason`.
fn split_late_reason(reason: &str) -> (Option<i64>, String) {
    let Some(rest) = reason.strip_prefix("reported=") else {
        return (None, reason.to_string());
    };
    let (t, code) = rest.split_once(' ').unwrap_or((rest, ""));
    (t.parse().ok(), code.to_string())
}

/// One row as the owner sees it.
pub fn entry(a: AuditRecord) -> AuditEntry {
    let offline = a.result == OPENED_OFFLINE || a.result == REFUSED_OFFLINE;
    let saved = a.result == SAVED;
    let (reported, mut reason) = if offline || saved {
        split_late_reason(&a.reason)
    } else {
        (None, a.reason)
    };
    let generation = saved
        .then(|| reason.strip_prefix(GENERATION).and_then(|g| g.parse().ok()))
        .flatten();
    if saved {
        reason.clear();
    }
    AuditEntry {
        time: format_time(a.time),
        email: a.email,
        device_id: a.device_id,
        rights: a.rights,
        result: a.result,
        reason,
        client_addr: a.client_addr,
        offline,
        reported_at: reported.map(format_time),
        generation,
    }
}

/// `POST /v1/opens`: records opens a cached licence served on the caller's
/// device, and versions saved there. Each item is answered on its own
/// (`recorded`, `duplicate`, or why it was not), so that a device drops
/// what can never be recorded instead of sending it again; a save of
/// content the caller may not change refuses the whole request (403), as
/// only a forger sends one.
#[utoipa::path(
    post, path = "/v1/opens", tag = "content",
    summary = "Report opens that licences cached on this device served without the server (owners' audit logs show them as offline)",
    request_body = ReportOpens,
    responses(
        (status = 200, description = "one result per open, in order", body = OpensRecorded),
        (status = 403, description = "a save of content the caller neither owns nor may edit: nothing recorded", body = crate::api::ErrorBody),
        (status = 413, description = "more than 100 opens", body = crate::api::ErrorBody),
    )
)]
pub async fn report(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    caller: Caller,
    ApiJson(req): ApiJson<ReportOpens>,
) -> ApiResult<axum::Json<OpensRecorded>> {
    if req.opens.len() > REPORT_OPENS_MAX {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_opens",
            format!("at most {REPORT_OPENS_MAX} opens per request; send them in batches"),
        ));
    }
    let t = now();
    // Each content's record and log are read once per request, and the log
    // takes this request's own rows, so that a batch repeating itself is
    // caught too.
    let mut logs: HashMap<String, (ContentRecord, Vec<AuditRecord>)> = HashMap::new();
    for open in &req.opens {
        if let Ok(id) = ContentId::from_hex(&open.content_id)
            && !logs.contains_key(&id.to_hex())
            && let Some(rec) = state.store.get_content(&id.to_hex()).await?
        {
            let log = state.store.list_audit(&rec.id).await?;
            logs.insert(rec.id.clone(), (rec, log));
        }
    }
    // Saves are checked before anything is recorded: a forged one refuses
    // the whole request.
    for open in req.opens.iter().filter(|o| o.kind == SAVE) {
        let Some((rec, _)) = ContentId::from_hex(&open.content_id)
            .ok()
            .and_then(|id| logs.get(&id.to_hex()))
        else {
            continue;
        };
        if saver_rights(&caller, rec, t)?.is_none() {
            return Err(ApiError::forbidden(
                "not_an_editor",
                format!(
                    "you may not change {}: only its owner and those holding edit report saves of it",
                    rec.id
                ),
            ));
        }
    }
    let mut results = Vec::with_capacity(req.opens.len());
    for open in &req.opens {
        let Some((rec, log)) = ContentId::from_hex(&open.content_id)
            .ok()
            .and_then(|id| logs.get_mut(&id.to_hex()))
        else {
            results.push("not_found".to_string());
            continue;
        };
        let checked = match open.kind.as_str() {
            SAVE => check_save(&caller, rec, open, t)?,
            "" | "open" => check(&caller, &rec.id, open, log, t),
            _ => Err("bad_result"),
        };
        let r = match checked {
            Ok(rec) if log.iter().any(|a| same_open(a, &rec)) => "duplicate",
            Ok(mut rec) => {
                rec.client_addr = addr.ip().to_string();
                state.store.add_audit(&rec).await?;
                log.push(rec);
                "recorded"
            }
            Err(code) => code,
        };
        results.push(r.to_string());
    }
    Ok(axum::Json(OpensRecorded { results }))
}

/// The audit row for `open` of content `id` (whose log is `log`), or why
/// it is not believed.
fn check(
    caller: &Caller,
    id: &str,
    open: &ReportedOpen,
    log: &[AuditRecord],
    t: i64,
) -> Result<AuditRecord, &'static str> {
    let rights = if open.opened {
        match Rights::parse(&open.rights) {
            Ok(r) if !r.is_empty() => r.to_string(),
            _ => return Err("bad_result"),
        }
    } else {
        String::new()
    };
    let code: String = open
        .reason
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(40)
        .collect();
    // The first licence the server issued to this device for the content.
    let first = log
        .iter()
        .filter(|a| a.result == "issued" && a.device_id == caller.device_id && a.email == caller.email.as_str())
        .map(|a| a.time)
        .min()
        .ok_or("no_licence")?;
    if open.at < first || open.at > t + CLOCK_SKEW_SECS {
        return Err("bad_time");
    }
    Ok(AuditRecord {
        content_id: id.to_string(),
        time: open.at,
        email: caller.email.to_string(),
        device_id: caller.device_id.clone(),
        rights,
        result: if open.opened { OPENED_OFFLINE } else { REFUSED_OFFLINE }.into(),
        reason: late_reason(t, if open.opened { "" } else { &code }),
        client_addr: String::new(),
    })
}

/// The caller's rights on `rec` when they may report saves of it (the
/// owner, or an account holding `edit` now).
fn saver_rights(caller: &Caller, rec: &ContentRecord, t: i64) -> ApiResult<Option<Rights>> {
    if rec.owner == caller.email.as_str() {
        return Ok(Some(Rights::owner()));
    }
    let rights = policy_of(rec)?.rights_for(&caller.email, t);
    Ok((rights.has(Right::Edit) && !rec.revoked).then_some(rights))
}

/// The audit row for a save of `rec` (its saver checked by the caller),
/// or why it is not believed.
fn check_save(
    caller: &Caller,
    rec: &ContentRecord,
    save: &ReportedOpen,
    t: i64,
) -> ApiResult<Result<AuditRecord, &'static str>> {
    let Some(rights) = saver_rights(caller, rec, t)? else {
        return Ok(Err("not_an_editor"));
    };
    let Some(generation) = save.generation else {
        return Ok(Err("bad_result"));
    };
    if save.at < rec.created_at - CLOCK_SKEW_SECS || save.at > t + CLOCK_SKEW_SECS {
        return Ok(Err("bad_time"));
    }
    Ok(Ok(AuditRecord {
        content_id: rec.id.clone(),
        time: save.at,
        email: caller.email.to_string(),
        device_id: caller.device_id.clone(),
        rights: rights.to_string(),
        result: SAVED.into(),
        reason: late_reason(t, &format!("{GENERATION}{generation}")),
        client_addr: String::new(),
    }))
}

/// Whether two rows record the same open (content, device, time,
/// outcome): a report whose answer was lost is sent again.
fn same_open(a: &AuditRecord, b: &AuditRecord) -> bool {
    a.device_id == b.device_id && a.time == b.time && a.result == b.result && a.email == b.email
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_reasons_keep_their_reporting_time_and_code() {
        assert_eq!(split_late_reason(&late_reason(42, "")), (Some(42), String::new()));
        assert_eq!(
            split_late_reason(&late_reason(7, "licence_expired")),
            (Some(7), "licence_expired".to_string())
        );
        assert_eq!(split_late_reason("no_rights"), (None, "no_rights".to_string()));
    }
}
