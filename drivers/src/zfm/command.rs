//! ZFM instructions, confirmation codes and the data blocks commands return.

/// Instruction codes (payload byte 0 of a command packet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Instruction {
    GenImg = 0x01,
    Img2Tz = 0x02,
    UpImage = 0x0A,
    DownImage = 0x0B,
    SetSysPara = 0x0E,
    ReadSysPara = 0x0F,
    SetPwd = 0x12,
    VfyPwd = 0x13,
    TemplateNum = 0x1D,
    GetImageEx = 0x28,
    Cancel = 0x30,
    AuraLedConfig = 0x35,
    CheckSensor = 0x36,
    GetFwVer = 0x3A,
    ReadProdInfo = 0x3C,
    SoftRst = 0x3D,
    HandShake = 0x40,
}

/// Confirmation codes (payload byte 0 of an acknowledge packet), every one the family documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Confirmation {
    Ok,
    PacketReceiveError,
    NoFinger,
    CaptureFailed,
    TooDry,
    TooWet,
    TooMessy,
    TooFewFeatures,
    NoMatch,
    NotFound,
    CombineFailed,
    PageOutOfRange,
    TemplateInvalid,
    UpCharError,
    CannotReceive,
    UpImageError,
    DeleteFailed,
    ClearFailed,
    WrongPassword,
    NoValidImage,
    FlashError,
    InvalidRegister,
    BadRegisterConfig,
    LibraryFull,
    AddressError,
    PasswordRequired,
    Timeout,
    SensorAbnormal,
    Unsupported,
    HardwareError,
    CommandFailed,
    /// A code no manual of the family documents.
    Unknown(u8),
}

impl Confirmation {
    pub fn from_byte(b: u8) -> Confirmation {
        use Confirmation::*;
        match b {
            0x00 => Ok,
            0x01 => PacketReceiveError,
            0x02 => NoFinger,
            0x03 => CaptureFailed,
            0x04 => TooDry,
            0x05 => TooWet,
            0x06 => TooMessy,
            0x07 => TooFewFeatures,
            0x08 => NoMatch,
            0x09 => NotFound,
            0x0A => CombineFailed,
            0x0B => PageOutOfRange,
            0x0C => TemplateInvalid,
            0x0D => UpCharError,
            0x0E => CannotReceive,
            0x0F => UpImageError,
            0x10 => DeleteFailed,
            0x11 => ClearFailed,
            0x13 => WrongPassword,
            0x15 => NoValidImage,
            0x18 => FlashError,
            0x1A => InvalidRegister,
            0x1B => BadRegisterConfig,
            0x1F => LibraryFull,
            0x20 => AddressError,
            0x21 => PasswordRequired,
            0x26 => Timeout,
            0x29 => SensorAbnormal,
            0xFC => Unsupported,
            0xFD => HardwareError,
            0xFE => CommandFailed,
            other => Unknown(other),
        }
    }

    /// The byte on the wire.
    pub fn code(self) -> u8 {
        use Confirmation::*;
        match self {
            Ok => 0x00,
            PacketReceiveError => 0x01,
            NoFinger => 0x02,
            CaptureFailed => 0x03,
            TooDry => 0x04,
            TooWet => 0x05,
            TooMessy => 0x06,
            TooFewFeatures => 0x07,
            NoMatch => 0x08,
            NotFound => 0x09,
            CombineFailed => 0x0A,
            PageOutOfRange => 0x0B,
            TemplateInvalid => 0x0C,
            UpCharError => 0x0D,
            CannotReceive => 0x0E,
            UpImageError => 0x0F,
            DeleteFailed => 0x10,
            ClearFailed => 0x11,
            WrongPassword => 0x13,
            NoValidImage => 0x15,
            FlashError => 0x18,
            InvalidRegister => 0x1A,
            BadRegisterConfig => 0x1B,
            LibraryFull => 0x1F,
            AddressError => 0x20,
            PasswordRequired => 0x21,
            Timeout => 0x26,
            SensorAbnormal => 0x29,
            Unsupported => 0xFC,
            HardwareError => 0xFD,
            CommandFailed => 0xFE,
            Unknown(b) => b,
        }
    }

    /// What the module's manual says the code means.
    pub fn meaning(self) -> &'static str {
        use Confirmation::*;
        match self {
            Ok => "ok",
            PacketReceiveError => "the module could not receive the packet",
            NoFinger => "no finger on the sensor",
            CaptureFailed => "the image could not be taken",
            TooDry => "the image is too dry or too faint",
            TooWet => "the image is too wet or too blurry",
            TooMessy => "the image is too messy to use",
            TooFewFeatures => "too few features: the image quality is poor",
            NoMatch => "fingers do not match",
            NotFound => "no matching template",
            CombineFailed => "characteristics could not be combined",
            PageOutOfRange => "page id beyond the library",
            TemplateInvalid => "template read error or invalid template",
            UpCharError => "template upload failed",
            CannotReceive => "the module cannot receive the following data packets",
            UpImageError => "image upload failed",
            DeleteFailed => "template delete failed",
            ClearFailed => "library clear failed",
            WrongPassword => "wrong password",
            NoValidImage => "no valid image in the buffer",
            FlashError => "flash write error",
            InvalidRegister => "invalid register number",
            BadRegisterConfig => "wrong register configuration",
            LibraryFull => "fingerprint library full",
            AddressError => "address error",
            PasswordRequired => "the password must be verified first",
            Timeout => "the module timed out",
            SensorAbnormal => "sensor hardware abnormal",
            Unsupported => "command not supported by this module",
            HardwareError => "hardware error",
            CommandFailed => "command failed",
            Unknown(_) => "undocumented confirmation code",
        }
    }

    /// Outcomes that mean "the operator should try again", not "something is broken".
    pub fn retry(self) -> Option<RetryReason> {
        use Confirmation::*;
        Some(match self {
            NoFinger => RetryReason::NoFinger,
            CaptureFailed => RetryReason::CaptureFailed,
            TooDry => RetryReason::TooDry,
            TooWet => RetryReason::TooWet,
            TooMessy | TooFewFeatures => RetryReason::PoorImage,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Confirmation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0x{:02X} ({})", self.code(), self.meaning())
    }
}

/// Why a capture must be retried, with what to tell the person at the sensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryReason {
    NoFinger,
    CaptureFailed,
    TooDry,
    TooWet,
    PoorImage,
}

impl RetryReason {
    /// The instruction for the applicant, as the operator says it.
    pub fn instruction(self) -> &'static str {
        match self {
            RetryReason::NoFinger => "place the finger flat on the sensor",
            RetryReason::CaptureFailed => "lift the finger and place it again",
            RetryReason::TooDry => {
                "the finger is too dry: breathe on it or moisten it slightly, then place it again"
            }
            RetryReason::TooWet => "the finger is too wet: wipe it dry, then place it again",
            RetryReason::PoorImage => "press the finger flat and still, centred on the sensor",
        }
    }
}

/// The 16-byte system parameter block (ReadSysPara), big-endian.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SysParams {
    pub status: u16,
    pub system_id: u16,
    pub library_capacity: u16,
    pub security_level: u16,
    pub address: u32,
    /// 0-3: 32, 64, 128, 256 bytes per data packet.
    pub packet_size_code: u16,
    /// Baud = 9600 x N.
    pub baud_multiplier: u16,
}

impl SysParams {
    /// Parses the block that follows the confirmation code.
    pub fn parse(b: &[u8]) -> Option<SysParams> {
        if b.len() < 16 {
            return None;
        }
        let u16_at = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
        Some(SysParams {
            status: u16_at(0),
            system_id: u16_at(2),
            library_capacity: u16_at(4),
            security_level: u16_at(6),
            address: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
            packet_size_code: u16_at(12),
            baud_multiplier: u16_at(14),
        })
    }

    /// Bytes per data packet.
    pub fn packet_size(&self) -> usize {
        packet_size_of(self.packet_size_code)
    }

    /// The line rate.
    pub fn baud(&self) -> u32 {
        9600 * u32::from(self.baud_multiplier)
    }
}

/// Bytes per data packet for a packet-size code (0-3).
pub fn packet_size_of(code: u16) -> usize {
    32 << code.min(3)
}

/// The packet-size code for a size in bytes.
pub fn packet_size_code(size: usize) -> Option<u8> {
    match size {
        32 => Some(0),
        64 => Some(1),
        128 => Some(2),
        256 => Some(3),
        _ => None,
    }
}

/// ReadProdInfo (R50x): module model, batch, serial, hardware version, sensor type and image size.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProdInfo {
    pub model: String,
    pub batch: String,
    pub serial: String,
    pub hardware_version: [u8; 2],
    pub sensor_type: String,
    pub image_width: u16,
    pub image_height: u16,
    pub template_size: u16,
    pub database_size: u16,
}

fn ascii(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .trim_end_matches(['\0', ' '])
        .to_owned()
}

impl ProdInfo {
    /// Parses the 46-byte block that follows the confirmation code.
    pub fn parse(b: &[u8]) -> Option<ProdInfo> {
        if b.len() < 46 {
            return None;
        }
        let u16_at = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
        Some(ProdInfo {
            model: ascii(&b[0..16]),
            batch: ascii(&b[16..20]),
            serial: ascii(&b[20..28]),
            hardware_version: [b[28], b[29]],
            sensor_type: ascii(&b[30..38]),
            image_width: u16_at(38),
            image_height: u16_at(40),
            template_size: u16_at(42),
            database_size: u16_at(44),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips() {
        for b in 0..=255u8 {
            assert_eq!(Confirmation::from_byte(b).code(), b);
        }
    }

    #[test]
    fn retry_outcomes_are_not_errors() {
        assert_eq!(Confirmation::NoFinger.retry(), Some(RetryReason::NoFinger));
        assert_eq!(Confirmation::TooFewFeatures.retry(), Some(RetryReason::PoorImage));
        assert_eq!(Confirmation::WrongPassword.retry(), None);
    }

    #[test]
    fn sys_params_block() {
        let b = [0, 0, 0, 9, 0, 200, 0, 3, 0xFF, 0xFF, 0xFF, 0xFF, 0, 2, 0, 6];
        let p = SysParams::parse(&b).unwrap();
        assert_eq!(
            (p.library_capacity, p.security_level, p.packet_size(), p.baud()),
            (200, 3, 128, 57600)
        );
    }
}
