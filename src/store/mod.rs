//! Server persistence behind one trait, so that a single embedded SQLite file
//! and a PostgreSQL cluster shared by several replicas serve the same code.
//! Every value the server must agree on across replicas (codes, rate-limit
//! counters, tokens, the registry and the audit log) lives here.

mod grants;
mod pg_audit;
mod records;
mod sql;
mod sqlite_audit;

pub use records::{AuditRecord, CodeRecord, ContentRecord, DeviceRecord, IssueCheck, PageKey, TokenRecord};
pub use sql::{PgStore, SqliteStore};

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A boxed future, so that the trait stays usable as `dyn Store`.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A storage failure; the server answers 500 or 503 and logs it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or could not be reached.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// A stored value no longer decodes (manual edit or a newer schema).
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
}

/// Outcome of inserting content that may already be registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InsertOutcome {
    /// A new row was written.
    Created,
    /// A row with that id already exists (the caller compares it).
    Exists(Box<ContentRecord>),
}

/// How long counters of [`Store::take`] are kept: longer than any window
/// they may count in.
pub const TAKE_HORIZON: i64 = 31 * 86_400;

/// Everything the server persists. Implementations must be safe for many
/// replicas at once: counters are incremented in the database, not in memory.
pub trait Store: Send + Sync {
    /// Counts one event for `key` in the window starting at `window` and
    /// returns the count including this one.
    fn hit(&self, key: &str, window: i64) -> StoreFuture<'_, i64>;
    /// Adds `n` to the counter `key` in the window starting at `window`
    /// only if the sum stays at most `limit`, in one statement, so that
    /// concurrent callers never pass a limit together. Returns whether it
    /// did. A negative `n` gives back what was taken.
    fn take(&self, key: &str, window: i64, n: i64, limit: i64) -> StoreFuture<'_, bool>;
    /// The sign-in state of an address, if any.
    fn get_code(&self, email: &str) -> StoreFuture<'_, Option<CodeRecord>>;
    /// Writes the sign-in state of an address if it is still `replaces`
    /// (same seed and mail time; `None`: no row yet). Returns false when
    /// another request changed it first, so two replicas never both mail.
    fn put_code(&self, c: &CodeRecord, replaces: Option<&CodeRecord>) -> StoreFuture<'_, bool>;
    /// Counts one guess and returns the state after it, in one statement,
    /// or `None` when no guess may be checked now (no live code, or the
    /// backoff runs). From the `free`-th guess on, each one moves `next_try`
    /// ahead by `delay` and doubles `delay` up to `max_delay`; counting and
    /// deciding in one `UPDATE ... RETURNING` means concurrent guesses can
    /// never be checked more often than that allows.
    fn claim_attempt(&self, email: &str, now: i64, free: i64, max_delay: i64) -> StoreFuture<'_, Option<CodeRecord>>;
    /// Deletes the sign-in state if its code is still `seed`. Returns whether
    /// it was, so that two replicas cannot both accept the same code.
    fn delete_code(&self, email: &str, seed: &[u8]) -> StoreFuture<'_, bool>;
    /// Creates the account if it does not exist; returns true when created.
    fn ensure_user(&self, email: &str, now: i64) -> StoreFuture<'_, bool>;
    /// Whether an account exists.
    fn user_exists(&self, email: &str) -> StoreFuture<'_, bool>;
    /// Adds a device.
    fn add_device(&self, d: &DeviceRecord) -> StoreFuture<'_, ()>;
    /// One device by id.
    fn get_device(&self, id: &str) -> StoreFuture<'_, Option<DeviceRecord>>;
    /// A user's devices, oldest first.
    fn list_devices(&self, email: &str) -> StoreFuture<'_, Vec<DeviceRecord>>;
    /// Deletes a user's device and its tokens; returns whether it existed.
    /// With `removed_at`, a device that existed is also recorded as
    /// removed then (readers refuse what it signs; see
    /// [`Store::list_removed_devices`]); without, it is being replaced by
    /// the same machine signing in again.
    fn delete_device(&self, email: &str, id: &str, removed_at: Option<i64>) -> StoreFuture<'_, bool>;
    /// Up to `limit` removed devices whose id sorts after `after`, by id:
    /// `(id, removed_at)`. Ids only, never an account.
    fn list_removed_devices(&self, after: &str, limit: i64) -> StoreFuture<'_, Vec<(String, i64)>>;
    /// Records that the device was used now.
    fn touch_device(&self, id: &str, now: i64) -> StoreFuture<'_, ()>;
    /// Stores a token by its hash.
    fn put_token(&self, t: &TokenRecord) -> StoreFuture<'_, ()>;
    /// A token by its hash and kind.
    fn get_token(&self, hash: &[u8], kind: &str) -> StoreFuture<'_, Option<TokenRecord>>;
    /// Marks a live refresh token spent and returns it; `None` when the
    /// hash is not a live refresh token. Only one of concurrent callers wins.
    fn spend_refresh(&self, hash: &[u8], now: i64) -> StoreFuture<'_, Option<TokenRecord>>;
    /// Ends the session a token (of any kind, spent ones included) belongs
    /// to: deletes every token of its device. Returns whether it was known.
    fn revoke_session(&self, hash: &[u8]) -> StoreFuture<'_, bool>;
    /// Records that `recipient` was invited to `content_id`; false when it
    /// already was (each person is mailed once per content).
    fn add_invitation(&self, content_id: &str, recipient: &str, now: i64) -> StoreFuture<'_, bool>;
    /// Forgets an invitation that could not be mailed, so a later share may mail it.
    fn remove_invitation(&self, content_id: &str, recipient: &str) -> StoreFuture<'_, ()>;
    /// Registers content unless the id is taken.
    fn insert_content(&self, c: &ContentRecord) -> StoreFuture<'_, InsertOutcome>;
    /// Registers several contents in one transaction (one commit for a
    /// whole batch of new files); the outcomes in the same order.
    fn insert_contents(&self, cs: Vec<ContentRecord>) -> StoreFuture<'_, Vec<InsertOutcome>>;
    /// One registered content.
    fn get_content(&self, id: &str) -> StoreFuture<'_, Option<ContentRecord>>;
    /// Up to `limit` contents owned by `email`, newest first (by
    /// registration time, then id, both descending), starting after
    /// `after` (none: from the newest).
    fn list_owned(&self, email: &str, after: Option<&PageKey>, limit: i64) -> StoreFuture<'_, Vec<ContentRecord>>;
    /// Up to `limit` live contents of others shared with `email` (by its
    /// address or its domain's `*@domain`) by a grant still in force at
    /// `now`, in the order and from the position [`Store::list_owned`]
    /// uses. Reads only the caller's rows of the grants table.
    fn list_shared(
        &self,
        email: &str,
        now: i64,
        after: Option<&PageKey>,
        limit: i64,
    ) -> StoreFuture<'_, Vec<ContentRecord>>;
    /// Replaces the policy if it still equals `expected` (optimistic update),
    /// and the content's grants rows with it; returns false when another
    /// request changed it first.
    fn update_policy(&self, id: &str, expected: &str, policy: &str) -> StoreFuture<'_, bool>;
    /// Marks content revoked and drops its grants rows (nobody but the
    /// owner lists it any more).
    fn revoke(&self, id: &str) -> StoreFuture<'_, ()>;
    /// Appends to the audit log.
    fn add_audit(&self, a: &AuditRecord) -> StoreFuture<'_, ()>;
    /// Appends several rows to the audit log in one transaction (one
    /// commit for many licences). A row with a check is written only if
    /// the check holds inside that transaction; the answer says, row by
    /// row, whether it was written.
    fn add_audits(&self, rows: Vec<(AuditRecord, Option<IssueCheck>)>) -> StoreFuture<'_, Vec<bool>>;
    /// The audit log of one content, oldest first.
    fn list_audit(&self, content_id: &str) -> StoreFuture<'_, Vec<AuditRecord>>;
}

/// Opens the store named by `url`: `postgres://...` or a path / `sqlite://` URL.
/// Creates the schema when missing and runs the data migrations not yet
/// done (filling the grants table of a database made before it).
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PgStore::connect(url).await?))
    } else {
        let path = url.strip_prefix("sqlite://").unwrap_or(url);
        Ok(Arc::new(SqliteStore::open(std::path::Path::new(path)).await?))
    }
}
