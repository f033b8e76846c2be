//! The rows of the `grants` table: whom each live content is shared with,
//! one row per principal, so that "shared with me" reads the caller's
//! rows through an index instead of parsing every policy in the registry.
//!
//! The rows are derived here, inside the store, from the policy JSON that
//! every write of a policy carries: no caller can change a policy and
//! forget its rows, and a database written before the table existed is
//! filled from its policies the same way.

use std::collections::BTreeMap;

use super::StoreError;
use crate::policy::{Policy, Principal};

/// `until` of a grant that never ends on its own.
pub const FOREVER: i64 = i64::MAX;

/// One principal a content is shared with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRow {
    /// `name@example.com`, or `*@example.com` for a whole domain.
    pub principal: String,
    /// When the grant stops giving rights (the earlier of its own expiry
    /// and the content's); [`FOREVER`] when neither is set.
    pub until: i64,
}

/// The rows of a stored policy. The owner is left out: the owner's own
/// content is listed as owned, not shared.
pub fn rows_of(policy_json: &str) -> Result<Vec<GrantRow>, StoreError> {
    let policy: Policy = serde_json::from_str(policy_json)
        .map_err(|e| StoreError::Corrupt(format!("a stored policy does not decode: {e}")))?;
    let mut by_principal = BTreeMap::new();
    for g in &policy.grants {
        if g.to == Principal::User(policy.owner.clone()) {
            continue;
        }
        let until = match (g.expires, policy.expires) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).unwrap_or(FOREVER),
        };
        // A policy names each principal once; should it not, the longest
        // grant decides whether the content is listed.
        let e = by_principal.entry(g.to.to_string()).or_insert(until);
        *e = (*e).max(until);
    }
    Ok(by_principal
        .into_iter()
        .map(|(principal, until)| GrantRow { principal, until })
        .collect())
}

/// The two principals that can name `email`: the address itself and its
/// domain's wildcard.
pub fn principals_of(email: &str) -> (String, String) {
    let domain = email.rsplit_once('@').map_or("", |(_, d)| d);
    (email.to_string(), format!("*@{domain}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_name_each_principal_with_the_earliest_end() {
        let json = r#"{"owner":"a@x.com","grants":[
            {"to":"b@x.com","rights":["view"],"expires":50},
            {"to":"*@y.org","rights":["view"],"expires":null}],
            "expires":40,"offline_days":1}"#;
        assert_eq!(
            rows_of(json).unwrap(),
            [
                GrantRow {
                    principal: "*@y.org".into(),
                    until: 40
                },
                GrantRow {
                    principal: "b@x.com".into(),
                    until: 40
                },
            ]
        );
        let open = r#"{"owner":"a@x.com","grants":[{"to":"b@x.com","rights":["view"],"expires":null}],
            "expires":null,"offline_days":1}"#;
        assert_eq!(rows_of(open).unwrap()[0].until, FOREVER);
        assert!(matches!(rows_of("{}"), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn an_address_is_named_by_itself_and_its_domain() {
        assert_eq!(principals_of("b@x.com"), ("b@x.com".to_string(), "*@x.com".to_string()));
    }
}
