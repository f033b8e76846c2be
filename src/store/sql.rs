//! The SQL implementations of [`Store`]. Both backends run the same
//! statements (`$n` placeholders work in SQLite and PostgreSQL); only the
//! schema and the append of a batch of audit rows (`sqlite_audit.rs`,
//! `pg_audit.rs`) differ, so one macro writes both implementations.

use std::path::Path;
use std::str::FromStr;

use sqlx::Row;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use super::grants::{self, GrantRow};
use super::{
    AuditRecord, CodeRecord, ContentRecord, DeviceRecord, InsertOutcome, IssueCheck, PageKey, Store, StoreError,
    StoreFuture, TokenRecord,
};

/// The embedded default: one SQLite file in the data directory.
pub struct SqliteStore {
    pool: SqlitePool,
}

/// PostgreSQL, for several replicas sharing one database.
pub struct PgStore {
    pool: PgPool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and its schema.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // With WAL, NORMAL keeps the database consistent on power loss and
            // avoids one fsync per licence; the last transactions may be lost.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(std::time::Duration::from_secs(10));
        // An embedded database has no connection to lose, so no ping
        // before each use (it was a round trip to the connection's thread
        // per query).
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .test_before_acquire(false)
            .connect_with(opts)
            .await?;
        sqlx::raw_sql(include_str!("schema_sqlite.sql")).execute(&pool).await?;
        let mut tx = pool.begin().await?;
        Self::migrate(&mut tx).await?;
        tx.commit().await?;
        Ok(Self { pool })
    }
}

impl PgStore {
    /// Connects and creates the schema if missing (safe to run from several
    /// replicas at once: every statement is `IF NOT EXISTS`, serialised by a lock).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new().max_connections(16).connect(url).await?;
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(7443)")
            .execute(&mut *tx)
            .await?;
        sqlx::raw_sql(include_str!("schema_postgres.sql"))
            .execute(&mut *tx)
            .await?;
        Self::migrate(&mut tx).await?;
        tx.commit().await?;
        Ok(Self { pool })
    }
}

/// Registers content whose id is not taken yet (both backends): the rows
/// follow, then `ON CONFLICT (id) DO NOTHING RETURNING id`.
const INSERT_CONTENTS: &str = "INSERT INTO content (id, owner, pl, policy, revoked, created_at, registered_at) ";

/// Rows per insert statement: six parameters each, well inside both
/// backends' limits (SQLite 32,766 parameters, PostgreSQL 65,535).
const INSERT_ROWS_MAX: usize = 500;

/// Appends one audit row.
const AUDIT_ROW: &str = "INSERT INTO audit (content_id, time, email, device_id, rights, result, reason, client_addr) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

/// Grants rows per insert statement: five parameters each.
const GRANT_ROWS_MAX: usize = 1000;

/// The grants rows of one content, as the grants table keys them.
struct Reach {
    content_id: String,
    owner: String,
    registered_at: i64,
    rows: Vec<GrantRow>,
}

impl Reach {
    fn of(c: &ContentRecord, rows: Vec<GrantRow>) -> Self {
        Self {
            content_id: c.id.clone(),
            owner: c.owner.clone(),
            registered_at: c.registered_at,
            rows,
        }
    }
}

/// Where a listing starts: after `after`, or (none) from the newest.
fn start_of(after: Option<&PageKey>) -> (i64, String) {
    after.map_or((i64::MAX, String::new()), |k| (k.registered_at, k.id.clone()))
}

/// Owned content after a key, newest first (`$2`, `$3`: the key).
const LIST_OWNED: &str = "SELECT * FROM content WHERE owner = $1 AND registered_at <= $2 \
     AND (registered_at < $2 OR id < $3) ORDER BY registered_at DESC, id DESC LIMIT $4";

/// The first `$7` rows after the key (`$5`, `$6`) of one principal that
/// give rights at `$4` on content not owned by `$3`.
macro_rules! grants_page {
    ($principal:literal) => {
        concat!(
            "SELECT content_id, registered_at FROM grants WHERE principal = ",
            $principal,
            " AND owner <> $3 AND ends_at > $4 AND registered_at <= $5 AND (registered_at < $5 OR content_id < $6) \
             ORDER BY registered_at DESC, content_id DESC LIMIT $7"
        )
    };
}

/// Content shared with an address (`$1`) or its domain (`$2`): each
/// principal's page read by the grants key, merged without repeats (a
/// content may name both).
const LIST_SHARED: &str = concat!(
    "SELECT c.* FROM (SELECT content_id, registered_at FROM (",
    grants_page!("$1"),
    ") AS by_address UNION SELECT content_id, registered_at FROM (",
    grants_page!("$2"),
    ") AS by_domain) AS g JOIN content c ON c.id = g.content_id WHERE c.revoked = 0 \
     ORDER BY g.registered_at DESC, g.content_id DESC LIMIT $7"
);

/// Writes the grants rows of contents (whose old rows are gone).
macro_rules! insert_grants {
    ($tx:expr, $reach:expr) => {{
        let reach = &$reach;
        let flat: Vec<(&Reach, &GrantRow)> = reach.iter().flat_map(|r| r.rows.iter().map(move |g| (r, g))).collect();
        for chunk in flat.chunks(GRANT_ROWS_MAX) {
            let mut q =
                sqlx::QueryBuilder::new("INSERT INTO grants (principal, registered_at, content_id, owner, ends_at) ");
            q.push_values(chunk, |mut b, (r, g)| {
                b.push_bind(&g.principal)
                    .push_bind(r.registered_at)
                    .push_bind(&r.content_id)
                    .push_bind(&r.owner)
                    .push_bind(g.until);
            });
            q.build().persistent(false).execute(&mut *$tx).await?;
        }
    }};
}

macro_rules! content_from_row {
    ($r:expr) => {{
        let r = $r;
        ContentRecord {
            id: r.try_get("id")?,
            owner: r.try_get("owner")?,
            pl: r.try_get("pl")?,
            policy: r.try_get("policy")?,
            revoked: r.try_get::<i64, _>("revoked")? != 0,
            created_at: r.try_get("created_at")?,
            registered_at: r.try_get("registered_at")?,
        }
    }};
}

/// Device rows with whether each is reader-only (see `DeviceRecord::reader`).
macro_rules! devices_select {
    () => {
        "SELECT d.*, (r.id IS NOT NULL) AS reader FROM devices d LEFT JOIN reader_devices r ON r.id = d.id"
    };
}
const DEVICES_SELECT_BY_ID: &str = concat!(devices_select!(), " WHERE d.id = $1");
const DEVICES_SELECT_BY_EMAIL: &str = concat!(devices_select!(), " WHERE d.email = $1 ORDER BY d.created_at, d.id");

macro_rules! device_from_row {
    ($r:expr) => {{
        let r = $r;
        DeviceRecord {
            id: r.try_get("id")?,
            email: r.try_get("email")?,
            name: r.try_get("name")?,
            public_key: r.try_get("public_key")?,
            created_at: r.try_get("created_at")?,
            last_seen: r.try_get("last_seen")?,
            reader: r.try_get("reader")?,
        }
    }};
}

macro_rules! code_from_row {
    ($r:expr) => {{
        let r = $r;
        CodeRecord {
            email: r.try_get("email")?,
            seed: r.try_get("seed")?,
            expires_at: r.try_get("expires_at")?,
            attempts: r.try_get("attempts")?,
            next_try: r.try_get("next_try")?,
            delay: r.try_get("delay")?,
            sends: r.try_get("sends")?,
            next_send: r.try_get("next_send")?,
        }
    }};
}

macro_rules! token_from_row {
    ($r:expr) => {{
        let r = $r;
        TokenRecord {
            hash: r.try_get("hash")?,
            kind: r.try_get("kind")?,
            email: r.try_get("email")?,
            device_id: r.try_get("device_id")?,
            expires_at: r.try_get("expires_at")?,
        }
    }};
}

/// The `LIKE` pattern of a counter's family: its key up to the first `:`.
fn family(key: &str) -> String {
    let head = key.split_once(':').map_or(key, |(h, _)| h);
    format!("{head}:%")
}

macro_rules! sql_store {
    ($t:ty, $db:ty, $append_audits:path) => {
        impl $t {
            /// Fills the grants table from every live content's policy,
            /// once per database: one made before the table existed lists
            /// what was shared before as well. A policy that no longer
            /// decodes is skipped (and named in the log), so the server
            /// still starts.
            async fn migrate(tx: &mut sqlx::Transaction<'_, $db>) -> Result<(), StoreError> {
                let done = sqlx::query("SELECT name FROM migrations WHERE name = 'grants'")
                    .fetch_optional(&mut **tx)
                    .await?;
                if done.is_some() {
                    return Ok(());
                }
                sqlx::query("DELETE FROM grants").execute(&mut **tx).await?;
                let (mut after, mut filled) = (String::new(), 0usize);
                loop {
                    let rows = sqlx::query(
                        "SELECT * FROM content WHERE revoked = 0 AND id > $1 ORDER BY id LIMIT 1000",
                    )
                    .bind(&after)
                    .fetch_all(&mut **tx)
                    .await?;
                    let Some(last) = rows.last() else { break };
                    after = last.try_get("id")?;
                    let mut reach = Vec::with_capacity(rows.len());
                    for r in rows {
                        let c = content_from_row!(r);
                        match grants::rows_of(&c.policy) {
                            Ok(g) => reach.push(Reach::of(&c, g)),
                            Err(e) => tracing::warn!(content = %c.id, error = %e, "not listed as shared"),
                        }
                    }
                    filled += reach.len();
                    insert_grants!(*tx, reach);
                }
                sqlx::query("INSERT INTO migrations (name) VALUES ('grants')")
                    .execute(&mut **tx)
                    .await?;
                if filled > 0 {
                    tracing::info!(contents = filled, "grants table filled from the stored policies");
                }
                Ok(())
            }
        }

        impl Store for $t {
            fn hit(&self, key: &str, window: i64) -> StoreFuture<'_, i64> {
                let key = key.to_string();
                Box::pin(async move {
                    let r = sqlx::query(
                        "INSERT INTO rate (key, win, n) VALUES ($1, $2, 1) \
                         ON CONFLICT (key, win) DO UPDATE SET n = rate.n + 1 RETURNING n",
                    )
                    .bind(&key)
                    .bind(window)
                    .fetch_one(&self.pool)
                    .await?;
                    // Old windows are useless; keep the table small.
                    // Only this key's family: others count in longer windows.
                    sqlx::query("DELETE FROM rate WHERE win < $1 AND key LIKE $2")
                        .bind(window - 7200)
                        .bind(family(&key))
                        .execute(&self.pool)
                        .await?;
                    Ok(r.try_get("n")?)
                })
            }

            fn take(&self, key: &str, window: i64, n: i64, limit: i64) -> StoreFuture<'_, bool> {
                let key = key.to_string();
                Box::pin(async move {
                    if n > limit {
                        return Ok(false);
                    }
                    let r = sqlx::query(
                        "INSERT INTO rate (key, win, n) VALUES ($1, $2, $3) \
                         ON CONFLICT (key, win) DO UPDATE SET n = rate.n + $3 WHERE rate.n + $3 <= $4 RETURNING n",
                    )
                    .bind(&key)
                    .bind(window)
                    .bind(n)
                    .bind(limit)
                    .fetch_optional(&self.pool)
                    .await?;
                    sqlx::query("DELETE FROM rate WHERE win < $1 AND key LIKE $2")
                        .bind(window - super::TAKE_HORIZON)
                        .bind(family(&key))
                        .execute(&self.pool)
                        .await?;
                    Ok(r.is_some())
                })
            }

            fn get_code(&self, email: &str) -> StoreFuture<'_, Option<CodeRecord>> {
                let email = email.to_string();
                Box::pin(async move {
                    let r = sqlx::query("SELECT * FROM signin_codes WHERE email = $1")
                        .bind(&email)
                        .fetch_optional(&self.pool)
                        .await?;
                    Ok(match r {
                        Some(r) => Some(code_from_row!(r)),
                        None => None,
                    })
                })
            }

            fn put_code(&self, c: &CodeRecord, replaces: Option<&CodeRecord>) -> StoreFuture<'_, bool> {
                let c = c.clone();
                let old = replaces.map(|o| (o.seed.clone(), o.next_send));
                Box::pin(async move {
                    let q = match &old {
                        None => sqlx::query(
                            "INSERT INTO signin_codes \
                             (email, seed, expires_at, attempts, next_try, delay, sends, next_send) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (email) DO NOTHING",
                        ),
                        Some(_) => sqlx::query(
                            "UPDATE signin_codes SET seed = $2, expires_at = $3, attempts = $4, next_try = $5, \
                             delay = $6, sends = $7, next_send = $8 \
                             WHERE email = $1 AND seed = $9 AND next_send = $10",
                        ),
                    };
                    let mut q = q
                        .bind(&c.email)
                        .bind(&c.seed)
                        .bind(c.expires_at)
                        .bind(c.attempts)
                        .bind(c.next_try)
                        .bind(c.delay)
                        .bind(c.sends)
                        .bind(c.next_send);
                    if let Some((seed, next_send)) = &old {
                        q = q.bind(seed).bind(*next_send);
                    }
                    Ok(q.execute(&self.pool).await?.rows_affected() > 0)
                })
            }

            fn claim_attempt(
                &self,
                email: &str,
                now: i64,
                free: i64,
                max_delay: i64,
            ) -> StoreFuture<'_, Option<CodeRecord>> {
                let email = email.to_string();
                Box::pin(async move {
                    // Every SET expression reads the row as it was before
                    // this statement, in both databases.
                    let r = sqlx::query(
                        "UPDATE signin_codes SET attempts = attempts + 1, \
                         next_try = CASE WHEN attempts + 1 >= $3 THEN $2 + delay ELSE next_try END, \
                         delay = CASE WHEN attempts + 1 < $3 THEN delay \
                                      WHEN delay * 2 > $4 THEN $4 ELSE delay * 2 END \
                         WHERE email = $1 AND expires_at > $2 AND next_try <= $2 RETURNING *",
                    )
                    .bind(&email)
                    .bind(now)
                    .bind(free)
                    .bind(max_delay)
                    .fetch_optional(&self.pool)
                    .await?;
                    Ok(match r {
                        Some(r) => Some(code_from_row!(r)),
                        None => None,
                    })
                })
            }

            fn delete_code(&self, email: &str, seed: &[u8]) -> StoreFuture<'_, bool> {
                let email = email.to_string();
                let seed = seed.to_vec();
                Box::pin(async move {
                    let r = sqlx::query("DELETE FROM signin_codes WHERE email = $1 AND seed = $2")
                        .bind(&email)
                        .bind(&seed)
                        .execute(&self.pool)
                        .await?;
                    Ok(r.rows_affected() > 0)
                })
            }

            fn ensure_user(&self, email: &str, now: i64) -> StoreFuture<'_, bool> {
                let email = email.to_string();
                Box::pin(async move {
                    let r = sqlx::query(
                        "INSERT INTO users (email, created_at) VALUES ($1, $2) ON CONFLICT (email) DO NOTHING",
                    )
                    .bind(&email)
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                    Ok(r.rows_affected() > 0)
                })
            }

            fn user_exists(&self, email: &str) -> StoreFuture<'_, bool> {
                let email = email.to_string();
                Box::pin(async move {
                    let r = sqlx::query("SELECT email FROM users WHERE email = $1")
                        .bind(&email)
                        .fetch_optional(&self.pool)
                        .await?;
                    Ok(r.is_some())
                })
            }

            fn add_device(&self, d: &DeviceRecord) -> StoreFuture<'_, ()> {
                let d = d.clone();
                Box::pin(async move {
                    let mut tx = self.pool.begin().await?;
                    sqlx::query(
                        "INSERT INTO devices (id, email, name, public_key, created_at, last_seen) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(&d.id)
                    .bind(&d.email)
                    .bind(&d.name)
                    .bind(&d.public_key)
                    .bind(d.created_at)
                    .bind(d.last_seen)
                    .execute(&mut *tx)
                    .await?;
                    if d.reader {
                        sqlx::query("INSERT INTO reader_devices (id) VALUES ($1)")
                            .bind(&d.id)
                            .execute(&mut *tx)
                            .await?;
                    }
                    tx.commit().await?;
                    Ok(())
                })
            }

            fn get_device(&self, id: &str) -> StoreFuture<'_, Option<DeviceRecord>> {
                let id = id.to_string();
                Box::pin(async move {
                    let r = sqlx::query(DEVICES_SELECT_BY_ID)
                        .bind(&id)
                        .fetch_optional(&self.pool)
                        .await?;
                    Ok(match r {
                        Some(r) => Some(device_from_row!(r)),
                        None => None,
                    })
                })
            }

            fn list_devices(&self, email: &str) -> StoreFuture<'_, Vec<DeviceRecord>> {
                let email = email.to_string();
                Box::pin(async move {
                    let rows = sqlx::query(DEVICES_SELECT_BY_EMAIL)
                        .bind(&email)
                        .fetch_all(&self.pool)
                        .await?;
                    let mut out = Vec::with_capacity(rows.len());
                    for r in rows {
                        out.push(device_from_row!(r));
                    }
                    Ok(out)
                })
            }

            fn delete_device(&self, email: &str, id: &str, removed_at: Option<i64>) -> StoreFuture<'_, bool> {
                let (email, id) = (email.to_string(), id.to_string());
                Box::pin(async move {
                    let mut tx = self.pool.begin().await?;
                    let r = sqlx::query("DELETE FROM devices WHERE id = $1 AND email = $2")
                        .bind(&id)
                        .bind(&email)
                        .execute(&mut *tx)
                        .await?;
                    if r.rows_affected() > 0 {
                        sqlx::query("DELETE FROM reader_devices WHERE id = $1")
                            .bind(&id)
                            .execute(&mut *tx)
                            .await?;
                        if let Some(t) = removed_at {
                            sqlx::query(
                                "INSERT INTO removed_devices (id, removed_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
                            )
                            .bind(&id)
                            .bind(t)
                            .execute(&mut *tx)
                            .await?;
                        }
                    }
                    sqlx::query("DELETE FROM tokens WHERE device_id = $1 AND email = $2")
                        .bind(&id)
                        .bind(&email)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(r.rows_affected() > 0)
                })
            }

            fn list_removed_devices(&self, after: &str, limit: i64) -> StoreFuture<'_, Vec<(String, i64)>> {
                let after = after.to_string();
                Box::pin(async move {
                    let rows = sqlx::query(
                        "SELECT id, removed_at FROM removed_devices WHERE id > $1 ORDER BY id LIMIT $2",
                    )
                    .bind(&after)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                    let mut out = Vec::with_capacity(rows.len());
                    for r in rows {
                        out.push((r.try_get("id")?, r.try_get("removed_at")?));
                    }
                    Ok(out)
                })
            }

            fn touch_device(&self, id: &str, now: i64) -> StoreFuture<'_, ()> {
                let id = id.to_string();
                Box::pin(async move {
                    sqlx::query("UPDATE devices SET last_seen = $2 WHERE id = $1 AND last_seen < $2 - 60")
                        .bind(&id)
                        .bind(now)
                        .execute(&self.pool)
                        .await?;
                    Ok(())
                })
            }

            fn put_token(&self, t: &TokenRecord) -> StoreFuture<'_, ()> {
                let t = t.clone();
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO tokens (hash, kind, email, device_id, expires_at) VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(&t.hash)
                    .bind(&t.kind)
                    .bind(&t.email)
                    .bind(&t.device_id)
                    .bind(t.expires_at)
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                })
            }

            fn get_token(&self, hash: &[u8], kind: &str) -> StoreFuture<'_, Option<TokenRecord>> {
                let (hash, kind) = (hash.to_vec(), kind.to_string());
                Box::pin(async move {
                    let r = sqlx::query("SELECT * FROM tokens WHERE hash = $1 AND kind = $2")
                        .bind(&hash)
                        .bind(&kind)
                        .fetch_optional(&self.pool)
                        .await?;
                    Ok(match r {
                        Some(r) => Some(token_from_row!(r)),
                        None => None,
                    })
                })
            }

            fn spend_refresh(&self, hash: &[u8], now: i64) -> StoreFuture<'_, Option<TokenRecord>> {
                let hash = hash.to_vec();
                Box::pin(async move {
                    let r = sqlx::query(
                        "UPDATE tokens SET kind = 'spent' WHERE hash = $1 AND kind = 'refresh' AND expires_at > $2 \
                         RETURNING *",
                    )
                    .bind(&hash)
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await?;
                    let Some(r) = r else { return Ok(None) };
                    let t = token_from_row!(r);
                    // The device's expired tokens are of no use any more.
                    sqlx::query("DELETE FROM tokens WHERE device_id = $1 AND expires_at <= $2")
                        .bind(&t.device_id)
                        .bind(now)
                        .execute(&self.pool)
                        .await?;
                    Ok(Some(t))
                })
            }

            fn revoke_session(&self, hash: &[u8]) -> StoreFuture<'_, bool> {
                let hash = hash.to_vec();
                Box::pin(async move {
                    let r = sqlx::query(
                        "DELETE FROM tokens WHERE device_id IN (SELECT device_id FROM tokens WHERE hash = $1)",
                    )
                    .bind(&hash)
                    .execute(&self.pool)
                    .await?;
                    Ok(r.rows_affected() > 0)
                })
            }

            fn add_invitation(&self, content_id: &str, recipient: &str, now: i64) -> StoreFuture<'_, bool> {
                let (id, to) = (content_id.to_string(), recipient.to_string());
                Box::pin(async move {
                    let r = sqlx::query(
                        "INSERT INTO invitations (content_id, recipient, sent_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (content_id, recipient) DO NOTHING",
                    )
                    .bind(&id)
                    .bind(&to)
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                    Ok(r.rows_affected() > 0)
                })
            }

            fn remove_invitation(&self, content_id: &str, recipient: &str) -> StoreFuture<'_, ()> {
                let (id, to) = (content_id.to_string(), recipient.to_string());
                Box::pin(async move {
                    sqlx::query("DELETE FROM invitations WHERE content_id = $1 AND recipient = $2")
                        .bind(&id)
                        .bind(&to)
                        .execute(&self.pool)
                        .await?;
                    Ok(())
                })
            }

            fn insert_content(&self, c: &ContentRecord) -> StoreFuture<'_, InsertOutcome> {
                let batch = self.insert_contents(vec![c.clone()]);
                Box::pin(async move {
                    batch
                        .await?
                        .pop()
                        .ok_or_else(|| StoreError::Corrupt("an insert gave no outcome".into()))
                })
            }

            fn insert_contents(&self, cs: Vec<ContentRecord>) -> StoreFuture<'_, Vec<InsertOutcome>> {
                Box::pin(async move {
                    let rows = cs
                        .iter()
                        .map(|c| grants::rows_of(&c.policy))
                        .collect::<Result<Vec<_>, _>>()?;
                    let mut tx = self.pool.begin().await?;
                    // One statement per few hundred rows, not one per row:
                    // every statement is a hand-off to the connection's
                    // thread and back, which cost the server more than
                    // the inserts themselves.
                    let mut created = std::collections::HashSet::new();
                    for chunk in cs.chunks(INSERT_ROWS_MAX) {
                        let mut q = sqlx::QueryBuilder::new(INSERT_CONTENTS);
                        q.push_values(chunk, |mut b, c| {
                            b.push_bind(&c.id)
                                .push_bind(&c.owner)
                                .push_bind(&c.pl)
                                .push_bind(&c.policy)
                                .push("0")
                                .push_bind(c.created_at)
                                .push_bind(c.registered_at);
                        });
                        q.push(" ON CONFLICT (id) DO NOTHING RETURNING id");
                        for r in q.build().persistent(false).fetch_all(&mut *tx).await? {
                            created.insert(r.try_get::<String, _>("id")?);
                        }
                    }
                    let mut reach = Vec::new();
                    let mut seen = std::collections::HashSet::new();
                    for (c, rows) in cs.iter().zip(rows) {
                        if created.contains(&c.id) && seen.insert(&c.id) {
                            reach.push(Reach::of(c, rows));
                        }
                    }
                    insert_grants!(tx, reach);
                    let mut out = Vec::with_capacity(cs.len());
                    for c in &cs {
                        // The first of repeated ids in a batch is the one stored.
                        if created.remove(&c.id) {
                            out.push(InsertOutcome::Created);
                            continue;
                        }
                        let r = sqlx::query("SELECT * FROM content WHERE id = $1")
                            .bind(&c.id)
                            .fetch_optional(&mut *tx)
                            .await?;
                        match r {
                            Some(r) => out.push(InsertOutcome::Exists(Box::new(content_from_row!(r)))),
                            None => {
                                return Err(StoreError::Corrupt(format!(
                                    "content {} vanished during insert",
                                    c.id
                                )));
                            }
                        }
                    }
                    tx.commit().await?;
                    Ok(out)
                })
            }

            fn get_content(&self, id: &str) -> StoreFuture<'_, Option<ContentRecord>> {
                let id = id.to_string();
                Box::pin(async move {
                    let r = sqlx::query("SELECT * FROM content WHERE id = $1")
                        .bind(&id)
                        .fetch_optional(&self.pool)
                        .await?;
                    Ok(match r {
                        Some(r) => Some(content_from_row!(r)),
                        None => None,
                    })
                })
            }

            fn list_owned(
                &self,
                email: &str,
                after: Option<&PageKey>,
                limit: i64,
            ) -> StoreFuture<'_, Vec<ContentRecord>> {
                let email = email.to_string();
                let (time, id) = start_of(after);
                Box::pin(async move {
                    let rows = sqlx::query(LIST_OWNED)
                        .bind(&email)
                        .bind(time)
                        .bind(&id)
                        .bind(limit)
                        .fetch_all(&self.pool)
                        .await?;
                    let mut out = Vec::with_capacity(rows.len());
                    for r in rows {
                        out.push(content_from_row!(r));
                    }
                    Ok(out)
                })
            }

            fn list_shared(
                &self,
                email: &str,
                now: i64,
                after: Option<&PageKey>,
                limit: i64,
            ) -> StoreFuture<'_, Vec<ContentRecord>> {
                let (address, domain) = grants::principals_of(email);
                let (time, id) = start_of(after);
                Box::pin(async move {
                    let rows = sqlx::query(LIST_SHARED)
                        .bind(&address)
                        .bind(&domain)
                        .bind(&address)
                        .bind(now)
                        .bind(time)
                        .bind(&id)
                        .bind(limit)
                        .fetch_all(&self.pool)
                        .await?;
                    let mut out = Vec::with_capacity(rows.len());
                    for r in rows {
                        out.push(content_from_row!(r));
                    }
                    Ok(out)
                })
            }

            fn update_policy(&self, id: &str, expected: &str, policy: &str) -> StoreFuture<'_, bool> {
                let (id, expected, policy) = (id.to_string(), expected.to_string(), policy.to_string());
                Box::pin(async move {
                    let rows = grants::rows_of(&policy)?;
                    let mut tx = self.pool.begin().await?;
                    // The row lock this takes orders a concurrent revoke
                    // before or after the whole change, rows included.
                    let r = sqlx::query(
                        "UPDATE content SET policy = $3 WHERE id = $1 AND policy = $2 RETURNING *",
                    )
                    .bind(&id)
                    .bind(&expected)
                    .bind(&policy)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some(r) = r else { return Ok(false) };
                    let c = content_from_row!(r);
                    sqlx::query("DELETE FROM grants WHERE content_id = $1")
                        .bind(&id)
                        .execute(&mut *tx)
                        .await?;
                    if !c.revoked {
                        insert_grants!(tx, [Reach::of(&c, rows)]);
                    }
                    tx.commit().await?;
                    Ok(true)
                })
            }

            fn revoke(&self, id: &str) -> StoreFuture<'_, ()> {
                let id = id.to_string();
                Box::pin(async move {
                    let mut tx = self.pool.begin().await?;
                    sqlx::query("UPDATE content SET revoked = 1 WHERE id = $1")
                        .bind(&id)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM grants WHERE content_id = $1")
                        .bind(&id)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(())
                })
            }

            fn add_audit(&self, a: &AuditRecord) -> StoreFuture<'_, ()> {
                let a = a.clone();
                Box::pin(async move {
                    sqlx::query(AUDIT_ROW)
                    .bind(&a.content_id)
                    .bind(a.time)
                    .bind(&a.email)
                    .bind(&a.device_id)
                    .bind(&a.rights)
                    .bind(&a.result)
                    .bind(&a.reason)
                    .bind(&a.client_addr)
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                })
            }

            fn add_audits(&self, rows: Vec<(AuditRecord, Option<IssueCheck>)>) -> StoreFuture<'_, Vec<bool>> {
                Box::pin(async move {
                    // All checks of a batch are made at one time (the
                    // earliest of the batch's own, so never later than
                    // any token's request).
                    let now = rows.iter().filter_map(|(_, c)| c.as_ref().map(|c| c.now)).min().unwrap_or(0);
                    $append_audits(&self.pool, &rows, now).await
                })
            }

            fn list_audit(&self, content_id: &str) -> StoreFuture<'_, Vec<AuditRecord>> {
                let id = content_id.to_string();
                Box::pin(async move {
                    let rows = sqlx::query("SELECT * FROM audit WHERE content_id = $1 ORDER BY seq")
                        .bind(&id)
                        .fetch_all(&self.pool)
                        .await?;
                    let mut out = Vec::with_capacity(rows.len());
                    for r in rows {
                        out.push(AuditRecord {
                            content_id: r.try_get("content_id")?,
                            time: r.try_get("time")?,
                            email: r.try_get("email")?,
                            device_id: r.try_get("device_id")?,
                            rights: r.try_get("rights")?,
                            result: r.try_get("result")?,
                            reason: r.try_get("reason")?,
                            client_addr: r.try_get("client_addr")?,
                        });
                    }
                    Ok(out)
                })
            }
        }
    };
}

sql_store!(SqliteStore, sqlx::Sqlite, super::sqlite_audit::append);
sql_store!(PgStore, sqlx::Postgres, super::pg_audit::append);
