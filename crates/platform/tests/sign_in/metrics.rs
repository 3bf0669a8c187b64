//! Metrics: on their own listener only, counting requests by route and status, sign-ins by
//! level and outcome, limits reached and the store's work, and never labelled with anything
//! that names a person, a sign-in or a client.

use cyberid_platform::Settings;

use crate::common::on_each_backend_with;
use crate::support::client::{registered_client, registration};
use crate::support::wallet::Decide;
use crate::support::{adult, sign_in};

#[tokio::test]
async fn metrics_are_served_on_their_own_listener_without_personal_labels() {
    let tweak = |s: &mut Settings| {
        s.metrics.listen = Some("127.0.0.1:0".parse().unwrap());
        s.limits.token_requests_per_client = 1;
    };
    on_each_backend_with(tweak, |h| async move {
        let shop = registered_client(&h, registration(&[])).await;
        let key = h.enrol(&adult(&h, 3)).await;
        let (id_token, _, flow) = sign_in(&h, &shop, &key, &[], |_| Decide::default()).await;
        // The client's one token request is spent: the next is refused by its limit.
        let refused = h
            .http
            .post(format!("{}/token", h.url))
            .basic_auth(&shop.id, shop.secret.as_deref())
            .form(&[("grant_type", "authorization_code"), ("code", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 429);

        let public = h
            .http
            .get(format!("{}/metrics", h.url))
            .send()
            .await
            .unwrap();
        assert_eq!(public.status(), 404, "never on the public listener");
        let metrics_url = h.metrics_url.clone().expect("a metrics listener");
        let response = h
            .http
            .get(format!("{metrics_url}/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let text = response.text().await.unwrap();
        let backend = h.store.backend();
        for expected in [
            r#"cyberid_http_requests_total{route="/authorize",method="GET",status="200"}"#,
            r#"cyberid_http_requests_total{route="/token",method="POST",status="429"}"#,
            r#"cyberid_http_request_duration_seconds_bucket{route="/token",method="POST",le="#,
            r#"cyberid_sign_ins_total{level="L1",outcome="approved"}"#,
            r#"cyberid_enrolments_total{outcome="enrolled"}"#,
            r#"cyberid_limits_reached_total{limit="limits.token_requests_per_client"}"#,
            &format!(r#"cyberid_store_seconds_bucket{{backend="{backend}",work="read",le="#),
            &format!(r#"cyberid_store_seconds_bucket{{backend="{backend}",work="write",le="#),
        ] {
            assert!(text.contains(expected), "{expected} missing from:\n{text}");
        }
        // Nothing that names a sign-in, a holder or a client.
        let subject = id_token["sub"].as_str().unwrap();
        for private in [flow.id.as_str(), subject, shop.id.as_str()] {
            assert!(!text.contains(private), "{private} in the metrics");
        }
    })
    .await;
}
