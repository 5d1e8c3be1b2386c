//! `tamga mrz parse` and `tamga mrz read`.
//!
//! Contract (README): one JSON object on stdout; exit 0 when valid, 1 when it parsed but a check failed (an OCR
//! repair of a document or personal number that two checks do not confirm is listed in `suggestions`, not applied,
//! and the record is invalid), 2 when the input is not an MRZ (one-line reason on stderr); `read` exits 3 when the
//! reader did not deliver.

use super::{Context, EXIT_DEVICE, EXIT_ERROR, EXIT_INVALID};
use anyhow::Context as _;
use clap::Subcommand;
use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tamga_drivers::mrz_serial::{MrzReadError, MrzReader};
use tamga_mrz::{Mrz, ParseOptions};

#[derive(Debug, Subcommand)]
pub enum MrzCommand {
    /// Parses and checks one MRZ given as lines (arguments), or read from stdin when no lines are given.
    Parse {
        /// The MRZ lines, in order. Quote them: `<` is special to the shell.
        lines: Vec<String>,
        /// The date for century inference and the expired / minor warnings (default: today).
        #[arg(long, value_parser = super::parse_date)]
        today: Option<time::Date>,
    },
    /// Waits for a document on a serial reader and prints it.
    Read {
        /// Reader profile name (`tamga profiles list`).
        #[arg(long)]
        profile: String,
        /// Serial port path, e.g. /dev/ttyUSB0 or /dev/serial/by-id/...
        #[arg(long)]
        port: PathBuf,
        /// Seconds to wait for a document.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        #[arg(long, value_parser = super::parse_date)]
        today: Option<time::Date>,
    },
}

pub fn run(cmd: MrzCommand, ctx: &Context) -> anyhow::Result<ExitCode> {
    match cmd {
        MrzCommand::Parse { lines, today } => {
            let text = if lines.is_empty() {
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .context("reading the MRZ from stdin")?;
                s
            } else {
                lines.join("\n")
            };
            let opts = ParseOptions::new(today.unwrap_or_else(super::today));
            match tamga_mrz::parse(&text, &opts) {
                Ok(mrz) => print_mrz(&mrz),
                Err(e) => {
                    eprintln!("tamga: not an MRZ: {e}");
                    Ok(ExitCode::from(EXIT_ERROR))
                }
            }
        }
        MrzCommand::Read {
            profile,
            port,
            timeout,
            today,
        } => {
            let catalog = ctx.catalog()?;
            let profile = catalog.get(&profile)?;
            let mut reader = MrzReader::new(profile, &port)?;
            let opts = ParseOptions::new(today.unwrap_or_else(super::today));
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            eprintln!(
                "tamga: waiting up to {timeout} s for a document on {} ({})",
                port.display(),
                profile.name
            );
            match rt.block_on(reader.read_document(Duration::from_secs(timeout), &opts)) {
                Ok(read) => print_mrz(&read.mrz),
                Err(e @ MrzReadError::NotMrz { .. }) => {
                    eprintln!("tamga: {e}");
                    Ok(ExitCode::from(EXIT_ERROR))
                }
                Err(e @ (MrzReadError::WrongProfile(_) | MrzReadError::Open(_))) => Err(e.into()),
                Err(e) => {
                    eprintln!("tamga: {e}");
                    Ok(ExitCode::from(EXIT_DEVICE))
                }
            }
        }
    }
}

fn print_mrz(mrz: &Mrz) -> anyhow::Result<ExitCode> {
    outln!("{}", serde_json::to_string(mrz)?);
    Ok(if mrz.valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INVALID)
    })
}
