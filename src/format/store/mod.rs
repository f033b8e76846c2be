//! The journaled file store: a protected file on disk, opened for random
//! access. The codec in `format` says what the bytes mean; this module
//! decides when they reach the disk (`pwrite`, `fdatasync`, `fallocate`),
//! keeps a redo journal so that every state on disk is recoverable, and
//! spreads long requests over a thread pool.
//!
//! `ProtectedFile` is defined here; its methods are grouped by job:
//! `open` (opening, recovery, damage reports), `read`, `write` (resealing
//! blocks) and `commit` (state records and the journal).

mod commit;
mod disk;
mod journal;
mod journal_dir;
pub(super) mod known_tags;
mod open;
mod parallel;
mod read;
mod tag_table;
mod write;

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use super::Caches;
use super::fresh::Fresh;
use super::header::FileHeader;
use super::keys::FileKeys;
use super::state::State;
use super::writer::{Writer, WrittenBy};
use super::{FormatError, Verifier};
use crate::crypto::ContentKey;

pub use disk::read_header;
#[cfg(feature = "mount")]
pub(crate) use disk::read_up_to;
pub use journal::Recovery;
pub use journal_dir::{JournalDir, Leave};
use tag_table::TagTable;

#[cfg(test)]
thread_local! {
    /// Test hook: stop a journaled commit right after its journal is durable.
    pub(in crate::format) static CRASH_AFTER_JOURNAL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// An open protected file: a decrypting, encrypting view of `File` with
/// random access. Reads decrypt only the blocks asked for; writes reseal
/// only the blocks they touch. Changes are committed to the state record by
/// [`flush`](Self::flush) / [`sync`](Self::sync) (and, best effort, on drop).
///
/// Opened with a journal directory, every state on disk is recoverable: new
/// blocks past the committed end are written directly, rewrites of committed
/// blocks are held until the next commit and then go through a redo journal
/// (see `docs/ARCHITECTURE.md`). Without one, writes go straight to the file
/// and a crash between a write and the next commit leaves a file that reports
/// damage on open; use that mode only for files written start to finish and
/// then renamed into place.
pub struct ProtectedFile {
    file: File,
    header: FileHeader,
    keys: FileKeys,
    state: State,
    slot: u8,
    /// Every block's tag, in memory or spilled to the journal folder
    /// (`tag_table.rs`). Shared with `known_tags` (no copy when a file is
    /// closed or reopened unchanged); copied on the first change while
    /// shared.
    tags: Arc<TagTable>,
    dirty: bool,
    journal: Option<Arc<JournalDir>>,
    /// This writer's change log names the file (see [`JournalDir`]).
    noted: bool,
    committed_blocks: u64,
    pending: BTreeMap<u64, Vec<u8>>,
    anchor: u8,
    anchor_size: u64,
    writer: Option<Writer>,
    written_by: Option<WrittenBy>,
    /// Its reader's caches, where its tag table is remembered.
    caches: Option<Arc<Caches>>,
    /// The reader whose caches learn of each version `writer` signs, so
    /// that reopening a file this process saved checks no signature of
    /// its own (`writer::remember_own`).
    verifier: Option<Verifier>,
}

impl std::fmt::Debug for ProtectedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProtectedFile")
            .field("content_id", &self.header.content_id())
            .field("len", &self.state.len)
            .finish()
    }
}

impl ProtectedFile {
    /// Writes a fresh, empty protected file with `header` into `file`,
    /// which must be empty (just made, or found empty) and open for reading
    /// and writing. The key must be the one the header was made with.
    pub fn create(file: File, header: FileHeader, cek: &ContentKey) -> Result<Self, FormatError> {
        Self::create_from(file, Fresh::new(header, cek)?)
    }

    /// [`create`](Self::create) with the first bytes made beforehand: one
    /// write, nothing truncated (so `file` must be empty).
    pub fn create_from(file: File, fresh: Fresh) -> Result<Self, FormatError> {
        debug_assert_eq!(
            file.metadata().map(|m| m.len()).ok(),
            Some(0),
            "create needs an empty file"
        );
        let Fresh {
            header,
            keys,
            state,
            writer,
            prefix,
        } = fresh;
        let g = header.geometry;
        file.write_all_at(&prefix, 0)?;
        Ok(Self {
            file,
            header,
            keys,
            state,
            slot: 0,
            tags: Arc::default(),
            dirty: false,
            journal: None,
            noted: false,
            committed_blocks: 0,
            pending: BTreeMap::new(),
            anchor: 0,
            anchor_size: g.data_offset,
            writer,
            written_by: None,
            caches: None,
            verifier: None,
        })
    }

    /// Remembers in `verifier`'s caches this file's tag table when it is
    /// closed unchanged or committed, and that each version its writer
    /// signs verifies (for a file just made).
    pub fn with_verifier(mut self, verifier: &Verifier) -> Self {
        self.caches = verifier.caches().cloned();
        self.verifier = verifier.caches().is_some().then(|| verifier.clone());
        self
    }

    /// Makes later commits crash-safe through a journal kept in `dir`
    /// (for a file just made by [`create`](Self::create)).
    pub fn with_journal(mut self, dir: &Arc<JournalDir>) -> Self {
        self.journal = Some(dir.clone());
        self
    }

    /// Signs every later commit with `writer` (one Ed25519 signature per
    /// commit). Without a writer, commits carry no writer record, and
    /// readers that check writers refuse them.
    pub fn with_writer(mut self, writer: Writer) -> Self {
        self.writer = Some(writer);
        self
    }

    /// Replaces the writer that signs later commits (an editor's renewed
    /// edit certificate).
    pub fn set_writer(&mut self, writer: Writer) {
        self.writer = Some(writer);
    }

    /// The writer that signs this file's commits, if any.
    pub fn writer(&self) -> Option<&Writer> {
        self.writer.as_ref()
    }

    /// The generation of the current state (one more at every commit).
    pub fn generation(&self) -> u64 {
        self.state.generation
    }

    /// Who saved the version this file was opened at, when it was opened
    /// with writers checked.
    pub fn written_by(&self) -> Option<&WrittenBy> {
        self.written_by.as_ref()
    }

    /// The header (policy, owner, geometry).
    pub fn header(&self) -> &FileHeader {
        &self.header
    }

    /// How many seals the file's key has made so far (docs/FORMAT.md
    /// section 9), uncommitted ones included.
    pub fn seals(&self) -> u64 {
        self.state.seals
    }

    /// Plaintext length in bytes.
    pub fn len(&self) -> u64 {
        self.state.len
    }

    /// Whether the plaintext is empty.
    pub fn is_empty(&self) -> bool {
        self.state.len == 0
    }

    /// The underlying file (for `fsync`, `flock`, metadata).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Whether its tag table left memory (tests).
    #[cfg(test)]
    pub(crate) fn tags_spilled(&self) -> bool {
        self.tags.spilled() > 0
    }
}
