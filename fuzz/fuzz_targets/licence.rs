//! Feeds arbitrary bytes to the publishing-licence readers, the version 3
//! sealed grants among them: decoding, the owner's signature check, and
//! opening the grants as the server (X25519) and as the owner's device.
//! None may panic, whatever the bytes.
//!
//! The input is a whole protected file when its header parses (so that
//! inputs mutated from the test vectors keep a well-formed header and the
//! mutations land in the licence), else the licence body itself.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rightsfs::crypto::{DeviceKeyPair, ServerKemSecret};
use rightsfs::format::FileHeader;
use rightsfs::policy::PublishingLicence;

/// The keys all vectors share: the server's X25519 secret and the owner's
/// device key, so that grants sealed in `private-grants.rights` (and
/// mutations of it) open.
const KEYS: &str = include_str!("../../tests/vectors/keys.json");

fn key_hex(name: &str) -> Vec<u8> {
    let at = KEYS.find(&format!("\"{name}\"")).expect("key in keys.json");
    let rest = &KEYS[at + name.len() + 2..];
    let start = rest.find('"').expect("a string value") + 1;
    let end = start + rest[start..].find('"').expect("a closed string");
    let hex = &rest[start..end];
    (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

fn server() -> &'static ServerKemSecret {
    static S: OnceLock<ServerKemSecret> = OnceLock::new();
    S.get_or_init(|| {
        let k: [u8; 32] = key_hex("server_x25519_secret").try_into().expect("32 bytes");
        ServerKemSecret::from_bytes(k)
    })
}

fn device() -> &'static DeviceKeyPair {
    static D: OnceLock<DeviceKeyPair> = OnceLock::new();
    D.get_or_init(|| DeviceKeyPair::from_pkcs8_der(&key_hex("owner_device_pkcs8_der")).expect("an RSA key"))
}

fn read(licence: &PublishingLicence) {
    let _ = licence.hash();
    let _ = licence.decode_unverified();
    let _ = licence.verify();
    let _ = licence.sealed_grants();
    let _ = licence.policy_for_server(server());
    let _ = licence.open_grants_as_owner(device());
}

fuzz_target!(|data: &[u8]| {
    match FileHeader::parse(data.to_vec()) {
        Ok(header) => read(&header.body.licence),
        Err(_) => read(&PublishingLicence {
            body: data.to_vec(),
            signature: Vec::new(),
        }),
    }
});
