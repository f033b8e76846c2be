//! Secret storage: this device's RSA private key and the refresh token.
//!
//! The desktop Secret Service (see `secret_service`) is the default; hosts
//! without one use a passphrase-sealed 0600 file (`keystore = "file"` or
//! `--keystore file`). The choice is made at sign-in, by the command line
//! (which says so when it falls back to the file), and kept in config.toml:
//! later commands never switch stores behind the user's back.

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use super::config::KeystoreKind;
use super::secret_service::SecretService;
use super::{ClientError, Paths};
use crate::crypto::{PassphraseKey, open_with_passphrase_key, seal_with_passphrase_key, sha256};

/// Name of the device private key (PKCS#8 DER).
pub const DEVICE_KEY: &str = "device-key";
/// Name of the refresh token.
pub const REFRESH_TOKEN: &str = "refresh-token";
/// Name of the current access token (`EXPIRES TOKEN`), shared by this
/// user's processes until it expires.
pub const ACCESS_TOKEN: &str = "access-token";
const NAMES: [&str; 3] = [DEVICE_KEY, REFRESH_TOKEN, ACCESS_TOKEN];

/// A place to keep this device's secrets.
pub struct Keystore {
    kind: KeystoreKind,
    paths: Paths,
    /// This user's items in the Secret Service.
    secret_service: SecretService,
    passphrase: std::sync::Mutex<Option<Zeroizing<String>>>,
    /// The credential file's key, derived once per process (see
    /// [`PassphraseKey`]); dropped with the passphrase it came from.
    file_key: std::sync::Mutex<PassphraseKey>,
}

impl Keystore {
    /// A keystore of `kind` for the user whose folders are `paths`.
    pub fn new(kind: KeystoreKind, paths: &Paths) -> Self {
        // Distinguishes users on one uid (separate XDG_CONFIG_HOME).
        let config_dir = paths.config_dir.to_string_lossy();
        let scope = hex::encode(&sha256(config_dir.as_bytes())[..8]);
        Self {
            kind,
            paths: paths.clone(),
            secret_service: SecretService::new(&scope, &config_dir),
            passphrase: std::sync::Mutex::new(None),
            file_key: Default::default(),
        }
    }

    /// Where this keystore keeps secrets.
    pub fn kind(&self) -> KeystoreKind {
        self.kind
    }

    /// The folders of the user this keystore serves.
    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// Uses `passphrase` for the credential file instead of asking for it.
    pub fn with_passphrase(self, passphrase: &str) -> Self {
        self.set_passphrase(Zeroizing::new(passphrase.to_string()));
        self
    }

    fn set_passphrase(&self, passphrase: Zeroizing<String>) {
        *self.passphrase.lock().unwrap_or_else(|p| p.into_inner()) = Some(passphrase);
        *self.file_key.lock().unwrap_or_else(|p| p.into_inner()) = PassphraseKey::default();
    }

    /// Takes the passphrase from `RIGHTS_PASSPHRASE` now, if set, and
    /// wipes it from the process environment: the mount daemon lives long,
    /// and its environment is readable (`/proc/PID/environ`) by anything
    /// running as the user. Call before any other thread exists.
    #[allow(unsafe_code)]
    pub fn take_passphrase_from_env(&self) {
        const VAR: &std::ffi::CStr = c"RIGHTS_PASSPHRASE";
        if let Ok(p) = std::env::var(VAR.to_str().unwrap_or_default())
            && !p.is_empty()
        {
            self.set_passphrase(Zeroizing::new(p));
        }
        // SAFETY: called before any other thread exists (see above).
        unsafe { crate::sys::scrub_env(VAR) };
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
        let passphrase = self.passphrase()?;
        let mut key = self.file_key.lock().unwrap_or_else(|p| p.into_inner());
        let plain = open_with_passphrase_key(passphrase.as_bytes(), &sealed, &mut key).map_err(|_| {
            ClientError::Keystore("wrong passphrase for the credential file (or the file is damaged)".into())
        })?;
        let map: BTreeMap<String, Vec<u8>> = postcard::from_bytes(&plain)
            .map_err(|_| ClientError::Keystore("the credential file does not decode".into()))?;
        Ok(map.into_iter().map(|(k, v)| (k, Zeroizing::new(v))).collect())
    }

    fn write_file(&self, map: &BTreeMap<String, Zeroizing<Vec<u8>>>) -> Result<(), ClientError> {
        let plain: BTreeMap<&str, &[u8]> = map.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
        let enc = Zeroizing::new(postcard::to_stdvec(&plain).expect("maps of bytes always encode"));
        let passphrase = self.passphrase()?;
        let mut key = self.file_key.lock().unwrap_or_else(|p| p.into_inner());
        let sealed = seal_with_passphrase_key(passphrase.as_bytes(), &enc, &mut key)
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
            KeystoreKind::Keyring => self.secret_service.probe(),
            KeystoreKind::File => {
                self.passphrase()?;
                self.read_file().map(drop)
            }
        }
    }

    /// Reads a secret; `None` if it was never stored.
    pub fn get(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, ClientError> {
        match self.kind {
            KeystoreKind::Keyring => self.secret_service.get(name),
            KeystoreKind::File => Ok(self.read_file()?.remove(name)),
        }
    }

    /// Reads a secret that a login stored. Missing from the keyring, the
    /// error says why that can happen.
    pub fn require(&self, name: &str) -> Result<Zeroizing<Vec<u8>>, ClientError> {
        match (self.get(name)?, self.kind) {
            (Some(v), _) => Ok(v),
            (None, KeystoreKind::File) => Err(ClientError::NotLoggedIn),
            (None, KeystoreKind::Keyring) => Err(ClientError::Keystore(
                "this device's keys are not in the desktop keyring that answers here (they were removed from \
                 it, or it is another keyring than the one the login used); run `rights login EMAIL` again"
                    .into(),
            )),
        }
    }

    /// Stores (or replaces) a secret.
    pub fn set(&self, name: &str, value: &[u8]) -> Result<(), ClientError> {
        match self.kind {
            KeystoreKind::Keyring => self.secret_service.set(name, value),
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
            KeystoreKind::Keyring => NAMES.iter().try_for_each(|n| self.secret_service.delete(n)),
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
}
