//! Test vectors of the protected-file format (`tests/vectors/`, described in
//! its README): every committed vector must decode to its stated plaintext,
//! header fields and wrapped key, and every damaged one must fail with its
//! stated error. `regenerate_vectors` (ignored) remakes them; a proptest
//! "fuzz smoke" throws random and mutated files at the parser.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use serde::{Deserialize, Serialize};

use rightsfs::crypto::{
    ContentKey, DeviceKeyPair, ServerKemSecret, ServerSigningKey, ServerVerifyingKey, WriterKey, sha256,
};
use rightsfs::format::{FileHeader, FormatError, Fresh, ProtectedFile, Verifier, Writer, read_header};
use rightsfs::policy::{
    ContentId, DeviceCertificate, EditCertificate, Email, Grant, Policy, PublishingLicence, PublishingLicenceBody,
    Rights, USE_LICENCE_VERSION, UseLicence, UseLicenceBody, now,
};

/// Fixed inputs, so that regeneration changes only what is random by design
/// (block nonces, the wrap's ephemeral key, the RSA-PSS salt).
const SERVER_URL: &str = "https://rights.example.com";
const OWNER: &str = "alice@example.com";
const CREATED_AT: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z
const KEYS_FILE: &str = "keys.json";

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

/// Keys shared by every vector: the owner's device and the server.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    /// RSA-2048 private key of the owner's device, PKCS#8 DER, hex.
    owner_device_pkcs8_der: String,
    /// Its public half, SubjectPublicKeyInfo DER, hex (as in the licence).
    owner_device_spki_der: String,
    /// The server's X25519 secret, hex.
    server_x25519_secret: String,
    /// The server's X25519 public key, hex.
    server_x25519_public: String,
    /// The server's Ed25519 secret (signs the writers' certificates), hex.
    #[serde(default)]
    server_ed25519_secret: String,
    /// Its public key, hex: what a reader checks writer records against.
    #[serde(default)]
    server_ed25519_public: String,
}

/// The error a damaged vector must give, and when.
#[derive(Serialize, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct ExpectedError {
    /// `FormatError` variant name.
    kind: String,
    /// `open` (ProtectedFile::open fails) or `read` (open succeeds, reading
    /// everything fails).
    stage: String,
    /// Block index named by the error, if it names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    index: Option<u64>,
    /// The writer the error names, if it names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    writer: Option<String>,
    /// The error code with which the server refuses to register the
    /// vector's publishing licence, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    server: Option<String>,
}

/// A use licence the server issued for the content a vector claims to be.
#[derive(Serialize, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct UseLicenceVector {
    /// Who and which device it was issued to.
    user: String,
    device_id: String,
    /// The signed body, hex.
    body: String,
    /// The server's Ed25519 signature, hex.
    signature: String,
}

/// One vector's sidecar (`NAME.json` beside `NAME.rights`).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Vector {
    file: String,
    description: String,
    content_id: String,
    content_key: String,
    server_x25519_secret: String,
    block_size: u32,
    owner: String,
    server_url: String,
    created_at: i64,
    /// Publishing licence version: 1, RSA-PSS signature; 2, delegated
    /// Ed25519 signature certified by the device key.
    #[serde(default = "licence_v1")]
    licence_version: u8,
    /// Bytes of magic, version, length, body and MAC.
    header_len: u64,
    /// SHA-256 of those bytes (bound into every block's AAD).
    header_sha256: String,
    data_offset: u64,
    file_size: u64,
    plaintext_len: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    plaintext_hex: Option<String>,
    plaintext_sha256: String,
    /// Intact vectors: the account whose writer record signs the current
    /// version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    written_by: Option<String>,
    /// For a damaged vector: the intact vector it was made from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    derived_from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expect_error: Option<ExpectedError>,
    /// Publishing licence version 3: the grants sealed in the file, which
    /// the server's X25519 secret opens, as `EMAIL:RIGHTS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed_grants: Option<Vec<String>>,
    /// For a vector refused at the licence check (stage `licence`): the
    /// use licence the server issued for the registered content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    use_licence: Option<UseLicenceVector>,
}

fn kind(e: &FormatError) -> &'static str {
    match e {
        FormatError::Io(_) => "Io",
        FormatError::Empty => "Empty",
        FormatError::NotProtected => "NotProtected",
        FormatError::UnsupportedVersion(_) => "UnsupportedVersion",
        FormatError::HeaderTruncated => "HeaderTruncated",
        FormatError::HeaderMalformed(_) => "HeaderMalformed",
        FormatError::WrongKey => "WrongKey",
        FormatError::HeaderTampered(_) => "HeaderTampered",
        FormatError::StateTampered => "StateTampered",
        FormatError::Truncated { .. } => "Truncated",
        FormatError::TrailingData { .. } => "TrailingData",
        FormatError::BlockCorrupt { .. } => "BlockCorrupt",
        FormatError::BlockMoved { .. } => "BlockMoved",
        FormatError::StaleBlock => "StaleBlock",
        FormatError::WriterUnsigned => "WriterUnsigned",
        FormatError::WriterRecordMalformed(_) => "WriterRecordMalformed",
        FormatError::WriterCertificate { .. } => "WriterCertificate",
        FormatError::WriterSignatureInvalid { .. } => "WriterSignatureInvalid",
        FormatError::WriterNotAllowed { .. } => "WriterNotAllowed",
        FormatError::WriterRemoved { .. } => "WriterRemoved",
        FormatError::WriterExpired { .. } => "WriterExpired",
        FormatError::KeyWornOut => "KeyWornOut",
        FormatError::TooLarge => "TooLarge",
    }
}

fn error_index(e: &FormatError) -> Option<u64> {
    match e {
        FormatError::BlockCorrupt { index } | FormatError::BlockMoved { index, .. } => Some(*index),
        _ => None,
    }
}

fn error_writer(e: &FormatError) -> Option<String> {
    match e {
        FormatError::WriterCertificate { writer }
        | FormatError::WriterSignatureInvalid { writer }
        | FormatError::WriterNotAllowed { writer, .. }
        | FormatError::WriterRemoved { writer, .. } => Some(writer.clone()),
        _ => None,
    }
}

/// The key every reader here checks writers against.
fn trust() -> Verifier {
    Verifier::new(ServerVerifyingKey(unhex(&load_keys().server_ed25519_public)))
}

/// Opens a vector as a reader that checks writers.
fn open_vector(name: &str, cek: &ContentKey) -> Result<ProtectedFile, FormatError> {
    ProtectedFile::open_verified(open_ro(name), cek, &trust())
}

fn unhex<const N: usize>(s: &str) -> [u8; N] {
    hex::decode(s)
        .expect("hex in a sidecar")
        .try_into()
        .expect("length in a sidecar")
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> T {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn load_keys() -> Keys {
    read_json(&dir().join(KEYS_FILE))
}

/// Every sidecar, sorted by name.
fn load_vectors() -> Vec<Vector> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir())
        .expect("tests/vectors exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json") && !p.ends_with(KEYS_FILE))
        .collect();
    paths.sort();
    paths.iter().map(|p| read_json(p)).collect()
}

fn open_ro(name: &str) -> File {
    File::open(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn read_all(pf: &ProtectedFile) -> Result<Vec<u8>, FormatError> {
    let mut v = vec![0u8; pf.len() as usize];
    let n = pf.read_at(&mut v, 0)?;
    assert_eq!(n, v.len(), "short read");
    Ok(v)
}

/// Checks everything a sidecar states about its header, without the key
/// except for unwrapping it from the licence.
fn licence_v1() -> u8 {
    1
}

fn check_header(v: &Vector, keys: &Keys) {
    let file = open_ro(&v.file);
    let h = read_header(&file).unwrap_or_else(|e| panic!("{}: {e}", v.file));
    assert_eq!(h.content_id().to_hex(), v.content_id, "{}", v.file);
    assert_eq!(h.body.block_size, v.block_size, "{}", v.file);
    assert_eq!(h.body.cipher, 1, "{}", v.file);
    assert!(h.body.extensions.is_empty(), "{}", v.file);
    assert_eq!(h.bytes.len() as u64, v.header_len, "{}", v.file);
    assert_eq!(hex::encode(h.hash), v.header_sha256, "{}", v.file);
    assert_eq!(hex::encode(sha256(&h.bytes)), v.header_sha256, "{}", v.file);
    assert_eq!(h.geometry.data_offset, v.data_offset, "{}", v.file);
    assert_eq!(file.metadata().unwrap().len(), v.file_size, "{}", v.file);

    let pl = h.body.licence.verify().expect("owner signature verifies");
    assert_eq!(pl, h.licence);
    assert_eq!(pl.owner().as_str(), v.owner);
    assert_eq!(pl.server_url, v.server_url);
    assert_eq!(pl.created_at, v.created_at);
    assert_eq!(pl.version, v.licence_version, "{}", v.file);
    assert_eq!(v.server_x25519_secret, keys.server_x25519_secret);
    let server = ServerKemSecret::from_bytes(unhex(&v.server_x25519_secret));
    assert_eq!(hex::encode(server.public().0), keys.server_x25519_public);
    assert_eq!(pl.server_key, server.public().0);
    let unwrapped = server.unwrap(&pl.wrapped().unwrap(), &pl.key_context());
    if v.expect_error.as_ref().and_then(|e| e.server.as_deref()) == Some("key_not_owned") {
        // The key was wrapped under another owner's binding: the server
        // cannot unwrap it for this licence, so it never registers it.
        assert!(unwrapped.is_err(), "{}", v.file);
    } else {
        assert_eq!(hex::encode(&pl.owner_device_key), keys.owner_device_spki_der);
        let cek = unwrapped.expect("the server unwraps the content key");
        assert_eq!(hex::encode(cek.as_bytes()), v.content_key, "{}", v.file);
    }
    assert_eq!(pl.grants_sealed(), pl.version >= 3, "{}", v.file);
    if let Some(want) = &v.sealed_grants {
        assert!(pl.grants_sealed() && pl.policy.grants.is_empty(), "{}", v.file);
        let opened = h
            .body
            .licence
            .policy_for_server(&server)
            .expect("the server opens the grants");
        let got: Vec<String> = opened.grants.iter().map(|g| format!("{}:{}", g.to, g.rights)).collect();
        assert_eq!(&got, want, "{}", v.file);
        // Nobody else reads them: no address is anywhere in the file.
        let bytes = std::fs::read(dir().join(&v.file)).unwrap();
        for g in &opened.grants {
            let who = g.to.to_string();
            assert!(
                !bytes.windows(who.len()).any(|w| w == who.as_bytes()),
                "{}: {who}",
                v.file
            );
        }
    }
}

/// Checks a vector whose file is sound but is not the content the server
/// registered: the use licence issued for the registered content refuses
/// it, as every reader checks before using a key (`NotTheOwners`).
fn check_refused_licence(v: &Vector, want: &ExpectedError) {
    let cek = ContentKey::from_bytes(unhex(&v.content_key));
    let pf = open_vector(&v.file, &cek).unwrap_or_else(|e| panic!("{}: the format alone cannot tell: {e}", v.file));
    read_all(&pf).unwrap();
    let ul = v
        .use_licence
        .as_ref()
        .expect("a licence-stage vector carries a use licence");
    let licence = UseLicence {
        body: hex::decode(&ul.body).unwrap(),
        signature: hex::decode(&ul.signature).unwrap(),
        edit_certificate: None,
        access_ends: None,
    };
    let body = licence.verify(trust().key()).expect("the server signed it");
    assert_eq!(
        (body.user.as_str(), body.device_id.as_str()),
        (ul.user.as_str(), ul.device_id.as_str())
    );
    let h = read_header(&open_ro(&v.file)).unwrap();
    assert_eq!(body.content_id, h.content_id());
    assert!(!body.is_for(&h.body.licence, h.licence.owner()), "{}", v.file);
    assert_eq!(want.kind, "NotTheOwners", "{}", v.file);
}

fn check_intact(v: &Vector) {
    let file = open_ro(&v.file);
    let h = read_header(&file).unwrap();
    assert_eq!(h.plaintext_len(v.file_size).unwrap(), v.plaintext_len, "keyless length");
    let cek = ContentKey::from_bytes(unhex(&v.content_key));
    let pf = ProtectedFile::open_verified(file, &cek, &trust()).unwrap_or_else(|e| panic!("{}: {e}", v.file));
    assert_eq!(pf.len(), v.plaintext_len);
    assert_eq!(
        pf.written_by().map(|w| w.account.to_string()),
        v.written_by,
        "{}",
        v.file
    );
    let plain = read_all(&pf).unwrap_or_else(|e| panic!("{}: {e}", v.file));
    assert_eq!(hex::encode(sha256(&plain)), v.plaintext_sha256, "{}", v.file);
    if let Some(x) = &v.plaintext_hex {
        assert_eq!(&hex::encode(&plain), x, "{}", v.file);
    }
    let wrong = ContentKey::from_bytes([0x55; 32]);
    assert!(matches!(
        ProtectedFile::open(open_ro(&v.file), &wrong),
        Err(FormatError::WrongKey)
    ));
}

fn check_damaged(v: &Vector, want: &ExpectedError, all: &[Vector]) {
    let cek = ContentKey::from_bytes(unhex(&v.content_key));
    let got = match want.stage.as_str() {
        "licence" => return check_refused_licence(v, want),
        "open" => open_vector(&v.file, &cek).expect_err(&v.file),
        "read" => {
            let pf = open_vector(&v.file, &cek).unwrap_or_else(|e| panic!("{}: {e}", v.file));
            let err = read_all(&pf).expect_err(&v.file);
            // Blocks other than the damaged one still read, and match the
            // intact vector this one was made from.
            let src = all
                .iter()
                .find(|s| Some(&s.file) == v.derived_from.as_ref())
                .expect("derived_from names a vector");
            let plain = hex::decode(src.plaintext_hex.as_ref().expect("source has hex plaintext")).unwrap();
            let bs = v.block_size as u64;
            for i in 0..v.plaintext_len.div_ceil(bs) {
                if Some(i) == want.index {
                    continue;
                }
                let lo = (i * bs) as usize;
                let hi = plain.len().min(lo + bs as usize);
                let mut buf = vec![0u8; hi - lo];
                pf.read_at(&mut buf, lo as u64).unwrap();
                assert_eq!(buf, plain[lo..hi], "{} block {i}", v.file);
            }
            err
        }
        s => panic!("{}: unknown stage {s}", v.file),
    };
    assert_eq!(kind(&got), want.kind, "{}: got {got}", v.file);
    assert_eq!(error_index(&got), want.index, "{}: got {got}", v.file);
    assert_eq!(error_writer(&got), want.writer, "{}: got {got}", v.file);
}

#[test]
fn vectors_decode_as_stated() {
    let keys = load_keys();
    let device = DeviceKeyPair::from_pkcs8_der(&hex::decode(&keys.owner_device_pkcs8_der).unwrap()).unwrap();
    assert_eq!(hex::encode(device.public().to_der()), keys.owner_device_spki_der);
    let all = load_vectors();
    let (mut intact, mut damaged) = (0, 0);
    for v in &all {
        check_header(v, &keys);
        match &v.expect_error {
            None => {
                check_intact(v);
                intact += 1;
            }
            Some(want) => {
                check_damaged(v, want, &all);
                damaged += 1;
            }
        }
    }
    assert!(
        intact >= 5 && damaged >= 2,
        "{intact} intact, {damaged} damaged vectors"
    );
    for version in [1, 2, 3] {
        assert!(
            all.iter().any(|v| v.licence_version == version),
            "no vector with a version {version} publishing licence"
        );
    }
}

/// Every `.rights` file has a sidecar and every sidecar a file.
#[test]
fn vectors_are_paired() {
    let names: Vec<String> = load_vectors().into_iter().map(|v| v.file).collect();
    for e in std::fs::read_dir(dir()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "rights") {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            assert!(names.contains(&n), "{n} has no sidecar");
        }
    }
    for n in &names {
        assert!(dir().join(n).is_file(), "{n} is missing");
    }
}

// ---------------------------------------------------------------------------
// Regeneration

/// Intact vectors: (name, block size, plaintext length, description).
const INTACT: &[(&str, u32, usize, &str)] = &[
    (
        "empty",
        512,
        0,
        "No plaintext: header, padding, state slot 0 (generation 1) and a never-written all-zero slot 1; no blocks.",
    ),
    ("one-byte", 512, 1, "One plaintext byte: a single short last block."),
    (
        "one-block",
        512,
        512,
        "Exactly one full block of 512 bytes (flagged last).",
    ),
    (
        "two-and-a-half-blocks",
        512,
        1280,
        "Two full 512-byte blocks and a 256-byte last block; written in three writes, so the state generation is past 2.",
    ),
    (
        "ten-kib",
        4096,
        10_000,
        "10 000 bytes in the default 4096-byte blocks: two full blocks and a 1808-byte last block.",
    ),
];

/// Intact vectors whose publishing licence is version 3 (sealed grants).
const INTACT_V3: &[(&str, u32, usize, &str)] = &[(
    "private-grants",
    4096,
    3000,
    "Publishing licence version 3: the grants (bob view and edit, carol view) are sealed to the server and the owner's device; no recipient's address is in the file.",
)];

/// Who the version 3 vector is shared with.
const V3_GRANTS: &[&str] = &["bob@example.com:view,edit", "carol@example.com:view"];

/// Who claims a file that is not theirs in the hijacked vector.
const MALLORY: &str = "mallory@example.com";

/// Intact vectors whose publishing licence is version 2.
const INTACT_V2: &[(&str, u32, usize, &str)] = &[(
    "delegated-signature",
    4096,
    5000,
    "Publishing licence version 2: signed by an Ed25519 key that the owner's RSA device key certified; 5000 bytes in two blocks.",
)];

/// Largest plaintext given as hex in its sidecar (larger: sha256 only).
const HEX_MAX: usize = 2048;

/// A deterministic value for `what` of vector `name`.
fn fixed(name: &str, what: &str) -> [u8; 32] {
    sha256(format!("rightsfs test vector {name} {what}").as_bytes())
}

/// Readable, deterministic plaintext.
fn plaintext(len: usize) -> Vec<u8> {
    let line = b"rightsfs test vector plaintext 0123456789 abcdefghijklmnopqrstuvwxyz\n";
    line.iter().copied().cycle().take(len).collect()
}

/// The vectors' signers: the server's certificate key and the writers.
struct Signers {
    server: ServerSigningKey,
}

impl Signers {
    /// A writer for `account`, certified by the server, with an edit
    /// certificate of `rights` for `content` valid from `from` to `until`
    /// (seconds from now) when given.
    fn writer(&self, account: &str, edit: Option<(ContentId, &str, i64, i64)>) -> Writer {
        let key = WriterKey::generate();
        let account = Email::parse(account).unwrap();
        let device = DeviceCertificate {
            account: account.clone(),
            device_id: format!("{}-laptop", account.as_str().split('@').next().unwrap()),
            key: key.public(),
            issued_at: now() - 86_400,
            not_after: now() + 7 * 86_400,
        }
        .sign(&self.server);
        let edit = edit.map(|(content_id, rights, from, until)| {
            EditCertificate {
                content_id,
                account,
                key: key.public(),
                rights: Rights::parse(rights).unwrap(),
                issued_at: now() + from,
                not_after: now() + until,
            }
            .sign(&self.server)
        });
        Writer::new(key, device, edit).unwrap()
    }
}

fn load_or_make_keys() -> (Keys, DeviceKeyPair, ServerKemSecret) {
    let path = dir().join(KEYS_FILE);
    let device = if path.is_file() {
        let k: Keys = read_json(&path);
        DeviceKeyPair::from_pkcs8_der(&hex::decode(k.owner_device_pkcs8_der).unwrap()).unwrap()
    } else {
        DeviceKeyPair::generate().unwrap()
    };
    let server = ServerKemSecret::from_bytes(fixed("server", "x25519 secret"));
    let keys = Keys {
        owner_device_pkcs8_der: hex::encode(device.to_pkcs8_der().unwrap().as_slice()),
        owner_device_spki_der: hex::encode(device.public().to_der()),
        server_x25519_secret: hex::encode(server.to_bytes().as_slice()),
        server_x25519_public: hex::encode(server.public().0),
        server_ed25519_secret: hex::encode(fixed("server", "ed25519 secret")),
        server_ed25519_public: hex::encode(
            ServerSigningKey::from_bytes(fixed("server", "ed25519 secret"))
                .verifying_key()
                .0,
        ),
    };
    (keys, device, server)
}

fn write_json<T: Serialize>(name: &str, v: &T) {
    let mut text = serde_json::to_string_pretty(v).unwrap();
    text.push('\n');
    std::fs::write(dir().join(name), text).unwrap();
}

fn rw(path: &Path) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .unwrap()
}

/// Builds one intact vector and returns its sidecar.
fn make_intact(
    (name, bs, len, description): (&str, u32, usize, &str),
    licence_version: u8,
    device: &DeviceKeyPair,
    server: &ServerKemSecret,
    signers: &Signers,
) -> Vector {
    let cek = ContentKey::from_bytes(fixed(name, "content key"));
    let id = ContentId(fixed(name, "content id")[..16].try_into().unwrap());
    let mut policy = Policy::owner_only(Email::parse(OWNER).unwrap(), 7);
    let grants: &[&str] = if licence_version >= 3 {
        V3_GRANTS
    } else {
        &["bob@example.com:view,edit"]
    };
    for g in grants {
        policy.grants.push(Grant::parse_spec(g).unwrap());
    }
    let body = PublishingLicenceBody {
        version: licence_version,
        content_id: id,
        server_url: SERVER_URL.into(),
        server_key: server.public().0,
        owner_device_key: device.public().to_der(),
        wrapped_key: server
            .public()
            .wrap(
                &cek,
                &PublishingLicenceBody::wrap_context(&id, &policy.owner, &device.public().to_der()),
            )
            .0
            .to_vec(),
        policy,
        created_at: CREATED_AT,
    };
    let header = FileHeader::new(PublishingLicence::sign(&body, device).unwrap(), &cek, bs).unwrap();
    let file_name = format!("{name}.rights");
    let path = dir().join(&file_name);
    let plain = plaintext(len);
    let owner = signers.writer(OWNER, None);
    let mut pf =
        ProtectedFile::create_from(rw(&path), Fresh::signed(header.clone(), &cek, Some(owner)).unwrap()).unwrap();
    // Several writes and commits, so that both state slots hold records.
    for (i, part) in plain.chunks(512).enumerate() {
        pf.write_at(part, (i * 512) as u64).unwrap();
        if i % 2 == 0 {
            pf.flush().unwrap();
        }
    }
    pf.sync().unwrap();
    drop(pf);
    Vector {
        file: file_name,
        description: description.into(),
        content_id: id.to_hex(),
        content_key: hex::encode(cek.as_bytes()),
        server_x25519_secret: hex::encode(server.to_bytes().as_slice()),
        block_size: bs,
        owner: OWNER.into(),
        server_url: SERVER_URL.into(),
        created_at: CREATED_AT,
        licence_version,
        header_len: header.bytes.len() as u64,
        header_sha256: hex::encode(header.hash),
        data_offset: header.geometry.data_offset,
        file_size: std::fs::metadata(&path).unwrap().len(),
        plaintext_len: len as u64,
        plaintext_hex: (len <= HEX_MAX).then(|| hex::encode(&plain)),
        plaintext_sha256: hex::encode(sha256(&plain)),
        written_by: Some(OWNER.into()),
        derived_from: None,
        expect_error: None,
        sealed_grants: (licence_version >= 3).then(|| grants.iter().map(|g| g.to_string()).collect()),
        use_licence: None,
    }
}

/// Writes `bytes` as damaged vector `name`, made from `src`.
fn make_damaged(src: &Vector, name: &str, bytes: &[u8], description: &str, want: ExpectedError) -> Vector {
    Vector {
        expect_error: Some(want),
        ..derived(src, name, bytes, description)
    }
}

/// Writes `bytes` as vector `name`, made from `src`, whose plaintext it
/// does not state.
fn derived(src: &Vector, name: &str, bytes: &[u8], description: &str) -> Vector {
    let file_name = format!("{name}.rights");
    std::fs::write(dir().join(&file_name), bytes).unwrap();
    Vector {
        file: file_name,
        description: description.into(),
        content_id: src.content_id.clone(),
        content_key: src.content_key.clone(),
        server_x25519_secret: src.server_x25519_secret.clone(),
        block_size: src.block_size,
        owner: src.owner.clone(),
        server_url: src.server_url.clone(),
        created_at: src.created_at,
        licence_version: src.licence_version,
        header_len: src.header_len,
        header_sha256: src.header_sha256.clone(),
        data_offset: src.data_offset,
        file_size: bytes.len() as u64,
        plaintext_len: src.plaintext_len,
        plaintext_hex: None,
        plaintext_sha256: src.plaintext_sha256.clone(),
        written_by: None,
        derived_from: Some(src.file.clone()),
        expect_error: None,
        sealed_grants: None,
        use_licence: None,
    }
}

fn damaged_vectors(src: &Vector, signers: &Signers) -> Vec<Vector> {
    let clean = std::fs::read(dir().join(&src.file)).unwrap();
    let stride = src.block_size as usize + 28;
    let block = |i: usize| src.data_offset as usize + i * stride;
    let err = |kind: &str, stage: &str, index: Option<u64>| ExpectedError {
        kind: kind.into(),
        stage: stage.into(),
        index,
        writer: None,
        server: None,
    };
    let mut out = Vec::new();

    let mut tampered = clean.clone();
    tampered[block(1) + 12 + 100] ^= 0x01;
    out.push(make_damaged(
        src,
        "bad-tampered-block",
        &tampered,
        "One ciphertext bit of block 1 flipped (tag untouched): the file opens, blocks 0 and 2 read, block 1 fails.",
        err("BlockCorrupt", "read", Some(1)),
    ));

    let truncated = &clean[..clean.len() - 100];
    out.push(make_damaged(
        src,
        "bad-truncated",
        truncated,
        "The last 100 bytes cut off: the size no longer matches the state record's length.",
        err("Truncated", "open", None),
    ));

    let mut swapped = clean.clone();
    swapped[block(0)..block(1)].copy_from_slice(&clean[block(1)..block(2)]);
    swapped[block(1)..block(2)].copy_from_slice(&clean[block(0)..block(1)]);
    out.push(make_damaged(
        src,
        "bad-swapped-blocks",
        &swapped,
        "Blocks 0 and 1 exchanged: each authenticates only at the other's index.",
        err("BlockMoved", "open", Some(0)),
    ));

    // Replay: rewrite block 1, commit, then put the old block 1 back.
    let scratch = dir().join("bad-replayed-block.rights");
    std::fs::write(&scratch, &clean).unwrap();
    let cek = ContentKey::from_bytes(unhex(&src.content_key));
    let mut pf = ProtectedFile::open(rw_keep(&scratch), &cek)
        .unwrap()
        .with_writer(signers.writer(OWNER, None));
    pf.write_at(b"a newer version of block one", 600).unwrap();
    pf.sync().unwrap();
    drop(pf);
    let mut replayed = std::fs::read(&scratch).unwrap();
    replayed[block(1)..block(2)].copy_from_slice(&clean[block(1)..block(2)]);
    out.push(make_damaged(
        src,
        "bad-replayed-block",
        &replayed,
        "Block 1 rewritten and committed, then its older version put back: every block authenticates, but the state's block commitment does not match.",
        err("StaleBlock", "open", None),
    ));

    // Versions saved by others than the owner, each from the owner's file.
    let id = ContentId::from_hex(&src.content_id).unwrap();
    let edits = [
        (
            "bad-edit-by-viewer",
            signers.writer("carol@example.com", Some((id, "view", -60, 3600))),
            "carol@example.com",
            "A view-only recipient (carol, certified by the server, holding a certificate that grants only view) rewrote the file with the content key and signed the new state with her own writer key: every block and the state authenticate, the writer record does not allow the writer.",
        ),
        (
            "bad-edit-expired-certificate",
            signers
                .writer("bob@example.com", Some((id, "view,edit", -7200, -3600)))
                .signing_past_expiry(),
            "bob@example.com",
            "An editor (bob) signed a new version after his edit certificate's not-after time: refused, naming him.",
        ),
        (
            "bad-device-certificate-ended",
            signers.writer(OWNER, None).signing_at(now() + 8 * 86_400),
            OWNER,
            "The owner's own device, removed from the account and so never certified again, signed a new version after its device certificate's not-after time: refused, naming the owner.",
        ),
        (
            "bad-writer-time-before-certificate",
            signers.writer(OWNER, None).signing_at(now() - 2 * 86_400),
            OWNER,
            "The owner's own device signed a new version claiming a time before its device certificate was issued (a device backdating what it signs): refused, naming the owner.",
        ),
    ];
    for (name, writer, who, description) in edits {
        let scratch = dir().join(format!("{name}.rights"));
        std::fs::write(&scratch, &clean).unwrap();
        let mut pf = ProtectedFile::open(rw_keep(&scratch), &cek)
            .unwrap()
            .with_writer(writer);
        pf.write_at(b"a version its writer may not save", 0).unwrap();
        pf.sync().unwrap();
        drop(pf);
        let bytes = std::fs::read(&scratch).unwrap();
        out.push(make_damaged(
            src,
            name,
            &bytes,
            description,
            ExpectedError {
                writer: Some(who.into()),
                ..err("WriterNotAllowed", "open", None)
            },
        ));
    }
    out
}

/// An intact vector: the owner's file, then a version saved by an editor.
fn edited_vector(src: &Vector, signers: &Signers) -> Vector {
    let name = "edited-by-editor";
    let path = dir().join(format!("{name}.rights"));
    std::fs::copy(dir().join(&src.file), &path).unwrap();
    let cek = ContentKey::from_bytes(unhex(&src.content_key));
    let id = ContentId::from_hex(&src.content_id).unwrap();
    let bob = signers.writer("bob@example.com", Some((id, "view,edit", -60, 30 * 86_400)));
    let mut pf = ProtectedFile::open(rw_keep(&path), &cek).unwrap().with_writer(bob);
    let plain = plaintext(src.plaintext_len as usize + 300);
    let edit = b"EDITED BY BOB ";
    pf.write_at(&plain, 0).unwrap();
    pf.write_at(edit, 512).unwrap();
    pf.sync().unwrap();
    drop(pf);
    let mut plain = plain;
    plain[512..512 + edit.len()].copy_from_slice(edit);
    let bytes = std::fs::read(&path).unwrap();
    Vector {
        plaintext_len: plain.len() as u64,
        plaintext_hex: Some(hex::encode(&plain)),
        plaintext_sha256: hex::encode(sha256(&plain)),
        written_by: Some("bob@example.com".into()),
        ..derived(
            src,
            name,
            &bytes,
            "two-and-a-half-blocks saved again by bob, who holds edit: 300 bytes appended and block 1 changed. His writer record carries his device certificate, his edit certificate for this content and his signature.",
        )
    }
}

/// A recipient (mallory, who holds the content key) rebuilds `src` as
/// her own: a publishing licence naming her as owner, signed by her device,
/// with the wrapped content key copied from the owner's licence, and the
/// content written back under it. The file is sound to anyone with the
/// content key; the server refuses to register it (the key was wrapped
/// under the owner's binding) and the use licence issued for the
/// registered content names another licence and owner.
fn hijacked_vector(src: &Vector, signers: &Signers) -> Vector {
    let name = "bad-hijacked-owner";
    let registered = read_header(&open_ro(&src.file)).unwrap();
    let cek = ContentKey::from_bytes(unhex(&src.content_key));
    let mallory = DeviceKeyPair::generate().unwrap();
    let mut body = registered.licence.clone();
    body.policy.owner = Email::parse(MALLORY).unwrap();
    body.owner_device_key = mallory.public().to_der();
    let header = FileHeader::new(PublishingLicence::sign(&body, &mallory).unwrap(), &cek, src.block_size).unwrap();
    let path = dir().join(format!("{name}.rights"));
    let plain = plaintext(src.plaintext_len as usize);
    let fresh = Fresh::signed(header.clone(), &cek, Some(signers.writer(MALLORY, None))).unwrap();
    let mut pf = ProtectedFile::create_from(rw(&path), fresh).unwrap();
    pf.write_at(&plain, 0).unwrap();
    pf.sync().unwrap();
    drop(pf);
    let (user, device_id) = ("bob@example.com", "bob-laptop");
    let licence = UseLicence::sign(
        &UseLicenceBody {
            version: USE_LICENCE_VERSION,
            content_id: registered.content_id(),
            user: Email::parse(user).unwrap(),
            device_id: device_id.into(),
            rights: Rights::parse("view,edit").unwrap(),
            issued_at: CREATED_AT,
            valid_until: 4_102_444_800, // 2100-01-01
            wrapped_key: vec![7; 256],
            owner: Email::parse(OWNER).unwrap(),
            licence_hash: registered.body.licence.hash(),
        },
        &signers.server,
    );
    Vector {
        owner: MALLORY.into(),
        licence_version: body.version,
        header_len: header.bytes.len() as u64,
        header_sha256: hex::encode(header.hash),
        data_offset: header.geometry.data_offset,
        plaintext_len: plain.len() as u64,
        plaintext_sha256: hex::encode(sha256(&plain)),
        written_by: Some(MALLORY.into()),
        expect_error: Some(ExpectedError {
            kind: "NotTheOwners".into(),
            stage: "licence".into(),
            index: None,
            writer: None,
            server: Some("key_not_owned".into()),
        }),
        use_licence: Some(UseLicenceVector {
            user: user.into(),
            device_id: device_id.into(),
            body: hex::encode(&licence.body),
            signature: hex::encode(&licence.signature),
        }),
        ..derived(
            src,
            name,
            &std::fs::read(&path).unwrap(),
            "A recipient (mallory, holding the content key) rebuilt private-grants as her own: her publishing licence names her as owner and is signed by her device, with the owner's wrapped content key copied into it; every block and state is sound. The server refuses to register it (key_not_owned: the key was wrapped under alice's binding), and the use licence the server issued bob for the registered content names alice and another licence hash, so a reader refuses the file (NotTheOwners).",
        )
    }
}

fn rw_keep(path: &Path) -> File {
    OpenOptions::new().read(true).write(true).open(path).unwrap()
}

#[test]
#[ignore = "rewrites tests/vectors; run on purpose and commit the result"]
fn regenerate_vectors() {
    std::fs::create_dir_all(dir()).unwrap();
    let (keys, device, server) = load_or_make_keys();
    write_json(KEYS_FILE, &keys);
    let signers = Signers {
        server: ServerSigningKey::from_bytes(unhex(&keys.server_ed25519_secret)),
    };
    let all = INTACT
        .iter()
        .map(|v| (v, 1))
        .chain(INTACT_V2.iter().map(|v| (v, 2)))
        .chain(INTACT_V3.iter().map(|v| (v, 3)));
    for (&vector, version) in all {
        let name = vector.0;
        let v = make_intact(vector, version, &device, &server, &signers);
        if name == "private-grants" {
            let d = hijacked_vector(&v, &signers);
            write_json(&d.file.replace(".rights", ".json"), &d);
        }
        if name == "two-and-a-half-blocks" {
            for d in damaged_vectors(&v, &signers)
                .into_iter()
                .chain([edited_vector(&v, &signers)])
            {
                write_json(&d.file.replace(".rights", ".json"), &d);
            }
        }
        write_json(&format!("{name}.json"), &v);
    }
}

// ---------------------------------------------------------------------------
// Fuzz smoke: the parser and `open` under random and mutated input.

fn scratch_with(bytes: &[u8]) -> (tempfile::NamedTempFile, File) {
    let t = tempfile::NamedTempFile::new().unwrap();
    t.as_file().write_all_at(bytes, 0).unwrap();
    let f = t.reopen().unwrap();
    (t, f)
}

fn intact_source() -> (Vec<u8>, ContentKey, Vec<u8>) {
    let v: Vector = read_json(&dir().join("two-and-a-half-blocks.json"));
    let bytes = std::fs::read(dir().join(&v.file)).unwrap();
    let plain = hex::decode(v.plaintext_hex.unwrap()).unwrap();
    (bytes, ContentKey::from_bytes(unhex(&v.content_key)), plain)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Arbitrary bytes, with and without the magic in front: an error, never
    /// a panic and never a successful open.
    #[test]
    fn random_bytes_are_rejected(mut bytes in prop::collection::vec(any::<u8>(), 0..2048), magic in any::<bool>()) {
        if magic {
            let m = rightsfs::format::MAGIC;
            let k = m.len().min(bytes.len());
            bytes[..k].copy_from_slice(&m[..k]);
        }
        let _ = FileHeader::parse(bytes.clone());
        let (_t, f) = scratch_with(&bytes);
        prop_assert!(ProtectedFile::open(f, &ContentKey::from_bytes([7; 32])).is_err());
    }

    /// A valid file with some bytes changed, possibly cut short: opening or
    /// reading with the right key must fail, because every byte is
    /// authenticated.
    #[test]
    fn mutated_vector_is_detected(
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 0..4),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let (clean, cek, plain) = intact_source();
        let mut bytes = clean.clone();
        for (at, x) in &flips {
            bytes[at.index(clean.len())] ^= x;
        }
        if let Some(c) = cut {
            bytes.truncate(c.index(clean.len()));
        }
        let _ = FileHeader::parse(bytes.clone());
        let (_t, f) = scratch_with(&bytes);
        let outcome = ProtectedFile::open_verified(f, &cek, &trust()).and_then(|pf| read_all(&pf));
        if bytes == clean {
            prop_assert_eq!(outcome.unwrap(), plain);
        } else {
            prop_assert!(outcome.is_err(), "a changed file decoded");
        }
    }
}
