//! TTS over real HTTP: each format decodes at 24 kHz with a length that
//! follows the text and speed; errors have OpenAI's shape.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::*;
use crate::services::testutil::{self, client, ffprobe};

async fn server() -> (TtsSim, String) {
    let sim = TtsSim::default();
    let addr = sim.start("127.0.0.1:0").await.unwrap();
    (sim, format!("http://{addr}"))
}

async fn speak(url: &str, body: Value) -> reqwest::Response {
    client().post(format!("{url}/v1/audio/speech")).json(&body).send().await.unwrap()
}

async fn audio(url: &str, input: &str, format: &str, speed: f64) -> (String, Vec<u8>) {
    let r = speak(
        url,
        json!({"model": "tts-1", "input": input, "voice": "alloy", "response_format": format, "speed": speed}),
    )
    .await;
    assert_eq!(r.status(), 200, "{format}");
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    (ct, r.bytes().await.unwrap().to_vec())
}

async fn error(url: &str, body: Value) -> (u16, Value) {
    let r = speak(url, body).await;
    (r.status().as_u16(), r.json().await.unwrap())
}

const LINE: &str = "Hello there, this is the studio speaking.";

#[tokio::test]
async fn wav_is_24k_mono_16bit_and_length_follows_text_and_speed() {
    let (sim, url) = server().await;
    let (ct, wav) = audio(&url, LINE, "wav", 1.0).await;
    assert_eq!(ct, "audio/wav");
    let h = testutil::wav_header(&wav);
    assert_eq!((h.format, h.channels, h.sample_rate, h.bits), (1, 1, 24_000, 16));
    let secs = f64::from(h.data_len) / 48_000.0;
    assert!((1.5..6.0).contains(&secs), "{secs} s for {} chars", LINE.len());
    assert!(wav[44..].iter().any(|b| *b != 0), "not silence");

    let (_, longer) = audio(&url, &format!("{LINE} {LINE}"), "wav", 1.0).await;
    let long_secs = f64::from(testutil::wav_header(&longer).data_len) / 48_000.0;
    assert!(long_secs > 1.8 * secs, "{long_secs} vs {secs}");
    let (_, fast) = audio(&url, LINE, "wav", 2.0).await;
    let fast_secs = f64::from(testutil::wav_header(&fast).data_len) / 48_000.0;
    assert!((fast_secs - secs / 2.0).abs() < 0.1 + 0.05, "{fast_secs} vs {secs}");

    let rec = &sim.requests()[0];
    assert_eq!(rec.status, 200);
    assert_eq!(rec.audio_seconds, Some(secs));
    assert_eq!(rec.request.as_ref().unwrap().voice, "alloy");
    if let Some(p) = ffprobe(&wav, "wav") {
        assert_eq!(p["streams"][0]["codec_name"], "pcm_s16le");
        assert_eq!(p["streams"][0]["sample_rate"], "24000");
    }
}

#[tokio::test]
async fn flac_mp3_and_pcm_decode_to_the_same_length() {
    let (_sim, url) = server().await;
    let (_, wav) = audio(&url, LINE, "wav", 1.0).await;
    let samples = u64::from(testutil::wav_header(&wav).data_len / 2);

    let (ct, flac) = audio(&url, LINE, "flac", 1.0).await;
    assert_eq!(ct, "audio/flac");
    assert_eq!(testutil::flac_info(&flac), (24_000, 1, samples));

    let (ct, pcm) = audio(&url, LINE, "pcm", 1.0).await;
    assert_eq!(ct, "audio/pcm");
    assert_eq!(pcm, wav[44..]);

    let (ct, mp3) = audio(&url, LINE, "mp3", 1.0).await;
    assert_eq!(ct, "audio/mpeg");
    let (rate, ch, n) = testutil::mp3_info(&mp3);
    assert_eq!((rate, ch), (24_000, 1));
    // Layer III adds encoder delay and frame padding: within two frames.
    assert!((n as i64 - samples as i64).abs() <= 2 * 1152, "{n} vs {samples}");

    // The default format is mp3.
    let r = speak(&url, json!({"model": "tts-1-hd", "input": "Hi.", "voice": "nova"})).await;
    assert_eq!(r.headers()["content-type"], "audio/mpeg");

    if let Some(p) = ffprobe(&mp3, "mp3") {
        assert_eq!(p["streams"][0]["codec_name"], "mp3");
        assert_eq!(p["streams"][0]["sample_rate"], "24000");
    }
    if let Some(p) = ffprobe(&flac, "flac") {
        assert_eq!(p["streams"][0]["codec_name"], "flac");
    }
}

#[tokio::test]
async fn same_request_same_bytes_and_voice_matters() {
    let (_sim, url) = server().await;
    let body = |voice: &str| json!({"model": "tts-1", "input": LINE, "voice": voice, "response_format": "flac"});
    let a = speak(&url, body("echo")).await.bytes().await.unwrap();
    let b = speak(&url, body("echo")).await.bytes().await.unwrap();
    let c = speak(&url, body("onyx")).await.bytes().await.unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[tokio::test]
async fn errors_have_openai_shape_and_name_the_field() {
    let (sim, url) = server().await;
    let ok = json!({"model": "tts-1", "input": "hi", "voice": "alloy"});
    let with = |k: &str, v: Value| {
        let mut b = ok.clone();
        b[k] = v;
        b
    };
    let (status, body) = error(&url, with("input", json!(""))).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": {
            "message": "Invalid 'input': string too short. Expected a string with minimum length 1, but got an empty string instead.",
            "type": "invalid_request_error", "param": "input", "code": "string_below_min_length"}})
    );
    let (status, body) = error(&url, with("response_format", json!("ogg"))).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": {
            "message": "Invalid value: 'ogg'. Supported values are: 'mp3', 'opus', 'aac', 'flac', 'wav', and 'pcm'.",
            "type": "invalid_request_error", "param": "response_format", "code": "invalid_value"}})
    );
    let (_, body) = error(&url, with("response_format", json!("opus"))).await;
    assert_eq!(body["error"]["code"], "unsupported_value");
    assert_eq!(body["error"]["param"], "response_format");

    let mut no_voice = ok.clone();
    no_voice.as_object_mut().unwrap().remove("voice");
    let (status, body) = error(&url, no_voice).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["message"], "Missing required parameter: 'voice'.");
    assert_eq!(body["error"]["code"], "missing_required_parameter");

    let (_, body) = error(&url, with("voice", json!("bob"))).await;
    assert_eq!(
        (body["error"]["param"].as_str(), body["error"]["code"].as_str()),
        (Some("voice"), Some("invalid_value"))
    );
    assert!(body["error"]["message"].as_str().unwrap().ends_with("'shimmer', and 'verse'."));

    let (_, body) = error(&url, with("speed", json!(5))).await;
    assert_eq!(body["error"]["code"], "decimal_above_max_value");
    assert_eq!(body["error"]["param"], "speed");
    let (_, body) = error(&url, with("speed", json!("fast"))).await;
    assert_eq!(body["error"]["message"], "Invalid type for 'speed': expected a decimal, but got a string instead.");
    let (_, body) = error(&url, with("input", json!(42))).await;
    assert_eq!(body["error"]["code"], "invalid_type");
    let (_, body) = error(&url, with("input", json!("x".repeat(4097)))).await;
    assert_eq!(body["error"]["code"], "string_above_max_length");

    let (status, body) = error(&url, with("model", json!("whisper-1"))).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "model_not_found");

    let r = client()
        .post(format!("{url}/v1/audio/speech"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["param"], Value::Null);

    assert!(sim.requests().iter().all(|r| r.status >= 400 && r.request.is_none()));
}

#[tokio::test]
async fn models_and_voices_are_listed() {
    let (_sim, url) = server().await;
    let m: Value = client().get(format!("{url}/v1/models")).send().await.unwrap().json().await.unwrap();
    assert_eq!(m["object"], "list");
    let ids: Vec<&str> = m["data"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["tts-1", "tts-1-hd", "gpt-4o-mini-tts"]);
    assert_eq!(m["data"][0]["object"], "model");
    let v: Value = client().get(format!("{url}/v1/audio/voices")).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["voices"].as_array().unwrap().len(), 11);
}

#[tokio::test]
async fn faults_fail_delay_and_down() {
    let (sim, url) = server().await;
    let ok = json!({"model": "tts-1", "input": "hi", "voice": "alloy", "response_format": "wav"});
    sim.fail_next(1, 500);
    // Listing does not consume the failure.
    assert_eq!(client().get(format!("{url}/v1/models")).send().await.unwrap().status(), 200);
    let (status, body) = error(&url, ok.clone()).await;
    assert_eq!(status, 500);
    assert_eq!(body["error"]["type"], "server_error");
    assert_eq!(speak(&url, ok.clone()).await.status(), 200);

    sim.set_delay(Duration::from_millis(120));
    let t = Instant::now();
    assert_eq!(speak(&url, ok.clone()).await.status(), 200);
    assert!(t.elapsed() >= Duration::from_millis(120));
    sim.set_delay(Duration::ZERO);

    sim.set_down(true);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(client().post(format!("{url}/v1/audio/speech")).json(&ok).send().await.is_err());
    sim.set_down(false);
    let mut up = false;
    for _ in 0..50 {
        if let Ok(r) = client().post(format!("{url}/v1/audio/speech")).json(&ok).send().await {
            up = r.status() == 200;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(up);
}
