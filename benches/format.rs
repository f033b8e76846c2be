//! Throughput of the protected-file format against raw AES-256-GCM on the
//! same machine: the format should cost little beyond the cipher itself.
//! Files live on tmpfs (`/dev/shm` when present) so that the disk does not
//! blur the comparison. Run through `scripts/bench/format.sh`.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

mod common;
use common::{SMALL, bench_block_open, data, rw, scratch_dir, vector_device_key};

use rightsfs::crypto::{BlockCipher, ContentKey, DeviceKeyPair, ServerKemSecret};
use rightsfs::format::{DEFAULT_BLOCK_SIZE, FileHeader, ProtectedFile};
use rightsfs::policy::{ContentId, Email, Policy, PublishingLicence, PublishingLicenceBody};

const FILE_LEN: usize = 64 << 20;
const CHUNK: usize = 1 << 20;

/// A signed header for a fresh file under `cek`.
fn header(device: &DeviceKeyPair, cek: &ContentKey) -> FileHeader {
    let id = ContentId::generate();
    let server = ServerKemSecret::generate();
    let body = PublishingLicenceBody {
        version: 1,
        content_id: id,
        server_url: "http://127.0.0.1:9".into(),
        server_key: server.public().0,
        owner_device_key: device.public().to_der(),
        policy: Policy::owner_only(Email::parse("bench@example.com").expect("valid address"), 7),
        wrapped_key: server.public().wrap(cek, &id.0).0.to_vec(),
        created_at: 0,
    };
    let licence = PublishingLicence::sign(&body, device).expect("signing works");
    FileHeader::new(licence, cek, DEFAULT_BLOCK_SIZE).expect("a valid header")
}

/// Deterministic offsets of 4 KiB-aligned blocks inside the file.
struct Offsets(u64);

impl Offsets {
    fn next(&mut self) -> u64 {
        // xorshift64: cheap and reproducible; quality is irrelevant here.
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % (FILE_LEN / SMALL) as u64) * SMALL as u64
    }
}

fn bench_file(c: &mut Criterion) {
    let device = vector_device_key();
    let dir = scratch_dir();
    let cek = ContentKey::generate();
    let path = dir.path().join("bench.rights");
    let chunk = data(CHUNK);
    // Signed once: an RSA signature per iteration would blur the figure.
    let hdr = header(&device, &cek);

    let fill = |path: &Path| {
        let mut pf = ProtectedFile::create(rw(path), hdr.clone(), &cek).expect("create");
        for i in 0..FILE_LEN / CHUNK {
            pf.write_at(&chunk, (i * CHUNK) as u64).expect("write");
        }
        pf.flush().expect("flush");
    };
    // The file the read and random-write benchmarks use, made up front so
    // that any one benchmark can be run alone.
    fill(&path);

    let mut g = c.benchmark_group("file");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(FILE_LEN as u64));
    let scratch = dir.path().join("write.rights");
    g.bench_function("seq_write_1MiB", |b| b.iter(|| fill(&scratch)));
    let _ = std::fs::remove_file(&scratch);

    let pf = ProtectedFile::open(rw(&path), &cek).expect("open");
    assert_eq!(pf.len(), FILE_LEN as u64);
    let mut buf = vec![0u8; CHUNK];
    g.bench_function("seq_read_1MiB", |b| {
        b.iter(|| {
            for i in 0..FILE_LEN / CHUNK {
                let n = pf.read_at(&mut buf, (i * CHUNK) as u64).expect("read");
                black_box(&buf[..n]);
            }
        })
    });
    drop(pf);

    g.sample_size(50);
    g.throughput(Throughput::Bytes(SMALL as u64));
    let mut pf = ProtectedFile::open(rw(&path), &cek).expect("open");
    let mut small = vec![0u8; SMALL];
    let mut offsets = Offsets(0x9e37_79b9_7f4a_7c15);
    g.bench_function("rand_read_4KiB", |b| {
        b.iter(|| {
            let n = pf.read_at(&mut small, offsets.next()).expect("read");
            black_box(&small[..n]);
        })
    });
    let block = data(SMALL);
    g.bench_function("rand_write_4KiB", |b| {
        b.iter(|| pf.write_at(black_box(&block), offsets.next()).expect("write"))
    });
    pf.flush().expect("flush");
    drop(pf);

    // The crash-safe path the mount uses: rewrites wait in memory and a
    // commit journals them (syncs cost nothing on tmpfs, so this is the
    // journal's CPU and copying cost).
    const BATCH: usize = 64;
    g.throughput(Throughput::Bytes((BATCH * SMALL) as u64));
    let journal_dir = rightsfs::dirfd::Dir::create_private(&dir.path().join("journal")).expect("journal directory");
    let journal_dir = std::sync::Arc::new(rightsfs::format::JournalDir::new(journal_dir).expect("journal directory"));
    let (mut pf, _) = ProtectedFile::open_journaled(rw(&path), &cek, &journal_dir).expect("open");
    g.bench_function("rand_write_4KiB_x64_journaled_commit", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                pf.write_at(black_box(&block), offsets.next()).expect("write");
            }
            pf.flush().expect("commit");
        })
    });
    g.finish();
}

fn bench_cipher(c: &mut Criterion) {
    let key = ContentKey::generate();
    let cipher = BlockCipher::new(key.as_bytes());
    let aad = [7u8; 57];
    let mut g = c.benchmark_group("aes_gcm");
    g.sample_size(50);
    g.throughput(Throughput::Bytes(SMALL as u64));
    let mut buf = data(SMALL);
    g.bench_function("seal_4KiB", |b| {
        b.iter(|| black_box(cipher.seal(&aad, black_box(&mut buf))))
    });

    bench_block_open(&mut g, "open_4KiB", &key);
    g.finish();
}

criterion_group!(benches, bench_cipher, bench_file);
criterion_main!(benches);
