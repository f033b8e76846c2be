//! The inode table's nodes, stored densely and found by inode number.
//!
//! A hash map of nodes keeps a quarter or more of its slots empty and, as
//! it grows, holds its old and new arrays at once: walking 100,000 files
//! peaked 14 MiB for a map that ended at 9 MiB. Here the nodes sit in one
//! vector (grown in place by the allocator, `mremap` for large ones, so
//! never held twice), and a map of 4-byte positions finds them.

use std::hash::BuildHasher;

use super::node::Node;

/// Every node, by inode number.
pub struct Nodes {
    /// Nodes and their inode numbers; `None` for a free slot.
    slab: Vec<Option<(u64, Node)>>,
    /// Free slots, reused before the vector grows.
    free: Vec<u32>,
    /// Positions in `slab`, hashed by inode number.
    index: hashbrown::HashTable<u32>,
    hasher: std::hash::RandomState,
}

impl Nodes {
    pub fn new() -> Self {
        Self {
            slab: Vec::new(),
            free: Vec::new(),
            index: hashbrown::HashTable::new(),
            hasher: std::hash::RandomState::new(),
        }
    }

    fn hash(&self, ino: u64) -> u64 {
        self.hasher.hash_one(ino)
    }

    /// Whether position `s` of `slab` holds the node of `ino`.
    fn holds(slab: &[Option<(u64, Node)>], ino: u64) -> impl Fn(&u32) -> bool + '_ {
        move |&s| slab[s as usize].as_ref().is_some_and(|(i, _)| *i == ino)
    }

    fn slot(&self, ino: u64) -> Option<usize> {
        self.index
            .find(self.hash(ino), Self::holds(&self.slab, ino))
            .map(|&s| s as usize)
    }

    pub fn get(&self, ino: u64) -> Option<&Node> {
        let s = self.slot(ino)?;
        self.slab[s].as_ref().map(|(_, n)| n)
    }

    pub fn get_mut(&mut self, ino: u64) -> Option<&mut Node> {
        let s = self.slot(ino)?;
        self.slab[s].as_mut().map(|(_, n)| n)
    }

    pub fn contains(&self, ino: u64) -> bool {
        self.slot(ino).is_some()
    }

    /// The node of `ino`, made by `make` if there is none.
    pub fn get_or_insert_with(&mut self, ino: u64, make: impl FnOnce() -> Node) -> &mut Node {
        let s = match self.slot(ino) {
            Some(s) => s,
            None => self.insert(ino, make()),
        };
        match &mut self.slab[s] {
            Some((_, n)) => n,
            None => unreachable!("an indexed slot holds a node"),
        }
    }

    fn insert(&mut self, ino: u64, node: Node) -> usize {
        // Free slots past the vector's end (given back since) are skipped;
        // the vector grows only once no free slot is left.
        let s = loop {
            match self.free.pop() {
                Some(s) if (s as usize) < self.slab.len() => {
                    self.slab[s as usize] = Some((ino, node));
                    break s;
                }
                Some(_) => continue,
                None => {
                    self.slab.push(Some((ino, node)));
                    break u32::try_from(self.slab.len() - 1).expect("fewer than 2^32 inodes held");
                }
            }
        };
        let (slab, hasher) = (&self.slab, &self.hasher);
        let rehash = |&s: &u32| slab[s as usize].as_ref().map_or(0, |(i, _)| hasher.hash_one(*i));
        self.index.insert_unique(hasher.hash_one(ino), s, rehash);
        s as usize
    }

    /// Takes the node of `ino` out.
    pub fn remove(&mut self, ino: u64) -> Option<Node> {
        let hash = self.hash(ino);
        let (s, _) = self.index.find_entry(hash, Self::holds(&self.slab, ino)).ok()?.remove();
        self.free.push(s);
        let node = self.slab[s as usize].take().map(|(_, n)| n);
        // Past the last node held, the vector's tail is given back.
        while self.slab.last().is_some_and(Option::is_none) {
            self.slab.pop();
        }
        if self.free.len() > self.slab.len() / 2 {
            let len = self.slab.len() as u32;
            self.free.retain(|&s| s < len);
        }
        node
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    #[cfg(test)]
    pub fn values(&self) -> impl Iterator<Item = &Node> {
        self.slab.iter().flatten().map(|(_, n)| n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::node::Kind;

    #[test]
    fn nodes_are_found_after_removals_and_reuse() {
        let mut n = Nodes::new();
        for ino in 0..1000u64 {
            n.get_or_insert_with(ino * 7, || Node::new(Kind::Plain)).lookups = ino;
        }
        for ino in (0..1000u64).filter(|i| i % 3 == 0) {
            assert_eq!(n.remove(ino * 7).map(|x| x.lookups), Some(ino));
        }
        assert!(n.remove(0).is_none());
        for ino in 1000..1300u64 {
            n.get_or_insert_with(ino * 7, || Node::new(Kind::Plain)).lookups = ino;
        }
        for ino in 0..1300u64 {
            let want = (ino % 3 != 0 || ino >= 1000).then_some(ino);
            assert_eq!(n.get(ino * 7).map(|x| x.lookups), want, "{ino}");
        }
        assert_eq!(n.len(), 1300 - 334);
        assert_eq!(n.values().count(), n.len());
        // Emptied, the vector is given back.
        for ino in 0..1300u64 {
            n.remove(ino * 7);
        }
        assert_eq!((n.len(), n.slab.len()), (0, 0));
    }
}
