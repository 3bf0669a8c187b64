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
