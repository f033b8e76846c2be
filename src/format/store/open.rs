//! Opening a protected file: checking header, states and the block
//! commitment, recovering after a crash, and naming the damage when the
//! file does not match its state.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::sync::Arc;

use super::ProtectedFile;
use super::disk::read_up_to;
use super::journal::{Journal, Recovery};
use super::journal_dir::{JournalDir, Leave};
use super::read_header;
use super::tag_table::TagTable;
use crate::crypto::{ContentKey, NONCE_LEN, TAG_LEN};
use crate::format::block::{Tag, Wiped, block_aad};
use crate::format::header::SLOT_LEN;
use crate::format::keys::FileKeys;
use crate::format::state::{State, term, xor_into};
use crate::format::writer;
use crate::format::{Caches, FormatError, Verifier};

impl ProtectedFile {
    /// Opens an existing protected file with its content key, checking the
    /// header, the state record, the file size and the block commitment,
    /// but not who wrote it: for tools that repair or inspect files. Costs
    /// one pass over the block tags (not a decryption of the data).
    pub fn open(file: File, cek: &ContentKey) -> Result<Self, FormatError> {
        Self::open_inner(file, cek, None, None, None).map(|(pf, _)| pf)
    }

    /// [`open`](Self::open), and checks that the current version was signed
    /// by the owner or by a holder of `edit` certified by the server whose
    /// signing key `server` holds (docs/FORMAT.md, "Writer records"): no
    /// byte of a version written by anyone else is ever returned. Checks
    /// found in `server`'s caches are not repeated, and the file's tags are
    /// remembered there.
    pub fn open_verified(file: File, cek: &ContentKey, server: &Verifier) -> Result<Self, FormatError> {
        Self::open_inner(file, cek, None, Some(server), server.caches()).map(|(pf, _)| pf)
    }

    /// [`open`](Self::open), finding checks and tag tables in `caches`
    /// and remembering them there.
    pub fn open_cached(file: File, cek: &ContentKey, caches: &Arc<Caches>) -> Result<Self, FormatError> {
        Self::open_inner(file, cek, None, None, Some(caches)).map(|(pf, _)| pf)
    }

    /// Opens for crash-safe writing with a journal in `dir`: first replays
    /// or discards a journal left by a crash, and cuts uncommitted data from
    /// the end when a writer that died was changing the file; then checks
    /// the file as [`open`](Self::open) does. Without such proof of a crash
    /// nothing on disk is changed: a file that does not match its newest
    /// state fails to open. Returns what recovery did, for logs and status.
    pub fn open_journaled(
        file: File,
        cek: &ContentKey,
        dir: &Arc<JournalDir>,
    ) -> Result<(Self, Recovery), FormatError> {
        Self::open_inner(file, cek, Some(dir), None, None)
    }

    /// [`open_journaled`](Self::open_journaled), checking writers as
    /// [`open_verified`](Self::open_verified) does. A state whose record
    /// does not verify is passed over like a torn one (a crash can tear a
    /// slot between its state and its record); a state soundly signed by a
    /// writer without `edit` fails the open, naming the writer.
    pub fn open_journaled_verified(
        file: File,
        cek: &ContentKey,
        dir: &Arc<JournalDir>,
        server: &Verifier,
    ) -> Result<(Self, Recovery), FormatError> {
        Self::open_inner(file, cek, Some(dir), Some(server), server.caches())
    }

    fn open_inner(
        file: File,
        cek: &ContentKey,
        dir: Option<&Arc<JournalDir>>,
        server: Option<&Verifier>,
        caches: Option<&Arc<Caches>>,
    ) -> Result<(Self, Recovery), FormatError> {
        let header = read_header(&file)?;
        let keys = FileKeys::derive(cek, &header.content_id());
        header.authenticate(&keys, caches.map(|c| &**c))?;
        let id = header.content_id();
        let mut recovery = Recovery::default();
        let mut leave = None;
        if let Some(dir) = dir {
            let ino = file.metadata()?.ino();
            leave = dir.leave(id, ino);
            Journal::recover(dir, &id, &file, &header.hash, &mut recovery)?;
            if recovery.discarded {
                // A commit was cut short: its file was being changed.
                leave = leave.max(Some(Leave::Trim));
            }
        }
        let g = header.geometry;
        let mut tail = vec![0u8; (g.data_offset - header.bytes.len() as u64) as usize];
        if read_up_to(&file, &mut tail, header.bytes.len() as u64)? < tail.len() {
            return Err(FormatError::HeaderTruncated);
        }
        let pad = tail.len() - 2 * SLOT_LEN as usize;
        if tail[..pad].iter().any(|b| *b != 0) {
            return Err(FormatError::HeaderTampered("non-zero padding"));
        }
        let slots = &tail[pad..];
        let size = file.metadata()?.len();
        let mut pf = Self {
            file,
            header,
            keys,
            state: State::default(),
            slot: 0,
            tags: Arc::default(),
            dirty: false,
            journal: dir.cloned(),
            noted: false,
            committed_blocks: 0,
            pending: BTreeMap::new(),
            anchor: 0,
            anchor_size: 0,
            writer: None,
            written_by: None,
            caches: caches.cloned(),
            verifier: server.filter(|v| v.caches().is_some()).cloned(),
        };
        if pf.journal.is_none() {
            let (state, slot, record) = State::pick(&pf.keys.state, &pf.header.hash, slots)?;
            if let Some(server) = server {
                pf.written_by = Some(writer::verify(&pf.header, &state, record, server)?);
                // The other slot, when written, was committed by a writer
                // too: a strict reader accepts no byte it cannot vouch for.
                let n = SLOT_LEN as usize;
                let other = 1 - slot;
                let raw = &slots[other as usize * n..(other as usize + 1) * n];
                if let Some((older, record)) = State::open(&pf.keys.state, &pf.header.hash, other, raw)? {
                    writer::verify_signed(&pf.header, &older, record, server)?;
                }
            }
            let expected = g.ciphertext_size(state.len);
            if size < expected {
                return Err(FormatError::Truncated { expected, actual: size });
            }
            if size > expected {
                return Err(FormatError::TrailingData { expected, actual: size });
            }
            (pf.state, pf.slot) = (state, slot);
            pf.load_tags()?;
        } else {
            pf.recover_state(slots, size, leave, server, &mut recovery)?;
            if let Some(dir) = &pf.journal {
                dir.settled(id, pf.file.metadata()?.ino());
            }
        }
        pf.committed_blocks = pf.tags.len() as u64;
        Ok((pf, recovery))
    }

    /// Reads what can still be read of a file that fails to open: under
    /// its newest authentic state, each block that is on disk and
    /// authenticates is handed to `sink` with its plaintext offset, each
    /// other block as `None` (with its offset and length) so that the
    /// caller can report the damaged range. The file is only read.
    /// Returns the plaintext length the state names.
    pub fn salvage(
        file: &File,
        cek: &ContentKey,
        mut sink: impl FnMut(u64, u64, Option<&[u8]>) -> std::io::Result<()>,
    ) -> Result<u64, FormatError> {
        let header = read_header(file)?;
        let keys = FileKeys::derive(cek, &header.content_id());
        header.authenticate(&keys, None)?;
        let g = header.geometry;
        let mut slots = vec![0u8; 2 * SLOT_LEN as usize];
        if read_up_to(file, &mut slots, header.state_offset())? < slots.len() {
            return Err(FormatError::HeaderTruncated);
        }
        let (state, _, _) = State::pick(&keys.state, &header.hash, &slots)?;
        let n = g.blocks_for(state.len);
        let mut raw = Wiped::zeroed(g.stride() as usize);
        for i in 0..n {
            let blen = g.block_len(i, state.len);
            let chunk = &mut raw[..blen + crate::crypto::BLOCK_OVERHEAD];
            let at = i * g.block_size;
            let opened = read_up_to(file, chunk, g.block_offset(i))? == chunk.len() && {
                let len = chunk.len();
                let nonce: [u8; NONCE_LEN] = chunk[..NONCE_LEN].try_into().unwrap();
                let tag: Tag = chunk[len - TAG_LEN..].try_into().unwrap();
                let aad = block_aad(&header, i, i + 1 == n);
                keys.blocks
                    .open(&nonce, &aad, &mut chunk[NONCE_LEN..len - TAG_LEN], &tag)
                    .is_ok()
            };
            let len = chunk.len();
            let plain = opened.then(|| &chunk[NONCE_LEN..len - TAG_LEN]);
            sink(at, blen as u64, plain)?;
        }
        Ok(state.len)
    }

    /// Journaled open: takes the newest state that the blocks on disk bear
    /// out, going back to the last durable state (see `state::DURABLE`) only
    /// after the machine went down (`Leave::Rollback`), and cutting
    /// uncommitted data past the chosen end only when a writer died while
    /// changing the file (`leave` is set). Otherwise the newest state must
    /// match the file exactly.
    fn recover_state(
        &mut self,
        slots: &[u8],
        size: u64,
        leave: Option<Leave>,
        server: Option<&Verifier>,
        recovery: &mut Recovery,
    ) -> Result<(), FormatError> {
        let g = self.header.geometry;
        let (key, hash) = (&self.keys.state, &self.header.hash);
        let mut found: Vec<(State, u8, &[u8])> = (0..2u8)
            .filter_map(|i| {
                let raw = &slots[i as usize * SLOT_LEN as usize..(i as usize + 1) * SLOT_LEN as usize];
                State::open(key, hash, i, raw)
                    .ok()
                    .flatten()
                    .map(|(st, rec)| (st, i, rec))
            })
            .collect();
        found.sort_by_key(|(st, _, _)| std::cmp::Reverse(st.generation));
        // The anchor: the newest state that holds on any power loss. Commits
        // that are not synced never overwrite its slot.
        let (anchor, anchor_size) = found
            .iter()
            .find(|(st, _, _)| st.durable())
            .map(|(st, i, _)| (*i, g.ciphertext_size(st.len)))
            .unwrap_or((found.first().map_or(0, |f| f.1), 0));
        let anchor_generation = found
            .iter()
            .find(|(st, _, _)| st.durable())
            .map(|(st, _, _)| st.generation);
        let mut first_err = None;
        for (k, (state, slot, record)) in found.into_iter().enumerate() {
            // Never behind the anchor: it holds after any crash, so a disk
            // that does not bear it out (cut short, a block changed) is
            // damaged, and going back further would cut synced data off.
            if anchor_generation.is_some_and(|a| state.generation < a) {
                break;
            }
            // Only a power cut loses a commit; a killed process or no crash
            // at all leaves the newest one matching the disk.
            if k > 0 && leave != Some(Leave::Rollback) {
                break;
            }
            if let Some(server) = server {
                match writer::verify(&self.header, &state, record, server) {
                    Ok(w) => self.written_by = Some(w),
                    Err(e @ (FormatError::WriterNotAllowed { .. } | FormatError::WriterRemoved { .. })) => {
                        return Err(e);
                    }
                    Err(e) => {
                        first_err.get_or_insert(e);
                        continue;
                    }
                }
            }
            let expected = g.ciphertext_size(state.len);
            if size < expected {
                first_err.get_or_insert(FormatError::Truncated { expected, actual: size });
                continue;
            }
            if size > expected && leave.is_none() {
                first_err.get_or_insert(FormatError::TrailingData { expected, actual: size });
                continue;
            }
            (self.state, self.slot) = (state, slot);
            match self.load_tags() {
                Ok(()) => {
                    if size > expected {
                        self.file.set_len(expected)?;
                        recovery.trimmed = size - expected;
                    }
                    recovery.rolled_back = k > 0;
                    (self.anchor, self.anchor_size) = (anchor, anchor_size.min(expected));
                    return Ok(());
                }
                Err(FormatError::Io(e)) => return Err(FormatError::Io(e)),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        Err(first_err.unwrap_or(FormatError::StateTampered))
    }

    fn load_tags(&mut self) -> Result<(), FormatError> {
        let g = self.header.geometry;
        let len = self.state.len;
        let n = g.blocks_for(len);
        let id = self.header.content_id();
        if let Some(tags) = self
            .caches
            .as_ref()
            .and_then(|c| c.tags.recall(&id, &self.state.commitment, n))
        {
            self.tags = tags;
            return Ok(());
        }
        let spill = self.journal.as_deref();
        let mut tags = TagTable::for_blocks(n as usize, spill);
        if let Some(c) = &self.caches {
            c.tags.make_room(tags.memory());
        }
        let mut commitment = [0u8; 32];
        const CHUNK: u64 = 256;
        let mut buf = Vec::new();
        let mut run = Vec::with_capacity(CHUNK as usize);
        for start in (0..n).step_by(CHUNK as usize) {
            let end = (start + CHUNK).min(n);
            let from = g.block_offset(start);
            let to = g.tag_offset(end - 1, len) + TAG_LEN as u64;
            buf.resize((to - from) as usize, 0);
            self.file.read_exact_at(&mut buf, from)?;
            run.clear();
            for i in start..end {
                let o = (g.tag_offset(i, len) - from) as usize;
                let tag: Tag = buf[o..o + TAG_LEN].try_into().unwrap();
                xor_into(&mut commitment, &term(&self.keys.commit, i, &tag));
                run.push(tag);
            }
            tags.write_run(start, &run, spill)?;
        }
        self.tags = Arc::new(tags);
        if commitment != self.state.commitment {
            return Err(self.diagnose());
        }
        if let Some(c) = &self.caches {
            c.tags.remember(id, commitment, &self.tags);
        }
        Ok(())
    }

    /// Names the damage once the commitment disagrees: a block that fails
    /// where it stands but fits elsewhere was moved; one that fits nowhere
    /// is corrupt; if all blocks authenticate, one was replayed.
    fn diagnose(&self) -> FormatError {
        let n = self.tags.len() as u64;
        let mut bad = Vec::new();
        for i in 0..n {
            if let Err(e) = self.read_block(i) {
                match e {
                    FormatError::Io(e) => return FormatError::Io(e),
                    _ => bad.push(i),
                }
            }
        }
        for &i in &bad {
            for &j in bad.iter().filter(|j| **j != i) {
                if self.block_fits(i, j) {
                    return FormatError::BlockMoved {
                        index: i,
                        belongs_at: j,
                    };
                }
            }
        }
        match bad.first() {
            Some(&index) => FormatError::BlockCorrupt { index },
            None => FormatError::StaleBlock,
        }
    }

    /// The most seals either state record of the protected `file` counts,
    /// without opening the file for use (nothing is checked beyond the
    /// header and the states): what a new version of the file under the
    /// same key continues from. Both records count, as the newer one may
    /// be a commit the blocks on disk do not bear out.
    pub fn seals_used(file: &File, cek: &ContentKey) -> Result<u64, FormatError> {
        let header = read_header(file)?;
        let keys = FileKeys::derive(cek, &header.content_id());
        header.authenticate(&keys, None)?;
        let mut slots = vec![0u8; 2 * SLOT_LEN as usize];
        if read_up_to(file, &mut slots, header.state_offset())? < slots.len() {
            return Err(FormatError::HeaderTruncated);
        }
        let (half, key, hash) = (SLOT_LEN as usize, &keys.state, &header.hash);
        let a = State::open(key, hash, 0, &slots[..half])?.map(|s| s.0.seals);
        let b = State::open(key, hash, 1, &slots[half..])?.map(|s| s.0.seals);
        a.max(b).ok_or(FormatError::StateTampered)
    }
}
