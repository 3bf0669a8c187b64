//! A `cyberid serve` process killed inside an enrolment (failpoints compiled into the test
//! build): no half account survives, and a retry after a lost answer gets its credential.

use crate::support::{Setup, enrol, json_of, ok_json};

/// The server process dies inside the enrolment transaction (as with a power cut); after
/// a restart there is no half account and the person can enrol.
async fn crash_mid_enrolment(setup: Setup) {
    let (id, name) = setup.adult(2);
    let face = setup.face(&id, false);
    for point in ["enrol-after-account-insert", "enrol-before-commit"] {
        let mut server = setup.server(Some(point));
        let failed = enrol(
            &server,
            &setup.wallet(&format!("crash-{point}")),
            &id,
            &name,
            &face,
        );
        assert!(!failed.status.success());
        assert_eq!(json_of(&failed)["error"], "network_error");
        let exit = server.child.wait().unwrap();
        assert!(
            !exit.success(),
            "the failpoint must have aborted the server"
        );
        assert_eq!(
            setup.accounts().await,
            0,
            "half an account survived the crash at {point}"
        );
    }
    // Now the answer is lost after the commit: the account exists, and the same wallet's
    // retry (same device key) receives the credential instead of being locked out.
    let wallet = setup.wallet("after-crash");
    let mut server = setup.server(Some("enrol-after-commit"));
    let lost = enrol(&server, &wallet, &id, &name, &face);
    assert_eq!(json_of(&lost)["error"], "network_error");
    assert!(!server.child.wait().unwrap().success());
    assert_eq!(setup.accounts().await, 1);
    let server = setup.server(None);
    let enrolled = enrol(&server, &wallet, &id, &name, &face);
    assert!(
        enrolled.status.success(),
        "{}",
        String::from_utf8_lossy(&enrolled.stdout)
    );
    let shown = ok_json(&["wallet", "--wallet", &wallet, "show", "--json"]);
    assert_eq!(shown["claims"]["name"], name.as_str());
    assert_eq!(setup.accounts().await, 1);
    // Another wallet (another device) is still refused.
    let other = enrol(&server, &setup.wallet("other-device"), &id, &name, &face);
    assert_eq!(json_of(&other)["error"], "already_enrolled");
}

#[tokio::test]
async fn crash_mid_enrolment_on_sqlite() {
    crash_mid_enrolment(Setup::sqlite().await).await;
}

#[tokio::test]
async fn crash_mid_enrolment_on_postgres() {
    if let Some(postgres) = cyberid_testkit::postgres() {
        crash_mid_enrolment(Setup::postgres(&postgres).await).await;
    }
}
