//! Opens served from this device's cached licences, and versions saved
//! here. The server audits every licence it issues, but an open that a
//! cached licence serves never reaches it, nor does a save: such events
//! are recorded here and reported when the server next answers, so the
//! owner's log shows them too (opens marked as reported late, saves with
//! who saved which generation).
//!
//! Each record is one file of its own (so a mount and a command never
//! rewrite each other's), mode 0600 in a 0700 folder, sealed with a key
//! only this device derives from its device key: which files someone
//! opened, and when, is theirs to know until the server has it.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use lru::LruCache;
use serde::{Deserialize, Serialize};

use crate::crypto::DeviceKeyPair;
use crate::policy::{ContentId, Rights, Timestamp, now};

/// Associated data of a sealed record: a record opens as nothing else.
const AAD: &[u8] = b"rightsfs offline open v1";

/// `kind` of a save record.
pub const SAVE: &str = "save";

/// One open (or save) of a file per this many seconds is recorded: a
/// program that opens a file a thousand times a minute through the mount
/// is one line in the owner's log, not a thousand.
pub const RECORD_EVERY_SECS: Timestamp = 60;

/// Records reported to the server in one request at most.
pub const REPORT_BATCH_MAX: usize = 100;

/// An open (or save) the server did not see: what the owner's log shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfflineOpen {
    /// `save` for a version saved here; empty for an open.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// For a save: the generation saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    /// The content (hex id).
    pub content_id: String,
    /// When it was opened (Unix time, this device's clock).
    pub at: Timestamp,
    /// Whether the cached licence let it open.
    pub opened: bool,
    /// The rights the cached licence gave (empty when refused).
    pub rights: String,
    /// Why it was refused, or empty.
    pub reason: String,
}

/// The records waiting to be reported, with the files that hold them.
pub struct Unreported {
    /// The records, oldest first.
    pub opens: Vec<OfflineOpen>,
    files: Vec<PathBuf>,
}

impl Unreported {
    /// Splits off the saves (reported on their own: the server refuses a
    /// request whose saves it does not believe as a whole).
    pub fn take_saves(&mut self) -> Unreported {
        let mut saves = Unreported {
            opens: Vec::new(),
            files: Vec::new(),
        };
        let (mut opens, mut files) = (Vec::new(), Vec::new());
        for (o, f) in self.opens.drain(..).zip(self.files.drain(..)) {
            let (os, fs) = if o.kind == SAVE {
                (&mut saves.opens, &mut saves.files)
            } else {
                (&mut opens, &mut files)
            };
            os.push(o);
            fs.push(f);
        }
        (self.opens, self.files) = (opens, files);
        saves
    }
}

pub(super) struct OpenLog {
    dir: PathBuf,
    last: Mutex<LruCache<(ContentId, u8), Timestamp>>,
    seq: AtomicU64,
}

impl OpenLog {
    pub(super) fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            last: Mutex::new(crate::cache::bounded(4096)),
            seq: AtomicU64::new(0),
        }
    }

    /// Records an open served without the server, unless the same outcome
    /// for the same content was recorded by this process less than
    /// [`RECORD_EVERY_SECS`] ago. Never fails the open: a record that
    /// cannot be written is logged.
    pub(super) fn record(&self, device: &DeviceKeyPair, id: &ContentId, rights: Option<Rights>, reason: &str) {
        let at = now();
        let opened = rights.is_some();
        if self.recently(id, u8::from(opened), at) {
            return;
        }
        self.write(
            device,
            OfflineOpen {
                kind: String::new(),
                generation: None,
                content_id: id.to_hex(),
                at,
                opened,
                rights: rights.map(|r| r.to_string()).unwrap_or_default(),
                reason: reason.to_string(),
            },
        );
    }

    /// Records that this device saved `generation` of the content, unless
    /// it recorded a save of it less than [`RECORD_EVERY_SECS`] ago.
    pub(super) fn record_save(&self, device: &DeviceKeyPair, id: &ContentId, generation: u64) {
        let at = now();
        if self.recently(id, 2, at) {
            return;
        }
        self.write(
            device,
            OfflineOpen {
                kind: SAVE.into(),
                generation: Some(generation),
                content_id: id.to_hex(),
                at,
                opened: true,
                rights: String::new(),
                reason: String::new(),
            },
        );
    }

    /// Whether an event of `what` for `id` was recorded by this process
    /// less than [`RECORD_EVERY_SECS`] before `at` (else notes this one).
    fn recently(&self, id: &ContentId, what: u8, at: Timestamp) -> bool {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.get(&(*id, what)).is_some_and(|t| at - *t < RECORD_EVERY_SECS) {
            return true;
        }
        last.put((*id, what), at);
        false
    }

    fn write(&self, device: &DeviceKeyPair, open: OfflineOpen) {
        let plain = serde_json::to_vec(&open).expect("records always encode");
        let name = format!(
            "{:016x}-{}-{}.open",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or_default(),
            std::process::id(),
            self.seq.fetch_add(1, Ordering::Relaxed)
        );
        let written = crate::durable::ensure_private_dir(&self.dir)
            .and_then(|()| crate::durable::write_private_atomic(&self.dir.join(name), &device.seal_local(AAD, &plain)));
        if let Err(e) = written {
            tracing::warn!(content_id = %open.content_id, error = %e, "could not record an offline open");
        }
    }

    /// Up to `max` records, oldest first. A record this device cannot open
    /// (left by an earlier sign-in, or damaged) is removed: nobody could
    /// ever report it.
    pub(super) fn unreported(&self, device: &DeviceKeyPair, max: usize) -> Unreported {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "open"))
            .collect();
        names.sort();
        let mut out = Unreported {
            opens: Vec::new(),
            files: Vec::new(),
        };
        for p in names {
            if out.opens.len() == max {
                break;
            }
            let Ok(sealed) = std::fs::read(&p) else { continue };
            match device
                .open_local(AAD, &sealed)
                .ok()
                .and_then(|plain| serde_json::from_slice::<OfflineOpen>(&plain).ok())
            {
                Some(open) => {
                    out.opens.push(open);
                    out.files.push(p);
                }
                None => {
                    tracing::warn!(file = %p.display(), "dropping an offline-open record this device cannot read");
                    let _ = std::fs::remove_file(&p);
                }
            }
        }
        out
    }

    /// Removes records the server has taken.
    pub(super) fn forget(&self, done: Unreported) {
        for p in done.files {
            let _ = std::fs::remove_file(p);
        }
    }

    /// How many records wait.
    pub(super) fn count(&self) -> usize {
        std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "open"))
            .count()
    }
}
