//! Nothing written through the mount lands in plaintext: a protected file
//! swapped for a plain one in the source folder (by a sync client, a
//! shared-folder user) is shown read-only, writes to it are refused with
//! EACCES and a log line naming it, and the swap itself is logged as an
//! ERROR. Through a real `rights mount --daemon`.

mod cli_support;

use std::time::{Duration, Instant};

use cli_support::daemon::{Daemon, mount_log};
use cli_support::{Server, User};

#[test]
fn a_protected_file_swapped_for_a_plain_one_is_never_written_in_plaintext() {
    let server = Server::start();
    let user = User::new("plain@example.com", true);
    user.signup(&server);
    let src = user.home.path().join("src");
    let mnt = user.home.path().join("mnt");
    let mut daemon = Daemon::start(&user, &src, &mnt);
    let shown = mnt.join("notes.txt");
    std::fs::write(&shown, b"the owner's notes").unwrap();
    assert_eq!(std::fs::read(&shown).unwrap(), b"the owner's notes");

    // Behind the mount's back: the protected file goes, a plain one comes.
    std::fs::remove_file(src.join("notes.txt.rights")).unwrap();
    std::fs::write(src.join("notes.txt"), b"decoy").unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    while std::fs::metadata(&shown).map(|m| m.len()).ok() != Some(5) {
        assert!(Instant::now() < until, "the mount never showed the plain file");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(std::fs::read(&shown).unwrap(), b"decoy", "plain files still read");

    // The owner's next edit: refused, nothing written in the clear.
    let e = std::fs::write(&shown, b"the owner's new secret").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EACCES), "{e}");
    let e = std::fs::OpenOptions::new().append(true).open(&shown).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EACCES), "{e}");
    assert_eq!(std::fs::read(src.join("notes.txt")).unwrap(), b"decoy");

    let status: serde_json::Value = serde_json::from_str(user.ok(&["--json", "status"]).trim()).unwrap();
    let plain = &status["mounts"][0]["plain_files"];
    assert!(
        plain.as_array().is_some_and(|a| a.iter().any(|v| v == "notes.txt")),
        "rights status does not report the plain file: {status}"
    );
    let log = mount_log(&user);
    let name = src.join("notes.txt").display().to_string();
    assert!(
        log.lines()
            .any(|l| l.contains(" ERROR ") && l.contains(&name) && l.contains("replaced by a plain file")),
        "no ERROR about the swap:\n{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("refused a write to a plain") && l.contains(&name)),
        "no log line naming the refused file:\n{log}"
    );
    daemon.unmount(&user);
}
