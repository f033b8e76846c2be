//! POSIX behaviour of the mount, checked on a real FUSE mount with the
//! system calls programs use: renames (plain, across folders, no-replace,
//! exchange), files still open after unlink or rename, folders, sizes,
//! open flags, modes and times, links, statfs, locks, xattrs and syncs.

mod fs_check;
mod fs_support;
mod tmpfs_support;

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use fs_check::unmount_and_check_source;
use fs_support::{Fixture, names};

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

/// The errno of the last failed call.
fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap()
}

fn renameat2(from: &Path, to: &Path, flags: u32) -> Result<(), i32> {
    let (a, b) = (cpath(from), cpath(to));
    // SAFETY: valid C strings; absolute paths with AT_FDCWD.
    let r = unsafe { libc::renameat2(libc::AT_FDCWD, a.as_ptr(), libc::AT_FDCWD, b.as_ptr(), flags) };
    if r == 0 { Ok(()) } else { Err(errno()) }
}

#[test]
fn rename_replaces_an_existing_file() {
    let mut fx = Fixture::new();
    let m = fx.mnt();
    std::fs::write(m.join("a"), b"content of a").unwrap();
    std::fs::write(m.join("b"), b"content of b, longer than a".repeat(300)).unwrap();
    std::fs::rename(m.join("a"), m.join("b")).unwrap();
    assert_eq!(std::fs::read(m.join("b")).unwrap(), b"content of a");
    assert_eq!(std::fs::metadata(m.join("b")).unwrap().len(), 12);
    assert_eq!(std::fs::metadata(m.join("a")).unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(names(&m), ["b"]);
    unmount_and_check_source(&mut fx);
}

#[test]
fn rename_across_folders() {
    let mut fx = Fixture::new();
    let m = fx.mnt();
    std::fs::create_dir_all(m.join("d1/sub")).unwrap();
    std::fs::create_dir(m.join("d2")).unwrap();
    std::fs::write(m.join("d1/f"), b"moving file").unwrap();
    std::fs::write(m.join("d1/sub/g"), b"in a moving folder").unwrap();
    std::fs::rename(m.join("d1/f"), m.join("d2/f2")).unwrap();
    assert_eq!(std::fs::read(m.join("d2/f2")).unwrap(), b"moving file");
    assert!(!m.join("d1/f").exists());
    std::fs::rename(m.join("d1/sub"), m.join("d2/moved")).unwrap();
    assert_eq!(std::fs::read(m.join("d2/moved/g")).unwrap(), b"in a moving folder");
    assert_eq!(names(&m.join("d2")), ["f2", "moved"]);
    assert!(names(&m.join("d1")).is_empty());
    // Written after the move, through the new path.
    std::fs::write(m.join("d2/moved/g"), b"rewritten").unwrap();
    assert_eq!(std::fs::read(m.join("d2/moved/g")).unwrap(), b"rewritten");
    unmount_and_check_source(&mut fx);
    assert!(fx.src().join("d2/moved/g.rights").is_file());
}

#[test]
fn rename_noreplace_and_exchange() {
    let mut fx = Fixture::new();
    let m = fx.mnt();
    std::fs::write(m.join("a"), b"AAAA").unwrap();
    std::fs::write(m.join("b"), b"BBBBBBBB").unwrap();
    assert_eq!(
        renameat2(&m.join("a"), &m.join("b"), libc::RENAME_NOREPLACE),
        Err(libc::EEXIST)
    );
    assert_eq!(std::fs::read(m.join("a")).unwrap(), b"AAAA");
    assert_eq!(std::fs::read(m.join("b")).unwrap(), b"BBBBBBBB");
    renameat2(&m.join("a"), &m.join("c"), libc::RENAME_NOREPLACE).unwrap();
    assert_eq!(names(&m), ["b", "c"]);
    assert_eq!(std::fs::read(m.join("c")).unwrap(), b"AAAA");
    renameat2(&m.join("b"), &m.join("c"), libc::RENAME_EXCHANGE).unwrap();
    assert_eq!(std::fs::read(m.join("b")).unwrap(), b"AAAA");
    assert_eq!(std::fs::read(m.join("c")).unwrap(), b"BBBBBBBB");
    assert_eq!(std::fs::metadata(m.join("c")).unwrap().len(), 8);
    assert_eq!(
        renameat2(&m.join("b"), &m.join("nothing"), libc::RENAME_EXCHANGE),
        Err(libc::ENOENT)
    );
    // Two folders swap with their contents.
    std::fs::create_dir(m.join("d")).unwrap();
    std::fs::write(m.join("d/in"), b"inside d").unwrap();
    std::fs::create_dir(m.join("e")).unwrap();
    std::fs::write(m.join("e/in"), b"inside e").unwrap();
    renameat2(&m.join("d"), &m.join("e"), libc::RENAME_EXCHANGE).unwrap();
    assert_eq!(std::fs::read(m.join("d/in")).unwrap(), b"inside e");
    assert_eq!(std::fs::read(m.join("e/in")).unwrap(), b"inside d");
    // A protected file and a folder are stored under names of different
    // forms (`b.rights`, `d`): no single atomic swap exists, so the mount
    // refuses it (EINVAL, as for a flag a filesystem does not support)
    // and changes nothing.
    assert_eq!(
        renameat2(&m.join("b"), &m.join("d"), libc::RENAME_EXCHANGE),
        Err(libc::EINVAL)
    );
    assert_eq!(std::fs::read(m.join("b")).unwrap(), b"AAAA");
    assert_eq!(std::fs::read(m.join("d/in")).unwrap(), b"inside e");
    assert_eq!(names(&m), ["b", "c", "d", "e"]);
    unmount_and_check_source(&mut fx);
}

#[test]
fn unlinked_open_file_stays_usable() {
    let mut fx = Fixture::new();
    let m = fx.mnt();
    std::fs::write(m.join("gone"), b"x".repeat(10_000)).unwrap();
    let mut f = OpenOptions::new().read(true).write(true).open(m.join("gone")).unwrap();
    std::fs::remove_file(m.join("gone")).unwrap();
    assert!(!m.join("gone").exists());
    assert!(names(&m).is_empty());
    f.write_all_at(b"still here", 5000).unwrap();
    f.write_all_at(b"grown", 12_000).unwrap();
    let mut buf = Vec::new();
    f.seek(SeekFrom::Start(0)).unwrap();
    f.read_to_end(&mut buf).unwrap();
    let mut expected = b"x".repeat(10_000);
    expected[5000..5010].copy_from_slice(b"still here");
    expected.resize(12_000, 0);
    expected.extend_from_slice(b"grown");
    assert_eq!(buf, expected);
    assert_eq!(f.metadata().unwrap().len(), 12_005);
    f.sync_all().unwrap();
    // A new file under the old name is a different file.
    std::fs::write(m.join("gone"), b"new").unwrap();
    let mut again = vec![0u8; 10];
    f.read_exact_at(&mut again, 5000).unwrap();
    assert_eq!(&again, b"still here");
    drop(f);
    assert_eq!(std::fs::read(m.join("gone")).unwrap(), b"new");
    unmount_and_check_source(&mut fx);
}

#[test]
fn unlink_follows_what_the_source_holds_now() {
    let mut fx = Fixture::new();
    let m = fx.mnt();
    std::fs::write(m.join("a"), b"protected").unwrap();
    std::fs::write(m.join("b"), b"protected").unwrap();
    assert!(m.join("a").exists() && m.join("b").exists());
    // Behind the mount's back: "a" becomes a plain file, "b.rights" a folder.
    let src = fx.src();
    std::fs::remove_file(src.join("a.rights")).unwrap();
    std::fs::write(src.join("a"), b"plain").unwrap();
    std::fs::remove_file(src.join("b.rights")).unwrap();
    std::fs::create_dir(src.join("b.rights")).unwrap();
    std::fs::write(src.join("b"), b"plain b").unwrap();
    std::fs::remove_file(m.join("a")).unwrap();
    assert!(!src.join("a").exists(), "the plain file now named a is the one removed");
    std::fs::remove_file(m.join("b")).unwrap();
    assert!(src.join("b.rights").is_dir(), "a folder is never unlinked");
    assert!(!src.join("b").exists());
    std::fs::remove_dir(src.join("b.rights")).unwrap();
    unmount_and_check_source(&mut fx);
}

#[test]
fn renamed_open_file_keeps_its_descriptor() {
    let mut fx = Fixture::new();
    let m = fx.mnt();
    std::fs::create_dir(m.join("d")).unwrap();
    std::fs::write(m.join("old"), b"0123456789").unwrap();
    let f = OpenOptions::new().read(true).write(true).open(m.join("old")).unwrap();
    std::fs::rename(m.join("old"), m.join("d/new")).unwrap();
    f.write_all_at(b"abc", 8).unwrap();
    let mut buf = [0u8; 11];
    f.read_exact_at(&mut buf, 0).unwrap();
    assert_eq!(&buf, b"01234567abc");
    assert_eq!(std::fs::read(m.join("d/new")).unwrap(), b"01234567abc");
    drop(f);
    assert_eq!(std::fs::read(m.join("d/new")).unwrap(), b"01234567abc");
    unmount_and_check_source(&mut fx);
}

#[test]
fn folders_are_made_listed_and_removed() {
    let mut fx = Fixture::new();
    let m = fx.mnt();
    std::fs::create_dir(m.join("d")).unwrap();
    assert_eq!(
        std::fs::create_dir(m.join("d")).unwrap_err().raw_os_error(),
        Some(libc::EEXIST)
    );
    for n in ["x", "y.txt", "z.tar.gz"] {
        std::fs::write(m.join("d").join(n), n).unwrap();
    }
    std::fs::create_dir(m.join("d/sub")).unwrap();
    assert_eq!(names(&m.join("d")), ["sub", "x", "y.txt", "z.tar.gz"]);
    let kinds: Vec<bool> = {
        let mut v: Vec<_> = std::fs::read_dir(m.join("d"))
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.file_name(), e.file_type().unwrap().is_dir())
            })
            .collect();
        v.sort();
        v.into_iter().map(|(_, d)| d).collect()
    };
    assert_eq!(kinds, [true, false, false, false]);
    assert_eq!(
        std::fs::remove_dir(m.join("d")).unwrap_err().raw_os_error(),
        Some(libc::ENOTEMPTY)
    );
    assert_eq!(
        std::fs::remove_dir(m.join("d/x")).unwrap_err().raw_os_error(),
        Some(libc::ENOTDIR)
    );
    assert_eq!(
        std::fs::remove_file(m.join("d/sub")).unwrap_err().raw_os_error(),
        Some(libc::EISDIR)
    );
    let mut src = names(&fx.src().join("d"));
    src.sort();
    assert_eq!(src, ["sub", "x.rights", "y.txt.rights", "z.tar.gz.rights"]);
    for n in ["x", "y.txt", "z.tar.gz"] {
        std::fs::remove_file(m.join("d").join(n)).unwrap();
    }
    std::fs::remove_dir(m.join("d/sub")).unwrap();
    std::fs::remove_dir(m.join("d")).unwrap();
    assert!(!m.join("d").exists());
    assert!(names(&m).is_empty());
    unmount_and_check_source(&mut fx);
}

#[test]
fn truncate_grows_and_shrinks() {
    let mut fx = Fixture::new();
    let m = fx.mnt();
    let p = m.join("t");
    let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&p, &data).unwrap();
    let mut model = data.clone();
    let f = OpenOptions::new().read(true).write(true).open(&p).unwrap();
    for len in [8192u64, 4097, 4096, 4095, 30_000, 1, 0, 12_345] {
        f.set_len(len).unwrap();
        model.resize(len as usize, 0);
        assert_eq!(f.metadata().unwrap().len(), len);
        assert_eq!(std::fs::read(&p).unwrap(), model, "after ftruncate to {len}");
        // Rewrite the start so that later grows show zeros after data.
        f.write_all_at(&data[..len.min(100) as usize], 0).unwrap();
        model[..len.min(100) as usize].copy_from_slice(&data[..len.min(100) as usize]);
    }
    drop(f);
    for len in [50_000u64, 100, 4096] {
        let c = cpath(&p);
        // SAFETY: valid C string.
        assert_eq!(
            unsafe { libc::truncate(c.as_ptr(), len as i64) },
            0,
            "truncate: {}",
            errno()
        );
        model.resize(len as usize, 0);
        assert_eq!(std::fs::read(&p).unwrap(), model, "after truncate to {len}");
    }
    let shown = unmount_and_check_source(&mut fx);
    assert_eq!(shown.get(Path::new("t")), Some(&fs_check::Entry::File(model)));
}

#[test]
fn o_trunc_and_o_excl() {
    let mut fx = Fixture::new();
    let m = fx.mnt();
    let p = m.join("f");
    std::fs::write(&p, b"long old content".repeat(1000)).unwrap();
    let mut f = OpenOptions::new().write(true).truncate(true).open(&p).unwrap();
    assert_eq!(std::fs::metadata(&p).unwrap().len(), 0);
    f.write_all(b"short").unwrap();
    drop(f);
    assert_eq!(std::fs::read(&p).unwrap(), b"short");
    let e = OpenOptions::new().write(true).create_new(true).open(&p).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
    let mut g = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(m.join("g"))
        .unwrap();
    g.write_all(b"fresh").unwrap();
    drop(g);
    let e = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(m.join("g"))
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
    assert_eq!(std::fs::read(m.join("g")).unwrap(), b"fresh");
    // O_TRUNC on a read-write open of a file another descriptor has open.
    let keep = File::open(&p).unwrap();
    OpenOptions::new()
        .read(true)
        .write(true)
        .truncate(true)
        .open(&p)
        .unwrap();
    assert_eq!(keep.metadata().unwrap().len(), 0);
    assert_eq!(std::fs::read(&p).unwrap(), b"");
    drop(keep);
    unmount_and_check_source(&mut fx);
}

#[test]
fn access_answers_from_the_mode_shown() {
    let mut fx = Fixture::new();
    let m = fx.mnt();
    let p = m.join("tool.sh");
    std::fs::write(&p, b"#!/bin/sh\necho ran\n").unwrap();
    let access = |p: &Path, mode: i32| {
        // SAFETY: a valid C string.
        if unsafe { libc::access(cpath(p).as_ptr(), mode) } == 0 {
            0
        } else {
            errno()
        }
    };
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(access(&p, libc::F_OK), 0);
    assert_eq!(access(&p, libc::R_OK | libc::W_OK), 0);
    assert_eq!(access(&p, libc::X_OK), libc::EACCES, "no execute bit");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(access(&p, libc::X_OK), 0);
    let out = Command::new(&p).output().unwrap();
    assert_eq!(out.stdout, b"ran\n", "a protected script runs from the mount");
    std::fs::create_dir(m.join("d")).unwrap();
    assert_eq!(access(&m.join("d"), libc::X_OK | libc::W_OK), 0);
    assert_eq!(access(&m.join("missing"), libc::F_OK), libc::ENOENT);
    unmount_and_check_source(&mut fx);
}

#[test]
fn chmod_and_times() {
    let mut fx = Fixture::new();
    let m = fx.mnt();
    let p = m.join("f");
    std::fs::write(&p, b"mode and times").unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
    assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o7777, 0o640);
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o604)).unwrap();
    assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o7777, 0o604);
    let times = [
        libc::timespec {
            tv_sec: 1_000_000_000,
            tv_nsec: 250,
        },
        libc::timespec {
            tv_sec: 1_234_567_890,
            tv_nsec: 123_456_789,
        },
    ];
    let c = cpath(&p);
    // SAFETY: valid C string and a two-element timespec array.
    assert_eq!(
        unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), 0) },
        0
    );
    let md = std::fs::metadata(&p).unwrap();
    assert_eq!((md.mtime(), md.mtime_nsec()), (1_234_567_890, 123_456_789));
    assert_eq!((md.atime(), md.atime_nsec()), (1_000_000_000, 250));
    // Through an open descriptor that wrote, then closed.
    let f = OpenOptions::new().write(true).open(&p).unwrap();
    f.write_all_at(b"MODE", 0).unwrap();
    f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(999_999_999))
        .unwrap();
    drop(f);
    assert_eq!(std::fs::metadata(&p).unwrap().mtime(), 999_999_999);
    assert_eq!(std::fs::read(&p).unwrap(), b"MODE and times");
    // A folder's mode too.
    std::fs::create_dir(m.join("d")).unwrap();
    std::fs::set_permissions(m.join("d"), std::fs::Permissions::from_mode(0o711)).unwrap();
    assert_eq!(std::fs::metadata(m.join("d")).unwrap().mode() & 0o7777, 0o711);
    fx.unmount();
    let md = std::fs::metadata(fx.src().join("f.rights")).unwrap();
    assert_eq!(md.mode() & 0o7777, 0o604);
    assert_eq!(md.mtime(), 999_999_999);
    fx.mount();
    assert_eq!(std::fs::metadata(&p).unwrap().mtime(), 999_999_999);
    unmount_and_check_source(&mut fx);
}

#[test]
fn symbolic_links() {
    let mut fx = Fixture::new();
    let m = fx.mnt();
    std::fs::create_dir(m.join("d")).unwrap();
    std::fs::write(m.join("d/target.txt"), b"pointed at").unwrap();
    std::os::unix::fs::symlink("d/target.txt", m.join("ln")).unwrap();
    std::os::unix::fs::symlink("d", m.join("dirlink")).unwrap();
    std::os::unix::fs::symlink("nowhere", m.join("dangling")).unwrap();
    assert_eq!(std::fs::read_link(m.join("ln")).unwrap(), Path::new("d/target.txt"));
    assert!(
        std::fs::symlink_metadata(m.join("ln"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read(m.join("ln")).unwrap(), b"pointed at");
    assert_eq!(std::fs::read(m.join("dirlink/target.txt")).unwrap(), b"pointed at");
    std::fs::write(m.join("ln"), b"written through the link").unwrap();
    assert_eq!(
        std::fs::read(m.join("d/target.txt")).unwrap(),
        b"written through the link"
    );
    assert_eq!(
        std::fs::read(m.join("dangling")).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        std::os::unix::fs::symlink("x", m.join("ln"))
            .unwrap_err()
            .raw_os_error(),
        Some(libc::EEXIST)
    );
    assert_eq!(names(&m), ["d", "dangling", "dirlink", "ln"]);
    std::fs::remove_file(m.join("dangling")).unwrap();
    // Links are stored as they are (not protected).
    assert_eq!(
        std::fs::read_link(fx.src().join("ln")).unwrap(),
        Path::new("d/target.txt")
    );
    unmount_and_check_source(&mut fx);
}

#[test]
fn hard_links_share_content() {
    let mut fx = Fixture::new();
    let m = fx.mnt();
    std::fs::create_dir(m.join("d")).unwrap();
    std::fs::write(m.join("a"), b"shared content ".repeat(400)).unwrap();
    std::fs::hard_link(m.join("a"), m.join("d/b")).unwrap();
    let (ma, mb) = (
        std::fs::metadata(m.join("a")).unwrap(),
        std::fs::metadata(m.join("d/b")).unwrap(),
    );
    assert_eq!(ma.ino(), mb.ino());
    assert_eq!(ma.nlink(), 2);
    assert_eq!(
        std::fs::read(m.join("d/b")).unwrap(),
        std::fs::read(m.join("a")).unwrap()
    );
    // Written through one name, with both open.
    let fa = OpenOptions::new().read(true).write(true).open(m.join("a")).unwrap();
    let fb = OpenOptions::new().read(true).write(true).open(m.join("d/b")).unwrap();
    fa.write_all_at(b"WRITTEN-VIA-A", 4090).unwrap();
    let mut buf = [0u8; 13];
    fb.read_exact_at(&mut buf, 4090).unwrap();
    assert_eq!(&buf, b"WRITTEN-VIA-A");
    fb.write_all_at(b"tail via b", 6000).unwrap();
    assert_eq!(fa.metadata().unwrap().len(), 6010);
    drop((fa, fb));
    let mut expected = b"shared content ".repeat(400);
    expected[4090..4103].copy_from_slice(b"WRITTEN-VIA-A");
    expected.extend_from_slice(b"tail via b");
    assert_eq!(std::fs::read(m.join("a")).unwrap(), expected);
    assert_eq!(std::fs::read(m.join("d/b")).unwrap(), expected);
    std::fs::remove_file(m.join("a")).unwrap();
    assert_eq!(std::fs::read(m.join("d/b")).unwrap(), expected);
    assert_eq!(std::fs::metadata(m.join("d/b")).unwrap().nlink(), 1);
    std::fs::hard_link(m.join("d/b"), m.join("c")).unwrap();
    fx.unmount();
    fx.mount();
    assert_eq!(std::fs::read(m.join("c")).unwrap(), expected);
    assert_eq!(
        std::fs::metadata(m.join("c")).unwrap().ino(),
        std::fs::metadata(m.join("d/b")).unwrap().ino()
    );
    unmount_and_check_source(&mut fx);
}

#[test]
fn statfs_answers() {
    let fx = Fixture::new();
    let c = cpath(&fx.mnt());
    // SAFETY: valid C string and out-pointer.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut st) }, 0, "statvfs: {}", errno());
    assert!(st.f_bsize > 0 && st.f_blocks > 0 && st.f_bavail <= st.f_blocks);
    let c = cpath(&fx.src());
    // SAFETY: valid C string and out-pointer.
    let mut src: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut src) }, 0);
    assert_eq!(st.f_namemax, src.f_namemax, "every name the source takes");
    sh_ok(&fx.mnt(), "df -P .");
}

fn sh_ok(dir: &Path, script: &str) {
    fs_support::sh(dir, script);
}

/// Whether another process gets the lock on `path` right now: `flock`
/// or `fcntl` (POSIX record lock).
fn other_process_locks(path: &Path, kind: &str) -> bool {
    let call = match kind {
        "flock" => "fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)",
        _ => "fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)",
    };
    let script = format!(
        "import fcntl, sys\nf = open(sys.argv[1], 'r+')\ntry:\n    {call}\n    print('locked')\nexcept OSError:\n    print('busy')"
    );
    let o = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    match String::from_utf8_lossy(&o.stdout).trim() {
        "locked" => true,
        "busy" => false,
        other => panic!("unexpected: {other}"),
    }
}

#[test]
fn flock_and_fcntl_locks_exclude_other_processes() {
    let fx = Fixture::new();
    let p = fx.mnt().join("lockme");
    std::fs::write(&p, b"locked file").unwrap();
    let f = OpenOptions::new().read(true).write(true).open(&p).unwrap();
    assert!(other_process_locks(&p, "flock"));
    // SAFETY: plain syscall on an open descriptor.
    assert_eq!(unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) }, 0);
    assert!(
        !other_process_locks(&p, "flock"),
        "flock did not exclude another process"
    );
    // SAFETY: as above.
    assert_eq!(unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_UN) }, 0);
    assert!(other_process_locks(&p, "flock"));

    assert!(other_process_locks(&p, "fcntl"));
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as i16;
    fl.l_whence = libc::SEEK_SET as i16;
    // SAFETY: valid descriptor and flock struct.
    assert_eq!(
        unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETLK, &fl) },
        0,
        "F_SETLK: {}",
        errno()
    );
    assert!(
        !other_process_locks(&p, "fcntl"),
        "fcntl lock did not exclude another process"
    );
    fl.l_type = libc::F_UNLCK as i16;
    // SAFETY: as above.
    assert_eq!(unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETLK, &fl) }, 0);
    assert!(other_process_locks(&p, "fcntl"));
}

/// A file of the mount is no terminal: a buffered open asks (`isatty`, a
/// TCGETS ioctl) and gets what a file of the source would answer.
#[test]
fn ioctls_are_refused_as_not_a_terminal() {
    let fx = Fixture::new();
    let p = fx.mnt().join("t");
    std::fs::write(&p, b"not a terminal").unwrap();
    let f = File::open(&p).unwrap();
    for _ in 0..2 {
        // SAFETY: a valid descriptor and a termios to fill.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let r = unsafe { libc::ioctl(f.as_raw_fd(), libc::TCGETS, &mut t) };
        assert_eq!((r, errno()), (-1, libc::ENOTTY));
        // SAFETY: a valid descriptor.
        assert_eq!(unsafe { libc::isatty(f.as_raw_fd()) }, 0);
    }
    assert_eq!(std::fs::read(&p).unwrap(), b"not a terminal");
}

#[test]
fn xattrs_are_refused_cleanly() {
    let fx = Fixture::new();
    let p = fx.mnt().join("x");
    std::fs::write(&p, b"no xattrs here").unwrap();
    let c = cpath(&p);
    let name = CString::new("user.test").unwrap();
    let mut buf = [0u8; 64];
    // ENOTSUP and EOPNOTSUPP are one value on Linux.
    for _ in 0..2 {
        // SAFETY: valid C strings and buffer.
        let r = unsafe { libc::getxattr(c.as_ptr(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        assert_eq!((r, errno()), (-1, libc::EOPNOTSUPP), "getxattr");
    }
    // SAFETY: as above.
    let r = unsafe { libc::setxattr(c.as_ptr(), name.as_ptr(), b"v".as_ptr().cast(), 1, 0) };
    assert_eq!((r, errno()), (-1, libc::EOPNOTSUPP), "setxattr");
    // SAFETY: as above.
    let r = unsafe { libc::listxattr(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    assert_eq!(r, 0);
    // SAFETY: as above.
    let r = unsafe { libc::removexattr(c.as_ptr(), name.as_ptr()) };
    assert_eq!((r, errno()), (-1, libc::EOPNOTSUPP), "removexattr");
    assert_eq!(std::fs::read(&p).unwrap(), b"no xattrs here");
}

#[test]
fn fsync_and_fdatasync_succeed() {
    let mut fx = Fixture::new();
    let m = fx.mnt();
    let mut f = File::create(m.join("s")).unwrap();
    f.write_all(b"synced ").unwrap();
    f.sync_all().unwrap();
    f.write_all(b"data").unwrap();
    f.sync_data().unwrap();
    f.sync_data().unwrap();
    std::fs::write(m.join("plain-before"), b"x").unwrap();
    File::open(&m).unwrap().sync_all().unwrap();
    std::fs::create_dir(m.join("d")).unwrap();
    File::open(m.join("d")).unwrap().sync_all().unwrap();
    drop(f);
    assert_eq!(std::fs::read(m.join("s")).unwrap(), b"synced data");
    unmount_and_check_source(&mut fx);
}

#[test]
fn rename_over_an_open_file_and_onto_other_kinds() {
    let mut fx = Fixture::new();
    let m = fx.mnt();
    std::fs::write(m.join("victim"), b"old victim content").unwrap();
    std::fs::write(m.join("new"), b"replacement").unwrap();
    let open = File::open(m.join("victim")).unwrap();
    std::fs::rename(m.join("new"), m.join("victim")).unwrap();
    let mut buf = Vec::new();
    (&open).read_to_end(&mut buf).unwrap();
    assert_eq!(
        buf, b"old victim content",
        "the open descriptor keeps the replaced file"
    );
    drop(open);
    assert_eq!(std::fs::read(m.join("victim")).unwrap(), b"replacement");
    // A file onto a folder, and a folder onto a file.
    std::fs::create_dir(m.join("d")).unwrap();
    assert_eq!(
        std::fs::rename(m.join("victim"), m.join("d"))
            .unwrap_err()
            .raw_os_error(),
        Some(libc::EISDIR)
    );
    assert_eq!(
        std::fs::rename(m.join("d"), m.join("victim"))
            .unwrap_err()
            .raw_os_error(),
        Some(libc::ENOTDIR)
    );
    assert!(m.join("d").is_dir());
    assert_eq!(std::fs::read(m.join("victim")).unwrap(), b"replacement");
    // A protected file over a plain one passed through from the source:
    // one file remains under the name, the protected one.
    std::fs::write(fx.src().join("plain"), b"plain bytes").unwrap();
    assert_eq!(std::fs::read(m.join("plain")).unwrap(), b"plain bytes");
    std::fs::rename(m.join("victim"), m.join("plain")).unwrap();
    assert_eq!(std::fs::read(m.join("plain")).unwrap(), b"replacement");
    assert_eq!(names(&m), ["d", "plain"]);
    assert!(!fx.src().join("plain").exists());
    // A name that itself ends with the suffix.
    std::fs::write(m.join("odd.rights"), b"suffix in the name").unwrap();
    assert_eq!(std::fs::read(m.join("odd.rights")).unwrap(), b"suffix in the name");
    assert!(fx.src().join("odd.rights.rights").is_file());
    assert_eq!(names(&m), ["d", "odd.rights", "plain"]);
    unmount_and_check_source(&mut fx);
}

#[test]
fn long_names_up_to_the_limit() {
    let mut fx = Fixture::new();
    let m = fx.mnt();
    let c = cpath(&m);
    // SAFETY: valid C string and out-pointer.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut st) }, 0);
    assert_eq!(st.f_namemax, 255);
    // Every length around where `NAME.rights` stops fitting.
    let mut want = Vec::new();
    for len in 247..=255 {
        let name = format!("{len}-{}", "n".repeat(len - 4));
        std::fs::write(m.join(&name), name.as_bytes()).unwrap();
        assert_eq!(std::fs::read(m.join(&name)).unwrap(), name.as_bytes());
        want.push(name);
    }
    want.sort();
    assert_eq!(names(&m), want);
    // Renamed long to long, long to short and back; linked; removed.
    let long = |c: &str| c.repeat(255);
    std::fs::rename(m.join(&want[8]), m.join(long("a"))).unwrap();
    std::fs::rename(m.join(long("a")), m.join("short")).unwrap();
    std::fs::rename(m.join("short"), m.join(long("b"))).unwrap();
    std::fs::hard_link(m.join(long("b")), m.join(long("c"))).unwrap();
    std::fs::write(m.join(long("c")), b"through the link").unwrap();
    assert_eq!(std::fs::read(m.join(long("b"))).unwrap(), b"through the link");
    std::fs::remove_file(m.join(&want[7])).unwrap();
    assert!(!m.join(&want[7]).exists());
    std::fs::create_dir(m.join(long("d"))).unwrap();
    std::fs::write(m.join(long("d")).join(long("e")), b"deep").unwrap();
    // One byte more: ENAMETOOLONG, for lookups too (not ENOENT).
    let over = m.join("o".repeat(256));
    assert_eq!(
        std::fs::write(&over, b"x").unwrap_err().raw_os_error(),
        Some(libc::ENAMETOOLONG)
    );
    assert_eq!(
        std::fs::metadata(&over).unwrap_err().raw_os_error(),
        Some(libc::ENAMETOOLONG)
    );
    assert_eq!(
        std::fs::create_dir(&over).unwrap_err().raw_os_error(),
        Some(libc::ENAMETOOLONG)
    );
    assert_eq!(
        std::fs::rename(m.join(long("b")), &over).unwrap_err().raw_os_error(),
        Some(libc::ENAMETOOLONG)
    );
    // Long names survive a remount; the source holds each once, with its
    // side file, and no side file outlives its name.
    fx.unmount();
    fx.mount();
    let mut expect: Vec<String> = want[..7].to_vec();
    expect.extend([long("b"), long("c"), long("d")]);
    expect.sort();
    assert_eq!(names(&m), expect);
    let side_files = names(&fx.src()).iter().filter(|n| n.ends_with(".name")).count();
    assert_eq!(side_files, 7, "247-248 fit with the suffix; 249-253, b and c do not");
    unmount_and_check_source(&mut fx);
}

#[test]
fn paths_up_to_path_max() {
    let mut fx = Fixture::new();
    let m = fx.mnt();
    // Folders down to a file whose path in the mount is PATH_MAX - 1
    // bytes: its source path, with the suffix, is longer than PATH_MAX.
    let mut dir = m.clone();
    while libc::PATH_MAX as usize - 1 - (dir.as_os_str().len() + 1) > 250 {
        dir.push("d".repeat(199));
        std::fs::create_dir(&dir).unwrap();
    }
    let room = libc::PATH_MAX as usize - 1 - dir.as_os_str().len() - 1;
    let file = dir.join("f".repeat(room));
    assert_eq!(file.as_os_str().len(), libc::PATH_MAX as usize - 1);
    std::fs::write(&file, b"deep down").unwrap();
    assert_eq!(std::fs::read(&file).unwrap(), b"deep down");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let moved = dir.join("g".repeat(room));
    std::fs::rename(&file, &moved).unwrap();
    assert_eq!(std::fs::read(&moved).unwrap(), b"deep down");
    assert_eq!(names(&dir), ["g".repeat(room)]);
    let over = dir.join("h".repeat(room + 1));
    assert_eq!(
        std::fs::write(&over, b"x").unwrap_err().raw_os_error(),
        Some(libc::ENAMETOOLONG)
    );
    std::fs::remove_file(&moved).unwrap();
    assert!(names(&dir).is_empty());
    std::fs::write(&file, b"again").unwrap();
    // The source path is too long to read from here: the mount reads it
    // back after a remount, from fresh folder descriptors.
    fx.unmount();
    fx.mount();
    assert_eq!(std::fs::read(&file).unwrap(), b"again");
}

#[test]
fn fifos_sockets_and_device_nodes_are_themselves() {
    let mut fx = Fixture::new();
    let m = fx.mnt();
    fs_support::sh(&m, "mkfifo -m 0640 fifo && mknod node c 1 3");
    fs_support::sh(
        &m,
        "python3 -c 'import socket; s = socket.socket(socket.AF_UNIX); s.bind(\"sock\")'",
    );
    use std::os::unix::fs::FileTypeExt;
    let ft = |n: &str| std::fs::symlink_metadata(m.join(n)).unwrap().file_type();
    assert!(ft("fifo").is_fifo() && ft("sock").is_socket() && ft("node").is_char_device());
    assert_eq!(std::fs::metadata(m.join("fifo")).unwrap().mode() & 0o7777, 0o640);
    assert_eq!(std::fs::metadata(m.join("node")).unwrap().rdev(), libc::makedev(1, 3));
    assert_eq!(names(&m), ["fifo", "node", "sock"]);
    // A FIFO carries data between two processes through the mount.
    let out = fs_support::sh(&m, "(echo through the pipe > fifo &) ; cat fifo");
    assert_eq!(out, "through the pipe\n");
    std::fs::rename(m.join("fifo"), m.join("fifo2")).unwrap();
    std::fs::remove_file(m.join("sock")).unwrap();
    assert_eq!(names(&m), ["fifo2", "node"]);
    // Stored as themselves: nothing to protect in them.
    let src = |n: &str| std::fs::symlink_metadata(fx.src().join(n)).unwrap().file_type();
    assert!(src("fifo2").is_fifo() && src("node").is_char_device());
    unmount_and_check_source(&mut fx);
}

#[test]
fn new_entries_get_exactly_the_mode_asked_for() {
    let mut fx = Fixture::new();
    let m = fx.mnt();
    fs_support::sh(
        &m,
        "umask 0 && mkdir d && mkdir -m 0751 e && mkfifo p && umask 027 && mkdir f && umask 0 && \
         python3 -c 'import os; fd = os.open(\"x\", os.O_CREAT | os.O_WRONLY, 0o151); \
         os.write(fd, b\"written through the creating descriptor\"); os.close(fd)' && \
         python3 -c 'import os; os.close(os.open(\"y\", os.O_CREAT | os.O_WRONLY, 0o4777))'",
    );
    let mode = |n: &str| std::fs::symlink_metadata(m.join(n)).unwrap().mode() & 0o7777;
    assert_eq!(
        [mode("d"), mode("e"), mode("p"), mode("f"), mode("x"), mode("y")],
        [0o777, 0o751, 0o666, 0o750, 0o151, 0o4777]
    );
    assert_eq!(
        std::fs::read(m.join("x")).unwrap(),
        b"written through the creating descriptor"
    );
    fx.unmount();
    let md = std::fs::metadata(fx.src().join("x.rights")).unwrap();
    assert_eq!(md.mode() & 0o7777, 0o151);
    fx.mount();
    unmount_and_check_source(&mut fx);
}

#[test]
fn with_allow_other_new_entries_belong_to_their_creator() {
    let mut fx = Fixture::unmounted();
    fx.allow_other = true;
    std::fs::set_permissions(fx.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(fx.src(), std::fs::Permissions::from_mode(0o777)).unwrap();
    fx.mount();
    let m = fx.mnt();
    // A folder that passes its group on (set-gid), group `daemon` (1).
    std::fs::create_dir(m.join("team")).unwrap();
    std::os::unix::fs::chown(m.join("team"), None, Some(1)).unwrap();
    std::fs::set_permissions(m.join("team"), std::fs::Permissions::from_mode(0o2777)).unwrap();
    fs_support::sh(
        &m,
        "setpriv --reuid=65534 --regid=65534 --clear-groups sh -c \
         'echo mine > f && mkdir d && mkfifo p && ln -s f l && echo shared > team/g'",
    );
    let owner = |p: &Path| {
        let md = std::fs::symlink_metadata(p).unwrap();
        (md.uid(), md.gid())
    };
    for n in ["f", "d", "p", "l"] {
        assert_eq!(owner(&m.join(n)), (65534, 65534), "{n} in the mount");
    }
    assert_eq!(owner(&m.join("team/g")), (65534, 1), "the folder's group");
    assert_eq!(std::fs::read(m.join("f")).unwrap(), b"mine\n");
    fx.unmount();
    assert_eq!(owner(&fx.src().join("f.rights")), (65534, 65534));
    assert_eq!(owner(&fx.src().join("d")), (65534, 65534));
    assert_eq!(owner(&fx.src().join("team/g.rights")), (65534, 1));
}

#[test]
fn copy_file_range_and_cp_copy_inside_the_daemon() {
    let mut fx = Fixture::new();
    let m = fx.mnt();
    let data = fs_support::pattern(3 * (1 << 20) + 12_345, 7);
    std::fs::write(m.join("from"), &data).unwrap();
    let a = File::open(m.join("from")).unwrap();
    let b = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(m.join("to"))
        .unwrap();
    let (mut off_in, mut off_out) = (100i64, 0i64);
    let mut copied = 0usize;
    loop {
        // SAFETY: two open descriptors and valid offset pointers.
        let n = unsafe { libc::copy_file_range(a.as_raw_fd(), &mut off_in, b.as_raw_fd(), &mut off_out, 1 << 30, 0) };
        assert!(n >= 0, "copy_file_range: {}", errno());
        if n == 0 {
            break;
        }
        copied += n as usize;
    }
    assert_eq!(copied, data.len() - 100);
    drop((a, b));
    assert!(
        std::fs::read(m.join("to")).unwrap() == data[100..],
        "copied bytes differ"
    );
    fs_support::sh(&m, "cp from copy && cp --reflink=auto from copy2");
    assert!(std::fs::read(m.join("copy")).unwrap() == data);
    assert!(std::fs::read(m.join("copy2")).unwrap() == data);
    unmount_and_check_source(&mut fx);
}

#[test]
fn fallocate_modes_and_mknod_of_a_file() {
    let mut fx = Fixture::new();
    let m = fx.mnt();
    let p = m.join("pre");
    std::fs::write(&p, b"x".repeat(10_000)).unwrap();
    let run = |args: &str| fs_support::sh(&m, &format!("fallocate {args} pre"));
    // Grows with zeros; KEEP_SIZE leaves the size; PUNCH_HOLE and
    // ZERO_RANGE read back as zeros.
    run("-o 10000 -l 2000");
    run("--keep-size -o 12000 -l 5000");
    assert_eq!(std::fs::metadata(&p).unwrap().len(), 12_000);
    run("--punch-hole -o 100 -l 100");
    run("--zero-range -o 1000 -l 500");
    run("--zero-range --keep-size -o 11000 -l 5000");
    assert_eq!(std::fs::metadata(&p).unwrap().len(), 12_000);
    run("--zero-range -o 11000 -l 3000");
    let mut want = b"x".repeat(10_000);
    want[100..200].fill(0);
    want[1000..1500].fill(0);
    want.resize(14_000, 0);
    assert_eq!(std::fs::read(&p).unwrap(), want);
    let f = OpenOptions::new().write(true).open(&p).unwrap();
    // SAFETY: plain syscall on an open descriptor.
    let r = unsafe { libc::fallocate(f.as_raw_fd(), libc::FALLOC_FL_COLLAPSE_RANGE, 0, 4096) };
    assert_eq!((r, errno()), (-1, libc::EOPNOTSUPP));
    drop(f);
    // mknod of a regular file makes a protected file.
    let c = cpath(&m.join("node"));
    // SAFETY: valid C string.
    assert_eq!(unsafe { libc::mknod(c.as_ptr(), libc::S_IFREG | 0o644, 0) }, 0);
    std::fs::write(m.join("node"), b"made by mknod").unwrap();
    assert_eq!(std::fs::read(m.join("node")).unwrap(), b"made by mknod");
    unmount_and_check_source(&mut fx);
}

#[test]
fn threads_write_disjoint_regions_through_their_own_descriptors() {
    let mut fx = Fixture::new();
    let p = fx.mnt().join("shared");
    std::fs::write(&p, b"").unwrap();
    const PART: usize = 3 * 4096 + 123;
    std::thread::scope(|s| {
        for t in 0..6u8 {
            let p = &p;
            s.spawn(move || {
                let f = OpenOptions::new().read(true).write(true).open(p).unwrap();
                let mine = vec![b'a' + t; PART];
                for chunk in 0..PART.div_ceil(1000) {
                    let from = chunk * 1000;
                    let to = (from + 1000).min(PART);
                    f.write_all_at(&mine[from..to], (t as usize * PART + from) as u64)
                        .unwrap();
                    let mut back = vec![0u8; to - from];
                    f.read_exact_at(&mut back, (t as usize * PART + from) as u64).unwrap();
                    assert_eq!(back, mine[from..to]);
                }
            });
        }
    });
    let got = std::fs::read(&p).unwrap();
    let want: Vec<u8> = (0..6u8).flat_map(|t| vec![b'a' + t; PART]).collect();
    assert!(got == want, "concurrent writes lost or mixed");
    unmount_and_check_source(&mut fx);
}

/// Makes `made` (a new entry) through the mount after `gone` (an entry
/// the kernel still holds through `hold`) was removed, until the source
/// file system gives `made` the number `gone` had (ext4 reuses a freed
/// number at once); returns the held descriptors, the shown path and the
/// number the mount showed for the removed entry.
fn reuse_a_held_number(
    fx: &Fixture,
    gone: impl Fn(&Path),
    hold: impl Fn(&Path) -> File,
    remove: impl Fn(&Path),
    made: impl Fn(&Path),
) -> (Vec<File>, std::path::PathBuf, u64) {
    let (m, src) = (fx.mnt(), fx.src());
    let mut held = Vec::new();
    for i in 0..200 {
        let (old, new) = (format!("old{i}"), format!("new{i}"));
        gone(&m.join(&old));
        let was = std::fs::symlink_metadata(src.join(&old)).unwrap().ino();
        let shown = std::fs::symlink_metadata(m.join(&old)).unwrap().ino();
        held.push(hold(&m.join(&old)));
        remove(&m.join(&old));
        made(&m.join(&new));
        if std::fs::symlink_metadata(src.join(&new)).unwrap().ino() == was {
            return (held, m.join(new), shown);
        }
    }
    panic!("the source file system never reused a freed inode number (the test needs ext4 or similar)");
}

/// A folder removed while a descriptor still holds it keeps its kernel
/// inode alive (a dead folder). A new folder that the source file system
/// gives the same inode number must be a folder of its own in the mount,
/// not the dead one: files and folders can be made, listed and read in it.
#[test]
fn a_new_folder_reusing_a_held_folders_inode_number_works() {
    let mut fx = Fixture::new();
    let (held, new, dead) = reuse_a_held_number(
        &fx,
        |p| std::fs::create_dir(p).unwrap(),
        |p| File::open(p).unwrap(),
        |p| std::fs::remove_dir(p).unwrap(),
        |p| std::fs::create_dir(p).unwrap(),
    );
    std::fs::write(new.join("f"), b"inside the new folder").unwrap();
    std::fs::create_dir(new.join("sub")).unwrap();
    assert_eq!(std::fs::read(new.join("f")).unwrap(), b"inside the new folder");
    assert_eq!(names(&new), ["f", "sub"]);
    assert!(std::fs::metadata(new.join("sub")).unwrap().is_dir());
    assert_ne!(dead, std::fs::metadata(&new).unwrap().ino(), "two folders, one inode");
    drop(held);
    unmount_and_check_source(&mut fx);
}

/// The same for a device node: the kernel holds a removed `/dev/null`
/// node while a descriptor is open on it; a new node for `/dev/zero` given
/// the same inode number must show `/dev/zero`, not the held inode's
/// device (the mount is `nodev`: shown, never opened).
#[test]
fn a_new_device_node_reusing_a_held_nodes_inode_number_is_its_own() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("making device nodes needs root: not run");
        return;
    }
    let mknod = |p: &Path, minor: u32| {
        // SAFETY: valid C string; no memory passed.
        let r = unsafe { libc::mknod(cpath(p).as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, minor)) };
        assert_eq!(r, 0, "mknod {}: errno {}", p.display(), errno());
    };
    let mut fx = Fixture::new();
    let (held, new, dead) = reuse_a_held_number(
        &fx,
        |p| mknod(p, 3),
        |p| {
            use std::os::unix::fs::OpenOptionsExt;
            OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_PATH)
                .open(p)
                .unwrap()
        },
        |p| std::fs::remove_file(p).unwrap(),
        |p| mknod(p, 5),
    );
    let md = std::fs::metadata(&new).unwrap();
    assert_eq!((md.rdev(), md.nlink()), (libc::makedev(1, 5), 1));
    assert_ne!(dead, md.ino(), "two nodes, one inode");
    drop(held);
    unmount_and_check_source(&mut fx);
}

/// Other file systems mounted below the source folder (tmpfs here; a
/// btrfs subvolume has its own `st_dev` too) are not shown: inode numbers
/// are only unique within one file system, and two fresh tmpfs number
/// their roots and first files alike, so the mount would show them as one
/// folder and one file. Looking them up gives EXDEV, nothing on them
/// changes, and the rest of the mount works.
#[test]
fn other_file_systems_below_the_source_are_refused() {
    struct Mounted(Vec<std::path::PathBuf>);
    impl Drop for Mounted {
        fn drop(&mut self) {
            self.0.iter().for_each(|d| tmpfs_support::unmount(d));
        }
    }
    let mut fx = Fixture::unmounted();
    let mut tmpfs = Mounted(Vec::new());
    for (dir, file) in [("a", "x"), ("b", "y")] {
        let d = fx.src().join(dir);
        std::fs::create_dir(&d).unwrap();
        if !tmpfs_support::mount(&d, "1m") {
            return;
        }
        tmpfs.0.push(d.clone());
        std::fs::write(d.join(file), file).unwrap();
    }
    fx.mount();
    let m = fx.mnt();
    std::fs::write(m.join("f"), b"on the source").unwrap();
    for p in ["a", "b", "a/x", "b/y"] {
        let e = std::fs::symlink_metadata(m.join(p)).map(|md| md.ino());
        assert_eq!(e.map_err(|e| e.raw_os_error()), Err(Some(libc::EXDEV)), "{p}");
    }
    assert_eq!(
        std::fs::write(m.join("a/z"), b"z").unwrap_err().raw_os_error(),
        Some(libc::EXDEV)
    );
    assert_eq!(
        std::fs::remove_dir(m.join("b")).unwrap_err().raw_os_error(),
        Some(libc::EXDEV)
    );
    assert_eq!(names(&m), ["a", "b", "f"], "listed, not entered");
    assert_eq!(std::fs::read(m.join("f")).unwrap(), b"on the source");
    fx.unmount();
    for (d, f) in tmpfs.0.iter().zip(["x", "y"]) {
        assert_eq!(names(d), [f]);
        assert_eq!(std::fs::read(d.join(f)).unwrap(), f.as_bytes());
    }
}

/// The pjdfstest binary (`scripts/install-deps.sh` installs it).
fn pjdfstest() -> std::path::PathBuf {
    let home = std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo/bin/pjdfstest"));
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("pjdfstest"))
        .chain(home)
        .find(|p| p.is_file())
        .expect("pjdfstest is not installed: run scripts/install-deps.sh")
}

/// Runs pjdfstest on a fresh mount (only the cases whose names contain
/// one of `only`, if any); returns the names of failed cases.
fn pjdfstest_failures(allow_other: bool, only: &[String]) -> std::collections::BTreeSet<String> {
    let mut fx = Fixture::unmounted();
    fx.allow_other = allow_other;
    // Other users must reach the mount point and enter its root.
    for d in [fx.dir.path().to_path_buf(), fx.src()] {
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    fx.mount();
    let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pjdfstest/pjdfstest.toml");
    let out = Command::new(pjdfstest())
        .arg("-c")
        .arg(&conf)
        .arg("-p")
        .arg(fx.mnt())
        .args(only)
        .current_dir(fx.mnt())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let summary = text.lines().find(|l| l.starts_with("Summary:")).unwrap_or_else(|| {
        panic!(
            "pjdfstest gave no summary: {}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    eprintln!("pjdfstest, allow_other {allow_other}: {summary}");
    assert!(!summary.contains(" 0 total"), "pjdfstest ran no case for {only:?}");
    fx.unmount();
    text.lines()
        .filter_map(|l| l.strip_suffix("FAILED"))
        .map(|l| l.trim().to_string())
        .collect()
}

/// pjdfstest (the POSIX conformance suite) on real mounts with and
/// without `--allow-other`: every failure must be in the checked-in list
/// with its reason, and every listed case must still fail.
#[test]
fn pjdfstest_fails_only_what_is_listed() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("pjdfstest needs root (it switches users and makes device nodes): not run");
        return;
    }
    let list = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pjdfstest/expected-failures.txt");
    let list = std::fs::read_to_string(list).unwrap();
    let expected: Vec<(&str, &str)> = list
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut w = l.split_whitespace();
            let (mount, name) = (w.next().unwrap(), w.next().unwrap());
            assert!(
                matches!(mount, "own" | "shared" | "both") && l.contains(" -- "),
                "malformed line (MOUNT TEST -- REASON): {l}"
            );
            (mount, name)
        })
        .collect();
    let mut problems = Vec::new();
    for (allow_other, run) in [(false, "own"), (true, "shared")] {
        let listed: std::collections::BTreeSet<String> = expected
            .iter()
            .filter(|(m, _)| *m == run || *m == "both")
            .map(|(_, n)| n.to_string())
            .collect();
        let mut failed = pjdfstest_failures(allow_other, &[]);
        // A few rename cases have failed once in a full, loaded suite run
        // and passed on every run since: a case that fails unlisted is run
        // again alone on a fresh mount, and counts only if it fails again.
        // Such cases are printed, so that they are seen and chased.
        let unlisted: Vec<String> = failed.difference(&listed).cloned().collect();
        if !unlisted.is_empty() {
            let again = pjdfstest_failures(allow_other, &unlisted);
            for f in unlisted.iter().filter(|f| !again.contains(*f)) {
                eprintln!("pjdfstest, {run}: {f} failed once, then passed alone (intermittent)");
                failed.remove(f);
            }
        }
        for f in failed.difference(&listed) {
            problems.push(format!("{run}: {f} fails and is not listed"));
        }
        for p in listed.difference(&failed) {
            problems.push(format!("{run}: {p} passes now: remove it from the list"));
        }
    }
    assert!(problems.is_empty(), "pjdfstest:\n{}", problems.join("\n"));
}
