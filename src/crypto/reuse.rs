//! Key agreements with a server key, each used for a bounded number of
//! wraps.
//!
//! Wrapping a content key to the server takes an X25519 agreement (two
//! scalar multiplications for the client, one for the server when it
//! unwraps): more than everything else a new file costs both of them. An
//! owner that creates many files (the mount) may instead make a
//! [`SharedAgreements`] and wrap through it: one agreement then serves up
//! to [`MAX_USES`] wraps within [`MAX_AGE`], and the server, seeing the
//! same ephemeral key again, reuses its side too. Nothing is shared
//! process-wide: a wrap not made through that object gets its own
//! agreement.
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

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use x25519_dalek::{EphemeralSecret, PublicKey};
use zeroize::Zeroizing;

use super::aead::ContentKey;
use super::server::{ServerKemPublic, WrappedKey};

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

/// The agreement in use, and what it wrapped.
struct Current {
    agreement: Agreement,
    made: Instant,
    contexts: HashSet<Vec<u8>>,
}

/// Wraps content keys to one server key, sharing agreements between wraps.
///
/// Only wraps made through this object share: its owner (the mount) asks
/// for sharing by making one, and a plain [`ServerKemPublic::wrap`] never
/// shares. Two objects never share an agreement with each other.
pub struct SharedAgreements {
    server: ServerKemPublic,
    current: Mutex<Option<Current>>,
}

impl SharedAgreements {
    /// Sharing agreements for wraps to `server`, none made yet.
    pub fn new(server: ServerKemPublic) -> Self {
        Self {
            server,
            current: Mutex::new(None),
        }
    }

    /// The agreement to wrap `context` with: the shared one, replaced when
    /// used up, too old, or if it already wrapped `context`.
    pub(super) fn for_wrap(&self, context: &[u8]) -> Agreement {
        let mut slot = self.current.lock().unwrap_or_else(|p| p.into_inner());
        let usable = slot.as_ref().is_some_and(|c| {
            c.contexts.len() < MAX_USES && c.made.elapsed() < MAX_AGE && !c.contexts.contains(context)
        });
        if !usable {
            *slot = Some(Current {
                agreement: Agreement::new(&self.server.0),
                made: Instant::now(),
                contexts: HashSet::with_capacity(MAX_USES),
            });
        }
        let cur = slot.as_mut().expect("set above");
        cur.contexts.insert(context.to_vec());
        cur.agreement.clone()
    }
}

/// Something that wraps content keys to a server key: the key itself
/// (a fresh agreement each time) or [`SharedAgreements`] for it.
pub trait WrapToServer: Send + Sync {
    /// The server key wrapped to.
    fn server(&self) -> ServerKemPublic;
    /// `cek` wrapped for `context`, as [`ServerKemPublic::wrap`].
    fn wrap(&self, cek: &ContentKey, context: &[u8]) -> WrappedKey;
}

impl WrapToServer for ServerKemPublic {
    fn server(&self) -> ServerKemPublic {
        *self
    }

    fn wrap(&self, cek: &ContentKey, context: &[u8]) -> WrappedKey {
        ServerKemPublic::wrap(self, cek, context)
    }
}

impl WrapToServer for SharedAgreements {
    fn server(&self) -> ServerKemPublic {
        self.server
    }

    fn wrap(&self, cek: &ContentKey, context: &[u8]) -> WrappedKey {
        self.server.wrap_with(self.for_wrap(context), cek, context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::ServerKemSecret;
    use std::collections::HashMap;

    fn epk(w: &WrappedKey) -> [u8; 32] {
        w.0[..32].try_into().unwrap()
    }

    #[test]
    fn without_reuse_every_wrap_has_its_own_agreement() {
        let public = ServerKemSecret::generate().public();
        let cek = ContentKey::generate();
        assert_ne!(epk(&public.wrap(&cek, b"a")), epk(&public.wrap(&cek, b"b")));
    }

    #[test]
    fn sharing_on_one_object_leaks_to_no_other_wrap() {
        let public = ServerKemSecret::generate().public();
        let cek = ContentKey::generate();
        let mount = SharedAgreements::new(public);
        let shared = epk(&mount.wrap(&cek, b"a"));
        assert_eq!(epk(&mount.wrap(&cek, b"b")), shared);
        // A plain wrap to the same key, after the mount opted in, and a
        // second sharing object, each get agreements of their own.
        let plain = epk(&public.wrap(&cek, b"c"));
        assert_ne!(plain, shared);
        assert_ne!(epk(&public.wrap(&cek, b"d")), plain);
        let other = SharedAgreements::new(public);
        assert_ne!(epk(&other.wrap(&cek, b"e")), shared);
    }

    #[test]
    fn shared_agreements_wrap_distinct_contexts_and_unwrap() {
        let secret = ServerKemSecret::generate();
        let shared = SharedAgreements::new(secret.public());
        let cek = ContentKey::generate();
        let mut epks = HashMap::new();
        for i in 0..(MAX_USES + 10) {
            let ctx = format!("content-{i}");
            let w = shared.wrap(&cek, ctx.as_bytes());
            *epks.entry(epk(&w)).or_insert(0) += 1;
            assert_eq!(secret.unwrap(&w, ctx.as_bytes()).unwrap().as_bytes(), cek.as_bytes());
        }
        // Shared, but never beyond MAX_USES wraps each.
        assert!(epks.len() >= 2 && epks.len() < MAX_USES);
        assert!(epks.values().all(|&n| n <= MAX_USES));
    }

    #[test]
    fn a_repeated_context_gets_a_fresh_agreement() {
        let secret = ServerKemSecret::generate();
        let shared = SharedAgreements::new(secret.public());
        let first = shared.wrap(&ContentKey::generate(), b"same");
        let second = shared.wrap(&ContentKey::generate(), b"same");
        // Otherwise one key would seal two content keys under one nonce.
        assert_ne!(epk(&first), epk(&second));
        assert!(secret.unwrap(&second, b"same").is_ok());
    }
}
