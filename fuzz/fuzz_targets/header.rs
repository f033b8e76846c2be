//! Feeds arbitrary bytes to the keyless header parser and to a full open
//! with a fixed key, with and without the writer check: none may panic,
//! whatever the bytes.
#![no_main]

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rightsfs::crypto::{ContentKey, ServerVerifyingKey};
use rightsfs::format::{FileHeader, ProtectedFile, Verifier, read_header};

/// The content key of `tests/vectors/two-and-a-half-blocks.rights`, so that
/// inputs mutated from that vector get past the key check into the state
/// record and the blocks.
const KEY_HEX: &str = "3b4e05b35760e1acb2f9c1f117fbd8b72f0e87a327bc3c57222c31025d24ec47";

/// The server key of `tests/vectors/keys.json`, which certifies the
/// vectors' writers: inputs mutated from them reach the writer records'
/// certificates and signatures.
const SERVER_HEX: &str = "577d3738913ce951697996b08e44bbffc37e6b4bc748de47203efc0a105949ca";

/// One scratch file reused for every input (on tmpfs when there is one).
fn scratch() -> &'static File {
    static F: OnceLock<File> = OnceLock::new();
    F.get_or_init(|| {
        tempfile::tempfile_in("/dev/shm")
            .or_else(|_| tempfile::tempfile())
            .expect("a scratch file")
    })
}

fn unhex(s: &str) -> [u8; 32] {
    let mut k = [0u8; 32];
    for (i, b) in k.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex key");
    }
    k
}

fn key() -> ContentKey {
    ContentKey::from_bytes(unhex(KEY_HEX))
}

fuzz_target!(|data: &[u8]| {
    let _ = FileHeader::parse(data.to_vec());
    let f = scratch();
    f.set_len(0).expect("truncate scratch file");
    f.write_all_at(data, 0).expect("write scratch file");
    let _ = read_header(f);
    let file = f.try_clone().expect("dup scratch file");
    let server = Verifier::new(ServerVerifyingKey(unhex(SERVER_HEX)));
    let checked = ProtectedFile::open_verified(file.try_clone().expect("dup scratch file"), &key(), &server);
    if let Ok(pf) = checked.or_else(|_| ProtectedFile::open(file, &key())) {
        let mut buf = vec![0u8; pf.len().min(1 << 16) as usize];
        let _ = pf.read_at(&mut buf, 0);
    }
});
