//! Writer records: every version is signed by its writer, and a reader
//! accepts it only from the owner or a certified holder of `edit`.

use std::path::Path;

use proptest::prelude::*;

use super::tests::{new_header, owner_writer, rw, test_server};
use super::*;
use crate::crypto::{ContentKey, ServerSigningKey, WriterKey};
use crate::policy::{ContentId, DeviceCertificate, EditCertificate, Email, Rights, now};

fn server() -> &'static ServerSigningKey {
    test_server()
}

fn trust() -> super::Verifier {
    super::Verifier::new(server().verifying_key())
}

/// A writer for `account`'s device, certified by `signer`, with an edit
/// certificate for `content` granting `rights` from `from` to `until`
/// when `rights` is given.
fn writer_by(signer: &ServerSigningKey, account: &str, cert: Option<(ContentId, &str, i64, i64)>) -> Writer {
    let key = WriterKey::generate();
    let account = Email::parse(account).unwrap();
    let dc = DeviceCertificate {
        account: account.clone(),
        device_id: format!("dev-{account}"),
        key: key.public(),
        issued_at: now() - 3600,
        not_after: now() + 30 * 86_400,
    }
    .sign(signer);
    let ec = cert.map(|(content_id, rights, issued_at, not_after)| {
        EditCertificate {
            content_id,
            account,
            key: key.public(),
            rights: Rights::parse(rights).unwrap(),
            issued_at,
            not_after,
        }
        .sign(signer)
    });
    Writer::new(key, dc, ec).unwrap()
}

fn owner() -> Writer {
    owner_writer()
}

fn editor(id: ContentId) -> Writer {
    writer_by(
        server(),
        "bob@example.com",
        Some((id, "view,edit", now() - 60, now() + 3600)),
    )
}

/// A file made and first signed by its owner, holding `content`.
fn owned_file(path: &Path, content: &[u8]) -> (ContentKey, ContentId) {
    let cek = ContentKey::generate();
    let header = new_header(&cek, 512);
    let id = header.content_id();
    let fresh = Fresh::signed(header, &cek, Some(owner())).unwrap();
    let mut pf = ProtectedFile::create_from(rw(path), fresh).unwrap();
    pf.write_at(content, 0).unwrap();
    pf.sync().unwrap();
    (cek, id)
}

/// Opens the file as `writer` (without checking) and saves `content` over it.
fn save_as(path: &Path, cek: &ContentKey, writer: Writer, content: &[u8]) {
    let mut pf = ProtectedFile::open(rw(path), cek).unwrap().with_writer(writer);
    pf.set_len(0).unwrap();
    pf.write_at(content, 0).unwrap();
    pf.sync().unwrap();
}

fn read_verified(path: &Path, cek: &ContentKey) -> Result<(Vec<u8>, WrittenBy), FormatError> {
    let pf = ProtectedFile::open_verified(rw(path), cek, &trust())?;
    let mut v = vec![0u8; pf.len() as usize];
    pf.read_at(&mut v, 0)?;
    Ok((v, pf.written_by().unwrap().clone()))
}

/// A journal folder for journaled (mount) opens.
fn journal(t: &tempfile::TempDir) -> std::sync::Arc<JournalDir> {
    let d = crate::dirfd::Dir::create_private(&t.path().join("journal")).unwrap();
    std::sync::Arc::new(JournalDir::new(d).unwrap())
}

fn refusal(path: &Path, cek: &ContentKey) -> FormatError {
    read_verified(path, cek).map(|_| ()).unwrap_err()
}

#[test]
fn owner_and_editor_versions_verify_and_name_their_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.rights");
    let (cek, id) = owned_file(&path, b"the owner's words");
    let (text, by) = read_verified(&path, &cek).unwrap();
    assert_eq!(text, b"the owner's words");
    assert_eq!((by.account.as_str(), by.owner), ("alice@example.com", true));
    save_as(&path, &cek, editor(id), b"the editor's words");
    let (text, by) = read_verified(&path, &cek).unwrap();
    assert_eq!(text, b"the editor's words");
    assert_eq!((by.account.as_str(), by.owner), ("bob@example.com", false));
    assert!(by.time >= now() - 5 && by.time <= now());
    // The journaled (mount) open agrees.
    let jd = tempfile::tempdir().unwrap();
    let (pf, _) = ProtectedFile::open_journaled_verified(rw(&path), &cek, &journal(&jd), &trust()).unwrap();
    assert_eq!(pf.written_by().unwrap().account.as_str(), "bob@example.com");
}

#[test]
fn versions_by_writers_without_edit_are_refused_naming_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.rights");
    let (cek, id) = owned_file(&path, b"original");
    let clean = std::fs::read(&path).unwrap();
    let soon = now() + 3600;
    let cases: Vec<(Writer, &str)> = vec![
        (writer_by(server(), "carol@example.com", None), "no edit certificate"),
        (
            writer_by(server(), "carol@example.com", Some((id, "view", now() - 60, soon))),
            "grants only view",
        ),
        (
            writer_by(
                server(),
                "carol@example.com",
                Some((ContentId([1; 16]), "edit", now() - 60, soon)),
            ),
            "another file",
        ),
        (
            writer_by(
                server(),
                "carol@example.com",
                Some((id, "edit", now() - 7200, now() - 3600)),
            )
            .signing_past_expiry(),
            "expired",
        ),
        (
            writer_by(server(), "carol@example.com", Some((id, "edit", now() + 600, soon))),
            "before its edit certificate was issued",
        ),
    ];
    for (forger, why) in cases {
        std::fs::write(&path, &clean).unwrap();
        save_as(&path, &cek, forger, b"forged");
        match refusal(&path, &cek) {
            FormatError::WriterNotAllowed { writer, reason } => {
                assert_eq!(writer, "carol@example.com");
                assert!(reason.contains(why), "{reason} / {why}");
            }
            e => panic!("{why}: {e:?}"),
        }
        let jd = tempfile::tempdir().unwrap();
        let e = ProtectedFile::open_journaled_verified(rw(&path), &cek, &journal(&jd), &trust()).unwrap_err();
        assert!(matches!(e, FormatError::WriterNotAllowed { .. }), "{e:?}");
    }
}

#[test]
fn records_not_from_this_server_or_not_for_this_state_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.rights");
    let (cek, id) = owned_file(&path, b"original");
    let clean = std::fs::read(&path).unwrap();
    // Certified by another server, even as the owner.
    let rogue = ServerSigningKey::generate();
    save_as(&path, &cek, writer_by(&rogue, "alice@example.com", None), b"forged");
    assert!(matches!(
        refusal(&path, &cek),
        FormatError::WriterCertificate { writer } if writer == "alice@example.com"
    ));
    // An editor certificate signed by another server.
    std::fs::write(&path, &clean).unwrap();
    let mut w = writer_by(server(), "carol@example.com", None);
    let key = WriterKey::generate();
    let dc = DeviceCertificate {
        account: Email::parse("carol@example.com").unwrap(),
        device_id: "d".into(),
        key: key.public(),
        issued_at: now(),
        not_after: now() + 86_400,
    };
    let ec = EditCertificate {
        content_id: id,
        account: dc.account.clone(),
        key: key.public(),
        rights: Rights::parse("edit").unwrap(),
        issued_at: now() - 60,
        not_after: now() + 60,
    };
    w = Writer::new(key, dc.sign(server()), Some(ec.sign(&rogue))).unwrap_or(w);
    save_as(&path, &cek, w, b"forged");
    assert!(
        matches!(refusal(&path, &cek), FormatError::WriterNotAllowed { reason, .. } if reason.contains("not signed"))
    );
    // No record at all.
    std::fs::write(&path, &clean).unwrap();
    let mut pf = ProtectedFile::open(rw(&path), &cek).unwrap();
    pf.write_at(b"unsigned", 0).unwrap();
    pf.sync().unwrap();
    drop(pf);
    assert!(matches!(refusal(&path, &cek), FormatError::WriterUnsigned));
    assert!(
        ProtectedFile::open(rw(&path), &cek).is_ok(),
        "unchecked opens still read it"
    );
}

/// A view-only holder resealing the state under the owner's copied
/// record: the signature is the owner's, but not over this state.
#[test]
fn a_record_copied_onto_another_state_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.rights");
    let (cek, _) = owned_file(&path, b"original");
    let header = read_header(&rw(&path)).unwrap();
    let so = header.state_offset() as usize;
    let n = header::SLOT_LEN as usize;
    let bytes = std::fs::read(&path).unwrap();
    let keys = keys::FileKeys::derive(&cek, &header.content_id());
    let (st, slot, record) = state::State::pick(&keys.state, &header.hash, &bytes[so..so + 2 * n]).unwrap();
    let forged = state::State {
        generation: st.generation + 1,
        seals: st.seals + 1,
        ..st
    };
    let other = 1 - slot;
    let raw = writer::compose_slot(forged.seal(&keys.state, &header.hash, other), record);
    rw(&path).write_all_at(&raw, (so + other as usize * n) as u64).unwrap();
    assert!(matches!(
        refusal(&path, &cek),
        FormatError::WriterSignatureInvalid { writer } if writer == "alice@example.com"
    ));
}

/// Who commits a version, in a random sequence.
#[derive(Clone, Copy, Debug)]
enum Who {
    Owner,
    Editor,
    Viewer,
    Stranger,
    Expired,
}

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![
        Just(Who::Owner),
        Just(Who::Editor),
        Just(Who::Viewer),
        Just(Who::Stranger),
        Just(Who::Expired)
    ]
}

use std::os::unix::fs::FileExt;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Random sequences of commits: every version by the owner or an
    /// editor verifies and names its writer; every version by anyone else
    /// is refused, naming them.
    #[test]
    fn commits_verify_exactly_when_the_writer_may_edit(
        steps in proptest::collection::vec((who(), 1usize..1500, any::<bool>()), 1..8)
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.rights");
        let (cek, id) = owned_file(&path, b"start");
        let writers = |w: Who| match w {
            Who::Owner => (owner(), "alice@example.com"),
            Who::Editor => (editor(id), "bob@example.com"),
            Who::Viewer => (
                writer_by(server(), "carol@example.com", Some((id, "view", now() - 60, now() + 60))),
                "carol@example.com",
            ),
            Who::Stranger => (writer_by(server(), "dave@example.com", None), "dave@example.com"),
            Who::Expired => (
                writer_by(server(), "bob@example.com", Some((id, "edit", now() - 90, now() - 30)))
                    .signing_past_expiry(),
                "bob@example.com",
            ),
        };
        let jt = tempfile::tempdir().unwrap();
        let jd = journal(&jt);
        // Each step writes at least one byte that differs from the last
        // version, so every step is a commit with a writer of its own.
        for (step, (w, len, journaled)) in steps.into_iter().enumerate() {
            let good = std::fs::read(&path).unwrap();
            let (writer, name) = writers(w);
            let content: Vec<u8> = (0..len).map(|i| (i * 7 + len + step * 13) as u8).collect();
            if journaled {
                let (pf, _) = ProtectedFile::open_journaled(rw(&path), &cek, &jd).unwrap();
                let mut pf = pf.with_writer(writer);
                pf.write_at(&content, 0).unwrap();
                pf.flush().unwrap();
            } else {
                save_as(&path, &cek, writer, &content);
            }
            let got = read_verified(&path, &cek);
            match (w, got) {
                (Who::Owner | Who::Editor, Ok((_, by))) => prop_assert_eq!(by.account.as_str(), name),
                (Who::Owner | Who::Editor, Err(e)) => prop_assert!(false, "{:?} refused: {}", w, e),
                (_, Ok(_)) => prop_assert!(false, "{:?} accepted", w),
                (_, Err(FormatError::WriterNotAllowed { writer, .. })) => {
                    prop_assert_eq!(writer.as_str(), name);
                    // The owner's own tools put the last good version back.
                    std::fs::write(&path, &good).unwrap();
                }
                (_, Err(e)) => prop_assert!(false, "{:?}: wrong error {}", w, e),
            }
        }
    }
}

#[test]
fn a_writer_whose_edit_certificate_ended_saves_nothing_until_renewed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.rights");
    let (cek, id) = owned_file(&path, b"owner's text");
    let ended = writer_by(
        server(),
        "bob@example.com",
        Some((id, "view,edit", now() - 3600, now() - 1)),
    );
    assert!(ended.expires().is_some_and(|t| t < now()));
    let mut pf = ProtectedFile::open(rw(&path), &cek).unwrap().with_writer(ended);
    pf.write_at(b"bob's late", 0).unwrap();
    assert!(matches!(pf.flush(), Err(FormatError::WriterExpired { .. })));
    // Renewed, the same change saves and verifies as bob's.
    pf.set_writer(editor(id));
    assert!(pf.writer().unwrap().expires().is_some());
    pf.sync().unwrap();
    drop(pf);
    let (text, by) = read_verified(&path, &cek).unwrap();
    assert_eq!(
        (&text[..10], by.account.as_str()),
        (&b"bob's late"[..], "bob@example.com")
    );
}

/// The owner's lost phone: a device whose certificate ended an hour ago.
fn lost_phone() -> Writer {
    let key = WriterKey::generate();
    let ended = DeviceCertificate {
        account: Email::parse("alice@example.com").unwrap(),
        device_id: "alice-lost-phone".into(),
        key: key.public(),
        issued_at: now() - 7200,
        not_after: now() - 3600,
    }
    .sign(server());
    Writer::new(key, ended, None).unwrap()
}

/// The owner's device whose certificate ended (removed from the account,
/// so never certified again): the format signs nothing more with it, and
/// a version it signs anyway at its true time is refused, naming the
/// writer and the device.
#[test]
fn versions_signed_after_the_device_certificate_ended_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.rights");
    let (cek, _) = owned_file(&path, b"owner's text");
    let lost = lost_phone();
    assert!(lost.expires().is_some_and(|t| t < now()));
    let mut pf = ProtectedFile::open(rw(&path), &cek).unwrap().with_writer(lost.clone());
    pf.write_at(b"phone's late", 0).unwrap();
    assert!(matches!(pf.flush(), Err(FormatError::WriterExpired { .. })));
    drop(pf);
    let path = dir.path().join("g.rights");
    let (cek, _) = owned_file(&path, b"owner's text");
    save_as(&path, &cek, lost.signing_past_expiry(), b"phone's late");
    match ProtectedFile::open_verified(rw(&path), &cek, &trust()) {
        Err(FormatError::WriterNotAllowed { writer, reason }) => {
            assert_eq!(writer, "alice@example.com");
            assert!(reason.contains("alice-lost-phone was certified until"), "{reason}");
        }
        other => panic!("expected WriterNotAllowed, got {:?}", other.map(|_| ())),
    }
}

/// A record's time must fall after its device certificate was issued and
/// no further than [`MAX_CLOCK_SKEW`](super::writer::MAX_CLOCK_SKEW) past
/// the reader's clock: a writer claiming otherwise is refused, naming
/// the writer and the device.
#[test]
fn record_times_before_the_certificate_or_in_the_future_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.rights");
    let (cek, _) = owned_file(&path, b"owner's text");
    let clean = std::fs::read(&path).unwrap();
    let issued = DeviceCertificate::decode_unverified(owner().device_certificate())
        .unwrap()
        .issued_at;
    let skew = super::writer::MAX_CLOCK_SKEW;
    let cases = [
        (issued - 1, Some("before its device alice-laptop was certified")),
        (issued, None),
        (now() + skew - 5, None),
        (now() + skew + 60, Some("later than this computer's clock allows")),
    ];
    for (time, refused) in cases {
        std::fs::write(&path, &clean).unwrap();
        save_as(&path, &cek, owner().signing_at(time), b"claimed");
        match (read_verified(&path, &cek), refused) {
            (Ok((_, by)), None) => assert_eq!(by.time, time),
            (Err(FormatError::WriterNotAllowed { writer, reason }), Some(why)) => {
                assert_eq!(writer, "alice@example.com");
                assert!(reason.contains(why), "{reason} / {why}");
            }
            (other, _) => panic!("time {time}: {:?}", other.map(|(_, by)| by)),
        }
    }
}

/// A device the server lists as removed signs with its last certificate
/// at a time inside that certificate's window: every reader holding the
/// list refuses the version, naming the writer, the device and when it
/// was removed, also when the version was verified (and remembered)
/// before the device was listed.
#[test]
fn versions_signed_by_a_removed_device_are_refused_whatever_time_they_claim() {
    use crate::policy::{RemovedDevice, RemovedDeviceList};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.rights");
    let (cek, id) = owned_file(&path, b"owner's text");
    let removed = super::RemovedDevices::default();
    let caches = std::sync::Arc::new(Caches::new(0));
    let reader = trust().with_removed(removed.clone());
    let cached = super::Verifier::cached(server().verifying_key(), caches).with_removed(removed.clone());
    let open = |v: &super::Verifier| {
        ProtectedFile::open_verified(rw(&path), &cek, v).map(|pf| pf.written_by().unwrap().clone())
    };
    // Before the list names it, the owner's version verifies (and the
    // cached verifier remembers it).
    assert_eq!(open(&cached).unwrap().device_id, "alice-laptop");
    let at = now() - 60;
    removed.replace(&[RemovedDeviceList {
        issued_at: now(),
        after: String::new(),
        last: true,
        devices: vec![RemovedDevice {
            device_id: "alice-laptop".into(),
            removed_at: at,
        }],
    }]);
    for v in [&reader, &cached] {
        match open(v) {
            Err(e @ FormatError::WriterRemoved { .. }) => {
                let FormatError::WriterRemoved {
                    writer,
                    device,
                    removed_at,
                } = &e
                else {
                    unreachable!()
                };
                assert_eq!(
                    (writer.as_str(), device.as_str(), *removed_at),
                    ("alice@example.com", "alice-laptop", at)
                );
                assert!(e.to_string().contains(&crate::policy::format_time(at)), "{e}");
                assert_eq!(e.errno(), libc::EIO);
            }
            other => panic!("expected WriterRemoved, got {other:?}"),
        }
    }
    // Backdated to before the removal: refused all the same.
    save_as(&path, &cek, owner().signing_at(at - 600), b"backdated");
    assert!(matches!(open(&reader), Err(FormatError::WriterRemoved { .. })));
    // Saved again by another writer, the file verifies: the slot before
    // it, which the reader never returns, may be the removed device's.
    save_as(&path, &cek, editor(id), b"the editor's words");
    assert_eq!(open(&reader).unwrap().account.as_str(), "bob@example.com");
    let jd = tempfile::tempdir().unwrap();
    save_as(&path, &cek, owner().signing_at(at - 600), b"backdated");
    let e = ProtectedFile::open_journaled_verified(rw(&path), &cek, &journal(&jd), &reader).unwrap_err();
    assert!(matches!(e, FormatError::WriterRemoved { .. }), "{e:?}");
}

/// The mount remembers writers' device certificates it checked: a
/// remembered one must vouch for nothing but its own bytes under its own
/// server key.
#[test]
fn a_remembered_device_certificate_vouches_only_for_itself() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.rights");
    let (cek, _) = owned_file(&path, b"original");
    let clean = std::fs::read(&path).unwrap();
    let caches = std::sync::Arc::new(Caches::new(0));
    let cached = super::Verifier::cached(server().verifying_key(), caches.clone());
    let open = |v: &super::Verifier| {
        ProtectedFile::open_verified(rw(&path), &cek, v).map(|pf| pf.written_by().unwrap().clone())
    };
    assert!(open(&cached).is_ok());
    // The owner's account certified by another server: refused though the
    // genuine certificate of that account is remembered.
    let rogue = ServerSigningKey::generate();
    save_as(&path, &cek, writer_by(&rogue, "alice@example.com", None), b"forged");
    assert!(matches!(
        open(&cached).unwrap_err(),
        FormatError::WriterCertificate { .. }
    ));
    // The genuine version again, through the same caches but trusting the
    // other server: what was remembered under the first key does not count.
    std::fs::write(&path, &clean).unwrap();
    let misled = super::Verifier::cached(rogue.verifying_key(), caches);
    assert!(matches!(
        open(&misled).unwrap_err(),
        FormatError::WriterCertificate { .. }
    ));
    assert!(open(&cached).is_ok());
}

/// A process reopening a file it saved takes its own signature as made
/// (no Ed25519 check): that must hold only for versions every reader
/// accepts. Each hostile writer saves through the caching verifier, as
/// the mount does; none of its versions may be remembered, and the same
/// caches refuse each at the next open.
#[test]
fn versions_a_process_signs_are_remembered_only_when_a_reader_would_accept_them() {
    let dir = tempfile::tempdir().unwrap();
    let caches = std::sync::Arc::new(Caches::new(0));
    let cached = super::Verifier::cached(server().verifying_key(), caches.clone());
    // Saves `content` as `writer` through `cached` over a file its owner
    // made; returns the versions remembered by the save and the next open.
    let save = |name: &str, writer: &dyn Fn(ContentId) -> Writer, content: &[u8]| {
        let path = dir.path().join(name);
        let (cek, id) = owned_file(&path, b"owner's text");
        let mut pf = ProtectedFile::open_verified(rw(&path), &cek, &cached)
            .unwrap()
            .with_writer(writer(id));
        let known = caches.versions.len();
        pf.set_len(0).unwrap();
        pf.write_at(content, 0).unwrap();
        pf.sync().unwrap();
        drop(pf);
        let remembered = caches.versions.len() - known;
        (remembered, ProtectedFile::open_verified(rw(&path), &cek, &cached))
    };

    // The owner and a certified editor: remembered, and read back.
    let accepted: [(&str, &dyn Fn(ContentId) -> Writer); 2] =
        [("owner.rights", &|_| owner()), ("editor.rights", &editor)];
    for (name, writer) in accepted {
        let (remembered, opened) = save(name, writer, b"saved");
        assert_eq!(remembered, 1, "{name}");
        let pf = opened.unwrap();
        let mut v = vec![0u8; 5];
        pf.read_at(&mut v, 0).unwrap();
        assert_eq!(v, b"saved");
    }

    // A lost device signing after its certificate ended.
    let lost = lost_phone().signing_past_expiry();
    // An editor whose edit certificate ended, and one granted view only.
    let lapsed = |id| {
        writer_by(
            server(),
            "bob@example.com",
            Some((id, "view,edit", now() - 7200, now() - 3600)),
        )
        .signing_past_expiry()
    };
    let viewer = |id| {
        writer_by(
            server(),
            "bob@example.com",
            Some((id, "view", now() - 60, now() + 3600)),
        )
    };
    // A device certificate that certifies another key than the one signing.
    let borrowed = Writer::new(WriterKey::generate(), owner().device_certificate().to_vec(), None).unwrap();
    // The owner's account certified by another server.
    let rogue = writer_by(&ServerSigningKey::generate(), "alice@example.com", None);
    let cases: [(&str, &dyn Fn(ContentId) -> Writer); 5] = [
        ("lost.rights", &|_| lost.clone()),
        ("lapsed.rights", &lapsed),
        ("viewer.rights", &viewer),
        ("borrowed.rights", &|_| borrowed.clone()),
        ("rogue.rights", &|_| rogue.clone()),
    ];
    for (name, writer) in cases {
        let (remembered, opened) = save(name, writer, b"hostile");
        assert_eq!(remembered, 0, "{name}: a version readers refuse was remembered");
        match opened {
            Err(FormatError::WriterNotAllowed { .. } | FormatError::WriterCertificate { .. })
            | Err(FormatError::WriterSignatureInvalid { .. }) => {}
            other => panic!("{name}: expected a refusal, got {:?}", other.map(|_| ())),
        }
    }
}

/// The mount remembers editors' edit certificates it checked: one is
/// checked once for every version its editor saves, and vouches for
/// nothing under another server key.
#[test]
fn a_remembered_edit_certificate_vouches_only_under_its_server() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.rights");
    let (cek, id) = owned_file(&path, b"original");
    let caches = std::sync::Arc::new(Caches::new(0));
    let cached = super::Verifier::cached(server().verifying_key(), caches.clone());
    let bob = editor(id);
    for text in [&b"bob's text"[..], b"bob's second text"] {
        save_as(&path, &cek, bob.clone(), text);
        let pf = ProtectedFile::open_verified(rw(&path), &cek, &cached).unwrap();
        assert_eq!(pf.written_by().unwrap().account.as_str(), "bob@example.com");
    }
    assert_eq!(caches.edits.len(), 1, "checked once for both versions");
    let cert = bob.edit_certificate().unwrap().to_vec();
    let rogue = ServerSigningKey::generate();
    let misled = super::Verifier::cached(rogue.verifying_key(), caches.clone());
    let check = |v: &super::Verifier| super::writer::certified(&cert, v, |c| &c.edits, EditCertificate::verify);
    assert!(check(&misled).is_err(), "remembered under the genuine key only");
    assert!(check(&cached).is_ok());
}

/// A tag table that left memory (`store/tag_table.rs`) guards the blocks
/// as one in memory does: a mount that spills every table beyond eight
/// blocks, whose caches remember the spilled table at close, still finds
/// an older authentic block put back on disk (a replay) and a flipped bit
/// when they are read, and reads the rest.
#[test]
fn a_spilled_tag_table_still_catches_blocks_changed_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.rights");
    let content: Vec<u8> = (0..600 * 512u32).map(|i| (i % 251) as u8).collect();
    let (cek, _) = owned_file(&path, &content);
    let d = crate::dirfd::Dir::create_private(&dir.path().join("journal")).unwrap();
    let jd = std::sync::Arc::new(
        JournalDir::new(d)
            .unwrap()
            .spilling_tags_beyond(8 * crate::crypto::TAG_LEN),
    );
    let caches = std::sync::Arc::new(Caches::new(super::DEFAULT_TAG_MEMORY));
    let trusted = super::Verifier::cached(server().verifying_key(), caches.clone());
    let g = read_header(&rw(&path)).unwrap().geometry;
    let old_block7 = std::fs::read(&path).unwrap()[g.block_offset(7) as usize..g.block_offset(8) as usize].to_vec();
    let (pf, _) = ProtectedFile::open_journaled_verified(rw(&path), &cek, &jd, &trusted).unwrap();
    assert!(pf.tags_spilled());
    let mut pf = pf.with_writer(owner());
    pf.write_at(b"a newer block seven", 7 * 512).unwrap();
    pf.sync().unwrap();
    drop(pf);
    super::tests::replay_7_and_flip_300(&path, &old_block7);
    let (pf, _) = ProtectedFile::open_journaled_verified(rw(&path), &cek, &jd, &trusted).unwrap();
    assert!(pf.tags_spilled(), "the remembered, spilled table");
    let mut buf = vec![0u8; 512];
    assert!(matches!(pf.read_at(&mut buf, 7 * 512), Err(FormatError::StaleBlock)));
    assert!(matches!(
        pf.read_at(&mut buf, 300 * 512),
        Err(FormatError::BlockCorrupt { index: 300 })
    ));
    // A long read over the replayed block fails as a whole, and one
    // around it reads.
    assert!(pf.read_owned(0, 64 * 512).is_err());
    let mut long = vec![0u8; 200 * 512];
    pf.read_at(&mut long, 8 * 512).unwrap();
    assert_eq!(long, content[8 * 512..208 * 512]);
    // Without the remembered table the change is found at the open.
    let fresh = tempfile::tempdir().unwrap();
    let d = crate::dirfd::Dir::create_private(fresh.path()).unwrap();
    let other = std::sync::Arc::new(
        JournalDir::new(d)
            .unwrap()
            .spilling_tags_beyond(8 * crate::crypto::TAG_LEN),
    );
    assert!(ProtectedFile::open_journaled_verified(rw(&path), &cek, &other, &trust()).is_err());
}
