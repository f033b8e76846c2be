//! Email addresses and the principals grants name.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::PolicyError;

/// A normalised (trimmed, lower-case) email address. Identity in rightsfs is
/// an email address proven by a mailed code, so this type is the user id.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Email(String);

fn valid_domain(d: &str) -> bool {
    d.len() <= 253
        && d.contains('.')
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

fn valid_local(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 64
        && !l.starts_with('.')
        && !l.ends_with('.')
        && !l.contains("..")
        && l.chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'+-/=?^_`{|}~.".contains(c))
}

impl Email {
    /// Parses and normalises an address. Deliberately strict (ASCII
    /// dot-atom only): these addresses become keys and mail recipients.
    pub fn parse(s: &str) -> Result<Self, PolicyError> {
        let norm = s.trim().to_ascii_lowercase();
        match norm.rsplit_once('@') {
            Some((local, domain)) if valid_local(local) && valid_domain(domain) => Ok(Self(norm)),
            _ => Err(PolicyError::BadEmail(s.to_string())),
        }
    }

    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after `@`.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Email {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Email {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Whom a grant names: one address, or everyone at a domain (`*@domain`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Principal {
    /// Exactly this address.
    User(Email),
    /// Any verified address at this domain (lower-case, no `*@`).
    Domain(String),
}

impl Principal {
    /// Parses `name@example.com` or `*@example.com`.
    pub fn parse(s: &str) -> Result<Self, PolicyError> {
        let t = s.trim().to_ascii_lowercase();
        if let Some(domain) = t.strip_prefix("*@") {
            if valid_domain(domain) {
                return Ok(Self::Domain(domain.to_string()));
            }
            return Err(PolicyError::BadEmail(s.to_string()));
        }
        Email::parse(s).map(Self::User)
    }

    /// Whether `who` is covered by this principal.
    pub fn matches(&self, who: &Email) -> bool {
        match self {
            Self::User(e) => e == who,
            Self::Domain(d) => who.domain() == d,
        }
    }
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::User(e) => write!(f, "{e}"),
            Self::Domain(d) => write!(f, "*@{d}"),
        }
    }
}

impl Serialize for Principal {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Principal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(Email::parse(" Bob@Example.COM ").unwrap().as_str(), "bob@example.com");
        for bad in [
            "",
            "bob",
            "bob@",
            "@example.com",
            "bob@localhost",
            "a b@example.com",
            "bob@@x.org",
            "bob@-x.org",
            "a..b@x.org",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad} accepted");
        }
        let e: Result<Email, _> = serde_json::from_str("\"nope\"");
        assert!(e.unwrap_err().to_string().contains("not a valid email"));
    }

    #[test]
    fn principals() {
        let bob = Email::parse("bob@example.com").unwrap();
        assert!(Principal::parse("*@example.com").unwrap().matches(&bob));
        assert!(!Principal::parse("*@other.org").unwrap().matches(&bob));
        assert!(Principal::parse("bob@example.com").unwrap().matches(&bob));
        assert!(Principal::parse("*@").is_err());
        assert_eq!(Principal::parse("*@Example.com").unwrap().to_string(), "*@example.com");
    }
}
