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
