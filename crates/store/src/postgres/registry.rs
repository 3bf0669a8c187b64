//! The registry copy: upserts and imports through the bulk path, lookups by ID number.

use async_trait::async_trait;
use cyberid_domain::{CitizenIdNumber, PersonRecord};

use super::PostgresStore;
use super::import::import_registry;
use super::row::Fields;
use crate::records::{RegistryBatches, RegistryChunk, RegistryImportError, registry_record};
use crate::{RegistryStore, StoreError};

#[async_trait]
impl RegistryStore for PostgresStore {
    async fn registry_upsert(&self, records: Vec<PersonRecord>) -> Result<(), StoreError> {
        // One batch through the bulk import: the same COPY and ordered upsert, one
        // transaction, the last record for an ID number winning.
        let (sender, batches) = tokio::sync::mpsc::channel(2);
        for chunk in [RegistryChunk::Records(records), RegistryChunk::End] {
            sender
                .try_send(chunk)
                .map_err(|_| StoreError::Database("registry batch channel closed".into()))?;
        }
        match self.registry_import(batches).await {
            Ok(_) => Ok(()),
            Err(RegistryImportError::Store(e)) => Err(e),
            Err(RegistryImportError::Source { message, .. }) => Err(StoreError::Database(message)),
        }
    }

    async fn registry_import(
        &self,
        mut batches: RegistryBatches,
    ) -> Result<u64, RegistryImportError> {
        import_registry(&self.pool, &mut batches).await
    }

    async fn registry_find(
        &self,
        id: &CitizenIdNumber,
    ) -> Result<Option<PersonRecord>, StoreError> {
        self.one(
            "SELECT id_number, name, birth_date, sex, face FROM registry_people WHERE id_number = $1",
            &[&id.as_str()],
            |row| {
                let f = Fields::new(row, "registry_people", "");
                registry_record(
                    f.get("id_number")?,
                    f.get("name")?,
                    f.get("birth_date")?,
                    f.get("sex")?,
                    f.get("face")?,
                )
            },
        )
        .await
    }
}
