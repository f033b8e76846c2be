//! End to end: signing up and in through the real `rights` binary against
//! a real rights-server whose mail goes over loopback SMTP. Every case is
//! one a new user (or a script) runs into: a two-step sign-up, a typo in
//! the code, signing in again on the same machine, a keystore that cannot
//! keep secrets.

mod cli_support;

use std::io::Write;
use std::process::Stdio;

use cli_support::{Server, User};

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

fn devices(u: &User) -> Vec<String> {
    json(&u.ok(&["devices", "--json"]))
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect()
}

/// Runs `rights ARGS` with stdin, stdout and stderr piped.
fn spawn_piped(u: &User, args: &[&str]) -> std::process::Child {
    u.command()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn two_step_signup_verifies_the_pending_code() {
    let server = Server::start();
    let bob = User::new("bob@example.com", true);
    let out = bob.ok(&["signup", "bob@example.com", "--server", &server.url, "--send-code"]);
    assert!(out.contains("--code"), "{out}");
    let code = server.smtp.code_for("bob@example.com", 0);
    // The second step names no server: the first one remembered it.
    bob.ok(&["signup", "bob@example.com", "--code", &code]);
    assert_eq!(
        server.smtp.mails_to("bob@example.com").len(),
        1,
        "no second code mailed"
    );
    assert_eq!(json(&bob.ok(&["whoami", "--json"]))["email"], "bob@example.com");
    // A given code is one try: a wrong one fails at once and says what to do.
    let err = bob.fails(&["login", "bob@example.com", "--code", "00000000"]);
    assert!(err.contains("rights login bob@example.com"), "{err}");
}

#[test]
fn a_mistyped_code_is_asked_for_again_while_tries_remain() {
    let server = Server::start();
    let carol = User::new("carol@example.com", true);
    let mut child = spawn_piped(&carol, &["signup", "carol@example.com", "--server", &server.url]);
    let code = server.smtp.code_for("carol@example.com", 0);
    let wrong = if code == "00000000" { "11111111" } else { "00000000" };
    let mut stdin = child.stdin.take().unwrap();
    for _ in 0..4 {
        writeln!(stdin, "{wrong}").unwrap();
    }
    writeln!(stdin, "{code}").unwrap();
    drop(stdin);
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("4 tries left"), "{err}");
    assert!(err.contains("1 try left"), "{err}");
    assert!(!err.contains("1 tries"), "{err}");
    assert_eq!(
        server.smtp.mails_to("carol@example.com").len(),
        1,
        "one code for all tries"
    );
    assert_eq!(devices(&carol).len(), 1);
}

#[test]
fn signing_in_again_keeps_this_machines_device() {
    let server = Server::start();
    let dan = User::new("dan@example.com", true);
    dan.signup(&server);
    let first = devices(&dan);
    assert_eq!(first.len(), 1);
    dan.signup(&server);
    assert_eq!(devices(&dan), first, "the same device, not a second one");

    // Another address on the same machine: warned, and dan's device here
    // does not stay behind on the server as a ghost.
    let other = User::new("dan@example.com", true);
    other.signup(&server);
    assert_eq!(devices(&other).len(), 2);
    let before = server.smtp.count();
    let mut child = spawn_piped(&dan, &["login", "erin@example.com", "--server", &server.url]);
    let code = server.smtp.code_for("erin@example.com", before);
    writeln!(child.stdin.take().unwrap(), "{code}").unwrap();
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("signed in as dan@example.com"), "{err}");
    assert_eq!(devices(&other).len(), 1, "dan's old device here was removed");
    assert_eq!(json(&dan.ok(&["whoami", "--json"]))["email"], "erin@example.com");
}

#[test]
fn a_keystore_that_cannot_keep_secrets_costs_no_code() {
    let server = Server::start();
    let fay = User::new("fay@example.com", false);
    let o = fay
        .command()
        .args([
            "signup",
            "fay@example.com",
            "--server",
            &server.url,
            "--keystore",
            "file",
        ])
        .env("RIGHTS_PASSPHRASE", "")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("passphrase"), "{err}");
    assert_eq!(server.smtp.count(), 0, "no code was mailed");
}

#[test]
fn status_and_logout_tell_the_truth_about_this_device() {
    let mut server = Server::start();
    let laptop = User::new("gil@example.com", true);
    let phone = User::new("gil@example.com", true);
    laptop.signup(&server);
    phone.signup(&server);
    assert_eq!(json(&laptop.ok(&["status", "--json"]))["session"], "active");

    // Logging out with --forget-device removes the device on the server,
    // and says what that means for the versions it saved.
    let out = phone.ok(&["logout", "--forget-device"]);
    assert!(out.contains("no longer accepted by any reader"), "{out}");
    assert_eq!(devices(&laptop).len(), 1);

    // A device removed from elsewhere learns it from `rights status`.
    phone.signup(&server);
    let laptop_id = json(&laptop.ok(&["whoami", "--json"]))["device_id"]
        .as_str()
        .unwrap()
        .to_string();
    phone.ok(&["devices", "--remove", &laptop_id]);
    let st = json(&laptop.ok(&["status", "--json"]));
    assert_eq!(st["session"], "device_removed", "{st}");
    let text = laptop.ok(&["status"]);
    assert!(
        text.contains("removed") && text.contains("rights login gil@example.com"),
        "{text}"
    );

    // Files protected here that never reached the server survive logout.
    server.stop();
    phone.write("draft.txt", b"written on the train");
    phone.ok(&["protect", "draft.txt"]);
    let o = phone.run(&["logout"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("not registered"), "{err}");
    let queue = phone.home.path().join("data/rightsfs/pending");
    let kept = std::fs::read_dir(&queue).unwrap().flatten().count();
    assert!(kept >= 1, "the queue was kept");
}

/// A browser signed in as a reader-only device (as the web viewer does)
/// is listed by `rights devices` with its kind, apart from full devices.
#[test]
fn devices_shows_reader_only_devices_as_readers() {
    let server = Server::start();
    let alice = User::new("alice@example.com", true);
    alice.signup(&server);
    std::thread::sleep(std::time::Duration::from_secs(2));
    let http = reqwest::blocking::Client::new();
    let seen = server.smtp.count();
    let started = http
        .post(format!("{}/v1/auth/start", server.url))
        .json(&serde_json::json!({"email": "alice@example.com"}))
        .send()
        .unwrap();
    assert_eq!(started.status().as_u16(), 202);
    let code = server.smtp.code_for("alice@example.com", seen);
    let key = rightsfs::crypto::DeviceKeyPair::generate().unwrap();
    let der = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, key.public().to_der());
    let verified = http
        .post(format!("{}/v1/auth/verify", server.url))
        .json(&serde_json::json!({"email": "alice@example.com", "code": code,
            "device_name": "phone browser", "device_public_key": der, "reader_only": true}))
        .send()
        .unwrap();
    assert_eq!(verified.status().as_u16(), 200);
    let table = alice.ok(&["devices"]);
    assert!(table.lines().next().unwrap().contains("KIND"), "{table}");
    let browser = table.lines().find(|l| l.contains("phone browser")).expect(&table);
    assert!(browser.contains("reader"), "{table}");
    let own = table.lines().find(|l| l.contains('*')).expect(&table);
    assert!(own.contains("device") && !own.contains("reader"), "{table}");
}

/// Each command is a process of its own. They share this device's access
/// token (kept in the keystore until it nears its end) instead of each
/// spending a refresh token, which the server counts as a sign-in (30 a
/// minute from one address): a script or a test that polls `rights status`
/// keeps working, and so does every command after it.
#[test]
fn commands_in_quick_succession_share_one_sign_in() {
    let server = Server::start();
    let u = User::new("pat@example.com", true);
    u.signup(&server);
    // 70 calls span at most two of the server's one-minute windows, so
    // one of them would see more than 30 refreshes.
    for i in 0..70 {
        let st = json(&u.ok(&["status", "--json"]));
        assert_eq!(st["session"], "active", "status number {i}: {st}");
    }
    assert_eq!(json(&u.ok(&["whoami", "--json"]))["email"], "pat@example.com");
}
