//! Times `GET /v1/content?role=shared` against a registry of many contents:
//! signs one caller up on a running `rights-server`, writes N contents of
//! other owners straight into the server's database (some shared with the
//! caller by address, some by a `*@domain` grant), then lists what is
//! shared with the caller, following `next` cursors when the server pages.
//!
//! `cargo run --example shared_list -- URL OUTBOX DATABASE [CONTENTS] [SHARED] [ROUNDS]`
//! (the server must run without SMTP so that codes land in OUTBOX;
//! DATABASE is the server's SQLite file or PostgreSQL URL).

#[path = "support/signup.rs"]
mod signup;

use std::path::PathBuf;
use std::time::Instant;

use rightsfs::policy::{ContentId, Email, Grant, Policy, Principal, Rights, now};
use rightsfs::store::ContentRecord;
use serde_json::Value;

/// Lists everything shared with the caller; items and requests made.
async fn list_shared(http: &reqwest::Client, url: &str, token: &str) -> (usize, usize) {
    let (mut items, mut requests) = (0, 0);
    let mut next: Option<String> = None;
    loop {
        let mut u = format!("{url}/v1/content?role=shared");
        if let Some(c) = &next {
            u.push_str(&format!("&cursor={c}"));
        }
        let r = http.get(&u).bearer_auth(token).send().await.unwrap();
        assert!(r.status().is_success(), "{}", r.status());
        let v: Value = r.json().await.unwrap();
        requests += 1;
        // An array: the whole listing at once (servers without pages).
        if let Some(all) = v.as_array() {
            return (all.len(), requests);
        }
        items += v["contents"].as_array().unwrap().len();
        match v["next"].as_str() {
            Some(c) => next = Some(c.to_string()),
            None => return (items, requests),
        }
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: shared_list URL OUTBOX DATABASE [CONTENTS] [SHARED] [ROUNDS]";
    let url = args.get(1).expect(usage).clone();
    let outbox = PathBuf::from(args.get(2).expect(usage));
    let database = args.get(3).expect(usage).clone();
    let total: usize = args.get(4).map(|s| s.parse().unwrap()).unwrap_or(100_000);
    let shared: usize = args.get(5).map(|s| s.parse().unwrap()).unwrap_or(1_000);
    let rounds: usize = args.get(6).map(|s| s.parse().unwrap()).unwrap_or(5);
    let http = reqwest::Client::new();

    let tag = hex::encode(rightsfs::crypto::random_array::<4>());
    let domain = format!("bench-{tag}.example.com");
    let email = format!("reader@{domain}");
    let (token, device) = signup::sign_up(&http, &url, &outbox, &email).await;
    let me = Email::parse(&email).unwrap();

    // One real publishing licence, stored as every row's: listing parses
    // it (for its hash), so its size matters, not whose it is.
    let (pl, _, _) = signup::owner_only_licence(&http, &url, &email, &device, 1).await;
    let pl = serde_json::to_string(&pl).unwrap();

    // Other owners' contents, each shared with someone else; every
    // (total / shared)-th also with the caller, one in ten of those by a
    // grant to the caller's whole domain.
    let store = rightsfs::store::open(&database).await.unwrap();
    let every = (total / shared.max(1)).max(1);
    let start = Instant::now();
    let t0 = now() - total as i64;
    let mut batch = Vec::new();
    let mut granted = 0;
    for i in 0..total {
        let owner = Email::parse(&format!("owner{}@{tag}.example.org", i % 500)).unwrap();
        let mut policy = Policy::owner_only(owner.clone(), 1);
        let view = Rights::parse("view").unwrap();
        let other = Email::parse(&format!("peer{}@{tag}.example.org", i % 1000)).unwrap();
        policy.grants.push(Grant {
            to: Principal::User(other),
            rights: view,
            expires: None,
        });
        if i % every == 0 && granted < shared {
            granted += 1;
            let to = if granted % 10 == 0 {
                Principal::Domain(domain.clone())
            } else {
                Principal::User(me.clone())
            };
            policy.grants.push(Grant {
                to,
                rights: view,
                expires: None,
            });
        }
        batch.push(ContentRecord {
            id: ContentId::generate().to_hex(),
            owner: owner.to_string(),
            pl: pl.clone(),
            policy: serde_json::to_string(&policy).unwrap(),
            revoked: false,
            created_at: t0 + i as i64,
            registered_at: t0 + i as i64,
        });
        if batch.len() == 1000 {
            store.insert_contents(std::mem::take(&mut batch)).await.unwrap();
        }
    }
    if !batch.is_empty() {
        store.insert_contents(batch).await.unwrap();
    }
    println!(
        "registered {total} contents ({granted} shared with the caller) in {:.1} s",
        start.elapsed().as_secs_f64()
    );

    let mut times = Vec::new();
    let mut seen = (0, 0);
    for _ in 0..rounds {
        let t = Instant::now();
        seen = list_shared(&http, &url, &token).await;
        times.push(t.elapsed());
    }
    times.sort();
    assert_eq!(
        seen.0, granted,
        "the listing shows every content shared with the caller"
    );
    println!(
        "list --shared: {} items in {} requests: median {:.1} ms, min {:.1} ms ({rounds} rounds)",
        seen.0,
        seen.1,
        times[rounds / 2].as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3
    );
}
