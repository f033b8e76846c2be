//! Space of the source file system, as `statfs` reports it.

use std::os::unix::ffi::OsStrExt;

use fuser::Errno;

use super::state::{RightsFs, io};

impl RightsFs {
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
}
