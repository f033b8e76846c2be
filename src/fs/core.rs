//! The mount's state and the operations behind the FUSE callbacks, written
//! as plain methods returning `Result<_, Errno>` (the callbacks in
//! `ops.rs` only unpack arguments and reply).

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata, OpenOptions};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{Errno, FileAttr, FileType, INodeNo};

use super::access::{DefaultPolicy, KeySource};
use super::beneath::SrcPath;
use super::facts_index::{FactsIndex, HeaderMemo};
use super::inodes::{HeaderFacts, Kind, Located, ROOT, Table};
use super::linger::Linger;
use super::names;
use super::open::{DirEntry, Handle, OpenFile, errno_for};
use super::ownership::{Creation, Maker};
use super::perm::{self, Caller, Shown};
use super::registry::Reporter;
use super::save::{Departures, Saves};
use crate::format::{Caches, JournalDir, ProtectedFile, Verifier, read_header};
use crate::policy::{Right, Rights};

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
    pub(super) table: Mutex<Table>,
    /// The source folder, which every path below it is resolved from
    /// without following links (see `beneath.rs`).
    root_fd: Arc<std::os::fd::OwnedFd>,
    pub(super) handles: Mutex<HashMap<u64, Arc<Handle>>>,
    next_fh: AtomicU64,
    pub(super) reporter: Reporter,
    /// What `stat` needs of a header, by source (inode, ctime): a header
    /// never changes without its file's ctime changing, and this outlives
    /// the kernel forgetting inodes, so listing a cold folder reads no
    /// headers twice.
    headers: Mutex<lru::LruCache<HeaderKey, HeaderMemo>>,
    /// The same facts on disk, kept across mounts (`None` without a key).
    facts_index: Option<FactsIndex>,
    /// Requests in hand, and polling for the next after the last answer.
    pub(super) linger: Arc<Linger>,
    /// Gives new entries the mode and owner their creator asked for.
    maker: Maker,
    /// Names protected files recently left (see `save.rs`).
    pub(super) departures: Departures,
    /// Where saves are sealed before they replace their target.
    pub(super) saves: Saves,
    /// Whose device keys signed others' folder policies (see `vouch.rs`).
    pub(super) verdicts: super::vouch::Verdicts,
}

/// A source file's (inode, ctime seconds, ctime nanoseconds).
type HeaderKey = (u64, i64, i64);

/// Bytes of header facts kept in memory: a bound by configuration, not
/// by the number of files seen (the on-disk index in `facts_index.rs`
/// answers for the rest without a header read).
const HEADER_MEMORY: usize = 2 << 20;

/// Memory one cached fact takes: key, memo and the LRU's links and map
/// slot.
const HEADER_ENTRY_COST: usize = 128;

fn io(e: std::io::Error) -> Errno {
    Errno::from(e)
}

fn time_of(secs: i64, nsecs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nsecs as u32)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

fn file_type(kind: Kind, md: &Metadata) -> FileType {
    match kind {
        Kind::Dir => FileType::Directory,
        Kind::Protected | Kind::Plain => FileType::RegularFile,
        Kind::Symlink => FileType::Symlink,
        Kind::Special => FileType::from_std(md.file_type()).unwrap_or(FileType::RegularFile),
    }
}

impl RightsFs {
    /// `pf`, a file this mount made, with its tag table remembered in the
    /// mount's caches.
    pub(super) fn cached(&self, pf: ProtectedFile) -> ProtectedFile {
        match self.verifier.caches() {
            Some(c) => pf.with_caches(c.clone()),
            None => pf,
        }
    }
}

fn stamp(md: &Metadata) -> (i64, i64, u64) {
    (md.mtime(), md.mtime_nsec(), md.len())
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
            table: Mutex::new(Table::new(src, root_md.ino()).on_device(root_md.dev())),
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
        })
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

    /// The header memo cache, locked.
    fn headers(&self) -> MutexGuard<'_, lru::LruCache<HeaderKey, HeaderMemo>> {
        self.headers.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn handle(&self, fh: u64) -> Result<Arc<Handle>, Errno> {
        self.handles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&fh)
            .cloned()
            .ok_or(Errno::EBADF)
    }

    fn add_handle(&self, h: Handle) -> u64 {
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

    /// Which source entry `name` in `parent` means: a protected file
    /// `name.rights`, else `name` itself (a folder, link, or a plain file
    /// whose name does not carry the suffix).
    pub(super) fn resolve(&self, parent: u64, name: &OsStr) -> Result<(OsString, Kind, Metadata), Errno> {
        names::check_len(name)?;
        if (parent == ROOT && names::is_hidden_at_root(name)) || names::is_reserved(name) {
            return Err(Errno::ENOENT);
        }
        let dir = self.src_dir(parent)?;
        let pname = names::protected(name);
        if let Ok(md) = std::fs::symlink_metadata(dir.child(&pname))
            && md.is_file()
        {
            return Ok((pname, Kind::Protected, md));
        }
        let md = std::fs::symlink_metadata(dir.child(name)).map_err(io)?;
        let ft = md.file_type();
        let kind = if ft.is_dir() {
            Kind::Dir
        } else if ft.is_symlink() {
            Kind::Symlink
        } else if ft.is_file() {
            if names::has_suffix(name) {
                // Shown under its plain name; `name` itself would be `name.rights.rights`.
                return Err(Errno::ENOENT);
            }
            Kind::Plain
        } else {
            Kind::Special
        };
        Ok((name.to_owned(), kind, md))
    }

    /// The source path of `name` in `parent` if the table holds it as a
    /// protected file (from an earlier lookup), without asking the source.
    fn known_protected(&self, parent: u64, name: &OsStr) -> Option<Located> {
        if parent == ROOT && names::is_hidden_at_root(name) {
            return None;
        }
        let pname = names::protected(name);
        let t = self.table();
        let ino = t.by_name(parent, &pname)?;
        if t.get(ino)?.kind != Kind::Protected {
            return None;
        }
        t.child_path(parent, &pname).ok()
    }

    /// Looks `name` up and counts a kernel reference to it.
    pub(super) fn lookup(&self, parent: u64, name: &OsStr) -> Result<FileAttr, Errno> {
        let (bname, kind, md) = self.resolve(parent, name)?;
        let ino = {
            let mut t = self.table();
            if t.elsewhere(md.dev()) {
                tracing::error!(
                    path = %t.child_path(parent, &bname).map(|p| p.shown().display().to_string()).unwrap_or_default(),
                    "another file system is mounted below the source folder; it is not shown (EXDEV)"
                );
                return Err(Errno::EXDEV);
            }
            if kind == Kind::Plain
                && let Some(was) = t.by_name(parent, &names::protected(name))
                && t.get(was).is_some_and(|n| n.kind == Kind::Protected)
            {
                // Someone replaced a protected file by a plain one in the
                // source folder: writes to it would land in plaintext.
                tracing::error!(
                    file = %t.child_path(parent, name).map(|p| p.shown().display().to_string()).unwrap_or_default(),
                    "a protected file was replaced by a plain file in the source folder; it is shown read-only"
                );
            }
            let ino = t.ino_for(md.ino());
            t.remember(ino, kind, parent, &bname, true);
            ino
        };
        self.attr_from(ino, kind, &md)
    }

    /// Attributes of a known inode.
    pub(super) fn getattr(&self, ino: u64) -> Result<FileAttr, Errno> {
        let (kind, md) = self.source_metadata(ino)?;
        self.attr_from(ino, kind, &md)
    }

    /// A known inode's kind and source metadata (from the open view's
    /// descriptor when there is one, so unlinked open files still answer).
    fn source_metadata(&self, ino: u64) -> Result<(Kind, Metadata), Errno> {
        let (kind, open, path) = {
            let t = self.table();
            let node = t.get(ino).ok_or(Errno::ENOENT)?;
            (node.kind, node.open.clone(), t.path(ino))
        };
        let md = match (&open, path) {
            (Some(of), _) => of.read().file().metadata().map_err(io)?,
            (None, Ok(p)) => std::fs::symlink_metadata(self.reach(p)?).map_err(io)?,
            (None, Err(e)) => return Err(e),
        };
        Ok((kind, md))
    }

    /// Attributes from source metadata: protected files report their
    /// plaintext size (from the open view, or from the header's geometry,
    /// with no key) and lose write bits when the user may only view.
    pub(super) fn attr_from(&self, ino: u64, kind: Kind, md: &Metadata) -> Result<FileAttr, Errno> {
        Ok(self.shape(ino, kind, md).0)
    }

    /// Attributes, and whether the licence allows viewing only.
    fn shape(&self, ino: u64, kind: Kind, md: &Metadata) -> (FileAttr, bool) {
        let (size, view_only) = match kind {
            Kind::Protected => self.protected_shape(ino, md),
            _ => (md.len(), false),
        };
        let mut perm = (md.mode() & 0o7777) as u16;
        if view_only {
            perm &= !0o222;
        }
        let attr = FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: md.blocks(),
            atime: time_of(md.atime(), md.atime_nsec()),
            mtime: time_of(md.mtime(), md.mtime_nsec()),
            ctime: time_of(md.ctime(), md.ctime_nsec()),
            crtime: time_of(md.ctime(), md.ctime_nsec()),
            kind: file_type(kind, md),
            perm,
            nlink: md.nlink() as u32,
            uid: md.uid(),
            gid: md.gid(),
            rdev: md.rdev() as u32,
            blksize: 4096,
            flags: 0,
        };
        (attr, view_only)
    }

    /// A protected inode's plaintext size and whether its licence allows
    /// viewing only.
    fn protected_shape(&self, ino: u64, md: &Metadata) -> (u64, bool) {
        let (open, known) = {
            let t = self.table();
            t.get(ino)
                .map(|n| (n.open.clone(), n.facts.clone()))
                .unwrap_or_default()
        };
        if let Some(of) = open {
            return (of.len(), !of.writable);
        }
        match known.or_else(|| self.learn_facts(ino, md)) {
            Some(f) => (
                f.geometry.plaintext_len(md.len()).unwrap_or(0),
                f.rights.is_some_and(|r| !r.has(Right::Edit)),
            ),
            None => (0, false),
        }
    }

    /// Whether the inode is a protected file its licence lets this user
    /// only view.
    fn view_only(&self, ino: u64) -> Result<bool, Errno> {
        let (kind, md) = self.source_metadata(ino)?;
        Ok(kind == Kind::Protected && self.shape(ino, kind, &md).1)
    }

    /// Answers `access(2)` (see `perm.rs` for why the kernel asks).
    pub(super) fn access(&self, ino: u64, caller: Caller, mask: i32) -> Result<(), Errno> {
        let (kind, md) = self.source_metadata(ino)?;
        let (attr, view_only) = self.shape(ino, kind, &md);
        let shown = Shown {
            kind: attr.kind,
            perm: attr.perm,
            uid: attr.uid,
            gid: attr.gid,
            view_only,
        };
        if perm::allows(caller, &shown, mask) {
            Ok(())
        } else {
            Err(Errno::EACCES)
        }
    }

    /// Header facts of a protected inode the table has none for: from the
    /// header cache, else read once (a header never changes for a given
    /// source inode and ctime), then kept on the inode.
    fn learn_facts(&self, ino: u64, md: &Metadata) -> Option<HeaderFacts> {
        if md.len() == 0 {
            return None;
        }
        let key = (md.ino(), md.ctime(), md.ctime_nsec());
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
            n.facts = Some(facts.clone());
        }
        Some(facts)
    }

    /// What `stat` will need of header `h` once the header is gone.
    fn memo(&self, h: &crate::format::FileHeader) -> HeaderMemo {
        HeaderMemo {
            geometry: h.geometry,
            id: h.content_id(),
            mine: h.licence.owner() == self.keys.me(),
        }
    }

    /// Opens an inode; returns the handle number and whether the kernel
    /// may keep its cached pages.
    pub(super) fn open(&self, ino: u64, flags: i32) -> Result<(u64, bool), Errno> {
        let (kind, path) = {
            let t = self.table();
            let node = t.get(ino).ok_or(Errno::ENOENT)?;
            (node.kind, t.path(ino))
        };
        let acc = flags & libc::O_ACCMODE;
        let write = acc != libc::O_RDONLY;
        let trunc = flags & libc::O_TRUNC != 0;
        match kind {
            Kind::Protected => {
                let (of, keep) = self.open_shared(ino, path)?;
                if (write || trunc) && !of.writable {
                    self.close_shared(ino);
                    tracing::warn!(file = %of.name, "refused a write open: you may only view this file");
                    return Err(Errno::EACCES);
                }
                if trunc {
                    let r = of.write().set_len(0);
                    if let Err(e) = r {
                        self.close_shared(ino);
                        return Err(of.errno("truncate", e));
                    }
                }
                let fh = self.add_handle(Handle::Protected {
                    ino,
                    file: of,
                    write,
                    append: flags & libc::O_APPEND != 0,
                });
                Ok((fh, keep && !trunc))
            }
            Kind::Plain if write || trunc => {
                refuse_plain_write(path?.shown());
                Err(Errno::EACCES)
            }
            Kind::Plain | Kind::Special => {
                let path = self.reach(path?)?;
                let mut o = OpenOptions::new();
                o.read(acc != libc::O_WRONLY).write(write).truncate(trunc && write);
                // Never through a link someone put in the file's place.
                let passed = flags & (libc::O_APPEND | libc::O_NONBLOCK | libc::O_SYNC | libc::O_DSYNC);
                o.custom_flags(passed | libc::O_NOFOLLOW);
                let file = o.open(path).map_err(io)?;
                self.table().get_mut(ino).ok_or(Errno::ENOENT)?.opens += 1;
                Ok((self.add_handle(Handle::Plain { ino, file }), false))
            }
            Kind::Dir | Kind::Symlink => Err(Errno::EISDIR),
        }
    }

    /// The shared view of a protected inode, opening it if no handle has
    /// it open yet. Counts one more user of it.
    fn open_shared(&self, ino: u64, path: Result<Located, Errno>) -> Result<(Arc<OpenFile>, bool), Errno> {
        let gate = {
            let mut t = self.table();
            let node = t.get_mut(ino).ok_or(Errno::ENOENT)?;
            if let Some(of) = node.open.clone() {
                node.opens += 1;
                return Ok((of, true));
            }
            node.gate.get_or_insert_with(Default::default).clone()
        };
        let _g = gate.lock().unwrap_or_else(|p| p.into_inner());
        {
            let mut t = self.table();
            let node = t.get_mut(ino).ok_or(Errno::ENOENT)?;
            if let Some(of) = node.open.clone() {
                node.opens += 1;
                return Ok((of, true));
            }
        }
        let path = self.reach(path?)?;
        let of = Arc::new(self.open_protected(&path)?);
        let md = of.read().file().metadata().map_err(io)?;
        let mut t = self.table();
        let node = t.get_mut(ino).ok_or(Errno::ENOENT)?;
        let keep = node.cache_stamp == Some(stamp(&md));
        node.open = Some(of.clone());
        node.opens += 1;
        if let Some(f) = node.facts.as_mut() {
            f.rights = Some(of.rights);
        }
        Ok((of, keep))
    }

    /// Opens the protected file at `path` with the user's key; replays or
    /// discards what a crash left, and reports it.
    fn open_protected(&self, path: &SrcPath) -> Result<OpenFile, Errno> {
        let name = path.display().to_string();
        // Never through a link: one planted at the name of a file the
        // kernel already knows would send the writes to another file.
        let open = |write: bool| {
            OpenOptions::new()
                .read(true)
                .write(write)
                .custom_flags(libc::O_NOFOLLOW)
                .open(path)
                .inspect_err(|e| {
                    if e.raw_os_error() == Some(libc::ELOOP) {
                        tracing::error!(file = %name, "a symbolic link is in place of this protected file: not followed");
                    }
                })
        };
        let (file, rw) = match open(true) {
            Ok(f) => (f, true),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES | libc::EROFS | libc::EPERM)) => {
                (open(false).map_err(io)?, false)
            }
            Err(e) => return Err(io(e)),
        };
        if file.metadata().map_err(io)?.len() == 0 && rw {
            // Created but never written before a crash: start it afresh.
            tracing::warn!(file = %name, "empty protected file (interrupted creation): giving it a new header");
            let shown = path.shown();
            let pf = self.new_protected(file, shown.parent().unwrap_or(shown))?;
            return Ok(OpenFile::new(pf, true, Rights::owner(), name, false).renewing(self.keys.clone()));
        }
        let header = read_header(&file).map_err(|e| errno_for(&name, "open", e))?;
        let access = self.keys.access(&header).map_err(|e| {
            tracing::warn!(file = %name, owner = %header.licence.policy.owner, error = %e, "access refused");
            Errno::from_i32(e.errno())
        })?;
        // A version this user saves must be signed, or every reader would
        // refuse it: without a writer the file opens read-only.
        let writer = match self.keys.writer(&header, &access) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(file = %name, error = %e, "opening read-only");
                None
            }
        };
        let writable = rw && writer.is_some();
        let server = &self.verifier;
        let pf = if rw {
            let (pf, rec) = ProtectedFile::open_journaled_verified(file, &access.key, &self.journal, server)
                .map_err(|e| errno_for(&name, "open", e))?;
            if rec.any() {
                self.reporter.recovered(&name, &rec);
            }
            match writer {
                Some(w) => pf.with_writer(w),
                None => pf,
            }
        } else {
            ProtectedFile::open_verified(file, &access.key, server).map_err(|e| errno_for(&name, "open", e))?
        };
        let of = OpenFile::new(pf, writable, access.rights, name, false);
        Ok(if writable { of.renewing(self.keys.clone()) } else { of })
    }

    /// A fresh protected file in `file` (in folder `dir`) with the folder's
    /// default policy; the key comes without a network round trip.
    fn new_protected(&self, file: File, dir: &Path) -> Result<ProtectedFile, Errno> {
        let root = self.table().root().to_path_buf();
        let vouch = |signer: &_, key: &_, at: &_| self.vouches(signer, key, at);
        let policy = self.defaults.for_dir(self.keys.me(), &root, dir, &vouch);
        let fresh = self.keys.create(policy).map_err(|e| {
            tracing::error!(folder = %dir.display(), error = %e, "cannot make a key for a new file");
            Errno::EIO
        })?;
        let name = dir.display().to_string();
        let pf = ProtectedFile::create_from(file, fresh).map_err(|e| errno_for(&name, "create", e))?;
        Ok(self.cached(pf).with_journal(&self.journal))
    }

    /// Drops one user of the shared view; the last one commits and closes it.
    /// The view stays reachable while it commits, so an open arriving
    /// meanwhile shares it (a second view of the file would overwrite the
    /// commit's state record); it is dropped only if still unused after.
    pub(super) fn close_shared(&self, ino: u64) {
        let of = {
            let mut t = self.table();
            let Some(node) = t.get_mut(ino) else { return };
            node.opens = node.opens.saturating_sub(1);
            if node.opens > 0 {
                return;
            }
            node.open.clone()
        };
        let Some(of) = of else { return };
        let r = of.write().flush();
        if let Err(e) = r {
            let _ = of.errno("close", e);
        }
        if let Some(g) = of.unreported_save() {
            self.keys.saved(of.read().header(), g);
        }
        let (md, memo) = {
            let pf = of.read();
            (pf.file().metadata().ok(), self.memo(pf.header()))
        };
        if let Some(md) = &md {
            // Remember the header under the file's state after this commit:
            // a later `stat` (even after the kernel dropped its caches)
            // then needs no read of the source.
            let key = (md.ino(), md.ctime(), md.ctime_nsec());
            self.headers().put(key, memo);
            if let Some(x) = &self.facts_index {
                x.put(md, memo);
            }
        }
        let mut t = self.table();
        if let Some(node) = t.get_mut(ino)
            && node.opens == 0
        {
            node.open = None;
            node.cache_stamp = md.as_ref().map(stamp);
        }
        t.release_if_unused(ino);
    }

    /// Closes a plain handle's bookkeeping.
    pub(super) fn close_plain(&self, ino: u64) {
        let mut t = self.table();
        if let Some(node) = t.get_mut(ino) {
            node.opens = node.opens.saturating_sub(1);
        }
        t.release_if_unused(ino);
    }

    /// Creates a protected file `name` in `parent` and opens it.
    pub(super) fn create(
        &self,
        parent: u64,
        name: &OsStr,
        who: &Creation,
        flags: i32,
    ) -> Result<(FileAttr, u64), Errno> {
        names::check_len(name)?;
        if parent == ROOT && names::is_hidden_at_root(name) {
            return Err(Errno::EACCES);
        }
        if names::is_reserved(name) {
            return Err(Errno::EINVAL);
        }
        let dir = self.src_dir(parent)?;
        names::prepare(dir.as_ref(), name).map_err(io)?;
        if std::fs::symlink_metadata(dir.child(name)).is_ok() && !names::has_suffix(name) {
            return Err(Errno::EEXIST);
        }
        let bname = names::protected(name);
        let path = dir.child(&bname);
        let shown = dir.shown().join(&bname);
        // A name a protected file just left belongs to that document.
        let continued = self.continued(parent, name)?;
        // Readable and writable by its owner while the daemon writes the
        // header; then exactly the mode asked for (this descriptor keeps
        // its access, as one from `open(O_CREAT)` does).
        let made = who.mode | 0o600;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(made)
            .open(&path)
            .map_err(io)?;
        if let Err(e) = self.maker.settle_file(&file, &path, who, made) {
            let _ = std::fs::remove_file(&path);
            return Err(io(e));
        }
        let version = match continued {
            Some(doc) => self.continue_in(file, doc, &shown),
            None => self.new_protected(file, dir.shown()).map(|pf| (pf, Rights::owner())),
        };
        let (pf, rights) = match version {
            Ok(version) => version,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        };
        let md = pf.file().metadata().map_err(io)?;
        let of =
            Arc::new(OpenFile::new(pf, true, rights, shown.display().to_string(), true).renewing(self.keys.clone()));
        let ino = {
            let mut t = self.table();
            let ino = t.ino_for(md.ino());
            t.remember(ino, Kind::Protected, parent, &bname, true);
            let node = t.get_mut(ino).ok_or(Errno::EIO)?;
            node.open = Some(of.clone());
            node.opens += 1;
            node.facts = None;
            ino
        };
        let acc = flags & libc::O_ACCMODE;
        let fh = self.add_handle(Handle::Protected {
            ino,
            file: of,
            write: acc != libc::O_RDONLY,
            append: flags & libc::O_APPEND != 0,
        });
        Ok((self.attr_from(ino, Kind::Protected, &md)?, fh))
    }

    /// Reads from a handle.
    pub(super) fn read(&self, fh: u64, offset: u64, size: u32) -> Result<Vec<u8>, Errno> {
        match &*self.handle(fh)? {
            Handle::Protected { file, .. } => {
                let mut buf = vec![0u8; size as usize];
                let pf = file.read();
                if file.sequential(offset, size as u64) {
                    read_ahead(&pf, offset + size as u64);
                }
                let n = pf.read_at(&mut buf, offset).map_err(|e| file.errno("read", e))?;
                buf.truncate(n);
                Ok(buf)
            }
            Handle::Plain { file, .. } => {
                use std::os::unix::fs::FileExt;
                let mut buf = vec![0u8; size as usize];
                let mut done = 0;
                while done < buf.len() {
                    match file.read_at(&mut buf[done..], offset + done as u64) {
                        Ok(0) => break,
                        Ok(n) => done += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(io(e)),
                    }
                }
                buf.truncate(done);
                Ok(buf)
            }
            Handle::Dir(_) => Err(Errno::EISDIR),
        }
    }

    /// Writes through a handle.
    pub(super) fn write(&self, fh: u64, offset: u64, data: &[u8]) -> Result<u32, Errno> {
        match &*self.handle(fh)? {
            Handle::Protected {
                file, write, append, ..
            } => {
                if !*write {
                    return Err(Errno::EBADF);
                }
                let mut pf = file.write();
                let at = if *append { pf.len() } else { offset };
                pf.write_at(data, at).map_err(|e| file.errno("write", e))?;
                Ok(data.len() as u32)
            }
            Handle::Plain { file, .. } => {
                use std::os::unix::fs::FileExt;
                file.write_all_at(data, offset).map_err(io)?;
                Ok(data.len() as u32)
            }
            Handle::Dir(_) => Err(Errno::EISDIR),
        }
    }

    /// `close(2)` of one descriptor: commit what it wrote, so another
    /// process (or a remount after a crash) sees it.
    pub(super) fn flush(&self, fh: u64) -> Result<(), Errno> {
        if let Handle::Protected { file, write: true, .. } = &*self.handle(fh)? {
            let r = file.write().flush();
            r.map_err(|e| file.errno("flush", e))?;
        }
        Ok(())
    }

    /// `fsync(2)`: commit durably, and make a new file's name durable too.
    pub(super) fn fsync(&self, fh: u64, datasync: bool) -> Result<(), Errno> {
        match &*self.handle(fh)? {
            Handle::Protected { file, ino, .. } => {
                self.sync_keys()?;
                let r = file.write().sync();
                r.map_err(|e| file.errno("fsync", e))?;
                if file.take_dir_unsynced() {
                    let parent = self.table().get(*ino).and_then(|n| n.links.first().map(|l| l.0));
                    if let Some(dir) = parent {
                        crate::durable::sync_dir(self.src_dir(dir)?.as_ref()).map_err(io)?;
                    }
                }
                Ok(())
            }
            Handle::Plain { file, .. } => if datasync { file.sync_data() } else { file.sync_all() }.map_err(io),
            Handle::Dir(_) => Ok(()),
        }
    }

    /// Changes size, mode, owner or times.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn setattr(
        &self,
        ino: u64,
        fh: Option<u64>,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<fuser::TimeOrNow>,
        mtime: Option<fuser::TimeOrNow>,
    ) -> Result<FileAttr, Errno> {
        if let Some(size) = size {
            self.truncate(ino, fh, size)?;
        }
        let path = || self.src(ino);
        if let Some(mode) = mode {
            if mode & 0o222 != 0 && self.view_only(ino)? {
                // Write bits would claim a right the licence does not
                // give (and that opening refuses anyway).
                tracing::warn!(file = %path()?.display(), "refused a chmod adding write permission: you may only view this file");
                return Err(Errno::EPERM);
            }
            chmod_nofollow(&path()?, mode & 0o7777)?;
        }
        if uid.is_some() || gid.is_some() {
            std::os::unix::fs::lchown(path()?, uid, gid).map_err(io)?;
        }
        if atime.is_some() || mtime.is_some() {
            // Commit the open view first: a commit after the times are set
            // (at close) would write the source file and move its mtime to
            // now, losing the time `tar`, `cp -a` and `rsync` set through a
            // descriptor they have not closed yet.
            let open = self.table().get(ino).and_then(|n| n.open.clone());
            if let Some(of) = open.filter(|of| of.writable) {
                let r = of.write().flush();
                r.map_err(|e| of.errno("utimens", e))?;
            }
            set_times(path()?.as_ref(), atime, mtime)?;
        }
        self.getattr(ino)
    }

    fn truncate(&self, ino: u64, fh: Option<u64>, size: u64) -> Result<(), Errno> {
        if let Some(fh) = fh
            && let Ok(h) = self.handle(fh)
        {
            match &*h {
                Handle::Protected { file, .. } => {
                    if !file.writable {
                        return Err(Errno::EACCES);
                    }
                    let r = file.write().set_len(size);
                    return r.map_err(|e| file.errno("truncate", e));
                }
                Handle::Plain { file, .. } => return file.set_len(size).map_err(io),
                Handle::Dir(_) => return Err(Errno::EISDIR),
            }
        }
        let (kind, path) = {
            let t = self.table();
            (t.get(ino).ok_or(Errno::ENOENT)?.kind, t.path(ino))
        };
        match kind {
            Kind::Protected => {
                let (of, _) = self.open_shared(ino, path)?;
                let r = if of.writable {
                    let mut pf = of.write();
                    pf.set_len(size)
                        .and_then(|_| pf.flush())
                        .map_err(|e| of.errno("truncate", e))
                } else {
                    Err(Errno::EACCES)
                };
                self.close_shared(ino);
                r
            }
            Kind::Plain => {
                refuse_plain_write(path?.shown());
                Err(Errno::EACCES)
            }
            Kind::Dir => Err(Errno::EISDIR),
            _ => Err(Errno::EINVAL),
        }
    }

    /// Lists a folder at `opendir`: names as shown, inode numbers as
    /// `lookup` will give them.
    pub(super) fn opendir(&self, ino: u64) -> Result<u64, Errno> {
        let (dir, parent) = {
            let t = self.table();
            let node = t.get(ino).ok_or(Errno::ENOENT)?;
            (t.dir_path(ino)?, node.links.first().map_or(ROOT, |l| l.0))
        };
        let dir = self.reach(dir)?;
        let mut entries = vec![
            DirEntry {
                ino,
                kind: FileType::Directory,
                name: ".".into(),
            },
            DirEntry {
                ino: parent,
                kind: FileType::Directory,
                name: "..".into(),
            },
        ];
        let mut seen = std::collections::HashSet::new();
        let mut plain = Vec::new();
        let t_ino = |st: u64| self.table().ino_for(st);
        for e in std::fs::read_dir(&dir).map_err(io)?.flatten() {
            let name = e.file_name();
            if ino == ROOT && names::is_hidden_at_root(&name) {
                continue;
            }
            let Ok(ft) = e.file_type() else { continue };
            let st = std::os::unix::fs::DirEntryExt::ino(&e);
            if names::is_reserved(&name) {
                // A long name's file shows under the name its side file
                // gives; side files and unmatched names stay hidden.
                if ft.is_file()
                    && let Some(shown) = names::read_long(dir.as_ref(), &name)
                {
                    seen.insert(shown.clone());
                    entries.push(DirEntry {
                        ino: t_ino(st),
                        kind: FileType::RegularFile,
                        name: shown,
                    });
                }
                continue;
            }
            if ft.is_file() {
                match names::strip(&name) {
                    Some(shown) => {
                        seen.insert(shown.to_owned());
                        entries.push(DirEntry {
                            ino: t_ino(st),
                            kind: FileType::RegularFile,
                            name: shown.to_owned(),
                        });
                    }
                    None => plain.push((name, st)),
                }
            } else {
                let kind = if ft.is_dir() {
                    FileType::Directory
                } else if ft.is_symlink() {
                    FileType::Symlink
                } else {
                    FileType::from_std(ft).unwrap_or(FileType::RegularFile)
                };
                entries.push(DirEntry {
                    ino: t_ino(st),
                    kind,
                    name,
                });
            }
        }
        for (name, st) in plain {
            if seen.contains(&name) {
                tracing::warn!(folder = %dir.display(), name = %name.to_string_lossy(), "plain file hidden by a protected file of the same name");
                continue;
            }
            entries.push(DirEntry {
                ino: t_ino(st),
                kind: FileType::RegularFile,
                name,
            });
        }
        Ok(self.add_handle(Handle::Dir(entries)))
    }

    /// Makes a folder.
    pub(super) fn mkdir(&self, parent: u64, name: &OsStr, who: &Creation) -> Result<FileAttr, Errno> {
        self.check_free(parent, name)?;
        let p = self.src_child(parent, name)?;
        let p = p.as_ref();
        std::fs::DirBuilder::new().mode(who.mode).create(p).map_err(io)?;
        settled(p, self.maker.settle_path(p, who, true), true)?;
        self.lookup(parent, name)
    }

    /// Makes a FIFO, socket or device node: stored in the source as
    /// itself (they hold no content to protect), as a local filesystem
    /// would; the kernel answers their opens without the daemon.
    pub(super) fn mknod(
        &self,
        parent: u64,
        name: &OsStr,
        kind: u32,
        rdev: u32,
        who: &Creation,
    ) -> Result<FileAttr, Errno> {
        self.check_free(parent, name)?;
        let p = self.src_child(parent, name)?;
        let p = p.as_ref();
        let c = std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
        // SAFETY: valid C string; no memory passed.
        if unsafe { libc::mknod(c.as_ptr(), kind | who.mode, libc::dev_t::from(rdev)) } != 0 {
            return Err(io(std::io::Error::last_os_error()));
        }
        settled(p, self.maker.settle_path(p, who, false), false)?;
        self.lookup(parent, name)
    }

    /// Makes a symbolic link (stored as is: links are not protected).
    pub(super) fn symlink(&self, parent: u64, name: &OsStr, target: &Path, who: &Creation) -> Result<FileAttr, Errno> {
        self.check_free(parent, name)?;
        let p = self.src_child(parent, name)?;
        let p = p.as_ref();
        std::os::unix::fs::symlink(target, p).map_err(io)?;
        settled(p, self.maker.settle_link(p, who), false)?;
        self.lookup(parent, name)
    }

    fn check_free(&self, parent: u64, name: &OsStr) -> Result<(), Errno> {
        names::check_len(name)?;
        if names::is_reserved(name) {
            return Err(Errno::EINVAL);
        }
        if parent == ROOT && names::is_hidden_at_root(name) {
            return Err(Errno::EEXIST);
        }
        match self.resolve(parent, name) {
            Ok(_) => Err(Errno::EEXIST),
            Err(_) => Ok(()),
        }
    }

    /// Removes a file or link.
    pub(super) fn unlink(&self, parent: u64, name: &OsStr) -> Result<(), Errno> {
        // The kernel looked the name up before unlinking it, so the table
        // usually knows it is a protected file: no second lookup in the
        // source. If the entry is gone or no longer a file (the source
        // changed meanwhile), the slow path finds what the name means now
        // and gives the error that goes with it.
        if let Some(p) = self.known_protected(parent, name).and_then(|at| self.reach(at).ok())
            && self.remove_protected(parent, name, &p).is_ok()
        {
            let bname = names::protected(name);
            names::forget(p.dir(), &bname);
            self.table().unlink_name(parent, &bname);
            return Ok(());
        }
        let (bname, kind, _) = self.resolve(parent, name)?;
        if kind == Kind::Dir {
            return Err(Errno::EISDIR);
        }
        let p = self.src_child(parent, &bname)?;
        if kind == Kind::Protected {
            self.remove_protected(parent, name, &p).map_err(io)?;
            names::forget(p.dir(), &bname);
        } else {
            std::fs::remove_file(&p).map_err(io)?;
        }
        self.table().unlink_name(parent, &bname);
        Ok(())
    }

    /// Removes an empty folder.
    pub(super) fn rmdir(&self, parent: u64, name: &OsStr) -> Result<(), Errno> {
        let (bname, kind, _) = self.resolve(parent, name)?;
        if kind != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        let p = self.src_child(parent, &bname)?;
        std::fs::remove_dir(&p).map_err(io)?;
        self.table().unlink_name(parent, &bname);
        Ok(())
    }

    /// Renames, atomically replacing the target (or not, or exchanging,
    /// as `flags` ask).
    pub(super) fn rename(
        &self,
        parent: u64,
        name: &OsStr,
        newparent: u64,
        newname: &OsStr,
        flags: u32,
    ) -> Result<(), Errno> {
        names::check_len(newname)?;
        if newparent == ROOT && names::is_hidden_at_root(newname) {
            return Err(Errno::EACCES);
        }
        if names::is_reserved(newname) {
            return Err(Errno::EINVAL);
        }
        let (bname, kind, _) = self.resolve(parent, name)?;
        let target = match kind {
            Kind::Protected => names::protected(newname),
            _ => newname.to_owned(),
        };
        let noreplace = flags & libc::RENAME_NOREPLACE != 0;
        let exchange = flags & libc::RENAME_EXCHANGE != 0;
        let existing = self.resolve(newparent, newname).ok();
        // A file renamed over another document's protected file is a save:
        // the target keeps its identity (see `save.rs`).
        if let Some((tname, Kind::Protected, _)) = &existing
            && !noreplace
            && !exchange
            && matches!(kind, Kind::Protected | Kind::Plain)
            && self.save_over(parent, &bname, kind, newparent, newname, tname)?
        {
            return Ok(());
        }
        // A target of the other sort (plain vs protected) under the same
        // shown name must go too, or it would shadow or be shadowed.
        let other = existing.filter(|(b, _, _)| *b != target);
        let (from, to, other_path) = {
            let t = self.table();
            (
                t.child_path(parent, &bname)?,
                t.child_path(newparent, &target)?,
                other.as_ref().map(|(b, _, _)| t.child_path(newparent, b)).transpose()?,
            )
        };
        let moved = from.shown() != to.shown();
        let (from, to) = (self.reach(from)?, self.reach(to)?);
        let other_path = other_path.map(|at| self.reach(at)).transpose()?;
        if other.is_some() && (noreplace || exchange) {
            return Err(if noreplace { Errno::EEXIST } else { Errno::EINVAL });
        }
        if let Some((_, Kind::Dir, _)) = &other
            && std::fs::read_dir(other_path.as_ref().unwrap())
                .map_err(io)?
                .next()
                .is_some()
        {
            return Err(Errno::ENOTEMPTY);
        }
        if kind == Kind::Protected {
            names::prepare(to.dir(), newname).map_err(io)?;
        }
        // A protected file leaving its name: a file created under it soon
        // continues the document (vim's and Emacs's backup saves).
        let departing = (kind == Kind::Protected && !exchange && (parent, name) != (newparent, newname))
            .then(|| super::save::open_nofollow(&from).ok())
            .flatten();
        renameat2(from.as_ref(), to.as_ref(), flags)?;
        if kind == Kind::Protected && !exchange && moved {
            names::forget(from.dir(), &bname);
        }
        if let Some(f) = departing {
            self.departed(parent, name, f);
        }
        self.name_taken(newparent, newname);
        if let (Some((oname, okind, _)), Some(op)) = (other, other_path) {
            let r = if okind == Kind::Dir {
                std::fs::remove_dir(&op)
            } else {
                std::fs::remove_file(&op)
            };
            if let Err(e) = r {
                tracing::warn!(path = %op.display(), error = %e, "could not remove the replaced entry");
            }
            self.table().unlink_name(newparent, &oname);
        }
        let mut t = self.table();
        if exchange {
            t.exchange((parent, &bname), (newparent, &target));
        } else {
            t.rename(parent, &bname, newparent, &target);
        }
        Ok(())
    }

    /// A second name for a file (the content is bound to its id, not its
    /// name, so both names open the same shared view).
    pub(super) fn link(&self, ino: u64, newparent: u64, newname: &OsStr) -> Result<FileAttr, Errno> {
        self.check_free(newparent, newname)?;
        let (kind, from) = {
            let t = self.table();
            (t.get(ino).ok_or(Errno::ENOENT)?.kind, t.path(ino)?)
        };
        let from = self.reach(from)?;
        let bname = match kind {
            Kind::Protected => names::protected(newname),
            Kind::Dir => return Err(Errno::EPERM),
            _ => newname.to_owned(),
        };
        let to = self.src_child(newparent, &bname)?;
        if kind == Kind::Protected {
            names::prepare(to.dir(), newname).map_err(io)?;
        }
        std::fs::hard_link(&from, &to).map_err(io)?;
        self.lookup(newparent, newname)
    }

    /// Reads a link.
    pub(super) fn readlink(&self, ino: u64) -> Result<Vec<u8>, Errno> {
        let p = self.src(ino)?;
        Ok(std::fs::read_link(p).map_err(io)?.as_os_str().as_bytes().to_vec())
    }

    /// Space of the source filesystem.
    pub(super) fn statfs(&self) -> Result<libc::statvfs, Errno> {
        let root = self.table().root().to_path_buf();
        let c = std::ffi::CString::new(root.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: `c` is a valid C string and `st` a valid out-pointer.
        if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
            return Err(io(std::io::Error::last_os_error()));
        }
        Ok(st)
    }

    /// `fallocate` on a protected file. The format has no unauthenticated
    /// holes, so space is never reserved without writing it: mode 0 grows
    /// the file with encrypted zeros; `KEEP_SIZE` alone has nothing to do
    /// (the reservation is not made; a later write may still meet a full
    /// disk); `PUNCH_HOLE` and `ZERO_RANGE` write encrypted zeros over the
    /// range (`ZERO_RANGE` without `KEEP_SIZE` also grows the file).
    /// Collapsing, inserting and unsharing ranges: `EOPNOTSUPP`.
    pub(super) fn fallocate(&self, fh: u64, offset: u64, length: u64, mode: i32) -> Result<(), Errno> {
        match &*self.handle(fh)? {
            Handle::Protected { file, write, .. } => {
                const KEEP: i32 = libc::FALLOC_FL_KEEP_SIZE;
                const PUNCH: i32 = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
                const ZERO: i32 = libc::FALLOC_FL_ZERO_RANGE;
                if !matches!(mode, 0 | KEEP | PUNCH) && mode & !KEEP != ZERO {
                    return Err(Errno::EOPNOTSUPP);
                }
                if !*write {
                    return Err(Errno::EBADF);
                }
                let end = offset.checked_add(length).ok_or(Errno::EFBIG)?;
                let mut pf = file.write();
                let r = if mode & (libc::FALLOC_FL_PUNCH_HOLE | ZERO) != 0 {
                    let to = end.min(pf.len());
                    zero_range(&mut pf, offset, to)
                } else {
                    Ok(())
                };
                let r = r.and_then(|()| {
                    if mode & KEEP == 0 && end > pf.len() {
                        pf.set_len(end)
                    } else {
                        Ok(())
                    }
                });
                r.map_err(|e| file.errno("fallocate", e))
            }
            Handle::Plain { file, .. } => {
                use std::os::fd::AsRawFd;
                // SAFETY: plain syscall on a descriptor the handle owns.
                let r = unsafe { libc::fallocate(file.as_raw_fd(), mode, offset as i64, length as i64) };
                if r == 0 {
                    Ok(())
                } else {
                    Err(io(std::io::Error::last_os_error()))
                }
            }
            Handle::Dir(_) => Err(Errno::EISDIR),
        }
    }

    /// `copy_file_range(2)` inside the daemon: decrypts from one handle and
    /// reseals into the other a megabyte at a time, so `cp` of a large
    /// file costs one request per gigabyte rather than two per 128 KiB
    /// (a read and a write through the kernel). Answers how much it copied:
    /// less than asked at the end of the source.
    pub(super) fn copy_range(
        &self,
        fh_in: u64,
        off_in: u64,
        fh_out: u64,
        off_out: u64,
        len: u64,
    ) -> Result<u32, Errno> {
        const CHUNK: u64 = 1 << 20;
        // The reply counts bytes in 32 bits; `cp` asks again for the rest.
        let len = len.min(1 << 30);
        let mut done = 0u64;
        while done < len {
            let want = (len - done).min(CHUNK) as u32;
            let data = self.read(fh_in, off_in + done, want)?;
            if data.is_empty() {
                break;
            }
            let n = self.write(fh_out, off_out + done, &data)?;
            done += u64::from(n);
            if (n as usize) < want as usize {
                break;
            }
        }
        Ok(done as u32)
    }

    /// Syncs the registrations of files created so far (before any
    /// protected file is synced).
    fn sync_keys(&self) -> Result<(), Errno> {
        self.keys.sync_new().map_err(|e| {
            tracing::error!(error = %e, "could not save the registrations of new files durably");
            Errno::EIO
        })
    }

    /// Commits every open file (at unmount).
    pub(super) fn flush_all(&self) {
        let _ = self.sync_keys();
        if let Some(x) = &self.facts_index {
            x.flush();
        }
        let open: Vec<Arc<OpenFile>> = self
            .handles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter_map(|h| match &**h {
                Handle::Protected { file, .. } => Some(file.clone()),
                _ => None,
            })
            .collect();
        for of in open {
            let r = of.write().flush();
            if let Err(e) = r {
                let _ = of.errno("unmount", e);
            }
        }
        if let Err(e) = self.journal.close_cleanly() {
            tracing::warn!(error = %e, "could not close the change log: files changed in this mount may be cut back to their last commit at their next open");
        }
    }
}

/// A write through the mount to a file without the suffix would land on
/// disk in plaintext (a protected file may have been swapped for a plain
/// one behind the mount's back): refused, and logged with the file's name.
fn refuse_plain_write(path: &Path) {
    tracing::warn!(file = %path.display(), "refused a write to a plain (unprotected) file: protect it first (`rights protect`)");
}

/// Writes encrypted zeros over `from..to` of an open file, a megabyte at
/// a time.
fn zero_range(pf: &mut ProtectedFile, from: u64, to: u64) -> Result<(), crate::format::FormatError> {
    const CHUNK: u64 = 1 << 20;
    let zeros = vec![0u8; CHUNK.min(to.saturating_sub(from)) as usize];
    let mut at = from;
    while at < to {
        let n = (to - at).min(CHUNK) as usize;
        pf.write_at(&zeros[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

/// Removes a new entry whose mode or owner could not be set, so that a
/// failed creation leaves nothing behind.
fn settled(p: &Path, r: std::io::Result<()>, dir: bool) -> Result<(), Errno> {
    r.map_err(|e| {
        let _ = if dir {
            std::fs::remove_dir(p)
        } else {
            std::fs::remove_file(p)
        };
        io(e)
    })
}

/// How far ahead of a sequential reader the source is asked to read.
pub(super) const READ_AHEAD: u64 = 4 << 20;

/// Asks the kernel to start reading the ciphertext after `from` (plaintext
/// offset) now, so that the disk works while this request is decrypted:
/// the kernel sends a FUSE daemon at most its readahead window (128 KiB)
/// per request, too little to keep a cold disk busy on its own.
fn read_ahead(pf: &ProtectedFile, from: u64) {
    use std::os::fd::AsRawFd;
    let g = pf.header().geometry;
    if from >= pf.len() {
        return;
    }
    let start = g.block_offset(from / g.block_size);
    let len = READ_AHEAD / g.block_size * g.stride();
    // SAFETY: advisory syscall on a descriptor the view owns; no memory is passed.
    unsafe {
        libc::posix_fadvise(
            pf.file().as_raw_fd(),
            start as i64,
            len as i64,
            libc::POSIX_FADV_WILLNEED,
        )
    };
}

/// `chmod` of the entry at `p` itself: a link someone put in the place of
/// a file or folder is not followed (`EOPNOTSUPP`, as links have no mode
/// of their own).
fn chmod_nofollow(p: &SrcPath, mode: u32) -> Result<(), Errno> {
    use std::os::fd::AsRawFd;
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(p)
        .map_err(io)?;
    if f.metadata().map_err(io)?.file_type().is_symlink() {
        return Err(Errno::EOPNOTSUPP);
    }
    let at = format!("/proc/self/fd/{}", f.as_raw_fd());
    std::fs::set_permissions(at, std::os::unix::fs::PermissionsExt::from_mode(mode)).map_err(io)
}

fn renameat2(from: &Path, to: &Path, flags: u32) -> Result<(), Errno> {
    if flags == 0 {
        return std::fs::rename(from, to).map_err(io);
    }
    let a = std::ffi::CString::new(from.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    let b = std::ffi::CString::new(to.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: valid C strings; AT_FDCWD with absolute paths.
    let r = unsafe { libc::renameat2(libc::AT_FDCWD, a.as_ptr(), libc::AT_FDCWD, b.as_ptr(), flags) };
    if r == 0 {
        Ok(())
    } else {
        Err(io(std::io::Error::last_os_error()))
    }
}

fn set_times(path: &Path, atime: Option<fuser::TimeOrNow>, mtime: Option<fuser::TimeOrNow>) -> Result<(), Errno> {
    fn ts(t: Option<fuser::TimeOrNow>) -> libc::timespec {
        match t {
            None => libc::timespec {
                tv_sec: 0,
                tv_nsec: libc::UTIME_OMIT,
            },
            Some(fuser::TimeOrNow::Now) => libc::timespec {
                tv_sec: 0,
                tv_nsec: libc::UTIME_NOW,
            },
            Some(fuser::TimeOrNow::SpecificTime(t)) => {
                let (s, n) = match t.duration_since(UNIX_EPOCH) {
                    Ok(d) => (d.as_secs() as i64, d.subsec_nanos() as i64),
                    Err(e) => (-(e.duration().as_secs() as i64), 0),
                };
                libc::timespec { tv_sec: s, tv_nsec: n }
            }
        }
    }
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    let times = [ts(atime), ts(mtime)];
    // SAFETY: valid C string and a two-element timespec array.
    let r = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) };
    if r == 0 {
        Ok(())
    } else {
        Err(io(std::io::Error::last_os_error()))
    }
}
