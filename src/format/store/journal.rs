//! The redo journal that makes in-place block rewrites crash-safe.
//!
//! A commit that must overwrite committed blocks (or cut the file) first
//! writes every new block image, the new state slot and the target size to
//! a journal file and syncs it; only then are they written in place. If the
//! process dies or the power fails half-way, the next open finds the
//! journal and either replays it (it is complete) or discards it (it is
//! torn, so nothing was written in place yet). The journal holds only
//! ciphertext, never plaintext or keys.

use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};

use crate::crypto::{Sha256Digest, sha256};
use crate::policy::ContentId;

use super::journal_dir::JournalDir;
use crate::format::FormatError;

const MAGIC: &[u8; 8] = b"RFSJRNL1";
/// Magic, header hash, inode, size and the number of writes.
const HEAD_LEN: usize = 8 + 32 + 8 + 8 + 4;
/// The SHA-256 of all before it, last.
const SUM_LEN: usize = 32;

/// One committed change, as replayed: positioned writes, then a length.
#[derive(Debug, PartialEq, Eq)]
pub struct Journal {
    /// Which file: its header hash and inode, so a copy of the same file
    /// (same content id) is never patched by another's journal.
    pub header_hash: Sha256Digest,
    /// Inode number of the target file.
    pub inode: u64,
    /// `(offset, bytes)` writes, applied in order.
    pub writes: Vec<(u64, Vec<u8>)>,
    /// The file's size after the writes.
    pub size: u64,
}

/// What opening with a journal directory found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// A complete journal was replayed.
    pub replayed: bool,
    /// A torn journal (crash while it was written) was discarded.
    pub discarded: bool,
    /// Bytes of uncommitted data cut from the end of the file.
    pub trimmed: u64,
    /// The newest state did not match the disk (a power cut lost it), so
    /// the previous durable one was taken.
    pub rolled_back: bool,
}

impl Recovery {
    /// Whether anything had to be done.
    pub fn any(&self) -> bool {
        self.replayed || self.discarded || self.trimmed > 0 || self.rolled_back
    }
}

impl Journal {
    fn encode(&self) -> Vec<u8> {
        // Sized exactly: a commit journals up to 8 MiB of blocks, and a
        // buffer short of its last bytes grows to twice that.
        let body = self.writes.iter().map(|w| w.1.len() + 12).sum::<usize>();
        let mut v = Vec::with_capacity(HEAD_LEN + body + SUM_LEN);
        v.extend_from_slice(MAGIC);
        v.extend_from_slice(&self.header_hash);
        v.extend_from_slice(&self.inode.to_be_bytes());
        v.extend_from_slice(&self.size.to_be_bytes());
        v.extend_from_slice(&(self.writes.len() as u32).to_be_bytes());
        for (off, bytes) in &self.writes {
            v.extend_from_slice(&off.to_be_bytes());
            v.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            v.extend_from_slice(bytes);
        }
        let sum = sha256(&v);
        v.extend_from_slice(&sum);
        v
    }

    /// Decodes a journal; `None` if it is torn or not a journal.
    fn decode(b: &[u8]) -> Option<Self> {
        if b.len() < HEAD_LEN + SUM_LEN || &b[..8] != MAGIC {
            return None;
        }
        let (body, sum) = b.split_at(b.len() - SUM_LEN);
        if sha256(body) != sum {
            return None;
        }
        let u64_at = |o: usize| u64::from_be_bytes(body[o..o + 8].try_into().unwrap());
        let count = u32::from_be_bytes(body[HEAD_LEN - 4..HEAD_LEN].try_into().unwrap()) as usize;
        let mut writes = Vec::with_capacity(count.min(1 << 16));
        let mut o = HEAD_LEN;
        for _ in 0..count {
            let off = u64_at(o);
            let len = u32::from_be_bytes(body.get(o + 8..o + 12)?.try_into().unwrap()) as usize;
            writes.push((off, body.get(o + 12..o + 12 + len)?.to_vec()));
            o += 12 + len;
        }
        (o == body.len()).then(|| Self {
            header_hash: body[8..40].try_into().unwrap(),
            inode: u64_at(40),
            size: u64_at(48),
            writes,
        })
    }

    /// Writes the journal of `id` durably into `dir`.
    pub fn write(&self, dir: &JournalDir, id: &ContentId) -> Result<(), FormatError> {
        Ok(dir.write_journal(id, &self.encode())?)
    }

    /// Applies the writes and the size to `file`, then syncs it.
    /// Idempotent, so a crash during replay is healed by replaying again.
    pub fn apply(&self, file: &File) -> Result<(), FormatError> {
        for (off, bytes) in &self.writes {
            file.write_all_at(bytes, *off)?;
        }
        file.set_len(self.size)?;
        file.sync_data()?;
        Ok(())
    }

    /// Replays or discards the journal of `id` in `dir` for `file`, if
    /// there is one that belongs to it. Leaves journals of other files
    /// alone.
    pub fn recover(
        dir: &JournalDir,
        id: &ContentId,
        file: &File,
        header_hash: &Sha256Digest,
        rec: &mut Recovery,
    ) -> Result<(), FormatError> {
        let Some(bytes) = dir.read_journal(id)? else {
            return Ok(());
        };
        match Self::decode(&bytes) {
            Some(j) if &j.header_hash == header_hash && j.inode == file.metadata()?.ino() => {
                j.apply(file)?;
                rec.replayed = true;
            }
            Some(_) => return Ok(()),
            None => rec.discarded = true,
        }
        dir.remove_journal(id)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_torn_detection() {
        let j = Journal {
            header_hash: [3; 32],
            inode: 42,
            writes: vec![(10, vec![1, 2, 3]), (4096, vec![9; 100])],
            size: 5000,
        };
        let e = j.encode();
        assert_eq!(e.len(), e.capacity(), "encoded into a buffer of its exact size");
        assert_eq!(Journal::decode(&e), Some(j));
        for cut in [0, 10, 60, e.len() - 1] {
            assert_eq!(Journal::decode(&e[..cut]), None, "cut at {cut}");
        }
        let mut flipped = e.clone();
        flipped[70] ^= 1;
        assert_eq!(Journal::decode(&flipped), None);
    }
}
