//! Audio files described from their first bytes and their size, so a skill
//! can say how long a stored file lasts without holding it:
//!
//! - WAV: the `fmt ` and `data` chunks (a streamed WAV whose `data` size is a
//!   placeholder is measured from the file size instead);
//! - FLAC: STREAMINFO (rate, channels, and the sample count when the encoder
//!   filled it in);
//! - MP3: a Xing/Info frame count, else the first frame's constant bit rate
//!   (exact for CBR, an estimate for VBR without a Xing header);
//! - headerless PCM: bytes over the rate the caller knows.
//!
//! Anything unreadable gives `None`: a length is a courtesy, not a check.

/// How many leading bytes [`describe`] needs at most (an MP3's ID3 tag
/// larger than this hides its first frame).
pub const HEAD: usize = 4096;

/// An audio container with a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// RIFF/WAVE.
    Wav,
    /// FLAC.
    Flac,
    /// MPEG audio Layer III.
    Mp3,
}

impl Kind {
    /// The kind the first bytes show, if any (an MP3 needs an ID3 tag or a
    /// Layer III frame sync at the start).
    pub fn sniff(head: &[u8]) -> Option<Kind> {
        if head.starts_with(b"fLaC") {
            Some(Kind::Flac)
        } else if head.starts_with(b"RIFF") && head.get(8..12) == Some(b"WAVE") {
            Some(Kind::Wav)
        } else if head.starts_with(b"ID3") || mp3_frame(head).is_some() {
            Some(Kind::Mp3)
        } else {
            None
        }
    }
}

/// What an audio header says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Audio {
    /// Length in seconds, when the header (and size) tell it.
    pub seconds: Option<f64>,
    /// Samples per second.
    pub sample_rate: u32,
    /// Channels.
    pub channels: u16,
}

/// Reads a `kind` file of `total` bytes that starts with `head` (at least
/// its first [`HEAD`] bytes, or all of it).
pub fn describe(kind: Kind, head: &[u8], total: u64) -> Option<Audio> {
    let mut a = match kind {
        Kind::Wav => wav(head, total),
        Kind::Flac => flac(head),
        Kind::Mp3 => mp3(head, total),
    }?;
    a.seconds = a.seconds.filter(|s| s.is_finite() && *s >= 0.0);
    Some(a)
}

/// Seconds in `total` bytes of headerless PCM of `rate` Hz, `channels`
/// channels of `bytes_per_sample` bytes each.
pub fn pcm_seconds(total: u64, rate: u32, channels: u16, bytes_per_sample: u16) -> f64 {
    total as f64 / (f64::from(rate) * f64::from(channels) * f64::from(bytes_per_sample))
}

fn u16le(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(i..i + 2)?.try_into().ok()?))
}

fn u32le(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?))
}

fn u32be(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(i..i + 4)?.try_into().ok()?))
}

fn wav(b: &[u8], total: u64) -> Option<Audio> {
    if b.get(0..4)? != b"RIFF" || b.get(8..12)? != b"WAVE" {
        return None;
    }
    let mut pos = 12usize;
    let mut fmt = None;
    loop {
        let id = b.get(pos..pos + 4)?;
        let size = u32le(b, pos + 4)?;
        let body = pos + 8;
        match id {
            b"fmt " => {
                let channels = u16le(b, body + 2)?;
                let rate = u32le(b, body + 4)?;
                let block_align = u16le(b, body + 12)?;
                fmt = Some((rate, channels, u64::from(rate) * u64::from(block_align)));
            }
            b"data" => {
                let (rate, channels, bytes_per_second) = fmt?;
                let rest = total.checked_sub(body as u64)?;
                let len = match u64::from(size) {
                    0 => rest,
                    n if n > rest => rest, // a streamed placeholder (0xFFFFFFFF) or a cut file
                    n => n,
                };
                let seconds = (bytes_per_second > 0).then(|| len as f64 / bytes_per_second as f64);
                return Some(Audio { seconds, sample_rate: rate, channels });
            }
            _ => {}
        }
        // Chunks are padded to an even size.
        pos = body.checked_add(size as usize + (size as usize & 1))?;
    }
}

fn flac(b: &[u8]) -> Option<Audio> {
    if b.get(0..4)? != b"fLaC" || b.get(4)? & 0x7f != 0 {
        return None;
    }
    // STREAMINFO starts at 8; bytes 10..18 of it hold rate (20 bits),
    // channels - 1 (3), bits per sample - 1 (5) and the sample count (36).
    let x = u64::from_be_bytes(b.get(18..26)?.try_into().ok()?);
    let rate = (x >> 44) as u32;
    let channels = ((x >> 41) & 7) as u16 + 1;
    let samples = x & ((1 << 36) - 1);
    if rate == 0 {
        return None;
    }
    let seconds = (samples > 0).then(|| samples as f64 / f64::from(rate));
    Some(Audio { seconds, sample_rate: rate, channels })
}

/// The header of one MPEG audio Layer III frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mp3Frame {
    /// Sample rate, Hz.
    pub rate: u32,
    /// Bit rate, bits per second.
    pub bitrate: u32,
    /// Samples per frame and channel (1152 for MPEG-1, 576 for MPEG-2/2.5).
    pub samples: u32,
    /// Channels (1 for mono, else 2).
    pub channels: u16,
    /// Size of the side information after the header (where Xing sits).
    pub side_info: usize,
    /// Frame length in bytes.
    pub len: usize,
}

/// Parses the Layer III frame header at the start of `b`.
pub fn mp3_frame(b: &[u8]) -> Option<Mp3Frame> {
    let h = b.get(0..4)?;
    if h[0] != 0xFF || h[1] & 0xE0 != 0xE0 || (h[1] >> 1) & 3 != 1 {
        return None;
    }
    let version = (h[1] >> 3) & 3; // 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5
    let mpeg1 = version == 3;
    const V1: [u32; 15] = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320];
    const V2: [u32; 15] = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];
    let kbps = *(if mpeg1 { &V1 } else { &V2 }).get(usize::from(h[2] >> 4))?;
    let rate = match (version, (h[2] >> 2) & 3) {
        (3, i @ 0..=2) => [44_100, 48_000, 32_000][usize::from(i)],
        (2, i @ 0..=2) => [22_050, 24_000, 16_000][usize::from(i)],
        (0, i @ 0..=2) => [11_025, 12_000, 8_000][usize::from(i)],
        _ => return None,
    };
    if kbps == 0 {
        return None;
    }
    let mono = h[3] >> 6 == 3;
    let samples = if mpeg1 { 1152 } else { 576 };
    let side_info = match (mpeg1, mono) {
        (true, true) => 17,
        (true, false) => 32,
        (false, true) => 9,
        (false, false) => 17,
    };
    let padding = usize::from((h[2] >> 1) & 1);
    let len = (samples / 8 * kbps * 1000 / rate) as usize + padding;
    Some(Mp3Frame { rate, bitrate: kbps * 1000, samples, channels: if mono { 1 } else { 2 }, side_info, len })
}

fn mp3(b: &[u8], total: u64) -> Option<Audio> {
    // Skip an ID3v2 tag (syncsafe size, plus a footer when flagged).
    let mut start = 0usize;
    if b.get(0..3)? == b"ID3" {
        let size = b.get(6..10)?.iter().fold(0usize, |acc, x| (acc << 7) | usize::from(x & 0x7f));
        start = 10 + size + if b.get(5)? & 0x10 != 0 { 10 } else { 0 };
    }
    let frame = mp3_frame(b.get(start..)?)?;
    let xing = start + 4 + frame.side_info;
    let seconds = if matches!(b.get(xing..xing + 4), Some(b"Xing" | b"Info")) && u32be(b, xing + 4)? & 1 != 0 {
        let frames = u32be(b, xing + 8)?;
        f64::from(frames) * f64::from(frame.samples) / f64::from(frame.rate)
    } else {
        let audio = total.checked_sub(start as u64)?;
        audio as f64 * 8.0 / f64::from(frame.bitrate)
    };
    Some(Audio { seconds: Some(seconds), sample_rate: frame.rate, channels: frame.channels })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seconds(kind: Kind, head: &[u8], total: u64) -> Option<f64> {
        describe(kind, head, total)?.seconds
    }

    fn wav_file(rate: u32, channels: u16, data: usize, declared: Option<u32>) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(b"RIFF");
        b.extend_from_slice(&(36 + data as u32).to_le_bytes());
        b.extend_from_slice(b"WAVEfmt ");
        b.extend_from_slice(&16u32.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&channels.to_le_bytes());
        b.extend_from_slice(&rate.to_le_bytes());
        b.extend_from_slice(&(rate * u32::from(channels) * 2).to_le_bytes());
        b.extend_from_slice(&(channels * 2).to_le_bytes());
        b.extend_from_slice(&16u16.to_le_bytes());
        b.extend_from_slice(b"data");
        b.extend_from_slice(&declared.unwrap_or(data as u32).to_le_bytes());
        b.resize(b.len() + data, 0);
        b
    }

    #[test]
    fn wav_from_its_chunks_even_when_streamed() {
        let f = wav_file(24_000, 1, 72_000, None);
        assert_eq!(Kind::sniff(&f), Some(Kind::Wav));
        assert_eq!(seconds(Kind::Wav, &f[..HEAD.min(f.len())], f.len() as u64), Some(1.5));
        let f = wav_file(48_000, 2, 192_000, Some(u32::MAX));
        let a = describe(Kind::Wav, &f[..64], f.len() as u64).unwrap();
        assert_eq!((a.seconds, a.sample_rate, a.channels), (Some(1.0), 48_000, 2));
        // A LIST chunk before data is skipped.
        let mut g = wav_file(24_000, 1, 4_800, None);
        let list = [b"LIST".as_slice(), &3u32.to_le_bytes(), b"abc\0"].concat();
        g.splice(36..36, list.iter().copied());
        assert_eq!(seconds(Kind::Wav, &g[..80], g.len() as u64), Some(0.1));
        assert_eq!(seconds(Kind::Wav, b"not a wav file at all", 21), None);
    }

    #[test]
    fn pcm_from_its_size() {
        assert_eq!(pcm_seconds(48_000, 24_000, 1, 2), 1.0);
    }

    #[test]
    fn flac_from_streaminfo() {
        let mut b = b"fLaC\x80\0\0\x22".to_vec();
        let mut info = vec![0u8; 34];
        // 24 kHz, stereo (channels - 1 = 1), 16 bits (bps - 1 = 15), 36000 samples.
        let x: u64 = (24_000u64 << 44) | (1 << 41) | (15 << 36) | 36_000;
        info[10..18].copy_from_slice(&x.to_be_bytes());
        b.extend_from_slice(&info);
        assert_eq!(Kind::sniff(&b), Some(Kind::Flac));
        assert_eq!(
            describe(Kind::Flac, &b, 1000),
            Some(Audio { seconds: Some(1.5), sample_rate: 24_000, channels: 2 })
        );
        info[10..18].copy_from_slice(&(24_000u64 << 44).to_be_bytes());
        let unknown = [&b[..8], &info].concat();
        assert_eq!(seconds(Kind::Flac, &unknown, 1000), None, "sample count not filled in");
    }

    #[test]
    fn mp3_cbr_and_xing() {
        // MPEG-2 Layer III, 64 kbps, 24 kHz, mono, no CRC: 192-byte frames of 576 samples.
        let header = [0xFF, 0xF3, 0x84, 0xC0];
        let f = mp3_frame(&header).unwrap();
        assert_eq!((f.rate, f.bitrate, f.samples, f.len, f.channels), (24_000, 64_000, 576, 192, 1));
        let mut file = Vec::new();
        for _ in 0..50 {
            file.extend_from_slice(&header);
            file.resize(file.len() + 188, 0);
        }
        assert_eq!(Kind::sniff(&file), Some(Kind::Mp3));
        let s = seconds(Kind::Mp3, &file[..HEAD], file.len() as u64).unwrap();
        assert!((s - 50.0 * 576.0 / 24_000.0).abs() < 1e-9, "{s}");

        // With an ID3 tag and an Info frame counting 100 frames.
        let mut tagged = b"ID3\x04\0\0\0\0\0\x05hello".to_vec();
        let mut info = header.to_vec();
        info.resize(4 + 9, 0);
        info.extend_from_slice(b"Info");
        info.extend_from_slice(&1u32.to_be_bytes());
        info.extend_from_slice(&100u32.to_be_bytes());
        tagged.extend_from_slice(&info);
        tagged.extend_from_slice(&file);
        assert_eq!(seconds(Kind::Mp3, &tagged, tagged.len() as u64), Some(2.4));
        assert_eq!(seconds(Kind::Mp3, b"\0\0\0\0", 4), None);
        assert_eq!(Kind::sniff(b"\0\0\0\0"), None);
    }
}
