//! Writer certificates: a device's writer key is certified only with the
//! device key's proof, never for a reader-only device; edit certificates
//! come only with licences that grant `edit`, for the key the caller's own
//! device certificate names.

use axum::http::{Method, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::{TestApp, User, assert_error};
use crate::crypto::WriterKey;
use crate::policy::{DeviceCertificate, EditCertificate, Grant, Right, UseLicence, writer_key_proof};

/// Asks for `user`'s device certificate for `key`, proven by `prover`.
async fn certify(app: &TestApp, user: &User, key: &WriterKey, prover: &User) -> (StatusCode, Value) {
    let proof = prover
        .device
        .sign(&writer_key_proof(&user.device_id, &key.public()))
        .unwrap();
    app.post(
        "/v1/devices/writer-certificate",
        Some(&user.access),
        json!({"writer_key": hex::encode(key.public()), "proof": STANDARD.encode(proof)}),
    )
    .await
}

/// `by` removes `device` (of the same account): 204.
async fn remove_device(app: &TestApp, by: &User, device: &User) {
    let (s, v) = app
        .call(
            Method::DELETE,
            &format!("/v1/devices/{}", device.device_id),
            Some(&by.access),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
}

#[tokio::test]
async fn device_certificates_need_the_device_keys_proof() {
    let app = TestApp::new().await;
    let alice = app.sign_in("alice@example.com").await;
    let mallory = app.sign_in("mallory@example.com").await;
    let server = app.state.keys.signing.verifying_key();
    let key = alice.device.writer_key();
    let (s, v) = certify(&app, &alice, &key, &alice).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let cert = STANDARD.decode(v["certificate"].as_str().unwrap()).unwrap();
    let dc = DeviceCertificate::verify(&cert, &server).unwrap();
    assert_eq!(dc.account.as_str(), "alice@example.com");
    assert_eq!(dc.device_id, alice.device_id);
    assert_eq!(dc.key, key.public());
    assert_eq!(
        dc.not_after - dc.issued_at,
        crate::server::state::DEFAULT_DEVICE_CERTIFICATE_LIFETIME
    );
    // A key proven by another device's RSA key is not certified: an access
    // token alone does not get a key of the holder's choosing certified.
    let theirs = WriterKey::generate();
    assert_error(&certify(&app, &alice, &theirs, &mallory).await, 403, "bad_proof");
    let r = app
        .post(
            "/v1/devices/writer-certificate",
            Some(&alice.access),
            json!({"writer_key": "00", "proof": ""}),
        )
        .await;
    assert_error(&r, 400, "bad_writer_key");
    let r = app
        .post(
            "/v1/devices/writer-certificate",
            None,
            json!({"writer_key": "00", "proof": ""}),
        )
        .await;
    assert_error(&r, 401, "unauthorized");
}

/// A device removed from its account is certified no more, neither with
/// its tokens (they end with it) nor with an access token that outlived
/// it (issued in a race with the removal): 403 `device_removed`. Its other
/// devices still are.
#[tokio::test]
async fn removed_devices_get_no_certificate() {
    let app = TestApp::new().await;
    let laptop = app.sign_in("alice@example.com").await;
    let phone = app.sign_in("alice@example.com").await;
    let key = phone.device.writer_key();
    assert_eq!(certify(&app, &phone, &key, &phone).await.0, StatusCode::OK);
    remove_device(&app, &laptop, &phone).await;
    assert_error(&certify(&app, &phone, &key, &phone).await, 401, "unauthorized");
    let late = "a token issued as the device was removed";
    app.state
        .store
        .put_token(&crate::store::TokenRecord {
            hash: crate::crypto::sha256(late.as_bytes()).to_vec(),
            kind: "access".into(),
            email: phone.email.clone(),
            device_id: phone.device_id.clone(),
            expires_at: crate::policy::now() + 600,
        })
        .await
        .unwrap();
    let stale = User {
        access: late.into(),
        ..phone
    };
    assert_error(&certify(&app, &stale, &key, &stale).await, 403, "device_removed");
    let (s, v) = certify(&app, &laptop, &laptop.device.writer_key(), &laptop).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

#[tokio::test]
async fn edit_certificates_come_only_with_edit() {
    let app = TestApp::new().await;
    let alice = app.sign_in("alice@example.com").await;
    let bob = app.sign_in("bob@example.com").await;
    let carol = app.sign_in("carol@example.com").await;
    let server = app.state.keys.signing.verifying_key();
    let id = app.register(&alice).await;
    let grants = vec![
        Grant::parse_spec("bob@example.com:view,edit").unwrap(),
        Grant::parse_spec("carol@example.com:view").unwrap(),
    ];
    let (s, v) = app
        .call(
            Method::PUT,
            &format!("/v1/content/{id}/grants"),
            Some(&alice.access),
            Some(json!({ "grants": grants })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let cert_of = async |u: &User| {
        let (s, v) = certify(&app, u, &u.device.writer_key(), u).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["certificate"].as_str().unwrap().to_string()
    };
    let ask = async |u: &User, cert: Option<&str>| {
        let body = cert.map_or(json!({}), |c| json!({ "device_certificate": c }));
        let (s, v) = app
            .post(&format!("/v1/content/{id}/licence"), Some(&u.access), body)
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        serde_json::from_value::<UseLicence>(v).unwrap()
    };
    let bob_cert = cert_of(&bob).await;
    let ul = ask(&bob, Some(&bob_cert)).await;
    let body = ul.verify(&server).unwrap();
    let ec = EditCertificate::verify(ul.edit_certificate.as_ref().unwrap(), &server).unwrap();
    assert_eq!(ec.content_id.to_hex(), id);
    assert_eq!(ec.account.as_str(), "bob@example.com");
    assert_eq!(ec.key, bob.device.writer_key().public());
    assert!(ec.rights.has(Right::Edit));
    assert!(ec.not_after <= body.valid_until);
    // Without a device certificate, no edit certificate.
    assert!(ask(&bob, None).await.edit_certificate.is_none());
    // A view-only grantee gets none, whatever certificate it shows.
    let carol_cert = cert_of(&carol).await;
    assert!(ask(&carol, Some(&carol_cert)).await.edit_certificate.is_none());
    // The owner needs none: her versions are hers by her device certificate.
    let alice_cert = cert_of(&alice).await;
    assert!(ask(&alice, Some(&alice_cert)).await.edit_certificate.is_none());
    // Someone else's device certificate is refused, not turned into an
    // edit certificate for their key.
    let r = app
        .post(
            &format!("/v1/content/{id}/licence"),
            Some(&carol.access),
            json!({ "device_certificate": bob_cert }),
        )
        .await;
    assert_error(&r, 400, "bad_device_certificate");
}

/// The list of removed devices: any signed-in caller gets it, signed with
/// the server's key, listing a device removed from another account with
/// its removal time and nothing that names an account; a device signing
/// in again on the same machine is not listed.
#[tokio::test]
async fn removed_devices_are_listed_signed_and_name_no_account() {
    use crate::policy::{RemovedDeviceList, now};
    let app = TestApp::new().await;
    let laptop = app.sign_in("alice@example.com").await;
    let phone = app.sign_in("alice@example.com").await;
    let bob = app.sign_in("bob@example.com").await;
    let server = app.state.keys.signing.verifying_key();
    let list = |v: &Value| {
        let bytes = STANDARD.decode(v["list"].as_str().unwrap()).unwrap();
        RemovedDeviceList::verify(&bytes, &server).unwrap()
    };
    let (s, v) = app.get("/v1/devices/removed", &bob.access).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(list(&v).devices.is_empty() && list(&v).last, "{v}");

    let before = now();
    remove_device(&app, &laptop, &phone).await;
    let (s, v) = app.get("/v1/devices/removed", &bob.access).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["next"].is_null(), "{v}");
    let page = list(&v);
    assert!(
        page.last && page.after.is_empty() && page.issued_at >= before,
        "{page:?}"
    );
    assert_eq!(page.devices.len(), 1, "{page:?}");
    assert_eq!(page.devices[0].device_id, phone.device_id);
    assert!((before..=now()).contains(&page.devices[0].removed_at), "{page:?}");
    // Nothing in it names an account, in any encoding.
    let bytes = STANDARD.decode(v["list"].as_str().unwrap()).unwrap();
    for who in ["alice", "bob", "example.com"] {
        assert!(!v.to_string().contains(who), "{v}");
        assert!(!bytes.windows(who.len()).any(|w| w == who.as_bytes()), "{who}");
    }
    // Signed by this server only: another key does not verify it.
    let other = crate::crypto::ServerSigningKey::generate().verifying_key();
    assert!(RemovedDeviceList::verify(&bytes, &other).is_err());
    // The page after the last id is empty and says where it starts.
    let (s, v) = app
        .get(&format!("/v1/devices/removed?after={}", phone.device_id), &bob.access)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let page = list(&v);
    assert!(
        page.devices.is_empty() && page.last && page.after == phone.device_id,
        "{page:?}"
    );
    // Signed-in callers only.
    let (s, _) = app.call(Method::GET, "/v1/devices/removed", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}
