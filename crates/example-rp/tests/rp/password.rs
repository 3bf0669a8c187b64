//! The example service's own pages: its password sign-in, escaping, and what needs a session.

use axum::http::header;
use cyberid_example_rp::ExampleRpConfig;
use reqwest::StatusCode;

use crate::provider::*;
use crate::support::*;

#[tokio::test]
async fn start_page_offers_both_sign_ins_and_health_answers() {
    let rp = start_rp("http://127.0.0.1:9").await;
    let response = get_page(&rp, "/", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let body = response.text().await.unwrap();
    assert!(body.contains(
        r#"<a class="button" id="cyberid-signin" href="/auth/cyberid">Sign in with Cyberspace ID</a>"#
    ));
    assert!(body.contains(r#"<form method="post" action="/login""#));
    assert!(body.contains(r#"name="username""#) && body.contains(r#"name="password""#));

    let health = get_page(&rp, "/healthz", None).await;
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test]
async fn password_sign_in_and_sign_out() {
    let rp = start_rp("http://127.0.0.1:9").await;

    let wrong = post_form(
        &rp,
        "/login",
        &[("username", "demo"), ("password", "nope")],
        None,
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(
        set_cookie(&wrong).is_none(),
        "no session for a wrong password"
    );
    let body = wrong.text().await.unwrap();
    assert!(body.contains("Wrong username or password."));
    assert!(body.contains(r#"id="password-login""#), "the form again");

    let wrong_user = post_form(
        &rp,
        "/login",
        &[("username", "demo2"), ("password", "demo-password")],
        None,
    )
    .await;
    assert_eq!(wrong_user.status(), StatusCode::UNAUTHORIZED);

    let right = post_form(
        &rp,
        "/login",
        &[("username", "demo"), ("password", "demo-password")],
        None,
    )
    .await;
    assert_eq!(right.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&right), "/");
    let (cookie, header) = set_cookie(&right).expect("a session cookie");
    assert!(cookie.starts_with("example_rp_session="));
    assert!(cookie.len() > "example_rp_session=".len() + 40);
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(header.contains(attribute), "{attribute} in {header}");
    }

    let home = get_page(&rp, "/", Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(home.contains(r#"data-method="password""#));
    assert!(home.contains("Signed in as <strong>demo</strong>"));
    assert!(home.contains(r#"action="/logout""#));
    assert!(!home.contains(r#"id="cyberid-signin""#));

    // A password session is not a Cyberspace ID session.
    let me = get_page(&rp, "/me", Some(&cookie)).await;
    assert_eq!(me.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        get_page(&rp, "/me.json", Some(&cookie)).await.status(),
        StatusCode::UNAUTHORIZED
    );

    let out = post_form(&rp, "/logout", &[], Some(&cookie)).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let (cleared, header) = set_cookie(&out).unwrap();
    assert_eq!(cleared, "example_rp_session=");
    assert!(header.contains("Max-Age=0"));
    // The old cookie is worthless now.
    let home = get_page(&rp, "/", Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(home.contains(r#"id="cyberid-signin""#));
    assert!(!home.contains("Signed in as"));
}

#[tokio::test]
async fn configured_demo_account_is_used() {
    let rp = start_rp_with(ExampleRpConfig {
        demo_username: "alice".into(),
        demo_password: "correct horse".into(),
        ..ExampleRpConfig::new("http://127.0.0.1:9", CLIENT_ID, CLIENT_SECRET)
    })
    .await;
    let old = post_form(
        &rp,
        "/login",
        &[("username", "demo"), ("password", "demo-password")],
        None,
    )
    .await;
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    let new = post_form(
        &rp,
        "/login",
        &[("username", "alice"), ("password", "correct horse")],
        None,
    )
    .await;
    assert_eq!(new.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn echoed_input_is_escaped() {
    let rp = start_rp("http://127.0.0.1:9").await;
    let response = post_form(
        &rp,
        "/login",
        &[
            ("username", r#""><script>alert(1)</script>"#),
            ("password", "x"),
        ],
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body = response.text().await.unwrap();
    assert!(body.contains(r#"value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;""#));
    assert!(!body.contains("<script>"));

    let response = get_page(
        &rp,
        &callback_path(&[("error", "<b>x</b>"), ("error_description", "a & <i>b</i>")]),
        None,
    )
    .await;
    let body = response.text().await.unwrap();
    assert!(body.contains("&lt;b&gt;x&lt;/b&gt;"));
    assert!(body.contains("a &amp; &lt;i&gt;b&lt;/i&gt;"));
    assert!(!body.contains("<b>x") && !body.contains("<i>b"));
}

#[tokio::test]
async fn me_requires_a_cyberid_session() {
    let rp = start_rp("http://127.0.0.1:9").await;
    let me = get_page(&rp, "/me", None).await;
    assert_eq!(me.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&me), "/");
    let json = get_page(&rp, "/me.json", None).await;
    assert_eq!(json.status(), StatusCode::UNAUTHORIZED);
    let made_up = get_page(&rp, "/me.json", Some("example_rp_session=made-up")).await;
    assert_eq!(made_up.status(), StatusCode::UNAUTHORIZED);
}
