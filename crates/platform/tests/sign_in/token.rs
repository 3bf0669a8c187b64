//! The code exchange at `/token`: the code bound to its verifier, client and redirect URI,
//! redeemed once (a replay revokes what it issued), and clients authenticated by
//! `private_key_jwt`.

use cyberid_crypto::jose::SigningKey;
use cyberid_crypto::{b64, random, sha256};
use cyberid_domain::ClientAuthMethod;
use cyberid_platform::rp::Registration;
use serde_json::{Value, json};

use crate::common::{on_each_backend, start};
use crate::support::adult;
use crate::support::browser::{begin, browser, come_back};
use crate::support::client::{
    Client, exchange_code, registered_client, registration, userinfo, verify_id_token,
};
use crate::support::wallet::{Decide, decide, details};

/// A code goes only with its PKCE verifier, to its client (authenticated) at its redirect
/// URI, and only to the browser that started the sign-in; a failed exchange does not use it up.
#[tokio::test]
async fn a_code_needs_its_verifier_client_and_redirect_uri() {
    let h = start(false, |_| {}).await;
    let shop = registered_client(&h, registration(&[])).await;
    let key = h.enrol(&adult(&h, 8)).await;
    let flow = begin(&h, &h.url, &shop, &[]).await;
    let details = details(&h, &h.url, &flow.id).await;
    decide(&h, &h.url, &key, &details, Decide::default()).await;
    let back = come_back(&h.url, &flow).await;
    // A wrong verifier fails and does not burn the code; the right one then works.
    let (status, body) =
        exchange_code(&h, &h.url, &shop, &back["code"], &random::token::<32>()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let wrong_secret = Client {
        secret: Some("nope".into()),
        id: shop.id.clone(),
        redirect_uri: shop.redirect_uri.clone(),
    };
    let (status, body) =
        exchange_code(&h, &h.url, &wrong_secret, &back["code"], &flow.verifier).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    // The code is bound to its client and redirect URI.
    let other = registered_client(&h, registration(&[])).await;
    let (status, body) = exchange_code(&h, &h.url, &other, &back["code"], &flow.verifier).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let wrong_uri = Client {
        redirect_uri: "https://shop.example/other".into(),
        id: shop.id.clone(),
        secret: shop.secret.clone(),
    };
    let (status, body) = exchange_code(&h, &h.url, &wrong_uri, &back["code"], &flow.verifier).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, _) = exchange_code(&h, &h.url, &shop, &back["code"], &flow.verifier).await;
    assert_eq!(status, 200);
    // Only the browser that started the sign-in gets the code.
    let response = browser().get(&flow.login_url).send().await.unwrap();
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn a_replayed_code_revokes_what_it_issued() {
    on_each_backend(|h| async move {
        let shop = registered_client(&h, registration(&[])).await;
        let key = h.enrol(&adult(&h, 9)).await;
        let flow = begin(&h, &h.url, &shop, &[]).await;
        let details = details(&h, &h.url, &flow.id).await;
        decide(&h, &h.url, &key, &details, Decide::default()).await;
        let back = come_back(&h.url, &flow).await;
        let (_, tokens) = exchange_code(&h, &h.url, &shop, &back["code"], &flow.verifier).await;
        let access_token = tokens["access_token"].as_str().unwrap();
        assert_eq!(userinfo(&h, access_token).await.0, 200);
        let (status, body) = exchange_code(&h, &h.url, &shop, &back["code"], &flow.verifier).await;
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

#[tokio::test]
async fn private_key_jwt_client_authentication() {
    let h = start(false, |_| {}).await;
    let (client_key, _) = SigningKey::generate().unwrap();
    let client_key = client_key.with_kid("rp-key-1");
    let jwks = json!({ "keys": [client_key.public_jwk()] }).to_string();
    let shop = registered_client(
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
    let details = details(&h, &h.url, &flow.id).await;
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
