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
