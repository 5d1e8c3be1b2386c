//! Property tests: check digits round-trip, and a single changed character in a checked field is never accepted
//! silently (it fails a check, or it is repaired back and reported).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failed test
use proptest::prelude::*;
use tamga_mrz::{ParseOptions, char_value, compute_check_digit, parse_lines, verify_check_digit};
use time::macros::date;

fn opts() -> ParseOptions {
    ParseOptions::new(date!(2026 - 11 - 21))
}

fn cd(s: &str) -> char {
    char::from(compute_check_digit(s.bytes()).unwrap())
}

/// A valid TD3 built from generated fields.
fn td3(number: &str, birth: &str, expiry: &str, personal: &str) -> [String; 2] {
    let l1 = format!("{:<<44}", "P<UTOERIKSSON<<ANNA<MARIA");
    let number = format!("{number:<<9}");
    let personal = format!("{personal:<<14}");
    let personal_cd = if personal.bytes().all(|c| c == b'<') {
        '<'
    } else {
        cd(&personal)
    };
    let body = format!(
        "{number}{}UTO{birth}{}F{expiry}{}{personal}{personal_cd}",
        cd(&number),
        cd(birth),
        cd(expiry)
    );
    let over = format!("{}{}{}", &body[0..10], &body[13..20], &body[21..43]);
    [l1, format!("{body}{}", cd(&over))]
}

fn date6() -> impl Strategy<Value = String> {
    (0u8..100, 1u8..13, 1u8..29).prop_map(|(y, m, d)| format!("{y:02}{m:02}{d:02}"))
}

proptest! {
    #[test]
    fn check_digit_round_trip(s in "[A-Z0-9<]{1,30}") {
        let c = compute_check_digit(s.bytes()).unwrap();
        prop_assert!(verify_check_digit(s.bytes(), c));
        for other in (b'0'..=b'9').filter(|&d| d != c) {
            prop_assert!(!verify_check_digit(s.bytes(), other));
        }
    }

    #[test]
    fn generated_documents_parse_valid(number in "[A-Z0-9]{9}", birth in date6(), expiry in date6(),
                                        personal in "[A-Z0-9]{0,14}") {
        let lines = td3(&number, &birth, &expiry, &personal);
        let m = parse_lines(&lines, &opts()).unwrap();
        prop_assert!(m.valid, "{:?}", m);
        prop_assert_eq!(&m.document_number, &number);
        prop_assert!(m.corrections.is_empty());
    }

    #[test]
    fn single_change_in_a_checked_field_is_caught(number in "[A-Z0-9]{9}", birth in date6(), expiry in date6(),
                                                  personal in "[A-Z0-9]{1,14}", pos in 0usize..43,
                                                  replacement in "[A-Z0-9<]") {
        let lines = td3(&number, &birth, &expiry, &personal);
        let original = parse_lines(&lines, &opts()).unwrap();
        // Checked positions of line 2: number and its check, birth, expiry, personal number, their checks.
        prop_assume!(!(10..13).contains(&pos) && pos != 20);
        let old = lines[1].as_bytes()[pos];
        let new = replacement.as_bytes()[0];
        prop_assume!(old != new);
        // The ICAO scheme cannot see a swap between characters of equal value modulo 10 (0, A, K, U, <) in
        // an alphanumeric field; that limit of the standard is tested separately below.
        let alphanumeric = pos < 9 || (28..42).contains(&pos);
        prop_assume!(!alphanumeric || char_value(old).unwrap() % 10 != char_value(new).unwrap() % 10);
        let mut l2 = lines[1].clone().into_bytes();
        l2[pos] = new;
        let l2 = String::from_utf8(l2).unwrap();
        let m = parse_lines(&[lines[0].as_str(), l2.as_str()], &opts()).unwrap();
        let repaired_back = !m.corrections.is_empty() && m.lines == original.lines;
        let reported = !m.corrections.is_empty();
        prop_assert!(!m.valid || repaired_back || reported,
            "change at {} {:?}->{:?} accepted silently: {:?}", pos + 1, old as char, new as char, m);
    }
}

#[test]
fn equal_weight_swaps_are_a_limit_of_the_standard() {
    // 0 and A both weigh 0 modulo 10: the check digit cannot tell L898902C3 from L8989A2C3.
    assert_eq!(cd("L898902C3"), cd("L8989A2C3"));
}

/// A valid TD1 built from generated fields (with a long document number when `number` exceeds 9 characters).
fn td1(number: &str, birth: &str, expiry: &str, optional2: &str) -> [String; 3] {
    let num_field = if number.len() <= 9 {
        format!("{number:<<9}{}", cd(&format!("{number:<<9}")))
    } else {
        format!("{}<{}{}<", &number[..9], &number[9..], cd(number))
    };
    let l1 = format!("{:<<30}", format!("I<UTO{num_field}"));
    let l2_body = format!("{birth}{}F{expiry}{}UTO{optional2:<<11}", cd(birth), cd(expiry));
    let over = format!(
        "{}{}{}{}",
        &l1[5..30],
        &l2_body[0..7],
        &l2_body[8..15],
        &l2_body[18..29]
    );
    let l2 = format!("{l2_body}{}", cd(&over));
    [l1, l2, format!("{:<<30}", "ERIKSSON<<ANNA<MARIA")]
}

proptest! {
    #[test]
    fn td1_round_trip_including_long_numbers(number in "[A-Z0-9]{5,13}", birth in date6(), expiry in date6(),
                                              optional2 in "[A-Z0-9]{0,11}") {
        let lines = td1(&number, &birth, &expiry, &optional2);
        let m = parse_lines(&lines, &opts()).unwrap();
        prop_assert!(m.valid, "{:?}", m);
        prop_assert_eq!(&m.document_number, &number);
        prop_assert_eq!(m.optional_data_2.as_deref(), Some(optional2.as_str()));
    }

    #[test]
    fn td1_single_change_in_a_checked_position_is_caught(number in "[A-Z0-9]{9}", birth in date6(),
                                                          expiry in date6(), line in 0usize..2, pos in 0usize..30,
                                                          replacement in "[A-Z0-9<]") {
        let lines = td1(&number, &birth, &expiry, "");
        let original = parse_lines(&lines, &opts()).unwrap();
        // Checked: line 1 number and check (6-15), line 2 birth+check (1-7), expiry+check (9-15), composite (30).
        let checked = if line == 0 { (5..15).contains(&pos) } else { pos < 7 || (8..15).contains(&pos) || pos == 29 };
        prop_assume!(checked);
        let old = lines[line].as_bytes()[pos];
        let new = replacement.as_bytes()[0];
        prop_assume!(old != new);
        let alphanumeric = line == 0 && pos < 14;
        prop_assume!(!alphanumeric || char_value(old).unwrap() % 10 != char_value(new).unwrap() % 10);
        // `<` in the number's check digit position announces a long number: a different, legal reading.
        prop_assume!(!(line == 0 && pos == 14 && new == b'<'));
        let mut mutated = lines.clone();
        let mut bytes = mutated[line].clone().into_bytes();
        bytes[pos] = new;
        mutated[line] = String::from_utf8(bytes).unwrap();
        let m = parse_lines(&mutated, &opts()).unwrap();
        prop_assert!(!m.valid || !m.corrections.is_empty(),
            "line {} pos {} {:?}->{:?} accepted silently: {:?}", line + 1, pos + 1, old as char, new as char, m);
        if m.corrections.is_empty() {
            prop_assert_ne!(&m.lines, &original.lines);
        }
    }

    /// Any text shaped like an MRZ, with any characters at all, parses or fails with a typed error: no panic.
    #[test]
    fn arbitrary_mrz_shaped_text_never_panics(shape in 0usize..3, chars in proptest::collection::vec(
            proptest::char::range('\u{0}', '\u{7f}'), 90..=90), extra in "\\PC{0,8}") {
        let (n, w) = [(3usize, 30usize), (2, 36), (2, 44)][shape];
        let flat: String = chars.iter().cycle().take(n * w).collect();
        let lines: Vec<String> = flat.as_bytes().chunks(w).map(|c| String::from_utf8_lossy(c).into_owned()).collect();
        let text = format!("{}{extra}", lines.join("\n"));
        let _ = tamga_mrz::parse(&text, &opts());
    }
}

// Issue #12: a misread check digit must never turn into a "repaired" field. For every format, every check digit
// (and the composite) is changed to every other digit; no record may come out valid with any field that differs
// from the original, and no data field may be "repaired" into something else.

/// A valid TD2 built from generated fields.
fn td2(number: &str, birth: &str, expiry: &str, optional: &str) -> [String; 2] {
    let l1 = format!("{:<<36}", "I<UTOERIKSSON<<ANNA<MARIA");
    let number = format!("{number:<<9}");
    let body = format!(
        "{number}{}UTO{birth}{}F{expiry}{}{optional:<<7}",
        cd(&number),
        cd(birth),
        cd(expiry)
    );
    let over = format!("{}{}{}", &body[0..10], &body[13..20], &body[21..35]);
    [l1, format!("{body}{}", cd(&over))]
}

/// A valid MRV-A (`width` 44) or MRV-B (`width` 36) visa built from generated fields; visas have no composite.
fn mrv(width: usize, number: &str, birth: &str, expiry: &str, optional: &str) -> [String; 2] {
    let l1 = format!("{:<<width$}", "V<UTOERIKSSON<<ANNA<MARIA");
    let number = format!("{number:<<9}");
    let body = format!(
        "{number}{}UTO{birth}{}F{expiry}{}{optional}",
        cd(&number),
        cd(birth),
        cd(expiry)
    );
    [l1, format!("{body:<<width$}")]
}

/// The check digit positions (0-based line, column) of a record, composite included.
fn check_positions(lines: &[String]) -> Vec<(usize, usize)> {
    match (lines.len(), lines[0].len()) {
        (3, _) => {
            // TD1: `<` at column 15 announces a long number whose check digit ends it in the optional data.
            let l1 = lines[0].as_bytes();
            let number_check = if l1[14] == b'<' && l1[15] != b'<' {
                (15..30).find(|&c| l1[c] == b'<').unwrap() - 1
            } else {
                14
            };
            vec![(0, number_check), (1, 6), (1, 14), (1, 29)]
        }
        (_, 44) if lines[0].starts_with('P') => vec![(1, 9), (1, 19), (1, 27), (1, 42), (1, 43)],
        (_, 36) if lines[0].starts_with('I') => vec![(1, 9), (1, 19), (1, 27), (1, 35)],
        _ => vec![(1, 9), (1, 19), (1, 27)],
    }
}

/// Every field a record reports, for "does it differ from the original".
fn reported_fields(m: &tamga_mrz::Mrz) -> String {
    format!(
        "{:?}",
        (
            m.format,
            &m.document_code,
            &m.issuing_state,
            &m.surname,
            &m.given_names,
            &m.document_number,
            &m.nationality,
            &m.birth_date,
            m.sex,
            m.expiry_date,
            &m.optional_data,
            &m.optional_data_2,
        )
    )
}

/// Changes each check digit of a valid record to each other digit and checks the issue #12 property.
fn no_changed_check_digit_yields_another_valid_record(lines: &[String]) -> Result<(), TestCaseError> {
    let original = parse_lines(lines, &opts()).unwrap();
    prop_assert!(original.valid, "the specimen itself: {:?}", original);
    let expected = reported_fields(&original);
    for (line, col) in check_positions(lines) {
        let old = lines[line].as_bytes()[col];
        for digit in (b'0'..=b'9').filter(|&d| d != old) {
            let mut mutated = lines.to_vec();
            let mut bytes = mutated[line].clone().into_bytes();
            bytes[col] = digit;
            mutated[line] = String::from_utf8(bytes).unwrap();
            let m = parse_lines(&mutated, &opts()).unwrap();
            prop_assert!(
                !m.valid || reported_fields(&m) == expected,
                "line {} position {} {:?}->{:?}: valid with other fields: {:?}",
                line + 1,
                col + 1,
                old as char,
                digit as char,
                m
            );
            prop_assert_eq!(
                (&m.document_number, &m.optional_data),
                (&original.document_number, &original.optional_data),
                "line {} position {} {:?}->{:?}: a data field was repaired to fit a changed check digit: {:?}",
                line + 1,
                col + 1,
                old as char,
                digit as char,
                m
            );
        }
    }
    Ok(())
}

/// Document and personal numbers rich in the characters OCR confuses (0/O/Q/D/C, 1/I, 2/Z, 5/S, 6/G, 8/B, 4/A),
/// so that the changed check digit usually has single-substitution candidates.
fn confusable(len: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::string::string_regex(&format!("[0-9ABCDGIOQSZ]{{{},{}}}", len.start(), len.end())).unwrap(),
        proptest::string::string_regex(&format!("[A-Z0-9]{{{},{}}}", len.start(), len.end())).unwrap(),
    ]
}

#[test]
fn icao_specimens_no_changed_check_digit_yields_another_valid_record() {
    let specimens: [&[&str]; 6] = [
        &[
            "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
            "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
        ],
        &[
            "I<UTOD231458907<<<<<<<<<<<<<<<",
            "7408122F1204159UTO<<<<<<<<<<<6",
            "ERIKSSON<<ANNA<MARIA<<<<<<<<<<",
        ],
        &[
            "I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<",
            "D231458907UTO7408122F1204159<<<<<<<6",
        ],
        &[
            "V<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
            "L8988901C4XXX4009078F96121096ZE184226B<<<<<<",
        ],
        &[
            "V<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<",
            "L8988901C4XXX4009078F9612109<<<<<<<<",
        ],
        &[
            "IDD<<T220001293<<<<<<<<<<<<<<<",
            "6408125<2010315D<<<<<<<<<<<<<4",
            "MUSTERMANN<<ERIKA<<<<<<<<<<<<<",
        ],
    ];
    for s in specimens {
        let lines: Vec<String> = s.iter().map(|l| (*l).to_owned()).collect();
        no_changed_check_digit_yields_another_valid_record(&lines).unwrap();
    }
    let long = td1("D23145890734", "740812", "120415", "");
    no_changed_check_digit_yields_another_valid_record(&long).unwrap();
}

proptest! {
    #[test]
    fn td3_no_changed_check_digit_yields_another_valid_record(number in confusable(9..=9), birth in date6(),
                                                              expiry in date6(), personal in confusable(0..=14)) {
        no_changed_check_digit_yields_another_valid_record(&td3(&number, &birth, &expiry, &personal))?;
    }

    #[test]
    fn td1_no_changed_check_digit_yields_another_valid_record(number in confusable(5..=14), birth in date6(),
                                                              expiry in date6(), optional2 in confusable(0..=11)) {
        no_changed_check_digit_yields_another_valid_record(&td1(&number, &birth, &expiry, &optional2))?;
    }

    #[test]
    fn td2_no_changed_check_digit_yields_another_valid_record(number in confusable(9..=9), birth in date6(),
                                                              expiry in date6(), optional in confusable(0..=7)) {
        no_changed_check_digit_yields_another_valid_record(&td2(&number, &birth, &expiry, &optional))?;
    }

    #[test]
    fn mrv_a_no_changed_check_digit_yields_another_valid_record(number in confusable(9..=9), birth in date6(),
                                                                expiry in date6(), optional in confusable(0..=16)) {
        no_changed_check_digit_yields_another_valid_record(&mrv(44, &number, &birth, &expiry, &optional))?;
    }

    #[test]
    fn mrv_b_no_changed_check_digit_yields_another_valid_record(number in confusable(9..=9), birth in date6(),
                                                                expiry in date6(), optional in confusable(0..=8)) {
        no_changed_check_digit_yields_another_valid_record(&mrv(36, &number, &birth, &expiry, &optional))?;
    }
}
