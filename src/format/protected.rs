//! Random-access reading and writing of one protected file.

use std::fs::File;
use std::os::unix::fs::FileExt;

use zeroize::Zeroize;

use super::header::{FileHeader, SLOT_LEN, read_header, read_up_to};
use super::keys::FileKeys;
use super::state::{State, term, xor_into};
use super::{FormatError, MAX_SEALS};
use crate::crypto::{ContentKey, NONCE_LEN, Sha256Digest, TAG_LEN};

/// Below this many blocks a request is sealed or opened on one thread; above
/// it, split across cores (thread start-up costs about one block's worth).
const PARALLEL_BLOCKS: u64 = 32;
/// Largest plaintext the format addresses (keeps offsets far from overflow).
const MAX_LEN: u64 = 1 << 60;

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

/// An open protected file: a decrypting, encrypting view of `File` with
/// random access. Reads decrypt only the blocks asked for; writes reseal
/// only the blocks they touch. Changes are committed to the state record by
/// [`flush`](Self::flush) / [`sync`](Self::sync) (and, best effort, on drop).
pub struct ProtectedFile {
    file: File,
    header: FileHeader,
    keys: FileKeys,
    state: State,
    slot: u8,
    tags: Vec<Tag>,
    dirty: bool,
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

/// Splits a run of blocks laid out at `stride` into about two halves at a
/// block boundary and runs `f(first_index, bytes)` on each, in parallel when
/// the run is long enough to pay for a thread.
fn for_block_runs<F>(buf: &mut [u8], first: u64, count: u64, stride: usize, f: F) -> Result<(), FormatError>
where
    F: Fn(u64, &mut [u8]) -> Result<(), FormatError> + Sync,
{
    if count < PARALLEL_BLOCKS || std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        return f(first, buf);
    }
    let half = count / 2;
    let (a, b) = buf.split_at_mut(half as usize * stride);
    std::thread::scope(|s| {
        let h = s.spawn(|| f(first + half, b));
        let r1 = f(first, a);
        let r2 = h.join().unwrap_or(Err(FormatError::HeaderMalformed("worker panicked")));
        r1.and(r2)
    })
}

impl ProtectedFile {
    /// Writes a fresh, empty protected file with `header` into `file`
    /// (which must be open for reading and writing; its contents are
    /// replaced). The key must be the one the header was made with.
    pub fn create(file: File, header: FileHeader, cek: &ContentKey) -> Result<Self, FormatError> {
        let keys = FileKeys::derive(cek, &header.content_id());
        header.authenticate(&keys)?;
        let g = header.geometry;
        let mut prefix = vec![0u8; g.data_offset as usize];
        prefix[..header.bytes.len()].copy_from_slice(&header.bytes);
        let state = State {
            generation: 1,
            len: 0,
            seals: 1,
            commitment: [0; 32],
        };
        let so = (g.data_offset - 2 * SLOT_LEN) as usize;
        prefix[so..so + SLOT_LEN as usize].copy_from_slice(&state.seal(&keys.state, &header.hash, 0));
        file.set_len(0)?;
        file.write_all_at(&prefix, 0)?;
        Ok(Self {
            file,
            header,
            keys,
            state,
            slot: 0,
            tags: Vec::new(),
            dirty: false,
        })
    }

    /// Opens an existing protected file with its content key, checking the
    /// header, the state record, the file size and the block commitment.
    /// Costs one pass over the block tags (not a decryption of the data).
    pub fn open(file: File, cek: &ContentKey) -> Result<Self, FormatError> {
        let header = read_header(&file)?;
        let keys = FileKeys::derive(cek, &header.content_id());
        header.authenticate(&keys)?;
        let g = header.geometry;
        let mut tail = vec![0u8; (g.data_offset - header.bytes.len() as u64) as usize];
        if read_up_to(&file, &mut tail, header.bytes.len() as u64)? < tail.len() {
            return Err(FormatError::HeaderTruncated);
        }
        let pad = tail.len() - 2 * SLOT_LEN as usize;
        if tail[..pad].iter().any(|b| *b != 0) {
            return Err(FormatError::HeaderTampered("non-zero padding"));
        }
        let (state, slot) = State::pick(&keys.state, &header.hash, &tail[pad..])?;
        // Only a key holder can seal a state, but a view-only reader holds
        // the key: values no writer produces must not reach size arithmetic.
        if state.len > MAX_LEN || state.generation == u64::MAX || state.seals > MAX_SEALS {
            return Err(FormatError::StateTampered);
        }
        let size = file.metadata()?.len();
        let expected = g.ciphertext_size(state.len);
        if size < expected {
            return Err(FormatError::Truncated { expected, actual: size });
        }
        if size > expected {
            return Err(FormatError::TrailingData { expected, actual: size });
        }
        let mut pf = Self {
            file,
            header,
            keys,
            state,
            slot,
            tags: Vec::new(),
            dirty: false,
        };
        pf.load_tags()?;
        Ok(pf)
    }

    fn load_tags(&mut self) -> Result<(), FormatError> {
        let g = self.header.geometry;
        let len = self.state.len;
        let n = g.blocks_for(len);
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
        self.tags = tags;
        if commitment != self.state.commitment {
            return Err(self.diagnose());
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

    fn block_fits(&self, at: u64, as_index: u64) -> bool {
        let Ok(mut raw) = self.raw_block(at) else { return false };
        let last = as_index + 1 == self.tags.len() as u64;
        self.open_raw(&mut raw, as_index, last).is_ok()
    }

    fn raw_block(&self, i: u64) -> Result<Vec<u8>, FormatError> {
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
        self.file.read_exact_at(&mut raw, from)?;
        let stride = g.stride() as usize;
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
        Ok(())
    }

    /// Reseals blocks `first..=last` for a file that will be `new_len` long.
    /// Each block starts from its old plaintext where the old file had bytes
    /// that `data` (bytes at an offset) does not cover, else from zeros, then
    /// `data` is laid over it. Updates tags, commitment and length.
    fn reseal(&mut self, first: u64, last: u64, new_len: u64, data: Option<(&[u8], u64)>) -> Result<(), FormatError> {
        let g = self.header.geometry;
        let old_len = self.state.len;
        let old_n = self.tags.len() as u64;
        let new_n = g.blocks_for(new_len);
        let count = last - first + 1;
        if self.state.seals.saturating_add(count + 1) > MAX_SEALS {
            return Err(FormatError::KeyWornOut);
        }
        let (bytes, at) = data.unwrap_or((&[], 0));
        let end = at + bytes.len() as u64;
        let stride = g.stride() as usize;
        let total = (g.tag_offset(last, new_len) + TAG_LEN as u64 - g.block_offset(first)) as usize;
        let mut out = Wiped::zeroed(total);
        for i in first..=last {
            let o = ((i - first) as usize) * stride + NONCE_LEN;
            let blen = g.block_len(i, new_len);
            let plain = &mut out[o..o + blen];
            let bstart = i * g.block_size;
            let old_blen = g.block_len(i, old_len);
            let covered = at <= bstart && end >= bstart + old_blen as u64;
            if i < old_n && old_blen > 0 && !covered {
                let old = self.read_block(i)?;
                let k = old_blen.min(blen);
                plain[..k].copy_from_slice(&old[..k]);
            }
            let (lo, hi) = (at.max(bstart), end.min(bstart + blen as u64));
            if lo < hi {
                plain[(lo - bstart) as usize..(hi - bstart) as usize]
                    .copy_from_slice(&bytes[(lo - at) as usize..(hi - at) as usize]);
            }
        }
        let (header, keys) = (&self.header, &self.keys);
        for_block_runs(&mut out, first, count, stride, |start, run| {
            for (k, chunk) in run.chunks_mut(stride).enumerate() {
                let i = start + k as u64;
                let n = chunk.len();
                let aad = block_aad(header, i, i + 1 == new_n);
                let (nonce, tag) = keys.blocks.seal(&aad, &mut chunk[NONCE_LEN..n - TAG_LEN]);
                chunk[..NONCE_LEN].copy_from_slice(&nonce);
                chunk[n - TAG_LEN..].copy_from_slice(&tag);
            }
            Ok(())
        })?;
        self.file.write_all_at(&out, g.block_offset(first))?;
        for i in first..=last {
            let o = ((i - first) as usize) * stride + NONCE_LEN + g.block_len(i, new_len);
            let tag: Tag = out[o..o + TAG_LEN].try_into().unwrap();
            if i < old_n {
                let old = self.tags[i as usize];
                xor_into(&mut self.state.commitment, &term(&self.keys.commit, i, &old));
                self.tags[i as usize] = tag;
            } else {
                self.tags.push(tag);
            }
            xor_into(&mut self.state.commitment, &term(&self.keys.commit, i, &tag));
        }
        self.state.seals += count;
        self.state.len = new_len;
        self.dirty = true;
        Ok(())
    }

    /// Sets the plaintext length: shrinking reseals the new last block and
    /// cuts the file; growing appends encrypted zeros (no unauthenticated
    /// holes).
    pub fn set_len(&mut self, new_len: u64) -> Result<(), FormatError> {
        let old_len = self.state.len;
        if new_len > MAX_LEN {
            return Err(FormatError::TooLarge);
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
        self.tags.truncate(new_n as usize);
        self.state.len = new_len;
        self.dirty = true;
        self.file.set_len(g.ciphertext_size(new_len))?;
        Ok(())
    }

    /// Commits the state record (length, commitment) to the other slot, so
    /// that a reopen sees every write made so far. No fsync.
    pub fn flush(&mut self) -> Result<(), FormatError> {
        if !self.dirty {
            return Ok(());
        }
        let next = State {
            generation: self.state.generation + 1,
            seals: self.state.seals + 1,
            ..self.state.clone()
        };
        let slot = 1 - self.slot;
        let sealed = next.seal(&self.keys.state, &self.header.hash, slot);
        self.file
            .write_all_at(&sealed, self.header.state_offset() + slot as u64 * SLOT_LEN)?;
        self.state = next;
        self.slot = slot;
        self.dirty = false;
        Ok(())
    }

    /// [`flush`](Self::flush), then `fdatasync` the file.
    pub fn sync(&mut self) -> Result<(), FormatError> {
        self.flush()?;
        self.file.sync_data()?;
        Ok(())
    }
}

impl Drop for ProtectedFile {
    fn drop(&mut self) {
        if self.dirty
            && let Err(e) = self.flush()
        {
            tracing::error!(content_id = %self.header.content_id(), error = %e, "could not commit protected-file state on close");
        }
    }
}

#[cfg(test)]
mod wiped_tests {
    use super::Wiped;

    #[test]
    fn wipe_zeroes_every_byte() {
        let mut w = Wiped(vec![0xa5; 10_000]);
        w[3] = 1;
        w.wipe();
        assert!(w.iter().all(|b| *b == 0));
        assert_eq!(w.len(), 10_000);
    }
}
