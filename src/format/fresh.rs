//! A new protected file's first bytes, made before the file itself.

use super::FormatError;
use super::caches::Caches;
use super::header::{FileHeader, SLOT_LEN};
use super::keys::FileKeys;
use super::state::{DURABLE, State};
use super::writer::{Writer, compose_slot};
use crate::crypto::ContentKey;

/// Everything a new, empty protected file holds, ready to be written: the
/// header, the file's keys and the sealed state of an empty file. Making
/// it (key derivation, header MAC, a state seal) needs no file, so a
/// process that creates many files can make these ahead and have a
/// creation cost one write. Holds the file's keys (wiped on drop).
pub struct Fresh {
    pub(super) header: FileHeader,
    pub(super) keys: FileKeys,
    pub(super) state: State,
    /// Signs this file's commits, the first one included.
    pub(super) writer: Option<Writer>,
    /// Header, then zeroes up to the state slots, then the first slot.
    pub(super) prefix: Vec<u8>,
}

impl Fresh {
    /// The first bytes of a file with `header`, made with `cek` (the key
    /// the header was made with, which it checks), with an unsigned first
    /// state: such a file opens only where writers are not checked.
    pub fn new(header: FileHeader, cek: &ContentKey) -> Result<Self, FormatError> {
        Self::signed(header, cek, None)
    }

    /// [`new`](Self::new) with the first state signed by `writer`, who also
    /// signs every later commit of the file.
    pub fn signed(header: FileHeader, cek: &ContentKey, writer: Option<Writer>) -> Result<Self, FormatError> {
        Self::continuing(header, cek, writer, 0, None)
    }

    /// [`signed`](Self::signed) for a new version of an existing file
    /// whose key has already sealed `seals_before` times: the count goes
    /// on from there (section 9 of docs/FORMAT.md bounds every seal under
    /// one key, whichever file made it), so saving a document as a new
    /// file again and again never resets it. `KeyWornOut` past the bound.
    ///
    /// The header is checked as a reader checks it, with `caches` if given:
    /// the publishing licence's device certificate is then checked once
    /// for all the files a mount makes, and the header's signature, found
    /// good here, is not checked again when the file is opened.
    pub fn continuing(
        header: FileHeader,
        cek: &ContentKey,
        writer: Option<Writer>,
        seals_before: u64,
        caches: Option<&Caches>,
    ) -> Result<Self, FormatError> {
        Self::make(header, cek, writer, seals_before, caches, true)
    }

    /// [`signed`](Self::signed) for a header whose publishing licence this
    /// process has just signed (`licence::NewContent` makes these): checked
    /// as [`continuing`](Self::continuing) checks it, but for the Ed25519
    /// maths of the licence signature, which is taken as made. A creation
    /// then costs one Ed25519 signature fewer checks; what a reader would
    /// refuse for any other reason (a wrong key, a MAC, a device key that
    /// did not certify the signing key) is still refused here.
    pub fn signed_here(
        header: FileHeader,
        cek: &ContentKey,
        writer: Option<Writer>,
        caches: Option<&Caches>,
    ) -> Result<Self, FormatError> {
        Self::make(header, cek, writer, 0, caches, false)
    }

    fn make(
        header: FileHeader,
        cek: &ContentKey,
        writer: Option<Writer>,
        seals_before: u64,
        caches: Option<&Caches>,
        maths: bool,
    ) -> Result<Self, FormatError> {
        // A first version readers would refuse is not written at all.
        if let Some(until) = writer.as_ref().and_then(Writer::expires)
            && crate::policy::now() > until
        {
            return Err(FormatError::WriterExpired { until });
        }
        let seals = seals_before.saturating_add(1);
        if seals > super::MAX_SEALS {
            return Err(FormatError::KeyWornOut);
        }
        let keys = FileKeys::derive(cek, &header.content_id());
        if maths {
            header.authenticate(&keys, caches)?;
        } else {
            header.authenticate_signed_here(&keys, caches)?;
        }
        let g = header.geometry;
        let mut prefix = vec![0u8; g.data_offset as usize];
        prefix[..header.bytes.len()].copy_from_slice(&header.bytes);
        let state = State {
            generation: 1,
            len: 0,
            seals,
            flags: DURABLE,
            commitment: [0; 32],
        };
        let so = header.state_offset() as usize;
        let record = writer.as_ref().map(|w| w.record(&header, &state)).unwrap_or_default();
        prefix[so..so + SLOT_LEN as usize]
            .copy_from_slice(&compose_slot(state.seal(&keys.state, &header.hash, 0), &record));
        Ok(Self {
            header,
            keys,
            state,
            writer,
            prefix,
        })
    }

    /// The header the file will have.
    pub fn header(&self) -> &FileHeader {
        &self.header
    }
}
