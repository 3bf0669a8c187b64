//! Rate-limit counters: added to in one write job, purged once their window has passed.

use async_trait::async_trait;
use rusqlite::params;

use super::row::{execute, query_one};
use super::{SqliteStore, db_error};
use crate::records::CounterIncrease;
use crate::{LimitStore, StoreError};

#[async_trait]
impl LimitStore for SqliteStore {
    async fn add_to_counters(&self, increases: &[CounterIncrease]) -> Result<Vec<i64>, StoreError> {
        if increases.is_empty() {
            return Ok(Vec::new());
        }
        let increases = increases.to_vec();
        self.write(move |conn| {
            super::engine::in_savepoint(conn, |conn| {
                let mut totals = Vec::with_capacity(increases.len());
                for increase in &increases {
                    // Reading a counter back writes nothing: a node that only watches a
                    // counter near its limit adds nothing to the log.
                    if increase.by == 0 {
                        let total = query_one(
                            conn,
                            "SELECT count FROM rate_counters WHERE counter = ?1 AND window_start = ?2",
                            params![increase.counter, increase.window_start],
                            db_error,
                            |row| row.get::<_, i64>(0).map_err(db_error),
                        )?;
                        totals.push(total.unwrap_or(0));
                        continue;
                    }
                    let total = query_one(
                        conn,
                        "INSERT INTO rate_counters (counter, window_start, count, expires_at)
                         VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (counter, window_start) DO UPDATE SET count = count + excluded.count
                         RETURNING count",
                        params![
                            increase.counter,
                            increase.window_start,
                            increase.by,
                            increase.expires_at
                        ],
                        db_error,
                        |row| row.get::<_, i64>(0).map_err(db_error),
                    )?;
                    totals.push(total.unwrap_or(increase.by));
                }
                Ok(totals)
            })
        })
        .await
    }

    async fn purge_counters(&self, now: i64, batch: u32) -> Result<u64, StoreError> {
        self.write(move |conn| {
            execute(
                conn,
                "DELETE FROM rate_counters WHERE (counter, window_start) IN (
                   SELECT counter, window_start FROM rate_counters WHERE expires_at < ?1 LIMIT ?2)",
                params![now, batch],
            )
            .map(|n| n as u64)
        })
        .await
    }
}
