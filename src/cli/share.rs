//! share, unshare, revoke, sync: server-side policy changes.

use std::path::Path;

use anyhow::bail;

use super::ctx::Ctx;
use super::output;
use super::protect::register_or_queue;
use super::target::Target;
use crate::client::{Claims, ClientError, Outcome, Registrar, Registration, RegistrationQueue};
use crate::policy::{ContentId, Grant, Principal, format_time, now};

fn explain(e: ClientError, t: &Target) -> anyhow::Error {
    match e.server_code() {
        Some((403, _)) => match t.owner() {
            Some(owner) => anyhow::anyhow!("you may not change this file's sharing: ask its owner {owner}"),
            None => anyhow::anyhow!("you may not change this file's sharing: ask its owner"),
        },
        Some((404, _)) => anyhow::anyhow!("the server does not know this file yet: run `rights sync` first"),
        _ => e.into(),
    }
}

fn ensure_registered(ctx: &Ctx, id: &ContentId) -> anyhow::Result<()> {
    if let Some(claim) = Claims::new(&ctx.paths).get(id) {
        bail!("{}", claim.alarm());
    }
    let q = RegistrationQueue::new(&ctx.paths);
    let Some((_, waiting)) = q.waiting().into_iter().find(|(i, _)| i == id) else {
        return Ok(());
    };
    if let Ok(pl) = waiting
        && register_or_queue(ctx, id, &pl)? == Registration::Registered
    {
        return Ok(());
    }
    bail!("this file is not registered with the server yet and the server cannot be reached; try again when online")
}

/// Adds grants on the server (no file rewrite).
pub fn add_grants(ctx: &Ctx, path: &Path, grants: &[Grant]) -> anyhow::Result<()> {
    grant(ctx, &Target::resolve(ctx, path)?, grants)
}

fn grant(ctx: &Ctx, t: &Target, grants: &[Grant]) -> anyhow::Result<()> {
    ensure_registered(ctx, &t.id)?;
    // The name the owner gave the file goes into the invitation mail.
    ctx.session()?
        .put_grants(&t.id, grants, t.name().as_deref())
        .map_err(|e| explain(e, t))?;
    Ok(())
}

/// The file's offline days: from its header, else from the server.
fn offline_days(ctx: &Ctx, t: &Target) -> anyhow::Result<u32> {
    if let Some(h) = &t.header {
        return Ok(h.licence.policy.offline_days);
    }
    let v = ctx.session()?.content(&t.id).map_err(|e| explain(e, t))?;
    Ok(v.policy.offline_days)
}

/// `rights share`.
pub fn share(ctx: &Ctx, arg: &Path, to: &[String]) -> anyhow::Result<()> {
    let grants = to.iter().map(|s| Grant::parse_spec(s)).collect::<Result<Vec<_>, _>>()?;
    let t = Target::resolve(ctx, arg)?;
    grant(ctx, &t, &grants)?;
    let days = offline_days(ctx, &t)?;
    // What a licence fetched now allows: revoking later takes effect after it.
    let offline_until = (days > 0).then(|| format_time(now() + i64::from(days) * 86_400));
    if ctx.json {
        output::json(&serde_json::json!({
            "file": t.path, "content_id": t.id, "granted": grants, "offline_days": days,
            "readable_offline_until": offline_until,
        }));
    } else {
        for g in &grants {
            println!("{} may now {} {}", g.to, g.rights, t.shown());
        }
        match offline_until {
            Some(u) => println!(
                "A licence fetched now is readable offline until {u} (at most, if the server caps it lower); \
                 unsharing or revoking takes effect for it then."
            ),
            None => println!("Every open asks the server, so unsharing or revoking takes effect at once."),
        }
    }
    Ok(())
}

/// `rights unshare`.
pub fn unshare(ctx: &Ctx, arg: &Path, from: &str) -> anyhow::Result<()> {
    let who = Principal::parse(from)?;
    let t = Target::resolve(ctx, arg)?;
    ensure_registered(ctx, &t.id)?;
    ctx.session()?
        .delete_grant(&t.id, &who)
        .map_err(|e| match e.server_code() {
            Some((404, _)) => anyhow::anyhow!("{who} has no grant on {}", t.shown()),
            _ => explain(e, &t),
        })?;
    if ctx.json {
        output::json(&serde_json::json!({ "file": t.path, "content_id": t.id, "removed": who }));
    } else {
        println!(
            "{who} no longer has access to {} (cached licences lapse after their offline validity)",
            t.shown()
        );
    }
    Ok(())
}

/// `rights revoke`.
pub fn revoke(ctx: &Ctx, arg: &Path) -> anyhow::Result<()> {
    let t = Target::resolve(ctx, arg)?;
    ensure_registered(ctx, &t.id)?;
    ctx.session()?.revoke(&t.id).map_err(|e| explain(e, &t))?;
    if ctx.json {
        output::json(&serde_json::json!({ "file": t.path, "content_id": t.id, "revoked": true }));
    } else {
        let days = offline_days(ctx, &t).unwrap_or(1);
        println!(
            "{} is revoked: nobody but you gets a new licence (cached licences lapse within {days} day(s))",
            t.shown()
        );
    }
    Ok(())
}

/// `rights sync`: registers everything in the queue.
pub fn sync(ctx: &Ctx) -> anyhow::Result<()> {
    super::info::report_opens(ctx);
    let q = RegistrationQueue::new(&ctx.paths);
    let registrar = Registrar::new(&ctx.paths, || ctx.session());
    let mut done = Vec::new();
    let mut left = Vec::new();
    let mut claimed = Vec::new();
    for (id, pl) in q.list() {
        let pl = match pl {
            Ok(pl) => pl,
            Err(e) => {
                left.push(serde_json::json!({ "content_id": id, "error": e.to_string() }));
                continue;
            }
        };
        match registrar.register_or_queue(&id, &pl) {
            Ok(Outcome::Registered) => done.push(id),
            Ok(Outcome::Queued(_)) => left.push(serde_json::json!({ "content_id": id, "error": "server unreachable" })),
            Ok(Outcome::Refused(e)) | Err(e) => {
                left.push(serde_json::json!({ "content_id": id, "error": e.to_string() }))
            }
            Ok(Outcome::Claimed(c)) => claimed.push(c),
        }
    }
    if ctx.json {
        output::json(&serde_json::json!({
            "registered": done,
            "pending": left,
            "claimed_by_others": claimed.iter().map(|c| serde_json::json!({
                "content_id": c.content_id, "alarm": c.alarm(),
            })).collect::<Vec<_>>(),
        }));
    } else {
        println!("registered {}, still pending {}", done.len(), left.len());
        for l in &left {
            println!(
                "  {}: {}",
                output::field(l, &["content_id"]),
                output::field(l, &["error"])
            );
        }
    }
    if let Some(first) = claimed.first() {
        for c in &claimed[1..] {
            eprintln!("{}", c.alarm());
        }
        bail!("{}", first.alarm());
    }
    if !left.is_empty() {
        bail!(
            "{} registration(s) still pending; run `rights sync` again when the server is reachable",
            left.len()
        );
    }
    Ok(())
}
