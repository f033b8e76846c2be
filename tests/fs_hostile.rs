//! A source folder others can write to, attacked through a real mount
//! (/dev/fuse): symbolic links planted under the mount's housekeeping
//! names must never make the daemon write outside the folder.

mod fs_support;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;

use fs_support::{Fixture, pattern};

/// A journaled commit (a rewrite of committed blocks, then fsync) while a
/// link to a file outside the folder sits at the file's journal name: the
/// link is replaced, the outside file keeps its bytes, and the commit
/// lands in the protected file.
#[test]
fn a_link_at_the_journal_name_is_never_written_through() {
    let fx = Fixture::new();
    let outside = fx.dir.path().join("precious.txt");
    std::fs::write(&outside, b"must stay as it is").unwrap();
    let data = pattern(5 * 4096, 1);
    let p = fx.mnt().join("doc");
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&p)
        .unwrap();
    f.write_all(&data).unwrap();
    f.sync_all().unwrap();
    let source = fx.src().join("doc.rights");
    let id = rightsfs::format::read_header(&File::open(&source).unwrap())
        .unwrap()
        .content_id();
    let journal = fx.src().join(format!(".rightsfs/journal/{}.journal", id.to_hex()));
    std::os::unix::fs::symlink(&outside, &journal).unwrap();
    // Rewrites committed blocks: the next commit goes through the journal.
    f.write_all_at(&[7u8; 6000], 1000).unwrap();
    f.sync_all().unwrap();
    drop(f);
    assert_eq!(std::fs::read(&outside).unwrap(), b"must stay as it is");
    assert!(
        std::fs::symlink_metadata(&journal).is_err(),
        "the journal (or the link) is left behind"
    );
    let mut want = data.clone();
    want[1000..7000].fill(7);
    assert_eq!(std::fs::read(&p).unwrap(), want);
}

/// `.rightsfs` replaced by a link to another folder: the mount refuses to
/// start rather than keep its journals there.
#[test]
fn a_link_in_place_of_the_state_folder_stops_the_mount() {
    let mut fx = Fixture::unmounted();
    let elsewhere = fx.dir.path().join("elsewhere");
    std::fs::create_dir_all(elsewhere.join("journal")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, fx.src().join(".rightsfs")).unwrap();
    let cfg = rightsfs::fs::MountConfig::new(fx.src(), fx.mnt());
    let keys: std::sync::Arc<dyn rightsfs::fs::KeySource> = fx.keys.clone();
    let e = rightsfs::fs::spawn(&cfg, keys).err().expect("the mount must refuse");
    assert!(
        e.to_string().contains("link") || e.to_string().contains("directory"),
        "{e}"
    );
    assert_eq!(std::fs::read_dir(elsewhere.join("journal")).unwrap().count(), 0);
    // A real folder again: the mount starts.
    std::fs::remove_file(fx.src().join(".rightsfs")).unwrap();
    fx.mount();
    std::fs::write(fx.mnt().join("x"), b"ok").unwrap();
    assert_eq!(std::fs::read(fx.mnt().join("x")).unwrap(), b"ok");
}

/// A link planted in place of a protected file the kernel already knows
/// (here: reopened through a held `O_PATH` descriptor, as the kernel does
/// for a name it has cached) must not send the writes to the file it
/// points to, another protected file of the same user outside the folder.
#[test]
fn a_link_in_place_of_a_protected_file_is_never_written_through() {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let fx = Fixture::new();
    std::fs::write(fx.mnt().join("victim"), pattern(3 * 4096, 2)).unwrap();
    let elsewhere = fx.dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let victim = elsewhere.join("victim.rights");
    std::fs::rename(fx.src().join("victim.rights"), &victim).unwrap();
    let before = std::fs::read(&victim).unwrap();
    std::fs::write(fx.mnt().join("x"), b"an ordinary file").unwrap();
    let held = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(fx.mnt().join("x"))
        .unwrap();

    // The attack: x.rights becomes a link to the victim.
    std::fs::remove_file(fx.src().join("x.rights")).unwrap();
    std::os::unix::fs::symlink(&victim, fx.src().join("x.rights")).unwrap();
    let reopened = OpenOptions::new()
        .read(true)
        .write(true)
        .open(format!("/proc/self/fd/{}", held.as_raw_fd()));
    if let Ok(mut f) = reopened {
        let _ = f.write_all(&[0x55; 5000]);
        let _ = f.sync_all();
        panic!("the file was opened through the planted link");
    }
    assert_eq!(std::fs::read(&victim).unwrap(), before, "the victim was written");
}

/// Everything in `dir` (names, kinds, modes, bytes), to see that nothing
/// there changed.
fn snapshot(dir: &std::path::Path) -> Vec<(String, u32, Vec<u8>)> {
    use std::os::unix::fs::MetadataExt;
    let mut all: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let md = std::fs::symlink_metadata(e.path()).unwrap();
            let bytes = if md.is_file() {
                std::fs::read(e.path()).unwrap()
            } else {
                Vec::new()
            };
            (e.file_name().to_string_lossy().into_owned(), md.mode(), bytes)
        })
        .collect();
    all.sort();
    all
}

/// A folder the mount knows (`sub`, held open as a process's working
/// folder would be, so the kernel keeps asking the daemon about names in
/// it) is replaced in the source by a link, `target(fixture folder)`.
/// Every kind of request made in it through the mount fails, and the
/// folder the link leads to (with a protected file, a plain file and a
/// folder in it) is left exactly as it was.
fn a_folder_replaced_by_a_link(target: fn(&std::path::Path) -> std::path::PathBuf) {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let fx = Fixture::new();
    let outside = fx.dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(fx.mnt().join("victim"), pattern(3 * 4096, 3)).unwrap();
    std::fs::rename(fx.src().join("victim.rights"), outside.join("old.rights")).unwrap();
    std::fs::write(outside.join("plain.txt"), b"plain").unwrap();
    std::fs::create_dir(outside.join("folder")).unwrap();
    std::fs::write(fx.mnt().join("mine"), b"mine").unwrap();
    std::fs::create_dir(fx.mnt().join("sub")).unwrap();
    std::fs::write(fx.mnt().join("sub/old"), b"inside").unwrap();
    let held = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(fx.mnt().join("sub"))
        .unwrap();

    // The attack: `sub` moves away, a link takes its name.
    std::fs::rename(fx.src().join("sub"), fx.src().join("moved")).unwrap();
    std::os::unix::fs::symlink(target(fx.dir.path()), fx.src().join("sub")).unwrap();
    let led_to = std::fs::canonicalize(fx.src().join("sub")).unwrap();
    let before = snapshot(&led_to);
    let at = |name: &str| std::path::PathBuf::from(format!("/proc/self/fd/{}/{name}", held.as_raw_fd()));
    let mut done = Vec::new();
    let mut tried = |what: &str, r: std::io::Result<()>| {
        if r.is_ok() {
            done.push(what.to_string());
        }
    };
    tried("create", std::fs::write(at("x"), b"new"));
    tried("read", std::fs::read(at("old")).map(drop));
    tried("read a plain file", std::fs::read(at("plain.txt")).map(drop));
    tried("stat", std::fs::symlink_metadata(at("plain.txt")).map(drop));
    tried("list", std::fs::read_dir(at(".")).map(drop));
    tried("mkdir", std::fs::create_dir(at("d")));
    tried("symlink", std::os::unix::fs::symlink("t", at("l")));
    tried("unlink", std::fs::remove_file(at("plain.txt")));
    tried("unlink a protected file", std::fs::remove_file(at("old")));
    tried("rmdir", std::fs::remove_dir(at("folder")));
    tried("rename", std::fs::rename(at("plain.txt"), at("renamed")));
    tried("rename into it", std::fs::rename(fx.mnt().join("mine"), at("mine")));
    tried(
        "chmod",
        std::fs::set_permissions(at("plain.txt"), PermissionsExt::from_mode(0o777)),
    );
    let fifo = std::ffi::CString::new(at("fifo").into_os_string().into_encoded_bytes()).unwrap();
    // SAFETY: a valid C string.
    tried(
        "mkfifo",
        match unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) } {
            0 => Ok(()),
            _ => Err(std::io::Error::last_os_error()),
        },
    );
    assert_eq!(snapshot(&led_to), before, "the folder the link leads to changed");
    assert!(done.is_empty(), "done through the link: {done:?}");
    drop(held);
    // The moved folder still holds what was written before the attack.
    assert_eq!(std::fs::read(fx.mnt().join("moved/old")).unwrap(), b"inside");
    assert_eq!(std::fs::read(fx.mnt().join("mine")).unwrap(), b"mine");
}

/// A link to another of the user's folders, by absolute path.
#[test]
fn a_folder_replaced_by_a_link_elsewhere_is_never_followed() {
    a_folder_replaced_by_a_link(|d| d.join("outside"));
}

/// A relative link climbing out of the source folder with `..`.
#[test]
fn a_folder_replaced_by_a_link_climbing_out_is_never_followed() {
    a_folder_replaced_by_a_link(|_| "../outside".into());
}

/// A link back up (`..`): within the source folder, but not the folder
/// the mount knows by that name.
#[test]
fn a_folder_replaced_by_a_link_to_its_parent_is_never_followed() {
    a_folder_replaced_by_a_link(|_| "..".into());
}

/// The source folder itself, swapped for a link after the mount started
/// (by someone who can write the folder above it): the mount keeps
/// working in the folder it mounted, reached through its descriptor, and
/// writes nothing where the link points.
#[test]
fn the_source_folder_replaced_by_a_link_is_never_followed() {
    let fx = Fixture::new();
    std::fs::create_dir(fx.mnt().join("sub")).unwrap();
    let outside = fx.dir.path().join("outside");
    std::fs::create_dir_all(outside.join("sub")).unwrap();
    std::fs::create_dir(outside.join(".rightsfs")).unwrap();
    let moved = fx.dir.path().join("moved");
    std::fs::rename(fx.src(), &moved).unwrap();
    std::os::unix::fs::symlink(&outside, fx.src()).unwrap();
    let mut f = File::create(fx.mnt().join("sub/new")).unwrap();
    f.write_all(&pattern(10_000, 4)).unwrap();
    f.sync_all().unwrap();
    drop(f);
    std::fs::write(fx.mnt().join("top"), b"top").unwrap();
    std::fs::create_dir(fx.mnt().join("sub/d")).unwrap();
    std::fs::rename(fx.mnt().join("top"), fx.mnt().join("sub/top")).unwrap();
    let found: Vec<_> = walkdir(&outside);
    assert_eq!(found, vec![".rightsfs", "sub"], "written where the link points");
    assert!(moved.join("sub/new.rights").is_file());
    assert!(moved.join("sub/top.rights").is_file());
    assert_eq!(std::fs::read(fx.mnt().join("sub/new")).unwrap(), pattern(10_000, 4));
}

/// Every path below `dir`, relative to it, sorted.
fn walkdir(dir: &std::path::Path) -> Vec<String> {
    let mut all = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            all.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            if std::fs::symlink_metadata(&p).unwrap().is_dir() {
                todo.push(p);
            }
        }
    }
    all.sort();
    all
}

/// The index files of header facts the mount keeps in `.rightsfs/facts`.
fn facts_files(fx: &Fixture) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(fx.src().join(".rightsfs/facts"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.to_string_lossy().ends_with(".new"))
        .collect();
    v.sort();
    v
}

/// Layout of an index file (`src/fs/facts_index.rs`): a 20-byte head,
/// 73-byte entries, a 32-byte HMAC.
const FACTS_HEAD: usize = 20;
const FACTS_ENTRY: usize = 73;
/// Offsets inside an entry: the inode, the ctime seconds, the data offset.
const AT_INO: usize = 0;
const AT_CTIME: usize = 28;
const AT_OFFSET: usize = 40;

/// Files of several sizes made through the mount, then a fresh mount that
/// `stat`s them all (so the mount learns their headers and indexes them
/// when it ends).
fn indexed_tree() -> (Fixture, Vec<(String, usize)>) {
    let mut fx = Fixture::new();
    let files: Vec<(String, usize)> = [0usize, 1, 100, 4096, 70_000]
        .iter()
        .enumerate()
        .map(|(i, &n)| (format!("f{i}"), n))
        .collect();
    for (name, n) in &files {
        std::fs::write(fx.mnt().join(name), pattern(*n, 3)).unwrap();
    }
    fx.unmount();
    fx.mount();
    for (name, n) in &files {
        assert_eq!(std::fs::metadata(fx.mnt().join(name)).unwrap().len(), *n as u64);
    }
    fx.unmount();
    assert!(!facts_files(&fx).is_empty(), "no header facts index was written");
    (fx, files)
}

/// Sizes seen through a fresh mount, and the bytes of each file.
fn check_sizes(fx: &mut Fixture, files: &[(String, usize)]) {
    fx.mount();
    for (name, n) in files {
        let p = fx.mnt().join(name);
        assert_eq!(std::fs::metadata(&p).unwrap().len(), *n as u64, "size of {name}");
        assert_eq!(std::fs::read(&p).unwrap(), pattern(*n, 3), "bytes of {name}");
    }
    fx.unmount();
}

/// Another user rewrites the mount's index of header facts to claim other
/// block offsets (so other plaintext sizes) for every file, without the
/// device's key: the index is refused as a whole and every size and byte
/// stays right.
#[test]
fn a_forged_facts_index_changes_no_size() {
    let (mut fx, files) = indexed_tree();
    forge_offsets(&fx);
    check_sizes(&mut fx, &files);
}

/// Moves every entry's data offset in the index files 512 bytes earlier,
/// without the key.
fn forge_offsets(fx: &Fixture) {
    for p in facts_files(fx) {
        let mut b = std::fs::read(&p).unwrap();
        let entries = (b.len() - FACTS_HEAD - 32) / FACTS_ENTRY;
        for i in 0..entries {
            let at = FACTS_HEAD + i * FACTS_ENTRY + AT_OFFSET;
            let off = u64::from_be_bytes(b[at..at + 8].try_into().unwrap());
            b[at..at + 8].copy_from_slice(&(off - 512).to_be_bytes());
        }
        std::fs::write(&p, b).unwrap();
    }
}

/// The same forged index, met by a walk: a listing carries every entry's
/// attributes (`readdirplus`), and the `stat`s that follow it are answered
/// from them; every size there is still the file's own.
#[test]
fn a_forged_facts_index_changes_no_size_in_a_listing() {
    let (mut fx, files) = indexed_tree();
    forge_offsets(&fx);
    fx.mount();
    let mut seen: Vec<(String, u64)> = std::fs::read_dir(fx.mnt())
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().starts_with('f'))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    seen.sort();
    let want: Vec<(String, u64)> = files.iter().map(|(n, len)| (n.clone(), *len as u64)).collect();
    assert_eq!(seen, want);
    fx.unmount();
}

/// An authentic entry replayed for a file that has since changed (here
/// made with the device's own key, as an old index of this device would
/// be, for the file's inode but an earlier ctime and another geometry):
/// the entry does not match the file's ctime and is not used.
#[test]
fn a_replayed_facts_entry_for_an_older_version_is_not_used() {
    use rightsfs::fs::KeySource;
    let (mut fx, files) = indexed_tree();
    let key = fx.keys.facts_index_key().unwrap();
    for p in facts_files(&fx) {
        let mut b = std::fs::read(&p).unwrap();
        let body = b.len() - 32;
        for i in 0..(body - FACTS_HEAD) / FACTS_ENTRY {
            let e = FACTS_HEAD + i * FACTS_ENTRY;
            assert_ne!(u64::from_be_bytes(b[e + AT_INO..e + AT_INO + 8].try_into().unwrap()), 0);
            let ctime = i64::from_be_bytes(b[e + AT_CTIME..e + AT_CTIME + 8].try_into().unwrap());
            b[e + AT_CTIME..e + AT_CTIME + 8].copy_from_slice(&(ctime - 1).to_be_bytes());
            let off = u64::from_be_bytes(b[e + AT_OFFSET..e + AT_OFFSET + 8].try_into().unwrap());
            b[e + AT_OFFSET..e + AT_OFFSET + 8].copy_from_slice(&(off - 512).to_be_bytes());
        }
        let tag = rightsfs::crypto::hmac_sha256(key.as_ref(), &[&b[..body]]);
        b[body..].copy_from_slice(&tag);
        std::fs::write(&p, b).unwrap();
    }
    check_sizes(&mut fx, &files);
}

/// With an index in place: sizes stay right after a rename, a save
/// through the mount and a file replaced from outside the mount, in the
/// same mount and after a fresh one.
#[test]
fn indexed_sizes_follow_renames_saves_and_outside_edits() {
    let (mut fx, mut files) = indexed_tree();
    fx.mount();
    std::fs::rename(fx.mnt().join("f2"), fx.mnt().join("moved")).unwrap();
    files[2].0 = "moved".into();
    std::fs::write(fx.mnt().join("f3"), pattern(9000, 3)).unwrap();
    files[3].1 = 9000;
    // From outside: another protected file's bytes written over f1's.
    std::fs::copy(fx.src().join("f4.rights"), fx.src().join("f1.rights")).unwrap();
    files[1].1 = 70_000;
    for (name, n) in &files {
        assert_eq!(
            std::fs::metadata(fx.mnt().join(name)).unwrap().len(),
            *n as u64,
            "size of {name}"
        );
    }
    fx.unmount();
    check_sizes(&mut fx, &files);
    check_sizes(&mut fx, &files);
}
