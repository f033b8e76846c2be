//! What the server benchmarks share: signing a user up on a running
//! `rights-server` whose mail goes to an outbox folder, and making a
//! publishing licence for its key.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use rightsfs::crypto::{ContentKey, DeviceKeyPair, ServerKemPublic};
use rightsfs::policy::{ContentId, Email, Policy, PublishingLicence, PublishingLicenceBody, now};
use serde_json::{Value, json};

/// The newest code mailed to the outbox after it held `before` mails.
fn code_from_outbox(dir: &Path, before: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).collect();
        files.sort();
        if files.len() > before {
            let mail = std::fs::read_to_string(files.last().unwrap()).unwrap();
            let body = mail.split("\r\n\r\n").skip(1).collect::<String>();
            if let Some(c) = body.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == 8) {
                return c.to_string();
            }
        }
        assert!(Instant::now() < deadline, "no code in {}", dir.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Signs `email` up with a fresh device: its access token and the device.
pub async fn sign_up(http: &reqwest::Client, url: &str, outbox: &Path, email: &str) -> (String, DeviceKeyPair) {
    let before = std::fs::read_dir(outbox).map(|d| d.count()).unwrap_or(0);
    let r = http
        .post(format!("{url}/v1/auth/start"))
        .json(&json!({"email": email}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let code = code_from_outbox(outbox, before);
    let device = DeviceKeyPair::generate().unwrap();
    let der = base64::engine::general_purpose::STANDARD.encode(device.public().to_der());
    let v: Value = http
        .post(format!("{url}/v1/auth/verify"))
        .json(&json!({"email": email, "code": code, "device_name": "bench", "device_public_key": der}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (v["access_token"].as_str().expect("signed in").to_string(), device)
}

/// An owner-only publishing licence of `owner` on `device` for the
/// server at `url`, with a fresh content key; its content id and key.
pub async fn owner_only_licence(
    http: &reqwest::Client,
    url: &str,
    owner: &str,
    device: &DeviceKeyPair,
    offline_days: u32,
) -> (PublishingLicence, ContentId, ContentKey) {
    let keys: Value = http
        .get(format!("{url}/v1/server-key"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kem: [u8; 32] = hex::decode(keys["kem_public_key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let owner = Email::parse(owner).unwrap();
    let cek = ContentKey::generate();
    let id = ContentId::generate();
    let der = device.public().to_der();
    let body = PublishingLicenceBody {
        version: 1,
        content_id: id,
        server_url: url.to_string(),
        server_key: kem,
        wrapped_key: ServerKemPublic(kem)
            .wrap(&cek, &PublishingLicenceBody::wrap_context(&id, &owner, &der))
            .0
            .to_vec(),
        owner_device_key: der,
        policy: Policy::owner_only(owner, offline_days),
        created_at: now(),
    };
    (PublishingLicence::sign(&body, device).unwrap(), id, cek)
}
