//! The central system's receipt: a JWS (ES256, `x5c` = the central certificate) over the bundle id, the manifest
//! digest, the time the central system stored it and where. The station verifies it against the central
//! certificate it pins before it marks the bundle delivered.

use crate::b64;
use crate::error::BundleError;
use crate::pki;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, UnparsedPublicKey,
};
use serde::{Deserialize, Serialize};

/// The `typ` of a receipt.
pub const TYP: &str = "tamga-receipt+jws";

/// What the central system attests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    pub bundle_id: String,
    pub station_id: String,
    /// SHA-256 (hex) of the bundle's `manifest.jws`.
    pub manifest_sha256: String,
    /// RFC 3339, UTC.
    pub received_at: String,
    /// Where the central system keeps it.
    pub storage_ref: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    alg: String,
    typ: String,
}

/// Signs a receipt with the central key (PKCS#8 DER).
pub fn sign(receipt: &Receipt, central_key_pkcs8: &[u8]) -> Result<String, BundleError> {
    let rng = ring::rand::SystemRandom::new();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, central_key_pkcs8, &rng)
        .map_err(|e| BundleError::Key(format!("central key: {e}")))?;
    let h = serde_json::to_vec(&Header {
        alg: "ES256".into(),
        typ: TYP.into(),
    })
    .map_err(|e| BundleError::Internal(e.to_string()))?;
    let p = serde_json::to_vec(receipt).map_err(|e| BundleError::Internal(e.to_string()))?;
    let input = format!("{}.{}", b64::url(&h), b64::url(&p));
    let sig = key
        .sign(&rng, input.as_bytes())
        .map_err(|_| BundleError::Internal("ECDSA".into()))?;
    Ok(format!("{input}.{}", b64::url(sig.as_ref())))
}

/// Verifies a receipt with the central certificate (DER) the station pins, and that it is for `bundle_id` and
/// `manifest_sha256`.
pub fn verify(
    jws: &str,
    central_cert_der: &[u8],
    bundle_id: &str,
    manifest_sha256: &str,
) -> Result<Receipt, BundleError> {
    let bad = |why: String| BundleError::Signature(format!("receipt: {why}"));
    let parts: Vec<&str> = jws.trim().split('.').collect();
    let [h, p, s] = parts[..] else {
        return Err(bad("not a JWS compact serialization".into()));
    };
    let header: Header =
        serde_json::from_slice(&b64::url_decode(h).ok_or_else(|| bad("header is not base64url".into()))?)
            .map_err(|e| bad(format!("header: {e}")))?;
    if header.alg != "ES256" || header.typ != TYP {
        return Err(bad(format!(
            "alg/typ {}/{} are not ES256/{TYP}",
            header.alg, header.typ
        )));
    }
    let sig = b64::url_decode(s).ok_or_else(|| bad("signature is not base64url".into()))?;
    let point = pki::cert_info(central_cert_der)?.public_point;
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
        .verify(format!("{h}.{p}").as_bytes(), &sig)
        .map_err(|_| bad("the signature does not verify with the pinned central certificate".into()))?;
    let r: Receipt =
        serde_json::from_slice(&b64::url_decode(p).ok_or_else(|| bad("payload is not base64url".into()))?)
            .map_err(|e| bad(format!("payload: {e}")))?;
    if r.bundle_id != bundle_id || r.manifest_sha256 != manifest_sha256 {
        return Err(bad(format!(
            "it is for bundle {} / manifest {}, not this one",
            r.bundle_id, r.manifest_sha256
        )));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_refuse_a_wrong_one() {
        let p = crate::devpki::generate("W1").unwrap();
        let key = pki::pkcs8_from_pem(&p.central_key).unwrap();
        let cert = pki::certs_from_pem(&p.central).unwrap().remove(0);
        let r = Receipt {
            bundle_id: "b".into(),
            station_id: "W1".into(),
            manifest_sha256: "m".into(),
            received_at: "2026-11-21T10:00:00Z".into(),
            storage_ref: "fs:W1/b".into(),
        };
        let jws = sign(&r, &key).unwrap();
        assert_eq!(verify(&jws, &cert, "b", "m").unwrap(), r);
        assert!(verify(&jws, &cert, "other", "m").is_err());
        let other = crate::devpki::generate("W1").unwrap();
        let other_cert = pki::certs_from_pem(&other.central).unwrap().remove(0);
        assert!(
            verify(&jws, &other_cert, "b", "m")
                .unwrap_err()
                .to_string()
                .contains("pinned")
        );
    }
}
