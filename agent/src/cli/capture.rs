//! `tamga capture finger`: one finger from a ZFM module, checked for quality, written as a PNG; `tamga capture
//! slap`: one slap from a vendor's MOSIP SBI device service, verified, decoded, checked, written as PNGs.

use super::{Context, EXIT_DEVICE, EXIT_ERROR, EXIT_INVALID};
use crate::capture::finger_record::{self, GreyFinger};
use crate::capture::fingers::{ExceptionReason, FingerPosition, Next, Policy, TenFingers};
use crate::capture::png_out;
use anyhow::Context as _;
use clap::Subcommand;
use serde::Serialize;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tamga_drivers::ptp::device::{Opener, PhotoCamera};
use tamga_drivers::sbi::verify::TrustStore;
use tamga_drivers::sbi::{
    DeviceInfo, Finger, SbiClient, Slap, SlapCapture, SlapRequest, Timeouts, Verifier, discover,
};
use tamga_drivers::usb::rusb_transport::RusbTransport;
use tamga_drivers::usb::{UsbSelector, UsbTransport};
use tamga_drivers::zfm::{CaptureOutcome, FingerprintScanner, ScannerError};
use tamga_quality::fingerprint::{Quality, assess};
use time::OffsetDateTime;

#[derive(Debug, Subcommand)]
pub enum CaptureCommand {
    /// Waits for a finger, uploads the image (showing progress), writes an 8-bit grey PNG with its resolution,
    /// and prints the quality report. Retries per the policy (best of N). Exit 0 when accepted, 1 when the best
    /// image is below the threshold, 3 when the scanner did not deliver.
    Finger {
        #[arg(long)]
        profile: String,
        #[arg(long)]
        port: PathBuf,
        #[arg(long, value_enum)]
        position: FingerPosition,
        /// The PNG to write (the accepted or best attempt).
        #[arg(long)]
        out: PathBuf,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
        /// A TOML file with a `[fingerprint_policy]` table (threshold, attempts, per-finger overrides).
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Seconds to wait for the finger on each attempt.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// Takes a photo with a PTP camera, writes it as captured, checks it, and optionally writes the 35x45 crop.
    /// Exit 0 accepted, 1 a check failed (files still written), 3 the camera did not deliver.
    Photo {
        #[arg(long)]
        profile: String,
        /// VID:PID[:SERIAL] or BUS-ADDRESS; default: the profile's first USB id. `simulated` uses the built-in
        /// simulated camera (demo builds).
        #[arg(long)]
        device: Option<String>,
        #[arg(long)]
        out: PathBuf,
        /// Also write the 35x45 crop here.
        #[arg(long)]
        crop: Option<PathBuf>,
        #[arg(long)]
        json: bool,
        /// A TOML file with a `[photo_policy]` table.
        #[arg(long)]
        policy: Option<PathBuf>,
    },
    /// One slap (left four, right four, or the two thumbs) from a vendor's MOSIP SBI device service, every
    /// signature verified against the device-provider CAs; writes `DIR/POSITION.png` per finger (8-bit grey, with
    /// its resolution) and prints the report. Exit 0 accepted, 1 a finger below the policy's threshold (files still
    /// written), 3 the device did not deliver or what it sent failed verification (no files written), 2 bad usage.
    Slap {
        /// The device service's port on 127.0.0.1, or `auto`: the one fingerprint slap device found in
        /// `--sbi-ports`.
        #[arg(long)]
        sbi: String,
        /// The ports `--sbi auto` asks, FROM-TO.
        #[arg(long, default_value = "4501-4600", value_parser = super::devices::parse_port_range)]
        sbi_ports: std::ops::RangeInclusive<u16>,
        #[arg(long, value_enum)]
        slap: SlapArg,
        /// A finger of the slap that is not captured: POSITION=amputated|bandaged|unable-to-capture (repeatable).
        #[arg(long = "exception")]
        exceptions: Vec<String>,
        /// A PEM file of device-provider CA certificates the device's signatures must chain to (repeatable).
        #[arg(long = "device-ca", required = true)]
        device_ca: Vec<PathBuf>,
        /// The folder to write the PNGs into (created if missing).
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        json: bool,
        /// A TOML file with a `[fingerprint_policy]` table (per-finger thresholds).
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Seconds the device may take for the slap (1-240).
        #[arg(long, default_value_t = 30)]
        timeout: u32,
    },
}

/// The slap to capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SlapArg {
    Left,
    Right,
    Thumbs,
}

impl From<SlapArg> for Slap {
    fn from(s: SlapArg) -> Slap {
        match s {
            SlapArg::Left => Slap::Left,
            SlapArg::Right => Slap::Right,
            SlapArg::Thumbs => Slap::Thumbs,
        }
    }
}

#[derive(Serialize)]
struct Report<'a> {
    position: FingerPosition,
    position_code: u8,
    file: String,
    width: u32,
    height: u32,
    resolution_ppi: u16,
    attempts: usize,
    accepted: bool,
    threshold: u8,
    quality: &'a Quality,
    instructions: Vec<&'static str>,
    upload_ms: u128,
    packet_size: usize,
}

pub fn run(cmd: CaptureCommand, ctx: &Context) -> anyhow::Result<ExitCode> {
    match cmd {
        CaptureCommand::Finger {
            profile,
            port,
            position,
            out,
            json,
            policy,
            timeout,
        } => finger(
            ctx,
            &profile,
            &port,
            position,
            &out,
            json,
            policy.as_deref(),
            timeout,
        ),
        CaptureCommand::Photo {
            profile,
            device,
            out,
            crop,
            json,
            policy,
        } => photo(
            ctx,
            &profile,
            device.as_deref(),
            &out,
            crop.as_deref(),
            json,
            policy.as_deref(),
        ),
        CaptureCommand::Slap {
            sbi,
            sbi_ports,
            slap,
            exceptions,
            device_ca,
            out,
            json,
            policy,
            timeout,
        } => slap_capture(&SlapArgs {
            sbi,
            sbi_ports,
            slap: slap.into(),
            exceptions,
            device_ca,
            out,
            json,
            policy,
            timeout_secs: timeout,
        }),
    }
}

fn opener(profile: &tamga_profiles::Profile, device: Option<&str>) -> anyhow::Result<Opener> {
    #[cfg(feature = "demo")]
    if device == Some("simulated") {
        let cam = crate::cli::demo::simulated_camera()?;
        return Ok(Box::new(move || {
            cam.open().map(|t| Box::new(t) as Box<dyn UsbTransport>)
        }));
    }
    let selector: UsbSelector = match device {
        Some(s) => s.parse().map_err(|e: String| anyhow::anyhow!(e))?,
        None => {
            let u = profile.usb.first().ok_or_else(|| {
                anyhow::anyhow!(
                    "profile `{}` names no USB id: give --device VID:PID",
                    profile.name
                )
            })?;
            UsbSelector::Id {
                vid: u.vid,
                pid: u.pid,
                serial: None,
            }
        }
    };
    Ok(Box::new(move || {
        RusbTransport::open(&selector).map(|t| Box::new(t) as Box<dyn UsbTransport>)
    }))
}

fn photo(
    ctx: &Context,
    profile: &str,
    device: Option<&str>,
    out: &Path,
    crop: Option<&Path>,
    json: bool,
    policy: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let policy = super::photo::policy(policy)?;
    let catalog = ctx.catalog()?;
    let profile = catalog.get(profile)?;
    let mut camera = PhotoCamera::new(profile, opener(profile, device)?)?;
    eprintln!("tamga: taking the photo");
    let mut last = usize::MAX;
    let captured = camera.capture(&mut |got, total| {
        let pct = got * 100 / total.max(1);
        if pct != last {
            last = pct;
            eprint!("\rtamga: transferring photo {pct:>3}%");
            if got == total {
                eprintln!();
            }
        }
    });
    let captured = match captured {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tamga: {e}");
            return Ok(ExitCode::from(EXIT_DEVICE));
        }
    };
    std::fs::write(out, &captured.data).with_context(|| format!("writing {}", out.display()))?;
    let img = tamga_quality::photo::decode(&captured.data)?;
    let report = tamga_quality::photo::check_photo(&img, &policy);
    if let Some(c) = crop {
        match tamga_quality::photo::crop_jpeg(&img, &report, &policy) {
            Ok(j) => std::fs::write(c, j).with_context(|| format!("writing {}", c.display()))?,
            Err(e) => eprintln!("tamga: no crop: {e}"),
        }
    }
    if json {
        outln!("{}", serde_json::to_string(&report)?);
    } else {
        outln!(
            "{} ({} bytes, {}x{})",
            out.display(),
            captured.data.len(),
            img.width(),
            img.height()
        );
        super::photo::print_report(&report)?;
    }
    Ok(if report.accepted {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INVALID)
    })
}

#[allow(clippy::too_many_arguments)]
fn finger(
    ctx: &Context,
    profile: &str,
    port: &Path,
    position: FingerPosition,
    out: &Path,
    json: bool,
    policy: Option<&Path>,
    timeout: u64,
) -> anyhow::Result<ExitCode> {
    let policy = match policy {
        Some(p) => {
            let src = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            Policy::from_toml(&p.display().to_string(), &src)?
        }
        None => Policy::default(),
    };
    let rule = policy.rule(position);
    let catalog = ctx.catalog()?;
    let profile = catalog.get(profile)?;
    let mut scanner = FingerprintScanner::new(profile, port)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut fingers = TenFingers::default();
    let mut best: Option<(tamga_drivers::zfm::Captured, Quality, u128)> = None;
    let mut attempts = 0;
    let result: Result<bool, ScannerError> = rt.block_on(async {
        super::devices::connect_scanner(&mut scanner).await?;
        scanner.use_largest_packets().await?;
        loop {
            eprintln!(
                "tamga: place the {} on the sensor (attempt {})",
                position.label(),
                attempts + 1
            );
            match scanner.capture(Duration::from_secs(timeout)).await? {
                CaptureOutcome::Retry(reason) => {
                    eprintln!("tamga: {}", reason.instruction());
                    if reason == tamga_drivers::zfm::command::RetryReason::NoFinger {
                        return Ok(false);
                    }
                    continue;
                }
                CaptureOutcome::Captured => {}
            }
            attempts += 1;
            let started = Instant::now();
            let captured = scanner
                .upload(|got, total| {
                    let mut e = std::io::stderr();
                    let _ = write!(e, "\rtamga: uploading image {:>3}%", got * 100 / total.max(1));
                    if got == total {
                        let _ = writeln!(e);
                    }
                })
                .await?;
            let ms = started.elapsed().as_millis();
            let img = &captured.image;
            let q = assess(
                &img.pixels,
                img.width as usize,
                img.height as usize,
                img.resolution_ppi,
            );
            let next = fingers.record(&policy, position, q.score);
            let better = best.as_ref().is_none_or(|(_, b, _)| q.score > b.score);
            if better {
                best = Some((captured, q, ms));
            }
            match next {
                Next::Accepted { .. } => return Ok(true),
                Next::KeptBest { .. } | Next::DeclareException => return Ok(false),
                Next::Retry { remaining } => {
                    let why: Vec<_> = best
                        .as_ref()
                        .map(|(_, q, _)| q.findings.iter().map(|f| f.instruction()).collect())
                        .unwrap_or_default();
                    eprintln!(
                        "tamga: quality below {} ({remaining} attempt(s) left): {}",
                        rule.threshold,
                        why.join("; ")
                    );
                }
            }
        }
    });
    let accepted = match result {
        Ok(a) => a,
        Err(e) => {
            eprintln!("tamga: {e}");
            return Ok(ExitCode::from(EXIT_DEVICE));
        }
    };
    let Some((captured, quality, ms)) = best else {
        eprintln!("tamga: no finger was placed within {timeout} s");
        return Ok(ExitCode::from(EXIT_DEVICE));
    };
    let img = &captured.image;
    png_out::write_grey(out, img.width, img.height, img.resolution_ppi, &img.pixels)?;
    let report = Report {
        position,
        position_code: position.code(),
        file: out.display().to_string(),
        width: img.width,
        height: img.height,
        resolution_ppi: img.resolution_ppi,
        attempts,
        accepted,
        threshold: rule.threshold,
        instructions: quality.findings.iter().map(|f| f.instruction()).collect(),
        quality: &quality,
        upload_ms: ms,
        packet_size: captured.packet_size,
    };
    if json {
        outln!("{}", serde_json::to_string(&report)?);
    } else {
        outln!(
            "{} -> {} ({}x{}, {} ppi)",
            position.label(),
            report.file,
            img.width,
            img.height,
            img.resolution_ppi
        );
        outln!(
            "quality {} / 100 (threshold {}): {}",
            quality.score,
            rule.threshold,
            if accepted { "accepted" } else { "below threshold" }
        );
        let f = &quality.features;
        outln!("  foreground area        {:.2}", f.foreground_area);
        outln!("  centring               {:.2}", f.centring);
        outln!("  contrast               {:.2}", f.contrast);
        outln!("  orientation certainty  {:.2}", f.orientation_certainty);
        outln!("  ridge-valley clarity   {:.2}", f.ridge_valley_clarity);
        outln!("  ridge frequency        {:.2}", f.ridge_frequency);
        for i in &report.instructions {
            outln!("  -> {i}");
        }
    }
    Ok(if accepted {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INVALID)
    })
}

/// The longest `--timeout` of `capture slap`: well within the verifier's timestamp window (300 s).
const MAX_SLAP_TIMEOUT_SECS: u32 = 240;

/// `tamga capture slap`'s arguments.
struct SlapArgs {
    sbi: String,
    sbi_ports: std::ops::RangeInclusive<u16>,
    slap: Slap,
    exceptions: Vec<String>,
    device_ca: Vec<PathBuf>,
    out: PathBuf,
    json: bool,
    policy: Option<PathBuf>,
    timeout_secs: u32,
}

#[derive(Serialize)]
struct SlapDevice {
    port: u16,
    make: String,
    model: String,
    serial: String,
    certification: String,
}

#[derive(Serialize)]
struct SlapFinger {
    position: FingerPosition,
    file: String,
    device_quality: f64,
    quality: u8,
}

#[derive(Serialize)]
struct SlapException {
    position: FingerPosition,
    reason: ExceptionReason,
}

#[derive(Serialize)]
struct SlapReport {
    device: SlapDevice,
    slap: &'static str,
    fingers: Vec<SlapFinger>,
    exceptions: Vec<SlapException>,
    signature: &'static str,
    hash_chain: &'static str,
}

/// Why `capture slap` stops before anything is written.
enum SlapFailure {
    /// Bad usage (exit 2): several devices for `--sbi auto`, no slap scanner on the port named.
    Usage(String),
    /// The device did not deliver or what it sent was refused (exit 3).
    Device(String),
}

/// Tamga's position of an SBI finger.
fn finger_position(f: Finger) -> FingerPosition {
    match f {
        Finger::RightThumb => FingerPosition::RightThumb,
        Finger::RightIndex => FingerPosition::RightIndex,
        Finger::RightMiddle => FingerPosition::RightMiddle,
        Finger::RightRing => FingerPosition::RightRing,
        Finger::RightLittle => FingerPosition::RightLittle,
        Finger::LeftThumb => FingerPosition::LeftThumb,
        Finger::LeftIndex => FingerPosition::LeftIndex,
        Finger::LeftMiddle => FingerPosition::LeftMiddle,
        Finger::LeftRing => FingerPosition::LeftRing,
        Finger::LeftLittle => FingerPosition::LeftLittle,
    }
}

/// `POSITION=REASON`, the position a finger of `slap`.
fn slap_exception(spec: &str, slap: Slap) -> anyhow::Result<(Finger, ExceptionReason)> {
    let (pos, reason) = spec
        .split_once('=')
        .ok_or_else(|| anyhow::anyhow!("--exception {spec}: write POSITION=REASON"))?;
    let finger = Finger::from_tamga_name(pos).ok_or_else(|| {
        anyhow::anyhow!("--exception {spec}: {pos:?} is not a finger position (right-thumb ... left-little)")
    })?;
    if !slap.fingers().contains(&finger) {
        let names: Vec<_> = slap.fingers().iter().map(|f| f.tamga_name()).collect();
        anyhow::bail!(
            "--exception {spec}: {pos} is not a finger of the {} slap ({})",
            slap.name(),
            names.join(", ")
        );
    }
    let reason: ExceptionReason = serde_json::from_value(serde_json::Value::String(reason.replace('-', "_")))
        .map_err(|_| {
            anyhow::anyhow!("--exception {spec}: the reason is amputated, bandaged or unable-to-capture")
        })?;
    Ok((finger, reason))
}

/// A verified slap with each finger's image decoded (nothing written yet).
struct DecodedSlap {
    capture: SlapCapture,
    images: Vec<GreyFinger>,
}

fn slap_capture(a: &SlapArgs) -> anyhow::Result<ExitCode> {
    // Usage first (exit 2): exceptions, trust store, policy.
    let mut exceptions: Vec<(Finger, ExceptionReason)> = Vec::new();
    for spec in &a.exceptions {
        let (f, r) = slap_exception(spec, a.slap)?;
        if exceptions.iter().any(|(g, _)| *g == f) {
            anyhow::bail!("--exception {spec}: {} is given twice", f.tamga_name());
        }
        exceptions.push((f, r));
    }
    if exceptions.len() == a.slap.fingers().len() {
        anyhow::bail!(
            "every finger of the {} slap is an exception: nothing to capture",
            a.slap.name()
        );
    }
    let mut trust = TrustStore::default();
    for p in &a.device_ca {
        let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        trust
            .add_pem(&text)
            .with_context(|| format!("--device-ca {}", p.display()))?;
    }
    let verifier = Verifier::new(trust);
    let policy = match &a.policy {
        Some(p) => {
            let src = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            Policy::from_toml(&p.display().to_string(), &src)?
        }
        None => Policy::default(),
    };
    let port: Option<u16> = match a.sbi.as_str() {
        "auto" => None,
        p => Some(
            p.parse()
                .ok()
                .filter(|&n: &u16| n != 0)
                .ok_or_else(|| anyhow::anyhow!("--sbi {p}: give a port (1-65535) or auto"))?,
        ),
    };
    // The device's timestamp must lie within the verifier's window (5 minutes) around the time the capture was
    // asked for, so the capture may not take longer than that.
    if a.timeout_secs == 0 || a.timeout_secs > MAX_SLAP_TIMEOUT_SECS {
        anyhow::bail!(
            "--timeout {}: give 1 to {MAX_SLAP_TIMEOUT_SECS} seconds",
            a.timeout_secs
        );
    }

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let requested_score = policy.default.threshold;
    let decoded = rt.block_on(capture_and_decode(
        a,
        port,
        &exceptions,
        &verifier,
        requested_score,
    ));
    let DecodedSlap { capture, images } = match decoded {
        Ok(d) => d,
        Err(SlapFailure::Usage(why)) => {
            eprintln!("tamga: {why}");
            return Ok(ExitCode::from(EXIT_ERROR));
        }
        Err(SlapFailure::Device(why)) => {
            eprintln!("tamga: {why}");
            return Ok(ExitCode::from(EXIT_DEVICE));
        }
    };

    // Verified and decoded: score, then write.
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let mut fingers = Vec::new();
    let mut accepted = true;
    let mut below = Vec::new();
    for (f, img) in capture.fingers.iter().zip(&images) {
        let position = finger_position(f.finger);
        let q = assess(
            &img.pixels,
            img.width as usize,
            img.height as usize,
            img.resolution_ppi,
        );
        let threshold = policy.rule(position).threshold;
        if q.score < threshold {
            accepted = false;
            let why: Vec<_> = q.findings.iter().map(|f| f.instruction()).collect();
            below.push(format!(
                "{}: quality {} below {threshold}{}{}",
                position.label(),
                q.score,
                if why.is_empty() { "" } else { ": " },
                why.join("; ")
            ));
        }
        let file = a.out.join(format!("{}.png", f.position));
        png_out::write_grey(&file, img.width, img.height, img.resolution_ppi, &img.pixels)?;
        fingers.push(SlapFinger {
            position,
            file: file.display().to_string(),
            device_quality: f.device_quality,
            quality: q.score,
        });
    }
    let report = SlapReport {
        device: SlapDevice {
            port: capture.device.port,
            make: capture.device.make.clone(),
            model: capture.device.model.clone(),
            serial: capture.device.serial.clone(),
            certification: capture.device.certification.clone(),
        },
        slap: capture.slap.name(),
        fingers,
        exceptions: exceptions
            .iter()
            .map(|&(f, reason)| SlapException {
                position: finger_position(f),
                reason,
            })
            .collect(),
        signature: "verified",
        hash_chain: "verified",
    };
    for b in &below {
        eprintln!("tamga: {b}");
    }
    if a.json {
        outln!("{}", serde_json::to_string(&report)?);
    } else {
        let d = &report.device;
        outln!(
            "{} {} (serial {}, {}) on port {}: {} slap, signatures and hash chain verified",
            d.make,
            d.model,
            d.serial,
            d.certification,
            d.port,
            report.slap
        );
        for (f, img) in report.fingers.iter().zip(&images) {
            outln!(
                "  {:<20} -> {} ({}x{}, {} ppi) quality {} / 100, device {}",
                f.position.label(),
                f.file,
                img.width,
                img.height,
                img.resolution_ppi,
                f.quality,
                f.device_quality
            );
        }
        for e in &report.exceptions {
            outln!("  {:<20} exception: {}", e.position.label(), e.reason.code());
        }
        outln!(
            "{}",
            if accepted {
                "accepted"
            } else {
                "below the policy's threshold"
            }
        );
    }
    Ok(if accepted {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INVALID)
    })
}

/// Finds the device, captures the slap (verified by the driver) and decodes every finger's record.
async fn capture_and_decode(
    a: &SlapArgs,
    port: Option<u16>,
    exceptions: &[(Finger, ExceptionReason)],
    verifier: &Verifier,
    requested_score: u8,
) -> Result<DecodedSlap, SlapFailure> {
    let timeouts = Timeouts::default();
    let port = match port {
        Some(p) => p,
        None => {
            let found = discover(a.sbi_ports.clone(), &timeouts).await;
            let slaps: Vec<_> = found
                .iter()
                .flat_map(|s| s.devices.iter())
                .filter(|d| {
                    d.digital_id
                        .as_ref()
                        .is_some_and(|i| i.type_ == "Finger" && i.device_sub_type == "Slap")
                })
                .collect();
            let range = format!("{}-{}", a.sbi_ports.start(), a.sbi_ports.end());
            match slaps.as_slice() {
                [] => {
                    return Err(SlapFailure::Device(format!(
                        "no fingerprint slap device answers on 127.0.0.1:{range}: start the vendor's device \
                         service (tamga devices scan lists what answers)"
                    )));
                }
                [one] => one.port,
                many => {
                    let list: Vec<String> = many
                        .iter()
                        .map(|d| {
                            let i = d.digital_id.as_ref();
                            format!(
                                "port {} {} {} serial {}",
                                d.port,
                                i.map_or("", |i| i.make.as_str()),
                                i.map_or("", |i| i.model.as_str()),
                                i.map_or("", |i| i.serial_no.as_str())
                            )
                        })
                        .collect();
                    return Err(SlapFailure::Usage(format!(
                        "{} fingerprint slap devices answer on 127.0.0.1:{range}; choose one with --sbi PORT: {}",
                        many.len(),
                        list.join("; ")
                    )));
                }
            }
        }
    };
    let client = SbiClient {
        port,
        timeouts: timeouts.clone(),
    };
    let infos = client
        .device_info(verifier, OffsetDateTime::now_utc())
        .await
        .map_err(|e| SlapFailure::Device(e.to_string()))?;
    let slaps: Vec<&DeviceInfo> = infos.iter().filter(|d| d.is_finger_slap()).collect();
    let device = match slaps.as_slice() {
        [one] => *one,
        [] => {
            return Err(SlapFailure::Device(format!(
                "the device service on port {port} has no fingerprint slap device"
            )));
        }
        many => {
            return Err(SlapFailure::Usage(format!(
                "the device service on port {port} serves {} fingerprint slap devices; Tamga takes one per port",
                many.len()
            )));
        }
    };
    let now = OffsetDateTime::now_utc();
    let env = if device.env.is_empty() {
        "Staging".to_owned()
    } else {
        device.env.clone()
    };
    let req = SlapRequest {
        slap: a.slap,
        exceptions: exceptions.iter().map(|(f, _)| *f).collect(),
        requested_score,
        timeout_ms: a.timeout_secs.saturating_mul(1000),
        previous_hash: String::new(),
        env,
        transaction_id: format!("tamga-{}", uuid::Uuid::now_v7().simple()),
    };
    eprintln!(
        "tamga: place the {} slap on the scanner ({} {}, port {port})",
        a.slap.name(),
        device.digital_id.make,
        device.digital_id.model
    );
    let capture = client
        .capture_slap(device, &req, verifier, now)
        .await
        .map_err(|e| SlapFailure::Device(e.to_string()))?;
    let mut images = Vec::new();
    for f in &capture.fingers {
        let img = finger_record::decode(&f.record)
            .map_err(|e| SlapFailure::Device(format!("{}: {e}", f.position)))?;
        if img.position != f.finger.iso_code() {
            return Err(SlapFailure::Device(format!(
                "{}: the record's finger position is {}",
                f.position, img.position
            )));
        }
        images.push(img);
    }
    Ok(DecodedSlap { capture, images })
}
