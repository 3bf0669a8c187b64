//! Fresh, isolated stores for tests of this and other crates: a new SQLite directory, or a
//! new schema in the PostgreSQL named by `CYBERID_TEST_DATABASE_URL`.

use std::time::{SystemTime, UNIX_EPOCH};

use tokio_postgres::NoTls;

use crate::StoreError;

pub const TEST_DATABASE_ENV: &str = "CYBERID_TEST_DATABASE_URL";

/// The PostgreSQL URL tests should use, if the environment names one.
pub fn postgres_base_url() -> Option<String> {
    std::env::var(TEST_DATABASE_ENV)
        .ok()
        .filter(|url| !url.is_empty())
}

/// Creates an empty schema and returns a URL whose connections use it.
pub async fn fresh_postgres_schema(base_url: &str) -> Result<String, StoreError> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let schema = format!("t{}_{}", std::process::id(), nanos % 1_000_000_000_000);
    let (client, connection) = tokio_postgres::connect(base_url, NoTls)
        .await
        .map_err(|e| StoreError::Database(format!("cannot reach {TEST_DATABASE_ENV}: {e}")))?;
    let driver = tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .map_err(|e| StoreError::Database(e.to_string()))?;
    drop(client);
    let _ = driver.await;
    let separator = if base_url.contains('?') { '&' } else { '?' };
    Ok(format!(
        "{base_url}{separator}options=-csearch_path%3D{schema}"
    ))
}
