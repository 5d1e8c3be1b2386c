//! `tamga devices scan`: serial ports present, with USB identity and the profiles that claim them.

use super::Context;
use clap::Subcommand;
use serde::Serialize;
use std::process::ExitCode;
use tamga_profiles::Catalog;
use tokio_serial::{SerialPortInfo, SerialPortType};

#[derive(Debug, Subcommand)]
pub enum DevicesCommand {
    /// Lists serial ports (with USB VID/PID where the port is on USB) and the matching profiles.
    Scan {
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
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
    let DevicesCommand::Scan { json } = cmd;
    let catalog = ctx.catalog()?;
    let ports = tokio_serial::available_ports().map_err(|e| {
        anyhow::anyhow!("cannot list serial ports: {e}; on Linux this needs udev (is /run/udev present?)")
    })?;
    let reports = report(&ports, &catalog);
    if json {
        outln!("{}", serde_json::to_string_pretty(&reports)?);
        return Ok(ExitCode::SUCCESS);
    }
    if reports.is_empty() {
        outln!(
            "no serial ports found. Plug the reader in; USB readers appear as /dev/ttyUSB* or /dev/ttyACM*."
        );
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "{:<28} {:<9} {:<10} {:<24} PROFILES",
        "PORT",
        "BUS",
        "VID:PID",
        "PRODUCT"
    );
    for r in &reports {
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
            "{:<28} {:<9} {:<10} {:<24} {profiles}",
            r.port,
            r.bus,
            id,
            r.product.as_deref().unwrap_or("-")
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_serial::UsbPortInfo;

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
