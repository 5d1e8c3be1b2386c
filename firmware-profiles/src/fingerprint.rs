//! `[fingerprint]`: what a ZFM-family fingerprint module can do and what it allows.

use crate::Problem;
use serde::{Deserialize, Serialize};
use toml::Spanned;

/// When SetSysPara changes take effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SettingsApply {
    /// At once, after the acknowledge (which is still sent under the old settings).
    Immediate,
    /// Only after the module is powered off and on again.
    PowerCycle,
}

/// Optional commands a model supports, beyond the core set every ZFM module has (VfyPwd, GenImg, UpImage,
/// ReadSysPara, SetSysPara).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Feature {
    /// HandShake (0x40).
    Handshake,
    /// ReadProdInfo (0x3C).
    ProdInfo,
    /// GetFwVer (0x3A).
    FirmwareVersion,
    /// GetImageEx (0x28): capture with an image quality verdict.
    GetImageEx,
    /// AuraLedConfig (0x35).
    AuraLed,
    /// Cancel (0x30).
    Cancel,
    /// CheckSensor (0x36).
    CheckSensor,
    /// SoftRst (0x3D).
    SoftReset,
}

/// Validated model description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FingerprintModel {
    pub image_width: u16,
    pub image_height: u16,
    pub resolution_ppi: u16,
    /// Legal N for baud = 9600 x N.
    pub baud_multipliers: Vec<u8>,
    /// Legal data packet sizes in bytes (32, 64, 128, 256).
    pub packet_sizes: Vec<u16>,
    /// Factory packet size.
    pub default_packet_size: u16,
    pub security_levels: Vec<u8>,
    pub address: u32,
    pub password: u32,
    /// Sends 0x55 when ready after power-up and after SoftRst.
    pub ready_byte: bool,
    pub power_up_delay_ms: u32,
    pub settings_apply: SettingsApply,
    pub features: Vec<Feature>,
}

impl FingerprintModel {
    pub fn has(&self, f: Feature) -> bool {
        self.features.contains(&f)
    }

    /// Legal baud rates, in ascending order.
    pub fn bauds(&self) -> Vec<u32> {
        self.baud_multipliers
            .iter()
            .map(|&n| 9600 * u32::from(n))
            .collect()
    }

    /// Bytes of one image as sent over UART (4 bits per pixel).
    pub fn image_bytes(&self) -> usize {
        usize::from(self.image_width) * usize::from(self.image_height) / 2
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFingerprint {
    image_width: Spanned<u16>,
    image_height: Spanned<u16>,
    resolution_ppi: Spanned<u16>,
    baud_multipliers: Spanned<Vec<u8>>,
    packet_sizes: Spanned<Vec<u16>>,
    default_packet_size: Spanned<u16>,
    security_levels: Spanned<Vec<u8>>,
    #[serde(default = "default_address")]
    address: u32,
    #[serde(default)]
    password: u32,
    #[serde(default)]
    ready_byte: bool,
    power_up_delay_ms: Spanned<u32>,
    settings_apply: SettingsApply,
    #[serde(default)]
    features: Vec<Feature>,
}

fn default_address() -> u32 {
    0xFFFF_FFFF
}

pub(crate) fn validate(
    raw: Spanned<RawFingerprint>,
    serial_baud: Option<Spanned<u32>>,
) -> Result<FingerprintModel, Problem> {
    let r = raw.into_inner();
    for (key, v) in [("image_width", &r.image_width), ("image_height", &r.image_height)] {
        let n = *v.get_ref();
        if !(64..=1024).contains(&n) || n % 2 != 0 {
            return Err(Problem::new(
                v.span(),
                format!(
                    "key `fingerprint.{key}`: {n} must be even and within 64..=1024 pixels (two pixels per byte)"
                ),
            ));
        }
    }
    let ppi = *r.resolution_ppi.get_ref();
    if !(250..=1000).contains(&ppi) {
        return Err(Problem::new(
            r.resolution_ppi.span(),
            format!("key `fingerprint.resolution_ppi`: {ppi} is outside 250..=1000"),
        ));
    }
    let ns = r.baud_multipliers.get_ref();
    if ns.is_empty() || ns.iter().any(|&n| !(1..=12).contains(&n)) || !ns.windows(2).all(|w| w[0] < w[1]) {
        return Err(Problem::new(
            r.baud_multipliers.span(),
            "key `fingerprint.baud_multipliers`: ascending values N in 1..=12 (baud = 9600 x N), for example [1, 2, 4, 6, 12]",
        ));
    }
    if let Some(b) = serial_baud {
        let baud = *b.get_ref();
        if baud % 9600 != 0 || !ns.contains(&u8::try_from(baud / 9600).unwrap_or(0)) {
            return Err(Problem::new(
                b.span(),
                format!(
                    "key `serial.baud`: {baud} is not 9600 x N for an N in `fingerprint.baud_multipliers`"
                ),
            ));
        }
    }
    let sizes = r.packet_sizes.get_ref();
    if sizes.is_empty() || sizes.iter().any(|s| ![32, 64, 128, 256].contains(s)) {
        return Err(Problem::new(
            r.packet_sizes.span(),
            "key `fingerprint.packet_sizes`: values among 32, 64, 128, 256",
        ));
    }
    if !sizes.contains(r.default_packet_size.get_ref()) {
        return Err(Problem::new(
            r.default_packet_size.span(),
            "key `fingerprint.default_packet_size`: must be one of `packet_sizes`",
        ));
    }
    let levels = r.security_levels.get_ref();
    if levels.is_empty() || levels.iter().any(|l| !(1..=5).contains(l)) {
        return Err(Problem::new(
            r.security_levels.span(),
            "key `fingerprint.security_levels`: values in 1..=5",
        ));
    }
    let delay = *r.power_up_delay_ms.get_ref();
    if delay > 5000 {
        return Err(Problem::new(
            r.power_up_delay_ms.span(),
            format!("key `fingerprint.power_up_delay_ms`: {delay} exceeds 5000"),
        ));
    }
    let mut sizes = sizes.clone();
    sizes.sort_unstable();
    Ok(FingerprintModel {
        image_width: r.image_width.into_inner(),
        image_height: r.image_height.into_inner(),
        resolution_ppi: ppi,
        baud_multipliers: r.baud_multipliers.into_inner(),
        packet_sizes: sizes,
        default_packet_size: r.default_packet_size.into_inner(),
        security_levels: r.security_levels.into_inner(),
        address: r.address,
        password: r.password,
        ready_byte: r.ready_byte,
        power_up_delay_ms: delay,
        settings_apply: r.settings_apply,
        features: r.features,
    })
}
