//! Capture quality checks.
//!
//! - [`fingerprint`]: a 0-100 fingerprint image quality score from documented features, in the spirit of NFIQ 2
//!   (ISO/IEC 29794-4), with each feature reported so the operator can be told why a capture was rejected.
//! - [`photo`]: ICAO-style photo checks (face, geometry, exposure, sharpness, background, colour) and the 35x45
//!   crop.

pub mod fingerprint;
pub mod photo;
