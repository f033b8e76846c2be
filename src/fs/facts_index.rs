//! The on-disk index of header facts: what a `stat` of a protected file
//! needs of its header (block geometry, content id, whether the mounting
//! user owns it), kept across mounts so that walking a large tree after
//! a fresh mount or a dropped page cache reads a few index files instead
//! of one header per file.
//!
//! The index lives in `SRC/.rightsfs/facts`, a folder anyone who can write
//! to the source can write to, so nothing in it is believed unless:
//! - the file carries an HMAC-SHA256 under a key only this device derives
//!   ([`super::KeySource::facts_index_key`]), over all its bytes, bound to
//!   its bucket; and
//! - the entry's source (inode, size, mtime, ctime) equals the file's as
//!   `stat` reports it now. The ctime is set by the kernel on every change
//!   and cannot be chosen by a writer, so an authentic entry replayed from
//!   an older index only ever matches the very version it describes.
//!
//! A forged, damaged or stale index therefore costs at most a header read.
//! The facts only shape `stat`: opening a file still reads and verifies
//! its header, so the index can never change the bytes a reader sees.
//!
//! Files are grouped by source inode number ([`BUCKET`] per index file):
//! a filesystem gives files made together neighbouring numbers, so a walk
//! reads few index files, and no folder has to be named or tracked
//! (renames and hard links need nothing). Loaded buckets are kept in
//! memory within a byte budget ([`MEMORY`]), not a count of files, each
//! as a sorted vector (88 bytes an entry; a hash map took twice that).

use std::io;
use std::sync::Mutex;

use zeroize::Zeroizing;

use super::stat::Stat;
use crate::crypto::{KeyedHmac, ct_eq};
use crate::dirfd::Dir;
use crate::format::Geometry;
use crate::policy::ContentId;

/// What `stat` needs of a header, remembered without the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderMemo {
    pub geometry: Geometry,
    pub id: ContentId,
    /// The mounting user owns the content: never view-only, so a `stat`
    /// after the kernel forgot the inode needs no look at the licences.
    /// (Taken from the unverified header: it only decides the write bits
    /// shown; opening checks the licence.)
    pub mine: bool,
}

/// Source inode numbers per index file.
const BUCKET: u64 = 1024;

/// Bytes of index kept in memory (decoded buckets' vectors).
const MEMORY: usize = 2 << 20;

const MAGIC: &[u8; 8] = b"RFSFACT1";
/// ino, size, mtime s/ns, ctime s/ns, data offset, block size, id, mine.
const ENTRY_LEN: usize = 8 + 8 + 8 + 4 + 8 + 4 + 8 + 8 + 16 + 1;
const HEAD_LEN: usize = 8 + 8 + 4;
const MAC_LEN: usize = 32;

/// The source facts an entry must match to be used.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Stamp {
    size: u64,
    mtime: (i64, u32),
    ctime: (i64, u32),
}

impl Stamp {
    fn of(md: &Stat) -> Self {
        Self {
            size: md.len(),
            mtime: (md.mtime().0, md.mtime().1 as u32),
            ctime: (md.ctime().0, md.ctime().1 as u32),
        }
    }
}

/// One bucket's entries, sorted by source inode.
#[derive(Default)]
struct Bucket {
    entries: Vec<(u64, Stamp, HeaderMemo)>,
    /// Learned since it was read: written back when it leaves memory.
    dirty: bool,
}

impl Bucket {
    fn find(&self, ino: u64) -> Result<usize, usize> {
        self.entries.binary_search_by_key(&ino, |e| e.0)
    }

    /// The memory it takes, for the budget.
    fn cost(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<(u64, Stamp, HeaderMemo)>()
    }
}

/// The index of one mount.
pub struct FactsIndex {
    dir: Dir,
    mac: KeyedHmac,
    /// Names this device's files apart from another device's or user's
    /// in the same shared folder (each keeps its own).
    prefix: String,
    /// Loaded buckets, least recently used first out, and the memory they
    /// are counted at.
    loaded: Mutex<(lru::LruCache<u64, Bucket>, usize)>,
}

impl FactsIndex {
    /// The index in `state` (the mount's state folder) under `key`.
    pub fn open(state: &Dir, key: &Zeroizing<[u8; 32]>) -> io::Result<Self> {
        let dir = state.private_subdir("facts")?;
        let mac = KeyedHmac::new(key.as_ref());
        let id = mac.mac(&[b"name"]);
        Ok(Self {
            dir,
            prefix: hex::encode(&id[..8]),
            mac,
            loaded: Mutex::new((lru::LruCache::unbounded(), 0)),
        })
    }

    /// The facts recorded for the source file with metadata `md`, if an
    /// authentic entry matches it exactly.
    pub fn get(&self, md: &Stat) -> Option<HeaderMemo> {
        let ino = md.ino();
        let mut g = self.lock();
        let bucket = self.bucket(&mut g, ino / BUCKET);
        let (_, stamp, memo) = bucket.entries[bucket.find(ino).ok()?];
        (stamp == Stamp::of(md)).then_some(memo)
    }

    /// Records facts read from the header of the source file with `md`.
    pub fn put(&self, md: &Stat, memo: HeaderMemo) {
        let ino = md.ino();
        let mut g = self.lock();
        let bucket = self.bucket(&mut g, ino / BUCKET);
        let before = bucket.cost();
        let entry = (ino, Stamp::of(md), memo);
        match bucket.find(ino) {
            Ok(i) => bucket.entries[i] = entry,
            Err(i) => bucket.entries.insert(i, entry),
        }
        bucket.dirty = true;
        let grown = bucket.cost() - before;
        if grown > 0 {
            g.1 += grown;
            self.trim(&mut g);
        }
    }

    /// Writes every bucket learned into since it was read.
    pub fn flush(&self) {
        let mut g = self.lock();
        for (n, b) in g.0.iter_mut() {
            if b.dirty {
                self.write(*n, b);
                b.dirty = false;
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (lru::LruCache<u64, Bucket>, usize)> {
        self.loaded.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bucket `n`, read from disk on first use (empty when missing or not
    /// authentic).
    fn bucket<'a>(&self, g: &'a mut (lru::LruCache<u64, Bucket>, usize), n: u64) -> &'a mut Bucket {
        if !g.0.contains(&n) {
            let b = self.read(n);
            g.1 += b.cost();
            g.0.put(n, b);
            self.trim(g);
        }
        g.0.get_or_insert_mut(n, Bucket::default)
    }

    /// Drops least recently used buckets (writing those learned into)
    /// until the loaded ones fit in [`MEMORY`]; the newest always stays.
    fn trim(&self, g: &mut (lru::LruCache<u64, Bucket>, usize)) {
        while g.1 > MEMORY && g.0.len() > 1 {
            let Some((n, b)) = g.0.pop_lru() else { break };
            g.1 -= b.cost();
            if b.dirty {
                self.write(n, &b);
            }
        }
    }

    fn name(&self, n: u64) -> String {
        format!("{}-{n}", self.prefix)
    }

    fn read(&self, n: u64) -> Bucket {
        let bytes = match self.dir.read(&self.name(n)) {
            Ok(Some(b)) => b,
            Ok(None) => return Bucket::default(),
            Err(e) => {
                tracing::debug!(bucket = n, error = %e, "header facts index unreadable; headers are read instead");
                return Bucket::default();
            }
        };
        match self.decode(n, &bytes) {
            Some(entries) => Bucket { entries, dirty: false },
            None => {
                tracing::warn!(
                    file = %format!("{}/{}", super::STATE_DIR, self.name(n)),
                    "header facts index is not authentic (changed by someone else?); headers are read instead"
                );
                Bucket::default()
            }
        }
    }

    fn decode(&self, n: u64, bytes: &[u8]) -> Option<Vec<(u64, Stamp, HeaderMemo)>> {
        let (body, tag) = bytes.split_at_checked(bytes.len().checked_sub(MAC_LEN)?)?;
        if !ct_eq(&self.mac.mac(&[body]), tag) {
            return None;
        }
        let (head, rest) = body.split_at_checked(HEAD_LEN)?;
        let count = u32::from_be_bytes(head[16..20].try_into().ok()?) as usize;
        if &head[..8] != MAGIC || u64::from_be_bytes(head[8..16].try_into().ok()?) != n {
            return None;
        }
        if rest.len() != count.checked_mul(ENTRY_LEN)? || count as u64 > BUCKET {
            return None;
        }
        let mut entries = Vec::with_capacity(count);
        for e in rest.chunks_exact(ENTRY_LEN) {
            let mut r = Reader(e);
            let ino = r.u64();
            let stamp = Stamp {
                size: r.u64(),
                mtime: (r.u64() as i64, r.u32()),
                ctime: (r.u64() as i64, r.u32()),
            };
            let geometry = Geometry {
                data_offset: r.u64(),
                block_size: r.u64(),
            };
            let id = ContentId(r.take(16).try_into().ok()?);
            let mine = r.take(1)[0] == 1;
            if ino / BUCKET != n || geometry.block_size == 0 {
                return None;
            }
            entries.push((ino, stamp, HeaderMemo { geometry, id, mine }));
        }
        // Files written before the entries were kept sorted are in any
        // order; none names an inode twice.
        entries.sort_unstable_by_key(|e| e.0);
        entries.is_sorted_by(|a, b| a.0 < b.0).then_some(entries)
    }

    fn encode(&self, n: u64, b: &Bucket) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEAD_LEN + b.entries.len() * ENTRY_LEN + MAC_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(&(b.entries.len() as u32).to_be_bytes());
        for (ino, s, m) in &b.entries {
            out.extend_from_slice(&ino.to_be_bytes());
            out.extend_from_slice(&s.size.to_be_bytes());
            out.extend_from_slice(&s.mtime.0.to_be_bytes());
            out.extend_from_slice(&s.mtime.1.to_be_bytes());
            out.extend_from_slice(&s.ctime.0.to_be_bytes());
            out.extend_from_slice(&s.ctime.1.to_be_bytes());
            out.extend_from_slice(&m.geometry.data_offset.to_be_bytes());
            out.extend_from_slice(&m.geometry.block_size.to_be_bytes());
            out.extend_from_slice(&m.id.0);
            out.push(m.mine as u8);
        }
        let tag = self.mac.mac(&[&out]);
        out.extend_from_slice(&tag);
        out
    }

    /// Replaces bucket `n`'s file (a new file renamed over it, so a reader
    /// never meets half of one). Failing costs only header reads later.
    fn write(&self, n: u64, b: &Bucket) {
        let name = self.name(n);
        let tmp = format!("{name}.new");
        let done = self
            .dir
            .create_new(&tmp, 0)
            .and_then(|mut f| io::Write::write_all(&mut f, &self.encode(n, b)))
            .and_then(|()| self.dir.rename(&tmp, &name));
        if let Err(e) = done {
            tracing::debug!(bucket = n, error = %e, "header facts index not written");
            let _ = self.dir.remove(&tmp);
        }
    }
}

impl Drop for FactsIndex {
    /// What was learned outlives the mount however it ends.
    fn drop(&mut self) {
        self.flush();
    }
}

/// Reads big-endian fields from an entry of known length.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
    fn u64(&mut self) -> u64 {
        u64::from_be_bytes(self.take(8).try_into().expect("8 bytes"))
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.take(4).try_into().expect("4 bytes"))
    }
}
