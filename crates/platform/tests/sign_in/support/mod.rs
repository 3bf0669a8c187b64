//! The test's three parts: the browser, the relying party (the client) and the holder's
//! wallet, each speaking HTTP to the harness's nodes as the real one would.

pub mod browser;
pub mod client;
pub mod wallet;

use cyberid_crypto::jose::SigningKey;
use cyberid_domain::PersonRecord;
use cyberid_protocol::LoginDetails;
use serde_json::Value;

use crate::common::Harness;
use browser::{Flow, begin, come_back};
use client::{Client, exchange_code, verify_id_token};
use wallet::{Decide, decide, details};

/// A whole sign-in: begin, approve as decided, come back, exchange the code. The ID token
/// (verified), the token answer and the sign-in.
pub async fn sign_in(
    h: &Harness,
    client: &Client,
    key: &SigningKey,
    extra: &[(&str, &str)],
    choose: impl FnOnce(&LoginDetails) -> Decide<'static>,
) -> (Value, Value, Flow) {
    let flow = begin(h, &h.url, client, extra).await;
    let details = details(h, &h.url, &flow.id).await;
    let (status, body) = decide(h, &h.url, key, &details, choose(&details)).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("approved")),
        "{body}"
    );
    let back = come_back(&h.url, &flow).await;
    assert_eq!(back["state"], flow.state);
    assert_eq!(back["iss"], h.url);
    let (status, tokens) = exchange_code(h, &h.url, client, &back["code"], &flow.verifier).await;
    assert_eq!(status, 200, "{tokens}");
    let id_token = verify_id_token(h, tokens["id_token"].as_str().unwrap(), client).await;
    assert_eq!(id_token["nonce"], flow.nonce);
    (id_token, tokens, flow)
}

/// The `n`-th adult of the harness's registry, owned.
pub fn adult(h: &Harness, n: usize) -> PersonRecord {
    h.adult(n).clone()
}
