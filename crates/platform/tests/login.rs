//! Federated login over real HTTP: the test is the browser (no redirects followed, cookies
//! by hand), the wallet (device-key proofs, PIN OPRF, face samples) and the relying party
//! (PKCE, client authentication, ID tokens checked with `jsonwebtoken`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use cyberid_crypto::jose::SigningKey;
use cyberid_crypto::pin::{self, Pin};
use cyberid_crypto::{b64, random, sha256};
use cyberid_domain::{AssuranceLevel, Claim, ClientAuthMethod, FaceTemplate, PersonRecord};
use cyberid_platform::Settings;
use cyberid_platform::rp::{Registration, register};
use cyberid_protocol::{
    APPROVAL_TYP, ApprovalClaims, Decision, DecisionStatus, LoginDetails, WALLET_PROOF_TYP,
    WalletProofClaims,
};
use cyberid_registry::face::{live_sample, sample_to_base64};
use serde_json::{Value, json};

struct Client {
    id: String,
    secret: Option<String>,
    redirect_uri: String,
}

async fn client(h: &Harness, registration: Registration) -> Client {
    let (rp, shown) = register(&h.keys(), &registration, cyberid_platform::now()).unwrap();
    h.store.insert_relying_party(&rp).await.unwrap();
    Client {
        id: shown.client_id,
        secret: shown.client_secret,
        redirect_uri: registration.redirect_uris[0].clone(),
    }
}

fn registration(claims: &[&str]) -> Registration {
    Registration {
        name: "Example Shop".into(),
        redirect_uris: vec!["https://shop.example/callback".into()],
        claims: claims
            .iter()
            .map(|c| Claim::parse(c).expect("a known claim"))
            .collect(),
        auth_method: ClientAuthMethod::ClientSecretBasic,
        ..Registration::default()
    }
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

struct Flow {
    login_url: String,
    id: String,
    cookie: String,
    verifier: String,
    state: String,
    nonce: String,
}

/// A complete authorization request of `client` (state `s1`, nonce `n1`, PKCE S256).
fn code_request<'a>(client: &'a Client, challenge: &'a str) -> [(&'static str, &'a str); 8] {
    [
        ("response_type", "code"),
        ("client_id", client.id.as_str()),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("scope", "openid"),
        ("state", "s1"),
        ("nonce", "n1"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]
}

fn query(pairs: &[(&str, &str)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        serializer.append_pair(k, v);
    }
    serializer.finish()
}

fn location_query(
    response: &reqwest::Response,
) -> (String, std::collections::HashMap<String, String>) {
    url_query(response.headers()["location"].to_str().unwrap())
}

/// A URL's address and query parameters.
fn url_query(url: &str) -> (String, std::collections::HashMap<String, String>) {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let params = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    (base.to_owned(), params)
}

/// The browser arrives at /authorize with a PKCE request; returns the sign-in.
async fn begin(h: &Harness, base: &str, client: &Client, extra: &[(&str, &str)]) -> Flow {
    let verifier = random::token::<32>();
    let challenge = b64::encode(sha256(verifier.as_bytes()));
    let state = random::token::<8>();
    let nonce = random::token::<8>();
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", client.id.as_str()),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("state", state.as_str()),
        ("nonce", nonce.as_str()),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    if !extra.iter().any(|(k, _)| *k == "scope") {
        params.push(("scope", "openid"));
    }
    params.extend_from_slice(extra);
    let response = browser()
        .get(format!("{base}/authorize?{}", query(&params)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the login page itself");
    let cookie = browser_cookie(&response);
    let page = response.text().await.unwrap();
    // The page's script continues at the sign-in's own page.
    let login_url = page
        .split("data-page=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    flow_at(h, login_url, cookie, verifier, state, nonce)
}

/// The sign-in a pushed request's `/authorize` redirected the browser to.
fn finish_begin(
    h: &Harness,
    response: &reqwest::Response,
    verifier: String,
    state: String,
    nonce: String,
) -> Flow {
    let login_url = response.headers()["location"].to_str().unwrap().to_owned();
    flow_at(
        h,
        login_url,
        browser_cookie(response),
        verifier,
        state,
        nonce,
    )
}

/// The sign-in's cookie, as the browser sends it back.
fn browser_cookie(response: &reqwest::Response) -> String {
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    cookie.split(';').next().unwrap().to_owned()
}

/// A sign-in at its own page `login_url` on this platform.
fn flow_at(
    h: &Harness,
    login_url: String,
    cookie: String,
    verifier: String,
    state: String,
    nonce: String,
) -> Flow {
    assert!(
        login_url.starts_with(&format!("{}/login/", h.url)),
        "{login_url}"
    );
    let id = login_url.rsplit('/').next().unwrap().to_owned();
    Flow {
        login_url,
        id,
        cookie,
        verifier,
        state,
        nonce,
    }
}

fn proof(key: &SigningKey, action: &str, target: &str) -> String {
    key.sign_jwt(
        WALLET_PROOF_TYP,
        &WalletProofClaims {
            action: action.into(),
            target: target.into(),
            iat: cyberid_platform::now(),
        },
    )
    .unwrap()
}

/// The sign-in as the wallet fetches it (no proof needed: it is what the login page shows).
async fn open(h: &Harness, base: &str, _key: &SigningKey, id: &str) -> (u16, Value) {
    let response = h
        .http
        .get(format!("{base}/api/v1/logins/{id}"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The claims this holder agreed to release to `client_id`, as the wallet asks for them.
async fn consented(h: &Harness, key: &SigningKey, client_id: &str) -> Vec<String> {
    let (status, list) = post(
        h,
        &format!("{}/api/v1/wallet/consents", h.url),
        &json!({ "proof": proof(key, "list-consents", "") }),
    )
    .await;
    assert_eq!(status, 200, "{list}");
    list["consents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client_id"] == client_id)
        .map(|c| {
            c["claims"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

async fn details(h: &Harness, base: &str, key: &SigningKey, id: &str) -> LoginDetails {
    let (status, body) = open(h, base, key, id).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_value(body).unwrap()
}

async fn post(h: &Harness, url: &str, body: &Value) -> (u16, Value) {
    let response = h.http.post(url).json(body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

struct Decide<'a> {
    decision: Decision,
    claims: Vec<String>,
    level: AssuranceLevel,
    pin: Option<&'a str>,
    face: Option<FaceTemplate>,
}

impl Default for Decide<'_> {
    fn default() -> Self {
        Self {
            decision: Decision::Approve,
            claims: Vec::new(),
            level: AssuranceLevel::L1,
            pin: None,
            face: None,
        }
    }
}

fn approval(key: &SigningKey, details: &LoginDetails, decide: &Decide<'_>) -> String {
    key.sign_jwt(
        APPROVAL_TYP,
        &ApprovalClaims {
            txn: details.transaction_id.clone(),
            client_id: details.client_id.clone(),
            claims: decide.claims.clone(),
            challenge: details.challenge.clone(),
            level: decide.level,
            decision: decide.decision,
            iat: cyberid_platform::now(),
        },
    )
    .unwrap()
}

/// The wallet's decision, with a PIN run through the OPRF when given.
async fn decide(
    h: &Harness,
    base: &str,
    key: &SigningKey,
    details: &LoginDetails,
    decide: Decide<'_>,
) -> (u16, Value) {
    let id = &details.transaction_id;
    let approval = approval(key, details, &decide);
    let mut body = json!({ "approval": approval });
    if let Some(pin_text) = decide.pin {
        let pin = Pin::parse(pin_text).unwrap();
        let (blinding, blinded_pin) = pin::blind(&pin).unwrap();
        let (status, evaluated) = post(
            h,
            &format!("{base}/api/v1/logins/{id}/pin"),
            &json!({ "approval": approval, "blinded_pin": blinded_pin }),
        )
        .await;
        if status != 200 {
            return (status, evaluated);
        }
        let pin_key = blinding
            .finish(&pin, evaluated["evaluated_pin"].as_str().unwrap())
            .unwrap();
        body["pin_proof"] = json!(pin_key.sign(approval.as_bytes()));
    }
    if let Some(face) = &decide.face {
        body["face_sample"] = json!(sample_to_base64(face));
    }
    post(h, &format!("{base}/api/v1/logins/{id}/decision"), &body).await
}

/// The browser comes back to the login page and is sent to the client.
async fn come_back(base: &str, flow: &Flow) -> std::collections::HashMap<String, String> {
    let url = flow.login_url.replacen(
        &flow.login_url[..flow.login_url.find("/login/").unwrap()],
        base,
        1,
    );
    let response = browser()
        .get(url)
        .header("cookie", &flow.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303, "{}", response.text().await.unwrap());
    location_query(&response).1
}

async fn token(
    h: &Harness,
    base: &str,
    client: &Client,
    code: &str,
    verifier: &str,
) -> (u16, Value) {
    let response = h
        .http
        .post(format!("{base}/token"))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", client.redirect_uri.as_str()),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Checks the ID token's signature, issuer, audience and expiry with `jsonwebtoken`.
async fn verify_id_token(h: &Harness, id_token: &str, client: &Client) -> Value {
    let jwks: jsonwebtoken::jwk::JwkSet = h
        .http
        .get(format!("{}/jwks.json", h.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    let key =
        jsonwebtoken::DecodingKey::from_jwk(jwks.find(header.kid.as_deref().unwrap()).unwrap())
            .unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[&client.id]);
    validation.set_issuer(&[&h.url]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<Value>(id_token, &key, &validation)
        .unwrap()
        .claims
}

async fn userinfo(h: &Harness, access_token: &str) -> (u16, Value) {
    let response = h
        .http
        .get(format!("{}/userinfo", h.url))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A whole sign-in: begin, approve as decided, come back, exchange the code.
async fn sign_in(
    h: &Harness,
    client: &Client,
    key: &SigningKey,
    extra: &[(&str, &str)],
    choose: impl FnOnce(&LoginDetails) -> Decide<'static>,
) -> (Value, Value, Flow) {
    let flow = begin(h, &h.url, client, extra).await;
    let details = details(h, &h.url, key, &flow.id).await;
    let (status, body) = decide(h, &h.url, key, &details, choose(&details)).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("approved")),
        "{body}"
    );
    let back = come_back(&h.url, &flow).await;
    assert_eq!(back["state"], flow.state);
    assert_eq!(back["iss"], h.url);
    let (status, tokens) = token(h, &h.url, client, &back["code"], &flow.verifier).await;
    assert_eq!(status, 200, "{tokens}");
    let id_token = verify_id_token(h, tokens["id_token"].as_str().unwrap(), client).await;
    assert_eq!(id_token["nonce"], flow.nonce);
    (id_token, tokens, flow)
}

fn adult(h: &Harness, n: usize) -> PersonRecord {
    h.adult(n).clone()
}

#[tokio::test]
async fn an_l1_sign_in_releases_only_the_defaults() {
    on_each_backend(|h| async move {
        let shop = client(&h, registration(&[])).await;
        let key = h.enrol(&adult(&h, 0)).await;
        let flow = begin(&h, &h.url, &shop, &[("scope", "openid age_over_18 name")]).await;

        // The login page names the service, shows the QR code and the number the wallet shows.
        let page = browser()
            .get(&flow.login_url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let details = details(&h, &h.url, &key, &flow.id).await;
        assert!(
            page.contains("Example Shop") && page.contains("<svg"),
            "{page}"
        );
        assert!(page.contains(&format!(">{}<", details.number_match)));
        assert!(page.contains("cyberid-wallet:?login="));
        assert!(
            details.claims.is_empty(),
            "unregistered claims are not even asked for"
        );
        let status = |h: &Harness, id: String| {
            let url = format!("{}/login/{id}/status", h.url);
            async move {
                reqwest::get(url)
                    .await
                    .unwrap()
                    .json::<Value>()
                    .await
                    .unwrap()["status"]
                    .clone()
            }
        };
        assert_eq!(status(&h, flow.id.clone()).await, "pending");

        let (_, body) = decide(&h, &h.url, &key, &details, Decide::default()).await;
        assert_eq!(body["status"], "approved");
        assert_eq!(status(&h, flow.id.clone()).await, "done");
        let back = come_back(&h.url, &flow).await;
        let (code_status, tokens) = token(&h, &h.url, &shop, &back["code"], &flow.verifier).await;
        assert_eq!(code_status, 200, "{tokens}");
        let id_token = verify_id_token(&h, tokens["id_token"].as_str().unwrap(), &shop).await;
        assert_eq!(id_token["acr"], "urn:cyberid:acr:l1");
        assert_eq!(id_token["amr"], json!(["hwk"]));
        assert_eq!(id_token["cyberid_verified"], true);
        assert!(id_token["auth_time"].as_i64().unwrap() > 0);
        let mut names: Vec<&str> = id_token
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "acr",
                "amr",
                "aud",
                "auth_time",
                "cyberid_verified",
                "exp",
                "iat",
                "iss",
                "nonce",
                "sub"
            ]
        );
        let (status_code, info) = userinfo(&h, tokens["access_token"].as_str().unwrap()).await;
        assert_eq!(status_code, 200);
        assert_eq!(
            info,
            json!({ "sub": id_token["sub"], "cyberid_verified": true })
        );
    })
    .await;
}

#[tokio::test]
async fn only_registered_requested_and_consented_claims_are_released() {
    on_each_backend(|h| async move {
        let shop = client(&h, registration(&["age_over_18", "region"])).await;
        let person = adult(&h, 1);
        let key = h.enrol(&person).await;
        let extra = [
            ("scope", "openid age_over_18 region name"),
            (
                "claims",
                r#"{"userinfo":{"network_number":null},"id_token":{"age_over_18":null}}"#,
            ),
        ];
        let (id_token, tokens, _) = sign_in(&h, &shop, &key, &extra, |details| {
            assert_eq!(
                details
                    .claims
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>(),
                ["age_over_18", "region"]
            );
            assert!(!details.force_consent);
            Decide {
                claims: vec!["age_over_18".into()],
                ..Decide::default()
            }
        })
        .await;
        assert_eq!(
            id_token["age_over_18"], true,
            "requested for the ID token and consented"
        );
        let (_, info) = userinfo(&h, tokens["access_token"].as_str().unwrap()).await;
        assert_eq!(info["age_over_18"], true);
        for withheld in ["region", "name", "network_number", "birthdate"] {
            assert!(info.get(withheld).is_none(), "{withheld} released: {info}");
        }

        // Consent is remembered, and asked again for what is new.
        let flow = begin(&h, &h.url, &shop, &extra).await;
        let again = details(&h, &h.url, &key, &flow.id).await;
        assert!(!again.force_consent);
        assert_eq!(consented(&h, &key, &shop.id).await, ["age_over_18"]);
        let (status, list) = post(
            &h,
            &format!("{}/api/v1/wallet/consents", h.url),
            &json!({ "proof": proof(&key, "list-consents", "") }),
        )
        .await;
        assert_eq!(
            (status, list["consents"][0]["rp_name"].as_str()),
            (200, Some("Example Shop"))
        );
        let (status, _) = post(
            &h,
            &format!("{}/api/v1/wallet/consents/revoke", h.url),
            &json!({ "proof": proof(&key, "revoke-consent", &shop.id) }),
        )
        .await;
        assert_eq!(status, 200);
        assert!(consented(&h, &key, &shop.id).await.is_empty());
        // What was released under the consent stops flowing at once.
        let (status, info) = userinfo(&h, tokens["access_token"].as_str().unwrap()).await;
        assert_eq!(status, 200);
        assert!(info.get("age_over_18").is_none(), "{info}");
        assert_eq!(info["cyberid_verified"], true);

        // Raw identity data only with a legal basis, and the wallet is told so.
        let registry = client(
            &h,
            Registration {
                legal_basis: Some("Residence Act §12".into()),
                ..registration(&["name", "network_number"])
            },
        )
        .await;
        let (_, tokens, _) = sign_in(
            &h,
            &registry,
            &key,
            &[("scope", "openid name network_number")],
            |details| {
                assert_eq!(details.legal_basis.as_deref(), Some("Residence Act §12"));
                assert!(details.claims.iter().all(|c| c.raw_identity));
                Decide {
                    claims: details.claims.iter().map(|c| c.name.clone()).collect(),
                    ..Decide::default()
                }
            },
        )
        .await;
        let (_, info) = userinfo(&h, tokens["access_token"].as_str().unwrap()).await;
        assert_eq!(info["name"], person.name.as_str());
        assert!(info["network_number"].as_str().unwrap().len() == 14);
    })
    .await;
}

#[tokio::test]
async fn subjects_are_pairwise_per_sector() {
    let h = start(false, |_| {}).await;
    let key = h.enrol(&adult(&h, 2)).await;
    let a = client(
        &h,
        Registration {
            sector: Some("health.example".into()),
            ..registration(&[])
        },
    )
    .await;
    let b = client(
        &h,
        Registration {
            sector: Some("health.example".into()),
            redirect_uris: vec!["https://clinic.example/cb".into()],
            ..registration(&[])
        },
    )
    .await;
    let c = client(
        &h,
        Registration {
            redirect_uris: vec!["https://games.example/cb".into()],
            ..registration(&[])
        },
    )
    .await;
    let sub = |client: Client| {
        let (h, key) = (&h, &key);
        async move {
            sign_in(h, &client, key, &[], |_| Decide::default()).await.0["sub"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let (sa, sb, sc) = (sub(a).await, sub(b).await, sub(c).await);
    assert_eq!(sa, sb, "same sector, same subject");
    assert_ne!(sa, sc, "other sector, other subject");
    let account = h
        .store
        .account_by_device(&key.verifying_key().thumbprint())
        .await
        .unwrap()
        .unwrap()
        .0;
    for s in [&sa, &sc] {
        assert!(
            !s.contains(&account.network_number),
            "the subject must not be the network number"
        );
    }
    // Stable: the same client sees the same subject at every sign-in.
    let d = client(
        &h,
        Registration {
            sector: Some("health.example".into()),
            ..registration(&[])
        },
    )
    .await;
    assert_eq!(sub(d).await, sa);
}

#[tokio::test]
async fn l2_needs_the_pin_and_wrong_pins_lock_across_nodes() {
    on_each_backend(|h| async move {
        let shop = client(&h, registration(&[])).await;
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
        let details = details(&h, &h.url, &key, &flow.id).await;
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
        let fresh = crate::details(&h, &h.url, &key, &flow.id).await;
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
    })
    .await;
}

#[tokio::test]
async fn a_pin_proof_needs_an_evaluation_counted_for_this_sign_in() {
    let h = start(false, |_| {}).await;
    let shop = client(&h, registration(&[])).await;
    let key = h.enrol(&adult(&h, 15)).await;
    let l2 = [("acr_values", "urn:cyberid:acr:l2")];
    // The holder's PIN key, as a tampered wallet might keep it after one sign-in.
    let flow = begin(&h, &h.url, &shop, &l2).await;
    let first = details(&h, &h.url, &key, &flow.id).await;
    let pin = Pin::parse("135790").unwrap();
    let (blinding, blinded_pin) = pin::blind(&pin).unwrap();
    let (_, evaluated) = post(
        &h,
        &format!("{}/api/v1/logins/{}/pin", h.url, flow.id),
        &json!({
            "approval": crate::approval(&key, &first, &Decide { level: AssuranceLevel::L2, ..Decide::default() }),
            "blinded_pin": blinded_pin
        }),
    )
    .await;
    let pin_key = blinding
        .finish(&pin, evaluated["evaluated_pin"].as_str().unwrap())
        .unwrap();
    // A later sign-in, with a proof from that key but no evaluation of its own: refused.
    let later = begin(&h, &h.url, &shop, &l2).await;
    let details = details(&h, &h.url, &key, &later.id).await;
    let approval = approval(
        &key,
        &details,
        &Decide {
            level: AssuranceLevel::L2,
            ..Decide::default()
        },
    );
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
    let l1 = crate::approval(&key, &details, &Decide::default());
    let (status, _) = post(
        &h,
        &format!("{}/api/v1/logins/{}/pin", h.url, later.id),
        &json!({ "approval": l1, "blinded_pin": pin::blind(&pin).unwrap().1 }),
    )
    .await;
    assert_eq!(status, 400);
    let for_first = crate::approval(
        &key,
        &first,
        &Decide {
            level: AssuranceLevel::L2,
            ..Decide::default()
        },
    );
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
            "approval": crate::approval(&key, &details, &Decide { level: AssuranceLevel::L2, ..Decide::default() }),
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
async fn failed_face_matches_lock_l3() {
    let h = start(false, |_| {}).await;
    let shop = client(&h, registration(&[])).await;
    let person = adult(&h, 16);
    let key = h.enrol(&person).await;
    let flow = begin(&h, &h.url, &shop, &[("acr_values", "urn:cyberid:acr:l3")]).await;
    let details = details(&h, &h.url, &key, &flow.id).await;
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
async fn prompt_consent_asks_again() {
    let h = start(false, |_| {}).await;
    let shop = client(&h, registration(&["region"])).await;
    let key = h.enrol(&adult(&h, 18)).await;
    sign_in(&h, &shop, &key, &[("scope", "openid region")], |_| Decide {
        claims: vec!["region".into()],
        ..Decide::default()
    })
    .await;
    let remembered = begin(&h, &h.url, &shop, &[("scope", "openid region")]).await;
    assert!(
        !details(&h, &h.url, &key, &remembered.id)
            .await
            .force_consent
    );
    assert_eq!(consented(&h, &key, &shop.id).await, ["region"]);
    let forced = begin(
        &h,
        &h.url,
        &shop,
        &[("scope", "openid region"), ("prompt", "consent")],
    )
    .await;
    assert!(details(&h, &h.url, &key, &forced.id).await.force_consent);
}

#[tokio::test]
async fn l3_matches_the_face_and_refuses_an_impostor() {
    let h = start(false, |_| {}).await;
    let shop = client(&h, registration(&[])).await;
    let person = adult(&h, 4);
    let key = h.enrol(&person).await;
    let l3 = [("acr_values", "urn:cyberid:acr:l3")];
    let flow = begin(&h, &h.url, &shop, &l3).await;
    let details = details(&h, &h.url, &key, &flow.id).await;
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
    let (_, tokens) = token(&h, &h.url, &shop, &back["code"], &flow.verifier).await;
    let id_token = verify_id_token(&h, tokens["id_token"].as_str().unwrap(), &shop).await;
    assert_eq!(
        (id_token["acr"].as_str(), &id_token["amr"]),
        (Some("urn:cyberid:acr:l3"), &json!(["hwk", "pin", "face"]))
    );
}

#[tokio::test]
async fn an_unreachable_level_is_an_error_never_a_downgrade() {
    let h = start(false, |_| {}).await;
    let shop = client(&h, registration(&[])).await;
    let key = h.enrol(&adult(&h, 5)).await;
    let flow = begin(&h, &h.url, &shop, &[("acr_values", "urn:cyberid:acr:l3")]).await;
    let details = details(&h, &h.url, &key, &flow.id).await;
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
            query(&[
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

#[tokio::test]
async fn declined_consent_and_expired_sign_ins_end_with_access_denied() {
    let h = start(false, |_| {}).await;
    let shop = client(&h, registration(&[])).await;
    let key = h.enrol(&adult(&h, 6)).await;
    let flow = begin(&h, &h.url, &shop, &[]).await;
    let details = details(&h, &h.url, &key, &flow.id).await;
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
    let shop = client(&expiring, registration(&[])).await;
    let key = expiring.enrol(&adult(&expiring, 6)).await;
    let flow = begin(&expiring, &expiring.url, &shop, &[]).await;
    let (status, body) = open(&expiring, &expiring.url, &key, &flow.id).await;
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
    let shop = client(&h, registration(&[])).await;
    let key = h.enrol(&adult(&h, 7)).await;
    let first = begin(&h, &h.url, &shop, &[]).await;
    let second = begin(&h, &h.url, &shop, &[]).await;
    let first_details = details(&h, &h.url, &key, &first.id).await;
    let signed_for_first = approval(&key, &first_details, &Decide::default());
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
    let second_details = details(&h, &h.url, &key, &second.id).await;
    let forged = approval(&stranger, &second_details, &Decide::default());
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
    let shop = client(&h, registration(&[])).await;
    let key = h.enrol(&adult(&h, 8)).await;
    let flow = begin(&h, &h.url, &shop, &[]).await;
    let details = details(&h, &h.url, &key, &flow.id).await;
    let (unkeyed, _) = SigningKey::generate().unwrap();
    let (unbound, _) = SigningKey::generate().unwrap();
    let unbound = unbound.with_kid("no-such-device");
    let cases = [
        ("not-a-jws".to_owned(), 400, "invalid_request"),
        (
            approval(&unkeyed, &details, &Decide::default()),
            401,
            "invalid_device",
        ),
        (
            approval(&unbound, &details, &Decide::default()),
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

#[tokio::test]
async fn pkce_redirect_uri_and_client_are_checked_before_anything_else() {
    let h = start(false, |_| {}).await;
    let shop = client(&h, registration(&[])).await;
    let challenge = b64::encode(sha256(b"a verifier that is long enough to be valid here"));
    let base = |extra: &[(&str, &str)], skip: &[&str]| {
        let mut params: Vec<(&str, String)> = vec![
            ("response_type", "code".into()),
            ("client_id", shop.id.clone()),
            ("redirect_uri", shop.redirect_uri.clone()),
            ("scope", "openid".into()),
            ("state", "st".into()),
            ("code_challenge", challenge.clone()),
            ("code_challenge_method", "S256".into()),
        ];
        params.retain(|(k, _)| !skip.contains(k) && !extra.iter().any(|(e, _)| e == k));
        params.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        format!("{}/authorize?{}", h.url, query(&pairs))
    };
    let get = |url: String| async move { browser().get(url).send().await.unwrap() };

    for (extra, skip, code) in [
        (
            vec![],
            vec!["code_challenge", "code_challenge_method"],
            "invalid_request",
        ),
        (
            vec![("code_challenge_method", "plain")],
            vec![],
            "invalid_request",
        ),
        (vec![("code_challenge", "short")], vec![], "invalid_request"),
        (
            vec![("response_type", "token")],
            vec![],
            "unsupported_response_type",
        ),
        (vec![("scope", "profile")], vec![], "invalid_scope"),
        (vec![("prompt", "none")], vec![], "interaction_required"),
        (vec![("claims", "{not json")], vec![], "invalid_request"),
    ] {
        let response = get(base(&extra, &skip)).await;
        assert_eq!(response.status(), 303, "{extra:?}");
        let (target, params) = location_query(&response);
        assert_eq!(target, shop.redirect_uri);
        assert_eq!(params["error"], code, "{extra:?}");
        assert!(
            params["state"] == "st" && params["iss"] == h.url,
            "{params:?}"
        );
    }
    // Unregistered redirect URI, unknown or missing client: a platform page, no redirect.
    for url in [
        base(&[("redirect_uri", "https://evil.example/cb")], &[]),
        base(&[("redirect_uri", "https://shop.example/callback/x")], &[]),
        base(&[("client_id", "rp_unknown")], &[]),
        base(&[], &["client_id"]),
        format!("{}&state=twice", base(&[], &[])),
    ] {
        let response = get(url.clone()).await;
        assert_eq!(response.status(), 400, "{url}");
        assert!(response.headers().get("location").is_none());
        assert!(response.text().await.unwrap().contains("<h1"));
    }

    // A wrong verifier fails and does not burn the code; the right one then works.
    let key = h.enrol(&adult(&h, 8)).await;
    let flow = begin(&h, &h.url, &shop, &[]).await;
    let details = details(&h, &h.url, &key, &flow.id).await;
    decide(&h, &h.url, &key, &details, Decide::default()).await;
    let back = come_back(&h.url, &flow).await;
    let (status, body) = token(&h, &h.url, &shop, &back["code"], &random::token::<32>()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let wrong_secret = Client {
        secret: Some("nope".into()),
        id: shop.id.clone(),
        redirect_uri: shop.redirect_uri.clone(),
    };
    let (status, body) = token(&h, &h.url, &wrong_secret, &back["code"], &flow.verifier).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    // The code is bound to its client and redirect URI.
    let other = client(&h, registration(&[])).await;
    let (status, body) = token(&h, &h.url, &other, &back["code"], &flow.verifier).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let wrong_uri = Client {
        redirect_uri: "https://shop.example/other".into(),
        id: shop.id.clone(),
        secret: shop.secret.clone(),
    };
    let (status, body) = token(&h, &h.url, &wrong_uri, &back["code"], &flow.verifier).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, _) = token(&h, &h.url, &shop, &back["code"], &flow.verifier).await;
    assert_eq!(status, 200);
    // Only the browser that started the sign-in gets the code.
    let response = browser().get(&flow.login_url).send().await.unwrap();
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn a_replayed_code_revokes_what_it_issued() {
    on_each_backend(|h| async move {
        let shop = client(&h, registration(&[])).await;
        let key = h.enrol(&adult(&h, 9)).await;
        let flow = begin(&h, &h.url, &shop, &[]).await;
        let details = details(&h, &h.url, &key, &flow.id).await;
        decide(&h, &h.url, &key, &details, Decide::default()).await;
        let back = come_back(&h.url, &flow).await;
        let (_, tokens) = token(&h, &h.url, &shop, &back["code"], &flow.verifier).await;
        let access_token = tokens["access_token"].as_str().unwrap();
        assert_eq!(userinfo(&h, access_token).await.0, 200);
        let (status, body) = token(&h, &h.url, &shop, &back["code"], &flow.verifier).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant"))
        );
        let (status, body) = userinfo(&h, access_token).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_token"))
        );
        assert_eq!(userinfo(&h, "made-up").await.0, 401);
    })
    .await;
}

/// NUL has no place in an OAuth parameter (and a stored request holding one could not be
/// read by PostgreSQL's JSON functions): refused at the front and the back channel.
#[tokio::test]
async fn a_nul_in_a_parameter_is_refused() {
    let h = start(false, |_| {}).await;
    let shop = client(&h, registration(&[])).await;
    let key = h.enrol(&adult(&h, 12)).await;
    let challenge = b64::encode(sha256(random::token::<32>().as_bytes()));
    let mut params = code_request(&shop, &challenge);
    params[4] = ("state", "s\0x");
    let response = browser()
        .get(format!("{}/authorize?{}", h.url, query(&params)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none());

    // A code that would otherwise be good, presented with a NUL in another parameter.
    let flow = begin(&h, &h.url, &shop, &[]).await;
    let details = details(&h, &h.url, &key, &flow.id).await;
    decide(&h, &h.url, &key, &details, Decide::default()).await;
    let back = come_back(&h.url, &flow).await;
    let with_nul = format!("{}\0", flow.verifier);
    let (status, body) = token(&h, &h.url, &shop, &back["code"], &with_nul).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    // Nothing was used up: the code still works.
    let (status, body) = token(&h, &h.url, &shop, &back["code"], &flow.verifier).await;
    assert_eq!(status, 200, "{body}");
}

/// A status request's answer, sent with `cookie` (60 s at most: a request that is never
/// woken fails the test).
async fn status_answer(url: String, cookie: String) -> Value {
    let request = reqwest::Client::new()
        .get(url)
        .header("cookie", cookie)
        .send();
    let response = tokio::time::timeout(Duration::from_secs(60), request)
        .await
        .expect("the status request was not woken")
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// A status request's `status`, asked without a cookie.
async fn status_of(url: String) -> Value {
    status_answer(url, String::new()).await["status"].clone()
}

/// Until `count` requests wait for sign-in `id` on the harness's node.
async fn until_waiting(h: &Harness, id: &str, count: usize) {
    tokio::time::timeout(Duration::from_secs(30), async {
        while h.platform.waiting_for_decision(id) < count {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the status requests did not start waiting");
}

/// Waiting and re-checking for an hour: only a wake-up answers in time.
fn wait_long(settings: &mut Settings) {
    settings.sign_in.decision_wait_seconds = 3600;
    settings.sign_in.decision_recheck_ms = 3_600_000;
}

/// The login page's status request waits for the decision and is woken by it at once
/// (nothing else could answer it within the test's time); a sign-in has at most four
/// waiting requests, beyond which the status is answered at once.
#[tokio::test]
async fn the_status_request_waits_for_the_decision() {
    let h = start(false, wait_long).await;
    let shop = client(&h, registration(&[])).await;
    let key = h.enrol(&adult(&h, 12)).await;
    let flow = begin(&h, &h.url, &shop, &[]).await;
    let url = format!("{}/login/{}/status", h.url, flow.id);
    // Without `wait=1` (absent, another value, repeated oddly), the answer is immediate:
    // only a wake-up could answer a held request within the test's time.
    for query in [
        "",
        "?wait=0",
        "?wait=yes",
        "?wait",
        "?wait=%31x",
        "?wait=1%00",
    ] {
        assert_eq!(
            status_of(format!("{url}{query}")).await,
            "pending",
            "{query}"
        );
    }
    let waiting: Vec<_> = (0..4)
        .map(|_| tokio::spawn(status_of(format!("{url}?wait=1"))))
        .collect();
    until_waiting(&h, &flow.id, 4).await;
    // A fifth is not held.
    assert_eq!(status_of(format!("{url}?wait=1")).await, "pending");
    let details = details(&h, &h.url, &key, &flow.id).await;
    let (_, body) = decide(&h, &h.url, &key, &details, Decide::default()).await;
    assert_eq!(body["status"], "approved");
    for answer in waiting {
        assert_eq!(answer.await.unwrap(), "done");
    }
    assert_eq!(h.platform.waiting_for_decision(&flow.id), 0);
    // A decided sign-in answers at once, waiting or not; only the browser that started it
    // is told where to go (another sign-in's cookie is not this one's), and it is where
    // its login page would send it.
    assert_eq!(status_of(format!("{url}?wait=1")).await, "done");
    let other = begin(&h, &h.url, &shop, &[]).await;
    for cookie in ["", other.cookie.as_str()] {
        let answer = status_answer(format!("{url}?wait=1"), cookie.to_owned()).await;
        assert_eq!(answer, json!({ "status": "done" }), "cookie {cookie:?}");
    }
    let answer = status_answer(format!("{url}?wait=1"), flow.cookie.clone()).await;
    let (target, told) = url_query(answer["location"].as_str().unwrap());
    assert_eq!(target, shop.redirect_uri);
    let back = come_back(&h.url, &flow).await;
    assert_eq!(told, back);
    assert_eq!(told["state"], flow.state);
    assert!(told.contains_key("code"));
    let unknown = reqwest::get(format!("{}/login/nosuch/status?wait=1", h.url))
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

/// A held status request that nothing wakes answers `pending` when the node's wait is over,
/// and `done` once the sign-in expires while it waits (expired or declined, the browser
/// that started it is sent to the client with the error, as its login page would send it).
#[tokio::test]
async fn a_held_status_request_ends_with_the_wait_or_the_sign_in() {
    let h = start(false, |settings| {
        settings.sign_in.decision_wait_seconds = 1;
        settings.sign_in.decision_recheck_ms = 3_600_000;
    })
    .await;
    let shop = client(&h, registration(&[])).await;
    let key = h.enrol(&adult(&h, 14)).await;
    let flow = begin(&h, &h.url, &shop, &[]).await;
    let url = format!("{}/login/{}/status?wait=1", h.url, flow.id);
    assert_eq!(status_of(url.clone()).await, "pending");
    assert_eq!(h.platform.waiting_for_decision(&flow.id), 0);

    let declined = begin(&h, &h.url, &shop, &[]).await;
    let details = details(&h, &h.url, &key, &declined.id).await;
    let decline = Decide {
        decision: Decision::Decline,
        ..Decide::default()
    };
    let (_, body) = decide(&h, &h.url, &key, &details, decline).await;
    assert_eq!(body["status"], "declined");
    let url = format!("{}/login/{}/status?wait=1", h.url, declined.id);
    assert_eq!(
        status_answer(url.clone(), String::new()).await,
        json!({ "status": "done" })
    );
    let answer = status_answer(url, declined.cookie.clone()).await;
    let (target, told) = url_query(answer["location"].as_str().unwrap());
    assert_eq!(target, shop.redirect_uri);
    assert_eq!(told["error"], "access_denied");
    assert_eq!(told, come_back(&h.url, &declined).await);

    // A sign-in that lives one second, waited for an hour: its expiry ends the wait.
    let h = start(false, |settings| {
        wait_long(settings);
        settings.sign_in.lifetime_seconds = 1;
    })
    .await;
    let shop = client(&h, registration(&[])).await;
    let flow = begin(&h, &h.url, &shop, &[]).await;
    let url = format!("{}/login/{}/status?wait=1", h.url, flow.id);
    let answer = tokio::time::timeout(
        Duration::from_secs(30),
        status_answer(url, flow.cookie.clone()),
    )
    .await
    .expect("the expiry did not end the wait");
    assert_eq!(answer["status"], "done");
    let (_, told) = url_query(answer["location"].as_str().unwrap());
    assert!(
        told.contains_key("error") && !told.contains_key("code"),
        "{told:?}"
    );
}

/// Two nodes on one store: a login page waiting on one node is woken by the decision the
/// wallet sends to the other, found by the node's periodic read for all its waiting pages
/// (every 50 ms here; waiting is set to an hour).
#[tokio::test]
async fn a_decision_on_another_node_wakes_the_waiting_page() {
    let tweak = |settings: &mut Settings| {
        settings.sign_in.decision_wait_seconds = 3600;
        settings.sign_in.decision_recheck_ms = 50;
    };
    on_each_backend_with(tweak, |h| async move {
        let other = h.second_node(tweak).await;
        let shop = client(&h, registration(&[])).await;
        let key = h.enrol(&adult(&h, 13)).await;
        let flow = begin(&h, &h.url, &shop, &[]).await;
        let waiting = tokio::spawn(status_of(format!(
            "{}/login/{}/status?wait=1",
            h.url, flow.id
        )));
        until_waiting(&h, &flow.id, 1).await;
        let details = details(&h, &other, &key, &flow.id).await;
        let (_, body) = decide(&h, &other, &key, &details, Decide::default()).await;
        assert_eq!(body["status"], "approved");
        assert_eq!(waiting.await.unwrap(), "done", "{}", h.store.backend());
    })
    .await;
}

#[tokio::test]
async fn a_suspended_client_is_stopped_at_once() {
    let h = start(false, |_| {}).await;
    let shop = client(&h, registration(&[])).await;
    let key = h.enrol(&adult(&h, 10)).await;
    let flow = begin(&h, &h.url, &shop, &[]).await;
    let details = details(&h, &h.url, &key, &flow.id).await;
    decide(&h, &h.url, &key, &details, Decide::default()).await;
    let back = come_back(&h.url, &flow).await;
    // A complete request, pushed before the suspension and used after it.
    let challenge = b64::encode(sha256(random::token::<32>().as_bytes()));
    let params = code_request(&shop, &challenge);
    let push = || {
        h.http
            .post(format!("{}/par", h.url))
            .basic_auth(&shop.id, shop.secret.clone())
            .form(&params)
            .send()
    };
    let pushed: Value = push().await.unwrap().json().await.unwrap();
    let request_uri = pushed["request_uri"].as_str().unwrap().to_owned();

    // Suspended in the store, as an operator on any node does it: this node has just used
    // the client and remembers it as active.
    assert!(
        h.store
            .set_relying_party_suspended(&shop.id, true)
            .await
            .unwrap()
    );
    for request in [
        query(&params),
        query(&[("client_id", &shop.id), ("request_uri", &request_uri)]),
    ] {
        let response = browser()
            .get(format!("{}/authorize?{request}", h.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{request}");
        assert!(response.headers().get("location").is_none());
    }
    // The store's refusal taught this node: its copy now reads as suspended, so the next
    // requests are refused by the registration read instead of by a failed sign-in insert.
    let known = h.platform.client(&shop.id).await.unwrap().unwrap();
    assert!(known.suspended);
    let refused = push().await.unwrap();
    assert_eq!(refused.status(), 401);
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(refused["error"], "invalid_client");
    let (status, body) = token(&h, &h.url, &shop, &back["code"], &flow.verifier).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let response = browser()
        .get(format!(
            "{}/authorize?client_id={}&redirect_uri={}",
            h.url, shop.id, shop.redirect_uri
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert!(response.headers().get("location").is_none());
    h.store
        .set_relying_party_suspended(&shop.id, false)
        .await
        .unwrap();
    sign_in(&h, &shop, &key, &[], |_| Decide::default()).await;
}

#[tokio::test]
async fn pushed_authorization_requests() {
    let h = start(false, |_| {}).await;
    let shop = client(
        &h,
        Registration {
            require_par: true,
            ..registration(&[])
        },
    )
    .await;
    let key = h.enrol(&adult(&h, 11)).await;
    // A front-channel request is refused for a client that must push.
    let verifier = random::token::<32>();
    let challenge = b64::encode(sha256(verifier.as_bytes()));
    let params = code_request(&shop, &challenge);
    let response = browser()
        .get(format!("{}/authorize?{}", h.url, query(&params)))
        .send()
        .await
        .unwrap();
    assert_eq!(location_query(&response).1["error"], "invalid_request");

    let pushed = |secret: Option<String>| {
        let (h, shop) = (&h, &shop);
        async move {
            h.http
                .post(format!("{}/par", h.url))
                .basic_auth(&shop.id, secret)
                .form(&params)
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(pushed(Some("wrong".into())).await.status(), 401);
    let response = pushed(shop.secret.clone()).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    let request_uri = body["request_uri"].as_str().unwrap().to_owned();
    let authorize = format!(
        "{}/authorize?{}",
        h.url,
        query(&[("client_id", &shop.id), ("request_uri", &request_uri)])
    );
    let response = browser().get(&authorize).send().await.unwrap();
    assert_eq!(response.status(), 303);
    let flow = finish_begin(&h, &response, verifier, "s1".into(), "n1".into());
    // The request_uri is single-use.
    assert_eq!(
        browser().get(&authorize).send().await.unwrap().status(),
        400
    );
    let details = details(&h, &h.url, &key, &flow.id).await;
    decide(&h, &h.url, &key, &details, Decide::default()).await;
    let back = come_back(&h.url, &flow).await;
    assert_eq!(back["state"], "s1");
    let (status, tokens) = token(&h, &h.url, &shop, &back["code"], &flow.verifier).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(
        verify_id_token(&h, tokens["id_token"].as_str().unwrap(), &shop).await["nonce"],
        "n1"
    );
}

#[tokio::test]
async fn private_key_jwt_client_authentication() {
    let h = start(false, |_| {}).await;
    let (client_key, _) = SigningKey::generate().unwrap();
    let client_key = client_key.with_kid("rp-key-1");
    let jwks = json!({ "keys": [client_key.public_jwk()] }).to_string();
    let shop = client(
        &h,
        Registration {
            auth_method: ClientAuthMethod::PrivateKeyJwt,
            jwks: Some(jwks),
            ..registration(&[])
        },
    )
    .await;
    let key = h.enrol(&adult(&h, 12)).await;
    let flow = begin(&h, &h.url, &shop, &[]).await;
    let details = details(&h, &h.url, &key, &flow.id).await;
    decide(&h, &h.url, &key, &details, Decide::default()).await;
    let back = come_back(&h.url, &flow).await;
    let exchange = |signer: &SigningKey| {
        let now = cyberid_platform::now();
        let assertion = signer
            .sign_jwt("JWT", &json!({ "iss": shop.id, "sub": shop.id, "aud": format!("{}/token", h.url), "exp": now + 60, "iat": now, "jti": random::token::<8>() }))
            .unwrap();
        let request = h.http.post(format!("{}/token", h.url)).form(&[
            ("grant_type", "authorization_code"),
            ("code", back["code"].as_str()),
            ("redirect_uri", shop.redirect_uri.as_str()),
            ("code_verifier", flow.verifier.as_str()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion.as_str()),
        ]);
        async move { request.send().await.unwrap() }
    };
    let (other, _) = SigningKey::generate().unwrap();
    let response = exchange(&other.with_kid("rp-key-1")).await;
    assert_eq!(response.status(), 401);
    let response = exchange(&client_key).await;
    assert_eq!(response.status(), 200);
    // An assertion is single-use: the same jti again is refused.
    let now = cyberid_platform::now();
    let assertion = client_key
        .sign_jwt("JWT", &json!({ "iss": shop.id, "sub": shop.id, "aud": h.url, "exp": now + 60, "jti": "once" }))
        .unwrap();
    let par = |assertion: String| {
        let request = h.http.post(format!("{}/par", h.url)).form(&[
            ("response_type", "code".to_owned()),
            ("client_id", shop.id.clone()),
            ("redirect_uri", shop.redirect_uri.clone()),
            ("scope", "openid".to_owned()),
            ("code_challenge", b64::encode(sha256(b"v"))),
            ("code_challenge_method", "S256".to_owned()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
            ),
            ("client_assertion", assertion),
        ]);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(par(assertion.clone()).await, 201, "private_key_jwt at PAR");
    assert_eq!(par(assertion).await, 401, "the same jti twice");
    let tokens: Value = response.json().await.unwrap();
    verify_id_token(&h, tokens["id_token"].as_str().unwrap(), &shop).await;
}

#[tokio::test]
async fn a_sign_in_begun_at_one_node_completes_at_another() {
    on_each_backend(|h| async move {
        let shop = client(&h, registration(&[])).await;
        let key = h.enrol(&adult(&h, 13)).await;
        let node_b = h.second_node(|_| {}).await;
        let flow = begin(&h, &h.url, &shop, &[]).await;
        let details = details(&h, &node_b, &key, &flow.id).await;
        let (_, body) = decide(&h, &node_b, &key, &details, Decide::default()).await;
        assert_eq!(body["status"], "approved");
        let back = come_back(&node_b, &flow).await;
        let (status, tokens) = token(&h, &node_b, &shop, &back["code"], &flow.verifier).await;
        assert_eq!(status, 200, "{tokens}");
        verify_id_token(&h, tokens["id_token"].as_str().unwrap(), &shop).await;
    })
    .await;
}

#[tokio::test]
async fn the_wallet_library_approves_from_a_login_page_url() {
    let h = start(false, |_| {}).await;
    let shop = client(&h, registration(&["age_over_18"])).await;
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
async fn discovery_is_complete() {
    let h = start(false, |_| {}).await;
    let config: Value = reqwest::get(format!("{}/.well-known/openid-configuration", h.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["issuer"], h.url);
    for (field, value) in [
        ("authorization_endpoint", "/authorize"),
        ("token_endpoint", "/token"),
        ("userinfo_endpoint", "/userinfo"),
        ("jwks_uri", "/jwks.json"),
        ("pushed_authorization_request_endpoint", "/par"),
    ] {
        let url = config[field].as_str().unwrap();
        assert_eq!(url, format!("{}{value}", h.url));
    }
    assert_eq!(config["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        config["id_token_signing_alg_values_supported"],
        json!(["ES256"])
    );
    assert_eq!(config["subject_types_supported"], json!(["pairwise"]));
    assert_eq!(
        config["authorization_response_iss_parameter_supported"],
        true
    );
}
