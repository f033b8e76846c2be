//! Licences decide what the mount allows, end to end: a real server, three
//! people with their own homes, each running the real `rights mount
//! --daemon`. The owner edits; a view-only reader cannot write; someone
//! without a licence gets EACCES (and the log names the owner to ask);
//! after a revocation the reader's next open is refused.

mod cli_support;

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use cli_support::mount::Mount;
use cli_support::{Server, User};

fn errno_of(r: std::io::Result<impl Sized>) -> Option<i32> {
    r.err().and_then(|e| e.raw_os_error())
}

/// `access(2)` on `p`: `None` if allowed, else the errno.
fn access(p: &Path, mode: i32) -> Option<i32> {
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    if unsafe { libc::access(c.as_ptr(), mode) } == 0 {
        None
    } else {
        std::io::Error::last_os_error().raw_os_error()
    }
}

fn copy_in(from: &Path, to_dir: &Path) {
    std::fs::copy(from, to_dir.join(from.file_name().unwrap())).unwrap();
}

#[test]
fn owner_edits_viewer_reads_stranger_is_refused_and_revocation_bites() {
    let server = Server::start();
    let [alice, bob, carol] = cli_support::three_people(&server);

    // Alice protects a report for Bob (view only), asking the server at
    // every open (offline validity 0) so that revocation takes effect at once.
    alice.write("report.txt", b"version 1\n");
    alice.ok(&[
        "protect",
        "report.txt",
        "--to",
        "bob@example.com:view",
        "--offline-days",
        "0",
    ]);
    let protected = alice.docs().join("report.txt.rights");

    // The owner edits through her mount.
    let am = Mount::new(&alice, &[]);
    copy_in(&protected, &am.src);
    let f = am.mnt.join("report.txt");
    assert_eq!(std::fs::read(&f).unwrap(), b"version 1\n");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&f)
        .unwrap()
        .write_all(b"edited by alice\n")
        .unwrap();
    assert_eq!(std::fs::read(&f).unwrap(), b"version 1\nedited by alice\n");
    // New files in her mount are hers, protected at once.
    std::fs::write(am.mnt.join("new.txt"), b"fresh").unwrap();
    let edited = am.src.join("report.txt.rights");
    assert_eq!(
        alice.ok(&["cat", edited.to_str().unwrap()]),
        "version 1\nedited by alice\n"
    );
    assert_eq!(
        alice.ok(&["cat", am.src.join("new.txt.rights").to_str().unwrap()]),
        "fresh"
    );

    // Bob gets the edited file (as mail or a sync folder would bring it).
    let bm = Mount::new(&bob, &[]);
    copy_in(&edited, &bm.src);
    let bf = bm.mnt.join("report.txt");
    assert_eq!(std::fs::read(&bf).unwrap(), b"version 1\nedited by alice\n");
    let mode = std::fs::metadata(&bf).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o222,
        0,
        "view-only files show read-only"
    );
    // Root ignores permission bits, so the licence itself must refuse.
    assert_eq!(
        errno_of(std::fs::OpenOptions::new().write(true).open(&bf)),
        Some(libc::EACCES)
    );
    assert_eq!(errno_of(std::fs::write(&bf, b"vandalised")), Some(libc::EACCES));
    // access(2), which editors ask before offering to save, says the same
    // (the daemon answers it: the mount runs without default_permissions).
    assert_eq!(access(&bf, libc::W_OK), Some(libc::EACCES));
    assert_eq!(access(&bf, libc::R_OK), None);
    assert_eq!(access(&f, libc::R_OK | libc::W_OK), None, "the owner may write");
    // A truncate by path, with no open descriptor, is refused too.
    let cpath = std::ffi::CString::new(bf.as_os_str().as_bytes()).unwrap();
    assert_eq!(unsafe { libc::truncate(cpath.as_ptr(), 0) }, -1);
    assert_eq!(std::io::Error::last_os_error().raw_os_error(), Some(libc::EACCES));
    // Nor may a chmod give the write bits back: it would show a right the
    // licence does not give.
    let writable = std::os::unix::fs::PermissionsExt::from_mode(0o644);
    assert_eq!(errno_of(std::fs::set_permissions(&bf, writable)), Some(libc::EPERM));
    let mode = std::fs::metadata(&bf).unwrap().permissions();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o222, 0);
    assert_eq!(std::fs::read(&bf).unwrap(), b"version 1\nedited by alice\n");

    // Carol has no licence: the file is listed, opening it is refused and
    // her log says whom to ask.
    let cm = Mount::new(&carol, &[]);
    copy_in(&edited, &cm.src);
    let cf = cm.mnt.join("report.txt");
    assert!(cf.exists(), "unlicensed files are still listed");
    assert_eq!(errno_of(std::fs::read(&cf)), Some(libc::EACCES));
    let log = cm.log();
    assert!(
        log.contains("alice@example.com") && log.contains("access refused"),
        "the log names the owner to ask: {log}"
    );

    // Alice revokes: Bob's next open is refused, his earlier content stays
    // out of reach.
    alice.ok(&["revoke", edited.to_str().unwrap()]);
    assert_eq!(errno_of(std::fs::read(&bf)), Some(libc::EACCES));
    // The owner keeps access.
    assert_eq!(std::fs::read(&f).unwrap(), b"version 1\nedited by alice\n");

    // Status lists the mounts; logout unmounts them all.
    let status: serde_json::Value = serde_json::from_str(&bob.ok(&["status", "--json"])).unwrap();
    assert_eq!(status["mounts"].as_array().unwrap().len(), 1);
    bob.ok(&["logout"]);
    assert!(!rightsfs::fs::is_mounted(&std::fs::canonicalize(&bm.mnt).unwrap()));
    drop(cm);
    drop(bm);
    drop(am);
}

#[test]
fn mount_errors_name_the_fix() {
    let server = Server::start();
    let alice = User::new("alice@example.com", true);
    alice.signup(&server);
    let h = alice.home.path();
    let src = h.join("src");
    let mnt = h.join("mnt");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&mnt).unwrap();
    let (s, m) = (src.to_str().unwrap(), mnt.to_str().unwrap());
    let missing = h.join("nope");
    let e = alice.fails(&["mount", missing.to_str().unwrap(), m]);
    assert!(e.contains("does not exist"), "{e}");
    let e = alice.fails(&["mount", s, missing.to_str().unwrap()]);
    assert!(e.contains("mkdir -p"), "{e}");
    std::fs::write(mnt.join("stray"), b"x").unwrap();
    let e = alice.fails(&["mount", s, m]);
    assert!(e.contains("not empty"), "{e}");
    std::fs::remove_file(mnt.join("stray")).unwrap();
    let e = alice.fails(&["unmount", m]);
    assert!(e.contains("not a rightsfs mount"), "{e}");
    let stranger = User::new("nobody@example.com", true);
    let e = stranger.fails(&["mount", s, m]);
    assert!(e.contains("rights login"), "{e}");
}
