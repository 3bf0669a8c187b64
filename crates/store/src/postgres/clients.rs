//! Relying parties and the client assertions they used.

use async_trait::async_trait;
use cyberid_domain::Claim;
use tokio_postgres::Row;

use super::PostgresStore;
use super::row::Fields;
use crate::columns::RP_COLUMNS;
use crate::records::{ClientStatus, RelyingParty, claims_json, to_json};
use crate::{ClientStore, StoreError};

/// A relying party from [`RP_COLUMNS`].
pub(super) fn relying_party_from(row: &Row) -> Result<RelyingParty, StoreError> {
    let f = Fields::new(row, "relying_parties", "rp_");
    Ok(RelyingParty {
        client_id: f.get("rp_client_id")?,
        name: f.get("rp_name")?,
        redirect_uris: f.json_list("rp_redirect_uris")?,
        sector: f.get("rp_sector")?,
        allowed_claims: allowed_claims(&f)?,
        legal_basis: f.get("rp_legal_basis")?,
        auth_method: f.text("rp_auth_method")?,
        secret_digest: f.get("rp_secret_digest")?,
        jwks: f.get("rp_jwks")?,
        require_par: f.get("rp_require_par")?,
        suspended: f.text::<ClientStatus>("rp_status")? == ClientStatus::Suspended,
        created_at: f.get("rp_created_at")?,
    })
}

/// The claims a relying party may ask for: registered once, a JSON array read whole.
fn allowed_claims(f: &Fields<'_>) -> Result<Vec<Claim>, StoreError> {
    f.json_list("rp_allowed_claims")?
        .iter()
        .map(|name| {
            Claim::parse(name)
                .ok_or_else(|| f.corrupt("rp_allowed_claims", format!("unknown claim {name:?}")))
        })
        .collect()
}

#[async_trait]
impl ClientStore for PostgresStore {
    async fn insert_relying_party(&self, rp: &RelyingParty) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO relying_parties (client_id, name, redirect_uris, sector,
               allowed_claims, legal_basis, auth_method, secret_digest, jwks, require_par,
               status, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            &[
                &rp.client_id,
                &rp.name,
                &to_json(&rp.redirect_uris),
                &rp.sector,
                &claims_json(&rp.allowed_claims),
                &rp.legal_basis,
                &rp.auth_method.as_str(),
                &rp.secret_digest,
                &rp.jwks,
                &rp.require_par,
                &ClientStatus::of(rp.suspended).as_str(),
                &rp.created_at,
            ],
        )
        .await
        .map(|_| ())
    }

    async fn relying_party(&self, client_id: &str) -> Result<Option<RelyingParty>, StoreError> {
        self.one(
            sql!("SELECT {RP_COLUMNS} FROM relying_parties r WHERE r.client_id = $1"),
            &[&client_id],
            relying_party_from,
        )
        .await
    }

    async fn relying_parties(&self) -> Result<Vec<RelyingParty>, StoreError> {
        self.rows(
            sql!("SELECT {RP_COLUMNS} FROM relying_parties r ORDER BY r.created_at, r.client_id"),
            &[],
        )
        .await?
        .iter()
        .map(relying_party_from)
        .collect()
    }

    async fn relying_parties_in_sector(
        &self,
        sector: &str,
    ) -> Result<Vec<RelyingParty>, StoreError> {
        self.rows(
            sql!(
                "SELECT {RP_COLUMNS} FROM relying_parties r WHERE r.sector = $1
                 ORDER BY r.name, r.client_id"
            ),
            &[&sector],
        )
        .await?
        .iter()
        .map(relying_party_from)
        .collect()
    }

    async fn set_relying_party_suspended(
        &self,
        client_id: &str,
        suspended: bool,
    ) -> Result<bool, StoreError> {
        self.execute(
            "UPDATE relying_parties SET status = $2 WHERE client_id = $1",
            &[&client_id, &ClientStatus::of(suspended).as_str()],
        )
        .await
        .map(|n| n == 1)
    }

    async fn use_client_assertion(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        self.execute(
            "INSERT INTO client_assertions (client_id, jti, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (client_id, jti) DO NOTHING",
            &[&client_id, &jti, &expires_at],
        )
        .await
        .map(|n| n == 1)
    }
}
