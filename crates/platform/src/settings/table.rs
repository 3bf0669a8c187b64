//! The one table of settings: key, environment variable, meaning; and the reference
//! document generated from it.

use super::sections::*;

/// One setting: its key (`section.name`, as in the file), its environment variable, and
/// what it means.
#[derive(Clone, Copy, Debug)]
pub struct Setting {
    pub key: &'static str,
    pub env: &'static str,
    pub about: &'static str,
}

impl Setting {
    pub fn section(&self) -> &'static str {
        self.key
            .split_once('.')
            .map_or(self.key, |(section, _)| section)
    }

    pub fn name(&self) -> &'static str {
        self.key.split_once('.').map_or(self.key, |(_, name)| name)
    }
}

const fn setting(key: &'static str, env: &'static str, about: &'static str) -> Setting {
    Setting { key, env, about }
}

/// The sections, in file order, with what they hold.
pub const SECTIONS: &[(&str, &str)] = &[
    (
        "server",
        "Where the node listens, the URL it is known by, and how long it waits for slow clients.",
    ),
    ("store", "Where the platform's data lives."),
    ("credential", "Enrolment and the network credential."),
    (
        "sign_in",
        "Federated sign-in: the OpenID Connect provider and the login page.",
    ),
    (
        "lockout",
        "Failed attempts before a factor locks, counted in the store across nodes.",
    ),
    ("face", "The face matcher."),
    (
        "retention",
        "How long ended sign-ins are kept, and purging.",
    ),
    (
        "limits",
        "Rate limits, counted in the store so that every node sees them; a limit of 0 is \
         off. Each node counts locally and adds its counts to the store's every \
         `sync_interval_ms`: across nodes a limit may be overshot by what the nodes admit in \
         that interval. Refusals are `429 too_many_requests` with `Retry-After`. See \
         docs/limits.md.",
    ),
    (
        "metrics",
        "Prometheus metrics, on a listener of their own: never on the public one.",
    ),
];

/// Every setting, with its environment variable: `CYBERID_<SECTION>_<NAME>` in upper case,
/// except six that keep the names they had before sections existed.
pub const SETTINGS: &[Setting] = &[
    setting(
        "server.listen",
        "CYBERID_LISTEN",
        "Address to listen on; port 0 picks a free port (the URL is printed on stdout).",
    ),
    setting(
        "server.issuer",
        "CYBERID_ISSUER",
        "Public base URL, the `iss` of everything the platform signs (an http(s) URL without \
         query or fragment); set it when the platform sits behind a proxy. Default: \
         `http://` and the listening address.",
    ),
    setting(
        "server.header_read_timeout_seconds",
        "CYBERID_SERVER_HEADER_READ_TIMEOUT_SECONDS",
        "How long a connection may take to send a request's head, counted from when the node \
         waits for it: from the connection's start, and after each response (so it is also \
         the idle keep-alive timeout). Then the connection is closed.",
    ),
    setting(
        "server.body_timeout_seconds",
        "CYBERID_SERVER_BODY_TIMEOUT_SECONDS",
        "How long a request's declared body may take to arrive in full, counted from when \
         the node starts reading it (so a body sent a byte at a time is cut off too); then \
         the request is refused and the connection closed.",
    ),
    setting(
        "server.send_timeout_seconds",
        "CYBERID_SERVER_SEND_TIMEOUT_SECONDS",
        "How long an answer may wait for the client to take any more of it (a client that \
         asks and does not read); then the connection is closed.",
    ),
    setting(
        "server.max_connections",
        "CYBERID_SERVER_MAX_CONNECTIONS",
        "Connections served at once by this node; further clients wait in the listen queue \
         until one ends. Each waiting login page holds one.",
    ),
    setting(
        "store.data",
        "CYBERID_DATA",
        "Data directory: the platform keys (`keys/platform-keys.json`) and, without \
         `database_url`, the SQLite database.",
    ),
    setting(
        "store.database_url",
        "CYBERID_DATABASE_URL",
        "PostgreSQL URL (`postgres://user:password@host/db`); when set, the store lives \
         there instead of the data directory. Shown as `<redacted>`.",
    ),
    setting(
        "store.pool_size",
        "CYBERID_DB_POOL_SIZE",
        "PostgreSQL connections per node (at least 1).",
    ),
    setting(
        "store.durability",
        "CYBERID_DURABILITY",
        "SQLite commits: `full` fsyncs every commit (survives power loss), `normal` only at \
         checkpoints (survives process crashes only).",
    ),
    setting(
        "store.connect_timeout_ms",
        "CYBERID_STORE_CONNECT_TIMEOUT_MS",
        "PostgreSQL: the longest opening one connection may take (TCP, startup, \
         authentication).",
    ),
    setting(
        "store.operation_timeout_ms",
        "CYBERID_STORE_OPERATION_TIMEOUT_MS",
        "PostgreSQL: the longest one store call of a request may take, waiting for a pooled \
         connection included. Past it the request is answered `503 temporarily_unavailable` \
         with `Retry-After` and the connection is closed; a refused connection is answered so \
         at once. Bulk work (registry import, `bench populate`) is not bounded by it.",
    ),
    setting(
        "store.ready_timeout_ms",
        "CYBERID_STORE_READY_TIMEOUT_MS",
        "`/readyz` answers `503` unless the store answers within this.",
    ),
    setting(
        "credential.lifetime_days",
        "CYBERID_CREDENTIAL_LIFETIME_DAYS",
        "Lifetime of a network credential.",
    ),
    setting(
        "credential.enrolment_ticket_seconds",
        "CYBERID_CREDENTIAL_ENROLMENT_TICKET_SECONDS",
        "How long an enrolment ticket (and its PIN evaluation) stays valid.",
    ),
    setting(
        "credential.enrolment_proof_max_skew_seconds",
        "CYBERID_CREDENTIAL_ENROLMENT_PROOF_MAX_SKEW_SECONDS",
        "How far the time in an enrolment's proof of possession may be from the platform's \
         clock.",
    ),
    setting(
        "credential.status_list_ttl_seconds",
        "CYBERID_CREDENTIAL_STATUS_LIST_TTL_SECONDS",
        "How long verifiers may cache a status list (its token expires after 24 times this).",
    ),
    setting(
        "sign_in.lifetime_seconds",
        "CYBERID_SIGN_IN_LIFETIME_SECONDS",
        "How long a sign-in waits for the wallet's decision.",
    ),
    setting(
        "sign_in.pushed_request_seconds",
        "CYBERID_SIGN_IN_PUSHED_REQUEST_SECONDS",
        "How long a pushed authorization request (PAR) waits for the browser.",
    ),
    setting(
        "sign_in.code_seconds",
        "CYBERID_SIGN_IN_CODE_SECONDS",
        "How long an authorization code can be exchanged after the approval.",
    ),
    setting(
        "sign_in.access_token_seconds",
        "CYBERID_SIGN_IN_ACCESS_TOKEN_SECONDS",
        "Lifetime of an access token.",
    ),
    setting(
        "sign_in.id_token_seconds",
        "CYBERID_SIGN_IN_ID_TOKEN_SECONDS",
        "Lifetime of an ID token.",
    ),
    setting(
        "sign_in.wallet_proof_max_skew_seconds",
        "CYBERID_SIGN_IN_WALLET_PROOF_MAX_SKEW_SECONDS",
        "How far the time in a wallet's device proof may be from the platform's clock.",
    ),
    setting(
        "sign_in.client_assertion_max_lifetime_seconds",
        "CYBERID_SIGN_IN_CLIENT_ASSERTION_MAX_LIFETIME_SECONDS",
        "The longest a relying party's client assertion (`private_key_jwt`) may be valid.",
    ),
    setting(
        "sign_in.decision_wait_seconds",
        "CYBERID_SIGN_IN_DECISION_WAIT_SECONDS",
        "How long the login page's status request is held for the wallet's decision before \
         it answers `pending` and is asked again; keep it below the idle timeouts of proxies \
         in front (often 30–60 s). At most 3600.",
    ),
    setting(
        "sign_in.decision_recheck_ms",
        "CYBERID_SIGN_IN_DECISION_RECHECK_MS",
        "How often a node reads the store for decisions taken on other nodes on the sign-ins \
         it holds status requests for (one read for all of them). At least 10.",
    ),
    setting(
        "sign_in.max_waiting_requests",
        "CYBERID_SIGN_IN_MAX_WAITING_REQUESTS",
        "Status requests a node holds at once (each costs a connection); beyond, the status \
         is answered at once and the page asks again a second later. 0: never held.",
    ),
    setting(
        "sign_in.max_waiting_per_sign_in",
        "CYBERID_SIGN_IN_MAX_WAITING_PER_SIGN_IN",
        "Status requests held for one sign-in (a second tab, a reload).",
    ),
    setting(
        "lockout.pin_attempts",
        "CYBERID_LOCKOUT_PIN_ATTEMPTS",
        "Wrong PINs before the PIN locks.",
    ),
    setting(
        "lockout.face_attempts",
        "CYBERID_LOCKOUT_FACE_ATTEMPTS",
        "Failed face matches before the face factor locks.",
    ),
    setting(
        "face.threshold",
        "CYBERID_FACE_THRESHOLD",
        "Cosine similarity at or above which a live sample matches the registry template, \
         in (0, 1].",
    ),
    setting(
        "retention.sign_ins_seconds",
        "CYBERID_RETENTION_SIGN_INS_SECONDS",
        "How long approved sign-ins (the holder's login records) are kept after they \
         expire, then purged.",
    ),
    setting(
        "retention.unfinished_sign_ins_seconds",
        "CYBERID_RETENTION_UNFINISHED_SIGN_INS_SECONDS",
        "How long sign-ins that were never approved (pushed, pending, declined, failed: \
         anyone can start one) are kept after they expire, then purged.",
    ),
    setting(
        "retention.purge_interval_seconds",
        "CYBERID_RETENTION_PURGE_INTERVAL_SECONDS",
        "How often each node deletes expired tokens, assertion ids and sign-ins past their \
         retention.",
    ),
    setting(
        "retention.purge_batch",
        "CYBERID_RETENTION_PURGE_BATCH",
        "Rows deleted per transaction when purging: small enough that writes queued behind \
         one batch wait a few milliseconds at most.",
    ),
    setting(
        "limits.window_seconds",
        "CYBERID_LIMITS_WINDOW_SECONDS",
        "The window the sign-in and token limits count in (fixed windows, aligned to the clock).",
    ),
    setting(
        "limits.sign_ins_per_address",
        "CYBERID_LIMITS_SIGN_INS_PER_ADDRESS",
        "Requests to `/authorize` per client address (IPv6: per /64) per window. Many people \
         may share one IPv4 address behind carrier-grade NAT: size it for the busiest.",
    ),
    setting(
        "limits.sign_ins_per_client",
        "CYBERID_LIMITS_SIGN_INS_PER_CLIENT",
        "Sign-ins started (`/authorize`, `/par`) per relying party per window.",
    ),
    setting(
        "limits.pending_sign_ins_per_client",
        "CYBERID_LIMITS_PENDING_SIGN_INS_PER_CLIENT",
        "Sign-ins a relying party may have waiting: counted as those started within \
         `sign_in.lifetime_seconds`, after which an unfinished one has expired.",
    ),
    setting(
        "limits.token_requests_per_client",
        "CYBERID_LIMITS_TOKEN_REQUESTS_PER_CLIENT",
        "Authenticated `/token` requests per relying party per window.",
    ),
    setting(
        "limits.enrolment_window_seconds",
        "CYBERID_LIMITS_ENROLMENT_WINDOW_SECONDS",
        "The window failed enrolments are counted in.",
    ),
    setting(
        "limits.enrolment_failures_per_id_number",
        "CYBERID_LIMITS_ENROLMENT_FAILURES_PER_ID_NUMBER",
        "Failed identity checks (ID number, name and face) per ID number per enrolment \
         window; counted exactly across nodes.",
    ),
    setting(
        "limits.enrolment_failures_per_address",
        "CYBERID_LIMITS_ENROLMENT_FAILURES_PER_ADDRESS",
        "Failed identity checks per client address (IPv6: per /64) per enrolment window; \
         counted exactly across nodes.",
    ),
    setting(
        "limits.sync_interval_ms",
        "CYBERID_LIMITS_SYNC_INTERVAL_MS",
        "How often a node adds its counts to the store's and reads back every node's totals.",
    ),
    setting(
        "limits.client_address_header",
        "CYBERID_LIMITS_CLIENT_ADDRESS_HEADER",
        "Behind a reverse proxy: the header it puts the client's address in (e.g. \
         `X-Forwarded-For`; the last address in it counts). Unset: the connection's peer \
         address. Set it only when every request passes through that proxy.",
    ),
    setting(
        "metrics.listen",
        "CYBERID_METRICS_LISTEN",
        "Address of the metrics listener (`GET /metrics`, Prometheus text format), e.g. \
         `127.0.0.1:9100`; keep it off the public network. Unset: no metrics are recorded.",
    ),
];

/// `docs/settings.md`: every key with its default, environment variable and meaning, from
/// [`SETTINGS`] and [`Settings::default`].
pub fn reference() -> String {
    let defaults = as_table(&Settings::default());
    let mut doc = String::from(
        "# Settings\n\
         \n\
         <!-- Generated from crates/platform/src/settings/table.rs (SETTINGS); regenerate with\n\
         `UPDATE_DOCS=1 cargo test -p cyberid-platform settings_doc`. -->\n\
         \n\
         A platform node's settings come, each overriding the one before, from:\n\
         \n\
         1. the defaults below;\n\
         2. a TOML file given with `--config FILE` (or `CYBERID_CONFIG=FILE`), with the\n   \
         sections and keys below; an unknown key is an error;\n\
         3. environment variables, one per setting (below); an empty value counts as unset,\n   \
         and `CYBERID_*` variables that are not settings are left to the commands they\n   \
         belong to (`CYBERID_WALLET`, `CYBERID_SERVER`, `CYBERID_PIN`, `CYBERID_LOG`), but\n   \
         one named like a setting (`CYBERID_SIGN_IN_…`) that is none draws a warning;\n\
         4. command-line flags (`--listen`, `--issuer`, `--data`, `--database-url`,\n   \
         `--pool-size`, `--durability`).\n\
         \n\
         `cyberid config check [--config FILE] [--json]` prints the settings that result\n\
         (secrets as `<redacted>`), or the first bad key. Durations are whole seconds (`_seconds`),\n\
         days (`_days`) or milliseconds (`_ms`).\n\
         \n\
         ```toml\n\
         [server]\n\
         listen = \"0.0.0.0:8080\"\n\
         issuer = \"https://id.example\"\n\
         \n\
         [sign_in]\n\
         lifetime_seconds = 180\n\
         ```\n",
    );
    for (section, about) in SECTIONS {
        doc.push_str(&format!(
            "\n## [{section}]\n\n{about}\n\n| key | default | environment | meaning |\n|---|---|---|---|\n"
        ));
        for setting in SETTINGS.iter().filter(|s| s.section() == *section) {
            let default = defaults
                .get(setting.section())
                .and_then(|s| s.get(setting.name()))
                .map_or_else(|| "none".to_owned(), |value| format!("`{value}`"));
            doc.push_str(&format!(
                "| `{}` | {default} | `{}` | {} |\n",
                setting.name(),
                setting.env,
                setting.about
            ));
        }
    }
    doc
}
