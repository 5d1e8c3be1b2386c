//! OCR repair guided by the format (the per-position masks PassportEye and other MRZ cleaners use).
//!
//! A repair is applied only where a check digit confirms it, or, for state codes, where the code list does; every
//! repair is reported as a [`Correction`]. A field whose check digit does not verify is left exactly as read.
//! Numeric fields (dates, check digits) need their own check digit. Fields of letters and digits (document and
//! personal numbers) need two: their own check digit and the composite (see `confirm` in the crate root).

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

/// A character read in a check digit position as the digit it stands for: a digit as is, a letter OCR reads in
/// place of a digit mapped to that digit, anything else unchanged (and so never verifying).
pub(crate) fn as_check_digit(c: u8) -> u8 {
    if c.is_ascii_digit() {
        c
    } else {
        letter_to_digit(c).unwrap_or(c)
    }
}

/// The MRZ grid being repaired, with the corrections made so far.
pub(crate) struct Grid<'a> {
    pub lines: Vec<Vec<u8>>,
    pub layout: &'a Layout,
    pub corrections: Vec<Correction>,
}

/// What a field with letters and digits (document number, personal number) gives against its own check digit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reading {
    /// The field verifies as read (a check digit read as a letter has been mapped to its digit).
    Verifies,
    /// The field fails its check digit. `check_digit` is the check digit as read (a letter mapped to its digit);
    /// `candidates` are the single OCR substitutions in the field that satisfy it, none applied.
    Fails {
        check_digit: u8,
        candidates: Vec<(Pos, u8)>,
    },
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

    /// The check digit at `check` as a digit: a letter OCR reads in place of a digit is mapped to it.
    fn check_digit_at(&self, check: Pos) -> u8 {
        as_check_digit(self.at(check))
    }

    /// Verifies a numeric field (a date) against its check digit, mapping every confusable letter to its digit at
    /// once where the check digit confirms it. Returns whether the field verifies (after any repair).
    pub fn checked_numeric(&mut self, field: &[Pos], check: Pos) -> bool {
        let check_fixed = self.check_digit_at(check);
        let chars = self.read(field);
        // A numeric field holding letters never passes as read, even when the letters weigh like the digits.
        let as_read_ok = chars.iter().all(|&c| c.is_ascii_digit() || c == b'<');
        if as_read_ok && check_digit::verify(chars.iter().copied(), check_fixed) {
            self.set(check, check_fixed, CorrectionReason::OcrDigit);
            return true;
        }
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

    /// Verifies a field of letters and digits against its check digit. When it fails, lists the single OCR
    /// substitutions that would satisfy the check digit without applying any: one check digit agrees with a
    /// random change one time in ten, so the caller decides whether a second check confirms one of them.
    pub fn alphanumeric(&mut self, field: &[Pos], check: Pos) -> Reading {
        let check_fixed = self.check_digit_at(check);
        let chars = self.read(field);
        if check_digit::verify(chars.iter().copied(), check_fixed) {
            self.set(check, check_fixed, CorrectionReason::OcrDigit);
            return Reading::Verifies;
        }
        let mut candidates = Vec::new();
        for (i, (&p, &c)) in field.iter().zip(&chars).enumerate() {
            let alt = if c.is_ascii_digit() {
                digit_to_letter(c)
            } else {
                letter_to_digit(c)
            };
            let Some(alt) = alt else { continue };
            let mut trial = chars.clone();
            trial[i] = alt;
            if check_digit::verify(trial.iter().copied(), check_fixed) {
                candidates.push((p, alt));
            }
        }
        Reading::Fails {
            check_digit: check_fixed,
            candidates,
        }
    }

    /// Whether the check digit at `check` (a letter mapped to its digit) verifies over `over` once `changes` are
    /// made, without making them.
    pub fn verifies_with(&self, over: &[Pos], check: Pos, changes: &[(Pos, u8)]) -> bool {
        let value = |p: Pos| {
            changes
                .iter()
                .rev()
                .find(|(q, _)| *q == p)
                .map_or_else(|| self.at(p), |&(_, c)| c)
        };
        check_digit::verify(over.iter().map(|&p| value(p)), as_check_digit(value(check)))
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
