//! Keeping the inode table within its configured size.
//!
//! The kernel holds every inode it has looked up until memory pressure
//! makes it forget them, and the mount must remember each one it holds
//! (about 150 bytes each, `node.rs`), so without a cap the daemon's memory
//! is bounded only by the number of files seen. Past `--max-inodes`,
//! a thread of its own asks the kernel to drop the names of the files
//! looked up longest ago (`FUSE_NOTIFY_INVAL_ENTRY`); the kernel then
//! forgets their inodes, unless something still holds them, and the
//! table drops them. A later lookup finds them again, from the facts index
//! rather than their headers.
//!
//! Not in a FUSE callback: the kernel takes the folder's lock to drop a
//! name, which a request in that folder may hold while it waits for us.
//!
//! What it costs a walk bigger than the cap: since Linux 6.13 the kernel
//! distrusts the attributes of every new inode a reply brings if any
//! inode was forgotten while the request was out, and asks for them again
//! (`GETATTR`) at the next `stat`. In a `du` of 100,000 files under the
//! default cap, about 30,000 of its `stat` calls took such a round trip
//! (fuse tracepoints): 1.5 s instead of 0.55 s. Dropping names only when
//! no lookup was in hand did not change that (the kernel's window opens
//! before the daemon sees the request). Dropping them as a folder is
//! opened, and holding the opening until the kernel had let them go, did:
//! no `GETATTR` left, but the evictions (about 8 µs each) then lay on the
//! walk's path, and the walk took as long. So the default cap is set
//! above the trees people walk (131,072 inodes, about 20 MiB), and the
//! cap is what bounds memory on bigger ones.

use std::ffi::OsStr;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::sync::{Arc, Mutex};

use fuser::{INodeNo, Notifier};

use super::inodes::{Kind, Prunable, Table};
use super::names;

/// Inodes kept unless configured otherwise: a 100,000-file tree walked
/// without pruning, within the daemon's 32 MiB.
pub const DEFAULT_MAX_INODES: usize = 131_072;

/// Pruning goes down to this share of the cap, so that it runs once per
/// many lookups rather than once per lookup.
const LOW_WATER_PERCENT: usize = 90;

/// The mount's side: when the table outgrows the cap, wakes the pruner.
pub struct Pruner {
    max: usize,
    wake: SyncSender<()>,
    /// Taken by [`Pruner::start`] once the session's notifier exists.
    waiting: Mutex<Option<Receiver<()>>>,
}

impl Pruner {
    /// A pruner for a table of at most `max` inodes (0: no cap).
    pub fn new(max: usize) -> Self {
        let (wake, waiting) = sync_channel(1);
        Self {
            max,
            wake,
            waiting: Mutex::new(Some(waiting)),
        }
    }

    /// Called after a lookup with the table's size: wakes the pruner if
    /// it is over the cap (a wake-up already pending is enough).
    pub fn check(&self, len: usize) {
        if self.max > 0 && len > self.max {
            let _ = self.wake.try_send(());
        }
    }

    /// What starting the pruner for `table` needs, taken once (`None`
    /// without a cap).
    pub fn starter(&self, table: Arc<Mutex<Table>>) -> Option<Start> {
        let woken = self.waiting.lock().unwrap_or_else(|p| p.into_inner()).take()?;
        (self.max > 0).then(|| Start {
            table,
            woken,
            keep: self.max * LOW_WATER_PERCENT / 100,
        })
    }
}

/// A pruner ready to start once the session's notifier exists.
pub struct Start {
    table: Arc<Mutex<Table>>,
    woken: Receiver<()>,
    keep: usize,
}

impl Start {
    /// Starts the pruning thread, asking the kernel through `notifier`. It
    /// ends when the mount's filesystem (holding the other end) is dropped.
    pub fn start(self, notifier: Notifier) -> std::io::Result<()> {
        std::thread::Builder::new()
            .name("rightsfs-prune".into())
            .spawn(move || run(&self.table, &notifier, &self.woken, self.keep))?;
        Ok(())
    }
}

fn run(table: &Mutex<Table>, notifier: &Notifier, woken: &Receiver<()>, keep: usize) {
    while woken.recv().is_ok() {
        loop {
            let names = table.lock().unwrap_or_else(|p| p.into_inner()).take_prunable(keep);
            if names.is_empty() {
                break;
            }
            for p in &names {
                if !ask_to_drop(notifier, p) {
                    return;
                }
            }
            // Lookups made meanwhile may have woken us again: that wake-up
            // is served by the loop above.
            match woken.try_recv() {
                Ok(()) => continue,
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return,
            }
        }
    }
}

/// Asks the kernel to drop one name; false once the mount is gone.
fn ask_to_drop(notifier: &Notifier, p: &Prunable) -> bool {
    let Some(shown) = shown_name(p) else {
        return true;
    };
    match notifier.inval_entry(INodeNo(p.parent), shown) {
        Ok(()) => true,
        // The kernel had already dropped the name (or never cached it).
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => true,
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTCONN | libc::EBADF | libc::ENODEV)) => false,
        Err(e) => {
            tracing::debug!(error = %e, "could not ask the kernel to drop a name");
            true
        }
    }
}

/// The name the kernel knows a source entry by. A long name's shown name
/// is in its side file, read only when listed: such entries stay, as the
/// kernel forgets them under memory pressure as it would anyway.
fn shown_name(p: &Prunable) -> Option<&OsStr> {
    match p.kind {
        _ if names::is_reserved(&p.name) => None,
        Kind::Protected => names::strip(&p.name),
        _ => Some(&p.name),
    }
}
