//! `tamga demo`: the passport path end to end without hardware. For each reader profile (or the one given), a
//! simulated reader is plugged in on a pseudo-terminal, plays the ICAO specimen documents with that profile's
//! framing at its line rate, and the real serial driver reads and checks them. One JSON line per document.

use super::{Context, EXIT_INVALID};
use anyhow::Context as _;
use serde::Serialize;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tamga_drivers::mrz_serial::MrzReader;
use tamga_mrz::{Mrz, ParseOptions};
use tamga_profiles::DeviceKind;
use tamga_sim::mrz_reader::MrzReaderEmulator;
use tamga_sim::specimens;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Only this reader profile (default: every reader profile).
    #[arg(long)]
    profile: Option<String>,
    /// Send bytes as fast as the pty takes them instead of at the profile's line rate.
    #[arg(long)]
    no_pace: bool,
}

#[derive(Serialize)]
struct DemoLine<'a> {
    profile: &'a str,
    port: String,
    document: &'a str,
    mrz: &'a Mrz,
}

pub fn run(args: DemoArgs, ctx: &Context) -> anyhow::Result<ExitCode> {
    let catalog = ctx.catalog()?;
    let profiles: Vec<_> = match &args.profile {
        Some(name) => vec![catalog.get(name)?.clone()],
        None => catalog
            .all()
            .iter()
            .filter(|p| p.kind == DeviceKind::MrzReader)
            .cloned()
            .collect(),
    };
    let dir = tempfile::Builder::new()
        .prefix("tamga-demo-")
        .tempdir()
        .context("creating a temporary directory")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let opts = ParseOptions::new(super::today());
    let mut failures = 0;
    for profile in &profiles {
        let link = dir.path().join(format!("tty-{}", profile.name));
        let emu = Arc::new(
            MrzReaderEmulator::start(profile, &link, !args.no_pace)
                .with_context(|| format!("starting the simulated reader for {}", profile.name))?,
        );
        let mut reader = MrzReader::new(profile, &link)?;
        for (name, lines) in specimens::ALL {
            let player = {
                let emu = emu.clone();
                std::thread::spawn(move || emu.play(lines, &[]))
            };
            let read = rt.block_on(reader.read_document(Duration::from_secs(20), &opts));
            player
                .join()
                .map_err(|_| anyhow::anyhow!("simulated reader thread panicked"))??;
            let read = read.with_context(|| format!("{}: reading {name}", profile.name))?;
            // The specimens carry the ICAO dates; "expired" is expected and is not a failure here.
            if !read.mrz.valid {
                failures += 1;
            }
            let line = DemoLine {
                profile: &profile.name,
                port: link.display().to_string(),
                document: name,
                mrz: &read.mrz,
            };
            outln!("{}", serde_json::to_string(&line)?);
        }
    }
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INVALID)
    })
}

/// The public-domain astronaut portrait (scikit-image; see quality/tests/fixtures/photos/SOURCES.md), served as
/// JPEG by the simulated camera.
static PORTRAIT_PNG: &[u8] = include_bytes!("../../../quality/tests/fixtures/photos/astronaut.png");

/// A simulated PTP camera serving the portrait, scaled to a 2 MP frame as a real camera would deliver it.
pub fn simulated_camera() -> anyhow::Result<tamga_sim::ptp_camera::SimCamera> {
    let img = image::load_from_memory(PORTRAIT_PNG)?;
    let big = img
        .resize_exact(1400, 1400, image::imageops::FilterType::Triangle)
        .to_rgb8();
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90).encode_image(&big)?;
    Ok(tamga_sim::ptp_camera::SimCamera::new(
        "Tamga",
        "Simulated PTP camera",
        tamga_sim::ptp_camera::SimQuirks::default(),
        vec![(jpeg, 1400, 1400)],
    ))
}
