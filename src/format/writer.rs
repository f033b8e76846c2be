//! Writer records: who saved a version of a file, and the proof that they
//! were allowed to.
//!
//! Every state slot carries, after its sealed state, a record signed by the
//! writer's device key over the state it sits beside, with the server's
//! certificates that bind that key to an account and, for anyone but the
//! owner, to the `edit` right on this content. Holding the content key lets
//! anyone seal a state; only a certified editor can sign one. The layout
//! is in docs/FORMAT.md, "Writer records".

use std::sync::Arc;

use crate::cache::Shared;
use crate::crypto::{CryptoError, WRITER_KEY_LEN, WRITER_SIGNATURE_LEN, WriterKey, sha256_parts, verify_writer};
use crate::crypto::{ServerVerifyingKey, Sha256Digest};
use crate::policy::{DeviceCertificate, EditCertificate, Email, PolicyError, Right, Timestamp, format_time};

use super::header::{FileHeader, SLOT_LEN};
use super::state::{SEALED_LEN, State};
use super::{Caches, FormatError, Verifier};

const SIGNATURE_DOMAIN: &[u8] = b"rightsfs writer signature v1\0";
/// Bytes of a slot before the record: the sealed state and the record's length.
const RECORD_AT: usize = SEALED_LEN + 2;
/// Largest record a slot holds.
pub const MAX_RECORD: usize = SLOT_LEN as usize - RECORD_AT;
/// How far past the reader's clock a record's signing time may be, in
/// seconds (clocks differ a little); further is refused, as a time before
/// the device certificate's issue is.
pub const MAX_CLOCK_SKEW: Timestamp = 300;

/// What signs this process's commits: the device's writer key with the
/// server's certificate of it and, when the device's account is not the
/// file's owner, the edit certificate for the file.
#[derive(Clone)]
pub struct Writer {
    key: Arc<WriterKey>,
    device_cert: Arc<[u8]>,
    edit_cert: Option<Arc<[u8]>>,
    /// Whether commits are refused once a certificate ended.
    strict: bool,
    /// The time records claim instead of the clock's (building versions
    /// readers must refuse: tests, vectors).
    clock: Option<Timestamp>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").field("key", &self.key.public()).finish()
    }
}

/// Who saved a version, as its record proves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrittenBy {
    /// The writer's account.
    pub account: Email,
    /// The writer's device id.
    pub device_id: String,
    /// When the writer says the version was saved (Unix seconds).
    pub time: Timestamp,
    /// Whether the writer is the file's owner (no edit certificate needed).
    pub owner: bool,
}

impl Writer {
    /// A writer from its key and certificates (as the server encoded them).
    /// Fails if they would not fit a state slot.
    pub fn new(key: WriterKey, device_cert: Vec<u8>, edit_cert: Option<Vec<u8>>) -> Result<Self, FormatError> {
        let w = Self {
            key: Arc::new(key),
            device_cert: device_cert.into(),
            edit_cert: edit_cert.map(Into::into),
            strict: true,
            clock: None,
        };
        if w.record_len() > MAX_RECORD {
            return Err(FormatError::WriterRecordMalformed(
                "certificates too large for a state slot",
            ));
        }
        Ok(w)
    }

    /// The same writer with another edit certificate (one per file).
    pub fn for_file(&self, edit_cert: Option<Vec<u8>>) -> Result<Self, FormatError> {
        let w = Self {
            edit_cert: edit_cert.map(Into::into),
            ..self.clone()
        };
        if w.record_len() > MAX_RECORD {
            return Err(FormatError::WriterRecordMalformed(
                "certificates too large for a state slot",
            ));
        }
        Ok(w)
    }

    /// The server's certificate of the writer key, as encoded.
    pub fn device_certificate(&self) -> &[u8] {
        &self.device_cert
    }

    /// The server's edit certificate for the file, as encoded (none for
    /// the owner).
    pub fn edit_certificate(&self) -> Option<&[u8]> {
        self.edit_cert.as_deref()
    }

    /// The last second this writer may sign a version of the file: the
    /// earlier of its device certificate's `not_after` and its edit
    /// certificate's (the owner has none). Both are short-lived, so a
    /// long-running writer renews them before then.
    pub fn expires(&self) -> Option<Timestamp> {
        if !self.strict {
            return None;
        }
        // Unreadable: treated as ended, so that nothing is signed with it.
        let device = DeviceCertificate::decode_unverified(&self.device_cert).map_or(Timestamp::MIN, |c| c.not_after);
        let edit = self.edit_cert.as_deref().map_or(Timestamp::MAX, |cert| {
            EditCertificate::decode_unverified(cert).map_or(Timestamp::MIN, |c| c.not_after)
        });
        Some(device.min(edit))
    }

    /// The same writer, signing even after its certificates ended: only
    /// to build the versions readers must refuse (tests, vectors).
    pub fn signing_past_expiry(self) -> Self {
        Self { strict: false, ..self }
    }

    /// The same writer, claiming `time` in its records whatever the clock
    /// says and past its certificates' end: only to build the versions
    /// readers must refuse (tests, vectors), as a device that kept its
    /// keys after its certificate ended would sign them.
    pub fn signing_at(self, time: Timestamp) -> Self {
        Self {
            clock: Some(time),
            ..self.signing_past_expiry()
        }
    }

    /// The writer key's public half.
    pub fn public_key(&self) -> [u8; WRITER_KEY_LEN] {
        self.key.public()
    }

    fn record_len(&self) -> usize {
        8 + 2 + self.device_cert.len() + 2 + self.edit_cert.as_ref().map_or(0, |c| c.len()) + WRITER_SIGNATURE_LEN
    }

    /// The record for `state` of the file with `header`, signed now.
    pub(super) fn record(&self, header: &FileHeader, state: &State) -> Vec<u8> {
        let time = self.clock.unwrap_or_else(crate::policy::now);
        let edit = self.edit_cert.as_deref().unwrap_or(&[]);
        let mut out = Vec::with_capacity(self.record_len());
        out.extend_from_slice(&time.to_be_bytes());
        out.extend_from_slice(&(self.device_cert.len() as u16).to_be_bytes());
        out.extend_from_slice(&self.device_cert);
        out.extend_from_slice(&(edit.len() as u16).to_be_bytes());
        out.extend_from_slice(edit);
        out.extend_from_slice(&self.key.sign(&signed_message(header, state, time)));
        out
    }
}

/// What a writer signs: the file, its header, the whole state and the time.
fn signed_message(header: &FileHeader, state: &State, time: Timestamp) -> Vec<u8> {
    [
        SIGNATURE_DOMAIN,
        &header.content_id().0,
        &header.hash,
        state.plaintext().as_slice(),
        &time.to_be_bytes(),
    ]
    .concat()
}

/// A slot's bytes: the sealed state, the record's length, the record, zeros.
pub(super) fn compose_slot(sealed: Vec<u8>, record: &[u8]) -> Vec<u8> {
    debug_assert_eq!(sealed.len(), SEALED_LEN);
    debug_assert!(record.len() <= MAX_RECORD);
    let mut out = sealed;
    out.extend_from_slice(&(record.len() as u16).to_be_bytes());
    out.extend_from_slice(record);
    out.resize(SLOT_LEN as usize, 0);
    out
}

/// Splits a written slot into its sealed state and its record; anything
/// but zeros after the record is tampering.
pub(super) fn split_slot(raw: &[u8]) -> Result<(&[u8], &[u8]), FormatError> {
    let n = u16::from_be_bytes([raw[SEALED_LEN], raw[SEALED_LEN + 1]]) as usize;
    if n > MAX_RECORD || raw[RECORD_AT + n..].iter().any(|b| *b != 0) {
        return Err(FormatError::StateTampered);
    }
    Ok((&raw[..SEALED_LEN], &raw[RECORD_AT..RECORD_AT + n]))
}

/// A parsed record; certificates still unchecked.
struct Record<'a> {
    time: Timestamp,
    device_cert: &'a [u8],
    edit_cert: Option<&'a [u8]>,
    signature: &'a [u8],
}

fn parse(record: &[u8]) -> Result<Record<'_>, FormatError> {
    let bad = FormatError::WriterRecordMalformed("writer record does not decode");
    let take = |at: &mut usize, n: usize| -> Result<&[u8], FormatError> {
        let s = record
            .get(*at..*at + n)
            .ok_or(FormatError::WriterRecordMalformed("writer record does not decode"))?;
        *at += n;
        Ok(s)
    };
    let mut at = 0;
    let time = i64::from_be_bytes(take(&mut at, 8)?.try_into().expect("took 8"));
    let n = u16::from_be_bytes(take(&mut at, 2)?.try_into().expect("took 2")) as usize;
    let device_cert = take(&mut at, n)?;
    let m = u16::from_be_bytes(take(&mut at, 2)?.try_into().expect("took 2")) as usize;
    let edit_cert = take(&mut at, m)?;
    let signature = take(&mut at, WRITER_SIGNATURE_LEN)?;
    if at != record.len() {
        return Err(bad);
    }
    Ok(Record {
        time,
        device_cert,
        edit_cert: (m > 0).then_some(edit_cert),
        signature,
    })
}

/// A certificate the server signed (a writer's device certificate, an
/// editor's edit certificate), its signature checked once per reader's
/// caches: the check depends only on the server key and the
/// certificate's bytes, which the cache key covers. Every version a
/// device signs carries the same device certificate, every version an
/// editor saves of one file the same edit certificate.
pub(super) fn certified<C: Clone>(
    bytes: &[u8],
    verifier: &Verifier,
    kept: impl FnOnce(&Caches) -> &Shared<Sha256Digest, C>,
    verify: impl FnOnce(&[u8], &ServerVerifyingKey) -> Result<C, PolicyError>,
) -> Result<C, PolicyError> {
    let server = verifier.key();
    let Some(caches) = verifier.caches() else {
        return verify(bytes, server);
    };
    let kept = kept(caches);
    let memo = sha256_parts(&[&server.0, bytes]);
    if let Some(c) = kept.get(&memo) {
        return Ok(c);
    }
    let c = verify(bytes, server)?;
    kept.put(memo, c.clone());
    Ok(c)
}

/// Checks the record of `state` (see docs/FORMAT.md for the order):
/// the device certificate against the server's key, the writer's signature
/// over this state, then the right to write: the owner's account, or an
/// edit certificate for this content and this key that grants `edit` and
/// was valid at the signing time.
pub(super) fn verify(
    header: &FileHeader,
    state: &State,
    record: &[u8],
    verifier: &Verifier,
) -> Result<WrittenBy, FormatError> {
    verify_signed(header, state, record, verifier).and_then(|w| not_removed(w, verifier))
}

/// [`verify`] but for the device's removal: for the slot before the
/// version a reader returns, which it never shows, so that the first save
/// from another device makes a file whose last version a removed device
/// saved readable again.
pub(super) fn verify_signed(
    header: &FileHeader,
    state: &State,
    record: &[u8],
    verifier: &Verifier,
) -> Result<WrittenBy, FormatError> {
    check(header, state, record, verifier, verify_writer)
}

/// Remembers in `verifier`'s caches that `record`, which `writer` has just
/// signed for `state`, verifies: a reader of this process then opens the
/// version without checking that signature again (an Ed25519 check, about
/// 40 us per file saved and reopened). Everything else a reader checks is
/// checked here as it would be (the device certificate, the signing time,
/// the edit certificate), so nothing a reader would refuse is remembered;
/// only the writer's own signature is taken as made, once the certificate
/// is found to certify the key that made it.
pub(super) fn remember_own(header: &FileHeader, state: &State, record: &[u8], writer: &Writer, verifier: &Verifier) {
    if verifier.caches().is_none() {
        return;
    }
    let mine = writer.public_key();
    let _ = check(header, state, record, verifier, |key, _, _| {
        if *key == mine {
            Ok(())
        } else {
            Err(CryptoError::Authentication)
        }
    });
}

/// [`verify_signed`] with the writer's signature checked by `signed`
/// (public key, message, signature).
fn check(
    header: &FileHeader,
    state: &State,
    record: &[u8],
    verifier: &Verifier,
    signed: impl FnOnce(&[u8; WRITER_KEY_LEN], &[u8], &[u8]) -> Result<(), CryptoError>,
) -> Result<WrittenBy, FormatError> {
    let server = verifier.key();
    let versions = verifier.caches().map(|c| &c.versions);
    if record.is_empty() {
        return Err(FormatError::WriterUnsigned);
    }
    let memo = sha256_parts(&[&server.0, &header.hash, state.plaintext().as_slice(), record]);
    if let Some(w) = versions.and_then(|v| v.get(&memo)) {
        return Ok(w);
    }
    let r = parse(record)?;
    let claimed = || {
        DeviceCertificate::decode_unverified(r.device_cert)
            .map_or_else(|_| "an unknown writer".to_string(), |c| c.account.to_string())
    };
    let dc = certified(r.device_cert, verifier, |c| &c.devices, DeviceCertificate::verify)
        .map_err(|_| FormatError::WriterCertificate { writer: claimed() })?;
    let writer = dc.account.to_string();
    signed(&dc.key, &signed_message(header, state, r.time), r.signature)
        .map_err(|_| FormatError::WriterSignatureInvalid { writer: writer.clone() })?;
    let not_allowed = |reason: String| FormatError::WriterNotAllowed {
        writer: writer.clone(),
        reason,
    };
    // A device removed from its account gets no new certificate: once
    // its last one ends, versions it signs are refused here.
    if r.time > dc.not_after {
        return Err(not_allowed(format!(
            "its device {} was certified until {}, before the version was signed at {} (the device may have been removed from the account)",
            dc.device_id,
            format_time(dc.not_after),
            format_time(r.time)
        )));
    }
    if r.time < dc.issued_at {
        return Err(not_allowed(format!(
            "the version claims {}, before its device {} was certified (at {})",
            format_time(r.time),
            dc.device_id,
            format_time(dc.issued_at)
        )));
    }
    if r.time > crate::policy::now().saturating_add(MAX_CLOCK_SKEW) {
        return Err(not_allowed(format!(
            "the version claims {}, later than this computer's clock allows",
            format_time(r.time)
        )));
    }
    let owner = &dc.account == header.licence.owner();
    if !owner {
        let bytes = r
            .edit_cert
            .ok_or_else(|| not_allowed("it is not the owner and shows no edit certificate".into()))?;
        let ec = certified(bytes, verifier, |c| &c.edits, EditCertificate::verify)
            .map_err(|_| not_allowed("its edit certificate is not signed by this file's server".into()))?;
        if ec.content_id != header.content_id() {
            return Err(not_allowed("its edit certificate is for another file".into()));
        }
        if ec.account != dc.account || ec.key != dc.key {
            return Err(not_allowed("its edit certificate was issued to another writer".into()));
        }
        if !ec.rights.has(Right::Edit) {
            return Err(not_allowed(format!("its certificate grants only {}", ec.rights)));
        }
        if r.time > ec.not_after {
            return Err(not_allowed(format!(
                "its edit certificate expired at {}, before the version was signed at {}",
                format_time(ec.not_after),
                format_time(r.time)
            )));
        }
        if r.time < ec.issued_at {
            return Err(not_allowed(format!(
                "the version claims {}, before its edit certificate was issued",
                format_time(r.time)
            )));
        }
    }
    let w = WrittenBy {
        account: dc.account,
        device_id: dc.device_id,
        time: r.time,
        owner,
    };
    if let Some(v) = versions {
        v.put(memo, w.clone());
    }
    Ok(w)
}

/// `w`, unless its device is listed as removed from its account (checked
/// at every open, remembered or not: the list grows).
fn not_removed(w: WrittenBy, verifier: &Verifier) -> Result<WrittenBy, FormatError> {
    match verifier.removed().removed_at(&w.device_id) {
        None => Ok(w),
        Some(removed_at) => Err(FormatError::WriterRemoved {
            writer: w.account.to_string(),
            device: w.device_id,
            removed_at,
        }),
    }
}
