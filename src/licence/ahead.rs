//! New content made ahead of need, for a process that creates many files.
//!
//! Creating a file in a mount needs a fresh content key, its wrap to the
//! server, the owner's Ed25519 signature on the publishing licence, the
//! owner slot, the file's header and keys and the sealed state of an empty
//! file: most of the daemon's own work per created file, none of which
//! depends on the file's name or bytes. A [background](crate::background)
//! thread prepares them for the policy last asked for, while a burst of
//! creations (`tar x`, a build, a checkout) runs, so a creation only takes
//! one.
//!
//! Bounds, because prepared content holds content keys: at most [`READY`]
//! wait, each for at most [`MAX_AGE`] (its publishing licence's creation
//! time is when it was made, so that is also how far that time may be off);
//! none are made unless one was taken within `MAX_AGE`; each is handed out
//! once; keys are wiped when dropped. A change of policy (a folder with its
//! own `.rights-policy`) drops what was made for the previous one.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{AccessError, Licensing, NewContent};
use crate::crypto::SharedAgreements;
use crate::format::{Caches, Fresh};
use crate::policy::Policy;

/// Content kept ready: more than a burst takes before the thread catches
/// up (making one costs a fraction of what a creation costs the kernel).
pub const READY: usize = 32;

/// Longest prepared content waits, and how long after the last creation
/// the thread keeps preparing.
pub const MAX_AGE: Duration = Duration::from_secs(10);

/// Hands out new content for files, made ahead by a background thread
/// when it can be, else at once. Dropping it stops the thread and wipes
/// what waits.
pub struct ContentAhead {
    shared: Arc<Shared>,
}

struct Shared {
    licensing: Arc<Licensing>,
    server_url: String,
    kem: SharedAgreements,
    /// The checks remembered by the mount the content is for: a new
    /// file's header is checked as its reader checks it.
    caches: Arc<Caches>,
    max_age: Duration,
    state: Mutex<State>,
    wanted: Condvar,
}

#[derive(Default)]
struct State {
    /// The policy content is made for (the last one asked for).
    policy: Option<Policy>,
    /// Made for `policy`, oldest first, with when.
    ready: VecDeque<(Instant, NewContent, Fresh)>,
    /// When content was last taken.
    last_take: Option<Instant>,
    closed: bool,
}

impl State {
    /// Whether the thread should make one more now.
    fn wants_more(&self, max_age: Duration) -> bool {
        self.policy.is_some() && self.ready.len() < READY && self.last_take.is_some_and(|t| t.elapsed() < max_age)
    }

    fn drop_stale(&mut self, max_age: Duration) {
        while self.ready.front().is_some_and(|(t, ..)| t.elapsed() >= max_age) {
            self.ready.pop_front();
        }
    }
}

impl ContentAhead {
    /// Starts preparing content by `licensing`'s user for the server at
    /// `server_url`, wrapping keys through `kem` (the caller's choice of
    /// shared agreements). If no thread can be started, content
    /// is made when asked for.
    pub fn start(licensing: Arc<Licensing>, server_url: &str, kem: SharedAgreements, caches: Arc<Caches>) -> Self {
        Self::with_max_age(licensing, server_url, kem, caches, MAX_AGE)
    }

    fn with_max_age(
        licensing: Arc<Licensing>,
        server_url: &str,
        kem: SharedAgreements,
        caches: Arc<Caches>,
        max_age: Duration,
    ) -> Self {
        let shared = Arc::new(Shared {
            licensing,
            server_url: server_url.to_string(),
            kem,
            caches,
            max_age,
            state: Mutex::new(State::default()),
            wanted: Condvar::new(),
        });
        let worker = shared.clone();
        if let Err(e) = crate::background::spawn("rightsfs-new-ahead", move || worker.fill()) {
            tracing::warn!(error = %e, "new files' keys are made when each file is created");
        }
        Self { shared }
    }

    /// New content for `policy`, its key kept in memory as the owner's
    /// (as [`Licensing::new_content`]), and its file's first bytes.
    pub fn take(&self, policy: Policy) -> Result<(NewContent, Fresh), AccessError> {
        let s = &self.shared;
        let ready = {
            let mut st = s.lock();
            st.last_take = Some(Instant::now());
            let ready = if st.policy.as_ref() == Some(&policy) {
                st.drop_stale(s.max_age);
                st.ready.pop_front().map(|(_, n, f)| (n, f))
            } else {
                st.ready.clear();
                st.policy = Some(policy.clone());
                None
            };
            if st.ready.len() < READY / 2 {
                s.wanted.notify_one();
            }
            ready
        };
        let (new, fresh) = match ready {
            Some(r) => r,
            None => s.make(policy)?,
        };
        s.licensing.adopt(&new);
        Ok((new, fresh))
    }
}

impl Drop for ContentAhead {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.closed = true;
        st.ready.clear();
        self.shared.wanted.notify_one();
    }
}

impl Shared {
    fn make(&self, policy: Policy) -> Result<(NewContent, Fresh), AccessError> {
        let new = self.licensing.make_content(policy, &self.server_url, &self.kem)?;
        let fresh = new.fresh(self.licensing.writer()?, Some(&self.caches))?;
        Ok((new, fresh))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The thread: makes content while creations go on; sleeps otherwise,
    /// waking only to drop what got too old.
    fn fill(&self) {
        loop {
            let policy = {
                let mut st = self.lock();
                loop {
                    st.drop_stale(self.max_age);
                    if st.closed {
                        return;
                    }
                    if st.wants_more(self.max_age)
                        && let Some(p) = st.policy.clone()
                    {
                        break p;
                    }
                    st = if st.ready.is_empty() {
                        self.wanted.wait(st).unwrap_or_else(|p| p.into_inner())
                    } else {
                        let waited = self.wanted.wait_timeout(st, self.max_age);
                        waited.unwrap_or_else(|p| p.into_inner()).0
                    };
                }
            };
            let made = self.make(policy.clone());
            let mut st = self.lock();
            match made {
                Ok((n, f)) if st.policy.as_ref() == Some(&policy) && !st.closed => {
                    st.ready.push_back((Instant::now(), n, f))
                }
                Ok(_) => {}
                Err(e) => {
                    // The same error comes back to whoever asks next (made
                    // then at once); stop until another policy is asked for.
                    tracing::debug!(error = %e, "not preparing content for this policy");
                    st.policy = None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{DeviceKeyPair, ServerKemSecret, ServerSigningKey};
    use crate::licence::Identity;
    use crate::policy::Email;

    /// An owner's store whose device holds a server certificate (files
    /// made ahead are signed by it).
    fn licensing(dir: &std::path::Path) -> Arc<Licensing> {
        let server = ServerSigningKey::generate();
        let device_key = DeviceKeyPair::generate().unwrap();
        let alice = Email::parse("alice@example.com").unwrap();
        let cert = crate::policy::DeviceCertificate {
            account: alice.clone(),
            device_id: "dev-a".into(),
            key: device_key.writer_key().public(),
            issued_at: 0,
            not_after: i64::MAX,
        }
        .sign(&server);
        let l = Licensing::new(
            Identity {
                email: alice,
                device_id: "dev-a".into(),
                device_key,
                server_key: server.verifying_key(),
            },
            dir.join("cache"),
            dir.join("owner"),
            None,
        );
        l.set_device_certificate(&cert).unwrap();
        Arc::new(l)
    }

    fn started(dir: &std::path::Path) -> ContentAhead {
        ContentAhead::start(
            licensing(dir),
            "http://127.0.0.1:9",
            SharedAgreements::new(ServerKemSecret::generate().public()),
            Arc::new(Caches::new(0)),
        )
    }

    fn policy(days: u32) -> Policy {
        Policy::owner_only(Email::parse("alice@example.com").unwrap(), days)
    }

    /// Waits (without a deadline on speed) until `n` are ready.
    fn wait_ready(a: &ContentAhead, n: usize) {
        for _ in 0..2_000 {
            if a.shared.lock().ready.len() >= n {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("the thread made fewer than {n}");
    }

    #[test]
    fn prepared_content_is_handed_out_once_and_opens() {
        let dir = tempfile::tempdir().unwrap();
        let lic = licensing(dir.path());
        let server = ServerKemSecret::generate();
        let ahead = ContentAhead::start(
            lic.clone(),
            "http://127.0.0.1:9",
            SharedAgreements::new(server.public()),
            Arc::new(Caches::new(0)),
        );
        ahead.take(policy(3)).unwrap();
        wait_ready(&ahead, READY / 2);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..READY + 4 {
            let (new, fresh) = ahead.take(policy(3)).unwrap();
            assert!(seen.insert(new.content_id), "content handed out twice");
            let header = fresh.header().clone();
            assert_eq!(header.content_id(), new.content_id);
            assert_eq!(new.licence.verify().unwrap().policy, policy(3));
            // Kept as the owner's, and the server can unwrap its key.
            let a = lic.key_for_offline(&header).unwrap();
            assert_eq!(a.key.as_bytes(), new.key.as_bytes());
            let wrapped = header.licence.wrapped().unwrap();
            assert_eq!(
                server
                    .unwrap(&wrapped, &header.licence.key_context())
                    .unwrap()
                    .as_bytes(),
                new.key.as_bytes()
            );
        }
    }

    /// Only the licence `make_content` signed is taken as signed without
    /// checking its signature's maths: one put in its place afterwards
    /// (here that licence with its Ed25519 signature altered, its device
    /// certificate intact) is checked in full and refused.
    #[test]
    fn only_the_licence_signed_here_is_taken_as_signed() {
        let dir = tempfile::tempdir().unwrap();
        let l = licensing(dir.path());
        let kem = ServerKemSecret::generate().public();
        let caches = Caches::new(0);
        let made = l.make_content(policy(3), "http://127.0.0.1:9", &kem).unwrap();
        made.fresh(l.writer().unwrap(), Some(&caches)).unwrap();

        let mut altered = l.make_content(policy(3), "http://127.0.0.1:9", &kem).unwrap();
        *altered.licence.signature.last_mut().unwrap() ^= 1;
        assert!(matches!(
            altered.fresh(l.writer().unwrap(), Some(&caches)),
            Err(AccessError::BadLicence(_))
        ));
    }

    #[test]
    fn content_follows_the_policy_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let ahead = started(dir.path());
        ahead.take(policy(3)).unwrap();
        wait_ready(&ahead, 4);
        for days in [5, 3, 5, 5] {
            let (new, _) = ahead.take(policy(days)).unwrap();
            assert_eq!(new.licence.verify().unwrap().policy, policy(days));
        }
        assert_eq!(ahead.shared.lock().policy, Some(policy(5)));
    }

    #[test]
    fn old_content_is_dropped_not_handed_out() {
        let dir = tempfile::tempdir().unwrap();
        let lic = licensing(dir.path());
        let ahead = ContentAhead::with_max_age(
            lic,
            "http://127.0.0.1:9",
            SharedAgreements::new(ServerKemSecret::generate().public()),
            Arc::new(Caches::new(0)),
            Duration::ZERO,
        );
        for _ in 0..3 {
            ahead.take(policy(3)).unwrap();
        }
        // With no age allowed, nothing is made ahead, let alone kept.
        let st = ahead.shared.lock();
        assert!(st.ready.is_empty());
        assert!(!st.wants_more(Duration::ZERO));
    }

    #[test]
    fn a_bad_policy_is_refused_when_asked_and_not_prepared() {
        let dir = tempfile::tempdir().unwrap();
        let ahead = started(dir.path());
        let mut bad = policy(3);
        bad.offline_days = u32::MAX;
        assert!(ahead.take(bad.clone()).is_err());
        assert!(ahead.take(bad).is_err());
        assert!(ahead.shared.lock().ready.is_empty());
    }

    #[test]
    fn dropping_it_stops_the_thread() {
        let dir = tempfile::tempdir().unwrap();
        let lic = licensing(dir.path());
        let ahead = ContentAhead::start(
            lic.clone(),
            "http://127.0.0.1:9",
            SharedAgreements::new(ServerKemSecret::generate().public()),
            Arc::new(Caches::new(0)),
        );
        ahead.take(policy(3)).unwrap();
        wait_ready(&ahead, 2);
        let shared = Arc::downgrade(&ahead.shared);
        drop(ahead);
        for _ in 0..2_000 {
            if shared.upgrade().is_none() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("the thread kept running after its owner was dropped");
    }
}
