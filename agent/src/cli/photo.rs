//! `tamga photo check` and `tamga photo crop`: ICAO-style checks and the 35x45 crop of an image file.

use super::{Context, EXIT_ERROR, EXIT_INVALID};
use crate::config::load_table;
use anyhow::Context as _;
use clap::Subcommand;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tamga_quality::photo::{PhotoPolicy, PhotoReport, check_photo, crop_jpeg, decode};

#[derive(Debug, Subcommand)]
pub enum PhotoCommand {
    /// Prints every check with its value, threshold and verdict, and the face box. Exit 0 accepted, 1 a check
    /// failed, 2 the file cannot be read as an image.
    Check {
        image: PathBuf,
        /// One JSON object: {"accepted", "faces", "checks"}.
        #[arg(long)]
        json: bool,
        /// A TOML file with a `[photo_policy]` table of thresholds.
        #[arg(long)]
        policy: Option<PathBuf>,
    },
    /// Writes the 35x45 crop around the face as JPEG within the policy's size budget. Exit 1 (crop still
    /// written) when a check failed.
    Crop {
        image: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        policy: Option<PathBuf>,
    },
}

/// The photo policy from `--policy`, or the defaults.
pub fn policy(path: Option<&Path>) -> anyhow::Result<PhotoPolicy> {
    Ok(match path {
        Some(p) => load_table(p, "photo_policy", PhotoPolicy::validate)?,
        None => PhotoPolicy::default(),
    })
}

/// Prints a report for people.
pub fn print_report(r: &PhotoReport) -> anyhow::Result<()> {
    for f in &r.faces {
        outln!("face at x={} y={} {}x{}", f.x, f.y, f.width, f.height);
    }
    for c in &r.checks {
        let value = c.value.map_or("-".to_owned(), |v| format!("{v}"));
        let threshold = serde_json::to_string(&c.threshold)?;
        outln!(
            "{:<22} {:<4} value {:<10} threshold {:<14} {}",
            c.name,
            if c.passed { "ok" } else { "FAIL" },
            value,
            threshold,
            c.advice
        );
    }
    outln!("{}", if r.accepted { "accepted" } else { "not accepted" });
    Ok(())
}

fn read(image: &Path) -> Result<image::DynamicImage, String> {
    let bytes = std::fs::read(image).map_err(|e| format!("{}: {e}", image.display()))?;
    decode(&bytes).map_err(|e| format!("{}: {e}", image.display()))
}

pub fn run(cmd: PhotoCommand, _ctx: &Context) -> anyhow::Result<ExitCode> {
    match cmd {
        PhotoCommand::Check {
            image,
            json,
            policy: p,
        } => {
            let policy = policy(p.as_deref())?;
            let img = match read(&image) {
                Ok(i) => i,
                Err(e) => {
                    eprintln!("tamga: {e}");
                    return Ok(ExitCode::from(EXIT_ERROR));
                }
            };
            let r = check_photo(&img, &policy);
            if json {
                outln!("{}", serde_json::to_string(&r)?);
            } else {
                print_report(&r)?;
            }
            Ok(if r.accepted {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_INVALID)
            })
        }
        PhotoCommand::Crop {
            image,
            out,
            policy: p,
        } => {
            let policy = policy(p.as_deref())?;
            let img = match read(&image) {
                Ok(i) => i,
                Err(e) => {
                    eprintln!("tamga: {e}");
                    return Ok(ExitCode::from(EXIT_ERROR));
                }
            };
            let r = check_photo(&img, &policy);
            let jpeg = crop_jpeg(&img, &r, &policy)?;
            std::fs::write(&out, &jpeg).with_context(|| format!("writing {}", out.display()))?;
            eprintln!("tamga: wrote {} ({} bytes)", out.display(), jpeg.len());
            for c in r.checks.iter().filter(|c| !c.passed) {
                eprintln!("tamga: {} failed: {}", c.name, c.advice);
            }
            Ok(if r.accepted {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_INVALID)
            })
        }
    }
}
