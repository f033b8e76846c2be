//! Key agreements with a server key, each used for a bounded number of
//! wraps.
//!
//! Wrapping a content key to the server takes an X25519 agreement (two
//! scalar multiplications for the client, one for the server when it
//! unwraps): more than everything else a new file costs both of them. A
//! process that creates many files (the mount) may instead use one
//! agreement for up to [`MAX_USES`] wraps within [`MAX_AGE`], and the
//! server, seeing the same ephemeral key again, reuses its side too.
//!
//! Why this stays sound: the wrapping key is HKDF(shared secret; salt:
//! ephemeral and server keys; info: the content id), so every (agreement,
//! content id) pair has its own key. An agreement never wraps the same
//! content id twice (a repeat gets a fresh agreement), so no key ever
//! seals twice and the fixed nonce stays safe. Wraps sharing an agreement
//! are linkable to one process, which their publishing licences (same
//! owner, same device) already are. Only the ephemeral public key and the
//! shared secret are kept (wiped when replaced), never the ephemeral
//! secret, as before.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use x25519_dalek::{EphemeralSecret, PublicKey};
use zeroize::Zeroizing;

/// Wraps one agreement serves at most.
pub const MAX_USES: usize = 256;
/// How long one agreement serves at most.
pub const MAX_AGE: Duration = Duration::from_secs(30);

/// One ephemeral key pair's outcome with a server key.
#[derive(Clone)]
pub(super) struct Agreement {
    /// The ephemeral public key, sent with the wrapped key.
    pub epk: [u8; 32],
    /// The X25519 shared secret.
    pub shared: Zeroizing<[u8; 32]>,
}

impl Agreement {
    /// A fresh one.
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

/// The agreement in use with one server key, and what it wrapped.
struct Current {
    agreement: Agreement,
    made: Instant,
    contexts: HashSet<Vec<u8>>,
}

/// Server keys this process reuses agreements with (`None`: enabled, no
/// agreement yet).
fn reused() -> &'static Mutex<HashMap<[u8; 32], Option<Current>>> {
    static REUSED: OnceLock<Mutex<HashMap<[u8; 32], Option<Current>>>> = OnceLock::new();
    REUSED.get_or_init(Default::default)
}

/// From now on, wraps to `server` in this process share agreements.
pub(super) fn enable(server: [u8; 32]) {
    reused()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(server)
        .or_insert(None);
}

/// The agreement to wrap `context` to `server` with: the shared one when
/// reuse is enabled for `server` (replaced when used up, too old, or if it
/// already wrapped `context`), else a fresh one.
pub(super) fn for_wrap(server: &[u8; 32], context: &[u8]) -> Agreement {
    let mut map = reused().lock().unwrap_or_else(|p| p.into_inner());
    let Some(slot) = map.get_mut(server) else {
        drop(map);
        return Agreement::new(server);
    };
    let usable = slot
        .as_ref()
        .is_some_and(|c| c.contexts.len() < MAX_USES && c.made.elapsed() < MAX_AGE && !c.contexts.contains(context));
    if !usable {
        *slot = Some(Current {
            agreement: Agreement::new(server),
            made: Instant::now(),
            contexts: HashSet::with_capacity(MAX_USES),
        });
    }
    let cur = slot.as_mut().expect("set above");
    cur.contexts.insert(context.to_vec());
    cur.agreement.clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{ContentKey, ServerKemSecret};

    #[test]
    fn without_reuse_every_wrap_has_its_own_agreement() {
        let public = ServerKemSecret::generate().public();
        let a = for_wrap(&public.0, b"a");
        let b = for_wrap(&public.0, b"b");
        assert_ne!(a.epk, b.epk);
    }

    #[test]
    fn shared_agreements_wrap_distinct_contexts_and_unwrap() {
        let secret = ServerKemSecret::generate();
        let public = secret.public();
        public.reuse_agreements();
        let cek = ContentKey::generate();
        let mut epks = HashMap::new();
        for i in 0..(MAX_USES + 10) {
            let ctx = format!("content-{i}");
            let w = public.wrap(&cek, ctx.as_bytes());
            *epks.entry(w.0[..32].to_vec()).or_insert(0) += 1;
            assert_eq!(secret.unwrap(&w, ctx.as_bytes()).unwrap().as_bytes(), cek.as_bytes());
        }
        // Shared, but never beyond MAX_USES wraps each.
        assert!(epks.len() >= 2 && epks.len() < MAX_USES);
        assert!(epks.values().all(|&n| n <= MAX_USES));
    }

    #[test]
    fn a_repeated_context_gets_a_fresh_agreement() {
        let secret = ServerKemSecret::generate();
        let public = secret.public();
        public.reuse_agreements();
        let first = public.wrap(&ContentKey::generate(), b"same");
        let second = public.wrap(&ContentKey::generate(), b"same");
        // Otherwise one key would seal two content keys under one nonce.
        assert_ne!(first.0[..32], second.0[..32]);
        assert!(secret.unwrap(&second, b"same").is_ok());
    }
}
