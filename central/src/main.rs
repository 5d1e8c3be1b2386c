//! `tamga-central`: the reference central receiver.

use anyhow::Context as _;
use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "tamga-central",
    version,
    about = "Reference central receiver for Tamga bundles (mutual TLS)"
)]
struct Args {
    /// Directory with central.pem, central.key and root-ca.pem (`tamga certs init`).
    #[arg(long)]
    certs: PathBuf,
    /// Where bundles are stored.
    #[arg(long)]
    store: PathBuf,
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: String,
    /// Revoked station certificates: SHA-256 fingerprints of the DER, one per line (`#` comments). It must exist
    /// and be valid at start (an empty file revokes nothing); while it is unreadable or invalid, station requests
    /// are refused (503). Changes are picked up without a restart.
    #[arg(long)]
    revoked: Option<PathBuf>,
    /// Largest accepted bundle (bytes).
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    max_body_bytes: usize,
    /// Uploads read and verified at once (default: the number of CPUs). Each holds its body (up to
    /// --max-body-bytes) in memory; further uploads wait for a slot before their body is read.
    #[arg(long)]
    max_concurrent_verifications: Option<usize>,
    /// Seconds an upload's body may take to arrive once its verification slot is free (then 408, slot freed).
    #[arg(long, default_value_t = 600)]
    body_timeout_secs: u64,
    /// Seconds a new connection has to complete its TLS handshake before it is closed.
    #[arg(long, default_value_t = 10)]
    handshake_timeout_secs: u64,
    /// Open connections at most; beyond it new connections wait in the kernel's backlog.
    #[arg(long, default_value_t = 512)]
    max_connections: usize,
    /// Where `/metrics` (Prometheus text) and `/healthz` are served, plain HTTP; stations cannot read them on the
    /// mutual-TLS listener. `off` serves no metrics.
    #[arg(long, default_value = "127.0.0.1:9464")]
    metrics_listen: String,
    /// At most one warning per this many seconds for refused or timed-out handshakes (all are counted in /metrics).
    #[arg(long, default_value_t = 60)]
    refusal_log_interval_secs: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .init();
    let a = Args::parse();
    let read = |n: &str| {
        std::fs::read_to_string(a.certs.join(n))
            .with_context(|| format!("reading {}", a.certs.join(n).display()))
    };
    let config = tamga_central::CentralConfig {
        cert_pem: read("central.pem")?,
        key_pem: tamga_central::read_private_key(&a.certs.join("central.key"))?,
        client_ca_pem: read("root-ca.pem")?,
        revocation_list: a.revoked,
        max_body_bytes: a.max_body_bytes,
    };
    let store = tamga_central::store::FsStore::new(&a.store)
        .with_context(|| format!("opening the store {}", a.store.display()))?;
    let listener = tokio::net::TcpListener::bind(&a.listen)
        .await
        .with_context(|| format!("binding {}", a.listen))?;
    let defaults = tamga_central::Options::default();
    let options = tamga_central::Options {
        handshake_timeout: Duration::from_secs(a.handshake_timeout_secs.max(1)),
        max_connections: a.max_connections.max(1),
        max_concurrent_verifications: a
            .max_concurrent_verifications
            .unwrap_or(defaults.max_concurrent_verifications)
            .max(1),
        body_timeout: Duration::from_secs(a.body_timeout_secs.max(1)),
        refusal_log_interval: Duration::from_secs(a.refusal_log_interval_secs),
        metrics_listen: match a.metrics_listen.as_str() {
            "off" => None,
            at => Some(
                at.parse()
                    .with_context(|| format!("--metrics-listen {at}: not an address"))?,
            ),
        },
        ..defaults
    };
    let running = tamga_central::start_with(config, options, Box::new(store), listener)?;
    tracing::info!(addr = %running.addr, metrics = ?running.metrics_addr, "tamga-central listening (mutual TLS)");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
