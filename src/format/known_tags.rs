//! Tag tables of files this process has verified or written, so that
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

use std::sync::Mutex;

use crate::crypto::{Sha256Digest, TAG_LEN};
use crate::policy::ContentId;

type Tag = [u8; TAG_LEN];

/// Smaller files are cheap to check in full.
const MIN_BLOCKS: usize = 256;
/// Memory the tables may take (16 bytes per block: 32 MiB covers 8 GiB of
/// files in 4 KiB blocks).
const MAX_BYTES: usize = 32 << 20;

struct Known {
    tables: lru::LruCache<ContentId, (Sha256Digest, Vec<Tag>)>,
    bytes: usize,
}

static KNOWN: Mutex<Option<Known>> = Mutex::new(None);

fn with<R>(f: impl FnOnce(&mut Known) -> R) -> R {
    let mut g = KNOWN.lock().unwrap_or_else(|p| p.into_inner());
    f(g.get_or_insert_with(|| Known {
        tables: lru::LruCache::unbounded(),
        bytes: 0,
    }))
}

/// Remembers the tags a state with `commitment` commits to.
pub(super) fn remember(id: ContentId, commitment: Sha256Digest, tags: &[Tag]) {
    if tags.len() < MIN_BLOCKS || tags.len() * TAG_LEN > MAX_BYTES {
        return;
    }
    with(|k| {
        if let Some((_, old)) = k.tables.put(id, (commitment, tags.to_vec())) {
            k.bytes -= old.len() * TAG_LEN;
        }
        k.bytes += tags.len() * TAG_LEN;
        while k.bytes > MAX_BYTES {
            match k.tables.pop_lru() {
                Some((_, (_, t))) => k.bytes -= t.len() * TAG_LEN,
                None => break,
            }
        }
    });
}

/// The `blocks` tags committed to by `commitment`, if remembered.
pub(super) fn recall(id: &ContentId, commitment: &Sha256Digest, blocks: u64) -> Option<Vec<Tag>> {
    with(|k| {
        k.tables
            .get(id)
            .filter(|(c, t)| c == commitment && t.len() as u64 == blocks)
            .map(|(_, t)| t.clone())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recalled_only_for_the_same_commitment_and_length_within_the_budget() {
        let id = ContentId::generate();
        let tags = vec![[7u8; TAG_LEN]; MIN_BLOCKS];
        remember(id, [1; 32], &tags);
        assert_eq!(recall(&id, &[1; 32], MIN_BLOCKS as u64), Some(tags.clone()));
        assert_eq!(recall(&id, &[2; 32], MIN_BLOCKS as u64), None);
        assert_eq!(recall(&id, &[1; 32], MIN_BLOCKS as u64 + 1), None);
        assert_eq!(recall(&ContentId::generate(), &[1; 32], MIN_BLOCKS as u64), None);
        // Small tables are not kept.
        let small = ContentId::generate();
        remember(small, [1; 32], &tags[..10]);
        assert_eq!(recall(&small, &[1; 32], 10), None);
        // Filling the budget evicts the oldest.
        let big = vec![[9u8; TAG_LEN]; MAX_BYTES / TAG_LEN / 2];
        let (a, b) = (ContentId::generate(), ContentId::generate());
        remember(a, [3; 32], &big);
        remember(b, [4; 32], &big);
        assert!(recall(&id, &[1; 32], MIN_BLOCKS as u64).is_none());
        assert!(recall(&b, &[4; 32], big.len() as u64).is_some());
        assert!(with(|k| k.bytes) <= MAX_BYTES);
    }
}
