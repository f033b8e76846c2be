//! Recovery at mount time: journals left by a crash are replayed into the
//! files they belong to (or discarded when their commit never completed,
//! or their file is gone), files a dead mount was changing are cut back to
//! their last commit, and every case is reported.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::names;
use super::state::RightsFs;
use crate::format::{ProtectedFile, Recovery, SUFFIX, read_header};
use crate::policy::ContentId;

/// Finds the files of leftover journals and of a dead mount's change log
/// and opens each once, which replays or discards its journal and cuts
/// what was never committed. Files whose key is not available now keep
/// what they are owed: it is done at their next open.
pub fn recover_all(fs: &RightsFs) {
    let journals = fs.journal.journals();
    let mut pending: Vec<ContentId> = fs.journal.owed();
    pending.extend(journals.iter().copied());
    if pending.is_empty() {
        return;
    }
    let root = fs.table().root().to_path_buf();
    let mut found: HashMap<ContentId, PathBuf> = HashMap::new();
    walk(&root, &root, &mut |p| {
        if let Ok(f) = OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(p)
            && let Ok(h) = read_header(&f)
            && pending.contains(&h.content_id())
        {
            found.insert(h.content_id(), p.to_path_buf());
        }
    });
    for id in pending {
        let Some(path) = found.get(&id) else {
            if journals.contains(&id) {
                tracing::warn!(content_id = %id.to_hex(), "discarding the journal of a file that no longer exists");
                let _ = fs.journal.discard_journal(&id);
                fs.reporter.recovered(
                    &format!("(deleted file {})", id.to_hex()),
                    &Recovery {
                        discarded: true,
                        ..Recovery::default()
                    },
                );
            }
            continue;
        };
        let name = path.display().to_string();
        let r = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| e.to_string())
            .and_then(|f| {
                let h = read_header(&f).map_err(|e| e.to_string())?;
                let access = fs.keys.access(&h).map_err(|e| e.to_string())?;
                ProtectedFile::open_journaled_verified(f, &access.key, &fs.journal, &fs.verifier)
                    .map_err(|e| e.to_string())
            });
        match r {
            Ok((pf, rec)) => {
                drop(pf);
                if rec.any() {
                    fs.reporter.recovered(&name, &rec);
                }
            }
            Err(e) => {
                tracing::warn!(file = %name, error = %e, "not recovered now: the file will be recovered when it is next opened")
            }
        }
    }
}

fn walk(root: &Path, dir: &Path, f: &mut dyn FnMut(&Path)) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if dir == root && names::is_hidden_at_root(&e.file_name()) {
            continue;
        }
        if ft.is_dir() {
            walk(root, &p, f);
        } else if ft.is_file() && p.as_os_str().as_encoded_bytes().ends_with(SUFFIX.as_bytes()) {
            f(&p);
        }
    }
}
