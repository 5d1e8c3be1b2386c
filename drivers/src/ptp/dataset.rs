//! PTP datasets (ISO 15740 section 5): strings, arrays, DeviceInfo, ObjectInfo, DevicePropDesc. Little-endian.
//!
//! A PTP string is a u8 count of UTF-16LE code units including the terminating NUL (0 = empty string), then the
//! units. An array is a u32 count, then the elements.

use super::PtpError;
use serde::Serialize;

/// A cursor over a dataset, with typed errors for truncation.
#[derive(Debug)]
pub struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub fn new(b: &'a [u8], what: &'static str) -> Self {
        Reader { b, pos: 0, what }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], PtpError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or_else(|| {
                PtpError::Protocol(format!(
                    "{} truncated at byte {} (needs {n} more)",
                    self.what, self.pos
                ))
            })?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub fn u8(&mut self) -> Result<u8, PtpError> {
        Ok(self.take(1)?[0])
    }
    pub fn u16(&mut self) -> Result<u16, PtpError> {
        let s = self.take(2)?;
        Ok(u16::from_le_bytes([s[0], s[1]]))
    }
    pub fn u32(&mut self) -> Result<u32, PtpError> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    pub fn u64(&mut self) -> Result<u64, PtpError> {
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_le_bytes(a))
    }

    pub fn string(&mut self) -> Result<String, PtpError> {
        let n = usize::from(self.u8()?);
        let units: Vec<u16> = self
            .take(2 * n)?
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        let end = units.iter().position(|&u| u == 0).unwrap_or(units.len());
        Ok(String::from_utf16_lossy(&units[..end]))
    }

    pub fn array_u16(&mut self) -> Result<Vec<u16>, PtpError> {
        let n = self.u32()? as usize;
        // Each element needs two bytes: refuse counts the data cannot hold before allocating.
        if n > (self.b.len() - self.pos) / 2 {
            return Err(PtpError::Protocol(format!(
                "{}: array of {n} elements exceeds the data",
                self.what
            )));
        }
        (0..n).map(|_| self.u16()).collect()
    }

    pub fn array_u32(&mut self) -> Result<Vec<u32>, PtpError> {
        let n = self.u32()? as usize;
        if n > (self.b.len() - self.pos) / 4 {
            return Err(PtpError::Protocol(format!(
                "{}: array of {n} elements exceeds the data",
                self.what
            )));
        }
        (0..n).map(|_| self.u32()).collect()
    }
}

/// DeviceInfo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceInfo {
    pub standard_version: u16,
    pub vendor_extension_id: u32,
    pub vendor_extension_version: u16,
    pub vendor_extension_desc: String,
    pub functional_mode: u16,
    pub operations: Vec<u16>,
    pub events: Vec<u16>,
    pub device_properties: Vec<u16>,
    pub capture_formats: Vec<u16>,
    pub image_formats: Vec<u16>,
    pub manufacturer: String,
    pub model: String,
    pub device_version: String,
    pub serial_number: String,
}

impl DeviceInfo {
    pub fn parse(b: &[u8]) -> Result<DeviceInfo, PtpError> {
        let mut r = Reader::new(b, "DeviceInfo");
        Ok(DeviceInfo {
            standard_version: r.u16()?,
            vendor_extension_id: r.u32()?,
            vendor_extension_version: r.u16()?,
            vendor_extension_desc: r.string()?,
            functional_mode: r.u16()?,
            operations: r.array_u16()?,
            events: r.array_u16()?,
            device_properties: r.array_u16()?,
            capture_formats: r.array_u16()?,
            image_formats: r.array_u16()?,
            manufacturer: r.string()?,
            model: r.string()?,
            device_version: r.string()?,
            serial_number: r.string()?,
        })
    }

    pub fn supports(&self, operation: u16) -> bool {
        self.operations.contains(&operation)
    }
}

/// ObjectInfo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectInfo {
    pub storage_id: u32,
    pub object_format: u16,
    pub protection_status: u16,
    pub compressed_size: u32,
    pub thumb_format: u16,
    pub thumb_compressed_size: u32,
    pub thumb_width: u32,
    pub thumb_height: u32,
    pub image_width: u32,
    pub image_height: u32,
    pub image_bit_depth: u32,
    pub parent_object: u32,
    pub association_type: u16,
    pub association_desc: u32,
    pub sequence_number: u32,
    pub filename: String,
    pub capture_date: String,
    pub modification_date: String,
    pub keywords: String,
}

impl ObjectInfo {
    pub fn parse(b: &[u8]) -> Result<ObjectInfo, PtpError> {
        let mut r = Reader::new(b, "ObjectInfo");
        Ok(ObjectInfo {
            storage_id: r.u32()?,
            object_format: r.u16()?,
            protection_status: r.u16()?,
            compressed_size: r.u32()?,
            thumb_format: r.u16()?,
            thumb_compressed_size: r.u32()?,
            thumb_width: r.u32()?,
            thumb_height: r.u32()?,
            image_width: r.u32()?,
            image_height: r.u32()?,
            image_bit_depth: r.u32()?,
            parent_object: r.u32()?,
            association_type: r.u16()?,
            association_desc: r.u32()?,
            sequence_number: r.u32()?,
            filename: r.string()?,
            capture_date: r.string()?,
            modification_date: r.string()?,
            keywords: r.string()?,
        })
    }

    /// True for folders (associations), which captures sometimes add before the image.
    pub fn is_association(&self) -> bool {
        self.object_format == super::codes::format::ASSOCIATION
    }
}

/// A device property value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum PropValue {
    Int(i64),
    UInt(u64),
    Str(String),
}

impl PropValue {
    fn read(r: &mut Reader<'_>, datatype: u16) -> Result<PropValue, PtpError> {
        Ok(match datatype {
            0x0001 => PropValue::Int(i64::from(r.u8()? as i8)),
            0x0002 => PropValue::UInt(u64::from(r.u8()?)),
            0x0003 => PropValue::Int(i64::from(r.u16()? as i16)),
            0x0004 => PropValue::UInt(u64::from(r.u16()?)),
            0x0005 => PropValue::Int(i64::from(r.u32()? as i32)),
            0x0006 => PropValue::UInt(u64::from(r.u32()?)),
            0x0007 => PropValue::Int(r.u64()? as i64),
            0x0008 => PropValue::UInt(r.u64()?),
            0xFFFF => PropValue::Str(r.string()?),
            other => {
                return Err(PtpError::Protocol(format!(
                    "property datatype 0x{other:04X} is not supported"
                )));
            }
        })
    }

    /// Encodes the value as `datatype` for SetDevicePropValue.
    pub fn encode(&self, datatype: u16) -> Result<Vec<u8>, PtpError> {
        let int = |v: &PropValue| match v {
            PropValue::Int(i) => Some(*i),
            PropValue::UInt(u) => i64::try_from(*u).ok(),
            PropValue::Str(_) => None,
        };
        let bad = || PtpError::Protocol(format!("value {self:?} does not fit datatype 0x{datatype:04X}"));
        Ok(match datatype {
            0x0001 | 0x0002 => vec![int(self).ok_or_else(bad)? as u8],
            0x0003 | 0x0004 => (int(self).ok_or_else(bad)? as u16).to_le_bytes().to_vec(),
            0x0005 | 0x0006 => (int(self).ok_or_else(bad)? as u32).to_le_bytes().to_vec(),
            0x0007 | 0x0008 => (int(self).ok_or_else(bad)? as u64).to_le_bytes().to_vec(),
            0xFFFF => {
                let PropValue::Str(s) = self else {
                    return Err(bad());
                };
                let units: Vec<u16> = s.encode_utf16().chain(std::iter::once(0)).collect();
                let n = u8::try_from(units.len()).map_err(|_| bad())?;
                let mut v = vec![n];
                for u in units {
                    v.extend_from_slice(&u.to_le_bytes());
                }
                v
            }
            _ => return Err(bad()),
        })
    }
}

/// Allowed values of a property.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PropForm {
    None,
    Range {
        min: PropValue,
        max: PropValue,
        step: PropValue,
    },
    Enumeration(Vec<PropValue>),
}

/// DevicePropDesc.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DevicePropDesc {
    pub code: u16,
    pub datatype: u16,
    pub writable: bool,
    pub default: PropValue,
    pub current: PropValue,
    pub form: PropForm,
}

impl DevicePropDesc {
    pub fn parse(b: &[u8]) -> Result<DevicePropDesc, PtpError> {
        let mut r = Reader::new(b, "DevicePropDesc");
        let code = r.u16()?;
        let datatype = r.u16()?;
        let writable = r.u8()? == 1;
        let default = PropValue::read(&mut r, datatype)?;
        let current = PropValue::read(&mut r, datatype)?;
        let form = match r.u8()? {
            1 => PropForm::Range {
                min: PropValue::read(&mut r, datatype)?,
                max: PropValue::read(&mut r, datatype)?,
                step: PropValue::read(&mut r, datatype)?,
            },
            2 => {
                let n = r.u16()?;
                PropForm::Enumeration(
                    (0..n)
                        .map(|_| PropValue::read(&mut r, datatype))
                        .collect::<Result<_, _>>()?,
                )
            }
            _ => PropForm::None,
        };
        Ok(DevicePropDesc {
            code,
            datatype,
            writable,
            default,
            current,
            form,
        })
    }

    /// Whether `v` is allowed by the form.
    pub fn allows(&self, v: &PropValue) -> bool {
        match &self.form {
            PropForm::None => true,
            PropForm::Enumeration(vs) => vs.contains(v),
            PropForm::Range { min, max, .. } => {
                let key = |p: &PropValue| match p {
                    PropValue::Int(i) => Some(i128::from(*i)),
                    PropValue::UInt(u) => Some(i128::from(*u)),
                    PropValue::Str(_) => None,
                };
                matches!((key(min), key(max), key(v)), (Some(a), Some(b), Some(x)) if a <= x && x <= b)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ptp_string(s: &str) -> Vec<u8> {
        PropValue::Str(s.into()).encode(0xFFFF).unwrap()
    }

    #[test]
    fn strings_count_the_nul() {
        assert_eq!(ptp_string("AB"), vec![3, b'A', 0, b'B', 0, 0, 0]);
        let mut r = Reader::new(&[0], "t");
        assert_eq!(r.string().unwrap(), "");
    }

    #[test]
    fn truncated_and_lying_arrays_are_errors() {
        let mut r = Reader::new(&[0xFF, 0xFF, 0xFF, 0x7F, 1, 2], "t");
        assert!(r.array_u16().is_err());
        assert!(DeviceInfo::parse(&[100, 0, 6]).is_err());
    }

    #[test]
    fn prop_desc_enumeration() {
        let mut b = vec![0x05, 0x50, 0x04, 0x00, 1];
        b.extend_from_slice(&2u16.to_le_bytes());
        b.extend_from_slice(&2u16.to_le_bytes());
        b.push(2);
        b.extend_from_slice(&3u16.to_le_bytes());
        for v in [1u16, 2, 4] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        let d = DevicePropDesc::parse(&b).unwrap();
        assert_eq!(d.code, 0x5005);
        assert!(d.writable);
        assert!(d.allows(&PropValue::UInt(4)));
        assert!(!d.allows(&PropValue::UInt(3)));
    }
}
