//! A protected file's tag table: every block's tag, which each block read
//! is checked against and each rewrite takes out of the commitment.
//!
//! At 16 bytes per 4 KiB block the table is 0.4 % of the file: 8 MiB for
//! a 2 GiB file, 4 GiB for a 1 TiB disk image. Kept in memory, it would
//! make the daemon's memory grow with the largest file it serves. A table
//! larger than the journal folder's bound ([`SPILL_AT`] by default) moves
//! to a file with no name (`O_TMPFILE`) in that private folder: its pages
//! sit in the page cache, which the kernel writes back and reclaims when
//! memory is short, not in the daemon. Reads fetch the tags of a run of
//! blocks with one `pread` (at most [`RUN`] blocks), so a sequential read
//! adds one system call per 256 KiB, a random 4 KiB read one of 16 bytes.
//!
//! The file has no name and mode 0600, so no other process can open it,
//! and it goes with its last descriptor (a crash leaves nothing behind).
//! Its tags are no secret: the protected file carries them too. Without a
//! journal folder, or where its filesystem has no unnamed files or no room
//! for the table (its space is reserved when the file is made), the table
//! stays in memory: a full disk never stops a file from being read.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use super::journal_dir::JournalDir;
use crate::crypto::TAG_LEN;
use crate::format::block::Tag;

/// Bytes of tags beyond which a table leaves memory by default: the
/// tables of files up to 512 MiB stay (so random reads of them need no
/// system call more), larger ones go.
pub const SPILL_AT: usize = 2 << 20;

/// Tags fetched at once from a spilled table by a read of many blocks.
pub(super) const RUN: usize = 64;

/// Every block's tag, in memory or spilled to an unnamed file.
#[derive(Debug)]
pub(crate) enum TagTable {
    Held(Vec<Tag>),
    Spilled { file: File, len: usize },
}

impl Default for TagTable {
    fn default() -> Self {
        Self::Held(Vec::new())
    }
}

fn past_end() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "block past the end of the tag table")
}

impl TagTable {
    /// An empty table about to be filled with `blocks` tags: spilled from
    /// the start if they will not stay in memory.
    pub(super) fn for_blocks(blocks: usize, spill: Option<&JournalDir>) -> Self {
        if let Some(dir) = spill.filter(|d| blocks * TAG_LEN > d.spill_at())
            && let Some(file) = unnamed(dir, blocks * TAG_LEN)
        {
            return Self::Spilled { file, len: 0 };
        }
        Self::Held(Vec::with_capacity(blocks))
    }

    /// How many tags it holds.
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Held(v) => v.len(),
            Self::Spilled { len, .. } => *len,
        }
    }

    /// Bytes of memory it takes (a spilled table: none).
    pub(crate) fn memory(&self) -> usize {
        match self {
            Self::Held(v) => v.capacity() * TAG_LEN,
            Self::Spilled { .. } => 0,
        }
    }

    /// Bytes it keeps in its file (a table in memory: none).
    pub(crate) fn spilled(&self) -> usize {
        match self {
            Self::Held(_) => 0,
            Self::Spilled { len, .. } => len * TAG_LEN,
        }
    }

    /// The memory it would take once grown to `blocks` tags, if growing
    /// that far needs more than it has: what the remembered tables must
    /// make room for.
    pub(super) fn growth(&self, blocks: usize, spill: Option<&JournalDir>) -> Option<usize> {
        let Self::Held(v) = self else { return None };
        if blocks <= v.capacity() {
            return None;
        }
        let want = blocks.max(v.len().saturating_mul(2)) * TAG_LEN;
        Some(spill.map_or(want, |d| want.min(d.spill_at())))
    }

    /// The tag of block `i`.
    pub(super) fn get(&self, i: u64) -> io::Result<Tag> {
        let mut t = [[0u8; TAG_LEN]];
        self.read_run(i, &mut t)?;
        Ok(t[0])
    }

    /// The tags of blocks `first..first + out.len()`, into `out`.
    pub(super) fn read_run(&self, first: u64, out: &mut [Tag]) -> io::Result<()> {
        let end = (first as usize).checked_add(out.len()).filter(|e| *e <= self.len());
        let Some(end) = end else { return Err(past_end()) };
        match self {
            Self::Held(v) => out.copy_from_slice(&v[first as usize..end]),
            Self::Spilled { file, .. } => file.read_exact_at(out.as_flattened_mut(), first * TAG_LEN as u64)?,
        }
        Ok(())
    }

    /// Sets the tags of blocks `first..`, growing the table past its end
    /// (`first` at most its length); once it would outgrow the bound of
    /// `spill` it moves to a file there.
    pub(super) fn write_run(&mut self, first: u64, tags: &[Tag], spill: Option<&JournalDir>) -> io::Result<()> {
        let first = first as usize;
        if first > self.len() {
            return Err(past_end());
        }
        let end = first + tags.len();
        if let (Self::Held(v), Some(dir)) = (&*self, spill)
            && end * TAG_LEN > dir.spill_at()
            && let Some(file) = unnamed(dir, (end * TAG_LEN).max(2 * dir.spill_at()))
            && file.write_all_at(v.as_flattened(), 0).is_ok()
        {
            let len = v.len();
            *self = Self::Spilled { file, len };
        }
        match self {
            Self::Held(v) => {
                let kept = (v.len() - first).min(tags.len());
                v[first..first + kept].copy_from_slice(&tags[..kept]);
                v.extend_from_slice(&tags[kept..]);
            }
            Self::Spilled { file, len } => {
                file.write_all_at(tags.as_flattened(), (first * TAG_LEN) as u64)?;
                *len = (*len).max(end);
            }
        }
        Ok(())
    }

    /// Keeps the first `n` tags.
    pub(super) fn truncate(&mut self, n: usize) -> io::Result<()> {
        match self {
            Self::Held(v) => v.truncate(n),
            Self::Spilled { file, len } if n < *len => {
                file.set_len((n * TAG_LEN) as u64)?;
                *len = n;
            }
            Self::Spilled { .. } => {}
        }
        Ok(())
    }

    /// A copy to change while this one stays shared: a spilled table is
    /// copied file to file in `spill`, or into memory without one.
    pub(super) fn try_clone(&self, spill: Option<&JournalDir>) -> io::Result<Self> {
        match self {
            Self::Held(v) => Ok(Self::Held(v.clone())),
            Self::Spilled { file, len } => {
                if let Some(copy) = spill.and_then(|d| unnamed(d, len * TAG_LEN)) {
                    // By offset, never through the descriptor's position,
                    // which the table's other holders share.
                    let mut buf = vec![0u8; 64 << 10];
                    let total = (len * TAG_LEN) as u64;
                    let mut at = 0;
                    while at < total {
                        let n = buf.len().min((total - at) as usize);
                        file.read_exact_at(&mut buf[..n], at)?;
                        copy.write_all_at(&buf[..n], at)?;
                        at += n as u64;
                    }
                    return Ok(Self::Spilled { file: copy, len: *len });
                }
                let mut v = vec![[0u8; TAG_LEN]; *len];
                self.read_run(0, &mut v)?;
                Ok(Self::Held(v))
            }
        }
    }
}

/// A new unnamed file in `dir` with room for `bytes`, or `None` where its
/// filesystem cannot make one or is full: the table then stays in memory,
/// so that a full disk never stops a file from being read.
fn unnamed(dir: &JournalDir, bytes: usize) -> Option<File> {
    dir.unnamed_file()
        .and_then(|f| super::disk::reserve(&f, 0, bytes as u64).map(|()| f))
        .inspect_err(|e| tracing::debug!(error = %e, "tag table kept in memory"))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dirfd::Dir;

    fn tag(i: usize) -> Tag {
        let mut t = [0u8; TAG_LEN];
        t[..8].copy_from_slice(&(i as u64).to_le_bytes());
        t
    }

    fn journal(bound: usize) -> (tempfile::TempDir, JournalDir) {
        let d = tempfile::tempdir().unwrap();
        let j = JournalDir::new(Dir::create_private(d.path()).unwrap())
            .unwrap()
            .spilling_tags_beyond(bound);
        (d, j)
    }

    /// The same changes to a table in memory and to one spilled read the
    /// same, and the spilled one takes no memory.
    #[test]
    fn a_spilled_table_reads_as_one_in_memory() {
        let (_d, dir) = journal(64 * TAG_LEN);
        let (mut held, mut spilled) = (TagTable::default(), TagTable::default());
        let all: Vec<Tag> = (0..200).map(tag).collect();
        for chunk in all.chunks(30).enumerate() {
            let at = (chunk.0 * 30) as u64;
            held.write_run(at, chunk.1, None).unwrap();
            spilled.write_run(at, chunk.1, Some(&dir)).unwrap();
        }
        assert!(matches!(spilled, TagTable::Spilled { .. }), "moved out past the bound");
        assert_eq!((spilled.memory(), spilled.spilled()), (0, 200 * TAG_LEN));
        // Rewrites in place, a cut, growth again.
        let new: Vec<Tag> = (1000..1010).map(tag).collect();
        for t in [&mut held, &mut spilled] {
            t.write_run(95, &new, Some(&dir)).unwrap();
            t.truncate(150).unwrap();
            t.write_run(150, &new, Some(&dir)).unwrap();
        }
        let read = |t: &TagTable| {
            let mut out = vec![[0u8; TAG_LEN]; t.len()];
            t.read_run(0, &mut out).unwrap();
            out
        };
        assert_eq!(held.len(), 160);
        assert_eq!(read(&held), read(&spilled));
        assert_eq!(spilled.get(100).unwrap(), tag(1005));
        // Nothing past the end, nor a gap.
        assert!(spilled.get(160).is_err() && held.get(160).is_err());
        assert!(spilled.write_run(161, &new, Some(&dir)).is_err());
        // A copy is its own: changing it leaves the original as it was.
        for spill in [Some(&dir), None] {
            let mut copy = spilled.try_clone(spill).unwrap();
            copy.write_run(0, &new, spill).unwrap();
            assert_eq!(read(&spilled), read(&held));
            assert_eq!(copy.get(0).unwrap(), tag(1000));
            assert_eq!(copy.len(), 160);
        }
    }

    #[test]
    fn a_table_stays_in_memory_below_the_bound_or_without_a_folder() {
        let (_d, dir) = journal(1 << 20);
        let mut t = TagTable::for_blocks(1000, Some(&dir));
        t.write_run(0, &vec![tag(1); 1000], Some(&dir)).unwrap();
        assert!(matches!(t, TagTable::Held(_)));
        let mut t = TagTable::for_blocks(100_000, None);
        t.write_run(0, &vec![tag(1); 100_000], None).unwrap();
        assert!(matches!(t, TagTable::Held(_)));
        assert!(matches!(
            TagTable::for_blocks(100_000, Some(&dir)),
            TagTable::Spilled { .. }
        ));
    }
}
