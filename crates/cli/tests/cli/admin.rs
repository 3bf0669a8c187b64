//! The operator's `admin rp` commands against a running server, whose clients take effect
//! (added, suspended, resumed) without a restart.

use crate::support::{Setup, browser, cyberid, json_of, refused_with};

/// `admin rp` against a running server: a new client works at once, a suspended one is
/// refused at once, a resumed one works again, all without restarting the server.
async fn operator_commands(setup: Setup) {
    let server = setup.server(None);
    let mut store_flags = vec!["--data", setup.data()];
    if let Some(url) = &setup.database_url {
        store_flags.extend(["--database-url", url.as_str()]);
    }
    let admin = |args: &[&str]| {
        let mut all: Vec<&str> = vec!["admin", "rp"];
        all.extend_from_slice(args);
        all.extend_from_slice(&store_flags);
        all.push("--json");
        cyberid(&all)
    };
    let added = admin(&[
        "add",
        "--name",
        "Tax Office",
        "--redirect-uri",
        "https://tax.example/cb",
        "--claims",
        "age_over_18,name",
        "--legal-basis",
        "Tax Act §3",
    ]);
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stdout)
    );
    let added = json_of(&added);
    let client_id = added["client_id"].as_str().unwrap().to_owned();
    assert!(added["client_secret"].as_str().unwrap().len() >= 43);
    assert_eq!(added["sector"], "tax.example");
    assert_eq!(added["shares_subject_with"], serde_json::json!([]));

    // A second service on the same host joins its sector: the operator is told who will
    // see the same subject for each holder.
    let neighbour = json_of(&admin(&[
        "add",
        "--name",
        "Tax Forms",
        "--redirect-uri",
        "https://tax.example/forms",
    ]));
    assert_eq!(neighbour["sector"], "tax.example");
    assert_eq!(
        neighbour["shares_subject_with"],
        serde_json::json!(["Tax Office"])
    );

    let refused = admin(&[
        "add",
        "--name",
        "Shop",
        "--redirect-uri",
        "https://shop.example/cb",
        "--claims",
        "name",
    ]);
    refused_with(&refused, "legal-basis");
    let listed = json_of(&admin(&["list"]));
    let listed = listed["relying_parties"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    let tax_office = listed.iter().find(|rp| rp["name"] == "Tax Office").unwrap();
    assert_eq!(
        tax_office["claims"],
        serde_json::json!(["age_over_18", "name"])
    );

    let authorize = format!(
        "{}/authorize?response_type=code&scope=openid&client_id={client_id}&redirect_uri=https%3A%2F%2Ftax.example%2Fcb&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
        server.url
    );
    let browser = browser();
    assert_eq!(browser.get(&authorize).send().await.unwrap().status(), 200);
    assert_eq!(
        json_of(&admin(&["suspend", &client_id]))["status"],
        "suspended"
    );
    assert_eq!(browser.get(&authorize).send().await.unwrap().status(), 403);
    assert_eq!(json_of(&admin(&["resume", &client_id]))["status"], "active");
    assert_eq!(browser.get(&authorize).send().await.unwrap().status(), 200);
    assert_eq!(
        json_of(&admin(&["suspend", "rp_nobody"]))["error"],
        "not_found"
    );
}

#[tokio::test]
async fn operator_commands_on_sqlite() {
    operator_commands(Setup::sqlite().await).await;
}

#[tokio::test]
async fn operator_commands_on_postgres() {
    if let Some(postgres) = cyberid_testkit::postgres() {
        operator_commands(Setup::postgres(&postgres).await).await;
    }
}
