//! What a reader that opens many files remembers between them, owned by
//! that reader (the mount, a CLI command) and passed to every open: no
//! cache is process-wide, so a library user who passes none verifies
//! everything every time, and two owners never see each other's entries.

use std::sync::Arc;

use super::removed::RemovedDevices;
use super::store::known_tags::KnownTags;
use super::writer::WrittenBy;
use crate::cache::Shared;
use crate::crypto::{CertCache, ServerVerifyingKey, Sha256Digest};
use crate::policy::{DeviceCertificate, EditCertificate};

/// Header signatures remembered.
const GOOD_SIGNATURES_KEPT: usize = 16_384;
/// Verified writer records remembered.
const VERIFIED_KEPT: usize = 16_384;
/// Writers' device certificates remembered (one per device that saved).
const DEVICES_KEPT: usize = 1_024;
/// Editors' edit certificates remembered (one per editor and file).
const EDITS_KEPT: usize = 4_096;

/// Checks already done, each bounded.
pub struct Caches {
    /// Device certificates of publishing licences (RSA, about 80 us each).
    pub(crate) certs: CertCache,
    /// Headers (by SHA-256 of all their bytes) whose publishing-licence
    /// signature verified: the same bytes verify the same way every time,
    /// so a file reopened is not checked again.
    pub(super) signatures: Shared<Sha256Digest, ()>,
    /// Versions whose writer records verified, by hash of the server key,
    /// header hash, state and record (two Ed25519 checks, about 100 us).
    pub(super) versions: Shared<Sha256Digest, WrittenBy>,
    /// Writers' device certificates whose server signature verified, by
    /// hash of the server key and the certificate: every version a device
    /// signs carries the same one, so opening many files saved by one
    /// device checks it once (an Ed25519 check, about 40 us).
    pub(super) devices: Shared<Sha256Digest, DeviceCertificate>,
    /// Editors' edit certificates whose server signature verified, by
    /// hash of the server key and the certificate: every version an
    /// editor saves of one file carries the same one, and the mount checks
    /// each version it signs as it saves it (an Ed25519 check, about
    /// 40 us, per save).
    pub(super) edits: Shared<Sha256Digest, EditCertificate>,
    /// Tag tables of files verified or written (see `store/known_tags.rs`).
    pub(super) tags: KnownTags,
}

/// Not the entries: what was verified is nobody's log line.
impl std::fmt::Debug for Caches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caches").finish_non_exhaustive()
    }
}

impl Caches {
    /// Empty caches whose tag tables take at most `tag_memory` bytes
    /// (0: none are kept; [`DEFAULT_TAG_MEMORY`](super::DEFAULT_TAG_MEMORY)
    /// by default).
    pub fn new(tag_memory: usize) -> Self {
        Self {
            certs: CertCache::default(),
            signatures: Shared::new(GOOD_SIGNATURES_KEPT),
            versions: Shared::new(VERIFIED_KEPT),
            devices: Shared::new(DEVICES_KEPT),
            edits: Shared::new(EDITS_KEPT),
            tags: KnownTags::new(tag_memory),
        }
    }

    /// The device certificates checked, for licences verified outside a
    /// file (the mount's checks of folder policies).
    pub fn certificates(&self) -> &CertCache {
        &self.certs
    }
}

/// How a reader checks who wrote a file: the server's signing key, the
/// devices it knows were removed from their accounts, and the caches of
/// its owner, if it has any.
#[derive(Clone)]
pub struct Verifier {
    key: ServerVerifyingKey,
    caches: Option<Arc<Caches>>,
    removed: RemovedDevices,
}

impl Verifier {
    /// Checks against `key`, remembering nothing.
    pub fn new(key: ServerVerifyingKey) -> Self {
        Self {
            key,
            caches: None,
            removed: RemovedDevices::default(),
        }
    }

    /// Checks against `key`, remembering in (and recalling from) `caches`.
    pub fn cached(key: ServerVerifyingKey, caches: Arc<Caches>) -> Self {
        Self {
            key,
            caches: Some(caches),
            removed: RemovedDevices::default(),
        }
    }

    /// The same verifier, refusing every version signed by a device in
    /// `removed` (shared: what is added to it later counts too).
    pub fn with_removed(self, removed: RemovedDevices) -> Self {
        Self { removed, ..self }
    }

    /// The devices refused as removed.
    pub fn removed(&self) -> &RemovedDevices {
        &self.removed
    }

    /// The server's signing key.
    pub fn key(&self) -> &ServerVerifyingKey {
        &self.key
    }

    /// The caches used, if any.
    pub fn caches(&self) -> Option<&Arc<Caches>> {
        self.caches.as_ref()
    }
}
