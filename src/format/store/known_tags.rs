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
//! `Arc`), so remembering or recalling one copies nothing; the memory it
//! takes is bounded by the budget its owner gives [`KnownTags::new`]
//! (the mount's `--tag-memory-mib`), not by the files seen.

use std::sync::{Arc, Mutex};

use crate::crypto::{Sha256Digest, TAG_LEN};
use crate::policy::ContentId;

type Tag = [u8; TAG_LEN];

/// Smaller files are cheap to check in full.
const MIN_BLOCKS: usize = 256;

/// Memory the tables may take by default (16 bytes per block: 8 MiB covers
/// 2 GiB of files in 4 KiB blocks).
pub const DEFAULT_BUDGET: usize = 8 << 20;

struct Known {
    tables: lru::LruCache<ContentId, (Sha256Digest, Arc<Vec<Tag>>)>,
    bytes: usize,
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
    /// Drops the oldest tables until they take at most `budget`; the bytes
    /// of those no open file still held (so freed).
    fn shrink_to(&mut self, budget: usize) -> usize {
        let mut freed = 0;
        while self.bytes > budget {
            match self.tables.pop_lru() {
                Some((_, (_, t))) => {
                    self.bytes -= t.len() * TAG_LEN;
                    freed += Arc::into_inner(t).map_or(0, |t| t.capacity() * TAG_LEN);
                }
                None => break,
            }
        }
        freed
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
    pub(crate) fn remember(&self, id: ContentId, commitment: Sha256Digest, tags: &Arc<Vec<Tag>>) {
        if tags.len() < MIN_BLOCKS || tags.len() * TAG_LEN > self.budget {
            return;
        }
        self.with(|k| {
            if let Some((_, old)) = k.tables.put(id, (commitment, tags.clone())) {
                k.bytes -= old.len() * TAG_LEN;
            }
            k.bytes += tags.len() * TAG_LEN;
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
    pub(crate) fn forget(&self, id: &ContentId, tags: &Arc<Vec<Tag>>) {
        self.with(|k| {
            if k.tables.peek(id).is_some_and(|(_, t)| Arc::ptr_eq(t, tags))
                && let Some((_, t)) = k.tables.pop(id)
            {
                k.bytes -= t.len() * TAG_LEN;
            }
        });
    }

    /// The `blocks` tags committed to by `commitment`, if remembered.
    pub(crate) fn recall(&self, id: &ContentId, commitment: &Sha256Digest, blocks: u64) -> Option<Arc<Vec<Tag>>> {
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

    #[test]
    fn recalled_only_for_the_same_commitment_and_length_within_the_budget() {
        let known = KnownTags::new(DEFAULT_BUDGET);
        let id = ContentId::generate();
        let tags = Arc::new(vec![[7u8; TAG_LEN]; MIN_BLOCKS]);
        known.remember(id, [1; 32], &tags);
        assert_eq!(known.recall(&id, &[1; 32], MIN_BLOCKS as u64), Some(tags.clone()));
        assert_eq!(known.recall(&id, &[2; 32], MIN_BLOCKS as u64), None);
        assert_eq!(known.recall(&id, &[1; 32], MIN_BLOCKS as u64 + 1), None);
        assert_eq!(known.recall(&ContentId::generate(), &[1; 32], MIN_BLOCKS as u64), None);
        // Small tables are not kept.
        let small = ContentId::generate();
        known.remember(small, [1; 32], &Arc::new(tags[..10].to_vec()));
        assert_eq!(known.recall(&small, &[1; 32], 10), None);
        // Filling the budget evicts the oldest.
        let big = Arc::new(vec![[9u8; TAG_LEN]; DEFAULT_BUDGET / TAG_LEN / 2]);
        let (a, b) = (ContentId::generate(), ContentId::generate());
        known.remember(a, [3; 32], &big);
        known.remember(b, [4; 32], &big);
        assert!(known.recall(&id, &[1; 32], MIN_BLOCKS as u64).is_none());
        assert!(known.recall(&b, &[4; 32], big.len() as u64).is_some());
        assert!(known.with(|k| k.bytes) <= DEFAULT_BUDGET);
        // Recalling shares the table instead of copying it.
        let again = known.recall(&b, &[4; 32], big.len() as u64).unwrap();
        assert!(Arc::ptr_eq(&again, &big));
        // An open file's table makes the oldest give way; a table about to
        // change is forgotten, so that changing it copies nothing.
        known.make_room(DEFAULT_BUDGET / 2);
        assert!(known.recall(&b, &[4; 32], big.len() as u64).is_some());
        known.make_room(DEFAULT_BUDGET);
        assert!(known.recall(&b, &[4; 32], big.len() as u64).is_none());
        assert_eq!(known.with(|k| k.bytes), 0);
        let c = ContentId::generate();
        known.remember(c, [5; 32], &Arc::new(vec![[5u8; TAG_LEN]; MIN_BLOCKS]));
        let mut open = known.recall(&c, &[5; 32], MIN_BLOCKS as u64).unwrap();
        known.forget(&c, &Arc::new(open.to_vec()));
        assert!(
            known.recall(&c, &[5; 32], MIN_BLOCKS as u64).is_some(),
            "another table of the file"
        );
        known.forget(&c, &open);
        assert!(known.recall(&c, &[5; 32], MIN_BLOCKS as u64).is_none());
        assert_eq!(Arc::strong_count(&open), 1, "changing it copies nothing");
        Arc::make_mut(&mut open)[0] = [1; TAG_LEN];
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
        let table = || Arc::new(vec![[1u8; TAG_LEN]; DEFAULT_BUDGET / TAG_LEN / 4]);
        let (held, dropped) = (table(), table());
        known.remember(ContentId::generate(), [1; 32], &held);
        known.remember(ContentId::generate(), [2; 32], &dropped);
        let bytes = dropped.capacity() * TAG_LEN;
        drop(dropped);
        // Both go; only the one no open file still holds is freed, and
        // so worth giving back to the system.
        assert_eq!(known.with(|k| k.shrink_to(0)), bytes);
        assert_eq!(known.with(|k| k.bytes), 0);
        assert_eq!(Arc::strong_count(&held), 1);
    }
}
