//! ICAO Doc 9303 machine readable zones: parsing, check digits, OCR repair and the warnings a window needs.
//!
//! Pure and allocation-light: no I/O, no clock (the caller passes "today" in [`ParseOptions`]).
//!
//! ```
//! use tamga_mrz::{parse, ParseOptions};
//! let today = time::macros::date!(2026 - 11 - 21);
//! let mrz = parse(
//!     "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36UTO7408122F1204159ZE184226B<<<<<10",
//!     &ParseOptions::new(today),
//! ).unwrap();
//! assert!(mrz.valid);
//! assert_eq!(mrz.given_names, "ANNA MARIA");
//! ```
//!
//! Formats: TD1 (3x30), TD2 (2x36), TD3 (2x44), MRV-A (2x44) and MRV-B (2x36), classified by line count and
//! length, and by the document code `V` for visas. What "valid" means: every check digit the format has verifies,
//! dates are calendar dates, and no character is outside the MRZ alphabet after repair. Warnings (expired, minor,
//! unknown state code, ...) do not make a record invalid.
//!
//! Repair: a letter read in a date or check digit is mapped to the digit it resembles when the field's check digit
//! confirms it. In the document number and the personal number, where letters and digits are both legal, one
//! check digit is not enough (it agrees with a random substitution one time in ten, so a misread check digit
//! would "confirm" an invented number): a substitution is applied only when the field's check digit and the
//! composite check digit both confirm it and no other substitution satisfies both (details in the JSON contract,
//! README). Otherwise the record stays invalid and the substitutions are listed in [`Mrz::suggestions`], not
//! applied. Visas (MRV-A, MRV-B) have no composite check digit, so their document number is never repaired.

mod check_digit;
mod codes;
mod date;
mod layout;
mod normalize;
mod repair;

pub use check_digit::{char_value, compute as compute_check_digit, verify as verify_check_digit};
pub use codes::is_known_state;
pub use date::MrzDate;
pub use layout::{FieldName, Format};

use layout::{Layout, Pos};
use repair::{Grid, Reading};
use serde::Serialize;
use time::Date;

/// Options that are not in the MRZ itself.
#[derive(Debug, Clone, Copy)]
pub struct ParseOptions {
    /// The date used for century inference and for the "expired" and "minor" warnings.
    pub today: Date,
    /// Expiry years are placed in `[today - (100 - window), today + window)`. Default 50.
    pub expiry_window_years: i32,
    /// Age of majority for the "minor" warning. Default 18.
    pub adult_age: i32,
}

impl ParseOptions {
    /// Defaults with the given date as "today".
    pub fn new(today: Date) -> Self {
        ParseOptions {
            today,
            expiry_window_years: 50,
            adult_age: 18,
        }
    }
}

/// Why text is not an MRZ. Each message names the problem and what a correct MRZ looks like.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MrzError {
    /// Nothing but noise.
    #[error("no MRZ text found: give the 2 or 3 lines printed at the bottom of the document")]
    Empty,
    /// Wrong number of lines.
    #[error(
        "found {found} line(s); an MRZ has 2 lines (TD2, TD3, MRV) or 3 lines (TD1): give every line, one per line"
    )]
    LineCount { found: usize },
    /// A line of a length no format has, or different from the others.
    #[error("line {line} has {found} characters; expected {expected}")]
    LineLength {
        line: usize,
        found: usize,
        expected: &'static str,
    },
}

/// Why a character was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CorrectionReason {
    /// A lowercase letter made uppercase.
    Lowercase,
    /// A letter read in a digit position, replaced by the digit it resembles; confirmed by the field's check digit
    /// (in a document or personal number, by both its check digit and the composite).
    OcrDigit,
    /// A digit read in a letter position, replaced by the letter it resembles; confirmed by the list of state codes
    /// or, in a document or personal number, by both its check digit and the composite.
    OcrLetter,
    /// A digit in a name replaced by the letter it resembles. Names have no check digit: the operator must compare
    /// the name with the visual zone (warning `name_repaired`).
    OcrLetterUnconfirmed,
}

/// One character changed by the parser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Correction {
    /// 1-based line.
    pub line: usize,
    /// 1-based position in the line.
    pub position: usize,
    /// The field the position belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<FieldName>,
    pub from: char,
    pub to: char,
    pub reason: CorrectionReason,
}

/// A check digit, named as in [`Checks`] and the JSON `checks` object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    DocumentNumber,
    BirthDate,
    ExpiryDate,
    OptionalData,
    Composite,
}

/// A repair the parser found but did not apply, because it is not confirmed by two checks: the field's own check
/// digit and the composite, with no other candidate satisfying both. The field stays as read, its check fails and
/// the record is invalid; the operator compares the candidates with the visual zone of the document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suggestion {
    /// `document_number` or `optional_data` (the personal number of a passport).
    pub field: FieldName,
    /// The field's value with the substitution, as the record would report it.
    pub value: String,
    /// 1-based line of the substituted character.
    pub line: usize,
    /// 1-based position of the substituted character in the line.
    pub position: usize,
    /// The character as read.
    pub from: char,
    /// The character it would become.
    pub to: char,
    /// The checks the substitution satisfies: always the field's own, plus `composite` when the composite check
    /// digit verifies with it.
    pub satisfies: Vec<Check>,
}

/// Things an operator should know that do not make the MRZ unreadable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Warning {
    /// The expiry date is before today.
    Expired,
    /// The holder is younger than the age of majority.
    Minor,
    /// The issuing state is not an ISO 3166-1 or ICAO code.
    UnknownIssuingState,
    /// The nationality is not an ISO 3166-1 or ICAO code.
    UnknownNationality,
    /// The birth date has unknown parts (`<<`); `birth_date` is null.
    BirthDateUnknownParts,
    /// The birth date is not a calendar date.
    InvalidBirthDate,
    /// The expiry date is not a calendar date.
    InvalidExpiryDate,
    /// The sex is not F, M, X or `<`.
    InvalidSex,
    /// Characters outside A-Z, 0-9 and `<` remain after repair.
    InvalidCharacters,
    /// The document code does not fit the format (a passport not starting with P, an ID card with V, ...).
    UnexpectedDocumentCode,
    /// The name fills its whole field: the issuer may have truncated it.
    NameTruncated,
    /// Digits in the name were repaired into letters without a check digit to confirm it.
    NameRepaired,
}

/// Results of each check digit the format has; a check the format lacks is `None` (absent in JSON).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Checks {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document_number: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiry_date: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub optional_data: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub composite: Option<bool>,
}

impl Checks {
    /// True when every present check passed.
    pub fn all_pass(&self) -> bool {
        [
            self.document_number,
            self.birth_date,
            self.expiry_date,
            self.optional_data,
            self.composite,
        ]
        .iter()
        .all(|c| c.unwrap_or(true))
    }
}

/// Sex as printed in the MRZ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Sex {
    #[serde(rename = "F")]
    Female,
    #[serde(rename = "M")]
    Male,
    /// `X`, used by some issuers for unspecified.
    #[serde(rename = "X")]
    Unspecified,
}

/// A parsed MRZ. Its JSON form is the `tamga mrz parse` contract (see README): the field order is part of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mrz {
    pub format: Format,
    /// Document code without fillers (`P`, `I`, `ID`, `V`, ...).
    pub document_code: String,
    /// Issuing state or organisation, without fillers (`D` for Germany).
    pub issuing_state: String,
    /// Primary identifier; `<` inside it become spaces.
    pub surname: String,
    /// Secondary identifiers separated by spaces.
    pub given_names: String,
    /// Full document number without fillers (longer than 9 characters where the document says so).
    pub document_number: String,
    pub nationality: String,
    /// `null` in JSON when unknown or partly unknown; see [`Mrz::birth_date_parts`].
    pub birth_date: MrzDate,
    /// `null` in JSON for `<` (unspecified).
    pub sex: Option<Sex>,
    #[serde(serialize_with = "date::serialize_date")]
    pub expiry_date: Option<Date>,
    /// Optional data (TD1: line 1), without trailing fillers.
    pub optional_data: String,
    /// TD1 only: optional data of line 2.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub optional_data_2: Option<String>,
    pub checks: Checks,
    pub valid: bool,
    pub corrections: Vec<Correction>,
    /// Repairs found but not applied (see [`Suggestion`]); absent in JSON when empty. Only an invalid record has any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub suggestions: Vec<Suggestion>,
    pub warnings: Vec<Warning>,
    /// The MRZ lines after noise removal and repair.
    #[serde(skip)]
    pub lines: Vec<String>,
}

impl Mrz {
    /// Year, month and day of birth, each `None` where the document leaves it unknown.
    pub fn birth_date_parts(&self) -> (Option<i32>, Option<u8>, Option<u8>) {
        match self.birth_date {
            MrzDate::Full(d) => (Some(d.year()), Some(d.month() as u8), Some(d.day())),
            MrzDate::Partial { year, month, day } => (year, month, day),
        }
    }
}

fn classify(lines: &[Vec<u8>]) -> Result<Format, MrzError> {
    const EXPECTED: &str = "30 (TD1), 36 (TD2, MRV-B) or 44 (TD3, MRV-A)";
    match lines.len() {
        0 => return Err(MrzError::Empty),
        2 | 3 => {}
        found => return Err(MrzError::LineCount { found }),
    }
    let first = lines[0].len();
    let expected_for_count = if lines.len() == 3 {
        [30].as_slice()
    } else {
        [36, 44].as_slice()
    };
    if !expected_for_count.contains(&first) {
        let expected = match lines.len() {
            3 => "30 (TD1 has 3 lines of 30)",
            _ if first == 30 => "36 or 44 (a 30-character MRZ is TD1 and has 3 lines)",
            _ => EXPECTED,
        };
        return Err(MrzError::LineLength {
            line: 1,
            found: first,
            expected,
        });
    }
    for (i, l) in lines.iter().enumerate().skip(1) {
        if l.len() != first {
            let expected = match first {
                30 => "30, as line 1 (TD1)",
                36 => "36, as line 1 (TD2, MRV-B)",
                _ => "44, as line 1 (TD3, MRV-A)",
            };
            return Err(MrzError::LineLength {
                line: i + 1,
                found: l.len(),
                expected,
            });
        }
    }
    let visa = lines[0][0] == b'V';
    Ok(match (first, visa) {
        (30, _) => Format::Td1,
        (36, true) => Format::MrvB,
        (36, false) => Format::Td2,
        (_, true) => Format::MrvA,
        (_, false) => Format::Td3,
    })
}

fn text(chars: &[u8]) -> String {
    let trimmed = match chars.iter().rposition(|&c| c != b'<') {
        Some(last) => &chars[..=last],
        None => &[][..],
    };
    String::from_utf8_lossy(trimmed).into_owned()
}

fn split_name(chars: &[u8]) -> (String, String) {
    let name = text(chars);
    let (primary, secondary) = match name.find("<<") {
        Some(i) => (&name[..i], name[i + 2..].trim_start_matches('<')),
        None => (name.as_str(), ""),
    };
    let clean = |s: &str| {
        s.split('<')
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    };
    (clean(primary), clean(secondary))
}

fn in_alphabet(c: u8) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'<'
}

/// Parses one MRZ from reader or user text: two or three lines, with the noise described in the crate docs.
pub fn parse(input: &str, opts: &ParseOptions) -> Result<Mrz, MrzError> {
    let normalized = normalize::normalize(input);
    let format = classify(&normalized.lines)?;
    let layout = Layout::new(format, &normalized.lines);
    let mut corrections = normalized.corrections;
    for c in &mut corrections {
        c.field = layout.field_at((c.line - 1, c.position - 1));
    }
    let mut g = Grid {
        lines: normalized.lines,
        layout: &layout,
        corrections,
    };
    let mut warnings = Vec::new();

    // Alphabetic fields: digits become letters only where the code list confirms it.
    let known = |chars: &[u8]| is_known_state(&text(chars));
    g.letters_if(&layout.state, known, CorrectionReason::OcrLetter);
    g.letters_if(&layout.nationality, known, CorrectionReason::OcrLetter);
    let code_ok = |chars: &[u8]| document_code_fits(format, chars);
    g.letters_if(&layout.code, code_ok, CorrectionReason::OcrLetter);
    if g.letters_if(&layout.name, |_| true, CorrectionReason::OcrLetterUnconfirmed) {
        warn(&mut warnings, Warning::NameRepaired);
    }

    // Checked fields. Dates first: their repairs need only their own check digit. Then the fields of letters and
    // digits, whose repairs also need the composite (over the repaired dates); then the composite itself.
    let birth_ok = g.checked_numeric(&layout.birth, layout.birth_check);
    let expiry_ok = g.checked_numeric(&layout.expiry, layout.expiry_check);
    let number = g.alphanumeric(&layout.number, layout.number_check);
    let optional = layout.optional_check.map(|check| {
        let all_filler = g.read(&layout.optional).iter().all(|&c| c == b'<');
        // Doc 9303 Part 4: with no personal number the check digit may be `<` or `0`.
        if all_filler && matches!(g.at(check), b'<' | b'0') {
            Reading::Verifies
        } else {
            g.alphanumeric(&layout.optional, check)
        }
    });
    let dates_ok = birth_ok && expiry_ok;
    let number_verifies = number == Reading::Verifies;
    let optional_verifies = optional.as_ref().is_none_or(|r| *r == Reading::Verifies);
    let mut suggestions = Vec::new();
    let number_field = Alphanumeric {
        check: Check::DocumentNumber,
        name: FieldName::DocumentNumber,
        positions: &layout.number,
        check_position: layout.number_check,
    };
    let mut checks = Checks {
        document_number: Some(confirm(
            &mut g,
            &number_field,
            number,
            dates_ok && optional_verifies,
            &mut suggestions,
        )),
        birth_date: Some(birth_ok),
        expiry_date: Some(expiry_ok),
        ..Checks::default()
    };
    if let (Some(reading), Some(check)) = (optional, layout.optional_check) {
        let field = Alphanumeric {
            check: Check::OptionalData,
            name: FieldName::OptionalData,
            positions: &layout.optional,
            check_position: check,
        };
        let others_ok = dates_ok && number_verifies;
        checks.optional_data = Some(confirm(&mut g, &field, reading, others_ok, &mut suggestions));
    }
    if let Some((over, check)) = &layout.composite {
        checks.composite = Some(composite(&mut g, over, *check));
    }

    let today = opts.today;
    let birth = match date::birth(&g.read(&layout.birth), today) {
        Ok(d) => d,
        Err(_) => {
            warn(&mut warnings, Warning::InvalidBirthDate);
            MrzDate::Partial {
                year: None,
                month: None,
                day: None,
            }
        }
    };
    if matches!(birth, MrzDate::Partial { .. }) && !warnings.contains(&Warning::InvalidBirthDate) {
        warn(&mut warnings, Warning::BirthDateUnknownParts);
    }
    let expiry = date::expiry(&g.read(&layout.expiry), today, opts.expiry_window_years).ok();
    match expiry {
        None => warn(&mut warnings, Warning::InvalidExpiryDate),
        Some(e) if e < today => warn(&mut warnings, Warning::Expired),
        Some(_) => {}
    }
    if date::younger_than(&birth, opts.adult_age, today) {
        warn(&mut warnings, Warning::Minor);
    }

    let sex = match g.at(layout.sex) {
        b'F' => Some(Sex::Female),
        b'M' => Some(Sex::Male),
        b'X' => Some(Sex::Unspecified),
        b'<' => None,
        _ => {
            warn(&mut warnings, Warning::InvalidSex);
            None
        }
    };
    let issuing_state = text(&g.read(&layout.state));
    if !is_known_state(&issuing_state) {
        warn(&mut warnings, Warning::UnknownIssuingState);
    }
    let nationality = text(&g.read(&layout.nationality));
    if !is_known_state(&nationality) {
        warn(&mut warnings, Warning::UnknownNationality);
    }
    let code = g.read(&layout.code);
    if !document_code_fits(format, &code) {
        warn(&mut warnings, Warning::UnexpectedDocumentCode);
    }
    let name = g.read(&layout.name);
    if name.last().is_some_and(|&c| c != b'<') {
        warn(&mut warnings, Warning::NameTruncated);
    }
    let invalid = g.lines.iter().flatten().any(|&c| !in_alphabet(c));
    if invalid {
        warn(&mut warnings, Warning::InvalidCharacters);
    }

    let (surname, given_names) = split_name(&name);
    let valid = checks.all_pass()
        && !invalid
        && expiry.is_some()
        && !warnings
            .iter()
            .any(|w| matches!(w, Warning::InvalidBirthDate | Warning::InvalidSex));
    Ok(Mrz {
        format,
        document_code: text(&code),
        issuing_state,
        surname,
        given_names,
        document_number: text(&g.read(&layout.number)).replace('<', ""),
        nationality,
        birth_date: birth,
        sex,
        expiry_date: expiry,
        optional_data: text(&g.read(&layout.optional)),
        optional_data_2: layout.optional_2.as_ref().map(|p| text(&g.read(p))),
        checks,
        valid,
        corrections: g.corrections,
        suggestions,
        warnings,
        lines: g
            .lines
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect(),
    })
}

fn warn(warnings: &mut Vec<Warning>, w: Warning) {
    if !warnings.contains(&w) {
        warnings.push(w);
    }
}

/// A field of letters and digits with its own check digit: the document number, or the personal number of TD3.
struct Alphanumeric<'a> {
    check: Check,
    name: FieldName,
    positions: &'a [Pos],
    check_position: Pos,
}

/// Settles a field of letters and digits against two checks; returns whether its check passes.
///
/// A field that fails its own check digit was misread in a character or in the check digit itself, and one mod-10
/// check digit agrees with a random substitution one time in ten. A candidate substitution (one that satisfies the
/// field's check digit, from [`Grid::alphanumeric`]) is applied only when all of these hold:
/// - the composite check digit (Doc 9303 Parts 4-6; visas have none) verifies with it, and with no other candidate;
/// - every other checked field under the composite verifies, so that the composite speaks about this field only;
/// - the composite rejects the other explanation, the field as read with a misread check digit. Where the composite
///   weighs the field as its own check digit does (TD3, TD2, a 9-character TD1 number) the composite sees only the
///   field's check value, so this is what it confirms; in a long TD1 number the weights differ and a candidate could
///   satisfy both checks with a misread check digit.
///
/// Otherwise nothing is applied, the check fails and every candidate is listed as a [`Suggestion`].
fn confirm(
    g: &mut Grid<'_>,
    field: &Alphanumeric<'_>,
    reading: Reading,
    others_ok: bool,
    suggestions: &mut Vec<Suggestion>,
) -> bool {
    let Reading::Fails {
        check_digit,
        candidates,
    } = reading
    else {
        return true;
    };
    let check = field.check_position;
    let composite_with = |g: &Grid<'_>, changes: &[(Pos, u8)]| match &g.layout.composite {
        Some((over, composite_check)) => g.verifies_with(over, *composite_check, changes),
        None => false,
    };
    let both: Vec<bool> = candidates
        .iter()
        .map(|&(p, to)| composite_with(g, &[(p, to), (check, check_digit)]))
        .collect();
    let misread_check_digit_fits = match check_digit::compute(g.read(field.positions)) {
        Some(computed) => composite_with(g, &[(check, computed)]),
        // A character outside the alphabet: no check digit explains the field as read.
        None => false,
    };
    let confirmed: Vec<(Pos, u8)> = candidates
        .iter()
        .zip(&both)
        .filter(|(_, ok)| **ok)
        .map(|(c, _)| *c)
        .collect();
    if let [(p, to)] = confirmed[..]
        && others_ok
        && !misread_check_digit_fits
    {
        let reason = if to.is_ascii_digit() {
            CorrectionReason::OcrDigit
        } else {
            CorrectionReason::OcrLetter
        };
        g.set(p, to, reason);
        g.set(check, check_digit, CorrectionReason::OcrDigit);
        return true;
    }
    let chars = g.read(field.positions);
    for (&(p, to), &composite_ok) in candidates.iter().zip(&both) {
        let mut trial = chars.clone();
        if let Some(i) = field.positions.iter().position(|&q| q == p) {
            trial[i] = to;
        }
        let value = match field.name {
            FieldName::DocumentNumber => text(&trial).replace('<', ""),
            _ => text(&trial),
        };
        let mut satisfies = vec![field.check];
        if composite_ok {
            satisfies.push(Check::Composite);
        }
        suggestions.push(Suggestion {
            field: field.name,
            value,
            line: p.0 + 1,
            position: p.1 + 1,
            from: char::from(g.at(p)),
            to: char::from(to),
            satisfies,
        });
    }
    false
}

/// Verifies the composite check digit, whose positions were already repaired field by field.
fn composite(g: &mut Grid<'_>, over: &[Pos], check: Pos) -> bool {
    let fixed = repair::as_check_digit(g.at(check));
    if !check_digit::verify(g.read(over), fixed) {
        return false;
    }
    g.set(check, fixed, CorrectionReason::OcrDigit);
    true
}

/// Whether a document code fits the format (Doc 9303: P for passports, V for visas, A/C/I for TD1 and TD2).
fn document_code_fits(format: Format, code: &[u8]) -> bool {
    let (first, second) = (code.first().copied(), code.get(1).copied());
    let second_ok = second.is_some_and(|c| c == b'<' || c.is_ascii_uppercase());
    second_ok
        && match format {
            Format::Td3 => first == Some(b'P'),
            Format::MrvA | Format::MrvB => first == Some(b'V'),
            Format::Td1 | Format::Td2 => matches!(first, Some(b'A' | b'C' | b'I')) && second != Some(b'V'),
        }
}

/// Parses MRZ lines given one per element.
pub fn parse_lines<S: AsRef<str>>(lines: &[S], opts: &ParseOptions) -> Result<Mrz, MrzError> {
    let joined: Vec<&str> = lines.iter().map(AsRef::as_ref).collect();
    parse(&joined.join("\n"), opts)
}
