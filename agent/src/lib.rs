//! The Tamga agent as a library: everything the `tamga` binary runs, so that the daemon, the CLI and the tests
//! share one implementation.
//!
//! - [`api`]: the local HTTP API for the operator's page.
//! - [`bundling`]: captures to manifest and ISO records (shared by the session and `tamga bundle create`).
//! - [`capture`]: finger positions and the per-finger policy, image output.
//! - [`cli`]: the technician and scripting commands.
//! - [`daemon`]: the API and the uplink loop, from a configuration; graceful shutdown.
//! - [`config`]: configuration tables with located errors.
//! - [`http`]: the local API's HTTP server with its connection limits and timeouts.
//! - [`logging`]: tracing set-up.
//! - [`outbox`]: the durable outbox of sealed bundles.
//! - [`station`]: the station configuration file.
//! - [`session`]: the applicant session, from document to a durably queued bundle.
//! - [`supervisor`]: watches device ports and the outbox, feeds the event stream.
//! - [`telemetry`]: the event stream (SSE) and the Prometheus counters.
//! - [`uplink`]: mutual-TLS delivery to the central system and receipt verification.

pub mod api;
pub mod bundling;
pub mod capture;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod http;
pub mod logging;
pub mod outbox;
pub mod session;
pub mod station;
pub mod supervisor;
pub mod telemetry;
pub mod ui;
pub mod uplink;
