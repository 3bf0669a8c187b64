//! The cyberid store: everything the platform keeps, behind [`Store`].
//!
//! The contract ([`contract`]) is one trait per aggregate — [`AccountStore`],
//! [`SignInStore`], [`ClientStore`], [`ConsentStore`], [`RegistryStore`] — which [`Store`]
//! combines; its records are in [`records`]. Two implementations, each with its own
//! migrations: [`sqlite::SqliteStore`] (the embedded default, one file in the data
//! directory, WAL) and [`postgres::PostgresStore`] (for many platform nodes over one
//! database), each a folder with its engine apart from one query module per aggregate.
//! [`open`] picks one from a [`StoreLocation`]. The conformance tests in
//! `tests/conformance/` run the same checks against both.
//!
//! This crate knows rows and transactions. It knows nothing of HTTP, and it never sees a
//! citizen ID number or an attribute in clear beyond the registry copy: accounts hold a
//! keyed digest and sealed bytes prepared by the platform.

use std::path::PathBuf;
use std::sync::Arc;
#[cfg(feature = "failpoints")]
use std::sync::OnceLock;
use std::time::Duration;

/// SQL assembled from the column lists once, on first use: `format!` on every call would
/// allocate and format on each store call of a sign-in. Only for text that depends on
/// constants alone (a runtime value would be frozen at its first use).
macro_rules! sql {
    ($($format:tt)+) => {{
        static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        SQL.get_or_init(|| format!($($format)+)).as_str()
    }};
}

mod columns;
mod contract;
mod observed;
pub mod pacing;
pub mod postgres;
mod records;
pub mod sqlite;

pub use contract::{
    AccountStore, ClientStore, ConsentStore, LimitStore, RegistryStore, SignInStore, Store,
};
pub use records::{
    AccountRecord, CodeRedemption, ConsentRecord, CounterIncrease, DeviceRecord, EnrolError,
    EnrolledAccount, Factor, LoginAndDevice, LoginOutcome, LoginRecord, LoginStatus, NewAccount,
    NewLogin, PinCount, PurgeCutoffs, Refusal, RegistryBatches, RegistryChunk, RegistryImportError,
    RelyingParty, ResumedEnrolment, SignInRequest, StoreCounts,
};

const KEY_FINGERPRINT_SETTING: &str = "platform_key_fingerprint";

/// Entries per status list; a credential's list is `status_index / STATUS_LIST_CAPACITY`.
/// 2^20 entries hide each holder in a crowd of a million while the compressed list stays
/// a few kilobytes.
pub const STATUS_LIST_CAPACITY: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("database migration failed: {0}")]
    Migration(String),
    /// The database cannot be reached or did not answer in time: nothing is wrong with
    /// the request, and it may succeed when repeated.
    #[error("database unavailable: {0}")]
    Unavailable(String),
}

/// How long the PostgreSQL store waits for its database before giving up with
/// [`StoreError::Unavailable`], so that an unreachable database never holds a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Opening one connection: TCP, startup and authentication.
    pub connect: Duration,
    /// One call of the contract (a statement or a transaction), waiting for a pooled
    /// connection included. Bulk work (registry import, bulk enrolment, migrations) is
    /// not bounded by it.
    pub operation: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(2),
            operation: Duration::from_secs(2),
        }
    }
}

/// Where the store lives. `Debug` leaves the PostgreSQL URL out: it may carry a password.
#[derive(Clone)]
pub enum StoreLocation {
    /// `cyberid.db` (plus WAL files) in this data directory.
    Sqlite {
        data_dir: PathBuf,
        durability: Durability,
    },
    /// A PostgreSQL URL, e.g. `postgres://user@host/db`; `options=-csearch_path=...` selects a schema.
    Postgres {
        url: String,
        pool_size: usize,
        timeouts: Timeouts,
    },
}

impl std::fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite {
                data_dir,
                durability,
            } => f
                .debug_struct("Sqlite")
                .field("data_dir", data_dir)
                .field("durability", durability)
                .finish(),
            Self::Postgres {
                pool_size,
                timeouts,
                ..
            } => f
                .debug_struct("Postgres")
                .field("url", &"<redacted>")
                .field("pool_size", pool_size)
                .field("timeouts", timeouts)
                .finish(),
        }
    }
}

/// How SQLite commits: `Full` fsyncs the WAL at every commit (nothing committed is lost even
/// on power failure); `Normal` only at checkpoints (a power failure may lose the last
/// commits, a process crash loses nothing).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    #[default]
    Full,
    Normal,
}

/// Opens (and migrates) the store.
pub async fn open(location: &StoreLocation) -> Result<Arc<dyn Store>, StoreError> {
    match location {
        StoreLocation::Sqlite {
            data_dir,
            durability,
        } => Ok(Arc::new(
            sqlite::SqliteStore::open(data_dir, *durability).await?,
        )),
        StoreLocation::Postgres {
            url,
            pool_size,
            timeouts,
        } => Ok(Arc::new(
            postgres::PostgresStore::connect(url, *pool_size, *timeouts).await?,
        )),
    }
}

/// Crash-test hook: when the environment variable `CYBERID_FAILPOINT` names this point,
/// the process aborts here, as a power cut or `kill -9` would stop it. Read once. Only
/// with the `failpoints` feature, which the crash tests' builds turn on: elsewhere it is
/// empty, and no environment variable can make a production binary abort.
#[cfg(feature = "failpoints")]
pub fn failpoint(name: &str) {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    let armed = ARMED.get_or_init(|| std::env::var("CYBERID_FAILPOINT").ok());
    if armed.as_deref() == Some(name) {
        eprintln!("failpoint {name}: aborting the process");
        std::process::abort();
    }
}

/// Without the `failpoints` feature: nothing.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn failpoint(_name: &str) {}

#[cfg(test)]
mod tests {
    use super::StoreLocation;

    #[test]
    fn a_location_never_shows_its_database_url() {
        let location = StoreLocation::Postgres {
            url: "postgres://app:s3cret@db.example/cyberid".into(),
            pool_size: 4,
            timeouts: super::Timeouts::default(),
        };
        let shown = format!("{location:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("db.example"),
            "{shown}"
        );
        assert!(shown.contains("pool_size: 4"), "{shown}");
    }
}
