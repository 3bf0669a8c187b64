//! Sign-ins: creation for active clients, claiming pushed ones, the decision, the code's
//! single redemption, replays, PIN evaluations and purging.

use std::sync::Arc;

use cyberid_domain::{AssuranceLevel, Claim};
use cyberid_store::{
    CodeRedemption, Factor, LoginOutcome, LoginStatus, PinCount, PurgeCutoffs, Refusal,
    SignInRequest,
};

use crate::{
    account, approved_l1, assert_corrupt, for_each_backend, for_each_backend_with_sql,
    holder_and_client, login, relying_party, remembered, request,
};

/// A node asks, for all the login pages it holds at once, which sign-ins no longer wait
/// for the wallet: decided ones and expired ones, never pending or unknown ones.
#[tokio::test]
async fn ended_sign_ins_are_found_among_many() {
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
                .finish_login(
                    "t1",
                    "d1",
                    &approved_l1(enrolled.account_id, &[], 1_010),
                    1_010
                )
                .await
                .unwrap()
        );
        let declined = LoginOutcome::Refused(Refusal::Declined);
        assert!(
            store
                .finish_login("t3", "d1", &declined, 1_011)
                .await
                .unwrap()
        );
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
            level: AssuranceLevel::L2,
            claims: vec![Claim::AgeOver18],
            auth_time: 1_005,
            reset: vec![Factor::Pin],
        };
        // Failures counted before: the approval clears the factor it proved, only that one.
        for factor in [Factor::Pin, Factor::Face] {
            store
                .count_attempt(enrolled.account_id, factor, 5)
                .await
                .unwrap();
        }
        // Not after expiry; then exactly once.
        assert!(
            !store
                .finish_login("t1", "d1", &approved, 1_300)
                .await
                .unwrap()
        );
        let counts = store.account(enrolled.account_id).await.unwrap().unwrap();
        assert_eq!((counts.pin_failures, counts.face_failures), (1, 1));
        assert!(
            store
                .finish_login("t1", "d1", &approved, 1_010)
                .await
                .unwrap()
        );
        let counts = store.account(enrolled.account_id).await.unwrap().unwrap();
        assert_eq!((counts.pin_failures, counts.face_failures), (0, 1));
        let declined = LoginOutcome::Refused(Refusal::Declined);
        assert!(
            !store
                .finish_login("t1", "d1", &declined, 1_011)
                .await
                .unwrap()
        );
        let record = store.login("t1").await.unwrap().unwrap();
        assert_eq!(record.status, LoginStatus::Approved);
        assert_eq!(record.claims, vec![Claim::AgeOver18]);
        assert_eq!(record.level, Some(AssuranceLevel::L2));
        // The approval remembered the consent, in its own transaction.
        let consent = remembered(&*store, enrolled.account_id).await;
        assert_eq!(
            (consent.claims, consent.granted_at),
            (vec![Claim::AgeOver18], 1_010)
        );
        // Later approvals add what is new, keep the order, and write only when it grows.
        for (id, claims, at, expected, granted_at) in [
            (
                "t5",
                vec![Claim::Region, Claim::AgeOver18],
                1_050,
                vec![Claim::AgeOver18, Claim::Region],
                1_050,
            ),
            (
                "t6",
                vec![Claim::Region],
                1_060,
                vec![Claim::AgeOver18, Claim::Region],
                1_050,
            ),
            (
                "t7",
                vec![],
                1_070,
                vec![Claim::AgeOver18, Claim::Region],
                1_050,
            ),
        ] {
            store
                .insert_login(&login(id, LoginStatus::Pending, None))
                .await
                .unwrap();
            let outcome = approved_l1(enrolled.account_id, &claims, at);
            assert!(store.finish_login(id, "d1", &outcome, at).await.unwrap());
            let consent = remembered(&*store, enrolled.account_id).await;
            assert_eq!(
                (consent.claims, consent.granted_at),
                (expected, granted_at),
                "{id}"
            );
        }
        // A sign-in that was not pending any more remembers nothing.
        let late = approved_l1(enrolled.account_id, &[Claim::Name], 1_080);
        assert!(!store.finish_login("t5", "d1", &late, 1_080).await.unwrap());
        let consent = remembered(&*store, enrolled.account_id).await;
        assert!(!consent.claims.contains(&Claim::Name));

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

        // A declined sign-in says so and never yields a code.
        store
            .insert_login(&login("t2", LoginStatus::Pending, None))
            .await
            .unwrap();
        assert!(
            store
                .finish_login("t2", "d1", &declined, 1_010)
                .await
                .unwrap()
        );
        let record = store.login("t2").await.unwrap().unwrap();
        assert_eq!(record.status, LoginStatus::Declined);
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
    for_each_backend(|store| async move {
        let enrolled = holder_and_client(&*store).await;
        let mut new_login = login("t1", LoginStatus::Pending, None);
        new_login.request.redirect_uri = "https://rp.example/cb".into();
        new_login.request.code_challenge = "chal-1".into();
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
        assert!(
            store
                .finish_login("t1", "d1", &approved, 1_010)
                .await
                .unwrap()
        );
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
async fn assertions_are_single_use_and_expired_rows_are_purged() {
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
                .count_pin_evaluation(account, "old", "d1", 5, b"digest")
                .await
                .unwrap(),
            PinCount::Counted(1)
        );
        let marked = store.login("old").await.unwrap().unwrap();
        assert!(marked.pin_evaluated);
        assert_eq!(marked.approval_digest.as_deref(), Some(&b"digest"[..]));
        assert_eq!(
            store
                .count_pin_evaluation(account, "old", "d1", 1, b"d")
                .await
                .unwrap(),
            PinCount::Locked,
            "locked at the limit"
        );
        // An evaluation that was not counted does not mark the sign-in either.
        assert_eq!(
            store
                .login("old")
                .await
                .unwrap()
                .unwrap()
                .approval_digest
                .as_deref(),
            Some(&b"digest"[..])
        );
        // Nothing is purged before it expires.
        assert_eq!(
            store
                .purge_expired(cutoffs(1_000, 1_000), 100)
                .await
                .unwrap(),
            0
        );
        // More rows than a batch: purged batch after batch until none is left.
        for i in 0..4 {
            assert!(
                store
                    .use_client_assertion("c3", &format!("b{i}"), 2_000)
                    .await
                    .unwrap()
            );
        }
        let purged = store.purge_expired(cutoffs(3_000, 3_000), 2).await.unwrap();
        assert_eq!(purged, 7, "six assertion ids and one sign-in");
        assert_eq!(
            store.purge_expired(cutoffs(3_000, 3_000), 2).await.unwrap(),
            0
        );
        // Sign-ins are kept for their retention even when their assertions are gone.
        assert!(store.login("old").await.unwrap().is_none());
        assert!(
            store.use_client_assertion("c1", "j1", 4_000).await.unwrap(),
            "purged ids are free"
        );
    })
    .await;
}

/// Cutoffs that delete every sign-in expired before `sign_ins_before`, approved or not.
fn cutoffs(now: i64, sign_ins_before: i64) -> PurgeCutoffs {
    PurgeCutoffs {
        now,
        unfinished_before: sign_ins_before,
        approved_before: sign_ins_before,
    }
}

/// Sign-ins never approved (anyone can start one) go soon after they expire; approved ones,
/// the holder's login records, stay for their own retention.
#[tokio::test]
async fn unfinished_sign_ins_are_purged_before_approved_ones() {
    for_each_backend(|store| async move {
        store
            .insert_relying_party(&relying_party("c1"))
            .await
            .unwrap();
        let account = store.enrol(&account(1, 1, "d1")).await.unwrap().account_id;
        for (id, status) in [
            ("pending", LoginStatus::Pending),
            ("pushed", LoginStatus::Pushed),
            ("declined", LoginStatus::Pending),
            ("approved", LoginStatus::Pending),
        ] {
            assert!(store.insert_login(&login(id, status, None)).await.unwrap());
        }
        let expires_at = store.login("pending").await.unwrap().unwrap().expires_at;
        let decided_at = expires_at - 1;
        assert!(
            store
                .finish_login(
                    "declined",
                    "d1",
                    &LoginOutcome::Refused(Refusal::Declined),
                    decided_at
                )
                .await
                .unwrap()
        );
        assert!(
            store
                .finish_login(
                    "approved",
                    "d1",
                    &approved_l1(account, &[], decided_at),
                    decided_at
                )
                .await
                .unwrap()
        );
        let after = expires_at + 1;
        let purge = PurgeCutoffs {
            now: after,
            unfinished_before: after,
            approved_before: expires_at - 100,
        };
        assert_eq!(store.purge_expired(purge, 100).await.unwrap(), 3);
        for gone in ["pending", "pushed", "declined"] {
            assert!(store.login(gone).await.unwrap().is_none(), "{gone} purged");
        }
        assert!(store.login("approved").await.unwrap().is_some());
        let later = PurgeCutoffs {
            approved_before: after,
            ..purge
        };
        assert_eq!(store.purge_expired(later, 100).await.unwrap(), 1);
        assert!(store.login("approved").await.unwrap().is_none());
    })
    .await;
}

/// Every field of the request a sign-in was started with comes back as it went in, on
/// every path that reads a sign-in.
#[tokio::test]
async fn every_field_of_a_sign_in_request_round_trips() {
    for_each_backend(|store| async move {
        let enrolled = holder_and_client(&*store).await;
        let full = SignInRequest {
            client_id: "c1".into(),
            redirect_uri: "https://shop.example/cb?from=login&x=%20".into(),
            state: Some("state with spaces, ünïcode and \"quotes\"".into()),
            nonce: Some("n-0S6_WzA2Mj".into()),
            claims: vec![Claim::Region, Claim::AgeOver18, Claim::Name],
            id_token_claims: vec![Claim::Name, Claim::AgeOver18],
            level: AssuranceLevel::L3,
            code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
            force_consent: true,
        };
        let minimal = SignInRequest {
            state: None,
            nonce: None,
            claims: Vec::new(),
            id_token_claims: Vec::new(),
            level: AssuranceLevel::L1,
            force_consent: false,
            ..request()
        };
        for (id, sent) in [("full", &full), ("minimal", &minimal)] {
            let mut new = login(id, LoginStatus::Pending, None);
            new.request = sent.clone();
            assert!(store.insert_login(&new).await.unwrap());
            let backend = store.backend();
            let read = store.login(id).await.unwrap().unwrap();
            assert_eq!(&read.request, sent, "{backend}: login");
            let (with_client, _) = store.login_with_client(id).await.unwrap().unwrap();
            assert_eq!(&with_client.request, sent, "{backend}: login_with_client");
            let (with_device, _) = store.login_and_device(id, "d1").await.unwrap();
            assert_eq!(
                &with_device.unwrap().request,
                sent,
                "{backend}: login_and_device"
            );
            let approved = approved_l1(enrolled.account_id, &sent.claims, 1_010);
            assert!(
                store
                    .finish_login(id, "d1", &approved, 1_010)
                    .await
                    .unwrap()
            );
            let (redeemed, _) = store
                .redeem_code_if(id, "c1", &sent.redirect_uri, &sent.code_challenge, 1_020)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(&redeemed.request, sent, "{backend}: redeem_code_if");
            assert_eq!(redeemed.claims, sent.claims);
            let (with_account, _, _) = store
                .login_with_client_and_account(id)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(&with_account.request, sent, "{backend}: with account");
        }
        // A pushed request, claimed by its browser.
        let mut pushed = login("pushed", LoginStatus::Pushed, Some("h1"));
        pushed.request = full.clone();
        assert!(store.insert_login(&pushed).await.unwrap());
        let claimed = store
            .claim_pushed_login("h1", "c1", b"browser", 1_010, 1_300)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(claimed.request, full);
    })
    .await;
}

/// A status, level or claim the store does not know, written behind its back, is corrupt
/// data naming the column; never a panic, never a guess.
#[tokio::test]
async fn unknown_values_in_a_sign_in_are_corrupt_data_naming_their_column() {
    for_each_backend_with_sql(|store, raw| async move {
        holder_and_client(&*store).await;
        assert!(
            store
                .insert_login(&login("t1", LoginStatus::Pending, None))
                .await
                .unwrap()
        );
        let backend = store.backend();
        let unknown_claim = raw.pick("'[\"shoe_size\"]'", "'{shoe_size}'");
        for (column, value) in [
            ("level", "'L9'"),
            ("required_level", "'l1'"),
            ("requested_claims", unknown_claim),
            ("claims", unknown_claim),
        ] {
            raw.execute(&format!(
                "UPDATE login_transactions SET {column} = {value} WHERE id = 't1'"
            ))
            .await;
            let named = format!("login_transactions.{column}");
            assert_corrupt(store.login("t1").await, &named, backend);
            assert_corrupt(store.login_with_client("t1").await, &named, backend);
            raw.execute(&format!(
                "UPDATE login_transactions SET {column} = {} WHERE id = 't1'",
                match column {
                    "level" => "NULL",
                    "required_level" => "'L1'",
                    _ => raw.pick("'[]'", "'{}'"),
                }
            ))
            .await;
            store.login("t1").await.unwrap().unwrap();
        }
        raw.drop_check("login_transactions", "status").await;
        raw.execute("UPDATE login_transactions SET status = 'lost' WHERE id = 't1'")
            .await;
        assert_corrupt(
            store.login("t1").await,
            "login_transactions.status",
            backend,
        );
    })
    .await;
}

/// The first device to act on a sign-in takes it up: another device's PIN evaluation counts
/// nothing and changes nothing, and its decision does not end the sign-in; the holder's
/// device goes on. Two devices deciding at once: exactly one wins.
#[tokio::test]
async fn a_sign_in_is_the_first_device_s() {
    for_each_backend(|store| async move {
        store
            .insert_relying_party(&relying_party("c1"))
            .await
            .unwrap();
        let holder = store
            .enrol(&account(1, 1, "holder"))
            .await
            .unwrap()
            .account_id;
        let other = store
            .enrol(&account(2, 2, "other"))
            .await
            .unwrap()
            .account_id;
        assert!(
            store
                .insert_login(&login("s1", LoginStatus::Pending, None))
                .await
                .unwrap()
        );
        assert_eq!(
            store
                .count_pin_evaluation(holder, "s1", "holder", 5, b"a")
                .await
                .unwrap(),
            PinCount::Counted(1)
        );
        let taken = store.login("s1").await.unwrap().unwrap();
        assert_eq!(taken.device_thumbprint.as_deref(), Some("holder"));
        assert_eq!(
            store
                .count_pin_evaluation(other, "s1", "other", 5, b"b")
                .await
                .unwrap(),
            PinCount::TakenByAnotherDevice
        );
        let declined = LoginOutcome::Refused(Refusal::Declined);
        assert!(
            !store
                .finish_login("s1", "other", &declined, 1_010)
                .await
                .unwrap()
        );
        let after = store.login("s1").await.unwrap().unwrap();
        assert_eq!(after.status, LoginStatus::Pending);
        assert_eq!(
            after.approval_digest.as_deref(),
            Some(&b"a"[..]),
            "unchanged"
        );
        let other_account = store.account(other).await.unwrap().unwrap();
        assert_eq!(
            other_account.pin_failures, 0,
            "nothing counted for the other device"
        );
        assert_eq!(
            store
                .count_pin_evaluation(holder, "s1", "holder", 5, b"c")
                .await
                .unwrap(),
            PinCount::Counted(2)
        );
        assert!(
            store
                .finish_login("s1", "holder", &approved_l1(holder, &[], 1_010), 1_010)
                .await
                .unwrap()
        );

        // Two devices decide a fresh sign-in at the same moment: one wins.
        assert!(
            store
                .insert_login(&login("s2", LoginStatus::Pending, None))
                .await
                .unwrap()
        );
        let approved = approved_l1(holder, &[], 1_010);
        let (a, b) = tokio::join!(
            store.finish_login("s2", "holder", &approved, 1_010),
            store.finish_login("s2", "other", &declined, 1_010),
        );
        assert_eq!(u8::from(a.unwrap()) + u8::from(b.unwrap()), 1);
        let decided = store.login("s2").await.unwrap().unwrap();
        let winner = decided.device_thumbprint.unwrap();
        assert_eq!(
            decided.status == LoginStatus::Approved,
            winner == "holder",
            "the sign-in records the device that decided it"
        );
    })
    .await;
}
