//! The ICAO Doc 9303 specimens and the reader noise a window sees, checked field by field.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failed test
use tamga_mrz::{
    Check, CorrectionReason, FieldName, Format, MrzError, ParseOptions, Sex, Warning, parse, parse_lines,
};
use time::macros::date;

fn opts() -> ParseOptions {
    ParseOptions::new(date!(2026 - 11 - 21))
}

const TD3: [&str; 2] = [
    "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
    "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
];
const TD1: [&str; 3] = [
    "I<UTOD231458907<<<<<<<<<<<<<<<",
    "7408122F1204159UTO<<<<<<<<<<<6",
    "ERIKSSON<<ANNA<MARIA<<<<<<<<<<",
];
const TD2: [&str; 2] = [
    "I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<",
    "D231458907UTO7408122F1204159<<<<<<<6",
];
const MRVB: [&str; 2] = [
    "V<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<",
    "L8988901C4XXX4009078F9612109<<<<<<<<",
];
const DE_ID: [&str; 3] = [
    "IDD<<T220001293<<<<<<<<<<<<<<<",
    "6408125<2010315D<<<<<<<<<<<<<4",
    "MUSTERMANN<<ERIKA<<<<<<<<<<<<<",
];

#[test]
fn td3_specimen_matches_the_cli_contract_exactly() {
    let m = parse_lines(&TD3, &opts()).unwrap();
    let json = serde_json::to_string(&m).unwrap();
    assert_eq!(
        json,
        r#"{"format":"TD3","document_code":"P","issuing_state":"UTO","surname":"ERIKSSON","given_names":"ANNA MARIA","document_number":"L898902C3","nationality":"UTO","birth_date":"1974-08-12","sex":"F","expiry_date":"2012-04-15","optional_data":"ZE184226B","checks":{"document_number":true,"birth_date":true,"expiry_date":true,"optional_data":true,"composite":true},"valid":true,"corrections":[],"warnings":["expired"]}"#
    );
}

#[test]
fn td1_specimen() {
    let m = parse_lines(&TD1, &opts()).unwrap();
    assert_eq!(m.format, Format::Td1);
    assert_eq!(m.document_code, "I");
    assert_eq!(m.document_number, "D23145890");
    assert_eq!(m.optional_data, "");
    assert_eq!(m.optional_data_2.as_deref(), Some(""));
    assert_eq!(
        (m.surname.as_str(), m.given_names.as_str()),
        ("ERIKSSON", "ANNA MARIA")
    );
    assert_eq!(m.checks.composite, Some(true));
    assert_eq!(m.checks.optional_data, None);
    assert!(m.valid);
    let json = serde_json::to_value(&m).unwrap();
    assert!(
        json["checks"].get("optional_data").is_none(),
        "TD1 has no optional data check"
    );
    assert_eq!(json["optional_data_2"], "");
}

#[test]
fn td2_specimen() {
    let m = parse_lines(&TD2, &opts()).unwrap();
    assert_eq!(m.format, Format::Td2);
    assert_eq!(m.document_number, "D23145890");
    assert!(m.valid, "{m:?}");
    assert_eq!(m.checks.composite, Some(true));
}

#[test]
fn mrv_b_specimen_has_no_composite() {
    let m = parse_lines(&MRVB, &opts()).unwrap();
    assert_eq!(m.format, Format::MrvB);
    assert_eq!(m.document_number, "L8988901C");
    assert_eq!(m.nationality, "XXX");
    assert_eq!(m.birth_date.full(), Some(date!(1940 - 09 - 07)));
    assert_eq!(m.expiry_date, Some(date!(1996 - 12 - 10)));
    assert_eq!(m.checks.composite, None);
    assert!(m.valid);
    let json = serde_json::to_value(&m).unwrap();
    assert!(json["checks"].get("composite").is_none());
}

#[test]
fn mrv_a_is_a_two_by_44_visa() {
    let l1 = "V<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<";
    let l2 = "L8988901C4XXX4009078F96121096ZE184226B<<<<<<";
    let m = parse_lines(&[l1, l2], &opts()).unwrap();
    assert_eq!(m.format, Format::MrvA);
    assert_eq!(m.optional_data, "6ZE184226B");
    assert!(m.valid, "{m:?}");
}

#[test]
fn german_id_single_letter_state() {
    let m = parse_lines(&DE_ID, &opts()).unwrap();
    assert_eq!(m.issuing_state, "D");
    assert_eq!(m.nationality, "D");
    assert_eq!(m.document_code, "ID");
    assert_eq!(m.document_number, "T22000129");
    assert_eq!(m.sex, None, "`<` is unspecified sex");
    assert!(m.valid, "{m:?}");
    assert!(!m.warnings.contains(&Warning::UnknownIssuingState));
}

#[test]
fn td1_long_document_number() {
    // Doc 9303 Part 5: number D23145890734 (12 characters), check digit 9, `<` in position 15.
    let number = "D23145890734";
    let check = char::from(tamga_mrz::compute_check_digit(number.bytes()).unwrap());
    let l1 = format!("I<UTOD23145890<734{check}<<<<<<<<<<<");
    assert_eq!(l1.len(), 30);
    let l2_body = "7408122F1204159UTO<<<<<<<<<<<";
    let over = format!(
        "{}{}{}{}",
        &l1[5..30],
        &l2_body[0..7],
        &l2_body[8..15],
        &l2_body[18..29]
    );
    let comp = char::from(tamga_mrz::compute_check_digit(over.bytes()).unwrap());
    let l2 = format!("{l2_body}{comp}");
    let m = parse_lines(&[l1.as_str(), l2.as_str(), TD1[2]], &opts()).unwrap();
    assert_eq!(m.document_number, number);
    assert_eq!(m.checks.document_number, Some(true));
    assert_eq!(m.optional_data, "");
    assert!(m.valid, "{m:?}");
}

#[test]
fn unknown_birth_day_and_month() {
    // 74<<<< with check digit over "74<<<<" = 7*7+4*3 = 61 -> 1.
    let l2 = "L898902C36UTO74<<<<1F1204159ZE184226B<<<<<1";
    let comp_over: String = [&l2[0..10], &l2[13..20], &l2[21..43]].concat();
    let comp = char::from(tamga_mrz::compute_check_digit(comp_over.bytes()).unwrap());
    let l2 = format!("{}{comp}", &l2[..43]);
    let m = parse_lines(&[TD3[0], l2.as_str()], &opts()).unwrap();
    assert_eq!(m.checks.birth_date, Some(true));
    assert_eq!(m.birth_date_parts(), (Some(1974), None, None));
    assert!(m.warnings.contains(&Warning::BirthDateUnknownParts));
    assert_eq!(
        serde_json::to_value(&m).unwrap()["birth_date"],
        serde_json::Value::Null
    );
    assert!(m.valid);
}

#[test]
fn reader_noise_is_removed() {
    let noisy = format!("\u{1}\u{2}{} \r\n{}____\r\u{3}\u{4}", TD3[0], TD3[1]);
    let m = parse(&noisy, &opts()).unwrap();
    assert!(m.valid);
    assert!(m.corrections.is_empty());
    let crlf = format!("{}\r\n{}\r\n", TD3[0], TD3[1]);
    assert_eq!(
        parse(&crlf, &opts()).unwrap(),
        parse_lines(&TD3, &opts()).unwrap()
    );
    let three_m = format!("\r{}\r{}\r", TD3[0], TD3[1]);
    assert!(
        parse(&three_m, &opts()).unwrap().valid,
        "3M sends an empty first line for two-line documents"
    );
}

#[test]
fn lowercase_is_repaired_and_reported() {
    let m = parse_lines(&[TD3[0].to_lowercase().as_str(), TD3[1]], &opts()).unwrap();
    assert!(m.valid);
    assert_eq!(m.surname, "ERIKSSON");
    assert!(
        m.corrections
            .iter()
            .all(|c| c.reason == CorrectionReason::Lowercase && c.line == 1)
    );
    assert_eq!(
        m.corrections.len(),
        TD3[0].chars().filter(char::is_ascii_alphabetic).count()
    );
}

#[test]
fn ocr_confusions_in_numeric_positions_are_repaired_when_confirmed() {
    // O for 0 in the birth date and the composite, S for 5 in the expiry date.
    let l2 = "L898902C36UTO74O8122F12O4lS9ZE184226B<<<<<1O".replace('l', "1");
    let m = parse_lines(&[TD3[0], l2.as_str()], &opts()).unwrap();
    assert!(m.valid, "{m:?}");
    assert_eq!(m.birth_date.full(), Some(date!(1974 - 08 - 12)));
    assert_eq!(m.expiry_date, Some(date!(2012 - 04 - 15)));
    let fields: Vec<_> = m
        .corrections
        .iter()
        .map(|c| (c.position, c.field, c.from, c.to))
        .collect();
    assert!(fields.contains(&(16, Some(FieldName::BirthDate), 'O', '0')));
    assert!(fields.contains(&(24, Some(FieldName::ExpiryDate), 'O', '0')));
    assert!(fields.contains(&(27, Some(FieldName::ExpiryDate), 'S', '5')));
    assert!(fields.contains(&(44, Some(FieldName::CompositeCheck), 'O', '0')));
    assert!(
        m.corrections
            .iter()
            .all(|c| c.reason == CorrectionReason::OcrDigit)
    );
}

#[test]
fn document_number_repair_needs_a_single_candidate() {
    // "L8989O2C3": O read for 0; the only single substitution that satisfies check digit 6 is O -> 0, and the
    // composite confirms it: two checks, one candidate, so it is applied.
    let l2 = TD3[1].replacen("L898902C3", "L8989O2C3", 1);
    let m = parse_lines(&[TD3[0], l2.as_str()], &opts()).unwrap();
    assert_eq!(m.document_number, "L898902C3");
    assert!(m.valid);
    assert_eq!(m.checks.composite, Some(true));
    assert_eq!(m.corrections.len(), 1);
    assert_eq!(m.corrections[0].reason, CorrectionReason::OcrDigit);
    assert_eq!(m.corrections[0].field, Some(FieldName::DocumentNumber));
    assert!(m.suggestions.is_empty(), "{:?}", m.suggestions);
}

fn cd(s: &str) -> char {
    char::from(tamga_mrz::compute_check_digit(s.bytes()).unwrap())
}

/// Line 2 of the TD3 specimen with another document number and personal number, every check digit computed.
fn td3_line2(number: &str, personal: &str) -> String {
    let number = format!("{number:<<9}");
    let personal = format!("{personal:<<14}");
    let body = format!(
        "{number}{}UTO7408122F1204159{personal}{}",
        cd(&number),
        cd(&personal)
    );
    let over: String = [&body[0..10], &body[13..20], &body[21..43]].concat();
    format!("{body}{}", cd(&over))
}

#[test]
fn td1_and_td2_document_number_repairs_confirmed_by_both_checks() {
    // S read for 5: the only candidate for check digit 7, and the composite agrees.
    let l1 = TD1[0].replacen("D23145890", "D2314S890", 1);
    let m = parse_lines(&[l1.as_str(), TD1[1], TD1[2]], &opts()).unwrap();
    assert!(m.valid, "{m:?}");
    assert_eq!(m.document_number, "D23145890");
    assert_eq!(m.corrections.len(), 1);
    let l2 = TD2[1].replacen("D23145890", "D2314S890", 1);
    let m = parse_lines(&[TD2[0], l2.as_str()], &opts()).unwrap();
    assert!(m.valid, "{m:?}");
    assert_eq!(m.document_number, "D23145890");
    assert!(m.suggestions.is_empty());
}

#[test]
fn td3_personal_number_repair_confirmed_by_both_checks() {
    // Personal number ZE184206B (check digit 7) read with O for 0: one candidate, confirmed by the composite.
    let l2 = td3_line2("L898902C3", "ZE184206B").replacen("ZE184206B", "ZE1842O6B", 1);
    let m = parse_lines(&[TD3[0], l2.as_str()], &opts()).unwrap();
    assert!(m.valid, "{m:?}");
    assert_eq!(m.optional_data, "ZE184206B");
    assert_eq!(m.checks.optional_data, Some(true));
    assert_eq!(m.checks.composite, Some(true));
    let c = &m.corrections[..];
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(
        (c[0].line, c[0].position, c[0].field, c[0].from, c[0].to),
        (2, 35, Some(FieldName::OptionalData), 'O', '0')
    );
}

#[test]
fn two_candidates_satisfying_both_checks_stay_suggestions() {
    // L898902C3 read as L89B902C3: 8 -> B at position 2 and B -> 8 at position 4 both satisfy check digit 6 and
    // the composite. Neither is applied; both are listed.
    let l2 = TD3[1].replacen("L898902C3", "L89B902C3", 1);
    let m = parse_lines(&[TD3[0], l2.as_str()], &opts()).unwrap();
    assert!(!m.valid, "{m:?}");
    assert_eq!(m.document_number, "L89B902C3");
    assert_eq!(m.checks.document_number, Some(false));
    assert!(m.corrections.is_empty(), "{:?}", m.corrections);
    let s: Vec<_> = m
        .suggestions
        .iter()
        .map(|s| {
            (
                s.field,
                s.value.as_str(),
                s.position,
                s.from,
                s.to,
                s.satisfies.clone(),
            )
        })
        .collect();
    let both = vec![Check::DocumentNumber, Check::Composite];
    assert_eq!(
        s,
        vec![
            (FieldName::DocumentNumber, "LB9B902C3", 2, '8', 'B', both.clone()),
            (FieldName::DocumentNumber, "L898902C3", 4, 'B', '8', both),
        ]
    );
}

#[test]
fn visa_document_number_repair_is_only_a_suggestion() {
    // MRV-B L8988901C read with O for 0. The check digit has one candidate, but a visa has no composite to
    // confirm it: the record stays invalid with the candidate as a suggestion.
    let l2 = MRVB[1].replacen("L8988901C", "L89889O1C", 1);
    let m = parse_lines(&[MRVB[0], l2.as_str()], &opts()).unwrap();
    assert!(!m.valid, "{m:?}");
    assert_eq!(m.document_number, "L89889O1C");
    assert!(m.corrections.is_empty());
    assert_eq!(m.suggestions.len(), 1);
    assert_eq!(m.suggestions[0].value, "L8988901C");
    assert_eq!(m.suggestions[0].satisfies, vec![Check::DocumentNumber]);
}

#[test]
fn two_misread_fields_under_one_composite_are_not_repaired() {
    // Document number and personal number both misread: each has one candidate for its own check digit, but the
    // composite cannot confirm one field while the other fails.
    let l2 = td3_line2("L898902C3", "ZE184206B")
        .replacen("L898902C3", "L8989O2C3", 1)
        .replacen("ZE184206B", "ZE1842O6B", 1);
    let m = parse_lines(&[TD3[0], l2.as_str()], &opts()).unwrap();
    assert!(!m.valid);
    assert_eq!(
        (m.document_number.as_str(), m.optional_data.as_str()),
        ("L8989O2C3", "ZE1842O6B")
    );
    assert!(m.corrections.is_empty(), "{:?}", m.corrections);
    let fields: Vec<_> = m
        .suggestions
        .iter()
        .map(|s| (s.field, s.value.as_str()))
        .collect();
    assert_eq!(
        fields,
        vec![
            (FieldName::DocumentNumber, "L898902C3"),
            (FieldName::OptionalData, "ZE184206B")
        ]
    );
}

#[test]
fn td1_long_number_misread_check_digit_is_not_confirmed_by_the_composite() {
    // Doc 9303 Part 5 long number D23145890734, check digit 9 misread as 5. Changing the last 4 into A satisfies
    // 5 AND the composite: in the continuation of a long number the composite weighs characters differently from
    // the number's own check digit, so the two checks can agree on a wrong number. The composite also accepts the
    // number as read with its true check digit, so nothing is confirmed.
    let number = "D23145890734";
    assert_eq!(cd(number), '9');
    let l1 = "I<UTOD23145890<7349<<<<<<<<<<<";
    let l2_body = "7408122F1204159UTO<<<<<<<<<<<";
    let over = format!(
        "{}{}{}{}",
        &l1[5..30],
        &l2_body[0..7],
        &l2_body[8..15],
        &l2_body[18..29]
    );
    let l2 = format!("{l2_body}{}", cd(&over));
    assert!(parse_lines(&[l1, l2.as_str(), TD1[2]], &opts()).unwrap().valid);
    let misread = l1.replacen("7349", "7345", 1);
    let m = parse_lines(&[misread.as_str(), l2.as_str(), TD1[2]], &opts()).unwrap();
    assert!(!m.valid, "{m:?}");
    assert_eq!(m.document_number, number);
    assert!(m.corrections.is_empty(), "{:?}", m.corrections);
    assert!(
        m.suggestions
            .iter()
            .any(|s| s.value == "D2314589073A" && s.satisfies == [Check::DocumentNumber, Check::Composite]),
        "{:?}",
        m.suggestions
    );
}

#[test]
fn a_wrong_check_digit_is_never_accepted() {
    let l2 = TD3[1].replacen("L898902C36", "L898902C37", 1);
    let m = parse_lines(&[TD3[0], l2.as_str()], &opts()).unwrap();
    assert_eq!(m.checks.document_number, Some(false));
    assert!(!m.valid);
    // An unconfirmable letter in a date stays as read, and the check fails.
    let l2 = TD3[1].replacen("7408122", "74O8121", 1);
    let m = parse_lines(&[TD3[0], l2.as_str()], &opts()).unwrap();
    assert_eq!(m.checks.birth_date, Some(false));
    assert!(
        m.corrections
            .iter()
            .all(|c| c.field != Some(FieldName::BirthDate))
    );
    assert!(!m.valid);
}

#[test]
fn state_codes_repaired_only_into_known_codes() {
    let l2 = TD3[1].replacen("UTO", "UT0", 1);
    let m = parse_lines(&[TD3[0], l2.as_str()], &opts()).unwrap();
    assert_eq!(m.nationality, "UTO");
    assert_eq!(m.corrections[0].reason, CorrectionReason::OcrLetter);
    let l1 = TD3[0].replacen("UTO", "QQQ", 1);
    let m = parse_lines(&[l1.as_str(), TD3[1]], &opts()).unwrap();
    assert!(m.warnings.contains(&Warning::UnknownIssuingState));
    assert!(m.valid, "an unknown state is a warning, not a failed check");
}

#[test]
fn warnings_for_the_window() {
    // Born 2010-01-01, expires 2030-01-01: a minor with a valid document.
    let cd = |s: &str| char::from(tamga_mrz::compute_check_digit(s.bytes()).unwrap());
    let mut l2 = format!(
        "L898902C36UTO100101{}F300101{}ZE184226B<<<<<1",
        cd("100101"),
        cd("300101")
    );
    let over: String = [&l2[0..10], &l2[13..20], &l2[21..43]].concat();
    l2.push(char::from(tamga_mrz::compute_check_digit(over.bytes()).unwrap()));
    let m = parse_lines(&[TD3[0], l2.as_str()], &opts()).unwrap();
    assert!(m.valid, "{m:?}");
    assert_eq!(m.warnings, vec![Warning::Minor]);
    assert_eq!(m.sex, Some(Sex::Female));
}

#[test]
fn not_an_mrz() {
    assert_eq!(parse("", &opts()), Err(MrzError::Empty));
    assert_eq!(parse("\r\n__\u{2}\u{3}", &opts()), Err(MrzError::Empty));
    assert_eq!(parse(TD3[0], &opts()), Err(MrzError::LineCount { found: 1 }));
    let short = &TD3[1][..43];
    let e = parse_lines(&[TD3[0], short], &opts()).unwrap_err();
    assert!(
        matches!(
            e,
            MrzError::LineLength {
                line: 2,
                found: 43,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "line 2 has 43 characters; expected 44, as line 1 (TD3, MRV-A)"
    );
    let e = parse_lines(&["ABC", "DEF"], &opts()).unwrap_err();
    assert!(matches!(
        e,
        MrzError::LineLength {
            line: 1,
            found: 3,
            ..
        }
    ));
}

#[test]
fn garbage_characters_make_it_invalid_not_a_panic() {
    let l1 = TD3[0].replacen("ANNA", "AN#A", 1);
    let m = parse_lines(&[l1.as_str(), TD3[1]], &opts()).unwrap();
    assert!(!m.valid);
    assert!(m.warnings.contains(&Warning::InvalidCharacters));
    let l2 = TD3[1].replacen("740812", "74é812", 1);
    let m = parse_lines(&[TD3[0], l2.as_str()], &opts()).unwrap();
    assert!(!m.valid);
}

#[test]
fn mrv_b_misread_number_check_digit_is_not_repaired_into_another_number() {
    // Issue #12: the visa's document number is L8988S01C (check digit 3). The reader misread the check digit as 0.
    // Changing S into 5 happens to satisfy 0, and it is the only single OCR substitution that does; a visa has
    // no composite check digit to confirm it, so the parser must not invent the number L8988501C.
    assert_eq!(tamga_mrz::compute_check_digit(*b"L8988S01C"), Some(b'3'));
    let l2 = "L8988S01C0XXX4009078F9612109<<<<<<<<";
    let m = parse_lines(&[MRVB[0], l2], &opts()).unwrap();
    assert_eq!(m.format, Format::MrvB);
    assert!(!m.valid, "a misread check digit made a valid record: {m:?}");
    assert_eq!(m.document_number, "L8988S01C", "the number stays as read");
    assert_eq!(m.checks.document_number, Some(false));
    assert!(m.corrections.is_empty(), "nothing applied: {:?}", m.corrections);
    // The candidate is listed, not applied, between `corrections` and `warnings`.
    let json = serde_json::to_string(&m).unwrap();
    assert!(
        json.contains(r#""corrections":[],"suggestions":[{"field":"document_number","value":"L8988501C","line":2,"position":6,"from":"S","to":"5","satisfies":["document_number"]}],"warnings":["expired"]"#),
        "{json}"
    );
}
