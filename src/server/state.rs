//! Shared state of all handlers and the small helpers they share.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use super::audit_queue::AuditQueue;
use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::keys::ServerKeys;
use super::mail::Mailer;
use super::metrics::Metrics;
use crate::crypto::{CertCache, ContentKey, DevicePublicKey};
use crate::store::Store;

/// Number of unwrapped content keys kept in memory.
const CEK_CACHE: usize = 10_000;

/// Access tokens the licence route keeps (by hash, with their caller and end).
const TOKEN_CACHE: usize = 10_000;

/// Content wrapped to a device's key kept when the operator sets no number.
pub const DEFAULT_WRAP_CACHE: usize = 10_000;

/// Content keys wrapped to devices, by content id and device id.
pub type WrapCache = crate::cache::Shared<([u8; 16], String), Vec<u8>>;

/// A registered content as the licence route reads it: the stored record
/// and what is parsed from it once.
pub struct HotContent {
    /// The record as stored (its policy and revocation are what the
    /// audit row's transaction checks).
    pub rec: crate::store::ContentRecord,
    /// The parsed policy.
    pub policy: crate::policy::Policy,
    /// The owner.
    pub owner: crate::policy::Email,
    /// Hash of the registered publishing licence.
    pub licence_hash: [u8; 32],
}

/// Everything a request may need; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Persistence.
    pub store: Arc<dyn Store>,
    /// Server secrets.
    pub keys: Arc<ServerKeys>,
    /// Outgoing mail.
    pub mailer: Arc<Mailer>,
    /// Unwrapped content keys, so that hot files cost no X25519 per licence.
    pub ceks: Arc<Mutex<lru::LruCache<[u8; 16], ContentKey>>>,
    /// Parsed device public keys. Safe to cache: a device's key never
    /// changes, and removing a device deletes its tokens, so it cannot ask.
    pub device_keys: Arc<Mutex<lru::LruCache<String, DevicePublicKey>>>,
    /// Device certificates inside publishing licences already checked
    /// (bounded; keyed by the device key, certified key and certificate
    /// bytes): a device registering many files sends the same certificate
    /// with each, and its RSA check need not be repeated. Each licence's
    /// own signature is still checked every time.
    pub certs: Arc<CertCache>,
    /// Callers of access tokens by token hash, for the licence route only
    /// (each licence's audit transaction confirms the token; see
    /// `auth::licence_caller`).
    pub tokens: Arc<crate::cache::Shared<[u8; 32], (Caller, i64)>>,
    /// Registered contents by id, for the licence route only: a licence
    /// decided on a cached record is issued only if its audit transaction
    /// finds the same policy and revocation in the database, so a change
    /// made through any replica takes effect at once.
    pub contents: Arc<crate::cache::Shared<[u8; 16], Arc<HotContent>>>,
    /// Content keys already wrapped to a device's key, by content and
    /// device id (a device id always names one key): the same wrap serves
    /// every later licence of that device for that content. `None` wraps
    /// afresh for each licence.
    pub wraps: Option<Arc<WrapCache>>,
    /// Group commit of licence audit rows.
    pub audit: Arc<AuditQueue>,
    /// When this process last recorded each device's use, to write `last_seen` once a minute at most.
    pub touched: Arc<Mutex<lru::LruCache<String, i64>>>,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// URL clients reach the server at.
    pub public_url: Arc<str>,
    /// Seconds of the first wait once an address's free code guesses or
    /// code mails are used up; each later one doubles it.
    pub signin_backoff: i64,
    /// Auth requests per client IP per minute.
    pub auth_per_minute: i64,
    /// Protected files kept for the links in sharing mails.
    pub sent: Arc<super::sent::SentFiles>,
    /// Cap on the offline validity of issued licences, in days.
    pub max_offline_days: u32,
    /// Seconds a device certificate stays valid.
    pub device_certificate_lifetime: i64,
    /// Limits on the mail accounts make the server send to others.
    pub mail_limits: super::mail_limits::MailLimits,
    /// The bearer token `/metrics` asks for on the main address; none
    /// means the main address does not serve it.
    pub metrics_token: Option<Arc<str>>,
}

/// Offline validity cap when the operator sets none.
pub const DEFAULT_MAX_OFFLINE_DAYS: u32 = 30;

/// Device certificate lifetime when the operator sets none: 7 days, long
/// enough for a device that works offline over a weekend, short enough
/// that a removed device soon signs nothing readers accept.
pub const DEFAULT_DEVICE_CERTIFICATE_LIFETIME: i64 = 7 * 86_400;

impl AppState {
    /// Builds the state.
    pub fn new(
        store: Arc<dyn Store>,
        keys: ServerKeys,
        mailer: Mailer,
        public_url: String,
        sent: super::sent::SentFiles,
    ) -> Self {
        Self {
            tokens: Arc::new(crate::cache::Shared::new(TOKEN_CACHE)),
            contents: Arc::new(crate::cache::Shared::new(CEK_CACHE)),
            wraps: Some(Arc::new(crate::cache::Shared::new(DEFAULT_WRAP_CACHE))),
            // One writer on either backend: on PostgreSQL a second one
            // (a batch committed while the next is gathered) gave smaller
            // batches, more commits and fewer licences per second.
            audit: Arc::new(AuditQueue::new(store.clone(), 1)),
            store,
            keys: Arc::new(keys),
            mailer: Arc::new(mailer),
            ceks: Arc::new(Mutex::new(crate::cache::bounded(CEK_CACHE))),
            device_keys: Arc::new(Mutex::new(crate::cache::bounded(CEK_CACHE))),
            certs: Arc::new(CertCache::default()),
            touched: Arc::new(Mutex::new(crate::cache::bounded(CEK_CACHE))),
            metrics: Arc::new(Metrics::default()),
            public_url: public_url.into(),
            signin_backoff: 30,
            auth_per_minute: 30,
            sent: Arc::new(sent),
            max_offline_days: DEFAULT_MAX_OFFLINE_DAYS,
            device_certificate_lifetime: DEFAULT_DEVICE_CERTIFICATE_LIFETIME,
            mail_limits: Default::default(),
            metrics_token: None,
        }
    }

    /// Records the use of a device, at most once a minute per device and process.
    pub async fn touch_device(&self, id: &str) -> ApiResult<()> {
        let now = crate::policy::now();
        {
            let mut t = self.touched.lock().unwrap_or_else(|p| p.into_inner());
            if t.get(id).is_some_and(|&last| now - last < 60) {
                return Ok(());
            }
            t.put(id.to_string(), now);
        }
        self.store.touch_device(id, now).await?;
        Ok(())
    }

    /// Counts one auth request from `addr`; 429 over the per-minute limit.
    pub async fn limit_ip(&self, addr: &SocketAddr) -> ApiResult<()> {
        let now = crate::policy::now();
        let n = self.store.hit(&format!("ip:{}", addr.ip()), now - now % 60).await?;
        if n > self.auth_per_minute {
            return Err(ApiError::too_many(
                60 - now % 60,
                format!(
                    "too many sign-in requests from your network ({} per minute allowed); retry in a minute",
                    self.auth_per_minute
                ),
            ));
        }
        Ok(())
    }
}
