//! The scale-out store: PostgreSQL (or wire-compatible distributed SQL), shared by any
//! number of platform nodes. A pool of connections with per-connection statement caches;
//! the queries live in one module per aggregate, each implementing its part of the
//! contract on [`PostgresStore`].

use std::time::Instant;

use async_trait::async_trait;
use deadpool_postgres::Pool;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::observed::{self, Work};
use crate::{KEY_FINGERPRINT_SETTING, Store, StoreCounts, StoreError};
use row::Fields;

mod accounts;
mod clients;
mod consents;
mod engine;
mod import;
mod limits;
mod registry;
mod row;
mod sign_ins;

pub struct PostgresStore {
    pool: Pool,
}

type Params<'a> = [&'a (dyn ToSql + Sync)];

fn db_error(error: tokio_postgres::Error) -> StoreError {
    match error.as_db_error() {
        Some(db) => StoreError::Database(format!("{}: {}", db.code().code(), db.message())),
        None => StoreError::Database(error.to_string()),
    }
}

fn pool_error(error: deadpool_postgres::PoolError) -> StoreError {
    StoreError::Database(format!("no database connection: {error}"))
}

impl PostgresStore {
    pub async fn connect(url: &str, pool_size: usize) -> Result<Self, StoreError> {
        let pool = engine::pool(url, pool_size)?;
        engine::migrate(&pool).await?;
        Ok(Self { pool })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(pool_error)
    }

    /// Runs one statement (prepared and cached per connection), returning its rows.
    async fn rows(&self, sql: &str, params: &Params<'_>) -> Result<Vec<Row>, StoreError> {
        let started = Instant::now();
        let rows = async {
            let client = self.client().await?;
            let statement = client.prepare_cached(sql).await.map_err(db_error)?;
            client.query(&statement, params).await.map_err(db_error)
        }
        .await;
        observed::record("postgres", Work::Read, started, &rows);
        rows
    }

    /// The first row of one statement, read by `read`; `None` when there is none.
    async fn one<T>(
        &self,
        sql: &str,
        params: &Params<'_>,
        read: impl FnOnce(&Row) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        self.rows(sql, params).await?.first().map(read).transpose()
    }

    /// Runs one statement; returns how many rows it changed.
    async fn execute(&self, sql: &str, params: &Params<'_>) -> Result<u64, StoreError> {
        let started = Instant::now();
        let changed = async {
            let client = self.client().await?;
            let statement = client.prepare_cached(sql).await.map_err(db_error)?;
            client.execute(&statement, params).await.map_err(db_error)
        }
        .await;
        observed::record("postgres", Work::Write, started, &changed);
        changed
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client.simple_query("SELECT 1").await.map_err(db_error)?;
        Ok(())
    }

    async fn counts(&self) -> Result<StoreCounts, StoreError> {
        self.one(
            "SELECT (SELECT COUNT(*) FROM registry_people) AS registry_people,
                    (SELECT COUNT(*) FROM accounts) AS accounts,
                    (SELECT COUNT(*) FROM devices) AS devices,
                    (SELECT COUNT(*) FROM credentials) AS credentials,
                        (SELECT COUNT(*) FROM login_transactions) AS sign_ins",
            &[],
            |row| {
                let f = Fields::new(row, "counts", "");
                Ok(StoreCounts {
                    registry_people: f.unsigned::<i64, _>("registry_people")?,
                    accounts: f.unsigned::<i64, _>("accounts")?,
                    devices: f.unsigned::<i64, _>("devices")?,
                    credentials: f.unsigned::<i64, _>("credentials")?,
                    sign_ins: f.unsigned::<i64, _>("sign_ins")?,
                })
            },
        )
        .await?
        .ok_or_else(|| StoreError::Database("counting returned no row".into()))
    }

    async fn claim_key_fingerprint(&self, fingerprint: &str) -> Result<String, StoreError> {
        self.execute(
            "INSERT INTO platform_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            &[&KEY_FINGERPRINT_SETTING, &fingerprint],
        )
        .await?;
        self.one(
            "SELECT value FROM platform_settings WHERE name = $1",
            &[&KEY_FINGERPRINT_SETTING],
            |row| Fields::new(row, "platform_settings", "").get("value"),
        )
        .await?
        .ok_or_else(|| StoreError::Database("the key fingerprint was not recorded".into()))
    }
}
