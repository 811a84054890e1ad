//! WebM with a VP9 video track: pure-Rust `rusty_vp9` for the codec, the
//! Matroska (EBML) container written here.

use super::mp4::even_crop;
use super::raster::rgb_to_i420;
use super::{Frames, MediaError, Result, check_frames};

fn el(id: &[u8], body: &[u8]) -> Vec<u8> {
    let mut v = id.to_vec();
    // An 8-byte size field is valid for any element and keeps this simple.
    v.push(0x01);
    v.extend_from_slice(&(body.len() as u64).to_be_bytes()[1..]);
    v.extend_from_slice(body);
    v
}

fn uint(id: &[u8], x: u64) -> Vec<u8> {
    let b = x.to_be_bytes();
    let skip = b.iter().take(7).take_while(|&&c| c == 0).count();
    el(id, &b[skip..])
}

/// A VP9 WebM at `fps`, like ComfyUI's SaveWEBM. `crf` maps onto the
/// encoder's 0..63 quality scale.
pub fn webm(frames: &Frames, fps: f64, crf: u32) -> Result<Vec<u8>> {
    check_frames(frames)?;
    let fps = if fps.is_finite() && fps > 0.0 { fps } else { 24.0 };
    let (w, h, rgb) = even_crop(frames);
    let mut enc = rusty_vp9::Vp9Encoder::default();
    enc.configure(&rusty_vp9::Vp9EncoderConfig {
        crf: Some(crf.clamp(1, 63)),
        fps: Some(fps),
        lag: Some(0),
        speed: Some(6),
        ..Default::default()
    })
    .map_err(|e| MediaError::new(format!("vp9: {e:?}")))?;
    let (cw, _) = (w as usize / 2, h as usize / 2);
    let mut packets = Vec::new();
    let mut drain = |enc: &mut rusty_vp9::Vp9Encoder| {
        while let Ok(p) = enc.next_packet() {
            packets.push(p);
        }
    };
    for f in &rgb {
        let p = rgb_to_i420(f, w, h);
        enc.push_frame([&p.y, &p.u, &p.v], [w as usize, cw, cw], w, h)
            .map_err(|e| MediaError::new(format!("vp9: {e:?}")))?;
        drain(&mut enc);
    }
    enc.flush();
    drain(&mut enc);
    if packets.len() != rgb.len() {
        return Err(MediaError::new(format!("vp9 encoder gave {} packets for {} frames", packets.len(), rgb.len())));
    }
    let frame_ns = (1e9 / fps).round() as u64;
    let ebml = el(
        &[0x1a, 0x45, 0xdf, 0xa3],
        &[
            uint(&[0x42, 0x86], 1),
            uint(&[0x42, 0xf7], 1),
            uint(&[0x42, 0xf2], 4),
            uint(&[0x42, 0xf3], 8),
            el(&[0x42, 0x82], b"webm"),
            uint(&[0x42, 0x87], 4),
            uint(&[0x42, 0x85], 2),
        ]
        .concat(),
    );
    let duration_ms = frame_ns as f64 * packets.len() as f64 / 1e6;
    let info = el(
        &[0x15, 0x49, 0xa9, 0x66],
        &[
            uint(&[0x2a, 0xd7, 0xb1], 1_000_000),
            el(&[0x4d, 0x80], b"c41-sim"),
            el(&[0x57, 0x41], b"c41-sim"),
            el(&[0x44, 0x89], &duration_ms.to_be_bytes()),
        ]
        .concat(),
    );
    let video = el(&[0xe0], &[uint(&[0xb0], u64::from(w)), uint(&[0xba], u64::from(h))].concat());
    let track = el(
        &[0xae],
        &[
            uint(&[0xd7], 1),
            uint(&[0x73, 0xc5], 1),
            uint(&[0x83], 1),
            el(&[0x86], b"V_VP9"),
            uint(&[0x9c], 0),
            uint(&[0x23, 0xe3, 0x83], frame_ns),
            video,
        ]
        .concat(),
    );
    let tracks = el(&[0x16, 0x54, 0xae, 0x6b], &track);
    let mut clusters = Vec::new();
    for (ci, group) in packets.chunks(128).enumerate() {
        let start_ms = (ci * 128) as u64 * frame_ns / 1_000_000;
        let mut body = uint(&[0xe7], start_ms);
        for (k, p) in group.iter().enumerate() {
            let t_ms = (ci * 128 + k) as u64 * frame_ns / 1_000_000;
            let rel = (t_ms - start_ms) as i16;
            let mut block = vec![0x81];
            block.extend_from_slice(&rel.to_be_bytes());
            block.push(if p.keyframe { 0x80 } else { 0x00 });
            block.extend_from_slice(&p.data);
            body.extend(el(&[0xa3], &block));
        }
        clusters.extend(el(&[0x1f, 0x43, 0xb6, 0x75], &body));
    }
    let segment = el(&[0x18, 0x53, 0x80, 0x67], &[info, tracks, clusters].concat());
    Ok([ebml, segment].concat())
}
