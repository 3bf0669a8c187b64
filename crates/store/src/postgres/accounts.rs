//! Accounts with their devices and credentials, the status lists, and failure counts.

use async_trait::async_trait;
use cyberid_domain::NetworkNumber;
use deadpool_postgres::ClientWrapper;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;

use super::row::Fields;
use super::{PostgresStore, db_error, pool_error};
use crate::columns::{ACCOUNT_COLUMNS, DEVICE_COLUMNS};
use crate::records::{
    AccountRecord, DeviceRecord, EnrolError, EnrolledAccount, Factor, NewAccount, ResumedEnrolment,
};
use crate::{AccountStore, STATUS_LIST_CAPACITY, StoreError, failpoint};

/// An account from [`ACCOUNT_COLUMNS`].
pub(super) fn account_from(row: &Row) -> Result<AccountRecord, StoreError> {
    let f = Fields::new(row, "accounts", "account_");
    Ok(AccountRecord {
        account_id: f.get("account_id")?,
        status: f.text("account_status")?,
        person_digest: f.get("account_person_digest")?,
        network_number: f.get("account_network_number")?,
        wrapped_data_key: f.get("account_wrapped_data_key")?,
        sealed_attributes: f.get("account_sealed_attributes")?,
        pin_key_id: f.get("account_pin_key_id")?,
        pin_verifier: f.get("account_pin_verifier")?,
        pin_failures: f.unsigned::<i32, _>("account_pin_failures")?,
        face_failures: f.unsigned::<i32, _>("account_face_failures")?,
    })
}

/// The account of [`ACCOUNT_COLUMNS`] in an outer join: `None` when the join found none.
pub(super) fn joined_account(row: &Row) -> Result<Option<AccountRecord>, StoreError> {
    let found: Option<i64> = Fields::new(row, "accounts", "account_").get("account_id")?;
    found.map(|_| account_from(row)).transpose()
}

/// A device from [`DEVICE_COLUMNS`].
pub(super) fn device_from(row: &Row) -> Result<DeviceRecord, StoreError> {
    let f = Fields::new(row, "devices", "device_");
    Ok(DeviceRecord {
        device_id: f.get("device_id")?,
        public_jwk: f.get("device_public_jwk")?,
    })
}

fn enrol_error(error: tokio_postgres::Error) -> EnrolError {
    if let Some(db) = error.as_db_error()
        && db.code() == &SqlState::UNIQUE_VIOLATION
    {
        match db.constraint() {
            Some("accounts_person_digest_key") => return EnrolError::PersonAlreadyEnrolled,
            Some("accounts_network_number_key") => return EnrolError::NetworkNumberTaken,
            Some("devices_thumbprint_key") => return EnrolError::DeviceAlreadyBound,
            Some("accounts_pin_key_id_key") => return EnrolError::PinKeyIdTaken,
            _ => {}
        }
    }
    EnrolError::Store(db_error(error))
}

/// An account with its first device and credential, inside the caller's transaction.
/// With `skip_existing`, a person who already has an account is passed over (`None`) instead
/// of being an error: for bulk provisioning.
async fn insert_account(
    tx: &deadpool_postgres::Transaction<'_>,
    account: &NewAccount,
    skip_existing: bool,
) -> Result<Option<EnrolledAccount>, EnrolError> {
    let sql = if skip_existing {
        "INSERT INTO accounts (person_digest, network_number, wrapped_data_key,
             sealed_attributes, pin_key_id, pin_verifier, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT ON CONSTRAINT accounts_person_digest_key DO NOTHING RETURNING id"
    } else {
        "INSERT INTO accounts (person_digest, network_number, wrapped_data_key,
             sealed_attributes, pin_key_id, pin_verifier, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id"
    };
    let insert_account = tx.prepare_cached(sql).await.map_err(enrol_error)?;
    let Some(row) = tx
        .query_opt(
            &insert_account,
            &[
                &&account.person_digest[..],
                &account.network_number.as_compact(),
                &account.wrapped_data_key,
                &account.sealed_attributes,
                &&account.pin_key_id[..],
                &account.pin_verifier,
                &account.created_at,
            ],
        )
        .await
        .map_err(enrol_error)?
    else {
        return Ok(None);
    };
    let account_id: i64 = Fields::new(&row, "accounts", "").get("id")?;
    failpoint("enrol-after-account-insert");
    let insert_device = tx
        .prepare_cached(
            "INSERT INTO devices (account_id, thumbprint, public_jwk, created_at)
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .await
        .map_err(enrol_error)?;
    let row = tx
        .query_one(
            &insert_device,
            &[
                &account_id,
                &account.device_thumbprint,
                &account.device_public_jwk,
                &account.created_at,
            ],
        )
        .await
        .map_err(enrol_error)?;
    let device_id: i64 = Fields::new(&row, "devices", "").get("id")?;
    let status_index = insert_credential(tx, account_id, device_id, account).await?;
    Ok(Some(EnrolledAccount {
        account_id,
        device_id,
        status_index,
    }))
}

/// The credential row of an enrolment; its key is the credential's status index.
async fn insert_credential(
    tx: &deadpool_postgres::Transaction<'_>,
    account_id: i64,
    device_id: i64,
    account: &NewAccount,
) -> Result<u64, EnrolError> {
    let statement = tx
        .prepare_cached(
            "INSERT INTO credentials (account_id, device_id, issued_at, expires_at)
             VALUES ($1, $2, $3, $4) RETURNING status_index",
        )
        .await
        .map_err(enrol_error)?;
    let row = tx
        .query_one(
            &statement,
            &[
                &account_id,
                &device_id,
                &account.created_at,
                &account.credential_expires_at,
            ],
        )
        .await
        .map_err(enrol_error)?;
    Ok(Fields::new(&row, "credentials", "").unsigned::<i64, _>("status_index")?)
}

/// An enrolment's transaction (see [`AccountStore::enrol`]).
async fn enrol_in(
    client: &mut ClientWrapper,
    account: &NewAccount,
) -> Result<EnrolledAccount, EnrolError> {
    let tx = client.transaction().await.map_err(enrol_error)?;
    let enrolled = insert_account(&tx, account, false)
        .await?
        .ok_or(EnrolError::PersonAlreadyEnrolled)?;
    failpoint("enrol-before-commit");
    tx.commit().await.map_err(enrol_error)?;
    Ok(enrolled)
}

/// A resumed enrolment's transaction (see [`AccountStore::resume_enrolment`]).
async fn resume_in(
    client: &mut ClientWrapper,
    account: &NewAccount,
) -> Result<Option<ResumedEnrolment>, EnrolError> {
    let tx = client.transaction().await.map_err(enrol_error)?;
    let found = tx
        .query_opt(
            "SELECT a.id AS account_id, a.network_number AS account_network_number,
                    a.wrapped_data_key AS account_wrapped_data_key,
                    a.sealed_attributes AS account_sealed_attributes, d.id AS device_id
             FROM accounts a JOIN devices d ON d.account_id = a.id
             WHERE a.person_digest = $1 AND a.status = 'active'
               AND d.thumbprint = $2 AND d.revoked_at IS NULL
             FOR UPDATE OF a",
            &[&&account.person_digest[..], &account.device_thumbprint],
        )
        .await
        .map_err(enrol_error)?;
    let Some(row) = found else { return Ok(None) };
    let a = Fields::new(&row, "accounts", "account_");
    let account_id: i64 = a.get("account_id")?;
    let device_id: i64 = Fields::new(&row, "devices", "device_").get("device_id")?;
    let (Some(wrapped_data_key), Some(sealed_attributes)) = (
        a.get::<Option<Vec<u8>>>("account_wrapped_data_key")?,
        a.get::<Option<Vec<u8>>>("account_sealed_attributes")?,
    ) else {
        return Ok(None);
    };
    let network_number = NetworkNumber::parse(a.get("account_network_number")?)
        .map_err(|e| a.corrupt("account_network_number", e))?;
    tx.execute(
        "UPDATE accounts SET pin_key_id = $2, pin_verifier = $3, pin_failures = 0 WHERE id = $1",
        &[&account_id, &&account.pin_key_id[..], &account.pin_verifier],
    )
    .await
    .map_err(enrol_error)?;
    tx.execute(
        "UPDATE credentials SET status = 1 WHERE device_id = $1 AND status = 0",
        &[&device_id],
    )
    .await
    .map_err(enrol_error)?;
    let status_index = insert_credential(&tx, account_id, device_id, account).await?;
    tx.commit().await.map_err(enrol_error)?;
    Ok(Some(ResumedEnrolment {
        enrolled: EnrolledAccount {
            account_id,
            device_id,
            status_index,
        },
        network_number,
        wrapped_data_key,
        sealed_attributes,
    }))
}

#[async_trait]
impl AccountStore for PostgresStore {
    async fn enrol(&self, account: &NewAccount) -> Result<EnrolledAccount, EnrolError> {
        self.bounded(async {
            let mut client = self.client().await?;
            let enrolled = enrol_in(&mut client, account).await;
            client.release();
            enrolled
        })
        .await
    }

    async fn enrol_many(&self, accounts: Vec<NewAccount>) -> Result<u64, EnrolError> {
        let mut client = self.pool.get().await.map_err(pool_error)?;
        let tx = client.transaction().await.map_err(enrol_error)?;
        let mut created = 0;
        for account in &accounts {
            created += u64::from(insert_account(&tx, account, true).await?.is_some());
        }
        tx.commit().await.map_err(enrol_error)?;
        Ok(created)
    }

    async fn resume_enrolment(
        &self,
        account: &NewAccount,
    ) -> Result<Option<ResumedEnrolment>, EnrolError> {
        self.bounded(async {
            let mut client = self.client().await?;
            let resumed = resume_in(&mut client, account).await;
            client.release();
            resumed
        })
        .await
    }

    async fn max_status_index(&self) -> Result<Option<u64>, StoreError> {
        self.one(
            "SELECT MAX(status_index) AS max_index FROM credentials",
            &[],
            |row| {
                let f = Fields::new(row, "credentials", "");
                f.get::<Option<i64>>("max_index")?
                    .map(|max| u64::try_from(max).map_err(|e| f.corrupt("status_index", e)))
                    .transpose()
            },
        )
        .await
        .map(Option::flatten)
    }

    async fn credential_statuses(&self, list: u64) -> Result<Vec<(u64, u8)>, StoreError> {
        let start = list.saturating_mul(STATUS_LIST_CAPACITY);
        let end = start.saturating_add(STATUS_LIST_CAPACITY);
        self.rows(
            "SELECT status_index, status FROM credentials
             WHERE status <> 0 AND status_index >= $1 AND status_index < $2",
            &[&(start as i64), &(end as i64)],
        )
        .await?
        .iter()
        .map(|row| {
            let f = Fields::new(row, "credentials", "");
            let index: u64 = f.unsigned::<i64, _>("status_index")?;
            Ok((index - start, f.unsigned::<i16, _>("status")?))
        })
        .collect()
    }

    async fn set_credential_status(
        &self,
        status_index: u64,
        status: u8,
    ) -> Result<bool, StoreError> {
        self.execute(
            "UPDATE credentials SET status = $2 WHERE status_index = $1",
            &[&(status_index as i64), &i16::from(status)],
        )
        .await
        .map(|changed| changed == 1)
    }

    async fn account_by_device(
        &self,
        thumbprint: &str,
    ) -> Result<Option<(AccountRecord, DeviceRecord)>, StoreError> {
        self.one(
            sql!(
                "SELECT {ACCOUNT_COLUMNS}, {DEVICE_COLUMNS}
                 FROM devices d JOIN accounts a ON a.id = d.account_id
                 WHERE d.thumbprint = $1 AND d.revoked_at IS NULL"
            ),
            &[&thumbprint],
            |row| Ok((account_from(row)?, device_from(row)?)),
        )
        .await
    }

    async fn account(&self, account_id: i64) -> Result<Option<AccountRecord>, StoreError> {
        self.one(
            sql!("SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.id = $1"),
            &[&account_id],
            account_from,
        )
        .await
    }

    async fn count_attempt(
        &self,
        account_id: i64,
        factor: Factor,
        limit: u32,
    ) -> Result<Option<u32>, StoreError> {
        let sql = match factor {
            Factor::Pin => {
                "UPDATE accounts SET pin_failures = pin_failures + 1
                 WHERE id = $1 AND pin_failures < $2 RETURNING pin_failures AS failures"
            }
            Factor::Face => {
                "UPDATE accounts SET face_failures = face_failures + 1
                 WHERE id = $1 AND face_failures < $2 RETURNING face_failures AS failures"
            }
        };
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        self.one(sql, &[&account_id, &limit], |row| {
            Fields::new(row, "accounts", "").unsigned::<i32, _>("failures")
        })
        .await
    }

    async fn reset_attempts(&self, account_id: i64, factor: Factor) -> Result<(), StoreError> {
        let sql = match factor {
            Factor::Pin => {
                "UPDATE accounts SET pin_failures = 0 WHERE id = $1 AND pin_failures <> 0"
            }
            Factor::Face => {
                "UPDATE accounts SET face_failures = 0 WHERE id = $1 AND face_failures <> 0"
            }
        };
        self.execute(sql, &[&account_id]).await.map(|_| ())
    }

    async fn replace_pin(
        &self,
        account_id: i64,
        pin_key_id: &[u8],
        pin_verifier: &str,
    ) -> Result<bool, StoreError> {
        self.execute(
            "UPDATE accounts SET pin_key_id = $2, pin_verifier = $3, pin_failures = 0, face_failures = 0
             WHERE id = $1 AND status = 'active'",
            &[&account_id, &pin_key_id, &pin_verifier],
        )
        .await
        .map(|n| n == 1)
    }
}
