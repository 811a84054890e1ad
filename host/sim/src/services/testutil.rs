//! What the services' tests share: fixtures made with [`crate::media`], and
//! independent decoders (the `mp4` crate, claxon, rusty_mp3, a WAV header
//! reader) to prove the replies are real files.

use std::io::Cursor;

pub(crate) use crate::media::tests::ffprobe;
use crate::media::{self, Frames, Pcm};

/// A portrait JPEG (40×30) made with Pillow.
pub(crate) const PORTRAIT_JPG: &[u8] = include_bytes!("testdata/portrait.jpg");
/// The same picture as gray+alpha PNG.
pub(crate) const PORTRAIT_GRAY_ALPHA_PNG: &[u8] = include_bytes!("testdata/portrait_gray_alpha.png");

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// An H.264 MP4 (no audio) of `n` gradient frames.
pub(crate) fn video(w: u32, h: u32, n: u32, fps: f64) -> Vec<u8> {
    let frames = Frames { width: w, height: h, rgb: (0..n).map(|i| media::gradient_frame(w, h, 5, i)).collect() };
    media::mp4(&frames, fps, None).unwrap()
}

/// 16-bit mono WAV: `silent` seconds of silence, then `loud` seconds of tone.
pub(crate) fn wav(rate: u32, silent: f64, loud: f64) -> Vec<u8> {
    let mut samples = vec![0.0; (silent * f64::from(rate)) as usize];
    samples.extend(media::tone(rate, 1, loud, 9));
    super::decode::wav_write(&Pcm { sample_rate: rate, channels: 1, samples })
}

/// A PNG portrait.
pub(crate) fn portrait_png(w: u32, h: u32) -> Vec<u8> {
    media::png(w, h, &media::gradient_frame(w, h, 11, 0)).unwrap()
}

pub(crate) fn file(bytes: &[u8], name: &str, mime: &str) -> reqwest::multipart::Part {
    reqwest::multipart::Part::bytes(bytes.to_vec()).file_name(name.to_string()).mime_str(mime).unwrap()
}

#[derive(Debug)]
pub(crate) struct VideoTrack {
    pub codec: String,
    pub width: u16,
    pub height: u16,
    pub frames: u32,
    pub fps: f64,
}

#[derive(Debug)]
pub(crate) struct AudioTrack {
    pub codec: String,
    pub sample_rate: u32,
    pub seconds: f64,
}

/// The video and audio tracks of an MP4, as the `mp4` crate reads them.
pub(crate) fn mp4_tracks(bytes: &[u8]) -> (VideoTrack, Option<AudioTrack>) {
    let r = ::mp4::Mp4Reader::read_header(Cursor::new(bytes), bytes.len() as u64).unwrap();
    let mut video = None;
    let mut audio = None;
    for t in r.tracks().values() {
        match t.track_type().unwrap() {
            ::mp4::TrackType::Video => {
                video = Some(VideoTrack {
                    codec: t.box_type().unwrap().to_string(),
                    width: t.width(),
                    height: t.height(),
                    frames: t.sample_count(),
                    fps: f64::from(t.sample_count()) / t.duration().as_secs_f64(),
                })
            }
            ::mp4::TrackType::Audio => {
                audio = Some(AudioTrack {
                    codec: t.box_type().unwrap().to_string(),
                    sample_rate: t.timescale(),
                    seconds: t.duration().as_secs_f64(),
                })
            }
            _ => {}
        }
    }
    (video.expect("a video track"), audio)
}

/// (sample rate, channels, samples per channel) from claxon.
pub(crate) fn flac_info(bytes: &[u8]) -> (u32, u32, u64) {
    let mut r = claxon::FlacReader::new(Cursor::new(bytes)).unwrap();
    let info = r.streaminfo();
    let decoded = r.samples().map(Result::unwrap).count() as u64;
    assert_eq!(Some(decoded / u64::from(info.channels)), info.samples);
    (info.sample_rate, info.channels, info.samples.unwrap())
}

#[derive(Debug, PartialEq)]
pub(crate) struct WavHeader {
    pub format: u16,
    pub channels: u16,
    pub sample_rate: u32,
    pub bits: u16,
    pub data_len: u32,
}

/// Parses a canonical 44-byte WAV header, checking the chunk sizes.
pub(crate) fn wav_header(b: &[u8]) -> WavHeader {
    let u16le = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
    let u32le = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
    assert_eq!(&b[0..4], b"RIFF");
    assert_eq!(&b[8..16], b"WAVEfmt ");
    assert_eq!(u32le(4) as usize, b.len() - 8);
    assert_eq!(&b[36..40], b"data");
    let h = WavHeader {
        format: u16le(20),
        channels: u16le(22),
        sample_rate: u32le(24),
        bits: u16le(34),
        data_len: u32le(40),
    };
    assert_eq!(h.data_len as usize, b.len() - 44);
    assert_eq!(u32le(28), h.sample_rate * u32::from(h.channels) * u32::from(h.bits) / 8);
    h
}

/// (sample rate, channels, samples per channel) decoded by rusty_mp3.
pub(crate) fn mp3_info(bytes: &[u8]) -> (u32, u16, usize) {
    let mut dec = rusty_mp3::Mp3Decoder::new();
    dec.push(bytes);
    dec.flush();
    let (mut rate, mut ch, mut n) = (0, 0, 0);
    while let Ok(f) = dec.next_frame() {
        (rate, ch) = (f.sample_rate, f.channels);
        n += f.samples.len() / usize::from(f.channels);
    }
    assert!(rate > 0, "no MP3 frames decoded");
    (rate, ch, n)
}
