//! The folder of a writer's crash-safety records: redo journals of
//! commits in flight, and a log of the files the writer changed.
//!
//! Opening a file may change its bytes only with proof that a crash left
//! them unfinished. A complete journal is such proof. So is an entry in
//! the change log of a writer that died: its files may hold blocks written
//! after their last commit, which the open cuts off. A file that no dead
//! writer was changing is never cut: a shorter, longer or altered file was
//! damaged (a sync conflict, a cut-off copy, a hostile edit) and reads as
//! an error, every byte left where it was.
//!
//! A writer's log is `writing-PID-NANOS.log`, held under `flock` while the
//! writer lives, one line per file changed (content id, inode, boot id),
//! and one when the file was closed with every change committed
//! (`closed`, content id, inode, boot id).
//! The boot id tells a killed process (the page cache kept every write, so
//! the last commit matches the disk) from a power cut (an unsynced commit
//! may be lost, so going back to the last synced state is allowed). A
//! clean close syncs the filesystem and keeps only the entries still owed
//! (files of a dead writer not opened since). Everything here is reached
//! through the folder's descriptor without following links.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Write;
use std::sync::{Mutex, MutexGuard};

use crate::dirfd::Dir;
use crate::policy::ContentId;

/// What a crash may justify at the next open of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Leave {
    /// Cut blocks past the last commit (a killed process: the commit itself
    /// matches the disk).
    Trim,
    /// Also go back to the last synced state (the machine went down: a
    /// later commit may not have reached the disk).
    Rollback,
}

type Key = (ContentId, u64);

#[derive(Default)]
struct Writing {
    /// This writer's log, made at its first change.
    log: Option<(String, File)>,
    /// Files in the log.
    logged: HashSet<Key>,
    /// Entries of dead writers still owed, with their boot ids.
    inherited: HashMap<Key, String>,
    /// Files this writer closed without a clean commit (a failed write
    /// left blocks past the last commit).
    unclean: HashSet<Key>,
    /// Dead writers' logs not yet carried into this one (the disk was
    /// full): removed once a log of this writer holds what they owe.
    stale: Vec<String>,
}

/// A writer's journal folder (see the module docs).
pub struct JournalDir {
    dir: Dir,
    boot: String,
    writing: Mutex<Writing>,
    /// Bytes of tags beyond which an open file's tag table moves out of
    /// memory into this folder (`store/tag_table.rs`).
    spill_at: usize,
}

impl std::fmt::Debug for JournalDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalDir").field("dir", &self.dir).finish()
    }
}

/// This boot of the machine, so that a log left by a killed process can be
/// told from one left by a machine that went down.
fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn journal_name(id: &ContentId) -> String {
    format!("{}.journal", id.to_hex())
}

fn is_log(name: &str) -> bool {
    name.starts_with("writing-") && name.ends_with(".log")
}

fn try_lock(f: &File) -> bool {
    rustix::fs::flock(f, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok()
}

impl JournalDir {
    /// Takes over `dir`: the logs of writers that died there become what
    /// their files' next opens may do.
    pub fn new(dir: Dir) -> std::io::Result<Self> {
        let jd = Self {
            dir,
            boot: boot_id(),
            writing: Mutex::default(),
            spill_at: super::tag_table::SPILL_AT,
        };
        jd.adopt_dead()?;
        Ok(jd)
    }

    /// Moves the tag tables of files opened with this folder out of
    /// memory once they hold more than `bytes` of tags (by default
    /// [`SPILL_AT`](super::tag_table::SPILL_AT)).
    pub fn spilling_tags_beyond(mut self, bytes: usize) -> Self {
        self.spill_at = bytes;
        self
    }

    pub(super) fn spill_at(&self) -> usize {
        self.spill_at
    }

    /// A new file with no name here, for a tag table that left memory.
    pub(super) fn unnamed_file(&self) -> std::io::Result<File> {
        self.dir.unnamed_file()
    }

    fn writing(&self) -> MutexGuard<'_, Writing> {
        self.writing.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads the logs no live writer holds, carries their entries into this
    /// writer's log (synced), then removes them.
    fn adopt_dead(&self) -> std::io::Result<()> {
        let mut dead = Vec::new();
        for name in self.dir.names()? {
            let Some(name) = name.to_str().filter(|n| is_log(n)).map(str::to_string) else {
                continue;
            };
            let f = match self.dir.open_file(&name, libc::O_RDONLY | libc::O_NONBLOCK, 0) {
                Ok(f) if f.metadata()?.is_file() => f,
                Ok(_) | Err(_) => {
                    tracing::warn!(name, "not a writer's log: removed");
                    self.dir.remove(&name)?;
                    continue;
                }
            };
            if !try_lock(&f) {
                continue;
            }
            self.inherit(&std::io::read_to_string(&f).unwrap_or_default());
            dead.push(name);
        }
        if dead.is_empty() {
            return Ok(());
        }
        let owed: Vec<(Key, String)> = self.writing().inherited.iter().map(|(k, b)| (*k, b.clone())).collect();
        let carried = (|| {
            let mut w = self.writing();
            for (key, boot) in &owed {
                Self::append(&self.dir, &mut w, *key, boot)?;
            }
            match &w.log {
                Some((_, f)) => f.sync_data(),
                None => Ok(()),
            }
        })();
        if let Err(e) = carried {
            // A full disk: what the dead logs owe stays in them (and in
            // memory) until a clean close can carry it.
            tracing::warn!(error = %e, "could not carry a dead mount's change log over; it is kept");
            self.writing().stale = dead;
            return Ok(());
        }
        for name in dead {
            self.dir.remove(&name)?;
        }
        self.dir.sync()
    }

    /// Takes what a dead writer's log owes.
    fn inherit(&self, text: &str) {
        let mut w = self.writing();
        for line in text.lines() {
            let mut it = line.split(' ').peekable();
            let closed = it.next_if_eq(&"closed").is_some();
            let (Some(id), Some(ino), Some(boot)) = (it.next(), it.next(), it.next()) else {
                continue;
            };
            let (Ok(id), Ok(ino)) = (ContentId::from_hex(id), ino.parse()) else {
                continue;
            };
            // A file closed with its changes committed matches its newest
            // state, unless the machine went down since (an unsynced commit
            // may be lost).
            if closed && boot == self.boot {
                w.inherited.remove(&(id, ino));
            } else {
                w.inherited.insert((id, ino), boot.to_string());
            }
        }
    }

    fn append(dir: &Dir, w: &mut Writing, key: Key, boot: &str) -> std::io::Result<()> {
        if w.log.is_none() {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let name = format!("writing-{}-{nanos}.log", std::process::id());
            let f = dir.create_new(&name, libc::O_APPEND)?;
            if !try_lock(&f) {
                return Err(std::io::Error::other("cannot lock the new writer's log"));
            }
            w.log = Some((name, f));
        }
        let line = format!("{} {} {boot}\n", key.0.to_hex(), key.1);
        if let Some((_, f)) = &mut w.log {
            f.write_all(line.as_bytes())?;
        }
        w.logged.insert(key);
        Ok(())
    }

    /// Notes, before the first byte of a file changes, that this writer is
    /// changing it: if the writer dies, the file's next open may cut what
    /// it left past the last commit.
    pub fn note_change(&self, id: ContentId, ino: u64) -> std::io::Result<()> {
        let mut w = self.writing();
        if w.logged.contains(&(id, ino)) {
            return Ok(());
        }
        Self::append(&self.dir, &mut w, (id, ino), &self.boot)
    }

    /// A changed file was closed with every change committed: a crash of
    /// this writer no longer justifies cutting it (within this boot).
    pub fn closed_cleanly(&self, id: ContentId, ino: u64) -> std::io::Result<()> {
        let mut w = self.writing();
        if !w.logged.remove(&(id, ino)) {
            return Ok(());
        }
        let line = format!("closed {} {ino} {}\n", id.to_hex(), self.boot);
        match &mut w.log {
            Some((_, f)) => f.write_all(line.as_bytes()),
            None => Ok(()),
        }
    }

    /// Syncs this writer's log (before a file is synced: a file that
    /// survives a power cut must find its entry after it).
    pub fn sync_log(&self) -> std::io::Result<()> {
        match &self.writing().log {
            Some((_, f)) => f.sync_data(),
            None => Ok(()),
        }
    }

    /// What a crash justifies for the file `(id, ino)` at its open.
    pub fn leave(&self, id: ContentId, ino: u64) -> Option<Leave> {
        let w = self.writing();
        if let Some(boot) = w.inherited.get(&(id, ino)) {
            return Some(if *boot == self.boot {
                Leave::Trim
            } else {
                Leave::Rollback
            });
        }
        w.unclean.contains(&(id, ino)).then_some(Leave::Trim)
    }

    /// The file opened as it should: nothing more is owed to it.
    pub fn settled(&self, id: ContentId, ino: u64) {
        let mut w = self.writing();
        w.inherited.remove(&(id, ino));
        w.unclean.remove(&(id, ino));
    }

    /// A file closed with blocks past its last commit (the commit failed).
    pub fn left_unclean(&self, id: ContentId, ino: u64) {
        self.writing().unclean.insert((id, ino));
    }

    /// Content ids that dead writers were changing and that are still owed
    /// an open.
    pub fn owed(&self) -> Vec<ContentId> {
        self.writing().inherited.keys().map(|k| k.0).collect()
    }

    /// The writer is done and every file committed: sync the filesystem,
    /// then keep in the log only what is still owed (or remove it).
    pub fn close_cleanly(&self) -> std::io::Result<()> {
        let mut w = self.writing();
        if w.log.is_none() && w.stale.is_empty() {
            return Ok(());
        }
        self.dir.sync_filesystem()?;
        let mut keep: Vec<(Key, String)> = w.inherited.iter().map(|(k, b)| (*k, b.clone())).collect();
        keep.extend(w.unclean.iter().map(|k| (*k, self.boot.clone())));
        let name = match &w.log {
            Some((name, _)) => name.clone(),
            None => format!("writing-{}-carried.log", std::process::id()),
        };
        if !keep.is_empty() {
            let tmp = format!("{name}.new");
            let written = (|| {
                let mut f = self.dir.create_new(&tmp, 0)?;
                for ((id, ino), boot) in keep {
                    writeln!(f, "{} {ino} {boot}", id.to_hex())?;
                }
                f.sync_data()?;
                self.dir.rename(&tmp, &name)
            })();
            if let Err(e) = written {
                let _ = self.dir.remove(&tmp);
                return Err(e);
            }
        } else {
            self.dir.remove(&name)?;
        }
        w.log = None;
        w.logged.clear();
        for stale in std::mem::take(&mut w.stale) {
            self.dir.remove(&stale)?;
        }
        self.dir.sync()
    }

    /// The journal of `id`, if one was left.
    pub(super) fn read_journal(&self, id: &ContentId) -> std::io::Result<Option<Vec<u8>>> {
        self.dir.read(&journal_name(id))
    }

    /// Writes the journal of `id` durably (file and folder entry synced).
    pub(super) fn write_journal(&self, id: &ContentId, bytes: &[u8]) -> std::io::Result<()> {
        let mut f = self.dir.create_new(&journal_name(id), 0)?;
        f.write_all(bytes)?;
        f.sync_data()?;
        self.dir.sync()
    }

    /// Removes the journal of `id`.
    pub(super) fn remove_journal(&self, id: &ContentId) -> std::io::Result<()> {
        self.dir.remove(&journal_name(id))
    }

    /// Content ids with a journal left behind.
    pub fn journals(&self) -> Vec<ContentId> {
        self.dir
            .names()
            .unwrap_or_default()
            .iter()
            .filter_map(|n| ContentId::from_hex(n.to_str()?.strip_suffix(".journal")?).ok())
            .collect()
    }

    /// Removes a journal whose file is gone.
    pub fn discard_journal(&self, id: &ContentId) -> std::io::Result<()> {
        self.remove_journal(id)
    }

    /// Test hook: what a new writer would find after this one died, with
    /// the machine if `other_boot` (its log is held by this process, so the
    /// lock cannot tell).
    #[cfg(test)]
    pub(in crate::format) fn after_crash(&self, dir: Dir, other_boot: bool) -> Self {
        let next = Self {
            dir,
            boot: if other_boot {
                "another-boot".into()
            } else {
                self.boot.clone()
            },
            writing: Mutex::new(Writing {
                inherited: self.writing().inherited.clone(),
                ..Writing::default()
            }),
            spill_at: self.spill_at,
        };
        if let Some((name, _)) = &self.writing().log
            && let Ok(Some(text)) = next.dir.read(name)
        {
            next.inherit(&String::from_utf8_lossy(&text));
        }
        next
    }
}
