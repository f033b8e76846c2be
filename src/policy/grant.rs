//! Grants and the policy they form.

use serde::{Deserialize, Serialize};

use super::{Email, PolicyError, Principal, Rights, Timestamp, now};

/// Offline validity of new content when nothing else says: one day, so a
/// revoked recipient stops reading within a day even without a network.
pub const DEFAULT_OFFLINE_DAYS: u32 = 1;

/// Longest offline validity accepted, in days (ten years).
pub const MAX_OFFLINE_DAYS: u32 = 3650;

/// Rights given to one principal, optionally until a time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// Who.
    pub to: Principal,
    /// What they may do.
    pub rights: Rights,
    /// When the grant lapses (none: it lasts as long as the content).
    pub expires: Option<Timestamp>,
}

impl Grant {
    /// Parses `EMAIL[:RIGHTS[:EXPIRY]]`, e.g. `bob@example.com:view,edit:30d`.
    /// Rights default to `view`. The expiry is a date, an RFC 3339 time or
    /// a duration from now (`7d`, `12h`).
    pub fn parse_spec(spec: &str) -> Result<Self, PolicyError> {
        let mut parts = spec.splitn(3, ':');
        let who = parts
            .next()
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| PolicyError::BadGrantSpec(spec.into()))?;
        let to = Principal::parse(who)?;
        let rights = match parts.next() {
            Some(r) => Rights::parse(r)?,
            None => Rights::parse("view")?,
        };
        if rights.is_empty() {
            return Err(PolicyError::EmptyRights(to.to_string()));
        }
        let expires = parts.next().map(parse_expiry).transpose()?;
        Ok(Self { to, rights, expires })
    }

    /// Whether the grant is still in force at `at`.
    pub fn active_at(&self, at: Timestamp) -> bool {
        self.expires.is_none_or(|e| at < e)
    }

    fn validate(&self) -> Result<(), PolicyError> {
        if self.rights.is_empty() {
            return Err(PolicyError::EmptyRights(self.to.to_string()));
        }
        Ok(())
    }
}

/// Seconds in a duration such as `120s`, `90m`, `12h`, `7d` or `2w`.
pub fn parse_duration(s: &str) -> Option<i64> {
    let t = s.trim();
    let unit = match t.chars().last()? {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        _ => return None,
    };
    let n: i64 = t[..t.len() - 1].parse().ok().filter(|n| *n >= 0)?;
    n.checked_mul(unit)
}

/// Parses an expiry: `YYYY-MM-DD` (end of that day, UTC), an RFC 3339
/// instant, or a duration from now (see [`parse_duration`]).
pub fn parse_expiry(s: &str) -> Result<Timestamp, PolicyError> {
    use time::format_description::well_known::Rfc3339;
    let t = s.trim();
    let bad = || PolicyError::BadExpiry(s.to_string());
    let when = if let Some(n) = parse_duration(t) {
        now().checked_add(n).ok_or_else(bad)?
    } else if let Ok(d) = time::Date::parse(t, time::macros::format_description!("[year]-[month]-[day]")) {
        d.with_hms(23, 59, 59).map_err(|_| bad())?.assume_utc().unix_timestamp()
    } else {
        time::OffsetDateTime::parse(t, &Rfc3339)
            .map_err(|_| bad())?
            .unix_timestamp()
    };
    if when <= now() {
        return Err(PolicyError::ExpiryInPast(t.to_string()));
    }
    Ok(when)
}

/// The whole policy of one protected file: its owner, who else may do
/// what, when the content itself expires, and how long a licence may be
/// used without asking the server again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// The owner: always holds every right.
    pub owner: Email,
    /// Everyone else.
    #[serde(default)]
    pub grants: Vec<Grant>,
    /// When the content expires for everyone but the owner.
    pub expires: Option<Timestamp>,
    /// Days a use licence stays usable offline; 0 means ask the server at
    /// every open (how revocation can bite at once).
    pub offline_days: u32,
}

impl Policy {
    /// An owner-only policy with the given offline validity.
    pub fn owner_only(owner: Email, offline_days: u32) -> Self {
        Self {
            owner,
            grants: Vec::new(),
            expires: None,
            offline_days,
        }
    }

    /// Checks the invariants: grants non-empty, no principal twice,
    /// offline validity in range.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.offline_days > MAX_OFFLINE_DAYS {
            return Err(PolicyError::BadOfflineDays(self.offline_days));
        }
        let mut seen = std::collections::BTreeSet::new();
        for g in &self.grants {
            g.validate()?;
            if !seen.insert(&g.to) {
                return Err(PolicyError::DuplicateGrant(g.to.to_string()));
            }
        }
        Ok(())
    }

    /// The rights `who` holds at `at`: every right for the owner, else the
    /// union of the active grants that name them, and none once the content
    /// has expired.
    pub fn rights_for(&self, who: &Email, at: Timestamp) -> Rights {
        if who == &self.owner {
            return Rights::owner();
        }
        if self.expires.is_some_and(|e| at >= e) {
            return Rights::NONE;
        }
        self.grants
            .iter()
            .filter(|g| g.active_at(at) && g.to.matches(who))
            .fold(Rights::NONE, |acc, g| acc.union(g.rights))
    }

    /// When `who`'s access ends on its own (earliest of the content expiry
    /// and the latest matching grant expiry), if ever.
    pub fn access_ends(&self, who: &Email, at: Timestamp) -> Option<Timestamp> {
        if who == &self.owner {
            return None;
        }
        let grants: Vec<_> = self
            .grants
            .iter()
            .filter(|g| g.active_at(at) && g.to.matches(who))
            .collect();
        let grant_end = if grants.iter().any(|g| g.expires.is_none()) {
            None
        } else {
            grants.iter().filter_map(|g| g.expires).max()
        };
        match (grant_end, self.expires) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// When `who`'s access ended, if it has ended by `at`: the latest end
    /// of their lapsed grants, or the content's expiry. `None` while any
    /// grant is in force (or they never had one), and for the owner. Lets
    /// a refusal say "expired on ..." rather than "no rights".
    pub fn access_ended(&self, who: &Email, at: Timestamp) -> Option<Timestamp> {
        if who == &self.owner {
            return None;
        }
        let mine: Vec<_> = self.grants.iter().filter(|g| g.to.matches(who)).collect();
        if mine.is_empty() {
            return None;
        }
        if let Some(e) = self.expires.filter(|e| *e <= at) {
            return Some(e);
        }
        if mine.iter().any(|g| g.active_at(at)) {
            return None;
        }
        mine.iter().filter_map(|g| g.expires).max()
    }

    /// Adds or replaces the grant for the same principal.
    pub fn upsert_grant(&mut self, grant: Grant) {
        self.grants.retain(|g| g.to != grant.to);
        self.grants.push(grant);
    }

    /// Removes the grant for a principal; returns whether there was one.
    pub fn remove_grant(&mut self, to: &Principal) -> bool {
        let before = self.grants.len();
        self.grants.retain(|g| &g.to != to);
        before != self.grants.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(s: &str) -> Email {
        Email::parse(s).unwrap()
    }

    #[test]
    fn durations_take_every_unit() {
        for (s, secs) in [
            ("120s", 120),
            ("2m", 120),
            ("3h", 10_800),
            ("1d", 86_400),
            ("2w", 1_209_600),
        ] {
            assert_eq!(parse_duration(s), Some(secs), "{s}");
        }
        for s in ["", "s", "5", "5y", "-5m", "1.5h", "99999999999999999w"] {
            assert_eq!(parse_duration(s), None, "{s}");
        }
        let t = parse_expiry("120s").unwrap();
        assert!((now() + 119..=now() + 121).contains(&t));
        assert!(parse_expiry("2w").unwrap() > now() + 13 * 86_400);
    }

    #[test]
    fn access_ended_says_when_a_lapsed_grant_ended() {
        let mut p = Policy::owner_only(email("alice@example.com"), 1);
        let bob = email("bob@example.com");
        assert_eq!(p.access_ended(&bob, 1_000), None, "never granted");
        p.grants.push(Grant {
            to: Principal::parse("bob@example.com").unwrap(),
            rights: Rights::parse("view").unwrap(),
            expires: Some(500),
        });
        assert_eq!(p.access_ended(&bob, 400), None, "still in force");
        assert_eq!(p.access_ended(&bob, 1_000), Some(500));
        assert_eq!(p.access_ended(&email("alice@example.com"), 1_000), None);
    }

    #[test]
    fn grant_specs() {
        let g = Grant::parse_spec("bob@example.com:view,edit:7d").unwrap();
        assert_eq!(g.rights.to_string(), "view,edit");
        assert!(g.expires.unwrap() > now() + 6 * 86_400);
        assert_eq!(Grant::parse_spec("carol@other.org").unwrap().rights.to_string(), "view");
        assert!(matches!(
            Grant::parse_spec("bob@example.com:").unwrap_err(),
            PolicyError::EmptyRights(_)
        ));
        assert!(matches!(
            Grant::parse_spec("bob@example.com:fly").unwrap_err(),
            PolicyError::UnknownRight(_)
        ));
        assert!(matches!(
            Grant::parse_spec("bob:view").unwrap_err(),
            PolicyError::BadEmail(_)
        ));
        assert!(matches!(
            Grant::parse_spec("bob@example.com:view:2001-01-01").unwrap_err(),
            PolicyError::ExpiryInPast(_)
        ));
        assert!(matches!(
            Grant::parse_spec("bob@example.com:view:soon").unwrap_err(),
            PolicyError::BadExpiry(_)
        ));
        assert!(Grant::parse_spec("*@example.com:view:2099-12-31T00:00:00Z").is_ok());
    }

    #[test]
    fn rights_for_people() {
        let mut p = Policy::owner_only(email("alice@example.com"), 7);
        p.upsert_grant(Grant::parse_spec("bob@example.com:edit").unwrap());
        p.upsert_grant(Grant {
            to: Principal::parse("*@other.org").unwrap(),
            rights: Rights::parse("view").unwrap(),
            expires: Some(now() + 100),
        });
        p.validate().unwrap();
        let t = now();
        assert!(
            p.rights_for(&email("alice@example.com"), t)
                .has(super::super::Right::Owner)
        );
        assert_eq!(p.rights_for(&email("bob@example.com"), t).to_string(), "view,edit");
        assert_eq!(p.rights_for(&email("carol@other.org"), t).to_string(), "view");
        assert!(p.rights_for(&email("carol@other.org"), t + 200).is_empty());
        assert!(p.rights_for(&email("eve@evil.org"), t).is_empty());
        assert_eq!(p.access_ends(&email("carol@other.org"), t), Some(t + 100));
        assert_eq!(p.access_ends(&email("bob@example.com"), t), None);
        p.expires = Some(t - 1);
        assert!(p.rights_for(&email("bob@example.com"), t).is_empty());
        assert!(p.remove_grant(&Principal::parse("bob@example.com").unwrap()));
    }

    #[test]
    fn validation_and_unknown_fields() {
        let mut p = Policy::owner_only(email("alice@example.com"), 4000);
        assert_eq!(p.validate(), Err(PolicyError::BadOfflineDays(4000)));
        p.offline_days = 1;
        p.grants.push(Grant::parse_spec("bob@example.com").unwrap());
        p.grants.push(Grant::parse_spec("bob@example.com:edit").unwrap());
        assert!(matches!(p.validate(), Err(PolicyError::DuplicateGrant(_))));
        let j = r#"{"owner":"alice@example.com","offline_days":1,"colour":"red"}"#;
        assert!(
            serde_json::from_str::<Policy>(j)
                .unwrap_err()
                .to_string()
                .contains("unknown field")
        );
        let j = r#"{"owner":"alice@example.com","offline_days":1,"grants":[{"to":"bob@example.com","rights":[]}]}"#;
        let p: Policy = serde_json::from_str(j).unwrap();
        assert!(matches!(p.validate(), Err(PolicyError::EmptyRights(_))));
    }
}
