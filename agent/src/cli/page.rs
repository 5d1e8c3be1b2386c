//! `tamga page --config FILE [--open]`: the operator page, opened with its API key.
//!
//! The key is read from `api.token` in the data folder (mode 0600, or 0640 for the daemon's group; refused when any
//! account may read it).
//!
//! With `--open` the key never appears on a command line or in an environment (both readable by every local
//! account through `ps` and `/proc`), nor in the browser's history: `tamga page` writes a handover file, mode 0600
//! in a new 0700 directory in the operator's runtime directory (`$XDG_RUNTIME_DIR`, else the temporary directory),
//! and opens that file (`file://…`, no secret in it) with `$BROWSER` or `xdg-open`. The file posts the key to the
//! page (`POST /`, a form field: the request body, never a URL); the page answers with the key in the document,
//! moves it into the tab's session storage and turns the address into a plain `/`. The file is removed once the
//! browser has had `--handover-seconds` to read it.
//!
//! Without `--open` it prints the page's address with the key in the fragment (`#token=...`, which a browser never
//! sends to a server nor in a Referer), for the operator to open by hand.

use anyhow::Context as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct PageArgs {
    /// The station configuration the daemon runs with.
    #[arg(long)]
    config: PathBuf,
    /// Open the page in the desktop's browser (`$BROWSER`, else `xdg-open`) instead of printing its address; the
    /// key is handed over through a file only this account can read, never on a command line.
    #[arg(long)]
    open: bool,
    /// With `--open`: how long the handover file stays for the browser to read before it is removed.
    #[arg(long, default_value_t = 60, requires = "open")]
    handover_seconds: u64,
}

/// The page's address for a daemon listening on `listen` with API key `token`.
pub fn url(listen: std::net::SocketAddr, token: &str) -> String {
    format!("http://{listen}/#token={token}")
}

/// The handover file's contents: a form that posts `token` to the page at `listen` as soon as it is opened (and a
/// button, should scripts be off).
pub fn handover_html(listen: std::net::SocketAddr, token: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n<title>Tamga</title>\n</head>\n<body>\n\
         <form id=\"handover\" method=\"post\" action=\"http://{listen}/\">\n\
         <input type=\"hidden\" name=\"token\" value=\"{token}\">\n\
         <button type=\"submit\">Open the operator page</button>\n</form>\n\
         <script>document.getElementById('handover').submit();</script>\n</body>\n</html>\n"
    )
}

/// Reads the API key, refusing it when any account may read it (0600 or 0640 are what the daemon writes).
fn read_token(path: &Path) -> anyhow::Result<String> {
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

/// A new directory only this account can enter, in its runtime directory (a per-user tmpfs, 0700, emptied at
/// logout) or else the temporary directory.
fn private_dir() -> anyhow::Result<tempfile::TempDir> {
    use std::os::unix::fs::PermissionsExt;
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute() && p.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new()
        .prefix("tamga-page-")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir_in(&base)
        .with_context(|| format!("creating the handover directory in {}", base.display()))?;
    // The umask may only have taken bits away; set the mode explicitly all the same.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))?;
    Ok(dir)
}

/// Writes `contents` to a new file `path`, mode 0600.
fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(contents.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// `file://` URL of an absolute path (bytes outside the unreserved set and `/` percent-encoded).
fn file_url(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut url = String::from("file://");
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            url.push(char::from(b));
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url
}

/// The program and arguments that open `url`: the first command of `$BROWSER` (colon-separated, `%s` standing for
/// the address, else appended), or `xdg-open`.
fn launcher(url: &str) -> (String, Vec<String>) {
    let browser = std::env::var("BROWSER").ok().and_then(|v| {
        v.split(':')
            .map(str::trim)
            .find(|c| !c.is_empty())
            .map(str::to_owned)
    });
    let Some(browser) = browser else {
        return ("xdg-open".into(), vec![url.to_owned()]);
    };
    let mut words = browser.split_whitespace().map(str::to_owned);
    let program = words.next().unwrap_or_else(|| "xdg-open".into());
    let mut args: Vec<String> = words.collect();
    if args.iter().any(|a| a.contains("%s")) {
        for a in &mut args {
            *a = a.replace("%s", url);
        }
    } else {
        args.push(url.to_owned());
    }
    (program, args)
}

/// Opens the page with the key handed over through a private file; removes the file after `keep`.
fn open(listen: std::net::SocketAddr, token: &str, keep: Duration) -> anyhow::Result<()> {
    anyhow::ensure!(
        !token.is_empty() && token.bytes().all(|b| b.is_ascii_hexdigit()),
        "api.token does not hold a key (hexadecimal digits): restart the daemon, it writes a new one when the file \
         is missing"
    );
    let dir = private_dir()?;
    let file = dir.path().join("open.html");
    write_private(&file, &handover_html(listen, token))?;
    let (program, args) = launcher(&file_url(&file));
    let mut child = std::process::Command::new(&program)
        .args(&args)
        .stdin(std::process::Stdio::null())
        .spawn()
        .with_context(|| format!("running {program} (install xdg-utils or set $BROWSER, or run `tamga page` without --open and open the printed address by hand)"))?;
    // The launcher may return at once while the browser reads the file later, or be the browser itself and run
    // until it is closed: the file stays for `keep` either way, and a failing launcher is reported.
    let deadline = Instant::now() + keep;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            anyhow::ensure!(status.success(), "{program} failed ({status})");
            std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    dir.close().context("removing the handover file")?;
    Ok(())
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
    if args.open {
        open(
            cfg.api.listen,
            token.trim(),
            Duration::from_secs(args.handover_seconds),
        )?;
    } else {
        outln!("{}", url(cfg.api.listen, token.trim()));
    }
    Ok(ExitCode::SUCCESS)
}
