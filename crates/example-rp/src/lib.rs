//! An example relying party: a small web service that signs its users in either with its own
//! username and password or with "Sign in with Cyberspace ID" (the scheme is voluntary, so a
//! service keeps its other sign-in methods).
//!
//! It contains no cyberid code: Cyberspace ID is reached through standard OpenID Connect
//! (the `openidconnect` crate) — discovery, the Authorization Code flow with PKCE (S256),
//! `state` and `nonce`, `client_secret_basic`, ES256 ID tokens verified against the provider's
//! JWKS, the RFC 9207 `iss` check, and userinfo. What the service learned is shown at `/me`
//! (and `/me.json`), which makes data minimisation visible.
//!
//! Pages: `GET /` (sign-in or who is signed in), `POST /login`, `GET /auth/cyberid`,
//! `GET /callback`, `GET /me`, `GET /me.json`, `POST /logout`, `GET /healthz`.
//!
//! Sessions live in memory, keyed by a random cookie (HttpOnly, SameSite=Lax), expire after
//! 30 idle minutes and are capped in number: enough for an example, not for production.

mod html;
mod oidc;
mod session;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use subtle::ConstantTimeEq;

pub use html::escape;

use oidc::Oidc;
use session::{PendingLogin, Sessions, User};

/// Where the provider sends the browser back to.
pub const CALLBACK_PATH: &str = "/callback";
/// The demo account's default username.
pub const DEFAULT_DEMO_USERNAME: &str = "demo";
/// The demo account's default password.
pub const DEFAULT_DEMO_PASSWORD: &str = "demo-password";

/// How to run the example relying party.
#[derive(Clone)]
pub struct ExampleRpConfig {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// The URL browsers reach the service at; default `http://<bound address>`. The redirect
    /// URI is `{public_url}/callback`.
    pub public_url: Option<String>,
    /// The provider's issuer URL (discovery at `{issuer}/.well-known/openid-configuration`).
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// Scopes to ask for besides `openid`.
    pub extra_scopes: Vec<String>,
    /// `acr_values` for the authorization request (space-separated), if any.
    pub acr_values: Option<String>,
    pub demo_username: String,
    pub demo_password: String,
}

impl ExampleRpConfig {
    /// A configuration on `127.0.0.1:0` with the default demo account and no extra scopes.
    pub fn new(
        issuer: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        Self {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            public_url: None,
            issuer: issuer.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            extra_scopes: Vec::new(),
            acr_values: None,
            demo_username: DEFAULT_DEMO_USERNAME.into(),
            demo_password: DEFAULT_DEMO_PASSWORD.into(),
        }
    }
}

impl std::fmt::Debug for ExampleRpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExampleRpConfig")
            .field("listen", &self.listen)
            .field("public_url", &self.public_url)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("extra_scopes", &self.extra_scopes)
            .field("acr_values", &self.acr_values)
            .field("demo_username", &self.demo_username)
            .finish_non_exhaustive()
    }
}

/// The redirect URI this relying party uses when reachable at `public_url`.
pub fn redirect_uri(public_url: &str) -> String {
    format!("{}{CALLBACK_PATH}", public_url.trim_end_matches('/'))
}

/// Binds, reports the public URL via `on_ready`, and serves until the returned future is
/// dropped or Ctrl-C. The provider is not contacted before the first "Sign in with
/// Cyberspace ID", so it may start at the same time.
pub async fn serve(
    config: ExampleRpConfig,
    on_ready: impl FnOnce(&str) + Send,
) -> anyhow::Result<()> {
    let rp = ExampleRp::bind(config).await?;
    on_ready(rp.public_url());
    rp.serve().await
}

/// A relying party that is bound but not serving yet. With port 0 the redirect URI is known
/// only after binding, so an operator can bind, register [`ExampleRp::redirect_uri`] at the
/// provider, hand the resulting credentials to [`ExampleRp::set_client`], then serve.
pub struct ExampleRp {
    listener: tokio::net::TcpListener,
    public_url: String,
    inner: Inner,
}

impl ExampleRp {
    pub async fn bind(config: ExampleRpConfig) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let bound = listener.local_addr().context("reading the bound address")?;
        let public_url = match &config.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => default_public_url(bound),
        };
        let inner = Inner::new(&config, &public_url)?;
        Ok(Self {
            listener,
            public_url,
            inner,
        })
    }

    /// The URL browsers reach the service at (no trailing slash).
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// The redirect URI to register at the provider.
    pub fn redirect_uri(&self) -> String {
        redirect_uri(&self.public_url)
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Replaces the client credentials given in the configuration.
    pub fn set_client(&mut self, client_id: impl Into<String>, client_secret: impl Into<String>) {
        self.inner
            .oidc
            .set_client(client_id.into(), client_secret.into());
    }

    /// Serves until the future is dropped or Ctrl-C.
    pub async fn serve(self) -> anyhow::Result<()> {
        tracing::info!(
            public_url = %self.public_url,
            issuer = %self.inner.issuer,
            "example relying party listening"
        );
        let app = router(AppState(Arc::new(self.inner)));
        axum::serve(self.listener, app)
            .with_graceful_shutdown(async {
                // Without a signal handler, run until the future is dropped.
                if tokio::signal::ctrl_c().await.is_err() {
                    std::future::pending::<()>().await;
                }
            })
            .await
            .context("serving the example relying party")
    }
}

/// `http://<address>`, with a wildcard address replaced by loopback so the URL is usable.
fn default_public_url(bound: SocketAddr) -> String {
    let ip = match bound.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, bound.port()))
}

#[derive(Clone)]
struct AppState(Arc<Inner>);

struct Inner {
    issuer: String,
    demo_username: String,
    demo_password: String,
    secure_cookies: bool,
    oidc: Oidc,
    sessions: Sessions,
}

impl Inner {
    fn new(config: &ExampleRpConfig, public_url: &str) -> anyhow::Result<Self> {
        Ok(Self {
            issuer: config.issuer.clone(),
            demo_username: config.demo_username.clone(),
            demo_password: config.demo_password.clone(),
            secure_cookies: public_url.starts_with("https://"),
            oidc: Oidc::new(
                &config.issuer,
                &config.client_id,
                &config.client_secret,
                redirect_uri(public_url),
                &config.extra_scopes,
                config.acr_values.as_deref(),
            )?,
            sessions: Sessions::default(),
        })
    }
}

impl AppState {
    fn user(&self, headers: &HeaderMap) -> Option<User> {
        session::cookie(headers).and_then(|token| self.0.sessions.user(&token))
    }
}

fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/auth/cyberid", get(start_cyberid))
        .route(CALLBACK_PATH, get(callback))
        .route("/me", get(me))
        .route("/me.json", get(me_json))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(state)
}

/// 303 to `location`, optionally setting a cookie.
fn see_other(location: &str, cookie: Option<String>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, value);
    }
    if let Some(value) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        headers.insert(header::SET_COOKIE, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match state.user(&headers) {
        Some(user) => html::signed_in_page(&user),
        None => html::sign_in_page(StatusCode::OK, None, ""),
    }
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let inner = &state.0;
    // Both comparisons always run, each in constant time for equal lengths.
    let username_ok = inner
        .demo_username
        .as_bytes()
        .ct_eq(form.username.as_bytes());
    let password_ok = inner
        .demo_password
        .as_bytes()
        .ct_eq(form.password.as_bytes());
    // An empty configured password would let anyone in who knows the username.
    if inner.demo_password.is_empty() || !bool::from(username_ok & password_ok) {
        return html::sign_in_page(
            StatusCode::UNAUTHORIZED,
            Some("Wrong username or password."),
            &form.username,
        );
    }
    if let Some(old) = session::cookie(&headers) {
        inner.sessions.remove(&old);
    }
    let token = inner.sessions.create(
        Some(User::Password {
            username: form.username,
        }),
        None,
    );
    see_other("/", Some(session::set_cookie(&token, inner.secure_cookies)))
}

async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = session::cookie(&headers) {
        state.0.sessions.remove(&token);
    }
    see_other("/", Some(session::clear_cookie(state.0.secure_cookies)))
}

/// `?level=2` or `?level=3`: a sign-in at that Cyberspace ID level (PIN; PIN and face).
#[derive(Deserialize)]
struct StartQuery {
    level: Option<String>,
}

/// The `acr` value for a level asked on the start page; `Err` for an unknown one.
fn requested_acr(level: Option<&str>) -> Result<Option<Vec<String>>, String> {
    match level {
        None | Some("") => Ok(None),
        Some(level @ ("1" | "2" | "3")) => Ok(Some(vec![format!("urn:cyberid:acr:l{level}")])),
        Some(_) => Err("level must be 1, 2 or 3".into()),
    }
}

async fn start_cyberid(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<StartQuery>,
) -> Response {
    let inner = &state.0;
    let acr_values = match requested_acr(query.level.as_deref()) {
        Ok(acr_values) => acr_values,
        Err(message) => return html::error_page(StatusCode::BAD_REQUEST, &message, None, None),
    };
    let provider = match inner.oidc.provider(false).await {
        Ok(provider) => provider,
        Err(e) => {
            tracing::warn!(error = %e, "Cyberspace ID provider unavailable");
            return html::error_page(
                StatusCode::BAD_GATEWAY,
                &format!("Cyberspace ID is not reachable right now. {e}"),
                None,
                None,
            );
        }
    };
    let (url, pending) = inner
        .oidc
        .authorization_request(&provider, acr_values.as_deref());
    // Keep a live session (a password user may switch), otherwise start one.
    let pending = match session::cookie(&headers) {
        Some(token) => match inner.sessions.set_pending(&token, pending) {
            Ok(()) => return see_other(&url, None),
            Err(pending) => pending,
        },
        None => pending,
    };
    let token = inner.sessions.create(None, Some(pending));
    see_other(
        &url,
        Some(session::set_cookie(&token, inner.secure_cookies)),
    )
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let inner = &state.0;
    let bad = |message: &str| html::error_page(StatusCode::BAD_REQUEST, message, None, None);

    // RFC 9207: a response naming another issuer is a mix-up attack, whatever else it says.
    if let Some(iss) = &query.iss
        && iss != &inner.issuer
    {
        return bad("The response came from a different issuer than the one this service uses.");
    }
    let token = session::cookie(&headers);
    let state_matches = |pending: &PendingLogin| {
        query
            .state
            .as_deref()
            .is_some_and(|s| bool::from(s.as_bytes().ct_eq(pending.state.as_bytes())))
    };
    if let Some(error) = &query.error {
        // The sign-in is over either way; forget it if this response belongs to it.
        if let Some(token) = &token {
            inner.sessions.take_pending(token, state_matches);
        }
        let message = if error == "access_denied" {
            "The sign-in was declined or cancelled."
        } else {
            "Cyberspace ID could not sign you in."
        };
        return html::error_page(
            StatusCode::BAD_REQUEST,
            message,
            Some(error),
            query.error_description.as_deref(),
        );
    }
    let Some(token) = token else {
        return bad("No sign-in is in progress in this browser (the session cookie is missing).");
    };
    if query.state.is_none() {
        return bad("The response carries no state parameter.");
    }
    let Some(pending) = inner.sessions.take_pending(&token, state_matches) else {
        return bad(
            "The response does not belong to a sign-in started in this browser (state mismatch).",
        );
    };
    if pending.started.elapsed() > session::PENDING_TIMEOUT {
        return bad("The sign-in took too long; please start again.");
    }
    let Some(code) = query.code else {
        return bad("The response carries no authorization code.");
    };
    let provider = match inner.oidc.provider(false).await {
        Ok(provider) => provider,
        Err(e) => return html::error_page(StatusCode::BAD_GATEWAY, &e.to_string(), None, None),
    };
    if provider.iss_parameter_supported && query.iss.is_none() {
        return bad("The response carries no iss parameter although the provider promises one.");
    }
    match inner.oidc.finish(provider, code, pending).await {
        Ok(signed_in) => {
            // A fresh session for the signed-in user; the old one is done.
            inner.sessions.remove(&token);
            let token = inner.sessions.create(
                Some(User::CyberspaceId {
                    subject: signed_in.subject,
                    claims: signed_in.claims,
                }),
                None,
            );
            see_other(
                "/me",
                Some(session::set_cookie(&token, inner.secure_cookies)),
            )
        }
        Err(e) => {
            tracing::warn!(error = %e, "Cyberspace ID sign-in failed");
            html::error_page(StatusCode::BAD_GATEWAY, &e.to_string(), None, None)
        }
    }
}

async fn me(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match state.user(&headers) {
        Some(User::CyberspaceId { claims, .. }) => html::claims_page(&claims),
        _ => see_other("/", None),
    }
}

async fn me_json(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match state.user(&headers) {
        Some(User::CyberspaceId { claims, .. }) => {
            let mut response = Json(claims).into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        _ => (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({
                "error": "not_signed_in",
                "error_description": "no session signed in with Cyberspace ID",
            })),
        )
            .into_response(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uri_appends_the_callback_path() {
        assert_eq!(
            redirect_uri("http://127.0.0.1:9000"),
            "http://127.0.0.1:9000/callback"
        );
        assert_eq!(
            redirect_uri("https://shop.example/app/"),
            "https://shop.example/app/callback"
        );
    }

    #[test]
    fn default_public_url_is_browsable() {
        assert_eq!(
            default_public_url("0.0.0.0:8081".parse().unwrap()),
            "http://127.0.0.1:8081"
        );
        assert_eq!(
            default_public_url("[::]:8081".parse().unwrap()),
            "http://[::1]:8081"
        );
        assert_eq!(
            default_public_url("10.1.2.3:80".parse().unwrap()),
            "http://10.1.2.3:80"
        );
    }
}
