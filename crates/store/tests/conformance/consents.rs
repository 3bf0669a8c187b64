//! Remembered consents: merged by approvals, listed, revoked.

use std::sync::Arc;

use cyberid_domain::Claim;
use cyberid_store::LoginStatus;

use crate::{account, approved_l1, for_each_backend, login, relying_party};

#[tokio::test]
async fn consents_are_remembered_merged_and_revoked() {
    for_each_backend(|store| async move {
        for client in ["c1", "c2"] {
            store
                .insert_relying_party(&relying_party(client))
                .await
                .unwrap();
        }
        let a = store.enrol(&account(1, 1, "d1")).await.unwrap().account_id;
        assert!(store.consent(a, "c1").await.unwrap().is_none());
        // Consent is remembered by approving sign-ins.
        let approve = |id: &'static str, client: &'static str, claims: &[Claim], at: i64| {
            let store = store.clone();
            let outcome = approved_l1(a, claims, at);
            async move {
                let mut new = login(id, LoginStatus::Pending, None);
                new.request.client_id = client.into();
                assert!(store.insert_login(&new).await.unwrap());
                assert!(store.finish_login(id, "d1", &outcome, at).await.unwrap());
            }
        };
        approve("s1", "c1", &[Claim::AgeOver18], 1_010).await;
        approve("s2", "c1", &[Claim::AgeOver18, Claim::Region], 1_020).await;
        approve("s3", "c2", &[], 1_030).await;
        let consent = store.consent(a, "c1").await.unwrap().unwrap();
        assert_eq!((consent.claims.len(), consent.granted_at), (2, 1_020));
        assert_eq!(store.consents(a).await.unwrap().len(), 2);
        assert!(store.revoke_consent(a, "c1").await.unwrap());
        assert!(!store.revoke_consent(a, "c1").await.unwrap());
        assert_eq!(store.consents(a).await.unwrap().len(), 1);
        // After a revocation the next approval starts the remembered set again.
        approve("s4", "c1", &[Claim::Region], 1_040).await;
        let consent = store.consent(a, "c1").await.unwrap().unwrap();
        assert_eq!(consent.claims, vec![Claim::Region]);
    })
    .await;
}

/// Approvals of one holder for one service at the same moment each add their claims; none
/// is lost to another, whether the consent row exists yet or not. On SQLite the one writer
/// applies them in turn; the race this guards against is PostgreSQL's, which CI runs
/// (`CYBERID_REQUIRE_POSTGRES`).
#[tokio::test]
async fn concurrent_approvals_never_lose_a_claim() {
    for_each_backend(|store| async move {
        let holder = store.enrol(&account(1, 1, "d1")).await.unwrap().account_id;
        let claims = [
            Claim::NetworkNumber,
            Claim::AgeOver14,
            Claim::AgeOver16,
            Claim::AgeOver18,
            Claim::AgeOver60,
            Claim::Region,
            Claim::Name,
            Claim::Birthdate,
        ];
        for round in 0..4 {
            let client = format!("c{round}");
            store
                .insert_relying_party(&relying_party(&client))
                .await
                .unwrap();
            let approvals = claims.iter().enumerate().map(|(n, claim)| {
                let store = Arc::clone(&store);
                let mut new = login(&format!("r{round}s{n}"), LoginStatus::Pending, None);
                new.request.client_id = client.clone();
                // Each approval brings one claim of its own and one it shares (released
                // claims are distinct, as the contract says).
                let released: &[Claim] = if *claim == Claim::Region {
                    &[Claim::Region]
                } else {
                    &[*claim, Claim::Region]
                };
                let outcome = approved_l1(holder, released, 1_010);
                tokio::spawn(async move {
                    assert!(store.insert_login(&new).await.unwrap());
                    assert!(
                        store
                            .finish_login(&new.id, "d1", &outcome, 1_010)
                            .await
                            .unwrap()
                    );
                })
            });
            crate::futures_join(approvals).await;
            let mut remembered = store
                .consent(holder, &client)
                .await
                .unwrap()
                .unwrap()
                .claims;
            remembered.sort();
            let mut expected = claims.to_vec();
            expected.sort();
            assert_eq!(remembered, expected, "{}: round {round}", store.backend());
        }
    })
    .await;
}
