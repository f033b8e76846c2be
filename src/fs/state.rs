//! The mount's shared state: what every operation reaches (the inode
//! table, the source folder's descriptor, the open handles, the keys and
//! caches), and the few helpers that reach source entries from inodes.
//! The operations themselves live one family per file beside this one.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::OpenOptions;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use fuser::Errno;

use super::access::{DefaultPolicy, KeySource};
use super::beneath::SrcPath;
use super::facts_index::{FactsIndex, HeaderMemo};
use super::header_facts::{HEADER_ENTRY_COST, HEADER_MEMORY, HeaderKey};
use super::inodes::{Located, Table};
use super::linger::Linger;
use super::names;
use super::open::Handle;
use super::ownership::Maker;
use super::registry::Reporter;
use super::save::{Departures, Saves};
use crate::format::{Caches, JournalDir, ProtectedFile, Verifier};

/// How long the kernel may cache attributes and names.
pub const TTL: Duration = Duration::from_secs(1);

/// The mounted filesystem.
pub struct RightsFs {
    pub(super) keys: Arc<dyn KeySource>,
    pub(super) defaults: DefaultPolicy,
    pub(super) journal: Arc<JournalDir>,
    /// Checks writers against the server's key, with this mount's own
    /// caches of checks done and tag tables (bounded by `--tag-memory-mib`).
    pub(super) verifier: Verifier,
    pub(super) table: Arc<Mutex<Table>>,
    /// Keeps `table` within the configured number of inodes.
    pub(super) pruner: super::prune::Pruner,
    /// The source folder, which every path below it is resolved from
    /// without following links (see `beneath.rs`).
    pub(super) root_fd: Arc<std::os::fd::OwnedFd>,
    pub(super) handles: Mutex<HashMap<u64, Arc<Handle>>>,
    pub(super) next_fh: AtomicU64,
    pub(super) reporter: Reporter,
    /// What `stat` needs of a header, by source (inode, ctime): a header
    /// never changes without its file's ctime changing, and this outlives
    /// the kernel forgetting inodes, so listing a cold folder reads no
    /// headers twice.
    pub(super) headers: Mutex<lru::LruCache<HeaderKey, HeaderMemo>>,
    /// The same facts on disk, kept across mounts (`None` without a key).
    pub(super) facts_index: Option<FactsIndex>,
    /// Requests in hand, and polling for the next after the last answer.
    pub(super) linger: Arc<Linger>,
    /// Gives new entries the mode and owner their creator asked for.
    pub(super) maker: Maker,
    /// Names protected files recently left (see `save.rs`).
    pub(super) departures: Departures,
    /// Where saves are sealed before they replace their target.
    pub(super) saves: Saves,
    /// Whose device keys signed others' folder policies (see `vouch.rs`).
    pub(super) verdicts: super::vouch::Verdicts,
    /// Folders listed lately, whose listing the kernel may keep.
    pub(super) listings: super::listings::Listings,
}

impl RightsFs {
    /// A filesystem over the source folder `src` (canonical path), which
    /// remembers checks and tag tables in `caches`.
    pub fn new(
        src: PathBuf,
        keys: Arc<dyn KeySource>,
        defaults: DefaultPolicy,
        reporter: Reporter,
        caches: Arc<Caches>,
    ) -> std::io::Result<Self> {
        let root_md = std::fs::metadata(&src)?;
        let root_fd = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&src)?;
        // Reached without following links: the source folder is writable
        // by whoever syncs or shares it.
        let state = crate::dirfd::Dir::open(&src)?.private_subdir(names::STATE_DIR);
        let subdirs = state.and_then(|d| {
            let index = keys.facts_index_key().map(|k| FactsIndex::open(&d, &k)).transpose()?;
            Ok((d.private_subdir("journal")?, Saves::open(&d)?, index))
        });
        let (journal, saves, facts_index) = subdirs.map_err(|e| {
            let at = src.join(names::STATE_DIR);
            std::io::Error::new(
                e.kind(),
                format!("{}: {e} (it must be a folder, not a link)", at.display()),
            )
        })?;
        let journal = Arc::new(JournalDir::new(journal)?);
        Ok(Self {
            verifier: Verifier::cached(*keys.verifier(), caches).with_removed(keys.removed_devices()),
            keys,
            defaults,
            journal,
            table: Arc::new(Mutex::new(Table::new(src, root_md.ino()).on_device(root_md.dev()))),
            pruner: super::prune::Pruner::new(super::prune::DEFAULT_MAX_INODES),
            root_fd: Arc::new(root_fd.into()),
            handles: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            reporter,
            headers: Mutex::new(crate::cache::bounded(HEADER_MEMORY / HEADER_ENTRY_COST)),
            facts_index,
            linger: Arc::new(Linger::new(Duration::ZERO)),
            maker: Maker::current(),
            departures: Departures::new(),
            saves,
            verdicts: Default::default(),
            listings: Default::default(),
        })
    }

    /// `pf`, a file this mount made, with its tag table and the versions
    /// it signs remembered in the mount's caches.
    pub(super) fn cached(&self, pf: ProtectedFile) -> ProtectedFile {
        pf.with_verifier(&self.verifier)
    }

    pub(super) fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reaches a source entry from the source folder's descriptor, with
    /// the table unlocked (a system call per folder level).
    pub(super) fn reach(&self, at: Located) -> Result<SrcPath, Errno> {
        at.reach(&self.root_fd).map_err(io)
    }

    /// The source entry of an inode (see [`Table::path`]).
    pub(super) fn src(&self, ino: u64) -> Result<SrcPath, Errno> {
        let at = self.table().path(ino)?;
        self.reach(at)
    }

    /// A folder inode, to work in (see [`Table::dir_path`]).
    pub(super) fn src_dir(&self, ino: u64) -> Result<SrcPath, Errno> {
        let at = self.table().dir_path(ino)?;
        self.reach(at)
    }

    /// The source entry `name` in folder `parent`.
    pub(super) fn src_child(&self, parent: u64, name: &OsStr) -> Result<SrcPath, Errno> {
        let at = self.table().child_path(parent, name)?;
        self.reach(at)
    }

    pub(super) fn handle(&self, fh: u64) -> Result<Arc<Handle>, Errno> {
        self.handles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&fh)
            .cloned()
            .ok_or(Errno::EBADF)
    }

    pub(super) fn add_handle(&self, h: Handle) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.handles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(fh, Arc::new(h));
        fh
    }

    pub(super) fn take_handle(&self, fh: u64) -> Option<Arc<Handle>> {
        self.handles.lock().unwrap_or_else(|p| p.into_inner()).remove(&fh)
    }

    /// Whether no file or folder of the mount is open.
    pub(super) fn no_open_handles(&self) -> bool {
        self.handles.lock().unwrap_or_else(|p| p.into_inner()).is_empty()
    }
}

pub(super) fn io(e: std::io::Error) -> Errno {
    Errno::from(e)
}
