//! The SQLite engine: connections, migrations, the writer thread that commits writes in
//! groups, the checkpoint thread, and the savepoint and read-transaction brackets.
//!
//! Writes go to one writer thread that owns the only writing connection (SQLite admits one
//! writer at a time anyway) and commits them in groups: whatever writes are waiting run in
//! one transaction, each inside its own savepoint (a failing write rolls back alone), and one
//! commit — one fsync — makes them all durable before any of their callers hears back.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::db_error;
use crate::{Durability, StoreError};

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../migrations/sqlite/0002_settings.sql")),
    (3, include_str!("../migrations/sqlite/0003_login.sql")),
    (
        4,
        include_str!("../migrations/sqlite/0004_login_hardening.sql"),
    ),
    (
        5,
        include_str!("../migrations/sqlite/0005_stateless_access_tokens.sql"),
    ),
    (
        6,
        include_str!("../migrations/sqlite/0006_approval_digest.sql"),
    ),
    (
        7,
        include_str!("../migrations/sqlite/0007_typed_sign_in_request.sql"),
    ),
    (
        8,
        include_str!("../migrations/sqlite/0008_relying_parties_by_sector.sql"),
    ),
    (
        9,
        include_str!("../migrations/sqlite/0009_rate_counters.sql"),
    ),
    (
        10,
        include_str!("../migrations/sqlite/0010_sign_in_device.sql"),
    ),
];

/// One write for the writer thread: runs on the writer's connection inside the group's
/// transaction, says whether it succeeded (so its savepoint is kept or rolled back), and
/// hands back what to tell its caller once the group's commit is known.
pub(crate) type WriteJob = Box<dyn FnOnce(&mut Connection) -> (bool, Reply) + Send>;
pub(crate) type Reply = Box<dyn FnOnce(Option<StoreError>) + Send>;

/// Writes committed together at most; bounds the latency a group adds.
const MAX_GROUP: usize = 256;

/// Runs a fixed statement through the statement cache: the group-commit bracket runs
/// thousands of times a second, and parsing it each time showed in profiles.
pub(crate) fn run_cached(conn: &Connection, sql: &str) -> Result<(), StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.execute([]))
        .map(|_| ())
        .map_err(db_error)
}

/// Runs `work` inside a savepoint taken through cached statements (rusqlite's `Savepoint`
/// parses its SQL on every use, and the sign-in's writes take one each). The writer already
/// wraps each job in a savepoint; this one keeps a job atomic when it runs outside a group
/// transaction too (see [`run_writer`]).
pub(crate) fn in_savepoint<T>(
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

/// `work` in one read transaction on `conn`: one snapshot, and the WAL read lock taken once
/// (in autocommit each statement takes and drops it). `BEGIN` and `ROLLBACK` go through the
/// statement cache, not parsed each time.
pub(crate) fn in_read_transaction<T>(
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

/// WAL frames after which the log is copied back into the database (SQLite's own default).
const CHECKPOINT_FRAMES: i32 = 1000;
/// WAL frames after which the writer checkpoints the log itself.
const CHECKPOINT_FRAMES_INLINE: i32 = 8 * CHECKPOINT_FRAMES;

/// What the writer's WAL hook does after a commit that left `frames` frames in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AfterCommit {
    Nothing,
    /// Ask the checkpoint thread for a checkpoint.
    RequestCheckpoint,
    /// Checkpoint on the writer, now.
    CheckpointInline,
}

fn after_commit(frames: i32) -> AfterCommit {
    if frames >= CHECKPOINT_FRAMES_INLINE {
        // The log restarts from its beginning only after a checkpoint that caught up with
        // the writer; under writes that never pause, the thread's checkpoints might not.
        // Then the writer copies the log itself, as SQLite would.
        AfterCommit::CheckpointInline
    } else if frames >= CHECKPOINT_FRAMES {
        AfterCommit::RequestCheckpoint
    } else {
        AfterCommit::Nothing
    }
}

/// Moves checkpoints off the writer thread. SQLite runs them inside the commit that crosses
/// the threshold, so every write waiting for that group waited for the copy and its two
/// fsyncs too: the slowest code exchanges took four times the median. A thread of its own
/// runs them (PASSIVE: they never block the writer or readers) when the writer's commits
/// report the log long enough; when the writer's connection closes, the thread ends.
pub(crate) struct Checkpointer {
    conn: Connection,
    requests: std::sync::mpsc::Receiver<()>,
}

impl Checkpointer {
    /// Installs on `writer` the WAL hook that decides after each commit ([`after_commit`]),
    /// and returns the checkpointer its requests go to, working on `conn`.
    fn attach(writer: &mut Connection, conn: Connection) -> Result<Self, StoreError> {
        // One pending request is enough: a checkpoint copies everything committed before it.
        let (request, requests) = std::sync::mpsc::sync_channel::<()>(1);
        writer
            .wal_hook(Some(move |wal: &mut rusqlite::hooks::Wal, frames: i32| {
                match after_commit(frames) {
                    AfterCommit::Nothing => {}
                    AfterCommit::RequestCheckpoint => {
                        let _ = request.try_send(());
                    }
                    AfterCommit::CheckpointInline => {
                        let _ = wal.checkpoint();
                    }
                }
                Ok(())
            }))
            .map_err(db_error)?;
        Ok(Self { conn, requests })
    }

    /// One PASSIVE checkpoint; returns the frames in the log and how many of them are now
    /// copied into the database.
    fn run_once(&self) -> Result<(i64, i64), StoreError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                Ok((row.get("log")?, row.get("checkpointed")?))
            })
            .map_err(db_error)
    }

    /// Serves requests until the writer's connection (and with it the hook) is gone.
    fn run(self) {
        while self.requests.recv().is_ok() {
            // A checkpoint that fails (the database locked by another process past the
            // busy timeout) is retried with the next request; the log only grows meanwhile.
            let _ = self.run_once();
        }
    }
}

/// Attaches a [`Checkpointer`] working on `conn` to `writer` and runs it on a thread of
/// its own.
pub(crate) fn start_checkpointer(
    writer: &mut Connection,
    conn: Connection,
) -> Result<(), StoreError> {
    let checkpointer = Checkpointer::attach(writer, conn)?;
    std::thread::Builder::new()
        .name("sqlite-checkpointer".into())
        .spawn(move || checkpointer.run())
        .map_err(|e| StoreError::Database(format!("cannot start the checkpoint thread: {e}")))?;
    Ok(())
}

/// The writer thread: takes the first waiting write, then every other already waiting,
/// and commits them as one transaction. While every core is busy serving requests it holds
/// the group open (see [`crate::pacing`]), so that what the handlers are about to write
/// joins it.
pub(crate) fn run_writer(mut conn: Connection, jobs: std::sync::mpsc::Receiver<WriteJob>) {
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

/// Creates the database file readable by its owner only before SQLite opens it: the WAL
/// and shared-memory files inherit its mode, and the registry copy is personal data.
pub(crate) fn create_private(path: &Path) -> Result<(), StoreError> {
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

pub(crate) fn connect(path: &Path, durability: Durability) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(db_error)?;
    // Other processes (operator commands, a second server) may hold the write lock briefly.
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(db_error)?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get("journal_mode"))
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

pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
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
            "SELECT COALESCE(MAX(version), 0) AS current FROM schema_migrations",
            [],
            |row| row.get("current"),
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_hook_asks_for_a_checkpoint_at_1000_frames_and_makes_one_itself_at_8000() {
        for (frames, expected) in [
            (0, AfterCommit::Nothing),
            (999, AfterCommit::Nothing),
            (1_000, AfterCommit::RequestCheckpoint),
            (7_999, AfterCommit::RequestCheckpoint),
            (8_000, AfterCommit::CheckpointInline),
            (20_000, AfterCommit::CheckpointInline),
        ] {
            assert_eq!(after_commit(frames), expected, "{frames} frames");
        }
    }

    /// The writer leaves checkpoints to the checkpointer until the log reaches its own
    /// threshold; writes that never pause cannot grow the log past that (by much). The test
    /// runs the checkpointer's steps itself, so no thread's timing decides the outcome.
    #[test]
    fn the_log_is_checkpointed_off_the_writer_and_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoints.db");
        let mut writer = connect(&path, Durability::Normal).unwrap();
        let checkpointer =
            Checkpointer::attach(&mut writer, connect(&path, Durability::Normal).unwrap()).unwrap();
        writer
            .execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)")
            .unwrap();
        checkpointer.run_once().unwrap();
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
        // About 1,200 frames: past the checkpointer's threshold, short of the writer's own.
        // The writer asked for a checkpoint and copied nothing itself.
        assert!(
            checkpointer.requests.try_recv().is_ok(),
            "no checkpoint asked for"
        );
        assert_eq!(size(&path), before, "the writer checkpointed");
        let (log, checkpointed) = checkpointer.run_once().unwrap();
        assert!(
            log >= 1_200 && checkpointed == log,
            "{checkpointed} of {log}"
        );
        assert!(size(&path) >= before + 600 * 4096);

        // 20,000 frames (80 MB) written without a pause and no help from the checkpointer:
        // the writer's own checkpoints keep restarting the log.
        for _ in 0..10_000 {
            insert(&writer);
        }
        let frame = 4096 + 24;
        let bound = (CHECKPOINT_FRAMES_INLINE as u64 + 2 * CHECKPOINT_FRAMES as u64) * frame;
        assert!(size(&wal) < bound, "log of {} bytes", size(&wal));
        let rows: i64 = writer
            .query_row("SELECT count(*) AS rows FROM t", [], |row| row.get("rows"))
            .unwrap();
        assert_eq!(rows, 10_600);

        // The thread's loop serves what is asked and ends when the writer closes.
        drop(writer);
        checkpointer.run();
    }

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
        assert_eq!(files.len(), MIGRATIONS.len(), "{files:?}");
        for (position, (version, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*version, position as i64 + 1);
            assert!(
                files[position].starts_with(&format!("{version:04}_")),
                "{files:?}"
            );
        }
    }
}
