//! Every HTTP route of a platform node, and the answers for routes and methods that do not
//! exist.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};

use crate::error::{ApiError, ErrorCode};
use crate::extract::MAX_BODY_BYTES;
use crate::platform::Platform;
use crate::{enrolment, metadata, oidc, pages, sign_in, status, telemetry};

pub fn router(platform: Platform) -> Router {
    let measured = platform.settings.metrics.listen.is_some();
    let router = Router::new()
        .route("/healthz", get(metadata::healthz))
        .route("/readyz", get(metadata::readyz))
        .route("/jwks.json", get(metadata::jwks))
        .route("/.well-known/jwt-vc-issuer", get(metadata::jwt_vc_issuer))
        .route("/status/{list}", get(status::status_list))
        .route(
            cyberid_protocol::ENROLMENT_START_PATH,
            post(enrolment::start),
        )
        .route(cyberid_protocol::ENROLMENT_PATH, post(enrolment::enrol))
        .route(
            "/.well-known/openid-configuration",
            get(oidc::discovery::openid_configuration),
        )
        .route(
            "/authorize",
            get(oidc::authorize::authorize_get).post(oidc::authorize::authorize_post),
        )
        .route("/par", post(oidc::authorize::par))
        .route("/token", post(oidc::token::token))
        .route(
            "/userinfo",
            get(oidc::userinfo::userinfo).post(oidc::userinfo::userinfo),
        )
        .route("/login/{id}", get(sign_in::page::page))
        .route("/login/{id}/status", get(sign_in::waiting::status))
        .route("/static/login.js", get(pages::login_script))
        .route("/api/v1/logins/{id}", get(sign_in::decision::details))
        .route(
            "/api/v1/logins/{id}/pin",
            post(sign_in::decision::pin_evaluation),
        )
        .route(
            "/api/v1/logins/{id}/decision",
            post(sign_in::decision::decision),
        )
        .route(
            cyberid_protocol::CONSENTS_PATH,
            post(sign_in::consents::consents),
        )
        .route(
            cyberid_protocol::REVOKE_CONSENT_PATH,
            post(sign_in::consents::revoke_consent),
        )
        .route(
            cyberid_protocol::PIN_RESET_PATH,
            post(sign_in::pin_reset::reset_pin),
        )
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                ErrorCode::InvalidRequest,
                "this endpoint does not accept that HTTP method",
            )
            .with_status(StatusCode::METHOD_NOT_ALLOWED)
        })
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such endpoint") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    // Without a metrics listener nothing is recorded, and requests skip the layer.
    let router = if measured {
        router.layer(axum::middleware::from_fn(telemetry::record_request))
    } else {
        router
    };
    // Every answer gets the platform's format and security headers from
    // `crate::guards`, applied by the connection loop around the whole router.
    router.with_state(platform)
}
