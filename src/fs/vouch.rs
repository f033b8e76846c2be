//! Whether a device key belongs to the person who signed a folder policy
//! file with it, so that their policy can govern what others add to their
//! folder (see [`super::DefaultPolicy`]).
//!
//! The server never lists anyone's device keys; what it does vouch for is
//! a document: a licence it issues names the registered owner and the hash
//! of the publishing licence it registered, and the licence layer refuses
//! a header that claims anything else. A publishing licence names the
//! device key that signed it. So a key is theirs when a document of theirs
//! in the policy's folder, signed by that key, opens for this user.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::names;
use super::state::RightsFs;
use crate::format::read_header;
use crate::policy::Email;

/// Protected files of a folder whose headers are read at most, looking for
/// a voucher: bounds what one creation can cost in a large folder.
const HEADERS_READ: usize = 64;

/// How long a folder without a voucher is believed to have none (a
/// document of theirs may arrive; a burst of creations asks only once).
const NO_VOUCHER_KEPT: Duration = Duration::from_secs(10);

/// Verdicts by (folder, signer, key): a found voucher for good, its
/// absence for [`NO_VOUCHER_KEPT`].
#[derive(Default)]
pub(super) struct Verdicts(Mutex<HashMap<Question, (bool, Instant)>>);

/// A policy file's folder, signer and device key.
type Question = (PathBuf, Email, Vec<u8>);

impl RightsFs {
    /// Whether `key` is a device key of `signer`, who signed the policy file
    /// of `dir` with it (see the module comment).
    pub(super) fn vouches(&self, signer: &Email, key: &[u8], dir: &Path) -> bool {
        let at = (dir.to_path_buf(), signer.clone(), key.to_vec());
        if let Some(&(found, when)) = self.verdicts.0.lock().unwrap_or_else(|p| p.into_inner()).get(&at)
            && (found || when.elapsed() < NO_VOUCHER_KEPT)
        {
            return found;
        }
        let found = self.find_voucher(signer, key, dir);
        if found {
            tracing::info!(folder = %dir.display(), owner = %signer, "a folder policy signed by its owner: new files here are yours, shared as it says and with them");
        }
        self.verdicts
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(at, (found, Instant::now()));
        found
    }

    fn find_voucher(&self, signer: &Email, key: &[u8], dir: &Path) -> bool {
        let Ok(rd) = std::fs::read_dir(dir) else { return false };
        let candidates = rd
            .flatten()
            .filter(|e| names::has_suffix(&e.file_name()) && e.file_type().is_ok_and(|t| t.is_file()))
            .take(HEADERS_READ);
        for e in candidates {
            let Ok(h) = super::save::open_nofollow(e.path())
                .map_err(Into::into)
                .and_then(|f| read_header(&f))
            else {
                continue;
            };
            let pl = &h.licence;
            if pl.owner() != signer
                || pl.owner_device_key != key
                || h.body
                    .licence
                    .verify_with(self.verifier.caches().map(|c| c.certificates()))
                    .is_err()
            {
                continue;
            }
            match self.keys.access(&h) {
                Ok(_) => return true,
                Err(err) => {
                    tracing::debug!(file = %e.path().display(), error = %err, "not a voucher for the folder policy");
                }
            }
        }
        false
    }
}
