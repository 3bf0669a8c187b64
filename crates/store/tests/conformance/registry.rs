//! The registry copy: upserts, lookups, whole-source imports.

use std::sync::Arc;

use cyberid_domain::{PersonName, PersonRecord};
use cyberid_registry::generate::Generator;
use cyberid_store::RegistryChunk;

use crate::for_each_backend;

fn records(count: usize, seed: u64) -> Vec<PersonRecord> {
    Generator::new(seed).take(count).collect()
}

/// Sends `chunks` down a channel as a registry source does, then closes it.
fn source(chunks: Vec<RegistryChunk>) -> cyberid_store::RegistryBatches {
    let (sender, receiver) = tokio::sync::mpsc::channel(chunks.len().max(1));
    for chunk in chunks {
        sender.try_send(chunk).unwrap();
    }
    receiver
}

#[tokio::test]
async fn registry_round_trip_and_upsert() {
    for_each_backend(|store| async move {
        let people = records(250, 7);
        store.registry_upsert(people.clone()).await.unwrap();
        assert_eq!(store.counts().await.unwrap().registry_people, 250);
        for person in people.iter().step_by(50) {
            let found = store
                .registry_find(&person.id_number)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(found, *person, "{}", store.backend());
        }
        // Re-import updates rather than duplicates (the registry is authoritative), and
        // within one batch the last record for a person wins, on every backend.
        let mut renamed = people[0].clone();
        renamed.name = PersonName::parse("李四").unwrap();
        let mut earlier = people[0].clone();
        earlier.name = PersonName::parse("王五").unwrap();
        store
            .registry_upsert(vec![earlier, people[1].clone(), renamed.clone()])
            .await
            .unwrap();
        assert_eq!(store.counts().await.unwrap().registry_people, 250);
        assert_eq!(
            store
                .registry_find(&renamed.id_number)
                .await
                .unwrap()
                .unwrap()
                .name,
            renamed.name
        );
        let stranger = &records(1, 99)[0];
        assert!(
            store
                .registry_find(&stranger.id_number)
                .await
                .unwrap()
                .is_none()
        );
    })
    .await;
}

#[tokio::test]
async fn registry_import_merges_in_order_and_a_bad_source_imports_nothing() {
    for_each_backend(|store| async move {
        let existing = records(30, 5);
        store.registry_upsert(existing.clone()).await.unwrap();

        // Three batches: new people, an update of an existing person, and the same new
        // person twice across batches; the last record for an ID number wins.
        let new_people = records(400, 6);
        let mut updated = existing[3].clone();
        updated.name = PersonName::parse("赵六").unwrap();
        let mut first_take = new_people[10].clone();
        first_take.name = PersonName::parse("钱七").unwrap();
        let mut second_take = new_people[10].clone();
        second_take.name = PersonName::parse("孙八").unwrap();
        let read = store
            .registry_import(source(vec![
                RegistryChunk::Records(new_people[..200].to_vec()),
                RegistryChunk::Records(vec![updated.clone(), first_take]),
                RegistryChunk::Records(
                    [new_people[200..].to_vec(), vec![second_take.clone()]].concat(),
                ),
                RegistryChunk::End,
            ]))
            .await
            .unwrap();
        assert_eq!(read, 403);
        assert_eq!(store.counts().await.unwrap().registry_people, 430);
        let find = |id| {
            let store = Arc::clone(&store);
            async move { store.registry_find(id).await.unwrap().unwrap() }
        };
        assert_eq!(
            find(&updated.id_number).await,
            updated,
            "{}",
            store.backend()
        );
        assert_eq!(find(&second_take.id_number).await, second_take);
        for person in new_people
            .iter()
            .step_by(37)
            .chain(existing.iter().step_by(7))
        {
            if person.id_number != updated.id_number && person.id_number != second_take.id_number {
                assert_eq!(find(&person.id_number).await, *person);
            }
        }

        // A source that fails after good batches, or stops without saying it reached its
        // end (a reader that crashed), leaves the registry as it was.
        let strangers = records(50, 8);
        for (ending, expected) in [
            (
                Some(RegistryChunk::Failed(
                    "line 51: not a registry record".into(),
                )),
                "line 51",
            ),
            (None, "stopped before its end"),
        ] {
            let chunks = [RegistryChunk::Records(strangers.clone())]
                .into_iter()
                .chain(ending)
                .collect();
            match store.registry_import(source(chunks)).await.unwrap_err() {
                cyberid_store::RegistryImportError::Source {
                    message,
                    records_read,
                } => {
                    assert_eq!(records_read, 50);
                    assert!(message.contains(expected), "{message}");
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(store.counts().await.unwrap().registry_people, 430);
        assert!(
            store
                .registry_find(&strangers[0].id_number)
                .await
                .unwrap()
                .is_none()
        );
    })
    .await;
}
