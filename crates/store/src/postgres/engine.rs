//! The PostgreSQL engine: the connection pool, its connections' checkout, and the
//! migrations.

use std::ops::Deref;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use super::{db_error, pool_error};
use crate::{StoreError, Timeouts};

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

/// The pool: connections opened within `timeouts.connect` (the socket by tokio-postgres,
/// startup and authentication by the pool), a free one waited for at most
/// `timeouts.operation`.
pub(super) fn pool(url: &str, pool_size: usize, timeouts: Timeouts) -> Result<Pool, StoreError> {
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| StoreError::Database(format!("invalid PostgreSQL URL: {e}")))?;
    config.connect_timeout(timeouts.connect);
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(pool_size.max(1))
        .runtime(Runtime::Tokio1)
        .create_timeout(Some(timeouts.connect))
        .wait_timeout(Some(timeouts.operation))
        .recycle_timeout(Some(timeouts.connect))
        .build()
        .map_err(|e| StoreError::Database(e.to_string()))
}

/// A pooled connection that goes back to the pool only when its operation finished
/// ([`Checkout::release`]). Dropped in the middle (the operation timed out, or the request
/// was cancelled) it is closed instead: it may still wait for an answer that will never
/// come — over a network that drops packets, for as long as TCP retransmits — and every
/// operation handed it would wait behind that answer.
pub(super) struct Checkout(Option<Object>);

impl Checkout {
    pub(super) fn new(object: Object) -> Self {
        Self(Some(object))
    }

    /// The operation is over (whatever its outcome): the connection can serve the next.
    /// One that was closed meanwhile is dropped by the pool when it is next handed out.
    pub(super) fn release(mut self) {
        drop(self.0.take());
    }
}

impl Deref for Checkout {
    type Target = Object;

    fn deref(&self) -> &Object {
        // Only `release` and `drop`, which consume the checkout, take the object.
        self.0
            .as_ref()
            .unwrap_or_else(|| unreachable!("a checkout holds its connection"))
    }
}

impl std::ops::DerefMut for Checkout {
    fn deref_mut(&mut self) -> &mut Object {
        self.0
            .as_mut()
            .unwrap_or_else(|| unreachable!("a checkout holds its connection"))
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        if let Some(object) = self.0.take() {
            drop(Object::take(object));
        }
    }
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
