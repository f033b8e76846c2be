//! Damaged protected files on a real mount: a flipped byte in a data
//! block, a cut-off file, garbage under the suffix. Reading what is damaged
//! fails with EIO; everything else in the mount keeps working.

mod fs_support;

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use fs_support::Fixture;

/// Block size of files the mount creates.
const BLOCK: u64 = 4096;

fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// A fixture with `good` and `bad` written through the mount, unmounted.
fn two_files() -> (Fixture, Vec<u8>, Vec<u8>) {
    let mut fx = Fixture::new();
    let good = content(3 * BLOCK as usize + 500, 1);
    let bad = content(4 * BLOCK as usize + 700, 2);
    std::fs::write(fx.mnt().join("good"), &good).unwrap();
    std::fs::write(fx.mnt().join("bad"), &bad).unwrap();
    // Synced: no crash can then explain a shorter or different file (an
    // unsynced write may be lost to a power cut, and the mount would
    // rightly go back to the last synced state).
    for name in ["good", "bad"] {
        File::open(fx.mnt().join(name)).unwrap().sync_all().unwrap();
    }
    fx.unmount();
    (fx, good, bad)
}

/// Where block `i` of a protected file starts in the source.
fn block_offset(path: &Path, i: u64) -> u64 {
    let h = rightsfs::format::read_header(&File::open(path).unwrap()).unwrap();
    assert_eq!(h.geometry.block_size, BLOCK);
    h.geometry.block_offset(i)
}

fn errno_of<T: std::fmt::Debug>(r: std::io::Result<T>) -> i32 {
    r.unwrap_err().raw_os_error().unwrap()
}

/// Reads `len` bytes at `at` with one descriptor; the error if any.
fn read_range(path: &Path, at: u64, len: usize) -> std::io::Result<Vec<u8>> {
    let f = File::open(path)?;
    let mut buf = vec![0u8; len];
    f.read_exact_at(&mut buf, at)?;
    Ok(buf)
}

fn others_still_work(fx: &Fixture, good: &[u8]) {
    assert_eq!(std::fs::read(fx.mnt().join("good")).unwrap(), good);
    std::fs::write(fx.mnt().join("new"), b"written after the damage").unwrap();
    assert_eq!(
        std::fs::read(fx.mnt().join("new")).unwrap(),
        b"written after the damage"
    );
    let mut names: Vec<_> = std::fs::read_dir(fx.mnt())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.contains(&"good".to_string()) && names.contains(&"new".to_string()));
}

#[test]
fn flipped_byte_in_a_block_reads_as_eio() {
    let (mut fx, good, bad) = two_files();
    let src = fx.src().join("bad.rights");
    let at = block_offset(&src, 2) + 100;
    let f = OpenOptions::new().read(true).write(true).open(&src).unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, at).unwrap();
    f.write_all_at(&[b[0] ^ 0x01], at).unwrap();
    drop(f);
    fx.mount();
    let p = fx.mnt().join("bad");
    assert_eq!(std::fs::metadata(&p).unwrap().len(), bad.len() as u64);
    assert_eq!(errno_of(read_range(&p, 2 * BLOCK + 10, 100)), libc::EIO);
    assert_eq!(errno_of(std::fs::read(&p)), libc::EIO);
    // A read that stays clear of the damaged block (direct, so that the
    // kernel's read-ahead does not pull the damaged block into it).
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(&p)
        .unwrap();
    let mut buf = vec![0u8; BLOCK as usize];
    match f.read_exact_at(&mut buf, BLOCK) {
        Ok(()) => assert_eq!(buf, bad[BLOCK as usize..2 * BLOCK as usize]),
        // Without direct I/O on this mount the kernel may still read ahead.
        Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EIO)),
    }
    drop(f);
    others_still_work(&fx, &good);
    assert_eq!(
        errno_of(read_range(&p, 2 * BLOCK, 1)),
        libc::EIO,
        "still damaged on a later read"
    );
}

#[test]
fn truncated_file_gives_eio() {
    let (mut fx, good, _bad) = two_files();
    let src = fx.src().join("bad.rights");
    let len = std::fs::metadata(&src).unwrap().len();
    // Cut into the middle of the last full block.
    let cut = block_offset(&src, 3) + 1000;
    assert!(cut < len);
    OpenOptions::new().write(true).open(&src).unwrap().set_len(cut).unwrap();
    fx.mount();
    let p = fx.mnt().join("bad");
    let e = match File::open(&p) {
        Err(e) => e.raw_os_error().unwrap(),
        Ok(f) => {
            let mut buf = Vec::new();
            errno_of(std::io::Read::read_to_end(&mut &f, &mut buf))
        }
    };
    assert_eq!(e, libc::EIO);
    others_still_work(&fx, &good);
    // The damaged source was not "repaired" into a shorter valid file.
    fx.unmount();
    assert_eq!(std::fs::metadata(&src).unwrap().len(), cut);
}

#[test]
fn garbage_under_the_suffix_gives_eio_on_open() {
    let (mut fx, good, _bad) = two_files();
    let garbage: Vec<u8> = (0..10_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(fx.src().join("junk.rights"), &garbage).unwrap();
    std::fs::write(fx.src().join("short.rights"), b"\x89RIGHTS\n").unwrap();
    fx.mount();
    for name in ["junk", "short"] {
        let p = fx.mnt().join(name);
        assert!(std::fs::metadata(&p).is_ok(), "{name} listed");
        assert_eq!(errno_of(File::open(&p)), libc::EIO, "{name}");
        assert_eq!(errno_of(OpenOptions::new().write(true).open(&p)), libc::EIO, "{name}");
    }
    others_still_work(&fx, &good);
    fx.unmount();
    assert_eq!(
        std::fs::read(fx.src().join("junk.rights")).unwrap(),
        garbage,
        "left untouched"
    );
}
