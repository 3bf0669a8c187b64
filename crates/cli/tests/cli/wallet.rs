//! The wallet commands: enrol, show and present against a real server (the presentation
//! checked by independent libraries), input errors caught before any request, and an
//! interactive approval that compares the number on the login page.

use std::process::Stdio;

use serde_json::Value;

use crate::support::{Setup, browser, cyberid, cyberid_command, enrol, json_of, ok_json, page_url};

async fn enrol_show_present(setup: Setup) {
    let server = setup.server(None);
    let (id, name) = setup.adult(0);
    let face = setup.face(&id, false);
    let wallet = setup.wallet("wallet");

    let enrolled = enrol(&server, &wallet, &id, &name, &face);
    assert!(
        enrolled.status.success(),
        "{}",
        String::from_utf8_lossy(&enrolled.stdout)
    );
    let enrolled = json_of(&enrolled);
    let number = enrolled["network_number"].as_str().unwrap().to_owned();
    assert_eq!(enrolled["claims"]["name"], name.as_str());

    let shown = ok_json(&["wallet", "--wallet", &wallet, "show", "--json"]);
    assert_eq!(shown["network_number"], number.as_str());
    assert_eq!(shown["claims"]["real_name_verified"], true);

    // A presentation disclosing only age_over_18, verified by independent libraries.
    let presented = cyberid(&[
        "wallet",
        "--wallet",
        &wallet,
        "present",
        "--disclose",
        "age_over_18",
        "--audience",
        "https://shop.example",
        "--nonce",
        "n-42",
    ]);
    assert!(presented.status.success());
    let presentation = String::from_utf8(presented.stdout)
        .unwrap()
        .trim()
        .to_owned();
    let parsed = sd_jwt_payload::SdJwt::parse(&presentation).unwrap();
    let kb = parsed.key_binding_jwt().unwrap().to_string();
    let disclosed = parsed
        .into_disclosed_object(&sd_jwt_payload::Sha256Hasher::new())
        .unwrap();
    assert_eq!(disclosed["age_over_18"], true);
    for hidden in ["name", "birthdate", "network_number", "region"] {
        assert!(disclosed.get(hidden).is_none(), "{hidden} was disclosed");
    }
    let holder: jsonwebtoken::jwk::Jwk =
        serde_json::from_value(disclosed["cnf"]["jwk"].clone()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&["https://shop.example"]);
    validation.set_required_spec_claims(&["aud"]);
    let kb_claims = jsonwebtoken::decode::<Value>(
        &kb,
        &jsonwebtoken::DecodingKey::from_jwk(&holder).unwrap(),
        &validation,
    )
    .unwrap()
    .claims;
    assert_eq!(kb_claims["nonce"], "n-42");
    assert_eq!(
        jsonwebtoken::decode_header(&kb).unwrap().typ.as_deref(),
        Some("kb+jwt")
    );

    // The same person again, from another wallet: refused with the platform's code.
    let again = enrol(&server, &setup.wallet("second"), &id, &name, &face);
    assert!(!again.status.success());
    assert_eq!(json_of(&again)["error"], "already_enrolled");
    // An impostor's face.
    let (other_id, other_name) = setup.adult(1);
    let impostor = setup.face(&other_id, true);
    let refused = enrol(
        &server,
        &setup.wallet("third"),
        &other_id,
        &other_name,
        &impostor,
    );
    assert_eq!(json_of(&refused)["error"], "identity_mismatch");
    assert_eq!(setup.accounts().await, 1);
}

#[tokio::test]
async fn enrol_show_present_on_sqlite() {
    enrol_show_present(Setup::sqlite().await).await;
}

#[tokio::test]
async fn enrol_show_present_on_postgres() {
    if let Some(postgres) = cyberid_testkit::postgres() {
        enrol_show_present(Setup::postgres(&postgres).await).await;
    }
}

#[test]
fn wallet_input_errors_are_reported_without_contacting_anyone() {
    let dir = tempfile::tempdir().unwrap();
    let wallet = dir.path().join("w");
    let face = dir.path().join("face.json");
    std::fs::write(&face, "{}").unwrap();
    let output = cyberid(&[
        "wallet",
        "--wallet",
        wallet.to_str().unwrap(),
        "enrol",
        "--server",
        "http://127.0.0.1:9",
        "--id-number",
        "123",
        "--name",
        "x",
        "--face",
        face.to_str().unwrap(),
        "--pin",
        "246802",
        "--json",
    ]);
    assert_eq!(json_of(&output)["error"], "invalid_input");
    let output = cyberid(&[
        "wallet",
        "--wallet",
        wallet.to_str().unwrap(),
        "show",
        "--json",
    ]);
    assert_eq!(json_of(&output)["error"], "not_enrolled");
}

/// Without --yes the wallet asks for the number on the login page: the right number and a
/// yes approve; a wrong number declines.
#[tokio::test]
async fn interactive_approval_checks_the_number() {
    use std::io::Write;
    let setup = Setup::sqlite().await;
    let server = setup.server(None);
    let client = ok_json(&[
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
    ]);
    let client_id = client["client_id"].as_str().unwrap();
    let (id, name) = setup.adult(4);
    let face = setup.face(&id, false);
    let wallet = setup.wallet("interactive");
    assert!(enrol(&server, &wallet, &id, &name, &face).status.success());
    let browser = browser();
    let begin = || async {
        let started = browser
            .get(format!("{}/authorize?response_type=code&scope=openid&client_id={client_id}&redirect_uri=https%3A%2F%2Fshop.example%2Fcb&state=s&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256", server.url))
            .send()
            .await
            .unwrap();
        let page = started.text().await.unwrap();
        let login = page_url(&page);
        let number = page.split("id=\"number-match\">").nth(1).unwrap()[..2].to_owned();
        (login, number)
    };
    let approve = |login: &str, answers: String| {
        let mut child = cyberid_command()
            .args(["wallet", "--wallet", &wallet, "approve", login])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(answers.as_bytes())
            .unwrap();
        String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap()
    };
    let (login, number) = begin().await;
    let said = approve(&login, format!("{number}\ny\n"));
    assert!(said.contains("Sign-in approved."), "{said}");
    let (login, number) = begin().await;
    let wrong = if number == "00" {
        "01".to_owned()
    } else {
        "00".to_owned()
    };
    let said = approve(&login, format!("{wrong}\n"));
    assert!(
        said.contains("numbers differ") && said.contains("Sign-in declined."),
        "{said}"
    );
    // --json never asks: it needs a decision flag.
    let refused = cyberid(&["wallet", "--wallet", &wallet, "approve", &login, "--json"]);
    assert_eq!(json_of(&refused)["error"], "invalid_input");
}

/// The commands the demo prints for L2 and L3 work as printed: `--pin`, and `--pin` with
/// `--face`; a PIN that breaks the rules or a face file that cannot be read is refused
/// before anything is sent, and L3 without a face sample reports that the wallet cannot
/// reach the level.
#[tokio::test]
async fn approval_at_each_level_from_the_command_line() {
    let setup = Setup::sqlite().await;
    let server = setup.server(None);
    let client = ok_json(&[
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
    ]);
    let client_id = client["client_id"].as_str().unwrap().to_owned();
    let (id, name) = setup.adult(5);
    let face = setup.face(&id, false);
    let wallet = setup.wallet("levels");
    assert!(enrol(&server, &wallet, &id, &name, &face).status.success());
    let begin = |level: &'static str| {
        let url = format!(
            "{}/authorize?response_type=code&scope=openid&client_id={client_id}&redirect_uri=https%3A%2F%2Fshop.example%2Fcb&state=s&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&acr_values=urn%3Acyberid%3Aacr%3A{level}",
            server.url
        );
        async move {
            page_url(
                &browser()
                    .get(url)
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap(),
            )
        }
    };
    let approve = |login: &str, extra: &[&str]| {
        let mut args = vec![
            "wallet", "--wallet", &wallet, "approve", login, "--yes", "--json",
        ];
        args.extend_from_slice(extra);
        cyberid(&args)
    };

    let l2 = begin("l2").await;
    // With --json and no --pin: one JSON error on stdout, no prompt, nothing decided.
    let no_pin = approve(&l2, &[]);
    let stdout = String::from_utf8(no_pin.stdout.clone()).unwrap();
    assert!(stdout.trim_start().starts_with('{'), "{stdout}");
    assert_eq!(json_of(&no_pin)["error"], "invalid_arguments", "{stdout}");
    assert!(!no_pin.status.success());
    let bad_pin = approve(&l2, &["--pin", "12"]);
    assert_eq!(json_of(&bad_pin)["error"], "invalid_input");
    assert!(!bad_pin.status.success());
    let approved = json_of(&approve(&l2, &["--pin", "246802"]));
    assert_eq!(
        (approved["status"].as_str(), approved["level"].as_str()),
        (Some("approved"), Some("L2"))
    );

    let l3 = begin("l3").await;
    let unreadable = approve(
        &l3,
        &["--pin", "246802", "--face", "/nonexistent/face.json"],
    );
    assert_eq!(json_of(&unreadable)["error"], "invalid_input");
    let approved = json_of(&approve(&l3, &["--pin", "246802", "--face", &face]));
    assert_eq!(
        (approved["status"].as_str(), approved["level"].as_str()),
        (Some("approved"), Some("L3"))
    );

    let without_face = begin("l3").await;
    let unable = json_of(&approve(&without_face, &["--pin", "246802"]));
    assert_eq!(unable["status"], "failed", "{unable}");

    // A new PIN at L3 (the way back from a locked one): the old PIN stops working.
    let reset = json_of(&cyberid(&[
        "wallet", "--wallet", &wallet, "pin", "reset", "--face", &face, "--pin", "864200", "--json",
    ]));
    assert_eq!(reset["status"], "pin_reset", "{reset}");
    let l2 = begin("l2").await;
    let old = approve(&l2, &["--pin", "246802"]);
    assert_eq!(json_of(&old)["error"], "invalid_pin");
    let approved = json_of(&approve(&l2, &["--pin", "864200"]));
    assert_eq!(approved["status"], "approved", "{approved}");
}
