//! End to end: how long access lasts and what people are told when it
//! ends. Durations in every unit, a one-day offline default the server can
//! cap lower, "expired on ..." for a lapsed grant (online and offline), and
//! a signed-out reader told which server to log in to.

mod cli_support;

use std::time::{Duration, SystemTime};

use cli_support::{Server, User};

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn rfc3339(s: &serde_json::Value) -> i64 {
    time::OffsetDateTime::parse(s.as_str().unwrap(), &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp()
}

#[test]
fn durations_offline_default_and_the_servers_cap() {
    let server = Server::start_with(&["--max-offline-days", "2"]);
    let alice = User::new("alice@example.com", true);
    let bob = User::new("bob@example.com", true);
    alice.signup(&server);
    bob.signup(&server);

    alice.write("a.txt", b"seconds and weeks");
    alice.ok(&[
        "protect",
        "a.txt",
        "--to",
        "bob@example.com:view:120s",
        "--expires",
        "2w",
    ]);
    let info = json(&alice.ok(&["info", "a.txt.rights", "--json"]));
    let p = &info["policy_in_file"];
    let grant_end = p["grants"][0]["expires"].as_i64().unwrap();
    assert!((unix_now() + 100..=unix_now() + 121).contains(&grant_end), "{p}");
    assert!(p["expires"].as_i64().unwrap() > unix_now() + 13 * 86_400, "{p}");
    assert_eq!(p["offline_days"], 1, "one day unless told otherwise");

    // The file asks for 30 days offline; this server allows 2.
    alice.write("b.txt", b"capped");
    alice.ok(&["protect", "b.txt", "--offline-days", "30"]);
    let out = alice.ok(&["share", "b.txt.rights", "--to", "bob@example.com:view"]);
    assert!(out.contains("readable offline until"), "{out}");
    alice.give("b.txt.rights", &bob);
    assert_eq!(bob.ok(&["cat", "b.txt.rights"]), "capped");
    let info = json(&bob.ok(&["info", "b.txt.rights", "--json"]));
    let until = rfc3339(&info["readable_offline_until"]);
    assert!(
        until <= unix_now() + 2 * 86_400 && until > unix_now() + 86_400,
        "{info}"
    );
    let text = bob.ok(&["info", "b.txt.rights"]);
    assert!(text.contains("readable offline until"), "{text}");
}

#[test]
fn a_lapsed_grant_says_when_it_expired() {
    let mut server = Server::start();
    let alice = User::new("alice@example.com", true);
    let carol = User::new("carol@other.org", true);
    alice.signup(&server);
    carol.signup(&server);
    alice.write("short.txt", b"for a few seconds");
    alice.ok(&["protect", "short.txt", "--to", "carol@other.org:view:3s"]);
    alice.give("short.txt.rights", &carol);
    assert_eq!(carol.ok(&["cat", "short.txt.rights"]), "for a few seconds");
    let end = SystemTime::now() + Duration::from_secs(5);
    while SystemTime::now() < end {
        std::thread::sleep(Duration::from_millis(200));
    }
    server.stop();
    let err = carol.fails(&["cat", "short.txt.rights"]);
    assert!(err.contains("expired on") && err.contains("alice@example.com"), "{err}");
    assert!(!err.contains("try again"), "renewing cannot help: {err}");
    let server = server.restart();
    let err = carol.fails(&["cat", "short.txt.rights"]);
    assert!(err.contains("expired on") && err.contains("alice@example.com"), "{err}");

    // Someone not logged in is told which server the file belongs to.
    let dave = User::new("dave@example.com", true);
    alice.give("short.txt.rights", &dave);
    let err = dave.fails(&["cat", "short.txt.rights"]);
    assert!(err.contains(&server.url) && err.contains("rights login"), "{err}");
}
