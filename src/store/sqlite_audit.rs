//! SQLite's append of a batch of audit rows: the checks and the insert in
//! one transaction.
//!
//! SQLite has no data-modifying `WITH`, and runs in the process, so a
//! transaction costs no round trips. It takes the write lock at once
//! (`BEGIN IMMEDIATE`): the checks and the insert see one state, and never
//! fail on a snapshot another connection's write made stale.

use sqlx::Row;
use sqlx::sqlite::SqlitePool;

use super::{AuditRecord, IssueCheck, StoreError};

/// Rows per statement: at most eight parameters each, well inside
/// SQLite's 32,766.
const ROWS_MAX: usize = 500;

/// Appends audit rows; the rows follow.
const INSERT: &str = "INSERT INTO audit (content_id, time, email, device_id, rights, result, reason, client_addr) ";

/// Which of the checked rows that follow (`VALUES (index, token hash,
/// content id, policy, revoked)`) still hold: the token is a live access
/// token (at the time bound after [`CHECKS_AT`]) and the content's policy
/// and revocation are unchanged.
const CHECKS: &str = "SELECT v.column1 AS i FROM (";
const CHECKS_AT: &str = ") AS v WHERE EXISTS (SELECT 1 FROM tokens t WHERE t.hash = v.column2 \
     AND t.kind = 'access' AND t.expires_at > ";
const CHECKS_END: &str = ") AND EXISTS (SELECT 1 FROM content c WHERE c.id = v.column3 \
     AND c.policy = v.column4 AND c.revoked = v.column5)";

/// Appends the rows that still hold (unchecked ones, and checked ones as
/// [`CHECKS`] says), checked at `now`, in their order; answers, per row,
/// whether it was appended.
pub(super) async fn append(
    pool: &SqlitePool,
    rows: &[(AuditRecord, Option<IssueCheck>)],
    now: i64,
) -> Result<Vec<bool>, StoreError> {
    let mut ok: Vec<bool> = rows.iter().map(|(_, c)| c.is_none()).collect();
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let checked: Vec<(i64, &IssueCheck)> = rows
        .iter()
        .enumerate()
        .filter_map(|(i, (_, c))| c.as_ref().map(|c| (i as i64, c)))
        .collect();
    for chunk in checked.chunks(ROWS_MAX) {
        let mut q = sqlx::QueryBuilder::new(CHECKS);
        q.push_values(chunk, |mut b, (i, c)| {
            b.push_bind(*i)
                .push_bind(&c.token_hash)
                .push_bind(&rows[*i as usize].0.content_id)
                .push_bind(&c.policy)
                .push_bind(i64::from(c.revoked));
        });
        q.push(CHECKS_AT).push_bind(now).push(CHECKS_END);
        for r in q.build().persistent(false).fetch_all(&mut *tx).await? {
            let i: i64 = r.try_get("i")?;
            if let Some(o) = usize::try_from(i).ok().and_then(|i| ok.get_mut(i)) {
                *o = true;
            }
        }
    }
    let keep: Vec<&AuditRecord> = rows.iter().zip(&ok).filter(|(_, k)| **k).map(|((a, _), _)| a).collect();
    for chunk in keep.chunks(ROWS_MAX) {
        let mut q = sqlx::QueryBuilder::new(INSERT);
        q.push_values(chunk, |mut b, a| {
            b.push_bind(&a.content_id)
                .push_bind(a.time)
                .push_bind(&a.email)
                .push_bind(&a.device_id)
                .push_bind(&a.rights)
                .push_bind(&a.result)
                .push_bind(&a.reason)
                .push_bind(&a.client_addr);
        });
        q.build().persistent(false).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(ok)
}
