//! MRZ dates (`YYMMDD`) with century inference and unknown parts.

use serde::{Serialize, Serializer};
use time::{Date, Month};

/// A date as read from the MRZ: complete, or with unknown parts (`<<`) as Doc 9303 allows for birth dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MrzDate {
    /// A complete calendar date.
    Full(Date),
    /// Some parts unknown (filled with `<` on the document).
    Partial {
        year: Option<i32>,
        month: Option<u8>,
        day: Option<u8>,
    },
}

impl MrzDate {
    /// The complete date, if every part is known.
    pub fn full(&self) -> Option<Date> {
        match self {
            MrzDate::Full(d) => Some(*d),
            MrzDate::Partial { .. } => None,
        }
    }
}

/// Why six characters are not a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InvalidDate;

fn two(chars: &[u8]) -> Result<Option<u8>, InvalidDate> {
    match chars {
        [b'<', b'<'] => Ok(None),
        [a, b] if a.is_ascii_digit() && b.is_ascii_digit() => Ok(Some((a - b'0') * 10 + (b - b'0'))),
        _ => Err(InvalidDate),
    }
}

/// Chooses the century for `yy` so that the year falls in `[low, low + 100)`.
fn century(yy: u8, low: i32) -> i32 {
    let base = low - low.rem_euclid(100);
    let y = base + i32::from(yy);
    if y < low { y + 100 } else { y }
}

/// Parses a birth date: the century puts it in the past (or today); `<<` parts are unknown.
pub(crate) fn birth(chars: &[u8], today: Date) -> Result<MrzDate, InvalidDate> {
    let (yy, mm, dd) = (two(&chars[0..2])?, two(&chars[2..4])?, two(&chars[4..6])?);
    let this_year = today.year();
    let year = yy.map(|yy| century(yy, this_year - 99));
    match (year, mm, dd) {
        (Some(y), Some(m), Some(d)) => {
            let date = calendar(y, m, d)?;
            if date > today {
                // The same day a century earlier; it is in the past by construction.
                return calendar(y - 100, m, d).map(MrzDate::Full);
            }
            Ok(MrzDate::Full(date))
        }
        (year, month, day) => {
            if let Some(m) = month
                && !(1..=12).contains(&m)
            {
                return Err(InvalidDate);
            }
            if let Some(d) = day
                && !(1..=31).contains(&d)
            {
                return Err(InvalidDate);
            }
            Ok(MrzDate::Partial { year, month, day })
        }
    }
}

/// Parses an expiry date: the year falls within `[today - (100 - window), today + window)`.
pub(crate) fn expiry(chars: &[u8], today: Date, window_years: i32) -> Result<Date, InvalidDate> {
    let (Some(yy), Some(mm), Some(dd)) = (two(&chars[0..2])?, two(&chars[2..4])?, two(&chars[4..6])?) else {
        return Err(InvalidDate);
    };
    calendar(century(yy, today.year() + window_years - 100), mm, dd)
}

fn calendar(year: i32, month: u8, day: u8) -> Result<Date, InvalidDate> {
    let month = Month::try_from(month).map_err(|_| InvalidDate)?;
    Date::from_calendar_date(year, month, day).map_err(|_| InvalidDate)
}

/// True when someone born on `birth` is younger than `years` on `today`.
pub(crate) fn younger_than(birth: &MrzDate, years: i32, today: Date) -> bool {
    match birth {
        MrzDate::Full(b) => {
            let age = today.year()
                - b.year()
                - i32::from((today.month() as u8, today.day()) < (b.month() as u8, b.day()));
            age < years
        }
        // With only the year known, say "minor" only when no day of that year makes the holder an adult.
        MrzDate::Partial { year: Some(y), .. } => today.year() - y < years,
        MrzDate::Partial { year: None, .. } => false,
    }
}

pub(crate) fn serialize_date<S: Serializer>(d: &Option<Date>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&format!("{:04}-{:02}-{:02}", d.year(), d.month() as u8, d.day())),
        None => s.serialize_none(),
    }
}

impl Serialize for MrzDate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_date(&self.full(), s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    const TODAY: Date = date!(2026 - 11 - 21);

    #[test]
    fn birth_century_is_in_the_past() {
        assert_eq!(birth(b"740812", TODAY), Ok(MrzDate::Full(date!(1974 - 08 - 12))));
        assert_eq!(birth(b"261121", TODAY), Ok(MrzDate::Full(date!(2026 - 11 - 21))));
        assert_eq!(birth(b"261122", TODAY), Ok(MrzDate::Full(date!(1926 - 11 - 22))));
        assert_eq!(birth(b"050101", TODAY), Ok(MrzDate::Full(date!(2005 - 01 - 01))));
    }

    #[test]
    fn birth_unknown_parts() {
        assert_eq!(
            birth(b"74<<<<", TODAY),
            Ok(MrzDate::Partial {
                year: Some(1974),
                month: None,
                day: None
            })
        );
        assert_eq!(
            birth(b"7408<<", TODAY),
            Ok(MrzDate::Partial {
                year: Some(1974),
                month: Some(8),
                day: None
            })
        );
        assert_eq!(
            birth(b"<<<<<<", TODAY),
            Ok(MrzDate::Partial {
                year: None,
                month: None,
                day: None
            })
        );
        assert_eq!(birth(b"7413<<", TODAY), Err(InvalidDate));
    }

    #[test]
    fn impossible_dates_are_rejected() {
        assert_eq!(birth(b"740230", TODAY), Err(InvalidDate));
        assert_eq!(birth(b"741301", TODAY), Err(InvalidDate));
        assert_eq!(expiry(b"250229", TODAY, 50), Err(InvalidDate));
        assert_eq!(expiry(b"2402<9", TODAY, 50), Err(InvalidDate));
    }

    #[test]
    fn expiry_forward_window() {
        assert_eq!(expiry(b"120415", TODAY, 50), Ok(date!(2012 - 04 - 15)));
        assert_eq!(expiry(b"751231", TODAY, 50), Ok(date!(2075 - 12 - 31)));
        assert_eq!(expiry(b"770101", TODAY, 50), Ok(date!(1977 - 01 - 01)));
        assert_eq!(expiry(b"961210", TODAY, 50), Ok(date!(1996 - 12 - 10)));
    }

    #[test]
    fn ages() {
        let b = MrzDate::Full(date!(2008 - 11 - 22));
        assert!(younger_than(&b, 18, TODAY));
        let b = MrzDate::Full(date!(2008 - 11 - 21));
        assert!(!younger_than(&b, 18, TODAY));
    }
}
