//! Pure domain types of cyberid: identifiers, people, levels and claims.
//!
//! This crate does no I/O, reads no clock and draws no randomness; callers pass dates and
//! random bytes in. Inputs become types at the edge ("parse, don't validate"), so code
//! holding one of these values holds a valid one.
//!
//! - [`CitizenIdNumber`]: the 18-character GB 11643-1999 citizen ID number.
//! - [`NetworkNumber`]: the random, check-symbol-protected identifier a person keeps for life.
//! - [`Province`] and [`PROVINCES`]: province-level divisions (GB/T 2260, ISO 3166-2).
//! - [`PersonRecord`], [`PersonName`], [`Sex`], [`FaceTemplate`]: a registry record.
//! - [`age_on`] and [`AgePredicates`]: ages and the predicates disclosed instead of birth dates.
//! - [`AssuranceLevel`]: L1..L3 and their OIDC `acr`/`amr` values.
//! - [`Claim`]: the claims a relying party may request.
//! - [`AccountStatus`], [`ClientAuthMethod`]: an account's state and a relying party's
//!   authentication method.
//!
//! Types carrying personal data redact themselves in `Debug`, so they cannot leak into logs.
#![forbid(unsafe_code)]

pub mod account;
pub mod age;
pub mod citizen_id;
pub mod claims;
pub mod date;
pub mod level;
pub mod network_number;
pub mod person;
pub mod region;
pub mod sex;

pub use account::{AccountStatus, ClientAuthMethod};
pub use age::{AgePredicates, MIN_SELF_ENROLMENT_AGE, age_on};
pub use citizen_id::{CitizenIdError, CitizenIdNumber};
pub use claims::{Claim, UnknownClaim, parse_claim_list};
pub use date::{format_iso_date, parse_iso_date};
pub use level::AssuranceLevel;
pub use network_number::{NetworkNumber, NetworkNumberError};
pub use person::{
    FACE_DIMS, FaceTemplate, FaceTemplateError, PersonName, PersonNameError, PersonRecord,
    PersonRecordError,
};
pub use region::{PROVINCES, Province};
pub use sex::Sex;
