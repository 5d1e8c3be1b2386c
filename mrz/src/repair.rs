//! OCR repair guided by the format (the per-position masks PassportEye and other MRZ cleaners use).
//!
//! A repair is applied only where a check digit confirms it, or, for state codes, where the code list does; every
//! repair is reported as a [`Correction`]. A field whose check digit does not verify is left exactly as read.

use crate::check_digit;
use crate::layout::{Layout, Pos};
use crate::{Correction, CorrectionReason};

/// Letters that OCR engines read in place of digits.
pub(crate) fn letter_to_digit(c: u8) -> Option<u8> {
    Some(match c {
        b'B' => b'8',
        b'C' | b'D' | b'O' | b'Q' => b'0',
        b'G' => b'6',
        b'I' => b'1',
        b'S' => b'5',
        b'Z' => b'2',
        _ => return None,
    })
}

/// Digits that OCR engines read in place of letters.
pub(crate) fn digit_to_letter(c: u8) -> Option<u8> {
    Some(match c {
        b'0' => b'O',
        b'1' => b'I',
        b'2' => b'Z',
        b'4' => b'A',
        b'5' => b'S',
        b'6' => b'G',
        b'8' => b'B',
        _ => return None,
    })
}

/// The MRZ grid being repaired, with the corrections made so far.
pub(crate) struct Grid<'a> {
    pub lines: Vec<Vec<u8>>,
    pub layout: &'a Layout,
    pub corrections: Vec<Correction>,
}

/// How the characters of a checked field may be repaired.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Digits only (dates): every confusable letter is mapped to its digit at once.
    Numeric,
    /// Letters and digits (document number, personal number): one substitution, and only if it is the single
    /// candidate the check digit accepts.
    AlphaNumeric,
}

impl Grid<'_> {
    pub fn at(&self, p: Pos) -> u8 {
        self.lines[p.0][p.1]
    }

    pub fn read(&self, ps: &[Pos]) -> Vec<u8> {
        ps.iter().map(|&p| self.at(p)).collect()
    }

    pub fn set(&mut self, p: Pos, to: u8, reason: CorrectionReason) {
        let from = self.at(p);
        if from == to {
            return;
        }
        self.lines[p.0][p.1] = to;
        self.corrections.push(Correction {
            line: p.0 + 1,
            position: p.1 + 1,
            field: self.layout.field_at(p),
            from: char::from(from),
            to: char::from(to),
            reason,
        });
    }

    /// Verifies the check digit at `check` over `field`, repairing OCR confusions where the check digit confirms
    /// the repair. Returns whether the field verifies (after any repair).
    pub fn checked_field(&mut self, field: &[Pos], check: Pos, kind: Kind) -> bool {
        let check_char = self.at(check);
        let check_fixed = if check_char.is_ascii_digit() {
            check_char
        } else {
            letter_to_digit(check_char).unwrap_or(check_char)
        };
        let chars = self.read(field);
        // A numeric field holding letters never passes as read, even when the letters weigh like the digits.
        let as_read_ok = kind == Kind::AlphaNumeric || chars.iter().all(|&c| c.is_ascii_digit() || c == b'<');
        if as_read_ok && check_digit::verify(chars.iter().copied(), check_fixed) {
            self.set(check, check_fixed, CorrectionReason::OcrDigit);
            return true;
        }
        match kind {
            Kind::Numeric => {
                let mapped: Vec<u8> = chars
                    .iter()
                    .map(|&c| {
                        if c.is_ascii_uppercase() {
                            letter_to_digit(c).unwrap_or(c)
                        } else {
                            c
                        }
                    })
                    .collect();
                if mapped != chars && check_digit::verify(mapped.iter().copied(), check_fixed) {
                    for (&p, &c) in field.iter().zip(&mapped) {
                        self.set(p, c, CorrectionReason::OcrDigit);
                    }
                    self.set(check, check_fixed, CorrectionReason::OcrDigit);
                    return true;
                }
                false
            }
            Kind::AlphaNumeric => {
                let mut candidates = Vec::new();
                for (i, &c) in chars.iter().enumerate() {
                    let alt = if c.is_ascii_digit() {
                        digit_to_letter(c)
                    } else {
                        letter_to_digit(c)
                    };
                    let Some(alt) = alt else { continue };
                    let mut trial = chars.clone();
                    trial[i] = alt;
                    if check_digit::verify(trial.iter().copied(), check_fixed) {
                        candidates.push((i, alt));
                    }
                }
                if let [(i, alt)] = candidates[..] {
                    let reason = if alt.is_ascii_digit() {
                        CorrectionReason::OcrDigit
                    } else {
                        CorrectionReason::OcrLetter
                    };
                    self.set(field[i], alt, reason);
                    self.set(check, check_fixed, CorrectionReason::OcrDigit);
                    return true;
                }
                false
            }
        }
    }

    /// Maps digits to letters in an alphabetic field when `accept` approves the result. Returns whether it did.
    pub fn letters_if(
        &mut self,
        field: &[Pos],
        accept: impl Fn(&[u8]) -> bool,
        reason: CorrectionReason,
    ) -> bool {
        let chars = self.read(field);
        let mapped: Vec<u8> = chars
            .iter()
            .map(|&c| {
                if c.is_ascii_digit() {
                    digit_to_letter(c).unwrap_or(c)
                } else {
                    c
                }
            })
            .collect();
        if mapped == chars || !accept(&mapped) {
            return false;
        }
        for (&p, &c) in field.iter().zip(&mapped) {
            self.set(p, c, reason);
        }
        true
    }
}
