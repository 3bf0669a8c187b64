//! Randomness from the operating system (through aws-lc-rs).

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

/// Fills `out` with OS randomness.
pub fn fill(out: &mut [u8]) {
    // SystemRandom only fails if the OS entropy source is gone, and nothing can continue then.
    #[allow(clippy::expect_used)]
    SystemRandom::new()
        .fill(out)
        .expect("the operating system's random source failed");
}

/// `N` random bytes.
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    fill(&mut out);
    out
}

/// A random token of `N` bytes, base64url-encoded.
pub fn token<const N: usize>() -> String {
    crate::b64::encode(bytes::<N>())
}

/// The URL-safe base64 characters in ASCII order, so that strings written with them sort as
/// the numbers they encode.
const ORDERED_ALPHABET: &[u8; 64] =
    b"-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";

/// A random token that begins with `unix_ms` written in eight order-preserving characters,
/// followed by `N` random bytes (base64url).
///
/// Rows keyed by such tokens are appended at the right edge of a B-tree instead of landing
/// on a random page each, so a group commit of many of them writes a few pages, not one per
/// row (and the WAL, its checkpoints and `fsync` shrink with it). The random part keeps the
/// token unguessable; the prefix tells only when it was made.
pub fn time_ordered_token<const N: usize>(unix_ms: u64) -> String {
    let mut out = String::with_capacity(8 + N.div_ceil(3) * 4);
    for shift in (0..8).rev() {
        let digit = (unix_ms >> (shift * 6)) & 63;
        out.push(char::from(ORDERED_ALPHABET[digit as usize]));
    }
    out.push_str(&token::<N>());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_ordered_tokens_sort_by_time_and_stay_url_safe() {
        let times = [
            0u64,
            1,
            63,
            64,
            1_700_000_000_000,
            1_700_000_000_001,
            1_800_000_000_000,
            (1 << 48) - 1,
        ];
        let tokens: Vec<String> = times.iter().map(|t| time_ordered_token::<16>(*t)).collect();
        for pair in tokens.windows(2) {
            assert!(pair[0] < pair[1], "{} !< {}", pair[0], pair[1]);
        }
        for token in &tokens {
            assert_eq!(token.len(), 8 + 22);
            assert!(
                token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
        }
        // Same time, different tokens: the random part differs.
        assert_ne!(time_ordered_token::<16>(5), time_ordered_token::<16>(5));
        assert!(ORDERED_ALPHABET.windows(2).all(|w| w[0] < w[1]));
    }
}
