//! Assurance levels, expressed to relying parties as OIDC `acr` and `amr` values.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How strongly a login proved the person: each level adds one factor to the one below.
/// Ordered, so `level >= AssuranceLevel::L2` reads naturally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AssuranceLevel {
    /// Possession: a signature by the enrolled device key.
    L1,
    /// Possession and knowledge: device key and PIN.
    L2,
    /// Possession, knowledge and inherence: device key, PIN and a live face match.
    L3,
}

impl AssuranceLevel {
    /// All levels, lowest first.
    pub const ALL: [AssuranceLevel; 3] = [Self::L1, Self::L2, Self::L3];

    /// The OIDC `acr` value.
    pub fn acr(&self) -> &'static str {
        match self {
            Self::L1 => "urn:cyberid:acr:l1",
            Self::L2 => "urn:cyberid:acr:l2",
            Self::L3 => "urn:cyberid:acr:l3",
        }
    }

    /// The level for an OIDC `acr` value.
    pub fn from_acr(acr: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.acr() == acr)
    }

    /// The OIDC `amr` values (RFC 8176 names): hardware key, PIN, face.
    pub fn amr(&self) -> &'static [&'static str] {
        match self {
            Self::L1 => &["hwk"],
            Self::L2 => &["hwk", "pin"],
            Self::L3 => &["hwk", "pin", "face"],
        }
    }

    /// The short name, `"L1"`..`"L3"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::L1 => "L1",
            Self::L2 => "L2",
            Self::L3 => "L3",
        }
    }

    /// The short name (`L1`, `L2`, `L3`).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.as_str() == name)
    }
}

impl fmt::Display for AssuranceLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn acr_round_trip() {
        for l in AssuranceLevel::ALL {
            assert_eq!(AssuranceLevel::from_acr(l.acr()), Some(l));
        }
        assert_eq!(AssuranceLevel::L2.acr(), "urn:cyberid:acr:l2");
        assert_eq!(AssuranceLevel::from_acr("urn:cyberid:acr:l4"), None);
        assert_eq!(AssuranceLevel::from_acr("L1"), None);
    }

    #[test]
    fn ordering_and_amr() {
        assert!(AssuranceLevel::L1 < AssuranceLevel::L2);
        assert!(AssuranceLevel::L2 < AssuranceLevel::L3);
        assert_eq!(AssuranceLevel::L1.amr(), ["hwk"]);
        assert_eq!(AssuranceLevel::L2.amr(), ["hwk", "pin"]);
        assert_eq!(AssuranceLevel::L3.amr(), ["hwk", "pin", "face"]);
    }

    #[test]
    fn serde_short_names() {
        assert_eq!(
            serde_json::to_string(&AssuranceLevel::L3).unwrap(),
            "\"L3\""
        );
        assert_eq!(
            serde_json::from_str::<AssuranceLevel>("\"L1\"").unwrap(),
            AssuranceLevel::L1
        );
        assert!(serde_json::from_str::<AssuranceLevel>("\"l1\"").is_err());
    }
}
