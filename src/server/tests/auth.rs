//! Sign-in and tokens: the ways a code, a device or a token can be wrong.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::json;

use super::{TestApp, assert_error};

fn verify_body(email: &str, code: &str, name: &str) -> serde_json::Value {
    // A well-formed key, so that only the field under test is wrong.
    let key = crate::crypto::DeviceKeyPair::generate().unwrap();
    let der = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, key.public().to_der());
    json!({"email": email, "code": code, "device_name": name, "device_public_key": der})
}

#[tokio::test]
async fn verify_refuses_absent_wrong_and_used_codes() {
    let app = TestApp::new().await;
    let email = "alice@example.com";
    let verify = |code: &str| app.post("/v1/auth/verify", None, verify_body(email, code, "laptop"));

    assert_error(&verify("12345678").await, 401, "invalid_code");

    let (s, _) = app.post("/v1/auth/start", None, json!({"email": email})).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let code = app.code_for(email);
    let wrong = if code == "00000000" { "11111111" } else { "00000000" };
    assert_error(&verify(wrong).await, 401, "invalid_code");

    // The right code works once.
    let (s, v) = verify(&code).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_error(&verify(&code).await, 401, "invalid_code");
}

#[tokio::test]
async fn verify_refuses_bad_names_keys_and_addresses_before_spending_the_code() {
    let app = TestApp::new().await;
    let email = "alice@example.com";
    app.post("/v1/auth/start", None, json!({"email": email})).await;
    let code = app.code_for(email);
    for name in ["", "   ", "tab\there", &"x".repeat(101)] {
        let r = app.post("/v1/auth/verify", None, verify_body(email, &code, name)).await;
        assert_error(&r, 400, "bad_device_name");
    }
    let mut body = verify_body(email, &code, "laptop");
    body["device_public_key"] = json!("bm90IGEga2V5");
    assert_error(&app.post("/v1/auth/verify", None, body).await, 400, "bad_device_key");
    let r = app
        .post("/v1/auth/verify", None, verify_body("not-an-address", &code, "laptop"))
        .await;
    assert_error(&r, 400, "bad_email");
    assert_error(
        &app.post("/v1/auth/start", None, json!({"email": "a@@b"})).await,
        400,
        "bad_email",
    );
    // The refusals above spent no attempt: the code still signs in.
    let (s, v) = app
        .post("/v1/auth/verify", None, verify_body(email, &code, "laptop"))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

#[tokio::test]
async fn missing_malformed_and_wrong_kind_tokens_are_refused() {
    let app = TestApp::new().await;
    let alice = app.sign_in("alice@example.com").await;
    let me = |auth: Option<String>| {
        let mut b = Request::builder().uri("/v1/me");
        if let Some(a) = auth {
            b = b.header(header::AUTHORIZATION, a);
        }
        app.send(b.body(Body::empty()).unwrap())
    };
    let (s, v) = me(Some(format!("Bearer {}", alice.access))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["email"], "alice@example.com");

    assert_error(&me(None).await, 401, "unauthorized");
    assert_error(&me(Some(format!("Basic {}", alice.access))).await, 401, "unauthorized");
    assert_error(&me(Some("Bearer".into())).await, 401, "unauthorized");
    assert_error(&me(Some("Bearer not-a-token".into())).await, 401, "unauthorized");
    // The refresh token is not an access token.
    assert_error(
        &me(Some(format!("Bearer {}", alice.refresh))).await,
        401,
        "unauthorized",
    );

    // Refresh with something that is not a refresh token.
    let r = app
        .post("/v1/auth/refresh", None, json!({"refresh_token": alice.access}))
        .await;
    assert_error(&r, 401, "unauthorized");
    let r = app.post("/v1/auth/refresh", None, json!({"refresh_token": ""})).await;
    assert_error(&r, 401, "unauthorized");
}

#[tokio::test]
async fn a_removed_device_is_refused_and_others_devices_cannot_be_removed() {
    let app = TestApp::new().await;
    let laptop = app.sign_in("alice@example.com").await;
    let phone = app.sign_in("alice@example.com").await;
    let bob = app.sign_in("bob@example.com").await;

    // Bob cannot remove Alice's device; it is simply not one of his.
    let path = format!("/v1/devices/{}", phone.device_id);
    assert_error(
        &app.call(Method::DELETE, &path, Some(&bob.access), None).await,
        404,
        "no_device",
    );
    let (s, _) = app.get("/v1/me", &phone.access).await;
    assert_eq!(s, StatusCode::OK);

    let (s, _) = app.call(Method::DELETE, &path, Some(&laptop.access), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_error(&app.get("/v1/me", &phone.access).await, 401, "unauthorized");
    let r = app
        .post("/v1/auth/refresh", None, json!({"refresh_token": phone.refresh}))
        .await;
    assert_error(&r, 401, "unauthorized");
    assert_error(
        &app.call(Method::DELETE, &path, Some(&laptop.access), None).await,
        404,
        "no_device",
    );

    let (_, list) = app.get("/v1/devices", &laptop.access).await;
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [laptop.device_id.as_str()]);
}
