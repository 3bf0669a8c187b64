//! The wallet's side of a sign-in: the wallet library approving from a login page link,
//! decisions that decline or come too late, and approvals signed for another sign-in, by
//! another key, or not at all.

use cyberid_crypto::jose::SigningKey;
use cyberid_crypto::pin::{self, Pin};
use cyberid_domain::AssuranceLevel;
use cyberid_protocol::{Decision, DecisionStatus};
use cyberid_registry::face::live_sample;
use cyberid_wallet::sign_approval;
use serde_json::json;

use crate::common::{rng, start};
use crate::support::adult;
use crate::support::browser::{begin, come_back};
use crate::support::client::{registered_client, registration};
use crate::support::wallet::{Decide, decide, details, open, post};

#[tokio::test]
async fn the_wallet_library_approves_from_a_login_page_url() {
    let h = start(false, |_| {}).await;
    let shop = registered_client(&h, registration(&["age_over_18"])).await;
    let person = adult(&h, 14);
    let dir = tempfile::tempdir().unwrap();
    let wallet = cyberid_wallet::Wallet::open(dir.path()).unwrap();
    let face = live_sample(&person.face, &mut rng());
    wallet
        .enrol(
            &h.url,
            cyberid_wallet::EnrolmentInput {
                id_number: person.id_number.as_str(),
                name: person.name.as_str(),
                face_sample: &face,
                pin: "135790",
            },
        )
        .await
        .unwrap();
    let flow = begin(
        &h,
        &h.url,
        &shop,
        &[
            ("scope", "openid age_over_18"),
            ("acr_values", "urn:cyberid:acr:l2"),
        ],
    )
    .await;
    let link = format!(
        "cyberid-wallet:?login={}",
        form_urlencoded::byte_serialize(flow.login_url.as_bytes()).collect::<String>()
    );
    let opened = wallet.open_login(&link).await.unwrap();
    assert_eq!(opened.details.level, AssuranceLevel::L2);
    let status = wallet
        .decide(
            &opened,
            cyberid_wallet::Decision::Approve {
                claims: vec!["age_over_18".into()],
                pin: Some(Pin::parse("135790").unwrap()),
                face: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(status, DecisionStatus::Approved);
    let consents = wallet.consents().await.unwrap();
    assert_eq!(consents[0].claims, ["age_over_18"]);
    wallet.revoke_consent(&shop.id).await.unwrap();
    assert!(wallet.consents().await.unwrap().is_empty());
    let back = come_back(&h.url, &flow).await;
    assert!(back.contains_key("code"));
}

#[tokio::test]
async fn declined_consent_and_expired_sign_ins_end_with_access_denied() {
    let h = start(false, |_| {}).await;
    let shop = registered_client(&h, registration(&[])).await;
    let key = h.enrol(&adult(&h, 6)).await;
    let flow = begin(&h, &h.url, &shop, &[]).await;
    let details = details(&h, &h.url, &flow.id).await;
    let (_, body) = decide(
        &h,
        &h.url,
        &key,
        &details,
        Decide {
            decision: Decision::Decline,
            ..Decide::default()
        },
    )
    .await;
    assert_eq!(body["status"], "declined");
    let back = come_back(&h.url, &flow).await;
    assert_eq!(
        (back["error"].as_str(), back.get("code")),
        ("access_denied", None)
    );
    // Deciding again changes nothing.
    let (status, body) = decide(&h, &h.url, &key, &details, Decide::default()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (410, Some("login_closed"))
    );

    let expiring = start(false, |settings| settings.sign_in.lifetime_seconds = 0).await;
    let shop = registered_client(&expiring, registration(&[])).await;
    expiring.enrol(&adult(&expiring, 6)).await;
    let flow = begin(&expiring, &expiring.url, &shop, &[]).await;
    let (status, body) = open(&expiring, &expiring.url, &flow.id).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (410, Some("login_closed"))
    );
    let back = come_back(&expiring.url, &flow).await;
    assert_eq!(back["error"], "access_denied");
}

#[tokio::test]
async fn an_approval_signed_for_another_sign_in_is_refused() {
    let h = start(false, |_| {}).await;
    let shop = registered_client(&h, registration(&[])).await;
    let key = h.enrol(&adult(&h, 7)).await;
    let first = begin(&h, &h.url, &shop, &[]).await;
    let second = begin(&h, &h.url, &shop, &[]).await;
    let first_details = details(&h, &h.url, &first.id).await;
    let signed_for_first = sign_approval(
        &key,
        &first_details,
        Decision::Approve,
        AssuranceLevel::L1,
        Vec::new(),
    )
    .unwrap();
    let (status, body) = post(
        &h,
        &format!("{}/api/v1/logins/{}/decision", h.url, second.id),
        &json!({ "approval": signed_for_first }),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_device")),
        "{body}"
    );
    // Another device key (a stranger's) cannot approve either.
    let (stranger, _) = SigningKey::generate().unwrap();
    let stranger = stranger.with_kid(key.kid().unwrap());
    let second_details = details(&h, &h.url, &second.id).await;
    let forged = sign_approval(
        &stranger,
        &second_details,
        Decision::Approve,
        AssuranceLevel::L1,
        Vec::new(),
    )
    .unwrap();
    let (status, _) = post(
        &h,
        &format!("{}/api/v1/logins/{}/decision", h.url, second.id),
        &json!({ "approval": forged }),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(
        h.store.login(&second.id).await.unwrap().unwrap().status,
        cyberid_store::LoginStatus::Pending
    );
}

/// What a wallet (or anyone) may send as an approval, to the decision and to the PIN
/// evaluation: not a JWS, a JWS naming no device key, a key bound to no account. Each is
/// refused with its code, and the sign-in stays pending for the real wallet.
#[tokio::test]
async fn malformed_approvals_are_refused_and_change_nothing() {
    let h = start(false, |_| {}).await;
    let shop = registered_client(&h, registration(&[])).await;
    let key = h.enrol(&adult(&h, 8)).await;
    let flow = begin(&h, &h.url, &shop, &[]).await;
    let details = details(&h, &h.url, &flow.id).await;
    let (unkeyed, _) = SigningKey::generate().unwrap();
    let (unbound, _) = SigningKey::generate().unwrap();
    let unbound = unbound.with_kid("no-such-device");
    let cases = [
        ("not-a-jws".to_owned(), 400, "invalid_request"),
        (
            sign_approval(
                &unkeyed,
                &details,
                Decision::Approve,
                AssuranceLevel::L1,
                Vec::new(),
            )
            .unwrap(),
            401,
            "invalid_device",
        ),
        (
            sign_approval(
                &unbound,
                &details,
                Decision::Approve,
                AssuranceLevel::L1,
                Vec::new(),
            )
            .unwrap(),
            401,
            "invalid_device",
        ),
    ];
    let pin = Pin::parse("135790").unwrap();
    let (_, blinded_pin) = pin::blind(&pin).unwrap();
    for (sent, status, code) in &cases {
        for (path, body) in [
            ("decision", json!({ "approval": sent })),
            (
                "pin",
                json!({ "approval": sent, "blinded_pin": blinded_pin }),
            ),
        ] {
            let (got, error) = post(
                &h,
                &format!("{}/api/v1/logins/{}/{path}", h.url, flow.id),
                &body,
            )
            .await;
            assert_eq!(
                (got, error["error"].as_str()),
                (*status, Some(*code)),
                "{path} {sent}: {error}"
            );
        }
    }
    let login = h.store.login(&flow.id).await.unwrap().unwrap();
    assert_eq!(login.status, cyberid_store::LoginStatus::Pending);
    assert!(!login.pin_evaluated, "no PIN evaluation was counted");
    let (status, body) = decide(&h, &h.url, &key, &details, Decide::default()).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("approved")),
        "{body}"
    );
}
