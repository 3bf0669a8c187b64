//! The 18-character citizen ID number of GB 11643-1999.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::{Date, Month};

use crate::region::Province;
use crate::sex::Sex;

/// ISO 7064 MOD 11-2 weights for the first 17 characters (2^(17-i) mod 11).
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// Check character for each weighted sum modulo 11.
const CHECK_CHARS: &[u8; 11] = b"10X98765432";
/// Earliest accepted birth year: nobody alive was born earlier, and the format has no century
/// marker that could express it anyway.
const MIN_BIRTH_YEAR: i32 = 1850;

/// A validated citizen ID number, held in canonical form (18 characters, uppercase `X`).
///
/// `Debug` never shows the number, so it cannot leak into logs by accident; `Display`
/// prints it in full and is meant for explicit, deliberate use only.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CitizenIdNumber(String);

/// Why a string is not a valid citizen ID number. Messages never contain the number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CitizenIdError {
    /// Not exactly 18 characters.
    #[error("a citizen ID number has 18 characters, found {found}")]
    Length {
        /// Number of characters found (after trimming surrounding whitespace).
        found: usize,
    },
    /// A character that is not a digit (or `X` in the last place).
    #[error(
        "character {position} of the citizen ID number is not allowed (digits only; X only as the last character)"
    )]
    Character {
        /// 1-based position of the first offending character.
        position: usize,
    },
    /// The region code does not start with a known province code.
    #[error("the citizen ID number's region code {code} is not a known region")]
    UnknownRegion {
        /// The 6-digit region code (never the full number).
        code: String,
    },
    /// The birth date is not a real calendar date, or is before 1850.
    #[error("the citizen ID number's birth date is not a possible date")]
    ImpossibleDate,
    /// The check character does not match the other 17 characters.
    #[error("the citizen ID number's check character is wrong (likely a typing error)")]
    CheckCharacter,
    /// `compose` was given a region code that is not 6 digits.
    #[error("a region code has exactly 6 digits")]
    RegionCodeFormat,
    /// `compose` was given a sequence number outside 0..=999.
    #[error("the sequence number must be between 0 and 999, found {found}")]
    SequenceOutOfRange {
        /// The sequence number given.
        found: u16,
    },
}

impl CitizenIdNumber {
    /// Parses and strictly validates a citizen ID number.
    ///
    /// Surrounding whitespace is ignored and a lowercase `x` is accepted; the stored form is
    /// canonical (uppercase `X`).
    pub fn parse(input: &str) -> Result<Self, CitizenIdError> {
        let s = input.trim();
        let found = s.chars().count();
        if found != 18 {
            return Err(CitizenIdError::Length { found });
        }
        // 18 chars; any non-ASCII one is rejected below, so byte positions equal char positions.
        let mut canonical = String::with_capacity(18);
        for (i, c) in s.chars().enumerate() {
            match c {
                '0'..='9' => canonical.push(c),
                'X' | 'x' if i == 17 => canonical.push('X'),
                _ => return Err(CitizenIdError::Character { position: i + 1 }),
            }
        }
        validate_fields(&canonical)?;
        let expected = check_character_of(canonical.as_bytes());
        if canonical.as_bytes().get(17).copied() != Some(expected) {
            return Err(CitizenIdError::CheckCharacter);
        }
        Ok(Self(canonical))
    }

    /// Builds a number from its parts, computing the check character.
    pub fn compose(
        region_code: &str,
        birth_date: Date,
        sequence: u16,
    ) -> Result<Self, CitizenIdError> {
        if region_code.len() != 6 || !region_code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CitizenIdError::RegionCodeFormat);
        }
        if sequence > 999 {
            return Err(CitizenIdError::SequenceOutOfRange { found: sequence });
        }
        let year = birth_date.year();
        if !(MIN_BIRTH_YEAR..=9999).contains(&year) {
            return Err(CitizenIdError::ImpossibleDate);
        }
        let mut s = String::with_capacity(18);
        s.push_str(region_code);
        push_digits(&mut s, year.unsigned_abs(), 4);
        push_digits(&mut s, u32::from(u8::from(birth_date.month())), 2);
        push_digits(&mut s, u32::from(birth_date.day()), 2);
        push_digits(&mut s, u32::from(sequence), 3);
        validate_fields(&s)?;
        s.push(char::from(check_character_of(s.as_bytes())));
        Ok(Self(s))
    }

    /// The ISO 7064 MOD 11-2 check character for the first 17 characters, or `None` if
    /// `first17` is not exactly 17 ASCII digits.
    pub fn check_character(first17: &str) -> Option<char> {
        let bytes = first17.as_bytes();
        if bytes.len() != 17 || !bytes.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(char::from(check_character_of(bytes)))
    }

    /// The canonical 18-character form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 6-digit region code (GB/T 2260) the number was issued under.
    pub fn region_code(&self) -> &str {
        &self.0[..6]
    }

    /// The province-level division of the region code.
    pub fn province(&self) -> &'static Province {
        match Province::by_code(province_code(&self.0)) {
            Some(p) => p,
            // Unreachable: construction checked the province code against the same table.
            None => &crate::region::PROVINCES[0],
        }
    }

    /// The birth date encoded in the number.
    pub fn birth_date(&self) -> Date {
        // Cannot fail: construction checked this very date.
        decode_date(&self.0).unwrap_or(Date::MIN)
    }

    /// The 3-digit sequence number (0..=999).
    pub fn sequence(&self) -> u16 {
        let seq = digits(&self.0.as_bytes()[14..17]);
        u16::try_from(seq).unwrap_or(0)
    }

    /// Sex encoded by the parity of the sequence number: odd is male, even is female.
    pub fn sex(&self) -> Sex {
        if self.sequence() % 2 == 1 {
            Sex::Male
        } else {
            Sex::Female
        }
    }

    /// A masked form for showing a holder which number is meant, e.g. `1101**********002X`.
    pub fn masked(&self) -> String {
        format!("{}**********{}", &self.0[..4], &self.0[14..])
    }
}

/// Checks the region, date and sequence fields of a string of (at least) 17 ASCII digits.
fn validate_fields(s: &str) -> Result<(), CitizenIdError> {
    // Only the province prefix is checked against a table: county codes are renumbered over
    // time, and numbers issued under an old county code stay valid for life.
    if Province::by_code(province_code(s)).is_none() {
        return Err(CitizenIdError::UnknownRegion {
            code: s[..6].to_owned(),
        });
    }
    decode_date(s)?;
    Ok(())
}

fn province_code(s: &str) -> u8 {
    u8::try_from(digits(&s.as_bytes()[..2])).unwrap_or(0)
}

fn decode_date(s: &str) -> Result<Date, CitizenIdError> {
    let b = s.as_bytes();
    let year = i32::try_from(digits(&b[6..10])).map_err(|_| CitizenIdError::ImpossibleDate)?;
    let month = u8::try_from(digits(&b[10..12])).map_err(|_| CitizenIdError::ImpossibleDate)?;
    let day = u8::try_from(digits(&b[12..14])).map_err(|_| CitizenIdError::ImpossibleDate)?;
    if year < MIN_BIRTH_YEAR {
        return Err(CitizenIdError::ImpossibleDate);
    }
    let month = Month::try_from(month).map_err(|_| CitizenIdError::ImpossibleDate)?;
    Date::from_calendar_date(year, month, day).map_err(|_| CitizenIdError::ImpossibleDate)
}

/// Decimal value of a run of ASCII digits (callers pass validated slices of at most 4).
fn digits(b: &[u8]) -> u32 {
    b.iter()
        .fold(0, |acc, &d| acc * 10 + u32::from(d.wrapping_sub(b'0')))
}

fn push_digits(s: &mut String, value: u32, width: u32) {
    for k in (0..width).rev() {
        let d = (value / 10u32.pow(k)) % 10;
        s.push(char::from(b'0' + u8::try_from(d).unwrap_or(0)));
    }
}

/// Check character over the first 17 bytes, which must be ASCII digits.
fn check_character_of(first17: &[u8]) -> u8 {
    let sum: u32 = WEIGHTS
        .iter()
        .zip(first17)
        .map(|(w, d)| w * u32::from(d.wrapping_sub(b'0')))
        .sum();
    CHECK_CHARS[(sum % 11) as usize]
}

impl fmt::Debug for CitizenIdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CitizenIdNumber(<redacted>)")
    }
}

impl fmt::Display for CitizenIdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for CitizenIdNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for CitizenIdNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for CitizenIdNumber {
    type Err = CitizenIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use time::macros::date;

    /// Reference implementation written differently from the production one: powers of two.
    fn reference_check(first17: &str) -> char {
        let sum: u64 = first17
            .chars()
            .enumerate()
            .map(|(i, c)| {
                let w = (1u64 << (17 - i)) % 11;
                w * u64::from(c.to_digit(10).unwrap())
            })
            .sum();
        // Solve (sum + check) ≡ 1 (mod 11) for check in 0..=10, X meaning 10.
        let check = (12 - sum % 11) % 11;
        if check == 10 {
            'X'
        } else {
            char::from_digit(check as u32, 10).unwrap()
        }
    }

    #[test]
    fn published_sample_parses() {
        let id = CitizenIdNumber::parse("11010519491231002X").unwrap();
        assert_eq!(id.as_str(), "11010519491231002X");
        assert_eq!(id.region_code(), "110105");
        assert_eq!(id.province().name_en, "Beijing");
        assert_eq!(id.birth_date(), date!(1949 - 12 - 31));
        assert_eq!(id.sequence(), 2);
        assert_eq!(id.sex(), Sex::Female);
        assert_eq!(id.masked(), "1101**********002X");
    }

    #[test]
    fn lowercase_x_and_whitespace_are_canonicalised() {
        let id = CitizenIdNumber::parse("  11010519491231002x\n").unwrap();
        assert_eq!(id.as_str(), "11010519491231002X");
        assert_eq!(id, CitizenIdNumber::parse("11010519491231002X").unwrap());
    }

    #[test]
    fn composed_numbers_parse_including_check_x() {
        let mut saw_x = false;
        let mut saw_digit = false;
        for seq in 1..=40u16 {
            let id = CitizenIdNumber::compose("440106", date!(1990 - 03 - 07), seq).unwrap();
            let last = id.as_str().chars().last().unwrap();
            saw_x |= last == 'X';
            saw_digit |= last.is_ascii_digit();
            assert_eq!(last, reference_check(&id.as_str()[..17]));
            let parsed = CitizenIdNumber::parse(id.as_str()).unwrap();
            assert_eq!(parsed, id);
            assert_eq!(parsed.sequence(), seq);
            assert_eq!(
                parsed.sex(),
                if seq % 2 == 1 { Sex::Male } else { Sex::Female }
            );
            assert_eq!(parsed.province().iso_3166_2, "CN-GD");
        }
        assert!(saw_x && saw_digit);
    }

    #[test]
    fn length_errors() {
        assert_eq!(
            CitizenIdNumber::parse(""),
            Err(CitizenIdError::Length { found: 0 })
        );
        assert_eq!(
            CitizenIdNumber::parse("11010519491231002"),
            Err(CitizenIdError::Length { found: 17 })
        );
        assert_eq!(
            CitizenIdNumber::parse("11010519491231002X1"),
            Err(CitizenIdError::Length { found: 19 })
        );
        // Counted in characters, not bytes.
        assert_eq!(
            CitizenIdNumber::parse("一一010519491231002X"),
            Err(CitizenIdError::Character { position: 1 })
        );
    }

    #[test]
    fn character_errors() {
        assert_eq!(
            CitizenIdNumber::parse("1101051949123100XX"),
            Err(CitizenIdError::Character { position: 17 })
        );
        assert_eq!(
            CitizenIdNumber::parse("X10105194912310021"),
            Err(CitizenIdError::Character { position: 1 })
        );
        assert_eq!(
            CitizenIdNumber::parse("110105 9491231002X"),
            Err(CitizenIdError::Character { position: 7 })
        );
        assert_eq!(
            CitizenIdNumber::parse("1101051949123100２X"),
            Err(CitizenIdError::Character { position: 17 })
        );
    }

    #[test]
    fn region_errors_name_only_the_region_code() {
        for prefix in ["00", "10", "16", "39", "70", "99"] {
            let first17 = format!("{prefix}010519491231002");
            let full = format!("{first17}{}", reference_check(&first17));
            let err = CitizenIdNumber::parse(&full).unwrap_err();
            assert_eq!(
                err,
                CitizenIdError::UnknownRegion {
                    code: format!("{prefix}0105")
                }
            );
            let msg = err.to_string();
            assert!(msg.contains(&format!("{prefix}0105")));
            assert!(!msg.contains(&full) && !msg.contains("19491231"));
        }
    }

    #[test]
    fn date_errors() {
        for date in [
            "19490230", "19491301", "19490001", "19490100", "18491231", "00000101",
        ] {
            let first17 = format!("110105{date}002");
            let full = format!("{first17}{}", reference_check(&first17));
            assert_eq!(
                CitizenIdNumber::parse(&full),
                Err(CitizenIdError::ImpossibleDate),
                "{date}"
            );
        }
        assert!(CitizenIdNumber::compose("110105", date!(1849 - 12 - 31), 1).is_err());
        assert!(CitizenIdNumber::compose("110105", date!(1850 - 01 - 01), 1).is_ok());
    }

    #[test]
    fn february_29() {
        for (date, ok) in [
            ("20000229", true),  // divisible by 400
            ("19000229", false), // divisible by 100, not 400
            ("19960229", true),
            ("19970229", false),
            ("20240229", true),
        ] {
            let first17 = format!("310101{date}123");
            let full = format!("{first17}{}", reference_check(&first17));
            assert_eq!(CitizenIdNumber::parse(&full).is_ok(), ok, "{date}");
        }
    }

    #[test]
    fn check_character_errors() {
        let valid = "11010519491231002X";
        for wrong in "0123456789".chars() {
            let s = format!("{}{wrong}", &valid[..17]);
            assert_eq!(
                CitizenIdNumber::parse(&s),
                Err(CitizenIdError::CheckCharacter)
            );
        }
        // A single typing error in the body is caught too.
        assert_eq!(
            CitizenIdNumber::parse("11010519491231003X"),
            Err(CitizenIdError::CheckCharacter)
        );
    }

    #[test]
    fn check_character_exhaustive_over_each_position() {
        // Every digit at every position, on top of a seeded sample of bodies, against the
        // independent reference implementation.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for _ in 0..200 {
            let body: Vec<u8> = (0..17).map(|_| b'0' + rng.random_range(0..10u8)).collect();
            for pos in 0..17 {
                for d in b'0'..=b'9' {
                    let mut b = body.clone();
                    b[pos] = d;
                    let s = String::from_utf8(b).unwrap();
                    assert_eq!(
                        CitizenIdNumber::check_character(&s),
                        Some(reference_check(&s))
                    );
                }
            }
        }
        assert_eq!(CitizenIdNumber::check_character("1101051949123100"), None);
        assert_eq!(CitizenIdNumber::check_character("1101051949123100A"), None);
        assert_eq!(
            CitizenIdNumber::check_character("11010519491231002"),
            Some('X')
        );
    }

    #[test]
    fn every_check_value_occurs() {
        // All eleven residues (0..=10) must map to distinct check characters.
        let mut seen = std::collections::HashSet::new();
        for seq in 0..200u16 {
            let id = CitizenIdNumber::compose("510104", date!(1985 - 06 - 15), seq).unwrap();
            seen.insert(id.as_str().chars().last().unwrap());
        }
        assert_eq!(seen.len(), 11);
    }

    #[test]
    fn compose_parse_round_trip_property() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let regions = ["110101", "310115", "440305", "650102", "540102", "820000"];
        for _ in 0..5_000 {
            let region = regions[rng.random_range(0..regions.len())];
            let julian = rng.random_range(
                date!(1850 - 01 - 01).to_julian_day()..=date!(2030 - 12 - 31).to_julian_day(),
            );
            let birth = Date::from_julian_day(julian).unwrap();
            let seq = rng.random_range(0..=999u16);
            let id = CitizenIdNumber::compose(region, birth, seq).unwrap();
            let parsed = CitizenIdNumber::parse(&id.as_str().to_lowercase()).unwrap();
            assert_eq!(parsed, id);
            assert_eq!(parsed.region_code(), region);
            assert_eq!(parsed.birth_date(), birth);
            assert_eq!(parsed.sequence(), seq);
        }
    }

    #[test]
    fn compose_rejects_bad_parts() {
        let d = date!(1990 - 01 - 01);
        assert_eq!(
            CitizenIdNumber::compose("11010", d, 1),
            Err(CitizenIdError::RegionCodeFormat)
        );
        assert_eq!(
            CitizenIdNumber::compose("11010a", d, 1),
            Err(CitizenIdError::RegionCodeFormat)
        );
        assert_eq!(
            CitizenIdNumber::compose("110101", d, 1000),
            Err(CitizenIdError::SequenceOutOfRange { found: 1000 })
        );
        assert!(matches!(
            CitizenIdNumber::compose("990101", d, 1),
            Err(CitizenIdError::UnknownRegion { .. })
        ));
    }

    #[test]
    fn debug_redacts_display_shows() {
        let id = CitizenIdNumber::parse("11010519491231002X").unwrap();
        let dbg = format!("{id:?}");
        assert!(!dbg.contains("1949"), "{dbg}");
        assert!(!dbg.contains("110105"), "{dbg}");
        assert_eq!(id.to_string(), "11010519491231002X");
    }

    #[test]
    fn serde_round_trip_and_validation() {
        let id = CitizenIdNumber::parse("11010519491231002X").unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"11010519491231002X\"");
        let back: CitizenIdNumber = serde_json::from_str("\"11010519491231002x\"").unwrap();
        assert_eq!(back, id);
        assert!(serde_json::from_str::<CitizenIdNumber>("\"11010519491231003X\"").is_err());
    }

    #[test]
    fn messages_never_echo_the_number() {
        let inputs = [
            "11010519491231003X",
            "11010519490231002X",
            "1101051949123100",
            "1101051949123100AX",
        ];
        for input in inputs {
            let msg = CitizenIdNumber::parse(input).unwrap_err().to_string();
            assert!(!msg.contains(input), "{msg}");
            assert!(!msg.contains("1949"), "{msg}");
        }
    }
}
