//! The network number: a random, lifelong, read-aloud-friendly identifier for a person.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The 31 symbols of a network number. 0/O, 1/I/L are left out so that nothing is ambiguous
/// when read aloud or copied by hand.
pub const ALPHABET: &str = "23456789ABCDEFGHJKMNPQRSTUVWXYZ";

const ALPHABET_BYTES: &[u8; 31] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
const BASE: u32 = 31;
/// Random symbols in a number; the 12th is the check symbol.
const PAYLOAD_LEN: usize = 11;
const LEN: usize = PAYLOAD_LEN + 1;
/// 31^11: the number of distinct payloads.
const PAYLOAD_SPACE: u128 = 31u128.pow(PAYLOAD_LEN as u32);
/// Inverse of the check symbol's weight (12) modulo 31: 12 * 13 = 156 = 5 * 31 + 1.
const INV_CHECK_WEIGHT: u32 = 13;

/// A person's network number: 11 random symbols and 1 check symbol from [`ALPHABET`].
///
/// # The check symbol
///
/// With symbol values `v_1..v_12` (indices into [`ALPHABET`]) and weights `w_i = i`, a valid
/// number satisfies
///
/// ```text
/// sum over i = 1..=12 of  i * v_i  ≡ 0  (mod 31)
/// ```
///
/// Because 31 is prime, every nonzero value has an inverse modulo 31, which gives:
///
/// * **single substitutions**: changing `v_i` to `v_i + d` (with `d ≢ 0`) changes the sum by
///   `i * d`, a product of two nonzero residues of a prime modulus, hence nonzero;
/// * **adjacent transpositions**: swapping unequal `a` at `i` and `b` at `i + 1` changes the
///   sum by `(i + 1 - i)(a - b) = a - b ≢ 0`. (Any transposition is caught in fact, since
///   weights differ by less than 31.)
///
/// The weights `1..=12` are distinct and nonzero modulo 31, which is all this needs.
///
/// The number is never derived from personal data: [`NetworkNumber::from_random_bytes`]
/// takes randomness from the caller (the operating system's generator in production).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct NetworkNumber(String);

/// Why a string is not a valid network number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkNumberError {
    /// Not exactly 12 symbols once spaces and hyphens are removed.
    #[error("a network number has 12 characters (not counting spaces and hyphens), found {found}")]
    Length {
        /// Number of symbols found.
        found: usize,
    },
    /// A look-alike character the alphabet leaves out on purpose.
    #[error(
        "character {position} ('{character}') is not used in network numbers: they contain no 0, O, 1, I or L"
    )]
    Ambiguous {
        /// The offending character as typed.
        character: char,
        /// 1-based position among the symbols (spaces and hyphens not counted).
        position: usize,
    },
    /// Any other character outside the alphabet.
    #[error(
        "character {position} ('{character}') is not allowed in a network number (letters and digits 2-9 only)"
    )]
    Character {
        /// The offending character as typed.
        character: char,
        /// 1-based position among the symbols (spaces and hyphens not counted).
        position: usize,
    },
    /// The check symbol does not match (a mistyped or swapped character).
    #[error(
        "the network number's check character is wrong (a character is mistyped or two are swapped)"
    )]
    CheckSymbol,
}

impl NetworkNumber {
    /// Builds a number from 16 random bytes supplied by the caller (use the OS generator).
    ///
    /// The bytes, read as a big-endian `u128`, are reduced modulo 31^11; the bias this
    /// introduces is below 2^-73 and immaterial.
    pub fn from_random_bytes(bytes: [u8; 16]) -> Self {
        let mut value = u128::from_be_bytes(bytes) % PAYLOAD_SPACE;
        let mut values = [0u32; LEN];
        for slot in values[..PAYLOAD_LEN].iter_mut().rev() {
            // value % 31 < 31, so the narrowing is lossless.
            *slot = (value % u128::from(BASE)) as u32;
            value /= u128::from(BASE);
        }
        values[PAYLOAD_LEN] = check_value(&values[..PAYLOAD_LEN]);
        Self(values.iter().map(|&v| symbol(v)).collect())
    }

    /// Parses a number as typed: case-insensitive, spaces and hyphens ignored.
    pub fn parse(input: &str) -> Result<Self, NetworkNumberError> {
        let mut values = [0u32; LEN];
        let mut found = 0usize;
        for c in input.chars() {
            if c == ' ' || c == '-' {
                continue;
            }
            found += 1;
            let upper = c.to_ascii_uppercase();
            let Some(v) = value_of(upper) else {
                return Err(if matches!(upper, '0' | 'O' | '1' | 'I' | 'L') {
                    NetworkNumberError::Ambiguous {
                        character: c,
                        position: found,
                    }
                } else {
                    NetworkNumberError::Character {
                        character: c,
                        position: found,
                    }
                });
            };
            if let Some(slot) = values.get_mut(found - 1) {
                *slot = v;
            }
        }
        if found != LEN {
            return Err(NetworkNumberError::Length { found });
        }
        if !weighted_sum(&values).is_multiple_of(BASE) {
            return Err(NetworkNumberError::CheckSymbol);
        }
        Ok(Self(values.iter().map(|&v| symbol(v)).collect()))
    }

    /// The 12-symbol form without separators, for storage and comparison.
    pub fn as_compact(&self) -> &str {
        &self.0
    }
}

fn symbol(v: u32) -> char {
    char::from(ALPHABET_BYTES[v as usize % ALPHABET_BYTES.len()])
}

fn value_of(c: char) -> Option<u32> {
    let b = u8::try_from(c).ok()?;
    ALPHABET_BYTES
        .iter()
        .position(|&a| a == b)
        .and_then(|p| u32::try_from(p).ok())
}

/// `sum of (i + 1) * v_i` over the given values (weights start at 1).
fn weighted_sum(values: &[u32]) -> u32 {
    values.iter().zip(1u32..).map(|(v, w)| (v * w) % BASE).sum()
}

/// The check value that makes the full weighted sum ≡ 0 (mod 31).
fn check_value(payload: &[u32]) -> u32 {
    let partial = weighted_sum(payload) % BASE;
    ((BASE - partial) % BASE * INV_CHECK_WEIGHT) % BASE
}

impl fmt::Display for NetworkNumber {
    /// Grouped for reading aloud: `XXXX-XXXX-XXXX`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.0;
        write!(f, "{}-{}-{}", &s[..4], &s[4..8], &s[8..])
    }
}

impl Serialize for NetworkNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for NetworkNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for NetworkNumber {
    type Err = NetworkNumberError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn samples(n: usize) -> Vec<NetworkNumber> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x5eed);
        (0..n)
            .map(|_| NetworkNumber::from_random_bytes(rng.random()))
            .collect()
    }

    #[test]
    fn alphabet_shape() {
        assert_eq!(ALPHABET.len(), 31);
        let set: std::collections::HashSet<char> = ALPHABET.chars().collect();
        assert_eq!(set.len(), 31);
        for banned in ['0', 'O', '1', 'I', 'L'] {
            assert!(!set.contains(&banned));
        }
    }

    #[test]
    fn generated_numbers_parse_and_round_trip() {
        for n in samples(2_000) {
            let compact = n.as_compact();
            assert_eq!(compact.len(), 12);
            assert!(compact.chars().all(|c| ALPHABET.contains(c)));
            assert_eq!(NetworkNumber::parse(compact).unwrap(), n);
            let grouped = n.to_string();
            assert_eq!(grouped.len(), 14);
            assert_eq!(&grouped[4..5], "-");
            assert_eq!(&grouped[9..10], "-");
            assert_eq!(NetworkNumber::parse(&grouped).unwrap(), n);
            assert_eq!(NetworkNumber::parse(&grouped.to_lowercase()).unwrap(), n);
            let spaced = format!(" {} {} {} ", &compact[..4], &compact[4..8], &compact[8..]);
            assert_eq!(NetworkNumber::parse(&spaced).unwrap(), n);
        }
    }

    #[test]
    fn every_single_substitution_is_detected() {
        let alphabet: Vec<char> = ALPHABET.chars().collect();
        for n in samples(2_000) {
            let original: Vec<char> = n.as_compact().chars().collect();
            for pos in 0..12 {
                for &c in &alphabet {
                    if c == original[pos] {
                        continue;
                    }
                    let mut changed = original.clone();
                    changed[pos] = c;
                    let s: String = changed.into_iter().collect();
                    assert_eq!(
                        NetworkNumber::parse(&s),
                        Err(NetworkNumberError::CheckSymbol),
                        "{s} from {}",
                        n.as_compact()
                    );
                }
            }
        }
    }

    #[test]
    fn every_adjacent_transposition_is_detected() {
        let mut tested = 0;
        for n in samples(2_000) {
            let original: Vec<char> = n.as_compact().chars().collect();
            for pos in 0..11 {
                if original[pos] == original[pos + 1] {
                    continue;
                }
                let mut swapped = original.clone();
                swapped.swap(pos, pos + 1);
                let s: String = swapped.into_iter().collect();
                assert_eq!(
                    NetworkNumber::parse(&s),
                    Err(NetworkNumberError::CheckSymbol),
                    "{s}"
                );
                tested += 1;
            }
        }
        assert!(tested > 20_000);
    }

    #[test]
    fn from_random_bytes_is_deterministic_and_spread() {
        assert_eq!(
            NetworkNumber::from_random_bytes([0; 16]).as_compact(),
            "222222222222"
        );
        let a = NetworkNumber::from_random_bytes([1; 16]);
        let b = NetworkNumber::from_random_bytes([1; 16]);
        assert_eq!(a, b);
        let all = samples(2_000);
        let distinct: std::collections::HashSet<_> = all.iter().collect();
        assert_eq!(distinct.len(), all.len());
        // Every symbol shows up in every payload position over 2,000 samples.
        for pos in 0..11 {
            let seen: std::collections::HashSet<u8> =
                all.iter().map(|n| n.as_compact().as_bytes()[pos]).collect();
            assert_eq!(seen.len(), 31, "position {pos}");
        }
        let max = NetworkNumber::from_random_bytes([0xff; 16]);
        assert!(NetworkNumber::parse(max.as_compact()).is_ok());
    }

    #[test]
    fn parse_errors() {
        let good = samples(1).remove(0);
        let compact = good.as_compact();
        assert_eq!(
            NetworkNumber::parse(&compact[..11]),
            Err(NetworkNumberError::Length { found: 11 })
        );
        assert_eq!(
            NetworkNumber::parse(&format!("{compact}2")),
            Err(NetworkNumberError::Length { found: 13 })
        );
        assert_eq!(
            NetworkNumber::parse(""),
            Err(NetworkNumberError::Length { found: 0 })
        );
        for bad in ['0', 'O', 'o', '1', 'I', 'i', 'L', 'l'] {
            let s = format!("{}-{bad}{}", &compact[..4], &compact[5..]);
            let err = NetworkNumber::parse(&s).unwrap_err();
            assert_eq!(
                err,
                NetworkNumberError::Ambiguous {
                    character: bad,
                    position: 5
                }
            );
            assert!(err.to_string().contains("no 0, O, 1, I or L"));
            assert!(err.to_string().contains(bad));
        }
        for bad in ['_', 'é', '中', '+'] {
            let s = format!("{bad}{}", &compact[1..]);
            let err = NetworkNumber::parse(&s).unwrap_err();
            assert_eq!(
                err,
                NetworkNumberError::Character {
                    character: bad,
                    position: 1
                }
            );
            assert!(err.to_string().contains(bad));
        }
    }

    #[test]
    fn serde_uses_grouped_form() {
        let n = samples(1).remove(0);
        let json = serde_json::to_string(&n).unwrap();
        assert_eq!(json, format!("\"{n}\""));
        let back: NetworkNumber = serde_json::from_str(&json).unwrap();
        assert_eq!(back, n);
        let lower: NetworkNumber =
            serde_json::from_str(&format!("\"{}\"", n.as_compact().to_lowercase())).unwrap();
        assert_eq!(lower, n);
        assert!(serde_json::from_str::<NetworkNumber>("\"2222-2222-2223\"").is_err());
    }
}
