//! What `stat` needs of a protected file's header (its geometry and the
//! user's rights), learned once per source inode and ctime and kept in
//! memory and in the on-disk index (`facts_index.rs`), so that listing a
//! folder reads no header twice.

use std::sync::MutexGuard;

use super::facts_index::HeaderMemo;
use super::inodes::HeaderFacts;
use super::stat::Stat;
use super::state::RightsFs;
use crate::format::read_header;
use crate::policy::Rights;

/// A source file's (inode, ctime seconds, ctime nanoseconds).
pub(super) type HeaderKey = (u64, i64, i64);

/// Bytes of header facts kept in memory: a bound by configuration, not
/// by the number of files seen (the on-disk index in `facts_index.rs`
/// answers for the rest without a header read).
pub(super) const HEADER_MEMORY: usize = 2 << 20;

/// Memory one cached fact takes: key, memo and the LRU's links and map
/// slot.
pub(super) const HEADER_ENTRY_COST: usize = 128;

impl RightsFs {
    /// The header memo cache, locked.
    pub(super) fn headers(&self) -> MutexGuard<'_, lru::LruCache<HeaderKey, HeaderMemo>> {
        self.headers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Header facts of a protected inode the table has none for: from the
    /// header cache, else read once (a header never changes for a given
    /// source inode and ctime), then kept on the inode.
    pub(super) fn learn_facts(&self, ino: u64, md: &Stat) -> Option<HeaderFacts> {
        if md.len() == 0 {
            return None;
        }
        let key = (md.ino(), md.ctime().0, md.ctime().1);
        let cached = self
            .headers()
            // `peek`: a `stat` after the kernel forgot the inode should not
            // also relink the cache's recency list (four more cold cache
            // lines); entries are refreshed when a file is written.
            .peek(&key)
            .copied();
        let memo = match cached {
            Some(m) => m,
            None => {
                let m = match self.facts_index.as_ref().and_then(|x| x.get(md)) {
                    Some(m) => m,
                    None => {
                        let path = self.src(ino).ok()?;
                        let h = super::save::open_nofollow(path.as_ref())
                            .ok()
                            .and_then(|f| read_header(&f).ok())?;
                        let m = self.memo(&h);
                        if let Some(x) = &self.facts_index {
                            x.put(md, m);
                        }
                        m
                    }
                };
                self.headers().put(key, m);
                m
            }
        };
        let facts = HeaderFacts {
            geometry: memo.geometry,
            rights: if memo.mine {
                Some(Rights::owner())
            } else {
                self.keys.cached_rights(&memo.id)
            },
        };
        if let Some(n) = self.table().get_mut(ino) {
            n.set_facts(Some(facts));
        }
        Some(facts)
    }

    /// What `stat` will need of header `h` once the header is gone.
    pub(super) fn memo(&self, h: &crate::format::FileHeader) -> HeaderMemo {
        HeaderMemo {
            geometry: h.geometry,
            id: h.content_id(),
            mine: h.licence.owner() == self.keys.me(),
        }
    }
}
