//! Keeping the daemon's resident memory near what it actually uses.
//!
//! Reads and writes go through buffers of up to a few MiB per FUSE worker
//! and crypto helper. glibc's allocator gives every thread that meets
//! contention an arena of its own and keeps freed memory in it, so after a
//! burst of large requests a long-running daemon held about 140 MiB it no
//! longer used (measured after one benchmark pass; a fresh daemon holds
//! under 50). Two arenas, and handing free memory back once the mount has
//! no open files (and when remembered tag tables give way to an open
//! file's, `format/store/known_tags.rs`), keep it where a fresh daemon is,
//! without a page fault per buffer on the hot path.
//!
//! glibc also raises its mmap threshold to the size of every large block
//! freed, and its trim threshold to twice that. One passphrase derivation
//! (19 MiB, when the credential file is read) was enough for every later
//! allocation below 19 MiB to come from the heap, and for up to 38 MiB of
//! freed heap never to be given back: a fresh daemon held 17 MiB of heap it
//! did not use. Fixed thresholds keep a request's buffers (about 1 MiB) on
//! the heap, where they are reused without page faults, and give blocks of
//! 2 MiB and more (tag tables, the derivation's memory) back when freed.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Arenas the allocator may use (threads share them beyond that).
const ARENAS: i32 = 2;

/// Blocks at least this big are mapped on their own and unmapped when
/// freed; smaller ones come from the heap. Above a FUSE request's buffers
/// (1 MiB of data and its block overhead).
const MMAP_THRESHOLD: i32 = 2 << 20;

/// Free memory at the top of a heap kept for reuse, beyond which it is
/// given back: room for a few requests' buffers, so that a stream of large
/// requests does not fault its buffers in again and again.
const TRIM_THRESHOLD: i32 = 4 << 20;

/// At most one trim per this many milliseconds.
const TRIM_EVERY_MS: u64 = 1_000;

/// Caps the allocator's arenas and fixes its thresholds. Call first thing
/// in the daemon, before threads start, so that they all share the capped
/// set.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    crate::sys::tune_malloc(&[
        (libc::M_ARENA_MAX, ARENAS),
        (libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        (libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD),
    ]);
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
    crate::sys::trim_malloc();
}
