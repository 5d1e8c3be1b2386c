//! `tamga devices scan`: serial ports present, with USB identity and the profiles that claim them.

use super::Context;
use clap::Subcommand;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use tamga_drivers::usb::discovery::{self, UsbDeviceInfo};
use tamga_drivers::zfm::{FingerprintScanner, ScannerError, Settings, ZfmError};
use tamga_profiles::Catalog;
use tokio_serial::{SerialPortInfo, SerialPortType};

#[derive(Debug, Subcommand)]
pub enum DevicesCommand {
    /// Lists serial ports (with USB VID/PID where the port is on USB) and the matching profiles, USB devices, and
    /// the SBI device services (vendors' slap scanners and cameras) answering on 127.0.0.1.
    Scan {
        /// One JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// The loopback ports asked for SBI device services, FROM-TO.
        #[arg(long, default_value = "4501-4600", value_parser = parse_port_range)]
        sbi_ports: std::ops::RangeInclusive<u16>,
    },
    /// Fingerprint module: system parameters, product information, firmware. Finds the baud rate if the
    /// profile's rate gets no answer.
    Info {
        #[arg(long)]
        profile: String,
        #[arg(long)]
        port: PathBuf,
        /// Human-readable lines instead of JSON.
        #[arg(long)]
        text: bool,
    },
    /// Fingerprint module: changes the baud rate and/or security level (refuses values the model does not allow).
    Configure {
        #[arg(long)]
        profile: String,
        #[arg(long)]
        port: PathBuf,
        #[arg(long)]
        baud: Option<u32>,
        #[arg(long)]
        security: Option<u8>,
        /// Data packet size in bytes (32, 64, 128, 256): larger packets upload images faster.
        #[arg(long)]
        packet_size: Option<usize>,
    },
}

/// One port as the scan reports it.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct PortReport {
    pub port: String,
    pub bus: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    pub profiles: Vec<String>,
}

pub fn report(ports: &[SerialPortInfo], catalog: &Catalog) -> Vec<PortReport> {
    ports
        .iter()
        .map(|p| match &p.port_type {
            SerialPortType::UsbPort(u) => PortReport {
                port: p.port_name.clone(),
                bus: "usb",
                vid: Some(format!("{:04x}", u.vid)),
                pid: Some(format!("{:04x}", u.pid)),
                serial_number: u.serial_number.clone(),
                product: u.product.clone().or_else(|| u.manufacturer.clone()),
                profiles: catalog
                    .matching_usb(u.vid, u.pid)
                    .map(|q| q.name.clone())
                    .collect(),
            },
            other => PortReport {
                port: p.port_name.clone(),
                bus: match other {
                    SerialPortType::PciPort => "pci",
                    SerialPortType::BluetoothPort => "bluetooth",
                    _ => "unknown",
                },
                vid: None,
                pid: None,
                serial_number: None,
                product: None,
                profiles: Vec::new(),
            },
        })
        .collect()
}

pub fn run(cmd: DevicesCommand, ctx: &Context) -> anyhow::Result<ExitCode> {
    match cmd {
        DevicesCommand::Scan { json, sbi_ports } => scan(json, sbi_ports, ctx),
        DevicesCommand::Info { profile, port, text } => info(&profile, &port, text, ctx),
        DevicesCommand::Configure {
            profile,
            port,
            baud,
            security,
            packet_size,
        } => configure(
            &profile,
            &port,
            Settings {
                baud,
                security,
                packet_size,
            },
            ctx,
        ),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Connects at the profile's rate, or discovers the rate when the module does not answer there.
pub async fn connect_scanner(scanner: &mut FingerprintScanner) -> Result<(), ScannerError> {
    match scanner.connect(Duration::from_secs(2)).await {
        Ok(()) => Ok(()),
        Err(ScannerError::Disconnected { .. }) => {
            let profile_baud = scanner.baud();
            let found = scanner.discover_baud().await?;
            eprintln!(
                "tamga: the module answers at {found} baud, not at the profile's {profile_baud}; \
                 set `serial.baud = {found}` in a profile override (--profiles-dir)"
            );
            Ok(())
        }
        Err(e) => Err(e),
    }
}

fn info(profile: &str, port: &Path, text: bool, ctx: &Context) -> anyhow::Result<ExitCode> {
    let catalog = ctx.catalog()?;
    let profile = catalog.get(profile)?;
    let mut scanner = FingerprintScanner::new(profile, port)?;
    let info = runtime()?.block_on(async {
        connect_scanner(&mut scanner).await?;
        scanner.info().await
    });
    let info = match info {
        Ok(i) => i,
        Err(e) => {
            eprintln!("tamga: {e}");
            return Ok(ExitCode::from(super::EXIT_DEVICE));
        }
    };
    if text {
        outln!("port          {}", info.port);
        outln!("baud          {}", info.baud);
        outln!("packet size   {} bytes", info.packet_size);
        outln!("security      {}", info.system.security_level);
        outln!("capacity      {} templates", info.system.library_capacity);
        outln!("address       0x{:08X}", info.system.address);
        if let Some(p) = &info.product {
            outln!(
                "model         {} (sensor {}, {}x{})",
                p.model,
                p.sensor_type,
                p.image_width,
                p.image_height
            );
            outln!("serial        {}", p.serial);
        }
        if let Some(f) = &info.firmware {
            outln!("firmware      {f}");
        }
    } else {
        outln!("{}", serde_json::to_string_pretty(&info)?);
    }
    Ok(ExitCode::SUCCESS)
}

fn configure(profile: &str, port: &Path, change: Settings, ctx: &Context) -> anyhow::Result<ExitCode> {
    if change == Settings::default() {
        anyhow::bail!("nothing to configure: give --baud, --security and/or --packet-size");
    }
    let catalog = ctx.catalog()?;
    let profile = catalog.get(profile)?;
    let mut scanner = FingerprintScanner::new(profile, port)?;
    let result = runtime()?.block_on(async {
        connect_scanner(&mut scanner).await?;
        scanner.configure(&change).await
    });
    match result {
        Ok(()) => {
            let later = scanner.model().settings_apply == tamga_profiles::SettingsApply::PowerCycle;
            outln!(
                "configured{}{}{}{}",
                change.baud.map(|b| format!(" baud={b}")).unwrap_or_default(),
                change
                    .security
                    .map(|s| format!(" security={s}"))
                    .unwrap_or_default(),
                change
                    .packet_size
                    .map(|p| format!(" packet_size={p}"))
                    .unwrap_or_default(),
                if later {
                    "; the module applies it after a power cycle: unplug it and plug it back"
                } else {
                    ""
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ ScannerError::Module(ZfmError::NotAllowed { .. })) => {
            eprintln!("tamga: {e}");
            Ok(ExitCode::from(super::EXIT_INVALID))
        }
        Err(e) => {
            eprintln!("tamga: {e}");
            Ok(ExitCode::from(super::EXIT_DEVICE))
        }
    }
}

/// A USB device as the scan reports it, with the camera profiles that claim it.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct UsbReport {
    pub device: String,
    pub vid: String,
    pub pid: String,
    pub still_image: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    pub profiles: Vec<String>,
}

/// Matches USB devices to profiles: by VID/PID, and any Still Image device to `generic-ptp-camera`.
pub fn usb_report(devices: &[UsbDeviceInfo], catalog: &Catalog) -> Vec<UsbReport> {
    devices
        .iter()
        .map(|d| {
            let mut profiles: Vec<String> = catalog
                .matching_usb(d.vid, d.pid)
                .map(|p| p.name.clone())
                .collect();
            if d.still_image && profiles.is_empty() && catalog.get("generic-ptp-camera").is_ok() {
                profiles.push("generic-ptp-camera".into());
            }
            UsbReport {
                device: format!("{:03}-{:03}", d.bus, d.address),
                vid: format!("{:04x}", d.vid),
                pid: format!("{:04x}", d.pid),
                still_image: d.still_image,
                product: d.product.clone(),
                serial: d.serial.clone(),
                profiles,
            }
        })
        .collect()
}

#[derive(Serialize)]
struct ScanReport {
    serial: Vec<PortReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    serial_error: Option<String>,
    usb: Vec<UsbReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usb_error: Option<String>,
    sbi: Vec<SbiReport>,
}

/// One device of an SBI device service, as its discovery answer announces it (unsigned: a capture verifies the
/// device's signatures; a listing only names what answers).
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct SbiReport {
    pub port: u16,
    pub make: String,
    pub model: String,
    pub serial: String,
    /// "Finger Slap", "Face Full face", ...
    #[serde(rename = "type")]
    pub type_: String,
    /// Ready, Busy, Not Ready, Not Registered.
    pub status: String,
    /// L0 / L1 (SBI 0.9.5), SBI 1.0 / SBI 2.0.
    pub certification: String,
}

/// `FROM-TO` (or one port).
pub fn parse_port_range(s: &str) -> Result<std::ops::RangeInclusive<u16>, String> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: u16 = a.trim().parse().map_err(|_| format!("{a:?} is not a port"))?;
    let b: u16 = b.trim().parse().map_err(|_| format!("{b:?} is not a port"))?;
    if a == 0 || a > b {
        return Err(format!("{s:?}: give FROM-TO with 0 < FROM <= TO"));
    }
    Ok(a..=b)
}

fn sbi_report(found: &[tamga_drivers::sbi::FoundService]) -> Vec<SbiReport> {
    found
        .iter()
        .flat_map(|s| s.devices.iter())
        .map(|d| {
            let id = d.digital_id.as_ref();
            let field = |f: fn(&tamga_drivers::sbi::wire::DigitalIdPayload) -> &String| {
                id.map(|i| f(i).clone()).unwrap_or_default()
            };
            SbiReport {
                port: d.port,
                make: field(|i| &i.make),
                model: field(|i| &i.model),
                serial: field(|i| &i.serial_no),
                type_: id
                    .map(|i| format!("{} {}", i.type_, i.device_sub_type).trim().to_owned())
                    .unwrap_or_default(),
                status: d.status.clone(),
                certification: d.certification.clone(),
            }
        })
        .collect()
}

/// The serial ports, from sysfs (`/sys/class/tty`: serialport's enumeration without libudev, so the agent needs
/// no libudev). serialport panics when that folder is missing (a container, an emulated test bed), so it is looked
/// for first and its absence is an error that says so.
fn serial_ports() -> Result<Vec<tokio_serial::SerialPortInfo>, String> {
    let tty = std::path::Path::new("/sys/class/tty");
    if !tty.is_dir() {
        return Err(format!("{} is missing: is sysfs mounted?", tty.display()));
    }
    tokio_serial::available_ports().map_err(|e| format!("reading {}: {e}", tty.display()))
}

fn scan(json: bool, sbi_ports: std::ops::RangeInclusive<u16>, ctx: &Context) -> anyhow::Result<ExitCode> {
    let catalog = ctx.catalog()?;
    // A machine without sysfs's tty class still gets its USB devices listed, and the other way round.
    let (serial, serial_error) = match serial_ports() {
        Ok(ports) => (report(&ports, &catalog), None),
        Err(e) => (Vec::new(), Some(e)),
    };
    // A machine without a USB bus (or without libusb access) still gets its serial ports listed.
    let (usb, usb_error) = match discovery::list() {
        Ok(devs) => (usb_report(&devs, &catalog), None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let sbi_range = format!("{}-{}", sbi_ports.start(), sbi_ports.end());
    let found = runtime()?.block_on(tamga_drivers::sbi::discover(
        sbi_ports,
        &tamga_drivers::sbi::Timeouts::default(),
    ));
    let sbi = sbi_report(&found);
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&ScanReport {
                serial,
                serial_error,
                usb,
                usb_error,
                sbi
            })?
        );
        return Ok(ExitCode::SUCCESS);
    }
    outln!("serial ports:");
    if let Some(e) = &serial_error {
        outln!("  cannot list: {e}");
    } else if serial.is_empty() {
        outln!("  none. Plug the reader in; USB readers appear as /dev/ttyUSB* or /dev/ttyACM*.");
    }
    for r in &serial {
        let id = match (&r.vid, &r.pid) {
            (Some(v), Some(p)) => format!("{v}:{p}"),
            _ => "-".into(),
        };
        let profiles = if r.profiles.is_empty() {
            "-".to_owned()
        } else {
            r.profiles.join(", ")
        };
        outln!(
            "  {:<28} {:<9} {:<10} {:<24} {profiles}",
            r.port,
            r.bus,
            id,
            r.product.as_deref().unwrap_or("-")
        );
    }
    outln!("USB devices:");
    if let Some(e) = &usb_error {
        outln!("  cannot list: {e}");
    } else if usb.is_empty() {
        outln!("  none");
    }
    for u in &usb {
        let profiles = if u.profiles.is_empty() {
            "-".to_owned()
        } else {
            u.profiles.join(", ")
        };
        outln!(
            "  {:<8} {}:{} {:<12} {:<24} {profiles}",
            u.device,
            u.vid,
            u.pid,
            if u.still_image { "still-image" } else { "" },
            u.product.as_deref().unwrap_or("-")
        );
    }
    outln!("SBI device services (127.0.0.1:{sbi_range}):");
    if sbi.is_empty() {
        outln!("  none. Start the vendor's device service (it listens on a port in {sbi_range}).");
    }
    for d in &sbi {
        outln!(
            "  {:<6} {:<12} {:<16} {:<16} {:<14} {:<15} {}",
            d.port,
            d.make,
            d.model,
            d.serial,
            d.type_,
            d.status,
            d.certification
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_serial::UsbPortInfo;

    #[test]
    fn sbi_port_ranges_parse() {
        assert_eq!(parse_port_range("4501-4600"), Ok(4501..=4600));
        assert_eq!(parse_port_range("4510"), Ok(4510..=4510));
        assert!(parse_port_range("4600-4501").is_err());
        assert!(parse_port_range("0-10").is_err());
        assert!(parse_port_range("a-b").is_err());
    }

    #[test]
    fn usb_cameras_are_matched_by_id_or_by_class() {
        let catalog = Catalog::builtin().unwrap();
        let dev = |vid, pid, still_image| UsbDeviceInfo {
            bus: 1,
            address: 4,
            vid,
            pid,
            still_image,
            product: None,
            serial: None,
        };
        let r = usb_report(
            &[
                dev(0x04b0, 0x010d, true),
                dev(0x1234, 0x5678, true),
                dev(0x8086, 0x0001, false),
            ],
            &catalog,
        );
        assert_eq!(r[0].profiles, vec!["nikon-coolpix-5700".to_owned()]);
        assert_eq!(r[1].profiles, vec!["generic-ptp-camera".to_owned()]);
        assert!(r[2].profiles.is_empty());
        assert_eq!(r[0].device, "001-004");
    }

    #[test]
    fn usb_ports_are_matched_to_profiles_by_vid_pid() {
        let dir = tempfile::tempdir().unwrap();
        let src = tamga_profiles::BUILTIN
            .iter()
            .find(|(f, _)| *f == "access-is-ocr315.toml")
            .unwrap()
            .1;
        let src = src.replace("[serial]", "[[usb]]\nvid = 0x0403\npid = 0x6001\n\n[serial]");
        std::fs::write(dir.path().join("access-is-ocr315.toml"), src).unwrap();
        let catalog = Catalog::with_dir(dir.path()).unwrap();
        let ports = vec![
            SerialPortInfo {
                port_name: "/dev/ttyUSB0".into(),
                port_type: SerialPortType::UsbPort(UsbPortInfo {
                    vid: 0x0403,
                    pid: 0x6001,
                    serial_number: Some("A1".into()),
                    manufacturer: Some("FTDI".into()),
                    product: None,
                }),
            },
            SerialPortInfo {
                port_name: "/dev/ttyS0".into(),
                port_type: SerialPortType::Unknown,
            },
        ];
        let r = report(&ports, &catalog);
        assert_eq!(r[0].profiles, vec!["access-is-ocr315".to_owned()]);
        assert_eq!(r[0].vid.as_deref(), Some("0403"));
        assert_eq!(r[0].product.as_deref(), Some("FTDI"));
        assert!(r[1].profiles.is_empty());
        assert_eq!(r[1].bus, "unknown");
    }
}
