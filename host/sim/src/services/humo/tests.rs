//! HuMo over real HTTP: the video has the audio's length, the mouth moves
//! with it, uploads of each kind decode, errors name their field.

use std::time::Duration;

use reqwest::multipart::Form;
use serde_json::{Value, json};

use super::*;
use crate::services::testutil::{self, client, ffprobe, file, mp4_tracks};

async fn server() -> (HumoSim, String) {
    let sim = HumoSim::default();
    let addr = sim.start("127.0.0.1:0").await.unwrap();
    (sim, format!("http://{addr}"))
}

async fn post(url: &str, form: Form) -> reqwest::Response {
    client().post(format!("{url}/generate")).multipart(form).send().await.unwrap()
}

fn form(image: &[u8], audio: &[u8], audio_name: &str) -> Form {
    Form::new()
        .part("image", file(image, "face.png", "image/png"))
        .part("audio", file(audio, audio_name, "application/octet-stream"))
        .text("prompt", "a woman talking to the camera")
}

/// Pixels of `frame` that differ clearly from `base`.
fn changed(frame: &[u8], base: &[u8]) -> usize {
    frame
        .chunks(3)
        .zip(base.chunks(3))
        .filter(|(a, b)| a.iter().zip(*b).map(|(x, y)| u32::from(x.abs_diff(*y))).sum::<u32>() > 60)
        .count()
}

#[tokio::test]
async fn health_is_ok() {
    let (_sim, url) = server().await;
    let r = client().get(format!("{url}/health")).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"status": "ok"}));
}

#[tokio::test]
async fn wav_drives_a_lip_synced_video_of_its_length() {
    let (sim, url) = server().await;
    let png = testutil::portrait_png(80, 60);
    // 0.5 s of silence, then 0.5 s of tone: 25 frames at 25 fps.
    let wav = testutil::wav(16_000, 0.5, 0.5);
    let f = form(&png, &wav, "line.wav").text("width", "64").text("height", "48");
    let r = post(&url, f).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "video/mp4");
    let out = r.bytes().await.unwrap();
    let (v, a) = mp4_tracks(&out);
    assert_eq!((v.codec.as_str(), v.width, v.height, v.frames), ("avc1", 64, 48, 25));
    assert!((v.fps - 25.0).abs() < 1e-6);
    let a = a.expect("the audio, re-encoded");
    // 16 kHz input is raised to 48 kHz; AAC priming + padding add at most
    // two 1024-sample frames.
    assert_eq!((a.codec.as_str(), a.sample_rate), ("mp4a", 48_000));
    assert!((1.0..=1.0 + 2048.0 / 48_000.0).contains(&a.seconds), "audio lasts {}", a.seconds);

    // The mouth is shut in the silence and open in the tone.
    let frames = decode::mp4_video(&out).unwrap().frames.unwrap();
    let img = decode::image(&png).unwrap();
    let base = decode::scale(&img, 64, 48);
    let quiet = changed(&frames.rgb[5], &base);
    let loud = changed(&frames.rgb[20], &base);
    assert!(loud > 2 * quiet && loud >= 64, "quiet {quiet} vs loud {loud} pixels");

    let rec = &sim.requests()[0];
    assert_eq!(rec.status, 200);
    assert_eq!(rec.image_size, Some((80, 60)));
    assert_eq!(rec.output_size, Some((64, 48)));
    assert_eq!(rec.frames, Some(25));
    let p = rec.params.as_ref().unwrap();
    assert_eq!((p.fps, p.steps, p.seed), (25, 50, 0));

    if let Some(p) = ffprobe(&out, "mp4") {
        let streams = p["streams"].as_array().unwrap();
        let v = streams.iter().find(|s| s["codec_type"] == "video").unwrap();
        assert_eq!(v["codec_name"], "h264");
        assert_eq!(v["nb_read_frames"], "25");
        assert_eq!(v["avg_frame_rate"], "25/1");
        let a = streams.iter().find(|s| s["codec_type"] == "audio").unwrap();
        assert_eq!((a["codec_name"].as_str(), a["sample_rate"].as_str()), (Some("aac"), Some("48000")));
    }
}

#[tokio::test]
async fn jpeg_flac_and_mp3_uploads_decode() {
    let (sim, url) = server().await;
    let pcm = Pcm { sample_rate: 44_100, channels: 2, samples: media::tone(44_100, 2, 0.4, 4) };
    let flac = media::flac(&pcm).unwrap();
    let f = Form::new()
        .part("image", file(testutil::PORTRAIT_JPG, "face.jpg", "image/jpeg"))
        .part("audio", file(&flac, "line.flac", "audio/flac"))
        .text("prompt", "x")
        .text("fps", "10");
    let r = post(&url, f).await;
    assert_eq!(r.status(), 200);
    // 40×30 JPEG: sizes round down to multiples of 16.
    let (v, a) = mp4_tracks(&r.bytes().await.unwrap());
    assert_eq!((v.width, v.height, v.frames), (32, 16, 4));
    assert!((a.unwrap().seconds - 0.4).abs() <= 0.1);

    // Gray+alpha PNG; only the width given, the height follows the aspect ratio.
    let mp3 = media::mp3(&pcm, 128).unwrap();
    let f = Form::new()
        .part("image", file(testutil::PORTRAIT_GRAY_ALPHA_PNG, "g.png", "image/png"))
        .part("audio", file(&mp3, "line.mp3", "audio/mpeg"))
        .text("prompt", "x")
        .text("width", "64");
    let r = post(&url, f).await;
    assert_eq!(r.status(), 200);
    let (v, a) = mp4_tracks(&r.bytes().await.unwrap());
    assert_eq!((v.width, v.height), (64, 48));
    let rec = &sim.requests()[1];
    let secs = rec.audio_seconds.unwrap();
    assert!((0.4..0.5).contains(&secs), "mp3 decoded to {secs} s");
    assert_eq!(Some(v.frames), rec.frames);
    assert_eq!(v.frames, (secs * 25.0).round() as u32);
    assert_eq!(a.unwrap().sample_rate, 44_100);
}

#[tokio::test]
async fn same_inputs_same_bytes_and_seed_matters() {
    let (_sim, url) = server().await;
    let png = testutil::portrait_png(32, 32);
    let wav = testutil::wav(8_000, 0.1, 0.2);
    let go = |seed: &'static str| {
        let f = form(&png, &wav, "a.wav").text("seed", seed).text("fps", "10");
        let url = url.clone();
        async move { post(&url, f).await.bytes().await.unwrap() }
    };
    let a = go("1").await;
    assert_eq!(a, go("1").await);
    assert_ne!(a, go("2").await);
}

#[tokio::test]
async fn missing_and_bad_fields_are_422_naming_them() {
    let (sim, url) = server().await;
    let r = post(&url, Form::new().text("fps", "25")).await;
    assert_eq!(r.status(), 422);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"detail":[
            {"loc":["body","image"],"msg":"field required","type":"value_error.missing"},
            {"loc":["body","audio"],"msg":"field required","type":"value_error.missing"},
            {"loc":["body","prompt"],"msg":"field required","type":"value_error.missing"}
        ]})
    );
    let png = testutil::portrait_png(16, 16);
    let wav = testutil::wav(8_000, 0.0, 0.1);
    let f = form(&png, &wav, "a.wav").text("width", "30").text("fps", "0").text("steps", "many");
    let r = post(&url, f).await;
    assert_eq!(r.status(), 422);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"detail":[
            {"loc":["body","width"],"msg":"ensure this value is a multiple of 16",
             "type":"value_error.number.not_multiple","ctx":{"multiple_of":16}},
            {"loc":["body","fps"],"msg":"ensure this value is greater than or equal to 1",
             "type":"value_error.number.not_ge","ctx":{"limit_value":1}},
            {"loc":["body","steps"],"msg":"value is not a valid integer","type":"type_error.integer"}
        ]})
    );
    assert_eq!(sim.requests()[0].error.as_deref(), Some("image: field required"));
}

#[tokio::test]
async fn undecodable_uploads_are_400_naming_the_field() {
    let (sim, url) = server().await;
    let wav = testutil::wav(8_000, 0.0, 0.1);
    let r = post(&url, form(b"GIF89a-not-really", &wav, "a.wav")).await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"detail":[{"loc":["body","image"],"msg":"not a PNG or JPEG image","type":"value_error.image"}]})
    );
    let png = testutil::portrait_png(16, 16);
    let r = post(&url, form(&png, b"OggS....", "a.ogg")).await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"detail":[{"loc":["body","audio"],"msg":"not a WAV, FLAC or MP3 file","type":"value_error.audio"}]})
    );
    let long = testutil::wav(8_000, 31.0, 0.0);
    let body: Value = post(&url, form(&png, &long, "a.wav")).await.json().await.unwrap();
    assert_eq!(body["detail"][0]["loc"], json!(["body", "audio"]));
    assert_eq!(body["detail"][0]["msg"], "the audio is 31.0 s long; the limit is 30 s");
    let recs = sim.requests();
    assert_eq!(recs.iter().map(|r| r.status).collect::<Vec<_>>(), [400, 400, 400]);
    assert_eq!(recs[1].image_size, Some((16, 16)));
}

#[tokio::test]
async fn faults_fail_and_down() {
    let (sim, url) = server().await;
    sim.fail_next(1, 500);
    let r = post(&url, Form::new()).await;
    assert_eq!(r.status(), 500);
    assert_eq!(r.text().await.unwrap(), "Internal Server Error");
    assert_eq!(post(&url, Form::new()).await.status(), 422);
    sim.set_down(true);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(client().get(format!("{url}/health")).send().await.is_err());
    sim.set_down(false);
    assert!(!sim.is_down());
}
