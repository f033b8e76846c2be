//! The server's list of devices removed from their accounts, as this
//! device keeps it: fetched (every page, each signature checked, the pages
//! following one another to the last), kept in the cache folder beside the
//! licences and read from there offline. Readers refuse every version
//! signed by a listed device (see `format::RemovedDevices`). The owner's
//! devices never ask for use licences for their own files, so the list
//! comes this way, not with licences.
//!
//! It is fetched when a mount starts, when this device's certificate is
//! renewed, after a removal from this device, when a use licence comes
//! from the server (at most once a minute), and whenever the list held is
//! older than [`REMOVED_DEVICES_MAX_AGE`] and a reader wants it.

use std::path::PathBuf;
use std::sync::Mutex;

use crate::crypto::ServerVerifyingKey;
use crate::format::RemovedDevices;
use crate::policy::{RemovedDeviceList, Timestamp, now};

use super::{FetchError, Licensing};

/// Seconds after which the list held is fetched again when a reader
/// wants it (the mount checks every few minutes).
pub const REMOVED_DEVICES_MAX_AGE: i64 = 3600;
/// Seconds between two tries to fetch it, so that a device without its
/// server does not ask at every open.
const RETRY_AFTER: i64 = 60;
/// Most pages followed (10,000 devices each): a server that never ends
/// the list is cut off.
const MAX_PAGES: usize = 10_000;

/// The list in use, where it is kept, and when it was last asked for.
pub(super) struct Removed {
    pub(super) devices: RemovedDevices,
    file: PathBuf,
    tried: Mutex<Option<Timestamp>>,
}

impl Removed {
    /// The list kept in `file` when its pages verify under `server` and
    /// make a whole list; else none (fetched when next online).
    pub(super) fn load(file: PathBuf, server: &ServerVerifyingKey) -> Self {
        let devices = RemovedDevices::default();
        if let Ok(bytes) = std::fs::read(&file) {
            match pages_of(&bytes, server) {
                Ok(pages) => devices.replace(&pages),
                Err(e) => tracing::warn!(file = %file.display(), error = %e, "kept list of removed devices ignored"),
            }
        }
        Self {
            devices,
            file,
            tried: Mutex::new(None),
        }
    }
}

/// The pages of a whole list kept one after another, each checked.
fn pages_of(mut bytes: &[u8], server: &ServerVerifyingKey) -> Result<Vec<RemovedDeviceList>, FetchError> {
    let mut pages: Vec<RemovedDeviceList> = Vec::new();
    while !bytes.is_empty() {
        let (page, rest) = RemovedDeviceList::verify_prefix(bytes, server)
            .map_err(|e| FetchError::Other(format!("a page of the removed devices list does not verify ({e})")))?;
        follows(pages.last(), &page)?;
        pages.push(page);
        bytes = rest;
    }
    if !pages.last().is_some_and(|p| p.last) {
        return Err(FetchError::Other("the removed devices list is not whole".into()));
    }
    Ok(pages)
}

/// Whether `page` starts where `previous` ended (or, first, at the start).
fn follows(previous: Option<&RemovedDeviceList>, page: &RemovedDeviceList) -> Result<(), FetchError> {
    let expected = match previous {
        None => Some(""),
        Some(p) if p.last => None,
        Some(p) => p.devices.last().map(|d| d.device_id.as_str()),
    };
    if expected != Some(page.after.as_str()) {
        return Err(FetchError::Other(
            "the pages of the removed devices list do not follow one another".into(),
        ));
    }
    Ok(())
}

impl Licensing {
    /// The devices this device knows were removed from their accounts, as
    /// last fetched (no network). Shared: a refresh reaches every reader
    /// holding it.
    pub fn removed_devices(&self) -> &RemovedDevices {
        &self.removed.devices
    }

    /// Fetches the whole list from the server, checks every page and
    /// keeps it (memory and cache folder); returns how many devices it
    /// lists. Nothing changes when it fails.
    pub fn refresh_removed_devices(&self) -> Result<usize, FetchError> {
        let source = self
            .source
            .as_ref()
            .ok_or_else(|| FetchError::Unreachable("working offline".into()))?;
        *self.removed.tried.lock().unwrap_or_else(|p| p.into_inner()) = Some(now());
        let server = &self.identity.server_key;
        let (mut pages, mut kept, mut after) = (Vec::new(), Vec::new(), None::<String>);
        loop {
            if pages.len() == MAX_PAGES {
                return Err(FetchError::Other("the removed devices list does not end".into()));
            }
            let bytes = source.removed_devices(after.as_deref())?;
            let page = RemovedDeviceList::verify(&bytes, server)
                .map_err(|e| FetchError::Other(format!("the removed devices list does not verify ({e})")))?;
            follows(pages.last(), &page)?;
            kept.extend_from_slice(&bytes);
            let last = page.last;
            after = page.devices.last().map(|d| d.device_id.clone());
            pages.push(page);
            if last {
                break;
            }
            if after.is_none() {
                return Err(FetchError::Other("a page of the removed devices list is empty".into()));
            }
        }
        if let Some(dir) = self.removed.file.parent() {
            crate::durable::ensure_private_dir(dir).map_err(|e| FetchError::Other(e.to_string()))?;
        }
        crate::durable::write_private_atomic(&self.removed.file, &kept)
            .map_err(|e| FetchError::Other(e.to_string()))?;
        self.removed.devices.replace(&pages);
        Ok(self.removed.devices.len())
    }

    /// Fetches the list again when the one held is older than
    /// [`REMOVED_DEVICES_MAX_AGE`] (or there is none) and the server was
    /// not tried in the last minute; a failure is logged and the list
    /// held stays in use.
    pub fn refresh_removed_devices_if_stale(&self) {
        let t = now();
        let fresh = self
            .removed
            .devices
            .issued_at()
            .is_some_and(|at| t - at < REMOVED_DEVICES_MAX_AGE);
        if !fresh {
            self.refresh_removed_devices_soon();
        }
    }

    /// Fetches the list again unless it was tried in the last minute (by
    /// this process): the server just answered, so a removal made since
    /// the list was kept reaches this reader now, not an hour later. A
    /// failure is logged and the list held stays in use.
    pub(super) fn refresh_removed_devices_soon(&self) {
        let tried = *self.removed.tried.lock().unwrap_or_else(|p| p.into_inner());
        if self.source.is_none() || tried.is_some_and(|at| now() - at < RETRY_AFTER) {
            return;
        }
        if let Err(e) = self.refresh_removed_devices() {
            tracing::warn!(error = %e, "cannot fetch the list of removed devices; using the one kept");
        }
    }
}
