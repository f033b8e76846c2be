//! Attacks on the licensing server from the network, each performed for
//! real against the `rights-server` binary over loopback HTTP: guessing
//! codes in a burst, locking a stranger out, replaying refresh tokens,
//! using tokens after logout, a share holder taking over a policy,
//! making the server flood people with mail, passing a forged licence
//! under a device certificate the server already checked.

mod server_support;

use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};
use server_support::{Server, Smtp, postgres_url, unique};

fn setup(extra: &[&str]) -> (tempfile::TempDir, Smtp, Server) {
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::start();
    let server = Server::start(dir.path(), &smtp, extra);
    (dir, smtp, server)
}

/// A POST answered with its status, `Retry-After` (seconds) and JSON body.
fn post(server: &Server, path: &str, body: &Value) -> (u16, Option<u64>, Value) {
    answer(
        server
            .http
            .post(format!("{}{path}", server.url))
            .json(body)
            .send()
            .unwrap(),
    )
}

/// Status, `Retry-After` (seconds) and JSON body of an answer.
fn answer(resp: reqwest::blocking::Response) -> (u16, Option<u64>, Value) {
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().expect("Retry-After in seconds"));
    let v = serde_json::from_slice(&resp.bytes().unwrap()).unwrap_or(Value::Null);
    (status, retry, v)
}

fn device_key() -> String {
    let d = rightsfs::crypto::DeviceKeyPair::generate().unwrap();
    base64::engine::general_purpose::STANDARD.encode(d.public().to_der())
}

fn verify_body(email: &str, code: &str, der: &str) -> Value {
    json!({"email": email, "code": code, "device_name": "laptop", "device_public_key": der})
}

/// Mails a code to `email` and reads it from the SMTP server.
fn start(server: &Server, smtp: &Smtp, email: &str) -> String {
    let seen = smtp.count();
    let (s, _, v) = post(server, "/v1/auth/start", &json!({"email": email}));
    assert_eq!(s, 202, "{v}");
    smtp.code_for(email, seen)
}

fn sleep_secs(s: u64) {
    std::thread::sleep(std::time::Duration::from_secs(s));
}

/// Sign-in backoff for a burst: its first wait must outlast the burst. The
/// server keeps time in whole seconds, so a wait of 1 s can end a moment
/// after the fifth guess, and a guess after the wait is rightly checked.
const BURST_BACKOFF: &str = "5";

/// 40 wrong guesses at once: only the free ones are checked, the rest are
/// refused with 429 and `Retry-After`, and the right code still works once
/// the wait is over (a burst is throttled; nobody is locked out). The
/// server must run with [`BURST_BACKOFF`].
fn burst_of_guesses(server: &Server, smtp: &Smtp, email: &str) {
    let good = start(server, smtp, email);
    let der = device_key();
    let wrong: Vec<String> = (0..40u32)
        .map(|i| format!("{:08}", (good.parse::<u32>().unwrap() + 1 + i) % 100_000_000))
        .collect();
    let answers: Vec<(u16, Option<u64>, Value)> = std::thread::scope(|s| {
        let hs: Vec<_> = wrong
            .iter()
            .map(|w| s.spawn(|| post(server, "/v1/auth/verify", &verify_body(email, w, &der))))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let checked = answers.iter().filter(|a| a.0 == 401).count();
    let throttled: Vec<_> = answers.iter().filter(|a| a.0 == 429).collect();
    assert!(checked <= 5, "{checked} guesses were checked against a limit of 5");
    assert_eq!(checked + throttled.len(), 40, "{answers:?}");
    for (_, retry, v) in &throttled {
        assert!(retry.is_some_and(|r| r >= 1), "429 without Retry-After: {v}");
        assert_eq!(v["error"]["code"], "rate_limited", "{v}");
    }
    // Throttled, not locked out: once the wait is over, the code works.
    let mut tries = 0;
    loop {
        let (s, retry, v) = post(server, "/v1/auth/verify", &verify_body(email, &good, &der));
        if s == 200 {
            break;
        }
        assert_eq!(s, 429, "{v}");
        tries += 1;
        assert!(tries < 4, "the right code never got through: {v}");
        sleep_secs(retry.unwrap() + 1);
    }
}

#[test]
fn concurrent_code_guesses_are_counted_before_they_are_checked() {
    let (_dir, smtp, server) = setup(&["--signin-backoff", BURST_BACKOFF, "--auth-per-minute", "1000"]);
    burst_of_guesses(&server, &smtp, "victim@example.com");
}

#[test]
fn concurrent_code_guesses_are_counted_before_they_are_checked_postgres() {
    let Some(url) = postgres_url() else { return };
    let (_dir, smtp, server) = setup(&[
        "--database",
        &url,
        "--signin-backoff",
        BURST_BACKOFF,
        "--auth-per-minute",
        "1000",
    ]);
    burst_of_guesses(&server, &smtp, &format!("victim-{}@example.com", unique()));
}

/// A stranger asking for codes for someone else's address neither replaces
/// the code the owner holds nor keeps the owner from signing in.
fn stranger_cannot_lock_out(server: &Server, smtp: &Smtp, email: &str) {
    let code = start(server, smtp, email);
    let mut refused = 0;
    for _ in 0..10 {
        let (s, retry, v) = post(server, "/v1/auth/start", &json!({"email": email}));
        assert!(s == 429 || s == 202, "{v}");
        if s == 429 {
            assert!(retry.is_some(), "{v}");
            refused += 1;
        }
    }
    assert!(refused > 0, "ten code requests in a row were all mailed");
    // Wrong guesses by the stranger do not kill the code either.
    let der = device_key();
    let wrong = if code == "00000000" { "00000001" } else { "00000000" };
    for _ in 0..3 {
        assert_eq!(post(server, "/v1/auth/verify", &verify_body(email, wrong, &der)).0, 401);
    }
    // Once the mail backoff allows, a new request mails the same code again.
    sleep_secs(2);
    let again = start(server, smtp, email);
    assert_eq!(again, code, "asking again must not replace a live code");
    for mail in smtp.mails_to(email) {
        assert!(mail.contains(&code), "a later mail carried another code");
    }
    let (s, _, v) = post(server, "/v1/auth/verify", &verify_body(email, &code, &der));
    assert_eq!(s, 200, "{v}");
}

#[test]
fn strangers_asking_for_codes_do_not_replace_or_lock_the_owners_code() {
    let (_dir, smtp, server) = setup(&["--signin-backoff", "1", "--auth-per-minute", "1000"]);
    stranger_cannot_lock_out(&server, &smtp, "owner@example.com");
}

#[test]
fn strangers_asking_for_codes_do_not_replace_or_lock_the_owners_code_postgres() {
    let Some(url) = postgres_url() else { return };
    let (_dir, smtp, server) = setup(&["--database", &url, "--signin-backoff", "1", "--auth-per-minute", "1000"]);
    stranger_cannot_lock_out(&server, &smtp, &format!("owner-{}@example.com", unique()));
}

/// Logout, device removal and refresh-token replay end a session at once.
fn tokens_end(server: &Server, smtp: &Smtp, email: &str) {
    // Logout: the access token dies with the session, not 15 minutes later.
    let a = server.login(smtp, email, true);
    assert_eq!(server.get("/v1/me", &a.access).0, 200);
    assert_eq!(
        server
            .post("/v1/auth/logout", None, json!({"refresh_token": a.refresh}))
            .0,
        204
    );
    assert_eq!(
        server.get("/v1/me", &a.access).0,
        401,
        "access token works after logout"
    );
    let (s, _, _) = post(server, "/v1/auth/refresh", &json!({"refresh_token": a.refresh}));
    assert_eq!(s, 401);

    // Rotation: each refresh hands out a new refresh token and spends the old.
    let b = server.login(smtp, email, false);
    let (s, _, r1) = post(server, "/v1/auth/refresh", &json!({"refresh_token": b.refresh}));
    assert_eq!(s, 200, "{r1}");
    let rt1 = r1["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rt1, b.refresh);
    let (s, _, r2) = post(server, "/v1/auth/refresh", &json!({"refresh_token": rt1}));
    assert_eq!(s, 200, "{r2}");
    let rt2 = r2["refresh_token"].as_str().unwrap().to_string();
    let access2 = r2["access_token"].as_str().unwrap().to_string();
    assert_eq!(server.get("/v1/me", &access2).0, 200);
    // A thief replays the stolen (now spent) token: the whole session ends.
    let (s, _, v) = post(server, "/v1/auth/refresh", &json!({"refresh_token": rt1}));
    assert_eq!(s, 401, "{v}");
    assert_eq!(server.get("/v1/me", &access2).0, 401, "access survived a replay");
    let (s, _, v) = post(server, "/v1/auth/refresh", &json!({"refresh_token": rt2}));
    assert_eq!(s, 401, "the newest refresh token survived a replay: {v}");
    assert_eq!(server.get("/v1/me", &b.access).0, 401);

    // Device removal: that device's tokens die at once, the others live.
    let c = server.login(smtp, email, false);
    let d = server.login(smtp, email, false);
    let (s, _) = server.call(
        Method::DELETE,
        &format!("/v1/devices/{}", d.device_id),
        Some(&c.access),
        None,
    );
    assert_eq!(s, 204);
    assert_eq!(server.get("/v1/me", &d.access).0, 401);
    assert_eq!(
        post(server, "/v1/auth/refresh", &json!({"refresh_token": d.refresh})).0,
        401
    );
    assert_eq!(server.get("/v1/me", &c.access).0, 200);
}

#[test]
fn logout_device_removal_and_refresh_replay_end_sessions_at_once() {
    let (_dir, smtp, server) = setup(&["--signin-backoff", "1", "--auth-per-minute", "1000"]);
    tokens_end(&server, &smtp, "tokens@example.com");
}

#[test]
fn logout_device_removal_and_refresh_replay_end_sessions_at_once_postgres() {
    let Some(url) = postgres_url() else { return };
    let (_dir, smtp, server) = setup(&["--database", &url, "--signin-backoff", "1", "--auth-per-minute", "1000"]);
    tokens_end(&server, &smtp, &format!("tokens-{}@example.com", unique()));
}

/// A server writing its mail to the outbox, logging to `log`.
fn start_outbox(data: &std::path::Path, log: &std::path::Path) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rights-server"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .env("RIGHTS_SERVER_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().strip_prefix("listening on ").expect(&line).to_string();
    (child, url)
}

fn mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Every file of the data folder that exists, with the mode it must have.
fn server_files(data: &std::path::Path) -> Vec<(std::path::PathBuf, u32)> {
    let mut out = vec![(data.to_path_buf(), 0o700), (data.join("outbox"), 0o700)];
    for name in ["server-keys.bin", "rights.db", "rights.db-wal", "rights.db-shm"] {
        if data.join(name).exists() {
            out.push((data.join(name), 0o600));
        }
    }
    for e in std::fs::read_dir(data.join("outbox")).unwrap() {
        out.push((e.unwrap().path(), 0o600));
    }
    out
}

fn assert_private(data: &std::path::Path) {
    let files = server_files(data);
    assert!(
        files.iter().any(|(p, _)| p.ends_with("rights.db-wal")),
        "no WAL: {files:?}"
    );
    assert!(
        files.iter().any(|(p, _)| p.extension().is_some_and(|e| e == "eml")),
        "no mail: {files:?}"
    );
    for (p, want) in files {
        assert_eq!(mode(&p), want, "{} is {:o}", p.display(), mode(&p));
    }
}

#[test]
fn server_files_are_private_even_when_an_older_version_left_them_open() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("server.log");
    let ask_code = |url: &str, email: &str| {
        let r = reqwest::blocking::Client::new()
            .post(format!("{url}/v1/auth/start"))
            .json(&json!({"email": email}))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 202);
    };
    // A fresh server: its key file, database, WAL and code mails are private.
    let (mut child, url) = start_outbox(&data, &log);
    ask_code(&url, "alice@example.com");
    assert_private(&data);
    child.kill().unwrap();
    child.wait().unwrap();

    // An older version left everything readable by other users.
    for (p, _) in server_files(&data) {
        let m = if p.is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m)).unwrap();
    }
    std::fs::write(data.join("outbox/old-code.eml"), "Subject: code 12345678\r\n").unwrap();
    std::fs::set_permissions(data.join("outbox/old-code.eml"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let (mut child, url) = start_outbox(&data, &log);
    ask_code(&url, "bob@example.com");
    assert_private(&data);
    let text = std::fs::read_to_string(&log).unwrap();
    for name in ["rights.db", "server-keys.bin", "old-code.eml"] {
        assert!(
            text.lines()
                .any(|l| l.contains("made a server file private") && l.contains(name)),
            "the log does not say {name} was made private:\n{text}"
        );
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// One grant put as `token`, answered with status and body.
fn put_grant(server: &Server, token: &str, id: &str, to: &str, rights: &[&str], expires: Option<i64>) -> (u16, Value) {
    server.call(
        Method::PUT,
        &format!("/v1/content/{id}/grants"),
        Some(token),
        Some(json!({"grants": [{"to": to, "rights": rights, "expires": expires}]})),
    )
}

/// Bob holds `view,share` until tomorrow on alice's file; carol holds
/// `view`. Everything bob tries beyond adding grants within his own rights
/// and expiry is refused with the rule named, and the policy is unchanged.
#[test]
fn a_share_holder_cannot_take_over_the_policy() {
    let (_dir, smtp, server) = setup(&[]);
    let alice = server.login(&smtp, "alice@example.com", true);
    let bob = server.login(&smtp, "bob@example.com", true);
    let (kem, _) = server.keys();
    let tomorrow = rightsfs::policy::now() + 86_400;
    let mut policy = rightsfs::policy::Policy::owner_only(alice.email.parse().unwrap(), 3);
    let grant = |spec: &str| rightsfs::policy::Grant::parse_spec(spec).unwrap();
    let mut bobs = grant("bob@example.com:view,share");
    bobs.expires = Some(tomorrow);
    policy.grants = vec![bobs, grant("carol@example.com:view")];
    let (pl, id, _) = server_support::make_pl(&alice, kem, policy);
    let (s, v) = server.post("/v1/content", Some(&alice.access), json!({"publishing_licence": pl}));
    assert_eq!(s, 201, "{v}");
    let id = id.to_hex();
    let policy_now = || server.get(&format!("/v1/content/{id}"), &alice.access).1["policy"].clone();
    let before = policy_now();
    let put =
        |to: &str, rights: &[&str], expires: Option<i64>| put_grant(&server, &bob.access, &id, to, rights, expires);
    let refused = |(s, v): (u16, Value), code: &str| {
        assert_eq!((s, v["error"]["code"].as_str()), (403, Some(code)), "{v}");
        assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
        assert_eq!(policy_now(), before, "a refused change changed the policy");
    };
    // Removing his own expiry.
    refused(
        put("bob@example.com", &["view", "share"], None),
        "share_cannot_change_grants",
    );
    // Changing another grantee's grant: answered as a new grant would be
    // (so that it tells nothing), and the grant stays as it was.
    let (s, v) = put("carol@example.com", &["view", "share"], Some(tomorrow));
    assert_eq!(s, 200, "{v}");
    assert_eq!(policy_now(), before, "a sharer changed another's grant");
    let del = server.call(
        Method::DELETE,
        &format!("/v1/content/{id}/grants/carol@example.com"),
        Some(&bob.access),
        None,
    );
    refused(del, "owner_only_removes_grants");
    // A whole domain.
    refused(put("*@evil.org", &["view"], Some(tomorrow)), "share_no_wildcards");
    // Beyond his own rights or expiry.
    refused(
        put("dave@example.com", &["view", "edit"], Some(tomorrow)),
        "no_share_right",
    );
    refused(put("dave@example.com", &["view"], None), "share_beyond_own_expiry");
    refused(
        put("dave@example.com", &["view"], Some(tomorrow + 60)),
        "share_beyond_own_expiry",
    );
    // Within them, a new grant is fine, and he may give up his own.
    let (s, v) = put("dave@example.com", &["view"], Some(tomorrow - 60));
    assert_eq!(s, 200, "{v}");
    let (s, v) = server.call(
        Method::DELETE,
        &format!("/v1/content/{id}/grants/bob@example.com"),
        Some(&bob.access),
        None,
    );
    assert_eq!(s, 200, "{v}");
    let after = policy_now();
    let to: Vec<&str> = after["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["to"].as_str().unwrap())
        .collect();
    assert_eq!(to, ["carol@example.com", "dave@example.com"], "{after}");
}

/// The server remembers device certificates it checked, so that a device
/// registering many files costs one RSA check. A licence that carries a
/// remembered certificate but whose own signature is forged (altered, or
/// taken from another licence) is still refused, and nothing is stored.
#[test]
fn a_remembered_certificate_does_not_pass_a_forged_licence() {
    let (_dir, smtp, server) = setup(&[]);
    let alice = server.login(&smtp, "alice@example.com", true);
    let (kem, _) = server.keys();
    let policy = || rightsfs::policy::Policy::owner_only(alice.email.parse().unwrap(), 3);
    let register = |pl: &rightsfs::policy::PublishingLicence| {
        server.post("/v1/content", Some(&alice.access), json!({"publishing_licence": pl}))
    };
    let (first, _, _) = server_support::make_pl(&alice, kem, policy());
    let (s, v) = register(&first);
    assert_eq!(s, 201, "{v}");
    let refused = |pl: &rightsfs::policy::PublishingLicence, id: &rightsfs::policy::ContentId| {
        let (s, v) = register(pl);
        assert_eq!((s, v["error"]["code"].as_str()), (400, Some("bad_licence")), "{v}");
        let (s, v) = server.get(&format!("/v1/content/{}", id.to_hex()), &alice.access);
        assert_eq!(s, 404, "a forged licence was stored: {v}");
    };
    // The certificate is the one just checked; the last byte of the
    // licence's own signature is not.
    let (mut forged, id, _) = server_support::make_pl(&alice, kem, policy());
    assert_eq!(
        forged.signature[..forged.signature.len() - 64],
        first.signature[..first.signature.len() - 64]
    );
    *forged.signature.last_mut().unwrap() ^= 1;
    refused(&forged, &id);
    // A whole signature of the first licence over another body.
    let (mut moved, id, _) = server_support::make_pl(&alice, kem, policy());
    moved.signature = first.signature.clone();
    refused(&moved, &id);
    // The genuine one still registers.
    let (good, _, _) = server_support::make_pl(&alice, kem, policy());
    let (s, v) = register(&good);
    assert_eq!(s, 201, "{v}");
}

/// Alice's file, registered with `grants`: the server, bob (who logs in),
/// the content id and its publishing licence.
type SharedFile = (
    tempfile::TempDir,
    Smtp,
    Server,
    server_support::User,
    String,
    rightsfs::policy::PublishingLicence,
);

fn shared_file(grants: &[rightsfs::policy::Grant]) -> SharedFile {
    let (dir, smtp, server) = setup(&[]);
    let alice = server.login(&smtp, "alice@example.com", true);
    let bob = server.login(&smtp, "bob@example.com", true);
    let (kem, _) = server.keys();
    let mut policy = rightsfs::policy::Policy::owner_only(alice.email.parse().unwrap(), 3);
    policy.grants = grants.to_vec();
    let (pl, id, _) = server_support::make_pl(&alice, kem, policy);
    let (s, v) = server.post("/v1/content", Some(&alice.access), json!({"publishing_licence": pl}));
    assert_eq!(s, 201, "{v}");
    (dir, smtp, server, bob, id.to_hex(), pl)
}

fn grant_until(spec: &str, expires: Option<i64>) -> rightsfs::policy::Grant {
    let mut g = rightsfs::policy::Grant::parse_spec(spec).unwrap();
    g.expires = expires;
    g
}

/// Bob holds `view,share`; carol holds a grant, dave none. Whatever bob
/// asks for carol, the server answers exactly as for dave, so that he
/// cannot probe who holds a grant; carol's grant stays and she gets no mail.
#[test]
fn a_share_holder_cannot_probe_who_holds_a_grant() {
    let tomorrow = rightsfs::policy::now() + 86_400;
    let (_dir, smtp, server, bob, id, _) = shared_file(&[
        grant_until("bob@example.com:view,share", Some(tomorrow)),
        grant_until("carol@example.com:view", None),
    ]);
    let put =
        |to: &str, rights: &[&str], expires: Option<i64>| put_grant(&server, &bob.access, &id, to, rights, expires);
    // Refused for a rule: the same refusal for both.
    let carol = put("carol@example.com", &["owner"], Some(tomorrow));
    let dave = put("dave@example.com", &["owner"], Some(tomorrow));
    assert_eq!(carol.0, 403, "{}", carol.1);
    assert_eq!(carol, dave, "the answer tells whether carol holds a grant");
    // Within bob's rights: the same success for both.
    let carol = put("carol@example.com", &["view"], Some(tomorrow - 60));
    let dave = put("dave@example.com", &["view"], Some(tomorrow - 60));
    assert_eq!(carol.0, 200, "{}", carol.1);
    assert_eq!(carol, dave, "the answer tells whether carol holds a grant");
    let alice = server.login(&smtp, "alice@example.com", false);
    let grants = server.get(&format!("/v1/content/{id}"), &alice.access).1["policy"]["grants"].clone();
    let carols: Vec<&Value> = grants
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["to"] == "carol@example.com")
        .collect();
    assert_eq!(carols.len(), 1, "{grants}");
    assert!(carols[0]["expires"].is_null(), "carol's grant changed: {grants}");
    assert!(smtp.mails_to("carol@example.com").is_empty(), "carol was mailed");
    assert_eq!(smtp.mails_to("dave@example.com").len(), 1);
}

/// Bob holds `view,share` until tomorrow and has the server mail the file
/// to his other address: that address gets no more than bob himself (its
/// grant ends when his does), and rights bob lacks are refused as on the
/// grants path.
#[test]
fn a_share_holder_cannot_outlive_his_access_by_mailing_the_file() {
    let tomorrow = rightsfs::policy::now() + 86_400;
    let (_dir, smtp, server, bob, id, pl) = shared_file(&[grant_until("bob@example.com:view,share", Some(tomorrow))]);
    let alice = server.login(&smtp, "alice@example.com", false);
    // What the server checks of a protected file: magic, id, licence.
    let mut file = b"\x89RIGHTS\n\0\0\0\0\0\0".to_vec();
    file.extend(hex::decode(&id).unwrap());
    file.extend(&pl.body);
    let send = |rights: Option<&str>| {
        server.call(
            Method::POST,
            &format!("/v1/content/{id}/send"),
            Some(&bob.access),
            Some(
                json!({"to": ["bob2@example.com"], "name": "plan.txt.rights", "rights": rights,
                "file": base64::engine::general_purpose::STANDARD.encode(&file)}),
            ),
        )
    };
    let (s, v) = send(Some("view,edit"));
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("no_share_right")), "{v}");
    let (s, v) = send(None);
    assert_eq!(s, 200, "{v}");
    let grants = server.get(&format!("/v1/content/{id}"), &alice.access).1["policy"]["grants"].clone();
    let second = grants
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["to"] == "bob2@example.com")
        .unwrap_or_else(|| panic!("{grants}"))
        .clone();
    assert_eq!(second["expires"].as_i64(), Some(tomorrow), "{grants}");
}

/// A PUT of grants as `token`, answered with status, `Retry-After` and body.
fn share(server: &Server, token: &str, id: &str, to: &[String]) -> (u16, Option<u64>, Value) {
    let grants: Vec<rightsfs::policy::Grant> = to
        .iter()
        .map(|t| rightsfs::policy::Grant::parse_spec(&format!("{t}:view")).unwrap())
        .collect();
    answer(
        server
            .http
            .put(format!("{}/v1/content/{id}/grants", server.url))
            .bearer_auth(token)
            .json(&json!({ "grants": grants }))
            .send()
            .unwrap(),
    )
}

/// Registers `n` fresh contents owned by `user`; returns their ids.
fn contents(server: &Server, user: &server_support::User, n: usize) -> Vec<String> {
    let (kem, _) = server.keys();
    (0..n)
        .map(|_| {
            let owner = rightsfs::policy::Email::parse(&user.email).unwrap();
            let (pl, id, _) = server_support::make_pl(user, kem, rightsfs::policy::Policy::owner_only(owner, 1));
            let (s, v) = server.post("/v1/content", Some(&user.access), json!({"publishing_licence": pl}));
            assert_eq!(s, 201, "{v}");
            id.to_hex()
        })
        .collect()
}

fn assert_limited(answer: &(u16, Option<u64>, Value)) {
    let (s, retry, v) = answer;
    assert_eq!(*s, 429, "{v}");
    assert_eq!(v["error"]["code"], "rate_limited", "{v}");
    assert!(retry.is_some_and(|r| r >= 1), "429 without Retry-After: {v}");
}

/// Accounts make the server mail people: one request naming 150
/// addresses, a loop sharing file after file with one stranger, the same
/// share repeated, and a second account joining in. The server mails each
/// person once per file, at most `per recipient` mails per window to one
/// address whoever asks, at most `per sender` per account, and a refused
/// request changes no grant.
fn mail_flood(server: &Server, smtp: &Smtp, tag: &str) {
    let alice = server.login(smtp, &format!("alice-{tag}@example.com"), true);
    let mallory = server.login(smtp, &format!("mallory-{tag}@example.com"), true);
    let stranger = format!("stranger-{tag}@example.org");
    let ids = contents(server, &alice, 5);

    // One request, 150 addresses: over the sender limit of 20, refused whole.
    let crowd: Vec<String> = (0..150).map(|i| format!("n{i}-{tag}@example.org")).collect();
    let before = smtp.count();
    assert_limited(&share(server, &alice.access, &ids[0], &crowd));
    assert_eq!(smtp.count(), before, "a refused request mailed someone");
    let (_, info) = server.get(&format!("/v1/content/{}", ids[0]), &alice.access);
    assert!(
        !info.to_string().contains(&crowd[0]),
        "a refused request granted: {info}"
    );

    // The same share three times: one invitation.
    for _ in 0..3 {
        let (s, _, v) = share(server, &alice.access, &ids[0], std::slice::from_ref(&stranger));
        assert_eq!(s, 200, "{v}");
    }
    assert_eq!(smtp.mails_to(&stranger).len(), 1, "a repeated share mailed again");

    // File after file to the stranger: stopped at the third mail.
    for id in &ids[1..3] {
        let (s, _, v) = share(server, &alice.access, id, std::slice::from_ref(&stranger));
        assert_eq!(s, 200, "{v}");
    }
    assert_limited(&share(server, &alice.access, &ids[3], std::slice::from_ref(&stranger)));
    let (_, info) = server.get(&format!("/v1/content/{}", ids[3]), &alice.access);
    assert!(!info.to_string().contains(&stranger), "a refused share granted: {info}");
    // Another account does not reopen the stranger's inbox.
    let theirs = contents(server, &mallory, 1);
    assert_limited(&share(
        server,
        &mallory.access,
        &theirs[0],
        std::slice::from_ref(&stranger),
    ));
    assert_eq!(
        smtp.mails_to(&stranger).len(),
        3,
        "the stranger got more than the limit"
    );

    // One address per request: alice's 20 mails are used up after 17 more.
    let mut sent = 0;
    for i in 0..30 {
        let answer = share(server, &alice.access, &ids[4], &[format!("s{i}-{tag}@example.org")]);
        if answer.0 == 429 {
            assert_limited(&answer);
            break;
        }
        assert_eq!(answer.0, 200, "{:?}", answer.2);
        sent += 1;
    }
    assert_eq!(sent, 17, "the sender limit let {sent} mails through, not 20 - 3");
}

/// Windows of 30 days, so that no test straddles the start of a new one.
const MAIL_WINDOW: &str = "--mail-window";

#[test]
fn accounts_cannot_flood_people_with_sharing_mail() {
    let (_dir, smtp, server) = setup(&[
        MAIL_WINDOW,
        "2592000",
        "--mails-per-recipient",
        "3",
        "--mails-per-sender",
        "20",
    ]);
    mail_flood(&server, &smtp, "sqlite");
}

#[test]
fn accounts_cannot_flood_people_with_sharing_mail_postgres() {
    let Some(url) = postgres_url() else { return };
    let (_dir, smtp, server) = setup(&[
        "--database",
        &url,
        MAIL_WINDOW,
        "2592000",
        "--mails-per-recipient",
        "3",
        "--mails-per-sender",
        "20",
    ]);
    mail_flood(&server, &smtp, &unique());
}

/// A GET answered with status, headers and body text.
fn get_raw(url: &str, token: Option<&str>) -> (u16, reqwest::header::HeaderMap, String) {
    let mut rb = reqwest::blocking::Client::new().get(url);
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    let resp = rb.send().unwrap();
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    (status, headers, resp.text().unwrap())
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `/metrics` is not public: without configuration it is not served; with
/// a token only to its bearer; with `--metrics-listen` on that address.
#[test]
fn metrics_are_not_public() {
    let (_dir, _smtp, server) = setup(&[]);
    let (s, _, body) = get_raw(&format!("{}/metrics", server.url), None);
    assert_eq!(s, 404, "{body}");
    assert!(!body.contains("rights_http"), "{body}");

    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let (_dir, _smtp, server) = setup(&["--metrics-token", "s3cret-token", "--metrics-listen", &listen]);
    let url = format!("{}/metrics", server.url);
    for token in [None, Some("wrong"), Some("s3cret-token-and-more"), Some("")] {
        let (s, _, body) = get_raw(&url, token);
        assert_eq!(s, 401, "token {token:?}: {body}");
        assert!(!body.contains("rights_http"), "{body}");
    }
    let (s, _, body) = get_raw(&url, Some("s3cret-token"));
    assert_eq!(s, 200);
    assert!(body.contains("rights_http_requests_total"), "{body}");
    let (s, _, body) = get_raw(&format!("http://{listen}/metrics"), None);
    assert_eq!(s, 200);
    assert!(body.contains("rights_http_requests_total"), "{body}");
    let (s, _, _) = get_raw(&format!("http://{listen}/v1/server-key"), None);
    assert_eq!(s, 404, "the metrics address serves only metrics");
}

fn assert_secure_headers(what: &str, h: &reqwest::header::HeaderMap) {
    let get = |n: &str| h.get(n).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    assert_eq!(get("x-content-type-options"), "nosniff", "{what}: {h:?}");
    assert_eq!(get("referrer-policy"), "no-referrer", "{what}: {h:?}");
    assert_eq!(get("x-frame-options"), "DENY", "{what}: {h:?}");
    assert!(
        get("content-security-policy").contains("frame-ancestors 'none'"),
        "{what}: {h:?}"
    );
}

/// Every answer carries the security headers, whatever produced it (a
/// handler, an error, the router's fallback, the viewer); answers to
/// signed-in callers and sign-in answers are never cached.
#[test]
fn every_answer_carries_security_headers() {
    let (_dir, smtp, server) = setup(&[]);
    let user = server.login(&smtp, "headers@example.com", true);
    for (path, token) in [
        ("/v1/server-key", None),
        ("/healthz", None),
        ("/v1/no-such-route", None),
        ("/v1/me", None),
        ("/v1/me", Some(user.access.as_str())),
        ("/v1/devices", Some(user.access.as_str())),
        ("/app/", None),
    ] {
        let (s, h, _) = get_raw(&format!("{}{path}", server.url), token);
        assert_secure_headers(&format!("GET {path} -> {s}"), &h);
        if token.is_some() {
            assert_eq!(h.get("cache-control").unwrap(), "no-store", "GET {path}: {h:?}");
        }
    }
    // The viewer keeps its own, stricter page policy.
    let (_, h, _) = get_raw(&format!("{}/app/", server.url), None);
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    // A sign-in answer carries tokens: not cached either.
    let resp = server
        .http
        .post(format!("{}/v1/auth/refresh", server.url))
        .json(&json!({"refresh_token": user.refresh}))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_secure_headers("POST /v1/auth/refresh", resp.headers());
    assert_eq!(resp.headers()["cache-control"], "no-store");
}

/// Bodies nested 100,000 deep, or larger than the limit, get a 4xx JSON
/// error (not a crash, not a 500), and the server keeps serving.
#[test]
fn deep_and_huge_bodies_get_json_errors() {
    let (_dir, smtp, server) = setup(&[]);
    let user = server.login(&smtp, "deep@example.com", true);
    let deep_array = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_object = format!("{}1{}", r#"{"a":"#.repeat(40_000), "}".repeat(40_000));
    let id = "00112233445566778899aabbccddeeff";
    for body in [&deep_array, &deep_object] {
        for (method, path, token) in [
            (Method::POST, "/v1/auth/start".to_string(), None),
            (Method::POST, "/v1/content".to_string(), Some(&user.access)),
            (Method::PUT, format!("/v1/content/{id}/grants"), Some(&user.access)),
        ] {
            let mut rb = server
                .http
                .request(method.clone(), format!("{}{path}", server.url))
                .header("content-type", "application/json")
                .body(body.clone());
            if let Some(t) = token {
                rb = rb.bearer_auth(t);
            }
            let resp = rb.send().unwrap();
            let s = resp.status().as_u16();
            let v: Value = resp.json().expect("a JSON error");
            assert_eq!(s, 400, "{method} {path}: {v}");
            assert_eq!(v["error"]["code"], "too_deep", "{method} {path}: {v}");
        }
    }
    let huge = json!({"email": "x".repeat(300 * 1024)});
    let (s, _, v) = post(&server, "/v1/auth/start", &huge);
    assert_eq!(s, 413, "{v}");
    assert_eq!(v["error"]["code"], "body_too_large", "{v}");
    assert_eq!(server.get("/v1/me", &user.access).0, 200, "the server stopped serving");
}
