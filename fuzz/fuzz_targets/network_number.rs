//! `NetworkNumber::parse`: what a holder types. An accepted number reads back the same in
//! every form it is shown in (compact, grouped, lower case, JSON); a single substituted
//! symbol is always caught by the check symbol; a number drawn from random bytes parses.
#![no_main]

use cyberid_domain::network_number::ALPHABET;
use cyberid_domain::{NetworkNumber, NetworkNumberError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(bytes) = data.get(..16) {
        let drawn = NetworkNumber::from_random_bytes(bytes.try_into().expect("16 bytes"));
        assert_eq!(
            NetworkNumber::parse(drawn.as_compact()).as_ref(),
            Ok(&drawn)
        );
    }
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(number) = NetworkNumber::parse(input) else {
        return;
    };
    let compact = number.as_compact();
    assert_eq!(compact.len(), 12);
    assert!(compact.chars().all(|c| ALPHABET.contains(c)));
    let typed: String = input
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    assert_eq!(compact, typed, "not the symbols typed");

    let grouped = number.to_string();
    assert_eq!(
        grouped,
        format!("{}-{}-{}", &compact[..4], &compact[4..8], &compact[8..])
    );
    for form in [compact.to_owned(), grouped.clone(), grouped.to_lowercase()] {
        assert_eq!(NetworkNumber::parse(&form).as_ref(), Ok(&number), "{form}");
    }
    let json = serde_json::to_string(&number).expect("serialises");
    let back: NetworkNumber = serde_json::from_str(&json).expect("deserialises");
    assert_eq!(back, number);

    // One symbol changed, at a place and to a symbol the input chooses: always refused.
    let position = usize::from(data[0]) % 12;
    let alphabet: Vec<char> = ALPHABET.chars().collect();
    let old = compact.as_bytes()[position];
    let old_index = alphabet
        .iter()
        .position(|&c| c as u8 == old)
        .expect("in the alphabet");
    let shift = 1 + usize::from(data[data.len() - 1]) % (alphabet.len() - 1);
    let mut changed: Vec<char> = compact.chars().collect();
    changed[position] = alphabet[(old_index + shift) % alphabet.len()];
    let changed: String = changed.into_iter().collect();
    assert_eq!(
        NetworkNumber::parse(&changed),
        Err(NetworkNumberError::CheckSymbol),
        "{changed} passed the check"
    );
});
