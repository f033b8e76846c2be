//! The policy of a protected file as this device may know it: the grants
//! in the clear (licences before version 3), opened from the file's owner
//! copy, or asked of the server.

use super::ctx::Ctx;
use crate::format::FileHeader;
use crate::policy::{Grant, Policy};

/// The policy a file's header carries, as far as this device may read it.
/// From publishing licence version 3 the grants are sealed to the server
/// and the owner's device: a recipient learns their own rights from their
/// licence, anyone else nothing of who the file is shared with.
pub(super) struct FilePolicy {
    /// Owner, expiry and offline days; the grants when known.
    pub policy: Policy,
    /// The grants, when in the clear or opened with this device's owner copy.
    pub grants: Option<Vec<Grant>>,
    /// How the file holds its grants, for people.
    pub says: &'static str,
}

impl FilePolicy {
    pub fn read(ctx: &Ctx, h: &FileHeader) -> Self {
        let policy = h.licence.policy.clone();
        if !h.licence.grants_sealed() {
            return Self {
                grants: Some(policy.grants.clone()),
                policy,
                says: "in the clear (publishing licence before version 3)",
            };
        }
        let opened = ctx
            .licensing()
            .ok()
            .and_then(|l| h.body.licence.open_grants_as_owner(&l.identity().device_key).ok());
        match opened {
            Some(p) => Self {
                grants: Some(p.grants.clone()),
                policy: p,
                says: "sealed; opened with this device's owner copy",
            },
            None => Self {
                grants: None,
                policy,
                says: "private: sealed to the server and the owner",
            },
        }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "owner": self.policy.owner,
            "grants": self.grants,
            "expires": self.policy.expires,
            "offline_days": self.policy.offline_days,
        })
    }
}

/// The whole policy of `h`, grants included: from the file when this
/// device can read them, else the server's (which shows its owner every
/// grant and anyone else the grants naming them).
pub(super) fn known_policy(ctx: &Ctx, h: &FileHeader) -> anyhow::Result<Policy> {
    let p = FilePolicy::read(ctx, h);
    if p.grants.is_some() {
        return Ok(p.policy);
    }
    Ok(ctx.session()?.content(&h.content_id())?.policy)
}
