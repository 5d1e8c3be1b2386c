//! `tamga`: the registration window agent. Today it holds the technician CLI (MRZ parsing and reading, device
//! profiles, port discovery) and the reader demo; the daemon joins it in later issues.
//!
//! This is the binary edge: errors from the libraries get context here (anyhow) and become exit codes.

use tamga_agent::{cli, logging};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "tamga",
    version,
    about = "Registration window agent: devices, checks, signed bundles"
)]
struct Args {
    /// Log output format (logs go to stderr).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "pretty",
        env = "TAMGA_LOG_FORMAT"
    )]
    log_format: logging::Format,
    /// Log level or filter (tracing EnvFilter syntax, e.g. `info` or `tamga_drivers=debug`). RUST_LOG wins.
    /// Default: `info` for `tamga run` (the daemon says what it found and what it does), `warn` for the rest.
    #[arg(long, global = true, env = "TAMGA_LOG")]
    log: Option<String>,
    /// A directory of extra device profiles (`*.toml`); a file there replaces a built-in profile of its name.
    #[arg(long, global = true, env = "TAMGA_PROFILES_DIR")]
    profiles_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Machine readable zones: parse text, or read a document from a reader.
    #[command(subcommand)]
    Mrz(cli::mrz::MrzCommand),
    /// Device profiles: list, show, validate.
    #[command(subcommand)]
    Profiles(cli::profiles::ProfilesCommand),
    /// Devices attached to this workstation.
    #[command(subcommand)]
    Devices(cli::devices::DevicesCommand),
    /// The station PKI: development PKI, enrolment, status.
    #[command(subcommand)]
    Certs(cli::certs::CertsCommand),
    /// Capture bundles: create from files, verify, inspect.
    #[command(subcommand)]
    Bundle(cli::bundle::BundleCommand),
    /// The outbox of sealed bundles: status.
    #[command(subcommand)]
    Outbox(cli::outbox::OutboxCommand),
    /// Photo checks and the 35x45 crop of an image file.
    #[command(subcommand)]
    Photo(cli::photo::PhotoCommand),
    /// Captures with a device: one finger, or a photo.
    #[command(subcommand)]
    Capture(cli::capture::CaptureCommand),
    /// The whole station without hardware: development PKI, embedded central, simulated devices, the daemon;
    /// `--applicants N` runs N scripted applicants and waits for their receipts.
    #[cfg(feature = "demo")]
    Demo(cli::demo::DemoArgs),
    /// The passport path alone: simulated readers on pseudo-terminals, read through the real driver.
    #[cfg(feature = "demo")]
    DemoReaders(cli::demo::ReadersDemoArgs),
    /// The operator page's address with its key (from the running daemon's configuration); `--open` opens it in the
    /// browser, handing the key over through a file only this account can read (never on a command line).
    Page(cli::page::PageArgs),
    /// The daemon: devices, sessions, the local API, the outbox and the uplink, from a station configuration.
    Run {
        #[arg(long)]
        config: std::path::PathBuf,
    },
}

fn run_daemon(config: &std::path::Path) -> anyhow::Result<ExitCode> {
    let cfg = tamga_agent::station::StationConfig::load(config)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let stop = tamga_agent::daemon::shutdown_signal().context("catching SIGTERM and SIGINT")?;
        let listener = tokio::net::TcpListener::bind(cfg.api.listen)
            .await
            .with_context(|| {
                format!(
                    "listening on {} ([api] listen): is another agent running?",
                    cfg.api.listen
                )
            })?;
        let (state, uplink) = tamga_agent::daemon::from_config(&cfg, listener.local_addr()?)?;
        let report = {
            let (cfg, state, uplink) = (cfg.clone(), state.clone(), uplink.clone());
            tokio::spawn(async move { tamga_agent::daemon::report_start(&cfg, &state, &uplink).await })
        };
        tamga_agent::daemon::serve(state, listener, cfg.api.max_body_bytes, Some(uplink), stop).await?;
        report.abort();
        Ok(ExitCode::SUCCESS)
    })
}

fn main() -> ExitCode {
    let args = Args::parse();
    let level = args.log.clone().unwrap_or_else(|| {
        if matches!(args.command, Command::Run { .. }) {
            "info"
        } else {
            "warn"
        }
        .to_owned()
    });
    if let Err(e) = logging::init(args.log_format, &level) {
        eprintln!("tamga: {e:#}");
        return ExitCode::from(2);
    }
    let ctx = cli::Context {
        profiles_dir: args.profiles_dir,
    };
    let result = match args.command {
        Command::Mrz(c) => cli::mrz::run(c, &ctx),
        Command::Profiles(c) => cli::profiles::run(c, &ctx),
        Command::Devices(c) => cli::devices::run(c, &ctx),
        Command::Capture(c) => cli::capture::run(c, &ctx),
        Command::Photo(c) => cli::photo::run(c, &ctx),
        Command::Outbox(c) => cli::outbox::run(c, &ctx),
        Command::Certs(c) => cli::certs::run(c, &ctx),
        Command::Bundle(c) => cli::bundle::run(c, &ctx),
        #[cfg(feature = "demo")]
        Command::Demo(a) => cli::demo::run(a, &ctx),
        #[cfg(feature = "demo")]
        Command::DemoReaders(a) => cli::demo::run_readers(a, &ctx),
        Command::Page(a) => cli::page::run(a),
        Command::Run { config } => run_daemon(&config),
    };
    match result {
        Ok(code) => code,
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            // The reader of our output went away (`tamga ... | head`): nothing left to say.
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tamga: {e:#}");
            ExitCode::from(cli::EXIT_ERROR)
        }
    }
}
