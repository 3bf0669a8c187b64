//! "Sign in with Cyberspace ID" against the stand-in provider: the request, the callback, and
//! every check of the ID token and the provider's answer.

use cyberid_crypto::jose::SigningKey;
use cyberid_example_rp::redirect_uri;
use cyberid_testkit::url_query;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::provider::*;
use crate::support::*;

#[tokio::test]
async fn unreachable_provider_gives_a_clear_error_page() {
    // Nothing listens on this port: bind, note the address, close.
    let (listener, issuer) = listen().await;
    drop(listener);
    let rp = start_rp(&issuer).await;
    let response = get_page(&rp, "/auth/cyberid", None).await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let body = response.text().await.unwrap();
    assert!(body.contains("Cyberspace ID is not reachable right now"));
    assert!(body.contains("discovery"), "{body}");
    assert!(body.contains(&issuer));
}

#[tokio::test]
async fn authorization_request_carries_pkce_state_nonce_and_scopes() {
    let (issuer, provider) = start_provider().await;
    let rp = start_rp(&issuer).await;
    let response = get_page(&rp, "/auth/cyberid", None).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (cookie, header) = set_cookie(&response).unwrap();
    assert!(cookie.starts_with("example_rp_session="));
    assert!(header.contains("HttpOnly") && header.contains("SameSite=Lax"));

    let (address, params) = url_query(&location(&response));
    assert_eq!(address, format!("{issuer}/authorize"));
    assert_eq!(params["response_type"], "code");
    assert_eq!(params["client_id"], CLIENT_ID);
    assert_eq!(params["redirect_uri"], redirect_uri(&rp));
    assert_eq!(params["redirect_uri"], format!("{rp}/callback"));
    assert_eq!(params["code_challenge_method"], "S256");
    assert_eq!(params["code_challenge"].len(), 43, "base64url SHA-256");
    assert!(params["state"].len() >= 43);
    assert!(params["nonce"].len() >= 43);
    let scopes: Vec<&str> = params["scope"].split(' ').collect();
    assert!(scopes.contains(&"openid"));
    assert!(scopes.contains(&"age"));
    assert_eq!(params["acr_values"], "L2 L3");

    // Each sign-in gets its own values.
    let second = get_page(&rp, "/auth/cyberid", None).await;
    let (_, second) = url_query(&location(&second));
    assert_ne!(second["state"], params["state"]);
    assert_ne!(second["nonce"], params["nonce"]);
    assert_ne!(second["code_challenge"], params["code_challenge"]);
    drop(provider);
}

/// The start page's higher-level links ask for exactly that level; an unknown level is a
/// clear refusal, not a sign-in at some other level.
#[tokio::test]
async fn a_sign_in_may_ask_for_a_higher_level() {
    let (issuer, _provider) = start_provider().await;
    let rp = start_rp(&issuer).await;
    let home = get_page(&rp, "/", None).await.text().await.unwrap();
    for level in ["2", "3"] {
        let path = format!("/auth/cyberid?level={level}");
        assert!(home.contains(&format!("href=\"{path}\"")), "{home}");
        let response = get_page(&rp, &path, None).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let (_, params) = url_query(&location(&response));
        assert_eq!(params["acr_values"], format!("urn:cyberid:acr:l{level}"));
    }
    for bad in ["4", "L2", "urn:cyberid:acr:l2"] {
        let response = get_page(&rp, &format!("/auth/cyberid?level={bad}"), None).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("level must be 1, 2 or 3")
        );
    }
}

#[tokio::test]
async fn full_sign_in_with_es256_id_token_and_userinfo() {
    let (issuer, provider) = start_provider().await;
    let rp = start_rp(&issuer).await;
    let (cookie, params) = begin_cyberid(&rp, &provider).await;

    let response = get_page(
        &rp,
        &callback_path(&[
            ("code", "the-code"),
            ("state", &params["state"]),
            ("iss", &issuer),
        ]),
        Some(&cookie),
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "{:?}",
        response.text().await
    );
    assert_eq!(location(&response), "/me");
    let (new_cookie, _) = set_cookie(&response).unwrap();
    assert_ne!(new_cookie, cookie, "a fresh session after sign-in");

    let claims: Value = get_page(&rp, "/me.json", Some(&new_cookie))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        claims,
        json!({
            "sub": SUBJECT,
            "acr": "L2",
            "amr": ["hwk", "pin"],
            "real_name_verified": true,
            "region": "<Zhejiang & co>",
            "age_over_18": true,
        })
    );
    {
        let p = provider.lock().unwrap();
        assert_eq!(p.token_requests, 1);
        assert_eq!(p.userinfo_requests, 1);
    }

    let page = get_page(&rp, "/me", Some(&new_cookie)).await;
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(page.contains(r#"<table id="claims">"#));
    assert!(page.contains(&format!(
        r#"<tr data-claim="sub"><th>sub</th><td>{SUBJECT}</td></tr>"#
    )));
    assert!(page.contains(r#"<tr data-claim="acr"><th>acr</th><td>L2</td></tr>"#));
    assert!(page.contains(r#"<tr data-claim="amr"><th>amr</th><td>hwk, pin</td></tr>"#));
    assert!(page.contains(
        r#"<tr data-claim="region"><th>region</th><td>&lt;Zhejiang &amp; co&gt;</td></tr>"#
    ));
    assert_eq!(page.matches("<tr data-claim=").count(), 6);
    assert!(page.contains("This is all Example Service learned"));

    let home = get_page(&rp, "/", Some(&new_cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(home.contains(r#"data-method="cyberid""#));
    assert!(home.contains(SUBJECT));

    // The old session and its authorization response are spent.
    let replay = get_page(
        &rp,
        &callback_path(&[
            ("code", "the-code"),
            ("state", &params["state"]),
            ("iss", &issuer),
        ]),
        Some(&cookie),
    )
    .await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    assert_eq!(provider.lock().unwrap().token_requests, 1);

    let out = post_form(&rp, "/logout", &[], Some(&new_cookie)).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        get_page(&rp, "/me.json", Some(&new_cookie)).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn callback_refuses_missing_or_wrong_state() {
    let (issuer, provider) = start_provider().await;
    let rp = start_rp(&issuer).await;
    let (cookie, params) = begin_cyberid(&rp, &provider).await;

    let wrong = get_page(
        &rp,
        &callback_path(&[("code", "the-code"), ("state", "forged"), ("iss", &issuer)]),
        Some(&cookie),
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    assert!(wrong.text().await.unwrap().contains("state mismatch"));

    let missing = get_page(
        &rp,
        &callback_path(&[("code", "the-code"), ("iss", &issuer)]),
        Some(&cookie),
    )
    .await;
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);

    let no_cookie = get_page(
        &rp,
        &callback_path(&[
            ("code", "the-code"),
            ("state", &params["state"]),
            ("iss", &issuer),
        ]),
        None,
    )
    .await;
    assert_eq!(no_cookie.status(), StatusCode::BAD_REQUEST);

    // None of these reached the token endpoint, and the genuine response still works.
    assert_eq!(provider.lock().unwrap().token_requests, 0);
    let genuine = get_page(
        &rp,
        &callback_path(&[
            ("code", "the-code"),
            ("state", &params["state"]),
            ("iss", &issuer),
        ]),
        Some(&cookie),
    )
    .await;
    assert_eq!(genuine.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn callback_shows_the_providers_error() {
    let (issuer, provider) = start_provider().await;
    let rp = start_rp(&issuer).await;
    let (cookie, params) = begin_cyberid(&rp, &provider).await;
    let response = get_page(
        &rp,
        &callback_path(&[
            ("error", "access_denied"),
            ("error_description", "The holder declined"),
            ("state", &params["state"]),
            ("iss", &issuer),
        ]),
        Some(&cookie),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = response.text().await.unwrap();
    assert!(body.contains(r#"<code id="error-code">access_denied</code>"#));
    assert!(body.contains("The holder declined"));
    assert_eq!(provider.lock().unwrap().token_requests, 0);
}

#[tokio::test]
async fn callback_refuses_another_issuer_or_a_missing_one() {
    let (issuer, provider) = start_provider().await;
    let rp = start_rp(&issuer).await;
    let (cookie, params) = begin_cyberid(&rp, &provider).await;

    let other = get_page(
        &rp,
        &callback_path(&[
            ("code", "the-code"),
            ("state", &params["state"]),
            ("iss", "https://evil.example"),
        ]),
        Some(&cookie),
    )
    .await;
    assert_eq!(other.status(), StatusCode::BAD_REQUEST);
    assert!(other.text().await.unwrap().contains("different issuer"));

    // The provider advertises RFC 9207 support, so `iss` must be there.
    let missing = get_page(
        &rp,
        &callback_path(&[("code", "the-code"), ("state", &params["state"])]),
        Some(&cookie),
    )
    .await;
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    assert_eq!(provider.lock().unwrap().token_requests, 0);
}

#[tokio::test]
async fn iss_may_be_absent_when_the_provider_does_not_promise_it() {
    let (issuer, provider) = start_provider().await;
    provider.lock().unwrap().advertise_iss_parameter = false;
    let rp = start_rp(&issuer).await;
    let (cookie, params) = begin_cyberid(&rp, &provider).await;
    let response = get_page(
        &rp,
        &callback_path(&[("code", "the-code"), ("state", &params["state"])]),
        Some(&cookie),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

async fn sign_in_with_fault(fault: Fault) -> (StatusCode, String) {
    let (issuer, provider) = start_provider().await;
    provider.lock().unwrap().fault = fault;
    let rp = start_rp(&issuer).await;
    let (cookie, params) = begin_cyberid(&rp, &provider).await;
    let response = get_page(
        &rp,
        &callback_path(&[
            ("code", "the-code"),
            ("state", &params["state"]),
            ("iss", &issuer),
        ]),
        Some(&cookie),
    )
    .await;
    let status = response.status();
    let cookie_set = set_cookie(&response).is_some();
    assert!(!cookie_set, "no session for a refused sign-in");
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn id_token_with_the_wrong_nonce_is_refused() {
    let (status, body) = sign_in_with_fault(Fault::WrongNonce).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(body.contains("ID token was rejected"), "{body}");
}

#[tokio::test]
async fn id_token_signed_by_another_key_is_refused() {
    let (status, body) = sign_in_with_fault(Fault::ForeignKey).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(body.contains("ID token was rejected"), "{body}");
}

#[tokio::test]
async fn a_rotated_signing_key_is_picked_up() {
    let (issuer, provider) = start_provider().await;
    let rp = start_rp(&issuer).await;
    let (cookie, params) = begin_cyberid(&rp, &provider).await;
    assert_eq!(provider.lock().unwrap().discovery_requests, 1);
    // The provider rotates after the relying party cached its JWKS.
    provider.lock().unwrap().key = SigningKey::generate().unwrap().0.with_kid("test-key-2");
    let response = get_page(
        &rp,
        &callback_path(&[
            ("code", "the-code"),
            ("state", &params["state"]),
            ("iss", &issuer),
        ]),
        Some(&cookie),
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "{:?}",
        response.text().await
    );
    assert_eq!(provider.lock().unwrap().discovery_requests, 2);
}

#[tokio::test]
async fn id_token_for_another_client_is_refused() {
    let (status, body) = sign_in_with_fault(Fault::WrongAudience).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(body.contains("ID token was rejected"), "{body}");
}

#[tokio::test]
async fn id_token_for_another_access_token_is_refused() {
    let (status, body) = sign_in_with_fault(Fault::WrongAtHash).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(body.contains("at_hash"), "{body}");
}

/// A sign-in started for L3 that comes back at a lower level (here the stand-in provider's
/// L2) is refused: the page asked for L3.
#[tokio::test]
async fn a_lower_level_than_asked_is_refused() {
    let (issuer, provider) = start_provider().await;
    let rp = start_rp(&issuer).await;
    let (cookie, params) = begin_cyberid_at(&rp, &provider, "/auth/cyberid?level=3").await;
    let response = get_page(
        &rp,
        &callback_path(&[
            ("code", "the-code"),
            ("state", &params["state"]),
            ("iss", &issuer),
        ]),
        Some(&cookie),
    )
    .await;
    assert!(
        set_cookie(&response).is_none(),
        "no session for a refused sign-in"
    );
    let status = response.status();
    let page = response.text().await.unwrap();
    assert_ne!(status, StatusCode::SEE_OTHER, "{page}");
    assert!(
        page.contains("not the level asked for (urn:cyberid:acr:l3)"),
        "{page}"
    );
}
