//! The FUSE callbacks: unpack the request, call the matching method of
//! [`RightsFs`], reply. Nothing here blocks on the network except through
//! [`super::KeySource`], whose calls are bounded.

use std::ffi::OsStr;
use std::path::Path;
use std::time::{Duration, SystemTime};

use fuser::{
    AccessFlags, Errno, FileHandle, Filesystem, FopenFlags, Generation, INodeNo, InitFlags, IoctlFlags, KernelConfig,
    LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus,
    ReplyEmpty, ReplyEntry, ReplyIoctl, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};

use super::ownership::Creation;
use super::perm::Caller;
use super::state::{RightsFs, TTL};

const GEN: Generation = Generation(0);

/// The number of an entry listed without attributes (see `readdirplus`):
/// never an inode's, as spare numbers count up from far below it.
const NO_INODE: u64 = u64::MAX;

/// Attributes for a `readdirplus` entry the kernel must not link to an
/// inode: for `.` and `..` (which it never links), and, with a size it
/// refuses as invalid, for an entry that could not be looked up.
fn unlinked_attr(ino: u64, kind: fuser::FileType) -> fuser::FileAttr {
    fuser::FileAttr {
        ino: INodeNo(ino),
        size: u64::MAX,
        blocks: 0,
        atime: SystemTime::UNIX_EPOCH,
        mtime: SystemTime::UNIX_EPOCH,
        ctime: SystemTime::UNIX_EPOCH,
        crtime: SystemTime::UNIX_EPOCH,
        kind,
        perm: 0,
        nlink: 1,
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

/// The process a request comes from.
fn caller(req: &Request) -> Caller {
    Caller {
        uid: req.uid(),
        gid: req.gid(),
    }
}

fn keep(k: bool) -> FopenFlags {
    if k {
        FopenFlags::FOPEN_KEEP_CACHE
    } else {
        FopenFlags::empty()
    }
}

/// Each callback holds a turn of the busy poll (`linger.rs`) while it
/// works. Requests that only look up names and attributes (lookup,
/// getattr, open, readdir, access...) poll after answering: a program
/// walking a tree sends the next at once. The others end quietly. Those
/// that change something start work in the background (journal commits,
/// registrations, new files' keys made ahead) that wants the CPU a poller
/// would hold, and the kernel follows several with a request nobody waits
/// for (a release after a flush, a forget after an unlink). Reads too:
/// the page cache answers many of the reads that follow one, so the next
/// request often comes after the window, which the poller would spend
/// whole (random 4 KiB reads: median latency 24-25 µs polling, 14-16 µs
/// not).
impl Filesystem for RightsFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // Directory operations in parallel; no kernel-side locking flags
        // requested, so flock/fcntl locks stay local to the kernel (what
        // SQLite, LibreOffice and git need).
        let _ = config.add_capabilities(InitFlags::FUSE_PARALLEL_DIROPS);
        // Listings carry every entry's attributes (`readdirplus` below):
        // a walk then asks no lookup per file. Always, not only when the
        // kernel guesses attributes will be wanted (`READDIRPLUS_AUTO`):
        // `find`, `du` and `ls -l` list a folder before they `stat` it.
        let _ = config.add_capabilities(InitFlags::FUSE_DO_READDIRPLUS);
        let _ = config.set_max_background(64);
        let _ = config.set_congestion_threshold(48);
        Ok(())
    }

    fn destroy(&mut self) {
        self.flush_all();
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let _turn = self.linger.enter();
        match RightsFs::lookup(self, parent.0, name) {
            Ok(attr) => reply.entry(&TTL, &attr, GEN),
            Err(e) => reply.error(e),
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        // fuser calls this once per inode of a batch: a poll here would
        // follow every inode.
        let _turn = self.linger.enter_quiet();
        RightsFs::forget(self, ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let _turn = self.linger.enter();
        match RightsFs::getattr(self, ino.0) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let _turn = self.linger.enter_quiet();
        match RightsFs::setattr(self, ino.0, fh.map(|f| f.0), mode, uid, gid, size, atime, mtime) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let _turn = self.linger.enter();
        match RightsFs::readlink(self, ino.0) {
            Ok(t) => reply.data(&t),
            Err(e) => reply.error(e),
        }
    }

    fn mknod(&self, req: &Request, parent: INodeNo, name: &OsStr, mode: u32, umask: u32, rdev: u32, reply: ReplyEntry) {
        let _turn = self.linger.enter_quiet();
        let who = Creation::new(caller(req), mode, umask);
        match RightsFs::mknod(self, parent.0, name, mode, rdev, &who) {
            Ok(attr) => reply.entry(&TTL, &attr, GEN),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(&self, req: &Request, parent: INodeNo, name: &OsStr, mode: u32, umask: u32, reply: ReplyEntry) {
        let _turn = self.linger.enter_quiet();
        match RightsFs::mkdir(self, parent.0, name, &Creation::new(caller(req), mode, umask)) {
            Ok(attr) => reply.entry(&TTL, &attr, GEN),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let _turn = self.linger.enter_quiet();
        match RightsFs::unlink(self, parent.0, name) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
        self.departures.tidy();
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let _turn = self.linger.enter_quiet();
        match RightsFs::rmdir(self, parent.0, name) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn symlink(&self, req: &Request, parent: INodeNo, link_name: &OsStr, target: &Path, reply: ReplyEntry) {
        let _turn = self.linger.enter_quiet();
        let who = Creation::new(caller(req), 0o777, 0);
        match RightsFs::symlink(self, parent.0, link_name, target, &who) {
            Ok(attr) => reply.entry(&TTL, &attr, GEN),
            Err(e) => reply.error(e),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let _turn = self.linger.enter_quiet();
        match RightsFs::rename(self, parent.0, name, newparent.0, newname, flags.bits()) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
        self.departures.tidy();
    }

    fn link(&self, _req: &Request, ino: INodeNo, newparent: INodeNo, newname: &OsStr, reply: ReplyEntry) {
        let _turn = self.linger.enter_quiet();
        match RightsFs::link(self, ino.0, newparent.0, newname) {
            Ok(attr) => reply.entry(&TTL, &attr, GEN),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let _turn = self.linger.enter();
        match RightsFs::open(self, ino.0, flags.0) {
            Ok((fh, k)) => reply.opened(FileHandle(fh), keep(k)),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let _turn = self.linger.enter_quiet();
        match RightsFs::read(self, fh.0, offset, size) {
            Ok(d) => reply.data(&d),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let _turn = self.linger.enter_quiet();
        match RightsFs::write(self, fh.0, offset, data) {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(e),
        }
    }

    fn flush(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _lock_owner: LockOwner, reply: ReplyEmpty) {
        let _turn = self.linger.enter_quiet();
        match RightsFs::flush(self, fh.0) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let _turn = self.linger.enter_quiet();
        RightsFs::release(self, fh.0, || reply.ok());
    }

    fn fsync(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, datasync: bool, reply: ReplyEmpty) {
        let _turn = self.linger.enter_quiet();
        match RightsFs::fsync(self, fh.0, datasync) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let _turn = self.linger.enter();
        match RightsFs::opendir(self, ino.0) {
            // The kernel keeps what every listing returns; `keep` says
            // whether it may answer this one from it (`listings.rs`).
            Ok((fh, keep)) => reply.opened(FileHandle(fh), FopenFlags::FOPEN_CACHE_DIR | self::keep(keep)),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let _turn = self.linger.enter();
        let listed = RightsFs::readdir(self, fh.0, offset, |e, next| {
            reply.add(INodeNo(e.ino), next, e.kind, &e.name)
        });
        match listed {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    /// A listing with each entry looked up, as `lookup` would (the kernel
    /// counts a reference to every entry it receives, except `.` and
    /// `..`): one request per page of entries instead of one per entry.
    fn readdirplus(&self, _req: &Request, ino: INodeNo, fh: FileHandle, offset: u64, mut reply: ReplyDirectoryPlus) {
        let _turn = self.linger.enter();
        // The folder is reached once per page, not once per entry; not
        // kept with the listing, which would keep a removed folder alive
        // in the source for as long as the listing is open.
        let folder = self.src_dir(ino.0);
        let listed = RightsFs::readdir(self, fh.0, offset, |e, next| {
            if e.name == "." || e.name == ".." {
                // Not linked by the kernel: any attributes do.
                return reply.add(INodeNo(e.ino), next, &e.name, &TTL, &unlinked_attr(e.ino, e.kind), GEN);
            }
            let found = match &folder {
                Ok(dir) => RightsFs::lookup_in(self, dir, ino.0, &e.name),
                Err(err) => Err(*err),
            };
            match found {
                Ok(attr) => {
                    let full = reply.add(attr.ino, next, &e.name, &TTL, &attr, GEN);
                    if full {
                        // Not sent, so not counted by the kernel.
                        self.table().forget(attr.ino.0, 1);
                    }
                    full
                }
                // Listed all the same (a plain listing shows it; looking it
                // up answers the error), with attributes the kernel refuses:
                // it links nothing and only forgets a number no inode has.
                Err(_) => {
                    let attr = unlinked_attr(NO_INODE, e.kind);
                    reply.add(INodeNo(NO_INODE), next, &e.name, &Duration::ZERO, &attr, GEN)
                }
            }
        });
        match listed {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn releasedir(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _flags: OpenFlags, reply: ReplyEmpty) {
        let _turn = self.linger.enter_quiet();
        RightsFs::releasedir(self, fh.0);
        reply.ok();
    }

    fn fsyncdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        let _turn = self.linger.enter_quiet();
        match RightsFs::fsyncdir(self, ino.0) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let _turn = self.linger.enter();
        match RightsFs::statfs(self) {
            // Names too long for the suffix get a hashed source name
            // (`names.rs`): every name the source takes fits.
            Ok(s) => reply.statfs(
                s.f_blocks,
                s.f_bfree,
                s.f_bavail,
                s.f_files,
                s.f_ffree,
                s.f_bsize as u32,
                s.f_namemax as u32,
                s.f_frsize as u32,
            ),
            Err(e) => reply.error(e),
        }
    }

    fn setxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let _turn = self.linger.enter_quiet();
        // Extended attributes would be stored in the clear beside the
        // ciphertext: refused rather than leaked.
        reply.error(Errno::EOPNOTSUPP);
    }

    fn getxattr(&self, _req: &Request, _ino: INodeNo, _name: &OsStr, _size: u32, reply: ReplyXattr) {
        let _turn = self.linger.enter();
        // ENOSYS tells the kernel, once, that this file system has no
        // extended attributes: it answers EOPNOTSUPP itself from then on.
        // Otherwise it asks for `security.capability` before every write,
        // a round trip per write(2).
        reply.error(Errno::ENOSYS);
    }

    fn ioctl(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: IoctlFlags,
        _cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: ReplyIoctl,
    ) {
        let _turn = self.linger.enter();
        // No device control here: ENOTTY, as a file of the source would
        // answer. Buffered opens ask (`isatty` is a TCGETS ioctl) for every
        // file opened, and fuser's default wrote a warning to the mount's
        // log each time.
        reply.error(Errno::ENOTTY);
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, size: u32, reply: ReplyXattr) {
        let _turn = self.linger.enter();
        if size == 0 { reply.size(0) } else { reply.data(&[]) }
    }

    fn removexattr(&self, _req: &Request, _ino: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        let _turn = self.linger.enter_quiet();
        // As for getxattr: the kernel answers EOPNOTSUPP from then on.
        reply.error(Errno::ENOSYS);
    }

    fn access(&self, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        let _turn = self.linger.enter();
        match RightsFs::access(self, ino.0, caller(req), mask.bits()) {
            Ok(_) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let _turn = self.linger.enter_quiet();
        let who = Creation::new(caller(req), mode, umask);
        match RightsFs::create(self, parent.0, name, &who, flags) {
            Ok((attr, fh)) => reply.created(&TTL, &attr, GEN, FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn copy_file_range(
        &self,
        _req: &Request,
        _ino_in: INodeNo,
        fh_in: FileHandle,
        offset_in: u64,
        _ino_out: INodeNo,
        fh_out: FileHandle,
        offset_out: u64,
        len: u64,
        flags: fuser::CopyFileRangeFlags,
        reply: ReplyWrite,
    ) {
        let _turn = self.linger.enter_quiet();
        if flags.bits() != 0 {
            return reply.error(Errno::EINVAL);
        }
        match RightsFs::copy_range(self, fh_in.0, offset_in, fh_out.0, offset_out, len) {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(e),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let _turn = self.linger.enter_quiet();
        match RightsFs::fallocate(self, fh.0, offset, length, mode) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }
}
