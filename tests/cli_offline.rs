//! End to end: cached licences keep working with the server stopped,
//! uncached ones fail with a clear message, expiry bites, and content
//! protected offline is registered later by `rights sync`.

mod cli_support;

use cli_support::{Server, User};

#[test]
fn offline_use_and_queued_registration() {
    let mut server = Server::start();
    let alice = User::new("alice@example.com", true);
    let bob = User::new("bob@example.com", true);
    alice.signup(&server);
    bob.signup(&server);
    alice.write("cached.txt", b"read me offline");
    alice.write("uncached.txt", b"never opened online");
    alice.ok(&[
        "protect",
        "cached.txt",
        "uncached.txt",
        "--to",
        "bob@example.com:view",
        "--offline-days",
        "3",
    ]);
    alice.give("cached.txt.rights", &bob);
    alice.give("uncached.txt.rights", &bob);
    assert_eq!(bob.ok(&["cat", "cached.txt.rights"]), "read me offline");

    server.stop();
    assert_eq!(bob.ok(&["cat", "cached.txt.rights"]), "read me offline");
    let err = bob.fails(&["cat", "uncached.txt.rights"]);
    assert!(err.contains("cannot be reached") && err.contains("no licence"), "{err}");
    // The owner opens offline, and protects offline (registration queued).
    assert_eq!(alice.ok(&["cat", "uncached.txt.rights"]), "never opened online");
    alice.write("new.txt", b"made on a plane");
    alice.ok(&["protect", "new.txt", "--to", "bob@example.com:view"]);
    let status: serde_json::Value = serde_json::from_str(&alice.ok(&["status", "--json"])).unwrap();
    assert_eq!(status["pending_registrations"].as_array().unwrap().len(), 1);
    let info = alice.ok(&["info", "new.txt.rights"]);
    assert!(info.contains("queued"), "{info}");
    alice.fails(&["sync"]);

    let server = server.restart();
    alice.ok(&["sync"]);
    let status: serde_json::Value = serde_json::from_str(&alice.ok(&["status", "--json"])).unwrap();
    assert!(status["pending_registrations"].as_array().unwrap().is_empty());
    alice.give("new.txt.rights", &bob);
    assert_eq!(bob.ok(&["cat", "new.txt.rights"]), "made on a plane");
    drop(server);
}

#[test]
fn expired_grant_and_expired_cached_licence() {
    let mut server = Server::start();
    let alice = User::new("alice@example.com", true);
    let carol = User::new("carol@other.org", true);
    alice.signup(&server);
    carol.signup(&server);
    let soon = time::OffsetDateTime::now_utc() + time::Duration::seconds(4);
    let soon = soon.format(&time::format_description::well_known::Rfc3339).unwrap();
    alice.write("short-lived.txt", b"for a few seconds");
    alice.ok(&[
        "protect",
        "short-lived.txt",
        "--to",
        &format!("carol@other.org:view:{soon}"),
    ]);
    alice.give("short-lived.txt.rights", &carol);
    assert_eq!(carol.ok(&["cat", "short-lived.txt.rights"]), "for a few seconds");
    // Wait until the grant (and so the licence) has lapsed.
    let end = std::time::SystemTime::now() + std::time::Duration::from_secs(6);
    while std::time::SystemTime::now() < end {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    server.stop();
    let err = carol.fails(&["cat", "short-lived.txt.rights"]);
    // The grant itself ended: renewing cannot help, so no "connect and try again".
    assert!(err.contains("expired on") && !err.contains("try again"), "{err}");
    let server = server.restart();
    let err = carol.fails(&["cat", "short-lived.txt.rights"]);
    assert!(err.contains("no rights") || err.contains("expired"), "{err}");
    drop(server);
}

/// A device that has never reached its server (it is down) still protects
/// and opens its own files; registration waits in the queue.
#[test]
fn owner_works_with_no_server_at_all() {
    let user = User::new("olga@example.com", true);
    user.login_offline();

    user.write("diary.txt", b"dear diary");
    let out = user.run(&["protect", "diary.txt"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("rights sync"));
    assert_eq!(user.ok(&["cat", "diary.txt.rights"]), "dear diary");
    let info = user.ok(&["info", "diary.txt.rights"]);
    assert!(info.contains("olga@example.com") && info.contains("queued"), "{info}");
    let status: serde_json::Value = serde_json::from_str(&user.ok(&["status", "--json"])).unwrap();
    assert_eq!(status["pending_registrations"].as_array().unwrap().len(), 1);
    // Her key travels in the file: no licence to list, and `info` knows.
    assert_eq!(status["licences"].as_array().unwrap().len(), 0, "{status}");
    let info: serde_json::Value = serde_json::from_str(&user.ok(&["info", "diary.txt.rights", "--json"])).unwrap();
    assert_eq!(info["cached_licence"]["owner"], true, "{info}");
    let err = user.fails(&["sync"]);
    assert!(err.contains("pending"), "{err}");
    user.ok(&["unprotect", "diary.txt.rights"]);
    assert_eq!(std::fs::read(user.docs().join("diary.txt")).unwrap(), b"dear diary");
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

/// `POST /v1/opens` as `who` sends it; the server's answer.
fn report(who: &User, body: serde_json::Value) -> Result<serde_json::Value, rightsfs::client::ClientError> {
    who.session().call(reqwest::Method::POST, "/v1/opens", Some(&body))
}

/// Opens a cached licence serves while the server is away are recorded on
/// the reader's device (sealed, private) and reach the owner's log once
/// the server is back, with their own time and marked as offline; the
/// owner exports the log as JSON and CSV. Nobody can report opens for
/// another account or for content their device never had a licence for.
#[test]
fn offline_opens_reach_the_owners_log_and_cannot_be_forged() {
    let mut server = Server::start();
    let alice = User::new("alice@example.com", true);
    let bob = User::new("bob@example.com", true);
    let mallory = User::new("mallory@example.com", true);
    for u in [&alice, &bob, &mallory] {
        u.signup(&server);
    }
    alice.write("plan.txt", b"the plan");
    alice.ok(&[
        "protect",
        "plan.txt",
        "--to",
        "bob@example.com:view",
        "--offline-days",
        "3",
    ]);
    alice.give("plan.txt.rights", &bob);
    assert_eq!(bob.ok(&["cat", "plan.txt.rights"]), "the plan");
    let id = json(&alice.ok(&["info", "plan.txt.rights", "--json"]))["content_id"]
        .as_str()
        .unwrap()
        .to_string();

    server.stop();
    let before = rightsfs::policy::now();
    assert_eq!(bob.ok(&["cat", "plan.txt.rights"]), "the plan");
    let st = json(&bob.ok(&["status", "--json"]));
    assert_eq!(st["unreported_offline_opens"], 1, "{st}");
    // The record is private and sealed: not even the content id shows.
    let dir = bob.paths().data_dir.join("opens");
    let files: Vec<_> = walkdir(&dir);
    assert_eq!(files.len(), 1, "{files:?}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let raw = std::fs::read(&files[0]).unwrap();
    assert!(!String::from_utf8_lossy(&raw).contains(&id), "the record is sealed");

    let server = server.restart();
    bob.ok(&["sync"]);
    assert_eq!(json(&bob.ok(&["status", "--json"]))["unreported_offline_opens"], 0);
    let log = json(&alice.ok(&["track", "plan.txt.rights", "--json"]));
    let late: Vec<&serde_json::Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["offline"] == true)
        .collect();
    assert_eq!(late.len(), 1, "{log}");
    assert_eq!(late[0]["email"], "bob@example.com");
    assert_eq!(late[0]["result"], "opened_offline");
    assert_eq!(late[0]["rights"], "view");
    let at = time::OffsetDateTime::parse(
        late[0]["time"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
    .unix_timestamp();
    assert!(at >= before && late[0]["reported_at"].is_string(), "{log}");
    // The text log marks it; the CSV export has it; so does --all.
    let table = alice.ok(&["track", "plan.txt"]);
    assert!(table.contains("opened (offline, reported"), "{table}");
    let csv = alice.ok(&["track", &id, "--format", "csv"]);
    assert!(
        csv.starts_with("content_id,name,time,email,device_id,result,offline,"),
        "{csv}"
    );
    assert!(
        csv.lines()
            .any(|l| l.contains("opened_offline") && l.contains("bob@example.com")),
        "{csv}"
    );
    let all = json(&alice.ok(&["track", "--all", "--json"]));
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|e| e["content_id"] == id.as_str() && e["offline"] == true),
        "{all}"
    );

    // Forgeries, through the real server with real accounts.
    let open =
        |at: i64| serde_json::json!({ "content_id": id, "at": at, "opened": true, "rights": "view", "reason": "" });
    let now = rightsfs::policy::now();
    // Mallory never had a licence for alice's file: nothing is recorded.
    let r = report(&mallory, serde_json::json!({ "opens": [open(now)] })).unwrap();
    assert_eq!(r["results"], serde_json::json!(["no_licence"]));
    // Nor can she speak for bob: the account comes from the token only.
    let mut as_bob = open(now);
    as_bob["email"] = "bob@example.com".into();
    let e = report(&mallory, serde_json::json!({ "opens": [as_bob] })).unwrap_err();
    assert_eq!(e.server_code().map(|(s, _)| s), Some(422), "{e}");
    // Bob cannot date an open before his licence, or in the future, and a
    // report sent again is recorded once.
    let r = report(
        &bob,
        serde_json::json!({ "opens": [open(before - 86_400), open(now + 86_400)] }),
    )
    .unwrap();
    assert_eq!(r["results"], serde_json::json!(["bad_time", "bad_time"]));
    // (A second after now: the real open may have been in this very second.)
    let r = report(&bob, serde_json::json!({ "opens": [open(now + 1), open(now + 1)] })).unwrap();
    assert_eq!(r["results"], serde_json::json!(["recorded", "duplicate"]));
    let e = report(&bob, serde_json::json!({ "opens": vec![open(now); 101] })).unwrap_err();
    assert_eq!(e.server_code().map(|(s, _)| s), Some(413), "{e}");
    let log = json(&alice.ok(&["track", "plan.txt.rights", "--json"]));
    assert!(!log.to_string().contains("mallory"), "{log}");
    assert_eq!(
        log.as_array().unwrap().iter().filter(|e| e["offline"] == true).count(),
        2,
        "the one real open and bob's own report: {log}"
    );
    drop(server);
}

/// Every file under `dir`.
fn walkdir(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().unwrap().is_dir() {
            out.extend(walkdir(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}
