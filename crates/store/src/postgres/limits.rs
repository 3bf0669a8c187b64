//! Rate-limit counters: every increase of a batch in one statement, purged once their
//! window has passed.

use std::collections::HashMap;

use async_trait::async_trait;

use super::PostgresStore;
use super::row::Fields;
use crate::records::CounterIncrease;
use crate::{LimitStore, StoreError};

#[async_trait]
impl LimitStore for PostgresStore {
    async fn add_to_counters(&self, increases: &[CounterIncrease]) -> Result<Vec<i64>, StoreError> {
        if increases.is_empty() {
            return Ok(Vec::new());
        }
        // Counters only read back are not written: an update, even of nothing, leaves a
        // dead row version behind.
        let (added, read): (Vec<&CounterIncrease>, Vec<&CounterIncrease>) =
            increases.iter().partition(|i| i.by != 0);
        let mut rows = Vec::with_capacity(increases.len());
        if !added.is_empty() {
            let counters: Vec<&[u8]> = added.iter().map(|i| i.counter.as_slice()).collect();
            let windows: Vec<i64> = added.iter().map(|i| i.window_start).collect();
            let by: Vec<i64> = added.iter().map(|i| i.by).collect();
            let expiries: Vec<i64> = added.iter().map(|i| i.expires_at).collect();
            rows.extend(
                self.rows(
                    "INSERT INTO rate_counters AS c (counter, window_start, count, expires_at)
                     SELECT * FROM unnest($1::bytea[], $2::bigint[], $3::bigint[], $4::bigint[])
                     ON CONFLICT (counter, window_start) DO UPDATE SET count = c.count + excluded.count
                     RETURNING counter, window_start, count",
                    &[&counters, &windows, &by, &expiries],
                )
                .await?,
            );
        }
        if !read.is_empty() {
            let counters: Vec<&[u8]> = read.iter().map(|i| i.counter.as_slice()).collect();
            let windows: Vec<i64> = read.iter().map(|i| i.window_start).collect();
            rows.extend(
                self.rows(
                    "SELECT c.counter, c.window_start, c.count
                     FROM unnest($1::bytea[], $2::bigint[]) AS k (counter, window_start)
                     JOIN rate_counters c USING (counter, window_start)",
                    &[&counters, &windows],
                )
                .await?,
            );
        }
        // RETURNING follows no particular order: match the totals to the increases.
        let mut totals = HashMap::with_capacity(rows.len());
        for row in &rows {
            let f = Fields::new(row, "rate_counters", "");
            let counter: Vec<u8> = f.get("counter")?;
            let window_start: i64 = f.get("window_start")?;
            totals.insert((counter, window_start), f.get::<i64>("count")?);
        }
        increases
            .iter()
            .map(|i| {
                match totals.get(&(i.counter.clone(), i.window_start)) {
                    Some(total) => Ok(*total),
                    // Read back, and never counted (or purged): zero.
                    None if i.by == 0 => Ok(0),
                    None => Err(StoreError::Corrupt(
                        "rate_counters: a counter added to went missing".into(),
                    )),
                }
            })
            .collect()
    }

    async fn purge_counters(&self, now: i64, batch: u32) -> Result<u64, StoreError> {
        self.execute(
            "DELETE FROM rate_counters WHERE (counter, window_start) IN (
               SELECT counter, window_start FROM rate_counters WHERE expires_at < $1 LIMIT $2)",
            &[&now, &i64::from(batch)],
        )
        .await
    }
}
