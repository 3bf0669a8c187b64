//! What each holder agreed to release to each relying party.

use cyberid_domain::Claim;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsentRecord {
    pub client_id: String,
    pub claims: Vec<Claim>,
    pub granted_at: i64,
}
