//! Server-rendered pages. Every value that did not come from this file goes through
//! [`escape`].

use std::collections::BTreeMap;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::session::User;

/// The service's display name.
pub const SERVICE_NAME: &str = "Example Service";

/// Escapes text for use in HTML element content and in double- or single-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A claim value as text: strings as they are, lists of strings comma-separated (`amr`),
/// everything else (booleans, numbers, objects) as compact JSON.
pub fn claim_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

/// An HTML response with headers that keep the page out of caches and frames and keep the
/// callback URL (which carries the code) out of `Referer`.
pub fn response(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} · {service}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <header><a href=\"/\">{service}</a></header>\n<main>\n{body}\n</main>\n</body>\n</html>\n",
        title = escape(title),
        service = escape(SERVICE_NAME),
    );
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;\
padding:0 1rem;line-height:1.5}header a{font-weight:bold;text-decoration:none;color:inherit}\
label{display:block;margin:.5rem 0}input{display:block;padding:.3rem;width:16rem}\
button,.button{padding:.4rem .9rem;font-size:1rem}\
.button{display:inline-block;border:1px solid #555;border-radius:4px;text-decoration:none;\
color:#fff;background:#b3261e}.error{color:#b3261e}.muted{color:#555}\
table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}";

/// `/` for a visitor who is not signed in, optionally after a failed password attempt.
pub fn sign_in_page(status: StatusCode, error: Option<&str>, username: &str) -> Response {
    let error = error
        .map(|e| {
            format!(
                "<p class=\"error\" id=\"login-error\" role=\"alert\">{}</p>\n",
                escape(e)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<h1>{service}</h1>\n\
         <p>Sign in with your {service} account, or with your Cyberspace ID.</p>\n\
         {error}\
         <form method=\"post\" action=\"/login\" id=\"password-login\">\n\
         <label>Username <input name=\"username\" autocomplete=\"username\" value=\"{username}\" required></label>\n\
         <label>Password <input type=\"password\" name=\"password\" autocomplete=\"current-password\" required></label>\n\
         <button type=\"submit\" id=\"password-signin\">Sign in</button>\n\
         </form>\n\
         <p>or</p>\n\
         <p><a class=\"button\" id=\"cyberid-signin\" href=\"/auth/cyberid\">Sign in with Cyberspace ID</a></p>\n\
         <p class=\"muted\">At a higher level: <a id=\"cyberid-signin-l2\" href=\"/auth/cyberid?level=2\">with your PIN (L2)</a> · \
         <a id=\"cyberid-signin-l3\" href=\"/auth/cyberid?level=3\">with your PIN and face (L3)</a></p>",
        service = escape(SERVICE_NAME),
        username = escape(username),
    );
    response(status, "Sign in", &body)
}

/// `/` for a signed-in visitor.
pub fn signed_in_page(user: &User) -> Response {
    let who = match user {
        User::Password { username } => format!(
            "<p id=\"signed-in\" data-method=\"password\">Signed in as <strong>{}</strong> \
             with a {} password.</p>",
            escape(username),
            escape(SERVICE_NAME),
        ),
        User::CyberspaceId { subject, claims } => {
            let level = claims
                .get("acr")
                .map(|acr| {
                    format!(
                        " at assurance level <strong>{}</strong>",
                        escape(&claim_text(acr))
                    )
                })
                .unwrap_or_default();
            format!(
                "<p id=\"signed-in\" data-method=\"cyberid\">Signed in with Cyberspace ID as \
                 <code>{}</code>{level}.</p>\n\
                 <p><a href=\"/me\">See what {} learned about you</a></p>",
                escape(subject),
                escape(SERVICE_NAME),
            )
        }
    };
    let body = format!(
        "<h1>{}</h1>\n{who}\n\
         <form method=\"post\" action=\"/logout\">\n\
         <button type=\"submit\" id=\"signout\">Sign out</button>\n</form>",
        escape(SERVICE_NAME),
    );
    response(StatusCode::OK, "Signed in", &body)
}

/// `/me`: every claim received from the provider, one table row each.
pub fn claims_page(claims: &BTreeMap<String, Value>) -> Response {
    let mut rows = String::new();
    for (name, value) in claims {
        let name = escape(name);
        rows.push_str(&format!(
            "<tr data-claim=\"{name}\"><th>{name}</th><td>{}</td></tr>\n",
            escape(&claim_text(value))
        ));
    }
    let body = format!(
        "<h1>What {service} knows about you</h1>\n\
         <p id=\"summary\">This is all {service} learned from your Cyberspace ID: \
         the {count} claim{s} below, nothing else.</p>\n\
         <table id=\"claims\">\n<thead><tr><th>claim</th><th>value</th></tr></thead>\n\
         <tbody>\n{rows}</tbody>\n</table>\n\
         <form method=\"post\" action=\"/logout\">\n\
         <button type=\"submit\" id=\"signout\">Sign out</button>\n</form>",
        service = escape(SERVICE_NAME),
        count = claims.len(),
        s = if claims.len() == 1 { "" } else { "s" },
    );
    response(StatusCode::OK, "Your data", &body)
}

/// A failed Cyberspace ID sign-in: what went wrong, and the OAuth error code and description
/// when the provider sent them.
pub fn error_page(
    status: StatusCode,
    message: &str,
    code: Option<&str>,
    description: Option<&str>,
) -> Response {
    let mut body = format!(
        "<h1>Sign-in with Cyberspace ID failed</h1>\n<p class=\"error\" id=\"error\">{}</p>\n",
        escape(message)
    );
    if let Some(code) = code {
        body.push_str(&format!(
            "<p>Error code: <code id=\"error-code\">{}</code></p>\n",
            escape(code)
        ));
    }
    if let Some(description) = description {
        body.push_str(&format!(
            "<p id=\"error-description\">{}</p>\n",
            escape(description)
        ));
    }
    body.push_str("<p><a href=\"/\">Back to the start page</a></p>");
    response(status, "Sign-in failed", &body)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn escape_replaces_every_markup_character() {
        assert_eq!(
            escape(r#"<a href="x" title='y'>Tom & Jerry</a>"#),
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;Tom &amp; Jerry&lt;/a&gt;"
        );
        assert_eq!(escape("plain 文字 text"), "plain 文字 text");
        assert_eq!(escape(""), "");
    }

    #[test]
    fn claim_values_render_as_text() {
        assert_eq!(claim_text(&Value::String("a<b".into())), "a<b");
        assert_eq!(claim_text(&Value::Bool(true)), "true");
        assert_eq!(claim_text(&serde_json::json!(["hwk", "pin"])), "hwk, pin");
        assert_eq!(claim_text(&serde_json::json!([1, "a"])), r#"[1,"a"]"#);
        assert_eq!(claim_text(&serde_json::json!({"k": "v"})), r#"{"k":"v"}"#);
    }

    #[test]
    fn claims_table_escapes_names_and_values() {
        let mut claims = BTreeMap::new();
        claims.insert(
            "x\"><script>".to_string(),
            Value::String("<img src=x>".into()),
        );
        let response = claims_page(&claims);
        assert_eq!(response.status(), StatusCode::OK);
        let body = body_text(response);
        assert!(body.contains(
            "<tr data-claim=\"x&quot;&gt;&lt;script&gt;\"><th>x&quot;&gt;&lt;script&gt;</th>\
             <td>&lt;img src=x&gt;</td></tr>"
        ));
        assert!(!body.contains("<script>"));
        assert!(!body.contains("<img"));
    }

    fn body_text(response: Response) -> String {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .expect("body");
            String::from_utf8(bytes.to_vec()).expect("utf-8")
        })
    }
}
