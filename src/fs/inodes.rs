//! The inode table: which source entry each kernel inode number means.
//!
//! Inode numbers are the source files' own (`st_ino`), with the source
//! root swapped with 1 (the kernel's root), so numbers are stable across
//! lookups, renames and remounts, `readdir` can report them without a
//! lookup, and hard links in the source are one inode in the mount.
//! Two exceptions take a spare number (far above real ones) for a while:
//! a save's new source file keeps the document's number (`save.rs`), and
//! a source entry reusing a number the kernel still holds for a removed
//! entry is kept apart from it (see [`Table::ino_for`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::{OsStr, OsString};
use std::hash::BuildHasher;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fuser::Errno;

use super::beneath::SrcPath;
pub use super::node::{HeaderFacts, Kind, Node};
use super::nodes::Nodes;

/// The kernel's root inode.
pub const ROOT: u64 = 1;

/// Spare inode numbers start here (see [`Table::ino_for`]).
const SPARE_INOS: u64 = 1 << 62;

/// Where an entry is in the source: the path of the folder holding it
/// below the source folder, and its name (none for a folder's own path).
pub struct Located {
    /// The whole path, the source folder's first.
    shown: PathBuf,
    /// Where the folder's path below the source folder is in `shown`.
    rel: std::ops::Range<usize>,
    /// `shown` ends with the entry's name.
    named: bool,
}

impl Located {
    /// Opens the folder from the source folder's descriptor `root`,
    /// following no link (see `beneath.rs`).
    pub fn reach(self, root: &Arc<std::os::fd::OwnedFd>) -> std::io::Result<SrcPath> {
        use std::os::unix::ffi::OsStrExt;
        let bytes = self.shown.as_os_str().as_bytes();
        let rel = Path::new(OsStr::from_bytes(bytes.get(self.rel.clone()).unwrap_or_default()));
        let name = self.named.then(|| self.shown.file_name()).flatten();
        SrcPath::open(root, rel, name, self.shown.clone())
    }

    /// The whole path (for log lines).
    pub fn shown(&self) -> &Path {
        &self.shown
    }
}

/// All inodes the kernel knows, and the names they are known under.
pub struct Table {
    root: PathBuf,
    root_ino: u64,
    /// The source folder's file system (`st_dev`), once known.
    root_dev: Option<u64>,
    nodes: Nodes,
    /// Which inode each (folder, name) is: the name itself is kept once,
    /// in the node's links, so an entry is the inode and the name's hash.
    /// Hashed with the standard library's keyed SipHash, as names may come
    /// from files someone else chose.
    names: hashbrown::HashTable<Named>,
    hasher: std::hash::RandomState,
    /// Source inodes shown under another number. A save (`save.rs`) puts
    /// a document's new content into a new source file under a name the
    /// kernel knows by the renamed file's number: that number must keep
    /// meaning the file, so every open handle and every later lookup share
    /// one view. Kept until the kernel forgets the number.
    aliases: HashMap<u64, u64>,
    /// The same, by the number shown: a source inode whose own number is
    /// taken this way (the file system reused it) gets a spare one.
    shown_as: HashMap<u64, u64>,
    /// The next spare number, far above real inode numbers.
    next_spare: u64,
    /// Inodes the kernel holds, oldest lookup first: which names to ask
    /// the kernel to drop when the table outgrows its cap (`prune.rs`).
    /// May hold numbers of nodes since dropped or requeued; a node's
    /// `queued` says whether an entry is current.
    order: VecDeque<u64>,
    /// Nodes whose `queued` is set.
    queued: usize,
}

/// A name the kernel may be asked to drop: an entry of `parent` under its
/// source name `name`.
#[derive(Debug, PartialEq, Eq)]
pub struct Prunable {
    /// The folder's inode.
    pub parent: u64,
    /// The entry's source name.
    pub name: OsString,
    /// What the entry is (its shown name follows from this).
    pub kind: Kind,
}

/// An entry of [`Table`]'s name index: the inode, and the hash of the
/// (folder, name) it is known under, kept so that growing the index needs
/// no look at the nodes.
struct Named {
    ino: u64,
    hash: u64,
}

impl Table {
    /// A table for the source folder `root` whose own inode is `root_ino`.
    pub fn new(root: PathBuf, root_ino: u64) -> Self {
        let mut nodes = Nodes::new();
        nodes.get_or_insert_with(ROOT, || Node::new(Kind::Dir));
        Self {
            root,
            root_ino,
            root_dev: None,
            nodes,
            names: hashbrown::HashTable::new(),
            hasher: std::hash::RandomState::new(),
            aliases: HashMap::new(),
            shown_as: HashMap::new(),
            next_spare: SPARE_INOS,
            order: VecDeque::new(),
            queued: 0,
        }
    }

    /// The table of a source folder on the file system `dev`.
    pub fn on_device(self, dev: u64) -> Self {
        Self {
            root_dev: Some(dev),
            ..self
        }
    }

    /// Whether an entry of file system `dev` is on another file system
    /// than the source folder (a mount or a btrfs subvolume below it).
    /// Such entries are not shown: inode numbers are only unique within
    /// one file system, and one of theirs could be taken for another
    /// entry's, the two sharing one inode and its view in the mount.
    pub fn elsewhere(&self, dev: u64) -> bool {
        self.root_dev.is_some_and(|d| d != dev)
    }

    /// The kernel inode number for a source `st_ino`.
    ///
    /// A number the kernel still holds for a removed entry (a descriptor
    /// or a working folder keeps it, or its FORGET is not in yet) is not
    /// handed out again: the source file system may reuse the number at
    /// once (ext4 does), and the kernel would take the new entry for its
    /// old, dead inode, a folder in which every lookup fails, a device
    /// node with the old device. The new entry gets a spare number until
    /// the kernel forgets either.
    pub fn ino_for(&mut self, st_ino: u64) -> u64 {
        let own = if st_ino == self.root_ino {
            return ROOT;
        } else if st_ino == ROOT {
            self.root_ino
        } else {
            st_ino
        };
        let mut reused_spare = false;
        if !self.aliases.is_empty()
            && let Some(&shown) = self.aliases.get(&st_ino)
        {
            if !self.held_dead(shown) {
                return shown;
            }
            // The entry shown under this spare was removed too, and the
            // source reused its number once more: the spare is as dead as
            // the number it stood for, and goes with its inode alone.
            self.shown_as.remove(&shown);
            reused_spare = true;
        }
        // Without aliases or removed entries (the rule) this is one probe:
        // it runs for every entry listed.
        if reused_spare || self.held_dead(own) || (!self.shown_as.is_empty() && self.shown_as.contains_key(&own)) {
            let spare = self.next_spare;
            self.next_spare += 1;
            self.aliases.insert(st_ino, spare);
            self.shown_as.insert(spare, st_ino);
            return spare;
        }
        own
    }

    /// Whether the kernel holds `ino` for an entry removed since.
    fn held_dead(&self, ino: u64) -> bool {
        self.nodes.get(ino).is_some_and(|n| n.links().is_empty())
    }

    /// Shows the source inode `st_ino` as the kernel inode `shown` (whose
    /// previous source file is gone), until the kernel forgets `shown`.
    pub fn alias(&mut self, st_ino: u64, shown: u64) {
        if [st_ino, shown].iter().any(|&i| i == ROOT || i == self.root_ino) {
            return;
        }
        if let Some(before) = self.shown_as.remove(&shown) {
            self.aliases.remove(&before);
        }
        if let Some(before) = self.aliases.remove(&st_ino) {
            self.shown_as.remove(&before);
        }
        self.aliases.insert(st_ino, shown);
        self.shown_as.insert(shown, st_ino);
    }

    /// The node, if known.
    pub fn get(&self, ino: u64) -> Option<&Node> {
        self.nodes.get(ino)
    }

    /// The node, mutably.
    pub fn get_mut(&mut self, ino: u64) -> Option<&mut Node> {
        self.nodes.get_mut(ino)
    }

    /// Where an inode is in the source (through its first name): the
    /// folder holding it and its name, to be reached with
    /// [`Located::reach`] once the table is unlocked.
    pub fn path(&self, ino: u64) -> Result<Located, Errno> {
        self.locate(ino, None, true)
    }

    /// Where the folder `ino` is, as a folder to work in (its own
    /// descriptor, never a link in its place).
    pub fn dir_path(&self, ino: u64) -> Result<Located, Errno> {
        self.locate(ino, None, false)
    }

    /// Where `name` in folder `parent` is.
    pub fn child_path(&self, parent: u64, name: &OsStr) -> Result<Located, Errno> {
        self.locate(parent, Some(name), false)
    }

    /// The names from the source folder down to `ino` (then `name`); with
    /// `named`, `ino`'s own name is the entry's.
    fn locate(&self, ino: u64, name: Option<&OsStr>, named: bool) -> Result<Located, Errno> {
        let mut parts: Vec<&OsStr> = Vec::new();
        let mut cur = ino;
        while cur != ROOT {
            let node = self.nodes.get(cur).ok_or(Errno::ENOENT)?;
            let (parent, name) = node.links().first().ok_or(Errno::ENOENT)?;
            parts.push(name);
            cur = *parent;
            if parts.len() > 4096 {
                return Err(Errno::ELOOP);
            }
        }
        parts.reverse();
        let entry = match name {
            Some(n) => Some(n),
            None if named => parts.pop(),
            None => None,
        };
        // One allocation: the whole path, for log lines, holding the
        // folder's path below the source folder.
        let len = self.root.as_os_str().len() + parts.iter().chain(&entry).map(|p| p.len() + 1).sum::<usize>();
        let mut shown = PathBuf::with_capacity(len);
        shown.push(&self.root);
        let rel_start = shown.as_os_str().len() + 1;
        for part in &parts {
            shown.push(part);
        }
        let rel_end = shown.as_os_str().len().max(rel_start);
        if let Some(n) = entry {
            shown.push(n);
        }
        Ok(Located {
            shown,
            rel: rel_start..rel_end,
            named: entry.is_some(),
        })
    }

    /// Records that `ino` (a `kind`) is `name` in `parent`, and counts a
    /// kernel lookup when `lookup` is set.
    pub fn remember(&mut self, ino: u64, kind: Kind, parent: u64, name: &OsStr, lookup: bool) {
        let known = self.by_name(parent, name);
        if known.is_some_and(|old| old != ino) {
            self.unlink_name(parent, name);
        }
        let node = self.nodes.get_or_insert_with(ino, || Node::new(kind));
        if node.kind != kind && node.open().is_none() {
            node.kind = kind;
            node.set_facts(None);
        }
        let queue = lookup && !node.queued;
        if lookup {
            node.lookups += 1;
            node.queued = true;
        }
        if !node.has_link(parent, name) {
            node.add_link(parent, name);
            let hash = self.hash(parent, name);
            self.names.insert_unique(hash, Named { ino, hash }, |e| e.hash);
        }
        if queue {
            self.queued += 1;
            self.order.push_back(ino);
            self.compact_order();
        }
    }

    fn hash(&self, parent: u64, name: &OsStr) -> u64 {
        self.hasher.hash_one((parent, name))
    }

    /// The index entry of `name` in `parent`, and its hash.
    fn find(&self, parent: u64, name: &OsStr) -> (u64, Option<u64>) {
        let hash = self.hash(parent, name);
        let nodes = &self.nodes;
        let found = self.names.find(hash, |e| {
            e.hash == hash && nodes.get(e.ino).is_some_and(|n| n.has_link(parent, name))
        });
        (hash, found.map(|e| e.ino))
    }

    /// Takes `name` in `parent` out of the index (the node keeps the link).
    fn unindex(&mut self, parent: u64, name: &OsStr) -> Option<u64> {
        let (hash, ino) = self.find(parent, name);
        let ino = ino?;
        if let Ok(e) = self.names.find_entry(hash, |e| e.hash == hash && e.ino == ino) {
            e.remove();
        }
        Some(ino)
    }

    /// The inode known as `name` in `parent`, if any.
    pub fn by_name(&self, parent: u64, name: &OsStr) -> Option<u64> {
        self.find(parent, name).1
    }

    /// Forgets the name `name` in `parent` (after unlink or when replaced).
    pub fn unlink_name(&mut self, parent: u64, name: &OsStr) {
        if let Some(ino) = self.unindex(parent, name)
            && let Some(node) = self.nodes.get_mut(ino)
        {
            node.remove_link(parent, name);
            self.drop_if_unused(ino);
        }
    }

    /// Moves a name (rename), replacing whatever the target name meant.
    pub fn rename(&mut self, parent: u64, name: &OsStr, newparent: u64, newname: &OsStr) {
        if (parent, name) == (newparent, newname) {
            return;
        }
        self.unlink_name(newparent, newname);
        if let Some(ino) = self.unindex(parent, name) {
            self.relink(ino, (parent, name), (newparent, newname));
        }
    }

    /// Swaps two names (`RENAME_EXCHANGE`).
    pub fn exchange(&mut self, a: (u64, &OsStr), b: (u64, &OsStr)) {
        let ia = self.unindex(a.0, a.1);
        let ib = self.unindex(b.0, b.1);
        // Both names of one inode (two hard links): nothing moves.
        if let Some(ino) = ia.filter(|_| ia == ib) {
            for (parent, name) in [a, b] {
                let hash = self.hash(parent, name);
                self.names.insert_unique(hash, Named { ino, hash }, |e| e.hash);
            }
            return;
        }
        // Renamed one after the other, each node's link to the other's name.
        let renamed: Vec<_> = [(ia, a, b), (ib, b, a)]
            .into_iter()
            .filter_map(|(ino, from, to)| {
                let ino = ino?;
                let link = self.nodes.get_mut(ino)?.link_mut(from.0, from.1)?;
                *link = (to.0, to.1.into());
                Some((ino, to))
            })
            .collect();
        for (ino, (parent, name)) in renamed {
            let hash = self.hash(parent, name);
            self.names.insert_unique(hash, Named { ino, hash }, |e| e.hash);
        }
    }

    /// Gives `ino`'s link `from` the name `to`, and indexes it there.
    fn relink(&mut self, ino: u64, from: (u64, &OsStr), to: (u64, &OsStr)) {
        let Some(node) = self.nodes.get_mut(ino) else { return };
        if node.has_link(to.0, to.1) {
            // Already known there too (a hard link renamed over its twin).
            node.remove_link(from.0, from.1);
            return;
        }
        if let Some(link) = node.link_mut(from.0, from.1) {
            *link = (to.0, to.1.into());
        }
        let hash = self.hash(to.0, to.1);
        self.names.insert_unique(hash, Named { ino, hash }, |e| e.hash);
    }

    /// The kernel dropped `n` references.
    pub fn forget(&mut self, ino: u64, n: u64) {
        if let Some(node) = self.nodes.get_mut(ino) {
            node.lookups = node.lookups.saturating_sub(n);
            self.drop_if_unused(ino);
        }
    }

    fn drop_if_unused(&mut self, ino: u64) {
        if ino == ROOT {
            return;
        }
        if self.nodes.get(ino).is_some_and(|n| n.lookups == 0 && !n.busy())
            && let Some(mut node) = self.nodes.remove(ino)
        {
            if node.queued {
                self.queued -= 1;
            }
            if let Some(st_ino) = self.shown_as.remove(&ino) {
                self.aliases.remove(&st_ino);
            }
            // A spare number given to a source entry that reused this one
            // while the kernel held it, if the kernel never took the spare
            // (only listed): the source number is free to show again.
            let own = if ino == self.root_ino { ROOT } else { ino };
            if let Some(&spare) = self.aliases.get(&own)
                && !self.nodes.contains(spare)
            {
                self.aliases.remove(&own);
                self.shown_as.remove(&spare);
            }
            for (parent, name) in node.take_links() {
                let hash = self.hash(parent, &name);
                if let Ok(e) = self.names.find_entry(hash, |e| e.hash == hash && e.ino == ino) {
                    e.remove();
                }
            }
        }
    }

    /// How many inodes the table holds, the root included.
    pub fn size(&self) -> usize {
        self.nodes.len()
    }

    /// Names to ask the kernel to drop so that at most `keep` inodes stay
    /// queued (held by the kernel and not yet named), those looked up
    /// longest ago first. Folders, open files and the
    /// root are kept: a folder's entry holds its children's, and the
    /// kernel would keep an open file's inode anyway. An inode leaves the
    /// order when named here; the kernel's FORGET then drops it, and a
    /// later lookup queues it again.
    pub fn take_prunable(&mut self, keep: usize) -> Vec<Prunable> {
        let mut out = Vec::new();
        // Each entry is looked at once at most: kept ones go to the back.
        for _ in 0..self.order.len() {
            if self.queued <= keep {
                break;
            }
            let Some(ino) = self.order.pop_front() else { break };
            let Some(node) = self.nodes.get_mut(ino) else { continue };
            if !node.queued {
                continue;
            }
            if ino == ROOT || node.kind == Kind::Dir || node.busy() || node.lookups == 0 {
                self.order.push_back(ino);
                continue;
            }
            node.queued = false;
            self.queued -= 1;
            out.extend(node.links().iter().map(|(parent, name)| Prunable {
                parent: *parent,
                name: name.to_os_string(),
                kind: node.kind,
            }));
        }
        self.compact_order();
        out
    }

    /// Keeps the order near the table's size: drops entries of nodes gone
    /// or requeued since, once stale ones outnumber current ones.
    fn compact_order(&mut self) {
        if self.order.len() <= 2 * self.nodes.len() + 1024 {
            return;
        }
        let mut seen = HashSet::with_capacity(self.nodes.len());
        let nodes = &self.nodes;
        self.order
            .retain(|ino| nodes.get(*ino).is_some_and(|n| n.queued) && seen.insert(*ino));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_renames_of_folders() {
        let mut t = Table::new(PathBuf::from("/src"), 77);
        t.remember(10, Kind::Dir, ROOT, OsStr::new("d"), true);
        t.remember(11, Kind::Protected, 10, OsStr::new("f.rights"), true);
        assert_eq!(t.path(11).unwrap().shown(), Path::new("/src/d/f.rights"));
        t.rename(ROOT, OsStr::new("d"), ROOT, OsStr::new("e"));
        assert_eq!(t.path(11).unwrap().shown(), Path::new("/src/e/f.rights"));
        let at = |l: Located| (l.rel.clone(), l.named, l.shown);
        assert_eq!(at(t.path(11).unwrap()), (5..6, true, PathBuf::from("/src/e/f.rights")));
        assert_eq!(at(t.dir_path(10).unwrap()), (5..6, false, PathBuf::from("/src/e")));
        assert_eq!(at(t.path(10).unwrap()), (5..5, true, PathBuf::from("/src/e")));
        assert_eq!(at(t.dir_path(ROOT).unwrap()), (5..5, false, PathBuf::from("/src")));
        assert_eq!(
            at(t.child_path(10, OsStr::new("g")).unwrap()),
            (5..6, true, PathBuf::from("/src/e/g"))
        );
        t.unlink_name(10, OsStr::new("f.rights"));
        assert!(t.path(11).is_err());
        t.forget(11, 1);
        assert!(t.get(11).is_none());
    }

    #[test]
    fn names_are_found_without_an_owned_key() {
        use std::os::unix::ffi::OsStrExt;
        let mut t = Table::new(PathBuf::from("/s"), 2);
        let odd = OsStr::from_bytes(b"caf\xe9.rights");
        t.remember(10, Kind::Protected, ROOT, odd, true);
        // A second lookup of the same name counts, without a second link.
        t.remember(10, Kind::Protected, ROOT, odd, true);
        assert_eq!(t.get(10).unwrap().lookups, 2);
        assert_eq!(t.get(10).unwrap().links().len(), 1);
        assert_eq!(t.by_name(ROOT, odd), Some(10));
        assert_eq!(t.by_name(10, odd), None, "the parent is part of the key");
        // Another inode taking the name replaces the first one's link.
        t.remember(11, Kind::Protected, ROOT, odd, true);
        assert_eq!(t.by_name(ROOT, odd), Some(11));
        assert!(t.get(10).unwrap().links().is_empty());
        t.unlink_name(ROOT, odd);
        assert_eq!(t.by_name(ROOT, odd), None);
    }

    #[test]
    fn forgetting_an_inode_keeps_a_name_another_took() {
        let mut t = Table::new(PathBuf::from("/s"), 2);
        t.remember(10, Kind::Protected, ROOT, OsStr::new("a"), true);
        t.remember(10, Kind::Protected, ROOT, OsStr::new("b"), true);
        // Another inode takes "a" while the kernel still holds 10.
        t.remember(11, Kind::Protected, ROOT, OsStr::new("a"), true);
        t.forget(10, 2);
        assert!(t.get(10).is_none());
        assert_eq!(t.by_name(ROOT, OsStr::new("a")), Some(11));
        assert_eq!(t.by_name(ROOT, OsStr::new("b")), None);
        assert_eq!(t.names.len(), 1, "one index entry per link held");
    }

    /// The name index against a plain map of names, through random
    /// remembers, renames, exchanges, unlinks and forgets, hard links
    /// included: every name finds the inode it was last given, and the
    /// index holds exactly one entry per link of a node held.
    #[test]
    fn the_name_index_follows_every_change() {
        use proptest::prelude::*;
        #[derive(Clone, Debug)]
        enum Op {
            Remember(u64, u8),
            Rename(u8, u8),
            Exchange(u8, u8),
            Unlink(u8),
            Forget(u64),
        }
        let op = prop_oneof![
            (10..16u64, 0..8u8).prop_map(|(i, n)| Op::Remember(i, n)),
            (0..8u8, 0..8u8).prop_map(|(a, b)| Op::Rename(a, b)),
            (0..8u8, 0..8u8).prop_map(|(a, b)| Op::Exchange(a, b)),
            (0..8u8).prop_map(Op::Unlink),
            (10..16u64).prop_map(Op::Forget),
        ];
        let name = |n: u8| OsString::from(format!("n{n}"));
        // Names 0..4 in the root, 4..8 in folder 9.
        let at = |n: u8| (if n < 4 { ROOT } else { 9 }, name(n));
        proptest!(ProptestConfig::with_cases(256), |(ops in proptest::collection::vec(op, 1..60))| {
            let mut t = Table::new(PathBuf::from("/s"), 2);
            t.remember(9, Kind::Dir, ROOT, OsStr::new("d"), true);
            let mut model: HashMap<(u64, OsString), u64> = HashMap::new();
            model.insert((ROOT, OsString::from("d")), 9);
            for op in ops {
                match op {
                    Op::Remember(ino, n) => {
                        let (p, nm) = at(n);
                        t.remember(ino, Kind::Plain, p, &nm, true);
                        model.insert((p, nm), ino);
                    }
                    Op::Rename(a, b) => {
                        let ((pa, na), (pb, nb)) = (at(a), at(b));
                        t.rename(pa, &na, pb, &nb);
                        if a != b {
                            let moved = model.remove(&(pa, na));
                            model.remove(&(pb, nb.clone()));
                            if let Some(ino) = moved {
                                model.insert((pb, nb), ino);
                            }
                        }
                    }
                    Op::Exchange(a, b) => {
                        let ((pa, na), (pb, nb)) = (at(a), at(b));
                        t.exchange((pa, &na), (pb, &nb));
                        let ia = model.remove(&(pa, na.clone()));
                        let ib = model.remove(&(pb, nb.clone()));
                        if let Some(i) = ib { model.insert((pa, na), i); }
                        if let Some(i) = ia { model.insert((pb, nb), i); }
                    }
                    Op::Unlink(n) => {
                        let (p, nm) = at(n);
                        t.unlink_name(p, &nm);
                        model.remove(&(p, nm));
                    }
                    Op::Forget(ino) => {
                        let held = t.get(ino).map_or(0, |n| n.lookups);
                        t.forget(ino, held);
                        if held > 0 {
                            model.retain(|_, i| *i != ino);
                        }
                    }
                }
                for n in 0..8 {
                    let (p, nm) = at(n);
                    prop_assert_eq!(t.by_name(p, &nm), model.get(&(p, nm.clone())).copied(), "{:?}", nm);
                }
                let links: usize = t.nodes.values().map(|n| n.links().len()).sum();
                prop_assert_eq!(t.names.len(), links);
                prop_assert_eq!(model.len(), links);
            }
        });
    }

    #[test]
    fn pruning_names_the_oldest_closed_files_and_keeps_folders() {
        let mut t = Table::new(PathBuf::from("/s"), 2);
        t.remember(10, Kind::Dir, ROOT, OsStr::new("d"), true);
        for ino in 11..=15 {
            t.remember(ino, Kind::Protected, 10, OsStr::new(&format!("f{ino}.rights")), true);
        }
        t.get_mut(11).unwrap().in_use_or_new().opens = 1;
        // A folder and five files queued: keep three, so three files go,
        // the open one (11) skipped.
        let names: Vec<_> = t.take_prunable(3).into_iter().map(|p| (p.parent, p.name)).collect();
        assert_eq!(
            names,
            [12, 13, 14].map(|i| (10, OsString::from(format!("f{i}.rights")))),
        );
        // Named ones wait for the kernel's FORGET; nothing is named twice.
        assert_eq!(t.size(), 7);
        assert_eq!(t.take_prunable(3), []);
        t.forget(12, 1);
        t.forget(13, 1);
        t.forget(14, 1);
        assert_eq!(t.size(), 4);
        // A file looked up again after it was named is queued again, last.
        t.remember(16, Kind::Plain, 10, OsStr::new("p"), true);
        t.remember(12, Kind::Protected, 10, OsStr::new("f12.rights"), true);
        let names: Vec<_> = t.take_prunable(3).into_iter().map(|p| p.name).collect();
        assert_eq!(names, [OsString::from("f15.rights"), OsString::from("p")]);
    }

    #[test]
    fn the_eviction_order_stays_near_the_tables_size() {
        let mut t = Table::new(PathBuf::from("/s"), 2);
        for round in 0..10_000u64 {
            let ino = 10 + round % 7;
            t.remember(ino, Kind::Protected, ROOT, OsStr::new(&format!("{ino}")), true);
            t.forget(ino, 1);
        }
        assert!(t.order.len() <= 2 * t.size() + 1024, "{}", t.order.len());
    }

    #[test]
    fn root_inode_is_swapped_with_one() {
        let mut t = Table::new(PathBuf::from("/src"), 77);
        assert_eq!(t.ino_for(77), ROOT);
        assert_eq!(t.ino_for(1), 77);
        assert_eq!(t.ino_for(5), 5);
    }

    #[test]
    fn an_alias_keeps_a_number_until_the_kernel_forgets_it() {
        let mut t = Table::new(PathBuf::from("/s"), 2);
        t.remember(10, Kind::Protected, ROOT, OsStr::new("a"), true);
        t.alias(20, 10);
        assert_eq!(t.ino_for(20), 10, "the new source file shows as the known inode");
        let spare = t.ino_for(10);
        assert!(spare >= SPARE_INOS, "a file reusing the old number gets a spare one");
        assert_eq!(t.ino_for(10), spare, "and keeps it");
        t.remember(spare, Kind::Protected, ROOT, OsStr::new("b"), true);
        // The file with the spare number is saved over another document.
        t.alias(30, spare);
        assert_eq!(
            (t.ino_for(30), t.ino_for(20)),
            (spare, 10),
            "each document keeps its number"
        );
        t.forget(10, 1);
        assert_eq!(t.ino_for(20), 20, "forgotten by the kernel: its own number again");
        t.forget(spare, 1);
        assert_eq!(t.ino_for(30), 30);
        assert_eq!(t.ino_for(10), 10);
    }

    #[test]
    fn a_number_held_for_a_removed_entry_is_not_handed_out_again() {
        let mut t = Table::new(PathBuf::from("/s"), 2);
        t.remember(10, Kind::Dir, ROOT, OsStr::new("old"), true);
        t.remember(11, Kind::Plain, ROOT, OsStr::new("other"), true);
        t.unlink_name(ROOT, OsStr::new("old"));
        assert!(t.get(10).is_some(), "the kernel still holds it");
        let spare = t.ino_for(10);
        assert!(spare >= SPARE_INOS, "the source reused the number: a spare one");
        assert_eq!(t.ino_for(10), spare, "and the same spare on every lookup");
        assert_eq!(t.ino_for(11), 11, "entries still named keep their own");
        t.remember(spare, Kind::Dir, ROOT, OsStr::new("new"), true);
        t.forget(10, 1);
        assert_eq!(t.ino_for(10), spare, "held by the kernel under the spare");
        t.forget(spare, 1);
        assert_eq!(t.ino_for(10), 10, "forgotten: its own number again");

        // Only listed, never looked up: the spare goes with the old inode.
        t.remember(12, Kind::Plain, ROOT, OsStr::new("gone"), true);
        t.unlink_name(ROOT, OsStr::new("gone"));
        assert!(t.ino_for(12) >= SPARE_INOS);
        t.forget(12, 1);
        assert_eq!(t.ino_for(12), 12);
        assert!(t.aliases.is_empty() && t.shown_as.is_empty());

        // The entry shown under a spare is removed and held in turn, and
        // the source reuses the number again: another spare.
        t.remember(20, Kind::Plain, ROOT, OsStr::new("first"), true);
        t.unlink_name(ROOT, OsStr::new("first"));
        let spare = t.ino_for(20);
        t.remember(spare, Kind::Plain, ROOT, OsStr::new("second"), true);
        t.unlink_name(ROOT, OsStr::new("second"));
        let again = t.ino_for(20);
        assert!(again >= SPARE_INOS && again != spare, "{again} {spare}");
        assert_eq!(t.ino_for(20), again);
        t.forget(spare, 1);
        assert_eq!(t.ino_for(20), again, "forgetting the dead spare leaves the new one");
    }

    #[test]
    fn entries_of_another_file_system_are_elsewhere() {
        let t = Table::new(PathBuf::from("/s"), 2);
        assert!(!t.elsewhere(7), "no device known: nothing is refused");
        let t = t.on_device(7);
        assert!(!t.elsewhere(7));
        assert!(t.elsewhere(8));
    }

    #[test]
    fn exchange_swaps_names() {
        let mut t = Table::new(PathBuf::from("/s"), 2);
        t.remember(10, Kind::Plain, ROOT, OsStr::new("a"), true);
        t.remember(11, Kind::Plain, ROOT, OsStr::new("b"), true);
        t.exchange((ROOT, OsStr::new("a")), (ROOT, OsStr::new("b")));
        assert_eq!(t.path(10).unwrap().shown(), Path::new("/s/b"));
        assert_eq!(t.by_name(ROOT, OsStr::new("a")), Some(11));
    }
}
