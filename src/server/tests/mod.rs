//! In-process tests of the handlers' answers, above all their error paths.
//!
//! Each test drives the real router with `tower::ServiceExt::oneshot`, over
//! a real SQLite store in a temporary folder and a mail outbox, without a
//! socket: fast enough to try every refusal one by one. The end-to-end
//! tests in `tests/server_*.rs` still run the binary over loopback HTTP,
//! SMTP and PostgreSQL.

mod auth;
mod bodies;
mod certificates;
mod content;
mod licence;
mod openapi;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Mutex;

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use base64::Engine;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::keys::ServerKeys;
use super::mail::Mailer;
use super::sent::SentFiles;
use super::state::AppState;
use crate::crypto::{ContentKey, DeviceKeyPair, ServerKemPublic};
use crate::policy::{ContentId, Email, Policy, PublishingLicence, PublishingLicenceBody, now};

/// A server application on a fresh store, answering in-process.
pub struct TestApp {
    /// The state the router holds, to arrange what no request can (an expired code).
    pub state: AppState,
    router: Router,
    outbox: PathBuf,
    /// Mails already read for their code, so each sign-in takes its own.
    read_mails: Mutex<HashSet<PathBuf>>,
    _dir: tempfile::TempDir,
}

/// A signed-in user on one device.
pub struct User {
    pub email: String,
    pub access: String,
    pub refresh: String,
    pub device_id: String,
    pub device: DeviceKeyPair,
}

impl TestApp {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let keys = ServerKeys::load_or_create(dir.path()).unwrap();
        let store = crate::store::open(dir.path().join("rights.db").to_str().unwrap())
            .await
            .unwrap();
        let outbox = dir.path().join("outbox");
        std::fs::create_dir(&outbox).unwrap();
        let mailer = Mailer::Outbox {
            dir: outbox.clone(),
            from: "rights@example.com".parse().unwrap(),
        };
        let sent = SentFiles::open(
            dir.path().join("sent"),
            SentFiles::DEFAULT_RETENTION_DAYS,
            SentFiles::DEFAULT_MAX_BYTES,
        )
        .unwrap();
        let state = AppState::new(store, keys, mailer, "http://127.0.0.1:7443".into(), sent);
        let router = super::router(state.clone()).layer(MockConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
        Self {
            state,
            router,
            outbox,
            read_mails: Mutex::default(),
            _dir: dir,
        }
    }

    /// Sends `req`; returns the status and the JSON body (Null when empty).
    /// Every answer must be JSON: a non-JSON body fails the test.
    pub async fn send(&self, req: Request<Body>) -> (StatusCode, Value) {
        let what = format!("{} {}", req.method(), req.uri());
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        if bytes.is_empty() {
            return (status, Value::Null);
        }
        let v = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{what}: {status} with a non-JSON body ({e}): {bytes:?}"));
        (status, v)
    }

    /// A JSON request with an optional bearer token.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = match body {
            Some(v) => b
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(v.to_string())),
            None => b.body(Body::empty()),
        };
        self.send(req.unwrap()).await
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, token, Some(body)).await
    }

    /// The code of the one mail to `email` not read yet.
    fn code_for(&self, email: &str) -> String {
        let to = format!("To: {email}");
        let mut read = self.read_mails.lock().unwrap();
        let mut new: Vec<(PathBuf, String)> = std::fs::read_dir(&self.outbox)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| !read.contains(p))
            .map(|p| {
                let m = std::fs::read_to_string(&p).unwrap();
                (p, m)
            })
            .filter(|(_, m)| m.lines().any(|l| l == to))
            .collect();
        assert_eq!(new.len(), 1, "expected one new mail to {email}");
        let (path, mail) = new.pop().unwrap();
        read.insert(path);
        mail.lines()
            .map(str::trim)
            .find(|l| l.len() == 8 && l.bytes().all(|b| b.is_ascii_digit()))
            .unwrap_or_else(|| panic!("no code in the mail: {mail}"))
            .to_string()
    }

    /// Signs `email` up or in on a new device through the auth endpoints.
    pub async fn sign_in(&self, email: &str) -> User {
        let (s, v) = self.post("/v1/auth/start", None, json!({"email": email})).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        let code = self.code_for(email);
        let device = DeviceKeyPair::generate().unwrap();
        let der = base64::engine::general_purpose::STANDARD.encode(device.public().to_der());
        let (s, v) = self
            .post(
                "/v1/auth/verify",
                None,
                json!({"email": email, "code": code, "device_name": "laptop", "device_public_key": der}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let field = |k: &str| v[k].as_str().unwrap().to_string();
        User {
            email: email.to_string(),
            access: field("access_token"),
            refresh: field("refresh_token"),
            device_id: field("device_id"),
            device,
        }
    }

    /// A publishing licence for a fresh content key, made on `owner`'s
    /// device for this server, with `policy` (owner only when None).
    pub fn licence(&self, owner: &User, policy: Option<Policy>) -> (PublishingLicence, ContentId) {
        let server_key = self.state.keys.kem.public().0;
        licence_for(owner, server_key, policy)
    }

    /// Registers a fresh owner-only content of `owner`; its id in hex.
    pub async fn register(&self, owner: &User) -> String {
        let (pl, id) = self.licence(owner, None);
        let (s, v) = self
            .post("/v1/content", Some(&owner.access), json!({"publishing_licence": pl}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        id.to_hex()
    }
}

/// A publishing licence wrapped to `server_key`, as a client would make it.
pub fn licence_for(owner: &User, server_key: [u8; 32], policy: Option<Policy>) -> (PublishingLicence, ContentId) {
    let cek = ContentKey::generate();
    let id = ContentId::generate();
    let policy = policy.unwrap_or_else(|| Policy::owner_only(Email::parse(&owner.email).unwrap(), 1));
    let body = PublishingLicenceBody {
        version: PublishingLicenceBody::CURRENT_VERSION,
        content_id: id,
        server_url: "http://127.0.0.1:7443".into(),
        server_key,
        owner_device_key: owner.device.public().to_der(),
        wrapped_key: ServerKemPublic(server_key)
            .wrap(
                &cek,
                &PublishingLicenceBody::wrap_context(&id, &policy.owner, &owner.device.public().to_der()),
            )
            .0
            .to_vec(),
        policy,
        created_at: now(),
    };
    (PublishingLicence::sign(&body, &owner.device).unwrap(), id)
}

/// Asserts an answer in the API's error shape with this status and code.
#[track_caller]
pub fn assert_error((status, v): &(StatusCode, Value), want_status: u16, want_code: &str) {
    assert_eq!(status.as_u16(), want_status, "{v}");
    assert_eq!(v["error"]["code"], want_code, "{v}");
    assert!(
        v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
        "an error tells the caller what to do: {v}"
    );
}
