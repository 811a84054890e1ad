//! Property tests of the kit's parsers that read what servers send back
//! (ComfyUI's JSON replies and websocket frames, media files streamed into
//! the store): arbitrary bytes get an answer, never a panic, and a streamed
//! file is described the same however it is cut into chunks. Bounded, so
//! they run in `cargo test`; `fuzz/` has the unbounded cargo-fuzz targets of
//! the same functions.

use c41_kit::comfyui::errors::{execution_error_message, interrupted_message, rejection_message};
use c41_kit::comfyui::protocol::{HistoryEntry, Queue, WsEvent, preview_image};
use c41_kit::media::Probe;
use c41_kit::media::audio::Kind;
use proptest::prelude::*;
use serde_json::{Value, json};

/// Arbitrary JSON, a few levels deep, with the keys ComfyUI uses so the
/// parsers get past their first checks.
fn json_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("prompt_id".to_string()),
        Just("node_id".to_string()),
        Just("node_type".to_string()),
        Just("class_type".to_string()),
        Just("errors".to_string()),
        Just("node_errors".to_string()),
        Just("error".to_string()),
        Just("outputs".to_string()),
        Just("images".to_string()),
        Just("filename".to_string()),
        Just("queue_running".to_string()),
        Just("queue_pending".to_string()),
        Just("status".to_string()),
        Just("messages".to_string()),
        Just("type".to_string()),
        Just("data".to_string()),
        "[a-z_]{1,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        "\\PC{0,16}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// A file cut into chunks at arbitrary places.
fn fed(bytes: &[u8], cuts: &[usize]) -> c41_kit::media::Media {
    let mut probe = Probe::new();
    let mut at = 0;
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    for c in cuts {
        probe.feed(&bytes[at..c]);
        at = c;
    }
    probe.feed(&bytes[at..]);
    probe.finish()
}

/// What a probe says about a stream, as one comparable string.
fn described(m: &c41_kit::media::Media) -> String {
    let audio: Vec<_> = [Kind::Wav, Kind::Flac, Kind::Mp3].into_iter().map(|k| format!("{:?}", m.audio(k))).collect();
    format!("{:?} | {:?} | {:?} | {}", m.info(), m.movie().map(|mv| format!("{mv:?}")), audio, m.bytes)
}

/// Box-shaped bytes: MP4 box headers with random sizes and types among the
/// ones the scanner looks into, so it gets deep into its tables.
fn boxy() -> impl Strategy<Value = Vec<u8>> {
    let ty = prop_oneof![
        Just(*b"ftyp"),
        Just(*b"moov"),
        Just(*b"mdat"),
        Just(*b"trak"),
        Just(*b"mdia"),
        Just(*b"mdhd"),
        Just(*b"mvhd"),
        Just(*b"tkhd"),
        Just(*b"hdlr"),
        Just(*b"minf"),
        Just(*b"stbl"),
        Just(*b"stsd"),
        Just(*b"stsz"),
        Just(*b"stts"),
        Just(*b"elst"),
        any::<[u8; 4]>(),
    ];
    prop::collection::vec((0u32..96, ty, prop::collection::vec(any::<u8>(), 0..64)), 1..8).prop_map(|boxes| {
        let mut out = Vec::new();
        for (size, ty, body) in boxes {
            out.extend_from_slice(&size.to_be_bytes());
            out.extend_from_slice(&ty);
            out.extend_from_slice(&body);
        }
        out
    })
}

/// Audio-shaped bytes: a real magic number, then noise.
fn audio_like() -> impl Strategy<Value = Vec<u8>> {
    let magic = prop_oneof![
        Just(b"fLaC".to_vec()),
        Just(b"RIFF\x24\x00\x00\x00WAVEfmt ".to_vec()),
        Just(b"ID3\x04\x00\x00\x00\x00\x00\x00".to_vec()),
        Just(vec![0xFF, 0xFB, 0x90, 0x64]),
    ];
    (magic, prop::collection::vec(any::<u8>(), 0..256)).prop_map(|(mut m, rest)| {
        m.extend(rest);
        m
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// However a stream is cut into chunks, the probe says the same of it.
    #[test]
    fn a_probe_is_independent_of_chunking(
        bytes in prop_oneof![boxy(), audio_like(), prop::collection::vec(any::<u8>(), 0..512)],
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let whole = fed(&bytes, &[]);
        let chunked = fed(&bytes, &cuts);
        prop_assert_eq!(described(&whole), described(&chunked));
        prop_assert_eq!(whole.bytes, bytes.len() as u64);
    }

    /// Websocket text frames: any JSON parses or is refused, never panics.
    #[test]
    fn websocket_frames_never_panic(v in json_value(), raw in "\\PC{0,64}") {
        for text in [v.to_string(), raw] {
            if let Ok(ev) = serde_json::from_str::<WsEvent>(&text) {
                let _ = ev.prompt_id();
            }
        }
    }

    /// Binary frames: a preview only when the header says so, and then the
    /// image is exactly the rest of the frame.
    #[test]
    fn binary_frames_are_previews_only_when_they_say_so(frame in prop::collection::vec(any::<u8>(), 0..64)) {
        if let Some((mime, image)) = preview_image(&frame) {
            prop_assert!(mime == "image/jpeg" || mime == "image/png");
            prop_assert_eq!(&frame[0..4], &[0, 0, 0, 1]);
            prop_assert_eq!(image, &frame[8..]);
        }
    }

    /// Replies to /prompt, /queue, /history and execution events: any JSON
    /// gets a message or a refusal, never a panic.
    #[test]
    fn replies_never_panic(graph in json_value(), body in json_value(), id in "[0-9a-z-]{0,8}") {
        let text = body.to_string();
        let m = rejection_message("wf", &graph, &text);
        prop_assert!(m.contains("wf"), "{}", m);
        let _ = execution_error_message(&graph, &body);
        let _ = interrupted_message(&graph, Some(&body));
        if let Ok(q) = serde_json::from_value::<Queue>(body.clone()) {
            let _ = q.place(&id);
        }
        if let Ok(h) = serde_json::from_value::<HistoryEntry>(body.clone()) {
            for node in ["9", &id] {
                for f in h.files_of(node) {
                    let _ = c41_kit::comfyui::protocol::mime_for(&f.filename);
                }
            }
            let _ = h.status.timestamp("execution_start");
        }
    }
}
