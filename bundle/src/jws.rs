//! JWS (RFC 7515) compact serialization with ES256 (RFC 7518 section 3.4: ECDSA P-256 SHA-256, signature = R || S,
//! 64 bytes) and the signer's certificate chain in `x5c`.

use crate::b64;
use crate::error::BundleError;
use ring::signature::{ECDSA_P256_SHA256_FIXED, EcdsaKeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

/// The media type of the manifest JWS (`typ`).
pub const TYP: &str = "tamga-manifest+jws";

/// The protected header. Exactly these members; a JWS with others is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub alg: String,
    pub typ: String,
    /// DER certificates, standard base64: the signer's first, then its issuing CA.
    pub x5c: Vec<String>,
}

/// Signs `payload`; returns the compact serialization.
pub fn sign(payload: &[u8], key: &EcdsaKeyPair, chain_der: &[Vec<u8>]) -> Result<String, BundleError> {
    let header = Header {
        alg: "ES256".into(),
        typ: TYP.into(),
        x5c: chain_der.iter().map(|c| b64::std(c)).collect(),
    };
    let header_json = serde_json::to_vec(&header).map_err(|e| BundleError::Internal(e.to_string()))?;
    let signing_input = format!("{}.{}", b64::url(&header_json), b64::url(payload));
    let rng = ring::rand::SystemRandom::new();
    let sig = key
        .sign(&rng, signing_input.as_bytes())
        .map_err(|_| BundleError::Internal("ECDSA signing failed".into()))?;
    Ok(format!("{signing_input}.{}", b64::url(sig.as_ref())))
}

/// A parsed, not yet verified JWS.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub header: Header,
    pub payload: Vec<u8>,
    signing_input: String,
    signature: Vec<u8>,
}

/// Parses the compact serialization strictly.
pub fn parse(compact: &str) -> Result<Parsed, BundleError> {
    let bad = |why: &str| BundleError::Manifest(format!("manifest.jws: {why}"));
    let parts: Vec<&str> = compact.trim_end_matches('\n').split('.').collect();
    let [h, p, s] = parts[..] else {
        return Err(bad("not a JWS compact serialization (needs 3 parts)"));
    };
    let header_json = b64::url_decode(h).ok_or_else(|| bad("protected header is not base64url"))?;
    let header: Header =
        serde_json::from_slice(&header_json).map_err(|e| bad(&format!("protected header: {e}")))?;
    if header.alg != "ES256" {
        return Err(bad(&format!("alg {} is not ES256", header.alg)));
    }
    if header.typ != TYP {
        return Err(bad(&format!("typ {} is not {TYP}", header.typ)));
    }
    let payload = b64::url_decode(p).ok_or_else(|| bad("payload is not base64url"))?;
    let signature = b64::url_decode(s).ok_or_else(|| bad("signature is not base64url"))?;
    if signature.len() != 64 {
        return Err(bad(&format!(
            "ES256 signature of {} bytes, expected 64 (R || S)",
            signature.len()
        )));
    }
    Ok(Parsed {
        header,
        payload,
        signing_input: format!("{h}.{p}"),
        signature,
    })
}

impl Parsed {
    /// Verifies the signature with an uncompressed P-256 public key point (65 bytes).
    pub fn verify(&self, public_point: &[u8]) -> Result<(), BundleError> {
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public_point)
            .verify(self.signing_input.as_bytes(), &self.signature)
            .map_err(|_| {
                BundleError::Signature(
                    "the manifest signature does not verify with the station certificate's key".into(),
                )
            })
    }

    /// The DER certificates of `x5c`.
    pub fn chain_der(&self) -> Result<Vec<Vec<u8>>, BundleError> {
        self.header
            .x5c
            .iter()
            .enumerate()
            .map(|(i, c)| {
                b64::std_decode(c)
                    .ok_or_else(|| BundleError::Certificate(format!("x5c[{i}] is not standard base64 DER")))
            })
            .collect()
    }
}
