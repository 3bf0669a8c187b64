//! Wallet links and login page URLs (`cyberid_protocol::login_page_url_of`,
//! `cyberid_wallet::parse_login_reference`): what `cyberid wallet approve LINK` and the
//! wallet's QR scanner read. Any text makes a wallet link that reads back as itself; an
//! accepted reference names an http(s) platform and a sign-in id of URL-safe symbols, and
//! the login page URL and wallet link the platform would make for them read back the same.
#![no_main]

use cyberid_protocol::{WALLET_LINK_PREFIX, login_page_url_of, wallet_link};
use cyberid_wallet::parse_login_reference;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    assert_eq!(login_page_url_of(&wallet_link(text)).as_deref(), Some(text));
    if login_page_url_of(text).is_some() {
        assert!(text.starts_with(WALLET_LINK_PREFIX));
    }
    let Ok((server, id)) = parse_login_reference(text) else {
        return;
    };
    assert!(
        server.starts_with("https://") || server.starts_with("http://"),
        "{server}"
    );
    assert!(!id.is_empty());
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{id}"
    );
    let page = format!("{server}/login/{id}");
    let expected = Some((server, id));
    assert_eq!(parse_login_reference(&page).ok(), expected, "{page}");
    assert_eq!(
        parse_login_reference(&wallet_link(&page)).ok(),
        expected,
        "{page}"
    );
});
