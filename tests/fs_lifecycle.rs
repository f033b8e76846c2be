//! The mount's life: a daemon started with `rights mount --daemon`
//! unmounts cleanly on SIGTERM and SIGINT (committing what was written),
//! and a daemon killed outright leaves a dead mount that `rights status`
//! reports and `rights unmount --force` cleans up.

mod cli_support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use cli_support::{Server, User};

fn dirs(user: &User) -> (PathBuf, PathBuf) {
    let src = user.home.path().join("protected");
    let mnt = user.home.path().join("mnt");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&mnt).unwrap();
    (src, mnt)
}

fn mount(user: &User, src: &std::path::Path, mnt: &std::path::Path) -> i32 {
    user.mount_daemon(src, mnt)["pid"].as_i64().unwrap() as i32
}

fn wait_gone(pid: i32) {
    let until = Instant::now() + Duration::from_secs(60);
    while rightsfs::fs::pid_alive(pid as u32) {
        assert!(Instant::now() < until, "daemon {pid} did not exit");
        // Reap it if it is our child's child (it is not: it is setsid'd and
        // reparented), so polling is all there is.
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn signals_unmount_cleanly_and_dead_mounts_are_cleaned_up() {
    let server = Server::start();
    let alice = User::new("alice@example.com", true);
    alice.signup(&server);
    let (src, mnt) = dirs(&alice);
    let canon = std::fs::canonicalize(&mnt).unwrap();

    for sig in [libc::SIGTERM, libc::SIGINT] {
        let pid = mount(&alice, &src, &mnt);
        assert!(rightsfs::fs::is_mounted(&canon));
        let name = format!("signal-{sig}.txt");
        std::fs::write(mnt.join(&name), format!("written before signal {sig}")).unwrap();
        // SAFETY: signalling the daemon this test started.
        unsafe { libc::kill(pid, sig) };
        wait_gone(pid);
        assert!(!rightsfs::fs::is_mounted(&canon), "signal {sig} unmounts");
        let protected = src.join(format!("{name}.rights"));
        assert_eq!(
            alice.ok(&["cat", protected.to_str().unwrap()]),
            format!("written before signal {sig}")
        );
        let status: serde_json::Value = serde_json::from_str(&alice.ok(&["status", "--json"])).unwrap();
        assert!(
            status["mounts"].as_array().unwrap().is_empty(),
            "record removed: {status}"
        );
    }

    // Killed outright: the mount stays behind, dead.
    let pid = mount(&alice, &src, &mnt);
    std::fs::write(mnt.join("before-kill.txt"), b"committed on close").unwrap();
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    wait_gone(pid);
    let status: serde_json::Value = serde_json::from_str(&alice.ok(&["status", "--json"])).unwrap();
    let mounts = status["mounts"].as_array().unwrap();
    assert_eq!(mounts.len(), 1, "{status}");
    assert_eq!(mounts[0]["alive"], false);
    let text = alice.ok(&["status"]);
    assert!(text.contains("rights unmount --force"), "{text}");
    alice.ok(&["unmount", "--force", mnt.to_str().unwrap()]);
    assert!(!rightsfs::fs::is_mounted(&canon));
    // Written and closed before the kill: intact.
    let protected = src.join("before-kill.txt.rights");
    assert_eq!(alice.ok(&["cat", protected.to_str().unwrap()]), "committed on close");
    // And the folder mounts again.
    let pid = mount(&alice, &src, &mnt);
    assert_eq!(
        std::fs::read(mnt.join("before-kill.txt")).unwrap(),
        b"committed on close"
    );
    alice.ok(&["unmount", mnt.to_str().unwrap()]);
    wait_gone(pid);
}
