//! Which folder listings the kernel may keep from one `opendir` to the
//! next.
//!
//! Every listing is answered with each entry's attributes (`readdirplus`),
//! which costs a `fstatat` and an inode-table entry per name: 2,000 names
//! take about 5 ms, where a mirror answering names alone takes under 2.
//! The kernel can keep what a listing returned (`FOPEN_CACHE_DIR`) and
//! answer the next listing of the folder from it, with no request to the
//! daemon, when the `opendir` reply says so (`FOPEN_KEEP_CACHE`). It drops
//! what it keeps on its own when the folder changes through the mount;
//! the daemon must say when the source folder changed otherwise, and
//! when the attributes the kept listing brought are too old to keep.
//!
//! So the daemon notes the source folder's status as each full listing
//! starts, and lets the kernel keep it only while that status is unchanged
//! (an entry added, removed or renamed there by anyone changes its ctime
//! and mtime) and for at most [`KEEP_FOR`]: within the attributes' own
//! lifetime ([`TTL`](super::state::TTL)), so that a listing followed by a
//! `stat` of every entry (`ls -l`, `du`) still finds them valid; after it,
//! a full listing with attributes refreshes them. A
//! folder whose ctime is within [`RACY`] of the listing's start is never
//! kept: a second change within the file system's timestamp granularity
//! could leave the ctime as it was.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use super::stat::Stat;

/// How long after a full listing the next may come from the kernel's copy.
pub const KEEP_FOR: Duration = Duration::from_millis(500);

/// A folder changed this recently when its listing starts is not kept
/// (a coarse timestamp is one scheduler tick, at most 10 ms).
pub const RACY: Duration = Duration::from_millis(20);

/// Folders remembered (about 80 bytes each).
const FOLDERS_KEPT: usize = 4_096;

/// What identifies a source folder's contents: an entry added, removed or
/// renamed changes its ctime and mtime (and often its size).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Version {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl From<&Stat> for Version {
    fn from(s: &Stat) -> Self {
        Self {
            dev: s.dev(),
            ino: s.ino(),
            size: s.len(),
            mtime: s.mtime(),
            ctime: s.ctime(),
        }
    }
}

/// A folder's last full listing.
struct Listed {
    version: Version,
    at: Instant,
}

/// The folders listed lately, by inode.
pub struct Listings {
    kept: Mutex<lru::LruCache<u64, Listed>>,
    /// [`KEEP_FOR`] but in tests.
    window: Duration,
}

impl Default for Listings {
    fn default() -> Self {
        Self::keeping_for(KEEP_FOR)
    }
}

impl Listings {
    fn keeping_for(window: Duration) -> Self {
        Self {
            kept: Mutex::new(crate::cache::bounded(FOLDERS_KEPT)),
            window,
        }
    }

    /// Whether the kernel may answer this listing of folder `ino`, whose
    /// source has the status `now`, from what it kept of the last one.
    pub fn may_keep(&self, ino: u64, now: &Stat) -> bool {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.get(&ino)
            .is_some_and(|l| l.version == Version::from(now) && l.at.elapsed() < self.window)
    }

    /// Notes that folder `ino` is listed in full now, its source having
    /// the status `was` just before it was read; forgets it when that
    /// status may not show a change made right after.
    pub fn listed(&self, ino: u64, was: &Stat) {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        if racy(was.ctime()) {
            kept.pop(&ino);
        } else {
            kept.put(
                ino,
                Listed {
                    version: Version::from(was),
                    at: Instant::now(),
                },
            );
        }
    }
}

/// Whether a folder last changed at `ctime` (seconds, nanoseconds) might
/// change again without its ctime moving: changed within [`RACY`] of now,
/// or in the future by this clock.
fn racy(ctime: (i64, i64)) -> bool {
    let (Ok(secs), Ok(nanos)) = (u64::try_from(ctime.0), u32::try_from(ctime.1)) else {
        return true;
    };
    let changed = SystemTime::UNIX_EPOCH + Duration::new(secs, nanos);
    SystemTime::now()
        .duration_since(changed)
        .ok()
        .is_none_or(|age| age < RACY)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat_of(dir: &std::path::Path) -> Stat {
        Stat::at(std::fs::File::open(dir).unwrap(), std::ffi::OsStr::new(".")).unwrap()
    }

    fn now_secs() -> i64 {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    #[test]
    fn a_listing_is_kept_only_while_its_folder_is_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        std::thread::sleep(RACY * 2);
        let listings = Listings::keeping_for(Duration::from_secs(3600));
        let was = stat_of(dir.path());
        assert!(!listings.may_keep(7, &was), "nothing listed yet");
        listings.listed(7, &was);
        assert!(listings.may_keep(7, &stat_of(dir.path())));
        assert!(!listings.may_keep(8, &was), "another folder");
        // A name added, or removed, changes the folder's status.
        std::fs::write(dir.path().join("new"), b"").unwrap();
        assert!(!listings.may_keep(7, &stat_of(dir.path())));
        std::thread::sleep(RACY * 2);
        listings.listed(7, &stat_of(dir.path()));
        std::fs::remove_file(dir.path().join("new")).unwrap();
        assert!(!listings.may_keep(7, &stat_of(dir.path())));
    }

    #[test]
    fn a_listing_is_kept_for_a_while_only() {
        let dir = tempfile::tempdir().unwrap();
        std::thread::sleep(RACY * 2);
        let listings = Listings::keeping_for(Duration::ZERO);
        listings.listed(7, &stat_of(dir.path()));
        assert!(!listings.may_keep(7, &stat_of(dir.path())));
    }

    #[test]
    fn a_ctime_too_recent_or_ahead_of_the_clock_is_racy() {
        let now = now_secs();
        assert!(racy((now + 1, 0)));
        assert!(racy((now + 3600, 0)));
        assert!(racy((-1, 0)));
        assert!(!racy((now - 2, 0)));
    }
}
