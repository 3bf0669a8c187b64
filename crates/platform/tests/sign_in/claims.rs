//! What a service receives: the defaults at L1, only claims registered, requested and
//! consented to, consent remembered and revoked, and pairwise subjects.

use cyberid_platform::rp::Registration;
use serde_json::{Value, json};

use crate::common::{Harness, on_each_backend, start};
use crate::support::browser::{begin, come_back, login_page_text};
use crate::support::client::{
    Client, exchange_code, registered_client, registration, userinfo, verify_id_token,
};
use crate::support::wallet::{Decide, consented, decide, details, post, proof};
use crate::support::{adult, sign_in};

#[tokio::test]
async fn an_l1_sign_in_releases_only_the_defaults() {
    on_each_backend(|h| async move {
        let shop = registered_client(&h, registration(&[])).await;
        let key = h.enrol(&adult(&h, 0)).await;
        let flow = begin(&h, &h.url, &shop, &[("scope", "openid age_over_18 name")]).await;

        // The login page names the service, shows the QR code and the number the wallet shows.
        let page = login_page_text(&flow).await;
        let details = details(&h, &h.url, &flow.id).await;
        assert!(
            page.contains("Example Shop") && page.contains("<svg"),
            "{page}"
        );
        assert!(page.contains(&format!(">{}<", details.number_match)));
        assert!(page.contains("cyberid-wallet:?login="));
        assert!(
            details.claims.is_empty(),
            "unregistered claims are not even asked for"
        );
        let status = |h: &Harness, id: String| {
            let url = format!("{}/login/{id}/status", h.url);
            async move {
                reqwest::get(url)
                    .await
                    .unwrap()
                    .json::<Value>()
                    .await
                    .unwrap()["status"]
                    .clone()
            }
        };
        assert_eq!(status(&h, flow.id.clone()).await, "pending");

        let (_, body) = decide(&h, &h.url, &key, &details, Decide::default()).await;
        assert_eq!(body["status"], "approved");
        assert_eq!(status(&h, flow.id.clone()).await, "done");
        let back = come_back(&h.url, &flow).await;
        let (code_status, tokens) =
            exchange_code(&h, &h.url, &shop, &back["code"], &flow.verifier).await;
        assert_eq!(code_status, 200, "{tokens}");
        let id_token = verify_id_token(&h, tokens["id_token"].as_str().unwrap(), &shop).await;
        assert_eq!(id_token["acr"], "urn:cyberid:acr:l1");
        assert_eq!(id_token["amr"], json!(["hwk"]));
        assert_eq!(id_token["cyberid_verified"], true);
        assert!(id_token["auth_time"].as_i64().unwrap() > 0);
        let mut names: Vec<&str> = id_token
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "acr",
                "amr",
                "aud",
                "auth_time",
                "cyberid_verified",
                "exp",
                "iat",
                "iss",
                "nonce",
                "sub"
            ]
        );
        let (status_code, info) = userinfo(&h, tokens["access_token"].as_str().unwrap()).await;
        assert_eq!(status_code, 200);
        assert_eq!(
            info,
            json!({ "sub": id_token["sub"], "cyberid_verified": true })
        );
    })
    .await;
}

#[tokio::test]
async fn only_registered_requested_and_consented_claims_are_released() {
    on_each_backend(|h| async move {
        let shop = registered_client(&h, registration(&["age_over_18", "region"])).await;
        let person = adult(&h, 1);
        let key = h.enrol(&person).await;
        let extra = [
            ("scope", "openid age_over_18 region name"),
            (
                "claims",
                r#"{"userinfo":{"network_number":null},"id_token":{"age_over_18":null}}"#,
            ),
        ];
        let (id_token, tokens, _) = sign_in(&h, &shop, &key, &extra, |details| {
            assert_eq!(
                details
                    .claims
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>(),
                ["age_over_18", "region"]
            );
            assert!(!details.force_consent);
            Decide {
                claims: vec!["age_over_18".into()],
                ..Decide::default()
            }
        })
        .await;
        assert_eq!(
            id_token["age_over_18"], true,
            "requested for the ID token and consented"
        );
        let (_, info) = userinfo(&h, tokens["access_token"].as_str().unwrap()).await;
        assert_eq!(info["age_over_18"], true);
        for withheld in ["region", "name", "network_number", "birthdate"] {
            assert!(info.get(withheld).is_none(), "{withheld} released: {info}");
        }

        // Consent is remembered, and asked again for what is new.
        let flow = begin(&h, &h.url, &shop, &extra).await;
        let again = details(&h, &h.url, &flow.id).await;
        assert!(!again.force_consent);
        assert_eq!(consented(&h, &key, &shop.id).await, ["age_over_18"]);
        let (status, list) = post(
            &h,
            &format!("{}/api/v1/wallet/consents", h.url),
            &json!({ "proof": proof(&key, "list-consents", "") }),
        )
        .await;
        assert_eq!(
            (status, list["consents"][0]["rp_name"].as_str()),
            (200, Some("Example Shop"))
        );
        let (status, _) = post(
            &h,
            &format!("{}/api/v1/wallet/consents/revoke", h.url),
            &json!({ "proof": proof(&key, "revoke-consent", &shop.id) }),
        )
        .await;
        assert_eq!(status, 200);
        assert!(consented(&h, &key, &shop.id).await.is_empty());
        // What was released under the consent stops flowing at once.
        let (status, info) = userinfo(&h, tokens["access_token"].as_str().unwrap()).await;
        assert_eq!(status, 200);
        assert!(info.get("age_over_18").is_none(), "{info}");
        assert_eq!(info["cyberid_verified"], true);

        // Raw identity data only with a legal basis, and the wallet is told so.
        let registry = registered_client(
            &h,
            Registration {
                legal_basis: Some("Residence Act §12".into()),
                ..registration(&["name", "network_number"])
            },
        )
        .await;
        let (_, tokens, _) = sign_in(
            &h,
            &registry,
            &key,
            &[("scope", "openid name network_number")],
            |details| {
                assert_eq!(details.legal_basis.as_deref(), Some("Residence Act §12"));
                assert!(details.claims.iter().all(|c| c.raw_identity));
                Decide {
                    claims: details.claims.iter().map(|c| c.name.clone()).collect(),
                    ..Decide::default()
                }
            },
        )
        .await;
        let (_, info) = userinfo(&h, tokens["access_token"].as_str().unwrap()).await;
        assert_eq!(info["name"], person.name.as_str());
        assert!(info["network_number"].as_str().unwrap().len() == 14);
    })
    .await;
}

#[tokio::test]
async fn prompt_consent_asks_again() {
    let h = start(false, |_| {}).await;
    let shop = registered_client(&h, registration(&["region"])).await;
    let key = h.enrol(&adult(&h, 18)).await;
    sign_in(&h, &shop, &key, &[("scope", "openid region")], |_| Decide {
        claims: vec!["region".into()],
        ..Decide::default()
    })
    .await;
    let remembered = begin(&h, &h.url, &shop, &[("scope", "openid region")]).await;
    assert!(!details(&h, &h.url, &remembered.id).await.force_consent);
    assert_eq!(consented(&h, &key, &shop.id).await, ["region"]);
    let forced = begin(
        &h,
        &h.url,
        &shop,
        &[("scope", "openid region"), ("prompt", "consent")],
    )
    .await;
    assert!(details(&h, &h.url, &forced.id).await.force_consent);
}

#[tokio::test]
async fn subjects_are_pairwise_per_sector() {
    let h = start(false, |_| {}).await;
    let key = h.enrol(&adult(&h, 2)).await;
    let a = registered_client(
        &h,
        Registration {
            sector: Some("health.example".into()),
            ..registration(&[])
        },
    )
    .await;
    let b = registered_client(
        &h,
        Registration {
            sector: Some("health.example".into()),
            redirect_uris: vec!["https://clinic.example/cb".into()],
            ..registration(&[])
        },
    )
    .await;
    let c = registered_client(
        &h,
        Registration {
            redirect_uris: vec!["https://games.example/cb".into()],
            ..registration(&[])
        },
    )
    .await;
    let sub = |client: Client| {
        let (h, key) = (&h, &key);
        async move {
            sign_in(h, &client, key, &[], |_| Decide::default()).await.0["sub"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let (sa, sb, sc) = (sub(a).await, sub(b).await, sub(c).await);
    assert_eq!(sa, sb, "same sector, same subject");
    assert_ne!(sa, sc, "other sector, other subject");
    let account = h
        .store
        .account_by_device(&key.verifying_key().thumbprint())
        .await
        .unwrap()
        .unwrap()
        .0;
    for s in [&sa, &sc] {
        assert!(
            !s.contains(&account.network_number),
            "the subject must not be the network number"
        );
    }
    // Stable: the same client sees the same subject at every sign-in.
    let d = registered_client(
        &h,
        Registration {
            sector: Some("health.example".into()),
            ..registration(&[])
        },
    )
    .await;
    assert_eq!(sub(d).await, sa);
}

/// The login page and the wallet say who can recognise the holder by the subject: the
/// service alone, or every other service of its sector, by name.
#[tokio::test]
async fn the_holder_is_told_who_shares_the_subject() {
    let h = start(false, |_| {}).await;
    let in_sector = |name: &str, uri: &str| Registration {
        name: name.into(),
        sector: Some("health.example".into()),
        redirect_uris: vec![uri.into()],
        ..registration(&[])
    };
    let portal =
        registered_client(&h, in_sector("Health Portal", "https://portal.example/cb")).await;
    registered_client(&h, in_sector("Clinic", "https://clinic.example/cb")).await;
    registered_client(&h, in_sector("Pharmacy", "https://pharmacy.example/cb")).await;
    let games = registered_client(
        &h,
        Registration {
            name: "Games".into(),
            redirect_uris: vec!["https://games.example/cb".into()],
            ..registration(&[])
        },
    )
    .await;

    let shared = begin(&h, &h.url, &portal, &[]).await;
    let page = login_page_text(&shared).await;
    assert!(
        page.contains(
            "a number that Health Portal shares with the other services of health.example \
             (Clinic and Pharmacy): they all see the same number"
        ),
        "{page}"
    );
    let opened = details(&h, &h.url, &shared.id).await;
    assert_eq!(opened.sector, "health.example");
    assert_eq!(opened.subject_shared_with, ["Clinic", "Pharmacy"]);

    let alone = begin(&h, &h.url, &games, &[]).await;
    let page = login_page_text(&alone).await;
    assert!(
        page.contains("a number that identifies you to Games only"),
        "{page}"
    );
    let opened = details(&h, &h.url, &alone.id).await;
    assert_eq!(opened.sector, "games.example");
    assert!(opened.subject_shared_with.is_empty());
}

/// A claim the wallet names twice is released, and remembered, once.
#[tokio::test]
async fn a_claim_approved_twice_is_released_once() {
    on_each_backend(|h| async move {
        let shop = registered_client(&h, registration(&["region"])).await;
        let key = h.enrol(&adult(&h, 3)).await;
        let (_, tokens, _) = sign_in(&h, &shop, &key, &[("scope", "openid region")], |_| Decide {
            claims: vec!["region".into(), "region".into()],
            ..Decide::default()
        })
        .await;
        assert_eq!(tokens["scope"], "openid region");
        assert_eq!(consented(&h, &key, &shop.id).await, ["region"]);
    })
    .await;
}
