//! What the platform derives from a sign-in's id with its MAC key: the authorization code,
//! access tokens, the number the login page and the wallet both show, and the challenge the
//! wallet signs. Nothing of it is stored; any node can recompute and check it.

use cyberid_crypto::{b64, constant_time_eq};

use crate::platform::Platform;

/// The authorization code of an approved sign-in: its id and a MAC, so nothing secret is
/// stored and any node can check it.
pub fn authorization_code(platform: &Platform, id: &str) -> String {
    let tag = platform
        .keys
        .mac
        .digest("authorization-code", id.as_bytes());
    format!("{id}.{}", b64::encode(&tag[..16]))
}

/// The sign-in id of a well-formed, authentic code.
pub fn check_authorization_code<'a>(platform: &Platform, code: &'a str) -> Option<&'a str> {
    let (id, _) = code.split_once('.')?;
    constant_time_eq(authorization_code(platform, id).as_bytes(), code.as_bytes()).then_some(id)
}

/// An access token: `{sign-in id}.{expiry}.{MAC}`. Nothing is stored for it: userinfo
/// checks the MAC and expiry and reads the sign-in, whose replay mark revokes it.
pub fn access_token(platform: &Platform, sign_in_id: &str, expires_at: i64) -> String {
    let body = format!("{sign_in_id}.{expires_at}");
    let tag = platform.keys.mac.digest("access-token", body.as_bytes());
    format!("{body}.{}", b64::encode(&tag[..24]))
}

/// The sign-in id of an authentic, unexpired access token.
pub fn check_access_token<'a>(platform: &Platform, token: &'a str, now: i64) -> Option<&'a str> {
    let (body, _) = token.rsplit_once('.')?;
    let (sign_in_id, expires_at) = body.split_once('.')?;
    let expires_at: i64 = expires_at.parse().ok()?;
    let expected = access_token(platform, sign_in_id, expires_at);
    (constant_time_eq(expected.as_bytes(), token.as_bytes()) && expires_at > now)
        .then_some(sign_in_id)
}

/// Two digits shown on the login page and in the wallet: a relayed QR code shows its
/// number on someone else's screen.
pub fn number_match(platform: &Platform, id: &str) -> String {
    let tag = platform.keys.mac.digest("number-match", id.as_bytes());
    format!("{:02}", u16::from_be_bytes([tag[0], tag[1]]) % 100)
}

/// What the wallet signs back in its approval, binding it to this sign-in on this platform.
pub fn wallet_challenge(platform: &Platform, id: &str) -> String {
    b64::encode(&platform.keys.mac.digest("wallet-challenge", id.as_bytes())[..16])
}
