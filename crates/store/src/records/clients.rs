//! Relying parties as the operator registered them.

use cyberid_domain::{Claim, ClientAuthMethod};

/// A relying party as the operator registered it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelyingParty {
    pub client_id: String,
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub sector: String,
    pub allowed_claims: Vec<Claim>,
    pub legal_basis: Option<String>,
    pub auth_method: ClientAuthMethod,
    /// Keyed digest of the client secret (never the secret).
    pub secret_digest: Option<Vec<u8>>,
    /// The RP's public keys (JWKS JSON) for `private_key_jwt`.
    pub jwks: Option<String>,
    pub require_par: bool,
    pub suspended: bool,
    pub created_at: i64,
}

/// Whether a relying party may sign anyone in, as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClientStatus {
    Active,
    Suspended,
}

impl ClientStatus {
    pub(crate) fn of(suspended: bool) -> Self {
        if suspended {
            Self::Suspended
        } else {
            Self::Active
        }
    }

    pub(crate) fn as_str(&self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        [Self::Active, Self::Suspended]
            .into_iter()
            .find(|status| status.as_str() == text)
    }
}
