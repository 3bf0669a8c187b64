//! One conformance suite for every store implementation: each check runs against SQLite
//! and, when `CYBERID_TEST_DATABASE_URL` is set, against PostgreSQL (see `cyberid-testkit`).
//! One module per aggregate of the contract; `store` covers opening and migrating.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use cyberid_domain::{AssuranceLevel, Claim, ClientAuthMethod, NetworkNumber};
use cyberid_store::{
    ConsentRecord, Durability, EnrolledAccount, LoginOutcome, LoginStatus, NewAccount, NewLogin,
    RelyingParty, SignInRequest, Store, StoreLocation, Timeouts,
};

mod accounts;
mod clients;
mod consents;
mod limits;
mod registry;
mod sign_ins;
mod store;

/// Runs `check` against a fresh store of every available backend.
async fn for_each_backend<F, Fut>(check: F)
where
    F: Fn(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    for_each_backend_with_sql(|store, _| check(store)).await;
}

/// A way to the store's database beside the store, for what the contract cannot write
/// (rows it would never write itself).
#[derive(Clone, Debug)]
enum RawDatabase {
    Sqlite(PathBuf),
    Postgres(String),
}

impl RawDatabase {
    /// `sqlite` or `postgres`, whichever this database speaks.
    fn pick<'a>(&self, sqlite: &'a str, postgres: &'a str) -> &'a str {
        match self {
            Self::Sqlite(_) => sqlite,
            Self::Postgres(_) => postgres,
        }
    }

    /// Lets `table.column` take values its CHECK constraint refuses (PostgreSQL's
    /// constraints are named `<table>_<column>_check`; SQLite ignores them for
    /// [`RawDatabase::execute`] anyway).
    async fn drop_check(&self, table: &str, column: &str) {
        if let Self::Postgres(_) = self {
            self.execute(&format!(
                "ALTER TABLE {table} DROP CONSTRAINT {table}_{column}_check"
            ))
            .await;
        }
    }

    /// Runs `sql` (statements separated by `;`). On SQLite, CHECK constraints are not
    /// enforced for it; PostgreSQL's must be dropped by the SQL itself.
    async fn execute(&self, sql: &str) {
        match self {
            Self::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).unwrap();
                conn.execute_batch("PRAGMA ignore_check_constraints = ON")
                    .unwrap();
                conn.execute_batch(sql).unwrap();
            }
            Self::Postgres(url) => {
                let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                let driver = tokio::spawn(connection);
                client.batch_execute(sql).await.unwrap();
                drop(client);
                let _ = driver.await;
            }
        }
    }
}

/// [`for_each_backend`], with raw access to the database as well.
async fn for_each_backend_with_sql<F, Fut>(check: F)
where
    F: Fn(Arc<dyn Store>, RawDatabase) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let sqlite = cyberid_store::open(&StoreLocation::Sqlite {
        data_dir: dir.path().to_owned(),
        durability: Durability::Full,
    })
    .await
    .unwrap();
    let raw = RawDatabase::Sqlite(dir.path().join(cyberid_store::sqlite::DATABASE_FILE));
    check(sqlite, raw).await;

    if let Some(server) = cyberid_testkit::postgres() {
        let url = server.fresh_schema().await;
        let postgres = cyberid_store::open(&StoreLocation::Postgres {
            url: url.clone(),
            pool_size: 8,
            timeouts: Timeouts::default(),
        })
        .await
        .unwrap();
        check(postgres, RawDatabase::Postgres(url)).await;
    }
}

fn number(seed: u8) -> NetworkNumber {
    NetworkNumber::from_random_bytes([seed; 16])
}

/// Unique per call, so that only the constraint a check is about can be violated.
fn fresh_pin_key_id() -> [u8; 16] {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(
        &NEXT
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .to_be_bytes(),
    );
    id
}

fn account(person: u8, number_seed: u8, device: &str) -> NewAccount {
    NewAccount {
        person_digest: [person; 32],
        network_number: number(number_seed),
        wrapped_data_key: vec![1, 2, 3],
        sealed_attributes: vec![4, 5, 6],
        pin_key_id: fresh_pin_key_id(),
        pin_verifier: "verifier".into(),
        device_thumbprint: device.into(),
        device_public_jwk: "{}".into(),
        created_at: 1_800_000_000,
        credential_expires_at: 1_900_000_000,
    }
}

async fn futures_join<T: Send + 'static>(
    handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut out = Vec::new();
    for handle in handles.collect::<Vec<_>>() {
        out.push(handle.await.unwrap());
    }
    out
}

fn relying_party(client_id: &str) -> RelyingParty {
    RelyingParty {
        client_id: client_id.into(),
        name: "Shop".into(),
        redirect_uris: vec!["https://shop.example/cb".into()],
        sector: "shop.example".into(),
        allowed_claims: vec![Claim::AgeOver18],
        legal_basis: None,
        auth_method: ClientAuthMethod::ClientSecretBasic,
        secret_digest: Some(vec![7; 32]),
        jwks: None,
        require_par: false,
        suspended: false,
        created_at: 1_800_000_000,
    }
}

/// An authorization request of client `c1`, as the platform validates one.
fn request() -> SignInRequest {
    SignInRequest {
        client_id: "c1".into(),
        redirect_uri: "https://shop.example/cb".into(),
        state: None,
        nonce: None,
        claims: vec![Claim::AgeOver18],
        id_token_claims: Vec::new(),
        level: AssuranceLevel::L1,
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        force_consent: false,
    }
}

fn login(id: &str, status: LoginStatus, par: Option<&str>) -> NewLogin {
    NewLogin {
        id: id.into(),
        request: request(),
        par_handle: par.map(Into::into),
        browser_digest: None,
        status,
        created_at: 1_000,
        expires_at: 1_300,
    }
}

/// The first holder (device `d1`) and client `c1`, for the sign-in tests.
async fn holder_and_client(store: &dyn Store) -> EnrolledAccount {
    let enrolled = store.enrol(&account(1, 1, "d1")).await.unwrap();
    store
        .insert_relying_party(&relying_party("c1"))
        .await
        .unwrap();
    enrolled
}

/// The consent `account_id` has given client `c1` (it must exist).
async fn remembered(store: &dyn Store, account_id: i64) -> ConsentRecord {
    store.consent(account_id, "c1").await.unwrap().unwrap()
}

/// An L1 approval releasing `claims` at `at`.
fn approved_l1(account_id: i64, claims: &[Claim], at: i64) -> LoginOutcome {
    LoginOutcome::Approved {
        account_id,
        level: AssuranceLevel::L1,
        claims: claims.to_vec(),
        auth_time: at,
        reset: vec![],
    }
}

/// Asserts that `result` is a [`cyberid_store::StoreError::Corrupt`] naming `column`.
fn assert_corrupt<T: std::fmt::Debug>(
    result: Result<T, cyberid_store::StoreError>,
    column: &str,
    backend: &str,
) {
    match result {
        Err(cyberid_store::StoreError::Corrupt(message)) => {
            assert!(message.contains(column), "{backend}: {message}");
        }
        other => panic!("{backend}: expected corrupt {column}, got {other:?}"),
    }
}
