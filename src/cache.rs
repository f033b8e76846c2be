//! Bounded LRU caches whose tables grow with use.
//!
//! `lru::LruCache::new(cap)` reserves a hash table for `cap` entries at
//! once. With the generous bounds used here (tens of thousands of headers or
//! keys) the few thousand entries a working set holds end up scattered over
//! megabytes, so each probe of a cache that went cold is a TLB miss and a
//! cache miss: after `drop_caches` that was most of the mount's user-space
//! time per lookup. These caches start empty and grow with their contents;
//! the bound is the same.

use std::hash::Hash;
use std::num::NonZeroUsize;

/// An LRU cache that holds at most `cap` entries (at least one) and
/// allocates only for what it holds.
pub fn bounded<K: Hash + Eq, V>(cap: usize) -> lru::LruCache<K, V> {
    let mut c = lru::LruCache::unbounded();
    c.resize(NonZeroUsize::new(cap).unwrap_or(NonZeroUsize::MIN));
    c
}

/// A [`bounded`] cache that threads share, owned by whoever made it (no
/// process-wide caches: an owner passes its cache to what should use it).
pub struct Shared<K, V> {
    map: std::sync::Mutex<lru::LruCache<K, V>>,
}

impl<K: Hash + Eq, V: Clone> Shared<K, V> {
    /// Empty, holding at most `cap` entries.
    pub fn new(cap: usize) -> Self {
        Self {
            map: std::sync::Mutex::new(bounded(cap)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, lru::LruCache<K, V>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The value kept for `k`, if any.
    pub fn get(&self, k: &K) -> Option<V> {
        self.lock().get(k).cloned()
    }

    /// Keeps `v` for `k`, dropping the least recent entry beyond the bound.
    pub fn put(&self, k: K, v: V) {
        self.lock().put(k, v);
    }

    /// Forgets what is kept for `k`.
    pub fn remove(&self, k: &K) {
        self.lock().pop(k);
    }

    /// How many entries are kept.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_its_bound_and_drops_the_least_recent() {
        let mut c = bounded::<u32, u32>(3);
        assert_eq!(c.cap().get(), 3);
        for i in 0..3 {
            c.put(i, i);
        }
        c.get(&0);
        c.put(3, 3);
        assert_eq!(c.len(), 3);
        assert!(c.contains(&0) && !c.contains(&1));
    }

    #[test]
    fn a_zero_bound_still_holds_one() {
        let mut c = bounded::<u32, u32>(0);
        c.put(1, 1);
        c.put(2, 2);
        assert_eq!(c.len(), 1);
        assert!(c.contains(&2));
    }
}
