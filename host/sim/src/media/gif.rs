//! Animated GIF, via the pure-Rust `gif` crate (VideoHelperSuite's default format).

use super::{Frames, MediaError, Result, check_frames};

/// A looping GIF at `fps` (GIF delays are in 1/100 s).
pub fn gif(frames: &Frames, fps: f64) -> Result<Vec<u8>> {
    check_frames(frames)?;
    let (w, h) =
        (u16::try_from(frames.width).map_err(MediaError::new)?, u16::try_from(frames.height).map_err(MediaError::new)?);
    let fps = if fps.is_finite() && fps > 0.0 { fps } else { 8.0 };
    let delay = (100.0 / fps).round().clamp(1.0, 65535.0) as u16;
    let mut out = Vec::new();
    {
        let mut enc = ::gif::Encoder::new(&mut out, w, h, &[]).map_err(MediaError::new)?;
        enc.set_repeat(::gif::Repeat::Infinite).map_err(MediaError::new)?;
        for rgb in &frames.rgb {
            let mut f = ::gif::Frame::from_rgb_speed(w, h, rgb, 30);
            f.delay = delay;
            enc.write_frame(&f).map_err(MediaError::new)?;
        }
    }
    Ok(out)
}
