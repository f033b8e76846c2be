//! Registrations a running mount has not sent yet, kept in memory and
//! appended to a log in the queue folder: one `write` per new file instead
//! of a queue file (a new inode, a rename) each, which was a third of the
//! cost of creating a file in the mount.
//!
//! The registrar takes what is pending as a batch, starting a fresh log for
//! what comes after; once every entry of the batch is registered, or queued
//! as its own file for later, the batch's log is deleted. The live log is
//! held under `flock`: a log nobody holds belongs to a mount that died, and
//! [`RegistrationQueue::list`] turns its entries into ordinary queue files.
//! A log survives a kill (the page cache keeps it); [`PendingLog::sync`]
//! makes it survive a power cut too.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{ClientError, RegistrationQueue};
use crate::policy::{ContentId, PublishingLicence};

const PREFIX: &str = "pending-";
const SUFFIX: &str = ".log";

/// One log line.
#[derive(Serialize, Deserialize)]
struct Entry {
    content_id: ContentId,
    publishing_licence: PublishingLicence,
}

/// A log file held (and locked) by this process.
struct Log {
    file: File,
    path: PathBuf,
    /// Whether its folder entry was synced.
    named: bool,
    /// Whether it holds appends not yet synced.
    dirty: bool,
}

/// What is pending: its entries and the logs that hold them, the last one
/// taking appends (opened on the first entry after a take).
#[derive(Default)]
struct Current {
    logs: Vec<Log>,
    entries: Vec<(ContentId, PublishingLicence)>,
    /// Whether the last log takes appends.
    open: bool,
    /// When the oldest waiting entry was pushed.
    first: Option<Instant>,
}

/// When a mount sends what waits: once the mount pauses, so that a burst
/// (`tar x`, a checkout, a build) and what follows it do not share the CPU
/// with its registrations (sent while a burst ran, a hundred at a time,
/// they made one in a hundred of its writes and closes wait three to five
/// times longer); but never later than `max_wait` after the oldest, nor
/// past `max_waiting` entries (about 1.2 KiB of memory each).
#[derive(Debug, Clone, Copy)]
pub struct SendRule {
    /// How long the mount must have answered no request.
    pub quiet: Duration,
    /// The longest an entry waits while new files keep coming.
    pub max_wait: Duration,
    /// How many may wait.
    pub max_waiting: usize,
}

impl SendRule {
    /// The mount's rule.
    pub const MOUNT: SendRule = SendRule {
        quiet: Duration::from_secs(1),
        max_wait: Duration::from_secs(10),
        max_waiting: 4096,
    };
}

/// Registrations waiting in one process (the mount daemon).
pub struct PendingLog {
    dir: PathBuf,
    seq: std::sync::atomic::AtomicU64,
    current: Mutex<Current>,
}

/// Entries taken for registration, with the logs that keep them.
pub struct Batch {
    /// The content to register, oldest first.
    pub entries: Vec<(ContentId, PublishingLicence)>,
    logs: Vec<Log>,
}

impl PendingLog {
    /// A log in the queue folder of `queue`.
    pub fn new(queue: &RegistrationQueue) -> Self {
        Self {
            dir: queue.dir().to_path_buf(),
            seq: Default::default(),
            current: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends a registration (no sync); returns how many now wait, so the
    /// caller can wake the registrar once a request's worth is ready.
    pub fn push(&self, id: &ContentId, pl: &PublishingLicence) -> Result<usize, ClientError> {
        let mut line = serde_json::to_vec(&Entry {
            content_id: *id,
            publishing_licence: pl.clone(),
        })
        .expect("licences always encode");
        line.push(b'\n');
        let mut cur = self.lock();
        if !cur.open {
            let log = self.open_log()?;
            cur.logs.push(log);
            cur.open = true;
        }
        let log = cur.logs.last_mut().expect("opened above");
        log.file.write_all(&line)?;
        log.dirty = true;
        cur.entries.push((*id, pl.clone()));
        cur.first.get_or_insert_with(Instant::now);
        Ok(cur.entries.len())
    }

    /// How long to wait before sending what waits under `rule`, for a
    /// mount quiet since `quiet_since`: zero when due, `None` when nothing
    /// waits.
    pub fn due_in(&self, rule: &SendRule, quiet_since: Instant) -> Option<Duration> {
        let cur = self.lock();
        let first = cur.first?;
        if cur.entries.len() >= rule.max_waiting {
            return Some(Duration::ZERO);
        }
        let due = (quiet_since + rule.quiet).min(first + rule.max_wait);
        Some(due.saturating_duration_since(Instant::now()))
    }

    /// How many registrations wait (tests; the registrar asks
    /// [`due_in`](Self::due_in)).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether nothing waits (tests).
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn open_log(&self) -> Result<Log, ClientError> {
        use std::os::unix::fs::OpenOptionsExt;
        crate::durable::ensure_private_dir(&self.dir)?;
        let seq = self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("{PREFIX}{}-{seq}{SUFFIX}", std::process::id());
        let path = self.dir.join(&name);
        // Locked under a name adopters ignore, then renamed: no other
        // process can take a log that is not locked yet for an orphan.
        let tmp = self.dir.join(format!(".{name}.new"));
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        lock(&file, true)?;
        std::fs::rename(&tmp, &path)?;
        Ok(Log {
            file,
            path,
            named: false,
            dirty: false,
        })
    }

    /// Makes every entry so far durable.
    pub fn sync(&self) -> Result<(), ClientError> {
        let mut cur = self.lock();
        // Called before every fsync in the mount: a clean log costs nothing.
        for log in cur.logs.iter_mut().filter(|l| l.dirty || !l.named) {
            log.file.sync_data()?;
            log.dirty = false;
            if !log.named {
                crate::durable::sync_dir(log.path.parent().unwrap_or(Path::new(".")))?;
                log.named = true;
            }
        }
        Ok(())
    }

    /// Takes what is pending; later entries go to a new log. `None` when
    /// nothing waits.
    pub fn take(&self) -> Option<Batch> {
        let mut cur = self.lock();
        if cur.entries.is_empty() {
            return None;
        }
        let taken = std::mem::take(&mut *cur);
        Some(Batch {
            entries: taken.entries,
            logs: taken.logs,
        })
    }

    /// Puts back a batch that could not be sent (the server is away),
    /// before anything pushed since.
    pub fn put_back(&self, batch: Batch) {
        let mut cur = self.lock();
        let open = cur.open;
        let newer_logs = std::mem::take(&mut cur.logs);
        let newer = std::mem::take(&mut cur.entries);
        cur.logs = batch.logs;
        cur.logs.extend(newer_logs);
        cur.entries = batch.entries;
        cur.entries.extend(newer);
        cur.open = open;
        cur.first.get_or_insert_with(Instant::now);
    }
}

impl Batch {
    /// Every entry is registered or queued on its own: drops the logs.
    pub fn done(self) -> Result<(), ClientError> {
        for log in self.logs {
            match std::fs::remove_file(&log.path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        }
        Ok(())
    }
}

/// Takes an exclusive `flock` on `file`, waiting for it or not; false when
/// `wait` is off and another holds it.
pub(super) fn lock(file: &File, wait: bool) -> std::io::Result<bool> {
    use rustix::fs::FlockOperation::{LockExclusive, NonBlockingLockExclusive};
    match rustix::fs::flock(file, if wait { LockExclusive } else { NonBlockingLockExclusive }) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Entries of the logs running mounts hold (read only, for display).
pub(super) fn live_entries(queue: &RegistrationQueue) -> Vec<(ContentId, PublishingLicence)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(queue.dir()) else {
        return out;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !(name.starts_with(PREFIX) && name.ends_with(SUFFIX)) {
            continue;
        }
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        out.extend(
            text.lines()
                .filter_map(|l| serde_json::from_str::<Entry>(l).ok())
                .map(|e| (e.content_id, e.publishing_licence)),
        );
    }
    out
}

/// Turns the logs of processes that died into queue files, then deletes
/// them. Unreadable lines (a write cut by a power cut) are skipped.
pub(super) fn adopt_orphans(queue: &RegistrationQueue) {
    let Ok(rd) = std::fs::read_dir(queue.dir()) else { return };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !(name.starts_with(PREFIX) && name.ends_with(SUFFIX)) {
            continue;
        }
        let path = e.path();
        let Ok(file) = File::open(&path) else { continue };
        if !matches!(lock(&file, false), Ok(true)) {
            continue; // a live mount's log
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let mut all_kept = true;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match serde_json::from_str::<Entry>(line) {
                Ok(entry) => {
                    if let Err(err) = queue.push(&entry.content_id, &entry.publishing_licence) {
                        tracing::warn!(log = %path.display(), error = %err, "could not queue a registration");
                        all_kept = false;
                    }
                }
                Err(err) => tracing::warn!(log = %path.display(), error = %err, "skipping a damaged registration"),
            }
        }
        if all_kept {
            let _ = std::fs::remove_file(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::DeviceKeyPair;
    use crate::policy::PublishingLicenceBody;

    fn licence(device: &DeviceKeyPair) -> (ContentId, PublishingLicence) {
        let body = crate::policy::test_publishing_body(device, PublishingLicenceBody::CURRENT_VERSION);
        (body.content_id, PublishingLicence::sign(&body, device).unwrap())
    }

    fn logs(dir: &Path) -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(SUFFIX))
            .count()
    }

    #[test]
    fn sending_waits_for_a_pause_but_not_past_its_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let log = PendingLog::new(&RegistrationQueue::at(dir.path().join("queue")));
        let device = DeviceKeyPair::generate().unwrap();
        let hour = Duration::from_secs(3600);
        let rule = SendRule {
            quiet: hour,
            max_wait: 2 * hour,
            max_waiting: 2,
        };
        let busy = Instant::now();
        assert_eq!(log.due_in(&rule, busy), None, "nothing waits");
        let (a, pa) = licence(&device);
        log.push(&a, &pa).unwrap();
        let wait = log.due_in(&rule, busy).unwrap();
        assert!(wait > hour - Duration::from_secs(60) && wait <= hour, "{wait:?}");
        // A mount quiet for long enough.
        let quiet = Instant::now().checked_sub(hour).unwrap();
        assert_eq!(log.due_in(&rule, quiet), Some(Duration::ZERO));
        // The oldest has waited long enough, however busy the mount is.
        let impatient = SendRule {
            max_wait: Duration::ZERO,
            ..rule
        };
        assert_eq!(log.due_in(&impatient, busy), Some(Duration::ZERO));
        // As many wait as may.
        let (b, pb) = licence(&device);
        log.push(&b, &pb).unwrap();
        assert_eq!(log.due_in(&rule, busy), Some(Duration::ZERO));
        // Taken: nothing waits; put back: due again.
        let batch = log.take().unwrap();
        assert_eq!(log.due_in(&rule, busy), None);
        log.put_back(batch);
        assert_eq!(log.due_in(&rule, busy), Some(Duration::ZERO));
    }

    #[test]
    fn batches_rotate_logs_and_orphans_become_queue_files() {
        let dir = tempfile::tempdir().unwrap();
        let queue = RegistrationQueue::at(dir.path().join("queue"));
        let device = DeviceKeyPair::generate().unwrap();
        let log = PendingLog::new(&queue);
        assert!(log.take().is_none());
        log.sync().unwrap();
        let (a, pa) = licence(&device);
        let (b, pb) = licence(&device);
        log.push(&a, &pa).unwrap();
        log.push(&b, &pb).unwrap();
        log.sync().unwrap();
        // A live log is not adopted.
        assert!(queue.list().is_empty());
        let batch = log.take().unwrap();
        assert_eq!(batch.entries.iter().map(|e| e.0).collect::<Vec<_>>(), vec![a, b]);
        let (c, pc) = licence(&device);
        log.push(&c, &pc).unwrap();
        assert_eq!(logs(queue.dir()), 2);
        // The server is away: the batch goes back, ahead of newer entries.
        log.put_back(batch);
        let batch = log.take().unwrap();
        assert_eq!(batch.entries.iter().map(|e| e.0).collect::<Vec<_>>(), vec![a, b, c]);
        log.put_back(batch);
        let (d, pd) = licence(&device);
        // The count the registrar is woken by includes what was put back.
        assert_eq!(log.push(&d, &pd).unwrap(), 4);
        assert_eq!(log.len(), 4);
        assert_eq!(logs(queue.dir()), 3);
        let batch = log.take().unwrap();
        assert_eq!(batch.entries.len(), 4);
        batch.done().unwrap();
        assert!(log.is_empty());
        assert_eq!(logs(queue.dir()), 0);
        assert_eq!(log.push(&c, &pc).unwrap(), 1, "a new burst starts at one");
        assert_eq!(logs(queue.dir()), 1);
        // The process "dies": its lock goes with it; a torn last line is
        // skipped, the whole entries become queue files.
        let path = log.lock().logs[0].path.clone();
        drop(log);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"content_id\":\"00")
            .unwrap();
        let listed = queue.list();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].0, c);
        assert_eq!(listed[0].1.as_ref().unwrap(), &pc);
        assert_eq!(logs(queue.dir()), 0);
    }
}
