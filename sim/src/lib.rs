//! Device simulators for Tamga's tests and demo.
//!
//! They live apart from the production drivers (this crate is never a dependency of `tamga-drivers`), speak the
//! same wire protocols as the real devices on real pseudo-terminals, and inject the faults real devices show.
//!
//! - [`mrz_reader`]: a serial MRZ reader that plays documents with any profile's framing.
//! - [`zfm`]: a ZFM / R30x / AS608 / R50x fingerprint module on a pty, with faults.
//! - [`ptp_camera`]: a PTP still camera behind the driver's USB transport trait, serving real JPEGs.
//! - [`passports`]: TD3 passports with real check digits (valid, expired, misprinted) for simulated applicants.
//! - [`sbi`]: a MOSIP SBI device service (slap scanner) over loopback TCP, signing with a development PKI, with faults.
//! - [`jpeg2000`]: the simulator's own small lossless JPEG 2000 encoder (8-bit grey, for SBI finger records).
//! - [`fingerprint`]: synthetic fingerprint images (orientation field, Gabor-grown ridges, acquisition knobs).

pub mod fingerprint;
pub mod jpeg2000;
pub mod mrz_reader;
pub mod passports;
pub mod ptp_camera;
pub mod pty;
pub mod rng;
pub mod sbi;
pub mod zfm;

/// ICAO Doc 9303 specimen documents, as MRZ lines, for demos and tests.
pub mod specimens {
    /// TD3 passport (Doc 9303 Part 4 specimen).
    pub const TD3: &[&str] = &[
        "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
        "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
    ];
    /// TD1 identity card (Part 5 specimen).
    pub const TD1: &[&str] = &[
        "I<UTOD231458907<<<<<<<<<<<<<<<",
        "7408122F1204159UTO<<<<<<<<<<<6",
        "ERIKSSON<<ANNA<MARIA<<<<<<<<<<",
    ];
    /// TD2 document (Part 6 specimen).
    pub const TD2: &[&str] = &[
        "I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<",
        "D231458907UTO7408122F1204159<<<<<<<6",
    ];
    /// MRV-B visa (Part 7 specimen).
    pub const MRV_B: &[&str] = &[
        "V<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<",
        "L8988901C4XXX4009078F9612109<<<<<<<<",
    ];
    /// German identity card specimen (single-letter state code `D`).
    pub const DE_ID: &[&str] = &[
        "IDD<<T220001293<<<<<<<<<<<<<<<",
        "6408125<2010315D<<<<<<<<<<<<<4",
        "MUSTERMANN<<ERIKA<<<<<<<<<<<<<",
    ];
    /// All of them, with a name.
    pub const ALL: &[(&str, &[&str])] = &[
        ("TD3", TD3),
        ("TD1", TD1),
        ("TD2", TD2),
        ("MRV-B", MRV_B),
        ("DE-ID", DE_ID),
    ];
}
