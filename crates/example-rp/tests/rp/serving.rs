//! Binding, registering and serving: where the example service listens and what it reports.

use std::net::SocketAddr;

use cyberid_example_rp::{ExampleRp, ExampleRpConfig, redirect_uri};
use reqwest::StatusCode;

use crate::provider::*;
use crate::support::*;

#[tokio::test]
async fn bind_register_then_serve() {
    let (issuer, provider) = start_provider().await;
    // Credentials are only known after the redirect URI (with its port) is registered.
    let mut rp = ExampleRp::bind(ExampleRpConfig::new(&issuer, "placeholder", "placeholder"))
        .await
        .unwrap();
    let port = rp.local_addr().unwrap().port();
    assert_ne!(port, 0);
    assert_eq!(rp.public_url(), format!("http://127.0.0.1:{port}"));
    assert_eq!(
        rp.redirect_uri(),
        format!("http://127.0.0.1:{port}/callback")
    );
    rp.set_client(CLIENT_ID, CLIENT_SECRET);
    let url = rp.public_url().to_string();
    tokio::spawn(rp.serve());

    let (cookie, params) = begin_cyberid(&url, &provider).await;
    assert_eq!(params["client_id"], CLIENT_ID);
    let response = get_page(
        &url,
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
}

#[tokio::test]
async fn listens_where_configured_and_reports_the_public_url() {
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let rp = start_rp_with(ExampleRpConfig {
        listen,
        public_url: Some("https://shop.example/".into()),
        ..ExampleRpConfig::new("http://127.0.0.1:9", CLIENT_ID, CLIENT_SECRET)
    })
    .await;
    assert_eq!(rp, "https://shop.example");
    assert_eq!(redirect_uri(&rp), "https://shop.example/callback");
}
