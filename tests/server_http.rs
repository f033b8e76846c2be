//! The licensing server over real HTTP on loopback, with codes read from a
//! real SMTP exchange.

mod server_support;

use reqwest::Method;
use rightsfs::crypto::ServerKemPublic;
use rightsfs::policy::{Email, Grant, Policy, Principal, Rights, UseLicence, now};
use serde_json::{Value, json};
use server_support::{Server, Smtp, make_pl};

fn setup(extra: &[&str]) -> (tempfile::TempDir, Smtp, Server) {
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::start();
    let server = Server::start(dir.path(), &smtp, extra);
    (dir, smtp, server)
}

fn assert_error(v: &Value, code: &str) {
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(!v["error"]["message"].as_str().unwrap_or("").is_empty(), "{v}");
}

#[test]
fn signup_login_second_device_refresh_logout() {
    let (dir, smtp, server) = setup(&[]);
    let a = server.login(&smtp, "Alice@Example.com", true);
    assert_eq!(a.email, "Alice@Example.com");
    let (s, me) = server.get("/v1/me", &a.access);
    assert_eq!(s, 200);
    assert_eq!(me["email"], "alice@example.com");
    assert_eq!(me["device_id"], a.device_id.as_str());
    // The key file is private.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("server-keys.bin"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let a2 = server.login(&smtp, "alice@example.com", false);
    assert_ne!(a2.device_id, a.device_id);
    let (s, devs) = server.get("/v1/devices", &a2.access);
    assert_eq!(s, 200);
    assert_eq!(devs.as_array().unwrap().len(), 2);
    // A code mail says what it is for.
    assert!(
        smtp.mails_to("alice@example.com")
            .iter()
            .any(|m| m.contains("sign-up code"))
    );
    assert!(
        smtp.mails_to("alice@example.com")
            .iter()
            .any(|m| m.contains("login code"))
    );

    let (s, r_refresh) = server.post("/v1/auth/refresh", None, json!({"refresh_token": a.refresh}));
    assert_eq!(s, 200, "{r_refresh}");
    let new_access = r_refresh["access_token"].as_str().unwrap().to_string();
    assert_eq!(server.get("/v1/me", &new_access).0, 200);

    // Removing a device kills its tokens at once.
    let (s, _) = server.call(
        Method::DELETE,
        &format!("/v1/devices/{}", a2.device_id),
        Some(&a.access),
        None,
    );
    assert_eq!(s, 204);
    let (s, r) = server.get("/v1/me", &a2.access);
    assert_eq!(s, 401);
    assert_error(&r, "unauthorized");
    let (s, r) = server.call(Method::DELETE, "/v1/devices/nope", Some(&a.access), None);
    assert_eq!(s, 404);
    assert_error(&r, "no_device");

    // Logout with the newest refresh token (each refresh hands out a new one).
    let rotated = r_refresh["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rotated, a.refresh);
    let (s, _) = server.post("/v1/auth/logout", None, json!({"refresh_token": rotated}));
    assert_eq!(s, 204);
    let (s, r) = server.post("/v1/auth/refresh", None, json!({"refresh_token": rotated}));
    assert_eq!(s, 401);
    assert_error(&r, "unauthorized");
}

#[test]
fn register_share_licence_refuse_revoke_audit() {
    let (_dir, smtp, server) = setup(&[]);
    let (kem, verify_key) = server.keys();
    let alice = server.login(&smtp, "alice@example.com", true);
    let (pl, id, cek) = make_pl(
        &alice,
        kem,
        Policy::owner_only(Email::parse("alice@example.com").unwrap(), 3),
    );
    let (s, info) = server.post("/v1/content", Some(&alice.access), json!({"publishing_licence": pl}));
    assert_eq!(s, 201, "{info}");
    assert_eq!(info["content_id"], id.to_hex());
    assert_eq!(info["owner"], "alice@example.com");
    // Same licence again: 200; a different licence for that id: 409.
    let (s, _) = server.post("/v1/content", Some(&alice.access), json!({"publishing_licence": pl}));
    assert_eq!(s, 200);
    let mut other = make_pl(
        &alice,
        kem,
        Policy::owner_only(Email::parse("alice@example.com").unwrap(), 9),
    );
    let mut b = other.0.decode_unverified().unwrap();
    b.content_id = id;
    b.wrapped_key = ServerKemPublic(kem).wrap(&other.2, &b.key_context()).0.to_vec();
    other.0 = rightsfs::policy::PublishingLicence::sign(&b, &alice.device).unwrap();
    let (s, r) = server.post(
        "/v1/content",
        Some(&alice.access),
        json!({"publishing_licence": other.0}),
    );
    assert_eq!(s, 409);
    assert_error(&r, "conflict");

    // Owner gets a licence with all rights.
    let lic = format!("/v1/content/{}/licence", id.to_hex());
    let (s, ul) = server.post(&lic, Some(&alice.access), json!({}));
    assert_eq!(s, 200, "{ul}");
    let ul: UseLicence = serde_json::from_value(ul).unwrap();
    let body = ul.verify(&verify_key).unwrap();
    assert_eq!(body.rights, Rights::owner());
    assert_eq!(
        alice.device.unwrap_key(&body.wrapped_key).unwrap().as_bytes(),
        cek.as_bytes()
    );

    // Share with bob before bob has an account: the invitation is mailed.
    let grants = vec![Grant::parse_spec("bob@example.com:view,export:30d").unwrap()];
    let grants_path = format!("/v1/content/{}/grants", id.to_hex());
    let (s, r) = server.call(
        Method::PUT,
        &grants_path,
        Some(&alice.access),
        Some(json!({"grants": grants})),
    );
    assert_eq!(s, 200, "{r}");
    assert!(
        smtp.mails_to("bob@example.com")
            .iter()
            .any(|m| m.contains("alice@example.com shared a protected file with you") && m.contains(&id.to_hex())),
        "invitation mail"
    );
    let bob = server.login(&smtp, "bob@example.com", true);
    let (s, ul) = server.post(&lic, Some(&bob.access), json!({}));
    assert_eq!(s, 200, "{ul}");
    let body = serde_json::from_value::<UseLicence>(ul)
        .unwrap()
        .verify(&verify_key)
        .unwrap();
    assert_eq!(body.rights, Rights::parse("view,export").unwrap());
    assert_eq!(body.user.as_str(), "bob@example.com");
    assert_eq!(body.device_id, bob.device_id);
    assert!(body.valid_until <= now() + 3 * 86_400 && body.valid_until > now() + 2 * 86_400);
    assert_eq!(
        bob.device.unwrap_key(&body.wrapped_key).unwrap().as_bytes(),
        cek.as_bytes()
    );
    // The licence is for bob's device only.
    assert!(alice.device.unwrap_key(&body.wrapped_key).is_err());
    let (s, shared) = server.get("/v1/content?role=shared", &bob.access);
    assert_eq!(s, 200);
    assert_eq!(shared["contents"].as_array().unwrap().len(), 1, "{shared}");
    let (s, owned) = server.get("/v1/content?role=owned", &alice.access);
    assert_eq!(s, 200);
    assert_eq!(owned["contents"].as_array().unwrap().len(), 1, "{owned}");

    // Bob lacks share: he cannot change grants, read the audit or revoke.
    let (s, r) = server.call(
        Method::PUT,
        &grants_path,
        Some(&bob.access),
        Some(json!({"grants": grants})),
    );
    assert_eq!(s, 403);
    assert_error(&r, "no_share_right");
    let (s, r) = server.get(&format!("/v1/content/{}/audit", id.to_hex()), &bob.access);
    assert_eq!(s, 403);
    assert_error(&r, "not_owner");
    let (s, r) = server.post(
        &format!("/v1/content/{}/revoke", id.to_hex()),
        Some(&bob.access),
        json!({}),
    );
    assert_eq!(s, 403);
    assert_error(&r, "not_owner");

    // Carol has nothing: refused, naming the owner.
    let carol = server.login(&smtp, "carol@example.com", true);
    let (s, r) = server.post(&lic, Some(&carol.access), json!({}));
    assert_eq!(s, 403);
    assert_error(&r, "no_rights");
    assert!(r["error"]["message"].as_str().unwrap().contains("alice@example.com"));

    // A grant that expires: the licence ends with it, then carol is refused.
    let soon = Grant {
        to: Principal::parse("carol@example.com").unwrap(),
        rights: Rights::parse("view").unwrap(),
        expires: Some(now() + 2),
    };
    let (s, r) = server.call(
        Method::PUT,
        &grants_path,
        Some(&alice.access),
        Some(json!({"grants": [soon]})),
    );
    assert_eq!(s, 200, "{r}");
    let (s, ul) = server.post(&lic, Some(&carol.access), json!({}));
    assert_eq!(s, 200, "{ul}");
    let body = serde_json::from_value::<UseLicence>(ul)
        .unwrap()
        .verify(&verify_key)
        .unwrap();
    assert_eq!(Some(body.valid_until), soon.expires);
    while now() < soon.expires.unwrap() + 1 {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let (s, r) = server.post(&lic, Some(&carol.access), json!({}));
    assert_eq!(s, 403);
    assert_error(&r, "access_expired");

    // Unshare bob: refused afterwards; unsharing again is 404.
    let del = format!("{grants_path}/bob@example.com");
    let (s, r) = server.call(Method::DELETE, &del, Some(&alice.access), None);
    assert_eq!(s, 200, "{r}");
    let (s, _) = server.post(&lic, Some(&bob.access), json!({}));
    assert_eq!(s, 403);
    let (s, r) = server.call(Method::DELETE, &del, Some(&alice.access), None);
    assert_eq!(s, 404);
    assert_error(&r, "no_grant");

    // Revocation: others get 410, the owner still gets licences.
    let grants = vec![Grant::parse_spec("bob@example.com:view").unwrap()];
    let (s, _) = server.call(
        Method::PUT,
        &grants_path,
        Some(&alice.access),
        Some(json!({"grants": grants})),
    );
    assert_eq!(s, 200);
    let (s, r) = server.post(
        &format!("/v1/content/{}/revoke", id.to_hex()),
        Some(&alice.access),
        json!({}),
    );
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["revoked"], true);
    let (s, r) = server.post(&lic, Some(&bob.access), json!({}));
    assert_eq!(s, 410);
    assert_error(&r, "revoked");
    assert_eq!(server.post(&lic, Some(&alice.access), json!({})).0, 200);

    // The audit shows every issue and refusal, in order.
    let (s, audit) = server.get(&format!("/v1/content/{}/audit", id.to_hex()), &alice.access);
    assert_eq!(s, 200);
    let rows: Vec<(String, String, String)> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["email"].as_str().unwrap().to_string(),
                r["result"].as_str().unwrap().to_string(),
                r["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expect = [
        ("alice@example.com", "issued", ""),
        ("bob@example.com", "issued", ""),
        ("carol@example.com", "refused", "no_rights"),
        ("carol@example.com", "issued", ""),
        ("carol@example.com", "refused", "access_expired"),
        ("bob@example.com", "refused", "no_rights"),
        ("bob@example.com", "refused", "revoked"),
        ("alice@example.com", "issued", ""),
    ];
    let got: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
        .collect();
    assert_eq!(got, expect);
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["client_addr"] == "127.0.0.1")
    );
    assert_eq!(audit[1]["rights"], "view,export");
}

#[test]
fn registration_refuses_forged_foreign_and_misdirected_licences() {
    let (_dir, smtp, server) = setup(&[]);
    let (kem, _) = server.keys();
    let alice = server.login(&smtp, "alice@example.com", true);
    let mallory = server.login(&smtp, "mallory@example.com", true);
    let alice_policy = || Policy::owner_only(Email::parse("alice@example.com").unwrap(), 1);

    // Altered body: the signature no longer verifies.
    let (mut pl, _, _) = make_pl(&alice, kem, alice_policy());
    let n = pl.body.len();
    pl.body[n - 1] ^= 1;
    let (s, r) = server.post("/v1/content", Some(&alice.access), json!({"publishing_licence": pl}));
    assert_eq!(s, 400);
    assert_error(&r, "bad_licence");

    // Alice's licence registered by mallory.
    let (pl, _, _) = make_pl(&alice, kem, alice_policy());
    let (s, r) = server.post("/v1/content", Some(&mallory.access), json!({"publishing_licence": pl}));
    assert_eq!(s, 403);
    assert_error(&r, "not_owner");

    // Mallory signs a licence naming alice as owner with her own device key.
    let fake_alice = server_support::User {
        email: "alice@example.com".into(),
        access: String::new(),
        refresh: String::new(),
        device_id: String::new(),
        device: mallory.device,
    };
    let (pl, _, _) = make_pl(&fake_alice, kem, alice_policy());
    let (s, r) = server.post("/v1/content", Some(&alice.access), json!({"publishing_licence": pl}));
    assert_eq!(s, 403);
    assert_error(&r, "unknown_device");

    // Protected for another server.
    let other_kem = rightsfs::crypto::ServerKemSecret::generate().public().0;
    let (pl, _, _) = make_pl(&alice, other_kem, alice_policy());
    let (s, r) = server.post("/v1/content", Some(&alice.access), json!({"publishing_licence": pl}));
    assert_eq!(s, 400);
    assert_error(&r, "wrong_server");

    // Nothing was registered.
    let (s, owned) = server.get("/v1/content?role=owned", &alice.access);
    assert_eq!(s, 200);
    assert_eq!(owned, json!({"contents": [], "next": null}));
    let (s, r) = server.post(
        &format!("/v1/content/{}/licence", "00".repeat(16)),
        Some(&alice.access),
        json!({}),
    );
    assert_eq!(s, 404);
    assert_error(&r, "not_registered");
}

#[test]
fn batch_registration_answers_for_each_licence() {
    let (_dir, smtp, server) = setup(&[]);
    let (kem, _) = server.keys();
    let alice = server.login(&smtp, "alice@example.com", true);
    let mallory = server.login(&smtp, "mallory@example.com", true);
    let alice_policy = || Policy::owner_only(Email::parse("alice@example.com").unwrap(), 1);
    let (fresh, fresh_id, _) = make_pl(&alice, kem, alice_policy());
    // A licence as earlier clients signed it (version 1, RSA-PSS).
    let (v1, v1_id, _) = make_pl(&alice, kem, alice_policy());
    let mut b = v1.decode_unverified().unwrap();
    b.version = 1;
    let v1 = rightsfs::policy::PublishingLicence::sign(&b, &alice.device).unwrap();
    let (mut altered, _, _) = make_pl(&alice, kem, alice_policy());
    let n = altered.body.len();
    altered.body[n - 1] ^= 1;
    let (foreign, _, _) = make_pl(
        &mallory,
        kem,
        Policy::owner_only(Email::parse("mallory@example.com").unwrap(), 1),
    );
    let batch = json!({"publishing_licences": [fresh, v1, fresh, altered, foreign]});
    let (s, r) = server.post("/v1/content/batch", Some(&alice.access), batch);
    assert_eq!(s, 200, "{r}");
    let statuses: Vec<u64> = r["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, vec![201, 201, 200, 400, 403], "{r}");
    assert_eq!(r["results"][0]["content_id"], fresh_id.to_hex());
    assert_eq!(r["results"][3]["error"], "bad_licence");
    assert_eq!(r["results"][4]["error"], "not_owner");
    // Both registered ones license their owner.
    for id in [fresh_id, v1_id] {
        let (s, ul) = server.post(
            &format!("/v1/content/{}/licence", id.to_hex()),
            Some(&alice.access),
            json!({}),
        );
        assert_eq!(s, 200, "{ul}");
    }
    // Empty and oversized batches, and no token, are refused whole.
    let (s, r) = server.post(
        "/v1/content/batch",
        Some(&alice.access),
        json!({"publishing_licences": []}),
    );
    assert_eq!(s, 400);
    assert_error(&r, "bad_batch");
    let many: Vec<_> = (0..101).map(|_| make_pl(&alice, kem, alice_policy()).0).collect();
    let (s, r) = server.post(
        "/v1/content/batch",
        Some(&alice.access),
        json!({"publishing_licences": many}),
    );
    assert_eq!(s, 400, "{r}");
    assert_error(&r, "bad_batch");
    let (s, _) = server.post("/v1/content/batch", None, json!({"publishing_licences": [fresh]}));
    assert_eq!(s, 401);
    let (s, owned) = server.get("/v1/content?role=owned", &alice.access);
    assert_eq!(s, 200);
    assert_eq!(owned["contents"].as_array().unwrap().len(), 2, "{owned}");
}

#[test]
fn wrong_codes_make_the_address_wait_and_codes_are_single_use() {
    let (_dir, smtp, server) = setup(&["--signin-backoff", "1"]);
    let seen = smtp.count();
    let (s, _) = server.post(
        "/v1/auth/start",
        None,
        json!({"email": "eve@example.com", "signup": true}),
    );
    assert_eq!(s, 202);
    let good = smtp.code_for("eve@example.com", seen);
    let der = {
        use base64::Engine;
        let d = rightsfs::crypto::DeviceKeyPair::generate().unwrap();
        base64::engine::general_purpose::STANDARD.encode(d.public().to_der())
    };
    let verify = |code: &str| {
        server.post(
            "/v1/auth/verify",
            None,
            json!({"email": "eve@example.com", "code": code, "device_name": "x", "device_public_key": der}),
        )
    };
    let wrong = if good == "00000000" { "00000001" } else { "00000000" };
    for i in 0..5 {
        let (s, r) = verify(wrong);
        assert_eq!(s, 401, "try {i}");
        assert_error(&r, "invalid_code");
    }
    // The sixth guess is not checked: the address waits, the code lives on.
    let (s, r) = verify(&good);
    assert_eq!(s, 429);
    assert_error(&r, "rate_limited");
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_eq!(verify(&good).0, 200);
    let (s, r) = verify(&good);
    assert_eq!(s, 401);
    assert_error(&r, "invalid_code");
}

#[test]
fn rate_limits_answer_429() {
    let (_dir, _smtp, server) = setup(&[]);
    // Per address: a second code mail waits.
    assert_eq!(
        server
            .post("/v1/auth/start", None, json!({"email": "flood@example.com"}))
            .0,
        202
    );
    let (s, r) = server.post("/v1/auth/start", None, json!({"email": "flood@example.com"}));
    assert_eq!(s, 429);
    assert_error(&r, "rate_limited");
    assert!(r["error"]["message"].as_str().unwrap().contains("flood@example.com"));
    // Per client IP: 30 auth requests a minute (2 used above).
    let mut last = 0;
    for i in 0..40 {
        let (s, _) = server.post("/v1/auth/refresh", None, json!({"refresh_token": format!("x{i}")}));
        last = s;
        if s == 429 {
            break;
        }
        assert_eq!(s, 401);
    }
    assert_eq!(last, 429);
}

/// name, method, path, content type, body, authenticated, expected status, expected code
type Case<'a> = (&'a str, Method, String, Option<&'a str>, Vec<u8>, bool, u16, &'a str);

#[test]
fn malformed_requests_get_json_errors_and_change_nothing() {
    let (_dir, smtp, server) = setup(&["--metrics-token", "metrics-secret"]);
    let alice = server.login(&smtp, "alice@example.com", true);
    let raw = |method: Method, path: &str, ctype: Option<&str>, body: Vec<u8>, auth: bool| {
        let mut rb = server
            .http
            .request(method, format!("{}{}", server.url, path))
            .body(body);
        if let Some(c) = ctype {
            rb = rb.header("content-type", c);
        }
        if auth {
            rb = rb.bearer_auth(&alice.access);
        }
        let resp = rb.send().unwrap();
        let status = resp.status().as_u16();
        let v: Value =
            serde_json::from_slice(&resp.bytes().unwrap()).unwrap_or_else(|e| panic!("{path}: non-JSON answer ({e})"));
        (status, v)
    };
    let json = Some("application/json");
    let big = vec![b' '; 300 * 1024];
    let cid = "ab".repeat(16);
    let cases: Vec<Case> = vec![
        (
            "bad json",
            Method::POST,
            "/v1/auth/start".into(),
            json,
            b"{\"email\":".to_vec(),
            false,
            400,
            "malformed_json",
        ),
        (
            "not json type",
            Method::POST,
            "/v1/auth/start".into(),
            Some("text/plain"),
            b"{}".to_vec(),
            false,
            415,
            "unsupported_media_type",
        ),
        (
            "no type",
            Method::POST,
            "/v1/auth/start".into(),
            None,
            b"{}".to_vec(),
            false,
            415,
            "unsupported_media_type",
        ),
        (
            "unknown field",
            Method::POST,
            "/v1/auth/start".into(),
            json,
            br#"{"email":"a@example.com","colour":1}"#.to_vec(),
            false,
            422,
            "invalid_request",
        ),
        (
            "missing field",
            Method::POST,
            "/v1/auth/verify".into(),
            json,
            br#"{"email":"a@example.com"}"#.to_vec(),
            false,
            422,
            "invalid_request",
        ),
        (
            "bad email",
            Method::POST,
            "/v1/auth/start".into(),
            json,
            br#"{"email":"not-an-address"}"#.to_vec(),
            false,
            400,
            "bad_email",
        ),
        (
            "bad device key",
            Method::POST,
            "/v1/auth/verify".into(),
            json,
            br#"{"email":"a@example.com","code":"1","device_name":"x","device_public_key":"AAAA"}"#.to_vec(),
            false,
            400,
            "bad_device_key",
        ),
        (
            "too big",
            Method::POST,
            "/v1/content".into(),
            json,
            big.clone(),
            true,
            413,
            "body_too_large",
        ),
        (
            "no token",
            Method::GET,
            "/v1/me".into(),
            None,
            vec![],
            false,
            401,
            "unauthorized",
        ),
        (
            "unknown route",
            Method::GET,
            "/v1/nothing".into(),
            None,
            vec![],
            false,
            404,
            "not_found",
        ),
        (
            "wrong method",
            Method::DELETE,
            "/v1/me".into(),
            None,
            vec![],
            true,
            405,
            "method_not_allowed",
        ),
        (
            "bad content id",
            Method::GET,
            "/v1/content/xyz".into(),
            None,
            vec![],
            true,
            400,
            "bad_content_id",
        ),
        (
            "bad role",
            Method::GET,
            "/v1/content?role=boss".into(),
            None,
            vec![],
            true,
            400,
            "bad_role",
        ),
        (
            "unknown query",
            Method::GET,
            "/v1/content?colour=red".into(),
            None,
            vec![],
            true,
            400,
            "bad_query",
        ),
        (
            "bad licence shape",
            Method::POST,
            "/v1/content".into(),
            json,
            br#"{"publishing_licence":{"body":"!!","signature":""}}"#.to_vec(),
            true,
            422,
            "invalid_request",
        ),
        (
            "unregistered",
            Method::POST,
            format!("/v1/content/{cid}/licence"),
            json,
            b"{}".to_vec(),
            true,
            404,
            "not_registered",
        ),
        (
            "licence extra field",
            Method::POST,
            format!("/v1/content/{cid}/licence"),
            json,
            br#"{"rights":"owner"}"#.to_vec(),
            true,
            422,
            "invalid_request",
        ),
        (
            "bad grant",
            Method::PUT,
            format!("/v1/content/{cid}/grants"),
            json,
            br#"{"grants":[{"to":"bob","rights":["view"],"expires":null}]}"#.to_vec(),
            true,
            422,
            "invalid_request",
        ),
        (
            "bad principal",
            Method::DELETE,
            format!("/v1/content/{cid}/grants/nobody"),
            None,
            vec![],
            true,
            400,
            "bad_email",
        ),
        (
            "bad refresh",
            Method::POST,
            "/v1/auth/refresh".into(),
            json,
            br#"{"refresh_token":"nope"}"#.to_vec(),
            false,
            401,
            "unauthorized",
        ),
    ];
    for (name, method, path, ctype, body, auth, status, code) in cases {
        let (s, v) = raw(method, &path, ctype, body, auth);
        assert_eq!(s, status, "{name}: {v}");
        assert_eq!(v["error"]["code"], code, "{name}: {v}");
        assert!(
            v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{name}: {v}"
        );
    }
    // A forged token is refused.
    let (s, v) = server.get("/v1/me", "forged-token");
    assert_eq!(s, 401);
    assert_error(&v, "unauthorized");
    // Nothing changed: alice still has one device and no content.
    assert_eq!(server.get("/v1/devices", &alice.access).1.as_array().unwrap().len(), 1);
    assert_eq!(
        server.get("/v1/content", &alice.access).1,
        json!({"contents": [], "next": null})
    );
    // Health, metrics and the API description answer.
    let h: Value = server
        .http
        .get(format!("{}/healthz", server.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(h["status"], "ok");
    let m = server
        .http
        .get(format!("{}/metrics", server.url))
        .bearer_auth("metrics-secret")
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(m.contains("rights_http_client_errors_total"));
    let o: Value = server
        .http
        .get(format!("{}/v1/openapi.json", server.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(o["openapi"].as_str().unwrap().starts_with("3."));
}

/// "Shared with me" comes a page at a time, by address and by domain
/// grant, without the owner's other content or revoked content; a cursor
/// only continues the listing it came from: another account's, another
/// role's, an altered or a made-up one is refused with 400.
#[test]
fn shared_listing_pages_and_cursors_stay_with_their_listing() {
    let (_dir, smtp, server) = setup(&[]);
    let (kem, _) = server.keys();
    let alice = server.login(&smtp, "alice@example.com", true);
    let bob = server.login(&smtp, "bob@team.example", true);
    let eve = server.login(&smtp, "eve@example.org", true);
    let grant = |to: &str| Grant {
        to: Principal::parse(to).unwrap(),
        rights: Rights::parse("view").unwrap(),
        expires: None,
    };
    let mut ids = Vec::new();
    for to in [
        "bob@team.example",
        "bob@team.example",
        "*@team.example",
        "eve@example.org",
        "",
    ] {
        let mut policy = Policy::owner_only(Email::parse("alice@example.com").unwrap(), 1);
        if !to.is_empty() {
            policy.grants.push(grant(to));
        }
        let (pl, id, _) = make_pl(&alice, kem, policy);
        let (s, v) = server.post("/v1/content", Some(&alice.access), json!({"publishing_licence": pl}));
        assert_eq!(s, 201, "{v}");
        ids.push(id.to_hex());
    }
    let page = |who: &str, query: &str| server.get(&format!("/v1/content?{query}"), who);
    let listed = |who: &str, role: &str| {
        let (mut all, mut cursors, mut q) = (Vec::new(), Vec::new(), format!("role={role}&limit=1"));
        loop {
            let (s, v) = page(who, &q);
            assert_eq!(s, 200, "{v}");
            all.extend(
                v["contents"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c["content_id"].as_str().unwrap().to_string()),
            );
            match v["next"].as_str() {
                Some(c) => {
                    cursors.push(c.to_string());
                    q = format!("role={role}&limit=1&cursor={c}");
                }
                None => return (all, cursors),
            }
        }
    };
    let (mine, cursors) = listed(&bob.access, "shared");
    let mut want = ids[..3].to_vec();
    want.sort_by(|a, b| b.cmp(a));
    let mut got = mine.clone();
    got.sort_by(|a, b| b.cmp(a));
    assert_eq!(
        got, want,
        "each content shared with bob once, the domain grant's included"
    );
    assert_eq!(listed(&alice.access, "owned").0.len(), 5);
    assert!(listed(&alice.access, "shared").0.is_empty());

    // Eve replays bob's cursor: refused, so it shows her nothing of his
    // listing and nothing of hers positioned by it.
    let (s, v) = page(&eve.access, &format!("role=shared&cursor={}", cursors[0]));
    assert_eq!(s, 400);
    assert_error(&v, "bad_cursor");
    // Bob's own cursor for another role, altered, or made up.
    let (s, v) = page(&bob.access, &format!("role=owned&cursor={}", cursors[0]));
    assert_eq!(s, 400);
    assert_error(&v, "bad_cursor");
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut raw = b64.decode(&cursors[0]).unwrap();
    raw[5] ^= 1;
    let mut forged = vec![1u8];
    forged.extend_from_slice(&i64::MAX.to_be_bytes());
    forged.extend_from_slice(ids[3].as_bytes());
    forged.extend_from_slice(&[0; 16]);
    for bad in [b64.encode(&raw), b64.encode(&forged), "%25%25".into(), "AQ".into()] {
        let (s, v) = page(&bob.access, &format!("role=shared&cursor={bad}"));
        assert_eq!(s, 400, "{bad}: {v}");
        assert_error(&v, "bad_cursor");
    }
    for limit in ["0", "1001", "-1", "many"] {
        let (s, v) = page(&bob.access, &format!("role=shared&limit={limit}"));
        assert_eq!(s, 400, "{limit}: {v}");
        assert!(
            v["error"]["code"] == "bad_limit" || v["error"]["code"] == "bad_query",
            "{v}"
        );
    }

    // Revoked content leaves the listing at once.
    let (s, _) = server.post(
        &format!("/v1/content/{}/revoke", ids[2]),
        Some(&alice.access),
        json!({}),
    );
    assert_eq!(s, 200);
    let (mine, _) = listed(&bob.access, "shared");
    assert_eq!(mine.len(), 2);
    assert!(!mine.contains(&ids[2]));
}
