//! The PostgreSQL engine: the connection pool and the migrations.

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

use super::{db_error, pool_error};
use crate::StoreError;

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_init.sql")),
    (2, include_str!("../migrations/postgres/0002_settings.sql")),
    (3, include_str!("../migrations/postgres/0003_login.sql")),
    (
        4,
        include_str!("../migrations/postgres/0004_login_hardening.sql"),
    ),
    (
        5,
        include_str!("../migrations/postgres/0005_stateless_access_tokens.sql"),
    ),
    (
        6,
        include_str!("../migrations/postgres/0006_approval_digest.sql"),
    ),
    (
        7,
        include_str!("../migrations/postgres/0007_typed_sign_in_request.sql"),
    ),
    (
        8,
        include_str!("../migrations/postgres/0008_relying_parties_by_sector.sql"),
    ),
    (
        9,
        include_str!("../migrations/postgres/0009_rate_counters.sql"),
    ),
    (
        10,
        include_str!("../migrations/postgres/0010_sign_in_device.sql"),
    ),
];

/// Serialises migrations when several nodes start at once.
const MIGRATION_LOCK: i64 = 0x0063_7962_6572_6964; // "cyberid"

pub(super) fn pool(url: &str, pool_size: usize) -> Result<Pool, StoreError> {
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
    Pool::builder(manager)
        .max_size(pool_size.max(1))
        .build()
        .map_err(|e| StoreError::Database(e.to_string()))
}

pub(super) async fn migrate(pool: &Pool) -> Result<(), StoreError> {
    let fail = |e: tokio_postgres::Error| StoreError::Migration(db_error(e).to_string());
    let mut client = pool.get().await.map_err(pool_error)?;
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
            "SELECT COALESCE(MAX(version), 0) AS current FROM schema_migrations",
            &[],
        )
        .await
        .map_err(fail)?
        .try_get("current")
        .map_err(fail)?;
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

#[cfg(test)]
mod tests {
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
