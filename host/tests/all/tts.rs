//! The tts skill against the simulated studio, through the real sandbox:
//! the stored audio decodes and is byte-identical to the server's reply,
//! settings fill in what the input leaves out, and every refusal names the
//! field or the service.

use crate::common::*;
use c41::app::RunError;
use c41::input::InputError;
use c41::runtime::{InvokeError, Invoked};
use c41_sim::services::tts::{SpeechRequest, TtsSim};
use serde_json::{Value, json};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LINE: &str = "Hello there, this is the studio speaking.";

async fn start() -> (TtsSim, SocketAddr) {
    let sim = TtsSim::default();
    let addr = sim.start("127.0.0.1:0").await.unwrap();
    (sim, addr)
}

/// A config granting the skill the simulator as service `speech`, with
/// `settings` (TOML lines) under `[skills.tts.settings]`.
fn config(url: &str, settings: &str) -> String {
    format!(
        "output-dir = \"{{out}}\"\n[services.speech]\nurl = \"{url}\"\nkind = \"tts\"\n\
         [skills.tts]\ngrants = [\"speech\"]\n[skills.tts.settings]\n{settings}\n"
    )
}

async fn harness_for(addr: SocketAddr, settings: &str) -> Harness {
    harness(&config(&format!("http://{addr}"), settings), &[]).await
}

/// The body the simulator sends for `request`, fetched directly (to compare
/// with what the skill stored).
async fn direct(addr: SocketAddr, request: &Value) -> Vec<u8> {
    let body = request.to_string();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/audio/speech HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP reply");
    let headers = String::from_utf8_lossy(&buf[..split]).to_ascii_lowercase();
    assert!(headers.starts_with("http/1.1 200"), "{headers}");
    assert!(!headers.contains("chunked"), "a plain body: {headers}");
    buf[split + 4..].to_vec()
}

fn stored(r: &Invoked) -> Vec<u8> {
    assert_eq!(r.artifacts.len(), 1, "one audio file");
    let a = &r.artifacts[0];
    let bytes = std::fs::read(&a.path).unwrap();
    assert_eq!(a.bytes, bytes.len() as u64);
    assert_eq!(r.data["bytes"], json!(a.bytes));
    bytes
}

/// The one request the simulator handled last.
fn last(sim: &TtsSim) -> c41_sim::services::tts::TtsRecord {
    sim.requests().last().cloned().expect("the simulator got a request")
}

fn invalid(r: Result<Invoked, RunError>) -> (String, String) {
    match r {
        Err(RunError::Invoke(InvokeError::InvalidInput { field, reason })) => (field, reason),
        other => panic!("expected the skill to refuse its input, got {other:?}"),
    }
}

fn schema_error(r: Result<Invoked, RunError>) -> (String, String) {
    match r {
        Err(RunError::Input(InputError::Schema { field, reason })) => (field, reason),
        other => panic!("expected the host to refuse the input, got {other:?}"),
    }
}

// ---- decoding the containers ------------------------------------------------

struct Wav {
    format: u16,
    channels: u16,
    rate: u32,
    bits: u16,
    data_len: u32,
}

/// A canonical 44-byte-header WAV, with its chunk sizes checked.
fn wav(b: &[u8]) -> Wav {
    let u16le = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
    let u32le = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
    assert_eq!(&b[0..4], b"RIFF");
    assert_eq!(&b[8..16], b"WAVEfmt ");
    assert_eq!(u32le(4) as usize, b.len() - 8, "RIFF size");
    assert_eq!(&b[36..40], b"data");
    let w = Wav { format: u16le(20), channels: u16le(22), rate: u32le(24), bits: u16le(34), data_len: u32le(40) };
    assert_eq!(w.data_len as usize, b.len() - 44, "data size");
    w
}

/// (sample rate, kbps, frames) of an MPEG-2 Layer III mono stream, walking
/// every frame header to the end of the file.
fn mp3_frames(b: &[u8]) -> (u32, u32, usize) {
    const KBPS: [u32; 15] = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];
    const RATES: [u32; 3] = [22_050, 24_000, 16_000];
    let (mut pos, mut frames, mut first) = (0usize, 0usize, None);
    while pos < b.len() {
        let h = &b[pos..pos + 4];
        assert!(h[0] == 0xFF && h[1] & 0xE0 == 0xE0, "frame sync at byte {pos}");
        assert_eq!((h[1] >> 3) & 3, 2, "MPEG-2 at byte {pos}");
        assert_eq!((h[1] >> 1) & 3, 1, "Layer III at byte {pos}");
        assert_eq!(h[3] >> 6, 3, "mono at byte {pos}");
        let kbps = KBPS[usize::from(h[2] >> 4)];
        let rate = RATES[usize::from((h[2] >> 2) & 3)];
        let padding = usize::from((h[2] >> 1) & 1);
        first.get_or_insert((rate, kbps));
        assert_eq!(first, Some((rate, kbps)), "constant rate at byte {pos}");
        pos += (72 * kbps * 1000 / rate) as usize + padding;
        frames += 1;
    }
    assert_eq!(pos, b.len(), "the last frame ends the file");
    let (rate, kbps) = first.expect("at least one frame");
    (rate, kbps, frames)
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

// ---- success ------------------------------------------------------------------

#[tokio::test]
async fn speaks_mp3_by_default_streaming_the_servers_bytes_with_progress() {
    let (sim, addr) = start().await;
    let h = harness_for(addr, "").await;
    let (r, events) = h.run("tts", json!({"text": LINE})).await;
    let r = r.expect("speech succeeds");

    // What the server was asked: OpenAI's defaults, all fields explicit.
    let rec = last(&sim);
    assert_eq!(rec.status, 200);
    assert_eq!(
        rec.request,
        Some(SpeechRequest {
            model: "tts-1".into(),
            input: LINE.into(),
            voice: "alloy".into(),
            response_format: "mp3".into(),
            speed: 1.0,
            instructions: None,
        })
    );

    // The file: an MP3 named speech-….mp3, every frame MPEG-2 Layer III at
    // 24 kHz, as long as the server said (within the encoder's padding).
    let a = &r.artifacts[0];
    assert_eq!(a.mime, "audio/mpeg");
    assert!(a.file_name.starts_with("speech-") && a.file_name.ends_with(".mp3"), "{}", a.file_name);
    let mp3 = stored(&r);
    let (rate, kbps, frames) = mp3_frames(&mp3);
    assert_eq!((rate, kbps), (24_000, 64));
    // The encoder's first frame is an Info (Xing) header, not audio: the
    // skill reads its frame count.
    let info = matches!(&mp3[4 + 9..4 + 13], b"Info" | b"Xing");
    let audio_frames = frames - usize::from(info);
    let frame_secs = audio_frames as f64 * 576.0 / 24_000.0;
    let secs = r.data["seconds"].as_f64().expect("CBR mp3 has a duration");
    assert!(close(secs, frame_secs, 0.001), "{secs} vs {frame_secs} from {frames} frames");
    let said = rec.audio_seconds.unwrap();
    assert!(close(secs, said, 3.0 * 576.0 / 24_000.0), "{secs} vs the server's {said}");
    assert_eq!(
        mp3,
        direct(addr, &json!({"model": "tts-1", "input": LINE, "voice": "alloy"})).await,
        "byte-identical to the server's reply"
    );

    // Data and text.
    assert_eq!(
        r.data,
        json!({"voice": "alloy", "model": "tts-1", "format": "mp3", "speed": 1.0, "characters": LINE.chars().count(),
               "bytes": mp3.len(), "seconds": secs, "service": "speech"})
    );
    assert!(r.text.starts_with(&format!("Spoke 41 characters as alloy (tts-1), {secs:.1} s of mp3: ")), "{}", r.text);
    assert!(r.text.ends_with(&a.path.display().to_string()), "{}", r.text);

    // Progress: speak first, then downloads counting up to the whole file.
    let reps = progress_reports(&events.events());
    assert_eq!(reps[0].0, "speak", "{reps:?}");
    assert!(reps[0].2.as_deref().is_some_and(|m| m.contains("41 characters as alloy (tts-1)")), "{reps:?}");
    let downloads: Vec<_> = reps.iter().filter(|r| r.0 == "download").collect();
    assert!(!downloads.is_empty(), "{reps:?}");
    let last_dl = downloads.last().unwrap();
    assert_eq!(last_dl.2.as_deref(), Some(format!("{} bytes of mp3", mp3.len()).as_str()));
    assert_eq!(last_dl.1, Some(1.0), "the server sent a Content-Length");
    assert_eq!(reps.last().unwrap().0, "done");
}

#[tokio::test]
async fn wav_with_voice_speed_instructions_and_name() {
    let (sim, addr) = start().await;
    let h = harness_for(addr, "").await;
    let input = json!({"text": "Hi there.", "voice": "nova", "format": "wav", "speed": 2.0,
                       "instructions": "cheerful", "name": "greeting.wav"});
    let (r, _) = h.run("tts", input).await;
    let r = r.expect("speech succeeds");
    let req = last(&sim).request.expect("a valid request");
    assert_eq!((req.voice.as_str(), req.response_format.as_str(), req.speed), ("nova", "wav", 2.0));
    assert_eq!(req.instructions.as_deref(), Some("cheerful"));

    let a = &r.artifacts[0];
    assert_eq!(a.mime, "audio/wav");
    assert!(a.file_name.starts_with("greeting-") && a.file_name.ends_with(".wav"), "{}", a.file_name);
    let bytes = stored(&r);
    let w = wav(&bytes);
    assert_eq!((w.format, w.channels, w.rate, w.bits), (1, 1, 24_000, 16));
    assert!(bytes[44..].iter().any(|b| *b != 0), "not silence");
    let secs = f64::from(w.data_len) / 48_000.0;
    assert_eq!(r.data["seconds"].as_f64(), Some((secs * 1000.0).round() / 1000.0));
    assert!(close(secs, last(&sim).audio_seconds.unwrap(), 1e-9));
    assert_eq!(r.data["speed"], 2.0);
    assert!(r.text.starts_with("Spoke 9 characters as nova (tts-1), "), "{}", r.text);
    assert!(r.text.contains(" s of wav: "), "{}", r.text);
}

#[tokio::test]
async fn settings_supply_voice_model_and_format_and_the_input_overrides_them() {
    let (sim, addr) = start().await;
    let h = harness_for(addr, "voice = \"echo\"\nmodel = \"tts-1-hd\"\nformat = \"flac\"").await;
    let (r, _) = h.run("tts", json!({"text": "Settings decide."})).await;
    let r = r.expect("speech succeeds");
    let rec = last(&sim);
    let req = rec.request.clone().unwrap();
    assert_eq!((req.voice.as_str(), req.model.as_str(), req.response_format.as_str()), ("echo", "tts-1-hd", "flac"));
    assert_eq!(r.artifacts[0].mime, "audio/flac");
    assert!(r.artifacts[0].file_name.ends_with(".flac"));
    let (rate, channels, _, samples) = flac_streaminfo(&stored(&r));
    assert_eq!((rate, channels), (24_000, 1));
    let secs = samples as f64 / 24_000.0;
    assert!(close(secs, rec.audio_seconds.unwrap(), 1e-9));
    assert_eq!(r.data["seconds"].as_f64(), Some((secs * 1000.0).round() / 1000.0));
    assert_eq!(
        (&r.data["voice"], &r.data["model"], &r.data["format"]),
        (&json!("echo"), &json!("tts-1-hd"), &json!("flac"))
    );

    // The input wins; what it leaves out still comes from the settings.
    let (r, _) = h.run("tts", json!({"text": "Input decides.", "voice": "onyx", "format": "pcm"})).await;
    let r = r.expect("speech succeeds");
    let rec = last(&sim);
    let req = rec.request.clone().unwrap();
    assert_eq!((req.voice.as_str(), req.model.as_str(), req.response_format.as_str()), ("onyx", "tts-1-hd", "pcm"));
    let pcm = stored(&r);
    assert_eq!(r.artifacts[0].mime, "audio/pcm");
    assert_eq!(pcm.len() % 2, 0, "16-bit samples");
    let secs = pcm.len() as f64 / 48_000.0;
    assert!(close(secs, rec.audio_seconds.unwrap(), 1e-9));
    assert_eq!(r.data["seconds"].as_f64(), Some((secs * 1000.0).round() / 1000.0));
}

// ---- refusals -------------------------------------------------------------------

#[tokio::test]
async fn unknown_voice_is_invalid_voice_listing_the_servers_voices() {
    let (sim, addr) = start().await;
    let h = harness_for(addr, "").await;
    let (r, _) = h.run("tts", json!({"text": "hi", "voice": "af_heart"})).await;
    let (field, reason) = invalid(r);
    assert_eq!(field, "voice");
    assert_eq!(
        reason,
        "speech has no voice `af_heart`; voices on this server: alloy, ash, ballad, coral, echo, fable, onyx, nova, sage, shimmer, verse"
    );
    assert_eq!(last(&sim).status, 400);
    assert!(h.output_files().iter().all(|f| f.starts_with('.')), "no audio stored: {:?}", h.output_files());

    // A bad voice from the config says so.
    let h = harness_for(addr, "voice = \"bob\"").await;
    let (field, reason) = invalid(h.run("tts", json!({"text": "hi"})).await.0);
    assert_eq!(field, "voice");
    assert!(
        reason.starts_with(
            "speech has no voice `bob` (from settings.voice in the c41 config); voices on this server: alloy"
        ),
        "{reason}"
    );
}

#[tokio::test]
async fn unknown_model_is_invalid_model_listing_the_servers_models() {
    let (sim, addr) = start().await;
    let h = harness_for(addr, "").await;
    let (field, reason) = invalid(h.run("tts", json!({"text": "hi", "model": "kokoro"})).await.0);
    assert_eq!(field, "model");
    assert_eq!(reason, "speech has no model `kokoro`; models on this server: tts-1, tts-1-hd, gpt-4o-mini-tts");
    assert_eq!(last(&sim).status, 404);
}

#[tokio::test]
async fn the_host_schema_refuses_bad_text_and_fields_before_the_server_is_called() {
    let (sim, addr) = start().await;
    let h = harness_for(addr, "").await;
    for (input, want) in [
        (json!({"text": ""}), "text"),
        (json!({"text": "x".repeat(4097)}), "text"),
        (json!({}), "text"),
        (json!({"text": "hi", "format": "opus"}), "format"),
        (json!({"text": "hi", "speed": 4.5}), "speed"),
        (json!({"text": "hi", "speed": 0.1}), "speed"),
        (json!({"text": "hi", "lang": "en"}), "lang"),
        (json!({"text": "hi", "name": "../x"}), "name"),
    ] {
        let (field, reason) = schema_error(h.run("tts", input.clone()).await.0);
        assert_eq!(field, want, "{input}: {reason}");
    }
    // Whitespace passes the schema; the skill refuses it.
    let (field, _) = invalid(h.run("tts", json!({"text": "   "})).await.0);
    assert_eq!(field, "text");
    assert!(sim.requests().is_empty(), "nothing reached the server");

    // 4096 characters are fine (the server's limit).
    let (r, _) = h.run("tts", json!({"text": "a".repeat(4096), "speed": 4.0, "format": "pcm"})).await;
    r.expect("the longest text is spoken");
    assert_eq!(last(&sim).request.unwrap().input.chars().count(), 4096);
}

#[tokio::test]
async fn server_failure_is_a_backend_error_naming_service_and_status() {
    let (sim, addr) = start().await;
    let h = harness_for(addr, "").await;
    sim.fail_next(1, 500);
    let (service, status, message) = backend_error(h.run("tts", json!({"text": "hi"})).await.0);
    assert_eq!((service.as_str(), status), ("speech", Some(500)));
    assert!(message.contains("/v1/audio/speech") && message.contains("The server had an error"), "{message}");
    assert!(h.output_files().iter().all(|f| f.starts_with('.')), "no audio stored");

    // The failure was used up: the next call works.
    let (r, _) = h.run("tts", json!({"text": "hi"})).await;
    r.expect("the server recovered");
}

#[tokio::test]
async fn down_service_is_a_clear_error() {
    let (sim, addr) = start().await;
    let h = harness_for(addr, "").await;
    sim.set_down(true);
    let (service, status, message) = backend_error(h.run("tts", json!({"text": "hi"})).await.0);
    assert_eq!((service.as_str(), status), ("speech", None));
    assert!(message.contains("cannot reach the text-to-speech server `speech`"), "{message}");
    assert!(message.contains(&format!("http://{addr}")), "{message}");

    sim.set_down(false);
    let (r, _) = h.run("tts", json!({"text": "hi"})).await;
    r.expect("back up");

    // Nothing listening at all.
    let h = harness(&config(&format!("http://127.0.0.1:{}", closed_port()), ""), &[]).await;
    let (service, status, message) = backend_error(h.run("tts", json!({"text": "hi"})).await.0);
    assert_eq!((service.as_str(), status), ("speech", None));
    assert!(message.contains("cannot reach"), "{message}");
}
