//! The scale-out store: PostgreSQL (or wire-compatible distributed SQL), shared by any
//! number of platform nodes. A pool of connections with per-connection statement caches;
//! the queries live in one module per aggregate, each implementing its part of the
//! contract on [`PostgresStore`].

use std::time::Instant;

use async_trait::async_trait;
use deadpool_postgres::{Pool, PoolError};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::observed::{self, Work};
use crate::{KEY_FINGERPRINT_SETTING, Store, StoreCounts, StoreError, Timeouts};
use engine::Checkout;
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
    timeouts: Timeouts,
}

type Params<'a> = [&'a (dyn ToSql + Sync)];

/// SQLSTATEs that say the server cannot serve now, rather than that the statement is wrong:
/// connection exceptions (class 08), the server shutting down or starting
/// (57P01–57P03), too many connections (53300).
fn server_unavailable(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
}

fn db_error(error: tokio_postgres::Error) -> StoreError {
    match error.as_db_error() {
        Some(db) if server_unavailable(db.code().code()) => {
            StoreError::Unavailable(format!("{}: {}", db.code().code(), db.message()))
        }
        Some(db) => StoreError::Database(format!("{}: {}", db.code().code(), db.message())),
        // No answer from a server: the connection is closed or its socket failed.
        None if error.is_closed()
            || std::error::Error::source(&error).is_some_and(|s| s.is::<std::io::Error>()) =>
        {
            StoreError::Unavailable(error.to_string())
        }
        None => StoreError::Database(error.to_string()),
    }
}

fn pool_error(error: PoolError) -> StoreError {
    match error {
        PoolError::Backend(e) => match db_error(e) {
            StoreError::Unavailable(cause) => {
                StoreError::Unavailable(format!("no database connection: {cause}"))
            }
            other => other,
        },
        PoolError::Timeout(_) | PoolError::Closed => {
            StoreError::Unavailable(format!("no database connection: {error}"))
        }
        _ => StoreError::Database(format!("no database connection: {error}")),
    }
}

impl PostgresStore {
    pub async fn connect(
        url: &str,
        pool_size: usize,
        timeouts: Timeouts,
    ) -> Result<Self, StoreError> {
        let pool = engine::pool(url, pool_size, timeouts)?;
        engine::migrate(&pool).await?;
        Ok(Self { pool, timeouts })
    }

    /// A pooled connection for one operation (see [`Checkout`]).
    async fn client(&self) -> Result<Checkout, StoreError> {
        Ok(Checkout::new(self.pool.get().await.map_err(pool_error)?))
    }

    /// `work` (one operation of the contract) within the operation timeout. Past it the
    /// work is dropped, with its connection (see [`Checkout`]), and the caller hears that
    /// the database is unavailable: an unreachable server never holds a request.
    async fn bounded<T, E>(&self, work: impl Future<Output = Result<T, E>>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let limit = self.timeouts.operation;
        tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
            Err(StoreError::Unavailable(format!(
                "no answer from the database within {} ms",
                limit.as_millis()
            ))
            .into())
        })
    }

    /// Runs one statement (prepared and cached per connection), returning its rows.
    async fn rows(&self, sql: &str, params: &Params<'_>) -> Result<Vec<Row>, StoreError> {
        let started = Instant::now();
        let rows = self
            .bounded(async {
                let client = self.client().await?;
                let rows = async {
                    let statement = client.prepare_cached(sql).await?;
                    client.query(&statement, params).await
                }
                .await
                .map_err(db_error);
                client.release();
                rows
            })
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
        let changed = self
            .bounded(async {
                let client = self.client().await?;
                let changed = async {
                    let statement = client.prepare_cached(sql).await?;
                    client.execute(&statement, params).await
                }
                .await
                .map_err(db_error);
                client.release();
                changed
            })
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
        self.bounded(async {
            let client = self.client().await?;
            let answered = client.simple_query("SELECT 1").await.map_err(db_error);
            client.release();
            answered.map(drop)
        })
        .await
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

#[cfg(test)]
mod tests {
    use super::server_unavailable;

    /// A server that cannot serve now is an outage (503, try again); a statement the server
    /// refuses is not.
    #[test]
    fn only_connection_and_shutdown_states_are_unavailability() {
        for code in [
            "08000", "08006", "08001", "57P01", "57P02", "57P03", "53300",
        ] {
            assert!(server_unavailable(code), "{code}");
        }
        for code in ["23505", "40001", "42P01", "57014", "53100"] {
            assert!(!server_unavailable(code), "{code}");
        }
    }
}
