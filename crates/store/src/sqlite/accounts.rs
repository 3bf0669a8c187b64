//! Accounts with their devices and credentials, the status lists, and failure counts.

use async_trait::async_trait;
use cyberid_domain::NetworkNumber;
use rusqlite::{Connection, ErrorCode, Row, params};

use super::row::{Fields, execute, query_all, query_one};
use super::{SqliteStore, db_error};
use crate::columns::ACCOUNT_COLUMNS;
use crate::records::{
    AccountRecord, DeviceRecord, EnrolError, EnrolledAccount, Factor, NewAccount, ResumedEnrolment,
};
use crate::{AccountStore, STATUS_LIST_CAPACITY, StoreError, failpoint};

/// An account from [`ACCOUNT_COLUMNS`].
pub(super) fn account_from(row: &Row<'_>) -> Result<AccountRecord, StoreError> {
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
        pin_failures: f.get("account_pin_failures")?,
        face_failures: f.get("account_face_failures")?,
    })
}

fn device_from(row: &Row<'_>) -> Result<DeviceRecord, StoreError> {
    let f = Fields::new(row, "devices", "device_");
    Ok(DeviceRecord {
        device_id: f.get("device_id")?,
        public_jwk: f.get("device_public_jwk")?,
    })
}

pub(super) fn account_by_device_sql() -> &'static str {
    sql!(
        "SELECT {ACCOUNT_COLUMNS}, d.id AS device_id, d.public_jwk AS device_public_jwk
         FROM devices d JOIN accounts a ON a.id = d.account_id
         WHERE d.thumbprint = ?1 AND d.revoked_at IS NULL"
    )
}

pub(super) fn read_account(
    conn: &Connection,
    account_id: i64,
) -> Result<Option<AccountRecord>, StoreError> {
    query_one(
        conn,
        sql!("SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.id = ?1"),
        [account_id],
        db_error,
        account_from,
    )
}

pub(super) fn read_device(
    conn: &Connection,
    thumbprint: &str,
) -> Result<Option<(AccountRecord, DeviceRecord)>, StoreError> {
    query_one(
        conn,
        account_by_device_sql(),
        [thumbprint],
        db_error,
        |row| Ok((account_from(row)?, device_from(row)?)),
    )
}

/// Sets the failure count of `factor` back to zero (a count already at zero is not
/// rewritten).
pub(super) fn reset_factor(
    conn: &Connection,
    account_id: i64,
    factor: Factor,
) -> Result<(), StoreError> {
    let sql = match factor {
        Factor::Pin => "UPDATE accounts SET pin_failures = 0 WHERE id = ?1 AND pin_failures <> 0",
        Factor::Face => {
            "UPDATE accounts SET face_failures = 0 WHERE id = ?1 AND face_failures <> 0"
        }
    };
    execute(conn, sql, [account_id]).map(|_| ())
}

/// Maps a UNIQUE violation to the enrolment error it means.
fn enrol_error(error: rusqlite::Error) -> EnrolError {
    if let rusqlite::Error::SqliteFailure(failure, Some(message)) = &error
        && failure.code == ErrorCode::ConstraintViolation
    {
        let by_column = [
            ("accounts.person_digest", EnrolError::PersonAlreadyEnrolled),
            ("accounts.network_number", EnrolError::NetworkNumberTaken),
            ("devices.thumbprint", EnrolError::DeviceAlreadyBound),
            ("accounts.pin_key_id", EnrolError::PinKeyIdTaken),
        ];
        if let Some((_, mapped)) = by_column
            .into_iter()
            .find(|(column, _)| message.contains(column))
        {
            return mapped;
        }
    }
    EnrolError::Store(db_error(error))
}

/// The `id` a `RETURNING id` gave back.
fn returned_id(row: &Row<'_>, table: &'static str) -> Result<i64, EnrolError> {
    Ok(Fields::new(row, table, "").get("id")?)
}

/// An account with its first device and credential, inside the caller's transaction.
/// With `skip_existing`, a person who already has an account is passed over (`None`) instead
/// of being an error: for bulk provisioning.
fn insert_account(
    tx: &Connection,
    account: &NewAccount,
    skip_existing: bool,
) -> Result<Option<EnrolledAccount>, EnrolError> {
    let sql = if skip_existing {
        "INSERT INTO accounts (person_digest, network_number, wrapped_data_key,
             sealed_attributes, pin_key_id, pin_verifier, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (person_digest) DO NOTHING RETURNING id"
    } else {
        "INSERT INTO accounts (person_digest, network_number, wrapped_data_key,
             sealed_attributes, pin_key_id, pin_verifier, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id"
    };
    let Some(account_id) = query_one(
        tx,
        sql,
        params![
            &account.person_digest[..],
            account.network_number.as_compact(),
            account.wrapped_data_key,
            account.sealed_attributes,
            &account.pin_key_id[..],
            account.pin_verifier,
            account.created_at,
        ],
        enrol_error,
        |row| returned_id(row, "accounts"),
    )?
    else {
        return Ok(None);
    };
    failpoint("enrol-after-account-insert");
    let device_id = query_one(
        tx,
        "INSERT INTO devices (account_id, thumbprint, public_jwk, created_at)
         VALUES (?1, ?2, ?3, ?4) RETURNING id",
        params![
            account_id,
            account.device_thumbprint,
            account.device_public_jwk,
            account.created_at
        ],
        enrol_error,
        |row| returned_id(row, "devices"),
    )?
    .ok_or_else(|| StoreError::Database("the device insert returned no id".into()))?;
    let status_index = insert_credential(tx, account_id, device_id, account)?;
    Ok(Some(EnrolledAccount {
        account_id,
        device_id,
        status_index,
    }))
}

/// The credential row of an enrolment; its key is the credential's status index.
fn insert_credential(
    tx: &Connection,
    account_id: i64,
    device_id: i64,
    account: &NewAccount,
) -> Result<u64, EnrolError> {
    query_one(
        tx,
        "INSERT INTO credentials (account_id, device_id, issued_at, expires_at)
         VALUES (?1, ?2, ?3, ?4) RETURNING status_index",
        params![
            account_id,
            device_id,
            account.created_at,
            account.credential_expires_at
        ],
        enrol_error,
        |row| Ok(Fields::new(row, "credentials", "").unsigned::<i64, u64>("status_index")?),
    )?
    .ok_or_else(|| StoreError::Database("the credential insert returned no index".into()).into())
}

#[async_trait]
impl AccountStore for SqliteStore {
    async fn enrol(&self, account: &NewAccount) -> Result<EnrolledAccount, EnrolError> {
        let account = account.clone();
        self.write(move |conn| {
            let tx = conn.savepoint().map_err(enrol_error)?;
            let enrolled =
                insert_account(&tx, &account, false)?.ok_or(EnrolError::PersonAlreadyEnrolled)?;
            failpoint("enrol-before-commit");
            tx.commit().map_err(enrol_error)?;
            Ok(enrolled)
        })
        .await
    }

    async fn enrol_many(&self, accounts: Vec<NewAccount>) -> Result<u64, EnrolError> {
        self.write(move |conn| {
            let tx = conn.savepoint().map_err(enrol_error)?;
            let mut created = 0;
            for account in &accounts {
                created += u64::from(insert_account(&tx, account, true)?.is_some());
            }
            tx.commit().map_err(enrol_error)?;
            Ok(created)
        })
        .await
    }

    async fn resume_enrolment(
        &self,
        account: &NewAccount,
    ) -> Result<Option<ResumedEnrolment>, EnrolError> {
        let account = account.clone();
        self.write(move |conn| {
            let tx = conn.savepoint().map_err(enrol_error)?;
            let found = query_one(
                &tx,
                "SELECT a.id AS account_id, a.network_number AS account_network_number,
                        a.wrapped_data_key AS account_wrapped_data_key,
                        a.sealed_attributes AS account_sealed_attributes, d.id AS device_id
                 FROM accounts a JOIN devices d ON d.account_id = a.id
                 WHERE a.person_digest = ?1 AND a.status = 'active'
                   AND d.thumbprint = ?2 AND d.revoked_at IS NULL",
                params![&account.person_digest[..], account.device_thumbprint],
                enrol_error,
                |row| {
                    let a = Fields::new(row, "accounts", "account_");
                    let d = Fields::new(row, "devices", "device_");
                    Ok((
                        a.get::<i64>("account_id")?,
                        a.get::<String>("account_network_number")?,
                        a.get::<Option<Vec<u8>>>("account_wrapped_data_key")?,
                        a.get::<Option<Vec<u8>>>("account_sealed_attributes")?,
                        d.get::<i64>("device_id")?,
                    ))
                },
            )?;
            let Some((
                account_id,
                number,
                Some(wrapped_data_key),
                Some(sealed_attributes),
                device_id,
            )) = found
            else {
                return Ok(None);
            };
            let network_number = NetworkNumber::parse(&number)
                .map_err(|e| StoreError::Corrupt(format!("accounts.network_number: {e}")))?;
            tx.prepare_cached(
                "UPDATE accounts SET pin_key_id = ?2, pin_verifier = ?3, pin_failures = 0 WHERE id = ?1",
            )
            .map_err(enrol_error)?
            .execute(params![
                account_id,
                &account.pin_key_id[..],
                account.pin_verifier
            ])
            .map_err(enrol_error)?;
            tx.prepare_cached(
                "UPDATE credentials SET status = 1 WHERE device_id = ?1 AND status = 0",
            )
            .map_err(enrol_error)?
            .execute([device_id])
            .map_err(enrol_error)?;
            let status_index = insert_credential(&tx, account_id, device_id, &account)?;
            tx.commit().map_err(enrol_error)?;
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
        })
        .await
    }

    async fn max_status_index(&self) -> Result<Option<u64>, StoreError> {
        self.read(|conn| {
            query_one(
                conn,
                "SELECT MAX(status_index) AS max_index FROM credentials",
                [],
                db_error,
                |row| {
                    let f = Fields::new(row, "credentials", "");
                    f.get::<Option<i64>>("max_index")?
                        .map(|max| u64::try_from(max).map_err(|e| f.corrupt("status_index", e)))
                        .transpose()
                },
            )
            .map(Option::flatten)
        })
        .await
    }

    async fn credential_statuses(&self, list: u64) -> Result<Vec<(u64, u8)>, StoreError> {
        let start = list.saturating_mul(STATUS_LIST_CAPACITY);
        let end = start.saturating_add(STATUS_LIST_CAPACITY);
        self.scan(move |conn| {
            query_all(
                conn,
                "SELECT status_index, status FROM credentials
                 WHERE status <> 0 AND status_index >= ?1 AND status_index < ?2",
                params![start as i64, end as i64],
                |row| {
                    let f = Fields::new(row, "credentials", "");
                    let index: u64 = f.unsigned::<i64, _>("status_index")?;
                    Ok((index - start, f.get("status")?))
                },
            )
        })
        .await
    }

    async fn set_credential_status(
        &self,
        status_index: u64,
        status: u8,
    ) -> Result<bool, StoreError> {
        self.write(move |conn| {
            execute(
                conn,
                "UPDATE credentials SET status = ?2 WHERE status_index = ?1",
                params![status_index as i64, status],
            )
            .map(|changed| changed == 1)
        })
        .await
    }

    async fn account_by_device(
        &self,
        thumbprint: &str,
    ) -> Result<Option<(AccountRecord, DeviceRecord)>, StoreError> {
        let thumbprint = thumbprint.to_owned();
        self.read(move |conn| read_device(conn, &thumbprint)).await
    }

    async fn account(&self, account_id: i64) -> Result<Option<AccountRecord>, StoreError> {
        self.read(move |conn| read_account(conn, account_id)).await
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
                 WHERE id = ?1 AND pin_failures < ?2 RETURNING pin_failures AS failures"
            }
            Factor::Face => {
                "UPDATE accounts SET face_failures = face_failures + 1
                 WHERE id = ?1 AND face_failures < ?2 RETURNING face_failures AS failures"
            }
        };
        self.write(move |conn| {
            query_one(conn, sql, params![account_id, limit], db_error, |row| {
                Fields::new(row, "accounts", "").get("failures")
            })
        })
        .await
    }

    async fn reset_attempts(&self, account_id: i64, factor: Factor) -> Result<(), StoreError> {
        self.write(move |conn| reset_factor(conn, account_id, factor))
            .await
    }

    async fn replace_pin(
        &self,
        account_id: i64,
        pin_key_id: &[u8],
        pin_verifier: &str,
    ) -> Result<bool, StoreError> {
        let (pin_key_id, pin_verifier) = (pin_key_id.to_vec(), pin_verifier.to_owned());
        self.write(move |conn| {
            execute(
                conn,
                "UPDATE accounts SET pin_key_id = ?2, pin_verifier = ?3, pin_failures = 0, face_failures = 0
                 WHERE id = ?1 AND status = 'active'",
                params![account_id, pin_key_id, pin_verifier],
            )
            .map(|n| n == 1)
        })
        .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{ClientStore, Durability};

    /// A cached statement stays prepared whatever values are bound to it and whatever the
    /// writer commits meanwhile: a re-prepare per execution parses and plans the SQL again.
    #[tokio::test]
    async fn lookups_are_not_re_prepared_for_new_values() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path(), Durability::Normal)
            .await
            .unwrap();
        let devices = 6u8;
        for person in 0..devices {
            store
                .enrol(&NewAccount {
                    person_digest: [person; 32],
                    network_number: NetworkNumber::from_random_bytes([person; 16]),
                    wrapped_data_key: vec![1],
                    sealed_attributes: vec![2],
                    pin_key_id: [person; 16],
                    pin_verifier: "verifier".into(),
                    device_thumbprint: format!("device-{person}"),
                    device_public_jwk: "{}".into(),
                    created_at: 1_800_000_000,
                    credential_expires_at: 1_900_000_000,
                })
                .await
                .unwrap();
        }
        for round in 0..3u8 {
            for person in 0..devices {
                let found = store
                    .account_by_device(&format!("device-{person}"))
                    .await
                    .unwrap();
                let (account, _) = found.unwrap();
                store
                    .use_client_assertion("client", &format!("jti-{round}-{person}"), 2_000_000_000)
                    .await
                    .unwrap();
                store
                    .reset_attempts(account.account_id, Factor::Pin)
                    .await
                    .unwrap();
            }
        }
        let conn = store.reader().unwrap();
        let reprepared = conn
            .prepare_cached(account_by_device_sql())
            .unwrap()
            .get_status(rusqlite::StatementStatus::RePrepare);
        assert_eq!(reprepared, 0);
    }
}
