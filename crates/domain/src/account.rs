//! States of an account and the ways a relying party authenticates, as closed sets.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where an account stands. The row (and so the network number) stays for life; only
/// an active account signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    Active,
    Suspended,
    /// Retired: the data key is destroyed, the number is never reused.
    Deregistered,
}

impl AccountStatus {
    pub const ALL: [AccountStatus; 3] = [Self::Active, Self::Suspended, Self::Deregistered];

    /// The stored and serialised name: `active`, `suspended`, `deregistered`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Deregistered => "deregistered",
        }
    }

    /// The status with this exact name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for AccountStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a relying party authenticates at the token endpoint (OIDC Core §9). A
/// registration that names none gets a client secret.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMethod {
    /// A random secret, stored only as a keyed digest.
    #[default]
    ClientSecretBasic,
    /// An ES256 assertion signed with a key from the client's registered JWKS.
    PrivateKeyJwt,
}

impl ClientAuthMethod {
    pub const ALL: [ClientAuthMethod; 2] = [Self::ClientSecretBasic, Self::PrivateKeyJwt];

    /// The OAuth name: `client_secret_basic`, `private_key_jwt`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::PrivateKeyJwt => "private_key_jwt",
        }
    }

    /// The method with this exact name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == name)
    }
}

impl fmt::Display for ClientAuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_as_text_and_json() {
        for status in AccountStatus::ALL {
            assert_eq!(AccountStatus::parse(status.as_str()), Some(status));
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{status}\""));
            assert_eq!(
                serde_json::from_str::<AccountStatus>(&json).unwrap(),
                status
            );
        }
        for method in ClientAuthMethod::ALL {
            assert_eq!(ClientAuthMethod::parse(method.as_str()), Some(method));
            let json = serde_json::to_string(&method).unwrap();
            assert_eq!(json, format!("\"{method}\""));
            assert_eq!(
                serde_json::from_str::<ClientAuthMethod>(&json).unwrap(),
                method
            );
        }
        assert_eq!(
            ClientAuthMethod::ClientSecretBasic.as_str(),
            "client_secret_basic"
        );
        assert_eq!(AccountStatus::parse("Active"), None);
        assert_eq!(ClientAuthMethod::parse("client_secret_post"), None);
    }
}
