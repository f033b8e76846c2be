//! Commits and durability: `close(2)` commits what a descriptor wrote,
//! `fsync(2)` makes it durable (with the registrations of new files and
//! the new names), and unmounting commits every open file.

use std::sync::Arc;

use fuser::Errno;

use super::open::{Handle, OpenFile};
use super::state::{RightsFs, io};

impl RightsFs {
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
                    let parent = self.table().get(*ino).and_then(|n| n.parent());
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

    /// Syncs the registrations of files created so far (before any
    /// protected file is synced).
    pub(super) fn sync_keys(&self) -> Result<(), Errno> {
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

    /// `fsyncdir(2)`: makes a folder's entries durable.
    pub(super) fn fsyncdir(&self, ino: u64) -> Result<(), Errno> {
        crate::durable::sync_dir(self.src_dir(ino)?.as_ref()).map_err(io)
    }
}
