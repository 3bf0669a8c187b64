//! The OpenID Connect client: discovery (lazy, cached), the authorization request, and the
//! code exchange with ID token verification and userinfo. Plain `openidconnect`, nothing
//! specific to cyberid.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClaimName, CoreClaimType,
    CoreClientAuthMethod, CoreErrorResponseType, CoreGenderClaim, CoreGrantType, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm,
    CoreResponseMode, CoreResponseType, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreSubjectIdentifierType, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AccessToken, AccessTokenHash, AdditionalClaims, AdditionalProviderMetadata, AsyncHttpClient,
    AuthType, AuthenticationContextClass, AuthorizationCode, ClaimsVerificationError, Client,
    ClientId, ClientSecret, CsrfToken, EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, HttpRequest, HttpResponse, IdToken, IdTokenFields, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, ProviderMetadata, RedirectUrl,
    RequestTokenError, Scope, SignatureVerificationError, StandardErrorResponse,
    StandardTokenResponse, TokenResponse, UserInfoClaims,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::session::PendingLogin;

/// The only ID token signature algorithm accepted: the one the platform signs with. Fixed
/// here rather than taken from discovery, so a provider (or whoever answers in its name)
/// cannot talk the client into a weaker or symmetric algorithm.
pub const ID_TOKEN_ALG: CoreJwsSigningAlgorithm = CoreJwsSigningAlgorithm::EcdsaP256Sha256;

/// Discovery results (metadata and JWKS) are reused for this long.
const DISCOVERY_TTL: Duration = Duration::from_secs(10 * 60);
/// Upper bound on every request to the provider.
const HTTP_TIMEOUT: Duration = Duration::from_secs(15);
/// Upper bound on a provider's answer (metadata, keys, tokens, userinfo are all small).
const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// ID token claims that are protocol machinery rather than something learned about the user.
const MACHINERY_CLAIMS: &[&str] = &[
    "iss",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "nonce",
    "at_hash",
    "c_hash",
    "auth_time",
    "azp",
    "sid",
];

/// Every claim beyond the standard ones (`real_name_verified`, `age_over_18`, …), kept as JSON.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct OtherClaims {
    #[serde(flatten)]
    pub claims: Map<String, Value>,
}
impl AdditionalClaims for OtherClaims {}

/// The RFC 9207 discovery flag; when the provider sets it, a response without `iss` is refused.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct IssFlag {
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
}
impl AdditionalProviderMetadata for IssFlag {}

type RpProviderMetadata = ProviderMetadata<
    IssFlag,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;
type RpIdTokenFields = IdTokenFields<
    OtherClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type RpIdToken = IdToken<
    OtherClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type RpTokenResponse = StandardTokenResponse<RpIdTokenFields, CoreTokenType>;
/// A client built from discovery: authorization endpoint known, token and userinfo endpoints
/// as advertised.
type RpClient = Client<
    OtherClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    RpTokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Errors of the HTTP client handed to `openidconnect`.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error(transparent)]
    Reqwest(#[from] reqwest::Error),
    #[error(transparent)]
    Http(#[from] openidconnect::http::Error),
    #[error("the response is larger than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
}

/// `openidconnect`'s HTTP client interface over the workspace's `reqwest`.
#[derive(Clone)]
pub struct HttpClient(reqwest::Client);

impl HttpClient {
    pub fn new() -> Result<Self, reqwest::Error> {
        reqwest::Client::builder()
            // Following redirects would let a provider's answer point the client at arbitrary
            // (internal) URLs (SSRF).
            .redirect(reqwest::redirect::Policy::none())
            .timeout(HTTP_TIMEOUT)
            .build()
            .map(Self)
    }
}

impl<'c> AsyncHttpClient<'c> for HttpClient {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let mut response = self.0.execute(request.try_into()?).await?;
            let mut builder = openidconnect::http::Response::builder()
                .status(response.status())
                .version(response.version());
            for (name, value) in response.headers() {
                builder = builder.header(name, value);
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await? {
                if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err(HttpError::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(builder.body(body)?)
        })
    }
}

/// A failure talking to the provider, with a message fit for the error page.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ProviderError(pub String);

/// The result of discovery.
pub struct Provider {
    client: RpClient,
    /// Whether the provider promised the RFC 9207 `iss` parameter in authorization responses.
    pub iss_parameter_supported: bool,
    fetched: Instant,
}

/// A successful sign-in.
pub struct SignedIn {
    pub subject: String,
    pub claims: BTreeMap<String, Value>,
}

/// The relying party's side of OpenID Connect.
pub struct Oidc {
    http: HttpClient,
    issuer: IssuerUrl,
    client_id: ClientId,
    client_secret: ClientSecret,
    redirect_url: RedirectUrl,
    scopes: Vec<String>,
    acr_values: Vec<String>,
    provider: tokio::sync::Mutex<Option<Arc<Provider>>>,
}

impl Oidc {
    pub fn new(
        issuer: &str,
        client_id: &str,
        client_secret: &str,
        redirect_uri: String,
        extra_scopes: &[String],
        acr_values: Option<&str>,
    ) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        Ok(Self {
            http: HttpClient::new().context("building the HTTP client")?,
            issuer: IssuerUrl::new(issuer.to_string())
                .with_context(|| format!("invalid issuer URL {issuer:?}"))?,
            client_id: ClientId::new(client_id.to_string()),
            client_secret: ClientSecret::new(client_secret.to_string()),
            redirect_url: RedirectUrl::new(redirect_uri.clone())
                .with_context(|| format!("invalid redirect URI {redirect_uri:?}"))?,
            scopes: extra_scopes
                .iter()
                .flat_map(|s| s.split_whitespace())
                .filter(|s| *s != "openid")
                .map(str::to_string)
                .collect(),
            acr_values: acr_values
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_string)
                .collect(),
            provider: tokio::sync::Mutex::new(None),
        })
    }

    /// Replaces the client credentials (before serving).
    pub fn set_client(&mut self, client_id: String, client_secret: String) {
        self.client_id = ClientId::new(client_id);
        self.client_secret = ClientSecret::new(client_secret);
    }

    /// The provider's metadata and keys, discovered on first use and cached for a while;
    /// `refresh` forces a new discovery (the provider may have rotated its signing key).
    pub async fn provider(&self, refresh: bool) -> Result<Arc<Provider>, ProviderError> {
        // Holding the lock across discovery makes concurrent first requests wait for one
        // discovery instead of each running their own.
        let mut cached = self.provider.lock().await;
        if !refresh
            && let Some(provider) = cached.as_ref()
            && provider.fetched.elapsed() < DISCOVERY_TTL
        {
            return Ok(provider.clone());
        }
        let metadata = RpProviderMetadata::discover_async(self.issuer.clone(), &self.http)
            .await
            .map_err(|e| {
                ProviderError(format!(
                    "OpenID Connect discovery at {} failed: {}",
                    self.issuer.as_str(),
                    chain(&e)
                ))
            })?;
        let iss_parameter_supported = metadata
            .additional_metadata()
            .authorization_response_iss_parameter_supported;
        let client = RpClient::from_provider_metadata(
            metadata,
            self.client_id.clone(),
            Some(self.client_secret.clone()),
        )
        .set_redirect_uri(self.redirect_url.clone())
        // client_secret_basic (also the library's default; stated because it is registered).
        .set_auth_type(AuthType::BasicAuth);
        let provider = Arc::new(Provider {
            client,
            iss_parameter_supported,
            fetched: Instant::now(),
        });
        *cached = Some(provider.clone());
        Ok(provider)
    }

    /// The authorization URL to send the browser to, and what the callback will need.
    /// `acr_values`, when given, replace the configured ones (a page that needs a higher
    /// level asks for it).
    pub fn authorization_request(
        &self,
        provider: &Provider,
        acr_values: Option<&[String]>,
    ) -> (String, PendingLogin) {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = provider
            .client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                || CsrfToken::new_random_len(32),
                || Nonce::new_random_len(32),
            )
            .set_pkce_challenge(challenge);
        for scope in &self.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let acr_values = acr_values.unwrap_or(&self.acr_values).to_vec();
        for acr in &acr_values {
            request = request.add_auth_context_value(AuthenticationContextClass::new(acr.clone()));
        }
        let (url, state, nonce) = request.url();
        let pending = PendingLogin {
            state: state.into_secret(),
            nonce,
            pkce_verifier: verifier.into_secret(),
            acr_values,
            started: Instant::now(),
        };
        (url.into(), pending)
    }

    /// Exchanges the code, verifies the ID token (ES256 signature from the provider's JWKS,
    /// issuer, audience, expiry, nonce, `at_hash`) and adds the userinfo claims.
    pub async fn finish(
        &self,
        provider: Arc<Provider>,
        code: String,
        pending: PendingLogin,
    ) -> Result<SignedIn, ProviderError> {
        let token = provider
            .client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| ProviderError(format!("The provider has no token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(r) => ProviderError(format!(
                    "The provider refused the authorization code: {}{}",
                    r.error().as_ref(),
                    r.error_description()
                        .map(|d| format!(" ({d})"))
                        .unwrap_or_default()
                )),
                other => ProviderError(format!("The token request failed: {}", chain(&other))),
            })?;
        let id_token = token
            .id_token()
            .ok_or_else(|| ProviderError("The token response has no ID token.".into()))?;
        let access_token = token.access_token();

        let (provider, claims) = match verify(&provider, id_token, &pending.nonce, access_token) {
            Err(VerifyError::Claims(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            ))) => {
                // An unknown key may be a rotated one: look again once.
                let fresh = self.provider(true).await?;
                let claims = verify(&fresh, id_token, &pending.nonce, access_token)?;
                (fresh, claims)
            }
            other => (provider, other?),
        };

        // A level asked for must be the level reached: a sign-in at a lower one is no
        // sign-in for this page.
        if !pending.acr_values.is_empty() {
            let reached = claims.auth_context_ref().map(|acr| acr.as_str());
            if !reached.is_some_and(|acr| pending.acr_values.iter().any(|asked| asked == acr)) {
                return Err(ProviderError(format!(
                    "The sign-in reached level {}, not the level asked for ({}).",
                    reached.unwrap_or("(none)"),
                    pending.acr_values.join(" or ")
                )));
            }
        }
        let subject = claims.subject().as_str().to_string();
        let mut merged = json_claims(claims)?;
        // No userinfo endpoint is fine: the ID token alone is a complete answer.
        if let Ok(request) = provider
            .client
            .user_info(access_token.clone(), Some(claims.subject().clone()))
        {
            let userinfo: UserInfoClaims<OtherClaims, CoreGenderClaim> =
                request.request_async(&self.http).await.map_err(|e| {
                    ProviderError(format!("The userinfo request failed: {}", chain(&e)))
                })?;
            // ID token values win over userinfo values: they are signed.
            for (name, value) in json_claims(&userinfo)? {
                merged.entry(name).or_insert(value);
            }
        }
        Ok(SignedIn {
            subject,
            claims: merged,
        })
    }
}

#[derive(Debug, thiserror::Error)]
enum VerifyError {
    #[error("{}", chain(.0))]
    Claims(#[from] ClaimsVerificationError),
    #[error("{0}")]
    Other(String),
}

impl From<VerifyError> for ProviderError {
    fn from(e: VerifyError) -> Self {
        ProviderError(format!("The ID token was rejected: {e}"))
    }
}

fn verify<'t>(
    provider: &Provider,
    id_token: &'t RpIdToken,
    nonce: &Nonce,
    access_token: &AccessToken,
) -> Result<&'t openidconnect::IdTokenClaims<OtherClaims, CoreGenderClaim>, VerifyError> {
    let verifier = provider
        .client
        .id_token_verifier()
        .set_allowed_algs([ID_TOKEN_ALG]);
    let claims = id_token.claims(&verifier, nonce)?;
    // The access token must be the one issued with this ID token (OIDC Core 3.1.3.8).
    if let Some(expected) = claims.access_token_hash() {
        let alg = id_token
            .signing_alg()
            .map_err(|e| VerifyError::Other(e.to_string()))?;
        let key = id_token
            .signing_key(&verifier)
            .map_err(|e| VerifyError::Other(e.to_string()))?;
        let actual = AccessTokenHash::from_token(access_token, alg, key)
            .map_err(|e| VerifyError::Other(e.to_string()))?;
        if actual != *expected {
            return Err(VerifyError::Other(
                "at_hash does not match the access token".into(),
            ));
        }
    }
    Ok(claims)
}

/// Claims as a JSON map, without the protocol machinery.
fn json_claims<T: Serialize>(claims: &T) -> Result<BTreeMap<String, Value>, ProviderError> {
    match serde_json::to_value(claims) {
        Ok(Value::Object(map)) => Ok(map
            .into_iter()
            .filter(|(name, _)| !MACHINERY_CLAIMS.contains(&name.as_str()))
            .collect()),
        _ => Err(ProviderError("The claims could not be read.".into())),
    }
}

/// An error and its sources on one line.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let next = e.to_string();
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = e.source();
    }
    text
}
