//! The ZIP archive inside the envelope: `manifest.jws` first, then the item files, every entry STORED (the images
//! are compressed already), fixed timestamps (1980-01-01 00:00), so the same content gives the same archive.

use crate::error::BundleError;
use std::io::{Cursor, Read, Write};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

/// The manifest's name in the archive.
pub const MANIFEST: &str = "manifest.jws";
/// Largest archive a bundle may hold (ten fingers and a photo need a few MB).
pub const MAX_BYTES: u64 = 64 * 1024 * 1024;
const MAX_ENTRIES: usize = 64;

/// Item files: (name, bytes), in archive order.
pub type Files = Vec<(String, Vec<u8>)>;

/// A valid item file name: 1-64 of a-z, 0-9, `.`, `_`, `-`; no directories.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
}

/// Writes the archive.
pub fn write(manifest_jws: &str, items: &[(String, Vec<u8>)]) -> Result<Vec<u8>, BundleError> {
    let err = |e: zip::result::ZipError| BundleError::Internal(format!("zip: {e}"));
    let io = |e: std::io::Error| BundleError::Internal(format!("zip: {e}"));
    let mut z = ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .last_modified_time(zip::DateTime::default());
    z.start_file(MANIFEST, opts).map_err(err)?;
    z.write_all(manifest_jws.as_bytes()).map_err(io)?;
    for (name, bytes) in items {
        if !valid_name(name) || name == MANIFEST {
            return Err(BundleError::Structure(format!(
                "item file name `{name}` is not allowed"
            )));
        }
        z.start_file(name.as_str(), opts).map_err(err)?;
        z.write_all(bytes).map_err(io)?;
    }
    Ok(z.finish().map_err(err)?.into_inner())
}

/// Reads the archive: the manifest JWS text and the items, in archive order.
pub fn read(bytes: &[u8]) -> Result<(String, Files), BundleError> {
    let bad = |why: String| BundleError::Archive(why);
    let mut z = ZipArchive::new(Cursor::new(bytes)).map_err(|e| bad(format!("not a ZIP archive: {e}")))?;
    if z.len() > MAX_ENTRIES {
        return Err(bad(format!("{} entries, at most {MAX_ENTRIES}", z.len())));
    }
    let mut manifest = None;
    let mut items: Files = Vec::new();
    let mut total = 0u64;
    for i in 0..z.len() {
        let mut f = z.by_index(i).map_err(|e| bad(format!("entry {i}: {e}")))?;
        let name = f.name().to_owned();
        if f.compression() != CompressionMethod::Stored {
            return Err(bad(format!(
                "entry `{name}` is compressed; every entry must be STORED"
            )));
        }
        if f.is_dir() || !(valid_name(&name) || name == MANIFEST) {
            return Err(bad(format!("entry name `{name}` is not allowed")));
        }
        total += f.size();
        if total > MAX_BYTES {
            return Err(bad(format!("content exceeds {MAX_BYTES} bytes")));
        }
        let mut data = Vec::with_capacity(f.size() as usize);
        f.read_to_end(&mut data)
            .map_err(|e| bad(format!("entry `{name}`: {e}")))?;
        if name == MANIFEST {
            if i != 0 {
                return Err(bad(format!("`{MANIFEST}` must be the first entry")));
            }
            manifest = Some(String::from_utf8(data).map_err(|_| bad(format!("`{MANIFEST}` is not UTF-8")))?);
        } else {
            if items.iter().any(|(n, _)| n == &name) {
                return Err(bad(format!("entry `{name}` appears twice")));
            }
            items.push((name, data));
        }
    }
    let manifest = manifest.ok_or_else(|| bad(format!("no `{MANIFEST}`")))?;
    Ok((manifest, items))
}
