//! The store trait against a real SQLite file and a real PostgreSQL server.

mod server_support;

use std::sync::Arc;

use rightsfs::policy::{Email, Grant, Policy, Principal, Rights};
use rightsfs::store::{
    AuditRecord, CodeRecord, ContentRecord, DeviceRecord, InsertOutcome, IssueCheck, PageKey, SqliteStore, Store,
    TokenRecord,
};
use server_support::{postgres_url, unique};

/// A policy of `owner` granting view to each of `to` (`*@domain` or an
/// address), as the server stores it.
fn policy(owner: &str, to: &[&str]) -> String {
    policy_until(owner, to, None)
}

fn policy_until(owner: &str, to: &[&str], expires: Option<i64>) -> String {
    let mut p = Policy::owner_only(Email::parse(owner).unwrap(), 1);
    for t in to {
        p.grants.push(Grant {
            to: Principal::parse(t).unwrap(),
            rights: Rights::parse("view").unwrap(),
            expires,
        });
    }
    serde_json::to_string(&p).unwrap()
}

/// Every content `who` lists as shared at `now`, `limit` a page, and the
/// pages it took; `between` runs before each page after the first.
async fn all_shared(
    store: &dyn Store,
    who: &str,
    now: i64,
    limit: i64,
    mut between: impl AsyncFnMut(usize),
) -> (Vec<String>, usize) {
    let (mut out, mut after, mut pages) = (Vec::new(), None::<PageKey>, 0);
    loop {
        if pages > 0 {
            between(pages).await;
        }
        let page = store.list_shared(who, now, after.as_ref(), limit).await.unwrap();
        pages += 1;
        out.extend(page.iter().map(|c| c.id.clone()));
        if (page.len() as i64) < limit {
            return (out, pages);
        }
        after = page.last().map(PageKey::of);
    }
}

async fn exercise(store: Arc<dyn Store>) {
    let u = unique();
    let alice = format!("alice-{u}@example.com");

    // Rate counters count per key and window.
    let key = format!("ip:{u}");
    assert_eq!(store.hit(&key, 1000).await.unwrap(), 1);
    assert_eq!(store.hit(&key, 1000).await.unwrap(), 2);
    assert_eq!(store.hit(&key, 1060).await.unwrap(), 1);

    // Sign-in state: written only over what was read, guesses counted
    // with the backoff in the same statement, deleted only by its seed.
    let code = CodeRecord {
        email: alice.clone(),
        seed: vec![1; 16],
        expires_at: 1000,
        attempts: 0,
        next_try: 0,
        delay: 30,
        sends: 1,
        next_send: 130,
    };
    assert!(store.put_code(&code, None).await.unwrap());
    assert!(!store.put_code(&code, None).await.unwrap(), "a second insert must lose");
    let code2 = CodeRecord {
        seed: vec![2; 16],
        next_send: 160,
        ..code.clone()
    };
    assert!(store.put_code(&code2, Some(&code)).await.unwrap());
    assert!(
        !store.put_code(&code, Some(&code)).await.unwrap(),
        "a stale replace must lose"
    );
    assert_eq!(store.get_code(&alice).await.unwrap().unwrap(), code2);
    for n in 1..=2 {
        let r = store.claim_attempt(&alice, 100, 2, 50).await.unwrap().unwrap();
        assert_eq!(r.attempts, n);
    }
    // The second (last free) guess started the wait: 30 s, then 50 (capped).
    let r = store.get_code(&alice).await.unwrap().unwrap();
    assert_eq!((r.next_try, r.delay), (130, 50));
    assert_eq!(store.claim_attempt(&alice, 129, 2, 50).await.unwrap(), None);
    let r = store.claim_attempt(&alice, 130, 2, 50).await.unwrap().unwrap();
    assert_eq!((r.attempts, r.next_try, r.delay), (3, 180, 50));
    assert_eq!(store.claim_attempt(&alice, 1000, 2, 50).await.unwrap(), None, "expired");
    assert!(!store.delete_code(&alice, &[1; 16]).await.unwrap());
    assert!(store.delete_code(&alice, &[2; 16]).await.unwrap());
    assert!(!store.delete_code(&alice, &[2; 16]).await.unwrap());
    assert_eq!(store.get_code(&alice).await.unwrap(), None);

    // Users and devices.
    assert!(!store.user_exists(&alice).await.unwrap());
    assert!(store.ensure_user(&alice, 5).await.unwrap());
    assert!(!store.ensure_user(&alice, 6).await.unwrap());
    assert!(store.user_exists(&alice).await.unwrap());
    let dev = DeviceRecord {
        id: format!("d1-{u}"),
        email: alice.clone(),
        name: "laptop".into(),
        public_key: vec![9, 8, 7],
        created_at: 5,
        last_seen: 5,
        reader: false,
    };
    store.add_device(&dev).await.unwrap();
    store
        .add_device(&DeviceRecord {
            id: format!("d2-{u}"),
            created_at: 6,
            reader: true,
            ..dev.clone()
        })
        .await
        .unwrap();
    assert_eq!(store.get_device(&dev.id).await.unwrap().unwrap(), dev);
    assert!(store.get_device(&format!("d2-{u}")).await.unwrap().unwrap().reader);
    let readers: Vec<bool> = store
        .list_devices(&alice)
        .await
        .unwrap()
        .iter()
        .map(|d| d.reader)
        .collect();
    assert_eq!(readers, [false, true]);
    store.touch_device(&dev.id, 1000).await.unwrap();
    assert_eq!(store.get_device(&dev.id).await.unwrap().unwrap().last_seen, 1000);
    assert_eq!(store.list_devices(&alice).await.unwrap().len(), 2);

    // Tokens, and device removal dropping them.
    let tok = TokenRecord {
        hash: format!("t-{u}").into_bytes(),
        kind: "access".into(),
        email: alice.clone(),
        device_id: format!("d2-{u}"),
        expires_at: 99,
    };
    store.put_token(&tok).await.unwrap();
    assert_eq!(store.get_token(&tok.hash, "access").await.unwrap().unwrap(), tok);
    assert_eq!(store.get_token(&tok.hash, "refresh").await.unwrap(), None);
    assert!(
        !store
            .delete_device("someone-else@example.com", &tok.device_id, Some(7))
            .await
            .unwrap()
    );
    assert!(store.delete_device(&alice, &tok.device_id, Some(7)).await.unwrap());
    assert_eq!(store.get_token(&tok.hash, "access").await.unwrap(), None);
    assert_eq!(store.list_devices(&alice).await.unwrap().len(), 1);
    removed_devices(&*store, &u, &alice).await;
    let tok2 = TokenRecord {
        hash: format!("r-{u}").into_bytes(),
        kind: "refresh".into(),
        device_id: dev.id.clone(),
        ..tok.clone()
    };
    store.put_token(&tok2).await.unwrap();
    let access2 = TokenRecord {
        hash: format!("a-{u}").into_bytes(),
        kind: "access".into(),
        ..tok2.clone()
    };
    store.put_token(&access2).await.unwrap();
    // A refresh token is spent once; the session then ends by any of its tokens.
    let spent = TokenRecord {
        kind: "spent".into(),
        ..tok2.clone()
    };
    assert_eq!(store.spend_refresh(&tok2.hash, 50).await.unwrap(), Some(spent));
    assert_eq!(store.spend_refresh(&tok2.hash, 50).await.unwrap(), None);
    assert_eq!(
        store.get_token(&tok2.hash, "spent").await.unwrap().unwrap().device_id,
        dev.id
    );
    assert!(store.revoke_session(&tok2.hash).await.unwrap());
    assert_eq!(store.get_token(&access2.hash, "access").await.unwrap(), None);
    assert!(!store.revoke_session(&tok2.hash).await.unwrap());

    // Invitations: once per content and recipient.
    let cid = format!("inv-{u}");
    assert!(store.add_invitation(&cid, &alice, 1).await.unwrap());
    assert!(!store.add_invitation(&cid, &alice, 2).await.unwrap());
    store.remove_invitation(&cid, &alice).await.unwrap();
    assert!(store.add_invitation(&cid, &alice, 3).await.unwrap());

    // Content: insert once, optimistic policy update, revoke, lists.
    // A domain of this run's own: other runs share the PostgreSQL database.
    let bob = format!("bob@{u}.example.com");
    let (p1, p2) = (policy(&alice, &[&bob]), policy(&alice, &[]));
    let c = ContentRecord {
        id: format!("{u}00000000000000000000"),
        owner: alice.clone(),
        pl: "{\"pl\":1}".into(),
        policy: p1.clone(),
        revoked: false,
        created_at: 1,
        registered_at: 2,
    };
    assert_eq!(store.insert_content(&c).await.unwrap(), InsertOutcome::Created);
    assert_eq!(
        store
            .insert_content(&ContentRecord {
                pl: "other".into(),
                ..c.clone()
            })
            .await
            .unwrap(),
        InsertOutcome::Exists(Box::new(c.clone()))
    );
    // A batch: two new ones, one already there, one repeated within the
    // batch; outcomes in order, all stored by one commit.
    let fresh = |n: u32| ContentRecord {
        id: format!("{u}{n:020}"),
        ..c.clone()
    };
    let batch = [fresh(1), c.clone(), fresh(2), fresh(1)];
    assert_eq!(
        store.insert_contents(batch.to_vec()).await.unwrap(),
        [
            InsertOutcome::Created,
            InsertOutcome::Exists(Box::new(c.clone())),
            InsertOutcome::Created,
            InsertOutcome::Exists(Box::new(fresh(1))),
        ]
    );
    assert_eq!(store.get_content(&fresh(2).id).await.unwrap(), Some(fresh(2)));
    let shared_ids = async |who: &str| all_shared(store.as_ref(), who, 10, 100, async |_| {}).await.0;
    assert_eq!(shared_ids(&bob).await.len(), 3, "a batch's grants are listed once each");
    let everyone = policy(&alice, &[&bob, &format!("*@{u}.example.com"), "*@example.com"]);
    assert!(store.update_policy(&fresh(1).id, &p1, &everyone).await.unwrap());
    assert!(
        !shared_ids(&alice).await.iter().any(|id| id.starts_with(&u)),
        "nobody lists their own content as shared, not even by a grant to their domain"
    );
    assert_eq!(shared_ids(&bob).await.len(), 3, "a content named twice is listed once");
    assert!(store.update_policy(&c.id, &p1, &p2).await.unwrap());
    assert!(!store.update_policy(&c.id, &p1, &p1).await.unwrap());
    assert_eq!(store.get_content(&c.id).await.unwrap().unwrap().policy, p2);
    assert!(
        !shared_ids(&bob).await.contains(&c.id),
        "an unshared content leaves the list"
    );
    // Owned: newest first, id descending within a second, a page at a time.
    let owned = store.list_owned(&alice, None, 10).await.unwrap();
    let ids: Vec<&str> = owned.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, [&fresh(2).id, &fresh(1).id, &c.id]);
    let rest = store
        .list_owned(&alice, Some(&PageKey::of(&owned[0])), 10)
        .await
        .unwrap();
    assert_eq!(rest, owned[1..]);
    assert!(store.list_owned(&bob, None, 10).await.unwrap().is_empty());
    assert!(store.update_policy(&c.id, &p2, &p1).await.unwrap());
    assert!(shared_ids(&bob).await.contains(&c.id));
    store.revoke(&c.id).await.unwrap();
    assert!(store.get_content(&c.id).await.unwrap().unwrap().revoked);
    assert!(
        !shared_ids(&bob).await.contains(&c.id),
        "a revoked content leaves the list"
    );
    // A change to a revoked content's policy does not list it again.
    assert!(store.update_policy(&c.id, &p1, &everyone).await.unwrap());
    assert!(!shared_ids(&bob).await.contains(&c.id));
    assert_eq!(store.get_content("nothing").await.unwrap(), None);

    // Audit keeps order.
    for (i, result) in ["issued", "refused", "issued"].iter().enumerate() {
        store
            .add_audit(&AuditRecord {
                content_id: c.id.clone(),
                time: i as i64,
                email: bob.clone(),
                device_id: "d".into(),
                rights: "view".into(),
                result: result.to_string(),
                reason: String::new(),
                client_addr: "127.0.0.1".into(),
            })
            .await
            .unwrap();
    }
    let log = store.list_audit(&c.id).await.unwrap();
    assert_eq!(
        log.iter().map(|a| a.result.as_str()).collect::<Vec<_>>(),
        ["issued", "refused", "issued"]
    );

    // A batch of licences' audit rows: each checked row is kept only if
    // its token is still a live access token and the content's policy
    // and revocation are what its licence was decided on; the others
    // are kept in the batch's order.
    let live = TokenRecord {
        hash: format!("batch-{u}").into_bytes(),
        kind: "access".into(),
        email: bob.clone(),
        device_id: format!("d3-{u}"),
        expires_at: 1_000,
    };
    store.put_token(&live).await.unwrap();
    let now = store.get_content(&c.id).await.unwrap().unwrap();
    let row = |reason: &str| AuditRecord {
        content_id: c.id.clone(),
        time: 50,
        email: bob.clone(),
        device_id: live.device_id.clone(),
        rights: "view".into(),
        result: "issued".into(),
        reason: reason.into(),
        client_addr: "127.0.0.1".into(),
    };
    let check = |hash: &[u8], policy: &str, revoked: bool| {
        Some(IssueCheck {
            token_hash: hash.to_vec(),
            now: 10,
            policy: policy.to_string(),
            revoked,
        })
    };
    let batch = vec![
        (row("unchecked"), None),
        (row("holds"), check(&live.hash, &now.policy, now.revoked)),
        (row("policy changed since"), check(&live.hash, &p1, now.revoked)),
        (row("revoked since"), check(&live.hash, &now.policy, !now.revoked)),
        (row("token gone"), check(b"no such token", &now.policy, now.revoked)),
        (row("holds too"), check(&live.hash, &now.policy, now.revoked)),
    ];
    assert_ne!(now.policy, p1);
    assert_eq!(
        store.add_audits(batch).await.unwrap(),
        [true, true, false, false, false, true]
    );
    let log = store.list_audit(&c.id).await.unwrap();
    assert_eq!(
        log[3..].iter().map(|a| a.reason.as_str()).collect::<Vec<_>>(),
        ["unchecked", "holds", "holds too"]
    );
}

/// Pages of "shared with me" while the sharing changes between pages: no
/// content twice, none that stayed shared missing, none unshared or
/// revoked before its page; grants by address and by domain, and grants
/// that lapse.
async fn paging(store: Arc<dyn Store>) {
    let u = unique();
    let owner = format!("owner@{u}.example.org");
    let me = format!("reader@{u}.example.com");
    let (mine, domain, peer) = (
        me.as_str(),
        format!("*@{u}.example.com"),
        format!("peer@{u}.example.org"),
    );
    let id = |i: usize| format!("{u}{i:020}");
    // 40 contents, three per second (ties are broken by id); one in four
    // shared by domain, one in five with someone else only.
    let shared_by = |i: usize| match i {
        _ if i.is_multiple_of(5) => policy(&owner, &[&peer]),
        _ if i.is_multiple_of(4) => policy(&owner, &[&peer, &domain]),
        _ => policy(&owner, &[mine]),
    };
    let records: Vec<ContentRecord> = (0..40)
        .map(|i| ContentRecord {
            id: id(i),
            owner: owner.clone(),
            pl: "{}".into(),
            policy: shared_by(i),
            revoked: false,
            created_at: 0,
            registered_at: 1000 + (i / 3) as i64,
        })
        .collect();
    store.insert_contents(records).await.unwrap();
    let initially: Vec<usize> = (0..40).filter(|i| i % 5 != 0).collect();
    let (all, _) = all_shared(store.as_ref(), mine, 10, 100, async |_| {}).await;
    let newest_first: Vec<String> = initially.iter().rev().map(|&i| id(i)).collect();
    assert_eq!(all, newest_first, "newest first, id descending within a second");

    // The changes, in the order the pages come: a not yet listed content
    // unshared (1) and revoked (2), one shared from the start changed
    // after it was listed (39), an older one newly shared (5) and a newer
    // one shared after its page went by (35).
    let s = store.clone();
    let (owner2, mine2, peer2) = (owner.clone(), me.clone(), peer.clone());
    let (listed, pages) = all_shared(store.as_ref(), mine, 10, 7, async move |page| match page {
        1 => {
            let old = s.get_content(&id(1)).await.unwrap().unwrap().policy;
            assert!(
                s.update_policy(&id(1), &old, &policy(&owner2, &[&peer2]))
                    .await
                    .unwrap()
            );
            s.revoke(&id(2)).await.unwrap();
        }
        2 => {
            let old = s.get_content(&id(39)).await.unwrap().unwrap().policy;
            assert!(
                s.update_policy(&id(39), &old, &policy(&owner2, &[&mine2, &peer2]))
                    .await
                    .unwrap()
            );
            for i in [5, 35] {
                let old = s.get_content(&id(i)).await.unwrap().unwrap().policy;
                assert!(
                    s.update_policy(&id(i), &old, &policy(&owner2, &[&mine2]))
                        .await
                        .unwrap()
                );
            }
        }
        _ => {}
    })
    .await;
    assert!(pages > 3, "{pages} pages");
    let mut want: Vec<usize> = initially.iter().copied().filter(|i| ![1, 2].contains(i)).collect();
    want.push(5);
    want.sort_by(|a, b| b.cmp(a));
    assert_eq!(listed, want.iter().map(|&i| id(i)).collect::<Vec<_>>());

    // Grants that lapse: by their own expiry, or the content's.
    let lapsing = |i: usize, grant: Option<i64>, content: Option<i64>| {
        let mut p: Policy = serde_json::from_str(&policy_until(&owner, &[mine], grant)).unwrap();
        p.expires = content;
        ContentRecord {
            id: id(100 + i),
            owner: owner.clone(),
            pl: "{}".into(),
            policy: serde_json::to_string(&p).unwrap(),
            revoked: false,
            created_at: 0,
            registered_at: 2000,
        }
    };
    store
        .insert_contents(vec![lapsing(0, Some(50), None), lapsing(1, None, Some(60))])
        .await
        .unwrap();
    let first = |now: i64| {
        let store = store.clone();
        let me = me.clone();
        async move {
            store
                .list_shared(&me, now, None, 2)
                .await
                .unwrap()
                .into_iter()
                .map(|c| c.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(first(49).await, [id(101), id(100)]);
    assert_eq!(first(50).await, [id(101), id(39)]);
    assert_eq!(first(60).await, [id(39), id(38)]);
}

/// A database made before the grants table lists what was shared before:
/// the table is filled from the stored policies when the store opens.
/// `forget` takes the table's rows and the record of the migration away;
/// `reopen` opens the database again, as a server starting.
async fn fills_grants_of_older_databases(
    store: Arc<dyn Store>,
    forget: impl AsyncFnOnce(),
    reopen: impl AsyncFnOnce() -> Arc<dyn Store>,
) {
    let u = unique();
    let owner = format!("owner@{u}.example.org");
    let me = format!("reader@{u}.example.com");
    let domain = format!("*@{u}.example.com");
    let rec = |i: u32, to: &str| ContentRecord {
        id: format!("{u}{i:020}"),
        owner: owner.clone(),
        pl: "{}".into(),
        policy: policy(&owner, &[to]),
        revoked: false,
        created_at: 0,
        registered_at: 5,
    };
    let recs = vec![rec(1, &me), rec(2, &domain), rec(3, &me)];
    store.insert_contents(recs.clone()).await.unwrap();
    store.revoke(&recs[2].id).await.unwrap();
    drop(store);
    forget().await;
    let again = reopen().await;
    let ids: Vec<String> = again
        .list_shared(&me, 10, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, [recs[1].id.clone(), recs[0].id.clone()]);
}

/// Removed devices are listed by id with their removal time, in pages;
/// a device replaced by the same machine signing in again is not, and a
/// refused removal (another account's device) records nothing.
async fn removed_devices(store: &dyn Store, u: &str, alice: &str) {
    let mine = |rows: Vec<(String, i64)>| -> Vec<(String, i64)> {
        rows.into_iter().filter(|(id, _)| id.ends_with(u)).collect()
    };
    assert_eq!(
        mine(store.list_removed_devices("", 1_000_000).await.unwrap()),
        [(format!("d2-{u}"), 7)]
    );
    let base = DeviceRecord {
        id: String::new(),
        email: alice.to_string(),
        name: "phone".into(),
        public_key: vec![1],
        created_at: 8,
        last_seen: 8,
        reader: false,
    };
    for n in 3..6 {
        store
            .add_device(&DeviceRecord {
                id: format!("d{n}-{u}"),
                ..base.clone()
            })
            .await
            .unwrap();
    }
    // Replaced (signing in again): not removed.
    assert!(store.delete_device(alice, &format!("d3-{u}"), None).await.unwrap());
    assert!(store.delete_device(alice, &format!("d4-{u}"), Some(40)).await.unwrap());
    assert!(store.delete_device(alice, &format!("d5-{u}"), Some(50)).await.unwrap());
    // Removing again neither fails nor moves the time.
    assert!(!store.delete_device(alice, &format!("d5-{u}"), Some(60)).await.unwrap());
    let all = mine(store.list_removed_devices("", 1_000_000).await.unwrap());
    assert_eq!(
        all,
        [(format!("d2-{u}"), 7), (format!("d4-{u}"), 40), (format!("d5-{u}"), 50)]
    );
    // Pages go on after the last id seen.
    let first = store.list_removed_devices(&format!("d2-{u}"), 1).await.unwrap();
    assert_eq!(first.len(), 1);
    assert!(first[0].0.as_str() > format!("d2-{u}").as_str());
    assert!(store.list_removed_devices("\u{10ffff}", 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rights.db");
    exercise(Arc::new(SqliteStore::open(&path).await.unwrap())).await;
    // Reopening keeps the data and the schema.
    let again = rightsfs::store::open(&path.display().to_string()).await.unwrap();
    assert_eq!(again.hit("x", 1).await.unwrap(), 1);
    paging(again.clone()).await;
    let url = path.display().to_string();
    fills_grants_of_older_databases(
        again,
        async || {
            // As the database was before the table: without it.
            let db = sqlx::SqlitePool::connect(&format!("sqlite://{url}")).await.unwrap();
            sqlx::raw_sql("DROP TABLE grants; DROP TABLE migrations;")
                .execute(&db)
                .await
                .unwrap();
            db.close().await;
        },
        async || rightsfs::store::open(&url).await.unwrap(),
    )
    .await;
}

#[tokio::test]
async fn postgres_store() {
    let Some(url) = postgres_url() else { return };
    exercise(rightsfs::store::open(&url).await.unwrap()).await;
    // A second connection (as a replica would open) sees the same rows.
    let a = rightsfs::store::open(&url).await.unwrap();
    let b = rightsfs::store::open(&url).await.unwrap();
    let key = format!("shared:{}", unique());
    assert_eq!(a.hit(&key, 1).await.unwrap(), 1);
    assert_eq!(b.hit(&key, 1).await.unwrap(), 2);
    paging(a.clone()).await;
    fills_grants_of_older_databases(
        a,
        async || {
            // Under the lock a starting replica takes.
            let db = sqlx::PgPool::connect(&url).await.unwrap();
            let mut tx = db.begin().await.unwrap();
            sqlx::query("SELECT pg_advisory_xact_lock(7443)")
                .execute(&mut *tx)
                .await
                .unwrap();
            sqlx::raw_sql("DELETE FROM grants; DELETE FROM migrations WHERE name = 'grants';")
                .execute(&mut *tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            db.close().await;
        },
        async || rightsfs::store::open(&url).await.unwrap(),
    )
    .await;
}
