//! Reading configuration tables from TOML files, with errors that name the file, the line, the key and the fix.

use serde::de::DeserializeOwned;
use std::path::Path;

/// A configuration file that cannot be used.
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
    #[error("{file}: table `[{table}]`: {message}")]
    Table {
        file: String,
        table: String,
        message: String,
    },
}

/// Reads table `[table]` of the TOML file at `path` into `T` (missing table: `T::default()`), then `check`s it.
pub fn load_table<T: DeserializeOwned + Default>(
    path: &Path,
    table: &str,
    check: impl Fn(&T) -> Result<(), String>,
) -> Result<T, ConfigError> {
    let file = path.display().to_string();
    let src = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
        file: file.clone(),
        reason: e.to_string(),
    })?;
    let doc: toml::Table = toml::from_str(&src).map_err(|e| {
        let (line, column) = e
            .span()
            .map_or((1, 1), |s| tamga_profiles::line_col(&src, s.start));
        ConfigError::Syntax {
            file: file.clone(),
            line,
            column,
            message: e.message().trim().to_owned(),
        }
    })?;
    let value = match doc.get(table) {
        Some(v) => v.clone(),
        None => return Ok(T::default()),
    };
    let t: T = value
        .try_into()
        .map_err(|e: toml::de::Error| ConfigError::Table {
            file: file.clone(),
            table: table.into(),
            message: e.message().trim().into(),
        })?;
    check(&t).map_err(|message| ConfigError::Table {
        file,
        table: table.into(),
        message,
    })?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tamga_quality::photo::PhotoPolicy;

    #[test]
    fn photo_policy_from_a_file_with_named_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("station.toml");
        std::fs::write(&p, "[photo_policy]\nbrightness_min = 90.0\n").unwrap();
        let pol: PhotoPolicy = load_table(&p, "photo_policy", PhotoPolicy::validate).unwrap();
        assert_eq!(pol.brightness_min, 90.0);
        assert_eq!(pol.crop_width, 413, "unset keys keep their defaults");
        std::fs::write(&p, "[photo_policy]\ncrop_width = 500\n").unwrap();
        let e = load_table::<PhotoPolicy>(&p, "photo_policy", PhotoPolicy::validate)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("station.toml") && e.contains("crop_height") && e.contains("35/45"),
            "{e}"
        );
        std::fs::write(&p, "[photo_policy]\nbrightnes_min = 90.0\n").unwrap();
        let e = load_table::<PhotoPolicy>(&p, "photo_policy", PhotoPolicy::validate)
            .unwrap_err()
            .to_string();
        assert!(e.contains("brightnes_min"), "{e}");
        std::fs::write(&p, "[photo_policy\n").unwrap();
        let e = load_table::<PhotoPolicy>(&p, "photo_policy", PhotoPolicy::validate)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with(&format!("{}:1:", p.display())), "{e}");
    }
}
