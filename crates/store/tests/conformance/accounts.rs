//! Accounts: enrolment (one per person, atomic), resumption, bulk provisioning, status
//! lists and factor failure counts.

use std::sync::Arc;

use cyberid_domain::AccountStatus;
use cyberid_store::{EnrolError, Factor, NewAccount, STATUS_LIST_CAPACITY};

use crate::{
    account, assert_corrupt, for_each_backend, for_each_backend_with_sql, futures_join, number,
};

#[tokio::test]
async fn enrolment_is_one_account_per_person_and_unique_numbers() {
    for_each_backend(|store| async move {
        let first_account = account(1, 1, "dev-1");
        let first = store.enrol(&first_account).await.unwrap();
        let second = store.enrol(&account(2, 2, "dev-2")).await.unwrap();
        assert_ne!(first.status_index, second.status_index);
        let before = store.counts().await.unwrap();
        assert_eq!(
            (before.accounts, before.devices, before.credentials),
            (2, 2, 2)
        );

        let same_person = store.enrol(&account(1, 3, "dev-3")).await.unwrap_err();
        assert!(
            matches!(same_person, EnrolError::PersonAlreadyEnrolled),
            "{same_person:?}"
        );
        let same_number = store.enrol(&account(3, 1, "dev-4")).await.unwrap_err();
        assert!(
            matches!(same_number, EnrolError::NetworkNumberTaken),
            "{same_number:?}"
        );
        let same_device = store.enrol(&account(4, 4, "dev-1")).await.unwrap_err();
        assert!(
            matches!(same_device, EnrolError::DeviceAlreadyBound),
            "{same_device:?}"
        );
        let same_pin_key = NewAccount {
            pin_key_id: first_account.pin_key_id,
            ..account(5, 5, "dev-5")
        };
        let same_pin_key = store.enrol(&same_pin_key).await.unwrap_err();
        assert!(
            matches!(same_pin_key, EnrolError::PinKeyIdTaken),
            "{same_pin_key:?}"
        );

        // A refused enrolment leaves nothing behind: no half account, no burnt number.
        assert_eq!(store.counts().await.unwrap(), before, "{}", store.backend());
        store.enrol(&account(3, 3, "dev-3")).await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn concurrent_enrolments_of_one_person_admit_exactly_one() {
    for_each_backend(|store| async move {
        let attempts = (0..8u8).map(|i| {
            let store = Arc::clone(&store);
            let attempt = NewAccount {
                pin_key_id: [10 + i; 16],
                ..account(9, 10 + i, &format!("d{i}"))
            };
            tokio::spawn(async move { store.enrol(&attempt).await })
        });
        let results = futures_join(attempts).await;
        let successes = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(successes, 1, "{}", store.backend());
        assert!(
            results
                .iter()
                .filter_map(|r| r.as_ref().err())
                .all(|e| matches!(e, EnrolError::PersonAlreadyEnrolled))
        );
        assert_eq!(store.counts().await.unwrap().accounts, 1);
    })
    .await;
}

#[tokio::test]
async fn credential_status_lists() {
    for_each_backend(|store| async move {
        let a = store.enrol(&account(1, 1, "d1")).await.unwrap();
        let b = store.enrol(&account(2, 2, "d2")).await.unwrap();
        let list = a.status_index / STATUS_LIST_CAPACITY;
        assert!(store.credential_statuses(list).await.unwrap().is_empty());
        assert!(
            store
                .set_credential_status(a.status_index, 1)
                .await
                .unwrap()
        );
        assert!(
            store
                .set_credential_status(b.status_index, 2)
                .await
                .unwrap()
        );
        let mut statuses = store.credential_statuses(list).await.unwrap();
        statuses.sort();
        let offset = list * STATUS_LIST_CAPACITY;
        assert_eq!(
            statuses,
            vec![(a.status_index - offset, 1), (b.status_index - offset, 2)]
        );
        assert!(
            store
                .credential_statuses(list + 1)
                .await
                .unwrap()
                .is_empty()
        );
        store
            .set_credential_status(a.status_index, 0)
            .await
            .unwrap();
        assert_eq!(store.credential_statuses(list).await.unwrap().len(), 1);
        assert!(!store.set_credential_status(999_999_999, 1).await.unwrap());
    })
    .await;
}

#[tokio::test]
async fn an_enrolment_retried_by_its_device_resumes() {
    for_each_backend(|store| async move {
        let original = account(1, 1, "dev-1");
        let first = store.enrol(&original).await.unwrap();
        assert_eq!(
            store.max_status_index().await.unwrap(),
            Some(first.status_index)
        );

        // Another device of the same person: nothing to resume, nothing changes.
        let before = store.counts().await.unwrap();
        assert!(
            store
                .resume_enrolment(&account(1, 2, "dev-2"))
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(store.counts().await.unwrap(), before);

        // The same device again: same account and number, a new credential, the old one invalid.
        let retry = NewAccount {
            network_number: number(9),
            ..account(1, 9, "dev-1")
        };
        let resumed = store.resume_enrolment(&retry).await.unwrap().unwrap();
        assert_eq!(resumed.enrolled.account_id, first.account_id);
        assert_eq!(resumed.network_number, original.network_number);
        assert_eq!(resumed.sealed_attributes, original.sealed_attributes);
        assert_ne!(resumed.enrolled.status_index, first.status_index);
        let list = first.status_index / STATUS_LIST_CAPACITY;
        let offset = list * STATUS_LIST_CAPACITY;
        assert_eq!(
            store.credential_statuses(list).await.unwrap(),
            vec![(first.status_index - offset, 1)]
        );
        let after = store.counts().await.unwrap();
        assert_eq!((after.accounts, after.credentials), (1, 2));
        // The new PIN key id is now the account's: reusing it for someone else fails.
        let reuse = NewAccount {
            pin_key_id: retry.pin_key_id,
            ..account(3, 3, "dev-3")
        };
        assert!(matches!(
            store.enrol(&reuse).await,
            Err(EnrolError::PinKeyIdTaken)
        ));
    })
    .await;
}

#[tokio::test]
async fn factor_attempts_lock_at_the_limit_and_reset() {
    for_each_backend(|store| async move {
        let enrolled = store.enrol(&account(1, 1, "d1")).await.unwrap();
        let (found, device) = store.account_by_device("d1").await.unwrap().unwrap();
        assert_eq!(
            (found.account_id, device.device_id),
            (enrolled.account_id, enrolled.device_id)
        );
        assert_eq!(found.status, AccountStatus::Active);
        assert!(store.account_by_device("unknown").await.unwrap().is_none());
        for expected in 1..=3 {
            assert_eq!(
                store
                    .count_attempt(found.account_id, Factor::Pin, 3)
                    .await
                    .unwrap(),
                Some(expected)
            );
        }
        assert_eq!(
            store
                .count_attempt(found.account_id, Factor::Pin, 3)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            store
                .account(found.account_id)
                .await
                .unwrap()
                .unwrap()
                .pin_failures,
            3
        );
        assert_eq!(
            store
                .count_attempt(found.account_id, Factor::Face, 3)
                .await
                .unwrap(),
            Some(1)
        );
        store
            .reset_attempts(found.account_id, Factor::Pin)
            .await
            .unwrap();
        let after = store.account(found.account_id).await.unwrap().unwrap();
        assert_eq!((after.pin_failures, after.face_failures), (0, 1));
    })
    .await;
}

#[tokio::test]
async fn bulk_enrolment_passes_over_people_with_accounts() {
    for_each_backend(|store| async move {
        store.enrol(&account(1, 1, "d1")).await.unwrap();
        let created = store
            .enrol_many(vec![
                account(1, 2, "d2"),
                account(2, 3, "d3"),
                account(3, 4, "d4"),
            ])
            .await
            .unwrap();
        assert_eq!(created, 2);
        let counts = store.counts().await.unwrap();
        assert_eq!(
            (counts.accounts, counts.devices, counts.credentials),
            (3, 3, 3)
        );
        // Other conflicts (a device key in use) still fail the whole batch.
        let before = store.counts().await.unwrap();
        assert!(
            store
                .enrol_many(vec![account(4, 5, "d5"), account(5, 6, "d1")])
                .await
                .is_err()
        );
        assert_eq!(store.counts().await.unwrap(), before);
    })
    .await;
}

/// A status the store does not know, written behind its back, is corrupt data naming the
/// column, on every path that reads an account; never a panic, never a guess.
#[tokio::test]
async fn an_unknown_account_status_is_corrupt_data_naming_its_column() {
    for_each_backend_with_sql(|store, raw| async move {
        let enrolled = store.enrol(&account(1, 1, "d1")).await.unwrap();
        raw.drop_check("accounts", "status").await;
        raw.execute("UPDATE accounts SET status = 'frozen'").await;
        let backend = store.backend();
        assert_corrupt(
            store.account(enrolled.account_id).await,
            "accounts.status",
            backend,
        );
        assert_corrupt(
            store.account_by_device("d1").await,
            "accounts.status",
            backend,
        );
        raw.execute("UPDATE accounts SET status = 'suspended'")
            .await;
        let account = store.account(enrolled.account_id).await.unwrap().unwrap();
        assert_eq!(account.status, AccountStatus::Suspended);
    })
    .await;
}
