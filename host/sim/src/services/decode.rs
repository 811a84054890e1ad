//! Decoders for uploads: pictures (PNG, JPEG), sound (WAV, FLAC, MP3) and
//! video (H.264 in MP4/MOV), plus WAV writing and the pixel helpers the
//! services need. Errors are short human sentences for 4xx bodies.

use std::io::Cursor;

use crate::media::{Frames, Pcm};

/// One RGB8 picture.
pub(crate) struct Rgb {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

/// A PNG or JPEG as RGB8.
pub(crate) fn image(bytes: &[u8]) -> Result<Rgb, String> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        png(bytes)
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        jpeg(bytes)
    } else {
        Err("not a PNG or JPEG image".into())
    }
}

fn png(bytes: &[u8]) -> Result<Rgb, String> {
    let bad = |e: png::DecodingError| format!("broken PNG: {e}");
    let mut dec = png::Decoder::new(Cursor::new(bytes));
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = dec.read_info().map_err(bad)?;
    let mut buf = vec![0; reader.output_buffer_size().ok_or("PNG too large")?];
    let info = reader.next_frame(&mut buf).map_err(bad)?;
    let channels = info.color_type.samples();
    let px = &buf[..info.buffer_size()];
    let data = to_rgb(px, channels, info.line_size, info.width, info.height);
    Ok(Rgb { width: info.width, height: info.height, data })
}

fn jpeg(bytes: &[u8]) -> Result<Rgb, String> {
    let mut dec = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    let px = dec.decode().map_err(|e| format!("broken JPEG: {e}"))?;
    let info = dec.info().ok_or("broken JPEG: no header")?;
    let (w, h) = (u32::from(info.width), u32::from(info.height));
    let channels = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => 1,
        jpeg_decoder::PixelFormat::RGB24 => 3,
        _ => return Err("unsupported JPEG pixel format (CMYK or 16-bit)".into()),
    };
    let data = to_rgb(&px, channels, w as usize * channels, w, h);
    Ok(Rgb { width: w, height: h, data })
}

/// Gray, gray+alpha, RGB or RGBA rows (any stride) to packed RGB8; alpha is
/// composited over white, as a portrait on a page would be.
fn to_rgb(px: &[u8], channels: usize, stride: usize, w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(w as usize * h as usize * 3);
    for y in 0..h as usize {
        let row = &px[y * stride..];
        for x in 0..w as usize {
            let p = &row[x * channels..x * channels + channels];
            let (rgb, a) = match channels {
                1 => ([p[0]; 3], 255),
                2 => ([p[0]; 3], p[1]),
                3 => ([p[0], p[1], p[2]], 255),
                _ => ([p[0], p[1], p[2]], p[3]),
            };
            for c in rgb {
                let v = (u32::from(c) * u32::from(a) + 255 * (255 - u32::from(a))) / 255;
                out.push(v as u8);
            }
        }
    }
    out
}

/// Nearest-neighbour scaling (a stand-in for the model's resize).
pub(crate) fn scale(src: &Rgb, w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(w as usize * h as usize * 3);
    for y in 0..h as u64 {
        let sy = (y * u64::from(src.height) / u64::from(h)) as usize;
        for x in 0..w as u64 {
            let sx = (x * u64::from(src.width) / u64::from(w)) as usize;
            let i = (sy * src.width as usize + sx) * 3;
            out.extend_from_slice(&src.data[i..i + 3]);
        }
    }
    out
}

// ---- audio ------------------------------------------------------------------

/// A WAV, FLAC or MP3 file as float PCM.
pub(crate) fn audio(bytes: &[u8]) -> Result<Pcm, String> {
    let pcm = if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WAVE") {
        wav_read(bytes)?
    } else if bytes.starts_with(b"fLaC") {
        flac_read(bytes)?
    } else if bytes.starts_with(b"ID3") || (bytes.len() > 1 && bytes[0] == 0xff && bytes[1] & 0xe0 == 0xe0) {
        mp3_read(bytes)?
    } else {
        return Err("not a WAV, FLAC or MP3 file".into());
    };
    if pcm.frames() == 0 || pcm.sample_rate == 0 {
        return Err("the audio has no samples".into());
    }
    Ok(pcm)
}

fn wav_read(b: &[u8]) -> Result<Pcm, String> {
    let u16le = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
    let u32le = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let mut fmt: Option<(u16, u16, u32, u16)> = None;
    let mut i = 12;
    while i + 8 <= b.len() {
        let id = &b[i..i + 4];
        let declared = u32le(i + 4) as usize;
        let body = i + 8;
        // Streamed WAVs (OpenAI's among them) leave sizes at 0xFFFFFFFF.
        let len = declared.min(b.len() - body);
        if id == b"fmt " && len >= 16 {
            let mut tag = u16le(body);
            if tag == 0xfffe && len >= 26 {
                tag = u16le(body + 24); // WAVE_FORMAT_EXTENSIBLE sub-format
            }
            fmt = Some((tag, u16le(body + 2), u32le(body + 4), u16le(body + 14)));
        } else if id == b"data" {
            let (tag, channels, rate, bits) = fmt.ok_or("WAV data before its fmt chunk")?;
            let data = &b[body..body + len];
            let samples: Vec<f32> = match (tag, bits) {
                (1, 8) => data.iter().map(|&s| (f32::from(s) - 128.0) / 128.0).collect(),
                (1, 16) => {
                    data.chunks_exact(2).map(|c| f32::from(i16::from_le_bytes([c[0], c[1]])) / 32768.0).collect()
                }
                (1, 24) => data
                    .chunks_exact(3)
                    .map(|c| (i32::from_le_bytes([0, c[0], c[1], c[2]]) >> 8) as f32 / 8_388_608.0)
                    .collect(),
                (1, 32) => data
                    .chunks_exact(4)
                    .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32 / 2_147_483_648.0)
                    .collect(),
                (3, 32) => data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
                _ => {
                    return Err(format!("unsupported WAV encoding (format {tag}, {bits} bits)"));
                }
            };
            if channels == 0 {
                return Err("WAV with zero channels".into());
            }
            return Ok(Pcm { sample_rate: rate, channels, samples });
        }
        i = body + len + (len & 1);
    }
    Err("WAV without a data chunk".into())
}

fn flac_read(b: &[u8]) -> Result<Pcm, String> {
    let mut r = claxon::FlacReader::new(Cursor::new(b)).map_err(|e| format!("broken FLAC: {e}"))?;
    let info = r.streaminfo();
    let scale = 2f32.powi(info.bits_per_sample as i32 - 1);
    let samples = r
        .samples()
        .map(|s| s.map(|v| v as f32 / scale))
        .collect::<Result<Vec<f32>, _>>()
        .map_err(|e| format!("broken FLAC: {e}"))?;
    Ok(Pcm { sample_rate: info.sample_rate, channels: info.channels as u16, samples })
}

fn mp3_read(b: &[u8]) -> Result<Pcm, String> {
    let mut dec = rusty_mp3::Mp3Decoder::new();
    dec.push(b);
    dec.flush();
    let (mut rate, mut channels, mut samples) = (0, 0, Vec::new());
    while let Ok(f) = dec.next_frame() {
        if rate == 0 {
            (rate, channels) = (f.sample_rate, f.channels);
        }
        if (f.sample_rate, f.channels) == (rate, channels) {
            samples.extend_from_slice(&f.samples);
        }
    }
    if rate == 0 {
        return Err("no MP3 frames found".into());
    }
    Ok(Pcm { sample_rate: rate, channels, samples })
}

/// 16-bit PCM WAV with exact sizes.
pub(crate) fn wav_write(pcm: &Pcm) -> Vec<u8> {
    let data = s16le(pcm);
    let ch = pcm.channels.max(1);
    let mut out = Vec::with_capacity(44 + data.len());
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&ch.to_le_bytes());
    out.extend_from_slice(&pcm.sample_rate.to_le_bytes());
    out.extend_from_slice(&(pcm.sample_rate * u32::from(ch) * 2).to_le_bytes());
    out.extend_from_slice(&(ch * 2).to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&data);
    out
}

/// Raw signed 16-bit little-endian samples (OpenAI's `pcm` format).
pub(crate) fn s16le(pcm: &Pcm) -> Vec<u8> {
    pcm.samples.iter().flat_map(|s| (((s.clamp(-1.0, 1.0)) * 32767.0).round() as i16).to_le_bytes()).collect()
}

// ---- video ------------------------------------------------------------------

/// What an uploaded video turned out to be.
pub(crate) struct Video {
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    /// Frame count as the container declares it.
    pub frame_count: u32,
    /// The decoded pictures, or `None` when the H.264 decoder gave up (the
    /// service then draws stand-in frames of the same size, rate and length).
    pub frames: Option<Frames>,
}

/// Looks for an `ftyp` box, as `ffprobe` would before calling it MP4/MOV.
pub(crate) fn looks_like_mp4(b: &[u8]) -> bool {
    b.len() >= 12 && &b[4..8] == b"ftyp"
}

/// Demuxes the first H.264 track of an MP4/MOV and decodes it.
pub(crate) fn mp4_video(bytes: &[u8]) -> Result<Video, String> {
    if !looks_like_mp4(bytes) {
        return Err("not an MP4/MOV file".into());
    }
    let bad = |e: mp4::Error| format!("broken MP4: {e}");
    let mut r = mp4::Mp4Reader::read_header(Cursor::new(bytes), bytes.len() as u64).map_err(bad)?;
    let track = r
        .tracks()
        .values()
        .find(|t| t.track_type().ok() == Some(mp4::TrackType::Video))
        .ok_or("the MP4 has no video track")?;
    if track.media_type().ok() != Some(mp4::MediaType::H264) {
        return Err("the simulator decodes H.264 video only".into());
    }
    let id = track.track_id();
    let (width, height) = (u32::from(track.width()), u32::from(track.height()));
    let frame_count = track.sample_count();
    let secs = track.duration().as_secs_f64();
    let fps = if secs > 0.0 { f64::from(frame_count) / secs } else { track.frame_rate() };
    let avcc = &track.trak.mdia.minf.stbl.stsd.avc1.as_ref().ok_or("no avc1 entry")?.avcc;
    let len_size = usize::from(avcc.length_size_minus_one & 3) + 1;
    let mut annexb = Vec::new();
    for nal in avcc.sequence_parameter_sets.iter().chain(&avcc.picture_parameter_sets) {
        annexb.extend_from_slice(&[0, 0, 0, 1]);
        annexb.extend_from_slice(&nal.bytes);
    }
    if width == 0 || height == 0 || frame_count == 0 {
        return Err("the video track is empty".into());
    }
    for i in 1..=frame_count {
        let Some(s) = r.read_sample(id, i).map_err(bad)? else {
            break;
        };
        let mut p = &s.bytes[..];
        while p.len() > len_size {
            let n = p[..len_size].iter().fold(0usize, |a, &b| a << 8 | usize::from(b));
            let nal = &p[len_size..(len_size + n).min(p.len())];
            annexb.extend_from_slice(&[0, 0, 0, 1]);
            annexb.extend_from_slice(nal);
            p = &p[(len_size + n).min(p.len())..];
        }
    }
    let frames = rusty_h264_decoder::Decoder::new().decode_stream(&annexb).ok().filter(|f| !f.is_empty()).map(|yuv| {
        let (w, h) = (yuv[0].width as u32, yuv[0].height as u32);
        Frames {
            width: w,
            height: h,
            rgb: yuv.iter().filter(|f| f.width as u32 == w && f.height as u32 == h).map(i420_to_rgb).collect(),
        }
    });
    Ok(Video { width, height, fps: if fps.is_finite() && fps > 0.0 { fps } else { 25.0 }, frame_count, frames })
}

/// BT.601 limited-range I420 to RGB8 (the inverse of the encoders' step).
fn i420_to_rgb(f: &rusty_h264_common::YuvFrame) -> Vec<u8> {
    let (w, h) = (f.width, f.height);
    let cw = w.div_ceil(2);
    let mut out = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            let yy = 1.164 * (f32::from(f.y[y * w + x]) - 16.0);
            let ci = (y / 2) * cw + x / 2;
            let u = f32::from(f.u[ci]) - 128.0;
            let v = f32::from(f.v[ci]) - 128.0;
            for c in [yy + 1.596 * v, yy - 0.392 * u - 0.813 * v, yy + 2.017 * u] {
                out.push(c.round().clamp(0.0, 255.0) as u8);
            }
        }
    }
    out
}
