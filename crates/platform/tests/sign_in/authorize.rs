//! The authorization request: PKCE, redirect URI and client checked before anything is
//! redirected; pushed requests (PAR); a suspended client stopped at once; discovery.

use cyberid_crypto::{b64, random, sha256};
use cyberid_platform::rp::Registration;
use serde_json::{Value, json};

use crate::common::start;
use crate::support::browser::{
    begin, browser, come_back, flow_redirected_to, location_query, pkce, query_string,
};
use crate::support::client::{
    code_request, exchange_code, registered_client, registration, verify_id_token,
};
use crate::support::wallet::{Decide, decide, details};
use crate::support::{adult, sign_in};

#[tokio::test]
async fn pkce_redirect_uri_and_client_are_checked_before_anything_else() {
    let h = start(false, |_| {}).await;
    let shop = registered_client(&h, registration(&[])).await;
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
        format!("{}/authorize?{}", h.url, query_string(&pairs))
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
}

/// NUL has no place in an OAuth parameter (and a stored request holding one could not be
/// read by PostgreSQL's JSON functions): refused at the front and the back channel.
#[tokio::test]
async fn a_nul_in_a_parameter_is_refused() {
    let h = start(false, |_| {}).await;
    let shop = registered_client(&h, registration(&[])).await;
    let key = h.enrol(&adult(&h, 12)).await;
    let challenge = b64::encode(sha256(random::token::<32>().as_bytes()));
    let mut params = code_request(&shop, &challenge);
    params[4] = ("state", "s\0x");
    let response = browser()
        .get(format!("{}/authorize?{}", h.url, query_string(&params)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none());

    // A code that would otherwise be good, presented with a NUL in another parameter.
    let flow = begin(&h, &h.url, &shop, &[]).await;
    let details = details(&h, &h.url, &flow.id).await;
    decide(&h, &h.url, &key, &details, Decide::default()).await;
    let back = come_back(&h.url, &flow).await;
    let with_nul = format!("{}\0", flow.verifier);
    let (status, body) = exchange_code(&h, &h.url, &shop, &back["code"], &with_nul).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    // Nothing was used up: the code still works.
    let (status, body) = exchange_code(&h, &h.url, &shop, &back["code"], &flow.verifier).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn pushed_authorization_requests() {
    let h = start(false, |_| {}).await;
    let shop = registered_client(
        &h,
        Registration {
            require_par: true,
            ..registration(&[])
        },
    )
    .await;
    let key = h.enrol(&adult(&h, 11)).await;
    // A front-channel request is refused for a client that must push.
    let (verifier, challenge) = pkce();
    let params = code_request(&shop, &challenge);
    let response = browser()
        .get(format!("{}/authorize?{}", h.url, query_string(&params)))
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
        query_string(&[("client_id", &shop.id), ("request_uri", &request_uri)])
    );
    let response = browser().get(&authorize).send().await.unwrap();
    assert_eq!(response.status(), 303);
    let flow = flow_redirected_to(&h, &response, verifier, "s1".into(), "n1".into());
    // The request_uri is single-use.
    assert_eq!(
        browser().get(&authorize).send().await.unwrap().status(),
        400
    );
    let details = details(&h, &h.url, &flow.id).await;
    decide(&h, &h.url, &key, &details, Decide::default()).await;
    let back = come_back(&h.url, &flow).await;
    assert_eq!(back["state"], "s1");
    let (status, tokens) = exchange_code(&h, &h.url, &shop, &back["code"], &flow.verifier).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(
        verify_id_token(&h, tokens["id_token"].as_str().unwrap(), &shop).await["nonce"],
        "n1"
    );
}

#[tokio::test]
async fn a_suspended_client_is_stopped_at_once() {
    let h = start(false, |_| {}).await;
    let shop = registered_client(&h, registration(&[])).await;
    let key = h.enrol(&adult(&h, 10)).await;
    let flow = begin(&h, &h.url, &shop, &[]).await;
    let details = details(&h, &h.url, &flow.id).await;
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
        query_string(&params),
        query_string(&[("client_id", &shop.id), ("request_uri", &request_uri)]),
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
    let (status, body) = exchange_code(&h, &h.url, &shop, &back["code"], &flow.verifier).await;
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
