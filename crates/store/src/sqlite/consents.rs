//! Remembered consents: read and revoked here, merged by the approval that grants them.

use async_trait::async_trait;
use cyberid_domain::Claim;
use rusqlite::{Connection, params};

use super::row::{Fields, execute, query_all, query_one};
use super::{SqliteStore, db_error};
use crate::records::{ConsentRecord, claims_json};
use crate::{ConsentStore, StoreError};

/// Adds `claims` to what the holder agreed to release to `client_id` (written when the
/// service is new to the holder or the set grew, not at every sign-in). On the writer, in
/// the approval's own transaction: the merge cannot lose a claim to a concurrent approval.
pub(super) fn remember_consent(
    conn: &Connection,
    account_id: i64,
    client_id: &str,
    claims: &[Claim],
    now: i64,
) -> Result<(), StoreError> {
    let existing = query_one(
        conn,
        "SELECT claims FROM consents WHERE account_id = ?1 AND client_id = ?2",
        params![account_id, client_id],
        db_error,
        |row| Fields::new(row, "consents", "").claims("claims"),
    )?;
    let known = existing.is_some();
    let mut remembered = existing.unwrap_or_default();
    let before = remembered.len();
    for claim in claims {
        if !remembered.contains(claim) {
            remembered.push(*claim);
        }
    }
    if known && remembered.len() == before {
        return Ok(());
    }
    execute(
        conn,
        "INSERT INTO consents (account_id, client_id, claims, granted_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (account_id, client_id) DO UPDATE SET claims = excluded.claims, granted_at = excluded.granted_at",
        params![account_id, client_id, claims_json(&remembered), now],
    )
    .map(|_| ())
}

#[async_trait]
impl ConsentStore for SqliteStore {
    async fn consent(
        &self,
        account_id: i64,
        client_id: &str,
    ) -> Result<Option<ConsentRecord>, StoreError> {
        let client_id = client_id.to_owned();
        self.read(move |conn| {
            query_one(
                conn,
                "SELECT client_id, claims, granted_at FROM consents
                 WHERE account_id = ?1 AND client_id = ?2",
                params![account_id, client_id],
                db_error,
                consent_from,
            )
        })
        .await
    }

    async fn consents(&self, account_id: i64) -> Result<Vec<ConsentRecord>, StoreError> {
        self.read(move |conn| {
            query_all(
                conn,
                "SELECT client_id, claims, granted_at FROM consents
                 WHERE account_id = ?1 ORDER BY client_id",
                [account_id],
                consent_from,
            )
        })
        .await
    }

    async fn revoke_consent(&self, account_id: i64, client_id: &str) -> Result<bool, StoreError> {
        let client_id = client_id.to_owned();
        self.write(move |conn| {
            execute(
                conn,
                "DELETE FROM consents WHERE account_id = ?1 AND client_id = ?2",
                params![account_id, client_id],
            )
            .map(|n| n == 1)
        })
        .await
    }
}

fn consent_from(row: &rusqlite::Row<'_>) -> Result<ConsentRecord, StoreError> {
    let f = Fields::new(row, "consents", "");
    Ok(ConsentRecord {
        client_id: f.get("client_id")?,
        claims: f.claims("claims")?,
        granted_at: f.get("granted_at")?,
    })
}
