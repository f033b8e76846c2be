//! The file store's system calls beyond plain reads and writes: reading a
//! header from a file, `pread` to the end, and reserving space. Here so the
//! codec (`format::header` and friends) stays free of file descriptors.

use std::fs::File;
use std::os::unix::fs::FileExt;

use crate::format::FormatError;
use crate::format::header::{FileHeader, MAC_LEN, PREFIX_LEN, check_prefix};

/// Reads and parses the header of `file` without a key: enough to show the
/// owner, policy and plaintext size of a file one cannot open.
pub fn read_header(file: &File) -> Result<FileHeader, FormatError> {
    let mut prefix = [0u8; PREFIX_LEN as usize];
    let got = read_up_to(file, &mut prefix, 0)?;
    let n = check_prefix(&prefix[..got])?;
    let mut bytes = vec![0u8; (PREFIX_LEN + n + MAC_LEN) as usize];
    if read_up_to(file, &mut bytes, 0)? < bytes.len() {
        return Err(FormatError::HeaderTruncated);
    }
    FileHeader::parse(bytes)
}

/// `pread` until `buf` is full or end of file; returns bytes read.
pub(crate) fn read_up_to(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(k) => done += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Reserves disk space for a write (`fallocate` with `KEEP_SIZE`), so that a
/// full disk fails the write before any byte of it lands and no block is
/// left half-written. Filesystems without `fallocate` skip the reservation.
pub(super) fn reserve(file: &File, offset: u64, len: u64) -> std::io::Result<()> {
    if i64::try_from(offset).is_err() || i64::try_from(len).is_err() {
        return Err(std::io::Error::from_raw_os_error(libc::EFBIG));
    }
    match rustix::fs::fallocate(file, rustix::fs::FallocateFlags::KEEP_SIZE, offset, len) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::NOSYS) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
