//! The columns each record is read from, under the names its reader expects. The two
//! schemas name their columns alike, so both backends select the same lists.

/// An account's columns, under `account_` names.
pub(crate) const ACCOUNT_COLUMNS: &str = "a.id AS account_id, a.status AS account_status, \
     a.person_digest AS account_person_digest, a.network_number AS account_network_number, \
     a.wrapped_data_key AS account_wrapped_data_key, \
     a.sealed_attributes AS account_sealed_attributes, a.pin_key_id AS account_pin_key_id, \
     a.pin_verifier AS account_pin_verifier, a.pin_failures AS account_pin_failures, \
     a.face_failures AS account_face_failures";

/// A relying party's columns, under `rp_` names.
pub(crate) const RP_COLUMNS: &str = "r.client_id AS rp_client_id, r.name AS rp_name, \
     r.redirect_uris AS rp_redirect_uris, r.sector AS rp_sector, \
     r.allowed_claims AS rp_allowed_claims, r.legal_basis AS rp_legal_basis, \
     r.auth_method AS rp_auth_method, r.secret_digest AS rp_secret_digest, r.jwks AS rp_jwks, \
     r.require_par AS rp_require_par, r.status AS rp_status, r.created_at AS rp_created_at";

/// A sign-in's columns. Its `account_id` is read as `login_account_id`, apart from the
/// `account_id` of an account selected beside it.
pub(crate) const LOGIN_COLUMNS: &str = "id, client_id, redirect_uri, state, nonce, requested_claims, \
     id_token_claims, required_level, code_challenge, force_consent, browser_digest, status, \
     account_id AS login_account_id, level, claims, auth_time, code_redeemed_at, \
     code_replayed_at, pin_evaluated, approval_digest, device_thumbprint, created_at, expires_at";

/// A device's columns, under `device_` names.
pub(crate) const DEVICE_COLUMNS: &str = "d.id AS device_id, d.public_jwk AS device_public_jwk";
