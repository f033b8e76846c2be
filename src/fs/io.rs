//! Reading and writing through open handles: protected files decrypt and
//! reseal only the blocks a request touches; plain files pass through.
//! Also `fallocate` and `copy_file_range`, which write the same way.

use fuser::Errno;

use super::open::Handle;
use super::state::{RightsFs, io};
use crate::format::{ProtectedFile, Wiped};

impl RightsFs {
    /// Reads from a handle: plaintext, wiped once the answer is sent.
    pub(super) fn read(&self, fh: u64, offset: u64, size: u32) -> Result<Wiped, Errno> {
        match &*self.handle(fh)? {
            Handle::Protected { file, .. } => {
                let pf = file.read();
                if file.sequential(offset, size as u64) {
                    read_ahead(&pf, offset + size as u64);
                }
                pf.read_owned(offset, size as usize).map_err(|e| file.errno("read", e))
            }
            Handle::Plain { file, .. } => {
                let mut buf = Wiped::zeroed(size as usize);
                let done = crate::format::read_up_to(file, &mut buf, offset).map_err(io)?;
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
                let mode = rustix::fs::FallocateFlags::from_bits_retain(mode as u32);
                rustix::fs::fallocate(file, mode, offset, length).map_err(|e| io(e.into()))
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
}

/// Writes encrypted zeros over `from..to` of an open file, a megabyte at
/// a time.
pub(super) fn zero_range(pf: &mut ProtectedFile, from: u64, to: u64) -> Result<(), crate::format::FormatError> {
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

/// How far ahead of a sequential reader the source is asked to read.
pub(super) const READ_AHEAD: u64 = 4 << 20;

/// Asks the kernel to start reading the ciphertext after `from` (plaintext
/// offset) now, so that the disk works while this request is decrypted:
/// the kernel sends a FUSE daemon at most its readahead window (128 KiB)
/// per request, too little to keep a cold disk busy on its own.
pub(super) fn read_ahead(pf: &ProtectedFile, from: u64) {
    let g = pf.header().geometry;
    if from >= pf.len() {
        return;
    }
    let start = g.block_offset(from / g.block_size);
    let len = std::num::NonZeroU64::new(READ_AHEAD / g.block_size * g.stride());
    // Advice only: a failure leaves the kernel's own readahead.
    let _ = rustix::fs::fadvise(pf.file(), start, len, rustix::fs::Advice::WillNeed);
}
