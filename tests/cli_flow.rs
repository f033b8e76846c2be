//! End to end: three users with their own homes drive the real `rights`
//! binary against a real rights-server: sign-up by mailed code, protect,
//! share, read, unshare, revoke and track.

mod cli_support;

use cli_support::{Server, User};

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

#[test]
fn protect_share_read_unshare_revoke_track() {
    let server = Server::start();
    let alice = User::new("alice@example.com", true);
    let bob = User::new("bob@example.com", true);
    let carol = User::new("carol@other.org", true);
    for u in [&alice, &bob, &carol] {
        u.signup(&server);
    }
    let who = json(&alice.ok(&["whoami", "--json"]));
    assert_eq!(who["email"], "alice@example.com");

    let secret = b"Q3 numbers: up and to the right\n".repeat(1000);
    alice.write("report.txt", &secret);
    alice.ok(&[
        "protect",
        "report.txt",
        "--to",
        "bob@example.com:view,edit",
        "--to",
        "carol@other.org:view:7d",
        "--offline-days",
        "0",
    ]);
    assert!(!alice.docs().join("report.txt").exists(), "the original is replaced");
    let protected = std::fs::read(alice.docs().join("report.txt.rights")).unwrap();
    assert!(
        !protected.windows(10).any(|w| w == &secret[..10]),
        "no plaintext on disk"
    );
    assert_eq!(alice.ok(&["cat", "report.txt.rights"]).as_bytes(), &secret[..]);

    let info = json(&alice.ok(&["info", "report.txt.rights", "--json"]));
    assert_eq!(info["owner"], "alice@example.com");
    assert_eq!(info["registration"], "registered");

    alice.give("report.txt.rights", &bob);
    alice.give("report.txt.rights", &carol);
    assert_eq!(bob.ok(&["cat", "report.txt.rights"]).as_bytes(), &secret[..]);
    assert_eq!(carol.ok(&["cat", "report.txt.rights"]).as_bytes(), &secret[..]);
    let err = carol.fails(&["unprotect", "report.txt.rights"]);
    assert!(err.contains("ask its owner alice@example.com"), "{err}");
    assert!(carol.docs().join("report.txt.rights").exists());

    // Someone with no grant is told whom to ask.
    let dave = User::new("dave@example.com", true);
    dave.signup(&server);
    alice.give("report.txt.rights", &dave);
    let err = dave.fails(&["cat", "report.txt.rights"]);
    assert!(err.contains("alice@example.com"), "{err}");

    // Sharing more is a server-side change: dave can read without a new file.
    alice.ok(&["share", "report.txt.rights", "--to", "dave@example.com:view"]);
    assert_eq!(dave.ok(&["cat", "report.txt.rights"]).as_bytes(), &secret[..]);
    alice.ok(&["unshare", "report.txt.rights", "--from", "dave@example.com"]);
    dave.fails(&["cat", "report.txt.rights"]);

    let shared = bob.ok(&["list", "--shared-with-me", "--json"]);
    assert!(
        shared.contains(&info["content_id"].as_str().unwrap().to_string()),
        "{shared}"
    );

    alice.ok(&["revoke", "report.txt.rights"]);
    let err = bob.fails(&["cat", "report.txt.rights"]);
    assert!(err.contains("revoked"), "{err}");
    // The owner still opens it.
    assert_eq!(alice.ok(&["cat", "report.txt.rights"]).as_bytes(), &secret[..]);

    let log = alice.ok(&["track", "report.txt.rights", "--json"]);
    for u in ["bob@example.com", "carol@other.org", "dave@example.com"] {
        assert!(log.contains(u), "{u} missing from the access log: {log}");
    }
    let table = alice.ok(&["track", "report.txt.rights"]);
    assert!(table.contains("WHO") && table.contains("bob@example.com"), "{table}");
    let err = bob.fails(&["track", "report.txt.rights"]);
    assert!(err.contains("owner"), "{err}");

    // Owners may remove protection; the plain file comes back, the protected one goes.
    alice.ok(&["unprotect", "report.txt.rights"]);
    assert_eq!(std::fs::read(alice.docs().join("report.txt")).unwrap(), secret);
    assert!(!alice.docs().join("report.txt.rights").exists());

    let devices = json(&alice.ok(&["devices", "--json"]));
    assert!(!devices.is_null());
    alice.ok(&["logout"]);
    let err = alice.fails(&["whoami"]);
    assert!(err.contains("rights login"), "{err}");
    assert!(
        !alice.home.path().join("cache/rightsfs/licences").exists(),
        "cached licences are wiped"
    );
    assert!(
        !alice.home.path().join("data/rightsfs/credentials.sealed").exists(),
        "keys are wiped"
    );
    let err = alice.fails(&["cat", "report.txt.rights"]);
    assert!(
        err.contains("rights login") || err.contains("not a protected") || err.contains("cannot open"),
        "{err}"
    );
}

#[test]
fn recursive_protect_is_rerunnable_and_completions_print() {
    let server = Server::start();
    let alice = User::new("alice@example.com", true);
    alice.signup(&server);
    let d = alice.docs().join("tree/sub");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(alice.docs().join("tree/a.txt"), b"a").unwrap();
    std::fs::write(d.join("b.txt"), b"b").unwrap();
    // A mount's side file for a long name stays as it is.
    let side = d.join(format!(".rights-long-{}.name", "0".repeat(64)));
    std::fs::write(&side, b"a name of 249 bytes or more").unwrap();
    alice.fails(&["protect", "tree"]);
    alice.ok(&["protect", "-r", "tree"]);
    assert!(d.join("b.txt.rights").exists() && !d.join("b.txt").exists());
    assert_eq!(std::fs::read(&side).unwrap(), b"a name of 249 bytes or more");
    std::fs::write(d.join("c.txt"), b"c").unwrap();
    let out = json(&alice.ok(&["protect", "-r", "tree", "--json"]));
    assert_eq!(out.as_array().unwrap().len(), 1, "only the new file: {out}");
    assert_eq!(alice.ok(&["cat", "tree/sub/c.txt.rights"]), "c");
    for sh in ["bash", "zsh", "fish"] {
        assert!(alice.ok(&["completions", sh]).contains("protect"));
    }
    // Her own files carry her key in their headers: no licence to list,
    // and all three are registered.
    let status = json(&alice.ok(&["status", "--json"]));
    assert_eq!(status["licences"].as_array().unwrap().len(), 0, "{status}");
    assert_eq!(
        status["pending_registrations"].as_array().map_or(0, |a| a.len()),
        0,
        "{status}"
    );
}

#[test]
fn send_protects_and_mails_over_smtp_or_to_an_eml_file() {
    let server = Server::start();
    let alice = User::new("alice@example.com", true);
    let bob = User::new("bob@example.com", true);
    alice.signup(&server);
    bob.signup(&server);
    alice.write("memo.txt", b"for bob only");
    alice.ok(&["send", "memo.txt", "--to", "bob@example.com", "--eml-out", "memo.eml"]);
    let eml = std::fs::read_to_string(alice.docs().join("memo.eml")).unwrap();
    assert!(eml.contains("memo.txt.rights") && eml.contains("bob@example.com"));
    assert!(!eml.contains("for bob only"));
    assert!(!alice.docs().join("memo.txt").exists());

    let cfg = alice.home.path().join("config/rightsfs/config.toml");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(&format!(
        "\n[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n",
        server.smtp.port
    ));
    std::fs::write(&cfg, text).unwrap();
    let before = server.smtp.count();
    alice.ok(&[
        "send",
        "memo.txt.rights",
        "--to",
        "bob@example.com",
        "--to",
        "dave@example.com",
        "--message",
        "see attached",
        "--smtp",
    ]);
    let mails = server.smtp.mails.lock().unwrap();
    let sent: Vec<&String> = mails[before..]
        .iter()
        .filter(|m| m.contains("Subject: Protected file: memo.txt.rights"))
        .collect();
    // One mail each: neither recipient learns of the other.
    assert_eq!(sent.len(), 2, "{sent:?}");
    for mail in &sent {
        assert!(mail.contains("see attached"));
        assert!(
            mail.contains("bob@example.com") != mail.contains("dave@example.com"),
            "a mail names both recipients: {mail}"
        );
    }
    drop(mails);
    alice.give("memo.txt.rights", &bob);
    assert_eq!(bob.ok(&["cat", "memo.txt.rights"]), "for bob only");

    // Without --smtp the server mails it, granting view to a newcomer; the
    // message travels protected, as a file of its own made in memory.
    let before_bytes = std::fs::read(alice.docs().join("memo.txt.rights")).unwrap();
    alice.write("note.txt", b"the secret note");
    let out = alice.ok(&[
        "send",
        "memo.txt.rights",
        "--to",
        "carol@example.com",
        "--message-file",
        "note.txt",
    ]);
    assert!(out.contains("mailed memo.txt.rights to carol@example.com"), "{out}");
    assert_eq!(
        std::fs::read(alice.docs().join("memo.txt.rights")).unwrap(),
        before_bytes,
        "the local file is not changed"
    );
    let mail = server
        .smtp
        .mails_to("carol@example.com")
        .pop()
        .expect("a mail to carol");
    for needle in [
        "filename=\"memo.txt.rights\"",
        "filename=\"message.txt.rights\"",
        "/app/#file=",
    ] {
        assert!(mail.contains(needle), "{needle}: {mail}");
    }
    assert!(!mail.contains("the secret note"), "the message is protected: {mail}");
    let names: Vec<String> = std::fs::read_dir(alice.docs())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names
            .iter()
            .any(|n| n.contains("message") || n.starts_with("note.txt.")),
        "nothing of the message on disk: {names:?}"
    );
    let carol = User::new("carol@example.com", true);
    carol.signup(&server);
    alice.give("memo.txt.rights", &carol);
    assert_eq!(carol.ok(&["cat", "memo.txt.rights"]), "for bob only");
}

/// Files are named by path, by the name this device knows them by, or by
/// content id, wherever a file is meant; `list` shows names, and `list
/// --shared` what others shared, with owner, rights and end.
#[test]
fn names_and_content_ids_work_wherever_a_file_is_meant() {
    let server = Server::start();
    let alice = User::new("alice@example.com", true);
    let bob = User::new("bob@example.com", true);
    alice.signup(&server);
    bob.signup(&server);
    alice.write("q3.txt", b"numbers");
    alice.ok(&["protect", "q3.txt", "--to", "bob@example.com:view:30d"]);
    let mine = json(&alice.ok(&["list", "--json"]));
    let entry = &mine.as_array().unwrap()[0];
    assert_eq!(entry["name"], "q3.txt.rights", "{mine}");
    let id = entry["content_id"].as_str().unwrap().to_string();
    assert!(alice.ok(&["list"]).contains("q3.txt.rights"));

    // By name (the original is gone, so this is the index) and by id.
    assert_eq!(
        json(&alice.ok(&["info", "q3.txt", "--json"]))["content_id"],
        id.as_str()
    );
    alice.ok(&["share", &id, "--to", "carol@example.com:view"]);
    let info = json(&alice.ok(&["info", "q3.txt.rights", "--json"]));
    assert!(info["server"].to_string().contains("carol@example.com"), "{info}");
    assert!(alice.ok(&["track", "q3.txt"]).contains("No access recorded yet"));

    // Moved: the old place is named; the new path re-indexes it.
    std::fs::create_dir(alice.docs().join("sub")).unwrap();
    std::fs::rename(
        alice.docs().join("q3.txt.rights"),
        alice.docs().join("sub/q3.txt.rights"),
    )
    .unwrap();
    let err = alice.fails(&["info", "q3.txt"]);
    assert!(err.contains("no longer at"), "{err}");
    alice.ok(&["info", "sub/q3.txt.rights"]);
    assert_eq!(
        json(&alice.ok(&["info", "q3.txt", "--json"]))["content_id"],
        id.as_str()
    );
    // Two files of one name: the command asks which.
    alice.write("q3.txt", b"another");
    alice.ok(&["protect", "q3.txt"]);
    let err = alice.fails(&["info", "q3.txt"]);
    assert!(err.contains("several") && err.contains(&id), "{err}");
    let err = alice.fails(&["revoke", "nothing-like-this.txt"]);
    assert!(err.contains("rights list"), "{err}");

    // Bob sees what is shared with him, named once he has opened it.
    let shared = json(&bob.ok(&["list", "--shared", "--json"]));
    let s = &shared.as_array().unwrap()[0];
    assert_eq!(s["owner"], "alice@example.com", "{shared}");
    assert_eq!(s["your_rights"], serde_json::json!(["view"]), "{shared}");
    assert!(s["your_access_ends"].is_string() && s["name"].is_null(), "{shared}");
    std::fs::copy(alice.docs().join("sub/q3.txt.rights"), bob.docs().join("q3.txt.rights")).unwrap();
    assert_eq!(bob.ok(&["cat", "q3.txt.rights"]), "numbers");
    let text = bob.ok(&["list", "--shared"]);
    assert!(
        text.contains("q3.txt.rights") && text.contains("alice@example.com") && text.contains("view"),
        "{text}"
    );

    // Revoking by path; info by content id.
    alice.ok(&["revoke", &format!("{}/sub/q3.txt.rights", alice.docs().display())]);
    assert!(json(&alice.ok(&["info", &id, "--json"]))["server"]["revoked"] == true);
    drop(server);
}
