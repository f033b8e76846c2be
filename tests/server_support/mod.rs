//! Test support: a real `rights-server` process on loopback with a
//! loopback SMTP listener, and a small blocking HTTP client.

#![allow(dead_code)]

pub mod smtp;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use reqwest::Method;
use reqwest::blocking::Client;
use rightsfs::crypto::{ContentKey, DeviceKeyPair, ServerKemPublic, ServerVerifyingKey};
use rightsfs::policy::{ContentId, Policy, PublishingLicence, PublishingLicenceBody, now};
use serde_json::{Value, json};

pub use smtp::Smtp;

/// A running server process, killed on drop.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub http: Client,
}

impl Server {
    /// Starts a server on a free loopback port with `data` as data dir,
    /// mailing through `smtp`, with extra command-line arguments.
    pub fn start(data: &Path, smtp: &Smtp, extra: &[&str]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rights-server"));
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(data)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--smtp-host",
                "127.0.0.1",
                "--smtp-tls",
                "none",
            ])
            .args([
                "--smtp-port",
                &smtp.port.to_string(),
                "--mail-from",
                "rights@example.com",
            ])
            .args(extra)
            .env("RIGHTS_SERVER_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawn rights-server");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the listening line");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_string();
        let http = Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        Self { child, url, http }
    }

    /// Sends a JSON request; returns status and JSON body (Null when empty).
    pub fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let mut rb = self.http.request(method, format!("{}{}", self.url, path));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().expect("request");
        let status = resp.status().as_u16();
        let bytes = resp.bytes().unwrap();
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| panic!("non-JSON answer: {bytes:?}"))
        };
        (status, v)
    }

    pub fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        self.call(Method::POST, path, token, Some(body))
    }

    pub fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.call(Method::GET, path, Some(token), None)
    }

    /// The server's public keys.
    pub fn keys(&self) -> ([u8; 32], ServerVerifyingKey) {
        let (s, v) = self.call(Method::GET, "/v1/server-key", None, None);
        assert_eq!(s, 200);
        let kem: [u8; 32] = hex::decode(v["kem_public_key"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let sig: [u8; 32] = hex::decode(v["signing_public_key"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        (kem, ServerVerifyingKey(sig))
    }

    /// Signs up or logs in `email` on a new device, reading the code from SMTP.
    pub fn login(&self, smtp: &Smtp, email: &str, signup: bool) -> User {
        self.login_device(smtp, email, signup, false)
    }

    /// As [`login`](Self::login), registering the device as reader-only
    /// (as the web viewer does) when `reader_only`.
    pub fn login_device(&self, smtp: &Smtp, email: &str, signup: bool, reader_only: bool) -> User {
        let seen = smtp.count();
        let (s, v) = self.post("/v1/auth/start", None, json!({"email": email, "signup": signup}));
        assert_eq!(s, 202, "{v}");
        assert_eq!(v["sent"], true);
        let code = smtp.code_for(email, seen);
        assert_eq!(code.len(), 8);
        let device = DeviceKeyPair::generate().unwrap();
        let der = base64::engine::general_purpose::STANDARD.encode(device.public().to_der());
        let (s, v) = self.post(
            "/v1/auth/verify",
            None,
            json!({"email": email, "code": code, "device_name": "laptop", "device_public_key": der,
                   "reader_only": reader_only}),
        );
        assert_eq!(s, 200, "{v}");
        User {
            email: email.to_string(),
            access: v["access_token"].as_str().unwrap().to_string(),
            refresh: v["refresh_token"].as_str().unwrap().to_string(),
            device_id: v["device_id"].as_str().unwrap().to_string(),
            device,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A signed-in user on one device.
pub struct User {
    pub email: String,
    pub access: String,
    pub refresh: String,
    pub device_id: String,
    pub device: DeviceKeyPair,
}

/// A publishing licence for a fresh content key, as a client would make it.
pub fn make_pl(owner: &User, server_kem: [u8; 32], policy: Policy) -> (PublishingLicence, ContentId, ContentKey) {
    let cek = ContentKey::generate();
    let id = ContentId::generate();
    let body = PublishingLicenceBody {
        version: PublishingLicenceBody::CURRENT_VERSION,
        content_id: id,
        server_url: "http://127.0.0.1".into(),
        server_key: server_kem,
        owner_device_key: owner.device.public().to_der(),
        wrapped_key: ServerKemPublic(server_kem)
            .wrap(
                &cek,
                &PublishingLicenceBody::wrap_context(&id, &policy.owner, &owner.device.public().to_der()),
            )
            .0
            .to_vec(),
        policy,
        created_at: now(),
    };
    (PublishingLicence::sign(&body, &owner.device).unwrap(), id, cek)
}

/// The PostgreSQL URL for tests, or None after printing why they are
/// skipped. Under CI (CI=true) a missing database is a failure.
pub fn postgres_url() -> Option<String> {
    match std::env::var("RIGHTSFS_TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but RIGHTSFS_TEST_POSTGRES_URL is unset: run eval \"$(scripts/ci/postgres.sh)\" first"
            );
            eprintln!("SKIPPED: PostgreSQL tests need RIGHTSFS_TEST_POSTGRES_URL (eval \"$(scripts/ci/postgres.sh)\")");
            None
        }
    }
}

/// A random suffix so that tests sharing one database do not collide.
pub fn unique() -> String {
    hex::encode(rightsfs::crypto::random_array::<6>())
}
