//! Where each field sits in each MRZ format (Doc 9303 Parts 4 to 7), as lists of character positions.
//!
//! Positions are 0-based `(line, column)` pairs here; reports to users are 1-based.

use serde::Serialize;

/// A character position: 0-based line and column.
pub(crate) type Pos = (usize, usize);

/// The machine readable zone formats of Doc 9303.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Format {
    /// ID card size, three lines of 30 (Part 5).
    #[serde(rename = "TD1")]
    Td1,
    /// Two lines of 36 (Part 6).
    #[serde(rename = "TD2")]
    Td2,
    /// Passport, two lines of 44 (Part 4).
    #[serde(rename = "TD3")]
    Td3,
    /// Visa format A, two lines of 44 (Part 7).
    #[serde(rename = "MRV-A")]
    MrvA,
    /// Visa format B, two lines of 36 (Part 7).
    #[serde(rename = "MRV-B")]
    MrvB,
}

impl Format {
    /// The name used in JSON and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Td1 => "TD1",
            Format::Td2 => "TD2",
            Format::Td3 => "TD3",
            Format::MrvA => "MRV-A",
            Format::MrvB => "MRV-B",
        }
    }

    /// Number of lines and characters per line.
    pub fn shape(self) -> (usize, usize) {
        match self {
            Format::Td1 => (3, 30),
            Format::Td2 | Format::MrvB => (2, 36),
            Format::Td3 | Format::MrvA => (2, 44),
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Names of the fields, as reported in corrections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldName {
    DocumentCode,
    IssuingState,
    Name,
    DocumentNumber,
    DocumentNumberCheck,
    Nationality,
    BirthDate,
    BirthDateCheck,
    Sex,
    ExpiryDate,
    ExpiryDateCheck,
    OptionalData,
    OptionalDataCheck,
    OptionalData2,
    CompositeCheck,
}

#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub code: Vec<Pos>,
    pub state: Vec<Pos>,
    pub name: Vec<Pos>,
    pub number: Vec<Pos>,
    pub number_check: Pos,
    pub nationality: Vec<Pos>,
    pub birth: Vec<Pos>,
    pub birth_check: Pos,
    pub sex: Pos,
    pub expiry: Vec<Pos>,
    pub expiry_check: Pos,
    pub optional: Vec<Pos>,
    pub optional_check: Option<Pos>,
    pub optional_2: Option<Vec<Pos>>,
    pub composite: Option<(Vec<Pos>, Pos)>,
    /// Set when the document number is longer than 9 characters and continues in the optional data.
    pub long_number: bool,
}

fn span(line: usize, start: usize, len: usize) -> Vec<Pos> {
    (start..start + len).map(|c| (line, c)).collect()
}

fn concat(parts: &[Vec<Pos>]) -> Vec<Pos> {
    parts.iter().flatten().copied().collect()
}

impl Layout {
    /// The layout of `format`, adjusted for a long document number when `grid` carries one.
    pub fn new(format: Format, grid: &[Vec<u8>]) -> Layout {
        match format {
            Format::Td1 => Self::td1(grid),
            Format::Td2 | Format::MrvB | Format::Td3 | Format::MrvA => Self::two_line(format, grid),
        }
    }

    fn td1(grid: &[Vec<u8>]) -> Layout {
        let mut l = Layout {
            code: span(0, 0, 2),
            state: span(0, 2, 3),
            number: span(0, 5, 9),
            number_check: (0, 14),
            optional: span(0, 15, 15),
            birth: span(1, 0, 6),
            birth_check: (1, 6),
            sex: (1, 7),
            expiry: span(1, 8, 6),
            expiry_check: (1, 14),
            nationality: span(1, 15, 3),
            optional_2: Some(span(1, 18, 11)),
            composite: Some((
                concat(&[span(0, 5, 25), span(1, 0, 7), span(1, 8, 7), span(1, 18, 11)]),
                (1, 29),
            )),
            name: span(2, 0, 30),
            optional_check: None,
            long_number: false,
        };
        l.extend_long_number(grid);
        l
    }

    fn two_line(format: Format, grid: &[Vec<u8>]) -> Layout {
        let width = format.shape().1;
        let composite = match format {
            Format::Td3 => Some((
                concat(&[span(1, 0, 10), span(1, 13, 7), span(1, 21, 22)]),
                (1, 43),
            )),
            Format::Td2 => Some((
                concat(&[span(1, 0, 10), span(1, 13, 7), span(1, 21, 14)]),
                (1, 35),
            )),
            _ => None,
        };
        let (optional, optional_check) = match format {
            Format::Td3 => (span(1, 28, 14), Some((1, 42))),
            Format::Td2 => (span(1, 28, 7), None),
            _ => (span(1, 28, width - 28), None),
        };
        let mut l = Layout {
            code: span(0, 0, 2),
            state: span(0, 2, 3),
            name: span(0, 5, width - 5),
            number: span(1, 0, 9),
            number_check: (1, 9),
            nationality: span(1, 10, 3),
            birth: span(1, 13, 6),
            birth_check: (1, 19),
            sex: (1, 20),
            expiry: span(1, 21, 6),
            expiry_check: (1, 27),
            optional,
            optional_check,
            optional_2: None,
            composite,
            long_number: false,
        };
        if format == Format::Td2 {
            l.extend_long_number(grid);
        }
        l
    }

    /// Doc 9303 Part 5 (TD1) and Part 6 (TD2): a document number longer than 9 characters puts `<` in the check
    /// digit position and continues at the start of the optional data, followed by its check digit and a `<`.
    fn extend_long_number(&mut self, grid: &[Vec<u8>]) {
        let at = |p: Pos| grid.get(p.0).and_then(|l| l.get(p.1)).copied();
        if at(self.number_check) != Some(b'<') {
            return;
        }
        let Some(&first) = self.optional.first() else {
            return;
        };
        if at(first) == Some(b'<') {
            return;
        }
        let end = self
            .optional
            .iter()
            .position(|&p| at(p) == Some(b'<'))
            .unwrap_or(self.optional.len());
        if end < 2 {
            return;
        }
        // optional[..end-1] continues the number, optional[end-1] is its check digit, optional[end] is `<`.
        self.number.extend_from_slice(&self.optional[..end - 1]);
        self.number_check = self.optional[end - 1];
        self.optional = self.optional[(end + 1).min(self.optional.len())..].to_vec();
        self.long_number = true;
    }

    /// The field a position belongs to, for reporting.
    pub fn field_at(&self, pos: Pos) -> Option<FieldName> {
        let lists: [(&[Pos], FieldName); 9] = [
            (&self.code, FieldName::DocumentCode),
            (&self.state, FieldName::IssuingState),
            (&self.name, FieldName::Name),
            (&self.number, FieldName::DocumentNumber),
            (&self.nationality, FieldName::Nationality),
            (&self.birth, FieldName::BirthDate),
            (&self.expiry, FieldName::ExpiryDate),
            (&self.optional, FieldName::OptionalData),
            (
                self.optional_2.as_deref().unwrap_or(&[]),
                FieldName::OptionalData2,
            ),
        ];
        if let Some((_, name)) = lists.iter().find(|(l, _)| l.contains(&pos)) {
            return Some(*name);
        }
        let singles = [
            (Some(self.number_check), FieldName::DocumentNumberCheck),
            (Some(self.birth_check), FieldName::BirthDateCheck),
            (Some(self.sex), FieldName::Sex),
            (Some(self.expiry_check), FieldName::ExpiryDateCheck),
            (self.optional_check, FieldName::OptionalDataCheck),
            (self.composite.as_ref().map(|c| c.1), FieldName::CompositeCheck),
        ];
        singles.iter().find(|(p, _)| *p == Some(pos)).map(|(_, n)| *n)
    }
}
