//! `GET /login/{id}`: the sign-in's own page. While the wallet decides it shows who asks, for
//! what, at which level, the QR code and link for the wallet, and the number to compare;
//! once the sign-in has ended it sends the browser that started it back to the client.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use cyberid_domain::{AssuranceLevel, Claim};
use cyberid_protocol::RequestedClaim;
use cyberid_store::{LoginStatus, RelyingParty, SignInRequest};

use super::browser::{destination, login_page_url, same_browser, see_other};
use super::tokens::number_match;
use crate::error::ApiError;
use crate::pages::{error_page, render};
use crate::platform::Platform;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    rp_name: &'a str,
    subject_scope: String,
    claims: Vec<RequestedClaim>,
    legal_basis: Option<&'a str>,
    level_text: &'a str,
    qr_svg: String,
    wallet_link: String,
    number_match: String,
    minutes: i64,
    page_url: String,
    status_url: String,
    script_url: String,
}

/// `GET /login/{id}`: the login page while the wallet decides; afterwards the redirect to
/// the client (with the code only in the browser that started the sign-in).
pub async fn page(
    State(platform): State<Platform>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    page_for(&platform, &id, &headers)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn page_for(
    platform: &Platform,
    id: &str,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let Some((login, rp)) = platform.store.login_with_client(id).await? else {
        return Ok(unknown_sign_in());
    };
    let waiting = login.waits_for_wallet(crate::now());
    // Every answer that goes back to the client (code or error, with its state) is for the
    // browser that started the sign-in only.
    if !waiting && login.status != LoginStatus::Pushed && !same_browser(headers, &login) {
        return Ok(error_page(
            StatusCode::FORBIDDEN,
            "Open this in your own browser",
            "This sign-in belongs to the browser in which it was started. Continue there.",
        ));
    }
    Ok(match login.status {
        LoginStatus::Pushed => unknown_sign_in(),
        LoginStatus::Pending if waiting => {
            login_page(platform, &login.id, login.expires_at, &rp, &login.request).await?
        }
        _ => see_other(&destination(platform, &login)),
    })
}

fn unknown_sign_in() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "Unknown sign-in",
        "This sign-in does not exist. Please start again at the service.",
    )
}

/// The page a browser shows while sign-in `id` waits for the wallet.
pub async fn login_page(
    platform: &Platform,
    id: &str,
    expires_at: i64,
    rp: &RelyingParty,
    request: &SignInRequest,
) -> Result<Response, ApiError> {
    let page_url = login_page_url(platform, id);
    let wallet_link = cyberid_protocol::wallet_link(&page_url);
    let qr_svg = crate::qr::svg(wallet_link.as_bytes())
        .ok_or_else(|| ApiError::internal("QR code", "the wallet link is too long"))?;
    let shared_with = platform.subject_shared_with(rp).await?;
    let page = LoginPage {
        rp_name: &rp.name,
        subject_scope: cyberid_protocol::subject_scope(&rp.name, &rp.sector, &shared_with),
        claims: describe(&request.claims),
        legal_basis: rp.legal_basis.as_deref(),
        level_text: level_text(request.level),
        qr_svg,
        wallet_link,
        number_match: number_match(platform, id),
        minutes: ((expires_at - crate::now()).max(0) + 59) / 60,
        status_url: format!("{page_url}/status"),
        script_url: format!("{}/static/login.js", platform.issuer_path),
        page_url,
    };
    Ok(render(StatusCode::OK, &page))
}

/// The claims a service asks for, in plain words, as the page and the wallet show them.
pub fn describe(claims: &[Claim]) -> Vec<RequestedClaim> {
    claims
        .iter()
        .map(|claim| RequestedClaim {
            name: claim.as_str().to_owned(),
            description: claim.description().to_owned(),
            raw_identity: claim.requires_legal_basis(),
        })
        .collect()
}

fn level_text(level: AssuranceLevel) -> &'static str {
    match level {
        AssuranceLevel::L1 => "L1 — your phone",
        AssuranceLevel::L2 => "L2 — your phone and your PIN",
        AssuranceLevel::L3 => "L3 — your phone, your PIN and your face",
    }
}
