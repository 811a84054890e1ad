//! MP4 with an H.264 video track (pure-Rust `rusty_h264-encoder`, Constrained
//! Baseline, so no B-frames and no composition offsets) and an optional AAC-LC
//! track (`rusty_aac`). The ISO-BMFF muxer is written here: it is small, and
//! owning it keeps the box layout exactly what ffprobe and browsers expect.

use super::raster::rgb_to_i420;
use super::{Frames, MediaError, Pcm, Result, check_frames};

/// Encodes `frames` at `fps` (and `audio`, if any) into a playable MP4.
///
/// Odd sizes are cropped to even ones, as H.264 4:2:0 needs.
pub fn mp4(frames: &Frames, fps: f64, audio: Option<&Pcm>) -> Result<Vec<u8>> {
    check_frames(frames)?;
    let fps = if fps.is_finite() && fps > 0.0 { fps } else { 24.0 };
    let video = encode_h264(frames, fps)?;
    let audio = match audio {
        Some(pcm) if pcm.frames() > 0 => Some(encode_aac(pcm)?),
        _ => None,
    };
    Ok(mux(&video, audio.as_ref()))
}

pub(crate) struct H264 {
    pub width: u32,
    pub height: u32,
    pub sps: Vec<u8>,
    pub pps: Vec<u8>,
    /// Length-prefixed (4-byte) NAL units of each access unit, and whether it is an IDR.
    pub samples: Vec<(Vec<u8>, bool)>,
    pub timescale: u32,
    pub delta: u32,
}

pub(crate) fn even_crop(frames: &Frames) -> (u32, u32, Vec<Vec<u8>>) {
    let (w, h) = ((frames.width & !1).max(2), (frames.height & !1).max(2));
    if w == frames.width && h == frames.height {
        return (w, h, frames.rgb.clone());
    }
    let crop = |f: &Vec<u8>| {
        let mut out = Vec::with_capacity((w * h * 3) as usize);
        for y in 0..h.min(frames.height) as usize {
            let row = y * frames.width as usize * 3;
            out.extend_from_slice(&f[row..row + w.min(frames.width) as usize * 3]);
        }
        out.resize((w * h * 3) as usize, 0);
        out
    };
    (w, h, frames.rgb.iter().map(crop).collect())
}

fn encode_h264(frames: &Frames, fps: f64) -> Result<H264> {
    let (w, h, rgb) = even_crop(frames);
    let mut cfg = rusty_h264_encoder::EncoderConfig::baseline(w as usize, h as usize);
    cfg.gop_size = 60;
    cfg.framerate = fps as f32;
    cfg.level_idc = level_for(w, h);
    let mut enc = rusty_h264_encoder::Encoder::new(cfg).map_err(|e| MediaError::new(format!("{e:?}")))?;
    let mut annexb = Vec::new();
    for f in &rgb {
        let p = rgb_to_i420(f, w, h);
        let frame = rusty_h264_common::YuvFrame { width: w as usize, height: h as usize, y: p.y, u: p.u, v: p.v };
        annexb.extend(enc.encode(&frame));
    }
    annexb.extend(enc.flush());
    let (sps, pps, samples) = split_access_units(&annexb);
    if samples.len() != rgb.len() || sps.is_empty() || pps.is_empty() {
        return Err(MediaError::new(format!(
            "h264 encoder gave {} access units for {} frames",
            samples.len(),
            rgb.len()
        )));
    }
    let (timescale, delta) = timebase(fps);
    Ok(H264 { width: w, height: h, sps, pps, samples, timescale, delta })
}

fn level_for(w: u32, h: u32) -> u8 {
    let mbs = w.div_ceil(16) * h.div_ceil(16);
    match mbs {
        0..=396 => 30,
        397..=1620 => 31,
        1621..=8192 => 40,
        8193..=22080 => 50,
        _ => 52,
    }
}

/// fps as timescale/delta, exact for integer and 1000/1001-style rates.
pub(crate) fn timebase(fps: f64) -> (u32, u32) {
    let ms = (fps * 1000.0).round().clamp(1.0, 1_000_000.0) as u32;
    (ms, 1000)
}

fn nal_units(annexb: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= annexb.len() {
        if annexb[i] == 0 && annexb[i + 1] == 0 && annexb[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::new();
    for (k, &s) in starts.iter().enumerate() {
        let mut end = starts.get(k + 1).map_or(annexb.len(), |&n| n - 3);
        while end > s && annexb[end - 1] == 0 {
            end -= 1;
        }
        if end > s {
            out.push(&annexb[s..end]);
        }
    }
    out
}

type Units = (Vec<u8>, Vec<u8>, Vec<(Vec<u8>, bool)>);

/// Groups NAL units into access units: a new one starts at AUD/SPS/PPS/SEI
/// after a slice, or at a slice whose first_mb_in_slice is 0.
fn split_access_units(annexb: &[u8]) -> Units {
    let (mut sps, mut pps) = (Vec::new(), Vec::new());
    let mut aus: Vec<(Vec<u8>, bool)> = Vec::new();
    let mut cur: Vec<u8> = Vec::new();
    let mut cur_idr = false;
    let mut cur_has_slice = false;
    for nal in nal_units(annexb) {
        let ty = nal[0] & 0x1f;
        let is_slice = ty == 1 || ty == 5;
        let starts_au = if is_slice { nal.len() > 1 && nal[1] & 0x80 != 0 } else { matches!(ty, 6..=9) };
        if starts_au && cur_has_slice {
            aus.push((std::mem::take(&mut cur), cur_idr));
            cur_idr = false;
            cur_has_slice = false;
        }
        match ty {
            7 => sps = nal.to_vec(),
            8 => pps = nal.to_vec(),
            9 => {}
            _ => {
                cur.extend_from_slice(&(nal.len() as u32).to_be_bytes());
                cur.extend_from_slice(nal);
            }
        }
        if is_slice {
            cur_has_slice = true;
            cur_idr |= ty == 5;
        }
    }
    if cur_has_slice {
        aus.push((cur, cur_idr));
    }
    (sps, pps, aus)
}

pub(crate) struct Aac {
    pub sample_rate: u32,
    pub channels: u16,
    pub asc: Vec<u8>,
    pub packets: Vec<Vec<u8>>,
    pub bitrate: u32,
    /// Samples per channel of the PCM that was encoded: what players must
    /// present (the packets hold the encoder's priming and whole frames).
    pub frames: u64,
}

/// The AAC encoding of `pcm` as (AudioSpecificConfig, packets), for the
/// test that measures the priming.
#[cfg(test)]
pub(crate) fn encode_aac_for_tests(pcm: &Pcm) -> (Vec<u8>, Vec<Vec<u8>>) {
    let a = encode_aac(pcm).expect("aac encodes");
    (a.asc, a.packets)
}

/// The encoder's priming: decoded audio lags the input by one AAC frame
/// (measured: the cross-correlation of input and decoded output peaks at
/// exactly 1024 samples). The audio track's edit list skips it.
const AAC_PRIMING: u32 = 1024;

fn encode_aac(pcm: &Pcm) -> Result<Aac> {
    let channels = pcm.channels.clamp(1, 2);
    let samples: Vec<f32> = if channels == pcm.channels {
        pcm.samples.clone()
    } else {
        pcm.samples.chunks(usize::from(pcm.channels)).flat_map(|c| c.iter().take(2).copied()).collect()
    };
    let bitrate = 64_000 * u32::from(channels);
    let mut enc =
        rusty_aac::AacEncoder::new(rusty_aac::AacEncoderConfig { bitrate_bps: bitrate, ..Default::default() });
    enc.push_pcm(&samples, channels, pcm.sample_rate).map_err(|e| MediaError::new(format!("aac: {e:?}")))?;
    enc.finish();
    let mut packets = Vec::new();
    while let Ok(p) = enc.next_packet() {
        packets.push(p.data);
    }
    Ok(Aac {
        sample_rate: pcm.sample_rate,
        channels,
        asc: rusty_aac::audio_specific_config_bytes(pcm.sample_rate, channels),
        packets,
        bitrate,
        frames: (samples.len() / usize::from(channels)) as u64,
    })
}

// ---- ISO-BMFF writing -------------------------------------------------------

struct W(Vec<u8>);

impl W {
    fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    fn u16(&mut self, v: u16) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }
    fn zeros(&mut self, n: usize) -> &mut Self {
        self.0.resize(self.0.len() + n, 0);
        self
    }
}

fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(body.len() + 8);
    v.extend_from_slice(&(body.len() as u32 + 8).to_be_bytes());
    v.extend_from_slice(kind);
    v.extend_from_slice(body);
    v
}

fn full(kind: &[u8; 4], version: u8, flags: u32, body: &[u8]) -> Vec<u8> {
    let mut b = vec![version, (flags >> 16) as u8, (flags >> 8) as u8, flags as u8];
    b.extend_from_slice(body);
    bx(kind, &b)
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

const MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

fn mvhd(duration_ms: u32, next_track: u32) -> Vec<u8> {
    let mut w = W(Vec::new());
    w.u32(0).u32(0).u32(1000).u32(duration_ms).u32(0x0001_0000).u16(0x0100).zeros(10);
    for m in MATRIX {
        w.u32(m);
    }
    w.zeros(24).u32(next_track);
    full(b"mvhd", 0, 0, &w.0)
}

fn tkhd(id: u32, duration_ms: u32, audio: bool, width: u32, height: u32) -> Vec<u8> {
    let mut w = W(Vec::new());
    w.u32(0).u32(0).u32(id).u32(0).u32(duration_ms).zeros(8).u16(0).u16(0);
    w.u16(if audio { 0x0100 } else { 0 }).u16(0);
    for m in MATRIX {
        w.u32(m);
    }
    w.u32(width << 16).u32(height << 16);
    full(b"tkhd", 0, 3, &w.0)
}

fn mdhd(timescale: u32, duration: u32) -> Vec<u8> {
    let mut w = W(Vec::new());
    w.u32(0).u32(0).u32(timescale).u32(duration).u16(0x55c4).u16(0);
    full(b"mdhd", 0, 0, &w.0)
}

fn hdlr(kind: &[u8; 4], name: &str) -> Vec<u8> {
    let mut w = W(Vec::new());
    w.u32(0).bytes(kind).zeros(12).bytes(name.as_bytes()).u8(0);
    full(b"hdlr", 0, 0, &w.0)
}

fn dinf() -> Vec<u8> {
    let url = full(b"url ", 0, 1, &[]);
    let mut d = W(Vec::new());
    d.u32(1).bytes(&url);
    bx(b"dinf", &full(b"dref", 0, 0, &d.0))
}

/// Sample tables for one chunk holding all of a track's samples.
fn tables(stsd: Vec<u8>, count: u32, delta: u32, sizes: &[u32], sync: Option<&[u32]>, offset: u32) -> Vec<u8> {
    let mut stts = W(Vec::new());
    stts.u32(1).u32(count).u32(delta);
    let mut stsc = W(Vec::new());
    stsc.u32(1).u32(1).u32(count).u32(1);
    let mut stsz = W(Vec::new());
    stsz.u32(0).u32(count);
    for s in sizes {
        stsz.u32(*s);
    }
    let mut stco = W(Vec::new());
    stco.u32(1).u32(offset);
    let mut parts = vec![stsd, full(b"stts", 0, 0, &stts.0)];
    if let Some(sync) = sync {
        let mut stss = W(Vec::new());
        stss.u32(sync.len() as u32);
        for s in sync {
            stss.u32(*s);
        }
        parts.push(full(b"stss", 0, 0, &stss.0));
    }
    parts.push(full(b"stsc", 0, 0, &stsc.0));
    parts.push(full(b"stsz", 0, 0, &stsz.0));
    parts.push(full(b"stco", 0, 0, &stco.0));
    bx(b"stbl", &cat(&parts))
}

fn video_trak(v: &H264, offset: u32, duration_ms: u32) -> Vec<u8> {
    let mut avcc = W(Vec::new());
    avcc.u8(1).u8(v.sps[1]).u8(v.sps[2]).u8(v.sps[3]).u8(0xff).u8(0xe1);
    avcc.u16(v.sps.len() as u16).bytes(&v.sps).u8(1).u16(v.pps.len() as u16).bytes(&v.pps);
    let mut e = W(Vec::new());
    e.zeros(6).u16(1).zeros(16).u16(v.width as u16).u16(v.height as u16);
    e.u32(0x0048_0000).u32(0x0048_0000).u32(0).u16(1).zeros(32).u16(0x18).u16(0xffff);
    e.bytes(&bx(b"avcC", &avcc.0));
    let mut stsd = W(Vec::new());
    stsd.u32(1).bytes(&bx(b"avc1", &e.0));
    let stsd = full(b"stsd", 0, 0, &stsd.0);
    let sizes: Vec<u32> = v.samples.iter().map(|(s, _)| s.len() as u32).collect();
    let sync: Vec<u32> = (1..).zip(&v.samples).filter(|(_, (_, idr))| *idr).map(|(i, _)| i).collect();
    let n = v.samples.len() as u32;
    let stbl = tables(stsd, n, v.delta, &sizes, Some(&sync), offset);
    let vmhd = full(b"vmhd", 0, 1, &[0; 8]);
    let minf = bx(b"minf", &cat(&[vmhd, dinf(), stbl]));
    let mdia = bx(b"mdia", &cat(&[mdhd(v.timescale, n * v.delta), hdlr(b"vide", "VideoHandler"), minf]));
    bx(b"trak", &cat(&[tkhd(1, duration_ms, false, v.width, v.height), mdia]))
}

fn descriptor(tag: u8, body: &[u8]) -> Vec<u8> {
    let n = body.len() as u32;
    let mut v = vec![
        tag,
        0x80 | (n >> 21) as u8 & 0x7f,
        0x80 | (n >> 14) as u8 & 0x7f,
        0x80 | (n >> 7) as u8 & 0x7f,
        n as u8 & 0x7f,
    ];
    v.extend_from_slice(body);
    v
}

fn audio_trak(a: &Aac, offset: u32, duration_ms: u32) -> Vec<u8> {
    let mut dc = W(Vec::new());
    dc.u8(0x40).u8(0x15).u8(0).u16(0x1800).u32(a.bitrate).u32(a.bitrate);
    dc.bytes(&descriptor(5, &a.asc));
    let mut es = W(Vec::new());
    es.u16(2).u8(0).bytes(&descriptor(4, &dc.0)).bytes(&descriptor(6, &[2]));
    let esds = full(b"esds", 0, 0, &descriptor(3, &es.0));
    let mut e = W(Vec::new());
    e.zeros(6).u16(1).zeros(8).u16(a.channels).u16(16).u16(0).u16(0).u32(a.sample_rate.min(65535) << 16);
    e.bytes(&esds);
    let mut stsd = W(Vec::new());
    stsd.u32(1).bytes(&bx(b"mp4a", &e.0));
    let stsd = full(b"stsd", 0, 0, &stsd.0);
    let sizes: Vec<u32> = a.packets.iter().map(|p| p.len() as u32).collect();
    let n = a.packets.len() as u32;
    let stbl = tables(stsd, n, 1024, &sizes, None, offset);
    let smhd = full(b"smhd", 0, 0, &[0; 4]);
    let minf = bx(b"minf", &cat(&[smhd, dinf(), stbl]));
    let mdia = bx(b"mdia", &cat(&[mdhd(a.sample_rate, n * 1024), hdlr(b"soun", "SoundHandler"), minf]));
    bx(b"trak", &cat(&[tkhd(2, duration_ms, true, 0, 0), edts(duration_ms, AAC_PRIMING), mdia]))
}

/// An edit list of one segment: present `duration_ms` of the media starting
/// at `media_time` (in the track's timescale), as ffmpeg writes to hide AAC
/// priming.
fn edts(duration_ms: u32, media_time: u32) -> Vec<u8> {
    let mut e = W(Vec::new());
    e.u32(1).u32(duration_ms).u32(media_time).u16(1).u16(0);
    bx(b"edts", &full(b"elst", 0, 0, &e.0))
}

fn mux(v: &H264, a: Option<&Aac>) -> Vec<u8> {
    let mut ftyp = W(Vec::new());
    ftyp.bytes(b"isom").u32(0x200).bytes(b"isomiso2avc1mp41");
    let ftyp = bx(b"ftyp", &ftyp.0);
    let video_len: usize = v.samples.iter().map(|(s, _)| s.len()).sum();
    let audio_len: usize = a.map_or(0, |a| a.packets.iter().map(Vec::len).sum());
    let mdat_start = ftyp.len() + 8;
    let mut out = ftyp;
    out.extend_from_slice(&((8 + video_len + audio_len) as u32).to_be_bytes());
    out.extend_from_slice(b"mdat");
    for (s, _) in &v.samples {
        out.extend_from_slice(s);
    }
    if let Some(a) = a {
        for p in &a.packets {
            out.extend_from_slice(p);
        }
    }
    let v_ms = (u64::from(v.delta) * v.samples.len() as u64 * 1000 / u64::from(v.timescale)) as u32;
    let mut traks = vec![video_trak(v, mdat_start as u32, v_ms)];
    let mut total_ms = v_ms;
    if let Some(a) = a {
        let a_ms = (a.frames * 1000).div_ceil(u64::from(a.sample_rate)) as u32;
        total_ms = total_ms.max(a_ms);
        traks.push(audio_trak(a, (mdat_start + video_len) as u32, a_ms));
    }
    let next = traks.len() as u32 + 1;
    let mut moov = vec![mvhd(total_ms, next)];
    moov.extend(traks);
    out.extend(bx(b"moov", &cat(&moov)));
    out
}
