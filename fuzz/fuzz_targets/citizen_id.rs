//! `CitizenIdNumber::parse`: what an enrolment, the registry file and the command line read.
//! An accepted number is canonical, parses to itself, composes back from its parts, and
//! shows itself only masked; a refusal's message never repeats the number.
#![no_main]

use cyberid_domain::{CitizenIdNumber, Province, Sex};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    match CitizenIdNumber::parse(input) {
        Ok(id) => check_accepted(input, &id),
        Err(error) => {
            // Messages name at most the 6-digit region code, never the number (or most of
            // it).
            let trimmed = input.trim();
            let number_like = trimmed.len() >= 8
                && trimmed
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b == b'X' || b == b'x');
            if number_like {
                assert!(!error.to_string().contains(trimmed), "{error}");
            }
        }
    }
});

fn check_accepted(input: &str, id: &CitizenIdNumber) {
    let s = id.as_str();
    assert_eq!(
        s,
        input.trim().to_ascii_uppercase(),
        "not the canonical form"
    );
    assert_eq!(s.len(), 18);
    assert!(s[..17].bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(CitizenIdNumber::parse(s).as_ref(), Ok(id));
    assert_eq!(CitizenIdNumber::check_character(&s[..17]), s.chars().last());
    let composed = CitizenIdNumber::compose(id.region_code(), id.birth_date(), id.sequence())
        .expect("an accepted number composes from its parts");
    assert_eq!(&composed, id);

    assert_eq!(id.region_code(), &s[..6]);
    let province_code: u8 = s[..2].parse().expect("two digits");
    assert_eq!(Province::by_code(province_code), Some(id.province()));
    assert!(id.birth_date().year() >= 1850);
    assert_eq!(
        id.birth_date().to_string().replace('-', ""),
        s[6..14],
        "birth date is not the one written in the number"
    );
    assert_eq!(
        u32::from(id.sequence()),
        s[14..17].parse::<u32>().expect("digits")
    );
    let male = id.sequence() % 2 == 1;
    assert_eq!(id.sex(), if male { Sex::Male } else { Sex::Female });

    assert_eq!(id.to_string(), s);
    let masked = id.masked();
    assert_eq!(masked, format!("{}**********{}", &s[..4], &s[14..]));
    assert!(
        !format!("{id:?}").contains(&s[4..14]),
        "Debug shows the number"
    );
    let json = serde_json::to_string(id).expect("serialises");
    assert_eq!(json, format!("\"{s}\""));
    let back: CitizenIdNumber = serde_json::from_str(&json).expect("deserialises");
    assert_eq!(&back, id);
}
