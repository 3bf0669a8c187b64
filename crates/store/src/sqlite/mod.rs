//! The embedded store: one SQLite file in WAL mode.
//!
//! Writes go to one writer thread that commits them in groups ([`engine`]). Reads use a
//! small pool of reader connections beside the writer (WAL) and run inline: point reads
//! take microseconds, less than a hand-off to another thread would cost; the few scans
//! (counts, lists) go to tokio's blocking pool. The queries live in one module per
//! aggregate, each implementing its part of the contract on [`SqliteStore`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use rusqlite::{Connection, params};

use crate::observed::{self, AsStoreError, Work};
use crate::{Durability, KEY_FINGERPRINT_SETTING, Store, StoreCounts, StoreError};
use engine::{Reply, WriteJob};
use row::{Fields, query_one};

mod accounts;
mod clients;
mod consents;
mod engine;
mod import;
mod limits;
mod registry;
mod row;
mod sign_ins;

pub const DATABASE_FILE: &str = "cyberid.db";
const IDLE_READERS: usize = 8;

pub struct SqliteStore {
    path: PathBuf,
    durability: Durability,
    writer: std::sync::mpsc::Sender<WriteJob>,
    readers: Arc<Mutex<Vec<Connection>>>,
}

fn db_error(error: rusqlite::Error) -> StoreError {
    StoreError::Database(error.to_string())
}

fn join_error(error: tokio::task::JoinError) -> StoreError {
    StoreError::Database(format!("database task failed: {error}"))
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
            engine::create_private(&path)?;
            let mut writer = engine::connect(&path, durability)?;
            engine::migrate(&mut writer)?;
            engine::start_checkpointer(&mut writer, engine::connect(&path, durability)?)?;
            let (sender, jobs) = std::sync::mpsc::channel::<WriteJob>();
            std::thread::Builder::new()
                .name("sqlite-writer".into())
                .spawn(move || engine::run_writer(writer, jobs))
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

    /// Runs `work` on the writer thread, in the next group commit; returns once the group
    /// is committed (or failed).
    async fn write<T, E>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + AsStoreError + Send + 'static,
    {
        let started = Instant::now();
        let written = self.write_unobserved(work).await;
        observed::record("sqlite", Work::Write, started, &written);
        written
    }

    async fn write_unobserved<T, E>(
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
            None => engine::connect(&self.path, self.durability),
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
        let started = Instant::now();
        let conn = self.reader()?;
        let result = work(&conn);
        Self::give_back(&self.readers, conn);
        observed::record("sqlite", Work::Read, started, &result);
        result
    }

    /// Reads that belong together, in one read transaction: one snapshot, and the WAL read
    /// lock taken once (in autocommit each statement takes and drops it, two `fcntl` calls
    /// and a check of the page cache every time).
    async fn read_together<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let conn = self.reader()?;
        let result = engine::in_read_transaction(&conn, work);
        Self::give_back(&self.readers, conn);
        observed::record("sqlite", Work::Read, started, &result);
        result
    }

    /// A read that may scan: on tokio's blocking pool.
    async fn scan<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let conn = self.reader()?;
        let readers = Arc::clone(&self.readers);
        let result = tokio::task::spawn_blocking(move || {
            let result = work(&conn);
            Self::give_back(&readers, conn);
            result
        })
        .await
        .map_err(join_error)
        .and_then(|scanned| scanned);
        observed::record("sqlite", Work::Read, started, &result);
        result
    }
}

/// A count read as the `u64` it is.
fn count(fields: &Fields<'_, '_>, column: &'static str) -> Result<u64, StoreError> {
    let count: i64 = fields.get(column)?;
    u64::try_from(count).map_err(|e| fields.corrupt(column, e))
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

    async fn counts(&self) -> Result<StoreCounts, StoreError> {
        self.scan(|conn| {
            query_one(
                conn,
                "SELECT (SELECT COUNT(*) FROM registry_people) AS registry_people,
                        (SELECT COUNT(*) FROM accounts) AS accounts,
                        (SELECT COUNT(*) FROM devices) AS devices,
                        (SELECT COUNT(*) FROM credentials) AS credentials,
                        (SELECT COUNT(*) FROM login_transactions) AS sign_ins",
                [],
                db_error,
                |row| {
                    let fields = Fields::new(row, "counts", "");
                    Ok(StoreCounts {
                        registry_people: count(&fields, "registry_people")?,
                        accounts: count(&fields, "accounts")?,
                        devices: count(&fields, "devices")?,
                        credentials: count(&fields, "credentials")?,
                        sign_ins: count(&fields, "sign_ins")?,
                    })
                },
            )?
            .ok_or_else(|| StoreError::Database("counting returned no row".into()))
        })
        .await
    }

    async fn claim_key_fingerprint(&self, fingerprint: &str) -> Result<String, StoreError> {
        let fingerprint = fingerprint.to_owned();
        self.write(move |conn| {
            row::execute(
                conn,
                "INSERT INTO platform_settings (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
                params![KEY_FINGERPRINT_SETTING, fingerprint],
            )?;
            query_one(
                conn,
                "SELECT value FROM platform_settings WHERE name = ?1",
                [KEY_FINGERPRINT_SETTING],
                db_error,
                |row| Fields::new(row, "platform_settings", "").get("value"),
            )?
            .ok_or_else(|| StoreError::Database("the key fingerprint was not recorded".into()))
        })
        .await
    }
}
