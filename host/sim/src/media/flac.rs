//! FLAC, via the pure-Rust `flacenc`.

use super::{MediaError, Pcm, Result};
use flacenc::component::BitRepr;
use flacenc::error::Verify;

/// 16-bit FLAC of the whole signal.
pub fn flac(pcm: &Pcm) -> Result<Vec<u8>> {
    if pcm.channels == 0 || pcm.channels > 8 || pcm.sample_rate == 0 {
        return Err(MediaError::new("unsupported channel count or sample rate"));
    }
    let ints: Vec<i32> = pcm.samples.iter().map(|s| (s.clamp(-1.0, 1.0) * 32767.0).round() as i32).collect();
    let config =
        flacenc::config::Encoder::default().into_verified().map_err(|(_, e)| MediaError::new(format!("{e:?}")))?;
    let source =
        flacenc::source::MemSource::from_samples(&ints, usize::from(pcm.channels), 16, pcm.sample_rate as usize);
    let stream = flacenc::encode_with_fixed_block_size(&config, source, config.block_size)
        .map_err(|e| MediaError::new(format!("{e:?}")))?;
    let mut sink = flacenc::bitsink::ByteSink::new();
    stream.write(&mut sink).map_err(|e| MediaError::new(format!("{e:?}")))?;
    Ok(sink.as_slice().to_vec())
}
