//! `tamga capture finger`: one finger from a ZFM module, checked for quality, written as a PNG.

use super::{Context, EXIT_DEVICE, EXIT_INVALID};
use crate::capture::fingers::{FingerPosition, Next, Policy, TenFingers};
use crate::capture::png_out;
use anyhow::Context as _;
use clap::Subcommand;
use serde::Serialize;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tamga_drivers::ptp::device::{Opener, PhotoCamera};
use tamga_drivers::usb::rusb_transport::RusbTransport;
use tamga_drivers::usb::{UsbSelector, UsbTransport};
use tamga_drivers::zfm::{CaptureOutcome, FingerprintScanner, ScannerError};
use tamga_quality::fingerprint::{Quality, assess};

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
