//! Platform settings, passed explicitly (no globals).

use std::path::PathBuf;

use cyberid_store::StoreLocation;

#[derive(Clone, Debug)]
pub struct PlatformConfig {
    /// Holds the platform keys and, with the embedded store, the database.
    pub data_dir: PathBuf,
    pub store: StoreLocation,
    /// The public base URL (`iss` of credentials and tokens). `None`: derived from the
    /// listening address.
    pub issuer: Option<String>,
    /// Lifetime of a network credential.
    pub credential_lifetime_days: i64,
    /// How long an enrolment ticket (and its PIN evaluation) stays valid.
    pub enrolment_ticket_seconds: i64,
    /// How long verifiers may cache a status list.
    pub status_list_ttl_seconds: u64,
    /// How long a sign-in may wait for the wallet's decision.
    pub login_lifetime_seconds: i64,
    /// How long ended sign-ins are kept (then purged, SPEC §5).
    pub login_retention_seconds: i64,
    /// Face-match threshold (cosine similarity); see `cyberid_registry::face`.
    pub face_threshold: f32,
    /// How long the login page's status request waits for the wallet's decision before it
    /// answers `pending` (and is asked again): below the idle timeouts of common proxies
    /// (30–60 s), so the answer always comes back on an open connection.
    pub decision_wait: std::time::Duration,
    /// How often a node reads the store for decisions taken on other nodes on the sign-ins
    /// it holds waiting status requests for (one read for all of them; this node's own
    /// decisions wake their waiters at once).
    pub decision_recheck: std::time::Duration,
}

impl PlatformConfig {
    pub fn new(data_dir: PathBuf, store: StoreLocation) -> Self {
        Self {
            data_dir,
            store,
            issuer: None,
            credential_lifetime_days: 365,
            enrolment_ticket_seconds: 600,
            status_list_ttl_seconds: 300,
            login_lifetime_seconds: 300,
            login_retention_seconds: 86_400,
            face_threshold: cyberid_registry::face::DEFAULT_THRESHOLD,
            decision_wait: std::time::Duration::from_secs(25),
            decision_recheck: std::time::Duration::from_millis(500),
        }
    }
}
