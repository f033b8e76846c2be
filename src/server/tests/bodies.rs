//! Requests the server cannot use at all: bodies that are not JSON, not
//! the expected shape, too large, and routes or methods that do not exist.
//! Each answers a 4xx in the API's error shape and changes nothing.

use axum::body::Body;
use axum::http::{Method, Request, header};
use serde_json::json;

use super::{TestApp, assert_error};
use crate::server::BODY_LIMIT;

fn raw(method: Method, path: &str, content_type: Option<&str>, token: Option<&str>, body: Vec<u8>) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(path);
    if let Some(c) = content_type {
        b = b.header(header::CONTENT_TYPE, c);
    }
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    b.body(Body::from(body)).unwrap()
}

const JSON: Option<&str> = Some("application/json");

#[tokio::test]
async fn bodies_that_are_not_the_expected_json_get_4xx_json_errors() {
    let app = TestApp::new().await;
    let start = "/v1/auth/start";
    let cases: [(&str, Request<Body>, u16, &str); 8] = [
        (
            "cut JSON",
            raw(Method::POST, start, JSON, None, b"{\"email\":".to_vec()),
            400,
            "malformed_json",
        ),
        (
            "not JSON at all",
            raw(Method::POST, start, JSON, None, b"email=a".to_vec()),
            400,
            "malformed_json",
        ),
        (
            "empty body",
            raw(Method::POST, start, JSON, None, Vec::new()),
            400,
            "malformed_json",
        ),
        (
            "text/plain",
            raw(Method::POST, start, Some("text/plain"), None, b"{}".to_vec()),
            415,
            "unsupported_media_type",
        ),
        (
            "no content type",
            raw(Method::POST, start, None, None, b"{}".to_vec()),
            415,
            "unsupported_media_type",
        ),
        (
            "unknown field",
            raw(
                Method::POST,
                start,
                JSON,
                None,
                br#"{"email":"a@example.com","colour":1}"#.to_vec(),
            ),
            422,
            "invalid_request",
        ),
        (
            "wrong type",
            raw(Method::POST, start, JSON, None, br#"{"email":7}"#.to_vec()),
            422,
            "invalid_request",
        ),
        (
            "array for object",
            raw(Method::POST, start, JSON, None, b"[]".to_vec()),
            422,
            "invalid_request",
        ),
    ];
    for (what, req, status, code) in cases {
        let answer = app.send(req).await;
        assert_eq!(answer.0.as_u16(), status, "{what}: {}", answer.1);
        assert_error(&answer, status, code);
    }
    // None of them reached the mailer or the store.
    assert!(!app.state.store.user_exists("a@example.com").await.unwrap());
    assert_eq!(std::fs::read_dir(&app.outbox).unwrap().count(), 0);
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_whole() {
    let app = TestApp::new().await;
    let alice = app.sign_in("alice@example.com").await;
    // A valid JSON document, one byte over: the size alone decides.
    let mut big = br#"{"publishing_licence":""#.to_vec();
    big.resize(BODY_LIMIT - 1, b'a');
    big.extend_from_slice(b"\"}");
    assert_eq!(big.len(), BODY_LIMIT + 1);
    let req = raw(Method::POST, "/v1/content", JSON, Some(&alice.access), big);
    assert_error(&app.send(req).await, 413, "body_too_large");
    let (_, owned) = app.get("/v1/content", &alice.access).await;
    assert_eq!(owned, json!({"contents": [], "next": null}));
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_the_api_shape() {
    let app = TestApp::new().await;
    let alice = app.sign_in("alice@example.com").await;
    assert_error(&app.get("/v1/nothing", &alice.access).await, 404, "not_found");
    assert_error(&app.get("/", &alice.access).await, 404, "not_found");
    assert_error(
        &app.call(Method::DELETE, "/v1/me", Some(&alice.access), None).await,
        405,
        "method_not_allowed",
    );
    assert_error(
        &app.call(Method::GET, "/v1/auth/start", None, None).await,
        405,
        "method_not_allowed",
    );
    let (s, v) = app.call(Method::GET, "/v1/openapi.json", None, None).await;
    assert_eq!(s, 200);
    assert!(v["paths"].is_object(), "{v}");
}
