//! Shared harness for the mount tests: a real FUSE mount (through
//! /dev/fuse) of a temporary source folder, served by this test process,
//! with keys from an offline owner licence store (the owner opens and
//! creates files without a server). Tests that need the server or a daemon
//! process use `cli_support` and `rights mount` instead.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use rightsfs::crypto::{DeviceKeyPair, ServerKemSecret, ServerSigningKey, ServerVerifyingKey};
use rightsfs::format::{FileHeader, Fresh, Writer};
use rightsfs::fs::{KeySource, MountConfig, Mounted};
use rightsfs::licence::{Access, AccessError, Identity, Licensing};
use rightsfs::policy::{ContentId, DeviceCertificate, Email, Policy, Rights};

/// Keys of one owner, offline.
pub struct OwnerKeys {
    pub licensing: Licensing,
    me: Email,
    kem: rightsfs::crypto::ServerKemPublic,
    /// The key the (absent) server signs certificates with.
    pub server: ServerSigningKey,
    server_vk: ServerVerifyingKey,
    /// How often the mount asked for cached rights.
    pub rights_asked: std::sync::atomic::AtomicUsize,
}

impl OwnerKeys {
    pub fn new(dir: &Path) -> Self {
        let me = Email::parse("owner@example.com").unwrap();
        let device_key = DeviceKeyPair::generate().unwrap();
        let server = ServerSigningKey::generate();
        let server_vk = server.verifying_key();
        // The device certificate the server would issue at first use.
        let cert = DeviceCertificate {
            account: me.clone(),
            device_id: "test-device".into(),
            key: device_key.writer_key().public(),
            issued_at: rightsfs::policy::now(),
            not_after: rightsfs::policy::now() + 30 * 86_400,
        }
        .sign(&server);
        let identity = Identity {
            email: me.clone(),
            device_id: "test-device".into(),
            device_key,
            server_key: server_vk,
        };
        let licensing = Licensing::new(identity, dir.join("cache"), dir.join("owner"), None);
        licensing.set_device_certificate(&cert).unwrap();
        Self {
            licensing,
            server,
            server_vk,
            me,
            kem: ServerKemSecret::generate().public(),
            rights_asked: Default::default(),
        }
    }
}

impl KeySource for OwnerKeys {
    fn access(&self, header: &FileHeader) -> Result<Access, AccessError> {
        self.licensing.key_for(header)
    }
    fn cached_rights(&self, id: &ContentId) -> Option<Rights> {
        self.rights_asked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.licensing.cached(id).map(|c| c.rights)
    }
    fn create(&self, policy: Policy) -> Result<Fresh, AccessError> {
        self.licensing
            .new_content(policy, "http://127.0.0.1:9", &self.kem)?
            .fresh(self.licensing.writer()?, None)
    }
    fn sync_new(&self) -> Result<(), AccessError> {
        Ok(())
    }
    fn me(&self) -> &Email {
        &self.me
    }
    fn verifier(&self) -> &ServerVerifyingKey {
        &self.server_vk
    }
    fn writer(&self, header: &FileHeader, access: &Access) -> Result<Option<Writer>, AccessError> {
        self.licensing.writer_for(header, access)
    }
    fn facts_index_key(&self) -> Option<zeroize::Zeroizing<[u8; 32]>> {
        Some(self.licensing.identity().device_key.facts_index_key())
    }
}

/// A mounted source folder; unmounts on drop.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub keys: Arc<OwnerKeys>,
    /// Mount with `--allow-other` (other users enter; the kernel checks
    /// their permissions).
    pub allow_other: bool,
    /// The mount's `max_inodes` (the library's default unless a test
    /// sets it before [`mount`](Self::mount)).
    pub max_inodes: usize,
    mount: Option<Mounted>,
}

impl Fixture {
    /// Mounts an empty source folder.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src")).unwrap();
        std::fs::create_dir_all(dir.path().join("mnt")).unwrap();
        let keys = Arc::new(OwnerKeys::new(&dir.path().join("keys")));
        let mut f = Self {
            dir,
            keys,
            allow_other: false,
            max_inodes: rightsfs::fs::DEFAULT_MAX_INODES,
            mount: None,
        };
        f.mount();
        f
    }

    /// Like [`new`](Self::new) but not mounted yet, so a test can prepare
    /// the source folder first (put a small filesystem on it, seed files),
    /// then call [`mount`](Self::mount).
    pub fn unmounted() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src")).unwrap();
        std::fs::create_dir_all(dir.path().join("mnt")).unwrap();
        let keys = Arc::new(OwnerKeys::new(&dir.path().join("keys")));
        Self {
            dir,
            keys,
            allow_other: false,
            max_inodes: rightsfs::fs::DEFAULT_MAX_INODES,
            mount: None,
        }
    }

    /// The source folder (ciphertext).
    pub fn src(&self) -> PathBuf {
        self.dir.path().join("src")
    }

    /// The mount point (plaintext).
    pub fn mnt(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }

    /// Mounts (again).
    pub fn mount(&mut self) {
        let mut cfg = MountConfig::new(self.src(), self.mnt());
        cfg.allow_other = self.allow_other;
        cfg.max_inodes = self.max_inodes;
        let keys: Arc<dyn KeySource> = self.keys.clone();
        self.mount = Some(rightsfs::fs::spawn(&cfg, keys).expect("mount"));
    }

    /// How many inodes the mount keeps track of now.
    pub fn inodes(&self) -> usize {
        self.mount.as_ref().map_or(0, Mounted::inodes)
    }

    /// Unmounts, committing every open file.
    pub fn unmount(&mut self) {
        if let Some(m) = self.mount.take() {
            m.unmount().unwrap();
        }
    }

    /// Decrypts a source file with the library (independent of the mount).
    pub fn decrypt(&self, protected: &Path) -> Vec<u8> {
        let f = std::fs::File::open(protected).unwrap();
        let h = rightsfs::format::read_header(&f).unwrap();
        let a = self.keys.licensing.key_for_offline(&h).unwrap();
        let pf = rightsfs::format::ProtectedFile::open(f, &a.key).unwrap();
        let mut buf = vec![0u8; pf.len() as usize];
        let n = pf.read_at(&mut buf, 0).unwrap();
        buf.truncate(n);
        buf
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.unmount();
    }
}

/// Runs a shell command in `dir`, asserting success; returns stdout.
pub fn sh(dir: &Path, script: &str) -> String {
    let o = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "`{script}` failed: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// SHA-256 of a file, hex.
pub fn sha(path: &Path) -> String {
    hex::encode(rightsfs::crypto::sha256(&std::fs::read(path).unwrap()))
}

/// Names in a folder, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Deterministic bytes: `len` of them, varied by `seed` (xorshift).
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15_u64 ^ seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
