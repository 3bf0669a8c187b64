//! Relying parties as the operator registered them.

/// A relying party as the operator registered it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelyingParty {
    pub client_id: String,
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub sector: String,
    pub allowed_claims: Vec<String>,
    pub legal_basis: Option<String>,
    /// `client_secret_basic` or `private_key_jwt`.
    pub auth_method: String,
    /// Keyed digest of the client secret (never the secret).
    pub secret_digest: Option<Vec<u8>>,
    /// The RP's public keys (JWKS JSON) for `private_key_jwt`.
    pub jwks: Option<String>,
    pub require_par: bool,
    pub suspended: bool,
    pub created_at: i64,
}
