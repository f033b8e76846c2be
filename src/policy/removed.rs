//! The server's signed list of devices removed from their accounts.
//!
//! A device removed from its account that kept its keys could sign a new
//! version with a time inside its last device certificate's window, and
//! the certificate alone would vouch for it. Readers therefore refuse
//! every version whose device certificate names a device on this list
//! (docs/FORMAT.md, "Removed devices"). It carries only random device ids
//! and removal times, never an account.
//!
//! The list is served in pages ordered by device id, each signed on its
//! own and saying where it starts and whether it is the last one, so that
//! a reader holding every page knows it holds the whole list. The layout
//! is fixed binary, as the certificates' is:
//!
//! `u32 length || body || Ed25519(server, "rightsfs removed devices v1\0" || body)`
//! with `body = version (1) || issued_at (i64) || after (u8 length, UTF-8)
//! || last page (u8, 0 or 1) || count (u32) || count x (device id (u8
//! length, UTF-8) || removed_at (i64))`, ids strictly ascending (bytewise)
//! and each after `after`.

use super::certificate::{Reader, put_str};
use super::{PolicyError, Timestamp};
use crate::crypto::{SERVER_SIGNATURE_LEN, ServerSigningKey, ServerVerifyingKey};

const DOMAIN: &[u8] = b"rightsfs removed devices v1\0";
const VERSION: u8 = 1;
/// Most devices one page lists (about 40 bytes each: 400 KiB a page).
pub const REMOVED_PAGE_MAX: usize = 10_000;

/// One removed device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemovedDevice {
    /// The device's id on the server (random; names no account).
    pub device_id: String,
    /// When it was removed (Unix seconds).
    pub removed_at: Timestamp,
}

/// One page of the server's statement "these devices were removed".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemovedDeviceList {
    /// When the server made it.
    pub issued_at: Timestamp,
    /// The id the page starts after ("" for the first page).
    pub after: String,
    /// Whether no device id sorts after this page's last one.
    pub last: bool,
    /// The removed devices, by id.
    pub devices: Vec<RemovedDevice>,
}

impl RemovedDeviceList {
    /// Encodes and signs (server side).
    pub fn sign(&self, server: &ServerSigningKey) -> Vec<u8> {
        let mut body = vec![VERSION];
        body.extend_from_slice(&self.issued_at.to_be_bytes());
        put_str(&mut body, &self.after);
        body.push(u8::from(self.last));
        body.extend_from_slice(&(self.devices.len() as u32).to_be_bytes());
        for d in &self.devices {
            put_str(&mut body, &d.device_id);
            body.extend_from_slice(&d.removed_at.to_be_bytes());
        }
        let mut out = Vec::with_capacity(4 + body.len() + SERVER_SIGNATURE_LEN);
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(&body);
        out.extend_from_slice(&server.sign(&[DOMAIN, &body].concat()));
        out
    }

    /// Checks the server's signature over the page at the start of
    /// `bytes`, then decodes it; returns it and the bytes after it (pages
    /// are kept one after another).
    pub fn verify_prefix<'a>(bytes: &'a [u8], server: &ServerVerifyingKey) -> Result<(Self, &'a [u8]), PolicyError> {
        let mut r = Reader(bytes, "removed device list");
        let n = u32::from_be_bytes(r.array()?) as usize;
        let body = r.take(n)?;
        let sig = r.take(SERVER_SIGNATURE_LEN)?;
        server
            .verify(&[DOMAIN, body].concat(), sig)
            .map_err(|_| PolicyError::BadSignature("removed device list"))?;
        Ok((Self::decode(body)?, r.0))
    }

    /// Checks the server's signature, then decodes one page.
    pub fn verify(bytes: &[u8], server: &ServerVerifyingKey) -> Result<Self, PolicyError> {
        let (page, rest) = Self::verify_prefix(bytes, server)?;
        if !rest.is_empty() {
            return Err(PolicyError::Malformed("removed device list"));
        }
        Ok(page)
    }

    fn decode(body: &[u8]) -> Result<Self, PolicyError> {
        let what = "removed device list";
        let mut r = Reader(body, what);
        if r.u8()? != VERSION {
            return Err(PolicyError::Malformed("removed device list version"));
        }
        let issued_at = r.i64()?;
        let after = r.str()?.to_string();
        let last = match r.u8()? {
            0 => false,
            1 => true,
            _ => return Err(PolicyError::Malformed(what)),
        };
        let count = u32::from_be_bytes(r.array()?) as usize;
        // Each entry takes at least 9 bytes: a count past that is a lie.
        if count > r.0.len() / 9 {
            return Err(PolicyError::Malformed(what));
        }
        let mut devices: Vec<RemovedDevice> = Vec::with_capacity(count);
        for _ in 0..count {
            let device_id = r.str()?.to_string();
            let removed_at = r.i64()?;
            let previous = devices.last().map_or(after.as_str(), |d| d.device_id.as_str());
            if device_id.as_bytes() <= previous.as_bytes() {
                return Err(PolicyError::Malformed("removed device list order"));
            }
            devices.push(RemovedDevice { device_id, removed_at });
        }
        r.end()?;
        Ok(Self {
            issued_at,
            after,
            last,
            devices,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(after: &str, ids: &[&str], last: bool) -> RemovedDeviceList {
        RemovedDeviceList {
            issued_at: 1_700_000_000,
            after: after.into(),
            last,
            devices: ids
                .iter()
                .enumerate()
                .map(|(i, id)| RemovedDevice {
                    device_id: (*id).into(),
                    removed_at: 1_600_000_000 + i as i64,
                })
                .collect(),
        }
    }

    #[test]
    fn lists_round_trip_bind_the_server_and_refuse_any_change() {
        let server = ServerSigningKey::generate();
        let list = page("", &["0a", "7f", "c3"], true);
        let signed = list.sign(&server);
        assert_eq!(
            RemovedDeviceList::verify(&signed, &server.verifying_key()).unwrap(),
            list
        );
        let other = ServerSigningKey::generate();
        assert!(RemovedDeviceList::verify(&signed, &other.verifying_key()).is_err());
        for i in 0..signed.len() {
            let mut bad = signed.clone();
            bad[i] ^= 1;
            assert!(
                RemovedDeviceList::verify(&bad, &server.verifying_key()).is_err(),
                "byte {i}"
            );
        }
        // Pages follow one another.
        let second = page("c3", &["d0"], true).sign(&server);
        let both = [signed.clone(), second].concat();
        let (first, rest) = RemovedDeviceList::verify_prefix(&both, &server.verifying_key()).unwrap();
        assert_eq!(first, list);
        assert_eq!(
            RemovedDeviceList::verify(rest, &server.verifying_key()).unwrap().after,
            "c3"
        );
    }

    #[test]
    fn ids_out_of_order_or_before_the_page_start_are_refused() {
        let server = ServerSigningKey::generate();
        for bad in [
            page("", &["7f", "0a"], true),
            page("", &["0a", "0a"], true),
            page("c3", &["0a"], true),
        ] {
            let signed = bad.sign(&server);
            assert!(
                RemovedDeviceList::verify(&signed, &server.verifying_key()).is_err(),
                "{bad:?}"
            );
        }
    }
}
