//! `tamga page --config FILE [--open]`: the operator page's address, with the API key in its fragment.
//!
//! The key is read from `api.token` in the data folder (mode 0600, so only the operator's account and root can
//! run this). It rides in the fragment (`#token=...`), which a browser never sends to a server nor in a
//! Referer; the page moves it into the tab's session storage and removes it from the address bar.

use anyhow::Context as _;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct PageArgs {
    /// The station configuration the daemon runs with.
    #[arg(long)]
    config: std::path::PathBuf,
    /// Open the page in the desktop's browser (`xdg-open`) instead of printing its address.
    #[arg(long)]
    open: bool,
}

/// The page's address for a daemon listening on `listen` with API key `token`.
pub fn url(listen: std::net::SocketAddr, token: &str) -> String {
    format!("http://{listen}/#token={token}")
}

/// Reads the API key, refusing it when any account may read it (0600 or 0640 are what the daemon writes).
fn read_token(path: &std::path::Path) -> anyhow::Result<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o007 != 0 {
        anyhow::bail!(
            "{}: mode {mode:o} lets every account on this workstation use the API: run `chmod 600 {}` (or 640 with \
             [api] token_group_readable = true), then restart the daemon",
            path.display(),
            path.display()
        );
    }
    std::fs::read_to_string(path).with_context(|| {
        format!(
            "reading {}: the operator's account must be in the daemon's group and the configuration must say \
             [api] token_group_readable = true",
            path.display()
        )
    })
}

pub fn run(args: PageArgs) -> anyhow::Result<ExitCode> {
    let cfg = crate::station::StationConfig::load(&args.config)?;
    let token_file = cfg.paths.data_dir.join("api.token");
    if !token_file.exists() {
        anyhow::bail!(
            "{} does not exist yet: start the daemon once (`tamga run --config {}`), it creates the key",
            token_file.display(),
            args.config.display()
        );
    }
    let token = read_token(&token_file)?;
    let url = url(cfg.api.listen, token.trim());
    if args.open {
        let status = std::process::Command::new("xdg-open")
            .arg(&url)
            .status()
            .context("running xdg-open (install xdg-utils, or open the printed address by hand)")?;
        anyhow::ensure!(status.success(), "xdg-open failed ({status})");
    } else {
        outln!("{url}");
    }
    Ok(ExitCode::SUCCESS)
}
