//! End to end, with a second account as the attacker: nobody but a file's
//! owner registers its content id, a wrapped key cannot be taken over, a
//! content id taken first is an alarm for the owner, readers refuse a
//! file whose header claims an owner the server did not register, and a
//! version saved by anyone without `edit` is refused by every reader.
//!
//! The attacker (mallory) talks to the real server over loopback HTTP with
//! her own real account and device key, through the library's client.

mod cli_support;

use std::sync::Arc;

use cli_support::daemon::{Daemon, mount_log};
use cli_support::{Server, User};
use rightsfs::client::{ClientError, Config, Keystore, KeystoreKind, Paths, Session};
use rightsfs::crypto::{ContentKey, DeviceKeyPair};
use rightsfs::format::{FileHeader, ProtectedFile, read_header};
use rightsfs::policy::{Email, Grant, Policy, PublishingLicence, PublishingLicenceBody, now};
use serde_json::Value;

/// A signed-in user's session and device key, as their own client has them.
struct Hand {
    session: Session,
    device: DeviceKeyPair,
    email: Email,
}

fn paths_of(u: &User) -> Paths {
    let h = u.home.path();
    Paths {
        config_dir: h.join("config/rightsfs"),
        data_dir: h.join("data/rightsfs"),
        cache_dir: h.join("cache/rightsfs"),
    }
}

fn keystore_of(u: &User, paths: &Paths) -> Keystore {
    Keystore::new(KeystoreKind::File, paths).with_passphrase(&format!("passphrase of {}", u.email))
}

fn hand(u: &User) -> Hand {
    let paths = paths_of(u);
    let ks = keystore_of(u, &paths);
    let device = rightsfs::client::device_key(&ks).unwrap();
    let config = Config::load(&paths).unwrap();
    let session = rightsfs::client::session(&config, Arc::new(ks), std::time::Duration::from_secs(5)).unwrap();
    Hand {
        session,
        device,
        email: u.email.parse().unwrap(),
    }
}

fn header_of(u: &User, name: &str) -> FileHeader {
    read_header(&std::fs::File::open(u.docs().join(name)).unwrap()).unwrap()
}

fn server_code(e: ClientError) -> (u16, String) {
    match e {
        ClientError::Server { status, code, .. } => (status, code),
        other => panic!("expected a server error, got {other}"),
    }
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

/// Alice protects `plan.txt` for bob while the server is down (so its
/// registration waits in her queue), then the server comes back and
/// mallory gets a copy of the file.
fn race_setup() -> (Server, User, User, User) {
    let mut server = Server::start();
    let alice = User::new("alice@example.com", true);
    let bob = User::new("bob@example.com", true);
    let mallory = User::new("mallory@example.com", true);
    for u in [&alice, &bob, &mallory] {
        u.signup(&server);
    }
    server.stop();
    alice.write("plan.txt", b"the plan");
    alice.ok(&["protect", "plan.txt", "--to", "bob@example.com:view"]);
    let server = server.restart();
    alice.give("plan.txt.rights", &mallory);
    alice.give("plan.txt.rights", &bob);
    (server, alice, bob, mallory)
}

#[test]
fn a_second_account_cannot_register_the_owners_file_or_take_its_key() {
    let (server, alice, bob, mallory) = race_setup();
    let h = header_of(&mallory, "plan.txt.rights");
    let m = hand(&mallory);

    // The owner's licence as it is, sent from mallory's account.
    let (status, code) = server_code(m.session.register(&h.body.licence).unwrap_err());
    assert_eq!((status, code.as_str()), (403, "not_owner"));
    // Rebuilt: mallory as owner, signed by her registered device, with the
    // header's wrapped key.
    let mut taken = h.licence.clone();
    taken.policy = Policy::owner_only(m.email.clone(), 7);
    taken.owner_device_key = m.device.public().to_der();
    let taken = PublishingLicence::sign(&taken, &m.device).unwrap();
    let (status, code) = server_code(m.session.register(&taken).unwrap_err());
    assert_eq!((status, code.as_str()), (403, "key_not_owned"));
    // Nothing was registered, so nobody gets a licence yet.
    let err = mallory.fails(&["cat", "plan.txt.rights"]);
    assert!(err.contains("does not know this file"), "{err}");

    // The owner's registration goes through and readers see her.
    alice.ok(&["sync"]);
    let info = json(&alice.ok(&["info", "plan.txt.rights", "--json"]));
    assert_eq!(info["registration"], "registered", "{info}");
    assert_eq!(info["owner"], "alice@example.com", "{info}");
    assert_eq!(bob.ok(&["cat", "plan.txt.rights"]), "the plan");
    let info = json(&bob.ok(&["info", "plan.txt.rights", "--json"]));
    assert_eq!(info["owner"], "alice@example.com", "{info}");

    // Still refused afterwards, and mallory was never issued a licence.
    let (status, _) = server_code(m.session.register(&taken).unwrap_err());
    assert_eq!(status, 403);
    let err = mallory.fails(&["cat", "plan.txt.rights"]);
    assert!(err.contains("no rights"), "{err}");
    let audit = json(&alice.ok(&["track", "plan.txt.rights", "--json"]));
    let issued_to_mallory = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["email"] == "mallory@example.com" && e["result"] == "issued")
        .count();
    assert_eq!(issued_to_mallory, 0, "{audit}");
    drop(server);
}

#[test]
fn an_id_registered_by_someone_else_first_is_an_alarm_and_readers_refuse_the_file() {
    let (server, alice, bob, mallory) = race_setup();
    let h = header_of(&mallory, "plan.txt.rights");
    let m = hand(&mallory);
    // Mallory registers the id first with a licence of her own (her own
    // key, her as owner, bob as a reader): the server cannot tell it from
    // a genuine first registration.
    let mut policy = Policy::owner_only(m.email.clone(), 7);
    policy.grants.push(Grant::parse_spec("bob@example.com:view").unwrap());
    let device_der = m.device.public().to_der();
    let context = PublishingLicenceBody::wrap_context(&h.content_id(), &m.email, &device_der);
    let body = PublishingLicenceBody {
        version: PublishingLicenceBody::CURRENT_VERSION,
        content_id: h.content_id(),
        server_url: h.licence.server_url.clone(),
        server_key: h.licence.server_key,
        owner_device_key: device_der,
        policy,
        wrapped_key: h
            .licence
            .server_public()
            .wrap(&ContentKey::generate(), &context)
            .0
            .to_vec(),
        created_at: now(),
    };
    m.session
        .register(&PublishingLicence::sign(&body, &m.device).unwrap())
        .unwrap();

    // The owner's registration is answered 409: an alarm, not "registered".
    let err = alice.fails(&["sync"]);
    assert!(
        err.contains("ALARM") && err.contains("someone else registered"),
        "{err}"
    );
    let status = alice.ok(&["status"]);
    assert!(
        status.contains("ALARM") && status.contains(&h.content_id().to_hex()),
        "{status}"
    );
    let status = json(&alice.ok(&["status", "--json"]));
    assert_eq!(status["claimed_by_others"].as_array().unwrap().len(), 1, "{status}");
    assert!(
        status["pending_registrations"].as_array().unwrap().is_empty(),
        "{status}"
    );
    let info = json(&alice.ok(&["info", "plan.txt.rights", "--json"]));
    let reg = info["registration"].as_str().unwrap();
    assert!(reg.contains("CLAIMED") && !reg.starts_with("registered"), "{info}");
    let err = alice.fails(&["share", "plan.txt.rights", "--to", "carol@example.com:view"]);
    assert!(err.contains("ALARM"), "{err}");

    // A reader given alice's file is refused: it claims an owner the
    // server did not register.
    let err = bob.fails(&["cat", "plan.txt.rights"]);
    assert!(
        err.contains("claims its owner is alice@example.com but the server registered it to mallory@example.com"),
        "{err}"
    );
    let info = json(&bob.ok(&["info", "plan.txt.rights", "--json"]));
    assert!(info["owner"].is_null(), "{info}");
    assert!(
        info["owner_check"]
            .as_str()
            .unwrap()
            .contains("the server registered mallory@example.com"),
        "{info}"
    );
    let text = bob.ok(&["info", "plan.txt.rights"]);
    let owner_line = text.lines().find(|l| l.starts_with("owner:")).unwrap();
    assert!(owner_line.contains("NOT VERIFIED"), "{text}");
    drop(server);
}

/// What a `view` recipient can do with their own credentials and the
/// spec: open the file with the content key their licence unwraps, write
/// a new version that seals and authenticates, and commit it signed with
/// their own certified writer key (`signed`) or with no record at all.
fn forge(u: &User, path: &std::path::Path, text: &[u8], signed: bool) {
    let l = u.licensing();
    let f = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    let access = l.key_for(&read_header(&f).unwrap()).unwrap();
    assert!(!access.rights.has(rightsfs::policy::Right::Edit));
    let mut pf = ProtectedFile::open(f, &access.key).unwrap();
    if signed {
        pf = pf.with_writer(l.writer().unwrap());
    }
    pf.set_len(0).unwrap();
    pf.write_at(text, 0).unwrap();
    pf.sync().unwrap();
}

/// `saved_by` of `rights info --json` on `name` in `u`'s folder.
fn saved_by(u: &User, name: &str) -> Value {
    json(&u.ok(&["info", name, "--json"]))["saved_by"].clone()
}

#[test]
fn only_the_owner_and_editors_can_save_versions_readers_accept() {
    let server = Server::start();
    let alice = User::new("alice@example.com", true);
    let bob = User::new("bob@example.com", true);
    let carol = User::new("carol@example.com", true);
    for u in [&alice, &bob, &carol] {
        u.signup(&server);
    }
    alice.write("budget.txt", b"budget: 100");
    alice.ok(&[
        "protect",
        "budget.txt",
        "--to",
        "bob@example.com:edit",
        "--to",
        "carol@example.com:view",
    ]);
    let by = saved_by(&alice, "budget.txt.rights");
    assert_eq!(
        (by["account"].as_str(), by["owner"].as_bool()),
        (Some("alice@example.com"), Some(true)),
        "{by}"
    );

    // Bob, an editor, saves a new version through his own mount.
    let src = bob.home.path().join("src");
    let mnt = bob.home.path().join("mnt");
    let mut daemon = Daemon::start(&bob, &src, &mnt);
    std::fs::copy(alice.docs().join("budget.txt.rights"), src.join("budget.txt.rights")).unwrap();
    std::fs::write(mnt.join("budget.txt"), b"budget: 120 (bob)").unwrap();
    assert_eq!(std::fs::read(mnt.join("budget.txt")).unwrap(), b"budget: 120 (bob)");
    daemon.unmount(&bob);
    std::fs::copy(src.join("budget.txt.rights"), alice.docs().join("budget.txt.rights")).unwrap();
    assert_eq!(alice.ok(&["cat", "budget.txt.rights"]), "budget: 120 (bob)");
    let by = saved_by(&alice, "budget.txt.rights");
    assert_eq!(
        (by["account"].as_str(), by["owner"].as_bool()),
        (Some("bob@example.com"), Some(false)),
        "{by}"
    );
    let text = alice.ok(&["info", "budget.txt.rights"]);
    assert!(text.contains("saved by:     bob@example.com, an editor"), "{text}");

    // Carol may only view, yet holds the content key: her versions, signed
    // with her own certified key or not signed at all, are refused.
    for signed in [true, false] {
        let forged = alice.give("budget.txt.rights", &carol);
        forge(&carol, &forged, b"budget: 0 (send it to carol)", signed);
        std::fs::copy(&forged, alice.docs().join("forged.txt.rights")).unwrap();
        let err = alice.fails(&["cat", "forged.txt.rights"]);
        assert!(!err.contains("send it to carol"), "{err}");
        if signed {
            assert!(
                err.contains("changed by carol@example.com, who may not edit it"),
                "{err}"
            );
        } else {
            assert!(err.contains("not signed by its writer"), "{err}");
        }
        let by = saved_by(&alice, "forged.txt.rights");
        assert!(by["refused"].is_string(), "{by}");
    }

    // The owner's mount refuses the (signed) forgery too: EIO, named in its log.
    let src = alice.home.path().join("src");
    let mnt = alice.home.path().join("mnt");
    std::fs::create_dir_all(&src).unwrap();
    let forged = carol.docs().join("budget.txt.rights");
    forge(&carol, &forged, b"budget: 0 (send it to carol)", true);
    std::fs::copy(&forged, src.join("budget.txt.rights")).unwrap();
    let mut daemon = Daemon::start(&alice, &src, &mnt);
    let e = std::fs::read(mnt.join("budget.txt")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    daemon.unmount(&alice);
    let log = mount_log(&alice);
    assert!(
        log.lines()
            .any(|l| l.contains("budget.txt.rights") && l.contains("carol@example.com")),
        "{log}"
    );
    drop(server);
}

/// `u`'s device id, as `rights whoami` tells it.
fn device_id(u: &User) -> String {
    json(&u.ok(&["whoami", "--json"]))["device_id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// What a device holds to save versions of the file at `path`: its key
/// for the file and its writer (its device certificate as it last got it).
fn saver(u: &User, path: &std::path::Path) -> (rightsfs::licence::Access, rightsfs::format::Writer) {
    let l = u.licensing();
    let header = read_header(&std::fs::File::open(path).unwrap()).unwrap();
    let access = l.key_for(&header).unwrap();
    let writer = l.writer_for(&header, &access).unwrap().expect("a writer");
    (access, writer)
}

/// Replaces the content of `path` with `text`, a version signed by `writer`.
fn save(path: &std::path::Path, key: &rightsfs::crypto::ContentKey, writer: rightsfs::format::Writer, text: &[u8]) {
    let f = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    let mut pf = ProtectedFile::open(f, key).unwrap().with_writer(writer);
    pf.set_len(0).unwrap();
    pf.write_at(text, 0).unwrap();
    pf.sync().unwrap();
}

/// Alice removes her phone from her account; the phone keeps its keys and
/// its last device certificate. The server certifies it no more and lists
/// it as removed. Versions it signs with that certificate, at its true
/// time or backdated inside the certificate's window to before the
/// removal, are refused by alice's `rights cat` and `rights info`, by her
/// mount (EIO) and by bob, a recipient (whose list, fetched at sign-up,
/// predates the removal: the licence he then gets brings the new one),
/// each naming the device and when it was removed; so is the version it saved before, and one claiming a
/// time past its certificate. Her laptop goes on saving.
#[test]
fn a_removed_device_signs_nothing_readers_accept() {
    let server = Server::start();
    let laptop = User::new("alice@example.com", true);
    let phone = User::new("alice@example.com", true);
    let bob = User::new("bob@example.com", true);
    for u in [&laptop, &phone, &bob] {
        u.signup(&server);
    }
    laptop.write("plan.txt", b"plan: v1");
    laptop.ok(&["protect", "plan.txt", "--to", "bob@example.com:view"]);

    // While it is alice's, the phone saves versions everyone accepts.
    let on_phone = laptop.give("plan.txt.rights", &phone);
    let (access, writer) = saver(&phone, &on_phone);
    save(&on_phone, &access.key, writer.clone(), b"plan: v2 (phone)");
    phone.give("plan.txt.rights", &laptop);
    assert_eq!(laptop.ok(&["cat", "plan.txt.rights"]), "plan: v2 (phone)");
    std::fs::copy(
        laptop.docs().join("plan.txt.rights"),
        laptop.docs().join("kept.txt.rights"),
    )
    .unwrap();
    // The laptop saves the plan again, as removing the phone asks.
    let plan = laptop.docs().join("plan.txt.rights");
    let (mine, by_laptop) = saver(&laptop, &plan);
    save(&plan, &mine.key, by_laptop, b"plan: v3 (laptop)");

    let phone_id = device_id(&phone);
    let before = now();
    let out = laptop.ok(&["devices", "--remove", &phone_id]);
    assert!(out.contains("no longer accepted"), "{out}");

    // The removed phone asks for a new certificate: refused.
    let refused = phone
        .session()
        .call::<_, Value>(
            reqwest::Method::POST,
            "/v1/devices/writer-certificate",
            Some(&serde_json::json!({"writer_key": hex::encode(writer.public_key()), "proof": ""})),
        )
        .unwrap_err();
    // Its tokens ended with it: 401 `device_removed` from the refresh.
    assert!(matches!(refused, ClientError::DeviceRemoved(_)), "{refused}");

    // Its last certificate still runs: inside its window, the phone signs
    // new versions with its keys, at its true time and backdated to when
    // the certificate was issued, before the removal.
    let cert = rightsfs::policy::DeviceCertificate::decode_unverified(writer.device_certificate()).unwrap();
    assert!(now() < cert.not_after && cert.issued_at <= before);
    let removed = |err: &str| {
        err.contains(&format!(
            "saved by alice@example.com with device {phone_id}, which was removed from the account on"
        ))
    };
    for (name, w) in [
        ("late.txt.rights", writer.clone()),
        ("backdated.txt.rights", writer.clone().signing_at(cert.issued_at)),
    ] {
        std::fs::copy(&on_phone, phone.docs().join(name)).unwrap();
        save(
            &phone.docs().join(name),
            &access.key,
            w,
            b"plan: send the money to the phone",
        );
        for reader in [&laptop, &bob] {
            phone.give(name, reader);
            let err = reader.fails(&["cat", name]);
            assert!(!err.contains("send the money"), "{err}");
            assert!(removed(&err), "{}: {err}", reader.email);
        }
        let by = saved_by(&laptop, name);
        assert!(removed(by["refused"].as_str().unwrap_or_default()), "{by}");
        let text = laptop.ok(&["info", name]);
        assert!(text.contains("REFUSED") && removed(&text), "{text}");
    }
    // What it saved while it was alice's is refused too now.
    let err = laptop.fails(&["cat", "kept.txt.rights"]);
    assert!(removed(&err), "{err}");
    // A version claiming a time after its certificate ended.
    std::fs::remove_file(paths_of(&phone).data_dir.join("device-certificate")).unwrap();
    let e = phone.licensing().writer().unwrap_err();
    assert!(e.to_string().contains("did not certify"), "{e}");
    save(
        &on_phone,
        &access.key,
        writer.signing_at(cert.not_after + 1),
        b"plan: send the money to the phone",
    );
    std::fs::copy(&on_phone, laptop.docs().join("ended.txt.rights")).unwrap();
    let err = laptop.fails(&["cat", "ended.txt.rights"]);
    assert!(!err.contains("send the money"), "{err}");
    assert!(
        err.contains("changed by alice@example.com")
            && err.contains(&format!("its device {phone_id} was certified until")),
        "{err}"
    );

    // Alice's mount refuses them too (EIO, named in its log), and saves hers.
    let src = laptop.home.path().join("src");
    let mnt = laptop.home.path().join("mnt");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::copy(phone.docs().join("backdated.txt.rights"), src.join("late.txt.rights")).unwrap();
    std::fs::copy(laptop.docs().join("plan.txt.rights"), src.join("plan.txt.rights")).unwrap();
    let mut daemon = Daemon::start(&laptop, &src, &mnt);
    let e = std::fs::read(mnt.join("late.txt")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    assert_eq!(std::fs::read(mnt.join("plan.txt")).unwrap(), b"plan: v3 (laptop)");
    std::fs::write(mnt.join("plan.txt"), b"plan: v4 (laptop)").unwrap();
    assert_eq!(std::fs::read(mnt.join("plan.txt")).unwrap(), b"plan: v4 (laptop)");
    daemon.unmount(&laptop);
    let log = mount_log(&laptop);
    assert!(
        log.lines()
            .any(|l| l.contains("late.txt.rights") && l.contains(&phone_id) && l.contains("removed")),
        "{log}"
    );
    std::fs::copy(src.join("plan.txt.rights"), laptop.docs().join("plan.txt.rights")).unwrap();
    assert_eq!(laptop.ok(&["cat", "plan.txt.rights"]), "plan: v4 (laptop)");
    let by = saved_by(&laptop, "plan.txt.rights");
    assert_eq!(by["device_id"].as_str(), Some(device_id(&laptop).as_str()), "{by}");
    drop(server);
}

/// A device renews its certificate once half its life is gone: with a
/// server that certifies for 2 s, `rights protect` after that gets a new
/// one and its version verifies.
#[test]
fn devices_renew_their_certificates() {
    let server = Server::start_with(&["--device-certificate-lifetime", "2"]);
    let alice = User::new("alice@example.com", true);
    alice.signup(&server);
    alice.write("a.txt", b"first");
    alice.ok(&["protect", "a.txt"]);
    let kept = || {
        let bytes = std::fs::read(paths_of(&alice).data_dir.join("device-certificate")).unwrap();
        rightsfs::policy::DeviceCertificate::decode_unverified(&bytes).unwrap()
    };
    let first = kept();
    assert_eq!(first.not_after - first.issued_at, 2);
    // Waits for the clock to pass the certificate's half-life.
    while now() <= first.issued_at + 1 {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    alice.write("b.txt", b"second");
    alice.ok(&["protect", "b.txt"]);
    assert!(kept().not_after > first.not_after);
    assert_eq!(alice.ok(&["cat", "b.txt.rights"]), "second");
    drop(server);
}

/// The entries of `u`'s `rights track NAME --json` whose result is `saved`.
fn saves_in_track(u: &User, name: &str) -> Vec<Value> {
    let log = json(&u.ok(&["track", name, "--json"]));
    log.as_array()
        .unwrap()
        .iter()
        .filter(|e| e["result"] == "saved")
        .cloned()
        .collect()
}

/// Bob, who holds `edit`, saves alice's file with `sed -i` through his own
/// mount (a rename-over save); his mount reports the save and alice's
/// `rights track` shows it (table, JSON, CSV) with his account, device and
/// the generation saved. Carol, who may only view, cannot put a save in
/// the log: the server refuses her forged report whole (403).
#[test]
fn saves_reach_the_owners_log_and_cannot_be_forged() {
    let server = Server::start();
    let [alice, bob, carol] = cli_support::three_people(&server);
    alice.write("plan.txt", b"plan: v1\n");
    alice.ok(&[
        "protect",
        "plan.txt",
        "--to",
        "bob@example.com:edit",
        "--to",
        "carol@example.com:view",
    ]);
    let id = json(&alice.ok(&["info", "plan.txt.rights", "--json"]))["content_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(saves_in_track(&alice, "plan.txt.rights").is_empty());

    let src = bob.home.path().join("src");
    let mnt = bob.home.path().join("mnt");
    let mut daemon = Daemon::start(&bob, &src, &mnt);
    std::fs::copy(alice.docs().join("plan.txt.rights"), src.join("plan.txt.rights")).unwrap();
    let sed = std::process::Command::new("sed")
        .args(["-i", "s/v1/v2 (bob)/", "plan.txt"])
        .current_dir(&mnt)
        .status()
        .unwrap();
    assert!(sed.success());
    assert_eq!(std::fs::read(mnt.join("plan.txt")).unwrap(), b"plan: v2 (bob)\n");
    // The mount reports in the background: wait (bounded) for it to land.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let saves = loop {
        let s = saves_in_track(&alice, "plan.txt.rights");
        if !s.is_empty() || std::time::Instant::now() > deadline {
            break s;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    daemon.unmount(&bob);
    assert_eq!(saves.len(), 1, "{saves:?}");
    assert_eq!(saves[0]["email"], "bob@example.com");
    assert_eq!(saves[0]["device_id"].as_str(), Some(device_id(&bob).as_str()));
    let generation = saves[0]["generation"].as_u64().expect("a generation");
    assert!(generation >= 2, "{saves:?}");
    let table = alice.ok(&["track", "plan.txt.rights"]);
    assert!(
        table
            .lines()
            .any(|l| l.contains("bob@example.com") && l.contains(&format!("saved (generation {generation})"))),
        "{table}"
    );
    let csv = alice.ok(&["track", &id, "--format", "csv"]);
    assert!(csv.lines().next().unwrap().ends_with(",generation"), "{csv}");
    assert!(
        csv.lines()
            .any(|l| l.contains(",saved,") && l.contains("bob@example.com") && l.ends_with(&format!(",{generation}"))),
        "{csv}"
    );

    // Carol may only view: her forged save is refused whole, nothing logged.
    // (A minute ahead, within the allowed skew, so as not to be bob's real save.)
    let forged = serde_json::json!({ "opens": [{
        "kind": "save", "generation": 99, "content_id": id, "at": now() + 60,
        "opened": true, "rights": "", "reason": "",
    }] });
    let e = carol
        .session()
        .call::<_, Value>(reqwest::Method::POST, "/v1/opens", Some(&forged))
        .unwrap_err();
    assert_eq!(server_code(e), (403, "not_an_editor".to_string()));
    let saves = saves_in_track(&alice, "plan.txt.rights");
    assert!(saves.iter().all(|e| e["email"] != "carol@example.com"), "{saves:?}");
    // Bob, an editor, is believed for this content only.
    let r: Value = bob
        .session()
        .call(reqwest::Method::POST, "/v1/opens", Some(&forged))
        .unwrap();
    assert_eq!(r["results"], serde_json::json!(["recorded"]));
    drop(server);
}
