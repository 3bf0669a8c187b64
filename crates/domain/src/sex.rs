//! Sex as the registry records it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Sex as recorded in the registry (and encoded in the citizen ID number's sequence parity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sex {
    /// Odd sequence numbers.
    Male,
    /// Even sequence numbers.
    Female,
}

impl Sex {
    /// `"male"` or `"female"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Sex::Male => "male",
            Sex::Female => "female",
        }
    }

    /// Parses `"male"` or `"female"` (exact, lowercase).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "male" => Some(Sex::Male),
            "female" => Some(Sex::Female),
            _ => None,
        }
    }
}

impl fmt::Display for Sex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
