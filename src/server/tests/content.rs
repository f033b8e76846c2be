//! The registry: registration, listing, sharing and revocation refused for
//! the wrong caller, the wrong content or a wrong request.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use super::{TestApp, User, assert_error, licence_for};
use crate::api::REGISTER_BATCH_MAX as BATCH_MAX;
use crate::policy::{Email, Grant, Policy, now};

fn grants(specs: &[&str]) -> Value {
    let g: Vec<Grant> = specs.iter().map(|s| Grant::parse_spec(s).unwrap()).collect();
    json!({ "grants": g })
}

async fn put_grants(app: &TestApp, who: &User, id: &str, body: Value) -> (StatusCode, Value) {
    app.call(
        Method::PUT,
        &format!("/v1/content/{id}/grants"),
        Some(&who.access),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn registration_refuses_foreign_altered_and_conflicting_licences() {
    let app = TestApp::new().await;
    let alice = app.sign_in("alice@example.com").await;
    let bob = app.sign_in("bob@example.com").await;
    let register = async |who: &User, pl: &crate::policy::PublishingLicence| {
        app.post("/v1/content", Some(&who.access), json!({"publishing_licence": pl}))
            .await
    };

    let (pl, id) = app.licence(&alice, None);
    assert_error(&register(&bob, &pl).await, 403, "not_owner");
    let mut altered = pl.clone();
    let last = altered.body.len() - 1;
    altered.body[last] ^= 1;
    assert_error(&register(&alice, &altered).await, 400, "bad_licence");
    let (foreign, _) = licence_for(&alice, crate::crypto::ServerKemSecret::generate().public().0, None);
    assert_error(&register(&alice, &foreign).await, 400, "wrong_server");
    // Bob's device signing a licence that names Alice as owner.
    let posing = User {
        email: alice.email.clone(),
        access: String::new(),
        refresh: String::new(),
        device_id: String::new(),
        device: bob.device,
    };
    let (forged, _) = app.licence(&posing, None);
    assert_error(&register(&alice, &forged).await, 403, "unknown_device");

    // The same licence twice is fine; another licence for the same id is not.
    let (s, _) = register(&alice, &pl).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = register(&alice, &pl).await;
    assert_eq!(s, StatusCode::OK);
    let mut body = pl.decode_unverified().unwrap();
    assert_eq!(body.content_id, id);
    body.created_at += 1;
    let other = crate::policy::PublishingLicence::sign(&body, &alice.device).unwrap();
    assert_error(&register(&alice, &other).await, 409, "conflict");

    let (_, owned) = app.get("/v1/content?role=owned", &alice.access).await;
    assert_eq!(owned["contents"].as_array().unwrap().len(), 1, "{owned}");
}

#[tokio::test]
async fn a_batch_must_hold_from_one_to_the_limit_and_answers_per_item() {
    let app = TestApp::new().await;
    let alice = app.sign_in("alice@example.com").await;
    let batch = |pls: Vec<crate::policy::PublishingLicence>| {
        app.post(
            "/v1/content/batch",
            Some(&alice.access),
            json!({"publishing_licences": pls}),
        )
    };
    assert_error(&batch(Vec::new()).await, 400, "bad_batch");
    let (pl, _) = app.licence(&alice, None);
    assert_error(&batch(vec![pl.clone(); BATCH_MAX + 1]).await, 400, "bad_batch");

    let (mut altered, _) = app.licence(&alice, None);
    altered.signature[0] ^= 1;
    let (s, v) = batch(vec![pl.clone(), altered, pl]).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let statuses: Vec<u64> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [201, 400, 200]);
    assert_eq!(v["results"][1]["error"], "bad_licence");
}

#[tokio::test]
async fn reading_the_registry_needs_rights_and_well_formed_ids() {
    let app = TestApp::new().await;
    let alice = app.sign_in("alice@example.com").await;
    let bob = app.sign_in("bob@example.com").await;
    let id = app.register(&alice).await;

    assert_error(
        &app.get(&format!("/v1/content/{id}"), &bob.access).await,
        403,
        "no_rights",
    );
    assert_error(&app.get("/v1/content/xyz", &alice.access).await, 400, "bad_content_id");
    assert_error(
        &app.get(&format!("/v1/content/{id}00"), &alice.access).await,
        400,
        "bad_content_id",
    );
    let unknown = "ab".repeat(16);
    assert_error(
        &app.get(&format!("/v1/content/{unknown}"), &alice.access).await,
        404,
        "not_registered",
    );
    assert_error(
        &app.get("/v1/content?role=everyone", &alice.access).await,
        400,
        "bad_role",
    );
    assert_error(&app.get("/v1/content?owner=bob", &alice.access).await, 400, "bad_query");
    let (s, shared) = app.get("/v1/content?role=shared", &bob.access).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(shared, json!({"contents": [], "next": null}));
}

#[tokio::test]
async fn sharing_refuses_strangers_empty_expired_and_inflated_grants() {
    let app = TestApp::new().await;
    let alice = app.sign_in("alice@example.com").await;
    let bob = app.sign_in("bob@example.com").await;
    let carol = app.sign_in("carol@example.com").await;
    let id = app.register(&alice).await;

    let r = put_grants(&app, &bob, &id, grants(&["bob@example.com:view,share"])).await;
    assert_error(&r, 403, "no_share_right");
    assert_error(&put_grants(&app, &alice, &id, grants(&[])).await, 400, "bad_grant");
    let no_rights = json!({"grants": [{"to": "bob@example.com", "rights": [], "expires": null}]});
    assert_error(&put_grants(&app, &alice, &id, no_rights).await, 400, "bad_grant");
    let lapsed = json!({"grants": [{"to": "bob@example.com", "rights": ["view"], "expires": now() - 60}]});
    assert_error(&put_grants(&app, &alice, &id, lapsed).await, 400, "bad_grant");
    assert_error(
        &put_grants(&app, &alice, &id, grants(&["alice@example.com:view"])).await,
        400,
        "bad_grant",
    );
    let unknown = "cd".repeat(16);
    let r = put_grants(&app, &alice, &unknown, grants(&["bob@example.com"])).await;
    assert_error(&r, 404, "not_registered");

    // Bob may share, but only what he holds.
    let (s, v) = put_grants(&app, &alice, &id, grants(&["bob@example.com:view,share"])).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let r = put_grants(&app, &bob, &id, grants(&["carol@example.com:view,export"])).await;
    assert_error(&r, 403, "no_share_right");
    let r = put_grants(&app, &bob, &id, grants(&["carol@example.com:owner"])).await;
    assert_error(&r, 403, "no_share_right");
    let (s, v) = put_grants(&app, &bob, &id, grants(&["carol@example.com:view"])).await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // Carol holds view only: she cannot share on.
    let r = put_grants(&app, &carol, &id, grants(&["dave@example.com:view"])).await;
    assert_error(&r, 403, "no_share_right");

    let grant_path = |who: &str| format!("/v1/content/{id}/grants/{who}");
    let r = app
        .call(
            Method::DELETE,
            &grant_path("dave@example.com"),
            Some(&alice.access),
            None,
        )
        .await;
    assert_error(&r, 404, "no_grant");
    let r = app
        .call(Method::DELETE, &grant_path("not-an-address"), Some(&alice.access), None)
        .await;
    assert_error(&r, 400, "bad_email");
    let r = app
        .call(
            Method::DELETE,
            &grant_path("bob@example.com"),
            Some(&carol.access),
            None,
        )
        .await;
    assert_error(&r, 403, "no_share_right");

    // What the registry holds is exactly what was accepted.
    let (_, info) = app.get(&format!("/v1/content/{id}"), &alice.access).await;
    let policy: Policy = serde_json::from_value(info["policy"].clone()).unwrap();
    let who = |e: &str| policy.rights_for(&Email::parse(e).unwrap(), now()).to_string();
    assert_eq!(who("bob@example.com"), "view,share");
    assert_eq!(who("carol@example.com"), "view");
    assert!(
        policy
            .rights_for(&Email::parse("dave@example.com").unwrap(), now())
            .is_empty()
    );
}

#[tokio::test]
async fn only_the_owner_revokes_or_reads_the_audit_and_revoked_content_is_not_shared() {
    let app = TestApp::new().await;
    let alice = app.sign_in("alice@example.com").await;
    let bob = app.sign_in("bob@example.com").await;
    let id = app.register(&alice).await;
    put_grants(&app, &alice, &id, grants(&["bob@example.com:view,share"])).await;

    let revoke = format!("/v1/content/{id}/revoke");
    assert_error(&app.post(&revoke, Some(&bob.access), json!({})).await, 403, "not_owner");
    assert_error(
        &app.get(&format!("/v1/content/{id}/audit"), &bob.access).await,
        403,
        "not_owner",
    );
    assert_error(
        &app.post(&revoke, Some(&alice.access), json!({"why": 1})).await,
        422,
        "invalid_request",
    );

    let (s, v) = app.post(&revoke, Some(&alice.access), json!({})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["revoked"], true);
    let r = put_grants(&app, &alice, &id, grants(&["carol@example.com"])).await;
    assert_error(&r, 410, "revoked");
    let r = put_grants(&app, &bob, &id, grants(&["carol@example.com"])).await;
    assert_error(&r, 410, "revoked");
}
