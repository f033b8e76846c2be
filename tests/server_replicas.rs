//! Two server processes on one PostgreSQL database behave as one server:
//! a code mailed by one is accepted by the other, and content registered
//! through one is licensed through the other. What one replica keeps in
//! memory to issue licences faster never outlives a revocation, an
//! unsharing or a logout made through the other.

mod server_support;

use base64::Engine;
use reqwest::Method;
use rightsfs::crypto::DeviceKeyPair;
use rightsfs::policy::{Email, Grant, Policy, UseLicence};
use serde_json::json;
use server_support::{Server, Smtp, make_pl, postgres_url, unique};

#[test]
fn two_replicas_share_one_postgres() {
    let Some(url) = postgres_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::start();
    // Sign-in limits are counted in the shared database per client
    // address; other suites' attacks from 127.0.0.1 in the same minute
    // must not throttle this one, which is about replicas.
    let args = ["--database", url.as_str(), "--auth-per-minute", "1000"];
    let a = Server::start(dir.path(), &smtp, &args);
    let b = Server::start(dir.path(), &smtp, &args);
    assert_eq!(a.keys().0, b.keys().0, "replicas share the key file");

    let u = unique();
    let owner_mail = format!("owner-{u}@example.com");
    let owner = a.login(&smtp, &owner_mail, true);

    // Code sent by replica a, verified on replica b.
    let reader_mail = format!("reader-{u}@example.com");
    let seen = smtp.count();
    assert_eq!(
        a.post("/v1/auth/start", None, json!({"email": reader_mail, "signup": true}))
            .0,
        202
    );
    let code = smtp.code_for(&reader_mail, seen);
    let device = DeviceKeyPair::generate().unwrap();
    let der = base64::engine::general_purpose::STANDARD.encode(device.public().to_der());
    let (s, v) = b.post(
        "/v1/auth/verify",
        None,
        json!({"email": reader_mail, "code": code, "device_name": "phone", "device_public_key": der}),
    );
    assert_eq!(s, 200, "{v}");
    let reader_token = v["access_token"].as_str().unwrap().to_string();
    // The code is spent on both.
    let (s, _) = a.post(
        "/v1/auth/verify",
        None,
        json!({"email": reader_mail, "code": code, "device_name": "phone", "device_public_key": der}),
    );
    assert_eq!(s, 401);

    // Register and share on a, license on b.
    let (kem, verify_key) = b.keys();
    let mut policy = Policy::owner_only(Email::parse(&owner_mail).unwrap(), 1);
    policy.upsert_grant(Grant::parse_spec(&format!("{reader_mail}:view")).unwrap());
    let (pl, id, cek) = make_pl(&owner, kem, policy);
    assert_eq!(
        a.post("/v1/content", Some(&owner.access), json!({"publishing_licence": pl}))
            .0,
        201
    );
    let (s, ul) = b.post(
        &format!("/v1/content/{}/licence", id.to_hex()),
        Some(&reader_token),
        json!({}),
    );
    assert_eq!(s, 200, "{ul}");
    let body = serde_json::from_value::<UseLicence>(ul)
        .unwrap()
        .verify(&verify_key)
        .unwrap();
    assert_eq!(body.rights.to_string(), "view");
    assert_eq!(device.unwrap_key(&body.wrapped_key).unwrap().as_bytes(), cek.as_bytes());

    // Licensed through a as well, so that a keeps the reader's token and
    // the content in memory.
    let lic = format!("/v1/content/{}/licence", id.to_hex());
    assert_eq!(a.post(&lic, Some(&reader_token), json!({})).0, 200);
    assert_eq!(a.post(&lic, Some(&reader_token), json!({})).0, 200);

    // Unshared through b: a refuses at once, though it kept the content.
    let (s, v) = b.call(
        Method::DELETE,
        &format!("/v1/content/{}/grants/{reader_mail}", id.to_hex()),
        Some(&owner.access),
        None,
    );
    assert_eq!(s, 200, "{v}");
    let (s, v) = a.post(&lic, Some(&reader_token), json!({}));
    assert_eq!(s, 403, "{v}");
    assert_eq!(v["error"]["code"], "no_rights");

    // Shared again through b: a issues again.
    let grant = Grant::parse_spec(&format!("{reader_mail}:view")).unwrap();
    let (s, v) = b.call(
        Method::PUT,
        &format!("/v1/content/{}/grants", id.to_hex()),
        Some(&owner.access),
        Some(json!({ "grants": [grant] })),
    );
    assert!(s == 200 || s == 201, "{s} {v}");
    assert_eq!(a.post(&lic, Some(&reader_token), json!({})).0, 200);

    // Revoked through b, refused through a; the audit on a shows both.
    assert_eq!(
        b.post(
            &format!("/v1/content/{}/revoke", id.to_hex()),
            Some(&owner.access),
            json!({})
        )
        .0,
        200
    );
    let (s, _) = a.post(
        &format!("/v1/content/{}/licence", id.to_hex()),
        Some(&reader_token),
        json!({}),
    );
    assert_eq!(s, 410);
    let (s, audit) = a.get(&format!("/v1/content/{}/audit", id.to_hex()), &owner.access);
    assert_eq!(s, 200);
    let results: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["result"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["issued", "issued", "issued", "refused", "issued", "refused"]);

    // The owner still gets licences after revoking, through a (which now
    // keeps the owner's token); logged out through b, a refuses the token.
    assert_eq!(a.post(&lic, Some(&owner.access), json!({})).0, 200);
    let (s, _) = b.post("/v1/auth/logout", None, json!({"refresh_token": owner.refresh}));
    assert_eq!(s, 204);
    let (s, v) = a.post(&lic, Some(&owner.access), json!({}));
    assert_eq!(s, 401, "{v}");
}
