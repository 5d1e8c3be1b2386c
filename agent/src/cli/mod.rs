//! The technician and scripting CLI. Each submodule is one command group.

/// `println!` that returns an error instead of panicking when stdout is gone (a closed pipe).
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($t)*)?;
    }};
}

pub mod bundle;
pub mod capture;
pub mod certs;
#[cfg(feature = "demo")]
pub mod demo;
#[cfg(feature = "demo")]
pub mod demo_sim;
pub mod devices;
pub mod mrz;
pub mod outbox;
pub mod page;
pub mod photo;
pub mod profiles;

use anyhow::Context as _;
use std::path::PathBuf;
use tamga_profiles::Catalog;

/// Exit status: an MRZ parsed but a check failed / a profile is invalid.
pub const EXIT_INVALID: u8 = 1;
/// Exit status: the input is not an MRZ, or a usage / environment error.
pub const EXIT_ERROR: u8 = 2;
/// Exit status: the device did not deliver (absent, disconnected, timeout, broken frame).
pub const EXIT_DEVICE: u8 = 3;

/// What every command may need.
#[derive(Debug)]
pub struct Context {
    pub profiles_dir: Option<PathBuf>,
}

impl Context {
    pub fn catalog(&self) -> anyhow::Result<Catalog> {
        match &self.profiles_dir {
            Some(dir) => Catalog::with_dir(dir)
                .with_context(|| format!("loading profiles from {} (set by --profiles-dir)", dir.display())),
            None => Ok(Catalog::builtin()?),
        }
    }
}

pub use crate::station::today;

/// Parses `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Result<time::Date, String> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &fmt).map_err(|e| format!("{s:?} is not a date YYYY-MM-DD ({e})"))
}
