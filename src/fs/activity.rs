//! When the mount last answered a request. Work a mount causes but nobody
//! waits for (sending new files' registrations) waits for a pause, so that
//! it takes the CPU when the programs using the mount do not want it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The time of the last answer, shared between the FUSE workers (which
/// note it, one relaxed store per request) and whoever waits for a pause.
#[derive(Debug)]
pub struct Activity {
    start: Instant,
    /// Nanoseconds from `start` to the last answer.
    last: AtomicU64,
}

impl Default for Activity {
    fn default() -> Self {
        Self {
            start: Instant::now(),
            last: AtomicU64::new(0),
        }
    }
}

impl Activity {
    /// Notes an answer now.
    pub(super) fn touch(&self) {
        let ns = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last.store(ns, Ordering::Relaxed);
    }

    /// When the last request was answered (when this was made, if none was).
    pub fn last(&self) -> Instant {
        self.start + Duration::from_nanos(self.last.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_the_last_answer() {
        let a = Activity::default();
        let made = a.last();
        std::thread::sleep(Duration::from_millis(5));
        a.touch();
        let touched = a.last();
        assert!(touched >= made + Duration::from_millis(5), "{made:?} {touched:?}");
        assert!(touched <= Instant::now());
    }
}
