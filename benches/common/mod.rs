//! What the format benchmarks share: the test vectors' device key, files
//! on tmpfs, plaintext, and the raw cipher they are measured against.

use std::fs::{File, OpenOptions};
use std::path::Path;

use criterion::BatchSize;
use criterion::measurement::WallTime;

use rightsfs::crypto::{BlockCipher, ContentKey, DeviceKeyPair};

/// Bytes of a small file, a block and a random access.
pub const SMALL: usize = 4096;

/// A directory on tmpfs when there is one, so that no disk enters the
/// figures.
pub fn scratch_dir() -> tempfile::TempDir {
    tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("a temporary directory")
}

/// `path` opened for reading and writing, made if missing.
pub fn rw(path: &Path) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .expect("open the benchmark file")
}

/// The test vectors' device key: generating an RSA key would cost seconds
/// of every run.
pub fn vector_device_key() -> DeviceKeyPair {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/keys.json");
    let text = std::fs::read_to_string(path).expect("tests/vectors/keys.json");
    let keys: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let der = hex::decode(keys["owner_device_pkcs8_der"].as_str().expect("a hex string")).expect("hex");
    DeviceKeyPair::from_pkcs8_der(&der).expect("an RSA-2048 key")
}

/// `len` bytes of a fixed pattern.
pub fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 4096) as u8).collect()
}

/// Adds `name` to `g`: `BlockCipher::open` of one sealed 4 KiB block under
/// `key`, the cipher alone.
pub fn bench_block_open(g: &mut criterion::BenchmarkGroup<'_, WallTime>, name: &str, key: &ContentKey) {
    let cipher = BlockCipher::new(key.as_bytes());
    let aad = [7u8; 57];
    let mut sealed = data(SMALL);
    let (nonce, tag) = cipher.seal(&aad, &mut sealed);
    g.bench_function(name, |b| {
        // The copy that restores the ciphertext happens in setup, untimed.
        b.iter_batched_ref(
            || sealed.clone(),
            |ct| cipher.open(&nonce, &aad, ct, &tag).expect("authentic"),
            BatchSize::SmallInput,
        )
    });
}
