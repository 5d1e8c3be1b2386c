//! `tamga profiles list | show | validate`.

use super::{Context, EXIT_INVALID};
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;
use tamga_profiles::Profile;

#[derive(Debug, Subcommand)]
pub enum ProfilesCommand {
    /// Lists the known profiles.
    List {
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Shows one profile with every default filled in (JSON).
    Show { name: String },
    /// Validates profile files; errors carry file, line and column. Exit 1 if any is invalid.
    Validate {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn serial_summary(p: &Profile) -> String {
    p.serial.map(|s| s.summary()).unwrap_or_else(|| "-".into())
}

pub fn run(cmd: ProfilesCommand, ctx: &Context) -> anyhow::Result<ExitCode> {
    match cmd {
        ProfilesCommand::List { json } => {
            let catalog = ctx.catalog()?;
            if json {
                outln!("{}", serde_json::to_string_pretty(catalog.all())?);
            } else {
                outln!(
                    "{:<22} {:<12} {:<11} {:<10} {}",
                    "NAME",
                    "KIND",
                    "PROTOCOL",
                    "LINE",
                    "DEVICE"
                );
                for p in catalog.all() {
                    let kind = serde_json::to_value(p.kind)?;
                    let proto = serde_json::to_value(p.protocol)?;
                    outln!(
                        "{:<22} {:<12} {:<11} {:<10} {} {}",
                        p.name,
                        kind.as_str().unwrap_or("?"),
                        proto.as_str().unwrap_or("?"),
                        serial_summary(p),
                        p.vendor,
                        p.model
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ProfilesCommand::Show { name } => {
            let catalog = ctx.catalog()?;
            outln!("{}", serde_json::to_string_pretty(catalog.get(&name)?)?);
            Ok(ExitCode::SUCCESS)
        }
        ProfilesCommand::Validate { files } => {
            let mut bad = 0;
            for f in &files {
                match Profile::load(f) {
                    Ok(p) => outln!("{}: ok ({})", f.display(), p.name),
                    Err(e) => {
                        bad += 1;
                        outln!("{e}");
                    }
                }
            }
            Ok(if bad == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_INVALID)
            })
        }
    }
}
