//! Folder listings: names as shown (protected files without their
//! suffix, long names through their side files, housekeeping hidden) and
//! inode numbers as `lookup` will give them, read at `opendir`, or when
//! first asked for where the kernel answers from the listing it kept
//! (`listings.rs`).

use std::sync::OnceLock;

use fuser::{Errno, FileType};

use super::beneath::SrcPath;
use super::inodes::ROOT;
use super::names;
use super::open::{DirEntry, Handle};
use super::state::{RightsFs, io};

/// The entries of an open listing.
pub struct Listing {
    folder: u64,
    parent: u64,
    entries: OnceLock<Result<Vec<DirEntry>, Errno>>,
}

impl RightsFs {
    /// Opens a listing of folder `ino`; says whether the kernel may answer
    /// it from what it kept of the last one (see `listings.rs`), in which
    /// case the folder is read only if the kernel asks after all (it kept
    /// part of it, or let it go).
    pub(super) fn opendir(&self, ino: u64) -> Result<(u64, bool), Errno> {
        let (dir, parent) = {
            let t = self.table();
            let node = t.get(ino).ok_or(Errno::ENOENT)?;
            (t.dir_path(ino)?, node.parent().unwrap_or(ROOT))
        };
        let dir = self.reach(dir)?;
        let now = dir.stat().map_err(io)?;
        let entries = OnceLock::new();
        let keep = self.listings.may_keep(ino, &now);
        if !keep {
            self.listings.listed(ino, &now);
            let _ = entries.set(self.list(&dir, ino, parent));
        }
        let listing = Listing {
            folder: ino,
            parent,
            entries,
        };
        Ok((self.add_handle(Handle::Dir(listing)), keep))
    }

    /// Reads the source folder `dir` of folder `ino` as the mount shows it.
    fn list(&self, dir: &SrcPath, ino: u64, parent: u64) -> Result<Vec<DirEntry>, Errno> {
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
        for e in std::fs::read_dir(dir).map_err(io)?.flatten() {
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
        Ok(entries)
    }

    /// `readdir`: gives `add` the entries of listing `fh` from `offset`
    /// on, each with the offset of the next, until it says the reply is full.
    pub(super) fn readdir(
        &self,
        fh: u64,
        offset: u64,
        mut add: impl FnMut(&DirEntry, u64) -> bool,
    ) -> Result<(), Errno> {
        let h = self.handle(fh)?;
        let Handle::Dir(listing) = &*h else {
            return Err(Errno::ENOTDIR);
        };
        let entries = listing
            .entries
            .get_or_init(|| {
                let dir = self.src_dir(listing.folder)?;
                self.list(&dir, listing.folder, listing.parent)
            })
            .as_ref()
            .map_err(|e| *e)?;
        for (i, e) in entries.iter().enumerate().skip(offset as usize) {
            if add(e, (i + 1) as u64) {
                break;
            }
        }
        Ok(())
    }

    /// `releasedir`: drops the listing.
    pub(super) fn releasedir(&self, fh: u64) {
        self.take_handle(fh);
    }
}
