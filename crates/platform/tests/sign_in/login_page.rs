//! The login page's status request: held until the decision wakes it, answered at once when
//! it need not wait, ended by the node's wait or the sign-in's end, and telling only the
//! browser that started the sign-in where to go.

use std::time::Duration;

use cyberid_protocol::Decision;
use cyberid_testkit::url_query;
use serde_json::json;

use crate::common::start;
use crate::support::adult;
use crate::support::browser::{
    begin, come_back, status_answer, status_of, until_waiting, wait_long,
};
use crate::support::client::{registered_client, registration};
use crate::support::wallet::{Decide, decide, details};

/// The login page's status request waits for the decision and is woken by it at once
/// (nothing else could answer it within the test's time); a sign-in has at most four
/// waiting requests, beyond which the status is answered at once.
#[tokio::test]
async fn the_status_request_waits_for_the_decision() {
    let h = start(false, wait_long).await;
    let shop = registered_client(&h, registration(&[])).await;
    let key = h.enrol(&adult(&h, 12)).await;
    let flow = begin(&h, &h.url, &shop, &[]).await;
    let url = format!("{}/login/{}/status", h.url, flow.id);
    // Without `wait=1` (absent, another value, repeated oddly), the answer is immediate:
    // only a wake-up could answer a held request within the test's time.
    for query in [
        "",
        "?wait=0",
        "?wait=yes",
        "?wait",
        "?wait=%31x",
        "?wait=1%00",
    ] {
        assert_eq!(
            status_of(format!("{url}{query}")).await,
            "pending",
            "{query}"
        );
    }
    let waiting: Vec<_> = (0..4)
        .map(|_| tokio::spawn(status_of(format!("{url}?wait=1"))))
        .collect();
    until_waiting(&h, &flow.id, 4).await;
    // A fifth is not held.
    assert_eq!(status_of(format!("{url}?wait=1")).await, "pending");
    let details = details(&h, &h.url, &flow.id).await;
    let (_, body) = decide(&h, &h.url, &key, &details, Decide::default()).await;
    assert_eq!(body["status"], "approved");
    for answer in waiting {
        assert_eq!(answer.await.unwrap(), "done");
    }
    assert_eq!(h.platform.waiting_for_decision(&flow.id), 0);
    // A decided sign-in answers at once, waiting or not; only the browser that started it
    // is told where to go (another sign-in's cookie is not this one's), and it is where
    // its login page would send it.
    assert_eq!(status_of(format!("{url}?wait=1")).await, "done");
    let other = begin(&h, &h.url, &shop, &[]).await;
    for cookie in ["", other.cookie.as_str()] {
        let answer = status_answer(format!("{url}?wait=1"), cookie.to_owned()).await;
        assert_eq!(answer, json!({ "status": "done" }), "cookie {cookie:?}");
    }
    let answer = status_answer(format!("{url}?wait=1"), flow.cookie.clone()).await;
    let (target, told) = url_query(answer["location"].as_str().unwrap());
    assert_eq!(target, shop.redirect_uri);
    let back = come_back(&h.url, &flow).await;
    assert_eq!(told, back);
    assert_eq!(told["state"], flow.state);
    assert!(told.contains_key("code"));
    let unknown = reqwest::get(format!("{}/login/nosuch/status?wait=1", h.url))
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

/// A held status request that nothing wakes answers `pending` when the node's wait is over,
/// and `done` once the sign-in expires while it waits (expired or declined, the browser
/// that started it is sent to the client with the error, as its login page would send it).
#[tokio::test]
async fn a_held_status_request_ends_with_the_wait_or_the_sign_in() {
    let h = start(false, |settings| {
        settings.sign_in.decision_wait_seconds = 1;
        settings.sign_in.decision_recheck_ms = 3_600_000;
    })
    .await;
    let shop = registered_client(&h, registration(&[])).await;
    let key = h.enrol(&adult(&h, 14)).await;
    let flow = begin(&h, &h.url, &shop, &[]).await;
    let url = format!("{}/login/{}/status?wait=1", h.url, flow.id);
    // Held (it waits on the node) until the node's wait is over, then `pending`.
    let held = tokio::spawn(status_of(url.clone()));
    until_waiting(&h, &flow.id, 1).await;
    assert_eq!(held.await.unwrap(), "pending");
    assert_eq!(h.platform.waiting_for_decision(&flow.id), 0);

    let declined = begin(&h, &h.url, &shop, &[]).await;
    let details = details(&h, &h.url, &declined.id).await;
    let decline = Decide {
        decision: Decision::Decline,
        ..Decide::default()
    };
    let (_, body) = decide(&h, &h.url, &key, &details, decline).await;
    assert_eq!(body["status"], "declined");
    let url = format!("{}/login/{}/status?wait=1", h.url, declined.id);
    assert_eq!(
        status_answer(url.clone(), String::new()).await,
        json!({ "status": "done" })
    );
    let answer = status_answer(url, declined.cookie.clone()).await;
    let (target, told) = url_query(answer["location"].as_str().unwrap());
    assert_eq!(target, shop.redirect_uri);
    assert_eq!(told["error"], "access_denied");
    assert_eq!(told, come_back(&h.url, &declined).await);

    // A sign-in that lives three seconds, waited for an hour: its expiry ends the wait (the
    // request is seen waiting first, so an answer at once would not pass).
    let h = start(false, |settings| {
        wait_long(settings);
        settings.sign_in.lifetime_seconds = 3;
    })
    .await;
    let shop = registered_client(&h, registration(&[])).await;
    let flow = begin(&h, &h.url, &shop, &[]).await;
    let url = format!("{}/login/{}/status?wait=1", h.url, flow.id);
    let held = tokio::spawn(status_answer(url, flow.cookie.clone()));
    until_waiting(&h, &flow.id, 1).await;
    let answer = tokio::time::timeout(Duration::from_secs(30), held)
        .await
        .expect("the expiry did not end the wait")
        .unwrap();
    assert_eq!(answer["status"], "done");
    let (_, told) = url_query(answer["location"].as_str().unwrap());
    assert!(
        told.contains_key("error") && !told.contains_key("code"),
        "{told:?}"
    );
}
