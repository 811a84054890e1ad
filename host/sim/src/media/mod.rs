//! Real, decodable media files for the simulators.
//!
//! Simulated servers must hand clients files that real tools (ffprobe, browsers,
//! decoders) accept, or client code that inspects, remuxes or displays results
//! cannot be tested against them. Everything here is pure Rust so the crate
//! builds from crates.io alone; the pictures and sounds are synthetic
//! (gradients, tones) because only the containers and codecs need to be real.

mod flac;
mod gif;
mod mp3;
mod mp4;
mod png;
mod raster;
mod webm;
mod webp;

pub use flac::flac;
pub use gif::gif;
pub use mp3::mp3;
pub use mp4::mp4;
pub use png::{apng, png};
pub use raster::{gradient_frame, solid_frame, tone};
pub use webm::webm;
pub use webp::webp_animated;

/// A failure to encode: a codec refused its input.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct MediaError(pub String);

impl MediaError {
    pub(crate) fn new(e: impl std::fmt::Display) -> Self {
        MediaError(e.to_string())
    }
}

/// Encoders' result.
pub type Result<T> = std::result::Result<T, MediaError>;

/// A sequence of same-sized RGB8 pictures (a batch of images or video frames).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frames {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// One packed RGB8 buffer (`width * height * 3` bytes) per frame.
    pub rgb: Vec<Vec<u8>>,
}

/// Interleaved PCM audio as floats in [-1, 1].
#[derive(Debug, Clone, PartialEq)]
pub struct Pcm {
    /// Samples per second per channel.
    pub sample_rate: u32,
    /// Channel count (interleaving stride of `samples`).
    pub channels: u16,
    /// Interleaved samples.
    pub samples: Vec<f32>,
}

impl Pcm {
    /// Samples per channel.
    pub fn frames(&self) -> usize {
        self.samples.len() / usize::from(self.channels.max(1))
    }
}

fn check_frames(f: &Frames) -> Result<()> {
    if f.width == 0 || f.height == 0 || f.rgb.is_empty() {
        return Err(MediaError::new("empty picture or no frames"));
    }
    let want = f.width as usize * f.height as usize * 3;
    if f.rgb.iter().any(|p| p.len() != want) {
        return Err(MediaError::new("frame buffer size does not match width*height*3"));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests;
