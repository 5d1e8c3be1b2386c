//! The ICAO 9303 check digit (Doc 9303 Part 3, section 4.9).
//!
//! Each character has a value: `0`-`9` their digit, `A`-`Z` 10-35, the filler `<` 0. Values are multiplied by the
//! weights 7, 3, 1 repeating from the leftmost character; the check digit is the sum modulo 10.
//!
//! The scheme detects every change of one digit into another digit, but not a change between characters whose
//! values are equal modulo 10 (`0`, `A`, `K`, `U` and `<` all weigh alike), which is a property of the standard.

const WEIGHTS: [u32; 3] = [7, 3, 1];

/// The value of one MRZ character, or `None` for a character the MRZ alphabet does not have.
pub fn char_value(c: u8) -> Option<u32> {
    match c {
        b'0'..=b'9' => Some(u32::from(c - b'0')),
        b'A'..=b'Z' => Some(u32::from(c - b'A') + 10),
        b'<' => Some(0),
        _ => None,
    }
}

/// Computes the check digit (`b'0'..=b'9'`) over `chars`, or `None` if a character is outside the MRZ alphabet.
pub fn compute<I: IntoIterator<Item = u8>>(chars: I) -> Option<u8> {
    let mut sum = 0u32;
    for (i, c) in chars.into_iter().enumerate() {
        sum += char_value(c)? * WEIGHTS[i % 3];
    }
    // sum % 10 < 10, so the cast cannot truncate.
    Some(b'0' + (sum % 10) as u8)
}

/// True when `check` is the digit computed over `chars`.
pub fn verify<I: IntoIterator<Item = u8>>(chars: I, check: u8) -> bool {
    compute(chars) == Some(check)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icao_worked_examples() {
        assert_eq!(compute(*b"L898902C3"), Some(b'6'));
        assert_eq!(compute(*b"740812"), Some(b'2'));
        assert_eq!(compute(*b"120415"), Some(b'9'));
        assert_eq!(compute(*b"D23145890"), Some(b'7'));
    }

    #[test]
    fn outside_alphabet_has_no_check_digit() {
        assert_eq!(compute(*b"L8989?2C3"), None);
        assert!(!verify(*b"l898902C3", b'6'));
    }

    #[test]
    fn filler_weighs_zero() {
        assert_eq!(compute(*b"<<<<<<<<<"), Some(b'0'));
    }
}
