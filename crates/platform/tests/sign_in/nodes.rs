//! Several nodes over one store: a sign-in begun at one completes at another, and a decision
//! taken at one wakes the login page waiting at another.

use cyberid_platform::Settings;

use crate::common::{on_each_backend, on_each_backend_with};
use crate::support::adult;
use crate::support::browser::{begin, come_back, status_of, until_waiting};
use crate::support::client::{exchange_code, registered_client, registration, verify_id_token};
use crate::support::wallet::{Decide, decide, details};

#[tokio::test]
async fn a_sign_in_begun_at_one_node_completes_at_another() {
    on_each_backend(|h| async move {
        let shop = registered_client(&h, registration(&[])).await;
        let key = h.enrol(&adult(&h, 13)).await;
        let node_b = h.second_node(|_| {}).await;
        let flow = begin(&h, &h.url, &shop, &[]).await;
        let details = details(&h, &node_b, &flow.id).await;
        let (_, body) = decide(&h, &node_b, &key, &details, Decide::default()).await;
        assert_eq!(body["status"], "approved");
        let back = come_back(&node_b, &flow).await;
        let (status, tokens) =
            exchange_code(&h, &node_b, &shop, &back["code"], &flow.verifier).await;
        assert_eq!(status, 200, "{tokens}");
        verify_id_token(&h, tokens["id_token"].as_str().unwrap(), &shop).await;
    })
    .await;
}

/// Two nodes on one store: a login page waiting on one node is woken by the decision the
/// wallet sends to the other, found by the node's periodic read for all its waiting pages
/// (every 50 ms here; waiting is set to an hour).
#[tokio::test]
async fn a_decision_on_another_node_wakes_the_waiting_page() {
    let tweak = |settings: &mut Settings| {
        settings.sign_in.decision_wait_seconds = 3600;
        settings.sign_in.decision_recheck_ms = 50;
    };
    on_each_backend_with(tweak, |h| async move {
        let other = h.second_node(tweak).await;
        let shop = registered_client(&h, registration(&[])).await;
        let key = h.enrol(&adult(&h, 13)).await;
        let flow = begin(&h, &h.url, &shop, &[]).await;
        let waiting = tokio::spawn(status_of(format!(
            "{}/login/{}/status?wait=1",
            h.url, flow.id
        )));
        until_waiting(&h, &flow.id, 1).await;
        let details = details(&h, &other, &flow.id).await;
        let (_, body) = decide(&h, &other, &key, &details, Decide::default()).await;
        assert_eq!(body["status"], "approved");
        assert_eq!(waiting.await.unwrap(), "done", "{}", h.store.backend());
    })
    .await;
}
