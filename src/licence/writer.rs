//! This device as a writer: its writer key with the server's device
//! certificate (kept in the data folder, renewed from the server once half
//! its life is gone), and per file the edit certificate that came with the
//! use licence. Every version the device saves is signed with them
//! (docs/FORMAT.md, "Writer records").

use crate::format::{FileHeader, Writer};
use crate::policy::{DeviceCertificate, EditCertificate, Right, Timestamp, now, writer_key_proof};

use super::{Access, AccessError, Licensing};

/// Seconds between two tries to renew a device certificate, so that a
/// device without its server does not ask at every save.
const RETRY_AFTER: i64 = 60;

/// The writer in use and when its certificate was last asked for.
#[derive(Default)]
pub(super) struct Current {
    writer: Option<(Writer, DeviceCertificate)>,
    tried: Option<Timestamp>,
}

/// Whether a device certificate should be renewed at `t`: past half its
/// life, so that a device that saves at least every few days never holds
/// an ended one.
fn due(c: &DeviceCertificate, t: Timestamp) -> bool {
    t >= c.issued_at.saturating_add(c.not_after.saturating_sub(c.issued_at) / 2)
}

impl Licensing {
    /// This device's writer, without an edit certificate (enough for the
    /// owner's files): the certificate from the data folder, else (or once
    /// half its life is gone) asked for from the server (one RSA
    /// signature proves the key is the device's) and kept there. A server
    /// that removed the device certifies it no more: from the end of its
    /// last certificate, it signs nothing readers accept.
    pub fn writer(&self) -> Result<Writer, AccessError> {
        let t = now();
        let mut cur = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((w, c)) = &cur.writer
            && !due(c, t)
        {
            return Ok(w.clone());
        }
        if cur.writer.is_none()
            && let Some(kept) = std::fs::read(&self.certificate_file)
                .ok()
                .and_then(|b| self.certified_me(&b).map(|c| (b, c)))
        {
            cur.writer = Some((self.make_writer(kept.0)?, kept.1));
        }
        let fresh = cur.writer.as_ref().is_some_and(|(_, c)| !due(c, t));
        let may_ask = cur.tried.is_none_or(|at| t - at >= RETRY_AFTER);
        if !fresh && may_ask {
            cur.tried = Some(t);
            match self.ask_certificate() {
                Ok((bytes, c)) => {
                    cur.writer = Some((self.make_writer(bytes)?, c));
                    // The server answers: the devices removed since come too.
                    if let Err(e) = self.refresh_removed_devices() {
                        tracing::warn!(error = %e, "cannot fetch the list of removed devices; using the one kept");
                    }
                }
                // Still valid: keep signing with it until it ends (offline).
                Err(e) if cur.writer.as_ref().is_some_and(|(_, c)| t <= c.not_after) => {
                    tracing::warn!(error = %e, "cannot renew this device's certificate; using the current one until it ends");
                }
                Err(e) => return Err(e),
            }
        }
        match &cur.writer {
            Some((w, _)) => Ok(w.clone()),
            None => Err(AccessError::CannotSign(
                "this device has no certificate from the server yet; connect once".into(),
            )),
        }
    }

    fn make_writer(&self, cert: Vec<u8>) -> Result<Writer, AccessError> {
        Writer::new(self.identity.device_key.writer_key(), cert, None)
            .map_err(|e| AccessError::CannotSign(e.to_string()))
    }

    /// Keeps `cert` as this device's certificate when it certifies this
    /// device's writer key under the server's key (for set-ups that get it
    /// some other way than [`writer`](Self::writer) does).
    pub fn set_device_certificate(&self, cert: &[u8]) -> Result<(), AccessError> {
        if self.certified_me(cert).is_none() {
            return Err(AccessError::CannotSign(
                "the device certificate does not certify this device's writer key under this server's key".into(),
            ));
        }
        if let Some(dir) = self.certificate_file.parent() {
            crate::durable::ensure_private_dir(dir)?;
        }
        crate::durable::write_private_atomic(&self.certificate_file, cert)?;
        Ok(())
    }

    fn ask_certificate(&self) -> Result<(Vec<u8>, DeviceCertificate), AccessError> {
        let source = self.source.as_ref().ok_or_else(|| {
            AccessError::CannotSign("this device has no certificate from the server yet; connect once".into())
        })?;
        let id = &self.identity;
        let public = id.device_key.writer_key().public();
        let proof = id
            .device_key
            .sign(&writer_key_proof(&id.device_id, &public))
            .map_err(|e| AccessError::CannotSign(e.to_string()))?;
        let cert = source.device_certificate(&public, &proof).map_err(|e| {
            AccessError::CannotSign(format!("the server did not certify this device's writer key ({e})"))
        })?;
        self.set_device_certificate(&cert)?;
        let c = self.certified_me(&cert).expect("checked as it was kept");
        Ok((cert, c))
    }

    /// The certificate, when it certifies this device's writer key under
    /// the server's key.
    fn certified_me(&self, cert: &[u8]) -> Option<DeviceCertificate> {
        let id = &self.identity;
        DeviceCertificate::verify(cert, &id.server_key).ok().filter(|c| {
            c.account == id.email && c.device_id == id.device_id && c.key == id.device_key.writer_key().public()
        })
    }

    /// The writer that signs this device's versions of the file with
    /// `header`, opened with `access`: `None` without `edit`; the device's
    /// writer for the owner; with the licence's edit certificate for an
    /// editor. An editor whose licence brought no valid certificate for
    /// this file and key cannot save (readers would refuse the version).
    pub fn writer_for(&self, header: &FileHeader, access: &Access) -> Result<Option<Writer>, AccessError> {
        if !access.rights.has(Right::Edit) {
            return Ok(None);
        }
        let base = self.writer()?;
        if header.licence.policy.owner == self.identity.email {
            return Ok(Some(base));
        }
        let cert = access
            .edit_certificate
            .as_ref()
            .ok_or_else(|| AccessError::CannotSign("the server sent no edit certificate with the licence".into()))?;
        let ec = EditCertificate::verify(cert, &self.identity.server_key)
            .map_err(|e| AccessError::CannotSign(format!("the edit certificate does not verify ({e})")))?;
        if ec.content_id != header.content_id() || ec.key != base.public_key() || !ec.rights.has(Right::Edit) {
            return Err(AccessError::CannotSign(
                "the edit certificate is for another file or device".into(),
            ));
        }
        if ec.not_after <= now() {
            return Err(AccessError::CannotSign("the edit certificate has expired".into()));
        }
        base.for_file(Some(cert.clone()))
            .map(Some)
            .map_err(|e| AccessError::CannotSign(e.to_string()))
    }
}
