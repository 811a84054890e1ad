//! MP3 (MPEG-1 Layer III), via the pure-Rust `rusty_mp3`.

use super::{MediaError, Pcm, Result};

/// CBR MP3 at `kbps` (snapped by the encoder to a legal Layer III rate).
pub fn mp3(pcm: &Pcm, kbps: u32) -> Result<Vec<u8>> {
    let mut enc = rusty_mp3::Mp3Encoder::new(rusty_mp3::Mp3EncoderConfig { bitrate_kbps: kbps, vbr_quality: None });
    enc.push_pcm_f32(&pcm.samples, pcm.channels, pcm.sample_rate).map_err(|e| MediaError::new(format!("{e:?}")))?;
    enc.finish();
    let mut out = Vec::new();
    while let Ok(p) = enc.next_packet() {
        out.extend_from_slice(&p);
    }
    Ok(out)
}
