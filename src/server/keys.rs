//! The server's long-term secrets: X25519 (content keys are wrapped to it),
//! Ed25519 (signs use licences) and the HMAC secret for one-time codes.
//! Made on first start in one file of mode 0600, reused afterwards.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use zeroize::Zeroizing;

use crate::crypto::{ServerKemSecret, ServerSigningKey, random_array, sha256};

const KEY_FILE: &str = "server-keys.bin";
const MAGIC: &[u8; 8] = b"RFSKEY01";

/// The loaded key set.
pub struct ServerKeys {
    /// Unwraps content keys from publishing licences.
    pub kem: ServerKemSecret,
    /// Signs use licences.
    pub signing: ServerSigningKey,
    /// Keys the hashes of one-time codes.
    pub code_secret: Zeroizing<[u8; 32]>,
}

impl ServerKeys {
    /// Loads the key file in `dir`, creating it on first start.
    pub fn load_or_create(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(KEY_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let bytes = Zeroizing::new(bytes);
                if bytes.len() != 8 + 96 || &bytes[..8] != MAGIC {
                    anyhow::bail!(
                        "{} is not a rights-server key file; restore it from backup",
                        path.display()
                    );
                }
                let part = |i: usize| {
                    let mut a = [0u8; 32];
                    a.copy_from_slice(&bytes[8 + 32 * i..8 + 32 * (i + 1)]);
                    a
                };
                Ok(Self {
                    kem: ServerKemSecret::from_bytes(part(0)),
                    signing: ServerSigningKey::from_bytes(part(1)),
                    code_secret: Zeroizing::new(part(2)),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let keys = Self {
                    kem: ServerKemSecret::generate(),
                    signing: ServerSigningKey::generate(),
                    code_secret: Zeroizing::new(random_array()),
                };
                let mut out = Zeroizing::new(Vec::with_capacity(104));
                out.extend_from_slice(MAGIC);
                out.extend_from_slice(keys.kem.to_bytes().as_ref());
                out.extend_from_slice(keys.signing.to_bytes().as_ref());
                out.extend_from_slice(keys.code_secret.as_ref());
                let tmp = dir.join(format!("{KEY_FILE}.tmp"));
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&tmp)?;
                f.write_all(&out)?;
                f.sync_all()?;
                // Link instead of rename: a replica starting at the same moment keeps the first file.
                match std::fs::hard_link(&tmp, &path) {
                    Ok(()) => {
                        std::fs::remove_file(&tmp)?;
                        tracing::info!(path = %path.display(), "created server keys");
                        Ok(keys)
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        std::fs::remove_file(&tmp)?;
                        Self::load_or_create(dir)
                    }
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
        }
    }

    /// A short stable id of the public keys.
    pub fn server_id(&self) -> String {
        let d = sha256(&[self.kem.public().0.as_slice(), &self.signing.verifying_key().0].concat());
        hex::encode(&d[..8])
    }
}
