//! The server's files are for the server's user only: the data folder
//! holds the key file, the database (sessions, the registry) and the
//! outbox (mails with live sign-in codes). Everything it creates is private
//! through the process umask; what an older version left readable to
//! others is made private at start, and the log says so.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Mode of the folders.
const DIR_MODE: u32 = 0o700;
/// Mode of the files.
const FILE_MODE: u32 = 0o600;

/// Makes every file and folder this process creates private to its user.
pub fn private_umask() {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

/// Makes the data folder, its outbox and their files private, and the
/// SQLite database at `database` (with its WAL, shared-memory and journal
/// files) wherever it lives. Symbolic links are left alone: the server's
/// own files are never links, and a mode change would follow one.
pub fn make_private(data_dir: &Path, database: Option<&Path>) -> std::io::Result<()> {
    restrict(data_dir, DIR_MODE)?;
    for name in ["server-keys.bin", "server-keys.bin.tmp"] {
        restrict(&data_dir.join(name), FILE_MODE)?;
    }
    // The outbox (code mails) and the files people sent through the server.
    for folder in ["outbox", "sent"] {
        let dir = data_dir.join(folder);
        restrict(&dir, DIR_MODE)?;
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
                restrict(&e.path(), if is_dir { DIR_MODE } else { FILE_MODE })?;
            }
        }
    }
    if let Some(db) = database {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = PathBuf::from(db).into_os_string();
            p.push(suffix);
            restrict(Path::new(&p), FILE_MODE)?;
        }
    }
    Ok(())
}

/// Removes group and other permissions from `path` if it has any.
fn restrict(path: &Path, mode: u32) -> std::io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let old = meta.permissions().mode() & 0o7777;
    if meta.file_type().is_symlink() || old & 0o077 == 0 {
        return Ok(());
    }
    let new = old & mode & 0o700;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(new))?;
    tracing::warn!(
        path = %path.display(),
        was = format!("{old:04o}"),
        now = format!("{new:04o}"),
        "made a server file private: it was readable by other users (left so by an older version or by hand)"
    );
    Ok(())
}
