//! File helpers shared by the commands: reading headers with clear errors,
//! names with and without the suffix, and crash-safe replacement.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use crate::format::{FileHeader, FormatError, SUFFIX, read_header};

/// Opens `path` and reads its header, explaining what to do if it is not
/// a protected file.
pub fn open_protected(path: &Path) -> anyhow::Result<(File, FileHeader)> {
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let h = read_header(&f).map_err(|e| match e {
        FormatError::NotProtected | FormatError::Empty => {
            anyhow::anyhow!(
                "{} is not a protected file (protect it with `rights protect`)",
                path.display()
            )
        }
        other => anyhow::anyhow!("{} is damaged or not a protected file: {other}", path.display()),
    })?;
    Ok((f, h))
}

/// Whether `path` starts with the protected-file magic.
pub fn is_protected(path: &Path) -> bool {
    let Ok(f) = File::open(path) else { return false };
    !matches!(
        read_header(&f),
        Err(FormatError::NotProtected | FormatError::Empty | FormatError::Io(_))
    )
}

/// `NAME.rights` for `NAME`.
pub fn protected_name(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(SUFFIX);
    PathBuf::from(s)
}

/// `NAME` for `NAME.rights`.
pub fn plain_name(path: &Path) -> anyhow::Result<PathBuf> {
    let s = path.to_string_lossy();
    match s.strip_suffix(SUFFIX) {
        Some(p) if !p.is_empty() && !p.ends_with('/') => Ok(PathBuf::from(p)),
        _ => bail!(
            "{} does not end in {SUFFIX}; rename it to NAME{SUFFIX} first",
            path.display()
        ),
    }
}

/// The folder holding `path` (for temp files and directory fsync).
pub fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A temp-file name beside `target`, recognisable as ours.
pub fn temp_for(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    parent_of(target).join(format!(".{name}.part{}", std::process::id()))
}

/// Removes temp files a killed earlier run left for `target`.
pub fn remove_stale_temps(target: &Path) {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!(".{name}.part");
    if let Ok(rd) = std::fs::read_dir(parent_of(target)) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = n.strip_prefix(&prefix)
                && pid
                    .parse::<u32>()
                    .is_ok_and(|p| !Path::new(&format!("/proc/{p}")).exists())
            {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// Moves the finished, fsynced `tmp` to `target` without ever replacing an
/// existing file (hard link then unlink), and makes it durable.
pub fn publish(tmp: &Path, target: &Path) -> anyhow::Result<()> {
    std::fs::hard_link(tmp, target).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::anyhow!("{} already exists; move it away first", target.display())
        } else {
            anyhow::anyhow!("cannot create {}: {e}", target.display())
        }
    })?;
    std::fs::remove_file(tmp)?;
    crate::client::sync_dir(&parent_of(target))?;
    Ok(())
}

/// Removes `path` durably (after its replacement is in place).
pub fn remove_durably(path: &Path) -> anyhow::Result<()> {
    std::fs::remove_file(path).with_context(|| format!("cannot remove {}", path.display()))?;
    crate::client::sync_dir(&parent_of(path))?;
    Ok(())
}
