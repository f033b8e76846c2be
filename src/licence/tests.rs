//! Cache behaviour of [`Licensing`] with a licence source that signs
//! licences in-process (the end-to-end tests use the real server).

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::crypto::{DevicePublicKey, ServerKemSecret, ServerSigningKey};
use crate::format::FileHeader;
use crate::policy::{Grant, UseLicenceBody};

struct Signer {
    kem: ServerKemSecret,
    sig: ServerSigningKey,
    device: DevicePublicKey,
    user: Email,
    valid_for: Mutex<i64>,
    reachable: Mutex<bool>,
    calls: AtomicUsize,
    pl: Mutex<Option<PublishingLicence>>,
}

impl LicenceSource for Signer {
    fn device_certificate(&self, writer_key: &[u8; WRITER_KEY_LEN], proof: &[u8]) -> Result<Vec<u8>, FetchError> {
        if !*self.reachable.lock().unwrap() {
            return Err(FetchError::Unreachable("test: offline".into()));
        }
        self.device
            .verify(&crate::policy::writer_key_proof("dev-b", writer_key), proof)
            .map_err(|_| FetchError::Denied)?;
        Ok(crate::policy::DeviceCertificate {
            account: self.user.clone(),
            device_id: "dev-b".into(),
            key: *writer_key,
            issued_at: now(),
            not_after: now() + 7 * 86_400,
        }
        .sign(&self.sig))
    }

    fn fetch(&self, content: &ContentId, _device_certificate: Option<&[u8]>) -> Result<UseLicence, FetchError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if !*self.reachable.lock().unwrap() {
            return Err(FetchError::Unreachable("test: offline".into()));
        }
        let registered = self.pl.lock().unwrap().clone().ok_or(FetchError::NotRegistered)?;
        let pl = registered.decode_unverified().unwrap();
        // As the server does: the grants are sealed to its key.
        let rights = registered
            .policy_for_server(&self.kem)
            .unwrap()
            .rights_for(&self.user, now());
        if rights.is_empty() {
            return Err(FetchError::Denied);
        }
        let cek = self.kem.unwrap(&pl.wrapped().unwrap(), &pl.key_context()).unwrap();
        Ok(UseLicence::sign(
            &UseLicenceBody {
                version: crate::policy::USE_LICENCE_VERSION,
                owner: pl.policy.owner.clone(),
                licence_hash: registered.hash(),
                content_id: *content,
                user: self.user.clone(),
                device_id: "dev-b".into(),
                rights,
                issued_at: now(),
                valid_until: now() + *self.valid_for.lock().unwrap(),
                wrapped_key: self.device.wrap_key(&cek).unwrap(),
            },
            &self.sig,
        ))
    }

    fn register(&self, licence: &PublishingLicence) -> Result<(), FetchError> {
        licence.verify().map_err(|e| FetchError::Other(e.to_string()))?;
        *self.pl.lock().unwrap() = Some(licence.clone());
        Ok(())
    }
}

struct World {
    _dir: tempfile::TempDir,
    owner: Licensing,
    reader: Licensing,
    signer: std::sync::Arc<Signer>,
    header: FileHeader,
}

impl LicenceSource for std::sync::Arc<Signer> {
    fn fetch(&self, content: &ContentId, device_certificate: Option<&[u8]>) -> Result<UseLicence, FetchError> {
        self.as_ref().fetch(content, device_certificate)
    }
    fn device_certificate(&self, writer_key: &[u8; WRITER_KEY_LEN], proof: &[u8]) -> Result<Vec<u8>, FetchError> {
        self.as_ref().device_certificate(writer_key, proof)
    }
    fn register(&self, licence: &PublishingLicence) -> Result<(), FetchError> {
        self.as_ref().register(licence)
    }
}

fn world(grant: &str) -> World {
    let dir = tempfile::tempdir().unwrap();
    let kem = ServerKemSecret::generate();
    let sig = ServerSigningKey::generate();
    let kem_pub = kem.public();
    let vk = sig.verifying_key();
    let alice = Email::parse("alice@example.com").unwrap();
    let bob = Email::parse("bob@example.com").unwrap();
    let bob_key = DeviceKeyPair::generate().unwrap();
    let signer = std::sync::Arc::new(Signer {
        kem,
        sig,
        device: bob_key.public(),
        user: bob.clone(),
        valid_for: Mutex::new(3600),
        reachable: Mutex::new(true),
        calls: AtomicUsize::new(0),
        pl: Mutex::new(None),
    });
    let owner = Licensing::new(
        Identity {
            email: alice.clone(),
            device_id: "dev-a".into(),
            device_key: DeviceKeyPair::generate().unwrap(),
            server_key: vk,
        },
        dir.path().join("a/cache"),
        dir.path().join("a/owner"),
        None,
    );
    let reader = Licensing::new(
        Identity {
            email: bob,
            device_id: "dev-b".into(),
            device_key: bob_key,
            server_key: vk,
        },
        dir.path().join("b/cache"),
        dir.path().join("b/owner"),
        Some(Box::new(signer.clone())),
    );
    let mut policy = Policy::owner_only(alice, 1);
    if !grant.is_empty() {
        policy.upsert_grant(Grant::parse_spec(grant).unwrap());
    }
    let new = owner.new_content(policy, "http://127.0.0.1:9", &kem_pub).unwrap();
    let header = new.header(4096).unwrap();
    *signer.pl.lock().unwrap() = Some(header.body.licence.clone());
    World {
        _dir: dir,
        owner,
        reader,
        signer,
        header,
    }
}

#[test]
fn owner_opens_offline_and_after_restart() {
    let w = world("");
    let a = w.owner.key_for(&w.header).unwrap();
    assert!(a.owner && a.rights.has(crate::policy::Right::Owner));
    // A fresh store over the same folders (a new process) still opens it.
    let again = Licensing::new(
        Identity {
            email: w.owner.identity.email.clone(),
            device_id: "dev-a".into(),
            device_key: DeviceKeyPair::from_pkcs8_der(&w.owner.identity.device_key.to_pkcs8_der().unwrap()).unwrap(),
            server_key: w.owner.identity.server_key,
        },
        w._dir.path().join("a/cache"),
        w._dir.path().join("a/owner"),
        None,
    );
    assert_eq!(again.key_for(&w.header).unwrap().key.as_bytes(), a.key.as_bytes());
}

#[test]
fn cached_licence_works_offline_and_expired_is_refused() {
    let w = world("bob@example.com:view");
    let a = w.reader.key_for(&w.header).unwrap();
    assert!(a.rights.has(crate::policy::Right::View) && !a.rights.has(crate::policy::Right::Edit));
    assert_eq!(w.signer.calls.load(Ordering::SeqCst), 1);
    *w.signer.reachable.lock().unwrap() = false;
    w.reader.lru().clear();
    w.reader.key_for(&w.header).unwrap();
    assert_eq!(
        w.signer.calls.load(Ordering::SeqCst),
        1,
        "valid cached licence: no network"
    );
    // A licence the server issues already lapsed (offline validity 0)
    // opens once, online, and is refused offline afterwards.
    *w.signer.reachable.lock().unwrap() = true;
    *w.signer.valid_for.lock().unwrap() = -10;
    w.reader.renew(&w.header).unwrap();
    w.reader.lru().clear();
    *w.signer.reachable.lock().unwrap() = false;
    assert!(matches!(
        w.reader.key_for(&w.header),
        Err(AccessError::Expired { offline: true, .. })
    ));
    *w.signer.reachable.lock().unwrap() = true;
    *w.signer.valid_for.lock().unwrap() = 3600;
    w.reader.key_for(&w.header).unwrap();
}

#[test]
fn no_rights_names_the_owner_and_unreachable_is_distinct() {
    let w = world("");
    match w.reader.key_for(&w.header) {
        Err(AccessError::NoRights { owner }) => assert_eq!(owner.as_str(), "alice@example.com"),
        other => panic!("{other:?}"),
    }
    *w.signer.reachable.lock().unwrap() = false;
    assert!(matches!(
        w.reader.key_for(&w.header),
        Err(AccessError::ServerUnreachable(_))
    ));
}

#[test]
fn forged_licence_is_rejected_before_unwrap() {
    let w = world("bob@example.com:view");
    w.reader.key_for(&w.header).unwrap();
    let id = w.header.content_id();
    let mut ul = w.reader.licences.load(&id).unwrap().unwrap();
    let n = ul.body.len();
    ul.body[n - 3] ^= 1;
    w.reader.licences.save(&id, &ul).unwrap();
    w.reader.lru().clear();
    assert!(matches!(w.reader.key_for(&w.header), Err(AccessError::BadLicence(_))));
}

#[test]
fn owner_opens_from_the_header_slot_and_keeps_no_file() {
    let w = world("");
    w.owner.lru().clear();
    assert!(w.owner.key_for(&w.header).unwrap().owner);
    assert!(!w._dir.path().join("a/owner").exists(), "no owner licence written");
    // A slot sealed for another device, or altered, does not open: with no
    // server to ask, the owner is refused rather than given a wrong key.
    let other = Licensing::new(
        Identity {
            email: w.owner.identity.email.clone(),
            device_id: "dev-c".into(),
            device_key: DeviceKeyPair::generate().unwrap(),
            server_key: w.owner.identity.server_key,
        },
        w._dir.path().join("c/cache"),
        w._dir.path().join("c/owner"),
        None,
    );
    assert!(other.key_for(&w.header).is_err());
    let mut bytes = w.header.bytes.clone();
    let slot = w.header.extension(OWNER_SLOT_EXTENSION).unwrap().to_vec();
    let at = bytes.windows(slot.len()).position(|win| win == slot).unwrap();
    bytes[at + 20] ^= 1;
    let altered = FileHeader::parse(bytes).unwrap();
    w.owner.lru().clear();
    assert!(w.owner.key_for(&altered).is_err());
}

#[test]
fn content_never_registered_is_registered_from_the_file_by_its_publisher() {
    // A file Bob protected on this device without an owner slot (an
    // earlier version) whose owner licence and queued registration were
    // lost: the server learns the content from the file's own header.
    let w = world("");
    let policy = Policy::owner_only(Email::parse("bob@example.com").unwrap(), 1);
    let new = w
        .reader
        .new_content(policy, "http://127.0.0.1:9", &w.signer.kem.public())
        .unwrap();
    let header = FileHeader::new(new.licence.clone(), &new.key, 4096).unwrap();
    *w.signer.pl.lock().unwrap() = None;
    w.reader.lru().clear();
    let a = w.reader.key_for(&header).unwrap();
    assert_eq!(a.key.as_bytes(), new.key.as_bytes());
    assert_eq!(
        w.signer
            .pl
            .lock()
            .unwrap()
            .as_ref()
            .unwrap()
            .decode_unverified()
            .unwrap()
            .content_id,
        new.content_id
    );
    // Someone else's unregistered file is not registered on their behalf.
    *w.signer.pl.lock().unwrap() = None;
    w.reader.lru().clear();
    assert!(matches!(
        w.reader.key_for(&w.header),
        Err(AccessError::NotRegistered { .. })
    ));
    assert!(w.signer.pl.lock().unwrap().is_none());
}

#[test]
fn owner_licences_of_the_earlier_layout_still_open() {
    use base64::Engine;
    let w = world("");
    let id = w.header.content_id();
    let key = w.owner.key_for(&w.header).unwrap().key;
    // The same file as an earlier version wrote it: no slot in its header.
    let slotless = FileHeader::new(w.header.body.licence.clone(), &key, 4096).unwrap();
    let device = &w.owner.identity.device_key;
    let wrapped = device.public().wrap_key(&key).unwrap();
    let sig = device
        .sign(&[b"rightsfs owner licence v1\0".as_slice(), &id.0, &wrapped].concat())
        .unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let v1 = serde_json::json!({
        "content_id": id, "wrapped_key": b64.encode(&wrapped), "signature": b64.encode(&sig),
    });
    let path = w._dir.path().join(format!("a/owner/{}.json", id.to_hex()));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, serde_json::to_vec(&v1).unwrap()).unwrap();
    w.owner.lru().clear();
    assert_eq!(w.owner.key_for(&slotless).unwrap().key.as_bytes(), key.as_bytes());
    // Its signature still guards the unwrap.
    let mut bad = v1.clone();
    bad["signature"] = serde_json::json!(b64.encode([0u8; 256]));
    std::fs::write(&path, serde_json::to_vec(&bad).unwrap()).unwrap();
    w.owner.lru().clear();
    assert!(w.owner.key_for(&slotless).is_err());
}
