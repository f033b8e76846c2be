//! Space of the source file system, as `statfs` reports it.

use fuser::Errno;
use rustix::fs::StatVfs;

use super::state::RightsFs;

impl RightsFs {
    /// Space of the source filesystem.
    pub(super) fn statfs(&self) -> Result<StatVfs, Errno> {
        let root = self.table().root().to_path_buf();
        rustix::fs::statvfs(&root).map_err(|e| Errno::from(std::io::Error::from(e)))
    }
}
