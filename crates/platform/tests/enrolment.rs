//! Enrolment over real HTTP against a real store (SQLite, and PostgreSQL when
//! `CYBERID_TEST_DATABASE_URL` is set): the success path checked by independent libraries,
//! and every refusal checked for its error and for an unchanged store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

use cyberid_crypto::jose::SigningKey;
use cyberid_crypto::status_list::{self, INVALID, VALID};
use cyberid_domain::{AgePredicates, age_on};
use cyberid_platform::keys::{KEYS_FILE, PlatformKeys};
use cyberid_platform::{Platform, Settings};
use cyberid_protocol::{
    ENROLMENT_PATH, ENROLMENT_PROOF_TYP, ENROLMENT_START_PATH, EnrolmentProofClaims,
};
use cyberid_registry::face::{live_sample, sample_to_base64};
use cyberid_registry::generate::Generator;
use serde_json::{Value, json};

#[tokio::test]
async fn enrolment_issues_a_credential_that_independent_libraries_verify() {
    on_each_backend(|h| async move {
        let person = h.adult(0).clone();
        let (device_key, _) = SigningKey::generate().unwrap();
        let request = h.request_for(&person, &device_key).await;
        let (status, enrolled) = h
            .post(ENROLMENT_PATH, &serde_json::to_value(&request).unwrap())
            .await;
        assert_eq!(status, 201, "{enrolled}");
        let credential = enrolled["credential"].as_str().unwrap();
        let number = enrolled["network_number"].as_str().unwrap();
        cyberid_domain::NetworkNumber::parse(number).unwrap();

        // Issuer signature, checked by jsonwebtoken against the published JWKS.
        let metadata: Value = h
            .http
            .get(format!("{}/.well-known/jwt-vc-issuer", h.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(metadata["issuer"], h.url);
        let jwks: jsonwebtoken::jwk::JwkSet =
            serde_json::from_value(metadata["jwks"].clone()).unwrap();
        let issuer_jwt = credential.split('~').next().unwrap();
        let header = jsonwebtoken::decode_header(issuer_jwt).unwrap();
        assert_eq!(header.typ.as_deref(), Some("dc+sd-jwt"));
        let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "iss"]);
        validation.set_issuer(&[&h.url]);
        jsonwebtoken::decode::<Value>(
            issuer_jwt,
            &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
            &validation,
        )
        .unwrap();

        // Disclosures, checked by sd-jwt-payload.
        let claims = sd_jwt_payload::SdJwt::parse(credential)
            .unwrap()
            .into_disclosed_object(&sd_jwt_payload::Sha256Hasher::new())
            .unwrap();
        let age = age_on(person.birth_date, today()).unwrap();
        let predicates = AgePredicates::at(age);
        assert_eq!(claims["network_number"], number);
        assert_eq!(claims["real_name_verified"], true);
        assert_eq!(claims["age_over_14"], predicates.over_14);
        assert_eq!(claims["age_over_16"], predicates.over_16);
        assert_eq!(claims["age_over_18"], predicates.over_18);
        assert_eq!(claims["age_over_60"], predicates.over_60);
        assert_eq!(claims["region"], person.province().iso_3166_2);
        assert_eq!(claims["name"], person.name.as_str());
        assert_eq!(claims["birthdate"], person.birth_date.to_string());
        assert_eq!(claims["vct"], "urn:cyberid:network-credential:1");
        let cnf: cyberid_crypto::jose::EcPublicJwk =
            serde_json::from_value(claims["cnf"]["jwk"].clone()).unwrap();
        assert_eq!(cnf.thumbprint(), device_key.verifying_key().thumbprint());

        // The status entry resolves to a signed list in which the credential is valid,
        // and a revocation shows at once.
        let index = claims["status"]["status_list"]["idx"].as_u64().unwrap() as usize;
        let uri = claims["status"]["status_list"]["uri"]
            .as_str()
            .unwrap()
            .to_owned();
        let issuer_key = cyberid_crypto::jose::VerifyingKey::from_jwk(
            &serde_json::from_value(serde_json::to_value(jwk).unwrap()).unwrap(),
        )
        .unwrap();
        let fetch = || async {
            let response = h.http.get(&uri).send().await.unwrap();
            assert_eq!(
                response.headers()["content-type"],
                "application/statuslist+jwt"
            );
            let token = response.text().await.unwrap();
            status_list::verify_token(&token, &issuer_key, &uri, cyberid_platform::now()).unwrap()
        };
        assert_eq!(fetch().await.get(index).unwrap(), VALID);
        let list: u64 = uri.rsplit('/').next().unwrap().parse().unwrap();
        let global = list * cyberid_store::STATUS_LIST_CAPACITY + index as u64;
        assert!(
            h.store
                .set_credential_status(global, INVALID)
                .await
                .unwrap()
        );
        assert_eq!(fetch().await.get(index).unwrap(), INVALID);
    })
    .await;
}

#[tokio::test]
async fn personal_data_at_rest_is_only_a_digest_and_sealed_bytes() {
    let h = start(false, |_| {}).await;
    let person = h.adult(1).clone();
    let body = h.valid_body(&person).await;
    assert_eq!(h.post(ENROLMENT_PATH, &body).await.0, 201);
    let conn = rusqlite::Connection::open(h.data.path().join("cyberid.db")).unwrap();
    let mut dump = String::new();
    for table in ["accounts", "devices", "credentials"] {
        let mut statement = conn.prepare(&format!("SELECT * FROM {table}")).unwrap();
        let columns = statement.column_count();
        let mut rows = statement.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for i in 0..columns {
                match row.get_ref(i).unwrap() {
                    rusqlite::types::ValueRef::Text(t) => {
                        dump.push_str(&String::from_utf8_lossy(t))
                    }
                    rusqlite::types::ValueRef::Blob(b) => {
                        dump.push_str(&String::from_utf8_lossy(b))
                    }
                    other => dump.push_str(&format!("{other:?}")),
                }
                dump.push('|');
            }
        }
    }
    assert!(dump.len() > 200, "the dump holds the account");
    for secret in [
        person.id_number.as_str().to_owned(),
        person.name.as_str().to_owned(),
        person.birth_date.to_string(),
        person.province().iso_3166_2.to_owned(),
    ] {
        assert!(
            !dump.contains(&secret),
            "found personal data at rest: {secret:?}"
        );
    }

    // What is sealed is exactly the attributes, and the platform key opens it.
    let (number, wrapped, sealed): (String, Vec<u8>, Vec<u8>) = conn
        .query_row(
            "SELECT network_number, wrapped_data_key, sealed_attributes FROM accounts",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    let keys = PlatformKeys::load_or_create(h.data.path()).unwrap();
    let data_key = keys
        .data_wrapping
        .unwrap_key(number.as_bytes(), &wrapped)
        .unwrap();
    let attributes: Value =
        serde_json::from_slice(&data_key.open(number.as_bytes(), &sealed).unwrap()).unwrap();
    assert_eq!(
        attributes,
        json!({
            "id_number": person.id_number.as_str(),
            "name": person.name.as_str(),
            "birthdate": person.birth_date.to_string(),
            "region": person.province().iso_3166_2,
        })
    );
    // The digest is keyed: a plain hash of the ID number does not find the account.
    let digest: Vec<u8> = conn
        .query_row("SELECT person_digest FROM accounts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        digest,
        keys.person_digest
            .digest("citizen-id-number", person.id_number.as_str().as_bytes())
    );
}

#[tokio::test]
async fn malformed_id_numbers_are_refused() {
    on_each_backend(|h| async move {
        let person = h.adult(0).clone();
        let id = person.id_number.as_str().to_owned();
        let wrong_check = {
            let mut chars: Vec<char> = id.chars().collect();
            chars[17] = if chars[17] == '0' { '1' } else { '0' };
            chars.into_iter().collect::<String>()
        };
        let impossible_date = cyberid_domain::CitizenIdNumber::check_character("11010519990230123")
            .map(|c| format!("11010519990230123{c}"))
            .unwrap();
        let unknown_region = cyberid_domain::CitizenIdNumber::check_character("99010519900101123")
            .map(|c| format!("99010519900101123{c}"))
            .unwrap();
        for bad in [
            wrong_check,
            impossible_date,
            unknown_region,
            "123".to_owned(),
            "11010519491231002Y".to_owned(),
            // A real calendar date, but in the future.
            cyberid_domain::CitizenIdNumber::compose(
                "110105",
                time::macros::date!(2099 - 12 - 31),
                123,
            )
            .unwrap()
            .as_str()
            .to_owned(),
        ] {
            let mut body = h.valid_body(&person).await;
            body["id_number"] = json!(bad);
            h.assert_refused(&body, 400, "invalid_id_number").await;
        }
    })
    .await;
}

#[tokio::test]
async fn registry_face_and_age_checks_refuse() {
    on_each_backend(|h| async move {
        let person = h.adult(0).clone();

        // Not in the registry: a valid number nobody in the registry holds.
        let stranger = Generator::new(4242)
            .find(|p| h.people.iter().all(|q| q.id_number != p.id_number))
            .unwrap();
        let mut body = h.valid_body(&person).await;
        body["id_number"] = json!(stranger.id_number.as_str());
        h.assert_refused(&body, 422, "identity_mismatch").await;

        // Name mismatch and an impostor's face get the same answer, so the endpoint tells
        // nobody which ID numbers exist or which name goes with one.
        let mut body = h.valid_body(&person).await;
        body["name"] = json!("张三丰");
        h.assert_refused(&body, 422, "identity_mismatch").await;
        let other = h.adult(5).clone();
        let mut body = h.valid_body(&person).await;
        body["face_sample"] = json!(sample_to_base64(&live_sample(&other.face, &mut rng())));
        h.assert_refused(&body, 422, "identity_mismatch").await;

        // Under 14: a guardian flow is required — said only once the identity is proved.
        let child = h.child().clone();
        let body = h.valid_body(&child).await;
        h.assert_refused(&body, 403, "guardian_required").await;
        let mut body = h.valid_body(&child).await;
        body["face_sample"] = json!(sample_to_base64(&live_sample(&other.face, &mut rng())));
        h.assert_refused(&body, 422, "identity_mismatch").await;

        // Malformed name and face sample.
        let mut body = h.valid_body(&person).await;
        body["name"] = json!("王\u{0007}明");
        h.assert_refused(&body, 400, "invalid_name").await;
        let mut body = h.valid_body(&person).await;
        body["face_sample"] = json!("AAAA");
        h.assert_refused(&body, 400, "invalid_face_sample").await;

        // After all refusals the person can still enrol.
        let body = h.valid_body(&person).await;
        assert_eq!(h.post(ENROLMENT_PATH, &body).await.0, 201);
    })
    .await;
}

#[tokio::test]
async fn one_account_per_person_even_under_concurrency() {
    on_each_backend(|h| async move {
        let person = h.adult(2).clone();
        let first = h.valid_body(&person).await;
        assert_eq!(h.post(ENROLMENT_PATH, &first).await.0, 201);
        let again = h.valid_body(&person).await;
        h.assert_refused(&again, 409, "already_enrolled").await;

        // Two enrolments of one person at the same moment: exactly one succeeds.
        let twin = h.adult(3).clone();
        let a = h.valid_body(&twin).await;
        let b = h.valid_body(&twin).await;
        let ((status_a, _), (status_b, error_b)) =
            tokio::join!(h.post(ENROLMENT_PATH, &a), h.post(ENROLMENT_PATH, &b));
        let mut statuses = [status_a, status_b];
        statuses.sort();
        assert_eq!(statuses, [201, 409], "{error_b}");
        assert_eq!(h.store.counts().await.unwrap().accounts, 2);
    })
    .await;
}

#[tokio::test]
async fn malformed_requests_are_refused_in_the_platform_format() {
    on_each_backend(|h| async move {
        let (status, error, unchanged) = h.raw("application/json", b"{\"ticket\": ".to_vec()).await;
        assert_eq!(
            (status, error["error"].as_str(), unchanged),
            (400, Some("invalid_request"), true)
        );

        let (status, error, unchanged) = h
            .raw("application/json", br#"{"ticket": "x"}"#.to_vec())
            .await;
        assert_eq!(
            (status, error["error"].as_str(), unchanged),
            (422, Some("invalid_request"), true)
        );
        assert!(
            error["error_description"]
                .as_str()
                .unwrap()
                .contains("missing field"),
            "{error}"
        );

        let body = serde_json::to_vec(&h.valid_body(&h.adult(0).clone()).await).unwrap();
        let (status, error, unchanged) = h.raw("text/plain", body).await;
        assert_eq!(
            (status, error["error"].as_str(), unchanged),
            (415, Some("invalid_request"), true)
        );

        let huge = format!(r#"{{"ticket": "{}"}}"#, "A".repeat(200_000)).into_bytes();
        let (status, error, unchanged) = h.raw("application/json", huge).await;
        assert_eq!(
            (status, error["error"].as_str(), unchanged),
            (413, Some("invalid_request"), true)
        );

        let (status, error, _) = h.raw("application/json", b"[]".to_vec()).await;
        assert_eq!(
            (status, error["error"].as_str()),
            (422, Some("invalid_request"))
        );
    })
    .await;
}

#[tokio::test]
async fn device_keys_that_are_not_p256_public_jwks_are_refused() {
    on_each_backend(|h| async move {
        let person = h.adult(0).clone();
        let (device_key, _) = SigningKey::generate().unwrap();
        let good = serde_json::to_value(device_key.verifying_key().jwk()).unwrap();
        let mut off_curve = good.clone();
        let mut y = cyberid_crypto::b64::decode(good["y"].as_str().unwrap()).unwrap();
        y[31] ^= 0x01;
        off_curve["y"] = json!(cyberid_crypto::b64::encode(y));
        let mut with_private = good.clone();
        with_private["d"] = json!("c2VjcmV0");
        let mut wrong_curve = good.clone();
        wrong_curve["crv"] = json!("P-384");
        let mut missing_y = good.clone();
        missing_y.as_object_mut().unwrap().remove("y");
        for bad in [
            off_curve,
            with_private,
            wrong_curve,
            missing_y,
            json!("not a jwk"),
            json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"}),
        ] {
            let mut body = serde_json::to_value(h.request_for(&person, &device_key).await).unwrap();
            body["device_key"] = bad;
            h.assert_refused(&body, 400, "invalid_device_key").await;
        }
    })
    .await;
}

#[tokio::test]
async fn tickets_and_proofs_are_checked() {
    let h = start(false, |_| {}).await;
    let person = h.adult(0).clone();

    // A proof by another key than the one enrolled.
    let (device_key, _) = SigningKey::generate().unwrap();
    let (other_key, _) = SigningKey::generate().unwrap();
    let mut body = serde_json::to_value(h.request_for(&person, &device_key).await).unwrap();
    body["device_key"] = serde_json::to_value(other_key.verifying_key().jwk()).unwrap();
    h.assert_refused(&body, 400, "invalid_proof").await;

    // A swapped PIN verifier (the proof signs the original).
    let mut body = h.valid_body(&person).await;
    body["pin_verifier"] = json!(cyberid_crypto::b64::encode([9u8; 32]));
    h.assert_refused(&body, 400, "invalid_proof").await;

    // A forged ticket.
    let mut body = h.valid_body(&person).await;
    body["ticket"] = json!(cyberid_crypto::b64::encode([0u8; 40]));
    h.assert_refused(&body, 400, "invalid_ticket").await;

    // A ticket used twice: the second enrolment (another person) is refused.
    let first = h.valid_body(&person).await;
    assert_eq!(h.post(ENROLMENT_PATH, &first).await.0, 201);
    let other = h.adult(1).clone();
    let (key, _) = SigningKey::generate().unwrap();
    let mut reuse = h.request_for(&other, &key).await;
    reuse.ticket = first["ticket"].as_str().unwrap().to_owned();
    reuse.pin_verifier = first["pin_verifier"].as_str().unwrap().to_owned();
    reuse.proof = key
        .sign_jwt(
            ENROLMENT_PROOF_TYP,
            &EnrolmentProofClaims {
                ticket: reuse.ticket.clone(),
                pin_verifier: reuse.pin_verifier.clone(),
                iat: cyberid_platform::now(),
            },
        )
        .unwrap();
    h.assert_refused(
        &serde_json::to_value(&reuse).unwrap(),
        400,
        "invalid_ticket",
    )
    .await;

    // A bad blinded PIN at the start.
    let (status, error) = h
        .post(ENROLMENT_START_PATH, &json!({ "blinded_pin": "AAAA" }))
        .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("invalid_request"))
    );
}

#[tokio::test]
async fn expired_tickets_are_refused() {
    let h = start(false, |settings| {
        settings.credential.enrolment_ticket_seconds = -1
    })
    .await;
    let body = h.valid_body(&h.adult(0).clone()).await;
    h.assert_refused(&body, 400, "invalid_ticket").await;
}

#[tokio::test]
async fn metadata_and_unknown_routes() {
    let h = start(false, |_| {}).await;
    let get = |path: &str| h.http.get(format!("{}{path}", h.url)).send();
    let health: Value = get("/healthz").await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "ok");
    let ready: Value = get("/readyz").await.unwrap().json().await.unwrap();
    assert_eq!(ready["store"], "sqlite");
    let jwks: Value = get("/jwks.json").await.unwrap().json().await.unwrap();
    assert_eq!(jwks["keys"][0]["alg"], "ES256");
    assert!(jwks["keys"][0].get("d").is_none(), "private key published");
    let missing = get("/nope").await.unwrap();
    assert_eq!(missing.status(), 404);
    let error: Value = missing.json().await.unwrap();
    assert_eq!(error["error"], "not_found");
    for bad_list in ["/status/abc", "/status/99999999", "/status/1"] {
        assert_eq!(get(bad_list).await.unwrap().status(), 404, "{bad_list}");
    }
    assert_eq!(get("/status/0").await.unwrap().status(), 200);
    let wrong_method = get(ENROLMENT_PATH).await.unwrap();
    assert_eq!(wrong_method.status(), 405);
    let error: Value = wrong_method.json().await.unwrap();
    assert_eq!(error["error"], "invalid_request");
}

#[tokio::test]
async fn a_retry_from_the_same_device_gets_a_fresh_credential() {
    on_each_backend(|h| async move {
        let person = h.adult(4).clone();
        let (device_key, _) = SigningKey::generate().unwrap();
        let first = serde_json::to_value(h.request_for(&person, &device_key).await).unwrap();
        let (status, first_answer) = h.post(ENROLMENT_PATH, &first).await;
        assert_eq!(status, 201, "{first_answer}");

        // The answer was lost; the wallet retries with the same device key (new ticket).
        let retry = serde_json::to_value(h.request_for(&person, &device_key).await).unwrap();
        let (status, second_answer) = h.post(ENROLMENT_PATH, &retry).await;
        assert_eq!(status, 201, "{second_answer}");
        assert_eq!(
            first_answer["network_number"],
            second_answer["network_number"]
        );
        let counts = h.store.counts().await.unwrap();
        assert_eq!(
            (counts.accounts, counts.devices, counts.credentials),
            (1, 1, 2)
        );
        let index_of = |answer: &Value| {
            let credential = answer["credential"].as_str().unwrap();
            let claims = sd_jwt_payload::SdJwt::parse(credential)
                .unwrap()
                .into_disclosed_object(&sd_jwt_payload::Sha256Hasher::new())
                .unwrap();
            assert_eq!(claims["name"], person.name.as_str());
            claims["status"]["status_list"]["idx"].as_u64().unwrap()
        };
        let (old, new) = (index_of(&first_answer), index_of(&second_answer));
        assert_ne!(old, new);
        let statuses = h.store.credential_statuses(0).await.unwrap();
        assert_eq!(
            statuses,
            vec![(old, INVALID)],
            "the undelivered credential is revoked"
        );

        // A different device of the same person is still refused.
        h.assert_refused(&h.valid_body(&person).await, 409, "already_enrolled")
            .await;
    })
    .await;
}

#[tokio::test]
async fn the_id_number_is_canonical_before_it_is_digested() {
    let h = start(false, |_| {}).await;
    let person = h
        .people
        .iter()
        .find(|p| {
            p.id_number.as_str().ends_with('X') && age_on(p.birth_date, today()).unwrap() >= 14
        })
        .unwrap()
        .clone();
    assert_eq!(
        h.post(ENROLMENT_PATH, &h.valid_body(&person).await).await.0,
        201
    );
    let mut body = h.valid_body(&person).await;
    body["id_number"] = json!(person.id_number.as_str().to_lowercase());
    h.assert_refused(&body, 409, "already_enrolled").await;
}

#[tokio::test]
async fn a_node_with_other_keys_cannot_join_the_store() {
    let data = tempfile::tempdir().unwrap();
    let mut settings = Settings::default();
    settings.store.data = data.path().to_owned();
    Platform::open(settings.clone(), "http://a".into())
        .await
        .unwrap();
    Platform::open(settings.clone(), "http://a".into())
        .await
        .unwrap();
    // The same store, and another platform's keys in the keys file.
    let other = tempfile::tempdir().unwrap();
    PlatformKeys::load_or_create(other.path()).unwrap();
    let keys_file = |dir: &std::path::Path| dir.join("keys").join(KEYS_FILE);
    std::fs::copy(keys_file(other.path()), keys_file(data.path())).unwrap();
    let error = Platform::open(settings, "http://b".into())
        .await
        .err()
        .unwrap();
    assert!(error.to_string().contains("other platform keys"), "{error}");
}

/// An enrolment request for `person` with someone else's face: fails the identity check.
async fn impostor_body(h: &Harness, person: &cyberid_domain::PersonRecord) -> Value {
    let other = h.adult(7).clone();
    let mut body = h.valid_body(person).await;
    body["face_sample"] = json!(sample_to_base64(&live_sample(&other.face, &mut rng())));
    body
}

/// Guessing a face (or a name) for a known ID number: after the limit of failed identity
/// checks, even the right face is refused until the window ends; other people are not held
/// back, and failures are counted exactly under concurrency (in the store, at once).
#[tokio::test]
async fn failed_identity_checks_are_limited_per_id_number() {
    let tweak = |s: &mut Settings| {
        s.limits.enrolment_failures_per_id_number = 3;
        s.limits.enrolment_window_seconds = 3_600;
    };
    on_each_backend_with(tweak, |h| async move {
        let person = h.adult(0).clone();
        // Twelve guesses at once: exactly three are checked, the rest refused unchecked.
        let mut guesses = Vec::new();
        for _ in 0..12 {
            guesses.push(impostor_body(&h, &person).await);
        }
        let answers =
            futures::future::join_all(guesses.iter().map(|b| h.post(ENROLMENT_PATH, b))).await;
        let mut codes: Vec<&str> = answers
            .iter()
            .map(|(_, e)| e["error"].as_str().unwrap())
            .collect();
        codes.sort_unstable();
        assert_eq!(
            codes,
            [vec!["identity_mismatch"; 3], vec!["too_many_requests"; 9]].concat(),
            "{answers:?}"
        );
        // The right face too, now: the limit is on the number, not the guess.
        let body = h.valid_body(&person).await;
        h.assert_refused(&body, 429, "too_many_requests").await;
        let response = h
            .http
            .post(format!("{}{ENROLMENT_PATH}", h.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        let wait: u64 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=3_600).contains(&wait), "Retry-After {wait}");
        // Someone else enrols as usual.
        let other = h.adult(1).clone();
        assert_eq!(
            h.post(ENROLMENT_PATH, &h.valid_body(&other).await).await.0,
            201
        );
    })
    .await;
}

/// One address trying many ID numbers: its failures are limited; its successes (a family
/// enrolling on one connection) do not count.
#[tokio::test]
async fn failed_identity_checks_are_limited_per_address_and_successes_do_not_count() {
    let tweak = |s: &mut Settings| {
        s.limits.enrolment_failures_per_address = 2;
        s.limits.enrolment_window_seconds = 3_600;
    };
    on_each_backend_with(tweak, |h| async move {
        for n in 0..4 {
            let person = h.adult(n).clone();
            assert_eq!(
                h.post(ENROLMENT_PATH, &h.valid_body(&person).await).await.0,
                201
            );
        }
        for n in 4..6 {
            let body = impostor_body(&h, &h.adult(n).clone()).await;
            h.assert_refused(&body, 422, "identity_mismatch").await;
        }
        let body = impostor_body(&h, &h.adult(6).clone()).await;
        h.assert_refused(&body, 429, "too_many_requests").await;
        let body = h.valid_body(&h.adult(6).clone()).await;
        h.assert_refused(&body, 429, "too_many_requests").await;
    })
    .await;
}
