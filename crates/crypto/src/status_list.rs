//! IETF Token Status List (draft-ietf-oauth-status-list): a compressed bit array in which
//! each issued credential owns one slot, served as a signed JWT (`typ` `statuslist+jwt`).
//!
//! Written here because no maintained Rust crate implements it; it is a bit array, zlib
//! (via `flate2`) and a JWT.

use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use serde::{Deserialize, Serialize};

use crate::jose::{JoseError, SigningKey, UnverifiedJws, VerifyingKey};
use crate::{UnixTime, b64};

pub const STATUS_LIST_TYP: &str = "statuslist+jwt";
/// Status values of the draft's registry.
pub const VALID: u8 = 0x00;
pub const INVALID: u8 = 0x01;
pub const SUSPENDED: u8 = 0x02;
/// The largest list a verifier will inflate: bounds memory against hostile lists.
const MAX_DECOMPRESSED_BYTES: u64 = 16 << 20;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StatusListError {
    #[error("bits per status must be 1, 2, 4 or 8")]
    Bits,
    #[error("index {0} is outside the list")]
    Index(usize),
    #[error("status value {0} does not fit the list's bits")]
    Value(u8),
    #[error("malformed status list: {0}")]
    Malformed(&'static str),
    #[error(transparent)]
    Jose(#[from] JoseError),
}

/// A status list: `bits` bits per credential, least significant bits first within a byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusList {
    bits: u8,
    bytes: Vec<u8>,
}

impl StatusList {
    /// A list of `capacity` entries, all VALID.
    pub fn new(bits: u8, capacity: usize) -> Result<Self, StatusListError> {
        if !matches!(bits, 1 | 2 | 4 | 8) {
            return Err(StatusListError::Bits);
        }
        let len = (capacity * bits as usize).div_ceil(8);
        Ok(Self {
            bits,
            bytes: vec![0; len],
        })
    }

    pub fn bits(&self) -> u8 {
        self.bits
    }

    pub fn capacity(&self) -> usize {
        self.bytes.len() * 8 / self.bits as usize
    }

    fn locate(&self, index: usize) -> Result<(usize, u32), StatusListError> {
        if index >= self.capacity() {
            return Err(StatusListError::Index(index));
        }
        let bit = index * self.bits as usize;
        Ok((bit / 8, (bit % 8) as u32))
    }

    pub fn set(&mut self, index: usize, value: u8) -> Result<(), StatusListError> {
        let mask = ((1u16 << self.bits) - 1) as u8;
        if value & !mask != 0 {
            return Err(StatusListError::Value(value));
        }
        let (byte, shift) = self.locate(index)?;
        self.bytes[byte] = (self.bytes[byte] & !(mask << shift)) | (value << shift);
        Ok(())
    }

    pub fn get(&self, index: usize) -> Result<u8, StatusListError> {
        let mask = ((1u16 << self.bits) - 1) as u8;
        let (byte, shift) = self.locate(index)?;
        Ok((self.bytes[byte] >> shift) & mask)
    }

    /// `lst`: base64url of the zlib-compressed bytes.
    pub fn compressed(&self) -> String {
        let mut encoder = ZlibEncoder::new(Vec::new(), Compression::best());
        // Writing into a Vec cannot fail.
        let _ = encoder.write_all(&self.bytes);
        b64::encode(encoder.finish().unwrap_or_default())
    }

    pub fn from_compressed(bits: u8, lst: &str) -> Result<Self, StatusListError> {
        if !matches!(bits, 1 | 2 | 4 | 8) {
            return Err(StatusListError::Bits);
        }
        let compressed =
            b64::decode(lst).map_err(|_| StatusListError::Malformed("lst is not base64url"))?;
        let mut bytes = Vec::new();
        ZlibDecoder::new(compressed.as_slice())
            .take(MAX_DECOMPRESSED_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|_| StatusListError::Malformed("lst is not zlib data"))?;
        if bytes.len() as u64 > MAX_DECOMPRESSED_BYTES {
            return Err(StatusListError::Malformed("list too large"));
        }
        Ok(Self { bits, bytes })
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct StatusListClaim {
    pub bits: u8,
    pub lst: String,
}

/// The payload of a status list token.
#[derive(Debug, Serialize, Deserialize)]
pub struct StatusListTokenClaims {
    /// The URI the token is served at (the `uri` in credentials' `status.status_list`).
    pub sub: String,
    pub iat: UnixTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<UnixTime>,
    /// Seconds a verifier may cache the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
    pub status_list: StatusListClaim,
}

pub fn sign_token(
    key: &SigningKey,
    uri: &str,
    list: &StatusList,
    iat: UnixTime,
    ttl: u64,
) -> Result<String, StatusListError> {
    let claims = StatusListTokenClaims {
        sub: uri.to_owned(),
        iat,
        exp: Some(iat + ttl as i64 * 24),
        ttl: Some(ttl),
        status_list: StatusListClaim {
            bits: list.bits,
            lst: list.compressed(),
        },
    };
    Ok(key.sign_jwt(STATUS_LIST_TYP, &claims)?)
}

/// Verifies a status list token for `uri` and returns the list.
pub fn verify_token(
    token: &str,
    key: &VerifyingKey,
    uri: &str,
    now: UnixTime,
) -> Result<StatusList, StatusListError> {
    let claims: StatusListTokenClaims =
        UnverifiedJws::parse(token)?.verify(key, STATUS_LIST_TYP)?;
    if claims.sub != uri {
        return Err(StatusListError::Malformed(
            "sub does not match the list URI",
        ));
    }
    if claims.exp.is_some_and(|exp| exp <= now) {
        return Err(StatusListError::Malformed(
            "the status list token has expired",
        ));
    }
    StatusList::from_compressed(claims.status_list.bits, &claims.status_list.lst)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn bit_layout_follows_the_draft() {
        // The draft's 1-bit example: statuses at 0,1,3 → first byte 0b0000_1011.
        let mut list = StatusList::new(1, 16).unwrap();
        for i in [0, 1, 3] {
            list.set(i, INVALID).unwrap();
        }
        assert_eq!(list.bytes[0], 0b0000_1011);
        // 2 bits: entry 1 SUSPENDED occupies bits 2..4 of byte 0.
        let mut list = StatusList::new(2, 8).unwrap();
        list.set(1, SUSPENDED).unwrap();
        list.set(4, INVALID).unwrap();
        assert_eq!(list.bytes, vec![0b0000_1000, 0b0000_0001]);
        assert_eq!(list.get(1).unwrap(), SUSPENDED);
        assert_eq!(list.get(0).unwrap(), VALID);
        list.set(1, VALID).unwrap();
        assert_eq!(list.get(1).unwrap(), VALID);
        assert!(list.set(8, INVALID).is_err());
        assert!(list.set(0, 4).is_err());
    }

    #[test]
    fn token_round_trip_and_compression() {
        let (key, _) = SigningKey::generate().unwrap();
        let mut list = StatusList::new(2, 1 << 20).unwrap();
        list.set(12_345, INVALID).unwrap();
        list.set(999_999, SUSPENDED).unwrap();
        let uri = "https://id.example/status/0";
        let token = sign_token(&key, uri, &list, 1_800_000_000, 300).unwrap();
        assert!(
            token.len() < 4_000,
            "a sparse list compresses well: {} bytes",
            token.len()
        );
        let back = verify_token(&token, key.verifying_key(), uri, 1_800_000_100).unwrap();
        assert_eq!(back, list);
        assert!(
            verify_token(&token, key.verifying_key(), "https://other/", 1_800_000_100).is_err()
        );
        let (other, _) = SigningKey::generate().unwrap();
        assert!(verify_token(&token, other.verifying_key(), uri, 1_800_000_100).is_err());
    }

    #[test]
    fn hostile_lists_are_refused() {
        assert!(StatusList::from_compressed(3, "").is_err());
        assert!(StatusList::from_compressed(1, "!!").is_err());
        assert!(StatusList::from_compressed(1, &b64::encode(b"not zlib")).is_err());
        // A zlib bomb beyond the limit.
        let mut encoder = ZlibEncoder::new(Vec::new(), Compression::best());
        encoder
            .write_all(&vec![0u8; (MAX_DECOMPRESSED_BYTES + 10) as usize])
            .unwrap();
        let bomb = b64::encode(encoder.finish().unwrap());
        assert!(StatusList::from_compressed(1, &bomb).is_err());
    }
}
