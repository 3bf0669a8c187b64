//! Protocol strictness: a malformed `claims` parameter is refused (never read as absent),
//! exactly one client authentication method per request, `nbf` honoured, the Bearer scheme
//! case-insensitive, form bodies only at `/token` and `/par`, and the longest value each
//! stored parameter may have.

use cyberid_crypto::jose::SigningKey;
use cyberid_crypto::random;
use cyberid_domain::ClientAuthMethod;
use cyberid_platform::rp::Registration;
use serde_json::{Value, json};

use crate::common::{on_each_backend, start};
use crate::support::browser::{browser, location_query, pkce, query_string};
use crate::support::client::{Client, code_request, registered_client, registration, userinfo};
use crate::support::wallet::Decide;
use crate::support::{adult, sign_in};

/// `/authorize` with `client`'s complete request and `extra` parameters replacing or adding.
async fn authorize_with(base: &str, client: &Client, extra: &[(&str, &str)]) -> reqwest::Response {
    let (_, challenge) = pkce();
    let mut params: Vec<(&str, &str)> = code_request(client, &challenge)
        .into_iter()
        .filter(|(name, _)| !extra.iter().any(|(e, _)| e == name))
        .collect();
    params.extend_from_slice(extra);
    browser()
        .get(format!("{base}/authorize?{}", query_string(&params)))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_malformed_essential_acr_is_refused_not_ignored() {
    on_each_backend(|h| async move {
        let shop = registered_client(&h, registration(&[])).await;
        for claims in [
            r#"{"id_token":{"acr":{"essential":true,"values":"urn:cyberid:acr:l3"}}}"#,
            r#"{"id_token":{"acr":{"essential":true,"value":["urn:cyberid:acr:l3"]}}}"#,
            r#"{"id_token":{"age_over_18":{"essential":"yes"}}}"#,
        ] {
            let before = h.store.counts().await.unwrap();
            let response = authorize_with(&h.url, &shop, &[("claims", claims)]).await;
            assert_eq!(response.status(), 303, "{claims}");
            let (to, query) = location_query(&response);
            assert_eq!(to, shop.redirect_uri);
            assert_eq!(query["error"], "invalid_request", "{claims}");
            assert!(
                query["error_description"].contains("claims.id_token"),
                "{query:?}"
            );
            assert_eq!(h.store.counts().await.unwrap(), before, "nothing stored");
        }
        // Well formed, it raises the level.
        let response = authorize_with(
            &h.url,
            &shop,
            &[(
                "claims",
                r#"{"id_token":{"acr":{"essential":true,"value":"urn:cyberid:acr:l3"}}}"#,
            )],
        )
        .await;
        assert_eq!(response.status(), 200);
        assert!(response.text().await.unwrap().contains("L3"));
    })
    .await;
}

#[tokio::test]
async fn exactly_one_client_authentication_method() {
    on_each_backend(|h| async move {
        let shop = registered_client(&h, registration(&[])).await;
        let token = |basic: bool, body_secret: Option<&str>| {
            let mut form = vec![("grant_type", "authorization_code"), ("code", "forged")];
            if let Some(secret) = body_secret {
                form.push(("client_secret", secret));
                form.push(("client_id", shop.id.as_str()));
            }
            let mut request = h.http.post(format!("{}/token", h.url)).form(&form);
            if basic {
                request = request.basic_auth(&shop.id, shop.secret.as_deref());
            }
            async move {
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                let body: Value = response.json().await.unwrap();
                (status, body["error"].as_str().unwrap().to_owned())
            }
        };
        // Basic and a wrong secret in the body: two methods, refused (not the wrong one
        // ignored).
        assert_eq!(
            token(true, Some("wrong")).await,
            (400, "invalid_request".into())
        );
        assert_eq!(
            token(true, shop.secret.as_deref()).await,
            (400, "invalid_request".into())
        );
        // The body alone (client_secret_post) is not a method this platform offers.
        assert_eq!(
            token(false, shop.secret.as_deref()).await,
            (401, "invalid_client".into())
        );
        // Basic alone reaches the code check.
        assert_eq!(token(true, None).await, (400, "invalid_grant".into()));
    })
    .await;
}

#[tokio::test]
async fn a_client_assertion_not_valid_yet_is_refused() {
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
    let token = |claims: Value| {
        let assertion = client_key.sign_jwt("JWT", &claims).unwrap();
        let request = h.http.post(format!("{}/token", h.url)).form(&[
            ("grant_type", "authorization_code"),
            ("code", "forged"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion.as_str()),
        ]);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            (
                status,
                body["error_description"].as_str().unwrap().to_owned(),
            )
        }
    };
    let now = cyberid_platform::now();
    let claims = |extra: Value| {
        let mut claims = json!({ "iss": shop.id, "sub": shop.id, "aud": h.url, "exp": now + 120, "jti": random::token::<8>() });
        claims
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        claims
    };
    let (status, why) = token(claims(json!({ "nbf": now + 3600 }))).await;
    assert_eq!(status, 401, "{why}");
    assert!(why.contains("nbf"), "{why}");
    let (status, why) = token(claims(json!({ "iat": now + 3600 }))).await;
    assert_eq!(status, 401, "{why}");
    // Valid now (a few seconds of skew allowed): authenticated, then the forged code fails.
    let (status, why) = token(claims(json!({ "nbf": now + 5, "iat": now }))).await;
    assert_eq!(status, 400, "{why}");
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    on_each_backend(|h| async move {
        let shop = registered_client(&h, registration(&[])).await;
        let key = h.enrol(&adult(&h, 14)).await;
        let (_, tokens, _) = sign_in(&h, &shop, &key, &[], |_| Decide::default()).await;
        let access_token = tokens["access_token"].as_str().unwrap();
        for scheme in ["Bearer", "bearer", "BEARER"] {
            let response = h
                .http
                .get(format!("{}/userinfo", h.url))
                .header("authorization", format!("{scheme} {access_token}"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{scheme}");
        }
        assert_eq!(userinfo(&h, access_token).await.0, 200);
        let response = h
            .http
            .get(format!("{}/userinfo", h.url))
            .header("authorization", "Bearer ")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "an empty token");
    })
    .await;
}

#[tokio::test]
async fn token_and_par_take_form_bodies_only() {
    on_each_backend(|h| async move {
        let shop = registered_client(&h, registration(&[])).await;
        let (_, challenge) = pkce();
        let form = query_string(&code_request(&shop, &challenge));
        for (path, body) in [
            (
                "token",
                "grant_type=authorization_code&code=forged".to_owned(),
            ),
            ("par", form.clone()),
        ] {
            for content_type in ["text/plain", "application/json", "multipart/form-data"] {
                let response = h
                    .http
                    .post(format!("{}/{path}", h.url))
                    .basic_auth(&shop.id, shop.secret.as_deref())
                    .header("content-type", content_type)
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 415, "{path} as {content_type}");
                let error: Value = response.json().await.unwrap();
                assert_eq!(error["error"], "invalid_request");
            }
            // A charset parameter is fine.
            let response = h
                .http
                .post(format!("{}/{path}", h.url))
                .basic_auth(&shop.id, shop.secret.as_deref())
                .header(
                    "content-type",
                    "application/x-www-form-urlencoded; charset=UTF-8",
                )
                .body(body)
                .send()
                .await
                .unwrap();
            assert_ne!(response.status(), 415, "{path}");
        }
        // POST /authorize in the browser: a page.
        let response = browser()
            .post(format!("{}/authorize", h.url))
            .header("content-type", "text/plain")
            .body(form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
        assert!(response.text().await.unwrap().contains("form"));
    })
    .await;
}

#[tokio::test]
async fn stored_parameters_have_a_maximum_length() {
    on_each_backend(|h| async move {
        let shop = registered_client(&h, registration(&[])).await;
        let at_most = "s".repeat(1024);
        assert_eq!(
            authorize_with(&h.url, &shop, &[("state", &at_most)])
                .await
                .status(),
            200
        );
        let before = h.store.counts().await.unwrap();
        // Too long: a page, never a redirect that would echo it to the client.
        let too_long = "s".repeat(1025);
        let response = authorize_with(&h.url, &shop, &[("state", &too_long)]).await;
        assert_eq!(response.status(), 400);
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("state is longer than 1024")
        );
        for (name, maximum) in [("nonce", 512), ("claims", 4096), ("login_hint", 256)] {
            let value = "n".repeat(maximum + 1);
            let response = authorize_with(&h.url, &shop, &[(name, &value)]).await;
            assert_eq!(response.status(), 400, "{name}");
        }
        // At /par: the JSON error.
        let (_, challenge) = pkce();
        let nonce = "n".repeat(513);
        let mut form: Vec<(&str, &str)> = code_request(&shop, &challenge)
            .into_iter()
            .filter(|(name, _)| *name != "nonce")
            .collect();
        form.push(("nonce", &nonce));
        let response = h
            .http
            .post(format!("{}/par", h.url))
            .basic_auth(&shop.id, shop.secret.as_deref())
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"], "invalid_request");
        assert!(
            error["error_description"]
                .as_str()
                .unwrap()
                .contains("nonce")
        );
        assert_eq!(h.store.counts().await.unwrap(), before, "nothing stored");
    })
    .await;
}
