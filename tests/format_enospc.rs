//! A full disk under a protected file: the failing write reports ENOSPC,
//! nothing already committed is harmed, and the file reopens intact.
//! Uses a real size-limited tmpfs, which needs root (CI runs as root).

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

mod tmpfs_support;

use rightsfs::crypto::{ContentKey, DeviceKeyPair, ServerKemSecret};
use rightsfs::format::{DEFAULT_BLOCK_SIZE, FileHeader, FormatError, ProtectedFile};
use rightsfs::policy::{ContentId, Email, Policy, PublishingLicence, PublishingLicenceBody, now};

/// A tmpfs of `size` mounted on a temp dir, unmounted on drop.
struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        tmpfs_support::mount(dir.path(), size).then_some(Self { dir })
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        tmpfs_support::unmount(self.dir.path());
    }
}

fn header(cek: &ContentKey) -> FileHeader {
    let device = DeviceKeyPair::generate().unwrap();
    let kem = ServerKemSecret::generate();
    let id = ContentId::generate();
    let body = PublishingLicenceBody {
        version: 1,
        content_id: id,
        server_url: "http://127.0.0.1:9".into(),
        server_key: kem.public().0,
        owner_device_key: device.public().to_der(),
        policy: Policy::owner_only(Email::parse("alice@example.com").unwrap(), 7),
        wrapped_key: kem.public().wrap(cek, &id.0).0.to_vec(),
        created_at: now(),
    };
    FileHeader::new(
        PublishingLicence::sign(&body, &device).unwrap(),
        cek,
        DEFAULT_BLOCK_SIZE,
    )
    .unwrap()
}

fn rw(p: &Path) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(p)
        .unwrap()
}

fn read_all(pf: &ProtectedFile) -> Vec<u8> {
    let mut v = vec![0u8; pf.len() as usize];
    assert_eq!(pf.read_at(&mut v, 0).unwrap(), v.len());
    v
}

fn is_enospc(e: &FormatError) -> bool {
    matches!(e, FormatError::Io(io) if io.raw_os_error() == Some(libc::ENOSPC))
}

#[test]
fn full_disk_reports_enospc_and_keeps_committed_content() {
    let Some(fs) = SmallFs::mount("1m") else { return };
    let root = fs.path();
    let journal = rightsfs::dirfd::Dir::create_private(&root.join(".rightsfs/journal")).unwrap();
    let journal = std::sync::Arc::new(rightsfs::format::JournalDir::new(journal).unwrap());
    // A mount's journal folder that keeps tag tables of over 8 blocks out
    // of memory, in files of its own.
    let spilling = rightsfs::dirfd::Dir::create_private(&root.join(".rightsfs/spilling")).unwrap();
    let spilling = std::sync::Arc::new(
        rightsfs::format::JournalDir::new(spilling)
            .unwrap()
            .spilling_tags_beyond(8 * 16),
    );
    let path = root.join("doc.rights");
    let cek = ContentKey::generate();
    let mut pf = ProtectedFile::create(rw(&path), header(&cek), &cek)
        .unwrap()
        .with_journal(&journal);
    let committed: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    pf.write_at(&committed, 0).unwrap();
    pf.sync().unwrap();

    // Fill the rest of the disk with another file.
    let filler = root.join("filler");
    let chunk = vec![7u8; 64 * 1024];
    let f = rw(&filler);
    let mut off = 0u64;
    while std::os::unix::fs::FileExt::write_all_at(&f, &chunk, off).is_ok() {
        off += chunk.len() as u64;
    }

    // Appending fails cleanly with ENOSPC; what was there reads the same.
    let err = pf.write_at(&[1u8; 300_000], committed.len() as u64).unwrap_err();
    assert!(is_enospc(&err), "expected ENOSPC, got {err:?}");
    assert_eq!(err.errno(), libc::ENOSPC);
    assert_eq!(read_all(&pf), committed);

    // Rewriting committed data needs journal space: the commit fails with
    // ENOSPC and changes nothing on disk.
    pf.write_at(b"rewritten", 10).unwrap();
    let err = pf.sync().unwrap_err();
    assert!(is_enospc(&err), "expected ENOSPC, got {err:?}");
    drop(pf);
    let (pf, _) = ProtectedFile::open_journaled(rw(&path), &cek, &journal).unwrap();
    assert_eq!(read_all(&pf), committed);
    drop(pf);

    // Reading needs no room: a tag table that would leave memory for a
    // file of its own stays in memory while the disk is full.
    let (pf, _) = ProtectedFile::open_journaled(rw(&path), &cek, &spilling).unwrap();
    assert_eq!(read_all(&pf), committed);
    drop(pf);

    // With space again, writing works and persists.
    drop(f);
    std::fs::remove_file(&filler).unwrap();
    let (mut pf, _) = ProtectedFile::open_journaled(rw(&path), &cek, &journal).unwrap();
    pf.write_at(b"rewritten", 10).unwrap();
    pf.sync().unwrap();
    drop(pf);
    let mut want = committed.clone();
    want[10..19].copy_from_slice(b"rewritten");
    assert_eq!(read_all(&ProtectedFile::open(rw(&path), &cek).unwrap()), want);
}
