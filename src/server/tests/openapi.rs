//! The OpenAPI document against the router and against its checked-in copy.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::Value;
use tower::ServiceExt;

use super::TestApp;
use crate::server::app::routes;
use crate::server::openapi::document;

#[test]
fn the_checked_in_document_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        checked_in == document(),
        "docs/openapi.json is not the document the server serves; \
         regenerate it: cargo run --bin rights-server -- openapi > docs/openapi.json"
    );
}

/// `{name}` for every parameter, `{*name}` included, as OpenAPI writes it.
fn documented_form(route: &str) -> String {
    route.replace("{*", "{")
}

/// A request path that the route matches: any value fits a parameter.
fn concrete(route: &str) -> String {
    route
        .split('/')
        .map(|seg| if seg.starts_with('{') { "x" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn the_document_names_exactly_the_routes_the_router_serves() {
    let app = TestApp::new().await;
    let doc: Value = serde_json::from_str(&document()).unwrap();
    let mut documented = BTreeSet::new();
    let mut operation_ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            documented.insert((path.clone(), method.to_uppercase()));
            let id = op["operationId"].as_str().unwrap();
            assert!(operation_ids.insert(id.to_string()), "operationId {id} is used twice");
        }
    }
    // No route takes PATCH, so each answers 405 with the methods it does take.
    let mut served = BTreeSet::new();
    for (route, _) in routes(&app.state) {
        let req = Request::builder()
            .method(Method::PATCH)
            .uri(concrete(route))
            .body(Body::empty())
            .unwrap();
        let resp = app.router.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED, "{route}");
        let allow = resp.headers()[header::ALLOW].to_str().unwrap().to_string();
        for method in allow.split(',').map(str::trim) {
            // Answered for every GET route by the framework itself.
            if method != "HEAD" {
                served.insert((documented_form(route), method.to_string()));
            }
        }
    }
    let missing: Vec<_> = served.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&served).collect();
    assert!(missing.is_empty(), "served but not in the document: {missing:?}");
    assert!(extra.is_empty(), "in the document but not served: {extra:?}");
}

#[tokio::test]
async fn the_served_document_is_the_generated_one() {
    let app = TestApp::new().await;
    let (status, served) = app.call(Method::GET, "/v1/openapi.json", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(served, serde_json::from_str::<Value>(&document()).unwrap());
    assert!(served["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(served["components"]["schemas"]["ContentInfo"]["properties"]["licence_hash"].is_object());
}
