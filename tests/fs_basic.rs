//! The mount's basic behaviour on a real FUSE mount: names, sizes,
//! create/read/write, and that the source holds only ciphertext.

mod fs_support;

use fs_support::Fixture;

#[test]
fn files_written_in_the_mount_are_protected_in_the_source() {
    let mut fx = Fixture::new();
    let secret = b"the secret plan\n".repeat(1000);
    std::fs::write(fx.mnt().join("plan.txt"), &secret).unwrap();
    assert_eq!(std::fs::read(fx.mnt().join("plan.txt")).unwrap(), secret);
    assert_eq!(
        std::fs::metadata(fx.mnt().join("plan.txt")).unwrap().len(),
        secret.len() as u64
    );
    let names: Vec<_> = std::fs::read_dir(fx.mnt())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("plan.txt")]);
    fx.unmount();
    let raw = std::fs::read(fx.src().join("plan.txt.rights")).unwrap();
    assert!(
        !raw.windows(15).any(|w| w == b"the secret plan"),
        "plaintext leaked to the source"
    );
    assert_eq!(fx.decrypt(&fx.src().join("plan.txt.rights")), secret);
    fx.mount();
    assert_eq!(std::fs::read(fx.mnt().join("plan.txt")).unwrap(), secret);
}

#[test]
fn stat_of_ones_own_file_needs_no_licence_lookup() {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::Ordering;
    let mut fx = Fixture::new();
    std::fs::write(fx.mnt().join("mine.txt"), b"mine").unwrap();
    // A fresh mount knows nothing of the file: its size and mode come from
    // the header, and the header says whose it is.
    fx.unmount();
    fx.mount();
    let before = fx.keys.rights_asked.load(Ordering::Relaxed);
    let md = std::fs::metadata(fx.mnt().join("mine.txt")).unwrap();
    assert_eq!(md.len(), 4);
    assert_ne!(md.permissions().mode() & 0o200, 0, "the owner may write");
    assert_eq!(fx.keys.rights_asked.load(Ordering::Relaxed), before);
}

#[test]
fn plain_files_pass_through_and_state_is_hidden() {
    let fx = Fixture::new();
    std::fs::write(fx.src().join("readme.txt"), b"plain").unwrap();
    assert_eq!(std::fs::read(fx.mnt().join("readme.txt")).unwrap(), b"plain");
    // Writing it through the mount would put plaintext on disk: refused.
    let e = std::fs::write(fx.mnt().join("readme.txt"), b"new text").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EACCES));
    assert_eq!(std::fs::read(fx.src().join("readme.txt")).unwrap(), b"plain");
    assert!(!fx.mnt().join(".rightsfs").exists());
    assert!(fx.src().join(".rightsfs").is_dir());
}
