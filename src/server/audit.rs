//! The access log's late entries: opens that licences cached on a device
//! served without asking the server, reported by that device when it next
//! reaches the server (`POST /v1/opens`), and how the owner's log shows
//! them.
//!
//! A device can only report for itself (the caller's account and device
//! come from its token, never from the body), only for content the server
//! once issued a licence to that very device for, and only at times from
//! that first licence to now: it cannot put words in another account's
//! mouth, nor make up opens of files it never held.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::json::ApiJson;
use super::state::AppState;
use crate::api::{AuditEntry, OpensRecorded, REPORT_OPENS_MAX, ReportOpens, ReportedOpen};
use crate::policy::{ContentId, Rights, format_time, now};
use crate::store::AuditRecord;

/// `result` of an open a cached licence served.
const OPENED_OFFLINE: &str = "opened_offline";
/// `result` of an open a cached licence refused (it had lapsed).
const REFUSED_OFFLINE: &str = "refused_offline";
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
    let (reported, reason) = if offline {
        split_late_reason(&a.reason)
    } else {
        (None, a.reason)
    };
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
    }
}

/// `POST /v1/opens`: records opens a cached licence served on the caller's
/// device. Each item is answered on its own (`recorded`, `duplicate`, or
/// why it was not), so that a device drops what can never be recorded
/// instead of sending it again.
#[utoipa::path(
    post, path = "/v1/opens", tag = "content",
    summary = "Report opens that licences cached on this device served without the server (owners' audit logs show them as offline)",
    request_body = ReportOpens,
    responses(
        (status = 200, description = "one result per open, in order", body = OpensRecorded),
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
    // Each content's log is read once per request, and takes this
    // request's own rows, so that a batch repeating itself is caught too.
    let mut logs: HashMap<String, Vec<AuditRecord>> = HashMap::new();
    let mut results = Vec::with_capacity(req.opens.len());
    for open in &req.opens {
        let Ok(id) = ContentId::from_hex(&open.content_id) else {
            results.push("not_found".to_string());
            continue;
        };
        let id = id.to_hex();
        if !logs.contains_key(&id) {
            if state.store.get_content(&id).await?.is_none() {
                results.push("not_found".to_string());
                continue;
            }
            logs.insert(id.clone(), state.store.list_audit(&id).await?);
        }
        let log = logs.get_mut(&id).expect("inserted above");
        let r = match check(&caller, &id, open, log, t) {
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
