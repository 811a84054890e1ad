//! Synthetic pictures and sounds, and the RGB→YUV step the video codecs need.
//!
//! Content is derived from a seed so that different prompts and seeds give
//! different bytes (clients that de-duplicate by hash must see new files),
//! while the same seed always gives the same bytes (the cache replays).

/// A picture of one colour, `0xRRGGBB` like ComfyUI's EmptyImage.
pub fn solid_frame(width: u32, height: u32, color: u32) -> Vec<u8> {
    let px = [(color >> 16) as u8, (color >> 8) as u8, color as u8];
    px.iter().copied().cycle().take(width as usize * height as usize * 3).collect()
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A diagonal two-colour gradient chosen by `seed`, drifting with `index` so
/// video frames differ from one another.
pub fn gradient_frame(width: u32, height: u32, seed: u64, index: u32) -> Vec<u8> {
    let h = splitmix(seed);
    let a = [(h >> 8) as u8, (h >> 16) as u8, (h >> 24) as u8];
    let b = [(h >> 32) as u8, (h >> 40) as u8, (h >> 48) as u8];
    let (w, hh) = (width.max(1) as u64, height.max(1) as u64);
    let span = w + hh;
    let shift = u64::from(index) * 4;
    let mut out = Vec::with_capacity((w * hh * 3) as usize);
    for y in 0..hh {
        for x in 0..w {
            let t = ((x + y + shift) % span) as u32;
            let t = t * 255 / span as u32;
            for c in 0..3 {
                let v = (u32::from(a[c]) * (255 - t) + u32::from(b[c]) * t) / 255;
                out.push(v as u8);
            }
        }
    }
    out
}

/// A soft sine tone whose pitch comes from `seed`: `seconds` long, interleaved.
pub fn tone(sample_rate: u32, channels: u16, seconds: f64, seed: u64) -> Vec<f32> {
    let n = (seconds * f64::from(sample_rate)).round().max(0.0) as usize;
    let freq = 220.0 + (splitmix(seed) % 660) as f64;
    let mut out = Vec::with_capacity(n * usize::from(channels));
    for i in 0..n {
        let t = i as f64 / f64::from(sample_rate);
        let v = (0.25 * (2.0 * std::f64::consts::PI * freq * t).sin()) as f32;
        for _ in 0..channels {
            out.push(v);
        }
    }
    out
}

/// Planar I420 (BT.601 limited range) with chroma rounded up for odd sizes.
pub(crate) struct I420 {
    pub y: Vec<u8>,
    pub u: Vec<u8>,
    pub v: Vec<u8>,
}

pub(crate) fn rgb_to_i420(rgb: &[u8], width: u32, height: u32) -> I420 {
    let (w, h) = (width as usize, height as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let mut y = vec![0u8; w * h];
    let mut u = vec![0u8; cw * ch];
    let mut v = vec![0u8; cw * ch];
    let px = |x: usize, yy: usize| {
        let i = (yy * w + x) * 3;
        (f32::from(rgb[i]), f32::from(rgb[i + 1]), f32::from(rgb[i + 2]))
    };
    for yy in 0..h {
        for x in 0..w {
            let (r, g, b) = px(x, yy);
            y[yy * w + x] = (16.0 + 0.257 * r + 0.504 * g + 0.098 * b).round().clamp(0.0, 255.0) as u8;
        }
    }
    for cy in 0..ch {
        for cx in 0..cw {
            let (r, g, b) = px((cx * 2).min(w - 1), (cy * 2).min(h - 1));
            u[cy * cw + cx] = (128.0 - 0.148 * r - 0.291 * g + 0.439 * b).round().clamp(0.0, 255.0) as u8;
            v[cy * cw + cx] = (128.0 + 0.439 * r - 0.368 * g - 0.071 * b).round().clamp(0.0, 255.0) as u8;
        }
    }
    I420 { y, u, v }
}
