//! Keeping the daemon's resident memory near what it actually uses.
//!
//! Reads and writes go through buffers of up to a few MiB per FUSE worker
//! and crypto helper. glibc's allocator gives every thread that meets
//! contention an arena of its own and keeps freed memory in it, so after a
//! burst of large requests a long-running daemon held about 140 MiB it no
//! longer used (measured after one benchmark pass; a fresh daemon holds
//! under 50). Two arenas, and handing free memory back once the mount has
//! no open files, keep it where a fresh daemon is, without a page fault per
//! buffer on the hot path.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Arenas the allocator may use (threads share them beyond that).
const ARENAS: i32 = 2;

/// At most one trim per this many milliseconds.
const TRIM_EVERY_MS: u64 = 1_000;

/// Caps the allocator's arenas. Call first thing in the daemon, before
/// threads start, so that they all share the capped set.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, ARENAS);
    }
}

/// Hands free allocator memory back to the system, at most once a
/// second: called when the last open file of the mount is closed.
pub fn trim_when_idle() {
    static START: OnceLock<Instant> = OnceLock::new();
    static LAST: AtomicU64 = AtomicU64::new(0);
    // Milliseconds since the first call, offset by one period so that the
    // first call (LAST still 0) trims.
    let now = START.get_or_init(Instant::now).elapsed().as_millis() as u64 + TRIM_EVERY_MS;
    let last = LAST.load(Ordering::Relaxed);
    if now < last + TRIM_EVERY_MS
        || LAST
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}
