//! Reading a protected file: each block checked against its tag in the
//! state's commitment, then opened.

use std::os::unix::fs::FileExt;

use super::ProtectedFile;
use super::disk::read_up_to;
use super::parallel::for_block_runs;
use super::tag_table::RUN;
use crate::crypto::{NONCE_LEN, TAG_LEN};
use crate::format::FormatError;
use crate::format::block::{Tag, Wiped, block_aad};
use crate::format::geometry::Geometry;

impl ProtectedFile {
    pub(super) fn block_fits(&self, at: u64, as_index: u64) -> bool {
        let Ok(mut raw) = self.raw_block(at) else { return false };
        let last = as_index + 1 == self.tags.len() as u64;
        self.open_raw(&mut raw, as_index, last).is_ok()
    }

    pub(super) fn raw_block(&self, i: u64) -> Result<Vec<u8>, FormatError> {
        if let Some(b) = self.pending.get(&i) {
            return Ok(b.clone());
        }
        let g = self.header.geometry;
        let mut raw = vec![0u8; g.block_len(i, self.state.len) + crate::crypto::BLOCK_OVERHEAD];
        self.file.read_exact_at(&mut raw, g.block_offset(i))?;
        Ok(raw)
    }

    /// Opens one raw block in place; the plaintext is `raw[12..len-16]`.
    pub(super) fn open_raw(&self, raw: &mut [u8], index: u64, last: bool) -> Result<(), FormatError> {
        let n = raw.len();
        let nonce: [u8; NONCE_LEN] = raw[..NONCE_LEN].try_into().unwrap();
        let tag: Tag = raw[n - TAG_LEN..].try_into().unwrap();
        let aad = block_aad(&self.header, index, last);
        self.keys
            .blocks
            .open(&nonce, &aad, &mut raw[NONCE_LEN..n - TAG_LEN], &tag)
            .map_err(|_| FormatError::BlockCorrupt { index })
    }

    /// Checks a raw block against its tag in the commitment, `known`, and
    /// opens it.
    pub(super) fn verify_raw(&self, raw: &mut [u8], index: u64, known: &Tag) -> Result<(), FormatError> {
        let last = index + 1 == self.tags.len() as u64;
        let tag = &raw[raw.len() - TAG_LEN..];
        let known = tag == known;
        let opened = self.open_raw(raw, index, last);
        match (known, opened) {
            (true, r) => r,
            (false, Ok(())) => Err(FormatError::StaleBlock),
            (false, Err(e)) => Err(e),
        }
    }

    /// The plaintext of block `i` under the current length.
    pub(super) fn read_block(&self, i: u64) -> Result<Wiped, FormatError> {
        let mut raw = Wiped(self.raw_block(i)?);
        let known = self.tags.get(i)?;
        self.verify_raw(&mut raw, i, &known)?;
        let n = raw.len();
        Ok(Wiped(raw[NONCE_LEN..n - TAG_LEN].to_vec()))
    }

    /// Reads up to `buf.len()` bytes at `offset`; returns 0 at or past the
    /// end, like `pread`.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize, FormatError> {
        let Some(opened) = self.open_range(offset, buf.len())? else {
            return Ok(0);
        };
        let mut done = 0usize;
        for (at, len) in opened.plaintext() {
            buf[done..done + len].copy_from_slice(&opened.raw[at..at + len]);
            done += len;
        }
        Ok(done)
    }

    /// [`read_at`](Self::read_at) of up to `len` bytes into a buffer of
    /// its own: the plaintext is opened where the ciphertext was read and
    /// moved to the front, so no second buffer is zeroed, filled and
    /// wiped (the mount answers each read with one: a tenth less of its
    /// time per MiB read). The whole allocation is wiped when dropped.
    pub fn read_owned(&self, offset: u64, len: usize) -> Result<Wiped, FormatError> {
        let Some(mut opened) = self.open_range(offset, len)? else {
            return Ok(Wiped::zeroed(0));
        };
        let mut done = 0usize;
        for (at, len) in opened.plaintext() {
            // Never forward: each block's plaintext starts past the
            // plaintext of the blocks before it.
            opened.raw.copy_within(at..at + len, done);
            done += len;
        }
        opened.raw.truncate(done);
        Ok(opened.raw)
    }

    /// Reads the blocks holding up to `len` bytes at `offset`, checks each
    /// against its tag in the commitment and opens it in place; `None` at
    /// or past the end.
    fn open_range(&self, offset: u64, len: usize) -> Result<Option<Opened>, FormatError> {
        let size = self.state.len;
        if offset >= size || len == 0 {
            return Ok(None);
        }
        let g = self.header.geometry;
        let end = size.min(offset + len as u64);
        let (first, last) = (offset / g.block_size, (end - 1) / g.block_size);
        let from = g.block_offset(first);
        let to = g.tag_offset(last, size) + TAG_LEN as u64;
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
            // The tags of up to RUN blocks at once: one system call for a
            // spilled table.
            let mut known = [[0u8; TAG_LEN]; RUN];
            for (c, blocks) in run.chunks_mut(stride * RUN).enumerate() {
                let at = start + (c * RUN) as u64;
                let known = &mut known[..blocks.len().div_ceil(stride)];
                self.tags.read_run(at, known)?;
                for (k, chunk) in blocks.chunks_mut(stride).enumerate() {
                    self.verify_raw(chunk, at + k as u64, &known[k])?;
                }
            }
            Ok(())
        })?;
        Ok(Some(Opened {
            raw,
            geometry: g,
            offset,
            end,
            first,
            last,
        }))
    }
}

/// Blocks read and opened in place by [`ProtectedFile::open_range`] for
/// the plaintext bytes `offset..end`.
struct Opened {
    /// From the nonce of block `first` to the tag of block `last`.
    raw: Wiped,
    geometry: Geometry,
    offset: u64,
    end: u64,
    first: u64,
    last: u64,
}

impl Opened {
    /// Where in `raw` each block's wanted plaintext lies, in order, as
    /// (start, length).
    fn plaintext(&self) -> impl Iterator<Item = (usize, usize)> + use<> {
        let g = self.geometry;
        let (offset, end, first) = (self.offset, self.end, self.first);
        (first..=self.last).map(move |i| {
            let from = offset.max(i * g.block_size);
            let to = end.min((i + 1) * g.block_size);
            let at = ((i - first) * g.stride()) as usize + NONCE_LEN + (from - i * g.block_size) as usize;
            (at, (to - from) as usize)
        })
    }
}
