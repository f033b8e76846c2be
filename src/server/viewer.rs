//! The web viewer's static files (`web/app/`), embedded in the binary and
//! served at `/app/` with a strict Content-Security-Policy: scripts and
//! styles only from this origin, no inline code, connections only back to
//! this server, decrypted content only as `blob:` URLs made by the page.

use axum::body::Body;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::error::ApiError;
use crate::api::ErrorBody;

/// What the page may load. `blob:` is where decrypted images and PDFs
/// live (made by the page itself); `frame-ancestors 'none'` keeps the
/// viewer out of other sites' frames (clickjacking).
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; \
     connect-src 'self'; frame-src blob:; object-src blob:; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// Every file of the viewer: path under `/app/`, content type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../../web/app/index.html"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../web/app/app.css"),
    ),
    ("js/main.js", JS, include_bytes!("../../web/app/js/main.js")),
    ("js/api.js", JS, include_bytes!("../../web/app/js/api.js")),
    ("js/device.js", JS, include_bytes!("../../web/app/js/device.js")),
    ("js/render.js", JS, include_bytes!("../../web/app/js/render.js")),
    ("js/sent.js", JS, include_bytes!("../../web/app/js/sent.js")),
    ("js/format.js", JS, include_bytes!("../../web/app/js/format.js")),
    ("js/licences.js", JS, include_bytes!("../../web/app/js/licences.js")),
    ("js/writers.js", JS, include_bytes!("../../web/app/js/writers.js")),
    ("js/postcard.js", JS, include_bytes!("../../web/app/js/postcard.js")),
    ("js/bytes.js", JS, include_bytes!("../../web/app/js/bytes.js")),
];

const JS: &str = "text/javascript; charset=utf-8";

/// `GET /app`: the viewer lives under `/app/` so relative module paths work.
#[utoipa::path(
    get, path = "/app", operation_id = "viewer_redirect", tag = "viewer", security(()),
    summary = "Redirect to /app/",
    responses((status = 308, description = "to /app/"))
)]
pub async fn root() -> Redirect {
    Redirect::permanent("/app/")
}

/// `GET /app/`.
#[utoipa::path(
    get, path = "/app/", operation_id = "viewer_page", tag = "viewer", security(()),
    summary = "The web viewer",
    responses((status = 200, description = "its page", content_type = "text/html"))
)]
pub async fn index() -> Response {
    asset("index.html")
}

/// `GET /app/{*path}`.
#[utoipa::path(
    get, path = "/app/{path}", operation_id = "viewer_file", tag = "viewer", security(()),
    summary = "The web viewer's files",
    params(("path" = String, Path, description = "a file of the viewer")),
    responses(
        (status = 200, description = "the file"),
        (status = 404, description = "no such file", body = ErrorBody),
    )
)]
pub async fn file(Path(path): Path<String>) -> Response {
    asset(&path)
}

fn asset(path: &str) -> Response {
    let Some((_, kind, bytes)) = ASSETS.iter().find(|(p, _, _)| *p == path) else {
        return ApiError::not_found("not_found", "no such file in the web viewer").into_response();
    };
    let mut resp = Response::new(Body::from(*bytes));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // The files change with the binary; revalidating is cheap and avoids
    // an old page talking to a newer server.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    *resp.status_mut() = StatusCode::OK;
    resp
}
