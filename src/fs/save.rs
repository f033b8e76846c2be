//! Saves that replace a document instead of writing into it.
//!
//! Most programs save by writing a new file and renaming it over the old
//! one (`sed -i`, Python's `os.replace`, rsync, GIO, LibreOffice), or by
//! moving the old file away or deleting it and writing a new one under its
//! name (vim with `backupcopy=no`, Emacs, `git checkout`). Done naively,
//! each would turn a shared document into a new one: owned by whoever
//! saved it, shared with nobody. Here both keep the document's identity:
//!
//! - **Rename over a protected file** of another document: the renamed
//!   file's content is sealed afresh under the target's header (content
//!   id, key, owner, publishing licence, owner slot) into a file in
//!   `.rightsfs/saves/`, synced, then renamed over the target in one step,
//!   and the renamed file is removed. The target is never missing, and a
//!   failure or a crash at any point leaves it as it was. The open view of
//!   the renamed file (shared by every descriptor still open on it) is
//!   moved onto the new source file under the view's lock, and the new
//!   source file is shown under the renamed file's inode number, so those
//!   descriptors keep reading and writing the document that now bears the
//!   name. Costs one re-encryption of the file and one `fdatasync`.
//! - **A name left by a protected file** (renamed away or deleted) stays
//!   bound to that document for [`DEPARTURE_WINDOW`]: a file created under
//!   it meanwhile starts as a new, empty version of the document.
//!
//! Either needs `edit` on the document; anyone else gets `EACCES` and the
//! document stays as it was.

use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fuser::Errno;
use zeroize::Zeroizing;

use super::beneath::SrcPath;
use super::inodes::Kind;
use super::open::errno_for;
use super::state::RightsFs;
use crate::dirfd::Dir;
use crate::format::{FileHeader, FormatError, Fresh, ProtectedFile, read_header};
use crate::licence::Access;
use crate::policy::{Right, Rights};

/// How long a name whose protected file was renamed away or deleted stays
/// bound to that document. Editors create the new file at once (vim, Emacs
/// and git within the same sequence of system calls), so a few seconds
/// cover them with room for a loaded machine, while a file made under that
/// name later is a new document, as one would expect.
pub const DEPARTURE_WINDOW: Duration = Duration::from_secs(5);

/// Names remembered at most: a `rm -r` of a large tree keeps only its
/// last ones (and their descriptors) for the window.
const DEPARTURES_KEPT: usize = 256;

/// Plaintext copied per step of a re-seal.
const COPY_CHUNK: usize = 1 << 20;

/// The folder where saves are sealed before they replace their target
/// (`SRC/.rightsfs/saves`, on the source's filesystem so that the final
/// rename is atomic), reached through a held descriptor.
pub(super) struct Saves {
    dir: Arc<Dir>,
    seq: AtomicU64,
}

impl Saves {
    /// Opens (or makes) the folder inside the mount's state folder and
    /// removes what a previous daemon left there: saves it did not finish
    /// (their targets are intact) and deleted files it kept for a save
    /// that never came.
    pub fn open(state: &Dir) -> std::io::Result<Self> {
        let dir = state.private_subdir("saves")?;
        for name in dir.names()? {
            if let Some(n) = name.to_str() {
                let _ = dir.remove(n);
            }
        }
        Ok(Self {
            dir: Arc::new(dir),
            seq: AtomicU64::new(0),
        })
    }

    /// A name no other save of this daemon uses.
    fn fresh_name(&self) -> String {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n}.rights", std::process::id())
    }
}

/// What a departed name keeps of the file that left it.
pub(super) enum Departed {
    /// A descriptor of it (still readable after an unlink).
    Open(File),
    /// A second link to a deleted file this user may not edit, kept in the
    /// saves folder so that a refused save can put it back: a program that
    /// deletes a file before writing its new version (vim's `:w!`, git)
    /// then fails with the file still there. Removed when the entry goes.
    Held {
        saves: Arc<Dir>,
        held: Option<String>,
        home: SrcPath,
    },
}

impl Departed {
    fn file(&self) -> std::io::Result<File> {
        match self {
            Self::Open(f) => f.try_clone(),
            Self::Held {
                saves, held: Some(n), ..
            } => saves.open_file(n, libc::O_RDONLY, 0),
            Self::Held { held: None, .. } => Err(std::io::ErrorKind::NotFound.into()),
        }
    }

    /// Puts a held file back under its name (a refused save).
    fn restore(&mut self) {
        if let Self::Held { saves, held, home } = self
            && let Some(n) = held.take()
        {
            match saves.link_out(&n, home.as_ref()) {
                Ok(()) => tracing::info!(file = %home.display(), "put the document back"),
                Err(e) => tracing::warn!(file = %home.display(), error = %e, "could not put the document back"),
            }
            let _ = saves.remove(&n);
        }
    }
}

impl Drop for Departed {
    fn drop(&mut self) {
        if let Self::Held {
            saves, held: Some(n), ..
        } = self
        {
            let _ = saves.remove(n);
        }
    }
}

type DepartureMap = lru::LruCache<(u64, OsString), (Departed, Instant)>;

/// Names that protected files recently left, by (parent inode, shown
/// name), with what is kept of the file and when it left.
///
/// What leaves the window is not dropped where it leaves but set aside
/// until the request that pushed it out has been answered
/// ([`tidy`](Self::tidy)): closing the last descriptor of a deleted file
/// is when the source file system frees it, a third of an unlink's time
/// in the daemon (perf), which the program deleting need not wait for.
pub(super) struct Departures {
    kept: Mutex<DepartureMap>,
    leaving: Mutex<Vec<Departed>>,
}

impl Departures {
    pub fn new() -> Self {
        Self {
            kept: Mutex::new(crate::cache::bounded(DEPARTURES_KEPT)),
            leaving: Mutex::new(Vec::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DepartureMap> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_aside(&self, gone: impl IntoIterator<Item = Departed>) {
        self.leaving.lock().unwrap_or_else(|p| p.into_inner()).extend(gone);
    }

    /// Remembers what left `name` in `parent`; what is past the window
    /// or pushed out waits for [`tidy`](Self::tidy).
    pub fn note(&self, parent: u64, name: &OsStr, what: Departed) {
        let mut gone = Vec::new();
        {
            let mut c = self.lock();
            while c.peek_lru().is_some_and(|(_, (_, at))| at.elapsed() > DEPARTURE_WINDOW) {
                gone.extend(c.pop_lru().map(|(_, (d, _))| d));
            }
            gone.extend(
                c.push((parent, name.to_owned()), (what, Instant::now()))
                    .map(|(_, (d, _))| d),
            );
        }
        self.set_aside(gone);
    }

    /// What left `name` in `parent` within the window, if anything
    /// (forgotten once taken).
    pub fn take(&self, parent: u64, name: &OsStr) -> Option<Departed> {
        let (what, at) = self.lock().pop(&(parent, name.to_owned()))?;
        (at.elapsed() <= DEPARTURE_WINDOW).then_some(what)
    }

    /// Forgets `name` in `parent` (something else took the name).
    pub fn forget(&self, parent: u64, name: &OsStr) {
        let gone = self.lock().pop(&(parent, name.to_owned()));
        self.set_aside(gone.map(|(d, _)| d));
    }

    /// Closes what left the window: called once a request that may have
    /// pushed something out has been answered.
    pub fn tidy(&self) {
        let gone = std::mem::take(&mut *self.leaving.lock().unwrap_or_else(|p| p.into_inner()));
        drop(gone);
    }
}

/// The document a new file continues (see [`RightsFs::continued`]).
pub(super) struct Continued {
    header: FileHeader,
    access: Access,
    /// What its key has sealed so far.
    seals: u64,
}

/// Opens a source file for reading without following a link planted in
/// its place.
pub(super) fn open_nofollow(path: impl AsRef<Path>) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

fn fmt(name: &Path, op: &'static str) -> impl FnOnce(FormatError) -> Errno {
    let name = name.display().to_string();
    move |e| errno_for(&name, op, e)
}

impl RightsFs {
    /// The key of the document `header` describes, if this user may edit
    /// it; `EACCES` with a log line naming whom to ask otherwise.
    fn editable(&self, header: &FileHeader, shown: &Path) -> Result<Access, Errno> {
        match self.keys.access(header) {
            Ok(a) if a.rights.has(Right::Edit) => Ok(a),
            Ok(_) => {
                tracing::warn!(
                    file = %shown.display(),
                    owner = %header.licence.owner(),
                    "refused a save: you may only view this document (its owner can grant edit)"
                );
                Err(Errno::EACCES)
            }
            Err(e) => {
                tracing::warn!(file = %shown.display(), owner = %header.licence.owner(), error = %e, "refused a save: no licence to edit this document");
                Err(Errno::EACCES)
            }
        }
    }

    /// A new, empty version of the document `header` describes, written
    /// into the empty `file` with the key `access` gave: committed through
    /// the mount's journal like any file it writes.
    /// Signed by this user's writer, as every version the mount commits:
    /// without one (no edit certificate) the save is refused. The key's
    /// seal count goes on from `seals_before`, what the document's key has
    /// sealed so far (docs/FORMAT.md section 9).
    fn new_version(
        &self,
        file: File,
        header: FileHeader,
        access: &Access,
        at: &Path,
        seals_before: u64,
    ) -> Result<ProtectedFile, Errno> {
        let writer = match self.keys.writer(&header, access) {
            Ok(Some(w)) => w,
            Ok(None) => return Err(Errno::EACCES),
            Err(e) => {
                tracing::warn!(file = %at.display(), error = %e, "refused a save: no writer certificate to sign it");
                return Err(Errno::EACCES);
            }
        };
        Fresh::continuing(
            header,
            &access.key,
            Some(writer),
            seals_before,
            self.verifier.caches().map(|c| &**c),
        )
        .and_then(|fresh| ProtectedFile::create_from(file, fresh))
        .map(|pf| self.cached(pf).with_journal(&self.journal))
        .map_err(fmt(at, "save"))
    }

    /// The document a file about to be created as `name` in `parent`
    /// continues, with the key to write it: `None` for a new document,
    /// `EACCES` when the name belongs to a document this user may not edit
    /// (asked before the file exists, so a deleted document can be put
    /// back under its name).
    pub(super) fn continued(&self, parent: u64, name: &OsStr) -> Result<Option<Continued>, Errno> {
        let Some(mut departed) = self.departures.take(parent, name) else {
            return Ok(None);
        };
        let Ok((file, header)) = departed
            .file()
            .map_err(FormatError::from)
            .and_then(|f| read_header(&f).map(|h| (f, h)))
        else {
            // Damaged or not a protected file: nothing to continue.
            return Ok(None);
        };
        let shown = self.table().child_path(parent, name)?;
        let shown = shown.shown();
        let access = self.editable(&header, shown).inspect_err(|_| departed.restore())?;
        let seals = self.seals_so_far(&file, &access, shown, None)?;
        tracing::info!(file = %shown.display(), content_id = %header.content_id().to_hex(), "a new version of the document that left this name");
        Ok(Some(Continued { header, access, seals }))
    }

    /// What the key of the document in `file` has sealed so far: the most
    /// its state records count, or its open view (`view`, which may hold
    /// seals not committed yet). A file whose states do not authenticate
    /// gives no count to go on from: the save is refused (`EIO`).
    fn seals_so_far(
        &self,
        file: &File,
        access: &Access,
        at: &Path,
        view: Option<&ProtectedFile>,
    ) -> Result<u64, Errno> {
        let on_disk = ProtectedFile::seals_used(file, &access.key).map_err(fmt(at, "save"))?;
        Ok(view.map_or(on_disk, |v| v.seals().max(on_disk)))
    }

    /// The first, empty version of a continued document (see
    /// [`continued`](Self::continued)) in the new empty `file` at `path`.
    pub(super) fn continue_in(
        &self,
        file: File,
        doc: Continued,
        path: &Path,
    ) -> Result<(ProtectedFile, Rights), Errno> {
        let pf = self.new_version(file, doc.header, &doc.access, path, doc.seals)?;
        Ok((pf, doc.access.rights))
    }

    /// Notes that a protected file left `name` in `parent` by a rename: a
    /// file created under the name soon continues its document. `file` is
    /// the departing file, opened before the rename.
    pub(super) fn departed(&self, parent: u64, name: &OsStr, file: File) {
        self.departures.note(parent, name, Departed::Open(file));
    }

    /// Something else now bears `name` in `parent`.
    pub(super) fn name_taken(&self, parent: u64, name: &OsStr) {
        self.departures.forget(parent, name);
    }

    /// Deletes the protected file at `path` (shown as `name` in `parent`),
    /// remembering it for a save that may follow. A file known to be
    /// view-only is kept as a hidden link for the window, so that a refused
    /// save can put it back (one more link and unlink); any other is
    /// remembered by a descriptor.
    pub(super) fn remove_protected(&self, parent: u64, name: &OsStr, path: &SrcPath) -> std::io::Result<()> {
        // Known to be view-only (from its header facts or its open view);
        // anything else is kept by a descriptor only, so that the deleted
        // file is really gone (no link left) once it is closed.
        let view_only = {
            let t = self.table();
            t.by_name(parent, &super::names::protected(name))
                .and_then(|i| t.get(i))
                .and_then(|n| n.facts().and_then(|f| f.rights).or(n.open().map(|o| o.rights)))
                .is_some_and(|r| !r.has(Right::Edit))
        };
        if !view_only {
            let kept = open_nofollow(path);
            std::fs::remove_file(path)?;
            if let Ok(f) = kept {
                self.departures.note(parent, name, Departed::Open(f));
            }
            return Ok(());
        }
        let held = self.saves.fresh_name();
        if self.saves.dir.link_in(path.as_ref(), &held).is_err() {
            return std::fs::remove_file(path);
        }
        if let Err(e) = std::fs::remove_file(path) {
            let _ = self.saves.dir.remove(&held);
            return Err(e);
        }
        let what = Departed::Held {
            saves: self.saves.dir.clone(),
            held: Some(held),
            home: path.try_clone()?,
        };
        self.departures.note(parent, name, what);
        Ok(())
    }

    /// Renames the file `bname` (of `kind`) in `parent` over the protected
    /// file `target` in `newparent` as a save: see the module comment.
    /// `Ok(false)` when it is no save (the same file, a copy of the same
    /// document, or a target with no readable header and so no identity to
    /// keep), and an ordinary rename should follow.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn save_over(
        &self,
        parent: u64,
        bname: &OsStr,
        kind: Kind,
        newparent: u64,
        newname: &OsStr,
        target: &OsStr,
    ) -> Result<bool, Errno> {
        let (src, dst, src_ino) = {
            let t = self.table();
            (
                t.child_path(parent, bname)?,
                t.child_path(newparent, target)?,
                t.by_name(parent, bname),
            )
        };
        let (src_at, dst_at) = (self.reach(src)?, self.reach(dst)?);
        // Log lines and messages name the paths the user knows.
        let (src, dst) = (src_at.shown(), dst_at.shown());
        let dst_file = open_nofollow(&dst_at).map_err(Errno::from)?;
        let header = match read_header(&dst_file) {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(file = %dst.display(), error = %e, "replacing a protected file whose header does not read: the new content is a new document");
                return Ok(false);
            }
        };
        let src_file = open_nofollow(&src_at).map_err(Errno::from)?;
        if dst_file.metadata().map_err(Errno::from)?.ino() == src_file.metadata().map_err(Errno::from)?.ino() {
            return Ok(false);
        }
        let src_header = match kind {
            Kind::Protected => Some(read_header(&src_file).map_err(fmt(src, "save"))?),
            _ => None,
        };
        if src_header
            .as_ref()
            .is_some_and(|h| h.content_id() == header.content_id())
        {
            return Ok(false);
        }
        let access = self.editable(&header, dst)?;
        // The target's own open view may have sealed more than it committed.
        let target_view = {
            let t = self.table();
            t.by_name(newparent, target)
                .and_then(|i| t.get(i))
                .and_then(|n| n.open().cloned())
        };
        let seals = match &target_view {
            Some(of) => self.seals_so_far(&dst_file, &access, dst, Some(&of.read()))?,
            None => self.seals_so_far(&dst_file, &access, dst, None)?,
        };
        // The open view of the renamed file, locked from the copy to the
        // switch: a write through any of its descriptors lands either
        // before the copy or in the new source file, never in between.
        let view = src_ino.and_then(|i| self.table().get(i).and_then(|n| n.open().cloned()));
        let mut guard = view.as_ref().map(|of| of.write());
        let name = self.saves.fresh_name();
        let out = self
            .saves
            .dir
            .open_file(&name, libc::O_RDWR | libc::O_CREAT | libc::O_EXCL, 0o600)
            .map_err(Errno::from)?;
        let sealed = (|| {
            let mut pf = self.new_version(out, header, &access, dst, seals)?;
            match (guard.as_deref_mut(), &src_header) {
                (Some(from), _) => {
                    let of = view.as_ref().expect("a guard comes from a view");
                    from.flush().map_err(|e| of.errno("save", e))?;
                    self.may_move_out(from.header(), of.rights, src)?;
                    copy_protected(from, &mut pf).map_err(fmt(dst, "save"))?;
                }
                (None, Some(h)) => {
                    let a = self.keys.access(h).map_err(|e| {
                        tracing::warn!(file = %src.display(), error = %e, "refused a save: no licence to read the new content");
                        Errno::EACCES
                    })?;
                    self.may_move_out(h, a.rights, src)?;
                    let file = src_file.try_clone().map_err(Errno::from)?;
                    let from = ProtectedFile::open_verified(file, &a.key, &self.verifier).map_err(fmt(src, "save"))?;
                    copy_protected(&from, &mut pf).map_err(fmt(dst, "save"))?;
                }
                (None, None) => copy_plain(&src_file, &mut pf).map_err(fmt(dst, "save"))?,
            }
            pf.sync().map_err(fmt(dst, "save"))?;
            like_renamed(pf.file(), &src_file).map_err(Errno::from)?;
            Ok(pf)
        })();
        let pf = match sealed.and_then(|pf| {
            self.saves.dir.rename_out(&name, dst_at.as_ref()).map_err(Errno::from)?;
            Ok(pf)
        }) {
            Ok(pf) => pf,
            Err(e) => {
                let _ = self.saves.dir.remove(&name);
                return Err(e);
            }
        };
        // The table first: once the renamed file is removed below, the
        // source may give its number to a new entry at once, and that
        // entry must find the number taken by the document.
        let st_ino = pf.file().metadata().map(|m| m.ino());
        {
            let mut t = self.table();
            t.rename(parent, bname, newparent, target);
            if let Some(i) = src_ino {
                if let Ok(st) = st_ino {
                    t.alias(st, i);
                }
                if let Some(n) = t.get_mut(i) {
                    n.set_facts(None);
                    if let Some(u) = n.in_use_mut() {
                        u.cache_stamp = None;
                    }
                }
            }
        }
        // The new version is in place: the renamed file is no longer needed.
        if let Err(e) = std::fs::remove_file(&src_at) {
            tracing::warn!(file = %src.display(), error = %e, "saved, but could not remove the renamed file");
        } else if kind == Kind::Protected {
            super::names::forget(src_at.dir(), bname);
        }
        tracing::info!(file = %dst.display(), content_id = %pf.header().content_id().to_hex(), "saved as a new version of the document");
        self.keys.saved(pf.header(), pf.generation());
        if let Some(g) = guard.as_deref_mut() {
            *g = pf;
        }
        self.departures.forget(newparent, newname);
        Ok(true)
    }

    /// Moving a document's content into another takes it out of its own
    /// policy: allowed for its owner and for holders of `export`.
    fn may_move_out(&self, header: &FileHeader, rights: Rights, src: &Path) -> Result<(), Errno> {
        if header.licence.owner() == self.keys.me() || rights.has(Right::Export) {
            return Ok(());
        }
        tracing::warn!(
            file = %src.display(),
            owner = %header.licence.owner(),
            "refused a save: moving this document's content into another needs export on it"
        );
        Err(Errno::EACCES)
    }
}

/// After a rename a name shows the renamed file's mode, owner and times
/// (rsync and `cp -p` set them on the file they rename): the new version
/// takes them from `renamed`.
fn like_renamed(f: &File, renamed: &File) -> std::io::Result<()> {
    let md = renamed.metadata()?;
    f.set_permissions(std::fs::Permissions::from_mode(md.mode() & 0o7777))?;
    let mine = f.metadata()?;
    if (mine.uid(), mine.gid()) != (md.uid(), md.gid()) {
        // Only a daemon allowed to give files away can; otherwise the file
        // stays the mounting user's, as any file it makes.
        let _ = std::os::unix::fs::fchown(f, Some(md.uid()), Some(md.gid()));
    }
    f.set_times(
        std::fs::FileTimes::new()
            .set_accessed(md.accessed()?)
            .set_modified(md.modified()?),
    )
}

/// Copies the plaintext of `from` into `to`.
fn copy_protected(from: &ProtectedFile, to: &mut ProtectedFile) -> Result<(), FormatError> {
    copy(|buf, at| from.read_at(buf, at), to)
}

/// Protects the bytes of the plain file `from` into `to`.
fn copy_plain(from: &File, to: &mut ProtectedFile) -> Result<(), FormatError> {
    use std::os::unix::fs::FileExt;
    copy(
        |buf, at| loop {
            match from.read_at(buf, at) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                r => return r.map_err(FormatError::from),
            }
        },
        to,
    )
}

/// Writes into `to` what `read(buf, offset)` gives, from the start until it
/// gives nothing, through a buffer wiped afterwards.
fn copy(
    read: impl Fn(&mut [u8], u64) -> Result<usize, FormatError>,
    to: &mut ProtectedFile,
) -> Result<(), FormatError> {
    let mut buf = Zeroizing::new(vec![0u8; COPY_CHUNK]);
    let mut at = 0u64;
    loop {
        let n = read(&mut buf, at)?;
        if n == 0 {
            return Ok(());
        }
        to.write_at(&buf[..n], at)?;
        at += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What leaves the window (pushed out, or forgotten) waits for
    /// `tidy`, and nothing outlives it: a deleted file is freed once the
    /// request that pushed it out has been answered.
    #[test]
    fn what_leaves_the_window_waits_for_tidy_and_no_longer() {
        let d = Departures::new();
        let name = |i: usize| OsString::from(format!("f{i}"));
        for i in 0..DEPARTURES_KEPT + 3 {
            d.note(1, &name(i), Departed::Open(tempfile::tempfile().unwrap()));
        }
        let leaving = || d.leaving.lock().unwrap().len();
        assert_eq!(leaving(), 3);
        assert!(d.take(1, &name(0)).is_none(), "pushed out of the window");
        assert!(d.take(1, &name(DEPARTURES_KEPT + 2)).is_some());
        d.forget(1, &name(5));
        assert_eq!(leaving(), 4);
        d.tidy();
        assert_eq!(leaving(), 0);
    }
}
