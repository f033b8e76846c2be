//! A full disk under the mount: the source folder is a 4 MiB tmpfs. The
//! write, fsync or close that runs out of space reports ENOSPC to the
//! program, and after unmount and remount every file holds its last
//! fsynced (or committed) content exactly and decrypts. Needs root for the
//! tmpfs (CI runs as root).

mod fs_support;
mod tmpfs_support;

use std::fs::{File, OpenOptions};
use std::os::fd::IntoRawFd;
use std::os::unix::fs::FileExt;

use fs_support::{Fixture, pattern};

/// A fixture whose source folder is a small tmpfs; unmounts the FUSE mount
/// and then the tmpfs, also when the test fails.
struct SmallSource {
    fx: Fixture,
}

impl SmallSource {
    fn new(size: &str) -> Option<Self> {
        let fx = Fixture::unmounted();
        if !tmpfs_support::mount(&fx.src(), size) {
            return None;
        }
        let mut s = Self { fx };
        s.fx.mount();
        Some(s)
    }
}

impl Drop for SmallSource {
    fn drop(&mut self) {
        self.fx.unmount();
        tmpfs_support::unmount(&self.fx.src());
    }
}

fn errno(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

/// `close(2)` with its result (dropping a `File` ignores it).
fn close(f: File) -> std::io::Result<()> {
    let fd = f.into_raw_fd();
    // SAFETY: we own `fd` (taken from the File) and close it once.
    if unsafe { libc::close(fd) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn write_fsynced(path: &std::path::Path, data: &[u8]) {
    let f = File::create(path).unwrap();
    f.write_all_at(data, 0).unwrap();
    f.sync_all().unwrap();
    close(f).unwrap();
}

#[test]
fn full_disk_reports_enospc_and_keeps_the_last_fsynced_content() {
    let Some(mut s) = SmallSource::new("4m") else { return };
    let doc = s.fx.mnt().join("doc.txt");
    let before = pattern(512 * 1024, 1);
    write_fsynced(&doc, &before);

    // Rewrite the file from the start and keep going past its end until
    // the disk is full (an editor saving in place, a database growing).
    let f = OpenOptions::new().read(true).write(true).open(&doc).unwrap();
    let chunk = pattern(64 * 1024, 2);
    let mut at = 0u64;
    let failed = loop {
        match f.write_all_at(&chunk, at) {
            Ok(()) => at += chunk.len() as u64,
            Err(e) => break e,
        }
        assert!(at < 64 << 20, "4 MiB of source took 64 MiB of writes without ENOSPC");
    };
    assert_eq!(errno(&failed), libc::ENOSPC, "the failing write: {failed}");
    assert!(at > before.len() as u64, "the disk filled before the file grew: {at}");
    // The rewrites wait for a journal that does not fit: fsync and close
    // must say so instead of pretending.
    let fsynced = match f.sync_all() {
        Err(e) => {
            assert_eq!(errno(&e), libc::ENOSPC, "fsync: {e}");
            let e = close(f).expect_err("close on a full disk with rewrites pending");
            assert_eq!(errno(&e), libc::ENOSPC, "close: {e}");
            None
        }
        Ok(()) => {
            // Room appeared behind the test's back (a concurrent
            // `drop_caches` can release a tmpfs's unwritten reservations):
            // then the fsync really committed, and that is what must last.
            close(f).unwrap();
            Some(std::fs::read(&doc).unwrap())
        }
    };
    // The state `before`, with the first `k` chunk writes laid over it: the
    // states the writes went through. A commit may have caught one of them
    // (the release of the descriptor that wrote `before` arrives
    // asynchronously and commits whatever the shared view holds then).
    let written = (at / chunk.len() as u64) as usize;
    let state_after = |k: usize| {
        let mut m = before.clone();
        for i in 0..k {
            let o = i * chunk.len();
            if m.len() < o + chunk.len() {
                m.resize(o + chunk.len(), 0);
            }
            m[o..o + chunk.len()].copy_from_slice(&chunk);
        }
        m
    };

    s.fx.unmount();
    s.fx.mount();
    let expected = std::fs::read(&doc).unwrap();
    match &fsynced {
        Some(now) => assert!(&expected == now, "the fsynced content did not last"),
        None => assert!(
            (0..=written).any(|k| state_after(k) == expected),
            "after a failed fsync the file holds neither its fsynced content nor a state its writes went through"
        ),
    }
    s.fx.unmount();
    assert!(s.fx.decrypt(&s.fx.src().join("doc.txt.rights")) == expected);
    let left: Vec<_> = std::fs::read_dir(s.fx.src().join(".rightsfs/journal"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "a journal or change log was left behind: {left:?}");

    // Space is back (the uncommitted tail was cut): the mount works again.
    s.fx.mount();
    let after = pattern(300 * 1024, 3);
    write_fsynced(&doc, &after);
    assert!(std::fs::read(&doc).unwrap() == after);
}

#[test]
fn fsync_that_failed_for_space_succeeds_once_space_is_freed() {
    let Some(mut s) = SmallSource::new("4m") else { return };
    let doc = s.fx.mnt().join("notes.txt");
    let before = pattern(400 * 1024, 4);
    write_fsynced(&doc, &before);
    // Fill the source behind the mount's back, leaving less room than the
    // journal of the rewrite below needs.
    let filler = s.fx.src().join("filler.bin");
    {
        let f = File::create(&filler).unwrap();
        let block = vec![0x5au8; 16 * 1024];
        let mut at = 0u64;
        while f.write_all_at(&block, at).is_ok() {
            at += block.len() as u64;
        }
        let _ = f.set_len(at.saturating_sub(64 * 1024));
        f.sync_all().unwrap();
    }
    let f = OpenOptions::new().read(true).write(true).open(&doc).unwrap();
    let new = pattern(300 * 1024, 5);
    f.write_all_at(&new, 0).unwrap();
    let e = f.sync_all().expect_err("fsync must fail: the journal does not fit");
    assert_eq!(errno(&e), libc::ENOSPC, "fsync: {e}");
    // Nothing changed on disk yet; the mount still shows the new bytes.
    let mut expect = before.clone();
    expect[..new.len()].copy_from_slice(&new);
    let mut buf = vec![0u8; expect.len()];
    f.read_exact_at(&mut buf, 0).unwrap();
    assert!(buf == expect, "the failed fsync lost the written bytes");
    std::fs::remove_file(&filler).unwrap();
    f.sync_all().expect("fsync once space is back");
    close(f).unwrap();

    s.fx.unmount();
    assert!(s.fx.decrypt(&s.fx.src().join("notes.txt.rights")) == expect);
    s.fx.mount();
    assert!(std::fs::read(&doc).unwrap() == expect);
}

#[test]
fn appending_until_full_keeps_what_was_committed() {
    let Some(mut s) = SmallSource::new("4m") else { return };
    let keep = s.fx.mnt().join("keep.txt");
    let kept = pattern(100 * 1024, 6);
    write_fsynced(&keep, &kept);
    let log = s.fx.mnt().join("log.txt");
    let f = File::create(&log).unwrap();
    let chunk = pattern(32 * 1024, 7);
    let mut written = Vec::new();
    let failed = loop {
        match f.write_all_at(&chunk, written.len() as u64) {
            Ok(()) => written.extend_from_slice(&chunk),
            Err(e) => break e,
        }
        if written.len() % (512 * 1024) == 0 {
            f.sync_all().unwrap();
        }
        assert!(written.len() < 64 << 20, "no ENOSPC after 64 MiB");
    };
    assert_eq!(errno(&failed), libc::ENOSPC, "the failing append: {failed}");
    // Only new blocks: the commit needs no space and keeps every write
    // that succeeded.
    f.sync_all().expect("fsync of the completed appends");
    close(f).unwrap();

    s.fx.unmount();
    s.fx.mount();
    let got = std::fs::read(&log).unwrap();
    assert_eq!(got.len(), written.len());
    assert!(got == written, "log.txt differs from what was written");
    assert!(
        std::fs::read(&keep).unwrap() == kept,
        "a file that was not written changed"
    );
    s.fx.unmount();
    assert!(s.fx.decrypt(&s.fx.src().join("log.txt.rights")) == written);
    assert!(s.fx.decrypt(&s.fx.src().join("keep.txt.rights")) == kept);
}
