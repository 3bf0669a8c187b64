//! Assurance levels: the PIN at L2 (its OPRF evaluation counted per sign-in, lockouts across
//! nodes), the face at L3 (impostors refused, then locked out), and a level out of reach
//! ending the sign-in with an error, never a downgrade.

use cyberid_crypto::pin::{self, Pin};
use cyberid_crypto::{b64, sha256};
use cyberid_domain::AssuranceLevel;
use cyberid_protocol::{Decision, LoginDetails};
use cyberid_registry::face::live_sample;
use cyberid_wallet::sign_approval;
use serde_json::json;

use crate::common::{on_each_backend, rng, start};
use crate::support::browser::{begin, browser, come_back, location_query, query_string};
use crate::support::client::{exchange_code, registered_client, registration, verify_id_token};
use crate::support::wallet::{Decide, decide, details, post};
use crate::support::{adult, sign_in};

#[tokio::test]
async fn l2_needs_the_pin_and_wrong_pins_lock_across_nodes() {
    on_each_backend(|h| async move {
        let shop = registered_client(&h, registration(&[])).await;
        let key = h.enrol(&adult(&h, 3)).await;
        let l2 = [("acr_values", "urn:cyberid:acr:l2")];
        let (id_token, _, _) = sign_in(&h, &shop, &key, &l2, |details| {
            assert_eq!(details.level, AssuranceLevel::L2);
            Decide {
                level: AssuranceLevel::L2,
                pin: Some("135790"),
                ..Decide::default()
            }
        })
        .await;
        assert_eq!(id_token["acr"], "urn:cyberid:acr:l2");
        assert_eq!(id_token["amr"], json!(["hwk", "pin"]));

        // Without the PIN proof, or with a wrong PIN, no approval; five tries lock the PIN,
        // counted in the store, so the other node agrees.
        let node_b = h.second_node(|_| {}).await;
        let flow = begin(&h, &h.url, &shop, &l2).await;
        let details = details(&h, &h.url, &flow.id).await;
        let (status, body) = decide(
            &h,
            &h.url,
            &key,
            &details,
            Decide {
                level: AssuranceLevel::L2,
                ..Decide::default()
            },
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_request")),
            "{body}"
        );
        for attempt in 0..5 {
            let base = if attempt % 2 == 0 { &h.url } else { &node_b };
            let (status, body) = decide(
                &h,
                base,
                &key,
                &details,
                Decide {
                    level: AssuranceLevel::L2,
                    pin: Some("246802"),
                    ..Decide::default()
                },
            )
            .await;
            assert_eq!(
                (status, body["error"].as_str()),
                (403, Some("invalid_pin")),
                "attempt {attempt}: {body}"
            );
        }
        let (status, body) = decide(
            &h,
            &node_b,
            &key,
            &details,
            Decide {
                level: AssuranceLevel::L2,
                pin: Some("135790"),
                ..Decide::default()
            },
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (403, Some("pin_locked")),
            "{body}"
        );
        // The locked PIN ended the sign-in with the standard error.
        assert_eq!(
            come_back(&h.url, &flow).await["error"],
            "unmet_authentication_requirements"
        );
        // A new sign-in gets no PIN evaluation either, at any node.
        let flow = begin(&h, &h.url, &shop, &l2).await;
        // By its path: `details` here is the locked sign-in's.
        let fresh = crate::support::wallet::details(&h, &h.url, &flow.id).await;
        let (status, body) = decide(
            &h,
            &h.url,
            &key,
            &fresh,
            Decide {
                level: AssuranceLevel::L2,
                pin: Some("135790"),
                ..Decide::default()
            },
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (403, Some("pin_locked")),
            "{body}"
        );
        // The message says the way back, and it works: a new PIN at L3.
        let message = body["error_description"].as_str().unwrap();
        assert!(message.contains("cyberid wallet pin reset"), "{message}");
        let person = adult(&h, 3);
        let impostor = live_sample(&adult(&h, 4).face, &mut rng());
        let (status, body) = reset_pin(&h, &key, "864200", &impostor).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (403, Some("face_mismatch")),
            "{body}"
        );
        // Another holder's device acts for its own account only: the holder's face does not
        // match it, and the holder's PIN stays locked.
        let other_key = h.enrol(&adult(&h, 5)).await;
        let face = live_sample(&person.face, &mut rng());
        let (status, body) = reset_pin_with(&h, &other_key, "864200", &face, false).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (403, Some("face_mismatch")),
            "{body}"
        );
        // A proof over another verifier than the one sent is refused.
        let (status, body) = reset_pin_with(&h, &key, "864200", &face, true).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_device")),
            "{body}"
        );
        let (status, body) = reset_pin(&h, &key, "864200", &face).await;
        assert_eq!(
            (status, body["status"].as_str()),
            (200, Some("pin_reset")),
            "{body}"
        );
        let account = h
            .store
            .account_by_device(&key_thumbprint(&key))
            .await
            .unwrap()
            .unwrap()
            .0;
        assert_eq!((account.pin_failures, account.face_failures), (0, 0));
        let flow = begin(&h, &h.url, &shop, &l2).await;
        let fresh = crate::support::wallet::details(&h, &h.url, &flow.id).await;
        let with_pin = |pin| Decide {
            level: AssuranceLevel::L2,
            pin: Some(pin),
            ..Decide::default()
        };
        let (status, body) = decide(&h, &h.url, &key, &fresh, with_pin("135790")).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (403, Some("invalid_pin")),
            "old PIN: {body}"
        );
        let (status, body) = decide(&h, &node_b, &key, &fresh, with_pin("864200")).await;
        assert_eq!(
            (status, body["status"].as_str()),
            (200, Some("approved")),
            "{body}"
        );
    })
    .await;
}

fn key_thumbprint(key: &cyberid_crypto::jose::SigningKey) -> String {
    key.verifying_key().thumbprint()
}

/// A new PIN at L3, as the wallet sets it (`cyberid wallet pin reset`): the new PIN blinded
/// and evaluated at enrolment start, then the device's proof over ticket and verifier and a
/// live face sample.
async fn reset_pin(
    h: &crate::common::Harness,
    key: &cyberid_crypto::jose::SigningKey,
    new_pin: &str,
    face: &cyberid_domain::FaceTemplate,
) -> (u16, serde_json::Value) {
    reset_pin_with(h, key, new_pin, face, false).await
}

/// [`reset_pin`], its proof signed over another verifier when `tampered`.
async fn reset_pin_with(
    h: &crate::common::Harness,
    key: &cyberid_crypto::jose::SigningKey,
    new_pin: &str,
    face: &cyberid_domain::FaceTemplate,
    tampered: bool,
) -> (u16, serde_json::Value) {
    let pin = Pin::parse(new_pin).unwrap();
    let (blinding, blinded_pin) = pin::blind(&pin).unwrap();
    let (status, started) = h
        .post(
            cyberid_protocol::ENROLMENT_START_PATH,
            &json!({ "blinded_pin": blinded_pin }),
        )
        .await;
    assert_eq!(status, 200, "{started}");
    let ticket = started["ticket"].as_str().unwrap();
    let verifier = blinding
        .finish(&pin, started["evaluated_pin"].as_str().unwrap())
        .unwrap()
        .verifier();
    let signed_verifier = if tampered {
        "x".repeat(verifier.len())
    } else {
        verifier.clone()
    };
    let target = cyberid_protocol::pin_reset_target(ticket, &signed_verifier);
    h.post(
        cyberid_protocol::PIN_RESET_PATH,
        &json!({
            "ticket": ticket,
            "pin_verifier": verifier,
            "face_sample": cyberid_registry::face::sample_to_base64(face),
            "proof": crate::support::wallet::proof(key, cyberid_protocol::PIN_RESET_ACTION, &target),
        }),
    )
    .await
}

/// Once the holder's device has taken a sign-in up (its PIN evaluation), another enrolled
/// device can neither evaluate a PIN for it nor decide it: refused with `login_taken`,
/// nothing counted; the holder goes on and approves.
#[tokio::test]
async fn another_device_cannot_act_on_a_sign_in_taken_up() {
    on_each_backend(|h| async move {
        let shop = registered_client(&h, registration(&[])).await;
        let holder = h.enrol(&adult(&h, 6)).await;
        let attacker = h.enrol(&adult(&h, 7)).await;
        let l2 = [("acr_values", "urn:cyberid:acr:l2")];
        let flow = begin(&h, &h.url, &shop, &l2).await;
        let details = details(&h, &h.url, &flow.id).await;
        // The holder evaluates the PIN (and so takes the sign-in up) ...
        let approval = sign_approval(
            &holder,
            &details,
            Decision::Approve,
            AssuranceLevel::L2,
            Vec::new(),
        )
        .unwrap();
        let pin = Pin::parse("135790").unwrap();
        let (blinding, blinded_pin) = pin::blind(&pin).unwrap();
        let (status, evaluated) = post(
            &h,
            &format!("{}/api/v1/logins/{}/pin", h.url, flow.id),
            &json!({ "approval": approval, "blinded_pin": blinded_pin }),
        )
        .await;
        assert_eq!(status, 200, "{evaluated}");
        let before = h
            .store
            .account_by_device(&key_thumbprint(&holder))
            .await
            .unwrap()
            .unwrap()
            .0;
        // ... the attacker's PIN evaluation and decline are refused, nothing counted.
        let (status, body) = decide(
            &h,
            &h.url,
            &attacker,
            &details,
            Decide {
                level: AssuranceLevel::L2,
                pin: Some("135790"),
                ..Decide::default()
            },
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (409, Some("login_taken")),
            "{body}"
        );
        let (status, body) = decide(
            &h,
            &h.url,
            &attacker,
            &details,
            Decide {
                decision: Decision::Decline,
                ..Decide::default()
            },
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (409, Some("login_taken")),
            "{body}"
        );
        let after = h
            .store
            .account_by_device(&key_thumbprint(&holder))
            .await
            .unwrap()
            .unwrap()
            .0;
        assert_eq!(
            before.pin_failures, after.pin_failures,
            "the holder's count untouched"
        );
        let attacker_account = h
            .store
            .account_by_device(&key_thumbprint(&attacker))
            .await
            .unwrap()
            .unwrap()
            .0;
        assert_eq!(attacker_account.pin_failures, 0);
        // The holder approves with the evaluation it already has.
        let pin_key = blinding
            .finish(&pin, evaluated["evaluated_pin"].as_str().unwrap())
            .unwrap();
        let (status, body) = post(
            &h,
            &format!("{}/api/v1/logins/{}/decision", h.url, flow.id),
            &json!({ "approval": approval, "pin_proof": pin_key.sign(approval.as_bytes()) }),
        )
        .await;
        assert_eq!(
            (status, body["status"].as_str()),
            (200, Some("approved")),
            "{body}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_pin_proof_needs_an_evaluation_counted_for_this_sign_in() {
    let h = start(false, |_| {}).await;
    let shop = registered_client(&h, registration(&[])).await;
    let key = h.enrol(&adult(&h, 15)).await;
    let l2 = [("acr_values", "urn:cyberid:acr:l2")];
    let approval_at = |details: &LoginDetails, level| {
        sign_approval(&key, details, Decision::Approve, level, Vec::new()).unwrap()
    };
    // The holder's PIN key, as a tampered wallet might keep it after one sign-in.
    let flow = begin(&h, &h.url, &shop, &l2).await;
    let first = details(&h, &h.url, &flow.id).await;
    let pin = Pin::parse("135790").unwrap();
    let (blinding, blinded_pin) = pin::blind(&pin).unwrap();
    let (_, evaluated) = post(
        &h,
        &format!("{}/api/v1/logins/{}/pin", h.url, flow.id),
        &json!({
            "approval": approval_at(&first, AssuranceLevel::L2),
            "blinded_pin": blinded_pin
        }),
    )
    .await;
    let pin_key = blinding
        .finish(&pin, evaluated["evaluated_pin"].as_str().unwrap())
        .unwrap();
    // A later sign-in, with a proof from that key but no evaluation of its own: refused.
    let later = begin(&h, &h.url, &shop, &l2).await;
    let details = details(&h, &h.url, &later.id).await;
    let approval = approval_at(&details, AssuranceLevel::L2);
    let body = json!({ "approval": approval, "pin_proof": pin_key.sign(approval.as_bytes()) });
    let (status, answer) = post(
        &h,
        &format!("{}/api/v1/logins/{}/decision", h.url, later.id),
        &body,
    )
    .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("invalid_request")),
        "{answer}"
    );
    // A PIN is evaluated only for an approval at L2 or above, and for this sign-in.
    let l1 = approval_at(&details, AssuranceLevel::L1);
    let (status, _) = post(
        &h,
        &format!("{}/api/v1/logins/{}/pin", h.url, later.id),
        &json!({ "approval": l1, "blinded_pin": pin::blind(&pin).unwrap().1 }),
    )
    .await;
    assert_eq!(status, 400);
    let for_first = approval_at(&first, AssuranceLevel::L2);
    let (status, _) = post(
        &h,
        &format!("{}/api/v1/logins/{}/pin", h.url, later.id),
        &json!({ "approval": for_first, "blinded_pin": pin::blind(&pin).unwrap().1 }),
    )
    .await;
    assert_eq!(status, 401);
    // A malformed blinded PIN is refused without counting an attempt.
    let (status, _) = post(
        &h,
        &format!("{}/api/v1/logins/{}/pin", h.url, later.id),
        &json!({
            "approval": approval_at(&details, AssuranceLevel::L2),
            "blinded_pin": "AAAA"
        }),
    )
    .await;
    assert_eq!(status, 400);
    let account = h
        .store
        .account_by_device(key.kid().unwrap())
        .await
        .unwrap()
        .unwrap()
        .0;
    assert_eq!(
        account.pin_failures, 1,
        "only the one real evaluation is counted"
    );
}

#[tokio::test]
async fn l3_matches_the_face_and_refuses_an_impostor() {
    let h = start(false, |_| {}).await;
    let shop = registered_client(&h, registration(&[])).await;
    let person = adult(&h, 4);
    let key = h.enrol(&person).await;
    let l3 = [("acr_values", "urn:cyberid:acr:l3")];
    let flow = begin(&h, &h.url, &shop, &l3).await;
    let details = details(&h, &h.url, &flow.id).await;
    let impostor = live_sample(&adult(&h, 9).face, &mut rng());
    let (status, body) = decide(
        &h,
        &h.url,
        &key,
        &details,
        Decide {
            level: AssuranceLevel::L3,
            pin: Some("135790"),
            face: Some(impostor),
            ..Decide::default()
        },
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("face_mismatch")),
        "{body}"
    );
    let genuine = live_sample(&person.face, &mut rng());
    let (status, body) = decide(
        &h,
        &h.url,
        &key,
        &details,
        Decide {
            level: AssuranceLevel::L3,
            pin: Some("135790"),
            face: Some(genuine),
            ..Decide::default()
        },
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("approved")),
        "{body}"
    );
    let back = come_back(&h.url, &flow).await;
    let (_, tokens) = exchange_code(&h, &h.url, &shop, &back["code"], &flow.verifier).await;
    let id_token = verify_id_token(&h, tokens["id_token"].as_str().unwrap(), &shop).await;
    assert_eq!(
        (id_token["acr"].as_str(), &id_token["amr"]),
        (Some("urn:cyberid:acr:l3"), &json!(["hwk", "pin", "face"]))
    );
}

#[tokio::test]
async fn failed_face_matches_lock_l3() {
    let h = start(false, |_| {}).await;
    let shop = registered_client(&h, registration(&[])).await;
    let person = adult(&h, 16);
    let key = h.enrol(&person).await;
    let flow = begin(&h, &h.url, &shop, &[("acr_values", "urn:cyberid:acr:l3")]).await;
    let details = details(&h, &h.url, &flow.id).await;
    let impostor = || Some(live_sample(&adult(&h, 17).face, &mut rng()));
    for _ in 0..5 {
        let (status, body) = decide(
            &h,
            &h.url,
            &key,
            &details,
            Decide {
                level: AssuranceLevel::L3,
                pin: Some("135790"),
                face: impostor(),
                ..Decide::default()
            },
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (403, Some("face_mismatch")),
            "{body}"
        );
    }
    let genuine = Some(live_sample(&person.face, &mut rng()));
    let (status, body) = decide(
        &h,
        &h.url,
        &key,
        &details,
        Decide {
            level: AssuranceLevel::L3,
            pin: Some("135790"),
            face: genuine,
            ..Decide::default()
        },
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("face_locked")),
        "{body}"
    );
}

#[tokio::test]
async fn an_unreachable_level_is_an_error_never_a_downgrade() {
    let h = start(false, |_| {}).await;
    let shop = registered_client(&h, registration(&[])).await;
    let key = h.enrol(&adult(&h, 5)).await;
    let flow = begin(&h, &h.url, &shop, &[("acr_values", "urn:cyberid:acr:l3")]).await;
    let details = details(&h, &h.url, &flow.id).await;
    // Approving at a lower level is refused outright.
    let (status, body) = decide(
        &h,
        &h.url,
        &key,
        &details,
        Decide {
            level: AssuranceLevel::L2,
            pin: Some("135790"),
            ..Decide::default()
        },
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("level_too_low")),
        "{body}"
    );
    // The wallet reports it cannot reach L3: the client gets the standard error.
    let (status, body) = decide(
        &h,
        &h.url,
        &key,
        &details,
        Decide {
            decision: Decision::Unable,
            ..Decide::default()
        },
    )
    .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("failed")));
    let back = come_back(&h.url, &flow).await;
    assert_eq!(back["error"], "unmet_authentication_requirements");
    assert_eq!(back["state"], flow.state);
    assert!(!back.contains_key("code"));
    // A level nobody offers is refused at /authorize.
    let response = browser()
        .get(format!(
            "{}/authorize?{}",
            h.url,
            query_string(&[
                ("response_type", "code"),
                ("client_id", &shop.id),
                ("redirect_uri", &shop.redirect_uri),
                ("scope", "openid"),
                ("state", "s"),
                ("code_challenge", &b64::encode(sha256(b"x"))),
                ("code_challenge_method", "S256"),
                ("acr_values", "urn:other:high")
            ])
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(location_query(&response).1["error"], "invalid_request");
}
