//! The mount's basic behaviour on a real FUSE mount: names, sizes,
//! create/read/write, and that the source holds only ciphertext.

mod fs_support;

use fs_support::{Fixture, sh};

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

/// Waits until the mount keeps track of at most `cap` inodes: pruning
/// runs in a thread of its own and the kernel forgets asynchronously.
fn wait_for_table_within(fx: &Fixture, cap: usize) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while fx.inodes() > cap {
        assert!(
            std::time::Instant::now() < until,
            "the mount still keeps {} inodes, over its cap of {cap}",
            fx.inodes()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn walking_more_files_than_the_cap_keeps_the_mounts_memory_bounded() {
    use std::io::{Read, Seek, Write};
    const CAP: usize = 200;
    let mut fx = Fixture::unmounted();
    fx.max_inodes = CAP;
    fx.mount();
    let mnt = fx.mnt();
    for d in 0..4 {
        std::fs::create_dir(mnt.join(format!("d{d}"))).unwrap();
        for i in 0..500 {
            std::fs::write(mnt.join(format!("d{d}/f{i}.txt")), format!("file {d}/{i}\n")).unwrap();
        }
    }
    wait_for_table_within(&fx, CAP);
    // A file held open across the walk stays usable though its inode is
    // among the oldest.
    let mut held = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(mnt.join("d0/f0.txt"))
        .unwrap();
    for pass in 0..2 {
        let listed = sh(&mnt, "find . -type f | wc -l; du -s . >/dev/null && echo ok");
        assert_eq!(
            listed.split_whitespace().collect::<Vec<_>>(),
            ["2000", "ok"],
            "pass {pass}"
        );
        for d in 0..4 {
            for i in 0..500 {
                let p = mnt.join(format!("d{d}/f{i}.txt"));
                assert_eq!(
                    std::fs::metadata(&p).unwrap().len(),
                    format!("file {d}/{i}\n").len() as u64
                );
                if i % 7 == pass {
                    assert_eq!(std::fs::read_to_string(&p).unwrap(), format!("file {d}/{i}\n"));
                }
            }
        }
        wait_for_table_within(&fx, CAP);
    }
    held.seek(std::io::SeekFrom::End(0)).unwrap();
    held.write_all(b"more\n").unwrap();
    held.rewind().unwrap();
    let mut s = String::new();
    held.read_to_string(&mut s).unwrap();
    assert_eq!(s, "file 0/0\nmore\n");
    drop(held);
    assert_eq!(
        std::fs::read_to_string(mnt.join("d0/f0.txt")).unwrap(),
        "file 0/0\nmore\n"
    );
    fx.unmount();
    assert_eq!(fx.decrypt(&fx.src().join("d0/f0.txt.rights")), b"file 0/0\nmore\n");
    assert_eq!(fx.decrypt(&fx.src().join("d3/f499.txt.rights")), b"file 3/499\n");
}

/// The kernel may answer a listing from what it kept of the one before
/// (`fs/listings.rs`), never past a change: names added, removed or
/// renamed in the source folder behind the mount's back show in the very
/// next listing, as do those made through the mount. Each change comes
/// right after a listing the kernel was let keep (a full listing of a
/// folder unchanged for a moment, then one answered from it).
#[test]
fn a_listing_shows_each_change_to_its_folder_at_once() {
    let fx = Fixture::new();
    let (mnt, src) = (fx.mnt().join("d"), fx.src().join("d"));
    std::fs::create_dir(&mnt).unwrap();
    std::fs::write(mnt.join("a.txt"), b"a").unwrap();
    std::fs::write(mnt.join("b.txt"), b"b").unwrap();
    let listed = || {
        let mut names: Vec<String> = std::fs::read_dir(&mnt)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let changes: [(&dyn Fn(), &[&str]); 5] = [
        (
            &|| std::fs::write(src.join("plain.txt"), b"p").unwrap(),
            &["a.txt", "b.txt", "plain.txt"],
        ),
        (
            &|| std::fs::remove_file(src.join("a.txt.rights")).unwrap(),
            &["b.txt", "plain.txt"],
        ),
        (
            &|| std::fs::rename(src.join("b.txt.rights"), src.join("c.txt.rights")).unwrap(),
            &["c.txt", "plain.txt"],
        ),
        (
            &|| std::fs::write(mnt.join("e.txt"), b"e").unwrap(),
            &["c.txt", "e.txt", "plain.txt"],
        ),
        (
            &|| std::fs::remove_file(mnt.join("e.txt")).unwrap(),
            &["c.txt", "plain.txt"],
        ),
    ];
    let mut want: &[&str] = &["a.txt", "b.txt"];
    for (change, after) in changes {
        // Listed twice once the folder has been still a while: the second
        // may come from the kernel's copy. Then the change, listed at once.
        std::thread::sleep(std::time::Duration::from_millis(60));
        assert_eq!(listed(), want);
        assert_eq!(listed(), want);
        change();
        assert_eq!(listed(), after);
        want = after;
    }
    // What a kept listing names opens as it should.
    std::thread::sleep(std::time::Duration::from_millis(60));
    listed();
    assert_eq!(listed(), ["c.txt", "plain.txt"]);
    assert_eq!(std::fs::read(mnt.join("c.txt")).unwrap(), b"b");
    assert_eq!(std::fs::read(mnt.join("plain.txt")).unwrap(), b"p");
}
