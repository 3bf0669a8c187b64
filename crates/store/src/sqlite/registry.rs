//! The registry copy: upserts on the writer thread, whole imports on a connection of their
//! own ([`super::import`]), lookups by ID number.

use async_trait::async_trait;
use cyberid_domain::{CitizenIdNumber, PersonRecord, parse_iso_date};

use super::import::{REGISTRY_UPSERT, import_registry, insert_person};
use super::row::{Fields, query_one};
use super::{SqliteStore, db_error, join_error};
use crate::records::{
    RegistryBatches, RegistryImportError, normalise_registry_batch, registry_record,
};
use crate::{RegistryStore, StoreError};

#[async_trait]
impl RegistryStore for SqliteStore {
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
            query_one(
                conn,
                "SELECT id_number, name, birth_date, sex, face FROM registry_people
                 WHERE id_number = ?1",
                [&id],
                db_error,
                |row| {
                    let f = Fields::new(row, "registry_people", "");
                    let birth_date: String = f.get("birth_date")?;
                    let birth_date = parse_iso_date(&birth_date)
                        .ok_or_else(|| f.corrupt("birth_date", "not an ISO date"))?;
                    let id_number: String = f.get("id_number")?;
                    let name: String = f.get("name")?;
                    let sex: String = f.get("sex")?;
                    let face: Vec<u8> = f.get("face")?;
                    registry_record(&id_number, &name, birth_date, &sex, &face)
                },
            )
        })
        .await
    }
}
