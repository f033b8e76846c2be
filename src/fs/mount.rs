//! Mounting: checks that name the fix when something is missing, the FUSE
//! session with its worker threads, and a clean unmount on SIGTERM, SIGINT
//! or SIGHUP.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fuser::{Config, MountOption, SessionACL};

use super::Activity;
use super::access::{DefaultPolicy, KeySource};
use super::linger::Linger;
use super::registry::{MountRecord, Reporter};
use super::state::RightsFs;
use crate::format::Caches;
use crate::sys::SignalSet;

/// How to mount.
#[derive(Clone, Debug)]
pub struct MountConfig {
    /// The folder of protected files.
    pub source: PathBuf,
    /// Where to show them.
    pub mountpoint: PathBuf,
    /// Grants given to files created in the mount.
    pub defaults: DefaultPolicy,
    /// FUSE worker threads (each with its own `/dev/fuse` descriptor).
    pub threads: usize,
    /// How long the last worker to answer polls for the next request
    /// before sleeping (`linger.rs`); zero never polls.
    pub busy_poll: Duration,
    /// The checks this mount remembers and the block tags it keeps for
    /// files verified or written (bounded by the tag memory they are made
    /// with, see `format/store/known_tags.rs`). Shared with whatever makes
    /// the headers of the mount's new files, so that those are checked
    /// once, as they are made.
    pub caches: Arc<Caches>,
    /// Inodes the mount keeps track of before it asks the kernel to drop
    /// the names of files looked up longest ago (`prune.rs`); 0: no cap.
    /// Bounds the daemon's memory however many files are walked.
    pub max_inodes: usize,
    /// Let other local users in (off by default: they would see plaintext).
    pub allow_other: bool,
    /// The registry folder for the mount record (`None`: no record).
    pub registry: Option<PathBuf>,
    /// The daemon's log file, for the record.
    pub log: Option<PathBuf>,
    /// Notes when the mount last answered a request, for the caller's
    /// background work to wait for a pause.
    pub activity: Arc<Activity>,
}

impl MountConfig {
    /// Defaults for `source` on `mountpoint`.
    pub fn new(source: PathBuf, mountpoint: PathBuf) -> Self {
        Self {
            source,
            mountpoint,
            defaults: DefaultPolicy::new(Vec::new(), crate::policy::DEFAULT_OFFLINE_DAYS, None),
            threads: 4,
            busy_poll: super::DEFAULT_BUSY_POLL,
            caches: Arc::new(Caches::new(crate::format::DEFAULT_TAG_MEMORY)),
            max_inodes: super::DEFAULT_MAX_INODES,
            allow_other: false,
            registry: None,
            log: None,
            activity: Arc::default(),
        }
    }
}

/// Why a mount could not start. Each message names the fix.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// SRC is missing or not a folder.
    #[error("source folder {0} does not exist or is not a folder: create it or check the path")]
    NoSource(PathBuf),
    /// MNT is missing or not a folder.
    #[error("mount point {0} does not exist or is not a folder: create it with `mkdir -p {0}`")]
    NoMountpoint(PathBuf),
    /// MNT has files in it.
    #[error("mount point {0} is not empty: use an empty folder (files there would be hidden by the mount)")]
    NotEmpty(PathBuf),
    /// MNT already carries a mount.
    #[error("{0} is already mounted: run `rights unmount {0}` first")]
    AlreadyMounted(PathBuf),
    /// One inside the other would loop.
    #[error("the mount point must not be inside the source folder or contain it")]
    Nested,
    /// No FUSE.
    #[error("FUSE is not available ({0}): install it with `sudo apt-get install fuse3` (and `modprobe fuse`)")]
    NoFuse(String),
    /// Anything else.
    #[error("mount failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Checks SRC and MNT and returns their canonical paths.
pub fn check(source: &Path, mountpoint: &Path) -> Result<(PathBuf, PathBuf), MountError> {
    let src = std::fs::canonicalize(source)
        .ok()
        .filter(|p| p.is_dir())
        .ok_or_else(|| MountError::NoSource(source.to_path_buf()))?;
    let mnt = std::fs::canonicalize(mountpoint)
        .ok()
        .filter(|p| p.is_dir())
        .ok_or_else(|| MountError::NoMountpoint(mountpoint.to_path_buf()))?;
    if super::registry::is_mounted(&mnt) {
        return Err(MountError::AlreadyMounted(mnt));
    }
    if src.starts_with(&mnt) || mnt.starts_with(&src) {
        return Err(MountError::Nested);
    }
    if std::fs::read_dir(&mnt)?.next().is_some() {
        return Err(MountError::NotEmpty(mnt));
    }
    if let Err(e) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/fuse") {
        return Err(MountError::NoFuse(format!("/dev/fuse: {e}")));
    }
    Ok((src, mnt))
}

fn fuser_config(cfg: &MountConfig, src: &Path) -> Config {
    let mut c = Config::default();
    c.mount_options = vec![
        MountOption::FSName(format!("rightsfs:{}", src.display())),
        MountOption::Subtype("rightsfs".into()),
        MountOption::NoSuid,
        MountOption::NoDev,
        MountOption::NoAtime,
    ];
    c.acl = if cfg.allow_other {
        // Other users come in: the kernel checks the mode bits for them.
        c.mount_options.push(MountOption::DefaultPermissions);
        SessionACL::All
    } else {
        // Only the mounting user: the source filesystem checks what the
        // daemon does on that user's behalf, and `perm.rs` answers
        // access(2), which saves a round trip per path walk after a change.
        SessionACL::Owner
    };
    c.n_threads = Some(cfg.threads.max(1));
    c.clone_fd = true;
    c
}

fn build(cfg: &MountConfig, keys: Arc<dyn KeySource>) -> Result<(RightsFs, PathBuf, PathBuf, Reporter), MountError> {
    let (src, mnt) = check(&cfg.source, &cfg.mountpoint)?;
    let reporter = match &cfg.registry {
        Some(dir) => Reporter::new(
            dir,
            MountRecord {
                pid: std::process::id(),
                source: src.clone(),
                mountpoint: mnt.clone(),
                started: crate::policy::now(),
                log: cfg.log.clone(),
                recovered: Vec::new(),
            },
        )?,
        None => Reporter::log_only(),
    };
    let mut fs = RightsFs::new(
        src.clone(),
        keys,
        cfg.defaults.clone(),
        reporter.clone(),
        cfg.caches.clone(),
    )?;
    fs.linger = Arc::new(Linger::noting(cfg.busy_poll, cfg.activity.clone()));
    fs.pruner = super::prune::Pruner::new(cfg.max_inodes);
    super::recover::recover_all(&fs);
    Ok((fs, src, mnt, reporter))
}

/// The FUSE session, its device handed to the busy poll and its notifier
/// to the pruner.
fn session(fs: RightsFs, mnt: &Path, cfg: &MountConfig, src: &Path) -> std::io::Result<fuser::Session<RightsFs>> {
    let linger = fs.linger.clone();
    let pruner = fs.pruner.starter(fs.table.clone());
    let session = fuser::Session::new(fs, mnt, &fuser_config(cfg, src))?;
    linger.watch(session.as_fd().try_clone_to_owned()?);
    if let Some(pruner) = pruner {
        pruner.start(session.notifier())?;
    }
    Ok(session)
}

/// Mounts and serves until unmounted (`rights unmount`, `fusermount3 -u`)
/// or until SIGTERM, SIGINT or SIGHUP, which unmount cleanly. Every open
/// file is committed before this returns.
pub fn run(cfg: &MountConfig, keys: Arc<dyn KeySource>) -> Result<(), MountError> {
    let signals = block_signals();
    let (fs, src, mnt, reporter) = build(cfg, keys)?;
    let session = match session(fs, &mnt, cfg, &src) {
        Ok(s) => s,
        Err(e) => {
            reporter.remove();
            return Err(MountError::Io(e));
        }
    };
    tracing::info!(source = %src.display(), mountpoint = %mnt.display(), "mounted");
    let watcher_mnt = mnt.clone();
    std::thread::Builder::new()
        .name("rightsfs-signals".into())
        .spawn(move || {
            let sig = signals.wait();
            tracing::info!(signal = sig, "unmounting on signal");
            if let Err(e) = super::registry::detach(&watcher_mnt, false) {
                tracing::warn!(error = %e, "unmount failed (busy?); detaching lazily");
                let _ = super::registry::detach(&watcher_mnt, true);
            }
        })?;
    let r = session.run();
    reporter.remove();
    tracing::info!(mountpoint = %mnt.display(), "unmounted");
    r.map_err(MountError::Io)
}

/// A mount served by background threads of this process (tests and
/// embedding); unmounts when dropped.
pub struct Mounted {
    session: Option<fuser::BackgroundSession>,
    mountpoint: PathBuf,
    reporter: Reporter,
    table: Arc<std::sync::Mutex<super::inodes::Table>>,
}

/// Mounts in the background of this process.
pub fn spawn(cfg: &MountConfig, keys: Arc<dyn KeySource>) -> Result<Mounted, MountError> {
    let (fs, src, mnt, reporter) = build(cfg, keys)?;
    let table = fs.table.clone();
    let session = session(fs, &mnt, cfg, &src)?.spawn()?;
    Ok(Mounted {
        session: Some(session),
        mountpoint: mnt,
        reporter,
        table,
    })
}

impl Mounted {
    /// Where it is mounted.
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// How many inodes the mount keeps track of now: what `max_inodes`
    /// bounds.
    pub fn inodes(&self) -> usize {
        self.table.lock().unwrap_or_else(|p| p.into_inner()).size()
    }

    /// Unmounts and waits until every file is committed.
    pub fn unmount(mut self) -> std::io::Result<()> {
        self.stop()
    }

    fn stop(&mut self) -> std::io::Result<()> {
        if let Some(s) = self.session.take() {
            if super::registry::detach(&self.mountpoint, false).is_err() {
                let _ = super::registry::detach(&self.mountpoint, true);
            }
            s.join()?;
            self.reporter.remove();
        }
        Ok(())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

const SIGNALS: [i32; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

/// Blocks SIGTERM, SIGINT and SIGHUP in the calling thread and so in every
/// thread it starts later, so that [`run`] can wait for them in one thread
/// and unmount cleanly. Call it before starting any thread (HTTP clients
/// start some): a thread started earlier would take the default action and
/// kill the daemon with the mount still in place. [`run`] calls it too.
pub fn block_signals() -> SignalSet {
    SignalSet::block(&SIGNALS)
}
