//! What the mount asks of the licensing layer, and the default policy of
//! files created in the mount.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::crypto::ServerVerifyingKey;
use crate::format::{FileHeader, Fresh, RemovedDevices, Writer};
use crate::licence::{Access, AccessError};
use crate::policy::{ContentId, Email, FolderPolicy, FolderPolicyError, Grant, Policy, PolicyError, Principal, Rights};

/// Where the mount gets content keys. The `rights` command line implements
/// it over the user's [`crate::licence::Licensing`] and registration queue;
/// tests may implement it with fixed keys.
///
/// Every method is called from a FUSE worker thread, so each must bound its
/// own time (network requests carry a timeout): the kernel waits on it.
pub trait KeySource: Send + Sync + 'static {
    /// The key and rights for an existing file (memory, licence cache, or
    /// the server).
    fn access(&self, header: &FileHeader) -> Result<Access, AccessError>;

    /// The rights a cached licence grants, without the network or any
    /// private-key operation (`None` when nothing is cached), so listings
    /// can show view-only files read-only.
    fn cached_rights(&self, id: &ContentId) -> Option<Rights>;

    /// The first bytes of a file created in the mount (header with a new
    /// content key and signed publishing licence, keys, empty state). Must
    /// not wait for the server: registration is queued.
    fn create(&self, policy: Policy) -> Result<Fresh, AccessError>;

    /// Makes the registrations of content created so far durable. Creating
    /// defers it; the mount calls this before it syncs a protected file, so
    /// a file that outlives a power cut is registered too. (Its key needs no
    /// such care: the owner's copy travels in the file's header.)
    fn sync_new(&self) -> Result<(), AccessError>;

    /// The mounting user: the owner of files created in the mount.
    fn me(&self) -> &Email;

    /// The server's Ed25519 key: every version the mount opens must be
    /// signed by a writer it certified (docs/FORMAT.md, "Writer records").
    fn verifier(&self) -> &ServerVerifyingKey;

    /// The devices removed from their accounts, shared with whoever
    /// refreshes it: every version one of them signed is refused.
    fn removed_devices(&self) -> RemovedDevices {
        RemovedDevices::default()
    }

    /// Who signs the versions this user saves of the file with `header`
    /// opened with `access` (`None` without `edit`). Created files are
    /// signed by the writer inside the [`Fresh`] from [`create`](Self::create).
    fn writer(&self, header: &FileHeader, access: &Access) -> Result<Option<Writer>, AccessError>;

    /// A fresh key and rights for the file, asked of the server even when
    /// a cached licence is still valid: an editor's edit certificate ends
    /// with their licence, and the mount renews it before it signs a
    /// version past that end.
    fn renew(&self, header: &FileHeader) -> Result<Access, AccessError> {
        self.access(header)
    }

    /// The key of the on-disk index of header facts (`facts_index.rs`);
    /// `None` keeps no index (every cold `stat` reads the header).
    fn facts_index_key(&self) -> Option<zeroize::Zeroizing<[u8; 32]>> {
        None
    }

    /// Reports that this user saved `generation` of the file with `header`
    /// (the owner's log shows who saved what). Never fails the save.
    fn saved(&self, _header: &FileHeader, _generation: u64) {}
}

/// Whether a device key (DER) is a device key of the account that signed
/// a policy file in the folder given with it.
pub type Vouch<'a> = &'a dyn Fn(&Email, &[u8], &Path) -> bool;

/// Grants and offline validity given to files created in the mount: those
/// of the nearest `.rights-policy` file in the source (walking up to its
/// root) that this device signed (`rights policy set`, see
/// [`FolderPolicy`]), else the mount's own defaults. A policy file that is
/// unsigned, changed since, or signed by someone else with a device key
/// nothing vouches for is ignored, with a warning: the source folder is
/// writable by others, and such a file would hand them access to every
/// new file.
///
/// Someone else's folder: a policy file another person signed counts when
/// the caller vouches that the key is theirs (see [`Vouch`]). New files
/// there stay the creator's own, shared as that policy says and with its
/// signer (every right but ownership), so nobody the folder is shared
/// with loses access to what a recipient adds to it.
#[derive(Clone, Debug, Default)]
pub struct DefaultPolicy {
    /// Grants (`EMAIL[:RIGHTS[:EXPIRY]]` already parsed).
    pub grants: Vec<Grant>,
    /// Offline validity of licences.
    pub offline_days: u32,
    /// This device's public key (DER): the only signer of policy files
    /// trusted. `None`: every policy file is ignored.
    pub signer: Option<Vec<u8>>,
    /// Policy files already warned about (one warning per file and text).
    warned: std::sync::Arc<std::sync::Mutex<HashSet<(PathBuf, String)>>>,
}

impl DefaultPolicy {
    /// Defaults with `grants` and `offline_days`, trusting policy files
    /// signed by the device whose public key is `signer`.
    pub fn new(grants: Vec<Grant>, offline_days: u32, signer: Option<Vec<u8>>) -> Self {
        Self {
            grants,
            offline_days,
            signer,
            warned: Default::default(),
        }
    }

    /// The policy for a new file in `dir` (a folder under `root`) that
    /// `owner` creates; `vouch` decides about policy files others signed.
    pub fn for_dir(&self, owner: &Email, root: &Path, dir: &Path, vouch: Vouch<'_>) -> Policy {
        let (mut grants, mut offline_days) = (self.grants.clone(), self.offline_days);
        let mut cur = Some(dir);
        while let Some(d) = cur {
            let f = d.join(super::names::POLICY_FILE);
            if let Ok(text) = std::fs::read_to_string(&f) {
                let found = self
                    .trusted(owner, &text, d)
                    .or_else(|mine| self.theirs(owner, &text, d, vouch).ok_or(mine));
                match found {
                    Ok((g, days)) => {
                        (grants, offline_days) = (g, days.unwrap_or(self.offline_days));
                        break;
                    }
                    Err(e) => self.warn_once(&f, &text, &e.to_string()),
                }
            }
            if d == root {
                break;
            }
            cur = d.parent();
        }
        let mut policy = Policy::owner_only(owner.clone(), offline_days);
        for g in grants {
            policy.upsert_grant(g);
        }
        // The owner holds every right anyway.
        policy.remove_grant(&Principal::User(owner.clone()));
        policy
    }

    /// The grants of a policy file someone else signed with a key `vouch`
    /// says is theirs, plus a grant of every right to them.
    fn theirs(&self, me: &Email, text: &str, dir: &Path, vouch: Vouch<'_>) -> Option<(Vec<Grant>, Option<u32>)> {
        let p = FolderPolicy::parse(text).ok()?;
        let (signer, key) = p.signer().ok()?;
        if &signer == me || !vouch(&signer, &key, dir) {
            return None;
        }
        let mut grants: Vec<Grant> = p
            .grants
            .iter()
            .map(|s| Grant::parse_spec(s).ok())
            .collect::<Option<_>>()?;
        grants.push(Grant {
            to: Principal::User(signer),
            rights: Rights::owner(),
            expires: None,
        });
        Some((grants, p.offline_days))
    }

    /// The grants of a policy file `owner` signed on this device for `dir`.
    fn trusted(&self, owner: &Email, text: &str, dir: &Path) -> Result<(Vec<Grant>, Option<u32>), Untrusted> {
        let p = FolderPolicy::parse(text)?;
        let signer = self.signer.as_deref().ok_or(Untrusted::NoSigner)?;
        p.verify(owner, signer, dir)?;
        let grants = p
            .grants
            .iter()
            .map(|s| {
                Grant::parse_spec(s).map_err(|source| Untrusted::Grant {
                    spec: s.clone(),
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((grants, p.offline_days))
    }

    fn warn_once(&self, file: &Path, text: &str, why: &str) {
        let fresh = self
            .warned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((file.to_path_buf(), text.to_string()));
        if fresh {
            tracing::warn!(file = %file.display(), reason = why, "ignoring a folder policy file: new files get the mount's defaults");
        }
    }
}

/// Why a folder's policy file does not count for files created there
/// (logged once per file and text; new files then get the defaults).
#[derive(Debug, thiserror::Error)]
enum Untrusted {
    /// Malformed, unsigned, or signed by another user or device.
    #[error(transparent)]
    Policy(#[from] FolderPolicyError),
    /// The mount was started without a device key to check signatures.
    #[error("this mount trusts no policy file")]
    NoSigner,
    /// A grant line does not parse.
    #[error("{spec}: {source}")]
    Grant {
        spec: String,
        #[source]
        source: PolicyError,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::DeviceKeyPair;

    #[test]
    fn only_signed_policy_files_count_and_the_nearest_wins() {
        let root = tempfile::tempdir().unwrap();
        let sub = root.path().join("a/b");
        std::fs::create_dir_all(&sub).unwrap();
        let me = Email::parse("alice@example.com").unwrap();
        let dev = DeviceKeyPair::generate().unwrap();
        let signed = FolderPolicy::sign(
            vec!["bob@example.com:view".into()],
            Some(2),
            &root.path().join("a"),
            &me,
            &dev,
        )
        .unwrap();
        std::fs::write(
            root.path().join("a").join(super::super::names::POLICY_FILE),
            signed.to_toml(),
        )
        .unwrap();
        std::fs::write(
            sub.join(super::super::names::POLICY_FILE),
            "grants = [\"someone@evil.example:view,share\"]\noffline_days = 3650\n",
        )
        .unwrap();
        let d = DefaultPolicy::new(vec![], 7, Some(dev.public().to_der()));
        let p = d.for_dir(&me, root.path(), &sub, &|_, _, _| false);
        assert_eq!(p.offline_days, 2, "the unsigned nearer file is skipped");
        assert_eq!(p.grants.len(), 1);
        let top = d.for_dir(&me, root.path(), root.path(), &|_, _, _| false);
        assert_eq!(top.offline_days, 7);
        assert!(top.grants.is_empty());
        let untrusting = DefaultPolicy::new(vec![], 7, None);
        assert!(
            untrusting
                .for_dir(&me, root.path(), &sub, &|_, _, _| false)
                .grants
                .is_empty()
        );
    }

    #[test]
    fn someone_elses_policy_counts_only_when_their_key_is_vouched_for() {
        let root = tempfile::tempdir().unwrap();
        let alice = Email::parse("alice@example.com").unwrap();
        let carol = Email::parse("carol@example.com").unwrap();
        let alices = DeviceKeyPair::generate().unwrap();
        let spec = vec!["bob@example.com:view".into(), "carol@example.com:view,edit".into()];
        let signed = FolderPolicy::sign(spec, Some(2), Path::new("/home/alice/team"), &alice, &alices).unwrap();
        std::fs::write(root.path().join(super::super::names::POLICY_FILE), signed.to_toml()).unwrap();
        let carols = DefaultPolicy::new(vec![], 7, Some(DeviceKeyPair::generate().unwrap().public().to_der()));
        let key = alices.public().to_der();
        let vouched = |who: &Email, k: &[u8], at: &Path| who == &alice && k == key.as_slice() && at == root.path();
        let p = carols.for_dir(&carol, root.path(), root.path(), &vouched);
        assert_eq!(p.owner, carol, "the creator owns the new file");
        assert_eq!(p.offline_days, 2);
        let mut who: Vec<String> = p.grants.iter().map(|g| g.to.to_string()).collect();
        who.sort();
        assert_eq!(who, ["alice@example.com", "bob@example.com"]);
        let a = p
            .grants
            .iter()
            .find(|g| g.to == Principal::User(alice.clone()))
            .unwrap();
        assert_eq!(a.rights, Rights::owner());
        let p = carols.for_dir(&carol, root.path(), root.path(), &|_, _, _| false);
        assert!(p.grants.is_empty(), "no voucher, no grants");
        assert_eq!(p.offline_days, 7);
    }
}
