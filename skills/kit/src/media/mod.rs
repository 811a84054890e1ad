//! What a media file is, read while it streams (into the artifact store,
//! say) without holding it: feed a [`Probe`] every chunk, then
//! [`finish`](Probe::finish) it for a [`Media`] that answers what the skills
//! ask of their results:
//!
//! - [`Media::info`]: the container sniffed from the first bytes and its
//!   length, sample rate, channels, video size, frames and fps, and whether
//!   an MP4 has a sound track (FLAC, WAV, MP3, MP4/MOV);
//! - [`Media::audio`]: the same for an audio format the caller already knows
//!   (a reply asked for as `wav`), including ones that cannot be sniffed;
//! - [`Media::movie`]: every track of an MP4, or why the stream is not a
//!   usable one (not an MP4, empty, truncated, no `moov`).
//!
//! Only the first [`audio::HEAD`] bytes and an MP4's `moov` are kept.

pub mod audio;
pub mod image;
pub mod mp4;

use audio::Kind;
use mp4::{Movie, Scanner};

/// Feeds on a stream's chunks; see the module docs.
#[derive(Debug, Default)]
pub struct Probe {
    head: Vec<u8>,
    bytes: u64,
    scanner: Scanner,
}

impl Probe {
    /// A probe that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The next chunk of the stream.
    pub fn feed(&mut self, chunk: &[u8]) {
        let take = audio::HEAD.saturating_sub(self.head.len()).min(chunk.len());
        self.head.extend_from_slice(&chunk[..take]);
        self.bytes += chunk.len() as u64;
        self.scanner.feed(chunk);
    }

    /// How many of the next bytes the probe need not see: none while it
    /// reads the head, then what the MP4 scanner can step over (the body of
    /// a box that is not `moov`, everything when the stream is not boxes).
    pub fn skippable(&self) -> u64 {
        if self.head.len() < audio::HEAD { 0 } else { self.scanner.skippable() }
    }

    /// The next `n` bytes went by unseen (see [`skippable`](Self::skippable)).
    pub fn skip(&mut self, n: u64) {
        self.bytes += n;
        self.scanner.skip(n);
    }

    /// Bytes fed or skipped so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// What the stream was, once it ended.
    pub fn finish(self) -> Media {
        Media { bytes: self.bytes, head: self.head, mp4: self.scanner.finish() }
    }
}

/// A probe sees only what it needs of a body copied into an artifact.
impl crate::artifacts::Watch for Probe {
    fn skippable(&self) -> u64 {
        Probe::skippable(self)
    }
    fn feed(&mut self, chunk: &[u8]) {
        Probe::feed(self, chunk)
    }
    fn skip(&mut self, n: u64) {
        Probe::skip(self, n)
    }
}

/// A container [`Media::info`] recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// An audio file.
    Audio(Kind),
    /// ISO-BMFF: MP4, MOV, M4A.
    Mp4,
}

/// The video track of a movie, in short.
#[derive(Debug, Clone, PartialEq)]
pub struct Video {
    /// Sample entry (`avc1`, `hvc1`, ...).
    pub codec: String,
    /// Display width.
    pub width: u32,
    /// Display height.
    pub height: u32,
    /// Frames (0 when the file does not count them).
    pub frames: u64,
    /// Frames per second, when frames and length are known.
    pub fps: Option<f64>,
}

/// What a file is and how long it lasts.
#[derive(Debug, Clone, PartialEq)]
pub struct Info {
    /// The container.
    pub container: Container,
    /// Length in seconds (an MP4's movie duration: its longest track).
    pub seconds: f64,
    /// Sample rate of the audio, when known (an MP4's sound track's).
    pub sample_rate: Option<u32>,
    /// Audio channels, when known.
    pub channels: Option<u16>,
    /// For an MP4: whether it has a sound track. `None` for audio files.
    pub has_audio_track: Option<bool>,
    /// For an MP4 with a video track: that track.
    pub video: Option<Video>,
}

/// A finished stream; see the module docs.
#[derive(Debug, Clone)]
pub struct Media {
    /// Bytes in the stream.
    pub bytes: u64,
    /// Its first [`audio::HEAD`] bytes.
    head: Vec<u8>,
    /// The MP4 reading: the movie, or why the stream is not a usable MP4.
    mp4: Result<Movie, String>,
}

impl Media {
    /// The movie of an MP4 stream, or why the stream is not a usable MP4
    /// (a sentence to show: "not an MP4 file (it starts with `<htm`...)").
    pub fn movie(&self) -> Result<&Movie, String> {
        self.mp4.as_ref().map_err(Clone::clone)
    }

    /// The stream read as audio of `kind` (when the caller knows what it
    /// asked for); `None` when the header does not say.
    pub fn audio(&self, kind: Kind) -> Option<audio::Audio> {
        audio::describe(kind, &self.head, self.bytes)
    }

    /// The sniffed container and what it says; `None` for an unknown format
    /// or one whose header does not give a length.
    pub fn info(&self) -> Option<Info> {
        if let Ok(movie) = &self.mp4 {
            let sound = movie.audio();
            return Some(Info {
                container: Container::Mp4,
                seconds: movie.seconds?,
                sample_rate: sound.map(|a| a.timescale).filter(|r| *r > 0),
                channels: sound.map(|a| a.channels).filter(|c| *c > 0),
                has_audio_track: Some(sound.is_some()),
                video: movie.video().map(|v| Video {
                    codec: v.codec.clone(),
                    width: v.width,
                    height: v.height,
                    frames: v.samples,
                    fps: v.fps(),
                }),
            });
        }
        let kind = Kind::sniff(&self.head)?;
        let a = self.audio(kind)?;
        Some(Info {
            container: Container::Audio(kind),
            seconds: a.seconds?,
            sample_rate: Some(a.sample_rate),
            channels: Some(a.channels),
            has_audio_track: None,
            video: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut b = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(body);
        b
    }

    fn full_box(kind: &[u8; 4], version: u8, rest: &[u8]) -> Vec<u8> {
        let mut body = vec![version, 0, 0, 0];
        body.extend_from_slice(rest);
        boxed(kind, &body)
    }

    fn header_v0(timescale: u32, duration: u32) -> Vec<u8> {
        let mut r = vec![0u8; 8]; // creation, modification
        r.extend_from_slice(&timescale.to_be_bytes());
        r.extend_from_slice(&duration.to_be_bytes());
        r
    }

    fn track(handler: &[u8; 4], timescale: u32, duration: u32) -> Vec<u8> {
        let mdhd = full_box(b"mdhd", 0, &header_v0(timescale, duration));
        let mut h = vec![0u8; 4];
        h.extend_from_slice(handler);
        h.extend_from_slice(&[0u8; 13]);
        let hdlr = full_box(b"hdlr", 0, &h);
        boxed(b"trak", &boxed(b"mdia", &[mdhd, hdlr].concat()))
    }

    /// ftyp, a large mdat, then moov (the layout of a muxer without faststart).
    fn mp4(with_audio: bool) -> Vec<u8> {
        let mut moov = full_box(b"mvhd", 0, &[header_v0(1000, 2046), vec![0u8; 80]].concat());
        moov.extend(track(b"vide", 10, 20));
        if with_audio {
            moov.extend(track(b"soun", 44_100, 90_227));
        }
        let mdat: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
        [boxed(b"ftyp", b"isomiso2avc1mp41"), boxed(b"mdat", &mdat), boxed(b"moov", &moov)].concat()
    }

    fn flac(rate: u32, samples: u64) -> Vec<u8> {
        let mut b = b"fLaC".to_vec();
        b.extend_from_slice(&[0x80, 0, 0, 34]); // last block, STREAMINFO, 34 bytes
        b.extend_from_slice(&[0x10, 0, 0x10, 0, 0, 0, 0, 0, 0, 0]);
        let packed = (u64::from(rate) << 44) | (15 << 36) | samples; // mono: channels-1 = 0
        b.extend_from_slice(&packed.to_be_bytes());
        b.extend_from_slice(&[0u8; 16]); // md5
        b.extend_from_slice(&[0xff, 0xf8, 1, 2, 3]); // a frame's start
        b
    }

    fn probe_in_chunks(bytes: &[u8], chunk: usize) -> Media {
        let mut p = Probe::new();
        for c in bytes.chunks(chunk) {
            p.feed(c);
        }
        assert_eq!(p.bytes(), bytes.len() as u64);
        p.finish()
    }

    #[test]
    fn reads_flac_streaminfo_whatever_the_chunking() {
        let b = flac(44_100, 88_200);
        for chunk in [1, 5, 26, 4096] {
            let m = probe_in_chunks(&b, chunk);
            assert_eq!(
                m.info(),
                Some(Info {
                    container: Container::Audio(Kind::Flac),
                    seconds: 2.0,
                    sample_rate: Some(44_100),
                    channels: Some(1),
                    has_audio_track: None,
                    video: None
                }),
                "chunks of {chunk}"
            );
            assert!(m.movie().unwrap_err().contains("not an MP4"));
        }
    }

    #[test]
    fn reads_mp4_moov_after_a_skipped_mdat() {
        let b = mp4(true);
        for chunk in [1, 7, 16, 65_536, b.len()] {
            let info = probe_in_chunks(&b, chunk).info().unwrap_or_else(|| panic!("chunks of {chunk}"));
            assert!((info.seconds - 2.046).abs() < 1e-9, "{info:?}");
            assert_eq!(
                (info.container, info.sample_rate, info.has_audio_track),
                (Container::Mp4, Some(44_100), Some(true))
            );
            let v = info.video.unwrap();
            assert_eq!((v.frames, v.fps), (0, None), "no stsz in this one");
        }
        let info = probe_in_chunks(&mp4(false), 4096).info().unwrap();
        assert_eq!((info.sample_rate, info.has_audio_track), (None, Some(false)));
    }

    #[test]
    fn other_or_truncated_files_give_nothing() {
        assert_eq!(probe_in_chunks(b"RIFF\0\0\0\0WAVEfmt ", 4).info(), None);
        let b = mp4(true);
        let cut = probe_in_chunks(&b[..b.len() - 10], 1000);
        assert_eq!(cut.info(), None);
        assert!(cut.movie().unwrap_err().contains("truncated"));
        assert_eq!(probe_in_chunks(&flac(44_100, 0), 100).info(), None);
        let empty = probe_in_chunks(b"", 1);
        assert_eq!((empty.info(), empty.movie().unwrap_err().as_str()), (None, "the reply was empty"));
    }

    #[test]
    fn a_known_format_is_read_without_sniffing() {
        let m = probe_in_chunks(&flac(24_000, 36_000), 3);
        assert_eq!(m.audio(Kind::Flac).and_then(|a| a.seconds), Some(1.5));
        assert_eq!(m.audio(Kind::Wav), None);
    }
}
