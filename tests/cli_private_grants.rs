//! End to end, with real accounts on the real server: who a file is shared
//! with is not readable from the file. A stranger holding a copy learns
//! the owner and nothing of the recipients, each recipient sees only their
//! own rights, the owner sees everyone; sealed grants that were altered or
//! moved from another file are refused by the server and by readers.

mod cli_support;

use cli_support::{Server, User};
use rightsfs::format::{FileHeader, Fresh, ProtectedFile, read_header};
use rightsfs::policy::PublishingLicence;
use serde_json::Value;

const BOB: &str = "bob@example.com";
const CAROL: &str = "carol@example.com";

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

/// Every encoding of `text` someone might look for in a file: as is, hex
/// (both cases), base64 at the three byte alignments, UTF-16.
fn encodings(text: &str) -> Vec<Vec<u8>> {
    use base64::Engine;
    let b = text.as_bytes();
    let mut out = vec![
        b.to_vec(),
        hex::encode(b).into_bytes(),
        hex::encode_upper(b).into_bytes(),
        text.encode_utf16().flat_map(u16::to_le_bytes).collect(),
        text.encode_utf16().flat_map(u16::to_be_bytes).collect(),
    ];
    for skip in 0..3 {
        // The base64 of the address wherever it starts: drop the first
        // characters, which depend on the bytes before it.
        let padded = [vec![0u8; skip], b.to_vec()].concat();
        let enc = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&padded);
        let from = (skip * 4).div_ceil(3) + 1;
        out.push(enc.as_bytes()[from..enc.len() - 2].to_vec());
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Alice shares `plan.txt` with bob (view, edit) and carol (view); each of
/// them and eve, a stranger, has a copy.
fn shared_plan() -> (Server, [User; 4]) {
    let server = Server::start();
    let [alice, bob, carol] = cli_support::three_people(&server);
    let eve = User::new("eve@example.com", true);
    eve.signup(&server);
    alice.write("plan.txt", b"the plan\n");
    alice.ok(&[
        "protect",
        "plan.txt",
        "--to",
        &format!("{BOB}:view,edit"),
        "--to",
        &format!("{CAROL}:view"),
    ]);
    for u in [&bob, &carol, &eve] {
        alice.give("plan.txt.rights", u);
    }
    (server, [alice, bob, carol, eve])
}

#[test]
fn who_a_file_is_shared_with_is_private_to_its_owner() {
    let (server, [alice, bob, carol, eve]) = shared_plan();

    // (a) The bytes name no recipient, in any encoding.
    let bytes = std::fs::read(alice.docs().join("plan.txt.rights")).unwrap();
    assert!(contains(&bytes, alice.email.as_bytes()), "the owner is public");
    for who in [BOB, CAROL] {
        for (i, e) in encodings(who).iter().enumerate() {
            assert!(!contains(&bytes, e), "{who} is in the file (encoding {i})");
        }
    }

    // (b) A stranger with a copy learns the owner and that the grants are
    // private, nothing else.
    assert!(eve.fails(&["cat", "plan.txt.rights"]).contains("no rights"));
    let out = eve.ok(&["info", "plan.txt.rights", "--json"]);
    for who in [BOB, CAROL] {
        assert!(!out.contains(who), "the stranger learns {who}: {out}");
    }
    let v = json(&out);
    assert_eq!(v["claimed_owner"], alice.email.as_str(), "{v}");
    assert!(v["policy_in_file"]["grants"].is_null(), "{v}");
    assert!(v["grants_in_file"].as_str().unwrap().contains("private"), "{v}");
    let text = eve.ok(&["info", "plan.txt.rights"]);
    assert!(!text.contains(BOB) && !text.contains(CAROL), "{text}");
    assert!(text.contains("private"), "{text}");

    // (c) Each recipient sees their own rights and nobody else.
    assert_eq!(bob.ok(&["cat", "plan.txt.rights"]), "the plan\n");
    let out = bob.ok(&["info", "plan.txt.rights", "--json"]);
    assert!(!out.contains(CAROL), "bob learns carol: {out}");
    let v = json(&out);
    assert_eq!(
        v["cached_licence"]["rights"],
        serde_json::json!(["view", "edit"]),
        "{v}"
    );
    let granted = &v["server"]["policy"]["grants"];
    assert_eq!(granted.as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(granted[0]["to"], BOB, "{v}");
    let text = bob.ok(&["info", "plan.txt.rights"]);
    assert!(
        !text.contains(CAROL) && text.contains("your rights:  view,edit"),
        "{text}"
    );
    let out = carol.ok(&["info", "plan.txt.rights", "--json"]);
    assert!(!out.contains(BOB), "carol learns bob: {out}");
    assert_eq!(
        json(&out)["cached_licence"]["rights"],
        serde_json::json!(["view"]),
        "{out}"
    );
    let shared = carol.ok(&["list", "--shared", "--json"]);
    assert!(
        !shared.contains(BOB),
        "the list of shared files tells carol of bob: {shared}"
    );

    // (d) The owner sees both, from the file's owner copy and the server.
    let v = json(&alice.ok(&["info", "plan.txt.rights", "--json"]));
    for list in [&v["policy_in_file"]["grants"], &v["server"]["policy"]["grants"]] {
        let to: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["to"].as_str().unwrap())
            .collect();
        assert_eq!(to, [BOB, CAROL], "{v}");
    }
    assert!(v["grants_in_file"].as_str().unwrap().contains("owner copy"), "{v}");
    drop(server);
}

/// The sealed grants (field `grants` of a version 3 licence body) of `pl`,
/// as encoded inside its body.
fn sealed_bytes(pl: &PublishingLicence) -> Vec<u8> {
    postcard::to_stdvec(&pl.sealed_grants().unwrap().expect("a version 3 licence")).unwrap()
}

/// `pl`'s body with its sealed grants replaced by `with`, signed by the
/// owner's device `device` as the owner's own client would sign it.
fn resigned(pl: &PublishingLicence, with: &[u8], device: &rightsfs::crypto::DeviceKeyPair) -> PublishingLicence {
    let old = sealed_bytes(pl);
    let at = pl.body.windows(old.len()).position(|w| w == old).unwrap();
    let body = [&pl.body[..at], with, &pl.body[at + old.len()..]].concat();
    let signature = device
        .delegated_signer()
        .unwrap()
        .sign(&[b"rightsfs publishing licence v3\0".as_slice(), &body].concat());
    PublishingLicence { body, signature }
}

#[test]
fn sealed_grants_altered_or_moved_from_another_file_are_refused() {
    let (server, [alice, bob, _carol, eve]) = shared_plan();
    // Another of alice's files, shared with eve (view, share).
    alice.write("other.txt", b"other\n");
    alice.ok(&["protect", "other.txt", "--to", "eve@example.com:view,share"]);
    let plan = read_header(&std::fs::File::open(alice.docs().join("plan.txt.rights")).unwrap()).unwrap();
    let other = read_header(&std::fs::File::open(alice.docs().join("other.txt.rights")).unwrap()).unwrap();
    let device = alice.device_key();
    let session = alice.session();
    let code = |pl: &PublishingLicence| match session.register(pl).unwrap_err() {
        rightsfs::client::ClientError::Server { status, code, .. } => (status, code),
        e => panic!("expected a refusal, got {e}"),
    };

    // One byte of the sealed grants changed: the owner's signature no
    // longer holds, for the server and for every reader.
    let mut altered = plan.body.licence.clone();
    let sealed = sealed_bytes(&plan.body.licence);
    let at = altered.body.windows(sealed.len()).position(|w| w == sealed).unwrap();
    altered.body[at + 100] ^= 1;
    assert_eq!(code(&altered), (400, "bad_licence".to_string()));
    let path = bob.docs().join("plan.txt.rights");
    let mut file = std::fs::read(&path).unwrap();
    let pos = file
        .windows(altered.body.len())
        .position(|w| w == plan.body.licence.body.as_slice())
        .unwrap();
    file[pos + at + 100] ^= 1;
    std::fs::write(bob.docs().join("altered.rights"), &file).unwrap();
    let err = bob.fails(&["cat", "altered.rights"]);
    assert!(err.contains("altered"), "{err}");

    // Eve's grants from the other file, re-signed by alice's own device:
    // the signature holds, but they do not open for this content.
    let swapped = resigned(&plan.body.licence, &sealed_bytes(&other.body.licence), &device);
    assert!(swapped.verify().is_ok());
    assert_eq!(code(&swapped), (403, "grants_not_sealed".to_string()));
    // A file carrying the swapped licence, written with the content key by
    // its owner: readers refuse it, as it is not the registered licence.
    let l = rightsfs::client::licensing(
        &alice.paths(),
        &rightsfs::client::Config::load(&alice.paths()).unwrap(),
        std::sync::Arc::new(
            rightsfs::client::Keystore::new(rightsfs::client::KeystoreKind::File, &alice.paths())
                .with_passphrase(&format!("passphrase of {}", alice.email)),
        ),
        std::time::Duration::from_secs(5),
        true,
    )
    .unwrap();
    let cek = l.key_for(&plan).unwrap().key;
    let header = FileHeader::new(swapped, &cek, plan.body.block_size).unwrap();
    let out = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(bob.docs().join("swapped.rights"))
        .unwrap();
    let mut pf =
        ProtectedFile::create_from(out, Fresh::signed(header, &cek, Some(l.writer().unwrap())).unwrap()).unwrap();
    pf.write_at(b"the plan, shared with eve\n", 0).unwrap();
    pf.sync().unwrap();
    drop(pf);
    let err = bob.fails(&["cat", "swapped.rights"]);
    assert!(
        err.contains("not the one its owner alice@example.com registered"),
        "{err}"
    );
    // The grant to eve the file now claims is not the server's: she gets
    // nothing.
    std::fs::copy(bob.docs().join("swapped.rights"), eve.docs().join("swapped.rights")).unwrap();
    let err = eve.fails(&["cat", "swapped.rights"]);
    assert!(err.contains("no rights"), "{err}");
    drop(server);
}
