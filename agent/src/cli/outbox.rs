//! `tamga outbox status`: what waits for the central system, and whether the disk reserve lets new sessions in.

use super::{Context, EXIT_INVALID};
use crate::outbox::{Outbox, free_bytes};
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// Counts by state, bytes waiting, the oldest waiting bundle, free disk against the reserve. Exit 1 when the
    /// reserve is reached (new sessions are refused) or bundles are quarantined.
    Status {
        /// The agent's data directory (holds outbox.sqlite).
        #[arg(long)]
        data: PathBuf,
        /// The disk reserve in bytes (the daemon's configured value).
        #[arg(long, default_value_t = 1 << 30)]
        reserve: u64,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: OutboxCommand, _ctx: &Context) -> anyhow::Result<ExitCode> {
    let OutboxCommand::Status { data, reserve, json } = cmd;
    let o = Outbox::open(&data, reserve)?;
    let s = o.stats()?;
    let free = free_bytes(&data)?;
    let reserve_ok = free >= reserve;
    if json {
        outln!(
            "{}",
            serde_json::json!({"stats": s, "free_bytes": free, "reserve_bytes": reserve, "accepting_sessions": reserve_ok})
        );
    } else {
        outln!(
            "queued {}  sending {}  delivered {}  quarantined {}",
            s.queued,
            s.sending,
            s.delivered,
            s.quarantined
        );
        outln!(
            "waiting: {} bytes; oldest enqueued at {:?} (Unix ms)",
            s.pending_bytes,
            s.oldest_pending_ms
        );
        outln!(
            "disk: {free} bytes free, reserve {reserve}: {}",
            if reserve_ok {
                "new sessions accepted"
            } else {
                "RESERVE REACHED: new sessions are refused; free disk space"
            }
        );
        if s.quarantined > 0 {
            outln!(
                "{} bundle(s) quarantined: the central system rejected them; they are kept for review",
                s.quarantined
            );
        }
    }
    Ok(if reserve_ok && s.quarantined == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INVALID)
    })
}
