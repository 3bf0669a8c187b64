//! Age in completed years and the age predicates offered to relying parties.

use serde::{Deserialize, Serialize};
use time::Date;

/// Youngest age at which a person may enrol on their own; younger people need a guardian.
pub const MIN_SELF_ENROLMENT_AGE: u32 = 14;

/// Age in completed years on the date `on`, or `None` if `birth` is after `on`.
///
/// A birthday counts from its calendar day. Someone born on 29 February therefore gains a
/// year on 1 March in non-leap years (and on 29 February in leap years), which is the usual
/// legal reading in China.
pub fn age_on(birth: Date, on: Date) -> Option<u32> {
    if birth > on {
        return None;
    }
    let mut years = on.year() - birth.year();
    if (u8::from(on.month()), on.day()) < (u8::from(birth.month()), birth.day()) {
        years -= 1;
    }
    u32::try_from(years).ok()
}

/// The age predicates a credential can disclose instead of the birth date.
/// `over_N` means "age is at least N".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct AgePredicates {
    /// Age >= 14.
    pub over_14: bool,
    /// Age >= 16.
    pub over_16: bool,
    /// Age >= 18.
    pub over_18: bool,
    /// Age >= 60.
    pub over_60: bool,
}

impl AgePredicates {
    /// Predicates for an age in completed years.
    pub fn at(age: u32) -> Self {
        Self {
            over_14: age >= 14,
            over_16: age >= 16,
            over_18: age >= 18,
            over_60: age >= 60,
        }
    }

    /// Predicates for a birth date on a given day; all false if `birth` is after `on`.
    pub fn on(birth: Date, on: Date) -> Self {
        age_on(birth, on).map(Self::at).unwrap_or_default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn completed_years() {
        let birth = date!(2000 - 06 - 15);
        assert_eq!(age_on(birth, date!(2000 - 06 - 15)), Some(0));
        assert_eq!(age_on(birth, date!(2018 - 06 - 14)), Some(17));
        assert_eq!(age_on(birth, date!(2018 - 06 - 15)), Some(18));
        assert_eq!(age_on(birth, date!(2018 - 12 - 31)), Some(18));
        assert_eq!(age_on(birth, date!(2019 - 01 - 01)), Some(18));
        assert_eq!(age_on(birth, date!(2000 - 06 - 14)), None);
    }

    #[test]
    fn leap_day_birthdays() {
        let birth = date!(2004 - 02 - 29);
        assert_eq!(age_on(birth, date!(2005 - 02 - 28)), Some(0));
        assert_eq!(age_on(birth, date!(2005 - 03 - 01)), Some(1));
        assert_eq!(age_on(birth, date!(2022 - 02 - 28)), Some(17));
        assert_eq!(age_on(birth, date!(2022 - 03 - 01)), Some(18));
        assert_eq!(age_on(birth, date!(2024 - 02 - 28)), Some(19));
        assert_eq!(age_on(birth, date!(2024 - 02 - 29)), Some(20));
    }

    #[test]
    fn predicates() {
        assert_eq!(AgePredicates::at(13), AgePredicates::default());
        let p14 = AgePredicates::at(14);
        assert!(p14.over_14 && !p14.over_16 && !p14.over_18 && !p14.over_60);
        let p17 = AgePredicates::at(17);
        assert!(p17.over_16 && !p17.over_18);
        let p18 = AgePredicates::at(18);
        assert!(p18.over_18 && !p18.over_60);
        let p60 = AgePredicates::at(60);
        assert!(p60.over_14 && p60.over_16 && p60.over_18 && p60.over_60);
        assert!(!AgePredicates::at(59).over_60);
        assert!(AgePredicates::on(date!(2000 - 01 - 01), date!(2018 - 01 - 01)).over_18);
        assert!(!AgePredicates::on(date!(2000 - 01 - 02), date!(2018 - 01 - 01)).over_18);
        assert_eq!(
            AgePredicates::on(date!(2030 - 01 - 01), date!(2018 - 01 - 01)),
            AgePredicates::default()
        );
    }
}
