//! Animated WebP. Frames are lossless VP8L from the pure-Rust `image-webp`
//! (it has no lossy VP8 encoder); the RIFF animation container is written here.

use super::{Frames, MediaError, Result, check_frames};

fn chunk(fourcc: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(body.len() + 9);
    v.extend_from_slice(fourcc);
    v.extend_from_slice(&(body.len() as u32).to_le_bytes());
    v.extend_from_slice(body);
    if body.len() % 2 == 1 {
        v.push(0);
    }
    v
}

fn u24(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_le_bytes()[..3]);
}

/// The VP8L chunk (header included) of a still lossless WebP.
fn vp8l_chunk(width: u32, height: u32, rgb: &[u8]) -> Result<Vec<u8>> {
    let mut file = Vec::new();
    image_webp::WebPEncoder::new(&mut file)
        .encode(rgb, width, height, image_webp::ColorType::Rgb8)
        .map_err(MediaError::new)?;
    let mut pos = 12;
    while pos + 8 <= file.len() {
        let size = u32::from_le_bytes([file[pos + 4], file[pos + 5], file[pos + 6], file[pos + 7]]) as usize;
        let end = (pos + 8 + size + (size & 1)).min(file.len());
        if &file[pos..pos + 4] == b"VP8L" {
            return Ok(file[pos..end].to_vec());
        }
        pos = end;
    }
    Err(MediaError::new("webp encoder produced no VP8L chunk"))
}

/// A looping animated WebP at `fps`, like ComfyUI's SaveAnimatedWEBP.
pub fn webp_animated(frames: &Frames, fps: f64) -> Result<Vec<u8>> {
    check_frames(frames)?;
    let fps = if fps.is_finite() && fps > 0.0 { fps } else { 6.0 };
    let duration_ms = (1000.0 / fps).round().clamp(1.0, 16_777_215.0) as u32;
    let (w, h) = (frames.width, frames.height);
    let mut vp8x = vec![0x02, 0, 0, 0];
    u24(&mut vp8x, w - 1);
    u24(&mut vp8x, h - 1);
    let mut body = b"WEBP".to_vec();
    body.extend(chunk(b"VP8X", &vp8x));
    body.extend(chunk(b"ANIM", &[0, 0, 0, 0, 0, 0]));
    for f in &frames.rgb {
        let mut anmf = Vec::new();
        u24(&mut anmf, 0);
        u24(&mut anmf, 0);
        u24(&mut anmf, w - 1);
        u24(&mut anmf, h - 1);
        u24(&mut anmf, duration_ms);
        anmf.push(0x02); // no blending, no disposal
        anmf.extend(vp8l_chunk(w, h, f)?);
        body.extend(chunk(b"ANMF", &anmf));
    }
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend(body);
    Ok(out)
}
