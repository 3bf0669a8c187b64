//! In-memory sessions keyed by a random cookie value.
//!
//! Bounded in time (idle expiry) and in size (oldest evicted first), because this is an
//! example that must not grow without limit, not a production session store.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};
use openidconnect::{CsrfToken, Nonce};
use serde_json::Value;

/// Name of the session cookie; distinctive because cookies are not isolated by port and the
/// provider may run on the same host.
pub const COOKIE_NAME: &str = "example_rp_session";

/// A session unused for this long is gone.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// A sign-in at the provider must come back within this time.
pub const PENDING_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// At most this many sessions are kept.
pub const MAX_SESSIONS: usize = 10_000;

/// Who is signed in, and how.
#[derive(Clone, Debug, PartialEq)]
pub enum User {
    /// With this service's own password.
    Password { username: String },
    /// With Cyberspace ID: the subject and every claim received (ID token and userinfo).
    CyberspaceId {
        subject: String,
        claims: BTreeMap<String, Value>,
    },
}

/// A Cyberspace ID sign-in that went to the provider and has not come back yet.
pub struct PendingLogin {
    pub state: String,
    pub nonce: Nonce,
    pub pkce_verifier: String,
    /// The levels asked for (`acr_values`); the ID token's `acr` must be one of them.
    pub acr_values: Vec<String>,
    pub started: Instant,
}

#[derive(Default)]
struct Session {
    last_seen: Option<Instant>,
    user: Option<User>,
    pending: Option<PendingLogin>,
}

#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        // A panic while holding the lock cannot leave a session half-written in a way that
        // matters here, so keep serving.
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new session for `user` (or for a sign-in in progress); returns its cookie value.
    /// A fresh value on every sign-in keeps an attacker-planted cookie from being promoted.
    pub fn create(&self, user: Option<User>, pending: Option<PendingLogin>) -> String {
        let token = CsrfToken::new_random_len(32).into_secret();
        let now = Instant::now();
        let mut map = self.lock();
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, s| !is_expired(s, now));
        }
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(
            token.clone(),
            Session {
                last_seen: Some(now),
                user,
                pending,
            },
        );
        token
    }

    /// Runs `f` on the live session `token`, refreshing its idle timer; `None` if there is none.
    fn with<R>(&self, token: &str, f: impl FnOnce(&mut Session) -> R) -> Option<R> {
        let now = Instant::now();
        let mut map = self.lock();
        let session = map.get_mut(token)?;
        if is_expired(session, now) {
            map.remove(token);
            return None;
        }
        session.last_seen = Some(now);
        Some(f(session))
    }

    pub fn user(&self, token: &str) -> Option<User> {
        self.with(token, |s| s.user.clone()).flatten()
    }

    /// Records a sign-in in progress on the live session `token`, replacing an earlier one;
    /// hands `pending` back if there is no such session.
    pub fn set_pending(&self, token: &str, pending: PendingLogin) -> Result<(), PendingLogin> {
        let mut slot = Some(pending);
        self.with(token, |s| s.pending = slot.take());
        slot.map_or(Ok(()), Err)
    }

    /// Removes and returns the sign-in in progress if `accept` approves it (the state check),
    /// so that one authorization response can be used at most once.
    pub fn take_pending(
        &self,
        token: &str,
        accept: impl FnOnce(&PendingLogin) -> bool,
    ) -> Option<PendingLogin> {
        self.with(token, |s| match &s.pending {
            Some(p) if accept(p) => s.pending.take(),
            _ => None,
        })
        .flatten()
    }

    pub fn remove(&self, token: &str) {
        self.lock().remove(token);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

fn is_expired(session: &Session, now: Instant) -> bool {
    session
        .last_seen
        .is_none_or(|t| now.saturating_duration_since(t) > IDLE_TIMEOUT)
}

/// The session cookie's value from the request, if any.
pub fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.trim().to_string())
        .filter(|value| !value.is_empty())
}

/// `Set-Cookie` value for a session; `Secure` when the service is served over https.
pub fn set_cookie(token: &str, secure: bool) -> String {
    format!(
        "{COOKIE_NAME}={token}; Path=/; HttpOnly; SameSite=Lax{}",
        if secure { "; Secure" } else { "" }
    )
}

/// `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE_NAME}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn password_user() -> User {
        User::Password {
            username: "demo".into(),
        }
    }

    #[test]
    fn sessions_are_distinct_and_removable() {
        let sessions = Sessions::default();
        let a = sessions.create(Some(password_user()), None);
        let b = sessions.create(None, None);
        assert_ne!(a, b);
        assert!(a.len() >= 43, "32 random bytes, base64url");
        assert_eq!(sessions.user(&a), Some(password_user()));
        assert_eq!(sessions.user(&b), None);
        assert_eq!(sessions.user("not-a-session"), None);
        sessions.remove(&a);
        assert_eq!(sessions.user(&a), None);
    }

    #[test]
    fn idle_sessions_expire() {
        let sessions = Sessions::default();
        let a = sessions.create(Some(password_user()), None);
        sessions.lock().get_mut(&a).unwrap().last_seen =
            Instant::now().checked_sub(IDLE_TIMEOUT + Duration::from_secs(1));
        assert_eq!(sessions.user(&a), None);
        assert_eq!(sessions.len(), 0);
    }

    #[test]
    fn the_map_is_capped() {
        let sessions = Sessions::default();
        let first = sessions.create(Some(password_user()), None);
        // Make the first session clearly the oldest.
        sessions.lock().get_mut(&first).unwrap().last_seen =
            Instant::now().checked_sub(Duration::from_secs(60));
        for _ in 0..MAX_SESSIONS {
            sessions.create(None, None);
        }
        assert_eq!(sessions.len(), MAX_SESSIONS);
        assert_eq!(sessions.user(&first), None, "the oldest was evicted");
    }

    #[test]
    fn pending_login_is_taken_once_and_only_when_accepted() {
        let sessions = Sessions::default();
        let token = sessions.create(None, None);
        let pending = || PendingLogin {
            state: "s".into(),
            nonce: Nonce::new("n".into()),
            pkce_verifier: "v".into(),
            acr_values: Vec::new(),
            started: Instant::now(),
        };
        assert!(sessions.set_pending("gone", pending()).is_err());
        assert!(sessions.set_pending(&token, pending()).is_ok());
        assert!(
            sessions
                .take_pending(&token, |p| p.state == "other")
                .is_none()
        );
        assert!(sessions.take_pending(&token, |p| p.state == "s").is_some());
        assert!(sessions.take_pending(&token, |_| true).is_none());
    }

    #[test]
    fn cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; b=2"));
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("x=y; example_rp_session=tok-123 ; z=w"),
        );
        assert_eq!(cookie(&headers).as_deref(), Some("tok-123"));
        assert_eq!(cookie(&HeaderMap::new()), None);
        let c = set_cookie("t", false);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax") && c.contains("Path=/"));
        assert!(!c.contains("Secure"));
        assert!(set_cookie("t", true).ends_with("; Secure"));
    }
}
