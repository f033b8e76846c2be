//! What the format's signatures and sealed grants cost per protect, open
//! and save, beside what the rest of those operations costs on the same
//! machine: a reader should see which share of a first open is checking
//! signatures. "cold" rows forget every signature this process checked
//! before each iteration (a process's first open of a file); "warm" rows
//! reopen what was checked already. Files live on tmpfs (`/dev/shm` when
//! present). Run through `scripts/bench/format.sh`.

use std::fs::File;
use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};

mod common;
use common::{SMALL, bench_block_open, data, rw, scratch_dir, vector_device_key};

use rightsfs::crypto::{
    ContentKey, DeviceKeyPair, ServerKemSecret, ServerSigningKey, ServerVerifyingKey, verify_writer,
};
use rightsfs::format::{
    Caches, DEFAULT_BLOCK_SIZE, DEFAULT_TAG_MEMORY, FileHeader, Fresh, ProtectedFile, Verifier, Writer,
};
use rightsfs::policy::{
    ContentId, DeviceCertificate, Email, Grant, Policy, PublishingLicence, PublishingLicenceBody, SealedGrants,
};

const OWNER: &str = "bench@example.com";

/// Everything a protect, an open and a save need: the owner's device, the
/// server's two keys and the owner's certified writer.
struct Setup {
    device: DeviceKeyPair,
    kem: ServerKemSecret,
    server: ServerVerifyingKey,
    writer: Writer,
    grants: Vec<Grant>,
}

impl Setup {
    fn new() -> Self {
        let device = vector_device_key();
        let signing = ServerSigningKey::generate();
        let key = device.writer_key();
        let cert = DeviceCertificate {
            account: Email::parse(OWNER).expect("valid address"),
            device_id: "bench-device".into(),
            key: key.public(),
            issued_at: 0,
            not_after: i64::MAX / 2,
        }
        .sign(&signing);
        Self {
            writer: Writer::new(key, cert, None).expect("a writer"),
            device,
            kem: ServerKemSecret::generate(),
            server: signing.verifying_key(),
            // What `rights protect --share` typically seals: two recipients.
            grants: vec![
                Grant::parse_spec("bob@example.com:view,edit").expect("a grant"),
                Grant::parse_spec("carol@example.com").expect("a grant"),
            ],
        }
    }

    /// A version 3 body for a fresh content under `cek`.
    fn body(&self, cek: &ContentKey) -> PublishingLicenceBody {
        let id = ContentId::generate();
        let owner = Email::parse(OWNER).expect("valid address");
        let der = self.device.public().to_der();
        let context = PublishingLicenceBody::wrap_context(&id, &owner, &der);
        let mut policy = Policy::owner_only(owner, 7);
        policy.grants = self.grants.clone();
        PublishingLicenceBody {
            version: PublishingLicenceBody::CURRENT_VERSION,
            content_id: id,
            server_url: "http://127.0.0.1:9".into(),
            server_key: self.kem.public().0,
            owner_device_key: der,
            policy,
            wrapped_key: self.kem.public().wrap(cek, &context).0.to_vec(),
            created_at: 0,
        }
    }

    /// Protects 4 KiB at `path` as `rights protect` does: a fresh key
    /// wrapped to the server, a signed licence with sealed grants, the
    /// header, one block and the first state signed by the owner's writer.
    fn protect(&self, path: &Path, data: &[u8]) -> ContentKey {
        let cek = ContentKey::generate();
        let licence = PublishingLicence::sign(&self.body(&cek), &self.device).expect("signing works");
        let header = FileHeader::new(licence, &cek, DEFAULT_BLOCK_SIZE).expect("a valid header");
        let fresh = Fresh::signed(header, &cek, Some(self.writer.clone())).expect("a signed first state");
        let mut pf = ProtectedFile::create_from(rw(path), fresh).expect("create");
        pf.write_at(data, 0).expect("write");
        pf.flush().expect("commit");
        cek
    }
}

fn bench_protect(c: &mut Criterion, s: &Setup, dir: &Path) {
    let mut g = c.benchmark_group("signing");
    g.sample_size(30);
    // What a process's first protect pays once: the device's RSA-PSS
    // certificate of its delegated Ed25519 key.
    let msg = [7u8; 66];
    g.bench_function("protect/rsa_certify_delegated_key", |b| {
        b.iter(|| s.device.sign(black_box(&msg)).expect("RSA signature"))
    });
    s.device.delegated_signer().expect("a delegated signer");
    let cek = ContentKey::generate();
    let body = s.body(&cek);
    let context = body.key_context();
    g.bench_function("protect/seal_grants", |b| {
        b.iter(|| SealedGrants::seal(black_box(&s.grants), &context, &s.kem.public(), &s.device))
    });
    g.bench_function("protect/sign_licence_v3", |b| {
        b.iter(|| PublishingLicence::sign(black_box(&body), &s.device).expect("signing works"))
    });
    let block = data(SMALL);
    let path = dir.join("protect.rights");
    g.bench_function("protect/protect_4KiB", |b| {
        b.iter(|| {
            let _ = std::fs::remove_file(&path);
            s.protect(&path, &block)
        })
    });
    g.finish();
}

fn bench_open(c: &mut Criterion, s: &Setup, dir: &Path) {
    let path: PathBuf = dir.join("open.rights");
    let block = data(SMALL);
    let cek = s.protect(&path, &block);
    let licence = ProtectedFile::open(rw(&path), &cek)
        .expect("open")
        .header()
        .body
        .licence
        .clone();
    let mut g = c.benchmark_group("signing");
    g.sample_size(30);

    // Cold: no cache, as a first open. Warm: the caller's certificate
    // cache holds the licence's device certificate.
    g.bench_function("open/verify_licence_cold", |b| {
        b.iter(|| licence.verify().expect("a good licence"))
    });
    let certs = rightsfs::crypto::CertCache::default();
    g.bench_function("open/verify_licence_warm", |b| {
        b.iter(|| licence.verify_with(Some(&certs)).expect("a good licence"))
    });
    // A writer record's check: the server's certificate of the writer key,
    // then the writer's signature (two Ed25519 verifications).
    let dc = s.writer.device_certificate().to_vec();
    let signed = [9u8; 120];
    let sig = s.device.writer_key().sign(&signed);
    g.bench_function("open/verify_writer_record", |b| {
        b.iter(|| {
            let c = DeviceCertificate::verify(black_box(&dc), &s.server).expect("certified");
            verify_writer(&c.key, &signed, &sig).expect("signed")
        })
    });
    g.bench_function("open/grants_as_server", |b| {
        b.iter(|| licence.policy_for_server(&s.kem).expect("grants open"))
    });
    g.bench_function("open/grants_as_owner", |b| {
        b.iter(|| licence.open_grants_as_owner(&s.device).expect("grants open"))
    });

    let mut buf = vec![0u8; SMALL];
    let caches = std::sync::Arc::new(Caches::new(DEFAULT_TAG_MEMORY));
    let cold = Verifier::new(s.server);
    let warm = Verifier::cached(s.server, caches.clone());
    let mut read = |verifier: Option<&Verifier>| {
        let file = File::open(&path).expect("open the file");
        let pf = match verifier {
            Some(v) => ProtectedFile::open_verified(file, &cek, v),
            None => ProtectedFile::open_cached(file, &cek, &caches),
        }
        .expect("a good file");
        let n = pf.read_at(&mut buf, 0).expect("read");
        black_box(n);
    };
    g.bench_function("open/open_read_4KiB_cold", |b| b.iter(|| read(Some(&cold))));
    g.bench_function("open/open_read_4KiB_warm", |b| b.iter(|| read(Some(&warm))));
    // The same open skipping the writer check, with the licence's check
    // remembered: what an open costs besides its signatures.
    g.bench_function("open/open_read_4KiB_unsigned_part", |b| b.iter(|| read(None)));

    // The rest of an open for scale: one block's cipher alone.
    bench_block_open(&mut g, "ref/aes_gcm_open_4KiB", &cek);
    g.finish();
}

fn bench_save(c: &mut Criterion, s: &Setup, dir: &Path) {
    let path = dir.join("save.rights");
    let block = data(SMALL);
    let cek = s.protect(&path, &block);
    let mut g = c.benchmark_group("signing");
    g.sample_size(30);
    // One save: rewrite the block and commit, with the commit's writer
    // record signed (one Ed25519 signature) or without a record.
    let mut signed = ProtectedFile::open(rw(&path), &cek)
        .expect("open")
        .with_writer(s.writer.clone());
    g.bench_function("save/save_4KiB_signed", |b| {
        b.iter(|| {
            signed.write_at(black_box(&block), 0).expect("write");
            signed.flush().expect("commit")
        })
    });
    drop(signed);
    let mut unsigned = ProtectedFile::open(rw(&path), &cek).expect("open");
    g.bench_function("save/save_4KiB_unsigned", |b| {
        b.iter(|| {
            unsigned.write_at(black_box(&block), 0).expect("write");
            unsigned.flush().expect("commit")
        })
    });
    g.finish();
}

fn bench_signing(c: &mut Criterion) {
    let s = Setup::new();
    let dir = scratch_dir();
    bench_protect(c, &s, dir.path());
    bench_open(c, &s, dir.path());
    bench_save(c, &s, dir.path());
}

criterion_group!(benches, bench_signing);
criterion_main!(benches);
