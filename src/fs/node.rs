//! One inode of the mount, kept small.
//!
//! The mount holds a node for every inode the kernel holds, and the kernel
//! holds every entry a listing showed (`readdirplus`): walking a tree of
//! 100,000 files means 100,000 nodes. A node is 64 bytes plus its name, so
//! that such a walk fits the daemon's memory target without the inode cap
//! (`prune.rs`) having to make the kernel forget entries mid-walk, which
//! costs the walk a round trip per forgotten entry. What only an opened
//! file needs lives in a box made at its first open ([`InUse`]); the name is
//! stored once, in the node (the name index, `inodes.rs`, refers to it).

use std::ffi::OsStr;
use std::sync::{Arc, Mutex};

use smallvec::SmallVec;

use super::open::OpenFile;
use crate::format::Geometry;
use crate::policy::Rights;

/// What a source entry is, as far as the mount cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A folder.
    Dir,
    /// A `NAME.rights` file, shown decrypted.
    Protected,
    /// A file without the suffix, shown read-only.
    Plain,
    /// A symbolic link (passed through).
    Symlink,
    /// A FIFO or socket (passed through).
    Special,
}

/// Cached facts about a protected file that cost a read to learn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderFacts {
    /// Where blocks start and how big they are (for sizes without a key).
    pub geometry: Geometry,
    /// The rights this user holds, if a cached licence says (no network).
    pub rights: Option<Rights>,
}

/// [`HeaderFacts`] in 12 bytes: headers and blocks are far below 4 GiB
/// (facts that do not fit are simply not kept, and learnt again).
#[derive(Clone, Copy)]
struct Facts {
    data_offset: u32,
    block_size: u32,
    rights: Option<Rights>,
}

/// A name the inode is known under: its folder's inode and its source name.
pub type Link = (u64, Box<OsStr>);

/// What an opened file needs, boxed so that the many nodes never opened
/// do not carry it.
#[derive(Default)]
pub struct InUse {
    /// The decrypted view shared by every open handle of this inode.
    pub open: Option<Arc<OpenFile>>,
    /// Open handles (on `open`, or plain files' own).
    pub opens: usize,
    /// Serialises the (possibly slow) first open of the inode.
    pub gate: Arc<Mutex<()>>,
    /// Source (mtime, size) when the kernel's page cache of the inode was
    /// last known to match: lets a reopen keep the cache.
    pub cache_stamp: Option<(i64, i64, u64)>,
}

/// One inode.
pub struct Node {
    /// Every name this inode is known under: one, but for hard links.
    links: SmallVec<[Link; 1]>,
    /// Kernel references (lookups not yet forgotten).
    pub lookups: u64,
    in_use: Option<Box<InUse>>,
    facts: Option<Facts>,
    /// What it is.
    pub kind: Kind,
    /// In the table's eviction order (see `Table::take_prunable`).
    pub(super) queued: bool,
}

impl Node {
    pub(super) fn new(kind: Kind) -> Self {
        Self {
            links: SmallVec::new(),
            lookups: 0,
            in_use: None,
            facts: None,
            kind,
            queued: false,
        }
    }

    /// The names the inode is known under, the latest first.
    pub fn links(&self) -> &[Link] {
        &self.links
    }

    /// The folder holding the inode (through its first name).
    pub fn parent(&self) -> Option<u64> {
        self.links.first().map(|l| l.0)
    }

    pub(super) fn has_link(&self, parent: u64, name: &OsStr) -> bool {
        self.links.iter().any(|l| l.0 == parent && *l.1 == *name)
    }

    pub(super) fn link_mut(&mut self, parent: u64, name: &OsStr) -> Option<&mut Link> {
        self.links.iter_mut().find(|l| l.0 == parent && *l.1 == *name)
    }

    pub(super) fn add_link(&mut self, parent: u64, name: &OsStr) {
        self.links.insert(0, (parent, name.into()));
    }

    pub(super) fn remove_link(&mut self, parent: u64, name: &OsStr) {
        self.links.retain(|l| !(l.0 == parent && *l.1 == *name));
    }

    pub(super) fn take_links(&mut self) -> SmallVec<[Link; 1]> {
        std::mem::take(&mut self.links)
    }

    /// The shared decrypted view, while the file is open.
    pub fn open(&self) -> Option<&Arc<OpenFile>> {
        self.in_use.as_ref().and_then(|u| u.open.as_ref())
    }

    /// Open handles.
    pub fn opens(&self) -> usize {
        self.in_use.as_ref().map_or(0, |u| u.opens)
    }

    /// The open-file state, made at the first open.
    pub fn in_use_or_new(&mut self) -> &mut InUse {
        self.in_use.get_or_insert_with(Default::default)
    }

    /// The open-file state, if the inode was ever opened.
    pub fn in_use_mut(&mut self) -> Option<&mut InUse> {
        self.in_use.as_deref_mut()
    }

    /// Whether a handle holds the inode (it cannot be dropped).
    pub fn busy(&self) -> bool {
        self.opens() > 0 || self.open().is_some()
    }

    /// Header facts, if learnt.
    pub fn facts(&self) -> Option<HeaderFacts> {
        self.facts.map(|f| HeaderFacts {
            geometry: Geometry {
                data_offset: u64::from(f.data_offset),
                block_size: u64::from(f.block_size),
            },
            rights: f.rights,
        })
    }

    /// Keeps (or with `None` forgets) header facts.
    pub fn set_facts(&mut self, facts: Option<HeaderFacts>) {
        self.facts = facts.and_then(|f| {
            Some(Facts {
                data_offset: u32::try_from(f.geometry.data_offset).ok()?,
                block_size: u32::try_from(f.geometry.block_size).ok()?,
                rights: f.rights,
            })
        });
    }

    /// Records the rights an opened file's licence gave, if facts are kept.
    pub fn set_rights(&mut self, rights: Rights) {
        if let Some(f) = self.facts.as_mut() {
            f.rights = Some(rights);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_is_small() {
        // The point of this module: a tree's worth of nodes in little memory.
        assert!(std::mem::size_of::<Node>() <= 64, "{}", std::mem::size_of::<Node>());
    }

    #[test]
    fn facts_that_do_not_fit_are_not_kept() {
        let mut n = Node::new(Kind::Protected);
        let f = HeaderFacts {
            geometry: Geometry {
                data_offset: 812,
                block_size: 4096,
            },
            rights: None,
        };
        n.set_facts(Some(f));
        assert_eq!(n.facts(), Some(f));
        n.set_rights(Rights::owner());
        assert_eq!(n.facts().and_then(|f| f.rights), Some(Rights::owner()));
        n.set_facts(Some(HeaderFacts {
            geometry: Geometry {
                data_offset: 1 << 40,
                block_size: 4096,
            },
            rights: None,
        }));
        assert_eq!(n.facts(), None, "never a truncated offset");
    }
}
