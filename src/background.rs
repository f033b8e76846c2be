//! Threads that work ahead of need.
//!
//! Some work a request would otherwise wait for (key agreements, new
//! content's keys and signatures) can be done before the request comes, on
//! a core that would idle meanwhile. Such threads run at a lower priority
//! than the process's others, so they take idle time rather than the time
//! of the application or of the threads answering it.

use std::io;
use std::thread::JoinHandle;

/// Niceness of a background thread: below the FUSE workers, above nothing
/// the user runs at the default.
const NICE: i32 = 10;

/// Spawns `work` on a thread named `name` at a lower priority.
pub fn spawn<F>(name: &str, work: F) -> io::Result<JoinHandle<()>>
where
    F: FnOnce() + Send + 'static,
{
    std::thread::Builder::new().name(name.into()).spawn(move || {
        lower_priority();
        work()
    })
}

/// Nice [`NICE`] for the calling thread only (Linux gives each thread its
/// own niceness).
fn lower_priority() {
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), NICE) {
        tracing::debug!(error = %io::Error::from(e), "could not lower a background thread's priority");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn runs_at_a_lower_priority() {
        let nice = super::spawn("test-background", || {
            let n = rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap();
            assert!(n >= super::NICE, "niceness {n}");
        })
        .unwrap()
        .join();
        assert!(nice.is_ok());
    }
}
