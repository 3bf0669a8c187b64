//! PIN checks the platform can rate-limit and a stolen wallet cannot brute-force offline.
//!
//! The wallet never stores the PIN or anything derived from it alone. It blinds the PIN and
//! the platform evaluates an OPRF (RFC 9497, ristretto255-SHA512) under a per-account key;
//! the unblinded output seeds an Ed25519 "PIN key" whose public half (the verifier) the
//! platform keeps. Proving the PIN means signing with that key, which needs a fresh OPRF
//! evaluation, which the platform counts. The platform's cost per check is one scalar
//! multiplication plus one signature verification, not a password hash.

use aws_lc_rs::hmac;
use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use voprf::{BlindedElement, EvaluationElement, OprfClient, OprfServer};
use zeroize::Zeroizing;

use crate::b64;

type Suite = voprf::Ristretto255;
pub const PIN_LENGTH: usize = 6;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PinError {
    #[error("the PIN must be exactly {PIN_LENGTH} digits")]
    Format,
    #[error("the PIN is too easy to guess (repeated or consecutive digits)")]
    Weak,
    #[error("malformed PIN protocol message: {0}")]
    Malformed(&'static str),
    #[error("the PIN proof does not verify")]
    Mismatch,
}

/// A PIN that passed the format and strength rules. Zeroised on drop; Debug is redacted.
pub struct Pin(Zeroizing<String>);

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pin(<secret>)")
    }
}

impl Pin {
    pub fn parse(input: &str) -> Result<Self, PinError> {
        let digits: Vec<u8> = input.bytes().collect();
        if digits.len() != PIN_LENGTH || !digits.iter().all(u8::is_ascii_digit) {
            return Err(PinError::Format);
        }
        let steps: Vec<i16> = digits
            .windows(2)
            .map(|w| w[1] as i16 - w[0] as i16)
            .collect();
        let constant_step = steps.iter().all(|s| *s == steps[0]);
        if constant_step && matches!(steps[0], -1..=1) {
            return Err(PinError::Weak);
        }
        Ok(Self(Zeroizing::new(input.to_owned())))
    }

    fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// The wallet's half of one OPRF run.
pub struct PinBlinding {
    client: OprfClient<Suite>,
}

/// Starts a PIN check: returns the state to keep and the blinded PIN to send (base64url).
pub fn blind(pin: &Pin) -> Result<(PinBlinding, String), PinError> {
    let result = OprfClient::<Suite>::blind(pin.bytes(), &mut rand_core_06::OsRng)
        .map_err(|_| PinError::Malformed("PIN could not be blinded"))?;
    Ok((
        PinBlinding {
            client: result.state,
        },
        b64::encode(result.message.serialize()),
    ))
}

impl PinBlinding {
    /// Unblinds the platform's evaluation into the PIN key.
    pub fn finish(&self, pin: &Pin, evaluated: &str) -> Result<PinKey, PinError> {
        let bytes = b64::decode(evaluated)
            .map_err(|_| PinError::Malformed("evaluation is not base64url"))?;
        let element = EvaluationElement::<Suite>::deserialize(&bytes)
            .map_err(|_| PinError::Malformed("evaluation is not a group element"))?;
        let output = Zeroizing::new(
            self.client
                .finalize(pin.bytes(), &element)
                .map_err(|_| PinError::Malformed("evaluation could not be unblinded"))?,
        );
        PinKey::from_oprf_output(&output)
    }
}

impl PinKey {
    fn from_oprf_output(output: &[u8]) -> Result<Self, PinError> {
        let seed_key = hmac::Key::new(hmac::HMAC_SHA256, output);
        let seed = hmac::sign(&seed_key, b"cyberid/pin-key/1");
        let key_pair = Ed25519KeyPair::from_seed_unchecked(seed.as_ref())
            .map_err(|_| PinError::Malformed("PIN key derivation failed"))?;
        Ok(PinKey { key_pair })
    }
}

/// The Ed25519 key derived from the PIN and the platform's OPRF key.
pub struct PinKey {
    key_pair: Ed25519KeyPair,
}

impl PinKey {
    /// The public verifier the platform stores at enrolment (base64url).
    pub fn verifier(&self) -> String {
        b64::encode(self.key_pair.public_key().as_ref())
    }

    /// A proof of the PIN over `message` (base64url signature).
    pub fn sign(&self, message: &[u8]) -> String {
        b64::encode(self.key_pair.sign(message).as_ref())
    }
}

/// Checks a PIN proof against the stored verifier.
pub fn verify_proof(verifier: &str, message: &[u8], proof: &str) -> Result<(), PinError> {
    let public =
        b64::decode(verifier).map_err(|_| PinError::Malformed("verifier is not base64url"))?;
    let signature =
        b64::decode(proof).map_err(|_| PinError::Malformed("proof is not base64url"))?;
    UnparsedPublicKey::new(&ED25519, public)
        .verify(message, &signature)
        .map_err(|_| PinError::Mismatch)
}

/// Checks that a verifier sent by a wallet is an Ed25519 public key.
pub fn check_verifier(verifier: &str) -> Result<(), PinError> {
    match b64::decode(verifier) {
        Ok(bytes) if bytes.len() == 32 => Ok(()),
        _ => Err(PinError::Malformed(
            "verifier must be a base64url Ed25519 public key",
        )),
    }
}

/// The platform's OPRF master secret; each account's OPRF key is derived from it and the
/// account's random key id (RFC 9497 DeriveKeyPair), so nothing per account is secret at rest.
pub struct PinOprfSecret {
    master: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for PinOprfSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PinOprfSecret(<secret>)")
    }
}

impl PinOprfSecret {
    pub fn new(master: [u8; 32]) -> Self {
        Self {
            master: Zeroizing::new(master),
        }
    }

    /// The verifier a wallet would register for `pin` under `key_id`, computed by the
    /// platform itself (no blinding): for provisioning test and benchmark populations.
    pub fn verifier_for(&self, key_id: &[u8], pin: &Pin) -> Result<String, PinError> {
        let server = OprfServer::<Suite>::new_from_seed(self.master.as_slice(), key_id)
            .map_err(|_| PinError::Malformed("OPRF key derivation failed"))?;
        let output = Zeroizing::new(
            server
                .evaluate(pin.bytes())
                .map_err(|_| PinError::Malformed("PIN could not be evaluated"))?,
        );
        Ok(PinKey::from_oprf_output(&output)?.verifier())
    }

    /// Evaluates a blinded PIN under the key of `key_id`.
    pub fn evaluate(&self, key_id: &[u8], blinded: &str) -> Result<String, PinError> {
        let bytes = b64::decode(blinded)
            .map_err(|_| PinError::Malformed("blinded PIN is not base64url"))?;
        let element = BlindedElement::<Suite>::deserialize(&bytes)
            .map_err(|_| PinError::Malformed("blinded PIN is not a group element"))?;
        let server = OprfServer::<Suite>::new_from_seed(self.master.as_slice(), key_id)
            .map_err(|_| PinError::Malformed("OPRF key derivation failed"))?;
        Ok(b64::encode(server.blind_evaluate(&element).serialize()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn run(secret: &PinOprfSecret, key_id: &[u8], pin: &str) -> PinKey {
        let pin = Pin::parse(pin).unwrap();
        let (state, blinded) = blind(&pin).unwrap();
        let evaluated = secret.evaluate(key_id, &blinded).unwrap();
        state.finish(&pin, &evaluated).unwrap()
    }

    #[test]
    fn same_pin_same_verifier_and_proofs_verify() {
        let secret = PinOprfSecret::new([7; 32]);
        let enrolled = run(&secret, b"acct-1", "482915");
        let again = run(&secret, b"acct-1", "482915");
        assert_eq!(enrolled.verifier(), again.verifier());
        let proof = again.sign(b"txn-1");
        verify_proof(&enrolled.verifier(), b"txn-1", &proof).unwrap();
        assert_eq!(
            verify_proof(&enrolled.verifier(), b"txn-2", &proof),
            Err(PinError::Mismatch)
        );
    }

    #[test]
    fn wrong_pin_other_account_or_other_platform_key_give_other_verifiers() {
        let secret = PinOprfSecret::new([7; 32]);
        let base = run(&secret, b"acct-1", "482915").verifier();
        assert_ne!(base, run(&secret, b"acct-1", "482916").verifier());
        assert_ne!(base, run(&secret, b"acct-2", "482915").verifier());
        assert_ne!(
            base,
            run(&PinOprfSecret::new([8; 32]), b"acct-1", "482915").verifier()
        );
    }

    #[test]
    fn the_platform_computes_the_same_verifier_as_the_wallet() {
        let secret = PinOprfSecret::new([7; 32]);
        let wallet = run(&secret, b"acct-1", "482915").verifier();
        let platform = secret
            .verifier_for(b"acct-1", &Pin::parse("482915").unwrap())
            .unwrap();
        assert_eq!(wallet, platform);
        let other = secret
            .verifier_for(b"acct-1", &Pin::parse("482916").unwrap())
            .unwrap();
        assert_ne!(wallet, other);
    }

    #[test]
    fn blinded_pin_hides_the_pin() {
        let pin = Pin::parse("482915").unwrap();
        let (_, a) = blind(&pin).unwrap();
        let (_, b) = blind(&pin).unwrap();
        assert_ne!(a, b, "blinding must be randomised");
    }

    #[test]
    fn pin_rules() {
        for bad in ["", "12345", "1234567", "12a456", "１２３４５６"] {
            assert_eq!(Pin::parse(bad).unwrap_err(), PinError::Format, "{bad}");
        }
        for weak in ["000000", "123456", "654321", "999999"] {
            assert_eq!(Pin::parse(weak).unwrap_err(), PinError::Weak, "{weak}");
        }
        assert!(Pin::parse("135790").is_ok());
        assert!(Pin::parse("246802").is_ok());
    }

    #[test]
    fn junk_messages_are_errors() {
        let secret = PinOprfSecret::new([7; 32]);
        assert!(secret.evaluate(b"k", "!!").is_err());
        assert!(secret.evaluate(b"k", &b64::encode([0xff; 32])).is_err());
        assert!(secret.evaluate(b"k", &b64::encode([1; 5])).is_err());
        assert!(check_verifier("abc").is_err());
        assert!(verify_proof("!!", b"m", "!!").is_err());
    }
}
