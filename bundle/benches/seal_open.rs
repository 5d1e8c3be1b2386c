//! Sealing (sign + pack + encrypt) and opening (decrypt + unpack + verify everything) a typical bundle: ten
//! 500 ppi finger records (~60 kB PNG each) and a ~150 kB face JPEG, against plain AES-256-GCM over the same bytes
//! in the same run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // bench code
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use p256::pkcs8::DecodePrivateKey;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use std::hint::black_box;
use tamga_bundle::b64::sha256_hex;
use tamga_bundle::iso19794::{CaptureTime, FaceImageRecord, FingerImageRecord};
use tamga_bundle::manifest::{self, Device, Item, Manifest, Session};
use tamga_bundle::seal::{StationSigner, open, seal};
use tamga_bundle::{devpki, pki};

fn noise(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let p = devpki::generate("BENCH-W01").unwrap();
    let signer = StationSigner::from_pem(&p.station_key, &[&p.station, &p.station_ca]).unwrap();
    let central_point = pki::cert_info(&pki::certs_from_pem(&p.central).unwrap()[0])
        .unwrap()
        .public_point;
    let central = p256::SecretKey::from_pkcs8_pem(&p.central_key).unwrap();
    let root = pki::certs_from_pem(&p.root_ca).unwrap().remove(0);
    let t = CaptureTime {
        year: 2026,
        month: 11,
        day: 21,
        hour: 10,
        minute: 0,
        second: 0,
        millisecond: 0,
    };
    let dev = Device {
        model: "m".into(),
        serial: "s".into(),
        firmware: "f".into(),
        profile: "p".into(),
        profile_sha256: "0".repeat(64),
    };
    let mut items = Vec::new();
    let mut files = Vec::new();
    for i in 0..10u8 {
        let rec = FingerImageRecord {
            capture_time: t,
            device_technology: 0,
            device_vendor: 0,
            device_type: 0,
            quality: vec![],
            position: i + 1,
            representation_number: 0,
            resolution_ppi: 500,
            bit_depth: 8,
            compression: 6,
            impression: 0,
            width: 256,
            height: 288,
            image: noise(60_000, u32::from(i) + 1),
        }
        .to_bytes();
        let file = format!("finger-{:02}.fir", i + 1);
        items.push(Item {
            file: file.clone(),
            kind: "finger".into(),
            position: Some(manifest::POSITIONS[usize::from(i)].into()),
            position_code: Some(i + 1),
            record_format: "ISO/IEC 19794-4:2011".into(),
            image_format: "png".into(),
            width: 256,
            height: 288,
            resolution_ppi: Some(500),
            quality: serde_json::json!({"score": 70}),
            device: dev.clone(),
            captured_at: "2026-11-21T10:00:00Z".into(),
            attempts: 1,
            sha256: sha256_hex(&rec),
        });
        files.push((file, rec));
    }
    let face = FaceImageRecord {
        capture_time: t,
        device_technology: 2,
        device_vendor: 0,
        device_type: 0,
        quality: vec![],
        gender: 0,
        face_image_type: 1,
        image_data_type: 0,
        width: 413,
        height: 531,
        post_processing: 0,
        colour_space: 1,
        image: noise(150_000, 99),
    }
    .to_bytes();
    items.push(Item {
        file: "face.fac".into(),
        kind: "face".into(),
        position: None,
        position_code: None,
        record_format: "ISO/IEC 19794-5:2011".into(),
        image_format: "jpeg".into(),
        width: 413,
        height: 531,
        resolution_ppi: None,
        quality: serde_json::json!({}),
        device: dev,
        captured_at: "2026-11-21T10:00:00Z".into(),
        attempts: 1,
        sha256: sha256_hex(&face),
    });
    files.push(("face.fac".into(), face));
    let m = Manifest {
        format: manifest::FORMAT.into(),
        version: 1,
        bundle_id: uuid::Uuid::now_v7().to_string(),
        centre_id: "C".into(),
        station_id: "BENCH-W01".into(),
        operator_id: "o".into(),
        session: Session {
            started_at: "a".into(),
            ended_at: "b".into(),
        },
        previous_bundle_sha256: manifest::GENESIS.into(),
        document: None,
        items,
        exceptions: vec![],
        complete: true,
    };
    let total: usize = files.iter().map(|(_, b)| b.len()).sum();
    let sealed = seal(&m, &files, &signer, &central_point).unwrap().jwe;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let plain: Vec<u8> = files.iter().flat_map(|(_, b)| b.clone()).collect();
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).unwrap());

    let mut g = c.benchmark_group("bundle_ten_fingers_and_a_face");
    g.throughput(Throughput::Bytes(total as u64));
    g.sample_size(30);
    g.bench_function("baseline_aes_256_gcm", |b| {
        b.iter(|| {
            let mut buf = plain.clone();
            key.seal_in_place_append_tag(Nonce::assume_unique_for_key([1; 12]), Aad::empty(), &mut buf)
                .unwrap();
            black_box(buf)
        })
    });
    g.bench_function("seal", |b| {
        b.iter(|| seal(black_box(&m), &files, &signer, &central_point).unwrap())
    });
    g.bench_function("open_and_verify", |b| {
        b.iter(|| open(black_box(&sealed), &central, &root, now).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
