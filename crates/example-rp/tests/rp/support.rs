//! Starting the example service and acting as its browser.

use std::collections::HashMap;

use axum::http::header;
use cyberid_example_rp::{CALLBACK_PATH, ExampleRpConfig, serve};
use cyberid_testkit::url_query;
use reqwest::StatusCode;

use crate::provider::*;

pub(crate) async fn start_rp(issuer: &str) -> String {
    start_rp_with(ExampleRpConfig {
        extra_scopes: vec!["age".into()],
        acr_values: Some("L2 L3".into()),
        ..ExampleRpConfig::new(issuer, CLIENT_ID, CLIENT_SECRET)
    })
    .await
}

pub(crate) async fn start_rp_with(config: ExampleRpConfig) -> String {
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        serve(config, move |url| {
            tx.send(url.to_string()).unwrap();
        })
        .await
        .unwrap();
    });
    rx.await.unwrap()
}

pub(crate) fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// `name=value` of the session cookie set by `response`, and the whole header.
pub(crate) fn set_cookie(response: &reqwest::Response) -> Option<(String, String)> {
    let header = response
        .headers()
        .get(header::SET_COOKIE)?
        .to_str()
        .unwrap()
        .to_string();
    let pair = header.split(';').next().unwrap().trim().to_string();
    Some((pair, header))
}

pub(crate) fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(header::LOCATION)
        .expect("a Location header")
        .to_str()
        .unwrap()
        .to_string()
}

pub(crate) async fn get_page(rp: &str, path: &str, cookie: Option<&str>) -> reqwest::Response {
    let mut request = http().get(format!("{rp}{path}"));
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    request.send().await.unwrap()
}

pub(crate) async fn post_form(
    rp: &str,
    path: &str,
    fields: &[(&str, &str)],
    cookie: Option<&str>,
) -> reqwest::Response {
    let body = openidconnect::url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let mut request = http()
        .post(format!("{rp}{path}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    request.send().await.unwrap()
}

/// Starts a Cyberspace ID sign-in: the session cookie and the authorization URL's parameters.
pub(crate) async fn begin_cyberid(
    rp: &str,
    provider: &Shared,
) -> (String, HashMap<String, String>) {
    begin_cyberid_at(rp, provider, "/auth/cyberid").await
}

/// [`begin_cyberid`] from the start page's link `path` (e.g. a higher level's).
pub(crate) async fn begin_cyberid_at(
    rp: &str,
    provider: &Shared,
    path: &str,
) -> (String, HashMap<String, String>) {
    let response = get_page(rp, path, None).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (cookie, _) = set_cookie(&response).expect("a session cookie");
    let (_, params) = url_query(&location(&response));
    // What the provider's authorize endpoint would keep for the token request.
    let mut p = provider.lock().unwrap();
    p.nonce = params.get("nonce").cloned();
    p.code_challenge = params.get("code_challenge").cloned();
    p.redirect_uri = params.get("redirect_uri").cloned();
    drop(p);
    (cookie, params)
}

pub(crate) fn callback_path(params: &[(&str, &str)]) -> String {
    let query = openidconnect::url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    format!("{CALLBACK_PATH}?{query}")
}
