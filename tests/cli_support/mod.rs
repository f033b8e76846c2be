//! Shared harness for the `rights` end-to-end tests: a real rights-server
//! on a free loopback port with its own data folder and a loopback SMTP
//! receiver, and users who each run the real `rights` binary with their
//! own XDG folders.

#![allow(dead_code)]

#[path = "../server_support/smtp.rs"]
pub mod smtp;

pub mod mount;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub mod daemon;
pub mod desktop_keyring;

pub use smtp::Smtp;

/// A running server.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub data: tempfile::TempDir,
    pub smtp: Smtp,
    addr: String,
    extra: Vec<String>,
}

impl Server {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a server with more `serve` options.
    pub fn start_with(extra: &[&str]) -> Self {
        let smtp = Smtp::start();
        let data = tempfile::tempdir().unwrap();
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let (child, addr) = spawn(data.path(), "127.0.0.1:0", smtp.port, &extra);
        Self {
            child,
            url: format!("http://{addr}"),
            data,
            smtp,
            addr,
            extra,
        }
    }

    /// Stops the server (for offline tests).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same address and data.
    pub fn restart(mut self) -> Self {
        self.stop();
        let (child, addr) = spawn(self.data.path(), &self.addr, self.smtp.port, &self.extra);
        assert_eq!(addr, self.addr);
        self.child = child;
        self
    }
}

fn spawn(data: &Path, listen: &str, smtp_port: u16, extra: &[String]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rights-server"))
        .args(server_args(data, listen, smtp_port))
        .args(extra)
        .env("RIGHTS_SERVER_LOG", "warn")
        // Waits after wrong codes of 1 s, not 30, so tests can wait them out.
        .env("RIGHTS_SERVER_SIGNIN_BACKOFF", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start rights-server");
    let out = child.stdout.take().unwrap();
    let mut lines = BufReader::new(out).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("server exited before printing its address")
            .unwrap();
        if let Some(a) = find_addr(&line) {
            break a;
        }
    };
    std::thread::spawn(move || for _ in lines.by_ref() {});
    (child, addr)
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn find_addr(line: &str) -> Option<String> {
    line.split(|c: char| c.is_whitespace() || c == '"' || c == '/')
        .find(|w| w.starts_with("127.0.0.1:") && w[10..].chars().all(|c| c.is_ascii_digit()) && w.len() > 10)
        .map(str::to_string)
}

fn server_args(data: &Path, listen: &str, smtp_port: u16) -> Vec<String> {
    let mut v: Vec<String> = vec!["serve".into(), "--data-dir".into(), data.display().to_string()];
    v.extend(
        [
            "--listen",
            listen,
            "--smtp-host",
            "127.0.0.1",
            "--smtp-tls",
            "none",
            "--smtp-port",
            &smtp_port.to_string(),
            "--mail-from",
            "rights@example.com",
        ]
        .map(String::from),
    );
    v
}

/// One person with their own XDG homes.
pub struct User {
    pub email: String,
    pub home: tempfile::TempDir,
    pub keystore_file: bool,
    /// More environment for every `rights` this user runs.
    pub env: Vec<(String, String)>,
}

impl User {
    pub fn new(email: &str, keystore_file: bool) -> Self {
        Self {
            email: email.into(),
            home: tempfile::tempdir().unwrap(),
            keystore_file,
            env: Vec::new(),
        }
    }

    /// Sets `key=value` in the environment of every `rights` this user runs.
    pub fn with_env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// A folder for this user's documents.
    pub fn docs(&self) -> PathBuf {
        let d = self.home.path().join("docs");
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rights"));
        let h = self.home.path();
        c.env("HOME", h)
            .env("XDG_CONFIG_HOME", h.join("config"))
            .env("XDG_DATA_HOME", h.join("data"))
            .env("XDG_CACHE_HOME", h.join("cache"))
            .env("RIGHTS_TIMEOUT_SECS", "5")
            .env_remove("RIGHTS_SERVER")
            .current_dir(self.docs())
            .stdin(Stdio::null())
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        if self.keystore_file {
            c.env("RIGHTS_PASSPHRASE", format!("passphrase of {}", self.email));
            c.arg("--keystore").arg("file");
        }
        c
    }

    /// Runs `rights ARGS`.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "rights {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&o.stderr),
            String::from_utf8_lossy(&o.stdout)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// Runs and asserts failure with a one-line message; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let o = self.run(args);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(
            !o.status.success(),
            "rights {args:?} should fail; stdout: {}",
            String::from_utf8_lossy(&o.stdout)
        );
        let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("rights: ")).collect();
        assert_eq!(errors.len(), 1, "one error line expected: {err}");
        assert_eq!(
            err.trim_end().lines().last(),
            Some(errors[0]),
            "the error comes last: {err}"
        );
        err
    }

    /// Signs up through the real mail exchange; returns what it printed.
    pub fn signup(&self, server: &Server) -> Output {
        let before = server.smtp.count();
        let mut child = self
            .command()
            .args(["signup", &self.email, "--server", &server.url])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let code = server.smtp.code_for(&self.email, before);
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{code}\n").as_bytes())
            .unwrap();
        let o = child.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "signup failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        o
    }

    /// Sets up an identity as a login would, against a server that is not
    /// there (a closed port): for what must work with no server at all.
    pub fn login_offline(&self) {
        use rightsfs::client::{Config, Keystore, KeystoreKind};
        let paths = self.paths();
        let device = rightsfs::crypto::DeviceKeyPair::generate().unwrap();
        let ks = Keystore::new(KeystoreKind::File, &paths).with_passphrase(&format!("passphrase of {}", self.email));
        ks.set_many(&[
            ("device-key", device.to_pkcs8_der().unwrap().as_slice()),
            ("refresh-token", b"stale"),
        ])
        .unwrap();
        // The server that is not there certified this device's writer key
        // (as a login does), so that the files it saves are signed.
        let server_key = rightsfs::crypto::ServerSigningKey::generate();
        let cert = rightsfs::policy::DeviceCertificate {
            account: self.email.parse().unwrap(),
            device_id: "dev-1".into(),
            key: device.writer_key().public(),
            issued_at: rightsfs::policy::now(),
            not_after: rightsfs::policy::now() + 30 * 86_400,
        }
        .sign(&server_key);
        std::fs::create_dir_all(&paths.data_dir).unwrap();
        std::fs::write(paths.data_dir.join("device-certificate"), cert).unwrap();
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let config = Config {
            server_url: Some(format!("http://{closed}")),
            email: Some(self.email.parse().unwrap()),
            device_id: Some("dev-1".into()),
            keystore: KeystoreKind::File,
            server_kem_key: Some(hex::encode(rightsfs::crypto::ServerKemSecret::generate().public().0)),
            server_signing_key: Some(hex::encode(server_key.verifying_key().0)),
            ..Config::default()
        };
        config.save(&paths).unwrap();
    }

    /// This user's folders, as `rights` finds them.
    pub fn paths(&self) -> rightsfs::client::Paths {
        let h = self.home.path();
        rightsfs::client::Paths {
            config_dir: h.join("config/rightsfs"),
            data_dir: h.join("data/rightsfs"),
            cache_dir: h.join("cache/rightsfs"),
        }
    }

    /// The signed-in user's own session, through the library's client (for
    /// requests `rights` would not make: an attacker's, with a real account).
    pub fn session(&self) -> rightsfs::client::Session {
        let config = rightsfs::client::Config::load(&self.paths()).unwrap();
        rightsfs::client::session(&config, self.keystore(), std::time::Duration::from_secs(5)).unwrap()
    }

    /// The signed-in user's licence store (online), as their client builds
    /// it: the content keys of the files they may open.
    pub fn licensing(&self) -> rightsfs::licence::Licensing {
        let paths = self.paths();
        let config = rightsfs::client::Config::load(&paths).unwrap();
        rightsfs::client::licensing(
            &paths,
            &config,
            self.keystore(),
            std::time::Duration::from_secs(5),
            true,
        )
        .unwrap()
    }

    /// The user's file keystore, unlocked.
    fn keystore(&self) -> std::sync::Arc<rightsfs::client::Keystore> {
        use rightsfs::client::{Keystore, KeystoreKind};
        let ks =
            Keystore::new(KeystoreKind::File, &self.paths()).with_passphrase(&format!("passphrase of {}", self.email));
        std::sync::Arc::new(ks)
    }

    /// This user's device key, from their keystore (for what `rights`
    /// would not do: signing a licence by hand).
    pub fn device_key(&self) -> rightsfs::crypto::DeviceKeyPair {
        use rightsfs::client::{Keystore, KeystoreKind};
        let ks =
            Keystore::new(KeystoreKind::File, &self.paths()).with_passphrase(&format!("passphrase of {}", self.email));
        rightsfs::client::device_key(&ks).unwrap()
    }

    /// Mounts `src` at `mnt` as a daemon; returns `--json`'s answer (pid, log).
    pub fn mount_daemon(&self, src: &Path, mnt: &Path) -> serde_json::Value {
        let out = self.ok(&[
            "mount",
            src.to_str().unwrap(),
            mnt.to_str().unwrap(),
            "--daemon",
            "--json",
        ]);
        serde_json::from_str(&out).unwrap()
    }

    /// Writes a document into this user's folder.
    pub fn write(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.docs().join(name);
        std::fs::write(&p, data).unwrap();
        p
    }

    /// Copies a file into another user's folder (as mail or sync would).
    pub fn give(&self, name: &str, to: &User) -> PathBuf {
        let dst = to.docs().join(name);
        std::fs::copy(self.docs().join(name), &dst).unwrap();
        dst
    }
}

/// Alice, Bob and Carol (`@example.com`), signed up on `server`.
pub fn three_people(server: &Server) -> [User; 3] {
    let people = ["alice", "bob", "carol"].map(|n| User::new(&format!("{n}@example.com"), true));
    for u in &people {
        u.signup(server);
    }
    people
}
