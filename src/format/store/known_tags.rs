//! Tag tables of files a reader has verified or written, so that
//! reopening an unchanged file does not read all of it again.
//!
//! Opening a protected file checks the state record's commitment over every
//! block's tag, and the tags are spread through the file: a cold open of a
//! 512 MiB file reads 512 MiB before the first byte is served. A table is
//! reused only for the same content id *and* the same commitment as the
//! state record now on disk (authenticated with the file's key), so it is
//! exactly the table that record commits to; every block read is still
//! checked against its tag and opened with AES-GCM, so a block changed on
//! disk since is caught when read (`StaleBlock` or `BlockCorrupt`).
//!
//! A table is shared with the open file it came from or went to (an
//! `Arc`), so remembering or recalling one copies nothing. The memory the
//! tables in memory take is bounded by the budget its owner gives
//! [`KnownTags::new`] (the mount's `--tag-memory-mib`), not by the files
//! seen; tables spilled to the journal folder (files over 512 MiB, see
//! `tag_table.rs`) take none, and are bounded by [`SPILLED_BUDGET`].

use std::sync::{Arc, Mutex};

use super::tag_table::TagTable;
use crate::crypto::{Sha256Digest, TAG_LEN};
use crate::policy::ContentId;

/// Smaller files are cheap to check in full.
const MIN_BLOCKS: usize = 256;

/// Memory the tables may take by default (16 bytes per block: 4 MiB covers
/// 1 GiB of files in 4 KiB blocks; larger files' tables are spilled).
pub const DEFAULT_BUDGET: usize = 4 << 20;

/// Bytes of spilled tables kept (in the page cache and the journal
/// folder, not in memory): the tags of 64 GiB of files.
const SPILLED_BUDGET: usize = 256 << 20;

struct Known {
    tables: lru::LruCache<ContentId, (Sha256Digest, Arc<TagTable>)>,
    /// Memory the tables held in memory take.
    bytes: usize,
    /// Bytes the spilled tables keep in their files.
    spilled: usize,
}

/// Remembered tag tables, at most `budget` bytes of them: part of a
/// reader's [`Caches`](crate::format::Caches).
pub(crate) struct KnownTags {
    budget: usize,
    known: Mutex<Known>,
}

/// Tables freed at once beyond which the allocator is asked to give the
/// memory back: a table below the allocator's mmap threshold (2 MiB in the
/// mount, `fs/memory.rs`) lives in its heap, which would otherwise keep the
/// pages resident until the mount is next idle, beside the table that took
/// their place.
const GIVE_BACK_AT: usize = 1 << 20;

impl Known {
    fn take(&mut self, t: &TagTable) {
        self.bytes -= t.memory();
        self.spilled -= t.spilled();
    }

    /// Drops the oldest tables in memory until they take at most `budget`,
    /// and the oldest spilled ones beyond [`SPILLED_BUDGET`]; returns the
    /// memory of those no open file still held (so freed).
    fn shrink_to(&mut self, budget: usize) -> usize {
        let mut freed = 0;
        loop {
            let in_memory = self.bytes > budget;
            if !in_memory && self.spilled <= SPILLED_BUDGET {
                return freed;
            }
            let oldest = self
                .tables
                .iter()
                .rev()
                .find(|(_, (_, t))| if in_memory { t.memory() > 0 } else { t.spilled() > 0 });
            let Some(id) = oldest.map(|(id, _)| *id) else {
                return freed;
            };
            if let Some((_, t)) = self.tables.pop(&id) {
                self.take(&t);
                freed += Arc::into_inner(t).map_or(0, |t| t.memory());
            }
        }
    }
}

impl KnownTags {
    /// None yet; tables are kept while they take at most `budget` bytes
    /// (0: none are kept).
    pub(crate) fn new(budget: usize) -> Self {
        Self {
            budget,
            known: Mutex::new(Known {
                tables: lru::LruCache::unbounded(),
                bytes: 0,
                spilled: 0,
            }),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Known) -> R) -> R {
        f(&mut self.known.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Shrinks the tables to `budget`, then gives what that freed back to
    /// the system if it is worth a trim.
    fn shrink_and_give_back(&self, budget: usize) {
        if self.with(|k| k.shrink_to(budget)) >= GIVE_BACK_AT {
            #[cfg(all(target_os = "linux", target_env = "gnu"))]
            crate::sys::trim_malloc();
        }
    }

    /// Remembers the tags a state with `commitment` commits to.
    pub(crate) fn remember(&self, id: ContentId, commitment: Sha256Digest, tags: &Arc<TagTable>) {
        if self.budget == 0 || tags.len() < MIN_BLOCKS || tags.memory() > self.budget || tags.spilled() > SPILLED_BUDGET
        {
            return;
        }
        self.with(|k| {
            if let Some((_, old)) = k.tables.put(id, (commitment, tags.clone())) {
                k.take(&old);
            }
            k.bytes += tags.memory();
            k.spilled += tags.spilled();
        });
        self.shrink_and_give_back(self.budget);
    }

    /// Makes room for a table of `bytes` that an open file is about to
    /// hold: the oldest remembered tables give way until they and it fit
    /// the budget together, so that a daemon which has served large files
    /// does not hold their tables beside the one it now needs.
    pub(crate) fn make_room(&self, bytes: usize) {
        if bytes >= MIN_BLOCKS * TAG_LEN {
            self.shrink_and_give_back(self.budget.saturating_sub(bytes));
        }
    }

    /// Forgets the table remembered for `id` if it is `tags`, which its
    /// open file is about to change: kept here, it would make the file copy
    /// its table before changing it (and it is stale once changed).
    pub(crate) fn forget(&self, id: &ContentId, tags: &Arc<TagTable>) {
        self.with(|k| {
            if k.tables.peek(id).is_some_and(|(_, t)| Arc::ptr_eq(t, tags))
                && let Some((_, t)) = k.tables.pop(id)
            {
                k.take(&t);
            }
        });
    }

    /// The `blocks` tags committed to by `commitment`, if remembered.
    pub(crate) fn recall(&self, id: &ContentId, commitment: &Sha256Digest, blocks: u64) -> Option<Arc<TagTable>> {
        self.with(|k| {
            k.tables
                .get(id)
                .filter(|(c, t)| c == commitment && t.len() as u64 == blocks)
                .map(|(_, t)| t.clone())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(blocks: usize, byte: u8) -> Arc<TagTable> {
        Arc::new(TagTable::Held(vec![[byte; TAG_LEN]; blocks]))
    }

    fn spilled(blocks: usize) -> Arc<TagTable> {
        let file = tempfile::tempfile().unwrap();
        file.set_len((blocks * TAG_LEN) as u64).unwrap();
        Arc::new(TagTable::Spilled { file, len: blocks })
    }

    fn same(a: Option<Arc<TagTable>>, b: &Arc<TagTable>) -> bool {
        a.is_some_and(|a| Arc::ptr_eq(&a, b))
    }

    #[test]
    fn recalled_only_for_the_same_commitment_and_length_within_the_budget() {
        let known = KnownTags::new(DEFAULT_BUDGET);
        let id = ContentId::generate();
        let tags = table(MIN_BLOCKS, 7);
        known.remember(id, [1; 32], &tags);
        assert!(same(known.recall(&id, &[1; 32], MIN_BLOCKS as u64), &tags));
        assert!(known.recall(&id, &[2; 32], MIN_BLOCKS as u64).is_none());
        assert!(known.recall(&id, &[1; 32], MIN_BLOCKS as u64 + 1).is_none());
        assert!(
            known
                .recall(&ContentId::generate(), &[1; 32], MIN_BLOCKS as u64)
                .is_none()
        );
        // Small tables are not kept.
        let small = ContentId::generate();
        known.remember(small, [1; 32], &table(10, 7));
        assert!(known.recall(&small, &[1; 32], 10).is_none());
        // Filling the budget evicts the oldest; recalling shares.
        let big = table(DEFAULT_BUDGET / TAG_LEN / 2, 9);
        let (a, b) = (ContentId::generate(), ContentId::generate());
        known.remember(a, [3; 32], &big);
        known.remember(b, [4; 32], &big);
        assert!(known.recall(&id, &[1; 32], MIN_BLOCKS as u64).is_none());
        assert!(same(known.recall(&b, &[4; 32], big.len() as u64), &big));
        assert!(known.with(|k| k.bytes) <= DEFAULT_BUDGET);
        // An open file's table makes the oldest give way; a table about to
        // change is forgotten, so that changing it copies nothing.
        known.make_room(DEFAULT_BUDGET / 2);
        assert!(known.recall(&b, &[4; 32], big.len() as u64).is_some());
        known.make_room(DEFAULT_BUDGET);
        assert!(known.recall(&b, &[4; 32], big.len() as u64).is_none());
        assert_eq!(known.with(|k| k.bytes), 0);
        let c = ContentId::generate();
        known.remember(c, [5; 32], &table(MIN_BLOCKS, 5));
        let mut open = known.recall(&c, &[5; 32], MIN_BLOCKS as u64).unwrap();
        known.forget(&c, &table(MIN_BLOCKS, 5));
        assert!(
            known.recall(&c, &[5; 32], MIN_BLOCKS as u64).is_some(),
            "another table of the file"
        );
        known.forget(&c, &open);
        assert!(known.recall(&c, &[5; 32], MIN_BLOCKS as u64).is_none());
        assert!(Arc::get_mut(&mut open).is_some(), "changing it copies nothing");
        assert_eq!(known.with(|k| k.bytes), 0);
        // Another owner's tables are its own.
        assert!(
            KnownTags::new(DEFAULT_BUDGET)
                .recall(&b, &[4; 32], big.len() as u64)
                .is_none()
        );
    }

    #[test]
    fn only_tables_no_open_file_holds_count_as_freed() {
        let known = KnownTags::new(DEFAULT_BUDGET);
        let (held, dropped) = (
            table(DEFAULT_BUDGET / TAG_LEN / 4, 1),
            table(DEFAULT_BUDGET / TAG_LEN / 4, 1),
        );
        known.remember(ContentId::generate(), [1; 32], &held);
        known.remember(ContentId::generate(), [2; 32], &dropped);
        let bytes = dropped.memory();
        drop(dropped);
        // Both go; only the one no open file still holds is freed, and
        // so worth giving back to the system.
        assert_eq!(known.with(|k| k.shrink_to(0)), bytes);
        assert_eq!(known.with(|k| k.bytes), 0);
        assert_eq!(Arc::strong_count(&held), 1);
    }

    /// Spilled tables take no memory, so they neither count against the
    /// budget nor give way to tables in memory; they have a bound of their
    /// own.
    #[test]
    fn spilled_tables_are_kept_apart_from_the_memory_budget() {
        let known = KnownTags::new(DEFAULT_BUDGET);
        let (big, id) = (spilled(DEFAULT_BUDGET), ContentId::generate());
        known.remember(id, [1; 32], &big);
        assert_eq!(known.with(|k| (k.bytes, k.spilled)), (0, DEFAULT_BUDGET * TAG_LEN));
        known.make_room(DEFAULT_BUDGET);
        let in_memory = table(DEFAULT_BUDGET / TAG_LEN, 2);
        known.remember(ContentId::generate(), [2; 32], &in_memory);
        assert!(same(known.recall(&id, &[1; 32], big.len() as u64), &big));
        // Beyond their bound the oldest go.
        let blocks = SPILLED_BUDGET / TAG_LEN / 2;
        let (a, b) = (ContentId::generate(), ContentId::generate());
        known.remember(a, [3; 32], &spilled(blocks));
        known.remember(b, [4; 32], &spilled(blocks));
        assert!(known.recall(&id, &[1; 32], big.len() as u64).is_none());
        assert!(known.recall(&b, &[4; 32], blocks as u64).is_some());
        assert!(known.with(|k| k.spilled) <= SPILLED_BUDGET);
        // With no budget, nothing is kept, spilled or not.
        let none = KnownTags::new(0);
        none.remember(id, [1; 32], &big);
        assert!(none.recall(&id, &[1; 32], big.len() as u64).is_none());
    }
}
