//! `[mrz_framing]`: how a serial MRZ reader wraps a document on the line.
//!
//! A framed reader sends `frame_start`, optional header bytes up to `data_start`, `skip` bytes (a flag or a
//! symbology identifier), the MRZ lines separated by `line_separator` (each maybe padded with `padding`), then
//! `frame_end` and, with `bcc = "xor"`, one block check byte: the XOR of every byte after `frame_start` up to and
//! including `frame_end`. A frameless reader (both `frame_start` and `frame_end` empty) sends only the lines; the
//! document ends when the lines form a complete MRZ or after `inter_byte_timeout_ms` of silence.

use crate::Problem;
use serde::{Deserialize, Serialize};
use toml::Spanned;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LineSeparator {
    Cr,
    Lf,
    Crlf,
}

impl LineSeparator {
    pub fn bytes(self) -> &'static [u8] {
        match self {
            LineSeparator::Cr => b"\r",
            LineSeparator::Lf => b"\n",
            LineSeparator::Crlf => b"\r\n",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Bcc {
    None,
    Xor,
}

/// Validated framing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MrzFraming {
    pub frame_start: Vec<u8>,
    pub data_start: Vec<u8>,
    pub skip: u8,
    pub line_separator: LineSeparator,
    /// Sent before the first line of a two-line document so that every document has three lines (3M).
    pub empty_first_line: bool,
    /// Lines may be padded with this character (3M pads to 30 or 44); it is stripped before parsing.
    pub padding: Option<u8>,
    pub frame_end: Vec<u8>,
    pub bcc: Bcc,
    pub inter_byte_timeout_ms: u32,
    pub max_frame_bytes: u16,
}

impl MrzFraming {
    /// True when the reader sends no envelope at all.
    pub fn frameless(&self) -> bool {
        self.frame_start.is_empty()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFraming {
    #[serde(default = "unspanned")]
    frame_start: Spanned<Vec<u8>>,
    #[serde(default = "unspanned")]
    data_start: Spanned<Vec<u8>>,
    #[serde(default = "unspanned")]
    skip: Spanned<u8>,
    line_separator: LineSeparator,
    #[serde(default)]
    empty_first_line: bool,
    padding: Option<Spanned<String>>,
    #[serde(default = "unspanned")]
    frame_end: Spanned<Vec<u8>>,
    #[serde(default = "no_bcc")]
    bcc: Spanned<Bcc>,
    #[serde(default = "default_inter_byte")]
    inter_byte_timeout_ms: Spanned<u32>,
    #[serde(default = "default_max")]
    max_frame_bytes: Spanned<u16>,
}

fn unspanned<T: Default>() -> Spanned<T> {
    Spanned::new(0..0, T::default())
}
fn no_bcc() -> Spanned<Bcc> {
    Spanned::new(0..0, Bcc::None)
}
fn default_inter_byte() -> Spanned<u32> {
    Spanned::new(0..0, 500)
}
fn default_max() -> Spanned<u16> {
    Spanned::new(0..0, 512)
}

fn mrz_char(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'<'
}

pub(crate) fn validate(raw: Spanned<RawFraming>) -> Result<MrzFraming, Problem> {
    let table_span = raw.span();
    let raw = raw.into_inner();
    let start = raw.frame_start.get_ref();
    let end = raw.frame_end.get_ref();
    if start.is_empty() != end.is_empty() {
        let span = if start.is_empty() {
            raw.frame_end.span()
        } else {
            raw.frame_start.span()
        };
        return Err(Problem::new(
            span,
            "keys `mrz_framing.frame_start` and `frame_end`: give both (a framed reader) or neither (a frameless one)",
        ));
    }
    for (key, spanned) in [
        ("frame_start", &raw.frame_start),
        ("data_start", &raw.data_start),
        ("frame_end", &raw.frame_end),
    ] {
        if let Some(b) = spanned
            .get_ref()
            .iter()
            .find(|&&b| mrz_char(b) || b == b'\r' || b == b'\n')
        {
            return Err(Problem::new(
                spanned.span(),
                format!(
                    "key `mrz_framing.{key}`: byte 0x{b:02X} can occur inside MRZ text or between lines; \
                     envelope bytes must be control bytes such as 0x01 (SOH), 0x02 (STX), 0x03 (ETX)"
                ),
            ));
        }
    }
    if !raw.data_start.get_ref().is_empty() && start.is_empty() {
        return Err(Problem::new(
            raw.data_start.span(),
            "key `mrz_framing.data_start`: needs `frame_start`",
        ));
    }
    if *raw.skip.get_ref() > 8 {
        return Err(Problem::new(
            raw.skip.span(),
            "key `mrz_framing.skip`: at most 8 bytes can be skipped",
        ));
    }
    if *raw.bcc.get_ref() == Bcc::Xor && end.is_empty() {
        return Err(Problem::new(
            raw.bcc.span(),
            "key `mrz_framing.bcc`: a block check needs `frame_end`",
        ));
    }
    let padding = match &raw.padding {
        None => None,
        Some(p) => match p.get_ref().as_bytes() {
            [b] if !mrz_char(*b) && *b != b'\r' && *b != b'\n' && b.is_ascii() => Some(*b),
            _ => {
                return Err(Problem::new(
                    p.span(),
                    "key `mrz_framing.padding`: one ASCII character that is not A-Z, 0-9, `<`, CR or LF, for example \"_\"",
                ));
            }
        },
    };
    let t = *raw.inter_byte_timeout_ms.get_ref();
    if !(20..=10_000).contains(&t) {
        let span = if raw.inter_byte_timeout_ms.span().is_empty() {
            table_span
        } else {
            raw.inter_byte_timeout_ms.span()
        };
        return Err(Problem::new(
            span,
            format!("key `mrz_framing.inter_byte_timeout_ms`: {t} is outside 20..=10000"),
        ));
    }
    let max = *raw.max_frame_bytes.get_ref();
    if max < 128 {
        return Err(Problem::new(
            raw.max_frame_bytes.span(),
            format!("key `mrz_framing.max_frame_bytes`: {max} cannot hold a TD1 document; use at least 128"),
        ));
    }
    Ok(MrzFraming {
        frame_start: raw.frame_start.into_inner(),
        data_start: raw.data_start.into_inner(),
        skip: raw.skip.into_inner(),
        line_separator: raw.line_separator,
        empty_first_line: raw.empty_first_line,
        padding,
        frame_end: raw.frame_end.into_inner(),
        bcc: raw.bcc.into_inner(),
        inter_byte_timeout_ms: t,
        max_frame_bytes: max,
    })
}
