//! Two `cyberid serve` processes over one store, the way a deployment scales out.

use std::path::Path;

use cyberid_testkit::url_query;
use serde_json::Value;

use crate::support::{Server, Setup, browser, enrol, ok_json, page_url};

/// Two `cyberid serve` processes behind one public URL (node A's): a sign-in begun at A is
/// approved and completed at B, because all its state is in the store.
async fn two_nodes(setup: Setup) {
    let port_a = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let issuer = format!("http://127.0.0.1:{port_a}");
    let node_a = Server::start_as(
        Path::new(setup.data()),
        setup.database_url.as_deref(),
        None,
        &format!("127.0.0.1:{port_a}"),
        Some(&issuer),
    );
    let node_b = Server::start_as(
        Path::new(setup.data()),
        setup.database_url.as_deref(),
        None,
        "127.0.0.1:0",
        Some(&issuer),
    );
    assert_eq!(node_a.url, issuer);

    let mut add = vec![
        "admin",
        "rp",
        "add",
        "--name",
        "Shop",
        "--redirect-uri",
        "https://shop.example/cb",
        "--data",
        setup.data(),
        "--json",
    ];
    if let Some(url) = &setup.database_url {
        add.extend(["--database-url", url.as_str()]);
    }
    let client = ok_json(&add);
    let (client_id, secret) = (
        client["client_id"].as_str().unwrap(),
        client["client_secret"].as_str().unwrap(),
    );

    // The holder's wallet talks to node B.
    let (id, name) = setup.adult(3);
    let face = setup.face(&id, false);
    let wallet = setup.wallet("two-nodes");
    let b_url = node_b.url.clone();
    let enrolled = enrol(&node_b, &wallet, &id, &name, &face);
    assert!(
        enrolled.status.success(),
        "{}",
        String::from_utf8_lossy(&enrolled.stdout)
    );

    // RFC 7636's example verifier and challenge.
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let browser = browser();
    let started = browser
        .get(format!("{}/authorize?response_type=code&scope=openid&client_id={client_id}&redirect_uri=https%3A%2F%2Fshop.example%2Fcb&state=xyz&nonce=n1&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256", node_a.url))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 200);
    let cookie = started.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let login_page = page_url(&started.text().await.unwrap());
    let at_b = login_page.replace(&issuer, &b_url);
    let approved = ok_json(&[
        "wallet", "--wallet", &wallet, "approve", &at_b, "--yes", "--json",
    ]);
    assert_eq!(approved["status"], "approved");

    let back = browser
        .get(&at_b)
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), 303);
    let (_, query) = url_query(back.headers()["location"].to_str().unwrap());
    assert_eq!(
        (query["state"].as_str(), query["iss"].as_str()),
        ("xyz", issuer.as_str())
    );
    let tokens: Value = reqwest::Client::new()
        .post(format!("{b_url}/token"))
        .basic_auth(client_id, Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", query["code"].as_str()),
            ("redirect_uri", "https://shop.example/cb"),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id_token = tokens["id_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{tokens}"));
    let jwks: jsonwebtoken::jwk::JwkSet = reqwest::get(format!("{b_url}/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    let key =
        jsonwebtoken::DecodingKey::from_jwk(jwks.find(header.kid.as_deref().unwrap()).unwrap())
            .unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[client_id]);
    validation.set_issuer(&[&issuer]);
    let claims = jsonwebtoken::decode::<Value>(id_token, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["nonce"], "n1");
    assert_eq!(claims["cyberid_verified"], true);
}

#[tokio::test]
async fn two_serve_processes_share_a_sign_in_on_sqlite() {
    two_nodes(Setup::sqlite().await).await;
}

#[tokio::test]
async fn two_serve_processes_share_a_sign_in_on_postgres() {
    if let Some(postgres) = cyberid_testkit::postgres() {
        two_nodes(Setup::postgres(&postgres).await).await;
    }
}
