//! The inode table: which source entry each kernel inode number means.
//!
//! Inode numbers are the source files' own (`st_ino`), with the source
//! root swapped with 1 (the kernel's root), so numbers are stable across
//! lookups, renames and remounts, `readdir` can report them without a
//! lookup, and hard links in the source are one inode in the mount.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use fuser::Errno;

use super::open::OpenFile;

/// The kernel's root inode.
pub const ROOT: u64 = 1;

/// What a source entry is, as far as the mount cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A folder.
    Dir,
    /// A `NAME.rights` file, shown decrypted.
    Protected,
    /// A file without the suffix, passed through unchanged.
    Plain,
    /// A symbolic link (passed through).
    Symlink,
    /// A FIFO or socket (passed through).
    Special,
}

/// Cached facts about a protected file that cost a read to learn.
#[derive(Clone, Debug)]
pub struct HeaderFacts {
    /// Where blocks start and how big they are (for sizes without a key).
    pub geometry: crate::format::Geometry,
    /// The rights this user holds, if a cached licence says (no network).
    pub rights: Option<crate::policy::Rights>,
}

/// One inode.
pub struct Node {
    /// Every (parent inode, source name) this inode is known under.
    pub links: Vec<(u64, OsString)>,
    /// What it is.
    pub kind: Kind,
    /// Kernel references (lookups not yet forgotten).
    pub lookups: u64,
    /// The decrypted view shared by every open handle of this inode.
    pub open: Option<Arc<OpenFile>>,
    /// Open handles on `open`.
    pub opens: usize,
    /// Serialises the (possibly slow) first open of the inode.
    pub gate: Arc<Mutex<()>>,
    /// Header facts, learned once.
    pub facts: Option<HeaderFacts>,
    /// Source (mtime, size) when the kernel's page cache of the inode was
    /// last known to match: lets a reopen keep the cache.
    pub cache_stamp: Option<(i64, i64, u64)>,
}

/// All inodes the kernel knows, and the names they are known under.
pub struct Table {
    root: PathBuf,
    root_ino: u64,
    nodes: HashMap<u64, Node>,
    names: HashMap<(u64, OsString), u64>,
}

impl Table {
    /// A table for the source folder `root` whose own inode is `root_ino`.
    pub fn new(root: PathBuf, root_ino: u64) -> Self {
        let mut nodes = HashMap::new();
        nodes.insert(ROOT, Node::new(Kind::Dir, Vec::new()));
        Self {
            root,
            root_ino,
            nodes,
            names: HashMap::new(),
        }
    }

    /// The kernel inode number for a source `st_ino`.
    pub fn ino_for(&self, st_ino: u64) -> u64 {
        if st_ino == self.root_ino {
            ROOT
        } else if st_ino == ROOT {
            self.root_ino
        } else {
            st_ino
        }
    }

    /// The node, if known.
    pub fn get(&self, ino: u64) -> Option<&Node> {
        self.nodes.get(&ino)
    }

    /// The node, mutably.
    pub fn get_mut(&mut self, ino: u64) -> Option<&mut Node> {
        self.nodes.get_mut(&ino)
    }

    /// The source path of an inode (through its first name).
    pub fn path(&self, ino: u64) -> Result<PathBuf, Errno> {
        let mut parts: Vec<&OsStr> = Vec::new();
        let mut cur = ino;
        let mut depth = 0;
        while cur != ROOT {
            let node = self.nodes.get(&cur).ok_or(Errno::ENOENT)?;
            let (parent, name) = node.links.first().ok_or(Errno::ENOENT)?;
            parts.push(name);
            cur = *parent;
            depth += 1;
            if depth > 4096 {
                return Err(Errno::ELOOP);
            }
        }
        let mut p = self.root.clone();
        for part in parts.iter().rev() {
            p.push(part);
        }
        Ok(p)
    }

    /// The source path of `name` in folder `parent`.
    pub fn child_path(&self, parent: u64, name: &OsStr) -> Result<PathBuf, Errno> {
        Ok(self.path(parent)?.join(name))
    }

    /// Records that `ino` (a `kind`) is `name` in `parent`, and counts a
    /// kernel lookup when `lookup` is set.
    pub fn remember(&mut self, ino: u64, kind: Kind, parent: u64, name: &OsStr, lookup: bool) {
        let key = (parent, name.to_owned());
        if let Some(old) = self.names.get(&key).copied()
            && old != ino
        {
            self.unlink_name(parent, name);
        }
        let node = self.nodes.entry(ino).or_insert_with(|| Node::new(kind, Vec::new()));
        if node.kind != kind && node.open.is_none() {
            node.kind = kind;
            node.facts = None;
        }
        if !node.links.iter().any(|l| l.0 == parent && l.1 == name) {
            node.links.insert(0, key.clone());
        }
        if lookup {
            node.lookups += 1;
        }
        self.names.insert(key, ino);
    }

    /// The inode known as `name` in `parent`, if any.
    pub fn by_name(&self, parent: u64, name: &OsStr) -> Option<u64> {
        self.names.get(&(parent, name.to_owned())).copied()
    }

    /// Forgets the name `name` in `parent` (after unlink or when replaced).
    pub fn unlink_name(&mut self, parent: u64, name: &OsStr) {
        let key = (parent, name.to_owned());
        if let Some(ino) = self.names.remove(&key)
            && let Some(node) = self.nodes.get_mut(&ino)
        {
            node.links.retain(|l| *l != key);
            self.drop_if_unused(ino);
        }
    }

    /// Moves a name (rename), replacing whatever the target name meant.
    pub fn rename(&mut self, parent: u64, name: &OsStr, newparent: u64, newname: &OsStr) {
        let from = (parent, name.to_owned());
        let to = (newparent, newname.to_owned());
        self.unlink_name(newparent, newname);
        if let Some(ino) = self.names.remove(&from) {
            if let Some(node) = self.nodes.get_mut(&ino) {
                for l in node.links.iter_mut().filter(|l| **l == from) {
                    *l = to.clone();
                }
            }
            self.names.insert(to, ino);
        }
    }

    /// Swaps two names (`RENAME_EXCHANGE`).
    pub fn exchange(&mut self, a: (u64, &OsStr), b: (u64, &OsStr)) {
        let ka = (a.0, a.1.to_owned());
        let kb = (b.0, b.1.to_owned());
        let ia = self.names.remove(&ka);
        let ib = self.names.remove(&kb);
        for (ino, from, to) in [(ia, &ka, &kb), (ib, &kb, &ka)] {
            if let Some(ino) = ino {
                if let Some(node) = self.nodes.get_mut(&ino) {
                    for l in node.links.iter_mut().filter(|l| *l == from) {
                        *l = to.clone();
                    }
                }
                self.names.insert(to.clone(), ino);
            }
        }
    }

    /// The kernel dropped `n` references.
    pub fn forget(&mut self, ino: u64, n: u64) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.lookups = node.lookups.saturating_sub(n);
            self.drop_if_unused(ino);
        }
    }

    fn drop_if_unused(&mut self, ino: u64) {
        if ino == ROOT {
            return;
        }
        let unused = self
            .nodes
            .get(&ino)
            .is_some_and(|n| n.lookups == 0 && n.opens == 0 && n.open.is_none());
        if unused && let Some(node) = self.nodes.remove(&ino) {
            for l in node.links {
                if self.names.get(&l) == Some(&ino) {
                    self.names.remove(&l);
                }
            }
        }
    }

    /// Drops the node once the last handle closed, if the kernel forgot it.
    pub fn release_if_unused(&mut self, ino: u64) {
        self.drop_if_unused(ino);
    }

    /// The source root.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Node {
    fn new(kind: Kind, links: Vec<(u64, OsString)>) -> Self {
        Self {
            links,
            kind,
            lookups: 0,
            open: None,
            opens: 0,
            gate: Arc::new(Mutex::new(())),
            facts: None,
            cache_stamp: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_renames_of_folders() {
        let mut t = Table::new(PathBuf::from("/src"), 77);
        t.remember(10, Kind::Dir, ROOT, OsStr::new("d"), true);
        t.remember(11, Kind::Protected, 10, OsStr::new("f.rights"), true);
        assert_eq!(t.path(11).unwrap(), PathBuf::from("/src/d/f.rights"));
        t.rename(ROOT, OsStr::new("d"), ROOT, OsStr::new("e"));
        assert_eq!(t.path(11).unwrap(), PathBuf::from("/src/e/f.rights"));
        t.unlink_name(10, OsStr::new("f.rights"));
        assert!(t.path(11).is_err());
        t.forget(11, 1);
        assert!(t.get(11).is_none());
    }

    #[test]
    fn root_inode_is_swapped_with_one() {
        let t = Table::new(PathBuf::from("/src"), 77);
        assert_eq!(t.ino_for(77), ROOT);
        assert_eq!(t.ino_for(1), 77);
        assert_eq!(t.ino_for(5), 5);
    }

    #[test]
    fn exchange_swaps_names() {
        let mut t = Table::new(PathBuf::from("/s"), 2);
        t.remember(10, Kind::Plain, ROOT, OsStr::new("a"), true);
        t.remember(11, Kind::Plain, ROOT, OsStr::new("b"), true);
        t.exchange((ROOT, OsStr::new("a")), (ROOT, OsStr::new("b")));
        assert_eq!(t.path(10).unwrap(), PathBuf::from("/s/b"));
        assert_eq!(t.by_name(ROOT, OsStr::new("a")), Some(11));
    }
}
