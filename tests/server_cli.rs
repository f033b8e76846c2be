//! The `rights-server` program itself: options, config file, outbox mail,
//! key reuse across restarts, TLS, the loopback rule and clean shutdown.

mod server_support;

use std::process::{Command, Stdio};

use serde_json::{Value, json};
use server_support::{Server, Smtp};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rights-server"))
}

#[test]
fn help_explains_every_option() {
    let out = bin().args(["serve", "--help"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for opt in [
        "--config",
        "--data-dir",
        "--database",
        "--listen",
        "--public-url",
        "--tls-cert",
        "--tls-key",
        "--smtp-host",
        "--smtp-port",
        "--smtp-user",
        "--smtp-password",
        "--smtp-tls",
        "--mail-from",
        "RIGHTS_SERVER_DATABASE",
    ] {
        assert!(help.contains(opt), "--help lacks {opt}:\n{help}");
    }
}

#[test]
fn plain_http_off_loopback_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--tls-cert"), "{err}");
    // Nothing was created.
    assert!(!dir.path().join("server-keys.bin").exists());
}

#[test]
fn config_file_outbox_restart_and_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = dir.path().join("server.toml");
    std::fs::write(
        &cfg,
        format!(
            "data_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\npublic_url = \"https://rights.example.org\"\n",
            data.display()
        ),
    )
    .unwrap();
    let start = || {
        let mut child = bin()
            .args(["serve", "--config"])
            .arg(&cfg)
            .env("RIGHTS_SERVER_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
        let url = line.trim().strip_prefix("listening on ").unwrap().to_string();
        (child, url)
    };
    let http = reqwest::blocking::Client::new();
    let (mut child, url) = start();
    assert!(url.starts_with("http://127.0.0.1:"));
    let keys1: Value = http.get(format!("{url}/v1/server-key")).send().unwrap().json().unwrap();
    let r = http
        .post(format!("{url}/v1/auth/start"))
        .json(&json!({"email": "alice@example.com", "signup": true}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    // No SMTP: the mail is in the outbox, with the code and the public URL.
    let outbox: Vec<_> = std::fs::read_dir(data.join("outbox")).unwrap().flatten().collect();
    assert_eq!(outbox.len(), 1);
    let mail = std::fs::read_to_string(outbox[0].path()).unwrap();
    assert!(mail.contains("To: alice@example.com"), "{mail}");
    assert!(mail.contains("https://rights.example.org"), "{mail}");
    assert!(mail.contains("From: rights@rights.example.org"), "{mail}");

    // SIGTERM stops it cleanly.
    let pid = i32::try_from(child.id()).unwrap();
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    assert!(child.wait().unwrap().success());

    // A restart reuses the keys and the database.
    let (mut child, url) = start();
    let keys2: Value = http.get(format!("{url}/v1/server-key")).send().unwrap().json().unwrap();
    assert_eq!(keys1, keys2);
    assert_eq!(keys1["kem_public_key"].as_str().unwrap().len(), 64);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn tls_serves_https() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ])
        .args([
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("SKIPPED: openssl is needed to make a test certificate");
        return;
    }
    let smtp = Smtp::start();
    let data = dir.path().join("data");
    let server = Server::start(
        &data,
        &smtp,
        &["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()],
    );
    assert!(server.url.starts_with("https://127.0.0.1:"), "{}", server.url);
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap();
    let http = reqwest::blocking::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let mut server = server;
    server.http = http;
    let (_, sig) = server.keys();
    assert_ne!(sig.0, [0; 32]);
    // Auth needs the client address behind TLS too: a sign-in works end to end.
    let u = server.login(&smtp, "tls@example.com", true);
    assert_eq!(server.get("/v1/me", &u.access).1["email"], "tls@example.com");
}

#[test]
fn the_running_server_serves_the_checked_in_openapi_document() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::start();
    let server = Server::start(dir.path(), &smtp, &[]);
    let served: Value = server
        .http
        .get(format!("{}/v1/openapi.json", server.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    // The in-process tests check this copy against the router's routes.
    let checked_in: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(served, checked_in);
    let out = Command::new(env!("CARGO_BIN_EXE_rights-server"))
        .arg("openapi")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap(), checked_in);
}
