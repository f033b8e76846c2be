//! `rights policy`: a folder's default policy file, signed by this device.

use std::path::Path;

use anyhow::{Context as _, bail};

use super::ctx::Ctx;
use super::output;
use crate::policy::{FolderPolicy, Grant};

const FILE: &str = ".rights-policy";

/// `rights policy set DIR --to SPEC... [--offline-days N]`.
pub fn set(ctx: &Ctx, dir: &Path, to: &[String], offline_days: Option<u32>) -> anyhow::Result<()> {
    if !dir.is_dir() {
        bail!("{} is not a folder", dir.display());
    }
    for spec in to {
        Grant::parse_spec(spec).with_context(|| format!("--to {spec}"))?;
    }
    let me = ctx.config.me()?.clone();
    let licensing = ctx.licensing()?;
    let folder = absolute(dir)?;
    let signed = FolderPolicy::sign(
        to.to_vec(),
        offline_days,
        &folder,
        &me,
        &licensing.identity().device_key,
    )
    .map_err(|e| anyhow::anyhow!("cannot sign the policy: {e}"))?;
    let path = dir.join(FILE);
    crate::durable::write_private_atomic(&path, signed.to_toml().as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    if ctx.json {
        output::json(&serde_json::json!({ "file": path, "grants": to, "offline_days": offline_days }));
    } else {
        println!("Wrote {} (signed by this device).", path.display());
    }
    Ok(())
}

/// The folder's absolute path without links, as a mount of it sees it.
fn absolute(dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    std::fs::canonicalize(dir).with_context(|| format!("cannot find the folder {}", dir.display()))
}

/// `rights policy show DIR`.
pub fn show(ctx: &Ctx, dir: &Path) -> anyhow::Result<()> {
    let path = dir.join(FILE);
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let me = ctx.config.me()?.clone();
    let licensing = ctx.licensing()?;
    let p = FolderPolicy::parse(&text)?;
    let verdict = p.verify(&me, &licensing.identity().device_key.public().to_der(), &absolute(dir)?);
    if ctx.json {
        output::json(&serde_json::json!({
            "file": path, "grants": p.grants, "offline_days": p.offline_days,
            "trusted": verdict.is_ok(),
            "reason": verdict.as_ref().err().map(|e| e.to_string()),
        }));
        return Ok(());
    }
    println!("{}", path.display());
    println!(
        "  grants: {}",
        if p.grants.is_empty() {
            "(none)".to_string()
        } else {
            p.grants.join(", ")
        }
    );
    if let Some(d) = p.offline_days {
        println!("  offline days: {d}");
    }
    match verdict {
        Ok(()) => println!("  signed by you on this device: used by your mounts"),
        Err(e) => bail!("{} is not used by your mounts: {e}", path.display()),
    }
    Ok(())
}
