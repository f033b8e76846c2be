//! The file a command is about, given as a path, as a file name this
//! device knows (`q3-report.odt` or `q3-report.odt.rights`), or as a
//! content id: what `info`, `share`, `unshare`, `revoke` and `track` take.

use std::path::{Path, PathBuf};

use anyhow::bail;

use super::ctx::Ctx;
use super::files::open_protected;
use crate::client::{Index, IndexEntry};
use crate::format::FileHeader;
use crate::policy::{ContentId, Email};

/// A protected file, known by its content id, with its file when it is
/// on this device.
pub struct Target {
    /// The content.
    pub id: ContentId,
    /// The file, when it is here.
    pub path: Option<PathBuf>,
    /// The file's header, when it is here.
    pub header: Option<FileHeader>,
    /// What the index knows (name, owner), if anything.
    pub known: Option<IndexEntry>,
}

impl Target {
    /// Finds what `arg` names: an existing path first, then a content id,
    /// then a file name from the index. Any file read is (re)indexed.
    pub fn resolve(ctx: &Ctx, arg: &Path) -> anyhow::Result<Self> {
        let index = Index::new(&ctx.paths);
        if arg.exists() {
            let (_, h) = open_protected(arg)?;
            let id = h.content_id();
            note(&index, &id, arg, &h);
            return Ok(Self {
                id,
                path: Some(arg.to_path_buf()),
                header: Some(h),
                known: index.get(&id),
            });
        }
        let text = arg.to_string_lossy();
        if let Ok(id) = ContentId::from_hex(&text) {
            return Ok(Self::from_index(id, index.get(&id)));
        }
        let mut named = index.named(&text);
        match named.len() {
            0 => bail!(
                "{} does not exist, and no protected file called {text} is known here \
                 (`rights list` shows them; a content id works too)",
                arg.display()
            ),
            1 => {
                let e = named.remove(0);
                let id = ContentId::from_hex(&e.content_id)?;
                Ok(Self::from_index(id, Some(e)))
            }
            _ => {
                let places: Vec<String> = named
                    .iter()
                    .map(|e| format!("{} ({})", e.path.display(), e.content_id))
                    .collect();
                bail!(
                    "several protected files are called {text}: {}; give a path or a content id",
                    places.join(", ")
                )
            }
        }
    }

    /// The target for `id`, with its indexed file if it is still there
    /// and still holds that content.
    fn from_index(id: ContentId, known: Option<IndexEntry>) -> Self {
        let file = known.as_ref().and_then(|e| {
            let (_, h) = open_protected(&e.path).ok()?;
            (h.content_id() == id).then(|| (e.path.clone(), h))
        });
        let (path, header) = file.unzip();
        Self {
            id,
            path,
            header,
            known,
        }
    }

    /// The header, or why it is needed and how to give it.
    pub fn header(&self) -> anyhow::Result<&FileHeader> {
        match (&self.header, &self.known) {
            (Some(h), _) => Ok(h),
            (None, Some(e)) => bail!(
                "the file of content {} is no longer at {}; give its new path",
                self.id,
                e.path.display()
            ),
            (None, None) => bail!("no file of content {} is known here; give its path", self.id),
        }
    }

    /// The owner the file (or the index) names, if known.
    pub fn owner(&self) -> Option<Email> {
        match (&self.header, &self.known) {
            (Some(h), _) => Some(h.licence.policy.owner.clone()),
            (None, Some(e)) => e.owner.parse().ok(),
            (None, None) => None,
        }
    }

    /// The file's name, for messages and invitations.
    pub fn name(&self) -> Option<String> {
        self.path
            .as_ref()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .or_else(|| self.known.as_ref().map(|e| e.name.clone()))
    }

    /// How to name it to the user: the path, else the name, else the id.
    pub fn shown(&self) -> String {
        match (&self.path, self.name()) {
            (Some(p), _) => p.display().to_string(),
            (None, Some(n)) => n,
            (None, None) => self.id.to_hex(),
        }
    }
}

/// Indexes a file a command read (best effort: the index only helps).
/// Whether it was protected here is recorded by `protect` alone.
pub fn note(index: &Index, id: &ContentId, path: &Path, h: &FileHeader) {
    if let Err(e) = index.note(id, path, &h.licence.policy.owner, false) {
        tracing::debug!(error = %e, "could not index {}", path.display());
    }
}
