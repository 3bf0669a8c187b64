//! Relying-party registration: what `cyberid admin rp add` checks and stores.

use cyberid_crypto::jose::{EcPublicJwk, VerifyingKey};
use cyberid_crypto::random;
use cyberid_domain::{Claim, ClientAuthMethod};
use cyberid_store::RelyingParty;
use serde::Deserialize;

use crate::keys::PlatformKeys;

/// What the operator asks for.
#[derive(Clone, Debug, Default)]
pub struct Registration {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub sector: Option<String>,
    pub claims: Vec<Claim>,
    pub legal_basis: Option<String>,
    pub auth_method: ClientAuthMethod,
    /// JWKS JSON, for `private_key_jwt`.
    pub jwks: Option<String>,
    pub require_par: bool,
}

/// The new client's credentials, shown once.
#[derive(Debug, serde::Serialize)]
pub struct Registered {
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    pub sector: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct RegistrationError(pub String);

fn refuse(message: impl Into<String>) -> RegistrationError {
    RegistrationError(message.into())
}

/// The keyed digest under which a client secret is stored: client secrets are random and
/// long, so a fast keyed hash suffices (a password hash per token request would not).
pub fn client_secret_digest(keys: &PlatformKeys, secret: &str) -> [u8; 32] {
    keys.mac.digest("client-secret", secret.as_bytes())
}

#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<EcPublicJwk>,
}

/// The P-256 keys of a client's JWKS (other key types are ignored).
pub fn client_keys(jwks: &str) -> Result<Vec<VerifyingKey>, RegistrationError> {
    let set: JwkSet = serde_json::from_str(jwks)
        .map_err(|e| refuse(format!("the JWKS is not a JWK set: {e}")))?;
    let keys: Vec<VerifyingKey> = set
        .keys
        .iter()
        .filter_map(|jwk| VerifyingKey::from_jwk(jwk).ok())
        .collect();
    if keys.is_empty() {
        return Err(refuse("the JWKS holds no P-256 (ES256) public key"));
    }
    Ok(keys)
}

/// A redirect URI must be an absolute ASCII URL: https, or http on this machine only
/// (RFC 8252), with no fragment and no user information. Returns its host.
fn check_redirect_uri(uri: &str) -> Result<String, RegistrationError> {
    let bad = |why: &str| refuse(format!("{uri}: {why}"));
    if !uri.is_ascii()
        || uri
            .chars()
            .any(|c| c.is_ascii_whitespace() || c.is_ascii_control())
    {
        return Err(bad(
            "a redirect URI must be plain ASCII (percent-encode anything else)",
        ));
    }
    let parsed = url::Url::parse(uri).map_err(|e| bad(&format!("not a valid URL ({e})")))?;
    if parsed.fragment().is_some() {
        return Err(bad("a redirect URI must not have a fragment"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("a redirect URI must not carry user information"));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| bad("a redirect URI needs a host"))?
        .to_ascii_lowercase();
    match parsed.scheme() {
        "https" => Ok(host),
        "http" if matches!(host.as_str(), "localhost" | "127.0.0.1" | "[::1]") => Ok(host),
        "http" => Err(bad("http is only allowed for localhost; use https")),
        _ => Err(bad("a redirect URI must start with https://")),
    }
}

/// Validates a registration and returns the stored record and the credentials to show.
pub fn register(
    keys: &PlatformKeys,
    request: &Registration,
    now: i64,
) -> Result<(RelyingParty, Registered), RegistrationError> {
    let name = request.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(refuse("the name must be 1 to 100 printable characters"));
    }
    if request.redirect_uris.is_empty() {
        return Err(refuse("at least one --redirect-uri is required"));
    }
    let mut hosts = Vec::new();
    for uri in &request.redirect_uris {
        let host = check_redirect_uri(uri)?;
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    let sector = match (&request.sector, hosts.as_slice()) {
        (Some(sector), _) if !sector.trim().is_empty() => sector.trim().to_owned(),
        (_, [host]) => host.clone(),
        _ => {
            return Err(refuse(
                "the redirect URIs have several hosts: name the sector they share with --sector",
            ));
        }
    };
    let legal_basis = request
        .legal_basis
        .as_deref()
        .map(str::trim)
        .filter(|b| !b.is_empty());
    let mut claims = Vec::new();
    for &claim in &request.claims {
        if claim.requires_legal_basis() && legal_basis.is_none() {
            return Err(refuse(format!(
                "{claim} is raw identity data: it may only be registered with --legal-basis"
            )));
        }
        if !claims.contains(&claim) {
            claims.push(claim);
        }
    }
    let client_id = format!("rp_{}", random::token::<12>());
    let (secret_digest, client_secret, jwks) = match request.auth_method {
        ClientAuthMethod::ClientSecretBasic => {
            if request.jwks.is_some() {
                return Err(refuse("--jwks is for private_key_jwt clients"));
            }
            let secret = random::token::<32>();
            (
                Some(client_secret_digest(keys, &secret).to_vec()),
                Some(secret),
                None,
            )
        }
        ClientAuthMethod::PrivateKeyJwt => {
            let jwks = request.jwks.as_deref().ok_or_else(|| {
                refuse("private_key_jwt needs the client's public keys (--jwks FILE)")
            })?;
            client_keys(jwks)?;
            (None, None, Some(jwks.to_owned()))
        }
    };
    let rp = RelyingParty {
        client_id: client_id.clone(),
        name: name.to_owned(),
        redirect_uris: request.redirect_uris.clone(),
        sector: sector.clone(),
        allowed_claims: claims,
        legal_basis: legal_basis.map(str::to_owned),
        auth_method: request.auth_method,
        secret_digest,
        jwks,
        require_par: request.require_par,
        suspended: false,
        created_at: now,
    };
    Ok((
        rp,
        Registered {
            client_id,
            client_secret,
            sector,
        },
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn keys() -> (tempfile::TempDir, PlatformKeys) {
        let dir = tempfile::tempdir().unwrap();
        let keys = PlatformKeys::load_or_create(dir.path()).unwrap();
        (dir, keys)
    }

    fn basic(uris: &[&str]) -> Registration {
        Registration {
            name: "Shop".into(),
            redirect_uris: uris.iter().map(|u| (*u).to_owned()).collect(),
            auth_method: ClientAuthMethod::ClientSecretBasic,
            ..Registration::default()
        }
    }

    #[test]
    fn secrets_are_stored_as_keyed_digests() {
        let (_dir, keys) = keys();
        let (rp, shown) = register(&keys, &basic(&["https://shop.example/cb"]), 1).unwrap();
        let secret = shown.client_secret.unwrap();
        assert!(secret.len() >= 43);
        assert_eq!(
            rp.secret_digest.unwrap(),
            client_secret_digest(&keys, &secret).to_vec()
        );
        assert_eq!(rp.sector, "shop.example");
    }

    #[test]
    fn refusals() {
        let (_dir, keys) = keys();
        for uris in [
            &["http://shop.example/cb"][..],
            &["ftp://x/cb"],
            &["https://shop.example/cb#x"],
            &[],
        ] {
            assert!(register(&keys, &basic(uris), 1).is_err(), "{uris:?}");
        }
        assert!(register(&keys, &basic(&["http://127.0.0.1:8081/cb"]), 1).is_ok());
        assert!(register(&keys, &basic(&["http://[::1]/cb"]), 1).is_ok());
        let two_hosts = basic(&["https://a.example/cb", "https://b.example/cb"]);
        assert!(register(&keys, &two_hosts, 1).is_err());
        assert!(
            register(
                &keys,
                &Registration {
                    sector: Some("ab".into()),
                    ..two_hosts
                },
                1
            )
            .is_ok()
        );
        let raw = Registration {
            claims: vec![Claim::Name],
            ..basic(&["https://a.example/cb"])
        };
        assert!(
            register(&keys, &raw, 1).is_err(),
            "raw identity data needs a legal basis"
        );
        assert!(
            register(
                &keys,
                &Registration {
                    legal_basis: Some("Law §1".into()),
                    ..raw
                },
                1
            )
            .is_ok()
        );
        let pkjwt = Registration {
            auth_method: ClientAuthMethod::PrivateKeyJwt,
            ..basic(&["https://a.example/cb"])
        };
        assert!(register(&keys, &pkjwt, 1).is_err(), "needs a JWKS");
        let bad_jwks = Registration {
            jwks: Some("{\"keys\":[]}".into()),
            ..pkjwt.clone()
        };
        assert!(register(&keys, &bad_jwks, 1).is_err());
        let (key, _) = cyberid_crypto::jose::SigningKey::generate().unwrap();
        let jwks = serde_json::json!({"keys": [key.public_jwk()]}).to_string();
        let (rp, shown) = register(
            &keys,
            &Registration {
                jwks: Some(jwks),
                ..pkjwt
            },
            1,
        )
        .unwrap();
        assert!(shown.client_secret.is_none() && rp.secret_digest.is_none());
    }
}
