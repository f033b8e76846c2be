//! mount, unmount: the FUSE mount driven from the command line, with keys
//! from the user's licence store and registrations queued and flushed in
//! the background.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{Sender, channel};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::ctx::Ctx;
use super::output;
use crate::client::{PendingLog, Registrar, RegistrationQueue, SendRule};
use crate::crypto::{ServerVerifyingKey, SharedAgreements};
use crate::format::{FileHeader, Fresh, RemovedDevices, Writer};
use crate::fs::{DefaultPolicy, KeySource, MountConfig};
use crate::licence::{Access, AccessError, ContentAhead, Licensing};
use crate::policy::{ContentId, Email, Grant, Policy, Rights};

/// Longest a FUSE worker waits for the server when a licence must be
/// fetched; past it the open fails with EACCES and a log line.
pub const MOUNT_TIMEOUT: Duration = Duration::from_secs(5);

/// Set in the environment of the background daemon `--daemon` starts.
const DAEMON_CHILD: &str = "RIGHTS_MOUNT_DAEMON_CHILD";

/// Keys for the mount: the user's licence store, plus registration of new
/// content through the pending log (sent by a background thread).
struct MountKeys {
    licensing: Arc<Licensing>,
    me: Email,
    ahead: ContentAhead,
    pending: Arc<PendingLog>,
    wake: std::sync::Mutex<Sender<()>>,
    /// Wakes the thread that reports saves (and offline opens).
    report: std::sync::Mutex<Sender<()>>,
}

impl KeySource for MountKeys {
    fn access(&self, header: &FileHeader) -> Result<Access, AccessError> {
        self.licensing.key_for(header)
    }

    fn cached_rights(&self, id: &ContentId) -> Option<Rights> {
        self.licensing.cached(id).filter(|c| c.valid_now()).map(|c| c.rights)
    }

    fn create(&self, policy: Policy) -> Result<Fresh, AccessError> {
        let (new, fresh) = self.ahead.take(policy)?;
        match self.pending.push(&new.content_id, &new.licence) {
            // The first of a burst starts the registrar's clock; it is
            // woken again when as many wait as may.
            Ok(waiting) if waiting == 1 || waiting % SendRule::MOUNT.max_waiting == 0 => {
                let _ = self.wake.lock().unwrap_or_else(|p| p.into_inner()).send(());
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %e, "could not log a registration; it is sent when the owner next opens the file")
            }
        }
        Ok(fresh)
    }

    fn sync_new(&self) -> Result<(), AccessError> {
        self.pending
            .sync()
            .map_err(|e| AccessError::Io(std::io::Error::other(e)))
    }

    fn me(&self) -> &Email {
        &self.me
    }

    fn verifier(&self) -> &ServerVerifyingKey {
        self.licensing.server_key()
    }

    fn removed_devices(&self) -> RemovedDevices {
        self.licensing.removed_devices().clone()
    }

    fn writer(&self, header: &FileHeader, access: &Access) -> Result<Option<Writer>, AccessError> {
        self.licensing.writer_for(header, access)
    }

    fn renew(&self, header: &FileHeader) -> Result<Access, AccessError> {
        self.licensing.renew(header)
    }

    fn facts_index_key(&self) -> Option<zeroize::Zeroizing<[u8; 32]>> {
        Some(self.licensing.identity().device_key.facts_index_key())
    }

    fn saved(&self, header: &FileHeader, generation: u64) {
        self.licensing.record_save(header, generation);
        let _ = self.report.lock().unwrap_or_else(|p| p.into_inner()).send(());
    }
}

/// Seconds between reports of what waits (saves, offline opens) when
/// nothing new wakes the reporter: a server that was away hears it soon.
const REPORT_EVERY: Duration = Duration::from_secs(300);

/// Reports saves and offline opens in the background, when woken by a
/// save and every [`REPORT_EVERY`], so that no FUSE worker waits for the
/// server; fetches the list of removed devices again once it is old. What the server does not take waits for the next try.
fn report_in_background(licensing: Arc<Licensing>, wake: std::sync::mpsc::Receiver<()>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("rightsfs-reporter".into())
        .spawn(move || {
            while !matches!(
                wake.recv_timeout(REPORT_EVERY),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
            ) {
                while wake.try_recv().is_ok() {}
                if let Err(e) = licensing.report_opens() {
                    tracing::debug!(error = %e, "saves and offline opens not reported yet");
                }
                licensing.refresh_removed_devices_if_stale();
            }
        })
        .map(drop)
}

/// Options of `rights mount`.
pub struct MountArgs<'a> {
    pub source: &'a Path,
    pub mountpoint: &'a Path,
    pub daemon: bool,
    pub default_policy: &'a [String],
    pub offline_days: Option<u32>,
    pub threads: usize,
    pub busy_poll: std::time::Duration,
    /// Bytes of block tags kept for files closed (see `MountConfig`).
    pub tag_memory: usize,
    /// Inodes kept before the kernel is asked to drop old ones.
    pub max_inodes: usize,
    pub allow_other: bool,
}

/// `rights mount`.
pub fn mount(ctx: &Ctx, a: MountArgs<'_>) -> anyhow::Result<()> {
    if !a.daemon || std::env::var_os(DAEMON_CHILD).is_some() {
        // Before any thread exists, so that every thread inherits them.
        crate::fs::block_signals();
        crate::fs::tune_allocator();
        keep_secrets(ctx);
    }
    let me = ctx.config.me()?.clone();
    let (src, mnt) = crate::fs::check(a.source, a.mountpoint)?;
    let mut grants = Vec::new();
    for spec in a.default_policy {
        grants.push(Grant::parse_spec(spec).with_context(|| format!("--default-policy {spec}"))?);
    }
    // Fail now, in the foreground, if the keys cannot be had.
    let timeout = super::ctx::timeout().min(MOUNT_TIMEOUT);
    let licensing = Arc::new(crate::client::licensing(
        &ctx.paths,
        &ctx.config,
        ctx.keystore.clone(),
        timeout,
        true,
    )?);
    // Every version saved through the mount is signed: get this device's
    // certificate now (kept in the data folder after the first time).
    licensing.writer().context("the mount signs every version it saves")?;
    // Folder policy files count only when this device signed them.
    let defaults = DefaultPolicy::new(
        grants,
        a.offline_days
            .or(ctx.config.offline_days)
            .unwrap_or(super::protect::DEFAULT_OFFLINE_DAYS),
        Some(licensing.identity().device_key.public().to_der()),
    );
    if a.daemon && std::env::var_os(DAEMON_CHILD).is_none() {
        return start_daemon(ctx, &src, &mnt);
    }
    init_logging();
    // Versions signed by devices removed from their accounts are refused:
    // the list as the server has it now, else the one kept.
    match licensing.refresh_removed_devices() {
        Ok(n) => tracing::info!(devices = n, "list of removed devices fetched"),
        Err(e) => tracing::warn!(error = %e, "cannot fetch the list of removed devices; using the one kept"),
    }
    let (tx, rx) = channel();
    let pending = Arc::new(PendingLog::new(&RegistrationQueue::new(&ctx.paths)));
    // Files created in the mount share key agreements with the server's key
    // and take keys, signatures and headers made ahead.
    let kem = SharedAgreements::new(ctx.config.server_kem()?);
    let caches = Arc::new(crate::format::Caches::new(a.tag_memory));
    let (report_tx, report_rx) = channel();
    report_in_background(licensing.clone(), report_rx)?;
    let keys = Arc::new(MountKeys {
        ahead: ContentAhead::start(licensing.clone(), ctx.config.server()?, kem, caches.clone()),
        licensing,
        me,
        pending: pending.clone(),
        wake: std::sync::Mutex::new(tx.clone()),
        report: std::sync::Mutex::new(report_tx),
    });
    let reg_ctx = ctx.clone_for_quiet()?;
    let mut cfg = MountConfig::new(src.clone(), mnt.clone());
    let activity = cfg.activity.clone();
    std::thread::Builder::new()
        .name("rightsfs-registrar".into())
        .spawn(move || {
            let registrar = Registrar::new(&reg_ctx.paths, || reg_ctx.session());
            registrar.run(pending, || activity.last(), rx)
        })?;
    let _ = tx.send(());
    cfg.defaults = defaults;
    cfg.threads = a.threads;
    cfg.busy_poll = a.busy_poll;
    cfg.caches = caches;
    cfg.max_inodes = a.max_inodes;
    cfg.allow_other = a.allow_other;
    cfg.registry = Some(ctx.paths.mounts_dir());
    cfg.log = std::env::var_os("RIGHTS_MOUNT_LOG").map(PathBuf::from);
    if std::env::var_os(DAEMON_CHILD).is_none() && !ctx.json {
        eprintln!(
            "Mounted {} at {}. Press Ctrl-C (or run `rights unmount {}`) to unmount.",
            src.display(),
            mnt.display(),
            mnt.display()
        );
    }
    crate::fs::run(&cfg, keys)?;
    Ok(())
}

/// The process that serves the mount holds decrypted content keys for its
/// whole life: no core dumps or `ptrace` by other processes of the user
/// (`PR_SET_DUMPABLE` 0 also makes /proc/PID/mem and environ root-only),
/// and no passphrase left in its environment.
fn keep_secrets(ctx: &Ctx) {
    if let Err(e) = rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable) {
        tracing::warn!(error = %std::io::Error::from(e), "could not make the mount non-dumpable");
    }
    ctx.keystore.take_passphrase_from_env();
}

/// Logging for the mount: colour only on a terminal (the daemon's stderr
/// is its log file). `fuser::session` is kept to errors: its one warning
/// reports that fuser's own unmount at the end found nothing mounted,
/// which is always so here, as every unmount (`rights unmount`, a signal)
/// detaches the mount before the session ends.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RIGHTS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,fuser=warn,fuser::session=error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Starts this same command as a background daemon (own session, output to
/// a log file) and returns once the mount is up, or with the daemon's error.
fn start_daemon(ctx: &Ctx, src: &Path, mnt: &Path) -> anyhow::Result<()> {
    let logs = ctx.paths.data_dir.join("logs");
    crate::client::ensure_private_dir(&logs)?;
    let stem = mnt
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "root".into());
    let log = logs.join(format!("mount-{stem}.log"));
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .with_context(|| format!("cannot open the log file {}", log.display()))?;
    let start_len = out.metadata().map(|m| m.len()).unwrap_or(0);
    let args: Vec<_> = std::env::args_os().skip(1).filter(|a| a != "--daemon").collect();
    let exe = std::env::current_exe().context("cannot find the rights executable")?;
    let mut cmd = Command::new(exe);
    cmd.args(&args)
        .env(DAEMON_CHILD, "1")
        .env("RIGHTS_MOUNT_LOG", &log)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    // Detached from the terminal, so that closing it does not stop the mount.
    crate::sys::new_session_on_exec(&mut cmd);
    let mut child = cmd.spawn().context("cannot start the mount daemon")?;
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        if crate::fs::is_mounted(mnt) {
            break;
        }
        if let Some(status) = child.try_wait()? {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let tail = text.get(start_len as usize..).unwrap_or("").trim();
            let last = tail.lines().last().unwrap_or("no output");
            bail!("the mount daemon exited ({status}): {last}");
        }
        if Instant::now() > until {
            let _ = child.kill();
            bail!("the mount did not come up within 30 s; see {}", log.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if ctx.json {
        output::json(&serde_json::json!({
            "source": src, "mountpoint": mnt, "pid": child.id(), "log": log,
        }));
    } else {
        println!(
            "Mounted {} at {} (daemon pid {}, log {}). Run `rights unmount {}` to stop.",
            src.display(),
            mnt.display(),
            child.id(),
            log.display(),
            mnt.display()
        );
    }
    Ok(())
}

/// `rights unmount`.
pub fn unmount(ctx: &Ctx, mountpoint: &Path, force: bool) -> anyhow::Result<()> {
    let mnt = std::fs::canonicalize(mountpoint).unwrap_or_else(|_| mountpoint.to_path_buf());
    crate::fs::unmount(&ctx.paths.mounts_dir(), &mnt, force, Duration::from_secs(30)).map_err(anyhow::Error::msg)?;
    if ctx.json {
        output::json(&serde_json::json!({ "unmounted": mnt }));
    } else {
        println!("Unmounted {}.", mnt.display());
    }
    Ok(())
}

/// Unmounts every mount of this user (logout); fails naming what stayed.
pub fn unmount_all(ctx: &Ctx) -> anyhow::Result<()> {
    let failed = crate::fs::unmount_all(&ctx.paths.mounts_dir());
    if let Some((m, e)) = failed.first() {
        bail!(
            "could not unmount {} ({e}); close programs using it and run `rights logout` again",
            m.display()
        );
    }
    Ok(())
}

/// The mounts for `rights status`.
pub fn status_json(ctx: &Ctx) -> Vec<serde_json::Value> {
    let me = ctx.config.me().ok().cloned();
    let signer = crate::client::device_key(&ctx.keystore)
        .ok()
        .map(|k| k.public().to_der());
    crate::fs::list(&ctx.paths.mounts_dir())
        .into_iter()
        .map(|r| {
            let found = SourceFindings::walk(&r.source, me.as_ref(), signer.as_deref());
            serde_json::json!({
                "source": r.source, "mountpoint": r.mountpoint, "pid": r.pid,
                "alive": r.alive(), "log": r.log,
                "started": crate::policy::format_time(r.started),
                "recovered": r.recovered,
                "plain_files": found.plain, "plain_file_count": found.plain_count,
                "ignored_policies": found.ignored,
            })
        })
        .collect()
}

/// What a mount's source folder holds that the mount will not treat as
/// the user's: plain (unprotected) files, which it shows read-only, and
/// policy files it ignores (unsigned, or not signed on this device).
#[derive(Default)]
struct SourceFindings {
    /// Up to [`SHOWN`] plain files, relative to the source.
    plain: Vec<String>,
    plain_count: usize,
    /// `{file, reason}` of each ignored policy file.
    ignored: Vec<serde_json::Value>,
}

/// Plain files listed by name (the rest are counted).
const SHOWN: usize = 20;
/// Entries visited at most, so that status stays quick on a huge folder.
const VISIT: usize = 100_000;

impl SourceFindings {
    fn walk(src: &Path, me: Option<&crate::policy::Email>, signer: Option<&[u8]>) -> Self {
        let mut found = Self::default();
        let mut stack = vec![src.to_path_buf()];
        let mut visited = 0usize;
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                visited += 1;
                if visited > VISIT {
                    return found;
                }
                let (path, name) = (e.path(), e.file_name());
                let Ok(ft) = e.file_type() else { continue };
                if ft.is_dir() {
                    if !(dir == src && name == crate::fs::STATE_DIR) {
                        stack.push(path);
                    }
                } else if name == crate::fs::POLICY_FILE {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    let verdict = crate::policy::FolderPolicy::parse(&text)
                        .map_err(|e| e.to_string())
                        .and_then(|p| match (me, signer) {
                            (Some(me), Some(key)) => p.verify(me, key, &dir).map_err(|e| e.to_string()),
                            _ => Err("this device's key is not at hand to check it".to_string()),
                        });
                    if let Err(reason) = verdict {
                        found
                            .ignored
                            .push(serde_json::json!({ "file": path, "reason": reason }));
                    }
                } else if ft.is_file()
                    && !name.to_string_lossy().ends_with(crate::format::SUFFIX)
                    && !crate::fs::is_side_file(&name)
                {
                    found.plain_count += 1;
                    if found.plain.len() < SHOWN {
                        let rel = path.strip_prefix(src).unwrap_or(&path);
                        found.plain.push(rel.display().to_string());
                    }
                }
            }
        }
        found
    }
}
