//! Unit and property tests of the format against a plain `Vec<u8>` model.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::sync::OnceLock;

use proptest::prelude::*;

use super::*;
use crate::crypto::{ContentKey, DeviceKeyPair, ServerKemSecret, ServerSigningKey, WriterKey};
use crate::policy::{ContentId, DeviceCertificate, Email, Policy, PublishingLicence, PublishingLicenceBody, now};

fn device() -> &'static DeviceKeyPair {
    static D: OnceLock<DeviceKeyPair> = OnceLock::new();
    D.get_or_init(|| DeviceKeyPair::generate().unwrap())
}

/// A header for a fresh file, signed by a test owner device.
pub(crate) fn new_header(cek: &ContentKey, block_size: u32) -> FileHeader {
    FileHeader::new(
        PublishingLicence::sign(&licence_body(cek), device()).unwrap(),
        cek,
        block_size,
    )
    .unwrap()
}

/// A new file's publishing licence naming the test owner device.
fn licence_body(cek: &ContentKey) -> PublishingLicenceBody {
    let id = ContentId::generate();
    let kem = ServerKemSecret::generate();
    PublishingLicenceBody {
        version: 1,
        content_id: id,
        server_url: "http://127.0.0.1:9".into(),
        server_key: kem.public().0,
        owner_device_key: device().public().to_der(),
        policy: Policy::owner_only(Email::parse("alice@example.com").unwrap(), 7),
        wrapped_key: kem.public().wrap(cek, &id.0).0.to_vec(),
        created_at: now(),
    }
}

/// The test server's signing key: certifies the test writers.
pub(crate) fn test_server() -> &'static ServerSigningKey {
    static S: OnceLock<ServerSigningKey> = OnceLock::new();
    S.get_or_init(ServerSigningKey::generate)
}

/// The owner of every [`new_header`] file, certified by [`test_server`].
pub(crate) fn owner_writer() -> Writer {
    static K: OnceLock<Writer> = OnceLock::new();
    K.get_or_init(|| {
        let key = WriterKey::generate();
        let cert = DeviceCertificate {
            account: Email::parse("alice@example.com").unwrap(),
            device_id: "alice-laptop".into(),
            key: key.public(),
            issued_at: now() - 3600,
            not_after: now() + 30 * 86_400,
        }
        .sign(test_server());
        Writer::new(key, cert, None).unwrap()
    })
    .clone()
}

pub(crate) fn rw(path: &std::path::Path) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .unwrap()
}

fn read_all(pf: &ProtectedFile) -> Vec<u8> {
    let mut v = vec![0u8; pf.len() as usize];
    assert_eq!(pf.read_at(&mut v, 0).unwrap(), v.len());
    v
}

/// A protected file with `content`, closed and committed; returns its key.
fn make(path: &std::path::Path, content: &[u8], bs: u32) -> ContentKey {
    let cek = ContentKey::generate();
    let fresh = Fresh::signed(new_header(&cek, bs), &cek, Some(owner_writer())).unwrap();
    let mut pf = ProtectedFile::create_from(rw(path), fresh).unwrap();
    pf.write_at(content, 0).unwrap();
    pf.sync().unwrap();
    cek
}

#[derive(Clone, Debug)]
enum Op {
    Write { off: u64, data: Vec<u8> },
    Truncate(u64),
    Read { off: u64, len: usize },
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u64..6000, prop::collection::vec(any::<u8>(), 0..3000)).prop_map(|(off, data)| Op::Write { off, data }),
        1 => (0u64..7000).prop_map(Op::Truncate),
        2 => (0u64..7000, 0usize..4000).prop_map(|(off, len)| Op::Read { off, len }),
        1 => Just(Op::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_ops_match_a_vec_model(ops in prop::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.rights");
        let cek = ContentKey::generate();
        // Small blocks so that offsets straddle many block boundaries.
        let mut pf = ProtectedFile::create(rw(&path), new_header(&cek, 512), &cek).unwrap();
        let mut model: Vec<u8> = Vec::new();
        for op in ops {
            match op {
                Op::Write { off, data } => {
                    pf.write_at(&data, off).unwrap();
                    if !data.is_empty() {
                        let end = off as usize + data.len();
                        if model.len() < end { model.resize(end, 0); }
                        model[off as usize..end].copy_from_slice(&data);
                    }
                }
                Op::Truncate(n) => { pf.set_len(n).unwrap(); model.resize(n as usize, 0); }
                Op::Read { off, len } => {
                    let mut buf = vec![0u8; len];
                    let n = pf.read_at(&mut buf, off).unwrap();
                    let want = model.get(off as usize..).map(|s| &s[..s.len().min(len)]).unwrap_or(&[]);
                    prop_assert_eq!(&buf[..n], want);
                    // The mount's read, into a buffer of its own, agrees.
                    let owned = pf.read_owned(off, len).unwrap();
                    prop_assert_eq!(&owned[..], want);
                }
                Op::Reopen => { pf.sync().unwrap(); drop(pf); pf = ProtectedFile::open(rw(&path), &cek).unwrap(); }
            }
            prop_assert_eq!(pf.len(), model.len() as u64);
            prop_assert_eq!(read_all(&pf), model.clone());
        }
        pf.sync().unwrap();
        drop(pf);
        let pf = ProtectedFile::open(rw(&path), &cek).unwrap();
        prop_assert_eq!(read_all(&pf), model);
        let size = std::fs::metadata(&path).unwrap().len();
        prop_assert_eq!(pf.header().plaintext_len(size).unwrap(), pf.len());
    }
}

#[test]
fn large_writes_use_parallel_path_and_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.rights");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 + i / 4096) as u8).collect();
    let cek = make(&path, &data, DEFAULT_BLOCK_SIZE);
    let pf = ProtectedFile::open(rw(&path), &cek).unwrap();
    assert_eq!(read_all(&pf), data);
    let mut mid = vec![0u8; 100_000];
    pf.read_at(&mut mid, 1_234_567).unwrap();
    assert_eq!(mid, data[1_234_567..1_334_567]);
    // Split across cores too, from mid-block to past the end.
    let owned = pf.read_owned(1_234_567, 2_000_000).unwrap();
    assert_eq!(&owned[..], &data[1_234_567..]);
}

/// Why a damaged file does not open for a reader that checks writers.
fn open_err(path: &std::path::Path, cek: &ContentKey) -> FormatError {
    ProtectedFile::open_verified(rw(path), cek, &super::Verifier::new(test_server().verifying_key()))
        .expect_err("tampered file opened")
}

fn corrupt(path: &std::path::Path, at: u64) {
    let f = rw(path);
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, at).unwrap();
    f.write_all_at(&[b[0] ^ 0x01], at).unwrap();
}

#[test]
fn every_header_and_state_byte_is_protected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.rights");
    let cek = make(&path, b"hello world", 512);
    let clean = std::fs::read(&path).unwrap();
    let data_offset = read_header(&rw(&path)).unwrap().geometry.data_offset;
    for at in 0..data_offset {
        std::fs::write(&path, &clean).unwrap();
        corrupt(&path, at);
        let _ = open_err(&path, &cek);
    }
}

#[test]
fn distinct_errors_for_distinct_damage() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.rights");
    let content: Vec<u8> = (0..512 * 4 + 100).map(|i| i as u8).collect();
    let cek = make(&path, &content, 512);
    let clean = std::fs::read(&path).unwrap();
    let g = read_header(&rw(&path)).unwrap().geometry;
    let stride = g.stride();
    let reset = || std::fs::write(&path, &clean).unwrap();

    // Blocks are authenticated when read: the file opens, the bad block
    // (and only it) fails, naming its index.
    corrupt(&path, g.block_offset(1) + 20);
    let pf = ProtectedFile::open(rw(&path), &cek).unwrap();
    let mut buf = vec![0u8; content.len()];
    assert!(matches!(
        pf.read_at(&mut buf, 0),
        Err(FormatError::BlockCorrupt { index: 1 })
    ));
    assert_eq!(pf.read_at(&mut buf[..512], 0).unwrap(), 512);
    assert!(pf.read_at(&mut buf[..512], 1024).is_ok());
    drop(pf);
    // A flipped tag also breaks the commitment, so open already says which.
    reset();
    corrupt(&path, g.block_offset(2) + stride - 1);
    assert!(matches!(open_err(&path, &cek), FormatError::BlockCorrupt { index: 2 }));

    reset();
    let mut swapped = clean.clone();
    let (a, b) = (g.block_offset(0) as usize, g.block_offset(2) as usize);
    let blk0 = clean[a..a + stride as usize].to_vec();
    swapped.copy_within(b..b + stride as usize, a);
    swapped[b..b + stride as usize].copy_from_slice(&blk0);
    std::fs::write(&path, &swapped).unwrap();
    assert!(matches!(open_err(&path, &cek), FormatError::BlockMoved { .. }));

    reset();
    let f = rw(&path);
    f.set_len(g.block_offset(3)).unwrap();
    assert!(matches!(open_err(&path, &cek), FormatError::Truncated { .. }));

    reset();
    let mut appended = clean.clone();
    appended.extend_from_slice(&clean[a..a + stride as usize]);
    std::fs::write(&path, &appended).unwrap();
    assert!(matches!(open_err(&path, &cek), FormatError::TrailingData { .. }));

    // Replay: keep block 1 of this version, write a new version, put it back.
    reset();
    let old_block1 = clean[g.block_offset(1) as usize..g.block_offset(2) as usize].to_vec();
    let mut pf = ProtectedFile::open(rw(&path), &cek)
        .unwrap()
        .with_writer(owner_writer());
    pf.write_at(b"new bytes in block one", 600).unwrap();
    pf.sync().unwrap();
    drop(pf);
    let f = rw(&path);
    f.write_all_at(&old_block1, g.block_offset(1)).unwrap();
    assert!(matches!(open_err(&path, &cek), FormatError::StaleBlock));

    reset();
    assert!(matches!(
        open_err(&path, &ContentKey::generate()),
        FormatError::WrongKey
    ));

    let mut v2 = clean.clone();
    v2[9] = 1;
    std::fs::write(&path, &v2).unwrap();
    assert!(matches!(open_err(&path, &cek), FormatError::UnsupportedVersion(1)));

    std::fs::write(&path, b"").unwrap();
    assert!(matches!(open_err(&path, &cek), FormatError::Empty));
    std::fs::write(&path, b"just some text file").unwrap();
    assert!(matches!(open_err(&path, &cek), FormatError::NotProtected));
    std::fs::write(&path, &clean[..20]).unwrap();
    assert!(matches!(open_err(&path, &cek), FormatError::HeaderTruncated));
}

#[test]
fn garbage_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g");
    let cek = ContentKey::generate();
    let mut seed = 0x1234_5678u64;
    for len in [1usize, 7, 13, 14, 15, 64, 300, 5000] {
        let mut v: Vec<u8> = (0..len)
            .map(|_| {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                (seed >> 33) as u8
            })
            .collect();
        std::fs::write(&path, &v).unwrap();
        assert!(ProtectedFile::open(rw(&path), &cek).is_err());
        v[..MAGIC.len().min(len)].copy_from_slice(&MAGIC[..MAGIC.len().min(len)]);
        std::fs::write(&path, &v).unwrap();
        assert!(ProtectedFile::open(rw(&path), &cek).is_err());
    }
}

#[test]
fn empty_file_and_shrink_to_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.rights");
    let cek = make(&path, b"", 4096);
    let mut pf = ProtectedFile::open(rw(&path), &cek).unwrap();
    assert!(pf.is_empty());
    pf.write_at(&[1u8; 10_000], 0).unwrap();
    pf.set_len(0).unwrap();
    pf.write_at(b"x", 5000).unwrap();
    pf.sync().unwrap();
    drop(pf);
    let pf = ProtectedFile::open(rw(&path), &cek).unwrap();
    let mut want = vec![0u8; 5001];
    want[5000] = b'x';
    assert_eq!(read_all(&pf), want);
}

#[test]
fn unflushed_writes_are_reported_not_misread() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("u.rights");
    let cek = make(&path, &[7u8; 3000], 512);
    let mut pf = ProtectedFile::open(rw(&path), &cek).unwrap();
    pf.write_at(&[9u8; 100], 10).unwrap();
    // Simulate a crash: the state record is never committed.
    std::mem::forget(pf);
    assert!(ProtectedFile::open(rw(&path), &cek).is_err());
}

mod journaled {
    use std::sync::Arc;

    use super::*;
    use crate::dirfd::Dir;
    use crate::format::store::CRASH_AFTER_JOURNAL;

    fn journal_dir(path: &std::path::Path) -> Arc<JournalDir> {
        Arc::new(JournalDir::new(Dir::create_private(path).unwrap()).unwrap())
    }

    /// The journal folder as the next writer finds it after this one died
    /// (`other_boot`: with the machine).
    fn after_crash(jd: &JournalDir, path: &std::path::Path, other_boot: bool) -> Arc<JournalDir> {
        Arc::new(jd.after_crash(Dir::open(path).unwrap(), other_boot))
    }

    /// A new journaled file `f.rights` beside its journal folder `journal`.
    fn journaled_file() -> (tempfile::TempDir, Arc<JournalDir>, ContentKey, ProtectedFile) {
        let dir = tempfile::tempdir().unwrap();
        let jd = journal_dir(&dir.path().join("journal"));
        let cek = ContentKey::generate();
        let pf = ProtectedFile::create(rw(&dir.path().join("f.rights")), new_header(&cek, 512), &cek)
            .unwrap()
            .with_journal(&jd);
        (dir, jd, cek, pf)
    }

    fn reopen(path: &std::path::Path, cek: &ContentKey, jd: &Arc<JournalDir>) -> (ProtectedFile, Recovery) {
        ProtectedFile::open_journaled(rw(path), cek, jd).expect("journaled open recovers")
    }

    #[derive(Clone, Debug)]
    enum JOp {
        Write { off: u64, data: Vec<u8> },
        Truncate(u64),
        Flush,
        Sync,
        Crash,
    }

    fn jop() -> impl Strategy<Value = JOp> {
        prop_oneof![
            5 => (0u64..6000, prop::collection::vec(any::<u8>(), 1..2500)).prop_map(|(off, data)| JOp::Write { off, data }),
            1 => (0u64..7000).prop_map(JOp::Truncate),
            2 => Just(JOp::Flush),
            1 => Just(JOp::Sync),
            2 => Just(JOp::Crash),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// A process killed at any point (no destructor, no further
        /// syscalls) leaves a file that opens and holds exactly what it held
        /// at its last commit.
        /// Half the cases keep tag tables of more than four blocks out of
        /// memory (`store/tag_table.rs`), so that spilled tables go through
        /// every write, cut, commit, crash and recovery too.
        #[test]
        fn killed_process_leaves_last_commit(ops in prop::collection::vec(jop(), 1..40), spill in any::<bool>()) {
            let dir = tempfile::tempdir().unwrap();
            let jdir = dir.path().join("journal");
            let mut jd = if spill {
                Arc::new(JournalDir::new(Dir::create_private(&jdir).unwrap()).unwrap().spilling_tags_beyond(4 * crate::crypto::TAG_LEN))
            } else {
                journal_dir(&jdir)
            };
            let path = dir.path().join("f.rights");
            let cek = ContentKey::generate();
            let mut pf = ProtectedFile::create(rw(&path), new_header(&cek, 512), &cek).unwrap().with_journal(&jd);
            let mut model: Vec<u8> = Vec::new();
            let mut committed: Vec<u8> = Vec::new();
            for op in ops {
                match op {
                    JOp::Write { off, data } => {
                        pf.write_at(&data, off).unwrap();
                        let end = off as usize + data.len();
                        if model.len() < end { model.resize(end, 0); }
                        model[off as usize..end].copy_from_slice(&data);
                    }
                    JOp::Truncate(n) => { pf.set_len(n).unwrap(); model.resize(n as usize, 0); }
                    JOp::Flush => { pf.flush().unwrap(); committed = model.clone(); }
                    JOp::Sync => { pf.sync().unwrap(); committed = model.clone(); }
                    JOp::Crash => {
                        std::mem::forget(pf);
                        jd = after_crash(&jd, &jdir, false);
                        let (p, _) = reopen(&path, &cek, &jd);
                        pf = p;
                        model = committed.clone();
                    }
                }
                prop_assert_eq!(read_all(&pf), model.clone());
            }
            std::mem::forget(pf);
            let (pf, _) = reopen(&path, &cek, &after_crash(&jd, &jdir, false));
            prop_assert_eq!(read_all(&pf), committed);
        }
    }

    #[test]
    fn complete_journal_is_replayed_and_torn_one_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let jdir = dir.path().join("journal");
        let mut jd = journal_dir(&jdir);
        let path = dir.path().join("f.rights");
        let cek = ContentKey::generate();
        let mut pf = ProtectedFile::create(rw(&path), new_header(&cek, 512), &cek)
            .unwrap()
            .with_journal(&jd);
        pf.write_at(&[1u8; 3000], 0).unwrap();
        pf.sync().unwrap();
        drop(pf);

        for torn in [false, true] {
            let (mut pf, rec) = reopen(&path, &cek, &jd);
            assert!(!rec.any(), "{rec:?}");
            let before = read_all(&pf);
            pf.write_at(&[2u8; 700], 100).unwrap(); // rewrites committed blocks: journaled
            CRASH_AFTER_JOURNAL.with(|c| c.set(true));
            assert!(pf.flush().is_err());
            CRASH_AFTER_JOURNAL.with(|c| c.set(false));
            std::mem::forget(pf);
            jd = after_crash(&jd, &jdir, false);
            let jfile = std::fs::read_dir(&jdir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| p.extension().is_some_and(|e| e == "journal"))
                .unwrap();
            if torn {
                let len = std::fs::metadata(&jfile).unwrap().len();
                OpenOptions::new()
                    .write(true)
                    .open(&jfile)
                    .unwrap()
                    .set_len(len - 5)
                    .unwrap();
            }
            let (pf, rec) = reopen(&path, &cek, &jd);
            assert!(!jfile.exists());
            let mut want = before.clone();
            if torn {
                assert!(rec.discarded);
            } else {
                assert!(rec.replayed);
                want[100..800].fill(2);
            }
            assert_eq!(read_all(&pf), want);
            // The strict reader agrees.
            drop(pf);
            assert_eq!(read_all(&ProtectedFile::open(rw(&path), &cek).unwrap()), want);
        }
    }

    /// A long write is sealed in shares on several threads: the shares'
    /// tags and the rewrites held for the journal must come back in block
    /// order, both before the commit (read from memory) and after it.
    #[test]
    fn a_long_write_over_committed_and_new_blocks_keeps_every_block_in_place() {
        let (dir, jd, cek, mut pf) = journaled_file();
        let path = dir.path().join("f.rights");
        let mut want: Vec<u8> = (0..200 * 512u32).map(|i| (i % 253) as u8).collect();
        pf.write_at(&want, 0).unwrap();
        pf.sync().unwrap();
        // Blocks 50..200 are rewritten (held for the journal), 200..330
        // are new (written in place): more than two shares of 64 blocks.
        let over: Vec<u8> = (0..280 * 512u32).map(|i| (i % 241) as u8 ^ 0x5a).collect();
        pf.write_at(&over, 50 * 512 + 7).unwrap();
        want.resize(50 * 512 + 7 + over.len(), 0);
        want[50 * 512 + 7..].copy_from_slice(&over);
        assert_eq!(read_all(&pf), want);
        pf.sync().unwrap();
        drop(pf);
        let (pf, rec) = reopen(&path, &cek, &jd);
        assert!(!rec.any(), "{rec:?}");
        assert_eq!(read_all(&pf), want);
        drop(pf);
        assert_eq!(read_all(&ProtectedFile::open(rw(&path), &cek).unwrap()), want);
    }

    #[test]
    fn lost_unsynced_state_rolls_back_to_the_durable_one() {
        let (dir, jd, cek, mut pf) = journaled_file();
        let (jdir, path) = (dir.path().join("journal"), dir.path().join("f.rights"));
        pf.write_at(&[6u8; 2000], 0).unwrap(); // new blocks, unsynced commit
        pf.flush().unwrap();
        drop(pf);
        // A power cut that kept the new state slot but not the new blocks:
        // model it by zeroing them. The durable state (the empty file made
        // by `create`) must be what comes back.
        let g = read_header(&rw(&path)).unwrap().geometry;
        let f = rw(&path);
        let size = f.metadata().unwrap().len();
        let from = g.block_offset(0);
        f.write_all_at(&vec![0u8; (size - from) as usize], from).unwrap();
        let damaged = std::fs::read(&path).unwrap();
        // Without a crash of the machine behind it, this is damage: the
        // open fails and changes nothing.
        for after in [None, Some(false)] {
            let jd = match after {
                None => jd.clone(),
                Some(other_boot) => after_crash(&jd, &jdir, other_boot),
            };
            assert!(ProtectedFile::open_journaled(rw(&path), &cek, &jd).is_err());
            assert_eq!(std::fs::read(&path).unwrap(), damaged);
        }
        let (pf, rec) = reopen(&path, &cek, &after_crash(&jd, &jdir, true));
        assert!(rec.rolled_back, "{rec:?}");
        assert!(pf.is_empty());
    }

    /// A file committed and closed, then cut, extended or changed by
    /// someone else: with no writer's crash to explain it, the open fails
    /// and leaves every byte where it was (before, it was "recovered" by
    /// cutting it back to its empty first state).
    #[test]
    fn damage_without_a_crash_is_reported_and_left_alone() {
        let (dir, jd, cek, mut pf) = journaled_file();
        let path = dir.path().join("f.rights");
        pf.write_at(&[7u8; 5000], 0).unwrap();
        drop(pf); // committed unsynced, like `cp`
        let good = std::fs::read(&path).unwrap();
        let len = good.len();
        let mut flipped = good.clone();
        flipped[len - 700] ^= 1;
        let mut junk = good.clone();
        junk.extend_from_slice(&[0x55; 100]);
        for bad in [
            good[..len - 1].to_vec(),
            good[..len - 100].to_vec(),
            good[..len - 100 - 512].to_vec(),
            junk,
            flipped,
        ] {
            std::fs::write(&path, &bad).unwrap();
            // A changed block may pass the open (its tags are remembered
            // from the last commit) but never a read.
            if let Ok((pf, _)) = ProtectedFile::open_journaled(rw(&path), &cek, &jd) {
                let mut buf = vec![0u8; 5000];
                assert!(pf.read_at(&mut buf, 0).is_err(), "damage read as data");
            }
            assert_eq!(std::fs::read(&path).unwrap(), bad, "the open changed the file");
        }
        std::fs::write(&path, &good).unwrap();
        let (pf, rec) = reopen(&path, &cek, &jd);
        assert!(!rec.any());
        assert_eq!(read_all(&pf), vec![7u8; 5000]);
    }
}

/// A state record sealed by a key holder (a view-only reader holds the
/// key) with an absurd length, generation or seal count must be refused,
/// not overflow size arithmetic or a counter on the next commit.
#[test]
fn forged_state_with_absurd_values_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.rights");
    let cek = make(&path, b"hello", 512);
    let header = read_header(&rw(&path)).unwrap();
    let keys = keys::FileKeys::derive(&cek, &header.content_id());
    let clean = std::fs::read(&path).unwrap();
    let so = header.state_offset() as usize;
    let n = 2 * header::SLOT_LEN as usize;
    let (real, _, _) = state::State::pick(&keys.state, &header.hash, &clean[so..so + n]).unwrap();
    let cases = [
        (9, u64::MAX - 3, 3),
        (9, 1 << 61, 3),
        (u64::MAX, 5, 3),
        (9, 5, u64::MAX),
    ];
    for (generation, len, seals) in cases {
        std::fs::write(&path, &clean).unwrap();
        let forged = state::State {
            generation,
            len,
            seals,
            ..real.clone()
        };
        let slot = writer::compose_slot(forged.seal(&keys.state, &header.hash, 1), b"");
        rw(&path)
            .write_all_at(&slot, header.state_offset() + header::SLOT_LEN)
            .unwrap();
        assert!(matches!(open_err(&path, &cek), FormatError::StateTampered));
    }
}

/// Puts `old_block7`, an older and authentic block 7 of the file at
/// `path`, back in place (a replay) and flips a bit in block 300 (a
/// corruption).
pub(crate) fn replay_7_and_flip_300(path: &std::path::Path, old_block7: &[u8]) {
    let f = rw(path);
    let g = read_header(&f).unwrap().geometry;
    f.write_all_at(old_block7, g.block_offset(7)).unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, g.block_offset(300) + 20).unwrap();
    f.write_all_at(&[b[0] ^ 1], g.block_offset(300) + 20).unwrap();
}

/// A large file reopened unchanged by the process that wrote it takes its
/// tags from memory; a block replaced on disk meanwhile is still caught,
/// when it is read, and the rest of the file still reads.
#[test]
fn remembered_tags_still_catch_blocks_changed_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.rights");
    let content: Vec<u8> = (0..600 * 512u32).map(|i| (i % 251) as u8).collect();
    let cek = make(&path, &content, 512);
    let g = read_header(&rw(&path)).unwrap().geometry;
    let old_block7 = std::fs::read(&path).unwrap()[g.block_offset(7) as usize..g.block_offset(8) as usize].to_vec();
    let caches = std::sync::Arc::new(super::Caches::new(super::DEFAULT_TAG_MEMORY));
    let mut pf = ProtectedFile::open_cached(rw(&path), &cek, &caches).unwrap();
    pf.write_at(b"a newer block seven", 7 * 512).unwrap();
    pf.sync().unwrap();
    drop(pf);
    replay_7_and_flip_300(&path, &old_block7);
    // Without the writer's caches the change is found at once.
    assert!(ProtectedFile::open(rw(&path), &cek).is_err());
    let pf = ProtectedFile::open_cached(rw(&path), &cek, &caches).unwrap();
    let mut buf = vec![0u8; 512];
    assert!(matches!(pf.read_at(&mut buf, 7 * 512), Err(FormatError::StaleBlock)));
    assert!(matches!(
        pf.read_at(&mut buf, 300 * 512),
        Err(FormatError::BlockCorrupt { index: 300 })
    ));
    pf.read_at(&mut buf, 100 * 512).unwrap();
    assert_eq!(buf, content[100 * 512..101 * 512]);
}

/// A new file's header is checked as a reader checks it, and only a
/// header whose signature verified is remembered as good: one signed by a
/// device other than the one it names is refused at creation, and the
/// caches never vouch for it when it is opened.
#[test]
fn a_new_header_is_remembered_only_once_its_signature_verified() {
    let caches = super::Caches::new(0);
    let cek = ContentKey::generate();
    let good = new_header(&cek, 4096);
    let hash = good.hash;
    Fresh::continuing(good, &cek, Some(owner_writer()), 0, Some(&caches)).unwrap();
    assert!(caches.signatures.get(&hash).is_some());

    // Names the owner's device, signed by another one.
    let other = DeviceKeyPair::generate().unwrap();
    let forged = FileHeader::new(
        PublishingLicence::sign(&licence_body(&cek), &other).unwrap(),
        &cek,
        4096,
    )
    .unwrap();
    let hash = forged.hash;
    assert!(matches!(
        Fresh::continuing(forged, &cek, Some(owner_writer()), 0, Some(&caches)),
        Err(FormatError::HeaderTampered(_))
    ));
    assert!(caches.signatures.get(&hash).is_none());
}

/// A header whose licence the process has just signed skips only the
/// maths of that signature: a licence whose Ed25519 key the device it
/// names never certified (another device's delegated key), or a header
/// made with another key, is refused all the same, and only a header that
/// passed is remembered as good.
#[test]
fn a_header_signed_here_is_checked_for_all_but_the_signature_maths() {
    let caches = super::Caches::new(0);
    let cek = ContentKey::generate();
    let delegated = |device: &DeviceKeyPair| {
        let mut body = licence_body(&cek);
        body.version = 2;
        FileHeader::new(PublishingLicence::sign(&body, device).unwrap(), &cek, 4096).unwrap()
    };
    let good = delegated(device());
    let hash = good.hash;
    Fresh::signed_here(good, &cek, Some(owner_writer()), Some(&caches)).unwrap();
    assert!(caches.signatures.get(&hash).is_some());

    // Names the owner's device; signed by a key another device certified.
    let forged = delegated(&DeviceKeyPair::generate().unwrap());
    let hash = forged.hash;
    assert!(matches!(
        Fresh::signed_here(forged, &cek, Some(owner_writer()), Some(&caches)),
        Err(FormatError::HeaderTampered(_))
    ));
    assert!(caches.signatures.get(&hash).is_none());

    let other_key = delegated(device());
    assert!(matches!(
        Fresh::signed_here(other_key, &ContentKey::generate(), Some(owner_writer()), Some(&caches)),
        Err(FormatError::WrongKey)
    ));
}
