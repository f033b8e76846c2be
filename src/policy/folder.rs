//! A folder's default policy file (`.rights-policy`), signed by the device
//! of the user who wrote it.
//!
//! The file sits in a folder others may write to (a synced or shared
//! folder), so its grants count only when its signature verifies under a
//! device key the reader trusts as its own: anyone else's file, or an
//! unsigned one, would hand an outsider access to every new file.
//!
//! The signature also covers the folder's absolute path: the owner's
//! policy for a folder shared with a team, copied into a private folder,
//! would otherwise share that folder's new files with the team too.
//! Policy files are trusted only on the device that signed them, so the
//! path is the one that device mounts.
//!
//! TOML:
//!
//! ```toml
//! grants = ["bob@example.com:view,edit"]
//! offline_days = 3
//! folder = "/home/alice/Sync/team"
//! signed_by = "alice@example.com"
//! device_key = "MIIB..."   # base64 DER of the signing device's public key
//! signature = "..."        # base64, over the fields above
//! ```

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::Email;
use crate::crypto::{DeviceKeyPair, DevicePublicKey};

/// What the signature covers: a fixed prefix (so no other signed message
/// can pass for a policy file), then each field, length-prefixed.
const CONTEXT: &[u8] = b"rightsfs folder policy v2\0";

/// A folder policy file, signed or not.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FolderPolicy {
    /// Grants, `EMAIL[:RIGHTS[:EXPIRY]]`.
    #[serde(default)]
    pub grants: Vec<String>,
    /// Offline validity of new files' licences.
    pub offline_days: Option<u32>,
    /// The folder it was signed for (absolute path; shown to people, the
    /// signature covers the path's exact bytes).
    pub folder: Option<String>,
    /// Who signed it.
    pub signed_by: Option<String>,
    /// The signing device's public key (base64 DER).
    pub device_key: Option<String>,
    /// The signature (base64).
    pub signature: Option<String>,
}

/// Why a policy file does not count.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FolderPolicyError {
    #[error("not a policy file: {0}")]
    Malformed(String),
    #[error("not signed (write it with `rights policy set`)")]
    Unsigned,
    #[error("signed by {0}, not by you")]
    Foreign(String),
    #[error("signed by a device that is not this one")]
    OtherDevice,
    #[error("signed for the folder {0}, not this one (copied or moved here?); run `rights policy set` for this folder")]
    OtherFolder(String),
    #[error("the signature does not verify (the file was changed after it was signed)")]
    BadSignature,
}

impl FolderPolicy {
    /// Parses the TOML text.
    pub fn parse(text: &str) -> Result<Self, FolderPolicyError> {
        toml::from_str(text).map_err(|e| FolderPolicyError::Malformed(e.to_string()))
    }

    /// The TOML text.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a policy file always encodes")
    }

    fn message(&self, by: &str, key: &[u8], folder: &Path) -> Vec<u8> {
        let mut m = CONTEXT.to_vec();
        let mut field = |b: &[u8]| {
            m.extend_from_slice(&(b.len() as u64).to_be_bytes());
            m.extend_from_slice(b);
        };
        field(by.as_bytes());
        field(key);
        field(folder.as_os_str().as_bytes());
        field(&self.offline_days.map_or(u64::MAX, u64::from).to_be_bytes());
        field(&(self.grants.len() as u64).to_be_bytes());
        for g in &self.grants {
            field(g.as_bytes());
        }
        m
    }

    /// Signs the grants and offline days for `folder` (absolute) as `by`
    /// with this device's key.
    pub fn sign(
        grants: Vec<String>,
        offline_days: Option<u32>,
        folder: &Path,
        by: &Email,
        device: &DeviceKeyPair,
    ) -> Result<Self, crate::crypto::CryptoError> {
        let mut p = Self {
            grants,
            offline_days,
            folder: Some(folder.to_string_lossy().into_owned()),
            ..Self::default()
        };
        let key = device.public().to_der();
        let sig = device.sign(&p.message(by.as_str(), &key, folder))?;
        p.signed_by = Some(by.to_string());
        p.device_key = Some(STANDARD.encode(&key));
        p.signature = Some(STANDARD.encode(sig));
        Ok(p)
    }

    /// Checks that `me` signed it, for `folder` (absolute), with the device
    /// whose public key is `trusted` (DER).
    pub fn verify(&self, me: &Email, trusted: &[u8], folder: &Path) -> Result<(), FolderPolicyError> {
        let (Some(by), Some(key), Some(sig)) = (&self.signed_by, &self.device_key, &self.signature) else {
            return Err(FolderPolicyError::Unsigned);
        };
        if !by.eq_ignore_ascii_case(me.as_str()) {
            return Err(FolderPolicyError::Foreign(by.clone()));
        }
        let key = STANDARD.decode(key).map_err(|_| FolderPolicyError::BadSignature)?;
        if key != trusted {
            return Err(FolderPolicyError::OtherDevice);
        }
        let named = self.folder.as_deref().unwrap_or("(none)");
        if named != folder.to_string_lossy() {
            return Err(FolderPolicyError::OtherFolder(named.to_string()));
        }
        self.check_signature(by, &key, folder, sig)
    }

    /// Who signed it and the device key (DER) they signed it with, once
    /// the signature verifies under that key, over the folder the file
    /// names. Whether the key is really theirs, and whether the folder is
    /// theirs, is for the caller to establish (on another machine the same
    /// synced folder has another path): anyone can sign a file in someone
    /// else's name with a key of their own.
    pub fn signer(&self) -> Result<(Email, Vec<u8>), FolderPolicyError> {
        let (Some(by), Some(key), Some(sig)) = (&self.signed_by, &self.device_key, &self.signature) else {
            return Err(FolderPolicyError::Unsigned);
        };
        let key = STANDARD.decode(key).map_err(|_| FolderPolicyError::BadSignature)?;
        let named = Path::new(self.folder.as_deref().unwrap_or_default());
        self.check_signature(by, &key, named, sig)?;
        let by = Email::parse(by).map_err(|e| FolderPolicyError::Malformed(e.to_string()))?;
        Ok((by, key))
    }

    fn check_signature(&self, by: &str, key: &[u8], folder: &Path, sig: &str) -> Result<(), FolderPolicyError> {
        let sig = STANDARD.decode(sig).map_err(|_| FolderPolicyError::BadSignature)?;
        let public = DevicePublicKey::from_der(key).map_err(|_| FolderPolicyError::BadSignature)?;
        public
            .verify(&self.message(by, key, folder), &sig)
            .map_err(|_| FolderPolicyError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_my_device_signature_counts() {
        let me = Email::parse("alice@example.com").unwrap();
        let dev = DeviceKeyPair::generate().unwrap();
        let mine = dev.public().to_der();
        let dir = Path::new("/home/alice/team");
        let p = FolderPolicy::sign(vec!["bob@example.com:view".into()], Some(3), dir, &me, &dev).unwrap();
        let back = FolderPolicy::parse(&p.to_toml()).unwrap();
        assert_eq!(back.verify(&me, &mine, dir), Ok(()));
        let mut changed = back.clone();
        changed.grants.push("eve@evil.example:view,share".into());
        assert_eq!(changed.verify(&me, &mine, dir), Err(FolderPolicyError::BadSignature));
        let mut days = back.clone();
        days.offline_days = Some(3650);
        assert_eq!(days.verify(&me, &mine, dir), Err(FolderPolicyError::BadSignature));
        let unsigned = FolderPolicy::parse("grants = [\"eve@evil.example:view\"]\noffline_days = 3650\n").unwrap();
        assert_eq!(unsigned.verify(&me, &mine, dir), Err(FolderPolicyError::Unsigned));
        let eve = Email::parse("eve@evil.example").unwrap();
        let other = DeviceKeyPair::generate().unwrap();
        let foreign = FolderPolicy::sign(vec![], None, dir, &eve, &other).unwrap();
        assert!(matches!(
            foreign.verify(&me, &mine, dir),
            Err(FolderPolicyError::Foreign(_))
        ));
        let forged = FolderPolicy::sign(vec![], None, dir, &me, &other).unwrap();
        assert_eq!(forged.verify(&me, &mine, dir), Err(FolderPolicyError::OtherDevice));
        // Anyone's signed file names its signer and key; a changed one none.
        assert_eq!(foreign.signer(), Ok((eve.clone(), other.public().to_der())));
        assert_eq!(changed.signer(), Err(FolderPolicyError::BadSignature));
        assert_eq!(unsigned.signer(), Err(FolderPolicyError::Unsigned));
    }

    #[test]
    fn a_policy_counts_only_in_the_folder_it_was_signed_for() {
        let me = Email::parse("alice@example.com").unwrap();
        let dev = DeviceKeyPair::generate().unwrap();
        let mine = dev.public().to_der();
        let team = Path::new("/home/alice/team");
        let p = FolderPolicy::sign(vec!["team@example.com:view".into()], None, team, &me, &dev).unwrap();
        let private = Path::new("/home/alice/private");
        assert!(matches!(
            p.verify(&me, &mine, private),
            Err(FolderPolicyError::OtherFolder(_))
        ));
        // Naming the new folder in the file does not help: the signature covers it.
        let mut moved = p.clone();
        moved.folder = Some(private.display().to_string());
        assert_eq!(moved.verify(&me, &mine, private), Err(FolderPolicyError::BadSignature));
    }
}
