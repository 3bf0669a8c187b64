//! Remembered consents: read and revoked here, merged by the approval's statement
//! ([`super::sign_ins`]).

use async_trait::async_trait;
use tokio_postgres::Row;

use super::PostgresStore;
use super::row::Fields;
use crate::records::ConsentRecord;
use crate::{ConsentStore, StoreError};

fn consent_from(row: &Row) -> Result<ConsentRecord, StoreError> {
    let f = Fields::new(row, "consents", "");
    Ok(ConsentRecord {
        client_id: f.get("client_id")?,
        claims: f.claims("claims")?,
        granted_at: f.get("granted_at")?,
    })
}

#[async_trait]
impl ConsentStore for PostgresStore {
    async fn consent(
        &self,
        account_id: i64,
        client_id: &str,
    ) -> Result<Option<ConsentRecord>, StoreError> {
        self.one(
            "SELECT client_id, claims, granted_at FROM consents
             WHERE account_id = $1 AND client_id = $2",
            &[&account_id, &client_id],
            consent_from,
        )
        .await
    }

    async fn consents(&self, account_id: i64) -> Result<Vec<ConsentRecord>, StoreError> {
        self.rows(
            "SELECT client_id, claims, granted_at FROM consents
             WHERE account_id = $1 ORDER BY client_id",
            &[&account_id],
        )
        .await?
        .iter()
        .map(consent_from)
        .collect()
    }

    async fn revoke_consent(&self, account_id: i64, client_id: &str) -> Result<bool, StoreError> {
        self.execute(
            "DELETE FROM consents WHERE account_id = $1 AND client_id = $2",
            &[&account_id, &client_id],
        )
        .await
        .map(|n| n == 1)
    }
}
