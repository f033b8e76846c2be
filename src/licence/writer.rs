//! This device as a writer: its writer key with the server's device
//! certificate (kept in the data folder, asked for once), and per file the
//! edit certificate that came with the use licence. Every version the
//! device saves is signed with them (docs/FORMAT.md, "Writer records").

use crate::format::{FileHeader, Writer};
use crate::policy::{DeviceCertificate, EditCertificate, Right, now, writer_key_proof};

use super::{Access, AccessError, Licensing};

impl Licensing {
    /// This device's writer, without an edit certificate (enough for the
    /// owner's files): the certificate from the data folder, else asked
    /// for from the server (one RSA signature proves the key is the
    /// device's) and kept there.
    pub fn writer(&self) -> Result<Writer, AccessError> {
        if let Some(w) = self.writer.get() {
            return Ok(w.clone());
        }
        let cert = match std::fs::read(&self.certificate_file) {
            Ok(bytes) if self.certifies_me(&bytes) => bytes,
            _ => self.ask_certificate()?,
        };
        let w = Writer::new(self.identity.device_key.writer_key(), cert, None)
            .map_err(|e| AccessError::CannotSign(e.to_string()))?;
        Ok(self.writer.get_or_init(|| w).clone())
    }

    /// Keeps `cert` as this device's certificate when it certifies this
    /// device's writer key under the server's key (for set-ups that get it
    /// some other way than [`writer`](Self::writer) does).
    pub fn set_device_certificate(&self, cert: &[u8]) -> Result<(), AccessError> {
        if !self.certifies_me(cert) {
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

    fn ask_certificate(&self) -> Result<Vec<u8>, AccessError> {
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
        Ok(cert)
    }

    fn certifies_me(&self, cert: &[u8]) -> bool {
        let id = &self.identity;
        DeviceCertificate::verify(cert, &id.server_key).is_ok_and(|c| {
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
