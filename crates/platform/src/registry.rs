//! The registry as the platform reaches it: the embedded copy in the store, behind the
//! `Registry` trait so an external registry can take its place.

use std::sync::Arc;

use async_trait::async_trait;
use cyberid_domain::{CitizenIdNumber, PersonRecord};
use cyberid_registry::{Registry, RegistryError};
use cyberid_store::Store;

pub struct StoreRegistry(pub Arc<dyn Store>);

#[async_trait]
impl Registry for StoreRegistry {
    async fn find(&self, id: &CitizenIdNumber) -> Result<Option<PersonRecord>, RegistryError> {
        self.0
            .registry_find(id)
            .await
            .map_err(|e| RegistryError(e.to_string()))
    }
}
