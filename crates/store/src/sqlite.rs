//! The embedded store: one SQLite file in WAL mode.
//!
//! Writes go to one writer thread that owns the only writing connection (SQLite admits one
//! writer at a time anyway) and commits them in groups: whatever writes are waiting run in
//! one transaction, each inside its own savepoint (a failing write rolls back alone), and one
//! commit — one fsync — makes them all durable before any of their callers hears back.
//! Reads use a small pool of reader connections beside the writer (WAL) and run inline:
//! point reads take microseconds, less than a hand-off to another thread would cost; the few
//! scans (counts, lists) go to tokio's blocking pool.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cyberid_domain::{CitizenIdNumber, PersonRecord};
use cyberid_domain::{NetworkNumber, format_iso_date, parse_iso_date};
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior, params};

use crate::login::{from_json, to_json};
use crate::{
    AccountRecord, CodeRedemption, ConsentRecord, DeviceRecord, Durability, EnrolError,
    EnrolledAccount, Factor, KEY_FINGERPRINT_SETTING, LoginAndDevice, LoginOutcome, LoginRecord,
    LoginStatus, NewAccount, NewLogin, RegistryBatches, RegistryImportError, RelyingParty,
    ResumedEnrolment, STATUS_LIST_CAPACITY, Store, StoreCounts, StoreError, failpoint,
    next_registry_batch, normalise_registry_batch, registry_record,
};

pub const DATABASE_FILE: &str = "cyberid.db";
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/sqlite/0001_init.sql")),
    (2, include_str!("migrations/sqlite/0002_settings.sql")),
    (3, include_str!("migrations/sqlite/0003_login.sql")),
    (
        4,
        include_str!("migrations/sqlite/0004_login_hardening.sql"),
    ),
    (
        5,
        include_str!("migrations/sqlite/0005_stateless_access_tokens.sql"),
    ),
    (
        6,
        include_str!("migrations/sqlite/0006_approval_digest.sql"),
    ),
];
const IDLE_READERS: usize = 8;

pub struct SqliteStore {
    path: PathBuf,
    durability: Durability,
    writer: std::sync::mpsc::Sender<WriteJob>,
    readers: Arc<Mutex<Vec<Connection>>>,
}

/// One write for the writer thread: runs on the writer's connection inside the group's
/// transaction, says whether it succeeded (so its savepoint is kept or rolled back), and
/// hands back what to tell its caller once the group's commit is known.
type WriteJob = Box<dyn FnOnce(&mut Connection) -> (bool, Reply) + Send>;
type Reply = Box<dyn FnOnce(Option<StoreError>) + Send>;

/// Writes committed together at most; bounds the latency a group adds.
const MAX_GROUP: usize = 256;

/// Runs a fixed statement through the statement cache: the group-commit bracket runs
/// thousands of times a second, and parsing it each time showed in profiles.
fn run_cached(conn: &Connection, sql: &str) -> Result<(), StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.execute([]))
        .map(|_| ())
        .map_err(db_error)
}

/// Adds `claims` to what the holder agreed to release to `client_id` (written when the
/// service is new to the holder or the set grew, not at every sign-in). On the writer, in
/// the approval's own transaction: the merge cannot lose a claim to a concurrent approval.
fn remember_consent(
    conn: &Connection,
    account_id: i64,
    client_id: &str,
    claims: &[String],
    now: i64,
) -> Result<(), StoreError> {
    let existing: Option<String> = conn
        .prepare_cached("SELECT claims FROM consents WHERE account_id = ?1 AND client_id = ?2")
        .map_err(db_error)?
        .query_row(params![account_id, client_id], |row| row.get(0))
        .optional()
        .map_err(db_error)?;
    let known = existing.is_some();
    let mut remembered = match existing {
        Some(text) => from_json(&text)?,
        None => Vec::new(),
    };
    let before = remembered.len();
    for claim in claims {
        if !remembered.contains(claim) {
            remembered.push(claim.clone());
        }
    }
    if known && remembered.len() == before {
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT INTO consents (account_id, client_id, claims, granted_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (account_id, client_id) DO UPDATE SET claims = excluded.claims, granted_at = excluded.granted_at",
    )
    .map_err(db_error)?
    .execute(params![account_id, client_id, to_json(&remembered), now])
    .map(|_| ())
    .map_err(db_error)
}

/// Runs `work` inside a savepoint taken through cached statements (rusqlite's `Savepoint`
/// parses its SQL on every use, and the sign-in's writes take one each). The writer already
/// wraps each job in a savepoint; this one keeps a job atomic when it runs outside a group
/// transaction too (see [`run_writer`]).
fn in_savepoint<T>(
    conn: &Connection,
    work: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    run_cached(conn, "SAVEPOINT job")?;
    match work(conn) {
        Ok(value) => {
            run_cached(conn, "RELEASE job")?;
            Ok(value)
        }
        Err(e) => {
            let _ = run_cached(conn, "ROLLBACK TO job");
            let _ = run_cached(conn, "RELEASE job");
            Err(e)
        }
    }
}

/// WAL frames after which the log is copied back into the database (SQLite's own default).
const CHECKPOINT_FRAMES: i32 = 1000;
/// WAL frames after which the writer checkpoints the log itself.
const CHECKPOINT_FRAMES_INLINE: i32 = 8 * CHECKPOINT_FRAMES;

/// Moves checkpoints off the writer thread. SQLite runs them inside the commit that crosses
/// the threshold, so every write waiting for that group waited for the copy and its two
/// fsyncs too: the slowest code exchanges took four times the median. A thread of its own
/// runs them (PASSIVE: they never block the writer or readers) when the writer's commits
/// report the log long enough; when the writer's connection closes, the thread ends.
fn start_checkpointer(writer: &mut Connection, checkpointer: Connection) -> Result<(), StoreError> {
    // One pending request is enough: a checkpoint copies everything committed before it.
    let (request, requests) = std::sync::mpsc::sync_channel::<()>(1);
    writer
        .wal_hook(Some(move |wal: &mut rusqlite::hooks::Wal, frames: i32| {
            if frames >= CHECKPOINT_FRAMES_INLINE {
                // The log restarts from its beginning only after a checkpoint that caught up
                // with the writer; under writes that never pause, the thread's checkpoints
                // might not. Then the writer copies the log itself, as SQLite would.
                let _ = wal.checkpoint();
            } else if frames >= CHECKPOINT_FRAMES {
                let _ = request.try_send(());
            }
            Ok(())
        }))
        .map_err(db_error)?;
    std::thread::Builder::new()
        .name("sqlite-checkpointer".into())
        .spawn(move || {
            while requests.recv().is_ok() {
                // A checkpoint that fails (the database locked by another process past the
                // busy timeout) is retried with the next request; the log only grows meanwhile.
                let _ = checkpointer.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
            }
        })
        .map_err(|e| StoreError::Database(format!("cannot start the checkpoint thread: {e}")))?;
    Ok(())
}

/// The writer thread: takes the first waiting write, then every other already waiting,
/// and commits them as one transaction. While every core is busy serving requests it holds
/// the group open (see [`crate::pacing`]), so that what the handlers are about to write
/// joins it.
fn run_writer(mut conn: Connection, jobs: std::sync::mpsc::Receiver<WriteJob>) {
    while let Ok(first) = jobs.recv() {
        crate::pacing::wait_for_free_core(crate::pacing::MAX_HOLD);
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let mut replies = Vec::with_capacity(group.len());
        if run_cached(&conn, "BEGIN IMMEDIATE").is_err() {
            // No group transaction (the database stayed locked by another process past the
            // busy timeout): run each write on its own; each reports its own outcome.
            for job in group {
                let (_, reply) = job(&mut conn);
                reply(None);
            }
            continue;
        }
        for job in group {
            let saved = run_cached(&conn, "SAVEPOINT write").is_ok();
            let (ok, reply) = job(&mut conn);
            if saved {
                if !ok {
                    let _ = run_cached(&conn, "ROLLBACK TO write");
                }
                let _ = run_cached(&conn, "RELEASE write");
            }
            replies.push(reply);
        }
        let committed = run_cached(&conn, "COMMIT");
        if committed.is_err() {
            let _ = run_cached(&conn, "ROLLBACK");
        }
        for reply in replies {
            reply(
                committed
                    .as_ref()
                    .err()
                    .map(|e| StoreError::Database(e.to_string())),
            );
        }
    }
}

fn db_error(error: rusqlite::Error) -> StoreError {
    StoreError::Database(error.to_string())
}

fn join_error(error: tokio::task::JoinError) -> StoreError {
    StoreError::Database(format!("database task failed: {error}"))
}

/// Creates the database file readable by its owner only before SQLite opens it: the WAL
/// and shared-memory files inherit its mode, and the registry copy is personal data.
fn create_private(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Database(format!(
            "cannot create {}: {e}",
            path.display()
        ))),
    }
}

/// `work` in one read transaction on `conn`: one snapshot, and the WAL read lock taken once
/// (in autocommit each statement takes and drops it). `BEGIN` and `ROLLBACK` go through the
/// statement cache, not parsed each time.
fn in_read_transaction<T>(
    conn: &Connection,
    work: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let result = run_cached(conn, "BEGIN").and_then(|()| work(conn));
    // Nothing was written: ending the read transaction by ROLLBACK loses nothing.
    if !conn.is_autocommit() {
        let _ = run_cached(conn, "ROLLBACK");
    }
    result
}

fn connect(path: &Path, durability: Durability) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(db_error)?;
    // Other processes (operator commands, a second server) may hold the write lock briefly.
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(db_error)?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(db_error)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Database(format!(
            "could not enable WAL (mode {mode})"
        )));
    }
    let synchronous = match durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", synchronous)
        .map_err(db_error)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(db_error)?;
    // Plans must not depend on bound values: otherwise SQLite re-prepares a cached statement
    // whenever a parameter it peeked at during planning is bound to a new value (every
    // device lookup of a sign-in did, a twentieth of its CPU). The store's queries are
    // point lookups on keys, for which the plan is the same whatever the value.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )
    .map_err(db_error)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let fail = |e: rusqlite::Error| StoreError::Migration(e.to_string());
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )
    .map_err(fail)?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(fail)?;
    let current: i64 = tx
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )
        .map_err(fail)?;
    let known = MIGRATIONS.last().map_or(0, |(v, _)| *v);
    if current > known {
        return Err(StoreError::Migration(format!(
            "the database is at schema version {current}, newer than this cyberid ({known}); upgrade cyberid"
        )));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.execute_batch(sql).map_err(fail)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, unixepoch())",
            [version],
        )
        .map_err(fail)?;
    }
    tx.commit().map_err(fail)
}

/// Registry rows merged per transaction at the end of an import: big enough that commits
/// are rare, small enough that the WAL stays near 50 MB and other writers wait at most a
/// second or so.
const IMPORT_MERGE_CHUNK: i64 = 200_000;

const SCRATCH_PREFIX: &str = "registry-import-";
const SCRATCH_SUFFIX: &str = ".scratch";

/// Deletes scratch files of imports whose process is gone (killed mid-import): the file
/// names the process, and a running one may still be using its own.
fn remove_abandoned_scratch_files(database: &Path) {
    let Some(dir) = database.parent() else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix(SCRATCH_PREFIX))
            .and_then(|n| n.strip_suffix(SCRATCH_SUFFIX))
            .and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = pid
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Deletes the import's scratch file however the import ends.
struct ScratchFile(PathBuf);

impl Drop for ScratchFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A whole-source registry import on a connection of its own (see [`Store::registry_import`]).
/// SQLite has no bulk loader, so this is one by hand: records are appended to an unindexed
/// table in a scratch database (no journal, no fsync), SQLite's external sorter puts them in
/// ID-number order, and they are merged into the primary-key index in that order, chunk by
/// chunk. Inserting in file order instead touches a random index page per record once the
/// registry outgrows the cache: 43,000 records/s at 10,000,000 records against 150,000.
fn import_registry(
    path: &Path,
    durability: Durability,
    batches: &mut RegistryBatches,
) -> Result<u64, RegistryImportError> {
    remove_abandoned_scratch_files(path);
    let scratch = ScratchFile(path.with_file_name(format!(
        "{SCRATCH_PREFIX}{}{SCRATCH_SUFFIX}",
        std::process::id()
    )));
    let _ = std::fs::remove_file(&scratch.0);
    create_private(&scratch.0)?;
    let scratch_name = scratch.0.to_str().ok_or_else(|| {
        StoreError::Database("the data directory's path is not valid UTF-8".into())
    })?;
    let mut conn = connect(path, durability)?;
    conn.execute("ATTACH DATABASE ?1 AS scratch", [scratch_name])
        .map_err(db_error)?;
    conn.pragma_update_and_check(Some("scratch"), "journal_mode", "OFF", |_| Ok(()))
        .map_err(db_error)?;
    conn.execute_batch(
        "PRAGMA scratch.synchronous = OFF;
         CREATE TABLE scratch.staged (id_number TEXT NOT NULL, name TEXT NOT NULL,
           birth_date TEXT NOT NULL, sex TEXT NOT NULL, face BLOB NOT NULL);",
    )
    .map_err(db_error)?;

    let mut records_read = 0u64;
    while let Some(batch) = next_registry_batch(batches.blocking_recv(), records_read)? {
        let tx = conn.transaction().map_err(db_error)?;
        {
            let mut insert = tx
                .prepare_cached("INSERT INTO scratch.staged VALUES (?1, ?2, ?3, ?4, ?5)")
                .map_err(db_error)?;
            for record in &batch {
                insert_person(&mut insert, record)?;
            }
        }
        tx.commit().map_err(db_error)?;
        records_read += batch.len() as u64;
    }

    // Row ids of `sorted` follow (ID number, file position): ranges of them are runs of the
    // index, and a later record for the same ID number is merged after an earlier one.
    conn.execute_batch(
        "CREATE TABLE scratch.sorted AS
           SELECT id_number, name, birth_date, sex, face FROM scratch.staged
           ORDER BY id_number, rowid;
         DROP TABLE scratch.staged;",
    )
    .map_err(db_error)?;
    let last: i64 = conn
        .query_row(
            "SELECT COALESCE(MAX(rowid), 0) FROM scratch.sorted",
            [],
            |row| row.get(0),
        )
        .map_err(db_error)?;
    let mut merged = 0;
    while merged < last {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_error)?;
        tx.execute(
            sql!(
                "INSERT INTO main.registry_people (id_number, name, birth_date, sex, face)
                 SELECT id_number, name, birth_date, sex, face FROM scratch.sorted
                 WHERE rowid > ?1 AND rowid <= ?2
                 {REGISTRY_UPSERT}"
            ),
            [merged, merged + IMPORT_MERGE_CHUNK],
        )
        .map_err(db_error)?;
        tx.commit().map_err(db_error)?;
        merged += IMPORT_MERGE_CHUNK;
    }
    conn.execute("DETACH DATABASE scratch", [])
        .map_err(db_error)?;
    Ok(records_read)
}

/// The registry is authoritative: a record for a known ID number replaces what was there.
const REGISTRY_UPSERT: &str = "ON CONFLICT (id_number) DO UPDATE SET
    name = excluded.name, birth_date = excluded.birth_date,
    sex = excluded.sex, face = excluded.face";

/// Runs an insert of one registry record, its five columns in table order.
fn insert_person(
    insert: &mut rusqlite::CachedStatement<'_>,
    record: &PersonRecord,
) -> Result<(), StoreError> {
    insert
        .execute(params![
            record.id_number.as_str(),
            record.name.as_str(),
            format_iso_date(record.birth_date),
            record.sex.as_str(),
            &record.face.to_bytes()[..],
        ])
        .map(|_| ())
        .map_err(db_error)
}

/// Maps a UNIQUE violation to the enrolment error it means.
fn enrol_error(error: rusqlite::Error) -> EnrolError {
    if let rusqlite::Error::SqliteFailure(failure, Some(message)) = &error
        && failure.code == ErrorCode::ConstraintViolation
    {
        let by_column = [
            ("accounts.person_digest", EnrolError::PersonAlreadyEnrolled),
            ("accounts.network_number", EnrolError::NetworkNumberTaken),
            ("devices.thumbprint", EnrolError::DeviceAlreadyBound),
            ("accounts.pin_key_id", EnrolError::PinKeyIdTaken),
        ];
        if let Some((_, mapped)) = by_column
            .into_iter()
            .find(|(column, _)| message.contains(column))
        {
            return mapped;
        }
    }
    EnrolError::Store(db_error(error))
}

impl SqliteStore {
    pub async fn open(data_dir: &Path, durability: Durability) -> Result<Self, StoreError> {
        let data_dir = data_dir.to_owned();
        tokio::task::spawn_blocking(move || {
            if !data_dir.exists() {
                use std::os::unix::fs::DirBuilderExt;
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(&data_dir)
                    .map_err(|e| {
                        StoreError::Database(format!(
                            "cannot create data directory {}: {e}",
                            data_dir.display()
                        ))
                    })?;
            }
            let path = data_dir.join(DATABASE_FILE);
            create_private(&path)?;
            let mut writer = connect(&path, durability)?;
            migrate(&mut writer)?;
            start_checkpointer(&mut writer, connect(&path, durability)?)?;
            let (sender, jobs) = std::sync::mpsc::channel::<WriteJob>();
            std::thread::Builder::new()
                .name("sqlite-writer".into())
                .spawn(move || run_writer(writer, jobs))
                .map_err(|e| {
                    StoreError::Database(format!("cannot start the writer thread: {e}"))
                })?;
            Ok(Self {
                path,
                durability,
                writer: sender,
                readers: Arc::new(Mutex::new(Vec::new())),
            })
        })
        .await
        .map_err(join_error)?
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` on the writer thread, in the next group commit; returns once the group
    /// is committed (or failed).
    async fn write<T, E>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (sender, receiver) = tokio::sync::oneshot::channel::<Result<T, E>>();
        let job: WriteJob = Box::new(move |conn: &mut Connection| {
            let result = work(conn);
            let ok = result.is_ok();
            let reply: Reply = Box::new(move |commit_error: Option<StoreError>| {
                let _ = sender.send(match commit_error {
                    None => result,
                    Some(e) => Err(E::from(e)),
                });
            });
            (ok, reply)
        });
        self.writer
            .send(job)
            .map_err(|_| E::from(StoreError::Database("the writer thread has stopped".into())))?;
        receiver
            .await
            .map_err(|_| E::from(StoreError::Database("the writer thread has stopped".into())))?
    }

    fn reader(&self) -> Result<Connection, StoreError> {
        let pooled = self
            .readers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop();
        match pooled {
            Some(conn) => Ok(conn),
            None => connect(&self.path, self.durability),
        }
    }

    /// Returns a reader to the idle pool, unless it is still inside a transaction (its
    /// snapshot would be stale for the next read): then it is dropped, which ends it.
    fn give_back(readers: &Mutex<Vec<Connection>>, conn: Connection) {
        if !conn.is_autocommit() {
            return;
        }
        let mut idle = readers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
    }

    /// A point read, inline on the calling thread.
    async fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.reader()?;
        let result = work(&conn);
        Self::give_back(&self.readers, conn);
        result
    }

    /// Reads that belong together, in one read transaction: one snapshot, and the WAL read
    /// lock taken once (in autocommit each statement takes and drops it, two `fcntl` calls
    /// and a check of the page cache every time).
    async fn read_together<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.reader()?;
        let result = in_read_transaction(&conn, work);
        Self::give_back(&self.readers, conn);
        result
    }

    /// A read that may scan: on tokio's blocking pool.
    async fn scan<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.reader()?;
        let readers = Arc::clone(&self.readers);
        tokio::task::spawn_blocking(move || {
            let result = work(&conn);
            Self::give_back(&readers, conn);
            result
        })
        .await
        .map_err(join_error)?
    }
}

/// An account with its first device and credential, inside the caller's transaction.
/// With `skip_existing`, a person who already has an account is passed over (`None`) instead
/// of being an error: for bulk provisioning.
fn insert_account(
    tx: &Connection,
    account: &NewAccount,
    skip_existing: bool,
) -> Result<Option<EnrolledAccount>, EnrolError> {
    let sql = if skip_existing {
        "INSERT INTO accounts (person_digest, network_number, wrapped_data_key,
             sealed_attributes, pin_key_id, pin_verifier, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (person_digest) DO NOTHING RETURNING id"
    } else {
        "INSERT INTO accounts (person_digest, network_number, wrapped_data_key,
             sealed_attributes, pin_key_id, pin_verifier, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id"
    };
    let Some(account_id): Option<i64> = tx
        .prepare_cached(sql)
        .map_err(enrol_error)?
        .query_row(
            params![
                &account.person_digest[..],
                account.network_number.as_compact(),
                account.wrapped_data_key,
                account.sealed_attributes,
                &account.pin_key_id[..],
                account.pin_verifier,
                account.created_at,
            ],
            |row| row.get(0),
        )
        .optional()
        .map_err(enrol_error)?
    else {
        return Ok(None);
    };
    failpoint("enrol-after-account-insert");
    let device_id: i64 = tx
        .prepare_cached(
            "INSERT INTO devices (account_id, thumbprint, public_jwk, created_at)
             VALUES (?1, ?2, ?3, ?4) RETURNING id",
        )
        .map_err(enrol_error)?
        .query_row(
            params![
                account_id,
                account.device_thumbprint,
                account.device_public_jwk,
                account.created_at
            ],
            |row| row.get(0),
        )
        .map_err(enrol_error)?;
    let status_index = insert_credential(tx, account_id, device_id, account)?;
    Ok(Some(EnrolledAccount {
        account_id,
        device_id,
        status_index: status_index as u64,
    }))
}

/// The credential row of an enrolment; its key is the credential's status index.
fn insert_credential(
    tx: &Connection,
    account_id: i64,
    device_id: i64,
    account: &NewAccount,
) -> Result<i64, EnrolError> {
    tx.prepare_cached(
        "INSERT INTO credentials (account_id, device_id, issued_at, expires_at)
         VALUES (?1, ?2, ?3, ?4) RETURNING status_index",
    )
    .map_err(enrol_error)?
    .query_row(
        params![
            account_id,
            device_id,
            account.created_at,
            account.credential_expires_at
        ],
        |row| row.get(0),
    )
    .map_err(enrol_error)
}

const RP_COLUMNS: &str = "client_id, name, redirect_uris, sector, allowed_claims, legal_basis, \
     auth_method, secret_digest, jwks, require_par, status, created_at";

fn relying_party_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(RelyingParty, String, String)> {
    Ok((
        RelyingParty {
            client_id: row.get(0)?,
            name: row.get(1)?,
            redirect_uris: Vec::new(),
            sector: row.get(3)?,
            allowed_claims: Vec::new(),
            legal_basis: row.get(5)?,
            auth_method: row.get(6)?,
            secret_digest: row.get(7)?,
            jwks: row.get(8)?,
            require_par: row.get(9)?,
            suspended: row.get::<_, String>(10)? == "suspended",
            created_at: row.get(11)?,
        },
        row.get(2)?,
        row.get(4)?,
    ))
}

fn relying_party_from(
    (mut rp, redirect_uris, claims): (RelyingParty, String, String),
) -> Result<RelyingParty, StoreError> {
    rp.redirect_uris = from_json(&redirect_uris)?;
    rp.allowed_claims = from_json(&claims)?;
    Ok(rp)
}

fn read_relying_party(
    conn: &Connection,
    client_id: &str,
) -> Result<Option<RelyingParty>, StoreError> {
    conn.prepare_cached(sql!(
        "SELECT {RP_COLUMNS} FROM relying_parties WHERE client_id = ?1"
    ))
    .map_err(db_error)?
    .query_row([client_id], relying_party_row)
    .optional()
    .map_err(db_error)?
    .map(relying_party_from)
    .transpose()
}

fn read_account(conn: &Connection, account_id: i64) -> Result<Option<AccountRecord>, StoreError> {
    conn.prepare_cached(sql!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.id = ?1"
    ))
    .map_err(db_error)?
    .query_row([account_id], account_row)
    .optional()
    .map_err(db_error)
}

fn read_device(
    conn: &Connection,
    thumbprint: &str,
) -> Result<Option<(AccountRecord, DeviceRecord)>, StoreError> {
    conn.prepare_cached(account_by_device_sql())
        .map_err(db_error)?
        .query_row([thumbprint], |row| {
            Ok((
                account_row(row)?,
                DeviceRecord {
                    device_id: row.get(10)?,
                    public_jwk: row.get(11)?,
                },
            ))
        })
        .optional()
        .map_err(db_error)
}

fn read_login(conn: &Connection, id: &str) -> Result<Option<LoginRecord>, StoreError> {
    conn.prepare_cached(sql!(
        "SELECT {LOGIN_COLUMNS} FROM login_transactions WHERE id = ?1"
    ))
    .map_err(db_error)?
    .query_row([id], login_row)
    .optional()
    .map_err(db_error)?
    .map(login_from)
    .transpose()
}

const LOGIN_COLUMNS: &str = "id, client_id, request, browser_digest, status, error, account_id, \
     level, claims, auth_time, code_redeemed_at, created_at, expires_at, pin_evaluated, code_replayed_at, approval_digest";

type LoginRow = (LoginRecord, String, Option<String>);

fn login_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<LoginRow> {
    Ok((
        LoginRecord {
            id: row.get(0)?,
            client_id: row.get(1)?,
            request: row.get(2)?,
            browser_digest: row.get(3)?,
            status: LoginStatus::Pending,
            error: row.get(5)?,
            account_id: row.get(6)?,
            level: row.get(7)?,
            claims: Vec::new(),
            auth_time: row.get(9)?,
            code_redeemed_at: row.get(10)?,
            pin_evaluated: row.get(13)?,
            code_replayed_at: row.get(14)?,
            approval_digest: row.get(15)?,
            created_at: row.get(11)?,
            expires_at: row.get(12)?,
        },
        row.get(4)?,
        row.get(8)?,
    ))
}

fn login_from((mut login, status, claims): LoginRow) -> Result<LoginRecord, StoreError> {
    login.status =
        LoginStatus::parse(&status).ok_or_else(|| StoreError::Corrupt("login status".into()))?;
    login.claims = claims
        .as_deref()
        .map(from_json)
        .transpose()?
        .unwrap_or_default();
    Ok(login)
}

const ACCOUNT_COLUMNS: &str = "a.id, a.status, a.person_digest, a.network_number, a.wrapped_data_key, \
     a.sealed_attributes, a.pin_key_id, a.pin_verifier, a.pin_failures, a.face_failures";

fn account_by_device_sql() -> &'static str {
    sql!(
        "SELECT {ACCOUNT_COLUMNS}, d.id, d.public_jwk
         FROM devices d JOIN accounts a ON a.id = d.account_id
         WHERE d.thumbprint = ?1 AND d.revoked_at IS NULL"
    )
}

fn account_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<AccountRecord> {
    Ok(AccountRecord {
        account_id: row.get(0)?,
        status: row.get(1)?,
        person_digest: row.get(2)?,
        network_number: row.get(3)?,
        wrapped_data_key: row.get(4)?,
        sealed_attributes: row.get(5)?,
        pin_key_id: row.get(6)?,
        pin_verifier: row.get(7)?,
        pin_failures: row.get(8)?,
        face_failures: row.get(9)?,
    })
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|conn| conn.query_row("SELECT 1", [], |_| Ok(())).map_err(db_error))
            .await
    }

    async fn registry_upsert(&self, records: Vec<PersonRecord>) -> Result<(), StoreError> {
        let records = normalise_registry_batch(records);
        self.write(move |conn| {
            let tx = conn.savepoint().map_err(db_error)?;
            {
                let mut insert = tx
                    .prepare_cached(sql!(
                        "INSERT INTO registry_people (id_number, name, birth_date, sex, face)
                         VALUES (?1, ?2, ?3, ?4, ?5)
                         {REGISTRY_UPSERT}"
                    ))
                    .map_err(db_error)?;
                for record in &records {
                    insert_person(&mut insert, record)?;
                }
            }
            tx.commit().map_err(db_error)
        })
        .await
    }

    async fn registry_import(
        &self,
        mut batches: RegistryBatches,
    ) -> Result<u64, RegistryImportError> {
        let (path, durability) = (self.path.clone(), self.durability);
        tokio::task::spawn_blocking(move || import_registry(&path, durability, &mut batches))
            .await
            .map_err(join_error)?
    }

    async fn registry_find(
        &self,
        id: &CitizenIdNumber,
    ) -> Result<Option<PersonRecord>, StoreError> {
        let id = id.as_str().to_owned();
        self.read(move |conn| {
            let row = conn
                .prepare_cached(
                    "SELECT id_number, name, birth_date, sex, face FROM registry_people WHERE id_number = ?1",
                )
                .map_err(db_error)?
                .query_row([&id], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, String>(3)?,
                        row.get::<_, Vec<u8>>(4)?,
                    ))
                })
                .optional()
                .map_err(db_error)?;
            row.map(|(id, name, date, sex, face)| {
                let date =
                    parse_iso_date(&date).ok_or_else(|| StoreError::Corrupt("registry birth date".into()))?;
                registry_record(&id, &name, date, &sex, &face)
            })
            .transpose()
        })
        .await
    }

    async fn enrol(&self, account: &NewAccount) -> Result<EnrolledAccount, EnrolError> {
        let account = account.clone();
        self.write(move |conn| {
            let tx = conn.savepoint().map_err(enrol_error)?;
            let enrolled =
                insert_account(&tx, &account, false)?.ok_or(EnrolError::PersonAlreadyEnrolled)?;
            failpoint("enrol-before-commit");
            tx.commit().map_err(enrol_error)?;
            Ok(enrolled)
        })
        .await
    }

    async fn enrol_many(&self, accounts: Vec<NewAccount>) -> Result<u64, EnrolError> {
        self.write(move |conn| {
            let tx = conn.savepoint().map_err(enrol_error)?;
            let mut created = 0;
            for account in &accounts {
                created += u64::from(insert_account(&tx, account, true)?.is_some());
            }
            tx.commit().map_err(enrol_error)?;
            Ok(created)
        })
        .await
    }

    async fn resume_enrolment(
        &self,
        account: &NewAccount,
    ) -> Result<Option<ResumedEnrolment>, EnrolError> {
        let account = account.clone();
        self.write(move |conn| {
            let tx = conn.savepoint().map_err(enrol_error)?;
            let found = tx
                .prepare_cached(
                    "SELECT a.id, a.network_number, a.wrapped_data_key, a.sealed_attributes, d.id
                     FROM accounts a JOIN devices d ON d.account_id = a.id
                     WHERE a.person_digest = ?1 AND a.status = 'active'
                       AND d.thumbprint = ?2 AND d.revoked_at IS NULL",
                )
                .map_err(enrol_error)?
                .query_row(
                    params![&account.person_digest[..], account.device_thumbprint],
                    |row| {
                        Ok((
                            row.get::<_, i64>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, Option<Vec<u8>>>(2)?,
                            row.get::<_, Option<Vec<u8>>>(3)?,
                            row.get::<_, i64>(4)?,
                        ))
                    },
                )
                .optional()
                .map_err(enrol_error)?;
            let Some((
                account_id,
                number,
                Some(wrapped_data_key),
                Some(sealed_attributes),
                device_id,
            )) = found
            else {
                return Ok(None);
            };
            let network_number = NetworkNumber::parse(&number)
                .map_err(|_| StoreError::Corrupt("network number".into()))?;
            tx.prepare_cached(
                "UPDATE accounts SET pin_key_id = ?2, pin_verifier = ?3 WHERE id = ?1",
            )
            .map_err(enrol_error)?
            .execute(params![
                account_id,
                &account.pin_key_id[..],
                account.pin_verifier
            ])
            .map_err(enrol_error)?;
            tx.prepare_cached(
                "UPDATE credentials SET status = 1 WHERE device_id = ?1 AND status = 0",
            )
            .map_err(enrol_error)?
            .execute([device_id])
            .map_err(enrol_error)?;
            let status_index = insert_credential(&tx, account_id, device_id, &account)?;
            tx.commit().map_err(enrol_error)?;
            Ok(Some(ResumedEnrolment {
                enrolled: EnrolledAccount {
                    account_id,
                    device_id,
                    status_index: status_index as u64,
                },
                network_number,
                wrapped_data_key,
                sealed_attributes,
            }))
        })
        .await
    }

    async fn max_status_index(&self) -> Result<Option<u64>, StoreError> {
        self.read(|conn| {
            conn.query_row("SELECT MAX(status_index) FROM credentials", [], |row| {
                row.get::<_, Option<i64>>(0)
            })
            .map(|max| max.map(|m| m as u64))
            .map_err(db_error)
        })
        .await
    }

    async fn claim_key_fingerprint(&self, fingerprint: &str) -> Result<String, StoreError> {
        let fingerprint = fingerprint.to_owned();
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO platform_settings (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
                params![KEY_FINGERPRINT_SETTING, fingerprint],
            )
            .map_err(db_error)?;
            conn.query_row(
                "SELECT value FROM platform_settings WHERE name = ?1",
                [KEY_FINGERPRINT_SETTING],
                |row| row.get(0),
            )
            .map_err(db_error)
        })
        .await
    }

    async fn credential_statuses(&self, list: u64) -> Result<Vec<(u64, u8)>, StoreError> {
        let start = list.saturating_mul(STATUS_LIST_CAPACITY);
        let end = start.saturating_add(STATUS_LIST_CAPACITY);
        self.scan(move |conn| {
            let mut statement = conn
                .prepare_cached(
                    "SELECT status_index, status FROM credentials
                     WHERE status <> 0 AND status_index >= ?1 AND status_index < ?2",
                )
                .map_err(db_error)?;
            let rows = statement
                .query_map(params![start as i64, end as i64], |row| {
                    Ok((row.get::<_, i64>(0)? as u64 - start, row.get::<_, u8>(1)?))
                })
                .map_err(db_error)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db_error)
        })
        .await
    }

    async fn set_credential_status(
        &self,
        status_index: u64,
        status: u8,
    ) -> Result<bool, StoreError> {
        self.write(move |conn| {
            conn.prepare_cached("UPDATE credentials SET status = ?2 WHERE status_index = ?1")
                .map_err(db_error)?
                .execute(params![status_index as i64, status])
                .map(|changed| changed == 1)
                .map_err(db_error)
        })
        .await
    }

    async fn counts(&self) -> Result<StoreCounts, StoreError> {
        self.scan(|conn| {
            conn.query_row(
                "SELECT (SELECT COUNT(*) FROM registry_people), (SELECT COUNT(*) FROM accounts),
                        (SELECT COUNT(*) FROM devices), (SELECT COUNT(*) FROM credentials)",
                [],
                |row| {
                    Ok(StoreCounts {
                        registry_people: row.get::<_, i64>(0)? as u64,
                        accounts: row.get::<_, i64>(1)? as u64,
                        devices: row.get::<_, i64>(2)? as u64,
                        credentials: row.get::<_, i64>(3)? as u64,
                    })
                },
            )
            .map_err(db_error)
        })
        .await
    }

    async fn insert_relying_party(&self, rp: &RelyingParty) -> Result<(), StoreError> {
        let rp = rp.clone();
        self.write(move |conn| {
            conn.prepare_cached(sql!(
                "INSERT INTO relying_parties ({RP_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
            ))
            .map_err(db_error)?
            .execute(params![
                rp.client_id,
                rp.name,
                to_json(&rp.redirect_uris),
                rp.sector,
                to_json(&rp.allowed_claims),
                rp.legal_basis,
                rp.auth_method,
                rp.secret_digest,
                rp.jwks,
                rp.require_par,
                if rp.suspended { "suspended" } else { "active" },
                rp.created_at,
            ])
            .map(|_| ())
            .map_err(db_error)
        })
        .await
    }

    async fn relying_party(&self, client_id: &str) -> Result<Option<RelyingParty>, StoreError> {
        let client_id = client_id.to_owned();
        self.read(move |conn| read_relying_party(conn, &client_id))
            .await
    }

    async fn relying_parties(&self) -> Result<Vec<RelyingParty>, StoreError> {
        self.scan(|conn| {
            let mut statement = conn
                .prepare_cached(sql!(
                    "SELECT {RP_COLUMNS} FROM relying_parties ORDER BY created_at, client_id"
                ))
                .map_err(db_error)?;
            let rows = statement
                .query_map([], relying_party_row)
                .map_err(db_error)?;
            rows.map(|row| row.map_err(db_error).and_then(relying_party_from))
                .collect()
        })
        .await
    }

    async fn set_relying_party_suspended(
        &self,
        client_id: &str,
        suspended: bool,
    ) -> Result<bool, StoreError> {
        let client_id = client_id.to_owned();
        self.write(move |conn| {
            conn.prepare_cached("UPDATE relying_parties SET status = ?2 WHERE client_id = ?1")
                .map_err(db_error)?
                .execute(params![
                    client_id,
                    if suspended { "suspended" } else { "active" }
                ])
                .map(|changed| changed == 1)
                .map_err(db_error)
        })
        .await
    }

    async fn insert_login(&self, login: &NewLogin) -> Result<bool, StoreError> {
        let login = login.clone();
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO login_transactions
                   (id, client_id, request, par_handle, browser_digest, status, created_at, expires_at)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8
                 WHERE EXISTS (SELECT 1 FROM relying_parties WHERE client_id = ?2 AND status = 'active')",
            )
            .map_err(db_error)?
            .execute(params![
                login.id,
                login.client_id,
                login.request,
                login.par_handle,
                login.browser_digest,
                login.status.as_str(),
                login.created_at,
                login.expires_at,
            ])
            .map(|inserted| inserted == 1)
            .map_err(db_error)
        })
        .await
    }

    async fn login(&self, id: &str) -> Result<Option<LoginRecord>, StoreError> {
        let id = id.to_owned();
        self.read(move |conn| read_login(conn, &id)).await
    }

    async fn login_with_client(
        &self,
        id: &str,
    ) -> Result<Option<(LoginRecord, RelyingParty)>, StoreError> {
        // Two point reads in one read transaction (one snapshot, one WAL read lock).
        let id = id.to_owned();
        self.read_together(move |conn| {
            let Some(login) = read_login(conn, &id)? else {
                return Ok(None);
            };
            Ok(read_relying_party(conn, &login.client_id)?.map(|rp| (login, rp)))
        })
        .await
    }

    async fn login_with_client_and_account(
        &self,
        id: &str,
    ) -> Result<Option<(LoginRecord, RelyingParty, Option<AccountRecord>)>, StoreError> {
        let id = id.to_owned();
        self.read_together(move |conn| {
            let Some(login) = read_login(conn, &id)? else {
                return Ok(None);
            };
            let Some(rp) = read_relying_party(conn, &login.client_id)? else {
                return Ok(None);
            };
            let account = match login.account_id {
                Some(account_id) => read_account(conn, account_id)?,
                None => None,
            };
            Ok(Some((login, rp, account)))
        })
        .await
    }

    async fn login_and_device(
        &self,
        id: &str,
        thumbprint: &str,
    ) -> Result<LoginAndDevice, StoreError> {
        let (id, thumbprint) = (id.to_owned(), thumbprint.to_owned());
        self.read_together(move |conn| {
            Ok((read_login(conn, &id)?, read_device(conn, &thumbprint)?))
        })
        .await
    }

    async fn claim_pushed_login(
        &self,
        par_handle: &str,
        client_id: &str,
        browser_digest: &[u8],
        now: i64,
        expires_at: i64,
    ) -> Result<Option<LoginRecord>, StoreError> {
        let (par_handle, client_id, browser_digest) = (
            par_handle.to_owned(),
            client_id.to_owned(),
            browser_digest.to_vec(),
        );
        self.write(move |conn| {
            conn.prepare_cached(sql!(
                "UPDATE login_transactions SET status = 'pending', browser_digest = ?3, expires_at = ?5
                 WHERE par_handle = ?1 AND client_id = ?2 AND status = 'pushed' AND +expires_at > ?4
                   AND EXISTS (SELECT 1 FROM relying_parties r WHERE r.client_id = ?2 AND r.status = 'active')
                 RETURNING {LOGIN_COLUMNS}"
            ))
            .map_err(db_error)?
            .query_row(params![par_handle, client_id, browser_digest, now, expires_at], login_row)
            .optional()
            .map_err(db_error)?
            .map(login_from)
            .transpose()
        })
        .await
    }

    // `+expires_at`: keeps the planner off the expiry index, so the plan cannot depend on
    // the bound time (with STAT4, which the bundled SQLite enables, such a statement is
    // recompiled whenever the value changes).
    async fn finish_login(
        &self,
        id: &str,
        outcome: &LoginOutcome,
        now: i64,
    ) -> Result<bool, StoreError> {
        let (id, outcome) = (id.to_owned(), outcome.clone());
        self.write(move |conn| {
            let changed = match outcome {
                LoginOutcome::Approved {
                    account_id,
                    level,
                    claims,
                    auth_time,
                    reset,
                } => in_savepoint(conn, |conn| {
                    let client_id: Option<String> = conn
                        .prepare_cached(
                            "UPDATE login_transactions
                             SET status = 'approved', account_id = ?3, level = ?4, claims = ?5, auth_time = ?6
                             WHERE id = ?1 AND status = 'pending' AND +expires_at > ?2
                             RETURNING client_id",
                        )
                        .map_err(db_error)?
                        .query_row(
                            params![id, now, account_id, level, to_json(&claims), auth_time],
                            |row| row.get(0),
                        )
                        .optional()
                        .map_err(db_error)?;
                    let changed = usize::from(client_id.is_some());
                    if let Some(client_id) = client_id {
                        remember_consent(conn, account_id, &client_id, &claims, now)?;
                        for factor in reset {
                            let column = factor.column();
                            conn.prepare_cached(&format!(
                                "UPDATE accounts SET {column} = 0 WHERE id = ?1 AND {column} <> 0"
                            ))
                            .map_err(db_error)?
                            .execute([account_id])
                            .map_err(db_error)?;
                        }
                    }
                    Ok(changed)
                })?,
                LoginOutcome::Refused { status, error } => conn
                    .prepare_cached(
                        "UPDATE login_transactions SET status = ?3, error = ?4
                         WHERE id = ?1 AND status = 'pending' AND +expires_at > ?2",
                    )
                    .map_err(db_error)?
                    .execute(params![id, now, status.as_str(), error])
                    .map_err(db_error)?,
            };
            Ok(changed == 1)
        })
        .await
    }

    async fn redeem_code(&self, id: &str, now: i64) -> Result<CodeRedemption, StoreError> {
        let id = id.to_owned();
        self.write(move |conn| {
            let redeemed = conn
                .prepare_cached(sql!(
                    "UPDATE login_transactions SET code_redeemed_at = ?2
                     WHERE id = ?1 AND status = 'approved' AND code_redeemed_at IS NULL
                     RETURNING {LOGIN_COLUMNS}"
                ))
                .map_err(db_error)?
                .query_row(params![id, now], login_row)
                .optional()
                .map_err(db_error)?;
            if let Some(row) = redeemed {
                let login = login_from(row)?;
                let account = match login.account_id {
                    Some(account_id) => read_account(conn, account_id)?.map(Box::new),
                    None => None,
                };
                return Ok(CodeRedemption::Redeemed {
                    login: Box::new(login),
                    account,
                });
            }
            let used: Option<Option<i64>> = conn
                .prepare_cached("SELECT code_redeemed_at FROM login_transactions WHERE id = ?1 AND status = 'approved'")
                .map_err(db_error)?
                .query_row([&id], |row| row.get(0))
                .optional()
                .map_err(db_error)?;
            Ok(match used {
                Some(Some(_)) => CodeRedemption::AlreadyRedeemed,
                _ => CodeRedemption::NotApproved,
            })
        })
        .await
    }

    async fn redeem_code_if(
        &self,
        id: &str,
        client_id: &str,
        redirect_uri: &str,
        code_challenge: &str,
        now: i64,
    ) -> Result<Option<(LoginRecord, Option<AccountRecord>)>, StoreError> {
        let (id, client_id, redirect_uri, code_challenge) = (
            id.to_owned(),
            client_id.to_owned(),
            redirect_uri.to_owned(),
            code_challenge.to_owned(),
        );
        self.write(move |conn| {
            let Some(row) = conn
                .prepare_cached(sql!(
                    "UPDATE login_transactions SET code_redeemed_at = ?5
                     WHERE id = ?1 AND client_id = ?2 AND status = 'approved'
                       AND code_redeemed_at IS NULL
                       AND json_extract(request, '$.redirect_uri') = ?3
                       AND json_extract(request, '$.code_challenge') = ?4
                       AND EXISTS (SELECT 1 FROM relying_parties r
                                   WHERE r.client_id = ?2 AND r.status = 'active')
                     RETURNING {LOGIN_COLUMNS}"
                ))
                .map_err(db_error)?
                .query_row(
                    params![id, client_id, redirect_uri, code_challenge, now],
                    login_row,
                )
                .optional()
                .map_err(db_error)?
            else {
                return Ok(None);
            };
            let login = login_from(row)?;
            let account = match login.account_id {
                Some(account_id) => read_account(conn, account_id)?,
                None => None,
            };
            Ok(Some((login, account)))
        })
        .await
    }

    async fn mark_code_replayed(&self, transaction_id: &str, now: i64) -> Result<bool, StoreError> {
        let transaction_id = transaction_id.to_owned();
        self.write(move |conn| {
            conn.prepare_cached(
                "UPDATE login_transactions SET code_replayed_at = ?2 WHERE id = ?1 AND code_replayed_at IS NULL",
            )
            .map_err(db_error)?
            .execute(params![transaction_id, now])
            .map(|n| n == 1)
            .map_err(db_error)
        })
        .await
    }

    async fn count_pin_evaluation(
        &self,
        account_id: i64,
        login_id: &str,
        limit: u32,
        approval_digest: &[u8],
    ) -> Result<Option<u32>, StoreError> {
        let (login_id, approval_digest) = (login_id.to_owned(), approval_digest.to_vec());
        self.write(move |conn| {
            in_savepoint(conn, |conn| {
                let count: Option<u32> = conn
                    .prepare_cached(
                        "UPDATE accounts SET pin_failures = pin_failures + 1
                         WHERE id = ?1 AND pin_failures < ?2 RETURNING pin_failures",
                    )
                    .map_err(db_error)?
                    .query_row(params![account_id, limit], |row| row.get(0))
                    .optional()
                    .map_err(db_error)?;
                if count.is_some() {
                    conn.prepare_cached(
                        "UPDATE login_transactions SET pin_evaluated = 1, approval_digest = ?2
                         WHERE id = ?1 AND status = 'pending'",
                    )
                    .map_err(db_error)?
                    .execute(params![login_id, approval_digest])
                    .map_err(db_error)?;
                }
                Ok(count)
            })
        })
        .await
    }

    async fn use_client_assertion(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let (client_id, jti) = (client_id.to_owned(), jti.to_owned());
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO client_assertions (client_id, jti, expires_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (client_id, jti) DO NOTHING",
            )
            .map_err(db_error)?
            .execute(params![client_id, jti, expires_at])
            .map(|n| n == 1)
            .map_err(db_error)
        })
        .await
    }

    async fn ended_sign_ins(&self, ids: &[String], now: i64) -> Result<Vec<String>, StoreError> {
        // Point reads by key in one read transaction, off the runtime's threads: a node may
        // hold thousands of waiting pages.
        let ids = ids.to_vec();
        self.scan(move |conn| {
            in_read_transaction(conn, |conn| {
                let mut check = conn
                    .prepare_cached(
                        "SELECT 1 FROM login_transactions
                         WHERE id = ?1 AND (status <> 'pending' OR expires_at <= ?2)",
                    )
                    .map_err(db_error)?;
                let mut ended = Vec::new();
                for id in ids {
                    if check.exists(params![id, now]).map_err(db_error)? {
                        ended.push(id);
                    }
                }
                Ok(ended)
            })
        })
        .await
    }

    async fn purge_expired_batch(
        &self,
        now: i64,
        sign_ins_before: i64,
        batch: u32,
    ) -> Result<(u64, u64), StoreError> {
        // One write job per batch: other writes take their turn in between.
        self.write(move |conn| {
            in_savepoint(conn, |conn| {
                let delete = |sql: &str, before: i64| {
                    conn.prepare_cached(sql)
                        .and_then(|mut s| s.execute(params![before, batch]))
                        .map(|deleted| deleted as u64)
                        .map_err(db_error)
                };
                let assertions = delete(
                    "DELETE FROM client_assertions WHERE (client_id, jti) IN (
                       SELECT client_id, jti FROM client_assertions WHERE expires_at < ?1 LIMIT ?2)",
                    now,
                )?;
                let sign_ins = delete(
                    "DELETE FROM login_transactions WHERE id IN (
                       SELECT id FROM login_transactions WHERE expires_at < ?1 LIMIT ?2)",
                    sign_ins_before,
                )?;
                Ok((assertions, sign_ins))
            })
        })
        .await
    }

    async fn account_by_device(
        &self,
        thumbprint: &str,
    ) -> Result<Option<(AccountRecord, DeviceRecord)>, StoreError> {
        let thumbprint = thumbprint.to_owned();
        self.read(move |conn| read_device(conn, &thumbprint)).await
    }

    async fn account(&self, account_id: i64) -> Result<Option<AccountRecord>, StoreError> {
        self.read(move |conn| read_account(conn, account_id)).await
    }

    async fn count_attempt(
        &self,
        account_id: i64,
        factor: Factor,
        limit: u32,
    ) -> Result<Option<u32>, StoreError> {
        let column = factor.column();
        self.write(move |conn| {
            conn.prepare_cached(&format!(
                "UPDATE accounts SET {column} = {column} + 1 WHERE id = ?1 AND {column} < ?2 RETURNING {column}"
            ))
            .map_err(db_error)?
            .query_row(params![account_id, limit], |row| row.get(0))
            .optional()
            .map_err(db_error)
        })
        .await
    }

    async fn reset_attempts(&self, account_id: i64, factor: Factor) -> Result<(), StoreError> {
        let column = factor.column();
        self.write(move |conn| {
            conn.prepare_cached(&format!(
                "UPDATE accounts SET {column} = 0 WHERE id = ?1 AND {column} <> 0"
            ))
            .map_err(db_error)?
            .execute([account_id])
            .map(|_| ())
            .map_err(db_error)
        })
        .await
    }

    async fn consent(
        &self,
        account_id: i64,
        client_id: &str,
    ) -> Result<Option<ConsentRecord>, StoreError> {
        let client_id = client_id.to_owned();
        self.read(move |conn| {
            let row = conn
                .prepare_cached("SELECT claims, granted_at FROM consents WHERE account_id = ?1 AND client_id = ?2")
                .map_err(db_error)?
                .query_row(params![account_id, client_id], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
                })
                .optional()
                .map_err(db_error)?;
            row.map(|(claims, granted_at)| {
                Ok(ConsentRecord {
                    client_id: client_id.clone(),
                    claims: from_json(&claims)?,
                    granted_at,
                })
            })
            .transpose()
        })
        .await
    }

    async fn consents(&self, account_id: i64) -> Result<Vec<ConsentRecord>, StoreError> {
        self.read(move |conn| {
            let mut statement = conn
                .prepare_cached("SELECT client_id, claims, granted_at FROM consents WHERE account_id = ?1 ORDER BY client_id")
                .map_err(db_error)?;
            let rows = statement
                .query_map([account_id], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, i64>(2)?))
                })
                .map_err(db_error)?;
            rows.map(|row| {
                let (client_id, claims, granted_at) = row.map_err(db_error)?;
                Ok(ConsentRecord {
                    client_id,
                    claims: from_json(&claims)?,
                    granted_at,
                })
            })
            .collect()
        })
        .await
    }

    async fn revoke_consent(&self, account_id: i64, client_id: &str) -> Result<bool, StoreError> {
        let client_id = client_id.to_owned();
        self.write(move |conn| {
            conn.prepare_cached("DELETE FROM consents WHERE account_id = ?1 AND client_id = ?2")
                .map_err(db_error)?
                .execute(params![account_id, client_id])
                .map(|n| n == 1)
                .map_err(db_error)
        })
        .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::RegistryChunk;

    async fn fresh_store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path(), Durability::Normal)
            .await
            .unwrap();
        (dir, store)
    }

    /// A cached statement stays prepared whatever values are bound to it and whatever the
    /// writer commits meanwhile: a re-prepare per execution parses and plans the SQL again.
    #[tokio::test]
    async fn lookups_are_not_re_prepared_for_new_values() {
        let (_dir, store) = fresh_store().await;
        let devices = 6u8;
        for person in 0..devices {
            store
                .enrol(&NewAccount {
                    person_digest: [person; 32],
                    network_number: NetworkNumber::from_random_bytes([person; 16]),
                    wrapped_data_key: vec![1],
                    sealed_attributes: vec![2],
                    pin_key_id: [person; 16],
                    pin_verifier: "verifier".into(),
                    device_thumbprint: format!("device-{person}"),
                    device_public_jwk: "{}".into(),
                    created_at: 1_800_000_000,
                    credential_expires_at: 1_900_000_000,
                })
                .await
                .unwrap();
        }
        for round in 0..3u8 {
            for person in 0..devices {
                let found = store
                    .account_by_device(&format!("device-{person}"))
                    .await
                    .unwrap();
                let (account, _) = found.unwrap();
                store
                    .use_client_assertion("client", &format!("jti-{round}-{person}"), 2_000_000_000)
                    .await
                    .unwrap();
                store
                    .reset_attempts(account.account_id, Factor::Pin)
                    .await
                    .unwrap();
            }
        }
        let conn = store.reader().unwrap();
        let reprepared = conn
            .prepare_cached(account_by_device_sql())
            .unwrap()
            .get_status(rusqlite::StatementStatus::RePrepare);
        assert_eq!(reprepared, 0);
    }

    /// Checkpoints run on their own thread once the log passes its threshold; writes that
    /// never pause cannot grow the log past the writer's own threshold (by much).
    #[test]
    fn the_log_is_checkpointed_off_the_writer_and_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoints.db");
        let mut writer = connect(&path, Durability::Normal).unwrap();
        start_checkpointer(&mut writer, connect(&path, Durability::Normal).unwrap()).unwrap();
        writer
            .execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)")
            .unwrap();
        let size = |path: &Path| std::fs::metadata(path).map_or(0, |m| m.len());
        let wal = dir.path().join("checkpoints.db-wal");
        let insert = |writer: &Connection| {
            // A row of 3,000 bytes fills a page of its own: two frames per commit.
            writer
                .execute("INSERT INTO t (body) VALUES (zeroblob(3000))", [])
                .unwrap();
        };
        let before = size(&path);
        for _ in 0..600 {
            insert(&writer);
        }
        // About 1,200 frames: past the thread's threshold, short of the writer's own. Only
        // the thread can have copied them into the database file.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while size(&path) < before + 500 * 4096 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(size(&path) >= before + 500 * 4096, "no checkpoint ran");

        for _ in 0..10_000 {
            insert(&writer);
        }
        // 20,000 frames (80 MB) written without a pause; the log restarts after checkpoints.
        let frame = 4096 + 24;
        let bound = (CHECKPOINT_FRAMES_INLINE as u64 + 2 * CHECKPOINT_FRAMES as u64) * frame;
        assert!(size(&wal) < bound, "log of {} bytes", size(&wal));
        let rows: i64 = writer
            .query_row("SELECT count(*) FROM t", [], |row| row.get(0))
            .unwrap();
        assert_eq!(rows, 10_600);
    }

    /// An import clears scratch files left by killed imports, and only theirs.
    #[tokio::test]
    async fn abandoned_scratch_files_are_removed() {
        let (dir, store) = fresh_store().await;
        // Above Linux's largest process id, so never a live process; pid 1 always is.
        let abandoned = dir
            .path()
            .join(format!("{SCRATCH_PREFIX}4294967295{SCRATCH_SUFFIX}"));
        let live = dir
            .path()
            .join(format!("{SCRATCH_PREFIX}1{SCRATCH_SUFFIX}"));
        std::fs::write(&abandoned, b"x").unwrap();
        std::fs::write(&live, b"x").unwrap();
        let (sender, receiver) = tokio::sync::mpsc::channel(1);
        sender.send(RegistryChunk::End).await.unwrap();
        assert_eq!(store.registry_import(receiver).await.unwrap(), 0);
        assert!(!abandoned.exists());
        assert!(live.exists());
        let ours = dir.path().join(format!(
            "{SCRATCH_PREFIX}{}{SCRATCH_SUFFIX}",
            std::process::id()
        ));
        assert!(!ours.exists());
    }
}

#[cfg(test)]
mod migration_list {
    /// Every migration file is registered, in order: a file left out would never be applied.
    #[test]
    fn every_migration_file_is_registered() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/migrations/sqlite");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        assert_eq!(files.len(), super::MIGRATIONS.len(), "{files:?}");
        for (position, (version, _)) in super::MIGRATIONS.iter().enumerate() {
            assert_eq!(*version, position as i64 + 1);
            assert!(
                files[position].starts_with(&format!("{version:04}_")),
                "{files:?}"
            );
        }
    }
}
