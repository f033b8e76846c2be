//! The store trait against a real SQLite file and a real PostgreSQL server.

mod server_support;

use std::sync::Arc;

use rightsfs::store::{
    AuditRecord, CodeRecord, ContentRecord, DeviceRecord, InsertOutcome, SqliteStore, Store, TokenRecord,
};
use server_support::{postgres_url, unique};

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
            .delete_device("someone-else@example.com", &tok.device_id)
            .await
            .unwrap()
    );
    assert!(store.delete_device(&alice, &tok.device_id).await.unwrap());
    assert_eq!(store.get_token(&tok.hash, "access").await.unwrap(), None);
    assert_eq!(store.list_devices(&alice).await.unwrap().len(), 1);
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
    let c = ContentRecord {
        id: format!("{u}00000000000000000000"),
        owner: alice.clone(),
        pl: "{\"pl\":1}".into(),
        policy: "{\"p\":1}".into(),
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
    assert!(store.update_policy(&c.id, "{\"p\":1}", "{\"p\":2}").await.unwrap());
    assert!(!store.update_policy(&c.id, "{\"p\":1}", "{\"p\":3}").await.unwrap());
    assert_eq!(store.get_content(&c.id).await.unwrap().unwrap().policy, "{\"p\":2}");
    assert_eq!(store.list_owned(&alice).await.unwrap().len(), 3);
    assert!(
        store
            .list_not_owned(&alice)
            .await
            .unwrap()
            .iter()
            .all(|r| r.owner != alice)
    );
    let bob = format!("bob-{u}@example.com");
    assert!(store.list_not_owned(&bob).await.unwrap().iter().any(|r| r.id == c.id));
    store.revoke(&c.id).await.unwrap();
    assert!(store.get_content(&c.id).await.unwrap().unwrap().revoked);
    assert!(!store.list_not_owned(&bob).await.unwrap().iter().any(|r| r.id == c.id));
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
}

#[tokio::test]
async fn sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rights.db");
    exercise(Arc::new(SqliteStore::open(&path).await.unwrap())).await;
    // Reopening keeps the data and the schema.
    let again = rightsfs::store::open(&path.display().to_string()).await.unwrap();
    assert_eq!(again.hit("x", 1).await.unwrap(), 1);
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
}
