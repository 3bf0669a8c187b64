//! Rate limits on the sign-in: sign-ins started per address and per client, waiting
//! sign-ins per client, token requests per client; counted in the store so that a limit
//! holds across nodes; refused with 429 and `Retry-After`, storing nothing. And bounded
//! storage: a flood refused leaves the store as it was, and sign-ins never approved are
//! purged soon after they expire.

use cyberid_platform::Settings;
use serde_json::Value;

use crate::common::{Harness, on_each_backend_with};
use crate::support::browser::{browser, pkce, query_string};
use crate::support::client::{Client, code_request, registered_client, registration};

/// `GET /authorize` with a complete request of `client`, from `forwarded_for` when given
/// (through the proxy header the test configures); the response.
async fn authorize(base: &str, client: &Client, forwarded_for: Option<&str>) -> reqwest::Response {
    let (_, challenge) = pkce();
    let mut request = browser().get(format!(
        "{base}/authorize?{}",
        query_string(&code_request(client, &challenge))
    ));
    if let Some(address) = forwarded_for {
        request = request.header("x-forwarded-for", address);
    }
    request.send().await.unwrap()
}

/// A pushed request of `client`; status and body.
async fn push(h: &Harness, client: &Client) -> (u16, Value, Option<String>) {
    let (_, challenge) = pkce();
    let response = h
        .http
        .post(format!("{}/par", h.url))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(&code_request(client, &challenge))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = retry_after(&response);
    (status, response.json().await.unwrap(), retry_after)
}

fn retry_after(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned())
}

/// Asserts a 429 page for the browser, with a whole number of seconds to wait within the
/// window.
async fn assert_limited_page(response: reqwest::Response, window: u64) {
    assert_eq!(response.status(), 429);
    let wait: u64 = retry_after(&response).unwrap().parse().unwrap();
    assert!((1..=window).contains(&wait), "Retry-After {wait}");
    let page = response.text().await.unwrap();
    assert!(page.contains("Too many sign-ins"), "{page}");
}

#[tokio::test]
async fn sign_ins_per_address_are_limited_and_refusals_store_nothing() {
    let tweak = |s: &mut Settings| {
        s.limits.sign_ins_per_address = 3;
        s.limits.window_seconds = 3_600;
        s.limits.client_address_header = Some("x-forwarded-for".into());
    };
    on_each_backend_with(tweak, |h| async move {
        let shop = registered_client(&h, registration(&[])).await;
        for _ in 0..3 {
            assert_eq!(
                authorize(&h.url, &shop, Some("192.0.2.1")).await.status(),
                200
            );
        }
        let before = h.store.counts().await.unwrap();
        assert_limited_page(authorize(&h.url, &shop, Some("192.0.2.1")).await, 3_600).await;
        // A POST from the same address, and a request too malformed to read, count alike.
        let post = browser()
            .post(format!("{}/authorize", h.url))
            .header("x-forwarded-for", "192.0.2.1")
            .form(&[("client_id", shop.id.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(post.status(), 429);
        assert_eq!(h.store.counts().await.unwrap(), before, "nothing stored");
        // Another address has its own count; the proxy's own entry is the one that counts,
        // whatever the client put before it.
        assert_eq!(
            authorize(&h.url, &shop, Some("192.0.2.1, 192.0.2.2"))
                .await
                .status(),
            200
        );
        // IPv6 addresses count per /64.
        for host in ["2001:db8::1", "2001:db8::2", "2001:db8::3:4"] {
            assert_eq!(authorize(&h.url, &shop, Some(host)).await.status(), 200);
        }
        assert_eq!(
            authorize(&h.url, &shop, Some("2001:db8::9")).await.status(),
            429
        );
        assert_eq!(
            authorize(&h.url, &shop, Some("2001:db8:0:1::9"))
                .await
                .status(),
            200
        );
    })
    .await;
}

#[tokio::test]
async fn sign_ins_per_client_are_limited_at_authorize_and_par_alike() {
    let tweak = |s: &mut Settings| {
        s.limits.sign_ins_per_client = 3;
        s.limits.window_seconds = 3_600;
    };
    on_each_backend_with(tweak, |h| async move {
        let shop = registered_client(&h, registration(&[])).await;
        let other = registered_client(&h, registration(&[])).await;
        assert_eq!(push(&h, &shop).await.0, 201);
        assert_eq!(push(&h, &shop).await.0, 201);
        assert_eq!(authorize(&h.url, &shop, None).await.status(), 200);
        let before = h.store.counts().await.unwrap();
        let (status, body, wait) = push(&h, &shop).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (429, Some("too_many_requests")),
            "{body}"
        );
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("too many")
        );
        assert!(wait.is_some(), "Retry-After");
        assert_limited_page(authorize(&h.url, &shop, None).await, 3_600).await;
        assert_eq!(h.store.counts().await.unwrap(), before, "nothing stored");
        // Another client is not held back.
        assert_eq!(push(&h, &other).await.0, 201);
    })
    .await;
}

#[tokio::test]
async fn a_client_s_waiting_sign_ins_are_bounded() {
    let tweak = |s: &mut Settings| {
        s.limits.pending_sign_ins_per_client = 2;
        s.sign_in.lifetime_seconds = 3_600;
    };
    on_each_backend_with(tweak, |h| async move {
        let shop = registered_client(&h, registration(&[])).await;
        assert_eq!(authorize(&h.url, &shop, None).await.status(), 200);
        assert_eq!(push(&h, &shop).await.0, 201);
        let (status, body, _) = push(&h, &shop).await;
        assert_eq!(status, 429, "{body}");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("waiting")
        );
        assert_limited_page(authorize(&h.url, &shop, None).await, 3_600).await;
    })
    .await;
}

#[tokio::test]
async fn token_requests_per_client_are_limited_and_only_the_client_spends_them() {
    let tweak = |s: &mut Settings| {
        s.limits.token_requests_per_client = 2;
        s.limits.window_seconds = 3_600;
    };
    on_each_backend_with(tweak, |h| async move {
        let shop = registered_client(&h, registration(&[])).await;
        let token = |secret: Option<String>| {
            let (http, url, id) = (h.http.clone(), format!("{}/token", h.url), shop.id.clone());
            async move {
                let response = http
                    .post(url)
                    .basic_auth(id, secret)
                    .form(&[("grant_type", "authorization_code"), ("code", "forged")])
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                let wait = retry_after(&response);
                let body: Value = response.json().await.unwrap();
                (status, body["error"].as_str().unwrap().to_owned(), wait)
            }
        };
        // Someone without the secret cannot spend the client's requests.
        for _ in 0..5 {
            assert_eq!(token(Some("wrong".into())).await.0, 401);
        }
        for _ in 0..2 {
            assert_eq!(token(shop.secret.clone()).await.1, "invalid_grant");
        }
        let (status, error, wait) = token(shop.secret.clone()).await;
        assert_eq!((status, error.as_str()), (429, "too_many_requests"));
        assert!(wait.is_some());
    })
    .await;
}

/// Two nodes count against one limit: what each admitted reaches the other through the
/// store. The nodes sync only when told to here (the interval is set to a minute), so that
/// the test says exactly when each knows what.
#[tokio::test]
async fn a_limit_is_reached_across_two_nodes() {
    let tweak = |s: &mut Settings| {
        s.limits.sign_ins_per_address = 5;
        s.limits.window_seconds = 3_600;
        s.limits.sync_interval_ms = 60_000;
    };
    on_each_backend_with(tweak, |h| async move {
        let (node_b, b) = h.another_node(tweak).await;
        let a = h.platform.clone();
        let shop = registered_client(&h, registration(&[])).await;
        for _ in 0..3 {
            assert_eq!(authorize(&h.url, &shop, None).await.status(), 200);
        }
        for _ in 0..2 {
            assert_eq!(authorize(&node_b, &shop, None).await.status(), 200);
        }
        let now = cyberid_platform::now();
        a.limits.sync(h.store.as_ref(), now).await.unwrap();
        b.limits.sync(h.store.as_ref(), now).await.unwrap();
        // B has seen A's three; A sees B's two at its next sync (the counter is near its
        // limit, so it is read back although A counted nothing since).
        assert_eq!(authorize(&node_b, &shop, None).await.status(), 429);
        a.limits.sync(h.store.as_ref(), now).await.unwrap();
        assert_eq!(authorize(&h.url, &shop, None).await.status(), 429);
    })
    .await;
}

/// A flood of anonymous sign-ins: refused once the limit is reached, with the store and
/// the data directory no bigger for it.
#[tokio::test]
async fn a_refused_flood_leaves_storage_as_it_was() {
    let tweak = |s: &mut Settings| {
        s.limits.sign_ins_per_address = 50;
        s.limits.window_seconds = 3_600;
        s.limits.sync_interval_ms = 50;
    };
    on_each_backend_with(tweak, |h| async move {
        let shop = registered_client(&h, registration(&[])).await;
        let flood = |n: usize| {
            let (url, shop) = (h.url.clone(), &shop);
            async move {
                let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
                for _ in 0..n {
                    *statuses
                        .entry(authorize(&url, shop, None).await.status().as_u16())
                        .or_default() += 1;
                }
                statuses
            }
        };
        let first = flood(50).await;
        assert_eq!(first.get(&200), Some(&50), "{first:?}");
        // The node's counts reach the store; from here on it only reads them back.
        h.platform
            .limits
            .sync(h.store.as_ref(), cyberid_platform::now())
            .await
            .unwrap();
        let stored = h.store.counts().await.unwrap();
        let size = directory_size(h.data.path());
        let rest = flood(1_000).await;
        assert_eq!(rest.get(&429), Some(&1_000), "{rest:?}");
        let after = h.store.counts().await.unwrap();
        assert_eq!(
            after.sign_ins, stored.sign_ins,
            "the refused flood stored nothing"
        );
        // SQLite's own bookkeeping may touch a page; a thousand stored sign-ins would add
        // hundreds of kilobytes.
        let grown = directory_size(h.data.path()).saturating_sub(size);
        assert!(
            grown < 64 * 1024,
            "the data directory grew by {grown} bytes"
        );
    })
    .await;
}

/// Sign-ins that were never approved (anyone can start one) are purged within seconds of
/// expiring: here a lifetime of 2 s, kept 1 s, purged every second.
#[tokio::test]
async fn unfinished_sign_ins_are_purged_soon_after_they_expire() {
    let tweak = |s: &mut Settings| {
        s.sign_in.lifetime_seconds = 2;
        s.retention.unfinished_sign_ins_seconds = 1;
        s.retention.purge_interval_seconds = 1;
    };
    on_each_backend_with(tweak, |h| async move {
        let shop = registered_client(&h, registration(&[])).await;
        for _ in 0..5 {
            assert_eq!(authorize(&h.url, &shop, None).await.status(), 200);
        }
        assert!(h.store.counts().await.unwrap().sign_ins >= 5);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let left = h.store.counts().await.unwrap().sign_ins;
            if left == 0 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{left} sign-ins never purged"
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    })
    .await;
}

fn directory_size(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .unwrap()
        .filter_map(Result::ok)
        .map(|entry| {
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                directory_size(&entry.path())
            } else {
                meta.len()
            }
        })
        .sum()
}
