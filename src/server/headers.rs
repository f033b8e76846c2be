//! Security headers on every answer. The API answers JSON to programs,
//! but a browser may still be pointed at it: nothing it returns may be
//! sniffed into HTML, framed, leak its URL as a referrer, or be kept in a
//! shared cache when it concerns a signed-in caller or carries tokens.

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// For answers that set no policy of their own (the viewer's pages do):
/// load nothing, and be framed by nobody.
const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// Adds the headers, keeping any a handler set itself.
pub async fn security_headers(req: Request, next: Next) -> Response {
    // Answers to signed-in callers, and the sign-in answers that carry
    // tokens, are private to the caller.
    let private = req.headers().contains_key(header::AUTHORIZATION) || req.uri().path().starts_with("/v1/auth/");
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CONTENT_SECURITY_POLICY, API_CSP),
    ] {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    }
    if private {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}
