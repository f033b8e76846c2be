//! Protected files the server was asked to mail, kept for a while so that
//! the link in the mail opens the file in the web viewer. Only the
//! protected bytes are kept (the server cannot read them), one file per
//! content id in `<data-dir>/sent/`, with a small JSON sidecar giving the
//! name and the expiry. Revoking a file deletes its copy.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::policy::{Timestamp, now};

/// Where and for how long sent files are kept.
pub struct SentFiles {
    /// The folder (created at start; mode 0700).
    dir: PathBuf,
    /// Seconds a sent file is kept; 0 keeps none (mails still carry the file).
    pub retention: i64,
    /// Largest file accepted for sending.
    pub max_bytes: usize,
}

/// What is known of a kept file besides its bytes.
#[derive(Serialize, Deserialize)]
pub struct SentMeta {
    /// The file name as sent (`NAME.rights`).
    pub name: String,
    /// When it is deleted.
    pub expires_at: Timestamp,
}

impl SentFiles {
    /// Default retention: 30 days.
    pub const DEFAULT_RETENTION_DAYS: i64 = 30;
    /// Default size limit: 25 MiB, what common mail relays accept.
    pub const DEFAULT_MAX_BYTES: usize = 25 * 1024 * 1024;

    /// Opens (creating) the folder.
    pub fn open(dir: PathBuf, retention_days: i64, max_bytes: usize) -> anyhow::Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
        Ok(Self {
            dir,
            retention: retention_days.max(0) * 86_400,
            max_bytes,
        })
    }

    fn paths(&self, id_hex: &str) -> (PathBuf, PathBuf) {
        (
            self.dir.join(format!("{id_hex}.rights")),
            self.dir.join(format!("{id_hex}.json")),
        )
    }

    /// Keeps `bytes` for the retention period (replacing an earlier copy);
    /// returns the expiry, or None when nothing is kept.
    pub async fn keep(&self, id_hex: &str, name: &str, bytes: &[u8]) -> std::io::Result<Option<Timestamp>> {
        self.sweep().await;
        if self.retention == 0 {
            return Ok(None);
        }
        let expires_at = now() + self.retention;
        let (file, meta) = self.paths(id_hex);
        let json = serde_json::to_vec(&SentMeta {
            name: name.to_string(),
            expires_at,
        })
        .map_err(std::io::Error::other)?;
        write_new(&file, bytes).await?;
        write_new(&meta, &json).await?;
        Ok(Some(expires_at))
    }

    /// The kept file and its metadata, if still within its retention.
    pub async fn get(&self, id_hex: &str) -> std::io::Result<Option<(SentMeta, Vec<u8>)>> {
        let (file, meta) = self.paths(id_hex);
        let m: SentMeta = match tokio::fs::read(&meta).await {
            Ok(b) => serde_json::from_slice(&b).map_err(std::io::Error::other)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if m.expires_at <= now() {
            self.forget(id_hex).await;
            return Ok(None);
        }
        match tokio::fs::read(&file).await {
            Ok(bytes) => Ok(Some((m, bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes the kept copy (on revocation and expiry).
    pub async fn forget(&self, id_hex: &str) {
        let (file, meta) = self.paths(id_hex);
        let _ = tokio::fs::remove_file(file).await;
        let _ = tokio::fs::remove_file(meta).await;
    }

    /// Deletes every expired copy.
    async fn sweep(&self) {
        let Ok(mut dir) = tokio::fs::read_dir(&self.dir).await else {
            return;
        };
        while let Ok(Some(entry)) = dir.next_entry().await {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(id) = name.strip_suffix(".json") else { continue };
            let expired = match tokio::fs::read(entry.path()).await {
                Ok(b) => serde_json::from_slice::<SentMeta>(&b).map_or(true, |m| m.expires_at <= now()),
                Err(_) => false,
            };
            if expired {
                self.forget(id).await;
            }
        }
    }
}

/// Writes through a temporary name then renames, so a reader never sees
/// half a file; mode 0600.
async fn write_new(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let tmp = path.with_extension(format!("tmp-{}", hex::encode(crate::crypto::random_array::<6>())));
    let mut f = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .await?;
    f.write_all(bytes).await?;
    f.sync_data().await?;
    drop(f);
    tokio::fs::rename(&tmp, path).await
}
