//! AES-256-GCM envelopes: personal attributes sealed under a per-person data key, and that
//! key wrapped under a platform key. Destroying the wrapped key destroys the data.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use zeroize::Zeroizing;

use crate::random;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("sealed data could not be opened (wrong key, wrong context or corrupted)")]
pub struct OpenError;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("data could not be sealed")]
pub struct SealError;

/// A 256-bit AES-GCM key.
pub struct SealingKey {
    key: LessSafeKey,
}

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(<secret>)")
    }
}

impl SealingKey {
    pub fn new(secret: &[u8; 32]) -> Self {
        // A 32-byte slice is always a valid AES-256 key.
        #[allow(clippy::expect_used)]
        let unbound = UnboundKey::new(&AES_256_GCM, secret).expect("32-byte AES-256 key");
        Self {
            key: LessSafeKey::new(unbound),
        }
    }

    /// A fresh random key and its bytes (to be wrapped and stored by the caller).
    pub fn generate() -> (Self, Zeroizing<[u8; 32]>) {
        let secret = Zeroizing::new(random::bytes::<32>());
        (Self::new(&secret), secret)
    }

    /// `nonce ‖ ciphertext ‖ tag`. The random 96-bit nonce is safe here because each key
    /// seals few messages (one person's attributes, or one wrap per person under the
    /// platform key: 1.4e9 wraps give a collision chance near 1e-11).
    pub fn seal(&self, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let nonce_bytes = random::bytes::<NONCE_LEN>();
        let mut body = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(context),
                &mut body,
            )
            .map_err(|_| SealError)?;
        let mut out = Vec::with_capacity(NONCE_LEN + body.len());
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&body);
        Ok(out)
    }

    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        if sealed.len() < NONCE_LEN + 16 {
            return Err(OpenError);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| OpenError)?;
        let mut body = body.to_vec();
        let plain_len = self
            .key
            .open_in_place(nonce, Aad::from(context), &mut body)
            .map_err(|_| OpenError)?
            .len();
        body.truncate(plain_len);
        Ok(body)
    }

    /// Wraps another key's bytes.
    pub fn wrap(&self, context: &[u8], key: &[u8; 32]) -> Result<Vec<u8>, SealError> {
        self.seal(context, key)
    }

    pub fn unwrap_key(&self, context: &[u8], wrapped: &[u8]) -> Result<SealingKey, OpenError> {
        let bytes = Zeroizing::new(self.open(context, wrapped)?);
        let secret: &[u8; 32] = bytes.as_slice().try_into().map_err(|_| OpenError)?;
        Ok(SealingKey::new(secret))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn envelope_round_trip_and_binding() {
        let (platform, _) = SealingKey::generate();
        let (person, person_secret) = SealingKey::generate();
        let wrapped = platform.wrap(b"account:1", &person_secret).unwrap();
        let sealed = person
            .seal(b"attrs:1", "王小明|2000-01-01".as_bytes())
            .unwrap();
        assert!(
            !sealed.windows(3).any(|w| w == "王".as_bytes()),
            "plaintext visible"
        );

        let person_again = platform.unwrap_key(b"account:1", &wrapped).unwrap();
        assert_eq!(
            person_again.open(b"attrs:1", &sealed).unwrap(),
            "王小明|2000-01-01".as_bytes()
        );
        // Bound to its context: moving data between accounts fails.
        assert!(platform.unwrap_key(b"account:2", &wrapped).is_err());
        assert!(person.open(b"attrs:2", &sealed).is_err());
        let mut flipped = sealed.clone();
        flipped[20] ^= 1;
        assert!(person.open(b"attrs:1", &flipped).is_err());
        assert!(person.open(b"attrs:1", &sealed[..10]).is_err());
        // Two seals of the same plaintext differ (random nonce).
        assert_ne!(
            person.seal(b"c", b"x").unwrap(),
            person.seal(b"c", b"x").unwrap()
        );
    }
}
