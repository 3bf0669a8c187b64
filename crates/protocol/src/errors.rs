//! The one vocabulary of error codes: every `error` a relying party, a browser, a wallet or
//! a script driving the `cyberid` command can receive, with its HTTP status and meaning.
//!
//! The platform answers every refusal with one of these codes (OAuth and OpenID Connect
//! codes where those standards define one), the wallet reads them back, and the command
//! line prints them with `--json`. `docs/errors.md` is generated from [`ErrorCode::ALL`].

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Who receives a code, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    /// A relying party: in the redirect back from `/authorize` or as the JSON answer of
    /// `/par`, `/token` or `/userinfo` (OAuth 2.0, OpenID Connect).
    RelyingParty,
    /// The wallet, from the platform's own API (enrolment, sign-in approval, consents).
    Wallet,
    /// Anyone: every endpoint can answer with it.
    Any,
    /// A script driving the `cyberid` command (`--json`): found by the command itself,
    /// not sent by the platform.
    CommandLine,
}

impl Audience {
    pub fn describe(self) -> &'static str {
        match self {
            Self::RelyingParty => "relying party",
            Self::Wallet => "wallet",
            Self::Any => "any caller",
            Self::CommandLine => "command line",
        }
    }
}

macro_rules! error_codes {
    ($(
        $(#[$doc:meta])*
        $variant:ident = $code:literal, $status:expr, $audience:ident, $meaning:literal;
    )+) => {
        /// An error code. Serialised as its string (`"invalid_request"`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )+
        }

        impl ErrorCode {
            /// Every code, in the order of the documentation.
            pub const ALL: &'static [ErrorCode] = &[$(Self::$variant),+];

            /// The code as it appears in `error`.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $code,)+ }
            }

            /// The HTTP status the platform answers with; `None` for codes the command line
            /// finds itself, and for codes that reach the relying party only in a redirect.
            pub fn http_status(self) -> Option<u16> {
                match self { $(Self::$variant => $status,)+ }
            }

            /// Who receives it.
            pub fn audience(self) -> Audience {
                match self { $(Self::$variant => Audience::$audience,)+ }
            }

            /// What it means and what to do, in a sentence or two.
            pub fn meaning(self) -> &'static str {
                match self { $(Self::$variant => $meaning,)+ }
            }
        }
    };
}

error_codes! {
    // OAuth 2.0 and OpenID Connect (RFC 6749, RFC 6750, OIDC Core, RFC 9126, RFC 9470).
    InvalidRequest = "invalid_request", Some(400), Any,
        "The request is malformed: a parameter is missing, repeated or invalid, or the body is not the JSON the endpoint takes. Also 401 at /userinfo without a Bearer token, 405 for a method the endpoint does not take, 413 for a body over 64 KiB, 415 for a body that is not JSON.";
    InvalidClient = "invalid_client", Some(401), RelyingParty,
        "Client authentication failed (unknown client, wrong secret, bad or replayed client assertion, another method than the one registered), or the client is suspended.";
    InvalidGrant = "invalid_grant", Some(400), RelyingParty,
        "The authorization code is invalid, expired, already used (which revokes what it issued), for another client, or does not match the redirect URI or the PKCE verifier; or the holder's account is no longer active.";
    UnsupportedGrantType = "unsupported_grant_type", Some(400), RelyingParty,
        "Only the authorization_code grant is supported.";
    UnsupportedResponseType = "unsupported_response_type", None, RelyingParty,
        "Only response_type=code is supported (sent back in the redirect; 400 from /par).";
    InvalidScope = "invalid_scope", None, RelyingParty,
        "The scope does not include openid (sent back in the redirect; 400 from /par).";
    InteractionRequired = "interaction_required", None, RelyingParty,
        "prompt=none was asked, but every sign-in needs the holder's approval in the wallet (sent back in the redirect; 400 from /par).";
    RequestNotSupported = "request_not_supported", None, RelyingParty,
        "Request objects are not supported; push the request to /par instead (sent back in the redirect; 400 from /par).";
    AccessDenied = "access_denied", None, RelyingParty,
        "The holder declined the sign-in, or it expired before the wallet approved it (sent back in the redirect).";
    UnmetAuthenticationRequirements = "unmet_authentication_requirements", None, RelyingParty,
        "The holder's wallet could not reach the requested level (no camera for L3, the PIN locked); never answered with a lower level (sent back in the redirect).";
    InvalidToken = "invalid_token", Some(401), RelyingParty,
        "The access token is unknown, expired or revoked (a replayed code revokes it), the client is suspended, or the holder's account is no longer active.";
    ServerError = "server_error", Some(500), Any,
        "The platform could not complete the request; nothing the caller did. Try again later.";
    TemporarilyUnavailable = "temporarily_unavailable", Some(503), Any,
        "The platform cannot reach its database at the moment (it is stopped, unreachable, or did not answer within `store.operation_timeout_ms`); nothing the caller did. A write may or may not have been made: try again after `Retry-After` seconds (an enrolment retried from the same device receives its credential). From /authorize, once the client is known, it is sent back in the redirect (RFC 6749).";
    TooManyRequests = "too_many_requests", Some(429), Any,
        "A rate limit was reached (docs/limits.md names each): the request was not served and changed nothing. `Retry-After` says in how many seconds to try again.";
    // The platform's own API.
    NotFound = "not_found", Some(404), Any,
        "No such endpoint, sign-in, status list, relying party or consent (also printed by the command line for an unknown ID number or client).";
    InvalidTicket = "invalid_ticket", Some(400), Wallet,
        "The enrolment ticket is malformed, forged or expired; start the enrolment again.";
    InvalidDeviceKey = "invalid_device_key", Some(400), Wallet,
        "The device key is not a P-256 public key in JWK form.";
    InvalidProof = "invalid_proof", Some(400), Wallet,
        "The enrolment proof is not signed by the device key, names another ticket or PIN verifier, or its time is too far from the platform's clock.";
    InvalidIdNumber = "invalid_id_number", Some(400), Wallet,
        "The citizen ID number is malformed (GB 11643-1999: 18 characters, a known province, a real birth date, the check character).";
    InvalidName = "invalid_name", Some(400), Wallet,
        "The name is empty, too long or has characters a registered name cannot have.";
    InvalidFaceSample = "invalid_face_sample", Some(400), Wallet,
        "The face sample is not a base64url embedding of the expected size.";
    IdentityMismatch = "identity_mismatch", Some(422), Wallet,
        "The ID number, the name and the face sample do not together match one person in the registry (one answer for every mismatch, so nothing is learned about who exists).";
    GuardianRequired = "guardian_required", Some(403), Wallet,
        "The person is under 14: enrolment needs a guardian's approval.";
    AlreadyEnrolled = "already_enrolled", Some(409), Wallet,
        "This person already has a Cyberspace ID (re-bind a device instead); from the command line also: this wallet directory is already enrolled.";
    DeviceAlreadyBound = "device_already_bound", Some(409), Wallet,
        "This device key is already bound to another account.";
    InvalidDevice = "invalid_device", Some(401), Wallet,
        "The device proof or approval does not verify, names no device key or an unknown one, is for another request or sign-in, or its time is too far from the platform's clock.";
    AccountInactive = "account_inactive", Some(403), Wallet,
        "This Cyberspace ID is suspended or deregistered.";
    LoginClosed = "login_closed", Some(410), Wallet,
        "The sign-in has already ended or expired; start again at the service.";
    LoginTaken = "login_taken", Some(409), Wallet,
        "Another device has taken this sign-in up (its first PIN evaluation or decision): only that device may act on it. Nothing was counted or changed.";
    LevelTooLow = "level_too_low", Some(400), Wallet,
        "The approval proves a lower level than the sign-in requires; approve at that level, or report that the wallet cannot reach it.";
    InvalidPin = "invalid_pin", Some(403), Wallet,
        "Wrong PIN; the description says how many attempts are left before the PIN locks.";
    PinLocked = "pin_locked", Some(403), Wallet,
        "Too many wrong PINs: the PIN is locked, and the sign-in ends with unmet_authentication_requirements.";
    FaceMismatch = "face_mismatch", Some(403), Wallet,
        "The face sample does not match the registry's template; the description says how many attempts are left.";
    FaceLocked = "face_locked", Some(403), Wallet,
        "Too many failed face matches: sign-ins at L3 are locked for this account.";
    // Found by the command itself.
    InvalidArguments = "invalid_arguments", None, CommandLine,
        "The command line could not be parsed: an unknown flag, a missing argument, a bad value (the usage is printed too).";
    InvalidInput = "invalid_input", None, CommandLine,
        "An argument is well-formed but unusable: a file that cannot be read, a PIN that breaks the PIN rules, an unknown claim name.";
    InvalidSettings = "invalid_settings", None, CommandLine,
        "The settings file or a CYBERID_ environment variable holds an unknown key or a bad value (the description names it).";
    InvalidRegistryFile = "invalid_registry_file", None, CommandLine,
        "The registry file has a bad line (the description names it); nothing was imported.";
    NotEnrolled = "not_enrolled", None, CommandLine,
        "The wallet directory holds no enrolment yet.";
    NetworkError = "network_error", None, CommandLine,
        "The platform could not be reached, or the connection broke before its answer.";
    BadResponse = "bad_response", None, CommandLine,
        "The platform's answer could not be understood or failed the wallet's checks (another issuer, another sign-in, a credential that does not verify).";
    StorageError = "storage_error", None, CommandLine,
        "The wallet directory could not be read or written.";
    BenchFailed = "bench_failed", None, CommandLine,
        "A load test could not run or lost requests (the description says which).";
    Failed = "error", None, CommandLine,
        "Any other failure of a command; the description says what.";
}

impl ErrorCode {
    /// The code for `text`, if it is one of [`ErrorCode::ALL`].
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|code| code.as_str() == text)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Self::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown error code {text:?}")))
    }
}

/// `docs/errors.md`: every code with its status, audience and meaning.
pub fn errors_document() -> String {
    let mut doc = String::from(
        "# Error codes\n\n\
         Every refusal carries one of these codes: the platform answers \
         `{\"error\": code, \"error_description\": text}` (or, for a relying party's \
         authorization request, adds `error`, `error_description`, `state` and `iss` to the \
         redirect back), and every `cyberid` command run with `--json` prints the same two \
         fields on failure (with `invalid_arguments`, also the `usage`). The description is \
         for people and may change; the code is stable.\n\n\
         Generated from `cyberid_protocol::ErrorCode` (`UPDATE_DOCS=1 cargo test -p \
         cyberid-protocol errors_document` rewrites this file).\n\n\
         | code | HTTP | who receives it | meaning |\n\
         |---|---|---|---|\n",
    );
    for code in ErrorCode::ALL {
        let status = match (code.http_status(), code.audience()) {
            (Some(status), _) => status.to_string(),
            (None, Audience::CommandLine) => "—".to_owned(),
            (None, _) => "redirect".to_owned(),
        };
        doc.push_str(&format!(
            "| `{}` | {status} | {} | {} |\n",
            code.as_str(),
            code.audience().describe(),
            code.meaning()
        ));
    }
    doc
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_read_back() {
        for (i, code) in ErrorCode::ALL.iter().enumerate() {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(*code));
            assert!(
                ErrorCode::ALL[i + 1..]
                    .iter()
                    .all(|other| other.as_str() != code.as_str()),
                "{code} twice"
            );
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(json, format!("\"{code}\""));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), *code);
        }
        assert!(serde_json::from_str::<ErrorCode>("\"no_such_code\"").is_err());
    }

    #[test]
    fn relying_party_codes_follow_oauth() {
        // A relying party's library knows these codes from the standards; they must not
        // drift to look-alikes.
        for code in [
            "invalid_request",
            "invalid_client",
            "invalid_grant",
            "unsupported_grant_type",
            "unsupported_response_type",
            "invalid_scope",
            "interaction_required",
            "request_not_supported",
            "access_denied",
            "unmet_authentication_requirements",
            "invalid_token",
            "server_error",
        ] {
            assert!(ErrorCode::parse(code).is_some(), "{code}");
        }
    }

    /// `docs/errors.md` is what [`errors_document`] writes.
    #[test]
    fn errors_document_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/errors.md");
        let expected = errors_document();
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(&path, &expected).unwrap();
        }
        let written = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            written == expected,
            "docs/errors.md is out of date: run UPDATE_DOCS=1 cargo test -p cyberid-protocol errors_document"
        );
    }
}
