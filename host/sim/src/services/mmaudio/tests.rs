//! MMAudio over real HTTP: replies decode, errors have FastAPI's shapes,
//! faults behave.

use std::time::{Duration, Instant};

use reqwest::multipart::Form;
use serde_json::{Value, json};

use super::*;
use crate::services::testutil::{self, client, ffprobe, file, mp4_tracks};

async fn server() -> (MmAudioSim, String) {
    let sim = MmAudioSim::default();
    let addr = sim.start("127.0.0.1:0").await.unwrap();
    (sim, format!("http://{addr}"))
}

async fn post(url: &str, form: Form) -> reqwest::Response {
    client().post(format!("{url}/process")).multipart(form).send().await.unwrap()
}

fn video_form(video: &[u8], duration: &str, seed: &str) -> Form {
    Form::new()
        .part("video", file(video, "clip.mp4", "video/mp4"))
        .text("prompt", "rain on a tin roof")
        .text("negative_prompt", "music")
        .text("duration", duration.to_string())
        .text("cfg_strength", "4.5")
        .text("num_steps", "25")
        .text("seed", seed.to_string())
}

#[tokio::test]
async fn health_is_ok() {
    let (_sim, url) = server().await;
    let r = client().get(format!("{url}/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"status": "ok"}));
}

#[tokio::test]
async fn video_in_gives_its_frames_with_aac_of_duration() {
    let (sim, url) = server().await;
    // 2 s at 10 fps; ask for 1.5 s: MMAudio cuts the clip to 15 frames.
    let input = testutil::video(64, 48, 20, 10.0);
    let r = post(&url, video_form(&input, "1.5", "7")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "video/mp4");
    let out = r.bytes().await.unwrap();
    let (v, a) = mp4_tracks(&out);
    assert_eq!(v.codec, "avc1");
    assert_eq!((v.width, v.height, v.frames), (64, 48, 15));
    assert!((v.fps - 10.0).abs() < 1e-6, "{v:?}");
    let a = a.expect("an audio track");
    assert_eq!((a.codec.as_str(), a.sample_rate), ("mp4a", 44_100));
    // Encoder priming and padding add at most two AAC frames.
    assert!((1.5..=1.5 + 2048.0 / 44_100.0).contains(&a.seconds), "audio lasts {}", a.seconds);

    // The frames are the input's, decoded and re-encoded.
    let back = decode::mp4_video(&out).unwrap().frames.unwrap();
    let orig = decode::mp4_video(&input).unwrap().frames.unwrap();
    for i in [0, 7, 14] {
        let diff: u64 = back.rgb[i].iter().zip(&orig.rgb[i]).map(|(a, b)| u64::from(a.abs_diff(*b))).sum();
        let mean = diff as f64 / back.rgb[i].len() as f64;
        assert!(mean < 6.0, "frame {i} differs from the input by {mean}");
    }

    let rec = &sim.requests()[0];
    assert_eq!(rec.status, 200);
    assert_eq!(rec.content_type, Some("video/mp4"));
    let video = rec.video.as_ref().unwrap();
    assert_eq!(video.filename.as_deref(), Some("clip.mp4"));
    assert_eq!((video.frame_count, video.decoded), (20, true));
    assert_eq!(rec.params.as_ref().unwrap().seed, 7);

    if let Some(p) = ffprobe(&out, "mp4") {
        let streams = p["streams"].as_array().unwrap();
        let v = streams.iter().find(|s| s["codec_type"] == "video").unwrap();
        assert_eq!(v["codec_name"], "h264");
        assert_eq!(v["nb_read_frames"], "15");
        assert_eq!(v["avg_frame_rate"], "10/1");
        let a = streams.iter().find(|s| s["codec_type"] == "audio").unwrap();
        assert_eq!(a["codec_name"], "aac");
        let secs: f64 = a["duration"].as_str().unwrap().parse().unwrap();
        assert!((1.5..=1.55).contains(&secs), "ffprobe says {secs}");
    }
}

#[tokio::test]
async fn short_video_keeps_its_own_length() {
    let (_sim, url) = server().await;
    let input = testutil::video(32, 32, 8, 8.0);
    let r = post(&url, video_form(&input, "8", "1")).await;
    assert_eq!(r.status(), 200);
    let (v, a) = mp4_tracks(&r.bytes().await.unwrap());
    assert_eq!(v.frames, 8);
    assert!((1.0..=1.0 + 2048.0 / 44_100.0).contains(&a.unwrap().seconds));
}

#[tokio::test]
async fn text_only_gives_flac_of_duration() {
    let (sim, url) = server().await;
    let form = Form::new().text("prompt", "a dog barking").text("duration", "2.0");
    let r = post(&url, form).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "audio/flac");
    let out = r.bytes().await.unwrap();
    assert_eq!(testutil::flac_info(&out), (44_100, 1, 88_200));
    let rec = &sim.requests()[0];
    assert_eq!(rec.content_type, Some("audio/flac"));
    let p = rec.params.as_ref().unwrap();
    assert_eq!((p.num_steps, p.seed, p.cfg_strength), (25, 42, 4.5));
    assert_eq!(rec.audio_seconds, Some(2.0));
    if let Some(p) = ffprobe(&out, "flac") {
        assert_eq!(p["streams"][0]["codec_name"], "flac");
        assert_eq!(p["streams"][0]["sample_rate"], "44100");
    }
}

#[tokio::test]
async fn same_request_same_bytes_and_seed_matters() {
    let (_sim, url) = server().await;
    let input = testutil::video(32, 32, 6, 12.0);
    let a = post(&url, video_form(&input, "0.5", "3")).await.bytes().await.unwrap();
    let b = post(&url, video_form(&input, "0.5", "3")).await.bytes().await.unwrap();
    let c = post(&url, video_form(&input, "0.5", "4")).await.bytes().await.unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
    let flac = |seed: &'static str| {
        let url = url.clone();
        async move {
            let f = Form::new().text("prompt", "wind").text("duration", "0.5").text("seed", seed);
            post(&url, f).await.bytes().await.unwrap()
        }
    };
    assert_eq!(flac("1").await, flac("1").await);
    assert_ne!(flac("1").await, flac("2").await);
}

#[tokio::test]
async fn missing_prompt_is_fastapi_422() {
    let (sim, url) = server().await;
    let r = post(&url, Form::new().text("duration", "2")).await;
    assert_eq!(r.status(), 422);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"detail":[{"loc":["body","prompt"],"msg":"field required","type":"value_error.missing"}]})
    );
    // An empty prompt counts as missing; a body that is not multipart too.
    let r = post(&url, Form::new().text("prompt", "")).await;
    assert_eq!(r.status(), 422);
    let r = client().post(format!("{url}/process")).json(&json!({"prompt": "x"})).send().await.unwrap();
    assert_eq!(r.status(), 422);
    assert_eq!(sim.requests()[0].status, 422);
    assert_eq!(sim.requests()[0].error.as_deref(), Some("prompt: field required"));
}

#[tokio::test]
async fn bad_numbers_are_listed_together() {
    let (_sim, url) = server().await;
    let form = Form::new().text("duration", "long").text("num_steps", "0").text("seed", "1.5");
    let r = post(&url, form).await;
    assert_eq!(r.status(), 422);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"detail":[
            {"loc":["body","prompt"],"msg":"field required","type":"value_error.missing"},
            {"loc":["body","duration"],"msg":"value is not a valid float","type":"type_error.float"},
            {"loc":["body","num_steps"],"msg":"ensure this value is greater than or equal to 1",
             "type":"value_error.number.not_ge","ctx":{"limit_value":1}},
            {"loc":["body","seed"],"msg":"value is not a valid integer","type":"type_error.integer"}
        ]})
    );
    let form = Form::new().text("prompt", "x").text("duration", "0");
    let body: Value = post(&url, form).await.json().await.unwrap();
    assert_eq!(body["detail"][0]["type"], "value_error.number.not_gt");
    assert_eq!(body["detail"][0]["msg"], "ensure this value is greater than 0");
    let form = Form::new().text("prompt", "x").text("duration", "31");
    let body: Value = post(&url, form).await.json().await.unwrap();
    assert_eq!(body["detail"][0]["msg"], "ensure this value is less than or equal to 30");
}

#[tokio::test]
async fn non_video_upload_is_400() {
    let (sim, url) = server().await;
    let form = Form::new().part("video", file(b"hello, not a video", "notes.txt", "text/plain")).text("prompt", "x");
    let r = post(&url, form).await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"detail": "video: not an MP4/MOV file"}));
    // A PNG is not a video either.
    let form =
        Form::new().part("video", file(&testutil::portrait_png(16, 16), "a.png", "image/png")).text("prompt", "x");
    assert_eq!(post(&url, form).await.status(), 400);
    assert_eq!(sim.requests().len(), 2);
    assert!(sim.requests().iter().all(|r| r.status == 400));
}

#[tokio::test]
async fn faults_fail_delay_and_down() {
    let (sim, url) = server().await;
    let text = || Form::new().text("prompt", "x").text("duration", "0.1");
    sim.fail_next(2, 503);
    // Health checks do not use up armed failures.
    let h = client().get(format!("{url}/health")).send().await.unwrap();
    assert_eq!(h.status(), 200);
    for _ in 0..2 {
        let r = post(&url, text()).await;
        assert_eq!(r.status(), 503);
        assert_eq!(r.text().await.unwrap(), "Service Unavailable");
    }
    assert_eq!(post(&url, text()).await.status(), 200);
    assert_eq!(sim.requests().len(), 1, "injected failures never reach the handler");

    sim.set_delay(Duration::from_millis(150));
    let t = Instant::now();
    client().get(format!("{url}/health")).send().await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(150));
    sim.set_delay(Duration::ZERO);

    sim.set_down(true);
    assert!(sim.is_down());
    tokio::time::sleep(Duration::from_millis(50)).await;
    let fresh = client();
    assert!(fresh.get(format!("{url}/health")).send().await.is_err());
    sim.set_down(false);
    let mut ok = false;
    for _ in 0..50 {
        if let Ok(r) = client().get(format!("{url}/health")).send().await {
            ok = r.status() == 200;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ok, "the same port serves again");
}
