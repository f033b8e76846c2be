//! Client-side licensing: which content keys this device may use, and for
//! how long. The `rights` commands and the FUSE mount both go through
//! [`Licensing`].
//!
//! * Use licences (server-signed, content key wrapped to this device's RSA
//!   key) are cached on disk per user and device, until their
//!   `valid_until`. The files are useless without the device key.
//! * A file protected on this device carries its content key in its header,
//!   sealed with a key only this device derives (the *owner slot*), so the
//!   owner opens their own files offline and before registration, with no
//!   file kept beside them. Owner licences (files in the data folder) did
//!   that job before and are still read.
//! * Unwrapped content keys live only in memory, in a bounded LRU
//!   ([`ContentKey`] zeroizes on drop).
//! * The server's Ed25519 signature on a use licence is checked before any
//!   RSA private operation on it.
//!
//! # Use from the mount
//!
//! ```ignore
//! let access = licensing.key_for(&header)?;        // may ask the server (bounded timeout)
//! // Only versions signed by the owner or an editor open.
//! let pf = ProtectedFile::open_verified(file, &access.key, licensing.server_key())?;
//! // `None` without `edit` (open read-only); else who signs this user's versions.
//! let pf = match licensing.writer_for(&header, &access)? {
//!     Some(w) => pf.with_writer(w),
//!     None => pf,
//! };
//! // A new file in a protected folder, with no network round trip,
//! // signed by this device from its first state:
//! let new = licensing.new_content(policy, server_url, server_kem)?;
//! let fresh = new.fresh(licensing.writer()?, None)?;
//! // ... then queue `new.licence` for registration.
//! ```
//!
//! [`Licensing`] is `Send + Sync`: share one `Arc<Licensing>` between worker
//! threads.

mod ahead;
mod error;
mod opens;
mod owner;
mod removed;
mod store;
mod writer;

use std::path::PathBuf;
use std::sync::Mutex;

use lru::LruCache;

pub use ahead::ContentAhead;
pub use error::{AccessError, FetchError};
pub use opens::{OfflineOpen, RECORD_EVERY_SECS, REPORT_BATCH_MAX};
pub use removed::REMOVED_DEVICES_MAX_AGE;
pub use store::CachedLicence;

use crate::crypto::{
    ContentKey, DeviceKeyPair, ServerKemPublic, ServerVerifyingKey, Sha256Digest, WRITER_KEY_LEN, WrapToServer,
};
use crate::format::{Caches, DEFAULT_BLOCK_SIZE, FileHeader, Fresh, Writer};
use crate::policy::{
    ContentId, Email, Policy, PublishingLicence, PublishingLicenceBody, Rights, Timestamp, UseLicence, format_time, now,
};

/// How many unwrapped content keys stay in memory: enough for a large
/// working folder (unwrapping one costs an RSA operation, 2.4 ms), small in
/// memory (about 100 bytes each, zeroized on eviction).
pub const KEY_CACHE_SIZE: usize = 16_384;

/// Where use licences come from when the cache has none: the server. The
/// implementation must bound its own time (the client's HTTP timeout), as
/// FUSE workers call through it.
pub trait LicenceSource: Send + Sync {
    /// Asks for a use licence for `content` for this user and device,
    /// showing the device certificate (when this device has one) so that
    /// a licence granting `edit` comes with an edit certificate.
    fn fetch(&self, content: &ContentId, device_certificate: Option<&[u8]>) -> Result<UseLicence, FetchError>;

    /// Asks the server to certify this device's writer key, proven by
    /// `proof` (the device key's signature over
    /// [`writer_key_proof`](crate::policy::writer_key_proof)).
    fn device_certificate(&self, writer_key: &[u8; WRITER_KEY_LEN], proof: &[u8]) -> Result<Vec<u8>, FetchError>;

    /// Registers content (a conflict, someone else's registration of the
    /// id, is an error). Used
    /// when a file protected here turns out unregistered: its queued
    /// registration was lost, e.g. to a power cut before it was synced.
    fn register(&self, licence: &PublishingLicence) -> Result<(), FetchError>;

    /// Reports opens served from cached licences (at most
    /// [`REPORT_BATCH_MAX`]) for the owners' audit logs. A source that
    /// cannot report keeps them waiting.
    fn report_opens(&self, opens: &[OfflineOpen]) -> Result<(), FetchError> {
        let _ = opens;
        Err(FetchError::Other(
            "this licence source takes no reports of opens".into(),
        ))
    }

    /// One signed page of the server's list of removed devices, the one
    /// after device id `after` (`None`: the first), as the server encoded
    /// it ([`RemovedDeviceList`](crate::policy::RemovedDeviceList)).
    fn removed_devices(&self, after: Option<&str>) -> Result<Vec<u8>, FetchError> {
        let _ = after;
        Err(FetchError::Other(
            "this licence source has no list of removed devices".into(),
        ))
    }
}

/// Who is asking: the logged-in user, this device and the server's
/// licence-signing key.
pub struct Identity {
    /// The user.
    pub email: Email,
    /// This device's id on the server (use licences name it).
    pub device_id: String,
    /// This device's private key (unwraps content keys).
    pub device_key: DeviceKeyPair,
    /// The key that signs use licences.
    pub server_key: ServerVerifyingKey,
}

/// A usable content key with what it may be used for.
#[derive(Clone, Debug)]
pub struct Access {
    /// The content key (zeroized on drop).
    pub key: ContentKey,
    /// What this user may do.
    pub rights: Rights,
    /// Until when the licence may be used without the server (`None`: the
    /// owner's own licence, which does not lapse).
    pub valid_until: Option<Timestamp>,
    /// Whether the key came from this device's owner licence.
    pub owner: bool,
    /// The edit certificate that came with the licence, if any.
    pub edit_certificate: Option<Vec<u8>>,
}

impl Access {
    fn usable_at(&self, t: Timestamp) -> bool {
        self.valid_until.is_none_or(|v| t < v)
    }
}

/// A new protected content's key and signed publishing licence.
pub struct NewContent {
    /// Its id.
    pub content_id: ContentId,
    /// Its fresh content key.
    pub key: ContentKey,
    /// The signed publishing licence, for the header and registration.
    pub licence: PublishingLicence,
    /// The content key sealed for this device, for the header.
    pub owner_slot: Vec<u8>,
    /// The hash of the licence, body and signature, as this process signed
    /// it: while `licence` is still that one, [`fresh`](Self::fresh) need
    /// not check its signature's maths again. Private, so only
    /// `make_content` sets it.
    signed: Sha256Digest,
}

/// Header extension holding the owner slot (non-critical: readers that do
/// not know it ignore it).
pub const OWNER_SLOT_EXTENSION: u16 = 0x0001;

/// Associated data of an owner slot: binds it to its content.
fn owner_slot_aad(id: &ContentId) -> Vec<u8> {
    [b"rightsfs owner slot v1\0".as_slice(), &id.0].concat()
}

/// What [`NewContent::signed`] holds: the body's hash alone
/// (`PublishingLicence::hash`) leaves out the signature.
fn signed_hash(licence: &PublishingLicence) -> Sha256Digest {
    let len = (licence.body.len() as u64).to_be_bytes();
    crate::crypto::sha256_parts(&[&len, &licence.body, &licence.signature])
}

impl NewContent {
    /// The header of the new file: the publishing licence and owner slot.
    pub fn header(&self, block_size: u32) -> Result<FileHeader, crate::format::FormatError> {
        FileHeader::with_extensions(
            self.licence.clone(),
            &self.key,
            block_size,
            vec![(OWNER_SLOT_EXTENSION, self.owner_slot.clone())],
        )
    }

    /// The new file's first bytes at the default block size, ready for
    /// [`crate::format::ProtectedFile::create_from`], signed by `writer`
    /// (the owner's, from [`Licensing::writer`]), who signs its later
    /// commits too; checked with `caches` if given (see
    /// [`Fresh::continuing`]).
    pub fn fresh(&self, writer: Writer, caches: Option<&Caches>) -> Result<Fresh, AccessError> {
        let signed_here = signed_hash(&self.licence) == self.signed;
        self.header(DEFAULT_BLOCK_SIZE)
            .and_then(|h| match signed_here {
                true => Fresh::signed_here(h, &self.key, Some(writer), caches),
                false => Fresh::continuing(h, &self.key, Some(writer), 0, caches),
            })
            .map_err(|e| AccessError::BadLicence(format!("cannot make the new file's header: {e}")))
    }
}

/// The licence store of one user on one device. Thread-safe.
pub struct Licensing {
    identity: Identity,
    licences: store::LicenceStore,
    owners: owner::OwnerStore,
    source: Option<Box<dyn LicenceSource>>,
    keys: Mutex<LruCache<ContentId, Access>>,
    /// Where this device's certificate is kept (the data folder).
    certificate_file: PathBuf,
    /// This device's writer, remade when its device certificate is renewed.
    writer: Mutex<writer::Current>,
    opens: Option<opens::OpenLog>,
    /// The devices removed from their accounts, as last fetched.
    removed: removed::Removed,
}

impl Licensing {
    /// A store keeping use licences under `cache_dir` and owner licences
    /// under `owner_dir`; `source` is `None` to work strictly offline.
    pub fn new(
        identity: Identity,
        cache_dir: PathBuf,
        owner_dir: PathBuf,
        source: Option<Box<dyn LicenceSource>>,
    ) -> Self {
        let licences = store::LicenceStore::new(cache_dir.join(sanitize(&identity.device_id)));
        let removed = removed::Removed::load(cache_dir.with_file_name("removed-devices"), &identity.server_key);
        Self {
            removed,
            licences,
            certificate_file: owner_dir.with_file_name("device-certificate"),
            writer: Mutex::default(),
            owners: owner::OwnerStore::new(owner_dir),
            identity,
            source,
            keys: Mutex::new(crate::cache::bounded(KEY_CACHE_SIZE)),
            opens: None,
        }
    }

    /// Records opens that cached licences serve under `dir`, to be
    /// reported to the server later ([`report_opens`](Self::report_opens)).
    pub fn with_open_log(mut self, dir: PathBuf) -> Self {
        self.opens = Some(opens::OpenLog::new(dir.join(sanitize(&self.identity.device_id))));
        self
    }

    /// Records an open the server does not see (see [`opens`]).
    fn served_offline(&self, id: &ContentId, outcome: Result<&Access, &AccessError>) {
        if let Some(log) = &self.opens {
            let (rights, reason) = match outcome {
                Ok(a) if a.owner => return,
                Ok(a) => (Some(a.rights), String::new()),
                Err(AccessError::AccessEnded(_)) => (None, "access_expired".to_string()),
                Err(AccessError::Expired { .. }) => (None, "licence_expired".to_string()),
                Err(_) => (None, "refused".to_string()),
            };
            log.record(&self.identity.device_key, id, rights, &reason);
        }
    }

    /// Records that this device saved `generation` of the file with
    /// `header`, to be reported with the offline opens (the owner's log
    /// shows who saved what, and when).
    pub fn record_save(&self, header: &FileHeader, generation: u64) {
        if let Some(log) = &self.opens {
            log.record_save(&self.identity.device_key, &header.content_id(), generation);
        }
    }

    /// How many opens served from cached licences wait to be reported.
    pub fn unreported_opens(&self) -> usize {
        self.opens.as_ref().map_or(0, opens::OpenLog::count)
    }

    /// Reports the recorded opens to the server, a batch at a time, and
    /// forgets those it took; returns how many. Stops at the first batch
    /// the server does not take (they wait for the next time).
    pub fn report_opens(&self) -> Result<usize, AccessError> {
        let (Some(log), Some(source)) = (&self.opens, &self.source) else {
            return Ok(0);
        };
        let mut sent = 0;
        let failed = |e| match e {
            FetchError::Unreachable(r) => AccessError::ServerUnreachable(r),
            FetchError::NotLoggedIn => AccessError::NotLoggedIn,
            other => AccessError::Server(other.to_string()),
        };
        loop {
            let mut batch = log.unreported(&self.identity.device_key, REPORT_BATCH_MAX);
            if batch.opens.is_empty() {
                return Ok(sent);
            }
            let saves = batch.take_saves();
            if !batch.opens.is_empty() {
                source.report_opens(&batch.opens).map_err(failed)?;
                sent += batch.opens.len();
                log.forget(batch);
            }
            if !saves.opens.is_empty() {
                match source.report_opens(&saves.opens) {
                    Ok(()) => sent += saves.opens.len(),
                    // The right to edit went before the report: never taken.
                    Err(FetchError::Denied) => {
                        tracing::warn!(
                            saves = saves.opens.len(),
                            "the server does not take these saves: the edit right was withdrawn"
                        )
                    }
                    Err(e) => return Err(failed(e)),
                }
                log.forget(saves);
            }
        }
    }

    /// The user this store belongs to.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The key readers check writers and licences with.
    pub fn server_key(&self) -> &ServerVerifyingKey {
        &self.identity.server_key
    }

    /// A verifier of writers against [`server_key`](Self::server_key) that
    /// refuses versions signed by removed devices (the list fetched first
    /// when the one held is old) and remembers nothing: for commands that
    /// open a file or two. The mount makes its own, with caches.
    pub fn verifier(&self) -> crate::format::Verifier {
        self.refresh_removed_devices_if_stale();
        crate::format::Verifier::new(self.identity.server_key).with_removed(self.removed_devices().clone())
    }

    fn lru(&self) -> std::sync::MutexGuard<'_, LruCache<ContentId, Access>> {
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The content key and rights for the file whose header is `header`:
    /// from memory, the owner licence, a valid cached licence (no network),
    /// or else the server. An expired licence is renewed when the server
    /// answers and refused (`Expired`) when it does not.
    pub fn key_for(&self, header: &FileHeader) -> Result<Access, AccessError> {
        self.key_for_inner(header, true)
    }

    /// Like [`key_for`](Self::key_for) but never touches the network.
    pub fn key_for_offline(&self, header: &FileHeader) -> Result<Access, AccessError> {
        self.key_for_inner(header, false)
    }

    /// Always asks the server for a fresh licence (renewal, policy changes).
    pub fn renew(&self, header: &FileHeader) -> Result<Access, AccessError> {
        self.lru().pop(&header.content_id());
        self.fetch(header, None)
    }

    fn key_for_inner(&self, header: &FileHeader, online: bool) -> Result<Access, AccessError> {
        let id = header.content_id();
        let t = now();
        let can_ask = online && self.source.is_some();
        // Offline validity 0 means "ask the server at every open" (so that
        // revocation bites at once); the cache only covers a server outage.
        let must_ask = can_ask && header.licence.policy.offline_days == 0;
        // The owner's own key never lapses: from memory it needs no RSA
        // operation (2.4 ms) and no disk read.
        if let Some(a) = self.lru().get(&id).filter(|a| a.owner).cloned() {
            return Ok(a);
        }
        if let Some(key) = self.own_key(header) {
            let a = Access {
                key,
                rights: Rights::owner(),
                valid_until: None,
                owner: true,
                edit_certificate: None,
            };
            self.lru().put(id, a.clone());
            return Ok(a);
        }
        if !must_ask && let Some(a) = self.lru().get(&id).filter(|a| a.usable_at(t)).cloned() {
            self.served_offline(&id, Ok(&a));
            return Ok(a);
        }
        let mut cached = None;
        let mut expired = None;
        if let Some(ul) = self.licences.load(&id)? {
            let body = self.check(&ul, header)?;
            if t < body.valid_until {
                cached = Some((body, ul.edit_certificate));
            } else {
                expired = Some((body.valid_until, ul.access_ends));
            }
        }
        let served = match cached {
            Some((body, edit)) if !must_ask => self.unwrap_into_lru(&body, edit),
            Some((body, edit)) => match self.fetch(header, None) {
                Err(AccessError::ServerUnreachable(_)) => self.unwrap_into_lru(&body, edit),
                r => return r,
            },
            None if can_ask => return self.fetch(header, expired),
            None => match expired {
                Some(lapsed) => Err(self.lapsed(header, lapsed)),
                None => {
                    return Err(AccessError::ServerUnreachable(
                        "working offline and no licence is cached".into(),
                    ));
                }
            },
        };
        self.served_offline(&id, served.as_ref());
        served
    }

    /// The owner's key of a file protected on this device: from its owner
    /// slot, else from an owner licence. Anything unreadable falls back to
    /// the server, which can license the owner too.
    fn own_key(&self, header: &FileHeader) -> Option<ContentKey> {
        let id = header.content_id();
        let device = &self.identity.device_key;
        if let Some(slot) = header.extension(OWNER_SLOT_EXTENSION)
            && self.published_here(&header.licence)
        {
            match device.open_local(&owner_slot_aad(&id), slot) {
                Ok(k) => match <[u8; 32]>::try_from(k.as_slice()) {
                    Ok(bytes) => return Some(ContentKey::from_bytes(bytes)),
                    Err(_) => tracing::warn!(content_id = %id.to_hex(), "owner slot of the wrong length"),
                },
                Err(_) => tracing::warn!(content_id = %id.to_hex(), "owner slot does not open; asking the server"),
            }
        }
        self.owners.load(&id, device).unwrap_or_else(|e| {
            tracing::warn!(content_id = %id.to_hex(), error = %e, "owner licence unreadable; asking the server");
            None
        })
    }

    /// `expired`: the cached licence's end and its `access_ends`, if it lapsed.
    fn fetch(
        &self,
        header: &FileHeader,
        expired: Option<(Timestamp, Option<Timestamp>)>,
    ) -> Result<Access, AccessError> {
        let pl = &header.licence;
        let id = pl.content_id;
        let Some(source) = &self.source else {
            return Err(AccessError::ServerUnreachable("working offline".into()));
        };
        // Shown so that a licence granting `edit` comes with an edit
        // certificate; without one this device still reads.
        let writer = self
            .writer()
            .inspect_err(|e| tracing::debug!(error = %e, "asking for a licence without a device certificate"))
            .ok();
        let dc = writer.as_ref().map(Writer::device_certificate);
        let fetched = match source.fetch(&id, dc) {
            Err(FetchError::NotRegistered) if self.published_here(pl) => {
                tracing::info!(content_id = %id.to_hex(), "content protected here was never registered; registering it now");
                source
                    .register(&header.body.licence)
                    .and_then(|()| source.fetch(&id, dc))
            }
            r => r,
        };
        match fetched {
            Ok(ul) => {
                let body = self.check(&ul, header)?;
                self.licences.save(&id, &ul)?;
                // The server answers: removals since the list was kept
                // count for the file about to be read.
                self.refresh_removed_devices_soon();
                // The server answers: the opens it has not seen go now.
                if let Err(e) = self.report_opens() {
                    tracing::debug!(error = %e, "offline opens not reported yet");
                }
                if body.rights.is_empty() {
                    return Err(AccessError::NoRights {
                        owner: pl.policy.owner.clone(),
                    });
                }
                self.unwrap_into_lru(&body, ul.edit_certificate)
            }
            Err(FetchError::Unreachable(reason)) => match expired {
                Some(lapsed) => {
                    let e = self.lapsed(header, lapsed);
                    self.served_offline(&id, Err(&e));
                    Err(e)
                }
                None => Err(AccessError::ServerUnreachable(reason)),
            },
            Err(FetchError::Denied) => {
                self.licences.remove(&id)?;
                Err(AccessError::NoRights {
                    owner: pl.policy.owner.clone(),
                })
            }
            Err(FetchError::AccessEnded(m)) => {
                self.licences.remove(&id)?;
                Err(AccessError::AccessEnded(m))
            }
            Err(FetchError::Revoked) => {
                self.licences.remove(&id)?;
                Err(AccessError::Revoked {
                    owner: pl.policy.owner.clone(),
                })
            }
            Err(FetchError::NotRegistered) => Err(AccessError::NotRegistered {
                owner: pl.policy.owner.clone(),
            }),
            Err(FetchError::NotLoggedIn) => Err(AccessError::NotLoggedIn),
            Err(FetchError::Other(m)) => Err(AccessError::Server(m)),
        }
    }

    /// Why a cached licence that lapsed at `until` cannot be used offline:
    /// when the licence's `access_ends` (or, in files with grants in the
    /// clear, the file's own policy) shows this user's grant or the content
    /// ended by then, renewing would not help, so the message says when it
    /// expired instead of asking to connect.
    fn lapsed(&self, header: &FileHeader, (until, access_ends): (Timestamp, Option<Timestamp>)) -> AccessError {
        let policy = &header.licence.policy;
        let at = until.max(now());
        let ended = access_ends
            .filter(|e| *e <= at)
            .or_else(|| policy.access_ended(&self.identity.email, at));
        match ended {
            Some(ended) if ended <= until => AccessError::AccessEnded(format!(
                "your access to this file expired on {}; ask its owner {} to renew it",
                format_time(ended),
                policy.owner
            )),
            _ => AccessError::Expired { until, offline: true },
        }
    }

    /// Whether this user protected `pl` on this device (so its registration
    /// may be sent from the file itself).
    fn published_here(&self, pl: &PublishingLicenceBody) -> bool {
        pl.policy.owner == self.identity.email && pl.owner_device_key == self.identity.device_key.public().to_der()
    }

    /// Verifies the server signature and that the licence is for this
    /// content, user and device, and for the file `header` describes: the
    /// owner it names is the one the header claims and the registered
    /// publishing licence is the header's. No private-key operation happens
    /// before.
    fn check(&self, ul: &UseLicence, header: &FileHeader) -> Result<crate::policy::UseLicenceBody, AccessError> {
        let body = ul
            .verify(&self.identity.server_key)
            .map_err(|e| AccessError::BadLicence(e.to_string()))?;
        if body.content_id != header.content_id()
            || body.user != self.identity.email
            || body.device_id != self.identity.device_id
        {
            return Err(AccessError::BadLicence(
                "the licence was issued for another file, user or device".into(),
            ));
        }
        let claimed = &header.licence.policy.owner;
        if !body.is_for(&header.body.licence, claimed) {
            return Err(AccessError::NotTheOwners {
                claimed: claimed.clone(),
                registered: body.owner,
            });
        }
        Ok(body)
    }

    fn unwrap_into_lru(
        &self,
        body: &crate::policy::UseLicenceBody,
        edit_certificate: Option<Vec<u8>>,
    ) -> Result<Access, AccessError> {
        let key = self
            .identity
            .device_key
            .unwrap_key(&body.wrapped_key)
            .map_err(|_| AccessError::BadLicence("the licence's key is not for this device".into()))?;
        let a = Access {
            key,
            rights: body.rights,
            valid_until: Some(body.valid_until),
            owner: false,
            edit_certificate,
        };
        self.lru().put(body.content_id, a.clone());
        Ok(a)
    }

    /// Makes a new content key and signed publishing licence for `policy`,
    /// wrapped to the server key `server_kem` (no network needed), and the
    /// owner slot with which this device opens it at once, offline too.
    /// Nothing is written: the key stays in memory until the header holds it.
    pub fn new_content(
        &self,
        policy: Policy,
        server_url: &str,
        server_kem: &ServerKemPublic,
    ) -> Result<NewContent, AccessError> {
        let new = self.make_content(policy, server_url, server_kem)?;
        self.adopt(&new);
        Ok(new)
    }

    /// [`new_content`](Self::new_content) without keeping the key: content
    /// made ahead of need is remembered only once it is handed out.
    fn make_content(
        &self,
        policy: Policy,
        server_url: &str,
        server_kem: &dyn WrapToServer,
    ) -> Result<NewContent, AccessError> {
        policy.validate().map_err(|e| AccessError::BadLicence(e.to_string()))?;
        let content_id = ContentId::generate();
        let key = ContentKey::generate();
        let device_key = self.identity.device_key.public().to_der();
        let body = PublishingLicenceBody {
            version: PublishingLicenceBody::CURRENT_VERSION,
            content_id,
            server_url: server_url.to_string(),
            server_key: server_kem.server().0,
            owner_device_key: device_key.clone(),
            wrapped_key: server_kem
                .wrap(
                    &key,
                    &PublishingLicenceBody::wrap_context(&content_id, &policy.owner, &device_key),
                )
                .0
                .to_vec(),
            policy,
            created_at: now(),
        };
        let licence = PublishingLicence::sign_wrapping(&body, &self.identity.device_key, server_kem)
            .map_err(|e| AccessError::BadLicence(e.to_string()))?;
        let owner_slot = self
            .identity
            .device_key
            .seal_local(&owner_slot_aad(&content_id), key.as_bytes());
        Ok(NewContent {
            content_id,
            key,
            signed: signed_hash(&licence),
            licence,
            owner_slot,
        })
    }

    /// Keeps the key of `new` in memory, as the owner's.
    fn adopt(&self, new: &NewContent) {
        self.lru().put(
            new.content_id,
            Access {
                key: new.key.clone(),
                rights: Rights::owner(),
                valid_until: None,
                owner: true,
                edit_certificate: None,
            },
        );
    }

    /// Forgets the key of content that was never kept (a protect that
    /// failed before its file was in place).
    pub fn discard_content(&self, id: &ContentId) -> Result<(), AccessError> {
        self.lru().pop(id);
        Ok(())
    }

    /// What this device holds for the file with `header`: like
    /// [`cached`](Self::cached), and the owner's own files are recognised
    /// by their owner slot (no RSA operation: one AES-GCM open).
    pub fn cached_for(&self, header: &FileHeader) -> Option<CachedLicence> {
        let id = header.content_id();
        if self.own_key(header).is_some() {
            return Some(CachedLicence::owner(id));
        }
        self.cached(&id)
    }

    /// What is cached for `id`, without the network or any private-key use.
    pub fn cached(&self, id: &ContentId) -> Option<CachedLicence> {
        if self.lru().peek(id).is_some_and(|a| a.owner) || self.owners.contains(id) {
            return Some(CachedLicence::owner(*id));
        }
        let ul = self.licences.load(id).ok().flatten()?;
        let body = ul.verify(&self.identity.server_key).ok()?;
        Some(CachedLicence::from_body(&body))
    }

    /// Every cached use licence and owner licence, for `rights status`.
    pub fn list_cached(&self) -> Vec<CachedLicence> {
        let mut out: Vec<_> = self.owners.ids().into_iter().map(CachedLicence::owner).collect();
        for (_, ul) in self.licences.all() {
            if let Ok(b) = ul.verify(&self.identity.server_key) {
                out.push(CachedLicence::from_body(&b));
            }
        }
        out
    }

    /// Forgets every key in memory and every cached use licence (logout).
    /// Owner licences stay with the data folder; they are useless without
    /// the device key, which logout removes.
    pub fn forget_all(&self) -> Result<(), AccessError> {
        self.lru().clear();
        Ok(self.licences.clear()?)
    }
}

/// Worker threads share one store: keep it `Send + Sync`.
const _: fn() = || {
    fn assert_shareable<T: Send + Sync>() {}
    assert_shareable::<Licensing>();
};

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
        .collect()
}

#[cfg(test)]
mod tests;
