//! Token Status Lists (`StatusList::from_compressed`, `status_list::verify_token`): what a
//! verifier reads to learn whether a credential is revoked. The input is read as:
//! - a list as sent (`bits` from the first byte, `lst` the rest): an accepted list has the
//!   capacity its bytes give, reads inside it and refuses beyond it, and compresses back to
//!   itself;
//! - a status list token as sent, and a token whose claims (the input as JSON) the issuer
//!   signs: one that verifies names the list's URI and has not expired;
//! - a list built from operations (first byte bits, two bytes capacity, then pairs of
//!   index and value): each set and get agrees with a plain array of values, and the
//!   signed token gives the same list back.
#![no_main]

use cyberid_crypto::status_list::{self, STATUS_LIST_TYP, StatusList, StatusListError};
use cyberid_fuzz::{NOW, issuer_key, sign_compact};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const URI: &str = "https://id.example/status/1";
/// The verifier's bound: 16 MiB of statuses.
const MAX_LIST_BITS: usize = 16 << 23;
const ROUND_TRIP_BITS: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let bits = [1, 2, 4, 8]
        .get(usize::from(selector % 5))
        .copied()
        .unwrap_or(selector);
    if let Ok(text) = std::str::from_utf8(rest) {
        as_sent(bits, text);
        token_as_sent(text);
        signed_claims(rest);
    }
    built(bits, rest);
});

fn as_sent(bits: u8, lst: &str) {
    let list = match StatusList::from_compressed(bits, lst) {
        Ok(list) => list,
        Err(StatusListError::Bits) => {
            assert!(!matches!(bits, 1 | 2 | 4 | 8));
            return;
        }
        Err(_) => return,
    };
    check_bounds(&list);
    // Compressing a list of megabytes takes a second: round trips stay with the lists a
    // fuzzer can grow by mutation; the size bound is checked whatever the size.
    if list.capacity() * usize::from(list.bits()) <= ROUND_TRIP_BITS {
        let again = StatusList::from_compressed(bits, &list.compressed()).expect("its own lst");
        assert_eq!(again, list);
    }
    assert!(list.capacity() * usize::from(list.bits()) <= MAX_LIST_BITS);
}

fn check_bounds(list: &StatusList) {
    let capacity = list.capacity();
    assert_eq!(capacity % (8 / usize::from(list.bits())), 0);
    let limit = 1u16 << list.bits();
    for index in [0, 1, capacity / 2, capacity.saturating_sub(1)] {
        if index < capacity {
            assert!(u16::from(list.get(index).expect("inside the list")) < limit);
        }
    }
    assert_eq!(list.get(capacity), Err(StatusListError::Index(capacity)));
    assert!(list.get(usize::MAX).is_err());
}

fn token_as_sent(token: &str) {
    if let Ok(list) = status_list::verify_token(token, issuer_key().verifying_key(), URI, NOW) {
        check_bounds(&list);
    }
}

fn signed_claims(claims: &[u8]) {
    let header = format!(r#"{{"alg":"ES256","typ":"{STATUS_LIST_TYP}","kid":"issuer-1"}}"#);
    let token = sign_compact(issuer_key(), header.as_bytes(), claims);
    let Ok(list) = status_list::verify_token(&token, issuer_key().verifying_key(), URI, NOW) else {
        return;
    };
    let claims: Value = serde_json::from_slice(claims).expect("verified claims are JSON");
    assert_eq!(claims["sub"], URI);
    if let Some(exp) = claims.get("exp").filter(|e| !e.is_null()) {
        assert!(exp.as_i64().expect("exp is a number") > NOW);
    }
    assert_eq!(claims["status_list"]["bits"], list.bits());
    check_bounds(&list);
}

fn built(bits: u8, rest: &[u8]) {
    let Some((capacity, ops)) = rest.split_first_chunk::<2>() else {
        return;
    };
    // Small lists, so that the fuzzer's time goes to operations rather than to zeroes.
    let capacity = usize::from(u16::from_le_bytes(*capacity)) % 4097;
    let mut list = match StatusList::new(bits, capacity) {
        Ok(list) => list,
        Err(error) => {
            assert_eq!(error, StatusListError::Bits);
            assert!(!matches!(bits, 1 | 2 | 4 | 8));
            return;
        }
    };
    assert!(list.capacity() >= capacity);
    assert!(list.capacity() < capacity + 8);
    let mut model = vec![0u8; list.capacity()];
    for op in ops.chunks_exact(3) {
        // Mostly inside the list, sometimes just past its end.
        let index = usize::from(u16::from_le_bytes([op[0], op[1]])) % (model.len() + 9);
        let value = op[2];
        let fits = u16::from(value) < (1u16 << bits);
        match list.set(index, value) {
            Ok(()) => {
                assert!(fits && index < model.len());
                model[index] = value;
            }
            Err(StatusListError::Value(v)) => assert!(!fits && v == value),
            Err(StatusListError::Index(i)) => assert!(fits && i == index && index >= model.len()),
            Err(other) => panic!("set refused with {other}"),
        }
    }
    for (index, value) in model.iter().enumerate() {
        assert_eq!(list.get(index), Ok(*value), "entry {index}");
    }
    let token = status_list::sign_token(issuer_key(), URI, &list, NOW, 3600).expect("signs");
    let verified = status_list::verify_token(&token, issuer_key().verifying_key(), URI, NOW)
        .expect("its own token verifies");
    assert_eq!(verified, list);
    assert!(
        status_list::verify_token(&token, issuer_key().verifying_key(), "https://other", NOW)
            .is_err()
    );
}
