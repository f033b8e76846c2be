//! PostgreSQL's append of a batch of audit rows: the checks and the insert
//! in one statement (a data-modifying `WITH`), so one round trip where a
//! transaction would take four, and one snapshot; its rows passed as one
//! array per column.
//!
//! Rows written as `VALUES` make a statement whose text changes with the
//! batch's size, so PostgreSQL parses and plans every batch anew, and a
//! batch of 30 rows binds 390 parameters. One array per column keeps the
//! text fixed: the statement is prepared once per connection and each
//! batch binds thirteen arrays. The audit wait is most of a licence's
//! time at 64 clients, so this is licences per second.

use sqlx::Row;
use sqlx::postgres::PgPool;

use super::{AuditRecord, IssueCheck, StoreError};

/// Which rows hold (unchecked ones, and checked ones whose token is a live
/// access token at `$14` and whose content's policy and revocation are
/// unchanged), appended in their order in one snapshot; answers the
/// indexes appended.
const AUDIT_AT_ONCE: &str = "WITH v AS (SELECT * FROM UNNEST($1::BIGINT[], $2::BYTEA[], $3::TEXT[], $4::TEXT[], \
     $5::BIGINT[], $6::BOOLEAN[], $7::BIGINT[], $8::TEXT[], $9::TEXT[], $10::TEXT[], $11::TEXT[], $12::TEXT[], \
     $13::TEXT[]) AS v (i, token_hash, content_id, policy, revoked, checked, time, email, device_id, rights, \
     result, reason, client_addr)), \
     ok AS (SELECT * FROM v WHERE NOT v.checked OR (EXISTS (SELECT 1 FROM tokens t WHERE t.hash = v.token_hash \
     AND t.kind = 'access' AND t.expires_at > $14) AND EXISTS (SELECT 1 FROM content c WHERE c.id = v.content_id \
     AND c.policy = v.policy AND c.revoked = v.revoked))), \
     ins AS (INSERT INTO audit (content_id, time, email, device_id, rights, result, reason, client_addr) \
     SELECT content_id, time, email, device_id, rights, result, reason, client_addr FROM ok ORDER BY i) \
     SELECT i FROM ok";

/// Appends the rows that still hold, checked at `now`; answers, per row,
/// whether it was appended.
pub(super) async fn append(
    pool: &PgPool,
    rows: &[(AuditRecord, Option<IssueCheck>)],
    now: i64,
) -> Result<Vec<bool>, StoreError> {
    let n = rows.len();
    let column = |f: &dyn Fn(&AuditRecord) -> &str| rows.iter().map(|(a, _)| f(a)).collect::<Vec<&str>>();
    let checks = || rows.iter().map(|(_, c)| c.as_ref());
    let mut ok = vec![false; n];
    let kept = sqlx::query(AUDIT_AT_ONCE)
        .bind((0..n as i64).collect::<Vec<i64>>())
        .bind(
            checks()
                .map(|c| c.map(|c| c.token_hash.as_slice()))
                .collect::<Vec<Option<&[u8]>>>(),
        )
        .bind(column(&|a| &a.content_id))
        .bind(
            checks()
                .map(|c| c.map(|c| c.policy.as_str()))
                .collect::<Vec<Option<&str>>>(),
        )
        .bind(
            checks()
                .map(|c| c.map(|c| i64::from(c.revoked)))
                .collect::<Vec<Option<i64>>>(),
        )
        .bind(checks().map(|c| c.is_some()).collect::<Vec<bool>>())
        .bind(rows.iter().map(|(a, _)| a.time).collect::<Vec<i64>>())
        .bind(column(&|a| &a.email))
        .bind(column(&|a| &a.device_id))
        .bind(column(&|a| &a.rights))
        .bind(column(&|a| &a.result))
        .bind(column(&|a| &a.reason))
        .bind(column(&|a| &a.client_addr))
        .bind(now)
        .fetch_all(pool)
        .await?;
    for r in kept {
        let i: i64 = r.try_get("i")?;
        if let Some(o) = usize::try_from(i).ok().and_then(|i| ok.get_mut(i)) {
            *o = true;
        }
    }
    Ok(ok)
}
