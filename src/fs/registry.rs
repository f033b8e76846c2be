//! The mounts of this user: one small JSON record per mount, written by the
//! daemon, so that `rights status`, `rights unmount` and `rights logout`
//! find them (and what recovery did) from any process.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::format::Recovery;
use crate::policy::{Timestamp, now};

/// What recovery did to one file after a crash.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RecoveryNote {
    /// The source file.
    pub file: String,
    /// When.
    pub at: Timestamp,
    /// A complete journal was replayed.
    pub replayed: bool,
    /// A torn journal was discarded (its commit never happened).
    pub discarded: bool,
    /// Bytes of uncommitted data cut from the end.
    pub trimmed: u64,
    /// A state lost to a power cut was rolled back to the last durable one.
    pub rolled_back: bool,
}

/// One mount.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MountRecord {
    /// The daemon.
    pub pid: u32,
    /// The folder of protected files.
    pub source: PathBuf,
    /// Where it is mounted.
    pub mountpoint: PathBuf,
    /// When it was mounted.
    pub started: Timestamp,
    /// The daemon's log file, if it runs in the background.
    pub log: Option<PathBuf>,
    /// Crash recovery done since the mount started.
    #[serde(default)]
    pub recovered: Vec<RecoveryNote>,
}

impl MountRecord {
    /// Whether the daemon still runs and the mount is still there.
    pub fn alive(&self) -> bool {
        pid_alive(self.pid) && is_mounted(&self.mountpoint)
    }
}

fn record_path(dir: &Path, mountpoint: &Path) -> PathBuf {
    let h = crate::crypto::sha256(mountpoint.as_os_str().as_encoded_bytes());
    dir.join(format!("{}.json", hex::encode(&h[..8])))
}

/// Keeps the record of the running mount up to date (recovery notes).
#[derive(Clone)]
pub struct Reporter {
    inner: Arc<Mutex<Option<(PathBuf, MountRecord)>>>,
}

impl Reporter {
    /// A reporter that writes `record` into the registry folder `dir`.
    pub fn new(dir: &Path, record: MountRecord) -> std::io::Result<Self> {
        let path = record_path(dir, &record.mountpoint);
        crate::durable::write_private_atomic(&path, &serde_json::to_vec_pretty(&record)?)?;
        Ok(Self {
            inner: Arc::new(Mutex::new(Some((path, record)))),
        })
    }

    /// A reporter that only logs (tests, embedded use).
    pub fn log_only() -> Self {
        Self {
            inner: Arc::new(Mutex::new(None)),
        }
    }

    /// Logs and records what recovery did to `file`.
    pub fn recovered(&self, file: &str, r: &Recovery) {
        tracing::warn!(
            file,
            replayed = r.replayed,
            discarded = r.discarded,
            trimmed = r.trimmed,
            rolled_back = r.rolled_back,
            "recovered a file after a crash"
        );
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((path, rec)) = g.as_mut() {
            rec.recovered.push(RecoveryNote {
                file: file.to_string(),
                at: now(),
                replayed: r.replayed,
                discarded: r.discarded,
                trimmed: r.trimmed,
                rolled_back: r.rolled_back,
            });
            if let Ok(j) = serde_json::to_vec_pretty(rec)
                && let Err(e) = crate::durable::write_private_atomic(path, &j)
            {
                tracing::warn!(error = %e, "could not update the mount record");
            }
        }
    }

    /// Removes the record (clean unmount).
    pub fn remove(&self) {
        if let Some((path, _)) = self.inner.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Every recorded mount; records of dead daemons whose mount is gone are
/// removed on the way.
pub fn list(dir: &Path) -> Vec<MountRecord> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in rd.flatten() {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let Some(rec) = std::fs::read(&p)
            .ok()
            .and_then(|b| serde_json::from_slice::<MountRecord>(&b).ok())
        else {
            continue;
        };
        if !pid_alive(rec.pid) && !is_mounted(&rec.mountpoint) {
            let _ = std::fs::remove_file(&p);
            continue;
        }
        out.push(rec);
    }
    out.sort_by(|a, b| a.mountpoint.cmp(&b.mountpoint));
    out
}

/// The record of the mount at `mountpoint`, if any.
pub fn find(dir: &Path, mountpoint: &Path) -> Option<MountRecord> {
    list(dir).into_iter().find(|r| r.mountpoint == mountpoint)
}

/// The process `pid` names (none for 0, or past the kernel's range).
fn process(pid: u32) -> Option<rustix::process::Pid> {
    i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw)
}

/// Whether `pid` is a running process. A zombie (exited, or killed with
/// SIGKILL, but not yet reaped by its parent) is not: a daemon detached by
/// `--daemon` is reaped by init, which may do so late or, in a container
/// without an init, never; counting it as running made `rights status`
/// call a dead mount alive and `rights unmount --force` wait its full
/// timeout for a process that had long exited.
pub fn pid_alive(pid: u32) -> bool {
    if process(pid).is_none_or(|p| rustix::process::test_kill_process(p).is_err()) {
        return false;
    }
    !is_zombie(pid)
}

/// Whether `/proc/PID/stat` shows the process exited but unreaped (`Z`,
/// or `X` while it is being reaped). Unknown (no procfs) counts as not.
fn is_zombie(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the command name, which is in parentheses and may
    // itself contain ") ".
    stat.rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next())
        .is_some_and(|state| state == "Z" || state == "X")
}

/// Whether something is mounted at `path` (per `/proc/self/mountinfo`).
pub fn is_mounted(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = path.to_string_lossy();
    info.lines()
        .any(|l| l.split(' ').nth(4).is_some_and(|m| unescape(m) == want))
}

fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Why a mount could not be undone.
#[derive(Debug, thiserror::Error)]
pub enum UnmountError {
    /// Neither mounted nor recorded.
    #[error("{} is not a rightsfs mount", .0.display())]
    NotMounted(PathBuf),
    /// A program holds a file or folder open there.
    #[error(
        "{} is busy (a program has a file open there): close it, or run `rights unmount --force {}`",
        .0.display(),
        .0.display()
    )]
    Busy(PathBuf),
    /// The system refused for another reason.
    #[error("unmounting {} failed: {source}", mountpoint.display())]
    Failed {
        /// The mount point.
        mountpoint: PathBuf,
        /// What the system said.
        source: DetachError,
    },
}

/// Why detaching a FUSE mount failed.
#[derive(Debug, thiserror::Error)]
pub enum DetachError {
    /// `fusermount3` refused; its message.
    #[error("{0}")]
    Fusermount(String),
    /// `umount2` failed (`fusermount3` is not installed).
    #[error("{0} (and fusermount3 is missing: install the fuse3 package)")]
    Umount(#[source] std::io::Error),
    /// The path cannot be passed to the system (it holds a NUL byte).
    #[error("the mount point's path holds a NUL byte")]
    BadPath,
}

impl DetachError {
    /// Whether the mount is in use, which a lazy detach would get past.
    fn is_busy(&self) -> bool {
        match self {
            Self::Fusermount(msg) => msg.contains("busy"),
            Self::Umount(e) => e.raw_os_error() == Some(libc::EBUSY),
            Self::BadPath => false,
        }
    }
}

/// Unmounts `mountpoint` and waits (up to `wait`) for its daemon to commit
/// and exit. `force` detaches a busy or dead mount (lazy unmount) and stops
/// a daemon that does not exit.
pub fn unmount(dir: &Path, mountpoint: &Path, force: bool, wait: std::time::Duration) -> Result<(), UnmountError> {
    let rec = find(dir, mountpoint);
    if !is_mounted(mountpoint) && rec.is_none() {
        return Err(UnmountError::NotMounted(mountpoint.to_path_buf()));
    }
    if is_mounted(mountpoint)
        && let Err(e) = detach(mountpoint, force)
    {
        if e.is_busy() {
            return Err(UnmountError::Busy(mountpoint.to_path_buf()));
        }
        return Err(UnmountError::Failed {
            mountpoint: mountpoint.to_path_buf(),
            source: e,
        });
    }
    if let Some(rec) = rec {
        let until = std::time::Instant::now() + wait;
        while pid_alive(rec.pid) && std::time::Instant::now() < until {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        if pid_alive(rec.pid)
            && force
            && let Some(p) = process(rec.pid)
        {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
        }
        let _ = std::fs::remove_file(record_path(dir, mountpoint));
    }
    Ok(())
}

/// Unmounts every mount in the registry (logout); returns the mount points
/// that could not be unmounted with why.
pub fn unmount_all(dir: &Path) -> Vec<(PathBuf, UnmountError)> {
    let mut failed = Vec::new();
    for rec in list(dir) {
        let r = unmount(dir, &rec.mountpoint, false, std::time::Duration::from_secs(10))
            .or_else(|_| unmount(dir, &rec.mountpoint, true, std::time::Duration::from_secs(5)));
        if let Err(e) = r {
            failed.push((rec.mountpoint.clone(), e));
        }
    }
    failed
}

/// Detaches the FUSE mount at `mountpoint` (`lazy`: even if busy), through
/// `fusermount3`, or `umount2` when that is missing and we are root.
pub fn detach(mountpoint: &Path, lazy: bool) -> Result<(), DetachError> {
    let mut cmd = std::process::Command::new("fusermount3");
    cmd.arg(if lazy { "-uz" } else { "-u" }).arg(mountpoint);
    match cmd.output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(DetachError::Fusermount(
            String::from_utf8_lossy(&o.stderr).trim().to_string(),
        )),
        Err(_) => {
            if mountpoint.as_os_str().as_encoded_bytes().contains(&0) {
                return Err(DetachError::BadPath);
            }
            use rustix::mount::UnmountFlags;
            let flags = if lazy {
                UnmountFlags::DETACH
            } else {
                UnmountFlags::empty()
            };
            rustix::mount::unmount(mountpoint, flags).map_err(|e| DetachError::Umount(e.into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{DetachError, UnmountError, unmount};

    #[test]
    fn busy_is_told_apart_by_errno_or_fusermount_message() {
        let fusermount = "fusermount3: failed to unmount /m: Device or resource busy";
        assert!(DetachError::Fusermount(fusermount.into()).is_busy());
        assert!(DetachError::Umount(std::io::Error::from_raw_os_error(libc::EBUSY)).is_busy());
        assert!(!DetachError::Umount(std::io::Error::from_raw_os_error(libc::EPERM)).is_busy());
        assert!(!DetachError::Fusermount("fusermount3: entry for /m not found".into()).is_busy());
    }

    #[test]
    fn a_folder_that_is_no_mount_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let e = unmount(dir.path(), dir.path(), false, std::time::Duration::ZERO).unwrap_err();
        assert!(matches!(e, UnmountError::NotMounted(_)), "{e}");
        assert!(e.to_string().ends_with("is not a rightsfs mount"), "{e}");
    }
}
