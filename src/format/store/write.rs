//! Writing a protected file: resealing only the blocks a write or a new
//! length touches, straight to disk past the committed end, held in memory
//! for the journal where they replace committed blocks.

use std::os::unix::fs::FileExt;
use std::sync::Arc;

use super::ProtectedFile;
use super::disk::reserve;
use super::parallel::{for_block_shares, with_scratch};
use super::tag_table::{RUN, TagTable};
use crate::crypto::{NONCE_LEN, Sha256Digest, TAG_LEN};
use crate::format::block::{Tag, block_aad};
use crate::format::geometry::Geometry;
use crate::format::state::{term, xor_into};
use crate::format::{FormatError, MAX_LEN, MAX_SEALS};

/// Rewritten committed blocks held before a commit is forced (8 MiB at the
/// default block size): bounds memory between application fsyncs.
const MAX_PENDING: usize = 2048;

impl ProtectedFile {
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
        // Each share is sealed in its own thread's buffer and written from
        // there: buffers the size of a share (264 KiB), not of the request.
        let parts = std::sync::Mutex::new(Vec::new());
        for_block_shares(first, count, |start, n| {
            let last = start + n - 1;
            let len = (g.tag_offset(last, new_len) + TAG_LEN as u64 - g.block_offset(start)) as usize;
            let part = with_scratch(len, |run| {
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
                Ok(sealed_blocks(&g, start, last, new_len, direct_from, run))
            })?;
            parts.lock().unwrap_or_else(|p| p.into_inner()).push((start, part));
            Ok(())
        })?;
        let sealed = Sealed::joined(parts.into_inner().unwrap_or_else(|p| p.into_inner()));
        self.record_blocks(first, new_len, sealed)
    }

    /// Moves the state past blocks `first..` just sealed: tags,
    /// commitment, seal count and length; rewrites of committed blocks wait
    /// in memory for the commit.
    /// If the table cannot take the new tags (a spilled table's file
    /// failed), nothing else changes: the blocks just written are past the
    /// state's length or held back, and reads check them against tags they
    /// do not match.
    fn record_blocks(&mut self, first: u64, new_len: u64, sealed: Sealed) -> Result<(), FormatError> {
        let old_n = self.tags.len() as u64;
        let count = sealed.tags.len() as u64;
        let journal = self.journal.clone();
        let tags = self.ready_tags(first + count)?;
        let mut old = vec![[0u8; TAG_LEN]; old_n.saturating_sub(first).min(count) as usize];
        tags.read_run(first, &mut old)?;
        tags.write_run(first, &sealed.tags, journal.as_deref())?;
        for (i, tag) in (first..).zip(&old) {
            xor_into(&mut self.state.commitment, &term(&self.keys.commit, i, tag));
        }
        for (i, tag) in (first..).zip(&sealed.tags) {
            xor_into(&mut self.state.commitment, &term(&self.keys.commit, i, tag));
        }
        self.pending.extend(sealed.held);
        self.state.seals += count;
        self.state.len = new_len;
        self.dirty = true;
        Ok(())
    }

    /// The tag table, readied to be changed in place and to hold `blocks`
    /// tags: taken back from the remembered tables if shared with them
    /// (else changing it would copy it), copied if still shared, and room
    /// made among them when it must grow, for what it takes once grown.
    fn ready_tags(&mut self, blocks: u64) -> Result<&mut TagTable, FormatError> {
        let spill = self.journal.as_deref();
        if let Some(c) = &self.caches {
            if Arc::strong_count(&self.tags) > 1 {
                c.tags.forget(&self.header.content_id(), &self.tags);
            }
            if let Some(bytes) = self.tags.growth(blocks as usize, spill) {
                c.tags.make_room(bytes);
            }
        }
        if Arc::get_mut(&mut self.tags).is_none() {
            self.tags = Arc::new(self.tags.try_clone(spill)?);
        }
        Ok(Arc::get_mut(&mut self.tags).expect("a table of its own"))
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
        // The terms of the blocks cut, read a run at a time.
        let mut dropped: Sha256Digest = [0; 32];
        let mut run = [[0u8; TAG_LEN]; RUN];
        for at in (new_n..self.tags.len() as u64).step_by(RUN) {
            let run = &mut run[..RUN.min((self.tags.len() as u64 - at) as usize)];
            self.tags.read_run(at, run)?;
            for (i, tag) in (at..).zip(run.iter()) {
                xor_into(&mut dropped, &term(&self.keys.commit, i, tag));
            }
        }
        if new_n > 0 {
            // Reseal the new last block (shorter, and flagged last) first,
            // computing from the old length, then cut.
            let keep = self.tags.len();
            self.reseal(new_n - 1, new_n - 1, new_len, None)?;
            debug_assert_eq!(self.tags.len(), keep);
        }
        if self.tags.len() as u64 > new_n {
            self.ready_tags(new_n)?.truncate(new_n as usize)?;
        }
        xor_into(&mut self.state.commitment, &dropped);
        self.pending.retain(|i, _| *i < new_n);
        self.state.len = new_len;
        self.dirty = true;
        if self.journal.is_none() {
            self.file.set_len(g.ciphertext_size(new_len))?;
        }
        Ok(())
    }
}

/// What sealing a run of blocks produced: their tags in order, and the
/// sealed images of the blocks not written in place yet.
struct Sealed {
    tags: Vec<Tag>,
    held: Vec<(u64, Vec<u8>)>,
}

impl Sealed {
    /// The shares' results, `(first block, sealed)`, in block order.
    fn joined(mut parts: Vec<(u64, Sealed)>) -> Sealed {
        parts.sort_unstable_by_key(|(start, _)| *start);
        let mut parts = parts.into_iter().map(|(_, p)| p);
        let mut all = parts.next().unwrap_or(Sealed {
            tags: Vec::new(),
            held: Vec::new(),
        });
        for p in parts {
            all.tags.extend(p.tags);
            all.held.extend(p.held);
        }
        all
    }
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
