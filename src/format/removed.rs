//! The devices a reader knows were removed from their accounts, from the
//! server's signed list (`policy::RemovedDeviceList`). The licensing layer
//! fetches, checks and keeps the list; readers get it here as data, shared,
//! so that a refresh reaches every open that follows. Every version whose
//! device certificate names a device on it is refused, whatever time its
//! record claims: a removed device that kept its keys can claim any time
//! inside its last certificate.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::policy::{RemovedDeviceList, Timestamp};

/// A shared, replaceable set of removed device ids with their removal
/// times. Clones share it. Empty until filled: a reader that never got
/// the list checks certificates and times only.
#[derive(Clone, Debug, Default)]
pub struct RemovedDevices(Arc<RwLock<Known>>);

#[derive(Debug, Default)]
struct Known {
    devices: HashMap<String, Timestamp>,
    /// When the server issued the oldest page of the list held.
    issued_at: Option<Timestamp>,
}

impl RemovedDevices {
    /// A set holding the devices of `pages` (checked by the caller), issued
    /// when the oldest of them was.
    pub fn of(pages: &[RemovedDeviceList]) -> Self {
        let r = Self::default();
        r.replace(pages);
        r
    }

    /// Replaces what is known with the devices of `pages`.
    pub fn replace(&self, pages: &[RemovedDeviceList]) {
        let devices = pages
            .iter()
            .flat_map(|p| p.devices.iter().map(|d| (d.device_id.clone(), d.removed_at)))
            .collect();
        let issued_at = pages.iter().map(|p| p.issued_at).min();
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Known { devices, issued_at };
    }

    /// When `device_id` was removed, if it is listed.
    pub fn removed_at(&self, device_id: &str) -> Option<Timestamp> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .devices
            .get(device_id)
            .copied()
    }

    /// When the list held was issued (`None`: no list yet).
    pub fn issued_at(&self) -> Option<Timestamp> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).issued_at
    }

    /// How many devices are listed.
    pub fn len(&self) -> usize {
        self.0.read().unwrap_or_else(|p| p.into_inner()).devices.len()
    }

    /// Whether no device is listed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
