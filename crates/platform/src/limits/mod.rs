//! Rate limits kept in the store, so that every node sees them (docs/limits.md).
//!
//! Two ways of counting:
//! - The sign-in's hot path (`/authorize`, `/par`, `/token`) counts in this node's memory and
//!   adds its counts to the store's every `limits.sync_interval_ms`, reading back the totals of
//!   every node ([`Limiter::sync`]). A check is a map lookup under a lock held for
//!   nanoseconds; the price is that across nodes a limit can be overshot by what the nodes
//!   admit within one interval.
//! - Failed enrolments, few and precious to a guesser, are counted in the store at once and
//!   exactly ([`Limiter::start_enrolment_attempt`]).
//!
//! Counters are fixed windows aligned to the clock. The store sees a keyed digest of what is
//! counted (an address, a client id, an ID number), never the value.

mod address;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use cyberid_crypto::keyed_digest::DigestKey;
use cyberid_domain::CitizenIdNumber;
use cyberid_store::{CounterIncrease, Store, StoreError};

pub use address::ClientAddress;

use crate::error::{ApiError, ErrorCode};
use crate::settings::LimitSettings;

/// Each limit the platform keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limit {
    SignInsPerAddress,
    SignInsPerClient,
    PendingSignInsPerClient,
    TokenRequestsPerClient,
    EnrolmentFailuresPerIdNumber,
    EnrolmentFailuresPerAddress,
}

impl Limit {
    /// The setting that sets it, for messages and logs.
    pub fn setting(self) -> &'static str {
        match self {
            Self::SignInsPerAddress => "limits.sign_ins_per_address",
            Self::SignInsPerClient => "limits.sign_ins_per_client",
            Self::PendingSignInsPerClient => "limits.pending_sign_ins_per_client",
            Self::TokenRequestsPerClient => "limits.token_requests_per_client",
            Self::EnrolmentFailuresPerIdNumber => "limits.enrolment_failures_per_id_number",
            Self::EnrolmentFailuresPerAddress => "limits.enrolment_failures_per_address",
        }
    }

    /// What a refusal tells the caller.
    fn explanation(self) -> &'static str {
        match self {
            Self::SignInsPerAddress => "too many sign-ins were started from this address",
            Self::SignInsPerClient => "this service has started too many sign-ins",
            Self::PendingSignInsPerClient => "this service has too many sign-ins waiting",
            Self::TokenRequestsPerClient => "this client has made too many token requests",
            Self::EnrolmentFailuresPerIdNumber => {
                "too many enrolments with this ID number failed the identity check"
            }
            Self::EnrolmentFailuresPerAddress => {
                "too many enrolments from this address failed the identity check"
            }
        }
    }

    /// The counter's first byte in the store.
    fn tag(self) -> u8 {
        match self {
            Self::SignInsPerAddress => 1,
            Self::SignInsPerClient => 2,
            Self::PendingSignInsPerClient => 3,
            Self::TokenRequestsPerClient => 4,
            Self::EnrolmentFailuresPerIdNumber => 5,
            Self::EnrolmentFailuresPerAddress => 6,
        }
    }
}

/// A request refused by a limit: answered `429 too_many_requests` with `Retry-After`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitReached {
    pub limit: Limit,
    /// Seconds until the window ends.
    pub retry_after: u64,
}

impl LimitReached {
    fn new(limit: Limit, retry_after: u64) -> Self {
        crate::telemetry::limit_reached(limit.setting());
        Self { limit, retry_after }
    }

    pub fn description(&self) -> String {
        format!(
            "{}; try again in {} seconds",
            self.limit.explanation(),
            self.retry_after
        )
    }

    /// `Retry-After` for a response.
    pub fn header(&self) -> (header::HeaderName, HeaderValue) {
        (header::RETRY_AFTER, HeaderValue::from(self.retry_after))
    }
}

impl From<LimitReached> for ApiError {
    fn from(reached: LimitReached) -> Self {
        ApiError::new(ErrorCode::TooManyRequests, reached.description())
            .with_retry_after(reached.retry_after)
    }
}

impl IntoResponse for LimitReached {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

/// What a counter counts, as this node keeps it in memory.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Counted {
    Address(IpAddr),
    Client(Box<str>),
}

impl Counted {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Self::Address(IpAddr::V4(v4)) => v4.octets().to_vec(),
            Self::Address(IpAddr::V6(v6)) => v6.octets().to_vec(),
            Self::Client(client_id) => client_id.as_bytes().to_vec(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct CounterId {
    limit: Limit,
    counted: Counted,
    window_start: i64,
}

/// One counter as this node knows it.
#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    /// Every node's total at the last sync (this node's synced counts included).
    known: i64,
    /// Counted here since.
    unsynced: i64,
    window_end: i64,
}

/// Counters tracked at most per node: a flood from more distinct addresses than this within
/// one window is no longer counted per address (the per-client limits still hold).
const MAX_TRACKED: usize = 1_000_000;

/// This node's rate limiter (see the module's documentation).
pub struct Limiter {
    settings: LimitSettings,
    /// How long a sign-in waits: the window of the pending-sign-ins limit.
    sign_in_lifetime: i64,
    digests: DigestKey,
    tallies: Mutex<HashMap<CounterId, Tally>>,
}

impl Limiter {
    pub fn new(settings: LimitSettings, sign_in_lifetime: i64, digests: DigestKey) -> Self {
        Self {
            settings,
            sign_in_lifetime,
            digests,
            tallies: Mutex::default(),
        }
    }

    /// `(maximum, window in seconds)`; a maximum of 0 is no limit.
    fn rule(&self, limit: Limit) -> (u64, i64) {
        let s = &self.settings;
        let window = |seconds: u64| i64::try_from(seconds.max(1)).unwrap_or(i64::MAX);
        match limit {
            Limit::SignInsPerAddress => (s.sign_ins_per_address, window(s.window_seconds)),
            Limit::SignInsPerClient => (s.sign_ins_per_client, window(s.window_seconds)),
            Limit::PendingSignInsPerClient => {
                (s.pending_sign_ins_per_client, self.sign_in_lifetime.max(1))
            }
            Limit::TokenRequestsPerClient => {
                (s.token_requests_per_client, window(s.window_seconds))
            }
            Limit::EnrolmentFailuresPerIdNumber => (
                s.enrolment_failures_per_id_number,
                window(s.enrolment_window_seconds),
            ),
            Limit::EnrolmentFailuresPerAddress => (
                s.enrolment_failures_per_address,
                window(s.enrolment_window_seconds),
            ),
        }
    }

    /// Counts one request against `limit` for `address`, unless the limit is reached.
    /// Nothing to count when the address is unknown.
    pub fn admit_address(
        &self,
        limit: Limit,
        address: ClientAddress,
        now: i64,
    ) -> Result<(), LimitReached> {
        match address.0 {
            Some(address) => self.admit(limit, Counted::Address(address), now),
            None => Ok(()),
        }
    }

    /// Counts one request against `limit` for client `client_id`, unless the limit is
    /// reached.
    pub fn admit_client(
        &self,
        limit: Limit,
        client_id: &str,
        now: i64,
    ) -> Result<(), LimitReached> {
        self.admit(limit, Counted::Client(client_id.into()), now)
    }

    /// Counts one sign-in started for `client_id` against both the per-client rate and the
    /// bound on its waiting sign-ins; counts neither if either is reached.
    pub fn admit_sign_in(&self, client_id: &str, now: i64) -> Result<(), LimitReached> {
        let counted = Counted::Client(client_id.into());
        let counters: Vec<(Limit, CounterId)> =
            [Limit::SignInsPerClient, Limit::PendingSignInsPerClient]
                .into_iter()
                .filter_map(|limit| Some((limit, self.counter(limit, counted.clone(), now)?)))
                .collect();
        let mut tallies = self.lock();
        for (limit, id) in &counters {
            // A counter not seen yet stands at zero, below any limit that is on.
            if let Some(reached) = tallies
                .get(id)
                .and_then(|tally| reached(*limit, self.rule(*limit).0, tally, now))
            {
                return Err(reached);
            }
        }
        for (limit, id) in counters {
            let window_end = self.window_end(limit, now);
            tally_of(&mut tallies, id, window_end).unsynced += 1;
        }
        Ok(())
    }

    fn admit(&self, limit: Limit, counted: Counted, now: i64) -> Result<(), LimitReached> {
        let Some(id) = self.counter(limit, counted, now) else {
            return Ok(());
        };
        let (maximum, _) = self.rule(limit);
        let window_end = self.window_end(limit, now);
        let mut tallies = self.lock();
        if tallies.len() >= MAX_TRACKED && !tallies.contains_key(&id) {
            return Ok(());
        }
        let tally = tally_of(&mut tallies, id, window_end);
        if let Some(reached) = reached(limit, maximum, tally, now) {
            return Err(reached);
        }
        tally.unsynced += 1;
        Ok(())
    }

    /// The counter for `counted` under `limit` in the window of `now`; `None` if the limit
    /// is off.
    fn counter(&self, limit: Limit, counted: Counted, now: i64) -> Option<CounterId> {
        let (maximum, window) = self.rule(limit);
        (maximum > 0).then(|| CounterId {
            limit,
            counted,
            window_start: now - now.rem_euclid(window),
        })
    }

    fn window_end(&self, limit: Limit, now: i64) -> i64 {
        let (_, window) = self.rule(limit);
        now - now.rem_euclid(window) + window
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CounterId, Tally>> {
        // A panic while holding the lock cannot leave a tally half-updated: recover it.
        self.tallies.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The counter's key in the store: the limit's tag and a keyed digest of what it counts.
    fn stored_counter(&self, limit: Limit, value: &[u8]) -> Vec<u8> {
        let mut counter = Vec::with_capacity(33);
        counter.push(limit.tag());
        counter.extend_from_slice(&self.digests.digest("rate-limit", value));
        counter
    }

    /// Adds this node's counts to the store's and reads back every node's totals: of the
    /// counters counted here since the last sync, and of those within half their limit, so
    /// that a node sees a limit approached elsewhere without counting itself. Forgets the
    /// counters of windows that have ended. On a store error the counts are kept for the
    /// next sync.
    pub async fn sync(&self, store: &dyn Store, now: i64) -> Result<(), StoreError> {
        let batch: Vec<(CounterId, i64)> = {
            let mut tallies = self.lock();
            tallies.retain(|_, tally| tally.window_end > now);
            tallies
                .iter_mut()
                .filter(|(id, tally)| {
                    let (maximum, _) = self.rule(id.limit);
                    tally.unsynced != 0
                        || u64::try_from(tally.known).unwrap_or(0).saturating_mul(2) >= maximum
                })
                .map(|(id, tally)| {
                    let delta = std::mem::take(&mut tally.unsynced);
                    tally.known += delta;
                    (id.clone(), delta)
                })
                .collect()
        };
        if batch.is_empty() {
            return Ok(());
        }
        let increases: Vec<CounterIncrease> = batch
            .iter()
            .map(|(id, delta)| CounterIncrease {
                counter: self.stored_counter(id.limit, &id.counted.bytes()),
                window_start: id.window_start,
                expires_at: self.window_end(id.limit, id.window_start),
                by: *delta,
            })
            .collect();
        let totals = store.add_to_counters(&increases).await;
        let mut tallies = self.lock();
        match totals {
            Ok(totals) => {
                for ((id, _), total) in batch.iter().zip(totals) {
                    if let Some(tally) = tallies.get_mut(id) {
                        // Counters only grow within a window: a total lower than what this
                        // node already knows is a read that raced a concurrent sync's write
                        // (two syncs at once), and must not let the node admit more.
                        tally.known = tally.known.max(total);
                    }
                }
                Ok(())
            }
            Err(e) => {
                for (id, delta) in &batch {
                    if let Some(tally) = tallies.get_mut(id) {
                        tally.known -= delta;
                        tally.unsynced += delta;
                    }
                }
                Err(e)
            }
        }
    }

    /// Counts an enrolment's identity check against the ID number's and the address's limits
    /// before it is made, in the store at once (so exactly across nodes and concurrent
    /// attempts). The attempt is then [`EnrolmentAttempt::settle`]d: a failed identity check
    /// stays counted, anything else is taken back.
    pub async fn start_enrolment_attempt(
        &self,
        store: &dyn Store,
        id_number: &CitizenIdNumber,
        address: ClientAddress,
        now: i64,
    ) -> Result<EnrolmentAttempt, EnrolmentRefused> {
        let mut counted = Vec::with_capacity(2);
        let mut push = |limit: Limit, value: &[u8]| {
            let (maximum, window) = self.rule(limit);
            if maximum > 0 {
                let window_start = now - now.rem_euclid(window);
                counted.push((
                    limit,
                    maximum,
                    CounterIncrease {
                        counter: self.stored_counter(limit, value),
                        window_start,
                        expires_at: window_start + window,
                        by: 1,
                    },
                ));
            }
        };
        push(
            Limit::EnrolmentFailuresPerIdNumber,
            id_number.as_str().as_bytes(),
        );
        if let Some(address) = address.0 {
            push(
                Limit::EnrolmentFailuresPerAddress,
                &Counted::Address(address).bytes(),
            );
        }
        let increases: Vec<CounterIncrease> = counted.iter().map(|(_, _, i)| i.clone()).collect();
        let totals = store.add_to_counters(&increases).await?;
        let attempt = EnrolmentAttempt { increases };
        for ((limit, maximum, increase), total) in counted.iter().zip(totals) {
            if u64::try_from(total).unwrap_or(0) > *maximum {
                attempt.take_back(store).await;
                return Err(EnrolmentRefused::Limit(LimitReached::new(
                    *limit,
                    u64::try_from(increase.expires_at - now).unwrap_or(1).max(1),
                )));
            }
        }
        Ok(attempt)
    }
}

/// Why an enrolment attempt was not started.
#[derive(Debug)]
pub enum EnrolmentRefused {
    Limit(LimitReached),
    Store(StoreError),
}

impl From<StoreError> for EnrolmentRefused {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl From<EnrolmentRefused> for ApiError {
    fn from(refused: EnrolmentRefused) -> Self {
        match refused {
            EnrolmentRefused::Limit(reached) => reached.into(),
            EnrolmentRefused::Store(e) => e.into(),
        }
    }
}

/// An enrolment's identity check, counted as a failure until [`EnrolmentAttempt::settle`]
/// says otherwise.
#[must_use = "settle the attempt: only failed identity checks may stay counted"]
pub struct EnrolmentAttempt {
    increases: Vec<CounterIncrease>,
}

impl EnrolmentAttempt {
    /// Keeps the attempt counted if the identity check failed; takes it back otherwise.
    pub async fn settle(self, store: &dyn Store, identity_check_failed: bool) {
        if !identity_check_failed {
            self.take_back(store).await;
        }
    }

    async fn take_back(&self, store: &dyn Store) {
        let refunds: Vec<CounterIncrease> = self
            .increases
            .iter()
            .map(|i| CounterIncrease {
                by: -i.by,
                ..i.clone()
            })
            .collect();
        if let Err(e) = store.add_to_counters(&refunds).await {
            // The attempt stays counted: the holder may wait a window sooner than needed.
            tracing::warn!(error = %e, "an enrolment attempt could not be taken back");
        }
    }
}

fn tally_of(tallies: &mut HashMap<CounterId, Tally>, id: CounterId, window_end: i64) -> &mut Tally {
    tallies.entry(id).or_insert(Tally {
        window_end,
        ..Tally::default()
    })
}

fn reached(limit: Limit, maximum: u64, tally: &Tally, now: i64) -> Option<LimitReached> {
    let counted = u64::try_from(tally.known + tally.unsynced).unwrap_or(0);
    (counted >= maximum).then(|| {
        LimitReached::new(
            limit,
            u64::try_from(tally.window_end - now).unwrap_or(1).max(1),
        )
    })
}
