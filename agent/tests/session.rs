//! The applicant session: a full applicant to a queued, verifiable bundle; refusals that keep the session; cancel
//! leaves nothing on disk.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failed test
mod support;

use p256::pkcs8::DecodePrivateKey;
use tamga_agent::capture::fingers::{ExceptionReason, FingerPosition, Next, Policy};
use tamga_agent::outbox::{Outbox, State};
use tamga_agent::session::{ApplicantSession, SessionError};
use tamga_bundle::seal::StationSigner;
use tamga_bundle::{devpki, manifest, pki};
use tamga_quality::photo::PhotoPolicy;

const TD3: [&str; 2] = [
    "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
    "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
];

fn device() -> manifest::Device {
    manifest::Device {
        model: "R307".into(),
        serial: "SIM".into(),
        firmware: "-".into(),
        profile: "zhiantec-r307".into(),
        profile_sha256: "0".repeat(64),
    }
}

fn photo() -> Vec<u8> {
    support::portrait_jpeg()
}

fn lenient_photo_policy() -> PhotoPolicy {
    // The astronaut portrait has a studio backdrop with a gradient; this centre tolerates it.
    PhotoPolicy {
        background_uniformity_max: 40.0,
        ..PhotoPolicy::default()
    }
}

/// A good print, or (`partial`) one with only a sliver of the finger on the sensor.
fn finger(position: FingerPosition, partial: bool) -> Vec<u8> {
    let mut spec = tamga_sim::fingerprint::FingerSpec::good(21, position.code(), 256, 288, 500);
    if partial {
        spec.contact = 0.08;
    }
    tamga_sim::fingerprint::render(&spec)
}

fn session() -> ApplicantSession {
    let mut s = ApplicantSession::new("op-3", Policy::default(), lenient_photo_policy());
    let mrz = tamga_mrz::parse_lines(
        &TD3,
        &tamga_mrz::ParseOptions::new(time::macros::date!(2026 - 11 - 21)),
    )
    .unwrap();
    s.set_document(mrz);
    s
}

#[test]
fn a_full_applicant_ends_as_a_queued_verifiable_bundle() {
    let p = devpki::generate("KZ-ALA-001-W09").unwrap();
    let signer = StationSigner::from_pem(&p.station_key, &[&p.station, &p.station_ca]).unwrap();
    let central_point = pki::cert_info(&pki::certs_from_pem(&p.central).unwrap()[0])
        .unwrap()
        .public_point;
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = Outbox::open(dir.path(), 0).unwrap();
    let mut s = session();
    let report = s.add_photo(&photo(), device()).unwrap();
    assert!(report.accepted, "{report:?}");
    // The right index needs a retry: a partial first attempt, then a good one; the best is kept.
    let (next, _) = s
        .add_finger(
            FingerPosition::RightIndex,
            &finger(FingerPosition::RightIndex, true),
            256,
            288,
            500,
            device(),
        )
        .unwrap();
    assert!(matches!(next, Next::Retry { .. }), "{next:?}");
    for pos in FingerPosition::ALL
        .into_iter()
        .filter(|p| *p != FingerPosition::LeftLittle)
    {
        let (next, q) = s
            .add_finger(pos, &finger(pos, false), 256, 288, 500, device())
            .unwrap();
        assert!(matches!(next, Next::Accepted { .. }), "{pos:?} {next:?} {q:?}");
    }
    s.declare_exception(FingerPosition::LeftLittle, ExceptionReason::Bandaged);
    assert!(s.state().ready);
    let done = s
        .finalize(&signer, &central_point, &mut outbox, "KZ-ALA-001")
        .unwrap();
    assert_eq!(
        outbox.status(&done.bundle_id).unwrap().unwrap().state,
        State::Queued
    );
    assert_eq!(
        outbox.chain_head("KZ-ALA-001-W09").unwrap().as_deref(),
        Some(done.manifest_sha256.as_str())
    );
    // The central side can open it, and it is complete.
    let claimed = outbox.claim_due(1).unwrap().remove(0);
    let central = p256::SecretKey::from_pkcs8_pem(&p.central_key).unwrap();
    let root = pki::certs_from_pem(&p.root_ca).unwrap().remove(0);
    let v = tamga_bundle::seal::open(
        &claimed.jwe,
        &central,
        &root,
        time::OffsetDateTime::now_utc().unix_timestamp(),
    )
    .unwrap();
    assert!(v.manifest.complete);
    assert_eq!(v.items.len(), 10, "nine fingers and the face");
    assert_eq!(v.manifest.exceptions[0].code, "UP");
    let ri = v
        .manifest
        .items
        .iter()
        .find(|i| i.position.as_deref() == Some("right-index"))
        .unwrap();
    assert_eq!(ri.attempts, 2, "the retry is counted");
    let face = v.manifest.items.iter().find(|i| i.kind == "face").unwrap();
    assert_eq!(
        (face.width, face.height),
        (413, 531),
        "the 35x45 crop is what is sent"
    );
}

#[test]
fn finalize_refuses_an_incomplete_record_and_hands_the_session_back() {
    let p = devpki::generate("KZ-ALA-001-W09").unwrap();
    let signer = StationSigner::from_pem(&p.station_key, &[&p.station, &p.station_ca]).unwrap();
    let central_point = pki::cert_info(&pki::certs_from_pem(&p.central).unwrap()[0])
        .unwrap()
        .public_point;
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = Outbox::open(dir.path(), 0).unwrap();
    let s = ApplicantSession::new("op", Policy::default(), lenient_photo_policy());
    let (s, e) = s.finalize(&signer, &central_point, &mut outbox, "C").unwrap_err();
    assert!(matches!(e, SessionError::NoDocument), "{e}");
    let mut s = *s;
    let mrz = tamga_mrz::parse_lines(
        &TD3,
        &tamga_mrz::ParseOptions::new(time::macros::date!(2026 - 11 - 21)),
    )
    .unwrap();
    s.set_document(mrz);
    let (s, e) = s.finalize(&signer, &central_point, &mut outbox, "C").unwrap_err();
    assert!(matches!(e, SessionError::NoFace), "{e}");
    let mut s = *s;
    s.add_photo(&photo(), device()).unwrap();
    s.add_finger(
        FingerPosition::RightThumb,
        &finger(FingerPosition::RightThumb, false),
        256,
        288,
        500,
        device(),
    )
    .unwrap();
    let (_, e) = s.finalize(&signer, &central_point, &mut outbox, "C").unwrap_err();
    match e {
        SessionError::FingersMissing(list) => assert!(
            list.contains("left little finger") && !list.contains("right thumb"),
            "{list}"
        ),
        other => panic!("{other}"),
    }
    assert!(outbox.ids().unwrap().is_empty(), "nothing was queued");
}

#[test]
fn cancel_leaves_nothing_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let before: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    let mut s = session();
    s.add_photo(&photo(), device()).unwrap();
    s.add_finger(
        FingerPosition::RightThumb,
        &finger(FingerPosition::RightThumb, false),
        256,
        288,
        500,
        device(),
    )
    .unwrap();
    s.cancel();
    let after: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(before.len(), after.len());
}
