//! Use licences: refused without rights or after revocation, and every
//! refusal lands in the owner's audit log.

use axum::http::StatusCode;
use serde_json::json;

use super::{TestApp, assert_error};
use crate::policy::{Grant, UseLicence};

#[tokio::test]
async fn licences_are_refused_without_rights_after_revocation_and_for_bad_ids() {
    let app = TestApp::new().await;
    let alice = app.sign_in("alice@example.com").await;
    let bob = app.sign_in("bob@example.com").await;
    let id = app.register(&alice).await;
    let ask = async |token: &str, id: &str| {
        app.post(&format!("/v1/content/{id}/licence"), Some(token), json!({}))
            .await
    };

    assert_error(&ask(&bob.access, &id).await, 403, "no_rights");
    assert_error(&ask(&bob.access, "xyz").await, 400, "bad_content_id");
    assert_error(&ask(&bob.access, &"ef".repeat(16)).await, 404, "not_registered");
    assert_error(
        &app.post(&format!("/v1/content/{id}/licence"), None, json!({})).await,
        401,
        "unauthorized",
    );
    let r = app
        .post(
            &format!("/v1/content/{id}/licence"),
            Some(&alice.access),
            json!({"rights": "all"}),
        )
        .await;
    assert_error(&r, 422, "invalid_request");

    let grant = vec![Grant::parse_spec("bob@example.com:view").unwrap()];
    let path = format!("/v1/content/{id}/grants");
    let (s, v) = app
        .call(
            axum::http::Method::PUT,
            &path,
            Some(&alice.access),
            Some(json!({"grants": grant})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = ask(&bob.access, &id).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let licence: UseLicence = serde_json::from_value(v).unwrap();
    let body = licence.verify(&app.state.keys.signing.verifying_key()).unwrap();
    assert_eq!(body.user.as_str(), "bob@example.com");
    assert_eq!(body.device_id, bob.device_id);
    assert_eq!(body.rights.to_string(), "view");

    let (s, _) = app
        .post(&format!("/v1/content/{id}/revoke"), Some(&alice.access), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_error(&ask(&bob.access, &id).await, 410, "revoked");
    // The owner keeps access to her own file.
    let (s, v) = ask(&alice.access, &id).await;
    assert_eq!(s, StatusCode::OK, "{v}");

    let (s, audit) = app.get(&format!("/v1/content/{id}/audit"), &alice.access).await;
    assert_eq!(s, StatusCode::OK);
    let rows: Vec<(String, String, String)> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let f = |k: &str| a[k].as_str().unwrap().to_string();
            (f("email"), f("result"), f("reason"))
        })
        .collect();
    let row = |e: &str, r: &str, why: &str| (e.to_string(), r.to_string(), why.to_string());
    assert_eq!(
        rows,
        [
            row("bob@example.com", "refused", "no_rights"),
            row("bob@example.com", "issued", ""),
            row("bob@example.com", "refused", "revoked"),
            row("alice@example.com", "issued", ""),
        ]
    );
}
