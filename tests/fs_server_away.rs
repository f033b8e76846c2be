//! The licensing server goes away under a running daemon mount: files whose
//! licence is cached still open, new files are created (their registration
//! waits in the queue), a file with no cached licence is refused with
//! EACCES in bounded time and the log says the server is unreachable. When
//! the server is back, the same open succeeds without remounting and the
//! queued registration goes through. With the server up, a running mount
//! registers the files made in it by itself: once it pauses, and also
//! while a program keeps it busy.

mod cli_support;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cli_support::{Server, User};

/// A daemon mount of `user`, unmounted (forcefully if need be) on drop.
struct Mount<'a> {
    user: &'a User,
    src: PathBuf,
    mnt: PathBuf,
    log: PathBuf,
}

impl<'a> Mount<'a> {
    fn new(user: &'a User) -> Self {
        let src = user.home.path().join("protected");
        let mnt = user.home.path().join("mnt");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::create_dir_all(&mnt).unwrap();
        let mut m = Self {
            user,
            src,
            mnt,
            log: PathBuf::new(),
        };
        m.mount();
        m
    }

    fn mount(&mut self) {
        let v = self.user.mount_daemon(&self.src, &self.mnt);
        self.log = PathBuf::from(v["log"].as_str().expect("log path"));
    }

    fn unmount(&self) {
        self.user.ok(&["unmount", self.mnt.to_str().unwrap()]);
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Mount<'_> {
    fn drop(&mut self) {
        let m = self.mnt.to_str().unwrap().to_string();
        if rightsfs::fs::is_mounted(&self.mnt) && !self.user.run(&["unmount", &m]).status.success() {
            let _ = self.user.run(&["unmount", "--force", &m]);
        }
    }
}

/// Reads a file in another thread; fails the test if it hangs for a minute.
fn read_within_a_minute(path: &Path) -> std::io::Result<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    let p = path.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(std::fs::read(p));
    });
    rx.recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("reading {} hangs", path.display()))
}

fn pending(user: &User) -> Vec<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(user.ok(&["--json", "status"]).trim()).unwrap();
    v["pending_registrations"]
        .as_array()
        .expect("pending_registrations")
        .clone()
}

/// Waits (two minutes at most) until nothing of `user`'s waits for
/// registration.
fn wait_registered(user: &User, what: &str, m: &Mount) {
    let until = Instant::now() + Duration::from_secs(120);
    while !pending(user).is_empty() {
        assert!(
            Instant::now() < until,
            "{what}: not registered within 2 minutes:\n{}",
            m.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn a_running_mount_registers_new_files_once_idle_and_while_kept_busy() {
    let server = Server::start();
    let carol = User::new("carol@example.com", true);
    carol.signup(&server);
    let m = Mount::new(&carol);

    // A burst, then nothing: sent once the mount pauses.
    for i in 0..20 {
        std::fs::write(m.mnt.join(format!("burst-{i}.txt")), b"one of a burst\n").unwrap();
    }
    wait_registered(&carol, "the files of a burst", &m);

    // A program that never lets the mount pause (an open and a read every
    // 50 ms) does not hold a new file's registration back for long.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let busy = {
        let stop = stop.clone();
        let path = m.mnt.join("burst-0.txt");
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                assert_eq!(std::fs::read(&path).unwrap(), b"one of a burst\n");
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    std::fs::write(m.mnt.join("busy.txt"), b"made while the mount is busy\n").unwrap();
    wait_registered(&carol, "a file made while the mount is kept busy", &m);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    busy.join().expect("the busy reader");

    for name in ["burst-0.txt.rights", "burst-19.txt.rights", "busy.txt.rights"] {
        let info = carol.ok(&["--json", "info", m.src.join(name).to_str().unwrap()]);
        let v: serde_json::Value = serde_json::from_str(info.trim()).unwrap();
        assert_eq!(v["registration"], "registered", "{name}: {info}");
    }
}

#[test]
fn server_away_cached_files_open_new_files_queue_uncached_refused_then_recover() {
    let mut server = Server::start();
    let alice = User::new("alice@example.com", true);
    let bob = User::new("bob@example.com", true);
    alice.signup(&server);
    bob.signup(&server);
    for (name, text) in [
        ("seen.txt", "bob opened this before\n"),
        ("unseen.txt", "bob never opened this\n"),
    ] {
        alice.write(name, text.as_bytes());
        alice.ok(&[
            "protect",
            name,
            "--to",
            "bob@example.com:view,edit",
            "--offline-days",
            "1",
        ]);
    }

    let mut bm = Mount::new(&bob);
    for name in ["seen.txt.rights", "unseen.txt.rights"] {
        std::fs::copy(alice.docs().join(name), bm.src.join(name)).unwrap();
    }
    let seen = bm.mnt.join("seen.txt");
    let unseen = bm.mnt.join("unseen.txt");
    assert_eq!(read_within_a_minute(&seen).unwrap(), b"bob opened this before\n");

    server.stop();

    // The cached licence serves the running mount, and a new mount too
    // (the key is then read from the licence cache on disk).
    assert_eq!(read_within_a_minute(&seen).unwrap(), b"bob opened this before\n");
    bm.unmount();
    bm.mount();
    assert_eq!(read_within_a_minute(&seen).unwrap(), b"bob opened this before\n");
    std::fs::write(&seen, b"edited while the server was away\n").expect("edit with a cached licence");

    // New files need no server: the registration is queued.
    assert!(pending(&bob).is_empty(), "nothing queued before");
    std::fs::write(bm.mnt.join("offline.txt"), b"made offline\n").expect("create while the server is away");
    assert_eq!(std::fs::read(bm.mnt.join("offline.txt")).unwrap(), b"made offline\n");
    assert_eq!(pending(&bob).len(), 1, "the new file's registration waits in the queue");

    // No cached licence and no server: refused, in bounded time, and the
    // log says why.
    let e = read_within_a_minute(&unseen).expect_err("no licence can be had");
    assert_eq!(e.raw_os_error(), Some(libc::EACCES), "{e}");
    let log = bm.log();
    assert!(
        log.contains("access refused") && log.contains("server cannot be reached"),
        "the log should name the unreachable server:\n{log}"
    );

    server = server.restart();

    // The same open now succeeds, without remounting.
    assert_eq!(read_within_a_minute(&unseen).unwrap(), b"bob never opened this\n");
    assert_eq!(
        read_within_a_minute(&seen).unwrap(),
        b"edited while the server was away\n"
    );
    // And the queued registration goes through on its own.
    wait_registered(&bob, "the queued registration, after the server's return", &bm);
    let info = bob.ok(&["--json", "info", bm.src.join("offline.txt.rights").to_str().unwrap()]);
    assert!(!info.contains("queued"), "still queued: {info}");
    bm.unmount();
    drop(server);
}
