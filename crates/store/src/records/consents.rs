//! What each holder agreed to release to each relying party.

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsentRecord {
    pub client_id: String,
    pub claims: Vec<String>,
    pub granted_at: i64,
}
