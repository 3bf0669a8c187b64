//! `/authorize` (GET and POST) and `/par` (RFC 9126): a service's request to sign a holder
//! in, checked step by step, stored as a sign-in, and answered with its login page.
//!
//! Until the client and its redirect URI are known, a refusal is a platform page: the
//! request cannot be trusted to say where to go back to. After that, refusals go back to
//! the client as OAuth errors with `state` and `iss` (RFC 9207) — unless the client turns
//! out to be suspended, which gets the platform's page, as before the request was read.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cyberid_crypto::{random, sha256};
use cyberid_store::{LoginStatus, NewLogin, RelyingParty, SignInRequest, StoreError};
use serde_json::json;

use super::client_auth;
use super::params::Params;
use super::request::{check_lengths, check_redirect_uri, validate};
use crate::error::ApiError;
use crate::extract::{FormBody, is_form};
use crate::limits::{ClientAddress, Limit, LimitReached};
use crate::pages::error_page;
use crate::platform::Platform;
use crate::sign_in::browser::{login_page_url, redirect_error, see_other, set_login_cookie};
use crate::sign_in::page::login_page;

pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// `GET /authorize`
pub async fn authorize_get(
    State(platform): State<Platform>,
    address: ClientAddress,
    RawQuery(query): RawQuery,
) -> Response {
    let answer = authorize(&platform, address, query.unwrap_or_default().as_bytes()).await;
    respond(&platform, answer).await
}

/// `POST /authorize` (form-encoded, as OIDC allows).
pub async fn authorize_post(
    State(platform): State<Platform>,
    address: ClientAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = if is_form(&headers) {
        authorize(&platform, address, &body).await
    } else {
        Err(AuthorizeError::invalid(
            "A sign-in request sent with POST must be a form (application/x-www-form-urlencoded).",
        ))
    };
    respond(&platform, answer).await
}

async fn authorize(
    platform: &Platform,
    address: ClientAddress,
    encoded: &[u8],
) -> Result<Response, AuthorizeError> {
    admit_address(platform, address).map_err(AuthorizeError::Limited)?;
    let params = Params::parse(encoded).map_err(AuthorizeError::invalid)?;
    check_lengths(&params).map_err(AuthorizeError::invalid)?;
    let rp = load_client(platform, params.get("client_id")).await?;
    if let Some(request_uri) = params.get("request_uri") {
        return authorize_pushed(platform, &rp, request_uri).await;
    }
    let redirect_uri = check_redirect_uri(&rp, params.get("redirect_uri"))
        .map_err(|error| AuthorizeError::invalid(error.description))?;
    // From here on, refusals go back to the client.
    let client = ReturnTo {
        client_id: rp.client_id.clone(),
        redirect_uri: redirect_uri.to_owned(),
        state: params.get("state").map(str::to_owned),
    };
    require_front_channel_allowed(&rp).map_err(|e| client.refused(e))?;
    let request = validate(&rp, &params, redirect_uri).map_err(|e| client.refused(e))?;
    admit_sign_in(platform, &rp).map_err(AuthorizeError::Limited)?;
    let cookie = random::token::<24>();
    let started = start_sign_in(platform, &request, Start::Browser { cookie: &cookie })
        .await
        .map_err(|e| client.failed(e))?
        .ok_or_else(AuthorizeError::suspended)?;
    // The login page at once, rather than a redirect to it: one exchange fewer for every
    // sign-in. Its script shows the address `/login/{id}` and asks its status there;
    // reloading this URL starts a new sign-in (the first simply expires).
    let mut page = login_page(platform, &started.id, started.expires_at, &rp, &request)
        .await
        .map_err(AuthorizeError::Fault)?;
    set_login_cookie(platform, &mut page, &started.id, &cookie);
    Ok(page)
}

/// `/authorize?client_id=…&request_uri=…`: the browser arrives for a pushed request, which
/// becomes a pending sign-in bound to this browser (once).
async fn authorize_pushed(
    platform: &Platform,
    rp: &RelyingParty,
    request_uri: &str,
) -> Result<Response, AuthorizeError> {
    let handle = request_uri
        .strip_prefix(REQUEST_URI_PREFIX)
        .ok_or_else(AuthorizeError::unknown_pushed_request)?;
    let cookie = random::token::<24>();
    let now = crate::now();
    let claimed = platform
        .store
        .claim_pushed_login(
            handle,
            &rp.client_id,
            &sha256(cookie.as_bytes()),
            now,
            now + platform.settings.sign_in.lifetime_seconds,
        )
        .await
        .map_err(|e| AuthorizeError::Fault(e.into()))?;
    match claimed {
        Some(login) => {
            let mut response = see_other(&login_page_url(platform, &login.id));
            set_login_cookie(platform, &mut response, &login.id, &cookie);
            Ok(response)
        }
        // Unknown, used, expired, or the client was suspended meanwhile: tell which.
        None if suspended_now(platform, &rp.client_id)
            .await
            .unwrap_or(false) =>
        {
            Err(AuthorizeError::suspended())
        }
        None => Err(AuthorizeError::unknown_pushed_request()),
    }
}

/// `POST /par`: the client pushes its request (authenticated) and gets a `request_uri`.
pub async fn par(
    State(platform): State<Platform>,
    headers: HeaderMap,
    FormBody(body): FormBody,
) -> Result<Response, ApiError> {
    let params = Params::parse(&body).map_err(ApiError::invalid_request)?;
    check_lengths(&params).map_err(ApiError::invalid_request)?;
    let endpoint = format!("{}/par", platform.issuer);
    let rp = client_auth::authenticate(&platform, &headers, &params, &endpoint).await?;
    refuse_pushed_request_uri(&params)?;
    let redirect_uri = check_redirect_uri(&rp, params.get("redirect_uri"))?;
    let request = validate(&rp, &params, redirect_uri)?;
    admit_sign_in(&platform, &rp)?;
    let handle = random::token::<24>();
    start_sign_in(&platform, &request, Start::Pushed { handle: &handle })
        .await?
        .ok_or_else(|| client_auth::invalid_client("this client is suspended"))?;
    Ok((
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(json!({
            "request_uri": format!("{REQUEST_URI_PREFIX}{handle}"),
            "expires_in": platform.settings.sign_in.pushed_request_seconds,
        })),
    )
        .into_response())
}

/// Every request to `/authorize` counts against its address's limit, valid or not: a flood
/// is refused before it costs a store read.
fn admit_address(platform: &Platform, address: ClientAddress) -> Result<(), LimitReached> {
    platform
        .limits
        .admit_address(Limit::SignInsPerAddress, address, crate::now())
}

/// A sign-in about to be stored counts against its client's limits (started per window,
/// and waiting at once).
fn admit_sign_in(platform: &Platform, rp: &RelyingParty) -> Result<(), LimitReached> {
    platform.limits.admit_sign_in(&rp.client_id, crate::now())
}

/// The client, known and active as far as this node's copy shows (a suspension it does not
/// show yet is caught when the sign-in is created or claimed, see `crate::clients`).
async fn load_client(
    platform: &Platform,
    client_id: Option<&str>,
) -> Result<Arc<RelyingParty>, AuthorizeError> {
    let client_id = client_id
        .ok_or_else(|| AuthorizeError::invalid("The request names no client (client_id)."))?;
    match platform.client(client_id).await {
        Ok(Some(rp)) if rp.suspended => Err(AuthorizeError::suspended()),
        Ok(Some(rp)) => Ok(rp),
        Ok(None) => Err(AuthorizeError::Page {
            status: StatusCode::BAD_REQUEST,
            title: "Unknown service",
            message: "The service that sent you here is not registered with Cyberspace ID.".into(),
        }),
        Err(e) => Err(AuthorizeError::Fault(e.into())),
    }
}

/// A client registered for pushed requests only may not send its request in the browser.
fn require_front_channel_allowed(rp: &RelyingParty) -> Result<(), ApiError> {
    if rp.require_par {
        return Err(ApiError::invalid_request(
            "this client must use pushed authorization requests",
        ));
    }
    Ok(())
}

fn refuse_pushed_request_uri(params: &Params) -> Result<(), ApiError> {
    if params.get("request_uri").is_some() {
        return Err(ApiError::invalid_request("request_uri may not be pushed"));
    }
    Ok(())
}

/// How a sign-in starts: in the browser (bound to it by a cookie) or pushed by the client
/// (waiting for the browser under a handle).
enum Start<'a> {
    Browser { cookie: &'a str },
    Pushed { handle: &'a str },
}

/// A sign-in just stored.
struct Started {
    id: String,
    expires_at: i64,
}

/// Creates the sign-in; `None` (nothing created, and this node's copy of the client
/// forgotten) if the client is suspended.
async fn start_sign_in(
    platform: &Platform,
    request: &SignInRequest,
    start: Start<'_>,
) -> Result<Option<Started>, ApiError> {
    // One reading of the clock: the id's time prefix and `created_at` agree.
    let now_ms = crate::now_ms();
    let now = i64::try_from(now_ms / 1000).unwrap_or(i64::MAX);
    // Time-ordered: a sign-in's row is written three times within seconds of its creation,
    // and neighbours in time then share B-tree pages (see `time_ordered_token`).
    let id = random::time_ordered_token::<16>(now_ms);
    let sign_in = &platform.settings.sign_in;
    let (status, lifetime, par_handle, browser_digest) = match start {
        Start::Browser { cookie } => (
            LoginStatus::Pending,
            sign_in.lifetime_seconds,
            None,
            Some(sha256(cookie.as_bytes()).to_vec()),
        ),
        Start::Pushed { handle } => (
            LoginStatus::Pushed,
            sign_in.pushed_request_seconds,
            Some(handle.to_owned()),
            None,
        ),
    };
    let login = NewLogin {
        id: id.clone(),
        request: request.clone(),
        par_handle,
        browser_digest,
        status,
        created_at: now,
        expires_at: now + lifetime,
    };
    if !platform.store.insert_login(&login).await? {
        platform.saw_client_suspended(&request.client_id);
        return Ok(None);
    }
    Ok(Some(Started {
        id,
        expires_at: login.expires_at,
    }))
}

/// Whether the store (not this node's cache) has the client suspended; a client the store
/// no longer knows counts as suspended.
async fn suspended_now(platform: &Platform, client_id: &str) -> Result<bool, StoreError> {
    let suspended = platform
        .store
        .relying_party(client_id)
        .await?
        .is_none_or(|fresh| fresh.suspended);
    if suspended {
        platform.saw_client_suspended(client_id);
    }
    Ok(suspended)
}

/// The page a suspended service's users see: its title and message.
const SUSPENDED: (&str, &str) = (
    "Service suspended",
    "This service may not use Cyberspace ID at the moment.",
);

/// A refused authorization request, and how it is answered.
enum AuthorizeError {
    /// A platform page: before the client and its redirect URI are known, or for a
    /// suspended client.
    Page {
        status: StatusCode,
        title: &'static str,
        message: String,
    },
    /// Back to the client's redirect URI with the error, unless the store (read afresh
    /// unless `client_rechecked`: this node's copy may predate a suspension) has the client
    /// suspended.
    ToClient {
        client: ReturnTo,
        error: ApiError,
        client_rechecked: bool,
    },
    /// A rate limit was reached: a platform page with `Retry-After` (the flood is not
    /// trusted to say where to go back to).
    Limited(LimitReached),
    /// The platform failed: its JSON error.
    Fault(ApiError),
}

/// Where a refusal goes back to once the client and its redirect URI are known.
struct ReturnTo {
    client_id: String,
    redirect_uri: String,
    state: Option<String>,
}

impl ReturnTo {
    /// The request is refused: the client hears why (unless it is suspended).
    fn refused(&self, error: ApiError) -> AuthorizeError {
        self.back(error, false)
    }

    /// The platform failed (the store is unreachable): the client hears `server_error`
    /// without another store read.
    fn failed(&self, error: ApiError) -> AuthorizeError {
        self.back(error, true)
    }

    fn back(&self, error: ApiError, client_rechecked: bool) -> AuthorizeError {
        AuthorizeError::ToClient {
            client: Self {
                client_id: self.client_id.clone(),
                redirect_uri: self.redirect_uri.clone(),
                state: self.state.clone(),
            },
            error,
            client_rechecked,
        }
    }
}

impl AuthorizeError {
    fn invalid(message: impl Into<String>) -> Self {
        Self::Page {
            status: StatusCode::BAD_REQUEST,
            title: "Invalid sign-in request",
            message: message.into(),
        }
    }

    fn suspended() -> Self {
        Self::Page {
            status: StatusCode::FORBIDDEN,
            title: SUSPENDED.0,
            message: SUSPENDED.1.into(),
        }
    }

    fn unknown_pushed_request() -> Self {
        Self::invalid(
            "The pushed request is unknown, was already used, or has expired. Please start again at the service.",
        )
    }
}

async fn respond(platform: &Platform, answer: Result<Response, AuthorizeError>) -> Response {
    match answer {
        Ok(response) => response,
        Err(AuthorizeError::Page {
            status,
            title,
            message,
        }) => error_page(status, title, &message),
        Err(AuthorizeError::Limited(reached)) => {
            let mut page = error_page(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many sign-ins",
                &format!(
                    "Too many sign-ins were started from here or for this service. Please try again in {} seconds.",
                    reached.retry_after
                ),
            );
            let (name, value) = reached.header();
            page.headers_mut().insert(name, value);
            page
        }
        Err(AuthorizeError::Fault(error)) => error.into_response(),
        Err(AuthorizeError::ToClient {
            client,
            error,
            client_rechecked,
        }) => {
            let suspended = if client_rechecked {
                Ok(false)
            } else {
                suspended_now(platform, &client.client_id).await
            };
            match suspended {
                Ok(false) => redirect_error(
                    platform,
                    &client.redirect_uri,
                    client.state.as_deref(),
                    &error,
                ),
                Ok(true) => error_page(StatusCode::FORBIDDEN, SUSPENDED.0, SUSPENDED.1),
                Err(e) => ApiError::from(e).into_response(),
            }
        }
    }
}
