//! Registry import on PostgreSQL: binary `COPY` into a temporary table, then one ordered
//! upsert, all in one transaction.

use std::pin::pin;

use deadpool_postgres::Pool;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;

use super::{db_error, pool_error};
use crate::records::{RegistryBatches, RegistryImportError, next_registry_batch};

/// A whole-source registry import (see [`crate::RegistryStore::registry_import`]).
pub(super) async fn import_registry(
    pool: &Pool,
    batches: &mut RegistryBatches,
) -> Result<u64, RegistryImportError> {
    let mut client = pool.get().await.map_err(pool_error)?;
    // One transaction: a source that fails half-way leaves the registry as it was.
    let tx = client.transaction().await.map_err(db_error)?;
    tx.batch_execute(
        "SET LOCAL work_mem = '64MB';
         CREATE TEMP TABLE registry_staging (seq bigint NOT NULL, LIKE registry_people)
           ON COMMIT DROP",
    )
    .await
    .map_err(db_error)?;
    let mut records_read = 0u64;
    while let Some(batch) = next_registry_batch(batches.recv().await, records_read)? {
        let sink = tx
            .copy_in(
                "COPY registry_staging (seq, id_number, name, birth_date, sex, face)
                 FROM STDIN BINARY",
            )
            .await
            .map_err(db_error)?;
        let mut writer = pin!(BinaryCopyInWriter::new(
            sink,
            &[
                Type::INT8,
                Type::TEXT,
                Type::TEXT,
                Type::DATE,
                Type::TEXT,
                Type::BYTEA
            ],
        ));
        for record in &batch {
            let seq = records_read as i64;
            let face = record.face.to_bytes();
            writer
                .as_mut()
                .write(&[
                    &seq,
                    &record.id_number.as_str(),
                    &record.name.as_str(),
                    &record.birth_date,
                    &record.sex.as_str(),
                    &&face[..],
                ])
                .await
                .map_err(db_error)?;
            records_read += 1;
        }
        writer.finish().await.map_err(db_error)?;
    }
    // In ID-number order, the last record for an ID number winning: one pass over the
    // primary-key index in order (an upsert may not touch a row twice in one statement).
    tx.execute(
        "INSERT INTO registry_people (id_number, name, birth_date, sex, face)
         SELECT DISTINCT ON (id_number) id_number, name, birth_date, sex, face
         FROM registry_staging ORDER BY id_number, seq DESC
         ON CONFLICT (id_number) DO UPDATE SET
           name = EXCLUDED.name, birth_date = EXCLUDED.birth_date,
           sex = EXCLUDED.sex, face = EXCLUDED.face",
        &[],
    )
    .await
    .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    Ok(records_read)
}
