//! Each encoder's output decodes, and has the size, length and rate asked for.

use super::*;

fn frames(w: u32, h: u32, n: u32) -> Frames {
    Frames { width: w, height: h, rgb: (0..n).map(|i| gradient_frame(w, h, 7, i)).collect() }
}

/// Runs ffprobe on `bytes`: `None` only when ffprobe is not installed on a
/// developer's machine. Under CI (`CI` set) a missing ffprobe fails the
/// test instead: `.ci/run` installs it (Debian's `ffmpeg`), and a check that
/// silently skips there is a check that cannot fail.
pub(crate) fn ffprobe(bytes: &[u8], ext: &str) -> Option<serde_json::Value> {
    let installed = std::process::Command::new("ffprobe").arg("-version").output().is_ok_and(|o| o.status.success());
    if !installed {
        assert!(
            std::env::var_os("CI").is_none(),
            "ffprobe is not installed; under CI it must be (.ci/run installs Debian's ffmpeg)"
        );
        eprintln!("note: ffprobe is not installed; skipping its check of the {ext}");
        return None;
    }
    let dir = tempfile::tempdir().expect("a temporary directory for ffprobe");
    let path = dir.path().join(format!("probe.{ext}"));
    std::fs::write(&path, bytes).expect("writing the file for ffprobe");
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-show_streams", "-show_format", "-of", "json"])
        .arg(&path)
        .output()
        .expect("running ffprobe");
    assert!(out.status.success(), "ffprobe rejected the {ext}: {}", String::from_utf8_lossy(&out.stderr));
    Some(serde_json::from_slice(&out.stdout).expect("ffprobe prints JSON"))
}

#[test]
fn png_decodes_at_size() {
    let rgb = gradient_frame(40, 30, 1, 0);
    let bytes = png(40, 30, &rgb).unwrap();
    let dec = ::png::Decoder::new(std::io::Cursor::new(bytes));
    let reader = dec.read_info().unwrap();
    assert_eq!((reader.info().width, reader.info().height), (40, 30));
    assert_ne!(gradient_frame(40, 30, 1, 0), gradient_frame(40, 30, 2, 0), "seed must change the picture");
}

#[test]
fn apng_has_all_frames() {
    let bytes = apng(&frames(16, 16, 5), 8.0).unwrap();
    let reader = ::png::Decoder::new(std::io::Cursor::new(bytes)).read_info().unwrap();
    let ctl = reader.info().animation_control().unwrap();
    assert_eq!(ctl.num_frames, 5);
}

#[test]
fn flac_has_duration_and_rate() {
    let pcm = Pcm { sample_rate: 44100, channels: 2, samples: tone(44100, 2, 1.5, 3) };
    let bytes = flac(&pcm).unwrap();
    let r = claxon::FlacReader::new(std::io::Cursor::new(bytes)).unwrap();
    let info = r.streaminfo();
    assert_eq!(info.sample_rate, 44100);
    assert_eq!(info.channels, 2);
    assert_eq!(info.samples, Some(66150));
}

#[test]
fn mp4_has_avc1_track_with_frames_and_fps() {
    let pcm = Pcm { sample_rate: 44100, channels: 2, samples: tone(44100, 2, 1.0, 3) };
    let bytes = mp4(&frames(64, 48, 8), 8.0, Some(&pcm)).unwrap();
    let len = bytes.len() as u64;
    let r = ::mp4::Mp4Reader::read_header(std::io::Cursor::new(bytes.clone()), len).unwrap();
    let video = r.tracks().values().find(|t| t.track_type().ok() == Some(::mp4::TrackType::Video)).unwrap();
    assert_eq!(video.media_type().unwrap(), ::mp4::MediaType::H264);
    assert_eq!(video.sample_count(), 8);
    assert_eq!((video.width(), video.height()), (64, 48));
    assert!((video.frame_rate() - 8.0).abs() < 1e-6);
    let audio = r.tracks().values().find(|t| t.track_type().ok() == Some(::mp4::TrackType::Audio)).unwrap();
    assert_eq!(audio.media_type().unwrap(), ::mp4::MediaType::AAC);
    if let Some(p) = ffprobe(&bytes, "mp4") {
        let streams = p["streams"].as_array().unwrap();
        let v = streams.iter().find(|s| s["codec_type"] == "video").unwrap();
        assert_eq!(v["codec_name"], "h264");
        assert_eq!(v["nb_read_frames"], "8");
        assert_eq!(v["avg_frame_rate"], "8/1");
        let a = streams.iter().find(|s| s["codec_type"] == "audio").unwrap();
        assert_eq!(a["codec_name"], "aac");
    }
}

#[test]
fn odd_sizes_are_cropped_for_video() {
    let bytes = mp4(&frames(33, 17, 2), 25.0, None).unwrap();
    let len = bytes.len() as u64;
    let r = ::mp4::Mp4Reader::read_header(std::io::Cursor::new(bytes), len).unwrap();
    let t = r.tracks().values().next().unwrap();
    assert_eq!((t.width(), t.height(), t.sample_count()), (32, 16, 2));
}

#[test]
fn mp3_webp_webm_are_accepted_by_ffprobe() {
    let pcm = Pcm { sample_rate: 44100, channels: 2, samples: tone(44100, 2, 1.0, 3) };
    let mp3 = mp3(&pcm, 128).unwrap();
    // An ID3 tag or an MPEG audio frame header (11 sync bits) first.
    assert!(mp3.starts_with(b"ID3") || (mp3[0] == 0xFF && mp3[1] & 0xE0 == 0xE0), "{:02x?}", &mp3[..4]);
    let webp = webp_animated(&frames(16, 16, 4), 8.0).unwrap();
    assert_eq!(&webp[8..12], b"WEBP");
    let webm = webm(&frames(32, 32, 6), 8.0, 32).unwrap();
    assert_eq!(&webm[..4], &[0x1a, 0x45, 0xdf, 0xa3]);
    if let Some(p) = ffprobe(&mp3, "mp3") {
        let s = &p["streams"][0];
        assert_eq!(s["codec_name"], "mp3");
        assert_eq!(s["sample_rate"], "44100");
    }
    if let Some(p) = ffprobe(&webm, "webm") {
        let s = &p["streams"][0];
        assert_eq!(s["codec_name"], "vp9");
        assert_eq!(s["nb_read_frames"], "6");
    }
    if let Some(p) = ffprobe(&webp, "webp") {
        assert_eq!(p["format"]["format_name"], "webp_pipe");
    }
}

/// The audio track's edit list skips the AAC encoder's 1024-sample priming
/// (measured by decoding: input and output correlate best at that lag) and
/// presents exactly the PCM's length, so sound starts with the first frame.
#[test]
fn mp4_audio_edit_list_hides_the_priming() {
    let rate = 48_000;
    let pcm = Pcm { sample_rate: rate, channels: 1, samples: vec![0.1; rate as usize / 2] };
    let bytes = mp4(&frames(32, 32, 4), 8.0, Some(&pcm)).unwrap();
    let at = bytes.windows(4).position(|w| w == b"elst").expect("an elst box");
    let field = |i: usize| u32::from_be_bytes(bytes[at + 4 + i * 4..at + 8 + i * 4].try_into().unwrap());
    assert_eq!(field(1), 1, "one segment");
    assert_eq!(field(2), 500, "presents 500 ms (the movie timescale is 1000)");
    assert_eq!(field(3), 1024, "starts after the priming");

    // The decoded media really lags by 1024 samples: a click comes out there.
    let mut click = vec![0.0f32; rate as usize / 2];
    for (i, s) in click[6000..6064].iter_mut().enumerate() {
        *s = if i % 2 == 0 { 0.9 } else { -0.9 };
    }
    let pcm = Pcm { sample_rate: rate, channels: 1, samples: click.clone() };
    let a = super::mp4::encode_aac_for_tests(&pcm);
    let mut dec = rusty_aac::AacDecoder::with_config_bytes(&a.0).unwrap();
    let out: Vec<f32> = a.1.iter().flat_map(|p| dec.decode(p, None).unwrap().samples).collect();
    let corr = |lag: usize| -> f32 {
        click.iter().enumerate().filter(|(i, _)| i + lag < out.len()).map(|(i, s)| s * out[i + lag]).sum()
    };
    let best = (0..2048).max_by(|a, b| corr(*a).total_cmp(&corr(*b))).unwrap();
    assert_eq!(best, 1024);
}
