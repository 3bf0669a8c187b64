//! Relying parties and their stored registration.

use cyberid_domain::ClientAuthMethod;
use cyberid_store::RelyingParty;

use crate::{assert_corrupt, for_each_backend, for_each_backend_with_sql, relying_party};

#[tokio::test]
async fn relying_parties_are_stored_listed_and_suspended() {
    for_each_backend(|store| async move {
        let rp = relying_party("c1");
        store.insert_relying_party(&rp).await.unwrap();
        assert!(
            store.insert_relying_party(&rp).await.is_err(),
            "client ids are unique"
        );
        assert_eq!(store.relying_party("c1").await.unwrap(), Some(rp.clone()));
        assert_eq!(store.relying_party("nope").await.unwrap(), None);
        store
            .insert_relying_party(&RelyingParty {
                legal_basis: Some("law".into()),
                require_par: true,
                auth_method: ClientAuthMethod::PrivateKeyJwt,
                secret_digest: None,
                jwks: Some("{\"keys\":[]}".into()),
                ..relying_party("c2")
            })
            .await
            .unwrap();
        let all = store.relying_parties().await.unwrap();
        assert_eq!(all.len(), 2);
        assert!(all[1].require_par && all[1].legal_basis.as_deref() == Some("law"));
        assert!(store.set_relying_party_suspended("c1", true).await.unwrap());
        assert!(store.relying_party("c1").await.unwrap().unwrap().suspended);
        assert!(
            !store
                .set_relying_party_suspended("nope", true)
                .await
                .unwrap()
        );
    })
    .await;
}

/// A sector's relying parties, by name, and no others.
#[tokio::test]
async fn relying_parties_are_found_by_sector() {
    for_each_backend(|store| async move {
        for (client_id, name, sector) in [
            ("c1", "Pharmacy", "health.example"),
            ("c2", "Games", "games.example"),
            ("c3", "Clinic", "health.example"),
        ] {
            store
                .insert_relying_party(&RelyingParty {
                    name: name.into(),
                    sector: sector.into(),
                    ..relying_party(client_id)
                })
                .await
                .unwrap();
        }
        let names = |found: Vec<RelyingParty>| -> Vec<String> {
            found.into_iter().map(|rp| rp.name).collect()
        };
        assert_eq!(
            names(
                store
                    .relying_parties_in_sector("health.example")
                    .await
                    .unwrap()
            ),
            ["Clinic", "Pharmacy"]
        );
        assert_eq!(
            names(
                store
                    .relying_parties_in_sector("games.example")
                    .await
                    .unwrap()
            ),
            ["Games"]
        );
        assert!(
            store
                .relying_parties_in_sector("nobody.example")
                .await
                .unwrap()
                .is_empty()
        );
    })
    .await;
}

/// An authentication method or claim the store does not know, written behind its back, is
/// corrupt data naming the column.
#[tokio::test]
async fn unknown_values_in_a_registration_are_corrupt_data_naming_their_column() {
    for_each_backend_with_sql(|store, raw| async move {
        store
            .insert_relying_party(&relying_party("c1"))
            .await
            .unwrap();
        let backend = store.backend();
        raw.drop_check("relying_parties", "auth_method").await;
        raw.execute("UPDATE relying_parties SET auth_method = 'client_secret_post'")
            .await;
        assert_corrupt(
            store.relying_party("c1").await,
            "relying_parties.auth_method",
            backend,
        );
        assert_corrupt(
            store.relying_parties().await,
            "relying_parties.auth_method",
            backend,
        );
        raw.execute(
            "UPDATE relying_parties SET auth_method = 'private_key_jwt',
                                        allowed_claims = '[\"shoe_size\"]'",
        )
        .await;
        assert_corrupt(
            store.relying_party("c1").await,
            "relying_parties.allowed_claims",
            backend,
        );
    })
    .await;
}
