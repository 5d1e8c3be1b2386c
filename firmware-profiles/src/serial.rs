//! `[serial]`: line settings of a serial device.

use crate::Problem;
use serde::{Deserialize, Serialize};
use toml::Spanned;

/// Baud rates a serial device profile may name.
pub const STANDARD_BAUDS: &[u32] = &[1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Parity {
    None,
    Even,
    Odd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowControl {
    None,
    Hardware,
    Software,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum StopBits {
    One,
    Two,
}

/// Validated line settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SerialSettings {
    pub baud: u32,
    pub data_bits: u8,
    pub parity: Parity,
    pub stop_bits: StopBits,
    pub flow_control: FlowControl,
}

impl SerialSettings {
    /// The conventional short form, for example `9600 7E1`.
    pub fn summary(&self) -> String {
        let p = match self.parity {
            Parity::None => 'N',
            Parity::Even => 'E',
            Parity::Odd => 'O',
        };
        let s = match self.stop_bits {
            StopBits::One => 1,
            StopBits::Two => 2,
        };
        format!("{} {}{p}{s}", self.baud, self.data_bits)
    }

    /// Bits on the wire per byte (start + data + parity + stop), for pacing and transfer-time estimates.
    pub fn bits_per_byte(&self) -> u32 {
        let parity = u32::from(self.parity != Parity::None);
        let stop = match self.stop_bits {
            StopBits::One => 1,
            StopBits::Two => 2,
        };
        1 + u32::from(self.data_bits) + parity + stop
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSerial {
    baud: Spanned<u32>,
    data_bits: Spanned<u8>,
    parity: Parity,
    stop_bits: Spanned<u8>,
    #[serde(default = "no_flow")]
    flow_control: FlowControl,
}

impl RawSerial {
    pub(crate) fn baud_spanned(&self) -> Spanned<u32> {
        self.baud.clone()
    }
}

fn no_flow() -> FlowControl {
    FlowControl::None
}

pub(crate) fn validate(raw: Spanned<RawSerial>) -> Result<SerialSettings, Problem> {
    let raw = raw.into_inner();
    let baud = *raw.baud.get_ref();
    if !STANDARD_BAUDS.contains(&baud) {
        let list: Vec<String> = STANDARD_BAUDS.iter().map(u32::to_string).collect();
        return Err(Problem::new(
            raw.baud.span(),
            format!(
                "key `serial.baud`: {baud} is not a standard rate; use one of {}",
                list.join(", ")
            ),
        ));
    }
    let data_bits = *raw.data_bits.get_ref();
    if !(5..=8).contains(&data_bits) {
        return Err(Problem::new(
            raw.data_bits.span(),
            format!(
                "key `serial.data_bits`: {data_bits} is not possible; use 7 or 8 (5 and 6 are legal but rare)"
            ),
        ));
    }
    let stop_bits = match *raw.stop_bits.get_ref() {
        1 => StopBits::One,
        2 => StopBits::Two,
        n => {
            return Err(Problem::new(
                raw.stop_bits.span(),
                format!("key `serial.stop_bits`: {n} is not possible; use 1 or 2"),
            ));
        }
    };
    Ok(SerialSettings {
        baud,
        data_bits,
        parity: raw.parity,
        stop_bits,
        flow_control: raw.flow_control,
    })
}
