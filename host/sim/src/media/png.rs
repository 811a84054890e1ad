//! PNG and animated PNG (APNG), via the `png` crate.

use super::{Frames, MediaError, Result, check_frames};

/// One RGB8 picture as a PNG file.
pub fn png(width: u32, height: u32, rgb: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    {
        let mut enc = ::png::Encoder::new(&mut out, width, height);
        enc.set_color(::png::ColorType::Rgb);
        enc.set_depth(::png::BitDepth::Eight);
        let mut w = enc.write_header().map_err(MediaError::new)?;
        w.write_image_data(rgb).map_err(MediaError::new)?;
        w.finish().map_err(MediaError::new)?;
    }
    Ok(out)
}

/// All frames as one looping APNG at `fps`, like ComfyUI's SaveAnimatedPNG.
pub fn apng(frames: &Frames, fps: f64) -> Result<Vec<u8>> {
    check_frames(frames)?;
    let mut out = Vec::new();
    {
        let mut enc = ::png::Encoder::new(&mut out, frames.width, frames.height);
        enc.set_color(::png::ColorType::Rgb);
        enc.set_depth(::png::BitDepth::Eight);
        enc.set_animated(frames.rgb.len() as u32, 0).map_err(MediaError::new)?;
        let (num, den) = fps_fraction(fps);
        enc.set_frame_delay(den, num).map_err(MediaError::new)?;
        let mut w = enc.write_header().map_err(MediaError::new)?;
        for f in &frames.rgb {
            w.write_image_data(f).map_err(MediaError::new)?;
        }
        w.finish().map_err(MediaError::new)?;
    }
    Ok(out)
}

/// fps as a u16 fraction num/den (delay = den/num seconds).
fn fps_fraction(fps: f64) -> (u16, u16) {
    let fps = if fps.is_finite() && fps > 0.0 { fps } else { 1.0 };
    let num = (fps * 100.0).round().clamp(1.0, 65535.0) as u16;
    (num, 100)
}
