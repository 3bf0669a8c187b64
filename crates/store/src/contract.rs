//! The store's contract: one trait per aggregate, and [`Store`], which combines them.
//!
//! Callers hold an `Arc<dyn Store>` and import the traits whose methods they call.

use async_trait::async_trait;
use cyberid_domain::{CitizenIdNumber, PersonRecord};

use crate::StoreError;
use crate::records::PinCount;
use crate::records::{
    AccountRecord, CodeRedemption, ConsentRecord, CounterIncrease, DeviceRecord, EnrolError,
    EnrolledAccount, Factor, LoginAndDevice, LoginOutcome, LoginRecord, NewAccount, NewLogin,
    PurgeCutoffs, RegistryBatches, RegistryImportError, RelyingParty, ResumedEnrolment,
    StoreCounts,
};

/// Everything the platform keeps, on one backend.
#[async_trait]
pub trait Store:
    AccountStore
    + SignInStore
    + ClientStore
    + ConsentStore
    + RegistryStore
    + LimitStore
    + Send
    + Sync
    + 'static
{
    /// "sqlite" or "postgres".
    fn backend(&self) -> &'static str;

    /// Checks that the database answers (readiness).
    async fn ping(&self) -> Result<(), StoreError>;

    async fn counts(&self) -> Result<StoreCounts, StoreError>;

    /// Records `fingerprint` as the platform keys' fingerprint unless one is recorded, and
    /// returns the recorded one: nodes with different keys must not share a store.
    async fn claim_key_fingerprint(&self, fingerprint: &str) -> Result<String, StoreError>;
}

/// Accounts with their devices and credentials (and so the status lists), and the failure
/// counts of their factors.
#[async_trait]
pub trait AccountStore: Send + Sync {
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

    /// `(index within the list, status)` for every non-valid credential of status list `list`.
    async fn credential_statuses(&self, list: u64) -> Result<Vec<(u64, u8)>, StoreError>;

    /// Sets a credential's status (valid, invalid, suspended).
    async fn set_credential_status(
        &self,
        status_index: u64,
        status: u8,
    ) -> Result<bool, StoreError>;

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

    /// Gives an active account a new PIN (its OPRF key id and verifier) with its PIN and
    /// face failure counts back at zero: the PIN reset after a live face match. `false`
    /// (and no change) for an account that is not active.
    async fn replace_pin(
        &self,
        account_id: i64,
        pin_key_id: &[u8],
        pin_verifier: &str,
    ) -> Result<bool, StoreError>;
}

/// Sign-ins from `/authorize` to the code exchange: the sign-in itself, its PIN
/// evaluations, its decision, its code, and its removal after the retention period.
#[async_trait]
pub trait SignInStore: Send + Sync {
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

    /// Ends a pending, unexpired sign-in for the wallet whose device key has thumbprint
    /// `device`: only if no other device has taken the sign-in up (see
    /// [`SignInStore::count_pin_evaluation`]); `false` if it was not pending any more or
    /// another device holds it. When
    /// approved, in the same transaction: the released claims join the holder's remembered
    /// consent for the client (written only when the client is new to the holder or the
    /// set grows; never lost to a concurrent approval), and the failure counts of the
    /// factors it proved start again from zero. The released claims are distinct (the
    /// platform releases each claim once).
    async fn finish_login(
        &self,
        id: &str,
        device: &str,
        outcome: &LoginOutcome,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// Marks an approved sign-in's code as used, once.
    async fn redeem_code(&self, id: &str, now: i64) -> Result<CodeRedemption, StoreError>;

    /// The code exchange's fast path, in one statement: redeems sign-in `id` only if it is
    /// `client_id`'s, that client is active, it was requested with `redirect_uri` and
    /// `code_challenge`, and it is approved and not redeemed yet. Returns the sign-in and
    /// its account; `None`, and nothing changed, when anything does not hold (the caller
    /// then looks closer, through [`SignInStore::redeem_code`], to give the precise error).
    async fn redeem_code_if(
        &self,
        id: &str,
        client_id: &str,
        redirect_uri: &str,
        code_challenge: &str,
        now: i64,
    ) -> Result<Option<(LoginRecord, Option<AccountRecord>)>, StoreError>;

    /// Marks a sign-in's code as replayed: the access tokens issued with it stop working.
    async fn mark_code_replayed(&self, transaction_id: &str, now: i64) -> Result<bool, StoreError>;

    /// Counts a PIN evaluation for a pending sign-in by the wallet whose device key has
    /// thumbprint `device`, in one write: the sign-in is taken up by that device (from then
    /// on no other device may act on it), the account's attempt is counted (unless `limit`
    /// are counted: locked), and the sign-in is marked as having had one, with the digest of
    /// the (already verified) approval sent with the evaluation. A sign-in another device
    /// took up is left alone and nothing is counted.
    async fn count_pin_evaluation(
        &self,
        account_id: i64,
        login_id: &str,
        device: &str,
        limit: u32,
        approval_digest: &[u8],
    ) -> Result<PinCount, StoreError>;

    /// Which of `ids` are no longer waiting for the wallet (decided, or expired at `now`);
    /// unknown ids are left out. Each node asks this for all the login pages it holds at
    /// once, to see decisions taken on other nodes: SQLite looks each id up in one read
    /// transaction, PostgreSQL in one statement with the ids as one array.
    async fn ended_sign_ins(&self, ids: &[String], now: i64) -> Result<Vec<String>, StoreError>;

    /// Deletes expired assertion ids and the sign-ins past their retention (see
    /// [`PurgeCutoffs`]), in transactions of at most `batch` rows of each; returns how many
    /// rows went. A day of sign-ins at national rates is hundreds of thousands of rows a
    /// minute: deleted in one transaction, they would hold every other write (on SQLite, the
    /// one writer) for seconds.
    async fn purge_expired(&self, cutoffs: PurgeCutoffs, batch: u32) -> Result<u64, StoreError> {
        let batch = batch.max(1);
        let mut purged = 0;
        loop {
            let (assertions, sign_ins) = self.purge_expired_batch(cutoffs, batch).await?;
            purged += assertions + sign_ins;
            if assertions < u64::from(batch) && sign_ins < u64::from(batch) {
                return Ok(purged);
            }
        }
    }

    /// One step of [`SignInStore::purge_expired`]: at most `batch` expired assertion ids
    /// and `batch` sign-ins past their retention (SQLite: one write job for both;
    /// PostgreSQL: one statement each); returns how many of each went.
    async fn purge_expired_batch(
        &self,
        cutoffs: PurgeCutoffs,
        batch: u32,
    ) -> Result<(u64, u64), StoreError>;
}

/// Relying parties, and the client assertions they used (single use until they expire).
#[async_trait]
pub trait ClientStore: Send + Sync {
    async fn insert_relying_party(&self, rp: &RelyingParty) -> Result<(), StoreError>;

    async fn relying_party(&self, client_id: &str) -> Result<Option<RelyingParty>, StoreError>;

    /// Every relying party, by registration time, then client id.
    async fn relying_parties(&self) -> Result<Vec<RelyingParty>, StoreError>;

    /// The relying parties of `sector` (they all see the same subject for a holder), by
    /// name.
    async fn relying_parties_in_sector(
        &self,
        sector: &str,
    ) -> Result<Vec<RelyingParty>, StoreError>;

    /// `false` if there is no such relying party.
    async fn set_relying_party_suspended(
        &self,
        client_id: &str,
        suspended: bool,
    ) -> Result<bool, StoreError>;

    /// Records a client assertion's `jti`; `false` if it was used before (a replay).
    async fn use_client_assertion(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: i64,
    ) -> Result<bool, StoreError>;
}

/// What each holder agreed to release to each relying party. Consent is written by
/// [`SignInStore::finish_login`], in the approval's own transaction.
#[async_trait]
pub trait ConsentStore: Send + Sync {
    async fn consent(
        &self,
        account_id: i64,
        client_id: &str,
    ) -> Result<Option<ConsentRecord>, StoreError>;

    async fn consents(&self, account_id: i64) -> Result<Vec<ConsentRecord>, StoreError>;

    async fn revoke_consent(&self, account_id: i64, client_id: &str) -> Result<bool, StoreError>;
}

/// The embedded copy of the population registry.
#[async_trait]
pub trait RegistryStore: Send + Sync {
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
}

/// The counters behind the platform's rate limits, shared by every node: each node adds what
/// it counted and reads back the totals of all nodes.
#[async_trait]
pub trait LimitStore: Send + Sync {
    /// Adds each increase to its counter (a counter not seen before starts at zero) and
    /// returns the counters' totals afterwards, in the order given, atomically. A counter may
    /// appear only once in `increases`.
    async fn add_to_counters(&self, increases: &[CounterIncrease]) -> Result<Vec<i64>, StoreError>;

    /// Deletes at most `batch` counters that expired before `now`; returns how many went.
    async fn purge_counters(&self, now: i64, batch: u32) -> Result<u64, StoreError>;
}
