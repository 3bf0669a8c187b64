//! The settings by section, with their defaults; secrets wrapped; the flags that override.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use cyberid_store::{Durability, StoreLocation, Timeouts};
use serde::{Deserialize, Serialize};

/// Every setting of a platform node, by section. Each key is described in [`SETTINGS`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub store: StoreSettings,
    pub credential: CredentialSettings,
    pub sign_in: SignInSettings,
    pub lockout: LockoutSettings,
    pub face: FaceSettings,
    pub retention: RetentionSettings,
    pub limits: LimitSettings,
    pub metrics: MetricsSettings,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    /// `None`: `http://` and the listening address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    pub header_read_timeout_seconds: u64,
    pub body_timeout_seconds: u64,
    pub send_timeout_seconds: u64,
    pub max_connections: usize,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            issuer: None,
            header_read_timeout_seconds: 10,
            body_timeout_seconds: 20,
            send_timeout_seconds: 20,
            max_connections: 50_000,
        }
    }
}

impl ServerSettings {
    pub fn connection_limits(&self) -> crate::connections::ConnectionLimits {
        crate::connections::ConnectionLimits {
            header_read_timeout: std::time::Duration::from_secs(self.header_read_timeout_seconds),
            body_timeout: std::time::Duration::from_secs(self.body_timeout_seconds),
            send_timeout: std::time::Duration::from_secs(self.send_timeout_seconds),
            max_connections: self.max_connections,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    pub data: PathBuf,
    /// A URL may carry the database password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<Secret<String>>,
    pub pool_size: usize,
    #[serde(with = "DurabilityName")]
    pub durability: Durability,
    pub connect_timeout_ms: u64,
    pub operation_timeout_ms: u64,
    pub ready_timeout_ms: u64,
}

impl Default for StoreSettings {
    fn default() -> Self {
        let timeouts = Timeouts::default();
        Self {
            data: PathBuf::from("cyberid-data"),
            database_url: None,
            pool_size: 16,
            durability: Durability::Full,
            connect_timeout_ms: millis(timeouts.connect),
            operation_timeout_ms: millis(timeouts.operation),
            ready_timeout_ms: 500,
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// How [`Durability`] is spelt in a file or variable.
#[derive(Serialize, Deserialize)]
#[serde(remote = "Durability", rename_all = "lowercase")]
enum DurabilityName {
    Full,
    Normal,
}

impl StoreSettings {
    /// The store these settings name: PostgreSQL when a database URL is set, else SQLite in
    /// the data directory.
    pub fn location(&self) -> StoreLocation {
        match &self.database_url {
            Some(url) => StoreLocation::Postgres {
                url: url.expose().clone(),
                pool_size: self.pool_size,
                timeouts: Timeouts {
                    connect: Duration::from_millis(self.connect_timeout_ms),
                    operation: Duration::from_millis(self.operation_timeout_ms),
                },
            },
            None => StoreLocation::Sqlite {
                data_dir: self.data.clone(),
                durability: self.durability,
            },
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CredentialSettings {
    pub lifetime_days: i64,
    pub enrolment_ticket_seconds: i64,
    pub enrolment_proof_max_skew_seconds: u64,
    pub status_list_ttl_seconds: u64,
}

impl Default for CredentialSettings {
    fn default() -> Self {
        Self {
            lifetime_days: 365,
            enrolment_ticket_seconds: 600,
            enrolment_proof_max_skew_seconds: 600,
            status_list_ttl_seconds: 300,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SignInSettings {
    pub lifetime_seconds: i64,
    pub pushed_request_seconds: i64,
    pub code_seconds: i64,
    pub access_token_seconds: i64,
    pub id_token_seconds: i64,
    pub wallet_proof_max_skew_seconds: u64,
    pub client_assertion_max_lifetime_seconds: i64,
    pub decision_wait_seconds: u64,
    pub decision_recheck_ms: u64,
    pub max_waiting_requests: usize,
    pub max_waiting_per_sign_in: usize,
}

impl Default for SignInSettings {
    fn default() -> Self {
        Self {
            lifetime_seconds: 300,
            pushed_request_seconds: 60,
            code_seconds: 60,
            access_token_seconds: 600,
            id_token_seconds: 300,
            wallet_proof_max_skew_seconds: 300,
            client_assertion_max_lifetime_seconds: 600,
            decision_wait_seconds: 25,
            decision_recheck_ms: 500,
            max_waiting_requests: 100_000,
            max_waiting_per_sign_in: 4,
        }
    }
}

impl SignInSettings {
    pub fn decision_wait(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.decision_wait_seconds)
    }

    pub fn decision_recheck(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.decision_recheck_ms)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LockoutSettings {
    pub pin_attempts: u32,
    pub face_attempts: u32,
}

impl Default for LockoutSettings {
    fn default() -> Self {
        Self {
            pin_attempts: 5,
            face_attempts: 5,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaceSettings {
    /// A TOML float is an `f64`; the matcher takes the nearest `f32`.
    pub threshold: f64,
}

impl Default for FaceSettings {
    fn default() -> Self {
        // `cyberid_registry::face::DEFAULT_THRESHOLD`, written as the decimal it is (the
        // `f32` widened would print as 0.6000000238418579).
        Self { threshold: 0.6 }
    }
}

impl FaceSettings {
    pub fn matcher_threshold(&self) -> f32 {
        self.threshold as f32
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSettings {
    pub sign_ins_seconds: i64,
    pub unfinished_sign_ins_seconds: i64,
    pub purge_interval_seconds: u64,
    pub purge_batch: u32,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            sign_ins_seconds: 86_400,
            unfinished_sign_ins_seconds: 60,
            purge_interval_seconds: 60,
            purge_batch: 2_000,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitSettings {
    pub window_seconds: u64,
    pub sign_ins_per_address: u64,
    pub sign_ins_per_client: u64,
    pub pending_sign_ins_per_client: u64,
    pub token_requests_per_client: u64,
    pub enrolment_window_seconds: u64,
    pub enrolment_failures_per_id_number: u64,
    pub enrolment_failures_per_address: u64,
    pub sync_interval_ms: u64,
    /// `None`: the connection's peer address is the client's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_address_header: Option<String>,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            window_seconds: 60,
            sign_ins_per_address: 600,
            sign_ins_per_client: 60_000,
            pending_sign_ins_per_client: 200_000,
            token_requests_per_client: 60_000,
            enrolment_window_seconds: 3_600,
            enrolment_failures_per_id_number: 5,
            enrolment_failures_per_address: 30,
            sync_interval_ms: 500,
            client_address_header: None,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// `None`: no metrics listener (and no metrics recorded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
}

/// A value that must not reach logs or output: `Debug`, `Display` and `Serialize` show
/// `<redacted>`; [`Secret::expose`] gives the value to the code that uses it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub const REDACTED: &'static str = "<redacted>";

    pub fn new(value: T) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::REDACTED)
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::REDACTED)
    }
}

impl<T> Serialize for Secret<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(Self::REDACTED)
    }
}

/// The command-line flags that name settings; `None` leaves the lower layers' value.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub issuer: Option<String>,
    pub data: Option<PathBuf>,
    pub database_url: Option<Secret<String>>,
    pub pool_size: Option<usize>,
    pub durability: Option<Durability>,
}

impl Overrides {
    pub(super) fn apply(&self, settings: &mut Settings) {
        let (server, store) = (&mut settings.server, &mut settings.store);
        if let Some(listen) = self.listen {
            server.listen = listen;
        }
        if let Some(issuer) = &self.issuer {
            server.issuer = Some(issuer.clone());
        }
        if let Some(data) = &self.data {
            store.data = data.clone();
        }
        if let Some(url) = &self.database_url {
            store.database_url = Some(url.clone());
        }
        if let Some(pool_size) = self.pool_size {
            store.pool_size = pool_size;
        }
        if let Some(durability) = self.durability {
            store.durability = durability;
        }
    }
}

/// The settings as a TOML document with `section.name` tables, for lookups by key.
pub(super) fn as_table(settings: &Settings) -> toml::Table {
    toml::Table::try_from(settings).unwrap_or_default()
}
