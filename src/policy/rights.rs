//! Rights and sets of rights.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::PolicyError;

/// One thing a person may do with protected content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Right {
    /// Decrypt and read. Enforced by the mount and `rights cat`.
    View,
    /// Write new content under the same policy. Enforced by the mount.
    Edit,
    /// Remove protection (`rights unprotect`). Advisory once someone can view.
    Export,
    /// Change who else has access (server-enforced).
    Share,
    /// Everything, including revoke and reading the access log.
    Owner,
}

const ALL: [Right; 5] = [Right::View, Right::Edit, Right::Export, Right::Share, Right::Owner];

impl Right {
    /// The lower-case name used in specs and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::View => "view",
            Self::Edit => "edit",
            Self::Export => "export",
            Self::Share => "share",
            Self::Owner => "owner",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }

    /// Parses a right's name (case-insensitive).
    pub fn parse(s: &str) -> Result<Self, PolicyError> {
        let t = s.trim().to_ascii_lowercase();
        ALL.into_iter()
            .find(|r| r.name() == t)
            .ok_or_else(|| PolicyError::UnknownRight(s.to_string()))
    }
}

/// A set of rights, closed under implication: `owner` implies all others,
/// and `edit`, `export` and `share` each imply `view` (you cannot edit what
/// you cannot read).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Rights(u8);

impl Rights {
    /// No rights at all.
    pub const NONE: Rights = Rights(0);

    /// Every right.
    pub fn owner() -> Self {
        Self::from_iter([Right::Owner])
    }

    /// Whether `r` is granted (directly or by implication).
    pub fn has(self, r: Right) -> bool {
        self.0 & r.bit() != 0
    }

    /// Whether nothing is granted.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The union of two sets.
    pub fn union(self, other: Rights) -> Rights {
        Rights(self.0 | other.0)
    }

    /// The intersection of two sets.
    pub fn intersect(self, other: Rights) -> Rights {
        Rights(self.0 & other.0)
    }

    /// The rights in a fixed order, for display.
    pub fn iter(self) -> impl Iterator<Item = Right> {
        ALL.into_iter().filter(move |r| self.has(*r))
    }

    /// Parses a comma-separated list such as `view,edit`.
    pub fn parse(s: &str) -> Result<Self, PolicyError> {
        s.split(',')
            .filter(|p| !p.trim().is_empty())
            .map(Right::parse)
            .collect()
    }

    /// Names, comma-separated.
    pub fn to_names(self) -> Vec<&'static str> {
        self.iter().map(Right::name).collect()
    }

    /// The set as one byte (bit 0 view, 1 edit, 2 export, 3 share, 4
    /// owner), as signed in edit certificates.
    pub fn bits(self) -> u8 {
        self.0
    }

    /// The set a byte of [`bits`](Self::bits) names, closed under
    /// implication; `None` if it sets an unknown bit.
    pub fn from_bits(bits: u8) -> Option<Self> {
        (bits >> ALL.len() == 0).then(|| Rights(Self::close(bits)))
    }

    fn close(mut bits: u8) -> u8 {
        if bits & Right::Owner.bit() != 0 {
            bits = ALL.iter().fold(0, |b, r| b | r.bit());
        }
        if bits & (Right::Edit.bit() | Right::Export.bit() | Right::Share.bit()) != 0 {
            bits |= Right::View.bit();
        }
        bits
    }
}

impl FromIterator<Right> for Rights {
    fn from_iter<I: IntoIterator<Item = Right>>(iter: I) -> Self {
        Rights(Self::close(iter.into_iter().fold(0, |b, r| b | r.bit())))
    }
}

impl std::fmt::Display for Rights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        f.write_str(&self.to_names().join(","))
    }
}

impl Serialize for Rights {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.to_names())
    }
}

impl<'de> Deserialize<'de> for Rights {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let names = Vec::<String>::deserialize(d)?;
        names
            .iter()
            .map(|n| Right::parse(n))
            .collect::<Result<Rights, _>>()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implication_and_parsing() {
        let r = Rights::parse("edit").unwrap();
        assert!(r.has(Right::View) && r.has(Right::Edit) && !r.has(Right::Export));
        assert_eq!(Rights::owner().to_names(), ["view", "edit", "export", "share", "owner"]);
        assert_eq!(Rights::parse("View, EDIT").unwrap().to_string(), "view,edit");
        assert_eq!(
            Rights::parse("fly").unwrap_err(),
            PolicyError::UnknownRight("fly".into())
        );
        assert!(Rights::parse("").unwrap().is_empty());
    }

    #[test]
    fn serde_round_trip_and_unknown_right() {
        let r = Rights::parse("view,share").unwrap();
        let j = serde_json::to_string(&r).unwrap();
        assert_eq!(j, r#"["view","share"]"#);
        assert_eq!(serde_json::from_str::<Rights>(&j).unwrap(), r);
        let e = serde_json::from_str::<Rights>(r#"["view","print"]"#).unwrap_err();
        assert!(e.to_string().contains("unknown right 'print'"));
    }
}
