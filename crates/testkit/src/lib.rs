//! Test support for cyberid's test suites (a dev-dependency only).
//!
//! The PostgreSQL variants of the tests run when `CYBERID_TEST_DATABASE_URL` names a server
//! and are skipped otherwise, with a note on stderr; with `CYBERID_REQUIRE_POSTGRES` set (as
//! in CI) a missing URL fails the test instead, so a misconfigured run cannot pass by
//! skipping. [`postgres`] applies that rule; [`TestPostgres::fresh_schema`] gives each test
//! an empty schema of its own.
//!
//! [`url_query`] reads a redirect's address and parameters, as a browser or a relying party
//! would.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio_postgres::NoTls;

/// Names the PostgreSQL server the tests may use (`postgres://user@host/database`).
pub const TEST_DATABASE_ENV: &str = "CYBERID_TEST_DATABASE_URL";
/// When set (to anything but `0`), the PostgreSQL variants must run.
pub const REQUIRE_POSTGRES_ENV: &str = "CYBERID_REQUIRE_POSTGRES";

/// The PostgreSQL server named by [`TEST_DATABASE_ENV`].
#[derive(Clone, Debug)]
pub struct TestPostgres {
    base_url: String,
}

/// The PostgreSQL server to run the PostgreSQL variants against, or `None` (noted on
/// stderr) to skip them.
///
/// # Panics
///
/// When [`REQUIRE_POSTGRES_ENV`] is set but [`TEST_DATABASE_ENV`] is not: the run was
/// meant to cover PostgreSQL.
pub fn postgres() -> Option<TestPostgres> {
    let base_url = std::env::var(TEST_DATABASE_ENV)
        .ok()
        .filter(|url| !url.is_empty());
    if base_url.is_none() {
        let required = std::env::var(REQUIRE_POSTGRES_ENV)
            .is_ok_and(|value| !value.is_empty() && value != "0");
        assert!(
            !required,
            "{REQUIRE_POSTGRES_ENV} is set but {TEST_DATABASE_ENV} is not"
        );
        eprintln!("PostgreSQL variant skipped: {TEST_DATABASE_ENV} is not set");
    }
    base_url.map(|base_url| TestPostgres { base_url })
}

impl TestPostgres {
    /// Creates an empty schema and returns a URL whose connections use it (through
    /// `search_path`), so that tests running at once never see each other's rows.
    ///
    /// # Panics
    ///
    /// When the server cannot be reached or refuses to create the schema: the test cannot
    /// run, and must not pass.
    pub async fn fresh_schema(&self) -> String {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let schema = format!(
            "t{}_{}_{}",
            std::process::id(),
            nanos % 1_000_000_000_000,
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let (client, connection) = match tokio_postgres::connect(&self.base_url, NoTls).await {
            Ok(connected) => connected,
            Err(e) => panic!("cannot reach {TEST_DATABASE_ENV}: {e}"),
        };
        let driver = tokio::spawn(connection);
        if let Err(e) = client
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .await
        {
            panic!("cannot create test schema {schema}: {e}");
        }
        drop(client);
        let _ = driver.await;
        let separator = if self.base_url.contains('?') {
            '&'
        } else {
            '?'
        };
        format!(
            "{}{separator}options=-csearch_path%3D{schema}",
            self.base_url
        )
    }
}

/// A URL's address (everything before the `?`) and its query parameters, form-decoded
/// (`%2F` and `+` read as `/` and a space). Of a parameter given twice, the last value is
/// kept.
pub fn url_query(url: &str) -> (String, HashMap<String, String>) {
    let (address, query) = url.split_once('?').unwrap_or((url, ""));
    let params = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    (address.to_owned(), params)
}

#[cfg(test)]
mod tests {
    use super::url_query;

    #[test]
    fn url_query_splits_the_address_and_decodes_the_parameters() {
        let (address, params) =
            url_query("https://shop.example/cb?code=a%2Fb&state=x+y&iss=https%3A%2F%2Fid&e=");
        assert_eq!(address, "https://shop.example/cb");
        assert_eq!(params.len(), 4);
        assert_eq!(
            (params["code"].as_str(), params["state"].as_str()),
            ("a/b", "x y")
        );
        assert_eq!(
            (params["iss"].as_str(), params["e"].as_str()),
            ("https://id", "")
        );

        let (address, params) = url_query("https://shop.example/cb");
        assert_eq!(address, "https://shop.example/cb");
        assert!(params.is_empty());
    }
}
