//! The router: every route of the API, the body limit, and a layer that
//! gives any error (including the framework's own) the API's JSON shape.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post, put};

use super::error::ApiError;
use super::headers::security_headers;
use super::metrics::Metrics;
use super::state::AppState;
use super::{account, audit, auth, certificates, content, licence, listing, openapi, send, viewer};
use crate::api::{ErrorBody, ServerKey};

/// Largest request body accepted.
pub const BODY_LIMIT: usize = 256 * 1024;

/// Every route the server answers, in one list: the router is built from
/// it, and a test checks it against the OpenAPI document both ways.
pub(super) fn routes(state: &AppState) -> Vec<(&'static str, MethodRouter<AppState>)> {
    let document: Arc<str> = openapi::document().into();
    vec![
        ("/healthz", get(healthz)),
        ("/metrics", get(metrics)),
        ("/v1/openapi.json", get(move || serve_openapi(document.clone()))),
        ("/v1/server-key", get(server_key)),
        ("/v1/auth/start", post(auth::start)),
        ("/v1/auth/verify", post(auth::verify)),
        ("/v1/auth/refresh", post(auth::refresh)),
        ("/v1/auth/logout", post(auth::logout)),
        ("/v1/me", get(account::me)),
        ("/v1/devices", get(account::devices)),
        ("/v1/devices/writer-certificate", post(certificates::issue)),
        ("/v1/devices/removed", get(account::removed_devices)),
        ("/v1/devices/{id}", delete(account::delete_device)),
        ("/v1/content", post(content::register).get(listing::list)),
        ("/v1/content/batch", post(content::register_batch)),
        ("/v1/content/{id}", get(content::get)),
        ("/v1/content/{id}/licence", post(licence::issue)),
        ("/v1/content/{id}/grants", put(content::put_grants)),
        ("/v1/content/{id}/grants/{principal}", delete(content::delete_grant)),
        ("/v1/content/{id}/revoke", post(content::revoke)),
        ("/v1/content/{id}/audit", get(content::audit)),
        ("/v1/opens", post(audit::report)),
        (
            "/v1/content/{id}/send",
            post(send::send).layer(DefaultBodyLimit::max(state.sent.max_bytes / 3 * 4 + 64 * 1024)),
        ),
        ("/v1/content/{id}/file", get(send::file)),
        ("/app", get(viewer::root)),
        ("/app/", get(viewer::index)),
        ("/app/{*path}", get(viewer::file)),
    ]
}

/// The complete application.
pub fn router(state: AppState) -> Router {
    routes(&state)
        .into_iter()
        .fold(Router::new(), |r, (path, handlers)| r.route(path, handlers))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(state.clone(), json_errors))
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

/// The router of `--metrics-listen`: `/metrics` alone, without a token
/// (the address is meant to be reachable only by the monitoring system).
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(render_metrics))
        .fallback(not_found)
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("not_found", "no such endpoint; see /v1/openapi.json for the API")
}

/// Counts requests and rewrites non-JSON error answers into the API's shape.
async fn json_errors(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = next.run(req).await;
    let status = resp.status();
    Metrics::inc(&state.metrics.requests);
    if status.is_client_error() {
        Metrics::inc(&state.metrics.client_errors);
    } else if status.is_server_error() {
        Metrics::inc(&state.metrics.server_errors);
    }
    tracing::debug!(%method, path, status = status.as_u16(), "request");
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if status.as_u16() < 400 || is_json {
        return resp;
    }
    let (code, message) = match status {
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this endpoint does not take that method; see /v1/openapi.json",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "body_too_large",
            "the body is larger than the server accepts (256 KiB); send less",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "send the body as JSON with Content-Type: application/json",
        ),
        s if s.is_server_error() => ("internal", "the server failed to handle this request; try again later"),
        _ => ("bad_request", "the request is malformed; see /v1/openapi.json"),
    };
    // A 405 keeps its list of the methods the path takes (RFC 9110).
    let allow = resp.headers().get(header::ALLOW).cloned();
    let mut out = ApiError::new(status, code, message).into_response();
    if let Some(a) = allow {
        out.headers_mut().insert(header::ALLOW, a);
    }
    out
}

#[utoipa::path(
    get, path = "/healthz", tag = "server", security(()),
    summary = "Liveness and database check",
    responses((status = 200, description = "the server and its database answer"))
)]
pub(super) async fn healthz(State(state): State<AppState>) -> Response {
    match state.store.user_exists("healthz@invalid.invalid").await {
        Ok(_) => (StatusCode::OK, axum::Json(serde_json::json!({"status": "ok"}))).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// `GET /metrics` on the main address: only with the configured token,
/// so that traffic figures are not public.
#[utoipa::path(
    get, path = "/metrics", tag = "server",
    summary = "Prometheus counters (text format), with the metrics token as bearer token",
    responses(
        (status = 200, description = "text exposition format", body = String, content_type = "text/plain"),
        (status = 401, description = "no or wrong metrics token", body = ErrorBody),
        (status = 404, description = "this server publishes no metrics here", body = ErrorBody),
    )
)]
pub(super) async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = &state.metrics_token else {
        return ApiError::not_found(
            "not_found",
            "this server does not publish metrics here; its operator can enable them with --metrics-token or --metrics-listen",
        )
        .into_response();
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Hashed first, so that the comparison does not reveal the length either.
    let (given, token) = (
        crate::crypto::sha256(given.as_bytes()),
        crate::crypto::sha256(token.as_bytes()),
    );
    if !crate::crypto::ct_eq(&given, &token) {
        return ApiError::unauthorized("send the metrics token as Authorization: Bearer TOKEN").into_response();
    }
    render_metrics(State(state)).await
}

async fn render_metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

#[utoipa::path(
    get, path = "/v1/openapi.json", operation_id = "openapi", tag = "server", security(()),
    summary = "This document",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json"))
)]
pub(super) async fn serve_openapi(document: Arc<str>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], document.to_string()).into_response()
}

#[utoipa::path(
    get, path = "/v1/server-key", tag = "server", security(()),
    summary = "The server's public keys",
    responses((status = 200, description = "keys", body = ServerKey))
)]
pub(super) async fn server_key(State(state): State<AppState>) -> axum::Json<ServerKey> {
    axum::Json(ServerKey {
        server_id: state.keys.server_id(),
        kem_public_key: hex::encode(state.keys.kem.public().0),
        signing_public_key: hex::encode(state.keys.signing.verifying_key().0),
    })
}
