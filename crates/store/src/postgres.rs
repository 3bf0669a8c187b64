//! The scale-out store: PostgreSQL (or wire-compatible distributed SQL), shared by any
//! number of platform nodes. A pool of connections with per-connection statement caches.

use std::pin::pin;

use async_trait::async_trait;
use cyberid_domain::{CitizenIdNumber, NetworkNumber, PersonRecord};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;

use crate::login::{from_json, to_json};
use crate::{
    AccountRecord, CodeRedemption, ConsentRecord, DeviceRecord, EnrolError, EnrolledAccount,
    Factor, KEY_FINGERPRINT_SETTING, LoginAndDevice, LoginOutcome, LoginRecord, LoginStatus,
    NewAccount, NewLogin, RegistryBatches, RegistryChunk, RegistryImportError, RelyingParty,
    ResumedEnrolment, STATUS_LIST_CAPACITY, Store, StoreCounts, StoreError, column_count,
    failpoint, next_registry_batch, registry_record,
};

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/postgres/0001_init.sql")),
    (2, include_str!("migrations/postgres/0002_settings.sql")),
    (3, include_str!("migrations/postgres/0003_login.sql")),
    (
        4,
        include_str!("migrations/postgres/0004_login_hardening.sql"),
    ),
    (
        5,
        include_str!("migrations/postgres/0005_stateless_access_tokens.sql"),
    ),
    (
        6,
        include_str!("migrations/postgres/0006_approval_digest.sql"),
    ),
];

/// Serialises migrations when several nodes start at once.
const MIGRATION_LOCK: i64 = 0x0063_7962_6572_6964; // "cyberid"

pub struct PostgresStore {
    pool: Pool,
}

fn db_error(error: tokio_postgres::Error) -> StoreError {
    match error.as_db_error() {
        Some(db) => StoreError::Database(format!("{}: {}", db.code().code(), db.message())),
        None => StoreError::Database(error.to_string()),
    }
}

fn pool_error(error: deadpool_postgres::PoolError) -> StoreError {
    StoreError::Database(format!("no database connection: {error}"))
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

impl PostgresStore {
    pub async fn connect(url: &str, pool_size: usize) -> Result<Self, StoreError> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Database(format!("invalid PostgreSQL URL: {e}")))?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .build()
            .map_err(|e| StoreError::Database(e.to_string()))?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let fail = |e: tokio_postgres::Error| StoreError::Migration(db_error(e).to_string());
        let mut client = self.pool.get().await.map_err(pool_error)?;
        let tx = client.transaction().await.map_err(fail)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(fail)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )
        .await
        .map_err(fail)?;
        let current: i64 = tx
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                &[],
            )
            .await
            .map_err(fail)?
            .get(0);
        let known = MIGRATIONS.last().map_or(0, |(v, _)| *v);
        if current > known {
            return Err(StoreError::Migration(format!(
                "the database is at schema version {current}, newer than this cyberid ({known}); upgrade cyberid"
            )));
        }
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
            tx.batch_execute(sql).await.map_err(fail)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at)
                 VALUES ($1, EXTRACT(EPOCH FROM now())::BIGINT)",
                &[version],
            )
            .await
            .map_err(fail)?;
        }
        tx.commit().await.map_err(fail)
    }
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
    let account_id: i64 = row.get(0);
    failpoint("enrol-after-account-insert");
    let insert_device = tx
        .prepare_cached(
            "INSERT INTO devices (account_id, thumbprint, public_jwk, created_at)
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .await
        .map_err(enrol_error)?;
    let device_id: i64 = tx
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
        .map_err(enrol_error)?
        .get(0);
    let status_index = insert_credential(tx, account_id, device_id, account).await?;
    Ok(Some(EnrolledAccount {
        account_id,
        device_id,
        status_index: status_index as u64,
    }))
}

/// The credential row of an enrolment; its key is the credential's status index.
async fn insert_credential(
    tx: &deadpool_postgres::Transaction<'_>,
    account_id: i64,
    device_id: i64,
    account: &NewAccount,
) -> Result<i64, EnrolError> {
    let statement = tx
        .prepare_cached(
            "INSERT INTO credentials (account_id, device_id, issued_at, expires_at)
             VALUES ($1, $2, $3, $4) RETURNING status_index",
        )
        .await
        .map_err(enrol_error)?;
    Ok(tx
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
        .map_err(enrol_error)?
        .get(0))
}

const RP_COLUMNS: &str = "client_id, name, redirect_uris, sector, allowed_claims, legal_basis, \
     auth_method, secret_digest, jwks, require_par, status, created_at";

/// Columns of [`LOGIN_COLUMNS`] and [`RP_COLUMNS`]: where the next table's columns start in
/// a joined row.
const LOGIN_COUNT: usize = column_count(LOGIN_COLUMNS);
const RP_COUNT: usize = column_count(RP_COLUMNS);

fn relying_party_from(row: &tokio_postgres::Row) -> Result<RelyingParty, StoreError> {
    relying_party_at(row, 0)
}

/// The relying party in `row`'s columns from `first` on, in [`RP_COLUMNS`] order.
fn relying_party_at(row: &tokio_postgres::Row, first: usize) -> Result<RelyingParty, StoreError> {
    Ok(RelyingParty {
        client_id: row.get(first),
        name: row.get(first + 1),
        redirect_uris: from_json(row.get(first + 2))?,
        sector: row.get(first + 3),
        allowed_claims: from_json(row.get(first + 4))?,
        legal_basis: row.get(first + 5),
        auth_method: row.get(first + 6),
        secret_digest: row.get(first + 7),
        jwks: row.get(first + 8),
        require_par: row.get(first + 9),
        suspended: row.get::<_, &str>(first + 10) == "suspended",
        created_at: row.get(first + 11),
    })
}

/// `columns` (a comma-separated list) each prefixed with `table.`.
fn qualified(columns: &str, table: &str) -> String {
    columns
        .split(',')
        .map(|column| format!("{table}.{}", column.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

const LOGIN_COLUMNS: &str = "id, client_id, request, browser_digest, status, error, account_id, \
     level, claims, auth_time, code_redeemed_at, created_at, expires_at, pin_evaluated, code_replayed_at, approval_digest";

fn login_from(row: &tokio_postgres::Row) -> Result<LoginRecord, StoreError> {
    Ok(LoginRecord {
        id: row.get(0),
        client_id: row.get(1),
        request: row.get(2),
        browser_digest: row.get(3),
        status: LoginStatus::parse(row.get(4))
            .ok_or_else(|| StoreError::Corrupt("login status".into()))?,
        error: row.get(5),
        account_id: row.get(6),
        level: row.get(7),
        claims: row
            .get::<_, Option<&str>>(8)
            .map(from_json)
            .transpose()?
            .unwrap_or_default(),
        auth_time: row.get(9),
        code_redeemed_at: row.get(10),
        pin_evaluated: row.get(13),
        code_replayed_at: row.get(14),
        approval_digest: row.get(15),
        created_at: row.get(11),
        expires_at: row.get(12),
    })
}

const ACCOUNT_COLUMNS: &str = "a.id, a.status, a.person_digest, a.network_number, a.wrapped_data_key, \
     a.sealed_attributes, a.pin_key_id, a.pin_verifier, a.pin_failures, a.face_failures";

/// A sign-in returned by a redemption followed by its account's columns (NULL if none).
fn redeemed_with_account(
    row: &tokio_postgres::Row,
) -> Result<(LoginRecord, Option<AccountRecord>), StoreError> {
    let first = LOGIN_COUNT;
    let account = row
        .get::<_, Option<i64>>(first)
        .map(|_| account_at(row, first));
    Ok((login_from(row)?, account))
}

fn account_from(row: &tokio_postgres::Row) -> AccountRecord {
    account_at(row, 0)
}

/// The account in `row`'s columns from `first` on, in [`ACCOUNT_COLUMNS`] order.
fn account_at(row: &tokio_postgres::Row, first: usize) -> AccountRecord {
    AccountRecord {
        account_id: row.get(first),
        status: row.get(first + 1),
        person_digest: row.get(first + 2),
        network_number: row.get(first + 3),
        wrapped_data_key: row.get(first + 4),
        sealed_attributes: row.get(first + 5),
        pin_key_id: row.get(first + 6),
        pin_verifier: row.get(first + 7),
        pin_failures: row.get::<_, i32>(first + 8).max(0) as u32,
        face_failures: row.get::<_, i32>(first + 9).max(0) as u32,
    }
}

// The approval statement, with room for one more data-modifying step before its result.
macro_rules! approve_and_remember_consent {
    ($($more:literal)?) => {
        concat!("WITH approved AS (
       UPDATE login_transactions
       SET status = 'approved', account_id = $3, level = $4, claims = $5, auth_time = $6
       WHERE id = $1 AND status = 'pending' AND expires_at > $2
       RETURNING client_id),
     remembered AS (
       INSERT INTO consents (account_id, client_id, claims, granted_at)
       SELECT $3, client_id, $5, $2 FROM approved
       ON CONFLICT (account_id, client_id) DO UPDATE
       SET claims = (
             SELECT json_agg(claim ORDER BY position)::text FROM (
               SELECT claim, min(position) AS position FROM (
                 SELECT claim, position
                   FROM json_array_elements_text(consents.claims::json)
                        WITH ORDINALITY AS held(claim, position)
                 UNION ALL
                 SELECT claim, 1000000 + position
                   FROM json_array_elements_text(excluded.claims::json)
                        WITH ORDINALITY AS asked(claim, position)
               ) both_sets GROUP BY claim
             ) merged),
           granted_at = excluded.granted_at
       WHERE NOT consents.claims::jsonb @> excluded.claims::jsonb
       RETURNING 1)", $($more,)? "
     SELECT count(*) FROM approved")
    };
}
/// Approves a pending sign-in and adds its released claims to the holder's remembered
/// consent for the client, in one statement. The consent row changes only when it is new
/// or the set grows (existing claims first, in their order, then the new ones); the
/// conflict clause locks the row, so concurrent approvals cannot lose a claim. Returns the
/// number of sign-ins approved (0 or 1).
const APPROVE_AND_REMEMBER_CONSENT: &str = approve_and_remember_consent!();
/// The same, and the failure counts of the factors proved start again from zero ($7: the
/// PIN, $8: the face), in the same statement (a count already at zero is not rewritten).
const APPROVE_REMEMBER_CONSENT_AND_RESET: &str = approve_and_remember_consent!(
    ",
     reset AS (
       UPDATE accounts
       SET pin_failures = CASE WHEN $7 THEN 0 ELSE pin_failures END,
           face_failures = CASE WHEN $8 THEN 0 ELSE face_failures END
       WHERE id = $3 AND EXISTS (SELECT 1 FROM approved)
         AND (($7 AND pin_failures <> 0) OR ($8 AND face_failures <> 0))
       RETURNING 1)"
);

fn approved_count(rows: &[tokio_postgres::Row]) -> u64 {
    rows.first()
        .and_then(|row| row.try_get::<_, i64>(0).ok())
        .map_or(0, |count| u64::try_from(count).unwrap_or(0))
}

impl PostgresStore {
    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(pool_error)
    }

    /// Runs one statement (prepared and cached per connection), returning its rows.
    async fn rows(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(db_error)?;
        client.query(&statement, params).await.map_err(db_error)
    }

    async fn execute(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(db_error)?;
        client.execute(&statement, params).await.map_err(db_error)
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        client.simple_query("SELECT 1").await.map_err(db_error)?;
        Ok(())
    }

    async fn registry_upsert(&self, records: Vec<PersonRecord>) -> Result<(), StoreError> {
        // One batch through the bulk import: the same COPY and ordered upsert, one
        // transaction, the last record for an ID number winning.
        let (sender, batches) = tokio::sync::mpsc::channel(2);
        for chunk in [RegistryChunk::Records(records), RegistryChunk::End] {
            sender
                .try_send(chunk)
                .map_err(|_| StoreError::Database("registry batch channel closed".into()))?;
        }
        match self.registry_import(batches).await {
            Ok(_) => Ok(()),
            Err(RegistryImportError::Store(e)) => Err(e),
            Err(RegistryImportError::Source { message, .. }) => Err(StoreError::Database(message)),
        }
    }

    async fn registry_import(
        &self,
        mut batches: RegistryBatches,
    ) -> Result<u64, RegistryImportError> {
        let mut client = self.pool.get().await.map_err(pool_error)?;
        // One transaction: a source that fails half-way leaves the registry as it was.
        let tx = client.transaction().await.map_err(db_error)?;
        tx.batch_execute(
            "SET LOCAL work_mem = '64MB';
             CREATE TEMP TABLE registry_staging (seq bigint NOT NULL, LIKE registry_people)
               ON COMMIT DROP",
        )
        .await
        .map_err(db_error)?;
        let mut records_read = 0u64;
        while let Some(batch) = next_registry_batch(batches.recv().await, records_read)? {
            let sink = tx
                .copy_in(
                    "COPY registry_staging (seq, id_number, name, birth_date, sex, face)
                     FROM STDIN BINARY",
                )
                .await
                .map_err(db_error)?;
            let mut writer = pin!(BinaryCopyInWriter::new(
                sink,
                &[
                    Type::INT8,
                    Type::TEXT,
                    Type::TEXT,
                    Type::DATE,
                    Type::TEXT,
                    Type::BYTEA
                ],
            ));
            for record in &batch {
                let seq = records_read as i64;
                let face = record.face.to_bytes();
                writer
                    .as_mut()
                    .write(&[
                        &seq,
                        &record.id_number.as_str(),
                        &record.name.as_str(),
                        &record.birth_date,
                        &record.sex.as_str(),
                        &&face[..],
                    ])
                    .await
                    .map_err(db_error)?;
                records_read += 1;
            }
            writer.finish().await.map_err(db_error)?;
        }
        // In ID-number order, the last record for an ID number winning: one pass over the
        // primary-key index in order (an upsert may not touch a row twice in one statement).
        tx.execute(
            "INSERT INTO registry_people (id_number, name, birth_date, sex, face)
             SELECT DISTINCT ON (id_number) id_number, name, birth_date, sex, face
             FROM registry_staging ORDER BY id_number, seq DESC
             ON CONFLICT (id_number) DO UPDATE SET
               name = EXCLUDED.name, birth_date = EXCLUDED.birth_date,
               sex = EXCLUDED.sex, face = EXCLUDED.face",
            &[],
        )
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(records_read)
    }

    async fn registry_find(
        &self,
        id: &CitizenIdNumber,
    ) -> Result<Option<PersonRecord>, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let statement = client
            .prepare_cached(
                "SELECT id_number, name, birth_date, sex, face FROM registry_people WHERE id_number = $1",
            )
            .await
            .map_err(db_error)?;
        let row = client
            .query_opt(&statement, &[&id.as_str()])
            .await
            .map_err(db_error)?;
        row.map(|row| {
            registry_record(
                row.get::<_, &str>(0),
                row.get::<_, &str>(1),
                row.get::<_, time::Date>(2),
                row.get::<_, &str>(3),
                row.get::<_, &[u8]>(4),
            )
        })
        .transpose()
    }

    async fn enrol(&self, account: &NewAccount) -> Result<EnrolledAccount, EnrolError> {
        let mut client = self.pool.get().await.map_err(pool_error)?;
        let tx = client.transaction().await.map_err(enrol_error)?;
        let enrolled = insert_account(&tx, account, false)
            .await?
            .ok_or(EnrolError::PersonAlreadyEnrolled)?;
        failpoint("enrol-before-commit");
        tx.commit().await.map_err(enrol_error)?;
        Ok(enrolled)
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
        let mut client = self.pool.get().await.map_err(pool_error)?;
        let tx = client.transaction().await.map_err(enrol_error)?;
        let found = tx
            .query_opt(
                "SELECT a.id, a.network_number, a.wrapped_data_key, a.sealed_attributes, d.id
                 FROM accounts a JOIN devices d ON d.account_id = a.id
                 WHERE a.person_digest = $1 AND a.status = 'active'
                   AND d.thumbprint = $2 AND d.revoked_at IS NULL
                 FOR UPDATE OF a",
                &[&&account.person_digest[..], &account.device_thumbprint],
            )
            .await
            .map_err(enrol_error)?;
        let Some(row) = found else { return Ok(None) };
        let account_id: i64 = row.get(0);
        let device_id: i64 = row.get(4);
        let (Some(wrapped_data_key), Some(sealed_attributes)) = (
            row.get::<_, Option<Vec<u8>>>(2),
            row.get::<_, Option<Vec<u8>>>(3),
        ) else {
            return Ok(None);
        };
        let network_number = NetworkNumber::parse(row.get::<_, &str>(1))
            .map_err(|_| StoreError::Corrupt("network number".into()))?;
        tx.execute(
            "UPDATE accounts SET pin_key_id = $2, pin_verifier = $3 WHERE id = $1",
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
                status_index: status_index as u64,
            },
            network_number,
            wrapped_data_key,
            sealed_attributes,
        }))
    }

    async fn max_status_index(&self) -> Result<Option<u64>, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let row = client
            .query_one("SELECT MAX(status_index) FROM credentials", &[])
            .await
            .map_err(db_error)?;
        Ok(row.get::<_, Option<i64>>(0).map(|max| max as u64))
    }

    async fn claim_key_fingerprint(&self, fingerprint: &str) -> Result<String, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        client
            .execute(
                "INSERT INTO platform_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                &[&KEY_FINGERPRINT_SETTING, &fingerprint],
            )
            .await
            .map_err(db_error)?;
        let row = client
            .query_one(
                "SELECT value FROM platform_settings WHERE name = $1",
                &[&KEY_FINGERPRINT_SETTING],
            )
            .await
            .map_err(db_error)?;
        Ok(row.get(0))
    }

    async fn credential_statuses(&self, list: u64) -> Result<Vec<(u64, u8)>, StoreError> {
        let start = list.saturating_mul(STATUS_LIST_CAPACITY);
        let end = start.saturating_add(STATUS_LIST_CAPACITY);
        let client = self.pool.get().await.map_err(pool_error)?;
        let statement = client
            .prepare_cached(
                "SELECT status_index, status FROM credentials
                 WHERE status <> 0 AND status_index >= $1 AND status_index < $2",
            )
            .await
            .map_err(db_error)?;
        let rows = client
            .query(&statement, &[&(start as i64), &(end as i64)])
            .await
            .map_err(db_error)?;
        Ok(rows
            .iter()
            .map(|row| {
                (
                    row.get::<_, i64>(0) as u64 - start,
                    row.get::<_, i16>(1) as u8,
                )
            })
            .collect())
    }

    async fn set_credential_status(
        &self,
        status_index: u64,
        status: u8,
    ) -> Result<bool, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let changed = client
            .execute(
                "UPDATE credentials SET status = $2 WHERE status_index = $1",
                &[&(status_index as i64), &(status as i16)],
            )
            .await
            .map_err(db_error)?;
        Ok(changed == 1)
    }

    async fn counts(&self) -> Result<StoreCounts, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let row = client
            .query_one(
                "SELECT (SELECT COUNT(*) FROM registry_people), (SELECT COUNT(*) FROM accounts),
                        (SELECT COUNT(*) FROM devices), (SELECT COUNT(*) FROM credentials)",
                &[],
            )
            .await
            .map_err(db_error)?;
        Ok(StoreCounts {
            registry_people: row.get::<_, i64>(0) as u64,
            accounts: row.get::<_, i64>(1) as u64,
            devices: row.get::<_, i64>(2) as u64,
            credentials: row.get::<_, i64>(3) as u64,
        })
    }

    async fn insert_relying_party(&self, rp: &RelyingParty) -> Result<(), StoreError> {
        self.execute(
            sql!(
                "INSERT INTO relying_parties ({RP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
            ),
            &[
                &rp.client_id,
                &rp.name,
                &to_json(&rp.redirect_uris),
                &rp.sector,
                &to_json(&rp.allowed_claims),
                &rp.legal_basis,
                &rp.auth_method,
                &rp.secret_digest,
                &rp.jwks,
                &rp.require_par,
                &if rp.suspended { "suspended" } else { "active" },
                &rp.created_at,
            ],
        )
        .await
        .map(|_| ())
    }

    async fn relying_party(&self, client_id: &str) -> Result<Option<RelyingParty>, StoreError> {
        self.rows(
            sql!("SELECT {RP_COLUMNS} FROM relying_parties WHERE client_id = $1"),
            &[&client_id],
        )
        .await?
        .first()
        .map(relying_party_from)
        .transpose()
    }

    async fn relying_parties(&self) -> Result<Vec<RelyingParty>, StoreError> {
        self.rows(
            sql!("SELECT {RP_COLUMNS} FROM relying_parties ORDER BY created_at, client_id"),
            &[],
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
        let status = if suspended { "suspended" } else { "active" };
        self.execute(
            "UPDATE relying_parties SET status = $2 WHERE client_id = $1",
            &[&client_id, &status],
        )
        .await
        .map(|n| n == 1)
    }

    async fn insert_login(&self, login: &NewLogin) -> Result<bool, StoreError> {
        self.execute(
            "INSERT INTO login_transactions
               (id, client_id, request, par_handle, browser_digest, status, created_at, expires_at)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8
             WHERE EXISTS (SELECT 1 FROM relying_parties WHERE client_id = $2 AND status = 'active')",
            &[
                &login.id,
                &login.client_id,
                &login.request,
                &login.par_handle,
                &login.browser_digest,
                &login.status.as_str(),
                &login.created_at,
                &login.expires_at,
            ],
        )
        .await
        .map(|inserted| inserted == 1)
    }

    async fn login(&self, id: &str) -> Result<Option<LoginRecord>, StoreError> {
        self.rows(
            sql!("SELECT {LOGIN_COLUMNS} FROM login_transactions WHERE id = $1"),
            &[&id],
        )
        .await?
        .first()
        .map(login_from)
        .transpose()
    }

    async fn login_with_client(
        &self,
        id: &str,
    ) -> Result<Option<(LoginRecord, RelyingParty)>, StoreError> {
        let sql = sql!(
            "SELECT {}, {} FROM login_transactions l
                 JOIN relying_parties r ON r.client_id = l.client_id WHERE l.id = $1",
            qualified(LOGIN_COLUMNS, "l"),
            qualified(RP_COLUMNS, "r")
        );
        self.rows(sql, &[&id])
            .await?
            .first()
            .map(|row| Ok((login_from(row)?, relying_party_at(row, LOGIN_COUNT)?)))
            .transpose()
    }

    async fn login_with_client_and_account(
        &self,
        id: &str,
    ) -> Result<Option<(LoginRecord, RelyingParty, Option<AccountRecord>)>, StoreError> {
        let sql = sql!(
            "SELECT {}, {}, {ACCOUNT_COLUMNS} FROM login_transactions l
                 JOIN relying_parties r ON r.client_id = l.client_id
                 LEFT JOIN accounts a ON a.id = l.account_id
                 WHERE l.id = $1",
            qualified(LOGIN_COLUMNS, "l"),
            qualified(RP_COLUMNS, "r")
        );
        let account_first = LOGIN_COUNT + RP_COUNT;
        self.rows(sql, &[&id])
            .await?
            .first()
            .map(|row| {
                let account = row
                    .get::<_, Option<i64>>(account_first)
                    .map(|_| account_at(row, account_first));
                Ok((
                    login_from(row)?,
                    relying_party_at(row, LOGIN_COUNT)?,
                    account,
                ))
            })
            .transpose()
    }

    async fn login_and_device(
        &self,
        id: &str,
        thumbprint: &str,
    ) -> Result<LoginAndDevice, StoreError> {
        // Two independent point lookups in one statement: one row, each side NULL when
        // there is nothing.
        let sql = sql!(
            "SELECT {}, {ACCOUNT_COLUMNS}, d.id, d.public_jwk
                 FROM (VALUES (1)) AS one (x)
                 LEFT JOIN login_transactions l ON l.id = $1
                 LEFT JOIN devices d ON d.thumbprint = $2 AND d.revoked_at IS NULL
                 LEFT JOIN accounts a ON a.id = d.account_id",
            qualified(LOGIN_COLUMNS, "l")
        );
        let rows = self.rows(sql, &[&id, &thumbprint]).await?;
        let Some(row) = rows.first() else {
            return Ok((None, None));
        };
        let login = match row.get::<_, Option<&str>>(0) {
            Some(_) => Some(login_from(row)?),
            None => None,
        };
        let first = LOGIN_COUNT;
        let device = row.get::<_, Option<i64>>(first).map(|_| {
            (
                account_at(row, first),
                DeviceRecord {
                    device_id: row.get(first + 10),
                    public_jwk: row.get(first + 11),
                },
            )
        });
        Ok((login, device))
    }

    async fn claim_pushed_login(
        &self,
        par_handle: &str,
        client_id: &str,
        browser_digest: &[u8],
        now: i64,
        expires_at: i64,
    ) -> Result<Option<LoginRecord>, StoreError> {
        self.rows(
            sql!(
                "UPDATE login_transactions SET status = 'pending', browser_digest = $3, expires_at = $5
                 WHERE par_handle = $1 AND client_id = $2 AND status = 'pushed' AND expires_at > $4
                   AND EXISTS (SELECT 1 FROM relying_parties r WHERE r.client_id = $2 AND r.status = 'active')
                 RETURNING {LOGIN_COLUMNS}"
            ),
            &[&par_handle, &client_id, &browser_digest, &now, &expires_at],
        )
        .await?
        .first()
        .map(login_from)
        .transpose()
    }

    async fn finish_login(
        &self,
        id: &str,
        outcome: &LoginOutcome,
        now: i64,
    ) -> Result<bool, StoreError> {
        let changed = match outcome {
            LoginOutcome::Approved {
                account_id,
                level,
                claims,
                auth_time,
                reset,
            } => {
                let claims = to_json(claims);
                let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] =
                    [&id, &now, account_id, level, &claims, auth_time];
                // One statement either way: atomic without a transaction, one round trip.
                let rows = if reset.is_empty() {
                    self.rows(APPROVE_AND_REMEMBER_CONSENT, &params).await?
                } else {
                    let (pin, face) = (reset.contains(&Factor::Pin), reset.contains(&Factor::Face));
                    let mut with_reset = params.to_vec();
                    with_reset.extend_from_slice(&[&pin, &face]);
                    self.rows(APPROVE_REMEMBER_CONSENT_AND_RESET, &with_reset)
                        .await?
                };
                approved_count(&rows)
            }
            LoginOutcome::Refused { status, error } => {
                self.execute(
                    "UPDATE login_transactions SET status = $3, error = $4
                     WHERE id = $1 AND status = 'pending' AND expires_at > $2",
                    &[&id, &now, &status.as_str(), error],
                )
                .await?
            }
        };
        Ok(changed == 1)
    }

    async fn redeem_code(&self, id: &str, now: i64) -> Result<CodeRedemption, StoreError> {
        // The account comes back in the same round trip as the redemption.
        let redeemed = self
            .rows(
                sql!(
                    "WITH redeemed AS (
                       UPDATE login_transactions SET code_redeemed_at = $2
                       WHERE id = $1 AND status = 'approved' AND code_redeemed_at IS NULL
                       RETURNING {LOGIN_COLUMNS})
                     SELECT redeemed.*, {ACCOUNT_COLUMNS}
                     FROM redeemed LEFT JOIN accounts a ON a.id = redeemed.account_id"
                ),
                &[&id, &now],
            )
            .await?;
        if let Some(row) = redeemed.first() {
            let (login, account) = redeemed_with_account(row)?;
            return Ok(CodeRedemption::Redeemed {
                login: Box::new(login),
                account: account.map(Box::new),
            });
        }
        let used = self
            .rows(
                "SELECT code_redeemed_at FROM login_transactions WHERE id = $1 AND status = 'approved'",
                &[&id],
            )
            .await?;
        Ok(match used.first().map(|row| row.get::<_, Option<i64>>(0)) {
            Some(Some(_)) => CodeRedemption::AlreadyRedeemed,
            _ => CodeRedemption::NotApproved,
        })
    }

    async fn redeem_code_if(
        &self,
        id: &str,
        client_id: &str,
        redirect_uri: &str,
        code_challenge: &str,
        now: i64,
    ) -> Result<Option<(LoginRecord, Option<AccountRecord>)>, StoreError> {
        self.rows(
            sql!(
                "WITH redeemed AS (
                   UPDATE login_transactions SET code_redeemed_at = $5
                   WHERE id = $1 AND client_id = $2 AND status = 'approved'
                     AND code_redeemed_at IS NULL
                     AND request::jsonb ->> 'redirect_uri' = $3
                     AND request::jsonb ->> 'code_challenge' = $4
                     AND EXISTS (SELECT 1 FROM relying_parties r
                                 WHERE r.client_id = $2 AND r.status = 'active')
                   RETURNING {LOGIN_COLUMNS})
                 SELECT redeemed.*, {ACCOUNT_COLUMNS}
                 FROM redeemed LEFT JOIN accounts a ON a.id = redeemed.account_id"
            ),
            &[&id, &client_id, &redirect_uri, &code_challenge, &now],
        )
        .await?
        .first()
        .map(redeemed_with_account)
        .transpose()
    }

    async fn mark_code_replayed(&self, transaction_id: &str, now: i64) -> Result<bool, StoreError> {
        self.execute(
            "UPDATE login_transactions SET code_replayed_at = $2 WHERE id = $1 AND code_replayed_at IS NULL",
            &[&transaction_id, &now],
        )
        .await
        .map(|n| n == 1)
    }

    async fn count_pin_evaluation(
        &self,
        account_id: i64,
        login_id: &str,
        limit: u32,
        approval_digest: &[u8],
    ) -> Result<Option<u32>, StoreError> {
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        let count = tx
            .query_opt(
                "UPDATE accounts SET pin_failures = pin_failures + 1
                 WHERE id = $1 AND pin_failures < $2 RETURNING pin_failures",
                &[&account_id, &limit],
            )
            .await
            .map_err(db_error)?
            .map(|row| row.get::<_, i32>(0).max(0) as u32);
        if count.is_some() {
            tx.execute(
                "UPDATE login_transactions SET pin_evaluated = TRUE, approval_digest = $2
                 WHERE id = $1 AND status = 'pending'",
                &[&login_id, &approval_digest],
            )
            .await
            .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(count)
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

    async fn ended_sign_ins(&self, ids: &[String], now: i64) -> Result<Vec<String>, StoreError> {
        // The ids travel as one array parameter, however many there are.
        let rows = self
            .rows(
                "SELECT id FROM login_transactions
                 WHERE id = ANY($1) AND (status <> 'pending' OR expires_at <= $2)",
                &[&ids, &now],
            )
            .await?;
        Ok(rows.iter().map(|row| row.get::<_, String>(0)).collect())
    }

    async fn purge_expired_batch(
        &self,
        now: i64,
        sign_ins_before: i64,
        batch: u32,
    ) -> Result<(u64, u64), StoreError> {
        let batch = i64::from(batch);
        let assertions = self
            .execute(
                "DELETE FROM client_assertions WHERE (client_id, jti) IN (
                   SELECT client_id, jti FROM client_assertions WHERE expires_at < $1 LIMIT $2)",
                &[&now, &batch],
            )
            .await?;
        let sign_ins = self
            .execute(
                "DELETE FROM login_transactions WHERE id IN (
                   SELECT id FROM login_transactions WHERE expires_at < $1 LIMIT $2)",
                &[&sign_ins_before, &batch],
            )
            .await?;
        Ok((assertions, sign_ins))
    }

    async fn account_by_device(
        &self,
        thumbprint: &str,
    ) -> Result<Option<(AccountRecord, DeviceRecord)>, StoreError> {
        Ok(self
            .rows(
                sql!(
                    "SELECT {ACCOUNT_COLUMNS}, d.id, d.public_jwk
                     FROM devices d JOIN accounts a ON a.id = d.account_id
                     WHERE d.thumbprint = $1 AND d.revoked_at IS NULL"
                ),
                &[&thumbprint],
            )
            .await?
            .first()
            .map(|row| {
                (
                    account_from(row),
                    DeviceRecord {
                        device_id: row.get(10),
                        public_jwk: row.get(11),
                    },
                )
            }))
    }

    async fn account(&self, account_id: i64) -> Result<Option<AccountRecord>, StoreError> {
        Ok(self
            .rows(
                sql!("SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.id = $1"),
                &[&account_id],
            )
            .await?
            .first()
            .map(account_from))
    }

    async fn count_attempt(
        &self,
        account_id: i64,
        factor: Factor,
        limit: u32,
    ) -> Result<Option<u32>, StoreError> {
        let column = factor.column();
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        Ok(self
            .rows(
                &format!(
                    "UPDATE accounts SET {column} = {column} + 1 WHERE id = $1 AND {column} < $2 RETURNING {column}"
                ),
                &[&account_id, &limit],
            )
            .await?
            .first()
            .map(|row| row.get::<_, i32>(0).max(0) as u32))
    }

    async fn reset_attempts(&self, account_id: i64, factor: Factor) -> Result<(), StoreError> {
        let column = factor.column();
        self.execute(
            &format!("UPDATE accounts SET {column} = 0 WHERE id = $1 AND {column} <> 0"),
            &[&account_id],
        )
        .await
        .map(|_| ())
    }

    async fn consent(
        &self,
        account_id: i64,
        client_id: &str,
    ) -> Result<Option<ConsentRecord>, StoreError> {
        self.rows(
            "SELECT claims, granted_at FROM consents WHERE account_id = $1 AND client_id = $2",
            &[&account_id, &client_id],
        )
        .await?
        .first()
        .map(|row| {
            Ok(ConsentRecord {
                client_id: client_id.to_owned(),
                claims: from_json(row.get(0))?,
                granted_at: row.get(1),
            })
        })
        .transpose()
    }

    async fn consents(&self, account_id: i64) -> Result<Vec<ConsentRecord>, StoreError> {
        self.rows(
            "SELECT client_id, claims, granted_at FROM consents WHERE account_id = $1 ORDER BY client_id",
            &[&account_id],
        )
        .await?
        .iter()
        .map(|row| {
            Ok(ConsentRecord {
                client_id: row.get(0),
                claims: from_json(row.get(1))?,
                granted_at: row.get(2),
            })
        })
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

#[cfg(test)]
mod migration_list {
    /// Every migration file is registered, in order: a file left out would never be applied.
    #[test]
    fn every_migration_file_is_registered() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/migrations/postgres");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        assert_eq!(files.len(), super::MIGRATIONS.len(), "{files:?}");
        for (position, (version, _)) in super::MIGRATIONS.iter().enumerate() {
            assert_eq!(*version, position as i64 + 1);
            assert!(
                files[position].starts_with(&format!("{version:04}_")),
                "{files:?}"
            );
        }
    }
}
