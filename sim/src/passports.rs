//! Passports for the demo's simulated applicants: TD3 machine readable zones built by the ICAO 9303 Part 4 layout
//! with real check digits, so the reader driver and the MRZ checks see what a real passport gives.

use tamga_mrz::compute_check_digit as compute;

/// What kind of passport the applicant lays on the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassportKind {
    /// Valid for five more years.
    Good,
    /// Expired last year.
    Expired,
    /// The document number's check digit is wrong (a misprint or a forgery): the MRZ is not valid.
    BadCheckDigit,
}

const PEOPLE: &[(&str, &str, &str, char)] = &[
    ("UZB", "KARIMOV", "BOBUR", 'M'),
    ("TJK", "RAHIMOVA", "MADINA", 'F'),
    ("KGZ", "ASANOV", "TIMUR", 'M'),
    ("UZB", "YUSUPOVA", "DILNOZA", 'F'),
    ("TJK", "SAIDOV", "FARRUKH", 'M'),
];

fn digit(field: &str) -> char {
    char::from(compute(field.bytes()).unwrap_or(b'0'))
}

fn pad(s: &str, n: usize) -> String {
    format!("{s:<<n$}")
}

/// The two 44-character lines of applicant `n`'s passport, relative to `today` (year, month, day).
pub fn td3(kind: PassportKind, n: u64, today: (i32, u8, u8)) -> [String; 2] {
    let (state, surname, given, sex) = PEOPLE[(n % PEOPLE.len() as u64) as usize];
    let (y, m, d) = today;
    let expiry_year = match kind {
        PassportKind::Expired => y - 1,
        _ => y + 5,
    };
    let yymmdd = |y: i32| format!("{:02}{:02}{:02}", y.rem_euclid(100), m, d.min(28));
    let birth = format!("{:02}{:02}{:02}", (85 + n % 14) % 100, 1 + n % 12, 1 + n % 28);
    let number = format!(
        "{}{:07}",
        if state == "KGZ" { "AC" } else { "FA" },
        1_234_567 + n * 7919
    );
    let number = &number[..9];
    let expiry = yymmdd(expiry_year);
    let optional = pad("", 14);
    let mut number_check = digit(number);
    if kind == PassportKind::BadCheckDigit {
        number_check = char::from(b'0' + ((number_check as u8 - b'0' + 1) % 10));
    }
    let first = format!("P<{state}{}", pad(&format!("{surname}<<{given}"), 39));
    let head = format!(
        "{number}{number_check}{state}{birth}{}{sex}{expiry}{}",
        digit(&birth),
        digit(&expiry)
    );
    let optional_check = digit(&optional);
    let composite_over = format!(
        "{}{}{}{}",
        &head[0..10],
        &head[13..20],
        &head[21..28],
        format_args!("{optional}{optional_check}")
    );
    let second = format!("{head}{optional}{optional_check}{}", digit(&composite_over));
    [first, second]
}

#[cfg(test)]
mod tests {
    use super::*;
    use tamga_mrz::{ParseOptions, Warning, parse_lines};

    fn today() -> time::Date {
        time::Date::from_calendar_date(2026, time::Month::November, 22).unwrap()
    }

    #[test]
    fn the_passports_are_what_they_claim_to_be() {
        let opts = ParseOptions::new(today());
        for n in 0..10 {
            let good = td3(PassportKind::Good, n, (2026, 11, 22));
            assert_eq!((good[0].len(), good[1].len()), (44, 44));
            let mrz = parse_lines(&good, &opts).unwrap();
            assert!(mrz.valid && mrz.checks.all_pass(), "{good:?}: {mrz:?}");
            assert!(!mrz.warnings.contains(&Warning::Expired), "{good:?}");
            let old = parse_lines(&td3(PassportKind::Expired, n, (2026, 11, 22)), &opts).unwrap();
            assert!(old.valid && old.warnings.contains(&Warning::Expired));
            let bad = parse_lines(&td3(PassportKind::BadCheckDigit, n, (2026, 11, 22)), &opts).unwrap();
            assert!(!bad.valid && !bad.checks.all_pass(), "{bad:?}");
        }
    }
}
