//! Key agreements with a server key, computed ahead of need.
//!
//! Wrapping a content key to the server costs two X25519 scalar
//! multiplications (the ephemeral public key and the shared secret), about
//! a quarter of what creating a file in a mount costs. Neither depends on
//! the file, so a process that creates many files (the mount) asks for them
//! to be prepared by a background thread at low priority, on a core that
//! would otherwise idle while an application writes. Each agreement is used
//! for exactly one wrap and then dropped; the ephemeral secret is never
//! kept, only its public key and the shared secret (wiped on drop).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use x25519_dalek::{EphemeralSecret, PublicKey};
use zeroize::Zeroizing;

/// Agreements kept ready per server key: more than a burst of creations
/// consumes before the thread catches up (one takes about 60 µs).
const READY: usize = 64;

/// One fresh ephemeral key pair's outcome with a server key.
pub(super) struct Agreement {
    /// The ephemeral public key, sent with the wrapped key.
    pub epk: [u8; 32],
    /// The X25519 shared secret.
    pub shared: Zeroizing<[u8; 32]>,
}

impl Agreement {
    /// Computes one now.
    pub(super) fn new(server: &[u8; 32]) -> Self {
        let eph = EphemeralSecret::random_from_rng(&mut rand::rng());
        let epk = PublicKey::from(&eph).to_bytes();
        let shared = eph.diffie_hellman(&PublicKey::from(*server));
        Self {
            epk,
            shared: Zeroizing::new(*shared.as_bytes()),
        }
    }
}

struct Pool {
    ready: Mutex<VecDeque<Agreement>>,
    low: Condvar,
}

fn pools() -> &'static Mutex<HashMap<[u8; 32], Arc<Pool>>> {
    static POOLS: OnceLock<Mutex<HashMap<[u8; 32], Arc<Pool>>>> = OnceLock::new();
    POOLS.get_or_init(Default::default)
}

/// Starts preparing agreements with `server` (once per key and process;
/// the thread lives as long as the process).
pub(super) fn start(server: [u8; 32]) {
    let mut map = pools().lock().unwrap_or_else(|p| p.into_inner());
    if map.contains_key(&server) {
        return;
    }
    let pool = Arc::new(Pool {
        ready: Mutex::new(VecDeque::with_capacity(READY)),
        low: Condvar::new(),
    });
    let worker = pool.clone();
    let spawned = std::thread::Builder::new()
        .name("rightsfs-kem-ahead".into())
        .spawn(move || fill(&worker, &server));
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "key agreements are computed when needed");
        return;
    }
    map.insert(server, pool);
}

/// A prepared agreement with `server`, if one is ready.
pub(super) fn take(server: &[u8; 32]) -> Option<Agreement> {
    let pool = pools().lock().unwrap_or_else(|p| p.into_inner()).get(server)?.clone();
    let mut ready = pool.ready.lock().unwrap_or_else(|p| p.into_inner());
    let a = ready.pop_front();
    if ready.len() < READY / 2 {
        pool.low.notify_one();
    }
    a
}

fn fill(pool: &Pool, server: &[u8; 32]) {
    lower_priority();
    loop {
        {
            let mut ready = pool.ready.lock().unwrap_or_else(|p| p.into_inner());
            while ready.len() >= READY {
                ready = pool.low.wait(ready).unwrap_or_else(|p| p.into_inner());
            }
        }
        let a = Agreement::new(server);
        pool.ready.lock().unwrap_or_else(|p| p.into_inner()).push_back(a);
    }
}

/// Nice 10 for the calling thread only, so the work ahead takes idle time
/// rather than the application's.
fn lower_priority() {
    // SAFETY: plain syscalls on the calling thread's own id.
    let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 10) };
    if r != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "could not lower the key-agreement thread's priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{ContentKey, ServerKemSecret};

    #[test]
    fn prepared_agreements_wrap_once_each_and_unwrap() {
        let secret = ServerKemSecret::generate();
        let public = secret.public();
        public.compute_ahead();
        public.compute_ahead();
        // Wait (without a deadline on speed) until the thread has made some.
        let mut waited = 0;
        while pools().lock().unwrap()[&public.0].ready.lock().unwrap().len() < 4 && waited < 10_000 {
            std::thread::sleep(std::time::Duration::from_millis(5));
            waited += 5;
        }
        let cek = ContentKey::generate();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..(READY + 8) {
            let w = public.wrap(&cek, b"ctx");
            assert!(seen.insert(w.0[..32].to_vec()), "an ephemeral key was used twice");
            assert_eq!(secret.unwrap(&w, b"ctx").unwrap().as_bytes(), cek.as_bytes());
        }
    }
}
