//! Secret storage: this device's RSA private key and the refresh token.
//!
//! The OS keyring is the default. Hosts without a working keyring use a
//! passphrase-sealed 0600 file, but only when asked to (`keystore = "file"`
//! or `--keystore file`): a keyring failure never silently falls back.

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use super::config::KeystoreKind;
use super::{ClientError, Paths};
use crate::crypto::{open_with_passphrase, seal_with_passphrase, sha256};

/// Name of the device private key (PKCS#8 DER).
pub const DEVICE_KEY: &str = "device-key";
/// Name of the refresh token.
pub const REFRESH_TOKEN: &str = "refresh-token";
/// Name of the current access token (`EXPIRES TOKEN`), shared by this
/// user's processes until it expires.
pub const ACCESS_TOKEN: &str = "access-token";
const NAMES: [&str; 3] = [DEVICE_KEY, REFRESH_TOKEN, ACCESS_TOKEN];
const SERVICE: &str = "rightsfs";

/// A place to keep this device's secrets.
pub struct Keystore {
    kind: KeystoreKind,
    paths: Paths,
    /// Distinguishes users on one uid: derived from the config folder.
    scope: String,
    passphrase: std::sync::Mutex<Option<Zeroizing<String>>>,
}

fn keyring_hint(e: impl std::fmt::Display) -> ClientError {
    ClientError::Keystore(format!(
        "the OS keyring is not usable ({e}); on a headless machine run with `--keystore file` \
         (or set keystore = \"file\" in config.toml) to keep secrets in a passphrase-sealed file"
    ))
}

impl Keystore {
    /// A keystore of `kind` for the user whose folders are `paths`.
    pub fn new(kind: KeystoreKind, paths: &Paths) -> Self {
        let scope = hex::encode(&sha256(paths.config_dir.to_string_lossy().as_bytes())[..8]);
        Self {
            kind,
            paths: paths.clone(),
            scope,
            passphrase: std::sync::Mutex::new(None),
        }
    }

    /// The folders of the user this keystore serves.
    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// Uses `passphrase` for the credential file instead of asking for it.
    pub fn with_passphrase(self, passphrase: &str) -> Self {
        *self.passphrase.lock().unwrap_or_else(|p| p.into_inner()) = Some(Zeroizing::new(passphrase.to_string()));
        self
    }

    /// Takes the passphrase from `RIGHTS_PASSPHRASE` now, if set, and
    /// wipes it from the process environment: the mount daemon lives long,
    /// and its environment is readable (`/proc/PID/environ`) by anything
    /// running as the user. Call before any other thread exists.
    pub fn take_passphrase_from_env(&self) {
        const VAR: &std::ffi::CStr = c"RIGHTS_PASSPHRASE";
        if let Ok(p) = std::env::var(VAR.to_str().unwrap_or_default())
            && !p.is_empty()
        {
            *self.passphrase.lock().unwrap_or_else(|p| p.into_inner()) = Some(Zeroizing::new(p));
        }
        // SAFETY: single-threaded (see above). `getenv` points at the value
        // of the `NAME=value` string in the environment block the kernel
        // shows in /proc/PID/environ; the whole string is overwritten there
        // before the variable is unset.
        unsafe {
            let v = libc::getenv(VAR.as_ptr());
            if !v.is_null() {
                let name = VAR.to_bytes().len() + 1;
                std::ptr::write_bytes(v.sub(name), 0, name + libc::strlen(v));
            }
            libc::unsetenv(VAR.as_ptr());
        }
    }

    fn entry(&self, name: &str) -> Result<keyring::Entry, ClientError> {
        keyring::Entry::new(SERVICE, &format!("{}:{name}", self.scope)).map_err(keyring_hint)
    }

    fn passphrase(&self) -> Result<Zeroizing<String>, ClientError> {
        let mut g = self.passphrase.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = g.as_ref() {
            return Ok(p.clone());
        }
        let p = match std::env::var("RIGHTS_PASSPHRASE") {
            Ok(p) => Zeroizing::new(p),
            Err(_) => {
                let ask = |prompt: &str| {
                    rpassword::prompt_password(prompt).map(Zeroizing::new).map_err(|e| {
                        ClientError::Keystore(format!("cannot read the passphrase ({e}); set RIGHTS_PASSPHRASE"))
                    })
                };
                let p = ask("Passphrase for the rightsfs credential file: ")?;
                if !self.paths.credential_file().exists() && *ask("Repeat the passphrase: ")? != *p {
                    return Err(ClientError::Keystore(
                        "the passphrases differ; nothing was stored".into(),
                    ));
                }
                p
            }
        };
        if p.is_empty() {
            return Err(ClientError::Keystore("the passphrase is empty".into()));
        }
        *g = Some(p.clone());
        Ok(p)
    }

    fn read_file(&self) -> Result<BTreeMap<String, Zeroizing<Vec<u8>>>, ClientError> {
        let sealed = match std::fs::read(self.paths.credential_file()) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => return Err(e.into()),
        };
        let plain = open_with_passphrase(self.passphrase()?.as_bytes(), &sealed).map_err(|_| {
            ClientError::Keystore("wrong passphrase for the credential file (or the file is damaged)".into())
        })?;
        let map: BTreeMap<String, Vec<u8>> = postcard::from_bytes(&plain)
            .map_err(|_| ClientError::Keystore("the credential file does not decode".into()))?;
        Ok(map.into_iter().map(|(k, v)| (k, Zeroizing::new(v))).collect())
    }

    fn write_file(&self, map: &BTreeMap<String, Zeroizing<Vec<u8>>>) -> Result<(), ClientError> {
        let plain: BTreeMap<&str, &[u8]> = map.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
        let enc = Zeroizing::new(postcard::to_stdvec(&plain).expect("maps of bytes always encode"));
        let sealed = seal_with_passphrase(self.passphrase()?.as_bytes(), &enc)
            .map_err(|e| ClientError::Keystore(e.to_string()))?;
        crate::durable::write_private_atomic(&self.paths.credential_file(), &sealed)?;
        Ok(())
    }

    /// Checks that secrets can be stored and read back here, asking for
    /// the file's passphrase now if needed: a sign-in calls it before a
    /// code is mailed, so a keystore that cannot keep the device's keys
    /// never costs a code or leaves a device on the server.
    pub fn check_usable(&self) -> Result<(), ClientError> {
        match self.kind {
            KeystoreKind::Keyring => {
                let probe = self.entry("probe")?;
                probe.set_secret(b"probe").map_err(keyring_hint)?;
                let back = probe.get_secret().map_err(keyring_hint)?;
                probe.delete_credential().map_err(keyring_hint)?;
                if back != b"probe" {
                    return Err(keyring_hint("a stored secret read back differently"));
                }
                Ok(())
            }
            KeystoreKind::File => {
                self.passphrase()?;
                self.read_file().map(drop)
            }
        }
    }

    /// Reads a secret; `None` if it was never stored.
    pub fn get(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, ClientError> {
        match self.kind {
            KeystoreKind::Keyring => match self.entry(name)?.get_secret() {
                Ok(v) => Ok(Some(Zeroizing::new(v))),
                Err(keyring::Error::NoEntry) => Ok(None),
                Err(e) => Err(keyring_hint(e)),
            },
            KeystoreKind::File => Ok(self.read_file()?.remove(name)),
        }
    }

    /// Reads a secret that a login stored. Missing from the keyring, the
    /// error says why that can happen and how to switch to the file.
    pub fn require(&self, name: &str) -> Result<Zeroizing<Vec<u8>>, ClientError> {
        match (self.get(name)?, self.kind) {
            (Some(v), _) => Ok(v),
            (None, KeystoreKind::File) => Err(ClientError::NotLoggedIn),
            (None, KeystoreKind::Keyring) => Err(ClientError::Keystore(
                "this device's keys are not in the OS keyring (it was cleared, or this machine has no login \
                 session keyring that outlives a process); run `rights login EMAIL --keystore file` to keep them \
                 in a passphrase-sealed file instead"
                    .into(),
            )),
        }
    }

    /// Stores (or replaces) a secret.
    pub fn set(&self, name: &str, value: &[u8]) -> Result<(), ClientError> {
        match self.kind {
            KeystoreKind::Keyring => self.entry(name)?.set_secret(value).map_err(keyring_hint),
            KeystoreKind::File => {
                let mut m = self.read_file()?;
                m.insert(name.to_string(), Zeroizing::new(value.to_vec()));
                self.write_file(&m)
            }
        }
    }

    /// Stores several secrets at once (one passphrase derivation for the file).
    pub fn set_many(&self, items: &[(&str, &[u8])]) -> Result<(), ClientError> {
        match self.kind {
            KeystoreKind::Keyring => items.iter().try_for_each(|(n, v)| self.set(n, v)),
            KeystoreKind::File => {
                let mut m = BTreeMap::new();
                if self.paths.credential_file().exists() {
                    m = self.read_file()?;
                }
                for (n, v) in items {
                    m.insert(n.to_string(), Zeroizing::new(v.to_vec()));
                }
                self.write_file(&m)
            }
        }
    }

    /// Removes every secret of this user (logout).
    pub fn wipe(&self) -> Result<(), ClientError> {
        match self.kind {
            KeystoreKind::Keyring => {
                for n in NAMES {
                    match self.entry(n)?.delete_credential() {
                        Ok(()) | Err(keyring::Error::NoEntry) => {}
                        Err(e) => return Err(keyring_hint(e)),
                    }
                }
                Ok(())
            }
            KeystoreKind::File => match std::fs::remove_file(self.paths.credential_file()) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e.into()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(dir: &std::path::Path) -> Paths {
        Paths {
            config_dir: dir.join("config"),
            data_dir: dir.join("data"),
            cache_dir: dir.join("cache"),
        }
    }

    #[test]
    fn file_keystore_round_trip_and_wrong_passphrase() {
        let d = tempfile::tempdir().unwrap();
        let p = paths(d.path());
        let ks = Keystore::new(KeystoreKind::File, &p).with_passphrase("pw");
        assert!(ks.get(DEVICE_KEY).unwrap().is_none());
        ks.set_many(&[(DEVICE_KEY, b"key"), (REFRESH_TOKEN, b"tok")]).unwrap();
        assert_eq!(ks.get(REFRESH_TOKEN).unwrap().unwrap().as_slice(), b"tok");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(p.credential_file()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let raw = std::fs::read(p.credential_file()).unwrap();
        assert!(!raw.windows(3).any(|w| w == b"tok"), "secrets are sealed");
        let wrong = Keystore::new(KeystoreKind::File, &p).with_passphrase("nope");
        assert!(
            wrong
                .get(DEVICE_KEY)
                .unwrap_err()
                .to_string()
                .contains("wrong passphrase")
        );
        ks.wipe().unwrap();
        assert!(ks.get(DEVICE_KEY).unwrap().is_none());
    }

    #[test]
    fn keyring_entries_are_scoped_per_config_dir() {
        let d = tempfile::tempdir().unwrap();
        let a = Keystore::new(KeystoreKind::Keyring, &paths(&d.path().join("a")));
        let b = Keystore::new(KeystoreKind::Keyring, &paths(&d.path().join("b")));
        if let Err(e) = a.set(REFRESH_TOKEN, b"token-a") {
            // Some containers forbid keyctl; the error must say how to switch.
            assert!(e.to_string().contains("--keystore file"), "{e}");
            return;
        }
        assert!(b.get(REFRESH_TOKEN).unwrap().is_none());
        assert_eq!(a.get(REFRESH_TOKEN).unwrap().unwrap().as_slice(), b"token-a");
        a.wipe().unwrap();
        assert!(a.get(REFRESH_TOKEN).unwrap().is_none());
    }
}
