//! info, track, list, status: read-only views.

use std::path::Path;

use serde::Serialize;

use super::args::TrackFormat;
use super::ctx::Ctx;
use super::file_policy::FilePolicy;
use super::output;
use super::target::Target;
use crate::api::{AuditEntry, ContentInfo};
use crate::client::{Claims, ClientError, Index, RegistrationQueue};
use crate::policy::{ContentId, Grant, Rights, format_time, now};

/// `rights info`: what the header says (offline), plus what this device
/// and the server know.
pub fn info(ctx: &Ctx, arg: &Path) -> anyhow::Result<()> {
    let t = Target::resolve(ctx, arg)?;
    let h = t.header()?;
    let path = t.path.as_deref().unwrap_or(arg);
    let f = std::fs::File::open(path)?;
    let size = f.metadata()?.len();
    let pl = &h.licence;
    let id = h.content_id();
    let queued = RegistrationQueue::new(&ctx.paths)
        .waiting()
        .iter()
        .any(|(i, _)| *i == id);
    let server: Option<Result<ContentInfo, ClientError>> = if queued {
        None
    } else {
        ctx.session().ok().map(|s| s.content(&id))
    };
    let claim = Claims::new(&ctx.paths).get(&id);
    let (saved_json, saved_text) = saved_by(ctx, &f, h);
    // After `saved_by`, which fetched a licence if this user may have one.
    let cached = ctx.licensing().ok().and_then(|l| l.cached_for(h));
    let file_policy = FilePolicy::read(ctx, h);
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
    let policy_rights = me
        .as_ref()
        .zip(file_policy.grants.as_ref())
        .map(|(m, _)| file_policy.policy.rights_for(m, now()));
    let server_v = server.and_then(Result::ok);
    let owner = owner_shown(
        h,
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
            "policy_in_file": file_policy.json(),
            "grants_in_file": file_policy.says,
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
        None => match &file_policy.grants {
            Some(g) => {
                println!("grants (as protected; the server's list may differ):");
                print_grants(g);
            }
            None => println!("grants:       {}", file_policy.says),
        },
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
        (None, None) if me.is_none() => println!("your rights:  unknown (not logged in)"),
        (None, None) => println!("your rights:  none known (no licence for you)"),
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
    match crate::format::ProtectedFile::open_verified(file, &access.key, &licensing.verifier()) {
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

/// One row of `rights track`: an audit entry and the file it is about.
#[derive(Serialize)]
struct TrackRow {
    content_id: ContentId,
    /// The file's name on this device, if it was seen here.
    name: Option<String>,
    #[serde(flatten)]
    entry: AuditEntry,
}

impl TrackRow {
    fn file(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.content_id.to_hex())
    }

    /// The result, with offline opens marked as such and saves with the
    /// generation saved.
    fn result(&self) -> String {
        match (&self.entry.offline, &self.entry.reported_at, self.entry.generation) {
            (true, Some(at), _) => format!(
                "{} (offline, reported {at})",
                self.entry.result.trim_end_matches("_offline")
            ),
            (false, _, Some(g)) => format!("{} (generation {g})", self.entry.result),
            _ => self.entry.result.clone(),
        }
    }
}

/// Columns of the CSV export.
const TRACK_COLUMNS: [&str; 11] = [
    "content_id",
    "name",
    "time",
    "email",
    "device_id",
    "result",
    "offline",
    "reported_at",
    "rights",
    "reason",
    "generation",
];

/// `rights track`: the access log of a file you own, or of every file
/// you own (`arg` none: `--all`), opens that devices reported late
/// included. This device's own unreported opens are sent first.
pub fn track(ctx: &Ctx, arg: Option<&Path>, format: TrackFormat) -> anyhow::Result<()> {
    report_opens(ctx);
    let session = ctx.session()?;
    let index = Index::new(&ctx.paths);
    let targets: Vec<(ContentId, Option<String>)> = match arg {
        Some(a) => {
            let t = Target::resolve(ctx, a)?;
            vec![(t.id, t.name())]
        }
        None => session
            .list_content(false, |_| {})?
            .into_iter()
            .filter_map(|c| ContentId::from_hex(&c.content_id).ok())
            .map(|id| (id, index.get(&id).map(|e| e.name)))
            .collect(),
    };
    let mut log = Vec::new();
    for (id, name) in targets.iter().cloned() {
        let shown = name.clone().unwrap_or_else(|| id.to_hex());
        let entries = session.audit(&id).map_err(|e| match e.server_code() {
            Some((403, _)) => anyhow::anyhow!("only the owner can read the access log of {shown}"),
            Some((404, _)) => anyhow::anyhow!("the server does not know {shown} yet: run `rights sync` first"),
            _ => e.into(),
        })?;
        log.extend(entries.into_iter().map(|entry| TrackRow {
            content_id: id,
            name: name.clone(),
            entry,
        }));
    }
    if targets.len() > 1 {
        log.sort_by(|a, b| a.entry.time.cmp(&b.entry.time));
    }
    match (format, ctx.json) {
        (TrackFormat::Json, _) | (_, true) => output::json(&log),
        (TrackFormat::Csv, _) => {
            let mut out = String::new();
            output::csv_line(&mut out, TRACK_COLUMNS.iter().map(|c| c.to_string()));
            for r in &log {
                let e = &r.entry;
                output::csv_line(
                    &mut out,
                    [
                        r.content_id.to_hex(),
                        r.name.clone().unwrap_or_default(),
                        e.time.clone(),
                        e.email.clone(),
                        e.device_id.clone(),
                        e.result.clone(),
                        e.offline.to_string(),
                        e.reported_at.clone().unwrap_or_default(),
                        e.rights.clone(),
                        e.reason.clone(),
                        e.generation.map(|g| g.to_string()).unwrap_or_default(),
                    ]
                    .into_iter(),
                );
            }
            print!("{out}");
        }
        (TrackFormat::Table, false) => print_track(&log, targets.len() > 1),
    }
    Ok(())
}

fn print_track(log: &[TrackRow], with_file: bool) {
    if log.is_empty() {
        println!("No access recorded yet.");
        return;
    }
    let rows: Vec<Vec<String>> = log
        .iter()
        .map(|r| {
            let e = &r.entry;
            let mut row = vec![
                e.time.clone(),
                e.email.clone(),
                r.result(),
                e.rights.clone(),
                e.reason.clone(),
                e.device_id.clone(),
            ];
            if with_file {
                row.insert(0, r.file());
            }
            row
        })
        .collect();
    let mut headers = vec!["WHEN", "WHO", "RESULT", "RIGHTS", "REASON", "DEVICE"];
    if with_file {
        headers.insert(0, "FILE");
    }
    output::table(&headers, &rows);
}

/// Sends this device's record of opens that cached licences served, so
/// that owners' logs have them; quietly leaves them for later when the
/// server cannot take them now.
pub fn report_opens(ctx: &Ctx) {
    if let Ok(l) = ctx.licensing()
        && l.unreported_opens() > 0
        && let Err(e) = l.report_opens()
    {
        tracing::debug!(error = %e, "offline opens not reported yet");
    }
}

/// One row of `rights list`: what the server registered, with the name
/// this device knows the file by and, for content shared with you, your
/// rights and until when.
#[derive(Serialize)]
struct ListRow {
    #[serde(flatten)]
    info: ContentInfo,
    name: Option<String>,
    path: Option<std::path::PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    your_rights: Option<Rights>,
    #[serde(skip_serializing_if = "Option::is_none")]
    your_access_ends: Option<String>,
}

/// Counts a long listing's pages on stderr (when it is a terminal and
/// the output is not JSON): the bar appears from the second page on.
fn listing_progress(ctx: &Ctx) -> impl FnMut(usize) {
    let quiet = ctx.json || ctx.quiet;
    let mut bar: Option<indicatif::ProgressBar> = None;
    let mut pages = 0;
    move |n| {
        pages += 1;
        if quiet || pages < 2 {
            return;
        }
        let b = bar.get_or_insert_with(|| {
            // Cleared once the listing is in, before the table prints.
            let b = indicatif::ProgressBar::new_spinner().with_finish(indicatif::ProgressFinish::AndClear);
            b.set_style(indicatif::ProgressStyle::with_template("{spinner} listing: {msg}").expect("static template"));
            b
        });
        b.set_message(format!("{n} so far"));
        b.tick();
    }
}

/// `rights list [--shared]`: content you own, or that others shared with
/// you (owner, your rights, until when), named from this device's index.
pub fn list(ctx: &Ctx, shared: bool) -> anyhow::Result<()> {
    let list = ctx.session()?.list_content(shared, listing_progress(ctx))?;
    let index = Index::new(&ctx.paths);
    let me = ctx.config.me()?.clone();
    let t = now();
    let rows: Vec<ListRow> = list
        .into_iter()
        .map(|info| {
            let known = ContentId::from_hex(&info.content_id).ok().and_then(|id| index.get(&id));
            let (your_rights, your_access_ends) = if shared {
                (
                    Some(info.policy.rights_for(&me, t)),
                    info.policy.access_ends(&me, t).map(format_time),
                )
            } else {
                (None, None)
            };
            ListRow {
                name: known.as_ref().map(|e| e.name.clone()),
                path: known.map(|e| e.path),
                your_rights,
                your_access_ends,
                info,
            }
        })
        .collect();
    if ctx.json {
        output::json(&rows);
        return Ok(());
    }
    if rows.is_empty() {
        println!(
            "{}",
            if shared {
                "Nothing is shared with you yet."
            } else {
                "You own no registered content yet."
            }
        );
        return Ok(());
    }
    let name = |r: &ListRow| r.name.clone().unwrap_or_else(|| "(not seen here)".into());
    let state = |r: &ListRow| if r.info.revoked { "revoked" } else { "active" }.to_string();
    if shared {
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    name(r),
                    r.info.owner.clone(),
                    r.your_rights.map(|x| x.to_string()).unwrap_or_default(),
                    r.your_access_ends.clone().unwrap_or_else(|| "no end".into()),
                    state(r),
                    r.info.content_id.clone(),
                ]
            })
            .collect();
        output::table(&["NAME", "OWNER", "RIGHTS", "UNTIL", "STATE", "CONTENT ID"], &table);
    } else {
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|r| vec![name(r), r.info.created_at.clone(), state(r), r.info.content_id.clone()])
            .collect();
        output::table(&["NAME", "CREATED", "STATE", "CONTENT ID"], &table);
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
        // The sign-in may well hold; this machine just cannot reach its keys.
        Err(e @ ClientError::NoSecretService(_)) => ("keys_unreachable", format!("{me}: {e}")),
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
    if state == "active" {
        report_opens(ctx);
    }
    let unreported = ctx.licensing().map(|l| l.unreported_opens()).unwrap_or(0);
    if ctx.json {
        output::json(&serde_json::json!({
            "email": ctx.config.email,
            "session": state,
            "keystore": ctx.config.keystore,
            "claimed_by_others": claims.iter().map(|c| serde_json::json!({
                "content_id": c.content_id, "noticed_at": c.noticed(), "alarm": c.alarm(),
            })).collect::<Vec<_>>(),
            "pending_registrations": pending,
            "unreported_offline_opens": unreported,
            "licences": cached.iter().map(|c| serde_json::json!({
                "content_id": c.content_id, "rights": c.rights, "owner": c.owner,
                "valid_until": c.valid_until.map(format_time), "valid": c.valid_now(),
            })).collect::<Vec<_>>(),
            "mounts": super::mount::status_json(ctx),
        }));
        return Ok(());
    }
    println!("{says}");
    if ctx.config.email.is_some() {
        println!("keys: {}", super::auth::keystore_name(ctx));
    }
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
    if unreported > 0 {
        println!("opens with cached licences not yet reported to the server: {unreported}");
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
