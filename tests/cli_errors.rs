//! End to end: bad input gets one clear line, a non-zero exit code, and
//! leaves every file as it was; an interrupted protect loses nothing.

mod cli_support;

use std::io::Write;
use std::process::Stdio;

use cli_support::{Server, User};

#[test]
fn wrong_code_is_refused_and_nothing_is_stored() {
    let server = Server::start();
    let eve = User::new("eve@example.com", true);
    let err = eve.fails(&["signup", "eve@example.com", "--server", &server.url, "--code", "000000"]);
    assert!(err.contains("code"), "{err}");
    let err = eve.fails(&["whoami"]);
    assert!(err.contains("rights login"), "{err}");
    let err = eve.fails(&["signup", "not-an-email", "--server", &server.url]);
    assert!(err.contains("not a valid email"), "{err}");
}

#[test]
fn bad_files_are_refused_without_damage() {
    let alice = User::new("alice@example.com", true);
    alice.login_offline();
    let plain = alice.write("plain.txt", b"just text");
    let err = alice.fails(&["cat", "plain.txt"]);
    assert!(err.contains("not a protected file"), "{err}");
    alice.ok(&["protect", "plain.txt"]);
    let err = alice.fails(&["protect", "plain.txt.rights"]);
    assert!(err.contains("already protected"), "{err}");
    // A file with protected content under a plain name is also caught.
    std::fs::copy(
        alice.docs().join("plain.txt.rights"),
        alice.docs().join("disguised.txt"),
    )
    .unwrap();
    let err = alice.fails(&["protect", "disguised.txt"]);
    assert!(err.contains("already protected"), "{err}");
    assert!(!plain.exists());

    // Corruption in the data is detected and reported, and nothing changes.
    let big = alice.write("data.bin", &vec![7u8; 100_000]);
    alice.ok(&["protect", "data.bin"]);
    assert!(!big.exists());
    let p = alice.docs().join("data.bin.rights");
    let mut bytes = std::fs::read(&p).unwrap();
    let n = bytes.len();
    bytes[n - 5000] ^= 0x40;
    std::fs::write(&p, &bytes).unwrap();
    let err = alice.fails(&["cat", "data.bin.rights"]);
    assert!(err.contains("damaged") || err.contains("corrupt"), "{err}");
    let err = alice.fails(&["unprotect", "data.bin.rights"]);
    assert!(err.contains("damaged") || err.contains("corrupt"), "{err}");
    assert_eq!(
        std::fs::read(&p).unwrap(),
        bytes,
        "a failed unprotect leaves the file as it was"
    );
    assert!(!alice.docs().join("data.bin").exists());

    // Truncated header and garbage.
    std::fs::write(alice.docs().join("short.rights"), &bytes[..20]).unwrap();
    let err = alice.fails(&["info", "short.rights"]);
    assert!(err.contains("damaged"), "{err}");
    let err = alice.fails(&["cat", "missing.rights"]);
    assert!(err.contains("cannot open"), "{err}");
    // A usage error: clap's message and exit code 2, nothing mounted.
    let out = alice.run(&["mount", "src", "mnt", "--busy-poll-us", "5000"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--busy-poll-us") && err.contains("0..=1000"), "{err}");
    let err = alice.fails(&["protect", "x.txt", "--to", "bob:fly"]);
    assert!(
        err.contains("not a valid email") || err.contains("unknown right"),
        "{err}"
    );
}

#[test]
fn killed_protect_leaves_the_original_intact() {
    let alice = User::new("alice@example.com", true);
    alice.login_offline();
    let path = alice.docs().join("big.bin");
    {
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
        for _ in 0..512 {
            f.write_all(&chunk).unwrap();
        }
    }
    let original = rightsfs::crypto::sha256(&std::fs::read(&path).unwrap());
    let mut child = alice
        .command()
        .args(["protect", "big.bin"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once it is writing the protected copy.
    let docs = alice.docs();
    loop {
        let writing = std::fs::read_dir(&docs)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().contains(".part") && e.metadata().unwrap().len() > 1 << 20);
        if writing || child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let finished = child.try_wait().unwrap().is_some();
    child.kill().ok();
    child.wait().unwrap();
    assert!(!finished, "protect ended before writing 1 MiB of its 512 MiB");
    assert!(path.exists(), "the original survives a kill");
    assert_eq!(rightsfs::crypto::sha256(&std::fs::read(&path).unwrap()), original);
    assert!(!docs.join("big.bin.rights").exists());
    // A re-run completes and cleans up the partial file.
    alice.ok(&["protect", "big.bin"]);
    assert!(!path.exists());
    let leftovers: Vec<_> = std::fs::read_dir(&docs)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".part"))
        .collect();
    assert!(leftovers.is_empty(), "partial files remain: {leftovers:?}");
    let mut out = alice
        .command()
        .args(["cat", "big.bin.rights"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut data = Vec::new();
    std::io::Read::read_to_end(out.stdout.as_mut().unwrap(), &mut data).unwrap();
    assert!(out.wait().unwrap().success());
    assert_eq!(rightsfs::crypto::sha256(&data), original);
}
