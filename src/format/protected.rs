//! Random-access reading and writing of one protected file.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::sync::Arc;

use zeroize::Zeroize;

use super::fresh::Fresh;
use super::geometry::Geometry;
use super::header::{FileHeader, SLOT_LEN, read_header, read_up_to};
use super::journal::{Journal, Recovery};
use super::journal_dir::{JournalDir, Leave};
use super::keys::FileKeys;
use super::known_tags;
use super::state::{DURABLE, State, term, xor_into};
use super::writer::{self, Writer, WrittenBy, compose_slot};
use super::{FormatError, MAX_LEN, MAX_SEALS};
use crate::crypto::{ContentKey, NONCE_LEN, ServerVerifyingKey, Sha256Digest, TAG_LEN};

/// Below this many blocks a request is sealed or opened on one thread; above
/// it, split across cores (handing work to a helper thread costs about one
/// block's worth).
const PARALLEL_BLOCKS: u64 = 32;
/// Blocks in one share of a parallel request (256 KiB at the default block
/// size).
const SHARE_BLOCKS: u64 = 64;
/// Rewritten committed blocks held before a commit is forced (8 MiB at the
/// default block size): bounds memory between application fsyncs.
const MAX_PENDING: usize = 2048;

type Tag = [u8; TAG_LEN];

/// A heap buffer that holds plaintext at some point, wiped on drop.
/// `Zeroizing<Vec<u8>>` would wipe it one volatile byte at a time (zeroize's
/// `Vec` impl goes element by element), which costs about half as much as
/// decrypting it; the slice impl wipes in bulk behind an optimisation barrier.
struct Wiped(Vec<u8>);

impl Wiped {
    fn zeroed(len: usize) -> Self {
        Self(vec![0u8; len])
    }
}

impl std::ops::Deref for Wiped {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl std::ops::DerefMut for Wiped {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl Wiped {
    /// Zeroes the bytes. Never resized after creation, so there is no spare
    /// capacity to wipe.
    fn wipe(&mut self) {
        self.0.as_mut_slice().zeroize();
    }
}

impl Drop for Wiped {
    fn drop(&mut self) {
        self.wipe();
    }
}

#[cfg(test)]
thread_local! {
    /// Test hook: stop a journaled commit right after its journal is durable.
    pub(super) static CRASH_AFTER_JOURNAL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
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
    /// Every block's tag. Shared with `known_tags` (no copy when a file is
    /// closed or reopened unchanged); copied on the first change while
    /// shared.
    tags: Arc<Vec<Tag>>,
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
}

impl std::fmt::Debug for ProtectedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProtectedFile")
            .field("content_id", &self.header.content_id())
            .field("len", &self.state.len)
            .finish()
    }
}

fn block_aad(header: &FileHeader, index: u64, last: bool) -> [u8; 57] {
    let mut aad = [0u8; 57];
    aad[..16].copy_from_slice(&header.body.content_id.0);
    aad[16..48].copy_from_slice(&header.hash);
    aad[48..56].copy_from_slice(&index.to_be_bytes());
    aad[56] = last as u8;
    aad
}

/// CPUs this process may use, asked once (the standard library reads the
/// cgroup limits on every call).
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Helper threads for long requests: one fewer than the cores, because the
/// calling thread does a share itself. Started once; a thread per request
/// cost as much as sealing a few blocks.
fn helpers() -> Option<&'static rayon::ThreadPool> {
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        if cores() < 2 {
            return None;
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(cores() - 1)
            .thread_name(|i| format!("rightsfs-crypto-{i}"))
            .build()
            .map_err(|e| tracing::warn!(error = %e, "no crypto helper threads; sealing on one thread"))
            .ok()
    })
    .as_ref()
}

/// Runs `f(first_index, bytes)` over a run of blocks laid out at `stride`,
/// cut into shares of [`SHARE_BLOCKS`] blocks that the calling thread and
/// the helper threads take in turn. Shares smaller than a core's half let
/// one thread write its sealed share while another still seals, instead of
/// both waiting for the file's lock at the end.
fn for_block_runs<F>(buf: &mut [u8], first: u64, count: u64, stride: usize, f: F) -> Result<(), FormatError>
where
    F: Fn(u64, &mut [u8]) -> Result<(), FormatError> + Sync,
{
    let pool = match helpers() {
        Some(pool) if count >= PARALLEL_BLOCKS => pool,
        _ => return f(first, buf),
    };
    let per = SHARE_BLOCKS.min(count.div_ceil(2));
    let shares = std::sync::Mutex::new(
        (first..)
            .step_by(per as usize)
            .zip(buf.chunks_mut(per as usize * stride)),
    );
    let failed = std::sync::Mutex::new(Ok(()));
    let work = || {
        loop {
            let next = shares.lock().unwrap_or_else(|p| p.into_inner()).next();
            let Some((start, run)) = next else { return };
            if let Err(e) = f(start, run) {
                *failed.lock().unwrap_or_else(|p| p.into_inner()) = Err(e);
                return;
            }
        }
    };
    pool.in_place_scope(|s| {
        for _ in 0..pool.current_num_threads() {
            s.spawn(|_| work());
        }
        work();
    });
    failed.into_inner().unwrap_or_else(|p| p.into_inner())
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
        })
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

    /// Opens an existing protected file with its content key, checking the
    /// header, the state record, the file size and the block commitment,
    /// but not who wrote it: for tools that repair or inspect files. Costs
    /// one pass over the block tags (not a decryption of the data).
    pub fn open(file: File, cek: &ContentKey) -> Result<Self, FormatError> {
        Self::open_inner(file, cek, None, None).map(|(pf, _)| pf)
    }

    /// [`open`](Self::open), and checks that the current version was signed
    /// by the owner or by a holder of `edit` certified by the server whose
    /// signing key is `server` (docs/FORMAT.md, "Writer records"): no byte
    /// of a version written by anyone else is ever returned.
    pub fn open_verified(file: File, cek: &ContentKey, server: &ServerVerifyingKey) -> Result<Self, FormatError> {
        Self::open_inner(file, cek, None, Some(server)).map(|(pf, _)| pf)
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
        Self::open_inner(file, cek, Some(dir), None)
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
        server: &ServerVerifyingKey,
    ) -> Result<(Self, Recovery), FormatError> {
        Self::open_inner(file, cek, Some(dir), Some(server))
    }

    fn open_inner(
        file: File,
        cek: &ContentKey,
        dir: Option<&Arc<JournalDir>>,
        server: Option<&ServerVerifyingKey>,
    ) -> Result<(Self, Recovery), FormatError> {
        let header = read_header(&file)?;
        let keys = FileKeys::derive(cek, &header.content_id());
        header.authenticate(&keys)?;
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
                    writer::verify(&pf.header, &older, record, server)?;
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
        header.authenticate(&keys)?;
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
    /// out, going back to the last durable state (see [`DURABLE`]) only
    /// after the machine went down (`Leave::Rollback`), and cutting
    /// uncommitted data past the chosen end only when a writer died while
    /// changing the file (`leave` is set). Otherwise the newest state must
    /// match the file exactly.
    fn recover_state(
        &mut self,
        slots: &[u8],
        size: u64,
        leave: Option<Leave>,
        server: Option<&ServerVerifyingKey>,
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
                    Err(e @ FormatError::WriterNotAllowed { .. }) => return Err(e),
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
        if let Some(tags) = known_tags::recall(&id, &self.state.commitment, n) {
            self.tags = tags;
            return Ok(());
        }
        let mut tags = Vec::with_capacity(n as usize);
        let mut commitment = [0u8; 32];
        const CHUNK: u64 = 256;
        let mut buf = Vec::new();
        for start in (0..n).step_by(CHUNK as usize) {
            let end = (start + CHUNK).min(n);
            let from = g.block_offset(start);
            let to = g.tag_offset(end - 1, len) + TAG_LEN as u64;
            buf.resize((to - from) as usize, 0);
            self.file.read_exact_at(&mut buf, from)?;
            for i in start..end {
                let o = (g.tag_offset(i, len) - from) as usize;
                let tag: Tag = buf[o..o + TAG_LEN].try_into().unwrap();
                xor_into(&mut commitment, &term(&self.keys.commit, i, &tag));
                tags.push(tag);
            }
        }
        self.tags = Arc::new(tags);
        if commitment != self.state.commitment {
            return Err(self.diagnose());
        }
        known_tags::remember(id, commitment, &self.tags);
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

    fn block_fits(&self, at: u64, as_index: u64) -> bool {
        let Ok(mut raw) = self.raw_block(at) else { return false };
        let last = as_index + 1 == self.tags.len() as u64;
        self.open_raw(&mut raw, as_index, last).is_ok()
    }

    fn raw_block(&self, i: u64) -> Result<Vec<u8>, FormatError> {
        if let Some(b) = self.pending.get(&i) {
            return Ok(b.clone());
        }
        let g = self.header.geometry;
        let mut raw = vec![0u8; g.block_len(i, self.state.len) + crate::crypto::BLOCK_OVERHEAD];
        self.file.read_exact_at(&mut raw, g.block_offset(i))?;
        Ok(raw)
    }

    /// Opens one raw block in place; the plaintext is `raw[12..len-16]`.
    fn open_raw(&self, raw: &mut [u8], index: u64, last: bool) -> Result<(), FormatError> {
        let n = raw.len();
        let nonce: [u8; NONCE_LEN] = raw[..NONCE_LEN].try_into().unwrap();
        let tag: Tag = raw[n - TAG_LEN..].try_into().unwrap();
        let aad = block_aad(&self.header, index, last);
        self.keys
            .blocks
            .open(&nonce, &aad, &mut raw[NONCE_LEN..n - TAG_LEN], &tag)
            .map_err(|_| FormatError::BlockCorrupt { index })
    }

    /// Checks a raw block against the commitment and opens it.
    fn verify_raw(&self, raw: &mut [u8], index: u64) -> Result<(), FormatError> {
        let last = index + 1 == self.tags.len() as u64;
        let tag = &raw[raw.len() - TAG_LEN..];
        let known = tag == self.tags[index as usize];
        let opened = self.open_raw(raw, index, last);
        match (known, opened) {
            (true, r) => r,
            (false, Ok(())) => Err(FormatError::StaleBlock),
            (false, Err(e)) => Err(e),
        }
    }

    /// The plaintext of block `i` under the current length.
    fn read_block(&self, i: u64) -> Result<Wiped, FormatError> {
        let mut raw = Wiped(self.raw_block(i)?);
        self.verify_raw(&mut raw, i)?;
        let n = raw.len();
        Ok(Wiped(raw[NONCE_LEN..n - TAG_LEN].to_vec()))
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

    /// The most seals either state record of the protected `file` counts,
    /// without opening the file for use (nothing is checked beyond the
    /// header and the states): what a new version of the file under the
    /// same key continues from. Both records count, as the newer one may
    /// be a commit the blocks on disk do not bear out.
    pub fn seals_used(file: &File, cek: &ContentKey) -> Result<u64, FormatError> {
        let header = read_header(file)?;
        let keys = FileKeys::derive(cek, &header.content_id());
        header.authenticate(&keys)?;
        let mut slots = vec![0u8; 2 * SLOT_LEN as usize];
        if read_up_to(file, &mut slots, header.state_offset())? < slots.len() {
            return Err(FormatError::HeaderTruncated);
        }
        let (half, key, hash) = (SLOT_LEN as usize, &keys.state, &header.hash);
        let a = State::open(key, hash, 0, &slots[..half])?.map(|s| s.0.seals);
        let b = State::open(key, hash, 1, &slots[half..])?.map(|s| s.0.seals);
        a.max(b).ok_or(FormatError::StateTampered)
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

    /// Reads up to `buf.len()` bytes at `offset`; returns 0 at or past the
    /// end, like `pread`.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize, FormatError> {
        let len = self.state.len;
        if offset >= len || buf.is_empty() {
            return Ok(0);
        }
        let g = self.header.geometry;
        let end = len.min(offset + buf.len() as u64);
        let (first, last) = (offset / g.block_size, (end - 1) / g.block_size);
        let from = g.block_offset(first);
        let to = g.tag_offset(last, len) + TAG_LEN as u64;
        let mut raw = Wiped::zeroed((to - from) as usize);
        let stride = g.stride() as usize;
        // Short only where uncommitted rewrites (held in `pending`) extend a
        // committed short block; any other gap fails authentication below.
        read_up_to(&self.file, &mut raw, from)?;
        for (i, b) in self.pending.range(first..=last) {
            let o = ((i - first) as usize) * stride;
            raw[o..o + b.len()].copy_from_slice(b);
        }
        for_block_runs(&mut raw, first, last - first + 1, stride, |start, run| {
            for (k, chunk) in run.chunks_mut(stride).enumerate() {
                self.verify_raw(chunk, start + k as u64)?;
            }
            Ok(())
        })?;
        let mut done = 0usize;
        for i in first..=last {
            let o = ((i - first) * g.stride()) as usize + NONCE_LEN;
            let plain = &raw[o..o + g.block_len(i, len)];
            let skip = if i == first {
                (offset - i * g.block_size) as usize
            } else {
                0
            };
            let take = (plain.len() - skip).min(buf.len() - done);
            buf[done..done + take].copy_from_slice(&plain[skip..skip + take]);
            done += take;
        }
        Ok(done)
    }

    /// Writes `data` at `offset`, growing the file (with zeros in any gap)
    /// if needed. Only touched blocks are resealed, in one `pwrite`.
    pub fn write_at(&mut self, data: &[u8], offset: u64) -> Result<(), FormatError> {
        if data.is_empty() {
            return Ok(());
        }
        self.note_change()?;
        let g = self.header.geometry;
        let old_len = self.state.len;
        let end = offset
            .checked_add(data.len() as u64)
            .filter(|e| *e <= MAX_LEN)
            .ok_or(FormatError::TooLarge)?;
        let new_len = old_len.max(end);
        let old_n = g.blocks_for(old_len);
        let new_n = g.blocks_for(new_len);
        let mut first = offset.min(old_len) / g.block_size;
        if end > old_len && old_n > 0 {
            first = first.min(old_n - 1);
        }
        let last = (end - 1) / g.block_size;
        self.reseal(first, last, new_len, Some((data, offset)))?;
        debug_assert_eq!(self.tags.len() as u64, new_n);
        if self.pending.len() > MAX_PENDING {
            self.flush()?;
        }
        Ok(())
    }

    /// Reseals blocks `first..=last` for a file that will be `new_len` long.
    /// Each block starts from its old plaintext where the old file had bytes
    /// that `data` (bytes at an offset) does not cover, else from zeros, then
    /// `data` is laid over it. Long runs are split across cores, each share
    /// built, sealed and written by one thread. Updates tags, commitment and
    /// length.
    fn reseal(&mut self, first: u64, last: u64, new_len: u64, data: Option<(&[u8], u64)>) -> Result<(), FormatError> {
        let g = self.header.geometry;
        let old_len = self.state.len;
        let old_n = self.tags.len() as u64;
        let new_n = g.blocks_for(new_len);
        let count = last - first + 1;
        if self.state.seals.saturating_add(count + 1) > MAX_SEALS {
            return Err(FormatError::KeyWornOut);
        }
        let stride = g.stride() as usize;
        let total = (g.tag_offset(last, new_len) + TAG_LEN as u64 - g.block_offset(first)) as usize;
        // Rewrites of committed blocks wait for a journaled commit; the rest
        // goes straight to the file, whose space is reserved first so that a
        // full disk fails before any block lands.
        let direct_from = if self.journal.is_some() {
            first.max(self.committed_blocks)
        } else {
            first
        };
        if direct_from <= last {
            let at = g.block_offset(direct_from);
            reserve(&self.file, at, total as u64 - (at - g.block_offset(first)))?;
        }
        let this = &*self;
        let (bytes, at) = data.unwrap_or((&[], 0));
        let end = at + bytes.len() as u64;
        // Seals block `i` into `chunk` (nonce, ciphertext, tag): straight
        // from `data` when it covers the whole block, else from a plaintext
        // built in place (zeros, the old bytes kept, `data` over them).
        let seal = |i: u64, chunk: &mut [u8]| -> Result<(), FormatError> {
            let n = chunk.len();
            let aad = block_aad(&this.header, i, i + 1 == new_n);
            let plain = &mut chunk[NONCE_LEN..n - TAG_LEN];
            let bstart = i * g.block_size;
            let (lo, hi) = (at.max(bstart), end.min(bstart + plain.len() as u64));
            let (nonce, tag) = if lo == bstart && hi == bstart + plain.len() as u64 {
                let src = &bytes[(lo - at) as usize..(hi - at) as usize];
                this.keys.blocks.seal_into(&aad, src, plain)
            } else {
                plain.fill(0);
                let old_blen = g.block_len(i, old_len);
                if i < old_n && old_blen > 0 && !(at <= bstart && end >= bstart + old_blen as u64) {
                    let old = this.read_block(i)?;
                    let k = old_blen.min(plain.len());
                    plain[..k].copy_from_slice(&old[..k]);
                }
                if lo < hi {
                    plain[(lo - bstart) as usize..(hi - bstart) as usize]
                        .copy_from_slice(&bytes[(lo - at) as usize..(hi - at) as usize]);
                }
                this.keys.blocks.seal(&aad, plain)
            };
            chunk[..NONCE_LEN].copy_from_slice(&nonce);
            chunk[n - TAG_LEN..].copy_from_slice(&tag);
            Ok(())
        };
        let sealed = with_scratch(total, |out| {
            for_block_runs(out, first, count, stride, |start, run| {
                let (mut i, mut o) = (start, 0);
                while o < run.len() {
                    let n = g.block_len(i, new_len) + crate::crypto::BLOCK_OVERHEAD;
                    seal(i, &mut run[o..o + n])?;
                    (i, o) = (i + 1, o + n);
                }
                let from = direct_from.max(start);
                let skip = ((from - start) as usize * stride).min(run.len());
                if skip < run.len() {
                    this.file.write_all_at(&run[skip..], g.block_offset(from))?;
                }
                Ok(())
            })?;
            Ok(sealed_blocks(&g, first, last, new_len, direct_from, out))
        })?;
        self.record_blocks(first, new_len, sealed);
        Ok(())
    }

    /// Moves the state past blocks `first..` just sealed: tags,
    /// commitment, seal count and length; rewrites of committed blocks wait
    /// in memory for the commit.
    fn record_blocks(&mut self, first: u64, new_len: u64, sealed: Sealed) {
        let old_n = self.tags.len() as u64;
        let count = sealed.tags.len() as u64;
        let tags = Arc::make_mut(&mut self.tags);
        for (i, tag) in (first..).zip(sealed.tags) {
            if i < old_n {
                let old = tags[i as usize];
                xor_into(&mut self.state.commitment, &term(&self.keys.commit, i, &old));
                tags[i as usize] = tag;
            } else {
                tags.push(tag);
            }
            xor_into(&mut self.state.commitment, &term(&self.keys.commit, i, &tag));
        }
        self.pending.extend(sealed.held);
        self.state.seals += count;
        self.state.len = new_len;
        self.dirty = true;
    }

    /// Sets the plaintext length: shrinking reseals the new last block and
    /// cuts the file; growing appends encrypted zeros (no unauthenticated
    /// holes).
    pub fn set_len(&mut self, new_len: u64) -> Result<(), FormatError> {
        let old_len = self.state.len;
        if new_len > MAX_LEN {
            return Err(FormatError::TooLarge);
        }
        if new_len != old_len {
            self.note_change()?;
        }
        if new_len > old_len {
            const CHUNK: u64 = 1 << 20;
            let zeros = vec![0u8; CHUNK as usize];
            let mut at = old_len;
            while at < new_len {
                let n = CHUNK.min(new_len - at);
                self.write_at(&zeros[..n as usize], at)?;
                at += n;
            }
            return Ok(());
        }
        if new_len == old_len {
            return Ok(());
        }
        let g = self.header.geometry;
        let new_n = g.blocks_for(new_len);
        let mut dropped: Vec<Sha256Digest> = Vec::new();
        for i in new_n..self.tags.len() as u64 {
            dropped.push(term(&self.keys.commit, i, &self.tags[i as usize]));
        }
        if new_n > 0 {
            // Reseal the new last block (shorter, and flagged last) first,
            // computing from the old length, then cut.
            let keep = self.tags.len();
            self.reseal(new_n - 1, new_n - 1, new_len, None)?;
            debug_assert_eq!(self.tags.len(), keep);
        }
        for t in &dropped {
            xor_into(&mut self.state.commitment, t);
        }
        if self.tags.len() as u64 > new_n {
            Arc::make_mut(&mut self.tags).truncate(new_n as usize);
        }
        self.pending.retain(|i, _| *i < new_n);
        self.state.len = new_len;
        self.dirty = true;
        if self.journal.is_none() {
            self.file.set_len(g.ciphertext_size(new_len))?;
        }
        Ok(())
    }

    /// Commits the state record (length, commitment), so that a reopen sees
    /// every write made so far. Journaled files stay recoverable whatever
    /// happens next; no fsync unless the commit itself needs one.
    pub fn flush(&mut self) -> Result<(), FormatError> {
        self.commit(false)
    }

    /// Before the first change of a journaled file, names it in the
    /// writer's change log: a crash from here on may leave blocks past
    /// the last commit, which its next open may then cut.
    fn note_change(&mut self) -> Result<(), FormatError> {
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
        let record = self
            .writer
            .as_ref()
            .map(|w| w.record(&self.header, state))
            .unwrap_or_default();
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
            if CRASH_AFTER_JOURNAL.with(|c| c.get()) {
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
        if !self.dirty && self.pending.is_empty() {
            known_tags::remember(self.header.content_id(), self.state.commitment, &self.tags);
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

/// Reserves disk space for a write (`fallocate` with `KEEP_SIZE`), so that a
/// full disk fails the write before any byte of it lands and no block is
/// left half-written. Filesystems without `fallocate` skip the reservation.
fn reserve(file: &File, offset: u64, len: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let (Ok(off), Ok(n)) = (i64::try_from(offset), i64::try_from(len)) else {
        return Err(std::io::Error::from_raw_os_error(libc::EFBIG));
    };
    // SAFETY: plain syscall on a file descriptor `file` owns for the call.
    let r = unsafe { libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, off, n) };
    if r == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) => Ok(()),
        _ => Err(e),
    }
}

/// What sealing a run of blocks produced: their tags in order, and the
/// sealed images of the blocks not written in place yet.
struct Sealed {
    tags: Vec<Tag>,
    held: Vec<(u64, Vec<u8>)>,
}

/// Picks the tags of blocks `first..=last` out of `out` (laid out for a
/// file of `new_len` bytes), and copies the blocks below `direct_from`.
fn sealed_blocks(g: &Geometry, first: u64, last: u64, new_len: u64, direct_from: u64, out: &[u8]) -> Sealed {
    let stride = g.stride() as usize;
    let mut sealed = Sealed {
        tags: Vec::with_capacity((last - first + 1) as usize),
        held: Vec::new(),
    };
    for i in first..=last {
        let o = ((i - first) as usize) * stride;
        let n = g.block_len(i, new_len) + crate::crypto::BLOCK_OVERHEAD;
        if i < direct_from {
            sealed.held.push((i, out[o..o + n].to_vec()));
        }
        sealed.tags.push(out[o + n - TAG_LEN..o + n].try_into().unwrap());
    }
    sealed
}

/// Runs `f` on this thread's sealing buffer, `len` bytes long. After a
/// successful seal the buffer holds only nonces, ciphertext and tags, so it
/// is kept for the next request (no allocation, page faults or zeroing per
/// write); if `f` fails, plaintext may be left in it and it is wiped.
/// Buffers above 4 MiB are not kept.
fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [u8]) -> Result<R, FormatError>) -> Result<R, FormatError> {
    const KEEP_MAX: usize = 4 << 20;
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let run = |buf: &mut Vec<u8>| {
        if buf.len() < len {
            buf.resize(len, 0);
        }
        let r = f(&mut buf[..len]);
        if r.is_err() {
            buf.as_mut_slice().zeroize();
        }
        r
    };
    if len > KEEP_MAX {
        return run(&mut Vec::new());
    }
    SCRATCH.with(|s| match s.try_borrow_mut() {
        Ok(mut buf) => run(&mut buf),
        Err(_) => run(&mut Vec::new()),
    })
}

#[cfg(test)]
mod wiped_tests {
    use super::{FormatError, Wiped, with_scratch};

    #[test]
    fn scratch_is_wiped_when_sealing_fails_and_kept_when_it_succeeds() {
        let r: Result<(), _> = with_scratch(4096, |b| {
            b.fill(0x5a);
            Err(FormatError::TooLarge)
        });
        assert!(r.is_err());
        with_scratch(8192, |b| {
            assert!(b[..4096].iter().all(|x| *x == 0), "plaintext left after a failure");
            b.fill(0xc3);
            Ok(())
        })
        .unwrap();
        with_scratch(100, |b| {
            assert!(b.iter().all(|x| *x == 0xc3), "a sealed buffer is reused as it is");
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn wipe_zeroes_every_byte() {
        let mut w = Wiped(vec![0xa5; 10_000]);
        w[3] = 1;
        w.wipe();
        assert!(w.iter().all(|b| *b == 0));
        assert_eq!(w.len(), 10_000);
    }
}
