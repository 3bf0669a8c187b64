//! The cyberid store: everything the platform keeps, behind one trait, [`Store`].
//!
//! Two implementations, each with its own migrations: [`sqlite::SqliteStore`] (the embedded
//! default, one file in the data directory, WAL) and [`postgres::PostgresStore`] (for many
//! platform nodes over one database). [`open`] picks one from a [`StoreLocation`]. The
//! conformance tests in `tests/conformance.rs` run the same checks against both.
//!
//! This crate knows rows and transactions. It knows nothing of HTTP, and it never sees a
//! citizen ID number or an attribute in clear beyond the registry copy: accounts hold a
//! keyed digest and sealed bytes prepared by the platform.

use std::path::PathBuf;
use std::sync::Arc;
#[cfg(feature = "failpoints")]
use std::sync::OnceLock;

use async_trait::async_trait;
use cyberid_domain::{CitizenIdNumber, NetworkNumber, PersonRecord};
pub use login::{
    AccountRecord, CodeRedemption, ConsentRecord, DeviceRecord, Factor, LoginOutcome, LoginRecord,
    LoginStatus, NewLogin, RelyingParty,
};

const KEY_FINGERPRINT_SETTING: &str = "platform_key_fingerprint";

/// SQL assembled from the column lists once, on first use: `format!` on every call would
/// allocate and format on each store call of a sign-in. Only for text that depends on
/// constants alone (a runtime value would be frozen at its first use).
macro_rules! sql {
    ($($format:tt)+) => {{
        static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        SQL.get_or_init(|| format!($($format)+)).as_str()
    }};
}

/// Columns in a comma-separated list, at compile time (offsets into joined rows).
const fn column_count(columns: &str) -> usize {
    let bytes = columns.as_bytes();
    let (mut count, mut i) = (1, 0);
    while i < bytes.len() {
        if bytes[i] == b',' {
            count += 1;
        }
        i += 1;
    }
    count
}

mod login;
pub mod pacing;
pub mod postgres;
pub mod sqlite;

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
}

/// What a registry source sends to [`Store::registry_import`], in order.
#[derive(Debug)]
pub enum RegistryChunk {
    Records(Vec<PersonRecord>),
    /// The source ended cleanly: what was sent may be merged.
    End,
    /// The source failed (the text says where and why): nothing is imported.
    Failed(String),
}

/// The channel a registry source feeds. A source that stops without [`RegistryChunk::End`]
/// (its reader failed or panicked) imports nothing.
pub type RegistryBatches = tokio::sync::mpsc::Receiver<RegistryChunk>;

/// What [`Store::login_and_device`] found.
pub type LoginAndDevice = (Option<LoginRecord>, Option<(AccountRecord, DeviceRecord)>);

/// Why a registry import changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum RegistryImportError {
    /// The source failed or stopped early after `records_read` records reached the store;
    /// none were imported.
    #[error("{message}")]
    Source { message: String, records_read: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why an enrolment was not stored. Nothing was written in any of these cases.
#[derive(Debug, thiserror::Error)]
pub enum EnrolError {
    #[error("this person already has an account")]
    PersonAlreadyEnrolled,
    #[error("the network number is already taken")]
    NetworkNumberTaken,
    #[error("this device key is already bound to an account")]
    DeviceAlreadyBound,
    #[error("this PIN key id (enrolment ticket) was already used")]
    PinKeyIdTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A new account with its first device and first credential, stored in one transaction.
#[derive(Clone, Debug)]
pub struct NewAccount {
    pub person_digest: [u8; 32],
    pub network_number: NetworkNumber,
    /// The per-person data key, wrapped by the platform's key.
    pub wrapped_data_key: Vec<u8>,
    /// The attributes authentication needs, sealed under the data key.
    pub sealed_attributes: Vec<u8>,
    pub pin_key_id: [u8; 16],
    pub pin_verifier: String,
    pub device_thumbprint: String,
    pub device_public_jwk: String,
    pub created_at: i64,
    pub credential_expires_at: i64,
}

/// An enrolment retried by the device that made it (e.g. after the answer was lost): the
/// stored account with a fresh credential row.
#[derive(Clone, Debug)]
pub struct ResumedEnrolment {
    pub enrolled: EnrolledAccount,
    pub network_number: NetworkNumber,
    pub wrapped_data_key: Vec<u8>,
    pub sealed_attributes: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnrolledAccount {
    pub account_id: i64,
    pub device_id: i64,
    /// The credential's index in the status lists.
    pub status_index: u64,
}

/// Row counts, for operators' aggregates and for tests that assert nothing changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreCounts {
    pub registry_people: u64,
    pub accounts: u64,
    pub devices: u64,
    pub credentials: u64,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// "sqlite" or "postgres".
    fn backend(&self) -> &'static str;

    /// Checks that the database answers (readiness).
    async fn ping(&self) -> Result<(), StoreError>;

    /// Inserts or replaces registry records (the registry is authoritative: a re-import
    /// updates names and templates). One transaction per call.
    async fn registry_upsert(&self, records: Vec<PersonRecord>) -> Result<(), StoreError>;

    /// Imports a whole registry source: every batch is staged as it arrives and the lot is
    /// merged into the registry in ID-number order at the end (the last record for an ID
    /// number wins), so the primary-key index is written in order whatever its size. If
    /// the source fails or stops before its end, nothing is imported. A database failure
    /// during the merge rolls back on PostgreSQL and may leave SQLite partly merged (the
    /// merge runs in chunks); importing again completes it. Returns how many records were
    /// read.
    async fn registry_import(&self, batches: RegistryBatches) -> Result<u64, RegistryImportError>;

    async fn registry_find(&self, id: &CitizenIdNumber)
    -> Result<Option<PersonRecord>, StoreError>;

    /// Stores account, device and credential atomically; constraint violations become
    /// [`EnrolError`] variants and leave nothing behind.
    async fn enrol(&self, account: &NewAccount) -> Result<EnrolledAccount, EnrolError>;

    /// Stores many new accounts (with their device and credential) in one transaction: the
    /// bulk path for provisioning large populations. People who already have an account
    /// are passed over; returns how many accounts were created.
    async fn enrol_many(&self, accounts: Vec<NewAccount>) -> Result<u64, EnrolError>;

    /// For a person already enrolled whose active device has `account.device_thumbprint`:
    /// takes the new PIN key id and verifier, invalidates that device's earlier credentials
    /// and adds a new credential row, in one transaction. `None` (and no change) otherwise.
    async fn resume_enrolment(
        &self,
        account: &NewAccount,
    ) -> Result<Option<ResumedEnrolment>, EnrolError>;

    /// The highest status index issued so far.
    async fn max_status_index(&self) -> Result<Option<u64>, StoreError>;

    /// Records `fingerprint` as the platform keys' fingerprint unless one is recorded, and
    /// returns the recorded one: nodes with different keys must not share a store.
    async fn claim_key_fingerprint(&self, fingerprint: &str) -> Result<String, StoreError>;

    /// `(index within the list, status)` for every non-valid credential of status list `list`.
    async fn credential_statuses(&self, list: u64) -> Result<Vec<(u64, u8)>, StoreError>;

    /// Sets a credential's status (valid, invalid, suspended).
    async fn set_credential_status(
        &self,
        status_index: u64,
        status: u8,
    ) -> Result<bool, StoreError>;

    async fn counts(&self) -> Result<StoreCounts, StoreError>;

    // --- relying parties ---

    async fn insert_relying_party(&self, rp: &RelyingParty) -> Result<(), StoreError>;
    async fn relying_party(&self, client_id: &str) -> Result<Option<RelyingParty>, StoreError>;
    async fn relying_parties(&self) -> Result<Vec<RelyingParty>, StoreError>;
    /// `false` if there is no such relying party.
    async fn set_relying_party_suspended(
        &self,
        client_id: &str,
        suspended: bool,
    ) -> Result<bool, StoreError>;

    // --- sign-ins ---

    /// Stores a new sign-in, only while its client is registered and not suspended (checked
    /// in the same statement); `false` and nothing stored otherwise.
    async fn insert_login(&self, login: &NewLogin) -> Result<bool, StoreError>;
    async fn login(&self, id: &str) -> Result<Option<LoginRecord>, StoreError>;
    /// A sign-in with the relying party it is for, in one read (one round trip).
    async fn login_with_client(
        &self,
        id: &str,
    ) -> Result<Option<(LoginRecord, RelyingParty)>, StoreError>;
    /// A sign-in with its relying party and (once approved) its account, in one read.
    async fn login_with_client_and_account(
        &self,
        id: &str,
    ) -> Result<Option<(LoginRecord, RelyingParty, Option<AccountRecord>)>, StoreError>;
    /// A sign-in and the account bound to an active device key, each if it exists, in one
    /// read (a wallet's request names both).
    async fn login_and_device(
        &self,
        id: &str,
        thumbprint: &str,
    ) -> Result<LoginAndDevice, StoreError>;
    /// Moves a pushed sign-in of `client_id` to pending and binds it to a browser, once,
    /// and only while it has not expired and the client is not suspended.
    async fn claim_pushed_login(
        &self,
        par_handle: &str,
        client_id: &str,
        browser_digest: &[u8],
        now: i64,
        expires_at: i64,
    ) -> Result<Option<LoginRecord>, StoreError>;
    /// Ends a pending, unexpired sign-in; `false` if it was not pending any more. When
    /// approved, in the same transaction: the released claims join the holder's remembered
    /// consent for the client (written only when the client is new to the holder or the
    /// set grows; never lost to a concurrent approval), and the failure counts of the
    /// factors it proved start again from zero.
    async fn finish_login(
        &self,
        id: &str,
        outcome: &LoginOutcome,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Marks an approved sign-in's code as used, once.
    async fn redeem_code(&self, id: &str, now: i64) -> Result<CodeRedemption, StoreError>;
    /// The code exchange's fast path, in one statement: redeems sign-in `id` only if it is
    /// `client_id`'s, that client is active, it was requested with `redirect_uri` and
    /// `code_challenge`, and it is approved and not redeemed yet. Returns the sign-in and
    /// its account; `None`, and nothing changed, when anything does not hold (the caller
    /// then looks closer, through [`Store::redeem_code`], to give the precise error).
    async fn redeem_code_if(
        &self,
        id: &str,
        client_id: &str,
        redirect_uri: &str,
        code_challenge: &str,
        now: i64,
    ) -> Result<Option<(LoginRecord, Option<AccountRecord>)>, StoreError>;

    // --- access tokens ---

    /// Marks a sign-in's code as replayed: the access tokens issued with it stop working.
    async fn mark_code_replayed(&self, transaction_id: &str, now: i64) -> Result<bool, StoreError>;
    /// Counts a PIN evaluation for a pending sign-in, in one write: the account's attempt
    /// (unless `limit` are counted: `None`, locked) and the sign-in's mark that it had one,
    /// with the digest of the (already verified) approval sent with the evaluation.
    async fn count_pin_evaluation(
        &self,
        account_id: i64,
        login_id: &str,
        limit: u32,
        approval_digest: &[u8],
    ) -> Result<Option<u32>, StoreError>;
    /// Records a client assertion's `jti`; `false` if it was used before (a replay).
    async fn use_client_assertion(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: i64,
    ) -> Result<bool, StoreError>;
    /// Which of `ids` are no longer waiting for the wallet (decided, or expired at `now`);
    /// unknown ids are left out. Each node asks this for all the login pages it holds at
    /// once, to see decisions taken on other nodes: SQLite looks each id up in one read
    /// transaction, PostgreSQL in one statement with the ids as one array.
    async fn ended_sign_ins(&self, ids: &[String], now: i64) -> Result<Vec<String>, StoreError>;
    /// Deletes sign-ins that expired before `sign_ins_before` and expired assertion ids, in
    /// transactions of at most `batch` rows of each; returns how many rows went. A day of
    /// sign-ins at national rates is hundreds of thousands of rows a minute: deleted in one
    /// transaction, they would hold every other write (on SQLite, the one writer) for
    /// seconds.
    async fn purge_expired(
        &self,
        now: i64,
        sign_ins_before: i64,
        batch: u32,
    ) -> Result<u64, StoreError> {
        let batch = batch.max(1);
        let mut purged = 0;
        loop {
            let (assertions, sign_ins) = self
                .purge_expired_batch(now, sign_ins_before, batch)
                .await?;
            purged += assertions + sign_ins;
            if assertions < u64::from(batch) && sign_ins < u64::from(batch) {
                return Ok(purged);
            }
        }
    }
    /// One step of [`Store::purge_expired`]: at most `batch` expired assertion ids and
    /// `batch` sign-ins expired before `sign_ins_before` (SQLite: one write job for both;
    /// PostgreSQL: one statement each); returns how many of each went.
    async fn purge_expired_batch(
        &self,
        now: i64,
        sign_ins_before: i64,
        batch: u32,
    ) -> Result<(u64, u64), StoreError>;

    // --- accounts at sign-in ---

    /// The account and device of an active, unrevoked device key.
    async fn account_by_device(
        &self,
        thumbprint: &str,
    ) -> Result<Option<(AccountRecord, DeviceRecord)>, StoreError>;
    async fn account(&self, account_id: i64) -> Result<Option<AccountRecord>, StoreError>;
    /// Counts one attempt of `factor` unless `limit` attempts are already counted; returns
    /// the new count, or `None` when the factor is locked.
    async fn count_attempt(
        &self,
        account_id: i64,
        factor: Factor,
        limit: u32,
    ) -> Result<Option<u32>, StoreError>;
    async fn reset_attempts(&self, account_id: i64, factor: Factor) -> Result<(), StoreError>;

    // --- consents ---

    async fn consent(
        &self,
        account_id: i64,
        client_id: &str,
    ) -> Result<Option<ConsentRecord>, StoreError>;
    async fn consents(&self, account_id: i64) -> Result<Vec<ConsentRecord>, StoreError>;
    async fn revoke_consent(&self, account_id: i64, client_id: &str) -> Result<bool, StoreError>;
}

/// Where the store lives.
#[derive(Clone, Debug)]
pub enum StoreLocation {
    /// `cyberid.db` (plus WAL files) in this data directory.
    Sqlite {
        data_dir: PathBuf,
        durability: Durability,
    },
    /// A PostgreSQL URL, e.g. `postgres://user@host/db`; `options=-csearch_path=...` selects a schema.
    Postgres { url: String, pool_size: usize },
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
        StoreLocation::Postgres { url, pool_size } => Ok(Arc::new(
            postgres::PostgresStore::connect(url, *pool_size).await?,
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

/// What an import does with the source's next message: `Some` batch to stage, `None` at the
/// source's end (merge now); a failed source, or one that stopped without saying it ended,
/// is an error and nothing is imported. `records_read` is how many came before.
fn next_registry_batch(
    received: Option<RegistryChunk>,
    records_read: u64,
) -> Result<Option<Vec<PersonRecord>>, RegistryImportError> {
    match received {
        Some(RegistryChunk::Records(batch)) => Ok(Some(batch)),
        Some(RegistryChunk::End) => Ok(None),
        Some(RegistryChunk::Failed(message)) => Err(RegistryImportError::Source {
            message,
            records_read,
        }),
        None => Err(RegistryImportError::Source {
            message: "the registry source stopped before its end".into(),
            records_read,
        }),
    }
}

/// A registry batch as SQLite's upsert stores it: one record per ID number (the last one
/// wins, as if applied in order) and sorted by ID number, which makes B-tree inserts local.
fn normalise_registry_batch(records: Vec<PersonRecord>) -> Vec<PersonRecord> {
    let mut records: Vec<(usize, PersonRecord)> = records.into_iter().enumerate().collect();
    records.sort_by(|(i, a), (j, b)| {
        a.id_number
            .as_str()
            .cmp(b.id_number.as_str())
            .then(j.cmp(i))
    });
    records.dedup_by(|later, earlier| later.1.id_number == earlier.1.id_number);
    records.into_iter().map(|(_, record)| record).collect()
}

/// Rebuilds a registry record from stored columns, re-validating it.
fn registry_record(
    id_number: &str,
    name: &str,
    birth_date: time::Date,
    sex: &str,
    face: &[u8],
) -> Result<PersonRecord, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("registry {what}"));
    let id = CitizenIdNumber::parse(id_number).map_err(|_| corrupt("id number"))?;
    let name = cyberid_domain::PersonName::parse(name).map_err(|_| corrupt("name"))?;
    let face =
        cyberid_domain::FaceTemplate::from_bytes(face).map_err(|_| corrupt("face template"))?;
    let sex = cyberid_domain::Sex::parse(sex).ok_or_else(|| corrupt("sex"))?;
    PersonRecord::new(id, name, birth_date, sex, face).map_err(|_| corrupt("record"))
}
