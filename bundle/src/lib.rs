//! The Tamga capture bundle, shared by the station (which makes it) and the central system (which opens it).
//!
//! ```text
//! JWE (ECDH-ES, A256GCM, to the central P-256 key)          jwe.rs
//!  └─ ZIP, entries STORED                                    archive.rs
//!      ├─ manifest.jws   JWS (ES256, x5c = station chain)    jws.rs, pki.rs
//!      │    └─ manifest JSON                                 manifest.rs
//!      └─ item files     ISO/IEC 19794-4 / 19794-5 records   iso19794.rs
//! ```
//!
//! Byte-exact specification with a worked example: `docs/bundle-format.md`. [`seal::seal`] makes a bundle;
//! [`seal::open`] opens one and verifies everything, returning the first failure as a [`BundleError`] that names it.

pub mod archive;
pub mod b64;
pub mod devpki;
pub mod error;
pub mod iso19794;
pub mod jwe;
pub mod jws;
pub mod manifest;
pub mod pki;
pub mod receipt;
pub mod seal;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use error::BundleError;
