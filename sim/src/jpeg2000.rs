//! The simulator's own lossless JPEG 2000 encoder (ISO/IEC 15444-1), small on purpose: 8-bit grey, a raw J2K
//! codestream, reversible 5/3 path with no wavelet decomposition (NL = 0: the samples, level-shifted, are the
//! coefficients), 64x64 tiles each holding one 64x64 code block, one quality layer, one packet per tile, the MQ
//! coder with a single codeword segment. Real devices' encoders (OpenJPEG, Kakadu) decompose; a decoder must read
//! both, and this one exists so that the simulator does not share a codec with the agent (which decodes with
//! `hayro-jpeg2000`). Not a general encoder: no colour, no decomposition, no rate control.

/// Encodes `pixels` (row-major 8-bit grey, `width` x `height`) as a lossless J2K codestream.
pub fn encode_grey_lossless(width: u32, height: u32, pixels: &[u8]) -> Option<Vec<u8>> {
    const TILE: u32 = 64;
    if width == 0 || height == 0 || pixels.len() != width as usize * height as usize {
        return None;
    }
    let mut out = Vec::new();
    out.extend_from_slice(&[0xff, 0x4f]); // SOC
    // SIZ: one unsigned 8-bit component, 64x64 tiles.
    out.extend_from_slice(&[0xff, 0x51, 0, 41, 0, 0]);
    for v in [width, height, 0, 0, TILE, TILE, 0, 0] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(&[0, 1, 7, 1, 1]);
    // COD: LRCP, 1 layer, no MCT; NL = 0, 64x64 code blocks, no code-block style, reversible 5/3.
    out.extend_from_slice(&[0xff, 0x52, 0, 12, 0, 0, 0, 1, 0, 0, 4, 4, 0, 1]);
    // QCD: no quantisation, 2 guard bits, exponent 8 for the one (LL) sub-band.
    out.extend_from_slice(&[0xff, 0x5c, 0, 4, 0x40, 8 << 3]);
    let tiles_x = width.div_ceil(TILE);
    let tiles_y = height.div_ceil(TILE);
    for ty in 0..tiles_y {
        for tx in 0..tiles_x {
            let (x0, y0) = (tx * TILE, ty * TILE);
            let (w, h) = ((width - x0).min(TILE), (height - y0).min(TILE));
            let mut coeffs = Vec::with_capacity((w * h) as usize);
            for y in y0..y0 + h {
                let row = (y * width) as usize;
                for x in x0..x0 + w {
                    coeffs.push(i32::from(pixels[row + x as usize]) - 128);
                }
            }
            let packet = packet(&coeffs, w as usize, h as usize);
            let index = u16::try_from(ty * tiles_x + tx).ok()?;
            let psot = u32::try_from(12 + 2 + packet.len()).ok()?;
            out.extend_from_slice(&[0xff, 0x90, 0, 10]);
            out.extend_from_slice(&index.to_be_bytes());
            out.extend_from_slice(&psot.to_be_bytes());
            out.extend_from_slice(&[0, 1]); // tile-part 0 of 1
            out.extend_from_slice(&[0xff, 0x93]); // SOD
            out.extend_from_slice(&packet);
        }
    }
    out.extend_from_slice(&[0xff, 0xd9]); // EOC
    Some(out)
}

/// Mb = guard bits + exponent - 1 (E.1.1.2).
const MB: u32 = 2 + 8 - 1;

/// The tile's one packet: header (B.10) then the code block's bytes.
fn packet(coeffs: &[i32], w: usize, h: usize) -> Vec<u8> {
    let max = coeffs.iter().map(|c| c.unsigned_abs()).max().unwrap_or(0);
    if max == 0 {
        return vec![0]; // an empty packet
    }
    let planes = 32 - max.leading_zeros(); // K
    let data = code_block(coeffs, w, h, planes);
    let passes = 1 + 3 * (planes - 1);
    let mut bits = BitWriter::default();
    bits.put(1, 1); // not empty
    bits.put(1, 1); // inclusion tag tree, one leaf of value 0: included in layer 0
    for _ in 0..MB - planes {
        bits.put(0, 1); // zero bit-planes tag tree: P zeros, then a one
    }
    bits.put(1, 1);
    match passes {
        1 => bits.put(0, 1),
        2 => bits.put(0b10, 2),
        3..=5 => bits.put(0b1100 | (passes - 3), 4),
        6..=36 => bits.put((0b1111 << 5) | (passes - 6), 9),
        _ => bits.put((0b1_1111_1111 << 7) | (passes - 37), 16),
    }
    // Lblock starts at 3; the length takes Lblock + floor(log2(passes)) bits.
    let log2 = 31 - passes.leading_zeros();
    let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let needed = (32 - len.leading_zeros()).max(1);
    let mut lblock = 3;
    while lblock + log2 < needed {
        bits.put(1, 1);
        lblock += 1;
    }
    bits.put(0, 1);
    bits.put(len, lblock + log2);
    let mut out = bits.finish();
    out.extend_from_slice(&data);
    out
}

/// Packet-header bits, MSB first, with a stuffed zero bit after every 0xFF byte (B.10.1).
struct BitWriter {
    out: Vec<u8>,
    byte: u8,
    used: u8,
    /// 8, or 7 after a 0xFF byte.
    cap: u8,
}

impl Default for BitWriter {
    fn default() -> Self {
        BitWriter {
            out: Vec::new(),
            byte: 0,
            used: 0,
            cap: 8,
        }
    }
}

impl BitWriter {
    fn put(&mut self, value: u32, n: u32) {
        for i in (0..n).rev() {
            self.byte = (self.byte << 1) | ((value >> i) & 1) as u8;
            self.used += 1;
            if self.used == self.cap {
                self.out.push(self.byte);
                self.cap = if self.byte == 0xff { 7 } else { 8 };
                self.byte = 0;
                self.used = 0;
            }
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.used > 0 {
            self.out.push(self.byte << (self.cap - self.used));
        }
        // A header never ends on 0xFF: its stuffed bit goes in a byte of its own.
        if self.out.last() == Some(&0xff) {
            self.out.push(0);
        }
        self.out
    }
}

// Contexts (D.3): 0-8 zero coding, 9-13 sign, 14-16 refinement, 17 run length, 18 uniform.
const RL: usize = 17;
const UNIFORM: usize = 18;

const SIG: u8 = 1;
const VISITED: u8 = 2;
const REFINED: u8 = 4;
const NEW: u8 = 8; // became significant in this bit-plane

/// EBCOT tier 1 for one code block (all passes, one MQ codeword segment).
fn code_block(coeffs: &[i32], w: usize, h: usize, planes: u32) -> Vec<u8> {
    let mut mq = Mq::new();
    let mut state = vec![0u8; w * h];
    let sig = |state: &[u8], x: isize, y: isize| -> bool {
        x >= 0
            && y >= 0
            && (x as usize) < w
            && (y as usize) < h
            && state[y as usize * w + x as usize] & SIG != 0
    };
    let neg = |x: isize, y: isize| coeffs[y as usize * w + x as usize] < 0;
    let zc = |state: &[u8], x: usize, y: usize| -> usize {
        let (x, y) = (x as isize, y as isize);
        let hh = usize::from(sig(state, x - 1, y)) + usize::from(sig(state, x + 1, y));
        let vv = usize::from(sig(state, x, y - 1)) + usize::from(sig(state, x, y + 1));
        let dd = usize::from(sig(state, x - 1, y - 1))
            + usize::from(sig(state, x + 1, y - 1))
            + usize::from(sig(state, x - 1, y + 1))
            + usize::from(sig(state, x + 1, y + 1));
        match (hh, vv, dd) {
            (2, _, _) => 8,
            (1, v, _) if v >= 1 => 7,
            (1, 0, d) if d >= 1 => 6,
            (1, _, _) => 5,
            (0, 2, _) => 4,
            (0, 1, _) => 3,
            (0, 0, d) if d >= 2 => 2,
            (0, 0, 1) => 1,
            _ => 0,
        }
    };
    let sign = |state: &[u8], mq: &mut Mq, x: usize, y: usize| {
        let (xi, yi) = (x as isize, y as isize);
        let contrib = |a: (isize, isize), b: (isize, isize)| -> i32 {
            let one = |(px, py): (isize, isize)| -> i32 {
                if sig(state, px, py) {
                    if neg(px, py) { -1 } else { 1 }
                } else {
                    0
                }
            };
            (one(a) + one(b)).clamp(-1, 1)
        };
        let hc = contrib((xi - 1, yi), (xi + 1, yi));
        let vc = contrib((xi, yi - 1), (xi, yi + 1));
        let (cx, xor) = match (hc, vc) {
            (1, 1) => (13, 0),
            (1, 0) => (12, 0),
            (1, -1) => (11, 0),
            (0, 1) => (10, 0),
            (0, 0) => (9, 0),
            (0, -1) => (10, 1),
            (-1, 1) => (11, 1),
            (-1, 0) => (12, 1),
            _ => (13, 1),
        };
        let s = u8::from(coeffs[y * w + x] < 0);
        mq.encode(s ^ xor, cx);
    };
    for p in (0..planes).rev() {
        let bit = |x: usize, y: usize| (coeffs[y * w + x].unsigned_abs() >> p) & 1 == 1;
        let first = p == planes - 1;
        for s in state.iter_mut() {
            *s &= !(VISITED | NEW);
        }
        if !first {
            // Significance propagation.
            for y0 in (0..h).step_by(4) {
                for x in 0..w {
                    for y in y0..(y0 + 4).min(h) {
                        let i = y * w + x;
                        if state[i] & SIG != 0 {
                            continue;
                        }
                        let cx = zc(&state, x, y);
                        if cx == 0 {
                            continue;
                        }
                        let b = bit(x, y);
                        mq.encode(u8::from(b), cx);
                        state[i] |= VISITED;
                        if b {
                            sign(&state, &mut mq, x, y);
                            state[i] |= SIG | NEW;
                        }
                    }
                }
            }
            // Magnitude refinement.
            for y0 in (0..h).step_by(4) {
                for x in 0..w {
                    for y in y0..(y0 + 4).min(h) {
                        let i = y * w + x;
                        if state[i] & SIG == 0 || state[i] & NEW != 0 {
                            continue;
                        }
                        let cx = if state[i] & REFINED != 0 {
                            16
                        } else if zc(&state, x, y) == 0 {
                            14
                        } else {
                            15
                        };
                        mq.encode(u8::from(bit(x, y)), cx);
                        state[i] |= REFINED;
                    }
                }
            }
        }
        // Cleanup.
        for y0 in (0..h).step_by(4) {
            for x in 0..w {
                let mut y = y0;
                let end = (y0 + 4).min(h);
                if end - y0 == 4
                    && (y0..end).all(|yy| state[yy * w + x] & (SIG | VISITED) == 0 && zc(&state, x, yy) == 0)
                {
                    match (y0..end).position(|yy| bit(x, yy)) {
                        None => {
                            mq.encode(0, RL);
                            continue;
                        }
                        Some(k) => {
                            mq.encode(1, RL);
                            mq.encode(u8::from(k >> 1 == 1), UNIFORM);
                            mq.encode(u8::from(k & 1 == 1), UNIFORM);
                            let yy = y0 + k;
                            sign(&state, &mut mq, x, yy);
                            state[yy * w + x] |= SIG | NEW;
                            y = yy + 1;
                        }
                    }
                }
                while y < end {
                    let i = y * w + x;
                    if state[i] & (SIG | VISITED) == 0 {
                        let cx = zc(&state, x, y);
                        let b = bit(x, y);
                        mq.encode(u8::from(b), cx);
                        if b {
                            sign(&state, &mut mq, x, y);
                            state[i] |= SIG | NEW;
                        }
                    }
                    y += 1;
                }
            }
        }
    }
    mq.flush()
}

/// (Qe, next index after MPS, after LPS, switch MPS) — Table C.2.
const QE: [(u32, u8, u8, bool); 47] = [
    (0x5601, 1, 1, true),
    (0x3401, 2, 6, false),
    (0x1801, 3, 9, false),
    (0x0AC1, 4, 12, false),
    (0x0521, 5, 29, false),
    (0x0221, 38, 33, false),
    (0x5601, 7, 6, true),
    (0x5401, 8, 14, false),
    (0x4801, 9, 14, false),
    (0x3801, 10, 14, false),
    (0x3001, 11, 17, false),
    (0x2401, 12, 18, false),
    (0x1C01, 13, 20, false),
    (0x1601, 29, 21, false),
    (0x5601, 15, 14, true),
    (0x5401, 16, 14, false),
    (0x5101, 17, 15, false),
    (0x4801, 18, 16, false),
    (0x3801, 19, 17, false),
    (0x3401, 20, 18, false),
    (0x3001, 21, 19, false),
    (0x2801, 22, 19, false),
    (0x2401, 23, 20, false),
    (0x2201, 24, 21, false),
    (0x1C01, 25, 22, false),
    (0x1801, 26, 23, false),
    (0x1601, 27, 24, false),
    (0x1401, 28, 25, false),
    (0x1201, 29, 26, false),
    (0x1101, 30, 27, false),
    (0x0AC1, 31, 28, false),
    (0x09C1, 32, 29, false),
    (0x08A1, 33, 30, false),
    (0x0521, 34, 31, false),
    (0x0441, 35, 32, false),
    (0x02A1, 36, 33, false),
    (0x0221, 37, 34, false),
    (0x0141, 38, 35, false),
    (0x0111, 39, 36, false),
    (0x0085, 40, 37, false),
    (0x0049, 41, 38, false),
    (0x0025, 42, 39, false),
    (0x0015, 43, 40, false),
    (0x0009, 44, 41, false),
    (0x0005, 45, 42, false),
    (0x0001, 45, 43, false),
    (0x5601, 46, 46, false),
];

/// The MQ arithmetic encoder (Annex C.2), software conventions of the standard.
struct Mq {
    a: u32,
    c: u32,
    ct: u32,
    /// out[0] is the byte before the segment (B at start); dropped by `flush`.
    out: Vec<u8>,
    index: [u8; 19],
    mps: [u8; 19],
}

impl Mq {
    fn new() -> Self {
        let mut index = [0u8; 19];
        index[0] = 4;
        index[RL] = 3;
        index[UNIFORM] = 46;
        Mq {
            a: 0x8000,
            c: 0,
            ct: 12,
            out: vec![0],
            index,
            mps: [0; 19],
        }
    }

    fn encode(&mut self, d: u8, cx: usize) {
        let (qe, nmps, nlps, switch) = QE[usize::from(self.index[cx])];
        self.a -= qe;
        if d == self.mps[cx] {
            if self.a & 0x8000 == 0 {
                if self.a < qe {
                    self.a = qe;
                } else {
                    self.c += qe;
                }
                self.index[cx] = nmps;
                self.renorm();
            } else {
                self.c += qe;
            }
        } else {
            if self.a < qe {
                self.c += qe;
            } else {
                self.a = qe;
            }
            if switch {
                self.mps[cx] = 1 - self.mps[cx];
            }
            self.index[cx] = nlps;
            self.renorm();
        }
    }

    fn renorm(&mut self) {
        loop {
            self.a <<= 1;
            self.c <<= 1;
            self.ct -= 1;
            if self.ct == 0 {
                self.byte_out();
            }
            if self.a & 0x8000 != 0 {
                break;
            }
        }
    }

    fn byte_out(&mut self) {
        let last = self.out.len() - 1;
        if self.out[last] == 0xff {
            self.out.push((self.c >> 20) as u8);
            self.c &= 0xfffff;
            self.ct = 7;
        } else if self.c < 0x800_0000 {
            self.out.push((self.c >> 19) as u8);
            self.c &= 0x7ffff;
            self.ct = 8;
        } else {
            self.out[last] = self.out[last].wrapping_add(1);
            if self.out[last] == 0xff {
                self.c &= 0x7ff_ffff;
                self.out.push((self.c >> 20) as u8);
                self.c &= 0xfffff;
                self.ct = 7;
            } else {
                self.out.push((self.c >> 19) as u8);
                self.c &= 0x7ffff;
                self.ct = 8;
            }
        }
    }

    fn flush(mut self) -> Vec<u8> {
        let temp = self.c + self.a;
        self.c |= 0xffff;
        if self.c >= temp {
            self.c -= 0x8000;
        }
        self.c <<= self.ct;
        self.byte_out();
        self.c <<= self.ct;
        self.byte_out();
        if self.out.last() == Some(&0xff) {
            self.out.pop();
        }
        self.out.remove(0);
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> Vec<u8> {
        let img = hayro_jpeg2000::Image::new(bytes, &hayro_jpeg2000::DecodeSettings::default()).unwrap();
        let mut ctx = hayro_jpeg2000::DecoderContext::default();
        img.decode(&mut ctx).unwrap().data_u8()
    }

    #[test]
    fn lossless_for_prints_edges_and_flat_images() {
        for (w, h) in [(1, 1), (5, 3), (64, 64), (65, 70), (192, 256)] {
            let mut seed = 7u32;
            let noisy: Vec<u8> = (0..w * h)
                .map(|_| {
                    seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (seed >> 24) as u8
                })
                .collect();
            let ramp: Vec<u8> = (0..w * h).map(|i| ((i % w) * 3 + (i / w) * 5) as u8).collect();
            for px in [
                noisy,
                ramp,
                vec![128; (w * h) as usize],
                vec![0; (w * h) as usize],
                vec![255; (w * h) as usize],
            ] {
                let j2k = encode_grey_lossless(w, h, &px).unwrap();
                assert!(decode(&j2k) == px, "{w}x{h}");
            }
        }
    }
}
