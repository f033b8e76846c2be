//! protect, cat, unprotect: turning files into protected files and back.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use indicatif::{ProgressBar, ProgressStyle};

use super::ctx::Ctx;
use super::files::{
    is_protected, open_protected, plain_name, protected_name, publish, remove_durably, remove_stale_temps, temp_for,
};
use super::output;
use crate::client::{ClientError, Outcome, Registrar, Registration};
use crate::format::{ProtectedFile, SUFFIX};
use crate::licence::{Access, AccessError};
use crate::policy::{ContentId, Grant, Policy, PublishingLicence, Right, parse_expiry};

const CHUNK: usize = 1 << 20;
pub use crate::policy::DEFAULT_OFFLINE_DAYS;

/// Registers a publishing licence with the server, or queues it when the
/// server cannot take it now (saying so unless quiet).
pub fn register_or_queue(ctx: &Ctx, id: &ContentId, pl: &PublishingLicence) -> anyhow::Result<Registration> {
    let registrar = Registrar::new(&ctx.paths, || ctx.session());
    match registrar.register_or_queue(id, pl)? {
        Outcome::Registered => Ok(Registration::Registered),
        Outcome::Queued(e) => {
            if !ctx.json && !ctx.quiet {
                eprintln!("note: {e}; registration queued, run `rights sync` when online");
            }
            Ok(Registration::Queued)
        }
        Outcome::Refused(e) => Err(anyhow::anyhow!(
            "{e}; the file is protected and its registration queued for `rights sync`"
        )),
        Outcome::Claimed(claim) => Err(anyhow::anyhow!("{}", claim.alarm())),
    }
}

fn collect(paths: &[PathBuf], recursive: bool) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        let md = std::fs::symlink_metadata(p).with_context(|| format!("cannot read {}", p.display()))?;
        if md.is_dir() {
            if !recursive {
                bail!("{} is a folder: add -r to protect everything in it", p.display());
            }
            walk(p, &mut out)?;
        } else if md.is_file() {
            if p.to_string_lossy().ends_with(SUFFIX) || is_protected(p) {
                bail!("{} is already protected", p.display());
            }
            out.push(p.clone());
        } else {
            bail!("{} is not a regular file", p.display());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            walk(&p, out)?;
        } else if ft.is_file()
            && !name.ends_with(SUFFIX)
            && !name.contains(".rights.part")
            && !crate::fs::is_side_file(&e.file_name())
            && !is_protected(&p)
        {
            out.push(p);
        }
    }
    Ok(())
}

/// How `rights protect` walks and what it does with the originals.
#[derive(Clone, Copy, Debug, Default)]
pub struct How {
    /// Into folders.
    pub recursive: bool,
    /// Overwrite each original before removing it.
    pub shred: bool,
}

/// `rights protect`.
pub fn protect(
    ctx: &Ctx,
    paths: &[PathBuf],
    to: &[String],
    offline_days: Option<u32>,
    expires: Option<&str>,
    how: How,
) -> anyhow::Result<()> {
    let recursive = how.recursive;
    let me = ctx.config.me()?.clone();
    let mut policy = Policy::owner_only(
        me,
        offline_days.or(ctx.config.offline_days).unwrap_or(DEFAULT_OFFLINE_DAYS),
    );
    for spec in to {
        policy.upsert_grant(Grant::parse_spec(spec)?);
    }
    policy.expires = expires.map(parse_expiry).transpose()?;
    policy.validate()?;
    let files = collect(paths, recursive)?;
    for f in &files {
        let target = protected_name(f);
        if target.exists() {
            bail!("{} already exists; move it away first", target.display());
        }
    }
    let licensing = ctx.licensing()?;
    let server = ctx.config.server()?.to_string();
    let kem = ctx.config.server_kem()?;
    // Every version is signed by its writer; readers refuse one that is not.
    let writer = licensing.writer()?;
    // Each new header is checked as a reader would check it; the device
    // certificate in them all once.
    let caches = crate::format::Caches::new(0);
    let total: u64 = files.iter().filter_map(|f| f.metadata().ok()).map(|m| m.len()).sum();
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{msg:30!} [{bar:30}] {bytes}/{total_bytes} {eta}")
            .expect("static template")
            .progress_chars("=> "),
    );
    let mut results = Vec::new();
    for f in &files {
        bar.set_message(f.display().to_string());
        let new = licensing.new_content(policy.clone(), &server, &kem)?;
        let target = protected_name(f);
        if let Err(e) = write_protected(f, &target, new.fresh(writer.clone(), Some(&caches))?, &bar, how.shred) {
            let _ = licensing.discard_content(&new.content_id);
            bar.abandon();
            return Err(e);
        }
        if let Err(e) = crate::client::Index::new(&ctx.paths).note(&new.content_id, &target, &policy.owner, true) {
            tracing::debug!(error = %e, "could not index {}", target.display());
        }
        let reg = register_or_queue(ctx, &new.content_id, &new.licence)?;
        results.push(serde_json::json!({
            "file": f, "protected": target, "content_id": new.content_id, "registration": reg,
        }));
        if !ctx.json && !ctx.quiet {
            bar.suspend(|| {
                let state = if reg == Registration::Registered {
                    ""
                } else {
                    " (registration queued)"
                };
                println!("{} -> {}{state}", f.display(), target.display());
            });
        }
    }
    bar.finish_and_clear();
    if ctx.quiet {
        return Ok(());
    }
    if ctx.json {
        output::json(&results);
    } else if files.is_empty() {
        println!("Nothing to protect: every file is already protected.");
    } else if !how.shred {
        eprintln!(
            "Note: the unprotected originals were deleted, but their blocks may remain on the disk until \
             reused. `rights protect --shred` overwrites them first (SSDs and copy-on-write filesystems \
             may still keep old copies: keep files on an encrypted disk)."
        );
    }
    Ok(())
}

/// Writes `src` protected to a temp file, syncs it, moves it to `target`,
/// and only then removes `src`. Interrupted at any point, `src` is intact.
fn write_protected(
    src: &Path,
    target: &Path,
    fresh: crate::format::Fresh,
    bar: &ProgressBar,
    shred: bool,
) -> anyhow::Result<()> {
    remove_stale_temps(target);
    let mut input = File::open(src).with_context(|| format!("cannot read {}", src.display()))?;
    let perm = input.metadata()?.permissions();
    let tmp = temp_for(target);
    let out = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write in {}", super::files::parent_of(target).display()))?;
    let r = (|| -> anyhow::Result<()> {
        let mut pf = ProtectedFile::create_from(out, fresh)?;
        let mut buf = zeroize::Zeroizing::new(vec![0u8; CHUNK]);
        let mut off = 0u64;
        loop {
            let n = input.read(&mut buf)?;
            if n == 0 {
                break;
            }
            pf.write_at(&buf[..n], off)?;
            off += n as u64;
            bar.inc(n as u64);
        }
        pf.sync()?;
        pf.file().sync_all()?;
        let _ = pf.file().set_permissions(perm);
        drop(pf);
        publish(&tmp, target)
    })();
    if let Err(e) = r {
        let _ = std::fs::remove_file(&tmp);
        return Err(e.context(format!("protecting {} failed; it was left unchanged", src.display())));
    }
    if shred {
        overwrite(src).with_context(|| format!("cannot overwrite {}", src.display()))?;
    }
    remove_durably(src)
}

/// Overwrites a plaintext original in place with zeros and syncs it, so
/// that its blocks no longer hold the content once it is removed.
fn overwrite(path: &Path) -> anyhow::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    let mut left = f.metadata()?.len();
    let zeros = vec![0u8; CHUNK];
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        f.write_all(&zeros[..n])?;
        left -= n as u64;
    }
    f.sync_all()?;
    Ok(())
}

/// Opens a protected file for reading with a licence that grants `need`.
pub fn open_with_right(ctx: &Ctx, path: &Path, need: Right) -> anyhow::Result<(ProtectedFile, Access)> {
    let (f, h) = open_protected(path)?;
    let signed_out = || {
        let url = &h.licence.server_url;
        anyhow::anyhow!(
            "not logged in on this device, and {} is served by {url}: run `rights login YOUR-EMAIL --server {url}`",
            path.display()
        )
    };
    let licensing = ctx.licensing().map_err(|e| match e.downcast_ref::<ClientError>() {
        Some(ClientError::NotLoggedIn) => signed_out(),
        _ => e,
    })?;
    let access = licensing.key_for(&h).map_err(|e| match e {
        AccessError::NotLoggedIn => {
            let url = &h.licence.server_url;
            anyhow::anyhow!(
                "the server {url} no longer accepts this device's session (it expired, was logged out, or the \
                 device was removed): run `rights login {} --server {url}`",
                licensing.identity().email
            )
        }
        e => e.into(),
    })?;
    super::target::note(&crate::client::Index::new(&ctx.paths), &h.content_id(), path, &h);
    if !access.rights.has(need) {
        bail!(
            "you may not {} {} (your rights: {}); ask its owner {} for the {} right",
            match need {
                Right::Export => "remove protection from",
                Right::Edit => "edit",
                _ => "open",
            },
            path.display(),
            access.rights,
            h.licence.policy.owner,
            need.name()
        );
    }
    let pf = ProtectedFile::open_verified(f, &access.key, &licensing.verifier())
        .map_err(|e| anyhow::anyhow!("{} cannot be opened: {e}", path.display()))?;
    Ok((pf, access))
}

/// `rights cat`.
pub fn cat(ctx: &Ctx, path: &Path) -> anyhow::Result<()> {
    let (pf, _) = open_with_right(ctx, path, Right::View)?;
    let mut out = std::io::stdout().lock();
    let mut buf = zeroize::Zeroizing::new(vec![0u8; CHUNK]);
    let mut off = 0u64;
    while off < pf.len() {
        let n = pf
            .read_at(&mut buf, off)
            .map_err(|e| anyhow::anyhow!("{} is damaged: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        match out.write_all(&buf[..n]) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            r => r?,
        }
        off += n as u64;
    }
    match out.flush() {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

/// `rights cat --salvage`: what still authenticates of a damaged file,
/// damaged ranges as zeros, each reported on stderr.
pub fn salvage(ctx: &Ctx, path: &Path) -> anyhow::Result<()> {
    let (f, h) = open_protected(path)?;
    let access = ctx.licensing()?.key_for(&h)?;
    if !access.rights.has(Right::View) {
        bail!("you may not open {} (your rights: {})", path.display(), access.rights);
    }
    let mut out = std::io::stdout().lock();
    let mut damaged: Vec<(u64, u64)> = Vec::new();
    let zeros = vec![0u8; h.geometry.block_size as usize];
    ProtectedFile::salvage(&f, &access.key, |at, len, plain| {
        match plain {
            Some(p) => out.write_all(p)?,
            None => {
                match damaged.last_mut() {
                    Some(last) if last.1 == at => last.1 = at + len,
                    _ => damaged.push((at, at + len)),
                }
                out.write_all(&zeros[..len as usize])?
            }
        }
        Ok(())
    })
    .map_err(|e| anyhow::anyhow!("{} cannot be salvaged: {e}", path.display()))?;
    out.flush()?;
    for (from, to) in &damaged {
        eprintln!("{}: bytes {from}..{to} are damaged (written as zeros)", path.display());
    }
    if !damaged.is_empty() {
        bail!(
            "{} is damaged: {} range(s) could not be read; everything else was written",
            path.display(),
            damaged.len()
        );
    }
    Ok(())
}

/// `rights unprotect`.
pub fn unprotect(ctx: &Ctx, path: &Path) -> anyhow::Result<()> {
    let target = plain_name(path)?;
    if target.exists() {
        bail!("{} already exists; move it away first", target.display());
    }
    let (pf, _) = open_with_right(ctx, path, Right::Export)?;
    remove_stale_temps(&target);
    let tmp = temp_for(&target);
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    let r = (|| -> anyhow::Result<()> {
        let mut buf = zeroize::Zeroizing::new(vec![0u8; CHUNK]);
        let mut off = 0u64;
        while off < pf.len() {
            let n = pf
                .read_at(&mut buf, off)
                .map_err(|e| anyhow::anyhow!("{} is damaged: {e}", path.display()))?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n])?;
            off += n as u64;
        }
        out.sync_all()?;
        publish(&tmp, &target)
    })();
    if let Err(e) = r {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    drop(pf);
    remove_durably(path)?;
    if ctx.json {
        output::json(&serde_json::json!({ "file": path, "unprotected": target }));
    } else {
        println!("{} -> {}", path.display(), target.display());
    }
    Ok(())
}
