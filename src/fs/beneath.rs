//! Paths below the source folder, reached without following links.
//!
//! Anyone who can write the source folder (a synced or shared folder) can
//! replace a folder in it by a symbolic link to somewhere else. Were the
//! daemon to resolve `SRC/sub/x.rights` by path, it would then read,
//! write, create, rename or delete files wherever the link points (another
//! of the user's folders, one the attacker reads). So every folder the
//! daemon works in is opened from the source folder's descriptor with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)`:
//! a link (or a `..` leading out) anywhere above an entry fails with
//! `ELOOP` (`EXDEV` for a way out), logged with the path, and nothing
//! happens elsewhere. The entry itself is then named from that descriptor,
//! as `/proc/self/fd/N/NAME`, so that the standard library's path-based
//! calls only resolve the last name, each as the call itself does (without
//! following a link there where it matters: `O_NOFOLLOW`, `lstat`,
//! `unlink`, `rename`). Links the user made in the mount are entries like
//! any other and stay links.
//!
//! Where `openat2` is missing (`ENOSYS`, kernels before 5.6), each folder
//! is opened in turn with `openat(O_NOFOLLOW | O_DIRECTORY)`.

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// Set once `openat2` answered `ENOSYS`: later resolutions go one folder
/// at a time straight away.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// Longest relative path resolved in one step.
const STEP: usize = 2048;

/// Flags of every folder descriptor opened here: enough to resolve names
/// from (`O_PATH` needs no read permission, as a path lookup does not).
fn dir_flags() -> OFlags {
    OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// Opens the folder `rel` (a relative path of plain names) below the folder
/// `root`, following no link on the way and never leaving `root`.
pub fn open_dir(root: BorrowedFd<'_>, rel: &Path) -> std::io::Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    if rel.as_os_str().is_empty() {
        return Ok(rustix::io::fcntl_dupfd_cloexec(root, 0)?);
    }
    // A path handed to the kernel must be shorter than `PATH_MAX`; a
    // folder deeper than that below the source folder is reached in
    // steps, each from the last one's descriptor (a name is at most 255
    // bytes, so a step always ends at a separator).
    let bytes = rel.as_os_str().as_bytes();
    if bytes.len() > STEP {
        let cut = bytes[..STEP].iter().rposition(|&b| b == b'/').unwrap_or(STEP);
        let (first, rest) = (&bytes[..cut], bytes.get(cut + 1..).unwrap_or_default());
        let fd = open_dir(root, Path::new(OsStr::from_bytes(first)))?;
        return open_dir(fd.as_fd(), Path::new(OsStr::from_bytes(rest)));
    }
    if !NO_OPENAT2.load(Ordering::Relaxed) {
        // `EAGAIN`: a rename raced the lookup; asked again, then stepwise.
        for _ in 0..3 {
            match openat2_dir(root, rel) {
                Err(Errno::NOSYS) => {
                    tracing::info!("openat2 is not available: folders are opened one at a time");
                    NO_OPENAT2.store(true, Ordering::Relaxed);
                    break;
                }
                Err(Errno::AGAIN) => continue,
                r => return r.map_err(Into::into),
            }
        }
    }
    open_dir_stepwise(root, rel)
}

fn openat2_dir(root: BorrowedFd<'_>, rel: &Path) -> Result<OwnedFd, Errno> {
    let how = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    // Without `O_NOFOLLOW`: with it, `O_PATH` would open a final link
    // itself (then `ENOTDIR`), where `RESOLVE_NO_SYMLINKS` says `ELOOP`.
    rustix::fs::openat2(root, rel, dir_flags() - OFlags::NOFOLLOW, Mode::empty(), how)
}

/// [`open_dir`] without `openat2`: one `openat(O_NOFOLLOW | O_DIRECTORY)`
/// per name; `.` and `..` are refused (`EXDEV`), a link is `ELOOP`.
pub(super) fn open_dir_stepwise(root: BorrowedFd<'_>, rel: &Path) -> std::io::Result<OwnedFd> {
    let mut cur: Option<OwnedFd> = None;
    for c in rel.components() {
        let Component::Normal(name) = c else {
            return Err(Errno::XDEV.into());
        };
        let at = cur.as_ref().map_or(root, |f| f.as_fd());
        let next = match rustix::fs::openat(at, name, dir_flags(), Mode::empty()) {
            // `O_PATH | O_NOFOLLOW` opens a link itself, which then is no
            // folder: say what it is.
            Err(Errno::NOTDIR) if is_link(at, name) => Err(Errno::LOOP),
            r => r,
        }?;
        cur = Some(next);
    }
    match cur {
        Some(fd) => Ok(fd),
        None => Ok(rustix::io::fcntl_dupfd_cloexec(root, 0)?),
    }
}

fn is_link(at: BorrowedFd<'_>, name: &OsStr) -> bool {
    rustix::fs::statat(at, name, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink)
}

/// A folder descriptor a [`SrcPath`] names its entry from.
enum DirFd {
    /// The source folder itself, held by the mount.
    Root(Arc<OwnedFd>),
    /// A folder below it, opened for this path.
    Below(OwnedFd),
}

impl DirFd {
    fn raw(&self) -> i32 {
        self.as_fd().as_raw_fd()
    }
}

impl AsFd for DirFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Self::Root(fd) => fd.as_fd(),
            Self::Below(fd) => fd.as_fd(),
        }
    }
}

/// An entry of the source folder (or a folder itself), reached through a
/// descriptor of the folder holding it, which this keeps open: as a path
/// ([`AsRef<Path>`]) it is `/proc/self/fd/N/NAME`, so a call given it
/// resolves nothing but `NAME`. [`display`](Self::display) and
/// [`shown`](Self::shown) give the path as the user knows it, for log
/// lines and policy files.
pub struct SrcPath {
    at: PathBuf,
    /// `at` ends with the entry's name (not a folder's own path).
    named: bool,
    shown: PathBuf,
    folder: DirFd,
}

impl SrcPath {
    /// The entry `name` (or, without one, the folder itself) of the folder
    /// `rel` below the source folder `root`, whose own path is the start of
    /// `shown` (the whole path, for log lines).
    pub fn open(root: &Arc<OwnedFd>, rel: &Path, name: Option<&OsStr>, shown: PathBuf) -> std::io::Result<Self> {
        let dir = if rel.as_os_str().is_empty() {
            DirFd::Root(root.clone())
        } else {
            match open_dir(root.as_fd(), rel) {
                Ok(fd) => DirFd::Below(fd),
                Err(e) => {
                    if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::EXDEV)) {
                        tracing::error!(
                            folder = %shown.display(),
                            "a folder above this entry in the source is a symbolic link (or leads out of the source folder): not followed"
                        );
                    }
                    return Err(e);
                }
            }
        };
        let mut at = PathBuf::with_capacity(32 + name.map_or(0, |n| n.len()));
        at.push(format!("/proc/self/fd/{}", dir.raw()));
        // A folder's own path ends with `.`: `/proc/self/fd/N` alone is a
        // link, which `lstat` would describe instead of the folder.
        at.push(name.unwrap_or(OsStr::new(".")));
        Ok(Self {
            at,
            named: name.is_some(),
            shown,
            folder: dir,
        })
    }

    /// A second handle on the same entry (a second descriptor of its
    /// folder), for keeping beyond this one.
    pub fn try_clone(&self) -> std::io::Result<Self> {
        let fd = rustix::io::fcntl_dupfd_cloexec(self.folder.as_fd(), 0)?;
        let mut at = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
        at.push(self.at.file_name().filter(|_| self.named).unwrap_or(OsStr::new(".")));
        Ok(Self {
            at,
            named: self.named,
            shown: self.shown.clone(),
            folder: DirFd::Below(fd),
        })
    }

    /// The entry's status (not following a link), asked of its folder's
    /// descriptor (see `stat.rs` for why not by path).
    pub fn stat(&self) -> std::io::Result<super::stat::Stat> {
        let name = self.at.file_name().filter(|_| self.named).unwrap_or(OsStr::new("."));
        super::stat::Stat::at(&self.folder, name)
    }

    /// The status of `name` in this folder (a folder's own path).
    pub fn stat_child(&self, name: &OsStr) -> std::io::Result<super::stat::Stat> {
        super::stat::Stat::at(&self.folder, name)
    }

    /// The path as the user knows it (for log lines).
    pub fn display(&self) -> std::path::Display<'_> {
        self.shown.display()
    }

    /// The path as the user knows it: for policy files, which are looked
    /// up and signed by folder path.
    pub fn shown(&self) -> &Path {
        &self.shown
    }

    /// The folder holding the entry (or the folder itself, for a folder's
    /// own path), as a path resolved from its descriptor.
    pub fn dir(&self) -> &Path {
        // Both end with one name (`.` for the folder's own path); not
        // `Path::parent`, which skips a final `.`.
        use std::os::unix::ffi::OsStrExt;
        let b = self.at.as_os_str().as_bytes();
        let cut = b.iter().rposition(|&c| c == b'/').unwrap_or(b.len());
        Path::new(OsStr::from_bytes(&b[..cut]))
    }

    /// `name` in this folder (a folder's own path, made without a name),
    /// valid while `self` is.
    pub fn child(&self, name: &OsStr) -> PathBuf {
        self.dir().join(name)
    }
}

impl AsRef<Path> for SrcPath {
    fn as_ref(&self) -> &Path {
        &self.at
    }
}

impl std::fmt::Debug for SrcPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.shown.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_of(p: &Path) -> Arc<OwnedFd> {
        Arc::new(std::fs::File::open(p).unwrap().into())
    }

    /// Both ways of resolving refuse a link or `..` anywhere above the
    /// entry, and reach real folders.
    #[test]
    fn links_and_dotdot_above_an_entry_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        let outside = t.path().join("outside");
        std::fs::create_dir_all(src.join("a/b")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, src.join("a/abs")).unwrap();
        std::os::unix::fs::symlink("../../outside", src.join("a/rel")).unwrap();
        std::os::unix::fs::symlink("b", src.join("a/inside")).unwrap();
        let root = root_of(&src);
        let stepwise = |rel: &str| open_dir_stepwise(root.as_fd(), Path::new(rel));
        let openat2 = |rel: &str| open_dir(root.as_fd(), Path::new(rel));
        for open in [&stepwise as &dyn Fn(&str) -> std::io::Result<OwnedFd>, &openat2] {
            assert!(open("a/b").is_ok());
            for link in ["a/abs", "a/rel", "a/inside", "a/abs/x", "a/inside/."] {
                let e = open(link).unwrap_err();
                assert_eq!(e.raw_os_error(), Some(libc::ELOOP), "{link}");
            }
            for out in ["..", "a/../..", "a/b/../../../outside"] {
                let e = open(out).unwrap_err();
                assert_eq!(e.raw_os_error(), Some(libc::EXDEV), "{out}");
            }
        }
        let p = SrcPath::open(&root, Path::new("a/abs"), Some(OsStr::new("x")), src.join("a/abs/x"));
        assert_eq!(p.unwrap_err().raw_os_error(), Some(libc::ELOOP));
        let p = SrcPath::open(&root, Path::new("a/b"), Some(OsStr::new("x")), src.join("a/b/x")).unwrap();
        std::fs::write(&p, b"here").unwrap();
        assert_eq!(std::fs::read(src.join("a/b/x")).unwrap(), b"here");
        assert_eq!(p.display().to_string(), src.join("a/b/x").display().to_string());
        assert!(std::fs::read_dir(&outside).unwrap().next().is_none());
        // A folder's own path describes the folder, not a link to it.
        for rel in ["", "a/b"] {
            let d = SrcPath::open(&root, Path::new(rel), None, src.join(rel)).unwrap();
            assert!(std::fs::symlink_metadata(&d).unwrap().is_dir(), "{rel:?}");
            assert!(std::fs::symlink_metadata(d.child(OsStr::new("a"))).is_ok() == rel.is_empty());
            let again = d.try_clone().unwrap();
            drop(d);
            assert!(std::fs::symlink_metadata(&again).unwrap().is_dir());
        }
    }
}
