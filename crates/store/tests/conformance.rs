//! One conformance suite for every store implementation: each check runs against SQLite
//! and, when `CYBERID_TEST_DATABASE_URL` is set, against PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::sync::Arc;

use cyberid_domain::{NetworkNumber, PersonName, PersonRecord};
use cyberid_registry::generate::Generator;
use cyberid_store::{
    Durability, EnrolError, NewAccount, RegistryChunk, STATUS_LIST_CAPACITY, Store, StoreLocation,
};

/// Runs `check` against a fresh store of every available backend.
async fn for_each_backend<F, Fut>(check: F)
where
    F: Fn(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let sqlite = cyberid_store::open(&StoreLocation::Sqlite {
        data_dir: dir.path().to_owned(),
        durability: Durability::Full,
    })
    .await
    .unwrap();
    check(sqlite).await;

    if let Some(server) = cyberid_testkit::postgres() {
        let url = server.fresh_schema().await;
        let postgres = cyberid_store::open(&StoreLocation::Postgres { url, pool_size: 8 })
            .await
            .unwrap();
        check(postgres).await;
    }
}

fn records(count: usize, seed: u64) -> Vec<PersonRecord> {
    Generator::new(seed).take(count).collect()
}

fn number(seed: u8) -> NetworkNumber {
    NetworkNumber::from_random_bytes([seed; 16])
}

/// Unique per call, so that only the constraint a check is about can be violated.
fn fresh_pin_key_id() -> [u8; 16] {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(
        &NEXT
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .to_be_bytes(),
    );
    id
}

fn account(person: u8, number_seed: u8, device: &str) -> NewAccount {
    NewAccount {
        person_digest: [person; 32],
        network_number: number(number_seed),
        wrapped_data_key: vec![1, 2, 3],
        sealed_attributes: vec![4, 5, 6],
        pin_key_id: fresh_pin_key_id(),
        pin_verifier: "verifier".into(),
        device_thumbprint: device.into(),
        device_public_jwk: "{}".into(),
        created_at: 1_800_000_000,
        credential_expires_at: 1_900_000_000,
    }
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

/// Sends `chunks` down a channel as a registry source does, then closes it.
fn source(chunks: Vec<RegistryChunk>) -> cyberid_store::RegistryBatches {
    let (sender, receiver) = tokio::sync::mpsc::channel(chunks.len().max(1));
    for chunk in chunks {
        sender.try_send(chunk).unwrap();
    }
    receiver
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

async fn futures_join<T: Send + 'static>(
    handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut out = Vec::new();
    for handle in handles.collect::<Vec<_>>() {
        out.push(handle.await.unwrap());
    }
    out
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
async fn reopening_keeps_data_and_migrations_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let location = StoreLocation::Sqlite {
        data_dir: dir.path().to_owned(),
        durability: Durability::Full,
    };
    let store = cyberid_store::open(&location).await.unwrap();
    store.enrol(&account(1, 1, "d1")).await.unwrap();
    drop(store);
    let store = cyberid_store::open(&location).await.unwrap();
    assert_eq!(store.counts().await.unwrap().accounts, 1);

    if let Some(server) = cyberid_testkit::postgres() {
        let url = server.fresh_schema().await;
        let location = StoreLocation::Postgres { url, pool_size: 2 };
        // Two nodes starting at once must not both migrate.
        let (a, b) = tokio::join!(
            cyberid_store::open(&location),
            cyberid_store::open(&location)
        );
        a.unwrap().enrol(&account(1, 1, "d1")).await.unwrap();
        assert_eq!(b.unwrap().counts().await.unwrap().accounts, 1);
    }
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
async fn the_first_key_fingerprint_sticks() {
    for_each_backend(|store| async move {
        assert_eq!(store.max_status_index().await.unwrap(), None);
        assert_eq!(store.claim_key_fingerprint("aaa").await.unwrap(), "aaa");
        assert_eq!(store.claim_key_fingerprint("bbb").await.unwrap(), "aaa");
    })
    .await;
}

#[tokio::test]
async fn the_sqlite_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = cyberid_store::open(&StoreLocation::Sqlite {
        data_dir: data.clone(),
        durability: Durability::Full,
    })
    .await
    .unwrap();
    store.enrol(&account(1, 1, "d1")).await.unwrap();
    let mode =
        |path: std::path::PathBuf| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(data.clone()), 0o700);
    for file in ["cyberid.db", "cyberid.db-wal"] {
        assert_eq!(mode(data.join(file)), 0o600, "{file}");
    }
}

fn relying_party(client_id: &str) -> cyberid_store::RelyingParty {
    cyberid_store::RelyingParty {
        client_id: client_id.into(),
        name: "Shop".into(),
        redirect_uris: vec!["https://shop.example/cb".into()],
        sector: "shop.example".into(),
        allowed_claims: vec!["age_over_18".into()],
        legal_basis: None,
        auth_method: "client_secret_basic".into(),
        secret_digest: Some(vec![7; 32]),
        jwks: None,
        require_par: false,
        suspended: false,
        created_at: 1_800_000_000,
    }
}

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
            .insert_relying_party(&cyberid_store::RelyingParty {
                legal_basis: Some("law".into()),
                require_par: true,
                auth_method: "private_key_jwt".into(),
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

fn login(
    id: &str,
    status: cyberid_store::LoginStatus,
    par: Option<&str>,
) -> cyberid_store::NewLogin {
    cyberid_store::NewLogin {
        id: id.into(),
        client_id: "c1".into(),
        request: "{}".into(),
        par_handle: par.map(Into::into),
        browser_digest: None,
        status,
        created_at: 1_000,
        expires_at: 1_300,
    }
}

/// The first holder (device `d1`) and client `c1`, for the sign-in tests.
async fn holder_and_client(store: &dyn cyberid_store::Store) -> cyberid_store::EnrolledAccount {
    let enrolled = store.enrol(&account(1, 1, "d1")).await.unwrap();
    store
        .insert_relying_party(&relying_party("c1"))
        .await
        .unwrap();
    enrolled
}

/// The consent `account_id` has given client `c1` (it must exist).
async fn remembered(
    store: &dyn cyberid_store::Store,
    account_id: i64,
) -> cyberid_store::ConsentRecord {
    store.consent(account_id, "c1").await.unwrap().unwrap()
}

/// An L1 approval releasing `claims` at `at`.
fn approved_l1(account_id: i64, claims: &[&str], at: i64) -> cyberid_store::LoginOutcome {
    cyberid_store::LoginOutcome::Approved {
        account_id,
        level: "L1".into(),
        claims: claims.iter().map(|c| c.to_string()).collect(),
        auth_time: at,
        reset: vec![],
    }
}

/// A node asks, for all the login pages it holds at once, which sign-ins no longer wait
/// for the wallet: decided ones and expired ones, never pending or unknown ones.
#[tokio::test]
async fn ended_sign_ins_are_found_among_many() {
    use cyberid_store::{LoginOutcome, LoginStatus};
    for_each_backend(|store| async move {
        let enrolled = holder_and_client(&*store).await;
        for id in ["t1", "t2", "t3"] {
            assert!(
                store
                    .insert_login(&login(id, LoginStatus::Pending, None))
                    .await
                    .unwrap()
            );
        }
        // Thousands of ids, as a busy node holds: the known ones among unknown ones and last.
        let mut ids: Vec<String> = (0..2_500).map(|n| format!("unknown{n}")).collect();
        ids[999] = "t1".into();
        ids[1_000] = "t2".into();
        ids[2_499] = "t3".into();
        assert!(store.ended_sign_ins(&ids, 1_010).await.unwrap().is_empty());
        assert!(
            store
                .finish_login("t1", &approved_l1(enrolled.account_id, &[], 1_010), 1_010)
                .await
                .unwrap()
        );
        let declined = LoginOutcome::Refused {
            status: LoginStatus::Declined,
            error: "access_denied".into(),
        };
        assert!(store.finish_login("t3", &declined, 1_011).await.unwrap());
        let mut ended = store.ended_sign_ins(&ids, 1_011).await.unwrap();
        ended.sort();
        assert_eq!(ended, ["t1", "t3"], "{}", store.backend());
        // At its expiry the pending one has ended too.
        let mut ended = store.ended_sign_ins(&ids, 1_300).await.unwrap();
        ended.sort();
        assert_eq!(ended, ["t1", "t2", "t3"]);
        assert!(store.ended_sign_ins(&[], 1_300).await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn sign_ins_are_created_and_claimed_only_for_active_clients() {
    use cyberid_store::LoginStatus;
    for_each_backend(|store| async move {
        // Unknown client: nothing stored.
        assert!(
            !store
                .insert_login(&login("t1", LoginStatus::Pending, None))
                .await
                .unwrap()
        );
        assert!(store.login("t1").await.unwrap().is_none());
        store
            .insert_relying_party(&relying_party("c1"))
            .await
            .unwrap();
        assert!(
            store
                .insert_login(&login("t2", LoginStatus::Pushed, Some("h2")))
                .await
                .unwrap()
        );
        store.set_relying_party_suspended("c1", true).await.unwrap();
        assert!(
            !store
                .insert_login(&login("t3", LoginStatus::Pending, None))
                .await
                .unwrap()
        );
        assert!(store.login("t3").await.unwrap().is_none());
        let claim = || store.claim_pushed_login("h2", "c1", b"browser", 1_010, 1_200);
        assert!(claim().await.unwrap().is_none());
        assert_eq!(
            store.login("t2").await.unwrap().unwrap().status,
            LoginStatus::Pushed
        );
        store
            .set_relying_party_suspended("c1", false)
            .await
            .unwrap();
        assert_eq!(
            claim().await.unwrap().unwrap().status,
            LoginStatus::Pending,
            "{}",
            store.backend()
        );
        assert!(
            store
                .insert_login(&login("t3", LoginStatus::Pending, None))
                .await
                .unwrap()
        );
    })
    .await;
}

#[tokio::test]
async fn a_sign_in_is_approved_once_and_its_code_redeemed_once() {
    use cyberid_store::{CodeRedemption, LoginOutcome, LoginStatus};
    for_each_backend(|store| async move {
        let enrolled = holder_and_client(&*store).await;
        store
            .insert_login(&login("t1", LoginStatus::Pending, None))
            .await
            .unwrap();
        // The sign-in with its client in one read.
        let (with_client, rp) = store.login_with_client("t1").await.unwrap().unwrap();
        assert_eq!(with_client, store.login("t1").await.unwrap().unwrap());
        assert_eq!(rp, store.relying_party("c1").await.unwrap().unwrap());
        assert!(store.login_with_client("t0").await.unwrap().is_none());
        let (_, _, account) = store
            .login_with_client_and_account("t1")
            .await
            .unwrap()
            .unwrap();
        assert!(account.is_none(), "no account before approval");
        // A sign-in and a device key, each found or not, in one read.
        let device = store.account_by_device("d1").await.unwrap().unwrap();
        let (login_found, device_found) = store.login_and_device("t1", "d1").await.unwrap();
        assert_eq!(login_found, Some(with_client.clone()));
        assert_eq!(
            device_found.map(|(a, d)| (a, d.public_jwk)),
            Some((device.0.clone(), device.1.public_jwk.clone()))
        );
        let (login_found, device_found) = store.login_and_device("t0", "d1").await.unwrap();
        assert!(login_found.is_none() && device_found.is_some());
        let (login_found, device_found) = store.login_and_device("t1", "d0").await.unwrap();
        assert!(login_found.is_some() && device_found.is_none());
        assert!(matches!(
            store.redeem_code("t1", 1_010).await.unwrap(),
            CodeRedemption::NotApproved
        ));

        let approved = LoginOutcome::Approved {
            account_id: enrolled.account_id,
            level: "L2".into(),
            claims: vec!["age_over_18".into()],
            auth_time: 1_005,
            reset: vec![cyberid_store::Factor::Pin],
        };
        // Failures counted before: the approval clears the factor it proved, only that one.
        for factor in [cyberid_store::Factor::Pin, cyberid_store::Factor::Face] {
            store
                .count_attempt(enrolled.account_id, factor, 5)
                .await
                .unwrap();
        }
        // Not after expiry; then exactly once.
        assert!(!store.finish_login("t1", &approved, 1_300).await.unwrap());
        let counts = store.account(enrolled.account_id).await.unwrap().unwrap();
        assert_eq!((counts.pin_failures, counts.face_failures), (1, 1));
        assert!(store.finish_login("t1", &approved, 1_010).await.unwrap());
        let counts = store.account(enrolled.account_id).await.unwrap().unwrap();
        assert_eq!((counts.pin_failures, counts.face_failures), (0, 1));
        let declined = LoginOutcome::Refused {
            status: LoginStatus::Declined,
            error: "access_denied".into(),
        };
        assert!(!store.finish_login("t1", &declined, 1_011).await.unwrap());
        let record = store.login("t1").await.unwrap().unwrap();
        assert_eq!(record.status, LoginStatus::Approved);
        assert_eq!(record.claims, vec!["age_over_18".to_owned()]);
        assert_eq!(record.level.as_deref(), Some("L2"));
        // The approval remembered the consent, in its own transaction.
        let consent = remembered(&*store, enrolled.account_id).await;
        assert_eq!(
            (consent.claims, consent.granted_at),
            (vec!["age_over_18".to_owned()], 1_010)
        );
        // Later approvals add what is new, keep the order, and write only when it grows.
        for (id, claims, at, expected, granted_at) in [
            (
                "t5",
                vec!["region", "age_over_18"],
                1_050,
                vec!["age_over_18", "region"],
                1_050,
            ),
            (
                "t6",
                vec!["region"],
                1_060,
                vec!["age_over_18", "region"],
                1_050,
            ),
            ("t7", vec![], 1_070, vec!["age_over_18", "region"], 1_050),
        ] {
            store
                .insert_login(&login(id, LoginStatus::Pending, None))
                .await
                .unwrap();
            let outcome = approved_l1(enrolled.account_id, &claims, at);
            assert!(store.finish_login(id, &outcome, at).await.unwrap());
            let consent = remembered(&*store, enrolled.account_id).await;
            assert_eq!(
                (consent.claims, consent.granted_at),
                (
                    expected.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
                    granted_at
                ),
                "{id}"
            );
        }
        // A sign-in that was not pending any more remembers nothing.
        let late = approved_l1(enrolled.account_id, &["name"], 1_080);
        assert!(!store.finish_login("t5", &late, 1_080).await.unwrap());
        let consent = remembered(&*store, enrolled.account_id).await;
        assert!(!consent.claims.contains(&"name".to_owned()));

        match store.redeem_code("t1", 1_020).await.unwrap() {
            CodeRedemption::Redeemed { login, account } => {
                assert_eq!(login.code_redeemed_at, Some(1_020));
                assert_eq!(
                    account.map(|a| *a),
                    store.account(enrolled.account_id).await.unwrap()
                );
                let (_, rp, account) = store
                    .login_with_client_and_account("t1")
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(rp.client_id, "c1");
                assert_eq!(account, store.account(enrolled.account_id).await.unwrap());
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            store.redeem_code("t1", 1_021).await.unwrap(),
            CodeRedemption::AlreadyRedeemed
        ));

        // A declined sign-in keeps its error and never yields a code.
        store
            .insert_login(&login("t2", LoginStatus::Pending, None))
            .await
            .unwrap();
        assert!(store.finish_login("t2", &declined, 1_010).await.unwrap());
        let record = store.login("t2").await.unwrap().unwrap();
        assert_eq!(
            (record.status, record.error.as_deref()),
            (LoginStatus::Declined, Some("access_denied"))
        );
        assert!(matches!(
            store.redeem_code("t2", 1_020).await.unwrap(),
            CodeRedemption::NotApproved
        ));

        // A pushed sign-in is claimed by one browser, once, before it expires.
        store
            .insert_login(&login("t3", LoginStatus::Pushed, Some("h3")))
            .await
            .unwrap();
        assert!(
            store
                .claim_pushed_login("h3", "other", b"b", 1_010, 1_400)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .claim_pushed_login("h3", "c1", b"b", 1_300, 1_400)
                .await
                .unwrap()
                .is_none()
        );
        let claimed = store
            .claim_pushed_login("h3", "c1", b"b", 1_010, 1_400)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (claimed.status, claimed.expires_at),
            (LoginStatus::Pending, 1_400)
        );
        assert_eq!(claimed.browser_digest.as_deref(), Some(&b"b"[..]));
        assert!(
            store
                .claim_pushed_login("h3", "c1", b"x", 1_011, 1_400)
                .await
                .unwrap()
                .is_none()
        );
    })
    .await;
}

#[tokio::test]
async fn the_one_statement_redemption_holds_every_condition() {
    use cyberid_store::{CodeRedemption, LoginStatus};
    for_each_backend(|store| async move {
        let enrolled = holder_and_client(&*store).await;
        let mut new_login = login("t1", LoginStatus::Pending, None);
        new_login.request =
            r#"{"redirect_uri":"https://rp.example/cb","code_challenge":"chal-1"}"#.into();
        assert!(store.insert_login(&new_login).await.unwrap());
        let redeem = |client: &'static str, uri: &'static str, challenge: &'static str| {
            let store = Arc::clone(&store);
            async move {
                store
                    .redeem_code_if("t1", client, uri, challenge, 1_020)
                    .await
                    .unwrap()
            }
        };
        let right = ("c1", "https://rp.example/cb", "chal-1");
        // Not approved yet.
        assert!(redeem(right.0, right.1, right.2).await.is_none());
        let approved = approved_l1(enrolled.account_id, &[], 1_005);
        assert!(store.finish_login("t1", &approved, 1_010).await.unwrap());
        // Another client, another redirect URI, another challenge: nothing changes.
        assert!(redeem("c2", right.1, right.2).await.is_none());
        assert!(
            redeem(right.0, "https://rp.example/other", right.2)
                .await
                .is_none()
        );
        assert!(redeem(right.0, right.1, "chal-2").await.is_none());
        // A suspended client: nothing changes.
        store.set_relying_party_suspended("c1", true).await.unwrap();
        assert!(redeem(right.0, right.1, right.2).await.is_none());
        assert!(
            store
                .login("t1")
                .await
                .unwrap()
                .unwrap()
                .code_redeemed_at
                .is_none()
        );
        store
            .set_relying_party_suspended("c1", false)
            .await
            .unwrap();
        let (redeemed, account) = redeem(right.0, right.1, right.2).await.unwrap();
        assert_eq!(
            redeemed.code_redeemed_at,
            Some(1_020),
            "{}",
            store.backend()
        );
        assert_eq!(account, store.account(enrolled.account_id).await.unwrap());
        // Once only; the careful path then sees the replay.
        assert!(redeem(right.0, right.1, right.2).await.is_none());
        assert!(matches!(
            store.redeem_code("t1", 1_021).await.unwrap(),
            CodeRedemption::AlreadyRedeemed
        ));
    })
    .await;
}

#[tokio::test]
async fn a_replayed_code_is_marked_once() {
    use cyberid_store::LoginStatus;
    for_each_backend(|store| async move {
        store
            .insert_relying_party(&relying_party("c1"))
            .await
            .unwrap();
        store
            .insert_login(&login("t1", LoginStatus::Pending, None))
            .await
            .unwrap();
        assert_eq!(
            store.login("t1").await.unwrap().unwrap().code_replayed_at,
            None
        );
        assert!(store.mark_code_replayed("t1", 1_500).await.unwrap());
        assert!(!store.mark_code_replayed("t1", 1_501).await.unwrap());
        assert_eq!(
            store.login("t1").await.unwrap().unwrap().code_replayed_at,
            Some(1_500)
        );
        assert!(!store.mark_code_replayed("nope", 1_500).await.unwrap());
    })
    .await;
}

#[tokio::test]
async fn factor_attempts_lock_at_the_limit_and_reset() {
    use cyberid_store::Factor;
    for_each_backend(|store| async move {
        let enrolled = store.enrol(&account(1, 1, "d1")).await.unwrap();
        let (found, device) = store.account_by_device("d1").await.unwrap().unwrap();
        assert_eq!(
            (found.account_id, device.device_id),
            (enrolled.account_id, enrolled.device_id)
        );
        assert_eq!(found.status, "active");
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
async fn consents_are_remembered_merged_and_revoked() {
    use cyberid_store::LoginStatus;
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
        let approve = |id: &'static str, client: &'static str, claims: &[&str], at: i64| {
            let store = store.clone();
            let outcome = approved_l1(a, claims, at);
            async move {
                let mut new = login(id, LoginStatus::Pending, None);
                new.client_id = client.into();
                assert!(store.insert_login(&new).await.unwrap());
                assert!(store.finish_login(id, &outcome, at).await.unwrap());
            }
        };
        approve("s1", "c1", &["age_over_18"], 1_010).await;
        approve("s2", "c1", &["age_over_18", "region"], 1_020).await;
        approve("s3", "c2", &[], 1_030).await;
        let consent = store.consent(a, "c1").await.unwrap().unwrap();
        assert_eq!((consent.claims.len(), consent.granted_at), (2, 1_020));
        assert_eq!(store.consents(a).await.unwrap().len(), 2);
        assert!(store.revoke_consent(a, "c1").await.unwrap());
        assert!(!store.revoke_consent(a, "c1").await.unwrap());
        assert_eq!(store.consents(a).await.unwrap().len(), 1);
        // After a revocation the next approval starts the remembered set again.
        approve("s4", "c1", &["region"], 1_040).await;
        let consent = store.consent(a, "c1").await.unwrap().unwrap();
        assert_eq!(consent.claims, vec!["region".to_owned()]);
    })
    .await;
}

#[tokio::test]
async fn assertions_are_single_use_and_expired_rows_are_purged() {
    use cyberid_store::LoginStatus;
    for_each_backend(|store| async move {
        assert!(store.use_client_assertion("c1", "j1", 2_000).await.unwrap());
        assert!(!store.use_client_assertion("c1", "j1", 2_000).await.unwrap());
        assert!(store.use_client_assertion("c2", "j1", 2_000).await.unwrap());

        store
            .insert_relying_party(&relying_party("c1"))
            .await
            .unwrap();
        store
            .insert_login(&login("old", LoginStatus::Pending, None))
            .await
            .unwrap();
        let account = store.enrol(&account(1, 1, "d1")).await.unwrap().account_id;
        assert_eq!(
            store
                .count_pin_evaluation(account, "old", 5, b"digest")
                .await
                .unwrap(),
            Some(1)
        );
        let marked = store.login("old").await.unwrap().unwrap();
        assert!(marked.pin_evaluated);
        assert_eq!(marked.approval_digest.as_deref(), Some(&b"digest"[..]));
        assert_eq!(
            store
                .count_pin_evaluation(account, "old", 1, b"d")
                .await
                .unwrap(),
            None,
            "locked at the limit"
        );
        // Nothing is purged before it expires.
        assert_eq!(store.purge_expired(1_000, 1_000, 100).await.unwrap(), 0);
        // More rows than a batch: purged batch after batch until none is left.
        for i in 0..4 {
            assert!(
                store
                    .use_client_assertion("c3", &format!("b{i}"), 2_000)
                    .await
                    .unwrap()
            );
        }
        let purged = store.purge_expired(3_000, 3_000, 2).await.unwrap();
        assert_eq!(purged, 7, "six assertion ids and one sign-in");
        assert_eq!(store.purge_expired(3_000, 3_000, 2).await.unwrap(), 0);
        // Sign-ins are kept for their retention even when their assertions are gone.
        assert!(store.login("old").await.unwrap().is_none());
        assert!(
            store.use_client_assertion("c1", "j1", 4_000).await.unwrap(),
            "purged ids are free"
        );
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
