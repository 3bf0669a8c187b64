//! Loading in layers (defaults, file, environment, flags), and validation.

use std::fmt;
use std::path::{Path, PathBuf};

use super::sections::*;

use super::table::{SECTIONS, SETTINGS, Setting};

/// A setting that could not be loaded or is out of range; the message names the key (and
/// the file or variable it came from), never the value of a secret.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read the settings file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the settings file {path} is not valid TOML: line {line}, column {column}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("unknown setting {key} in {path}{hint}")]
    UnknownKey {
        key: String,
        path: PathBuf,
        hint: String,
    },
    #[error("setting {key} in {path}: {message}")]
    FileValue {
        key: String,
        path: PathBuf,
        message: String,
    },
    #[error("environment variable {var} (setting {key}): {message}")]
    EnvValue {
        var: String,
        key: &'static str,
        message: String,
    },
    #[error("setting {key}: {message}")]
    OutOfRange { key: &'static str, message: String },
}

/// Ten years: the longest any duration may be, so that adding one to a timestamp cannot
/// overflow.
const MAX_SECONDS: i64 = 10 * 365 * 86_400;

impl Settings {
    /// Defaults, then `file` (TOML), then the `CYBERID_*` variables of `env` named in
    /// [`SETTINGS`] (others are ignored; an empty value counts as unset), then `flags`;
    /// validated.
    pub fn load(
        file: Option<&Path>,
        env: impl Iterator<Item = (String, String)>,
        flags: &Overrides,
    ) -> Result<Self, SettingsError> {
        let mut layered = toml::Table::new();
        if let Some(path) = file {
            merge_file(&mut layered, path)?;
        }
        merge_env(&mut layered, env)?;
        // Every value was checked on its own as it was merged; together they cannot fail
        // but for a bug, reported all the same.
        let mut settings: Self =
            layered
                .try_into()
                .map_err(|e: toml::de::Error| SettingsError::OutOfRange {
                    key: "settings",
                    message: e.message().to_owned(),
                })?;
        flags.apply(&mut settings);
        settings.validate()?;
        Ok(settings)
    }

    /// Checks every value's range; the error names the first key out of range.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let Self {
            server,
            store,
            credential,
            sign_in,
            lockout,
            face,
            retention,
            limits,
            metrics,
        } = self;
        if let Some(issuer) = &server.issuer {
            check_issuer(issuer)?;
        }
        within(
            "server.header_read_timeout_seconds",
            server.header_read_timeout_seconds,
            1,
            3_600,
        )?;
        within(
            "server.body_timeout_seconds",
            server.body_timeout_seconds,
            1,
            3_600,
        )?;
        within(
            "server.send_timeout_seconds",
            server.send_timeout_seconds,
            1,
            3_600,
        )?;
        at_least("server.max_connections", server.max_connections, 1)?;
        if store.data.as_os_str().is_empty() {
            return Err(out_of_range("store.data", "must name a directory"));
        }
        if store
            .database_url
            .as_ref()
            .is_some_and(|url| url.expose().trim().is_empty())
        {
            return Err(out_of_range(
                "store.database_url",
                "must be a PostgreSQL URL",
            ));
        }
        at_least("store.pool_size", store.pool_size, 1)?;
        for (key, value) in [
            ("store.connect_timeout_ms", store.connect_timeout_ms),
            ("store.operation_timeout_ms", store.operation_timeout_ms),
            ("store.ready_timeout_ms", store.ready_timeout_ms),
        ] {
            within(key, value, 10, 600_000)?;
        }
        within(
            "credential.lifetime_days",
            credential.lifetime_days,
            1,
            MAX_SECONDS / 86_400,
        )?;
        seconds(
            "credential.enrolment_ticket_seconds",
            credential.enrolment_ticket_seconds,
        )?;
        unsigned_seconds(
            "credential.enrolment_proof_max_skew_seconds",
            credential.enrolment_proof_max_skew_seconds,
        )?;
        unsigned_seconds(
            "credential.status_list_ttl_seconds",
            credential.status_list_ttl_seconds,
        )?;
        seconds("sign_in.lifetime_seconds", sign_in.lifetime_seconds)?;
        seconds(
            "sign_in.pushed_request_seconds",
            sign_in.pushed_request_seconds,
        )?;
        seconds("sign_in.code_seconds", sign_in.code_seconds)?;
        seconds("sign_in.access_token_seconds", sign_in.access_token_seconds)?;
        seconds("sign_in.id_token_seconds", sign_in.id_token_seconds)?;
        unsigned_seconds(
            "sign_in.wallet_proof_max_skew_seconds",
            sign_in.wallet_proof_max_skew_seconds,
        )?;
        seconds(
            "sign_in.client_assertion_max_lifetime_seconds",
            sign_in.client_assertion_max_lifetime_seconds,
        )?;
        within(
            "sign_in.decision_wait_seconds",
            sign_in.decision_wait_seconds,
            1,
            3_600,
        )?;
        within(
            "sign_in.decision_recheck_ms",
            sign_in.decision_recheck_ms,
            10,
            3_600_000,
        )?;
        at_least(
            "sign_in.max_waiting_per_sign_in",
            sign_in.max_waiting_per_sign_in,
            1,
        )?;
        at_least("lockout.pin_attempts", lockout.pin_attempts, 1)?;
        at_least("lockout.face_attempts", lockout.face_attempts, 1)?;
        if !(face.threshold > 0.0 && face.threshold <= 1.0) {
            return Err(out_of_range(
                "face.threshold",
                format!("must be above 0 and at most 1, not {}", face.threshold),
            ));
        }
        seconds("retention.sign_ins_seconds", retention.sign_ins_seconds)?;
        within(
            "retention.purge_interval_seconds",
            retention.purge_interval_seconds,
            1,
            86_400,
        )?;
        at_least("retention.purge_batch", retention.purge_batch, 1)?;
        seconds(
            "retention.unfinished_sign_ins_seconds",
            retention.unfinished_sign_ins_seconds,
        )?;
        unsigned_seconds("limits.window_seconds", limits.window_seconds)?;
        unsigned_seconds(
            "limits.enrolment_window_seconds",
            limits.enrolment_window_seconds,
        )?;
        within(
            "limits.sync_interval_ms",
            limits.sync_interval_ms,
            10,
            60_000,
        )?;
        if metrics
            .listen
            .is_some_and(|listen| listen == server.listen && listen.port() != 0)
        {
            return Err(out_of_range(
                "metrics.listen",
                "must differ from server.listen: metrics are never served on the public listener",
            ));
        }
        if let Some(header) = &limits.client_address_header
            && axum::http::HeaderName::from_bytes(header.as_bytes()).is_err()
        {
            return Err(out_of_range(
                "limits.client_address_header",
                "must be an HTTP header name",
            ));
        }
        Ok(())
    }
}

fn known(section: &str, name: &str) -> Option<&'static Setting> {
    SETTINGS
        .iter()
        .find(|s| s.section() == section && s.name() == name)
}

/// A one-setting document: `[section] name = value`.
fn single(setting: &Setting, value: toml::Value) -> toml::Table {
    let mut section = toml::Table::new();
    section.insert(setting.name().to_owned(), value);
    let mut document = toml::Table::new();
    document.insert(setting.section().to_owned(), toml::Value::Table(section));
    document
}

/// Whether `value` is one `setting` can take (checked alone, so the error names it).
fn check_type(setting: &Setting, value: &toml::Value) -> Result<(), String> {
    single(setting, value.clone())
        .try_into::<Settings>()
        .map(drop)
        .map_err(|e| in_plain_words(e.message()))
}

/// serde names the Rust type expected; an operator wants to know the kind of value.
fn in_plain_words(message: &str) -> String {
    let mut message = message.trim().to_owned();
    for (rust, plain) in [
        ("expected i64", "expected an integer"),
        ("expected u64", "expected an integer of 0 or more"),
        ("expected usize", "expected an integer of 0 or more"),
        ("expected u32", "expected an integer of 0 or more"),
        ("expected f64", "expected a number"),
    ] {
        if let Some(start) = message.strip_suffix(rust).map(str::len) {
            message.replace_range(start.., plain);
        }
    }
    message
}

fn put(layered: &mut toml::Table, setting: &Setting, value: toml::Value) {
    if let toml::Value::Table(section) = layered
        .entry(setting.section())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
    {
        section.insert(setting.name().to_owned(), value);
    }
}

fn merge_file(layered: &mut toml::Table, path: &Path) -> Result<(), SettingsError> {
    let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
        path: path.to_owned(),
        source,
    })?;
    // The parser's own rendering quotes the offending line, which may hold a password:
    // only its position and message are shown.
    let document: toml::Table = toml::from_str(&text).map_err(|e| {
        let (line, column) = position(&text, e.span().map_or(0, |span| span.start));
        SettingsError::Syntax {
            path: path.to_owned(),
            line,
            column,
            message: e.message().trim().to_owned(),
        }
    })?;
    for (section_name, section) in document {
        let is_section = SECTIONS.iter().any(|(name, _)| *name == section_name);
        let section = match section {
            toml::Value::Table(section) if is_section => section,
            _ if is_section => {
                return Err(SettingsError::FileValue {
                    message: format!("must be a section ([{section_name}])"),
                    key: section_name,
                    path: path.to_owned(),
                });
            }
            toml::Value::Table(_) => {
                return Err(SettingsError::UnknownKey {
                    key: format!("[{section_name}]"),
                    path: path.to_owned(),
                    hint: sections_hint(),
                });
            }
            _ => {
                let hint = match SETTINGS.iter().find(|s| s.name() == section_name) {
                    Some(setting) => format!(
                        " (settings belong in sections: did you mean {} under [{}]?)",
                        setting.name(),
                        setting.section()
                    ),
                    None => sections_hint(),
                };
                return Err(SettingsError::UnknownKey {
                    key: section_name,
                    path: path.to_owned(),
                    hint,
                });
            }
        };
        for (name, value) in section {
            let Some(setting) = known(&section_name, &name) else {
                let names: Vec<&str> = SETTINGS
                    .iter()
                    .filter(|s| s.section() == section_name)
                    .map(Setting::name)
                    .collect();
                return Err(SettingsError::UnknownKey {
                    key: format!("{section_name}.{name}"),
                    path: path.to_owned(),
                    hint: format!(" ([{section_name}] has {})", names.join(", ")),
                });
            };
            check_type(setting, &value).map_err(|message| SettingsError::FileValue {
                key: setting.key.to_owned(),
                path: path.to_owned(),
                message,
            })?;
            put(layered, setting, value);
        }
    }
    Ok(())
}

fn sections_hint() -> String {
    let names: Vec<&str> = SECTIONS.iter().map(|(name, _)| *name).collect();
    format!(" (the sections are {})", names.join(", "))
}

/// Line and column (from 1) of byte `offset` in `text`.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// An environment value is read as the TOML number or boolean it spells when the setting
/// takes one, else as a string (`CYBERID_LISTEN=127.0.0.1:8080` needs no quotes).
fn merge_env(
    layered: &mut toml::Table,
    env: impl Iterator<Item = (String, String)>,
) -> Result<(), SettingsError> {
    for (var, raw) in env {
        let Some(setting) = SETTINGS.iter().find(|s| s.env == var) else {
            continue;
        };
        if raw.is_empty() {
            continue;
        }
        let scalar = raw.parse::<toml::Value>().ok().filter(|value| {
            matches!(
                value,
                toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_)
            )
        });
        let scalar_error = match scalar {
            Some(scalar) => match check_type(setting, &scalar) {
                Ok(()) => {
                    put(layered, setting, scalar);
                    continue;
                }
                Err(message) => Some(message),
            },
            None => None,
        };
        let text = toml::Value::String(raw);
        if let Err(message) = check_type(setting, &text) {
            // Of a number given where a string will not do either, the number's error says more.
            return Err(SettingsError::EnvValue {
                var,
                key: setting.key,
                message: scalar_error.unwrap_or(message),
            });
        }
        put(layered, setting, text);
    }
    Ok(())
}

/// Of `names`, those that look like a setting's variable (`CYBERID_<SECTION>_…`) but are
/// none, most likely misspelt: loading ignores them like any other command's variable, so a
/// command may warn about them.
pub fn misspelt_variables<'a>(names: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    names
        .filter(|name| {
            SECTIONS.iter().any(|(section, _)| {
                name.strip_prefix("CYBERID_")
                    .and_then(|rest| rest.strip_prefix(section.to_uppercase().as_str()))
                    .is_some_and(|rest| rest.starts_with('_'))
            }) && !SETTINGS.iter().any(|setting| setting.env == *name)
        })
        .collect()
}

fn out_of_range(key: &'static str, message: impl Into<String>) -> SettingsError {
    SettingsError::OutOfRange {
        key,
        message: message.into(),
    }
}

fn at_least<T: PartialOrd + fmt::Display>(
    key: &'static str,
    value: T,
    min: T,
) -> Result<(), SettingsError> {
    if value < min {
        return Err(out_of_range(
            key,
            format!("must be at least {min}, not {value}"),
        ));
    }
    Ok(())
}

fn within<T: PartialOrd + fmt::Display>(
    key: &'static str,
    value: T,
    min: T,
    max: T,
) -> Result<(), SettingsError> {
    if value < min || value > max {
        return Err(out_of_range(
            key,
            format!("must be between {min} and {max}, not {value}"),
        ));
    }
    Ok(())
}

/// A lifetime: at least one second, at most [`MAX_SECONDS`].
fn seconds(key: &'static str, value: i64) -> Result<(), SettingsError> {
    within(key, value, 1, MAX_SECONDS)
}

/// [`seconds`] for a duration that is never added to a timestamp.
fn unsigned_seconds(key: &'static str, value: u64) -> Result<(), SettingsError> {
    within(key, value, 1, MAX_SECONDS.unsigned_abs())
}

fn check_issuer(issuer: &str) -> Result<(), SettingsError> {
    let invalid = |why: &str| {
        out_of_range(
            "server.issuer",
            format!("must be an http(s) URL without query or fragment: {why}"),
        )
    };
    let url = url::Url::parse(issuer).map_err(|e| invalid(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(&format!("the scheme is {}", url.scheme())));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("it has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("it has a query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("it has user information"));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::settings::reference;
    use cyberid_store::Durability;

    fn env(pairs: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<Vec<_>>()
            .into_iter()
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    fn load(text: &str, vars: &[(&str, &str)], flags: &Overrides) -> Result<Settings, String> {
        let file = file(text);
        Settings::load(Some(file.path()), env(vars), flags).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_the_documented_values() {
        let settings = Settings::load(None, env(&[]), &Overrides::default()).unwrap();
        assert_eq!(settings, Settings::default());
        assert_eq!(settings.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(settings.server.issuer, None);
        assert_eq!(settings.store.data, PathBuf::from("cyberid-data"));
        assert_eq!(settings.store.pool_size, 16);
        assert_eq!(settings.store.durability, Durability::Full);
        assert_eq!(settings.credential.lifetime_days, 365);
        assert_eq!(settings.sign_in.code_seconds, 60);
        assert_eq!(settings.sign_in.decision_recheck_ms, 500);
        assert_eq!(settings.lockout.pin_attempts, 5);
        assert_eq!(settings.face.threshold, 0.6);
        assert_eq!(
            settings.face.matcher_threshold(),
            cyberid_registry::face::DEFAULT_THRESHOLD
        );
        assert_eq!(settings.retention.purge_batch, 2_000);
    }

    #[test]
    fn file_beats_default_env_beats_file_flag_beats_env() {
        let text = "[sign_in]\nlifetime_seconds = 120\ncode_seconds = 30\n\
                    [server]\nlisten = \"127.0.0.1:9000\"\n[store]\npool_size = 4\n";
        let from_file = load(text, &[], &Overrides::default()).unwrap();
        assert_eq!(from_file.sign_in.lifetime_seconds, 120);
        assert_eq!(from_file.sign_in.code_seconds, 30);
        assert_eq!(from_file.server.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(from_file.store.pool_size, 4);
        assert_eq!(from_file.sign_in.id_token_seconds, 300, "a default stays");

        let vars = [
            ("CYBERID_SIGN_IN_LIFETIME_SECONDS", "90"),
            ("CYBERID_LISTEN", "127.0.0.1:9001"),
            ("CYBERID_DB_POOL_SIZE", "8"),
        ];
        let from_env = load(text, &vars, &Overrides::default()).unwrap();
        assert_eq!(from_env.sign_in.lifetime_seconds, 90);
        assert_eq!(from_env.sign_in.code_seconds, 30, "the file's value stays");
        assert_eq!(from_env.server.listen.to_string(), "127.0.0.1:9001");
        assert_eq!(from_env.store.pool_size, 8);

        let flags = Overrides {
            listen: Some("127.0.0.1:9002".parse().unwrap()),
            pool_size: Some(2),
            ..Overrides::default()
        };
        let from_flags = load(text, &vars, &flags).unwrap();
        assert_eq!(from_flags.server.listen.to_string(), "127.0.0.1:9002");
        assert_eq!(from_flags.store.pool_size, 2);
        assert_eq!(
            from_flags.sign_in.lifetime_seconds, 90,
            "the env's value stays"
        );
    }

    #[test]
    fn every_setting_is_read_from_its_environment_variable() {
        let vars = [
            ("CYBERID_LISTEN", "0.0.0.0:1"),
            ("CYBERID_ISSUER", "https://id.example/base"),
            ("CYBERID_DATA", "/var/lib/cyberid"),
            ("CYBERID_DATABASE_URL", "postgres://u:pw@db/cyberid"),
            ("CYBERID_DB_POOL_SIZE", "3"),
            ("CYBERID_DURABILITY", "normal"),
            ("CYBERID_STORE_CONNECT_TIMEOUT_MS", "60"),
            ("CYBERID_STORE_OPERATION_TIMEOUT_MS", "61"),
            ("CYBERID_STORE_READY_TIMEOUT_MS", "62"),
            ("CYBERID_CREDENTIAL_LIFETIME_DAYS", "30"),
            ("CYBERID_CREDENTIAL_ENROLMENT_TICKET_SECONDS", "31"),
            ("CYBERID_CREDENTIAL_ENROLMENT_PROOF_MAX_SKEW_SECONDS", "32"),
            ("CYBERID_CREDENTIAL_STATUS_LIST_TTL_SECONDS", "33"),
            ("CYBERID_SIGN_IN_LIFETIME_SECONDS", "34"),
            ("CYBERID_SIGN_IN_PUSHED_REQUEST_SECONDS", "35"),
            ("CYBERID_SIGN_IN_CODE_SECONDS", "36"),
            ("CYBERID_SIGN_IN_ACCESS_TOKEN_SECONDS", "37"),
            ("CYBERID_SIGN_IN_ID_TOKEN_SECONDS", "38"),
            ("CYBERID_SIGN_IN_WALLET_PROOF_MAX_SKEW_SECONDS", "39"),
            (
                "CYBERID_SIGN_IN_CLIENT_ASSERTION_MAX_LIFETIME_SECONDS",
                "40",
            ),
            ("CYBERID_SIGN_IN_DECISION_WAIT_SECONDS", "41"),
            ("CYBERID_SIGN_IN_DECISION_RECHECK_MS", "42"),
            ("CYBERID_SIGN_IN_MAX_WAITING_REQUESTS", "43"),
            ("CYBERID_SIGN_IN_MAX_WAITING_PER_SIGN_IN", "44"),
            ("CYBERID_LOCKOUT_PIN_ATTEMPTS", "45"),
            ("CYBERID_LOCKOUT_FACE_ATTEMPTS", "46"),
            ("CYBERID_FACE_THRESHOLD", "0.75"),
            ("CYBERID_RETENTION_SIGN_INS_SECONDS", "47"),
            ("CYBERID_RETENTION_PURGE_INTERVAL_SECONDS", "48"),
            ("CYBERID_RETENTION_PURGE_BATCH", "49"),
            ("CYBERID_RETENTION_UNFINISHED_SIGN_INS_SECONDS", "50"),
            ("CYBERID_LIMITS_WINDOW_SECONDS", "51"),
            ("CYBERID_LIMITS_SIGN_INS_PER_ADDRESS", "52"),
            ("CYBERID_LIMITS_SIGN_INS_PER_CLIENT", "53"),
            ("CYBERID_LIMITS_PENDING_SIGN_INS_PER_CLIENT", "54"),
            ("CYBERID_LIMITS_TOKEN_REQUESTS_PER_CLIENT", "55"),
            ("CYBERID_LIMITS_ENROLMENT_WINDOW_SECONDS", "56"),
            ("CYBERID_LIMITS_ENROLMENT_FAILURES_PER_ID_NUMBER", "57"),
            ("CYBERID_LIMITS_ENROLMENT_FAILURES_PER_ADDRESS", "58"),
            ("CYBERID_LIMITS_SYNC_INTERVAL_MS", "59"),
            ("CYBERID_LIMITS_CLIENT_ADDRESS_HEADER", "X-Real-IP"),
            ("CYBERID_METRICS_LISTEN", "127.0.0.1:9100"),
            ("CYBERID_SERVER_HEADER_READ_TIMEOUT_SECONDS", "60"),
            ("CYBERID_SERVER_BODY_TIMEOUT_SECONDS", "61"),
            ("CYBERID_SERVER_MAX_CONNECTIONS", "62"),
            ("CYBERID_SERVER_SEND_TIMEOUT_SECONDS", "63"),
        ];
        assert_eq!(vars.len(), SETTINGS.len(), "one variable per setting");
        let s = Settings::load(None, env(&vars), &Overrides::default()).unwrap();
        let expected = Settings {
            server: ServerSettings {
                listen: "0.0.0.0:1".parse().unwrap(),
                issuer: Some("https://id.example/base".into()),
                header_read_timeout_seconds: 60,
                body_timeout_seconds: 61,
                send_timeout_seconds: 63,
                max_connections: 62,
            },
            store: StoreSettings {
                data: "/var/lib/cyberid".into(),
                database_url: Some(Secret::new("postgres://u:pw@db/cyberid".into())),
                pool_size: 3,
                durability: Durability::Normal,
                connect_timeout_ms: 60,
                operation_timeout_ms: 61,
                ready_timeout_ms: 62,
            },
            credential: CredentialSettings {
                lifetime_days: 30,
                enrolment_ticket_seconds: 31,
                enrolment_proof_max_skew_seconds: 32,
                status_list_ttl_seconds: 33,
            },
            sign_in: SignInSettings {
                lifetime_seconds: 34,
                pushed_request_seconds: 35,
                code_seconds: 36,
                access_token_seconds: 37,
                id_token_seconds: 38,
                wallet_proof_max_skew_seconds: 39,
                client_assertion_max_lifetime_seconds: 40,
                decision_wait_seconds: 41,
                decision_recheck_ms: 42,
                max_waiting_requests: 43,
                max_waiting_per_sign_in: 44,
            },
            lockout: LockoutSettings {
                pin_attempts: 45,
                face_attempts: 46,
            },
            face: FaceSettings { threshold: 0.75 },
            retention: RetentionSettings {
                sign_ins_seconds: 47,
                unfinished_sign_ins_seconds: 50,
                purge_interval_seconds: 48,
                purge_batch: 49,
            },
            limits: LimitSettings {
                window_seconds: 51,
                sign_ins_per_address: 52,
                sign_ins_per_client: 53,
                pending_sign_ins_per_client: 54,
                token_requests_per_client: 55,
                enrolment_window_seconds: 56,
                enrolment_failures_per_id_number: 57,
                enrolment_failures_per_address: 58,
                sync_interval_ms: 59,
                client_address_header: Some("X-Real-IP".into()),
            },
            metrics: MetricsSettings {
                listen: Some("127.0.0.1:9100".parse().unwrap()),
            },
        };
        assert_eq!(s, expected);
    }

    #[test]
    fn other_cyberid_variables_and_empty_values_are_ignored() {
        let vars = [
            ("CYBERID_WALLET", "./w"),
            ("CYBERID_SERVER", "http://x"),
            ("CYBERID_PIN", "246802"),
            ("CYBERID_LOG", "debug"),
            ("CYBERID_FAILPOINT", "enrol"),
            ("CYBERID_CONFIG", "/nonexistent.toml"),
            ("CYBERID_SIGN_IN_NOPE", "1"),
            ("CYBERID_DATABASE_URL", ""),
            ("CYBERID_SIGN_IN_CODE_SECONDS", ""),
            ("HOME", "/root"),
        ];
        let settings = Settings::load(None, env(&vars), &Overrides::default()).unwrap();
        assert_eq!(settings, Settings::default());
    }

    #[test]
    fn variables_named_like_settings_that_are_none_are_found() {
        let names = [
            "CYBERID_SIGN_IN_LIFETIM_SECONDS",
            "CYBERID_SIGN_IN_LIFETIME_SECONDS",
            "CYBERID_STORE_DATA",
            "CYBERID_SERVER",
            "CYBERID_SERVER_LISTEN",
            "CYBERID_FACES_THRESHOLD",
            "CYBERID_LOG",
            "CYBERID_DATA",
        ];
        assert_eq!(
            misspelt_variables(names.into_iter()),
            [
                "CYBERID_SIGN_IN_LIFETIM_SECONDS",
                "CYBERID_STORE_DATA",
                "CYBERID_SERVER_LISTEN"
            ]
        );
    }

    #[test]
    fn an_unknown_key_is_named_with_the_file() {
        let file = file("[sign_in]\nlifetim_seconds = 5\n");
        let error = Settings::load(Some(file.path()), env(&[]), &Overrides::default())
            .unwrap_err()
            .to_string();
        let expected = format!(
            "unknown setting sign_in.lifetim_seconds in {}",
            file.path().display()
        );
        assert!(error.starts_with(&expected), "{error}");
        assert!(
            error.contains("lifetime_seconds"),
            "the keys it has: {error}"
        );

        let error = load(
            "[signin]\nlifetime_seconds = 5\n",
            &[],
            &Overrides::default(),
        );
        assert!(
            error
                .unwrap_err()
                .starts_with("unknown setting [signin] in "),
            "an unknown section"
        );
        let error = load("server = 5\n", &[], &Overrides::default()).unwrap_err();
        assert!(
            error.starts_with("setting server in ")
                && error.ends_with("must be a section ([server])"),
            "{error}"
        );
        let error = load("listen = \"127.0.0.1:1\"\n", &[], &Overrides::default()).unwrap_err();
        assert!(
            error.starts_with("unknown setting listen in ") && error.contains("[server]"),
            "{error}"
        );
    }

    #[test]
    fn a_value_of_the_wrong_type_names_the_key() {
        for (text, key) in [
            ("[sign_in]\ncode_seconds = \"60\"\n", "sign_in.code_seconds"),
            ("[server]\nlisten = \"nowhere\"\n", "server.listen"),
            ("[store]\ndurability = \"sometimes\"\n", "store.durability"),
            ("[store]\npool_size = -1\n", "store.pool_size"),
            ("[face]\nthreshold = true\n", "face.threshold"),
            ("[lockout]\npin_attempts = 1.5\n", "lockout.pin_attempts"),
        ] {
            let error = load(text, &[], &Overrides::default()).unwrap_err();
            assert!(error.starts_with(&format!("setting {key} in ")), "{error}");
        }
        let error = load(
            "[sign_in]\ncode_seconds = \"60\"\n",
            &[],
            &Overrides::default(),
        );
        assert!(
            error.unwrap_err().ends_with("expected an integer"),
            "in plain words"
        );
        let error = load("[sign_in\n", &[], &Overrides::default()).unwrap_err();
        assert!(
            error.contains("is not valid TOML: line 1, column"),
            "{error}"
        );
    }

    #[test]
    fn a_bad_environment_value_names_the_variable() {
        for (var, value) in [
            ("CYBERID_SIGN_IN_CODE_SECONDS", "sixty"),
            ("CYBERID_SIGN_IN_DECISION_RECHECK_MS", "-5"),
            ("CYBERID_LISTEN", "8080"),
            ("CYBERID_DURABILITY", "fast"),
            ("CYBERID_FACE_THRESHOLD", "high"),
        ] {
            let error = Settings::load(None, env(&[(var, value)]), &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(
                error.starts_with(&format!("environment variable {var} (setting ")),
                "{error}"
            );
        }
        // A string setting takes a value that looks like a number.
        let settings = Settings::load(
            None,
            env(&[("CYBERID_DATA", "2026")]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(settings.store.data, PathBuf::from("2026"));
        let settings = Settings::load(
            None,
            env(&[("CYBERID_FACE_THRESHOLD", "1")]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(settings.face.threshold, 1.0);
    }

    #[test]
    fn values_out_of_range_name_the_key() {
        for (text, key) in [
            ("[sign_in]\ncode_seconds = 0\n", "sign_in.code_seconds"),
            (
                "[sign_in]\nlifetime_seconds = -5\n",
                "sign_in.lifetime_seconds",
            ),
            (
                "[sign_in]\naccess_token_seconds = 9999999999999\n",
                "sign_in.access_token_seconds",
            ),
            (
                "[sign_in]\ndecision_recheck_ms = 0\n",
                "sign_in.decision_recheck_ms",
            ),
            ("[store]\npool_size = 0\n", "store.pool_size"),
            (
                "[store]\noperation_timeout_ms = 0\n",
                "store.operation_timeout_ms",
            ),
            ("[store]\ndata = \"\"\n", "store.data"),
            ("[lockout]\nface_attempts = 0\n", "lockout.face_attempts"),
            ("[face]\nthreshold = 0.0\n", "face.threshold"),
            ("[face]\nthreshold = 1.5\n", "face.threshold"),
            ("[face]\nthreshold = nan\n", "face.threshold"),
            (
                "[credential]\nlifetime_days = 0\n",
                "credential.lifetime_days",
            ),
            (
                "[credential]\nstatus_list_ttl_seconds = 0\n",
                "credential.status_list_ttl_seconds",
            ),
            ("[retention]\npurge_batch = 0\n", "retention.purge_batch"),
            ("[server]\nissuer = \"id.example\"\n", "server.issuer"),
            ("[server]\nissuer = \"ftp://id.example\"\n", "server.issuer"),
            (
                "[server]\nissuer = \"https://id.example/?a=b\"\n",
                "server.issuer",
            ),
        ] {
            let error = load(text, &[], &Overrides::default()).unwrap_err();
            assert!(error.starts_with(&format!("setting {key}: ")), "{error}");
        }
        let flags = Overrides {
            pool_size: Some(0),
            ..Overrides::default()
        };
        let error = load("", &[], &flags).unwrap_err();
        assert!(error.starts_with("setting store.pool_size: "), "{error}");
        // The bounds themselves are allowed.
        load(
            "[face]\nthreshold = 1.0\n[sign_in]\nmax_waiting_requests = 0\n\
             [credential]\nstatus_list_ttl_seconds = 1\n[server]\nissuer = \"http://localhost:8080/id\"\n",
            &[],
            &Overrides::default(),
        )
        .unwrap();
    }

    #[test]
    fn secrets_never_show() {
        let password = "s3cr3t-pa55";
        let url = format!("postgres://cyberid:{password}@db.example/cyberid");
        let settings = Settings::load(
            None,
            env(&[("CYBERID_DATABASE_URL", url.as_str())]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(
            settings.store.database_url.as_ref().map(Secret::expose),
            Some(&url)
        );
        for shown in [
            format!("{settings:?}"),
            format!("{settings:#?}"),
            toml::to_string(&settings).unwrap(),
            serde_json::to_string(&settings).unwrap(),
        ] {
            assert!(!shown.contains(password), "{shown}");
        }
        assert!(format!("{settings:?}").contains("<redacted>"));
        assert_eq!(
            Secret::new("x").to_string(),
            "<redacted>",
            "Display redacts too"
        );
        // A syntax error on the URL's line does not quote the line.
        let error = load(
            &format!("[store]\ndatabase_url = {url}\n"),
            &[],
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(!error.contains(password), "{error}");
        assert!(error.contains("line 2"), "{error}");
    }

    #[test]
    fn the_printed_settings_load_again() {
        let settings = load(
            "[server]\nissuer = \"https://id.example\"\n[face]\nthreshold = 0.7\n",
            &[],
            &Overrides::default(),
        )
        .unwrap();
        let printed = toml::to_string(&settings).unwrap();
        assert!(printed.contains("threshold = 0.7\n"), "{printed}");
        assert_eq!(
            load(&printed, &[], &Overrides::default()).unwrap(),
            settings
        );
    }

    /// The table names every field once, and its variables follow the naming rule.
    #[test]
    fn the_table_covers_every_setting_once() {
        let mut full = Settings::default();
        full.server.issuer = Some("https://id.example".into());
        full.store.database_url = Some(Secret::new("postgres://db".into()));
        full.limits.client_address_header = Some("X-Forwarded-For".into());
        full.metrics.listen = Some("127.0.0.1:9100".parse().unwrap());
        let table = as_table(&full);
        let mut fields: Vec<String> = table
            .iter()
            .flat_map(|(section, keys)| {
                keys.as_table()
                    .unwrap()
                    .keys()
                    .map(move |key| format!("{section}.{key}"))
            })
            .collect();
        fields.sort();
        let mut keys: Vec<String> = SETTINGS.iter().map(|s| s.key.to_owned()).collect();
        keys.sort();
        assert_eq!(fields, keys);
        let sections: Vec<&str> = SECTIONS.iter().map(|(name, _)| *name).collect();
        let in_table: Vec<&str> = table.keys().map(String::as_str).collect();
        assert_eq!(sections.len(), in_table.len());
        assert!(in_table.iter().all(|s| sections.contains(s)));

        let legacy = [
            "CYBERID_LISTEN",
            "CYBERID_ISSUER",
            "CYBERID_DATA",
            "CYBERID_DATABASE_URL",
            "CYBERID_DB_POOL_SIZE",
            "CYBERID_DURABILITY",
        ];
        for setting in SETTINGS {
            if !legacy.contains(&setting.env) {
                let derived = format!("CYBERID_{}", setting.key.replace('.', "_")).to_uppercase();
                assert_eq!(setting.env, derived);
            }
            let same = SETTINGS.iter().filter(|s| s.env == setting.env).count();
            assert_eq!(same, 1, "{} is used twice", setting.env);
        }
    }

    /// `docs/settings.md` is what [`reference`] generates.
    #[test]
    fn settings_doc_is_current() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/settings.md");
        let generated = reference();
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            current == generated,
            "docs/settings.md is not what the SETTINGS table generates; regenerate it with \
             `UPDATE_DOCS=1 cargo test -p cyberid-platform settings_doc`"
        );
    }
}
