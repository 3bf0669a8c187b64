//! Relying parties and the client assertions they used.

use async_trait::async_trait;
use rusqlite::{Connection, Row, params};

use super::row::{Fields, execute, query_all, query_one};
use super::{SqliteStore, db_error};
use crate::columns::RP_COLUMNS;
use crate::records::{ClientStatus, RelyingParty, claims_json, to_json};
use crate::{ClientStore, StoreError};

/// A relying party from [`RP_COLUMNS`].
fn relying_party_from(row: &Row<'_>) -> Result<RelyingParty, StoreError> {
    let f = Fields::new(row, "relying_parties", "rp_");
    Ok(RelyingParty {
        client_id: f.get("rp_client_id")?,
        name: f.get("rp_name")?,
        redirect_uris: f.json_list("rp_redirect_uris")?,
        sector: f.get("rp_sector")?,
        allowed_claims: f.claims("rp_allowed_claims")?,
        legal_basis: f.get("rp_legal_basis")?,
        auth_method: f.text("rp_auth_method")?,
        secret_digest: f.get("rp_secret_digest")?,
        jwks: f.get("rp_jwks")?,
        require_par: f.get("rp_require_par")?,
        suspended: f.text::<ClientStatus>("rp_status")? == ClientStatus::Suspended,
        created_at: f.get("rp_created_at")?,
    })
}

pub(super) fn read_relying_party(
    conn: &Connection,
    client_id: &str,
) -> Result<Option<RelyingParty>, StoreError> {
    query_one(
        conn,
        sql!("SELECT {RP_COLUMNS} FROM relying_parties r WHERE r.client_id = ?1"),
        [client_id],
        db_error,
        relying_party_from,
    )
}

#[async_trait]
impl ClientStore for SqliteStore {
    async fn insert_relying_party(&self, rp: &RelyingParty) -> Result<(), StoreError> {
        let rp = rp.clone();
        self.write(move |conn| {
            execute(
                conn,
                "INSERT INTO relying_parties (client_id, name, redirect_uris, sector,
                   allowed_claims, legal_basis, auth_method, secret_digest, jwks, require_par,
                   status, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    rp.client_id,
                    rp.name,
                    to_json(&rp.redirect_uris),
                    rp.sector,
                    claims_json(&rp.allowed_claims),
                    rp.legal_basis,
                    rp.auth_method.as_str(),
                    rp.secret_digest,
                    rp.jwks,
                    rp.require_par,
                    ClientStatus::of(rp.suspended).as_str(),
                    rp.created_at,
                ],
            )
            .map(|_| ())
        })
        .await
    }

    async fn relying_party(&self, client_id: &str) -> Result<Option<RelyingParty>, StoreError> {
        let client_id = client_id.to_owned();
        self.read(move |conn| read_relying_party(conn, &client_id))
            .await
    }

    async fn relying_parties(&self) -> Result<Vec<RelyingParty>, StoreError> {
        self.scan(|conn| {
            query_all(
                conn,
                sql!(
                    "SELECT {RP_COLUMNS} FROM relying_parties r ORDER BY r.created_at, r.client_id"
                ),
                [],
                relying_party_from,
            )
        })
        .await
    }

    async fn relying_parties_in_sector(
        &self,
        sector: &str,
    ) -> Result<Vec<RelyingParty>, StoreError> {
        let sector = sector.to_owned();
        self.read(move |conn| {
            query_all(
                conn,
                sql!(
                    "SELECT {RP_COLUMNS} FROM relying_parties r WHERE r.sector = ?1
                     ORDER BY r.name, r.client_id"
                ),
                [sector],
                relying_party_from,
            )
        })
        .await
    }

    async fn set_relying_party_suspended(
        &self,
        client_id: &str,
        suspended: bool,
    ) -> Result<bool, StoreError> {
        let client_id = client_id.to_owned();
        self.write(move |conn| {
            execute(
                conn,
                "UPDATE relying_parties SET status = ?2 WHERE client_id = ?1",
                params![client_id, ClientStatus::of(suspended).as_str()],
            )
            .map(|changed| changed == 1)
        })
        .await
    }

    async fn use_client_assertion(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let (client_id, jti) = (client_id.to_owned(), jti.to_owned());
        self.write(move |conn| {
            execute(
                conn,
                "INSERT INTO client_assertions (client_id, jti, expires_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (client_id, jti) DO NOTHING",
                params![client_id, jti, expires_at],
            )
            .map(|n| n == 1)
        })
        .await
    }
}
