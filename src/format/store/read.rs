//! Reading a protected file: each block checked against its tag in the
//! state's commitment, then opened.

use std::os::unix::fs::FileExt;

use super::ProtectedFile;
use super::disk::read_up_to;
use super::parallel::for_block_runs;
use crate::crypto::{NONCE_LEN, TAG_LEN};
use crate::format::FormatError;
use crate::format::block::{Tag, Wiped, block_aad};

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

    /// Checks a raw block against the commitment and opens it.
    pub(super) fn verify_raw(&self, raw: &mut [u8], index: u64) -> Result<(), FormatError> {
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
    pub(super) fn read_block(&self, i: u64) -> Result<Wiped, FormatError> {
        let mut raw = Wiped(self.raw_block(i)?);
        self.verify_raw(&mut raw, i)?;
        let n = raw.len();
        Ok(Wiped(raw[NONCE_LEN..n - TAG_LEN].to_vec()))
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
}
