//! End to end: logs written to files carry no colour escapes (the server's
//! and the mount daemon's), and neither everyday calls nor unmounting
//! leave a spurious warning or failure in the mount's log.

mod cli_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cli_support::{Server, User};

#[test]
fn the_servers_log_file_has_no_colour_escapes() {
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("server.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rights-server"))
        .args([
            "serve",
            "--data-dir",
            data.path().to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .env("RIGHTS_SERVER_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("listening"), "{line}");
    let until = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&log).unwrap().contains("server ready") {
        assert!(Instant::now() < until, "no log line");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains('\x1b'), "colour escapes in a log file: {text:?}");
}

#[test]
fn everyday_calls_and_unmounting_log_no_warning_and_no_colour() {
    let server = Server::start();
    let alice = User::new("alice@example.com", true);
    alice.signup(&server);
    let src = alice.home.path().join("protected");
    let mnt = alice.home.path().join("mnt");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&mnt).unwrap();
    let v = alice.mount_daemon(&src, &mnt);
    let pid = v["pid"].as_i64().unwrap() as u32;
    let log = std::path::PathBuf::from(v["log"].as_str().unwrap());
    std::fs::write(mnt.join("note.txt"), b"hello").unwrap();
    // Every buffered open asks whether the file is a terminal (a TCGETS
    // ioctl): an everyday call, not worth a warning each time.
    for _ in 0..3 {
        let f = std::fs::File::open(mnt.join("note.txt")).unwrap();
        // SAFETY: a valid descriptor.
        assert_eq!(unsafe { libc::isatty(std::os::fd::AsRawFd::as_raw_fd(&f)) }, 0);
    }
    let out = alice.ok(&["unmount", mnt.to_str().unwrap()]);
    assert!(out.contains("Unmounted"), "{out}");
    let until = Instant::now() + Duration::from_secs(60);
    while rightsfs::fs::pid_alive(pid) {
        assert!(Instant::now() < until, "daemon {pid} did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("unmounted"), "{text}");
    assert!(!text.contains("Failed to umount"), "{text}");
    assert!(!text.contains("WARN"), "{text}");
    assert!(!text.contains('\x1b'), "colour escapes in a log file: {text:?}");
}
