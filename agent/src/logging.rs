//! Logging set-up: `tracing` to stderr, pretty for people or JSON lines for collectors.

use anyhow::Context as _;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Pretty,
    Json,
}

pub fn init(format: Format, default_filter: &str) -> anyhow::Result<()> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(f) if !f.is_empty() => {
            EnvFilter::try_new(&f).with_context(|| format!("RUST_LOG={f:?} is not a valid filter"))?
        }
        _ => EnvFilter::try_new(default_filter).with_context(|| {
            format!("--log {default_filter:?} is not a valid filter; try `info` or `debug`")
        })?,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        Format::Pretty => builder.compact().init(),
        Format::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
    Ok(())
}
