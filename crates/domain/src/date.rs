//! Calendar dates as text: ISO 8601 `YYYY-MM-DD`, the form used in storage and claims.

use time::Date;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

const ISO_DATE: &[BorrowedFormatItem<'static>] = format_description!("[year]-[month]-[day]");

/// `YYYY-MM-DD`.
pub fn format_iso_date(date: Date) -> String {
    // Formatting a Date with a fixed description only fails for years beyond ±9999.
    date.format(ISO_DATE).unwrap_or_else(|_| date.to_string())
}

/// Parses `YYYY-MM-DD` (a real calendar date).
pub fn parse_iso_date(text: &str) -> Option<Date> {
    Date::parse(text, ISO_DATE).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn round_trip_and_rejects() {
        assert_eq!(format_iso_date(date!(2000 - 02 - 29)), "2000-02-29");
        assert_eq!(parse_iso_date("2000-02-29"), Some(date!(2000 - 02 - 29)));
        for bad in ["2001-02-29", "2000-13-01", "2000-1-1", "20000101", ""] {
            assert_eq!(parse_iso_date(bad), None, "{bad}");
        }
    }
}
