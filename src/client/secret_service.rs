//! The desktop Secret Service (GNOME Keyring, KWallet; the freedesktop
//! D-Bus API), where this device's secrets are kept by default.
//!
//! Its items outlive the process, the login session and reboots: the
//! keyring daemon keeps them in its own keyring file, encrypted under the
//! user's login password, and unlocks it at login. Secrets cross the bus
//! encrypted (a Diffie-Hellman session, `crypto-rust`), and the D-Bus
//! client is pure Rust (zbus), so no C library is needed.

use zeroize::Zeroizing;

use super::ClientError;

/// The `service` attribute of every item rightsfs stores.
const SERVICE: &str = "rightsfs";

/// One user's items: `username` is `SCOPE:NAME`.
pub(super) struct SecretService {
    scope: String,
    /// Shown as the item's label in keyring managers (Seahorse, KWallet).
    owner: String,
}

/// Why the Secret Service cannot be used, in the words of the layers
/// below (no session bus, no provider on it, a locked collection...),
/// and which session bus was asked: the usual cause is the wrong one.
fn unavailable(e: keyring::Error) -> ClientError {
    let said = match &e {
        keyring::Error::PlatformFailure(inner) | keyring::Error::NoStorageAccess(inner) => inner.to_string(),
        other => other.to_string(),
    };
    let bus = match std::env::var("DBUS_SESSION_BUS_ADDRESS") {
        Ok(a) if !a.is_empty() => format!("session bus {a}"),
        _ => "DBUS_SESSION_BUS_ADDRESS is not set".into(),
    };
    ClientError::NoSecretService(format!("{said}; {bus}"))
}

impl SecretService {
    /// Items of the user whose configuration folder hashes to `scope`;
    /// `owner` names that folder in the items' labels.
    pub(super) fn new(scope: &str, owner: &str) -> Self {
        Self {
            scope: scope.to_string(),
            owner: owner.to_string(),
        }
    }

    fn entry(&self, name: &str) -> Result<keyring::Entry, ClientError> {
        let user = format!("{}:{name}", self.scope);
        let mut c =
            keyring::secret_service::SsCredential::new_with_target(None, SERVICE, &user).map_err(unavailable)?;
        c.label = format!("rightsfs {name} ({})", self.owner);
        Ok(keyring::Entry::new_with_credential(Box::new(c)))
    }

    /// Reads a secret; `None` if there is no such item.
    pub(super) fn get(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, ClientError> {
        match self.entry(name)?.get_secret() {
            Ok(v) => Ok(Some(Zeroizing::new(v))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Stores (or replaces) a secret.
    pub(super) fn set(&self, name: &str, value: &[u8]) -> Result<(), ClientError> {
        self.entry(name)?.set_secret(value).map_err(unavailable)
    }

    /// Removes a secret; no item is not an error.
    pub(super) fn delete(&self, name: &str) -> Result<(), ClientError> {
        match self.entry(name)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Stores, reads back and removes an item: a provider that answers but
    /// cannot keep secrets (no default collection, locked) fails here.
    pub(super) fn probe(&self) -> Result<(), ClientError> {
        const PROBE: &str = "probe";
        self.set(PROBE, PROBE.as_bytes())?;
        let back = self.get(PROBE)?;
        self.delete(PROBE)?;
        if back.as_deref().map(Vec::as_slice) != Some(PROBE.as_bytes()) {
            return Err(ClientError::NoSecretService(
                "a stored secret read back differently".into(),
            ));
        }
        Ok(())
    }
}
