//! The relying party: its registration, its authorization request, the code exchange, and
//! the checks it makes of the ID token.

use cyberid_domain::{Claim, ClientAuthMethod};
use cyberid_platform::rp::{Registration, register};
use serde_json::Value;

use crate::common::Harness;

/// A registered client, as its operator noted it.
pub struct Client {
    pub id: String,
    pub secret: Option<String>,
    pub redirect_uri: String,
}

/// Registers `registration` in the harness's store.
pub async fn registered_client(h: &Harness, registration: Registration) -> Client {
    let (rp, shown) = register(&h.keys(), &registration, cyberid_platform::now()).unwrap();
    h.store.insert_relying_party(&rp).await.unwrap();
    Client {
        id: shown.client_id,
        secret: shown.client_secret,
        redirect_uri: registration.redirect_uris[0].clone(),
    }
}

/// "Example Shop" at `https://shop.example/callback`, with `claims` and a client secret.
pub fn registration(claims: &[&str]) -> Registration {
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

/// A complete authorization request of `client` (state `s1`, nonce `n1`, PKCE S256).
pub fn code_request<'a>(client: &'a Client, challenge: &'a str) -> [(&'static str, &'a str); 8] {
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

/// The code exchange at `base`'s `/token`, the client authenticated by its secret.
pub async fn exchange_code(
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
pub async fn verify_id_token(h: &Harness, id_token: &str, client: &Client) -> Value {
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

pub async fn userinfo(h: &Harness, access_token: &str) -> (u16, Value) {
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
