//! Bad requests to the sign-in's endpoints, each refused with its documented code and
//! status, and none of them changing what it must not.

use cyberid_crypto::jose::SigningKey;
use cyberid_protocol::{APPROVAL_TYP, ApprovalClaims, Decision, LoginDetails};
use serde_json::{Value, json};

use crate::common::{Harness, start};
use crate::support::adult;
use crate::support::browser::{begin, browser, location_query, pkce, query_string};
use crate::support::client::{Client, code_request, registered_client, registration};
use crate::support::wallet::{Decide, decide, details, open, post, proof};

/// A response's status, its JSON body's `error`, and its `WWW-Authenticate` header.
async fn refusal(response: reqwest::Response) -> (u16, String, Option<String>) {
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: Value = response.json().await.unwrap();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
        challenge,
    )
}

async fn token_request(h: &Harness, client: &Client, form: &[(&str, &str)]) -> (u16, String) {
    let response = h
        .http
        .post(format!("{}/token", h.url))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(form)
        .send()
        .await
        .unwrap();
    let (status, error, _) = refusal(response).await;
    (status, error)
}

/// A form's fields.
type Form<'a> = &'a [(&'a str, &'a str)];

#[tokio::test]
async fn the_token_endpoint_names_what_is_wrong() {
    let h = start(false, |_| {}).await;
    let shop = registered_client(&h, registration(&[])).await;
    let cases: [(Form, (u16, &str)); 4] = [
        (&[("code", "x")], (400, "invalid_request")),
        (
            &[("grant_type", "refresh_token"), ("refresh_token", "x")],
            (400, "unsupported_grant_type"),
        ),
        (
            &[("grant_type", "authorization_code")],
            (400, "invalid_request"),
        ),
        (
            &[
                ("grant_type", "authorization_code"),
                ("code", "forged.code"),
            ],
            (400, "invalid_grant"),
        ),
    ];
    for (form, expected) in cases {
        let (status, error) = token_request(&h, &shop, form).await;
        assert_eq!((status, error.as_str()), expected, "{form:?}");
    }
}

#[tokio::test]
async fn userinfo_needs_a_bearer_token() {
    let h = start(false, |_| {}).await;
    let url = format!("{}/userinfo", h.url);
    let without = refusal(h.http.get(&url).send().await.unwrap()).await;
    assert_eq!(
        without,
        (401, "invalid_request".into(), Some("Bearer".into()))
    );
    let basic = h.http.get(&url).basic_auth("a", Some("b")).send().await;
    assert_eq!(refusal(basic.unwrap()).await, without);
    let forged = h.http.get(&url).bearer_auth("id.123.tag").send().await;
    let (status, error, challenge) = refusal(forged.unwrap()).await;
    assert_eq!((status, error.as_str()), (401, "invalid_token"));
    assert!(challenge.unwrap().contains("error=\"invalid_token\""));
}

/// `/par` answers every refusal as JSON (what `/authorize` would send back in a redirect)
/// and stores nothing for it.
#[tokio::test]
async fn pushed_requests_are_refused_as_json() {
    let h = start(false, |_| {}).await;
    let shop = registered_client(&h, registration(&[])).await;
    let (_, challenge) = pkce();
    let push = |extra: Vec<(&'static str, &'static str)>, authenticated: bool| {
        let mut form: Vec<(&str, &str)> = code_request(&shop, &challenge)
            .into_iter()
            .filter(|(name, _)| !extra.iter().any(|(other, _)| other == name))
            .collect();
        form.extend(extra);
        let mut request = h.http.post(format!("{}/par", h.url)).form(&form);
        if authenticated {
            request = request.basic_auth(&shop.id, shop.secret.as_deref());
        }
        async move { refusal(request.send().await.unwrap()).await }
    };
    let (status, error, _) = push(vec![("scope", "profile")], true).await;
    assert_eq!((status, error.as_str()), (400, "invalid_scope"));
    let (status, error, _) = push(vec![("request", "eyJ")], true).await;
    assert_eq!((status, error.as_str()), (400, "request_not_supported"));
    let (status, error, _) = push(vec![("request_uri", "urn:x")], true).await;
    assert_eq!((status, error.as_str()), (400, "invalid_request"));
    let (status, error, _) = push(vec![], false).await;
    assert_eq!((status, error.as_str()), (401, "invalid_client"));
    assert_eq!(sign_ins_stored(&h), 0);
}

/// Sign-ins in the harness's SQLite file, counted behind the store's back.
fn sign_ins_stored(h: &Harness) -> i64 {
    sqlite(h)
        .query_row("SELECT count(*) FROM login_transactions", [], |row| {
            row.get(0)
        })
        .unwrap()
}

fn sqlite(h: &Harness) -> rusqlite::Connection {
    rusqlite::Connection::open(h.data.path().join(cyberid_store::sqlite::DATABASE_FILE)).unwrap()
}

/// A request object in the browser's request goes back to the client, with the standard
/// code and the client's state.
#[tokio::test]
async fn a_request_object_is_refused_back_to_the_client() {
    let h = start(false, |_| {}).await;
    let shop = registered_client(&h, registration(&[])).await;
    let (_, challenge) = pkce();
    let mut params = code_request(&shop, &challenge).to_vec();
    params.push(("request", "eyJhbGciOiJub25lIn0.e30."));
    let response = browser()
        .get(format!("{}/authorize?{}", h.url, query_string(&params)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let (target, told) = location_query(&response);
    assert_eq!(target, shop.redirect_uri);
    assert_eq!(told["error"], "request_not_supported");
    assert_eq!(told["state"], "s1");
}

/// An approval dated an hour ago, signed by the right key for the right sign-in.
fn stale_approval(key: &SigningKey, details: &LoginDetails) -> String {
    key.sign_jwt(
        APPROVAL_TYP,
        &ApprovalClaims {
            txn: details.transaction_id.clone(),
            client_id: details.client_id.clone(),
            claims: Vec::new(),
            challenge: details.challenge.clone(),
            level: details.level,
            decision: Decision::Approve,
            iat: cyberid_platform::now() - 3600,
        },
    )
    .unwrap()
}

/// The wallet's refusals leave the sign-in waiting, so that the holder can try again.
#[tokio::test]
async fn the_wallet_is_refused_with_a_reason_and_the_sign_in_waits() {
    let h = start(false, |_| {}).await;
    let shop = registered_client(&h, registration(&["region"])).await;
    let key = h.enrol(&adult(&h, 20)).await;

    assert_eq!(
        open(&h, &h.url, "no-such-sign-in").await.1["error"],
        "login_closed"
    );

    let flow = begin(&h, &h.url, &shop, &[("scope", "openid")]).await;
    let details = details(&h, &h.url, &flow.id).await;
    // A claim the service did not ask for.
    let (status, body) = decide(
        &h,
        &h.url,
        &key,
        &details,
        Decide {
            claims: vec!["region".into()],
            ..Decide::default()
        },
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    // A stale approval.
    let url = format!("{}/api/v1/logins/{}/decision", h.url, flow.id);
    let (status, body) = post(
        &h,
        &url,
        &json!({ "approval": stale_approval(&key, &details) }),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_device"))
    );
    // Not JSON at all.
    let response = h
        .http
        .post(&url)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(refusal(response).await.0, 400);
    assert_eq!(open(&h, &h.url, &flow.id).await.0, 200, "still waiting");

    // A suspended account's device is refused.
    sqlite(&h)
        .execute("UPDATE accounts SET status = 'suspended'", [])
        .unwrap();
    let (status, body) = decide(&h, &h.url, &key, &details, Decide::default()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("account_inactive"))
    );
    assert_eq!(open(&h, &h.url, &flow.id).await.0, 200, "still waiting");
}

#[tokio::test]
async fn consent_requests_need_a_proof_for_what_they_do() {
    let h = start(false, |_| {}).await;
    let shop = registered_client(&h, registration(&[])).await;
    let key = h.enrol(&adult(&h, 21)).await;
    let consents = format!("{}/api/v1/wallet/consents", h.url);
    let revoke = format!("{consents}/revoke");

    let (status, body) = post(&h, &consents, &json!({ "proof": "not a JWS" })).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let wrong_action = proof(&key, "revoke-consent", "");
    let (status, body) = post(&h, &consents, &json!({ "proof": wrong_action })).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_device"))
    );
    let (other_key, _) = SigningKey::generate().unwrap();
    let kid = other_key.verifying_key().thumbprint();
    let unbound = proof(&other_key.with_kid(kid), "list-consents", "");
    let (status, body) = post(&h, &consents, &json!({ "proof": unbound })).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_device"))
    );
    let nothing_to_revoke = proof(&key, "revoke-consent", &shop.id);
    let (status, body) = post(&h, &revoke, &json!({ "proof": nothing_to_revoke })).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
}
