use std::time::Instant;

fn finger(w: u32, h: u32) -> Vec<u8> {
    // fingerprint-like: curved ridges of ~9 px period, contrast fading at the edges, light noise
    let mut seed: u64 = 0x1234_5678;
    let (cx, cy) = (w as f64 / 2.0, h as f64 / 2.0);
    let mut px = Vec::with_capacity((w * h) as usize);
    for y in 0..h {
        for x in 0..w {
            let (dx, dy) = (x as f64 - cx, y as f64 - cy);
            let r = (dx * dx + 0.6 * dy * dy).sqrt();
            let a = dy.atan2(dx);
            let phase = r / 9.0 * std::f64::consts::TAU + 2.0 * a;
            let env = (1.0 - (r / (0.55 * w as f64)).powi(4)).max(0.0);
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let noise = ((seed >> 33) % 17) as f64 - 8.0;
            let v = 200.0 - env * (90.0 + 80.0 * phase.sin()) + noise;
            px.push(v.clamp(0.0, 255.0) as u8);
        }
    }
    px
}

fn time<T>(name: &str, n: u32, mut f: impl FnMut() -> T) -> f64 {
    f();
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(f());
    }
    let ms = t.elapsed().as_secs_f64() * 1000.0 / n as f64;
    println!("  {name:40} {ms:8.1} ms");
    ms
}

fn main() {
    let (w, h) = (1600u32, 1500u32);
    let px = std::fs::read("px.raw").unwrap();
    assert_eq!(px.len(), (w * h) as usize);
    let _ = finger;
    let j2k_opj = std::fs::read("pil.j2k").unwrap();
    let jp2_opj = std::fs::read("pil.jp2").unwrap();
    println!(
        "OpenJPEG 2.5.4 (Pillow) lossless: J2K {} bytes ({:.2}:1)",
        j2k_opj.len(),
        (w * h) as f64 / j2k_opj.len() as f64
    );
    let backend = if cfg!(feature = "c-threads") {
        "jpeg2k + openjpeg-sys (C, all CPUs)"
    } else if cfg!(feature = "c") {
        "jpeg2k + openjpeg-sys (C, 1 thread)"
    } else {
        "jpeg2k + openjp2 (Rust port)"
    };

    for (label, data) in [("OpenJPEG J2K", &j2k_opj), ("OpenJPEG JP2", &jp2_opj)] {
        // correctness first
        let h3 = hayro03::Image::new(data, &hayro03::DecodeSettings::default())
            .and_then(|i| i.decode())
            .map(|v| v == px);
        let h5 = hayro05::Image::new(data, &hayro05::DecodeSettings::default()).and_then(|i| {
            let mut ctx = hayro05::DecoderContext::default();
            i.decode(&mut ctx).map(|d| d.data_u8().to_vec() == px)
        });
        let jk = jpeg2k::Image::from_bytes(data).map(|i| {
            i.components()[0]
                .data()
                .iter()
                .map(|&v| v as u8)
                .collect::<Vec<u8>>()
                == px
        });
        let js = justjp2::decode(data)
            .map(|i| i.components[0].data.iter().map(|&v| v as u8).collect::<Vec<u8>>() == px);
        println!("{label}: exact? hayro0.3 {h3:?} hayro0.5 {h5:?} {backend} {jk:?} justjp2 {js:?}");
        if h3.is_err() || h5.is_err() || jk.is_err() {
            continue;
        }
        let n = 10;
        let base = time("hayro-jpeg2000 0.3.5", n, || {
            hayro03::Image::new(data, &hayro03::DecodeSettings::default())
                .unwrap()
                .decode()
                .unwrap()
        });
        let r5 = time("hayro-jpeg2000 0.5", n, || {
            let i = hayro05::Image::new(data, &hayro05::DecodeSettings::default()).unwrap();
            let mut c = hayro05::DecoderContext::default();
            i.decode(&mut c).unwrap().data_u8().len()
        });
        let rk = time(backend, n, || jpeg2k::Image::from_bytes(data).unwrap());
        let rj = 0.0;
        println!(
            "  ratios to hayro 0.3.5: hayro0.5 {:.2}x, {backend} {:.2}x",
            r5 / base,
            rk / base
        );
        let _ = rj;
    }
}
