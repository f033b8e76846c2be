//! Committing a protected file: sealing and signing the state record into
//! the spare slot, and, for journaled files, the crash-safe order of
//! syncs, journal and in-place writes.

use std::os::unix::fs::{FileExt, MetadataExt};

use super::ProtectedFile;
use super::journal::Journal;
use super::journal_dir::JournalDir;
use crate::format::FormatError;
use crate::format::header::SLOT_LEN;
use crate::format::state::{DURABLE, State};
use crate::format::writer::{self, Writer, compose_slot};

impl ProtectedFile {
    /// Commits the state record (length, commitment), so that a reopen sees
    /// every write made so far. Journaled files stay recoverable whatever
    /// happens next; no fsync unless the commit itself needs one.
    pub fn flush(&mut self) -> Result<(), FormatError> {
        self.commit(false)
    }

    /// Before the first change of a journaled file, names it in the
    /// writer's change log: a crash from here on may leave blocks past
    /// the last commit, which its next open may then cut.
    pub(super) fn note_change(&mut self) -> Result<(), FormatError> {
        if let Some(dir) = &self.journal
            && !self.noted
        {
            dir.note_change(self.header.content_id(), self.file.metadata()?.ino())?;
            self.noted = true;
        }
        Ok(())
    }

    fn commit(&mut self, durable: bool) -> Result<(), FormatError> {
        if durable && let Some(dir) = &self.journal {
            dir.sync_log()?;
        }
        if !self.dirty {
            if durable && self.journal.is_some() && self.slot != self.anchor {
                // An fsync after an unsynced commit: make that state durable
                // by committing it again, synced.
                self.dirty = true;
            } else {
                if durable {
                    self.file.sync_data()?;
                }
                return Ok(());
            }
        }
        // A version signed after the writer's device or edit certificate
        // ended is one every reader refuses: keep the last good version.
        if let Some(until) = self.writer.as_ref().and_then(Writer::expires)
            && crate::policy::now() > until
        {
            return Err(FormatError::WriterExpired { until });
        }
        let mut next = State {
            generation: self.state.generation + 1,
            seals: self.state.seals + 1,
            ..self.state.clone()
        };
        match self.journal.clone() {
            None => {
                let slot = 1 - self.slot;
                self.file
                    .write_all_at(&self.slot_bytes(&next, slot), self.slot_offset(slot))?;
                if durable {
                    self.file.sync_data()?;
                }
                self.slot = slot;
            }
            Some(dir) => self.commit_journaled(&dir, &mut next, durable)?,
        }
        self.state = next;
        self.dirty = false;
        self.committed_blocks = self.tags.len() as u64;
        Ok(())
    }

    fn slot_offset(&self, slot: u8) -> u64 {
        self.header.state_offset() + slot as u64 * SLOT_LEN
    }

    /// The bytes of `slot` holding `state`: sealed, then signed by this
    /// file's writer. One write puts both on disk, so the record is
    /// committed with its state (a torn slot fails as a whole).
    fn slot_bytes(&self, state: &State, slot: u8) -> Vec<u8> {
        let record = match &self.writer {
            Some(w) => {
                let record = w.record(&self.header, state);
                if let Some(v) = &self.verifier {
                    writer::remember_own(&self.header, state, &record, w, v);
                }
                record
            }
            None => Vec::new(),
        };
        compose_slot(state.seal(&self.keys.state, &self.header.hash, slot), &record)
    }

    /// The crash-safe commit; it never overwrites the anchor's slot and
    /// never changes the anchor's blocks in place before a newer durable
    /// state exists:
    /// - committed blocks rewritten: sync the new blocks past the end, then
    ///   journal the rewrites with the new (durable) state, sync, apply;
    /// - a cut below the anchor's end, or an fsync: sync the blocks, write
    ///   the state marked durable, sync, then cut;
    /// - otherwise: write the state, unsynced, into the non-anchor slot (a
    ///   power cut may lose it; the anchor still describes the disk).
    fn commit_journaled(&mut self, dir: &JournalDir, next: &mut State, durable: bool) -> Result<(), FormatError> {
        let size = self.header.geometry.ciphertext_size(next.len);
        let slot = 1 - self.anchor;
        let physical = self.file.metadata()?.len();
        if !self.pending.is_empty() {
            next.flags = DURABLE;
            self.file.sync_data()?;
            // Cloned, not taken: if the journal cannot be written (disk full)
            // nothing changed on disk and the rewrites stay pending.
            let mut writes: Vec<(u64, Vec<u8>)> = self
                .pending
                .iter()
                .map(|(i, b)| (self.header.geometry.block_offset(*i), b.clone()))
                .collect();
            writes.push((self.slot_offset(slot), self.slot_bytes(next, slot)));
            let j = Journal {
                header_hash: self.header.hash,
                inode: self.file.metadata()?.ino(),
                writes,
                size,
            };
            j.write(dir, &self.header.content_id())?;
            #[cfg(test)]
            if super::CRASH_AFTER_JOURNAL.with(|c| c.get()) {
                return Err(FormatError::Io(std::io::Error::other(
                    "simulated crash after the journal",
                )));
            }
            j.apply(&self.file)?;
            dir.remove_journal(&self.header.content_id())?;
            self.pending.clear();
        } else if durable || size < self.anchor_size {
            next.flags = DURABLE;
            self.file.sync_data()?;
            self.file
                .write_all_at(&self.slot_bytes(next, slot), self.slot_offset(slot))?;
            self.file.sync_data()?;
            if physical != size {
                self.file.set_len(size)?;
            }
        } else {
            next.flags = 0;
            self.file
                .write_all_at(&self.slot_bytes(next, slot), self.slot_offset(slot))?;
            if physical > size {
                self.file.set_len(size)?;
            }
        }
        self.slot = slot;
        if next.durable() {
            self.anchor = slot;
            self.anchor_size = size;
        }
        Ok(())
    }

    /// [`flush`](Self::flush), then `fdatasync` the file.
    pub fn sync(&mut self) -> Result<(), FormatError> {
        self.commit(true)
    }
}

impl Drop for ProtectedFile {
    fn drop(&mut self) {
        if self.dirty
            && let Err(e) = self.flush()
        {
            tracing::error!(content_id = %self.header.content_id(), error = %e, "could not commit protected-file state on close");
        }
        if !self.dirty
            && self.pending.is_empty()
            && let Some(c) = &self.caches
        {
            c.tags
                .remember(self.header.content_id(), self.state.commitment, &self.tags);
        }
        if let Some(dir) = &self.journal
            && self.noted
        {
            let size = self.header.geometry.ciphertext_size(self.state.len);
            let clean = !self.dirty && self.pending.is_empty() && self.file.metadata().is_ok_and(|m| m.len() == size);
            if let Ok(m) = self.file.metadata() {
                let id = self.header.content_id();
                if !clean {
                    dir.left_unclean(id, m.ino());
                } else if let Err(e) = dir.closed_cleanly(id, m.ino()) {
                    tracing::warn!(content_id = %id, error = %e, "could not note a clean close");
                }
            }
        }
    }
}
