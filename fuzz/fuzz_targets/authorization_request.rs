//! The authorization request (`/authorize`, `/par`): its query or form parsed
//! (`Params::parse`), lengths checked, the redirect URI, then every step of
//! `request::validate`, for a client with and without a legal basis. Parameters read back
//! the same once encoded again; a refusal is one of the documented codes with a short
//! description; an accepted request stores only what was asked, permitted and bounded.
#![no_main]

use std::collections::BTreeMap;

use cyberid_fuzz::authorization::{check_accepted, check_refused};
use cyberid_fuzz::{MAX_DESCRIPTION_BYTES, relying_party};
use cyberid_platform::error::ErrorCode;
use cyberid_platform::oidc::params::Params;
use cyberid_platform::oidc::request::{
    PARAMETER_MAXIMA, check_lengths, check_redirect_uri, validate,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let params = match Params::parse(data) {
        Ok(params) => params,
        Err(description) => {
            assert!(description.len() <= MAX_DESCRIPTION_BYTES, "{description}");
            return;
        }
    };
    check_round_trip(&params);
    if let Err(description) = check_lengths(&params) {
        assert!(description.len() <= MAX_DESCRIPTION_BYTES, "{description}");
        return;
    }
    for (name, value) in params.iter() {
        let maximum = PARAMETER_MAXIMA
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(256, |m| m.1);
        assert!(value.len() <= maximum, "{name} passed its maximum");
    }
    for legal_basis in [false, true] {
        let rp = relying_party(legal_basis, None);
        let redirect_uri = match check_redirect_uri(&rp, params.get("redirect_uri")) {
            Ok(uri) => uri,
            Err(error) => {
                assert_eq!(error.code, ErrorCode::InvalidRequest);
                continue;
            }
        };
        assert!(rp.redirect_uris.iter().any(|r| r == redirect_uri));
        match validate(&rp, &params, redirect_uri) {
            Ok(request) => check_accepted(&rp, &params, &request),
            Err(error) => check_refused(&error),
        }
    }
});

fn as_map(params: &Params) -> BTreeMap<String, String> {
    params
        .iter()
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect()
}

fn check_round_trip(params: &Params) {
    let map = as_map(params);
    let encoded = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&map)
        .finish();
    let again = Params::parse(encoded.as_bytes()).expect("its own encoding parses");
    assert_eq!(as_map(&again), map);
    for (name, value) in &map {
        assert!(!name.contains('\0') && !value.contains('\0'));
    }
}
