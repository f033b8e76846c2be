//! Builds the licence store of the logged-in user from configuration and
//! keystore: what both `rights` and the mount need before opening files.

use std::sync::Arc;
use std::time::Duration;

use super::{Api, ClientError, Config, DEVICE_KEY, Keystore, Paths, Session};
use crate::crypto::DeviceKeyPair;
use crate::licence::{Identity, LicenceSource, Licensing};

/// This device's key pair from the keystore.
pub fn device_key(keystore: &Keystore) -> Result<DeviceKeyPair, ClientError> {
    let der = keystore.require(DEVICE_KEY)?;
    DeviceKeyPair::from_pkcs8_der(&der)
        .map_err(|_| ClientError::Keystore("the stored device key is damaged: run `rights login` again".into()))
}

/// An authenticated session with the configured server; each request is
/// bounded by `timeout`.
pub fn session(config: &Config, keystore: Arc<Keystore>, timeout: Duration) -> Result<Session, ClientError> {
    let api = Api::new(config.server()?, timeout)?;
    Ok(Session::new(api, keystore, config.me()?.to_string()).for_device(config.device_id.clone()))
}

/// The logged-in user's licence store, asking the server (with `timeout`
/// per request) when the cache has no valid licence; `online = false`
/// gives a store that never uses the network.
pub fn licensing(
    paths: &Paths,
    config: &Config,
    keystore: Arc<Keystore>,
    timeout: Duration,
    online: bool,
) -> Result<Licensing, ClientError> {
    let identity = Identity {
        email: config.me()?.clone(),
        device_id: config.device_id.clone().ok_or(ClientError::NotLoggedIn)?,
        device_key: device_key(&keystore)?,
        server_key: config.server_verifying()?,
    };
    let source: Option<Box<dyn LicenceSource>> = if online {
        Some(Box::new(session(config, keystore, timeout)?))
    } else {
        None
    };
    Ok(
        Licensing::new(identity, paths.licence_cache(), paths.owner_licences(), source)
            .with_open_log(paths.opens_dir()),
    )
}
