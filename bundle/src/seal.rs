//! Making a bundle (sign the manifest, pack, seal) and opening one (decrypt, unpack, verify everything).

use crate::archive;
use crate::b64::sha256_hex;
use crate::error::BundleError;
use crate::iso19794::{FaceImageRecord, FingerImageRecord};
use crate::manifest::{self, Manifest};
use crate::{jwe, jws, pki};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};

/// The station's signing identity.
#[derive(Debug)]
pub struct StationSigner {
    key: EcdsaKeyPair,
    /// Station certificate first, then the station-issuing CA.
    chain: Vec<Vec<u8>>,
    station_id: String,
}

impl StationSigner {
    /// From the PEM texts of the station key (PKCS#8) and its certificate chain (station cert, then its CA).
    pub fn from_pem(key_pem: &str, chain_pem: &[&str]) -> Result<Self, BundleError> {
        let der = pki::pkcs8_from_pem(key_pem)?;
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &der,
            &ring::rand::SystemRandom::new(),
        )
        .map_err(|e| BundleError::Key(format!("station key is not a P-256 PKCS#8 key: {e}")))?;
        let mut chain = Vec::new();
        for p in chain_pem {
            chain.extend(pki::certs_from_pem(p)?);
        }
        let leaf = pki::cert_info(
            chain
                .first()
                .ok_or_else(|| BundleError::Key("no station certificate".into()))?,
        )?;
        use ring::signature::KeyPair as _;
        if key.public_key().as_ref() != leaf.public_point.as_slice() {
            return Err(BundleError::Key(
                "the station key does not match the station certificate".into(),
            ));
        }
        Ok(StationSigner {
            key,
            chain,
            station_id: leaf.common_name,
        })
    }

    /// The station id: the certificate's common name.
    pub fn station_id(&self) -> &str {
        &self.station_id
    }
}

/// A sealed bundle and what the station keeps of it.
#[derive(Debug, Clone)]
pub struct Sealed {
    /// The JWE compact serialization.
    pub jwe: String,
    /// SHA-256 (hex) of `manifest.jws`: the next bundle's `previous_bundle_sha256`.
    pub manifest_sha256: String,
}

/// Signs the manifest, packs it with the items and seals the archive to the central system's public point.
pub fn seal(
    manifest: &Manifest,
    items: &[(String, Vec<u8>)],
    signer: &StationSigner,
    central_point: &[u8],
) -> Result<Sealed, BundleError> {
    if manifest.station_id != signer.station_id {
        return Err(BundleError::Structure(format!(
            "manifest station_id `{}` differs from the signing certificate's `{}`",
            manifest.station_id, signer.station_id
        )));
    }
    check_items(manifest, items)?;
    let payload = serde_json::to_vec(manifest).map_err(|e| BundleError::Internal(e.to_string()))?;
    let jws = jws::sign(&payload, &signer.key, &signer.chain)?;
    let zip = archive::write(&jws, items)?;
    Ok(Sealed {
        jwe: jwe::seal(&zip, central_point)?,
        manifest_sha256: sha256_hex(jws.as_bytes()),
    })
}

/// An opened, fully verified bundle.
#[derive(Debug, Clone)]
pub struct Verified {
    pub manifest: Manifest,
    pub items: Vec<(String, Vec<u8>)>,
    /// The signed manifest as it was in the archive.
    pub manifest_jws: String,
    pub manifest_sha256: String,
    /// Station certificate expiry (Unix seconds).
    pub station_cert_not_after: i64,
}

/// Decrypts with the central key, verifies the signature, the chain to `root_der` at `now`, every item and the
/// record's structure. The first failure is returned, named precisely.
pub fn open(
    jwe_compact: &str,
    central: &p256::SecretKey,
    root_der: &[u8],
    now: i64,
) -> Result<Verified, BundleError> {
    let (_, zip) = jwe::open(jwe_compact, central)?;
    let (manifest_jws, items) = archive::read(&zip)?;
    let parsed = jws::parse(&manifest_jws)?;
    let chain = parsed.chain_der()?;
    let leaf = pki::verify_station_chain(&chain, root_der, now)?;
    parsed.verify(&leaf.public_point)?;
    let manifest: Manifest =
        serde_json::from_slice(&parsed.payload).map_err(|e| BundleError::Manifest(format!("JSON: {e}")))?;
    if manifest.station_id != leaf.common_name {
        return Err(BundleError::Certificate(format!(
            "signed by `{}` but the manifest names station `{}`",
            leaf.common_name, manifest.station_id
        )));
    }
    check_items(&manifest, &items)?;
    Ok(Verified {
        manifest_sha256: sha256_hex(manifest_jws.as_bytes()),
        manifest,
        items,
        manifest_jws,
        station_cert_not_after: leaf.not_after,
    })
}

/// The checks both sides run: header fields, the item list against the files, digests, the ISO records against
/// what the manifest says of them, and completeness against the `complete` flag.
pub fn check_items(m: &Manifest, items: &[(String, Vec<u8>)]) -> Result<(), BundleError> {
    let structure = |why: String| Err(BundleError::Structure(why));
    if m.format != manifest::FORMAT || m.version != manifest::VERSION {
        return structure(format!(
            "format/version {}/{} is not {}/{}",
            m.format,
            m.version,
            manifest::FORMAT,
            manifest::VERSION
        ));
    }
    if uuid::Uuid::parse_str(&m.bundle_id).map(|u| u.get_version_num()) != Ok(7) {
        return structure(format!("bundle_id `{}` is not a UUIDv7", m.bundle_id));
    }
    if m.previous_bundle_sha256.len() != 64
        || !m.previous_bundle_sha256.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return structure("previous_bundle_sha256 is not 64 hex digits".into());
    }
    for it in &m.items {
        if !archive::valid_name(&it.file) {
            return structure(format!("item file name `{}` is not allowed", it.file));
        }
        if m.items.iter().filter(|o| o.file == it.file).count() > 1 {
            return structure(format!("item `{}` is listed twice", it.file));
        }
        let Some((_, bytes)) = items.iter().find(|(n, _)| *n == it.file) else {
            return Err(BundleError::Item {
                file: it.file.clone(),
                reason: "listed in the manifest but not in the archive".into(),
            });
        };
        let digest = sha256_hex(bytes);
        if digest != it.sha256 {
            return Err(BundleError::Item {
                file: it.file.clone(),
                reason: format!("SHA-256 {digest} differs from the manifest's {}", it.sha256),
            });
        }
        let item_err = |reason: String| BundleError::Item {
            file: it.file.clone(),
            reason,
        };
        match it.kind.as_str() {
            "finger" => {
                let r = FingerImageRecord::parse(bytes).map_err(|e| item_err(e.to_string()))?;
                let code = it.position.as_deref().and_then(manifest::position_code);
                if code.is_none() || code != it.position_code || Some(r.position) != code {
                    return Err(item_err(format!(
                        "finger position {:?}/{:?} disagrees with the record's {}",
                        it.position, it.position_code, r.position
                    )));
                }
                if (u32::from(r.width), u32::from(r.height)) != (it.width, it.height) {
                    return Err(item_err("image size disagrees with the record".into()));
                }
            }
            "face" => {
                let r = FaceImageRecord::parse(bytes).map_err(|e| item_err(e.to_string()))?;
                if (u32::from(r.width), u32::from(r.height)) != (it.width, it.height) {
                    return Err(item_err("image size disagrees with the record".into()));
                }
            }
            other => return Err(item_err(format!("kind `{other}` is neither finger nor face"))),
        }
    }
    for (name, _) in items {
        if !m.items.iter().any(|it| &it.file == name) {
            return structure(format!("archive entry `{name}` is not in the manifest"));
        }
    }
    let (missing, dupes, faces) = m.completeness();
    if !dupes.is_empty() {
        return structure(format!("finger positions given twice: {}", dupes.join(", ")));
    }
    let complete = missing.is_empty() && faces == 1;
    if complete != m.complete {
        return structure(format!(
            "`complete` is {} but the record has {} missing finger(s) and {faces} face(s)",
            m.complete,
            missing.len()
        ));
    }
    Ok(())
}
