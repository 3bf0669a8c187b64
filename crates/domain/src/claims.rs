//! The claims a relying party can ask for.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A disclosable claim about the holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Claim {
    /// The network number (raw identifier: legal basis required).
    NetworkNumber,
    /// That the person's real name was verified against the registry.
    RealNameVerified,
    /// Age at least 14.
    AgeOver14,
    /// Age at least 16.
    AgeOver16,
    /// Age at least 18.
    AgeOver18,
    /// Age at least 60.
    AgeOver60,
    /// Province of the ID number (ISO 3166-2).
    Region,
    /// Registered name (legal basis required).
    Name,
    /// Birth date (legal basis required; predicates are preferred).
    Birthdate,
}

/// A claim name that is empty or not one of [`Claim::ALL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownClaim {
    /// The offending name, trimmed (empty for an empty list item), cut to 64 characters.
    pub name: String,
}

impl fmt::Display for UnknownClaim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.name.is_empty() {
            f.write_str("empty claim name in list")?;
        } else {
            write!(f, "unknown claim \"{}\"", self.name.escape_debug())?;
        }
        f.write_str("; valid claims are: ")?;
        for (i, c) in Claim::ALL.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(c.as_str())?;
        }
        Ok(())
    }
}

impl std::error::Error for UnknownClaim {}

impl Claim {
    /// Every claim, in a stable order.
    pub const ALL: [Claim; 9] = [
        Claim::NetworkNumber,
        Claim::RealNameVerified,
        Claim::AgeOver14,
        Claim::AgeOver16,
        Claim::AgeOver18,
        Claim::AgeOver60,
        Claim::Region,
        Claim::Name,
        Claim::Birthdate,
    ];

    /// The claim's name as used in requests, credentials and tokens.
    pub fn as_str(&self) -> &'static str {
        match self {
            Claim::NetworkNumber => "network_number",
            Claim::RealNameVerified => "real_name_verified",
            Claim::AgeOver14 => "age_over_14",
            Claim::AgeOver16 => "age_over_16",
            Claim::AgeOver18 => "age_over_18",
            Claim::AgeOver60 => "age_over_60",
            Claim::Region => "region",
            Claim::Name => "name",
            Claim::Birthdate => "birthdate",
        }
    }

    /// The claim with this exact name.
    pub fn parse(name: &str) -> Option<Claim> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// Raw identity data, which only relying parties with a recorded legal basis may receive.
    pub fn requires_legal_basis(&self) -> bool {
        matches!(self, Claim::NetworkNumber | Claim::Name | Claim::Birthdate)
    }

    /// What releasing the claim tells a service, in plain words, for consent screens.
    pub fn description(&self) -> &'static str {
        match self {
            Claim::NetworkNumber => "your network number",
            Claim::RealNameVerified => "that your identity is real-name verified",
            Claim::AgeOver14 => "whether you are 14 or older (not your birth date)",
            Claim::AgeOver16 => "whether you are 16 or older (not your birth date)",
            Claim::AgeOver18 => "whether you are 18 or older (not your birth date)",
            Claim::AgeOver60 => "whether you are 60 or older (not your birth date)",
            Claim::Region => "your province",
            Claim::Name => "your full name",
            Claim::Birthdate => "your date of birth",
        }
    }
}

/// Parses a comma-separated claim list such as `"age_over_18, region"`.
///
/// Items are trimmed; duplicates are dropped keeping the first occurrence. A blank input is an
/// empty list, but an empty item inside a list (`"a,,b"`, a trailing comma) is an error.
pub fn parse_claim_list(input: &str) -> Result<Vec<Claim>, UnknownClaim> {
    let mut out = Vec::new();
    if input.trim().is_empty() {
        return Ok(out);
    }
    for item in input.split(',') {
        let item = item.trim();
        let claim = Claim::parse(item).ok_or_else(|| UnknownClaim {
            name: item.chars().take(64).collect(),
        })?;
        if !out.contains(&claim) {
            out.push(claim);
        }
    }
    Ok(out)
}

impl fmt::Display for Claim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Claim {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Claim {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Claim::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(UnknownClaim {
                name: s.chars().take(64).collect(),
            })
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_distinct() {
        let names: std::collections::HashSet<_> = Claim::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), 9);
        for c in Claim::ALL {
            assert_eq!(Claim::parse(c.as_str()), Some(c));
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
            assert_eq!(serde_json::from_str::<Claim>(&json).unwrap(), c);
        }
        assert_eq!(Claim::AgeOver18.as_str(), "age_over_18");
        assert_eq!(Claim::parse("AGE_OVER_18"), None);
        assert!(serde_json::from_str::<Claim>("\"age_over_21\"").is_err());
    }

    #[test]
    fn legal_basis() {
        let needing: Vec<_> = Claim::ALL
            .into_iter()
            .filter(Claim::requires_legal_basis)
            .collect();
        assert_eq!(
            needing,
            [Claim::NetworkNumber, Claim::Name, Claim::Birthdate]
        );
    }

    #[test]
    fn lists() {
        assert_eq!(
            parse_claim_list(" age_over_18 ,region,age_over_18, name").unwrap(),
            [Claim::AgeOver18, Claim::Region, Claim::Name]
        );
        assert_eq!(parse_claim_list("").unwrap(), []);
        assert_eq!(parse_claim_list("   ").unwrap(), []);
        assert_eq!(
            parse_claim_list("region,,name").unwrap_err(),
            UnknownClaim {
                name: String::new()
            }
        );
        assert!(parse_claim_list("region,").is_err());
        let err = parse_claim_list("region,shoe_size").unwrap_err();
        assert_eq!(err.name, "shoe_size");
        let msg = err.to_string();
        assert!(msg.contains("shoe_size"));
        for c in Claim::ALL {
            assert!(msg.contains(c.as_str()), "{msg}");
        }
        let long = "x".repeat(1000);
        assert_eq!(parse_claim_list(&long).unwrap_err().name.len(), 64);
    }
}
