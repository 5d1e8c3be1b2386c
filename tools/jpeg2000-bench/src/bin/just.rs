fn main() {
    let px = std::fs::read("px.raw").unwrap();
    for (w, h) in [(192u32, 256u32), (400, 500), (1600, 1500)] {
        let sub: Vec<i32> = (0..h)
            .flat_map(|y| (0..w).map(move |x| (y, x)))
            .map(|(y, x)| px[(y * 1600 + x) as usize] as i32)
            .collect();
        let img = justjp2::Image {
            width: w,
            height: h,
            components: vec![justjp2::Component {
                data: sub.clone(),
                width: w,
                height: h,
                precision: 8,
                signed: false,
                dx: 1,
                dy: 1,
            }],
        };
        for levels in [0u32, 1, 3, 5] {
            for cb in [32u32, 64] {
                let p = justjp2::EncodeParams {
                    lossless: true,
                    num_decomp_levels: levels,
                    cblk_width: cb,
                    cblk_height: cb,
                    format: justjp2::CodecFormat::J2k,
                };
                let t = std::time::Instant::now();
                let enc = match justjp2::encode(&img, &p) {
                    Ok(e) => e,
                    Err(e) => {
                        println!("{w}x{h} L{levels} cb{cb}: encode err {e:?}");
                        continue;
                    }
                };
                let ms = t.elapsed().as_secs_f64() * 1e3;
                let own = justjp2::decode(&enc).map(|i| i.components[0].data == sub);
                let hy = hayro05::Image::new(&enc, &hayro05::DecodeSettings::default()).and_then(|i| {
                    let mut c = hayro05::DecoderContext::default();
                    i.decode(&mut c)
                        .map(|d| d.data_u8().iter().map(|&v| v as i32).collect::<Vec<_>>() == sub)
                });
                let oj = jpeg2k::Image::from_bytes(&enc).map(|i| i.components()[0].data() == &sub[..]);
                println!(
                    "{w}x{h} L{levels} cb{cb}: {} bytes {ms:.0} ms; own {own:?} hayro {hy:?} openjpeg {oj:?}",
                    enc.len()
                );
            }
        }
    }
}
