//! The station configuration (`tamga run --config FILE`): who the station is, where its data and keys are, where
//! the central system is, its devices, its policies and its local API. TOML; every error names the file, the line
//! and column or the key, and what to write instead.

use crate::capture::fingers::Policy;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tamga_quality::photo::PhotoPolicy;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StationConfig {
    pub station: StationIds,
    pub paths: Paths,
    pub central: Central,
    #[serde(default)]
    pub api: Api,
    #[serde(default)]
    pub ui: Ui,
    #[serde(default)]
    pub outbox: OutboxSettings,
    #[serde(default)]
    pub devices: Vec<DeviceConfig>,
    #[serde(default)]
    pub fingerprint_policy: Policy,
    #[serde(default)]
    pub photo_policy: PhotoPolicy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StationIds {
    /// Must equal the common name of the station certificate.
    pub id: String,
    pub centre: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Paths {
    /// Outbox, API token.
    pub data_dir: PathBuf,
    /// station.pem, station.key, station-ca.pem, central.pem, root-ca.pem.
    pub certs_dir: PathBuf,
    /// Extra device profiles.
    pub profiles_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Central {
    /// `https://host:port`.
    pub url: String,
    #[serde(default = "four")]
    pub concurrency: usize,
}

/// The operator page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ui {
    /// The page's language until the operator picks another: `en`, `ru` or `kk`.
    pub language: String,
}

impl Default for Ui {
    fn default() -> Self {
        Ui {
            language: "ru".into(),
        }
    }
}

fn four() -> usize {
    4
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Api {
    pub listen: SocketAddr,
    /// Origins a browser page may call the API from (exact match; no wildcard).
    pub allowed_origins: Vec<String>,
    pub max_body_bytes: usize,
    /// `api.token` mode 0640 instead of 0600: members of the daemon's group (the operators' desktop accounts) may
    /// read it, so `tamga page` works for them.
    #[serde(default)]
    pub token_group_readable: bool,
    /// Open connections at most (at the limit, the one idle longest makes room).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Open applicant sessions at most.
    #[serde(default = "default_max_sessions")]
    pub max_sessions: usize,
    /// Minutes after which a session nobody used is expired, its captures dropped from memory.
    #[serde(default = "default_session_idle_minutes")]
    pub session_idle_minutes: u64,
}

fn default_max_connections() -> usize {
    crate::api::ApiLimits::default().max_connections
}

fn default_max_sessions() -> usize {
    crate::api::ApiLimits::default().max_sessions
}

fn default_session_idle_minutes() -> u64 {
    crate::api::ApiLimits::default().session_idle.as_secs() / 60
}

impl Api {
    /// The API's limits from this table (the rest at their defaults).
    pub fn limits(&self) -> crate::api::ApiLimits {
        crate::api::ApiLimits {
            max_connections: self.max_connections,
            max_sessions: self.max_sessions,
            session_idle: std::time::Duration::from_secs(self.session_idle_minutes * 60),
            ..crate::api::ApiLimits::default()
        }
    }
}

impl Default for Api {
    fn default() -> Self {
        Api {
            listen: SocketAddr::from(([127, 0, 0, 1], 4480)),
            allowed_origins: vec!["http://127.0.0.1:4480".into(), "http://localhost:4480".into()],
            max_body_bytes: 64 * 1024,
            token_group_readable: false,
            max_connections: default_max_connections(),
            max_sessions: default_max_sessions(),
            session_idle_minutes: default_session_idle_minutes(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxSettings {
    /// Free disk below which new sessions are refused.
    pub reserve_bytes: u64,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        OutboxSettings {
            reserve_bytes: 1 << 30,
        }
    }
}

/// One device: a role, its profile, and where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    /// `document`, `fingerprint` or `camera`.
    pub role: String,
    pub profile: String,
    /// Serial port path (documents, fingerprints).
    pub port: Option<PathBuf>,
    /// USB selector (cameras): VID:PID[:SERIAL] or BUS-ADDRESS.
    pub usb: Option<String>,
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {reason}")]
    Io { file: String, reason: String },
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file}: key `{key}`: {message}")]
    Value {
        file: String,
        key: String,
        message: String,
    },
}

impl StationConfig {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<StationConfig, ConfigError> {
        let file = path.display().to_string();
        let src = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
            file: file.clone(),
            reason: e.to_string(),
        })?;
        Self::parse(&file, &src)
    }

    pub fn parse(file: &str, src: &str) -> Result<StationConfig, ConfigError> {
        let c: StationConfig = toml::from_str(src).map_err(|e| {
            let (line, column) = e
                .span()
                .map_or((1, 1), |s| tamga_profiles::line_col(src, s.start));
            ConfigError::Syntax {
                file: file.into(),
                line,
                column,
                message: e.message().trim().into(),
            }
        })?;
        let bad = |key: &str, message: String| {
            Err(ConfigError::Value {
                file: file.into(),
                key: key.into(),
                message,
            })
        };
        if !c.central.url.starts_with("https://") {
            return bad(
                "central.url",
                format!("`{}` must be an https:// URL (mutual TLS)", c.central.url),
            );
        }
        if !c.api.listen.ip().is_loopback() {
            return bad(
                "api.listen",
                format!(
                    "{} is not a loopback address: the local API serves this workstation only (TLS with client \
                     authentication for remote access is not supported); use 127.0.0.1:4480",
                    c.api.listen
                ),
            );
        }
        if (4501..=4600).contains(&c.api.listen.port()) {
            return bad(
                "api.listen",
                format!(
                    "port {} is in 4501-4600, where vendors' SBI device services (slap scanners, cameras) take \
                     their port: the agent would keep one of them from starting or be probed as one; use another \
                     port (default 4480)",
                    c.api.listen.port()
                ),
            );
        }
        if c.api.max_connections < 4 {
            return bad(
                "api.max_connections",
                format!(
                    "{} is too few: the operator page alone holds an event stream, the live view and its \
                     requests; use at least 4 (default {})",
                    c.api.max_connections,
                    default_max_connections()
                ),
            );
        }
        if c.api.max_sessions == 0 || c.api.session_idle_minutes == 0 {
            return bad(
                "api.max_sessions",
                "api.max_sessions and api.session_idle_minutes must be at least 1".to_owned(),
            );
        }
        if let Some(o) = c
            .api
            .allowed_origins
            .iter()
            .find(|o| o.contains('*') || !o.starts_with("http"))
        {
            return bad(
                "api.allowed_origins",
                format!("`{o}`: list exact origins such as http://127.0.0.1:4480; no wildcards"),
            );
        }
        if !crate::ui::LANGUAGES.contains(&c.ui.language.as_str()) {
            return bad(
                "ui.language",
                format!(
                    "`{}` has no message file; use one of {}",
                    c.ui.language,
                    crate::ui::LANGUAGES.join(", ")
                ),
            );
        }
        for (i, d) in c.devices.iter().enumerate() {
            let key = format!("devices[{i}]");
            match d.role.as_str() {
                "document" | "fingerprint" if d.port.is_none() => {
                    return bad(
                        &format!("{key}.port"),
                        format!("a {} device needs its serial port, e.g. /dev/ttyUSB0", d.role),
                    );
                }
                "camera" if d.usb.is_none() => {
                    return bad(
                        &format!("{key}.usb"),
                        "a camera needs its USB selector, e.g. \"04b0:010d\"".into(),
                    );
                }
                "document" | "fingerprint" | "camera" => {}
                other => {
                    return bad(
                        &format!("{key}.role"),
                        format!("`{other}`: use document, fingerprint or camera"),
                    );
                }
            }
        }
        if let Err(m) = c.photo_policy.validate() {
            return bad("photo_policy", m);
        }
        Ok(c)
    }
}

/// Today's date in the workstation's time zone (UTC if the zone cannot be read).
pub fn today() -> time::Date {
    time::OffsetDateTime::now_local()
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc())
        .date()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../examples/station.toml");

    #[test]
    fn the_example_config_parses() {
        let c = StationConfig::parse("examples/station.toml", EXAMPLE).unwrap();
        assert_eq!(c.api.listen.port(), 4480);
        assert_eq!(c.devices.len(), 3);
        assert_eq!(c.fingerprint_policy.default.attempts, 3);
    }

    #[test]
    fn the_api_keeps_out_of_the_sbi_port_range() {
        for port in [4501, 4550, 4600] {
            let e = StationConfig::parse(
                "s.toml",
                &EXAMPLE.replace("127.0.0.1:4480\"", &format!("127.0.0.1:{port}\"")),
            )
            .unwrap_err()
            .to_string();
            assert!(e.contains("api.listen") && e.contains("SBI"), "{e}");
        }
        for port in [4480, 4500, 4601] {
            let c = StationConfig::parse(
                "s.toml",
                &EXAMPLE.replace("127.0.0.1:4480\"", &format!("127.0.0.1:{port}\"")),
            );
            assert!(c.is_ok(), "{port}: {c:?}");
        }
    }

    #[test]
    fn errors_name_file_key_and_fix() {
        let e = StationConfig::parse("s.toml", &EXAMPLE.replace("127.0.0.1:4480\"", "0.0.0.0:4480\""))
            .unwrap_err();
        assert!(e.to_string().starts_with("s.toml: key `api.listen`"), "{e}");
        let e = StationConfig::parse(
            "s.toml",
            &EXAMPLE.replace("role = \"camera\"", "role = \"scanner\""),
        )
        .unwrap_err();
        assert!(e.to_string().contains("devices[2].role"), "{e}");
        let e = StationConfig::parse(
            "s.toml",
            &EXAMPLE.replace("language = \"ru\"", "language = \"de\""),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("ui.language") && e.to_string().contains("en, ru, kk"),
            "{e}"
        );
        let e = StationConfig::parse("s.toml", &EXAMPLE.replace("[central]", "[centrall]")).unwrap_err();
        assert!(matches!(e, ConfigError::Syntax { .. }), "{e}");
    }
}
