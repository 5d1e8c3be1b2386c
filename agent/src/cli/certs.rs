//! `tamga certs init | request | install | status`: the station PKI.

use super::{Context, EXIT_INVALID};
use anyhow::{Context as _, bail};
use clap::Subcommand;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tamga_bundle::{devpki, pki};

#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Makes a development PKI in DIR: root-ca, station-ca, central and station certificates and keys (PEM, keys
    /// PKCS#8, mode 0600), and a development SBI device-provider PKI: device-ca.pem, device.pem, device.key
    /// (RSA-2048). Idempotent (adds what is missing of a set); never overwrites a key without --force.
    Init {
        #[arg(long)]
        dir: PathBuf,
        /// The station id (certificate common name).
        #[arg(long, default_value = "KZ-ALA-001-W01")]
        station: String,
        #[arg(long)]
        force: bool,
    },
    /// Production enrolment, step 1: makes the station key (station.key, 0600) and a certificate signing request
    /// (station.csr) for the station-issuing CA.
    Request {
        #[arg(long)]
        station: String,
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        force: bool,
    },
    /// Production enrolment, step 2: installs the issued certificate after checking that it matches station.key
    /// and chains to the CA (DIR/root-ca.pem through DIR/station-ca.pem, or --ca).
    Install {
        cert: PathBuf,
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        ca: Option<PathBuf>,
    },
    /// Certificates in DIR with their expiry; warns 30 days ahead; checks key file permissions. Exit 1 when
    /// something needs doing.
    Status {
        #[arg(long)]
        dir: PathBuf,
        /// Warn this many days before expiry.
        #[arg(long, default_value_t = 30)]
        warn_days: i64,
    },
}

/// Writes a file; keys are created with mode 0600.
fn write(path: &Path, text: &str, secret: bool) -> anyhow::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    if secret {
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    std::io::Write::write_all(&mut f, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    if secret {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// Reads a private key file, refusing it when group or others may read it ([`pki::read_private_key`]).
pub fn read_key(path: &Path) -> anyhow::Result<String> {
    Ok(pki::read_private_key(path)?)
}

const FILES: [&str; 8] = [
    "root-ca.pem",
    "root-ca.key",
    "station-ca.pem",
    "station-ca.key",
    "central.pem",
    "central.key",
    "station.pem",
    "station.key",
];

/// The development device-provider PKI for SBI device services (RSA-2048): the CA a station is given with
/// `--device-ca`, and a device certificate with its key (0600) for a simulated device service. The CA's key is not
/// kept: a new device certificate comes with a new PKI (`--force`).
const DEVICE_FILES: [&str; 3] = ["device-ca.pem", "device.pem", "device.key"];

/// The common name of the development device certificate.
const DEV_DEVICE_SERIAL: &str = "TAMGA-DEV-DEVICE-0001";

/// Writes a development PKI into `dir` (keys 0600).
pub fn write_dev_pki(dir: &Path, p: &devpki::DevPki) -> anyhow::Result<()> {
    for (name, text) in FILES.iter().zip(dev_pki_texts(p)) {
        write(&dir.join(name), text, name.ends_with(".key"))?;
    }
    Ok(())
}

/// The development PKI in `dir`, when all its files are there (keys checked as [`read_key`] does).
pub fn read_dev_pki(dir: &Path) -> anyhow::Result<Option<devpki::DevPki>> {
    if !FILES.iter().all(|f| dir.join(f).exists()) {
        return Ok(None);
    }
    let read = |name: &str| -> anyhow::Result<String> {
        let path = dir.join(name);
        if name.ends_with(".key") {
            read_key(&path)
        } else {
            std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
        }
    };
    Ok(Some(devpki::DevPki {
        root_ca: read("root-ca.pem")?,
        root_ca_key: read("root-ca.key")?,
        station_ca: read("station-ca.pem")?,
        station_ca_key: read("station-ca.key")?,
        central: read("central.pem")?,
        central_key: read("central.key")?,
        station: read("station.pem")?,
        station_key: read("station.key")?,
    }))
}

/// The texts of a development PKI, in the order of `FILES`.
fn dev_pki_texts(p: &devpki::DevPki) -> [&String; 8] {
    [
        &p.root_ca,
        &p.root_ca_key,
        &p.station_ca,
        &p.station_ca_key,
        &p.central,
        &p.central_key,
        &p.station,
        &p.station_key,
    ]
}

pub fn run(cmd: CertsCommand, _ctx: &Context) -> anyhow::Result<ExitCode> {
    match cmd {
        CertsCommand::Init { dir, station, force } => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let present = |files: &[&'static str]| -> Vec<&'static str> {
                files.iter().copied().filter(|f| dir.join(f).exists()).collect()
            };
            let (station_present, device_present) = (present(&FILES), present(&DEVICE_FILES));
            // A set already complete is kept (a folder made before the device-provider files gets them added).
            let station_done = station_present.len() == FILES.len() && !force;
            let device_done = device_present.len() == DEVICE_FILES.len() && !force;
            if station_done && device_done {
                outln!(
                    "development PKI already in {} (nothing changed; --force makes a new one)",
                    dir.display()
                );
                return Ok(ExitCode::SUCCESS);
            }
            if !force {
                let mut partial = Vec::new();
                if !station_done {
                    partial.extend(station_present);
                }
                if !device_done {
                    partial.extend(device_present);
                }
                if !partial.is_empty() {
                    bail!(
                        "{} already holds {}: refusing to overwrite keys; move them away or pass --force",
                        dir.display(),
                        partial.join(", ")
                    );
                }
            }
            if !station_done {
                let p = devpki::generate(&station)?;
                write_dev_pki(&dir, &p)?;
                outln!(
                    "development PKI for station {station} written to {}",
                    dir.display()
                );
            }
            if !device_done {
                let d = devpki::generate_device_provider(DEV_DEVICE_SERIAL)?;
                for (name, text) in DEVICE_FILES.iter().zip([&d.ca, &d.device, &d.device_key]) {
                    write(&dir.join(name), text, name.ends_with(".key"))?;
                }
                outln!(
                    "development device-provider PKI (device-ca.pem for --device-ca; device.pem, device.key for a \
                     simulated device service) written to {}",
                    dir.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        CertsCommand::Request { station, dir, force } => {
            std::fs::create_dir_all(&dir)?;
            let key_path = dir.join("station.key");
            if key_path.exists() && !force {
                bail!(
                    "{} exists: refusing to overwrite the station key; pass --force",
                    key_path.display()
                );
            }
            let (key, csr) = devpki::request(&station)?;
            write(&key_path, &key, true)?;
            write(&dir.join("station.csr"), &csr, false)?;
            outln!(
                "wrote {} and {}: send the CSR to the station-issuing CA",
                key_path.display(),
                dir.join("station.csr").display()
            );
            Ok(ExitCode::SUCCESS)
        }
        CertsCommand::Install { cert, dir, ca } => {
            let cert_pem =
                std::fs::read_to_string(&cert).with_context(|| format!("reading {}", cert.display()))?;
            let key_pem = read_key(&dir.join("station.key"))?;
            let root = std::fs::read_to_string(ca.unwrap_or_else(|| dir.join("root-ca.pem")))?;
            let station_ca = std::fs::read_to_string(dir.join("station-ca.pem")).unwrap_or_default();
            let chain_pem: Vec<&str> = if station_ca.is_empty() {
                vec![cert_pem.as_str()]
            } else {
                vec![cert_pem.as_str(), station_ca.as_str()]
            };
            let signer =
                tamga_bundle::seal::StationSigner::from_pem(&key_pem, &chain_pem).with_context(|| {
                    format!(
                        "{} does not match {}",
                        cert.display(),
                        dir.join("station.key").display()
                    )
                })?;
            let chain: Vec<Vec<u8>> = chain_pem
                .iter()
                .map(|p| pki::certs_from_pem(p))
                .collect::<Result<Vec<_>, _>>()?
                .concat();
            let root_der = pki::certs_from_pem(&root)?.remove(0);
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            pki::verify_station_chain(&chain, &root_der, now)?;
            write(&dir.join("station.pem"), &cert_pem, false)?;
            outln!("installed the certificate of station {}", signer.station_id());
            Ok(ExitCode::SUCCESS)
        }
        CertsCommand::Status { dir, warn_days } => {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let mut problems = 0;
            for name in FILES {
                let path = dir.join(name);
                if !path.exists() {
                    continue;
                }
                if name.ends_with(".key") {
                    match read_key(&path) {
                        Ok(_) => outln!("{name:<16} key, mode 0600"),
                        Err(e) => {
                            problems += 1;
                            outln!("{name:<16} PROBLEM: {e}");
                        }
                    }
                    continue;
                }
                let text = std::fs::read_to_string(&path)?;
                for der in pki::certs_from_pem(&text)? {
                    let info = pki::cert_info(&der)?;
                    let days = (info.not_after - now) / 86_400;
                    let verdict = if info.not_after <= now {
                        problems += 1;
                        "EXPIRED: renew it now".to_owned()
                    } else if days < warn_days {
                        problems += 1;
                        format!("expires in {days} days: renew it")
                    } else {
                        format!("valid for {days} more days")
                    };
                    outln!("{name:<16} {:<32} {verdict}", info.common_name);
                }
            }
            Ok(if problems == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_INVALID)
            })
        }
    }
}
