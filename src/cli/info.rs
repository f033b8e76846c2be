//! info, track, list, status: read-only views.

use std::path::Path;

use super::ctx::Ctx;
use super::files::open_protected;
use super::output;
use crate::api::ContentInfo;
use crate::client::{Claims, ClientError, RegistrationQueue};
use crate::policy::{Grant, format_time, now};

/// `rights info`: what the header says (offline), plus what this device
/// and the server know.
pub fn info(ctx: &Ctx, path: &Path) -> anyhow::Result<()> {
    let (f, h) = open_protected(path)?;
    let size = f.metadata()?.len();
    let pl = &h.licence;
    let id = h.content_id();
    let queued = RegistrationQueue::new(&ctx.paths)
        .waiting()
        .iter()
        .any(|(i, _)| *i == id);
    let cached = ctx.licensing().ok().and_then(|l| l.cached_for(&h));
    let server: Option<Result<ContentInfo, ClientError>> = if queued {
        None
    } else {
        ctx.session().ok().map(|s| s.content(&id))
    };
    let claim = Claims::new(&ctx.paths).get(&id);
    let (saved_json, saved_text) = saved_by(ctx, &f, &h);
    let registration = match (&server, queued) {
        _ if claim.is_some() => "CLAIMED BY SOMEONE ELSE: not registered as yours".to_string(),
        (_, true) => "queued (run `rights sync`)".to_string(),
        (Some(Ok(_)), _) => "registered".to_string(),
        (Some(Err(ClientError::Unreachable { .. })), _) => "unknown (server unreachable)".to_string(),
        (Some(Err(ClientError::Server { status: 404, .. })), _) => "not registered".to_string(),
        (Some(Err(ClientError::Server { status: 403, .. })), _) => {
            "registered (details for the owner only)".to_string()
        }
        (Some(Err(e)), _) => format!("unknown ({e})"),
        (None, _) => "unknown (not logged in)".to_string(),
    };
    let me = ctx.config.email.clone();
    let policy_rights = me.as_ref().map(|m| pl.policy.rights_for(m, now()));
    let server_v = server.and_then(Result::ok);
    let owner = owner_shown(
        &h,
        server_v.as_ref(),
        cached.as_ref().is_some_and(|c| c.valid_until.is_none()),
    );
    if ctx.json {
        output::json(&serde_json::json!({
            "file": path,
            "content_id": id,
            "owner": owner.verified,
            "claimed_owner": pl.policy.owner,
            "owner_check": owner.text,
            "saved_by": saved_json,
            "server_url": pl.server_url,
            "created_at": format_time(pl.created_at),
            "size": h.plaintext_len(size).ok(),
            "policy_in_file": pl.policy,
            "registration": registration,
            "server": server_v,
            "your_rights_by_file_policy": policy_rights,
            "cached_licence": cached,
            "readable_offline_until": cached.as_ref().and_then(|c| c.valid_until).filter(|u| *u > now()).map(format_time),
        }));
        return Ok(());
    }
    println!("file:         {}", path.display());
    println!("content id:   {id}");
    println!("owner:        {}", owner.text);
    println!("server:       {}", pl.server_url);
    println!("protected at: {}", format_time(pl.created_at));
    println!("saved by:     {saved_text}");
    if let Ok(n) = h.plaintext_len(size) {
        println!("size:         {n} bytes");
    }
    println!("offline days: {}", pl.policy.offline_days);
    if let Some(e) = pl.policy.expires {
        println!("expires:      {}", format_time(e));
    }
    println!("registration: {registration}");
    match &server_v {
        Some(v) => {
            println!("grants (server):");
            print_grants(&v.policy.grants);
        }
        None => {
            println!("grants (as protected; the server's list may differ):");
            print_grants(&pl.policy.grants);
        }
    }
    if server_v.as_ref().is_some_and(|v| v.revoked) {
        println!("state:        REVOKED by the owner");
    }
    match (&cached, policy_rights) {
        (Some(c), _) => match c.valid_until {
            None => println!("your rights:  {} (owner licence on this device)", c.rights),
            Some(u) if c.valid_now() => {
                println!("your rights:  {} (readable offline until {})", c.rights, format_time(u))
            }
            Some(u) => println!(
                "your rights:  {} (licence expired {}; renewed at the next open online)",
                c.rights,
                format_time(u)
            ),
        },
        (None, Some(r)) => println!("your rights:  {r} per the file's policy (no licence cached yet)"),
        (None, None) => println!("your rights:  unknown (not logged in)"),
    }
    Ok(())
}

/// Who saved the current version, as its writer record proves, checked
/// as every open checks it (so it needs this user's key for the file).
fn saved_by(ctx: &Ctx, f: &std::fs::File, h: &crate::format::FileHeader) -> (serde_json::Value, String) {
    let unknown = |why: String| (serde_json::Value::Null, format!("unknown ({why})"));
    let licensing = match ctx.licensing() {
        Ok(l) => l,
        Err(_) => return unknown("not logged in".into()),
    };
    let access = match licensing.key_for(h) {
        Ok(a) => a,
        Err(e) => return unknown(e.to_string()),
    };
    let file = match f.try_clone() {
        Ok(f) => f,
        Err(e) => return unknown(e.to_string()),
    };
    match crate::format::ProtectedFile::open_verified(file, &access.key, licensing.server_key()) {
        Ok(pf) => match pf.written_by() {
            Some(w) => (
                serde_json::json!({
                    "account": w.account,
                    "device_id": w.device_id,
                    "time": format_time(w.time),
                    "owner": w.owner,
                }),
                format!(
                    "{}{} (device {}) at {}",
                    w.account,
                    if w.owner { ", the owner" } else { ", an editor" },
                    w.device_id,
                    format_time(w.time)
                ),
            ),
            None => unknown("no writer record checked".into()),
        },
        Err(e) => (serde_json::json!({ "refused": e.to_string() }), format!("REFUSED: {e}")),
    }
}

/// The owner `rights info` shows, and how it knows.
struct OwnerShown {
    /// The owner, when checked (with the server, or by this device's own
    /// owner slot).
    verified: Option<String>,
    /// What to print.
    text: String,
}

/// Never the header's claim alone: a file can name any owner. It is
/// checked against what the server registered (owner and publishing
/// licence hash), or the file was protected on this device (`own`).
fn owner_shown(h: &crate::format::FileHeader, server: Option<&ContentInfo>, own: bool) -> OwnerShown {
    let claimed = h.licence.policy.owner.to_string();
    let registered = server.map(|v| v.owner.as_str());
    let same_licence = server.is_some_and(|v| v.licence_hash == hex::encode(h.body.licence.hash()));
    match registered {
        Some(r) if r == claimed && same_licence => OwnerShown {
            verified: Some(claimed.clone()),
            text: format!("{claimed} (registered with the server)"),
        },
        Some(r) if r == claimed => OwnerShown {
            verified: None,
            text: format!("NOT VERIFIED: the file claims {claimed}, but its header is not the one {r} registered"),
        },
        Some(r) => OwnerShown {
            verified: None,
            text: format!("NOT VERIFIED: the file claims owner {claimed} but the server registered {r}"),
        },
        None if own => OwnerShown {
            verified: Some(claimed.clone()),
            text: format!("{claimed} (you; protected on this device)"),
        },
        None => OwnerShown {
            verified: None,
            text: format!("{claimed} (claimed by the file; not verified with the server)"),
        },
    }
}

fn print_grants(g: &[Grant]) {
    if g.is_empty() {
        println!("  (none: owner only)");
    }
    for x in g {
        let exp = x.expires.map_or_else(|| "-".to_string(), format_time);
        println!(
            "  {:<30} {:<28} expires {}",
            x.to.to_string(),
            x.rights.to_string(),
            exp
        );
    }
}

/// `rights track`: the access log of a file you own.
pub fn track(ctx: &Ctx, path: &Path) -> anyhow::Result<()> {
    let (_, h) = open_protected(path)?;
    let log = ctx
        .session()?
        .audit(&h.content_id())
        .map_err(|e| match e.server_code() {
            Some((403, _)) => anyhow::anyhow!(
                "only the owner ({}) can read this file's access log",
                h.licence.policy.owner
            ),
            Some((404, _)) => anyhow::anyhow!("the server does not know this file yet: run `rights sync` first"),
            _ => e.into(),
        })?;
    if ctx.json {
        output::json(&log);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = log
        .into_iter()
        .map(|e| vec![e.time, e.email, e.result, e.rights, e.reason, e.device_id])
        .collect();
    if rows.is_empty() {
        println!("No access recorded yet.");
    } else {
        output::table(&["WHEN", "WHO", "RESULT", "RIGHTS", "REASON", "DEVICE"], &rows);
    }
    Ok(())
}

/// `rights list [--shared-with-me]`.
pub fn list(ctx: &Ctx, shared: bool) -> anyhow::Result<()> {
    let list = ctx.session()?.list_content(shared)?;
    if ctx.json {
        output::json(&list);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = list
        .into_iter()
        .map(|c| {
            let state = if c.revoked { "revoked" } else { "active" };
            vec![c.content_id, c.owner, c.created_at, state.into()]
        })
        .collect();
    if rows.is_empty() {
        println!(
            "{}",
            if shared {
                "Nothing is shared with you yet."
            } else {
                "You own no registered content yet."
            }
        );
    } else {
        output::table(&["CONTENT ID", "OWNER", "CREATED", "STATE"], &rows);
    }
    Ok(())
}

/// Whether this device's sign-in still holds, asked of the server when it
/// answers: a device removed elsewhere or a revoked session is reported
/// here rather than at the next open. Returns a state for `--json` and a
/// sentence.
fn session_state(ctx: &Ctx) -> (&'static str, String) {
    let Some(me) = &ctx.config.email else {
        return ("not_logged_in", "not logged in".into());
    };
    let server = ctx.config.server_url.clone().unwrap_or_default();
    match ctx.session().and_then(|s| s.me()) {
        Ok(_) => ("active", format!("logged in as {me} on {server}")),
        Err(ClientError::Unreachable { .. }) => (
            "unchecked",
            format!("logged in as {me} (the server {server} is unreachable, so not checked)"),
        ),
        Err(e @ ClientError::DeviceRemoved(_)) => ("device_removed", format!("{me}: {e}")),
        Err(e) => ("session_ended", format!("{me}: {e}")),
    }
}

/// `rights status`: queue and cache, all local.
pub fn status(ctx: &Ctx) -> anyhow::Result<()> {
    let pending: Vec<String> = RegistrationQueue::new(&ctx.paths)
        .waiting()
        .into_iter()
        .map(|(id, _)| id.to_hex())
        .collect();
    let cached = match ctx.licensing() {
        Ok(l) => l.list_cached(),
        Err(_) => Vec::new(),
    };
    let claims = Claims::new(&ctx.paths).list();
    let (state, says) = session_state(ctx);
    if ctx.json {
        output::json(&serde_json::json!({
            "email": ctx.config.email,
            "session": state,
            "claimed_by_others": claims.iter().map(|c| serde_json::json!({
                "content_id": c.content_id, "noticed_at": c.noticed(), "alarm": c.alarm(),
            })).collect::<Vec<_>>(),
            "pending_registrations": pending,
            "licences": cached.iter().map(|c| serde_json::json!({
                "content_id": c.content_id, "rights": c.rights, "owner": c.owner,
                "valid_until": c.valid_until.map(format_time), "valid": c.valid_now(),
            })).collect::<Vec<_>>(),
            "mounts": super::mount::status_json(ctx),
        }));
        return Ok(());
    }
    println!("{says}");
    for c in &claims {
        println!("{} (noticed {})", c.alarm(), c.noticed());
    }
    let mounts = super::mount::status_json(ctx);
    println!("mounts: {}", mounts.len());
    for m in &mounts {
        println!(
            "  {} on {} (pid {}{})",
            output::field(m, &["source"]),
            output::field(m, &["mountpoint"]),
            output::field(m, &["pid"]),
            if m["alive"] == true {
                ""
            } else {
                ", daemon gone: run `rights unmount --force`"
            }
        );
        for r in m["recovered"].as_array().into_iter().flatten() {
            let what = if r["replayed"] == true {
                "journal replayed"
            } else if r["discarded"] == true {
                "unfinished commit discarded"
            } else if r["rolled_back"] == true {
                "rolled back to the last fsync"
            } else {
                "uncommitted tail cut"
            };
            println!("    recovered after a crash: {} ({what})", output::field(r, &["file"]));
        }
        let plain: Vec<&str> = m["plain_files"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str())
            .collect();
        if !plain.is_empty() {
            println!(
                "    plain (unprotected) files: {} ({}{}); the mount shows them read-only",
                output::field(m, &["plain_file_count"]),
                plain.join(", "),
                if m["plain_file_count"].as_u64() > Some(plain.len() as u64) {
                    ", ..."
                } else {
                    ""
                }
            );
        }
        for p in m["ignored_policies"].as_array().into_iter().flatten() {
            println!(
                "    ignored policy file: {} ({})",
                output::field(p, &["file"]),
                output::field(p, &["reason"])
            );
        }
    }
    println!("pending registrations: {}", pending.len());
    for p in &pending {
        println!("  {p}");
    }
    println!("cached licences: {}", cached.len());
    let rows: Vec<Vec<String>> = cached
        .iter()
        .map(|c| {
            vec![
                c.content_id.to_hex(),
                c.rights.to_string(),
                c.valid_until.map(format_time).unwrap_or_else(|| "owner".into()),
                if c.valid_now() { "valid" } else { "expired" }.into(),
            ]
        })
        .collect();
    if !rows.is_empty() {
        output::table(&["CONTENT ID", "RIGHTS", "VALID UNTIL", "STATE"], &rows);
    }
    Ok(())
}
