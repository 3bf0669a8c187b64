//! The store as a whole: opening, migrating, the platform key fingerprint, file modes.

use cyberid_domain::{AssuranceLevel, Claim};
use cyberid_store::{Durability, LoginStatus, SignInRequest, StoreLocation, Timeouts};

use crate::{RawDatabase, account, approved_l1, for_each_backend};

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
        let location = StoreLocation::Postgres {
            url,
            pool_size: 2,
            timeouts: Timeouts::default(),
        };
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

/// The SQL of `backend`'s migrations up to and including `last`, in order.
fn migrations_up_to(backend: &str, last: usize) -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/migrations")
        .join(backend);
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .take(last)
        .map(|file| std::fs::read_to_string(file).unwrap())
        .collect()
}

/// Sign-ins in flight, a holder and a consent as schema version 6 kept them: the request
/// as the platform's JSON, the released claims and the consent as JSON arrays, a refusal's
/// OAuth error beside its status.
const ROWS_AT_VERSION_6: &str = r#"
INSERT INTO relying_parties (client_id, name, redirect_uris, sector, allowed_claims,
    legal_basis, auth_method, secret_digest, jwks, require_par, status, created_at)
VALUES ('c1', 'Shop', '["https://shop.example/cb"]', 'shop.example',
    '["age_over_18","region"]', NULL, 'client_secret_basic', NULL, NULL, FALSE, 'active', 1000);
INSERT INTO accounts (person_digest, network_number, pin_key_id, pin_verifier, created_at)
VALUES (DIGEST, '23456789ABCD', PIN_KEY_ID, 'verifier', 1000);
INSERT INTO login_transactions (id, client_id, request, status, created_at, expires_at)
VALUES ('pending', 'c1', '{"client_id":"c1","redirect_uri":"https://shop.example/cb","state":"st \"1\"","nonce":"no","claims":["age_over_18","region"],"id_token_claims":["age_over_18"],"level":"L2","code_challenge":"chal-1","force_consent":true}',
    'pending', 1000, 1300);
INSERT INTO login_transactions (id, client_id, request, status, account_id, level, claims,
    auth_time, created_at, expires_at)
VALUES ('approved', 'c1', '{"client_id":"c1","redirect_uri":"https://shop.example/cb","state":null,"nonce":null,"claims":["region"],"id_token_claims":[],"level":"L1","code_challenge":"chal-2","force_consent":false}',
    'approved', 1, 'L1', '["region"]', 1010, 1000, 1300);
INSERT INTO login_transactions (id, client_id, request, status, error, created_at, expires_at)
VALUES ('failed', 'c1', '{"client_id":"c1","redirect_uri":"https://shop.example/cb","state":null,"nonce":null,"claims":[],"id_token_claims":[],"level":"L3","code_challenge":"chal-3","force_consent":false}',
    'failed', 'unmet_authentication_requirements', 1000, 1300);
INSERT INTO login_transactions (id, client_id, request, status, created_at, expires_at)
VALUES ('no-challenge', 'c1', '{"client_id":"c1","redirect_uri":"https://shop.example/cb","claims":[],"id_token_claims":[],"level":"L1","force_consent":false}',
    'pending', 1000, 1300);
INSERT INTO consents (account_id, client_id, claims, granted_at)
VALUES (1, 'c1', '["region","age_over_18"]', 1010);
"#;

/// Migration 7 turns the JSON request of sign-ins in flight into columns: they carry on
/// after an upgrade, and their codes are redeemed by the columns.
#[tokio::test]
async fn migration_7_converts_sign_ins_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = RawDatabase::Sqlite(dir.path().join(cyberid_store::sqlite::DATABASE_FILE));
    let mut backends = vec![(
        sqlite,
        StoreLocation::Sqlite {
            data_dir: dir.path().to_owned(),
            durability: Durability::Full,
        },
    )];
    if let Some(server) = cyberid_testkit::postgres() {
        let url = server.fresh_schema().await;
        backends.push((
            RawDatabase::Postgres(url.clone()),
            StoreLocation::Postgres {
                url,
                pool_size: 2,
                timeouts: Timeouts::default(),
            },
        ));
    }
    for (raw, location) in backends {
        let backend = raw.pick("sqlite", "postgres");
        let mut old = migrations_up_to(backend, 6);
        old.push(
            "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL);
             INSERT INTO schema_migrations (version, applied_at)
             VALUES (1, 0), (2, 0), (3, 0), (4, 0), (5, 0), (6, 0);"
                .into(),
        );
        old.push(
            ROWS_AT_VERSION_6
                .replace("DIGEST", raw.pick("x'01'", "'\\x01'::bytea"))
                .replace("PIN_KEY_ID", raw.pick("x'02'", "'\\x02'::bytea")),
        );
        raw.execute(&old.join(";\n")).await;

        let store = cyberid_store::open(&location).await.unwrap();
        let pending = store.login("pending").await.unwrap().unwrap();
        assert_eq!(
            pending.request,
            SignInRequest {
                client_id: "c1".into(),
                redirect_uri: "https://shop.example/cb".into(),
                state: Some("st \"1\"".into()),
                nonce: Some("no".into()),
                claims: vec![Claim::AgeOver18, Claim::Region],
                id_token_claims: vec![Claim::AgeOver18],
                level: AssuranceLevel::L2,
                code_challenge: "chal-1".into(),
                force_consent: true,
            },
            "{backend}"
        );
        assert_eq!(
            (pending.status, pending.claims.len()),
            (LoginStatus::Pending, 0)
        );
        // A request the platform could not have written (no PKCE challenge) is gone, on
        // both backends alike.
        assert_eq!(
            store.login("no-challenge").await.unwrap(),
            None,
            "{backend}"
        );
        let failed = store.login("failed").await.unwrap().unwrap();
        assert_eq!(failed.status, LoginStatus::Failed);
        assert_eq!(failed.request.level, AssuranceLevel::L3);

        let (approved, account) = store
            .redeem_code_if("approved", "c1", "https://shop.example/cb", "chal-2", 1_020)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(approved.request.state, None);
        assert_eq!(approved.request.claims, vec![Claim::Region]);
        assert_eq!(approved.claims, vec![Claim::Region]);
        assert_eq!(approved.level, Some(AssuranceLevel::L1));
        let holder = account.unwrap().account_id;

        // The consent converted too, and keeps growing.
        let consent = store.consent(holder, "c1").await.unwrap().unwrap();
        assert_eq!(consent.claims, vec![Claim::Region, Claim::AgeOver18]);
        let outcome = approved_l1(holder, &[Claim::AgeOver18, Claim::Name], 1_030);
        assert!(
            store
                .finish_login("pending", "d1", &outcome, 1_030)
                .await
                .unwrap()
        );
        let consent = store.consent(holder, "c1").await.unwrap().unwrap();
        assert_eq!(
            consent.claims,
            vec![Claim::Region, Claim::AgeOver18, Claim::Name],
            "{backend}"
        );
    }
}
