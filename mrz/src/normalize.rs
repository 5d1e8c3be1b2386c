//! Reader noise removal: turns what a reader or a person sent into MRZ lines.
//!
//! Handled here, before any layout is known:
//! - line breaks CR, LF or CRLF (a lone CR counts as one break, CRLF as one);
//! - C0 control characters (STX, ETX, SOH, EOT and the rest) and DEL are dropped, so reader envelopes vanish;
//! - spaces and tabs inside a line are dropped (the MRZ has none);
//! - trailing `_` padding is dropped (readers pad short lines to 30 or 44);
//! - empty lines are dropped (some readers send an empty first line for two-line documents);
//! - lowercase letters become uppercase, and each one is reported as a correction;
//! - one unbroken line of 90, 88 or 72 characters is split into 3x30, 2x44 or 2x36.
//!
//! Characters outside ASCII are kept as `?` so that the line length stays true and the parser reports them.

use crate::{Correction, CorrectionReason};

pub(crate) struct Normalized {
    pub lines: Vec<Vec<u8>>,
    pub corrections: Vec<Correction>,
}

pub(crate) fn normalize(input: &str) -> Normalized {
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    let mut prev_cr = false;
    for ch in input.chars() {
        match ch {
            '\r' => {
                lines.push(std::mem::take(&mut current));
                prev_cr = true;
                continue;
            }
            '\n' => {
                if !prev_cr {
                    lines.push(std::mem::take(&mut current));
                }
            }
            ' ' | '\t' => {}
            c if c.is_ascii_control() => {}
            c if c.is_ascii() => current.push(c as u8),
            _ => current.push(b'?'),
        }
        prev_cr = false;
    }
    lines.push(current);

    let mut lines: Vec<Vec<u8>> = lines
        .into_iter()
        .map(|mut l| {
            while l.last() == Some(&b'_') {
                l.pop();
            }
            l
        })
        .filter(|l| !l.is_empty())
        .collect();

    if lines.len() == 1 {
        let len = lines[0].len();
        let width = match len {
            90 => Some(30),
            88 => Some(44),
            72 => Some(36),
            _ => None,
        };
        if let Some(w) = width {
            let one = std::mem::take(&mut lines[0]);
            lines = one.chunks(w).map(<[u8]>::to_vec).collect();
        }
    }

    let mut corrections = Vec::new();
    for (li, line) in lines.iter_mut().enumerate() {
        for (pi, c) in line.iter_mut().enumerate() {
            if c.is_ascii_lowercase() {
                let upper = c.to_ascii_uppercase();
                corrections.push(Correction {
                    line: li + 1,
                    position: pi + 1,
                    field: None,
                    from: char::from(*c),
                    to: char::from(upper),
                    reason: CorrectionReason::Lowercase,
                });
                *c = upper;
            }
        }
    }
    Normalized { lines, corrections }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &str) -> Vec<String> {
        normalize(s)
            .lines
            .into_iter()
            .map(|l| String::from_utf8(l).unwrap())
            .collect()
    }

    #[test]
    fn line_breaks_of_every_kind() {
        assert_eq!(lines("AB\r\nCD"), ["AB", "CD"]);
        assert_eq!(lines("AB\rCD\r"), ["AB", "CD"]);
        assert_eq!(lines("AB\nCD\n"), ["AB", "CD"]);
        assert_eq!(lines("AB\r\n\r\nCD"), ["AB", "CD"]);
    }

    #[test]
    fn envelopes_spaces_and_padding() {
        assert_eq!(lines("\u{1}\u{2}A B<\r\nC__\r\u{3}"), ["AB<", "C"]);
    }

    #[test]
    fn lowercase_is_repaired_and_reported() {
        let n = normalize("Ab\nc");
        assert_eq!(n.lines, vec![b"AB".to_vec(), b"C".to_vec()]);
        assert_eq!(n.corrections.len(), 2);
        assert_eq!((n.corrections[1].line, n.corrections[1].position), (2, 1));
    }

    #[test]
    fn unbroken_line_is_split_by_length() {
        let s = "A".repeat(88);
        assert_eq!(lines(&s).len(), 2);
        assert_eq!(lines(&"A".repeat(87)).len(), 1);
    }
}
