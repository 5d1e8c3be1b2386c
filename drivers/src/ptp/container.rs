//! PTP generic containers over USB (Still Image Capture Device Definition), all fields little-endian:
//!
//! ```text
//! offset size field
//! 0      4    container length, header included
//! 4      2    type: 1 command, 2 data, 3 response, 4 event
//! 6      2    operation / response / event code
//! 8      4    transaction id
//! 12     ...  parameters (u32 each, at most 5; events at most 3) or data
//! ```

use super::PtpError;

/// Header bytes.
pub const HEADER_LEN: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Command = 1,
    Data = 2,
    Response = 3,
    Event = 4,
}

impl Kind {
    fn from_u16(v: u16) -> Option<Kind> {
        Some(match v {
            1 => Kind::Command,
            2 => Kind::Data,
            3 => Kind::Response,
            4 => Kind::Event,
            _ => return None,
        })
    }
}

/// A container header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Total length including the header; `0xFFFFFFFF` = unknown (data until a short packet).
    pub length: u32,
    pub kind: Kind,
    pub code: u16,
    pub transaction_id: u32,
}

impl Header {
    pub fn parse(b: &[u8]) -> Result<Header, PtpError> {
        if b.len() < HEADER_LEN {
            return Err(PtpError::Protocol(format!(
                "container of {} bytes is shorter than its header",
                b.len()
            )));
        }
        let length = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let kind_raw = u16::from_le_bytes([b[4], b[5]]);
        let kind = Kind::from_u16(kind_raw)
            .ok_or_else(|| PtpError::Protocol(format!("unknown container type {kind_raw}")))?;
        if length != u32::MAX && (length as usize) < HEADER_LEN {
            return Err(PtpError::Protocol(format!(
                "container length {length} is shorter than its header"
            )));
        }
        Ok(Header {
            length,
            kind,
            code: u16::from_le_bytes([b[6], b[7]]),
            transaction_id: u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
        })
    }
}

/// Encodes a command (or response, or event) container with its parameters.
pub fn encode(kind: Kind, code: u16, transaction_id: u32, params: &[u32]) -> Vec<u8> {
    let len = HEADER_LEN + 4 * params.len();
    let mut v = Vec::with_capacity(len);
    v.extend_from_slice(&(len as u32).to_le_bytes());
    v.extend_from_slice(&(kind as u16).to_le_bytes());
    v.extend_from_slice(&code.to_le_bytes());
    v.extend_from_slice(&transaction_id.to_le_bytes());
    for p in params {
        v.extend_from_slice(&p.to_le_bytes());
    }
    v
}

/// Encodes a data container header followed by `data`.
pub fn encode_data(code: u16, transaction_id: u32, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(HEADER_LEN + data.len());
    v.extend_from_slice(&((HEADER_LEN + data.len()) as u32).to_le_bytes());
    v.extend_from_slice(&(Kind::Data as u16).to_le_bytes());
    v.extend_from_slice(&code.to_le_bytes());
    v.extend_from_slice(&transaction_id.to_le_bytes());
    v.extend_from_slice(data);
    v
}

/// The u32 parameters after a header.
pub fn params(b: &[u8]) -> Vec<u32> {
    b.get(HEADER_LEN..)
        .unwrap_or(&[])
        .chunks_exact(4)
        .take(5)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_containers() {
        // GetDeviceInfo and OpenSession(1) as the Still Image class definition shows them.
        assert_eq!(
            encode(Kind::Command, 0x1001, 0, &[]),
            [0x0C, 0, 0, 0, 0x01, 0, 0x01, 0x10, 0, 0, 0, 0]
        );
        assert_eq!(
            encode(Kind::Command, 0x1002, 0, &[1]),
            [0x10, 0, 0, 0, 0x01, 0, 0x02, 0x10, 0, 0, 0, 0, 1, 0, 0, 0]
        );
        let h = Header::parse(&encode(Kind::Response, 0x2001, 7, &[3])).unwrap();
        assert_eq!(
            (h.length, h.kind, h.code, h.transaction_id),
            (16, Kind::Response, 0x2001, 7)
        );
        assert!(Header::parse(&[1, 2, 3]).is_err());
        assert!(Header::parse(&[4, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }
}
