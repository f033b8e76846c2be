//! Busy polling after an answer. A FUSE request is a round trip between
//! two threads: the program asking and the daemon's worker. When the
//! worker sleeps between requests, every request pays for waking it, and
//! on a virtual machine whose idle vCPUs halt at once that wake-up (an
//! interrupt to a halted vCPU) costs far more than answering a `stat`.
//! So when the last busy worker has answered a request that only looks
//! (`ops.rs` says which), it watches `/dev/fuse` for a short window before
//! going back to sleep: a program walking a tree sends its next request
//! within microseconds and finds a worker awake.
//!
//! What it costs, on purpose bounded: one thread at a time polls, only
//! while no other request is being handled, and for at most the window
//! after the last answer. An idle mount polls never; a program asking
//! once a second costs one window per second. `--busy-poll-us 0` turns
//! it off.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::Activity;

/// The default window: a little more than a program's own time between
/// two `stat` calls, far less than a scheduler tick.
pub const DEFAULT_WINDOW: Duration = Duration::from_micros(50);

/// Counts requests in hand, notes when each ends, and lets the last one
/// out poll for the next.
pub struct Linger {
    window: Duration,
    activity: Arc<Activity>,
    /// The FUSE device of the session (any clone: they share one queue).
    device: OnceLock<OwnedFd>,
    /// Requests being handled now.
    active: AtomicUsize,
    /// A worker is polling.
    polling: AtomicBool,
}

/// One request in hand; dropping it (after the reply) may poll.
pub struct Turn<'a> {
    linger: &'a Linger,
    poll: bool,
}

impl Linger {
    /// Polls for up to `window` once a device is given; a zero window
    /// never polls.
    pub fn new(window: Duration) -> Self {
        Self::noting(window, Arc::default())
    }

    /// The same, noting the end of every request in `activity`.
    pub fn noting(window: Duration, activity: Arc<Activity>) -> Self {
        Self {
            window,
            activity,
            device: OnceLock::new(),
            active: AtomicUsize::new(0),
            polling: AtomicBool::new(false),
        }
    }

    /// The session's device, known only once the session is made. Until
    /// then (and in unit tests of the file system) nothing polls.
    pub fn watch(&self, device: OwnedFd) {
        let _ = self.device.set(device);
    }

    /// Marks a request in hand until the returned turn is dropped.
    pub fn enter(&self) -> Turn<'_> {
        self.turn(true)
    }

    /// The same for a request that changes something: counted as in
    /// hand, but its end never polls (`ops.rs` says why).
    pub fn enter_quiet(&self) -> Turn<'_> {
        self.turn(false)
    }

    fn turn(&self, poll: bool) -> Turn<'_> {
        self.active.fetch_add(1, Ordering::AcqRel);
        Turn { linger: self, poll }
    }

    /// Ends a request; the last one out polls if `poll`. Says why it
    /// stopped.
    fn leave(&self, poll: bool) -> Outcome {
        self.activity.touch();
        if self.active.fetch_sub(1, Ordering::AcqRel) != 1 {
            return Outcome::OthersBusy; // they come back for more
        }
        if !poll {
            return Outcome::Off;
        }
        let Some(dev) = self.device.get().filter(|_| !self.window.is_zero()) else {
            return Outcome::Off;
        };
        if self.polling.swap(true, Ordering::Acquire) {
            return Outcome::OthersBusy;
        }
        let start = Instant::now();
        let outcome = loop {
            if pending(dev) {
                break Outcome::Queued; // the caller's next read takes it
            }
            if self.active.load(Ordering::Acquire) != 0 {
                break Outcome::OthersBusy; // polling would only steal its CPU
            }
            if start.elapsed() >= self.window {
                break Outcome::Expired;
            }
            std::hint::spin_loop();
        };
        self.polling.store(false, Ordering::Release);
        outcome
    }
}

/// Why a worker stopped (or never started) polling.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// No window, no device, or a quiet turn.
    Off,
    /// Another request is in hand, or another worker polls.
    OthersBusy,
    /// A request came in.
    Queued,
    /// The window passed without one.
    Expired,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.linger.leave(self.poll);
    }
}

/// Whether `fd` has something to read (or an error to report, such as
/// an unmounted session's), without waiting.
fn pending(fd: &OwnedFd) -> bool {
    use rustix::event::{PollFd, PollFlags, Timespec};
    let mut p = [PollFd::new(fd, PollFlags::IN)];
    rustix::event::poll(&mut p, Some(&Timespec::default())) != Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;
    use std::sync::Arc;

    fn watched(window: Duration) -> (Linger, UnixStream) {
        let (a, b) = UnixStream::pair().unwrap();
        let l = Linger::new(window);
        l.watch(OwnedFd::from(b));
        (l, a)
    }

    /// One request handled: enter, then leave as a turn's drop does.
    fn answer(l: &Linger) -> Outcome {
        l.active.fetch_add(1, Ordering::AcqRel);
        l.leave(true)
    }

    #[test]
    fn the_last_answer_polls_until_the_window_ends() {
        let (l, _peer) = watched(Duration::from_millis(1));
        assert_eq!(answer(&l), Outcome::Expired);
        assert!(!l.polling.load(Ordering::Acquire));
        assert_eq!(l.active.load(Ordering::Acquire), 0);
    }

    #[test]
    fn a_queued_request_ends_the_poll() {
        let (l, mut peer) = watched(Duration::from_secs(600));
        peer.write_all(b"x").unwrap();
        assert_eq!(answer(&l), Outcome::Queued);
    }

    #[test]
    fn a_closed_device_ends_the_poll() {
        let (l, peer) = watched(Duration::from_secs(600));
        drop(peer);
        assert_eq!(answer(&l), Outcome::Queued);
    }

    #[test]
    fn only_the_last_request_out_polls() {
        let (l, _peer) = watched(Duration::from_millis(1));
        let other = l.enter();
        assert_eq!(answer(&l), Outcome::OthersBusy);
        std::mem::forget(other);
        assert_eq!(l.leave(true), Outcome::Expired);
    }

    #[test]
    fn a_request_taken_by_another_worker_ends_the_poll() {
        let (l, _peer) = watched(Duration::from_secs(600));
        let l = Arc::new(l);
        let poller = {
            let l = l.clone();
            std::thread::spawn(move || answer(&l))
        };
        while !l.polling.load(Ordering::Acquire) {
            std::hint::spin_loop();
        }
        let _busy = l.enter_quiet(); // quiet: its own end must not poll
        assert_eq!(poller.join().unwrap(), Outcome::OthersBusy);
    }

    #[test]
    fn a_quiet_turn_counts_but_does_not_poll() {
        let (l, _peer) = watched(Duration::from_secs(600));
        let quiet = l.enter_quiet();
        assert_eq!(answer(&l), Outcome::OthersBusy);
        assert_eq!(l.active.load(Ordering::Acquire), 1);
        drop(quiet);
        assert_eq!(l.active.load(Ordering::Acquire), 0);
        assert!(!l.polling.load(Ordering::Acquire));
    }

    #[test]
    fn one_poller_at_a_time() {
        let (l, _peer) = watched(Duration::from_secs(600));
        l.polling.store(true, Ordering::Release);
        assert_eq!(answer(&l), Outcome::OthersBusy);
    }

    #[test]
    fn no_poll_without_a_window_or_a_device() {
        let (off, _peer) = watched(Duration::ZERO);
        assert_eq!(answer(&off), Outcome::Off);
        assert_eq!(answer(&Linger::new(Duration::from_secs(600))), Outcome::Off);
    }
}
