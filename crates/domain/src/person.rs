//! A person as the population registry knows them.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::Date;

use crate::citizen_id::CitizenIdNumber;
use crate::region::Province;
use crate::sex::Sex;

/// Longest accepted name, in characters. Generous for Chinese names (including transliterated
/// minority names joined with `·`) while keeping pages and logs bounded.
pub const MAX_NAME_CHARS: usize = 64;

/// A person's name, trimmed and with internal whitespace runs collapsed to one space.
///
/// `Debug` is redacted so names never reach logs by accident.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PersonName(String);

/// Why a string is not an acceptable name. Messages never contain the name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PersonNameError {
    /// Nothing but whitespace.
    #[error("the name is empty")]
    Empty,
    /// Longer than [`MAX_NAME_CHARS`] characters after normalisation.
    #[error("the name has {found} characters; at most {MAX_NAME_CHARS} are allowed")]
    TooLong {
        /// Characters after normalisation.
        found: usize,
    },
    /// Contains a control character (tab and newline included).
    #[error("character {position} of the name is a control character")]
    ControlCharacter {
        /// 1-based position in the input.
        position: usize,
    },
    /// Contains an invisible formatting or text-direction character, which could make a name
    /// display differently from what it is.
    #[error("character {position} of the name is an invisible formatting character")]
    InvisibleCharacter {
        /// 1-based position in the input.
        position: usize,
    },
}

/// Zero-width, word-joiner, byte-order-mark and bidirectional-override characters.
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' |
        '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

impl PersonName {
    /// Normalises and validates a name.
    pub fn parse(input: &str) -> Result<Self, PersonNameError> {
        for (i, c) in input.chars().enumerate() {
            if c.is_control() {
                return Err(PersonNameError::ControlCharacter { position: i + 1 });
            }
            if is_invisible_format(c) {
                return Err(PersonNameError::InvisibleCharacter { position: i + 1 });
            }
        }
        let mut name = String::with_capacity(input.len());
        for word in input.split_whitespace() {
            if !name.is_empty() {
                name.push(' ');
            }
            name.push_str(word);
        }
        let found = name.chars().count();
        if found == 0 {
            return Err(PersonNameError::Empty);
        }
        if found > MAX_NAME_CHARS {
            return Err(PersonNameError::TooLong { found });
        }
        Ok(Self(name))
    }

    /// The normalised name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PersonName(<redacted>)")
    }
}

impl fmt::Display for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for PersonName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PersonName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Dimensions of a face embedding.
pub const FACE_DIMS: usize = 128;

/// A face embedding quantized to `i8` per dimension (the registry crate documents the scale).
///
/// Biometric data: `Debug` shows only the dimension count.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct FaceTemplate([i8; FACE_DIMS]);

/// Why bytes are not a face template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaceTemplateError {
    /// Not exactly [`FACE_DIMS`] bytes.
    #[error("a face template has {FACE_DIMS} bytes, found {found}")]
    Length {
        /// Bytes found.
        found: usize,
    },
}

impl FaceTemplate {
    /// Reads a template from exactly [`FACE_DIMS`] bytes (each a two's-complement `i8`).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FaceTemplateError> {
        let bytes: &[u8; FACE_DIMS] = bytes
            .try_into()
            .map_err(|_| FaceTemplateError::Length { found: bytes.len() })?;
        Ok(Self(bytes.map(u8::cast_signed)))
    }

    /// The template as bytes (each a two's-complement `i8`).
    pub fn to_bytes(&self) -> [u8; FACE_DIMS] {
        self.0.map(i8::cast_unsigned)
    }

    /// Wraps quantized components.
    pub fn from_components(components: [i8; FACE_DIMS]) -> Self {
        Self(components)
    }

    /// The quantized components.
    pub fn components(&self) -> &[i8; FACE_DIMS] {
        &self.0
    }
}

impl fmt::Debug for FaceTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaceTemplate(<{FACE_DIMS} dims>)")
    }
}

/// A registry record. [`PersonRecord::new`] guarantees the birth date and sex agree with the
/// ID number; the fields stay public for reading and pattern matching.
#[derive(Clone, PartialEq, Eq)]
pub struct PersonRecord {
    /// Citizen ID number.
    pub id_number: CitizenIdNumber,
    /// Name as registered.
    pub name: PersonName,
    /// Birth date (equal to the one in the ID number).
    pub birth_date: Date,
    /// Sex (equal to the one in the ID number).
    pub sex: Sex,
    /// Face template.
    pub face: FaceTemplate,
}

/// Why a record is inconsistent. Messages never contain personal data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PersonRecordError {
    /// The birth date differs from the one encoded in the ID number.
    #[error("birth date does not match the ID number")]
    BirthDateMismatch,
    /// The sex differs from the one encoded in the ID number.
    #[error("sex does not match the ID number")]
    SexMismatch,
}

impl PersonRecord {
    /// Builds a record, checking that birth date and sex agree with the ID number.
    pub fn new(
        id_number: CitizenIdNumber,
        name: PersonName,
        birth_date: Date,
        sex: Sex,
        face: FaceTemplate,
    ) -> Result<Self, PersonRecordError> {
        if id_number.birth_date() != birth_date {
            return Err(PersonRecordError::BirthDateMismatch);
        }
        if id_number.sex() != sex {
            return Err(PersonRecordError::SexMismatch);
        }
        Ok(Self {
            id_number,
            name,
            birth_date,
            sex,
            face,
        })
    }

    /// The province the ID number was issued in.
    pub fn province(&self) -> &'static Province {
        self.id_number.province()
    }
}

impl fmt::Debug for PersonRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PersonRecord(<redacted>)")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn names_are_normalised() {
        assert_eq!(PersonName::parse("王伟").unwrap().as_str(), "王伟");
        assert_eq!(
            PersonName::parse("  欧阳  娜娜 ").unwrap().as_str(),
            "欧阳 娜娜"
        );
        assert_eq!(
            PersonName::parse("阿沛·阿旺晋美").unwrap().as_str(),
            "阿沛·阿旺晋美"
        );
        assert_eq!(
            PersonName::parse("Li\u{3000}\u{3000}Na").unwrap().as_str(),
            "Li Na"
        );
    }

    #[test]
    fn name_errors() {
        assert_eq!(PersonName::parse(""), Err(PersonNameError::Empty));
        assert_eq!(PersonName::parse(" \u{3000} "), Err(PersonNameError::Empty));
        assert_eq!(
            PersonName::parse("王\t伟"),
            Err(PersonNameError::ControlCharacter { position: 2 })
        );
        assert_eq!(
            PersonName::parse("王伟\n"),
            Err(PersonNameError::ControlCharacter { position: 3 })
        );
        assert_eq!(
            PersonName::parse("王\u{202E}伟"),
            Err(PersonNameError::InvisibleCharacter { position: 2 })
        );
        let max = "李".repeat(MAX_NAME_CHARS);
        assert!(PersonName::parse(&max).is_ok());
        let long = "李".repeat(MAX_NAME_CHARS + 1);
        let err = PersonName::parse(&long).unwrap_err();
        assert_eq!(err, PersonNameError::TooLong { found: 65 });
        assert!(!err.to_string().contains('李'));
    }

    #[test]
    fn name_debug_is_redacted_and_serde_validates() {
        let n = PersonName::parse("张三").unwrap();
        assert_eq!(format!("{n:?}"), "PersonName(<redacted>)");
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"张三\"");
        let back: PersonName = serde_json::from_str("\" 张三 \"").unwrap();
        assert_eq!(back, n);
        assert!(serde_json::from_str::<PersonName>("\"a\\tb\"").is_err());
    }

    #[test]
    fn sex_serde() {
        assert_eq!(serde_json::to_string(&Sex::Male).unwrap(), "\"male\"");
        assert_eq!(
            serde_json::from_str::<Sex>("\"female\"").unwrap(),
            Sex::Female
        );
        assert_eq!(Sex::parse("male"), Some(Sex::Male));
        assert_eq!(Sex::parse("Male"), None);
        assert_eq!(Sex::Female.as_str(), "female");
    }

    #[test]
    fn face_template_bytes() {
        let mut comps = [0i8; FACE_DIMS];
        for (i, c) in comps.iter_mut().enumerate() {
            *c = (i as i8).wrapping_mul(37);
        }
        comps[0] = -128;
        comps[1] = 127;
        comps[2] = -1;
        let t = FaceTemplate::from_components(comps);
        let bytes = t.to_bytes();
        assert_eq!(bytes[0], 0x80);
        assert_eq!(bytes[2], 0xff);
        assert_eq!(FaceTemplate::from_bytes(&bytes).unwrap(), t);
        assert_eq!(t.components(), &comps);
        assert_eq!(
            FaceTemplate::from_bytes(&bytes[..127]),
            Err(FaceTemplateError::Length { found: 127 })
        );
        assert_eq!(
            FaceTemplate::from_bytes(&[0; 129]),
            Err(FaceTemplateError::Length { found: 129 })
        );
        assert_eq!(format!("{t:?}"), "FaceTemplate(<128 dims>)");
    }

    #[test]
    fn record_consistency() {
        let id = CitizenIdNumber::parse("11010519491231002X").unwrap();
        let name = PersonName::parse("王芳").unwrap();
        let face = FaceTemplate::from_components([3; FACE_DIMS]);
        let rec = PersonRecord::new(
            id.clone(),
            name.clone(),
            date!(1949 - 12 - 31),
            Sex::Female,
            face.clone(),
        )
        .unwrap();
        assert_eq!(rec.province().iso_3166_2, "CN-BJ");
        assert_eq!(format!("{rec:?}"), "PersonRecord(<redacted>)");
        assert_eq!(
            PersonRecord::new(
                id.clone(),
                name.clone(),
                date!(1949 - 12 - 30),
                Sex::Female,
                face.clone()
            ),
            Err(PersonRecordError::BirthDateMismatch)
        );
        assert_eq!(
            PersonRecord::new(id, name, date!(1949 - 12 - 31), Sex::Male, face),
            Err(PersonRecordError::SexMismatch)
        );
    }
}
