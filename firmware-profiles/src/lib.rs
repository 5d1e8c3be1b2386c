//! Device profiles: one TOML file per device model, its schema, and its validation.
//!
//! A profile is data. It tells the drivers how a model speaks (serial settings, framing, quirks) and tells the
//! technician CLI how to recognise it (USB VID/PID). Adding a device model of a known protocol means adding one
//! file to `firmware-profiles/profiles/`; `tests` parses and validates every shipped file.
//!
//! The schema is documented in `firmware-profiles/SCHEMA.md`. Every validation error carries the file, the line
//! and column, the key, and what to write instead.

mod camera;
mod fingerprint;
mod mrz_reader;
mod serial;

pub use camera::{CameraModel, LiveView};
pub use fingerprint::{Feature, FingerprintModel, SettingsApply};
pub use mrz_reader::{Bcc, LineSeparator, MrzFraming};
pub use serial::{FlowControl, Parity, SerialSettings, StopBits};

use serde::{Deserialize, Serialize};
use std::path::Path;
use toml::Spanned;

/// The schema version this build reads.
pub const SCHEMA_VERSION: u32 = 1;

/// What kind of device a profile describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceKind {
    MrzReader,
    FingerprintScanner,
    Camera,
}

/// The protocol driver that serves a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// Passport readers that send the MRZ as text over a serial line (RS-232, USB-CDC, USB-serial bridges).
    MrzSerial,
    /// ZFM / R30x / AS608 / R50x fingerprint modules (packet protocol over UART).
    Zfm,
    /// Still cameras speaking PTP (ISO 15740) over USB.
    PtpUsb,
}

/// How to recognise the device on USB (the reader itself, or the USB-serial bridge inside it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsbMatch {
    pub vid: u16,
    pub pid: u16,
}

/// A validated device profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Profile {
    pub name: String,
    pub kind: DeviceKind,
    pub protocol: Protocol,
    pub vendor: String,
    pub model: String,
    pub description: String,
    pub usb: Vec<UsbMatch>,
    pub serial: Option<SerialSettings>,
    pub mrz_framing: Option<MrzFraming>,
    pub fingerprint: Option<FingerprintModel>,
    pub camera: Option<CameraModel>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    schema: Spanned<u32>,
    name: Spanned<String>,
    kind: DeviceKind,
    protocol: Spanned<Protocol>,
    vendor: String,
    model: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    usb: Vec<Spanned<UsbMatch>>,
    serial: Option<Spanned<serial::RawSerial>>,
    mrz_framing: Option<Spanned<mrz_reader::RawFraming>>,
    fingerprint: Option<Spanned<fingerprint::RawFingerprint>>,
    camera: Option<Spanned<camera::RawCamera>>,
}

/// A profile file that cannot be used, with where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// The file is not a valid profile.
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// The file cannot be read.
    #[error("{file}: cannot read the profile: {reason}")]
    Io { file: String, reason: String },
    /// No profile of that name.
    #[error("no profile named `{name}`; known profiles: {known}. `tamga profiles list` shows them")]
    NotFound { name: String, known: String },
}

/// A semantic problem found while validating, located by a byte span of the source.
#[derive(Debug)]
pub(crate) struct Problem {
    pub span: std::ops::Range<usize>,
    pub message: String,
}

impl Problem {
    pub(crate) fn new(span: std::ops::Range<usize>, message: impl Into<String>) -> Self {
        Problem {
            span,
            message: message.into(),
        }
    }
}

/// 1-based line and column of a byte offset in `src`, for errors that point into a TOML file.
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(offset, |nl| offset - nl - 1) + 1;
    (line, column)
}

impl Profile {
    /// Parses and validates a profile from TOML text; `file` names it in errors.
    pub fn parse(file: &str, src: &str) -> Result<Profile, ProfileError> {
        let invalid = |span: Option<std::ops::Range<usize>>, message: String| {
            let (line, column) = span.map_or((1, 1), |s| line_col(src, s.start));
            ProfileError::Invalid {
                file: file.to_owned(),
                line,
                column,
                message,
            }
        };
        let raw: RawProfile =
            toml::from_str(src).map_err(|e| invalid(e.span(), e.message().trim().to_owned()))?;
        Self::validate(raw).map_err(|p| invalid(Some(p.span), p.message))
    }

    /// Reads, parses and validates a profile file.
    pub fn load(path: &Path) -> Result<Profile, ProfileError> {
        let file = path.display().to_string();
        let src = std::fs::read_to_string(path).map_err(|e| ProfileError::Io {
            file: file.clone(),
            reason: e.to_string(),
        })?;
        Self::parse(&file, &src)
    }

    fn validate(raw: RawProfile) -> Result<Profile, Problem> {
        if *raw.schema.get_ref() != SCHEMA_VERSION {
            return Err(Problem::new(
                raw.schema.span(),
                format!(
                    "key `schema`: version {} is not supported by this build; write `schema = {SCHEMA_VERSION}`",
                    raw.schema.get_ref()
                ),
            ));
        }
        let name = raw.name.get_ref();
        let name_ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !name.starts_with('-');
        if !name_ok {
            return Err(Problem::new(
                raw.name.span(),
                format!("key `name`: `{name}` must be 1-64 characters of a-z, 0-9 and `-` (the file's stem)"),
            ));
        }
        for u in &raw.usb {
            if u.get_ref().vid == 0 {
                return Err(Problem::new(
                    u.span(),
                    "key `usb.vid`: 0 is not a USB vendor id; write the reader's VID, for example `vid = 0x0403`",
                ));
            }
        }
        let protocol = *raw.protocol.get_ref();
        let (serial, mrz_framing, fingerprint, camera) = match protocol {
            Protocol::MrzSerial => {
                if raw.kind != DeviceKind::MrzReader {
                    return Err(Problem::new(
                        raw.protocol.span(),
                        "key `protocol`: `mrz-serial` serves only `kind = \"mrz-reader\"`",
                    ));
                }
                let Some(s) = raw.serial else {
                    return Err(Problem::new(
                        raw.protocol.span(),
                        "missing table `[serial]`: an mrz-serial reader needs its line settings (baud, data_bits, parity, stop_bits)",
                    ));
                };
                let Some(f) = raw.mrz_framing else {
                    return Err(Problem::new(
                        raw.protocol.span(),
                        "missing table `[mrz_framing]`: say how the reader frames a document (see SCHEMA.md)",
                    ));
                };
                (
                    Some(serial::validate(s)?),
                    Some(mrz_reader::validate(f)?),
                    None,
                    None,
                )
            }
            Protocol::Zfm => {
                if raw.kind != DeviceKind::FingerprintScanner {
                    return Err(Problem::new(
                        raw.protocol.span(),
                        "key `protocol`: `zfm` serves only `kind = \"fingerprint-scanner\"`",
                    ));
                }
                let Some(s) = raw.serial else {
                    return Err(Problem::new(
                        raw.protocol.span(),
                        "missing table `[serial]`: a zfm module needs its factory line settings (baud 57600, 8N1)",
                    ));
                };
                let Some(f) = raw.fingerprint else {
                    return Err(Problem::new(
                        raw.protocol.span(),
                        "missing table `[fingerprint]`: image size, legal baud rates and packet sizes (see SCHEMA.md)",
                    ));
                };
                let baud = s.get_ref().baud_spanned();
                (
                    Some(serial::validate(s)?),
                    None,
                    Some(fingerprint::validate(f, Some(baud))?),
                    None,
                )
            }
            Protocol::PtpUsb => {
                if raw.kind != DeviceKind::Camera {
                    return Err(Problem::new(
                        raw.protocol.span(),
                        "key `protocol`: `ptp-usb` serves only `kind = \"camera\"`",
                    ));
                }
                let Some(c) = raw.camera else {
                    return Err(Problem::new(
                        raw.protocol.span(),
                        "missing table `[camera]`: the camera's capture quirks (an empty table means none)",
                    ));
                };
                (None, None, None, Some(camera::validate(c)?))
            }
        };
        Ok(Profile {
            name: raw.name.into_inner(),
            kind: raw.kind,
            protocol,
            vendor: raw.vendor,
            model: raw.model,
            description: raw.description,
            usb: raw.usb.into_iter().map(Spanned::into_inner).collect(),
            serial,
            mrz_framing,
            fingerprint,
            camera,
        })
    }

    /// Whether the profile claims a USB device with this VID/PID.
    pub fn matches_usb(&self, vid: u16, pid: u16) -> bool {
        self.usb.iter().any(|u| u.vid == vid && u.pid == pid)
    }
}

macro_rules! builtin {
    ($($name:literal),* $(,)?) => {
        &[$((concat!($name, ".toml"), include_str!(concat!("../profiles/", $name, ".toml")))),*]
    };
}

/// The profiles shipped with Tamga, as (file name, TOML text).
pub const BUILTIN: &[(&str, &str)] = builtin![
    "3m-rte6701",
    "access-is-ocr315",
    "desko-penta-serial",
    "generic-mrz-raw",
    "generic-ptp-camera",
    "grow-r503",
    "hlk-as608",
    "leica-m9",
    "nikon-coolpix-5700",
    "nikon-coolpix-5900",
    "zhiantec-r307",
];

/// A set of profiles: the built-in ones, optionally overridden or extended from a directory.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    profiles: Vec<Profile>,
}

impl Catalog {
    /// The built-in profiles. They are validated by the test suite, so an error here is a build defect.
    pub fn builtin() -> Result<Catalog, ProfileError> {
        let mut profiles = BUILTIN
            .iter()
            .map(|(file, src)| Profile::parse(&format!("firmware-profiles/profiles/{file}"), src))
            .collect::<Result<Vec<_>, _>>()?;
        profiles.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Catalog { profiles })
    }

    /// Built-in profiles plus every `*.toml` in `dir`; a file in `dir` replaces a built-in of the same name.
    pub fn with_dir(dir: &Path) -> Result<Catalog, ProfileError> {
        let mut cat = Self::builtin()?;
        let io = |e: std::io::Error| ProfileError::Io {
            file: dir.display().to_string(),
            reason: e.to_string(),
        };
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        for p in paths {
            let profile = Profile::load(&p)?;
            cat.profiles.retain(|q| q.name != profile.name);
            cat.profiles.push(profile);
        }
        cat.profiles.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(cat)
    }

    /// All profiles, sorted by name.
    pub fn all(&self) -> &[Profile] {
        &self.profiles
    }

    /// The profile named `name`.
    pub fn get(&self, name: &str) -> Result<&Profile, ProfileError> {
        self.profiles
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| ProfileError::NotFound {
                name: name.to_owned(),
                known: self
                    .profiles
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Profiles that claim a USB device with this VID/PID.
    pub fn matching_usb(&self, vid: u16, pid: u16) -> impl Iterator<Item = &Profile> {
        self.profiles.iter().filter(move |p| p.matches_usb(vid, pid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_profile_is_valid_and_named_after_its_file() {
        for (file, src) in BUILTIN {
            let p = Profile::parse(file, src).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(format!("{}.toml", p.name), *file);
        }
        assert_eq!(Catalog::builtin().unwrap().all().len(), BUILTIN.len());
    }

    #[test]
    fn every_file_in_the_profiles_directory_is_built_in() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|f| f.ends_with(".toml"))
            .collect();
        files.sort();
        let builtin: Vec<String> = BUILTIN.iter().map(|(f, _)| (*f).to_owned()).collect();
        assert_eq!(files, builtin, "add new profile files to BUILTIN (sorted)");
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("a\nbc\n", 0), (1, 1));
        assert_eq!(line_col("a\nbc\n", 3), (2, 2));
    }
}
