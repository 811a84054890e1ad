//! The lip-sync skill against the simulated studio, through the real sandbox:
//! a portrait and a WAV in, an MP4 (H.264 + AAC) of the sound's length out,
//! and every way the HuMo call can fail named for the caller.

use crate::common::*;
use c41::app::RunError;
use c41::events::{Event, Recorder};
use c41::input::InputError;
use c41::runtime::{InvokeError, Invoked};
use c41_sim::services::humo::{HumoParams, HumoSim};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

// ---- helpers ---------------------------------------------------------------

async fn start() -> (HumoSim, SocketAddr) {
    let sim = HumoSim::default();
    let addr = sim.start("127.0.0.1:0").await.unwrap();
    (sim, addr)
}

/// A config granting lip-sync the HuMo at `url` as `forge-humo`, reading
/// inputs from `inputs`, with extra settings lines.
fn config(url: &str, inputs: &Path, settings: &str) -> String {
    format!(
        "output-dir = \"{{out}}\"\n[inputs]\nallow-dirs = [{:?}]\n\
         [services.forge-humo]\nurl = \"{url}\"\nkind = \"humo\"\n\
         [skills.lip-sync]\ngrants = [\"forge-humo\"]\n[skills.lip-sync.settings]\n{settings}\n",
        inputs.display().to_string()
    )
}

/// A small PNG portrait made by the simulator's own encoder.
fn portrait(w: u32, h: u32) -> Vec<u8> {
    c41_sim::media::png(w, h, &c41_sim::media::gradient_frame(w, h, 5, 0)).unwrap()
}

/// A 16-bit mono WAV: `silent` seconds of silence, then `loud` seconds of a
/// 440 Hz tone.
fn wav(rate: u32, silent: f64, loud: f64) -> Vec<u8> {
    let quiet = (silent * f64::from(rate)) as usize;
    let tone = (loud * f64::from(rate)) as usize;
    let mut pcm: Vec<i16> = vec![0; quiet];
    pcm.extend(
        (0..tone).map(|i| ((i as f64 * 440.0 * std::f64::consts::TAU / f64::from(rate)).sin() * 12_000.0) as i16),
    );
    let data = (pcm.len() * 2) as u32;
    let mut b = Vec::with_capacity(44 + data as usize);
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes()); // PCM
    b.extend_from_slice(&1u16.to_le_bytes()); // mono
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&(rate * 2).to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&data.to_le_bytes());
    for s in pcm {
        b.extend_from_slice(&s.to_le_bytes());
    }
    b
}

/// Input files in a temp dir: `face.png` (80×60) and `voice.wav` (1 s at
/// 16 kHz: half silence, half tone).
fn inputs() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("face.png");
    let audio = dir.path().join("voice.wav");
    std::fs::write(&image, portrait(80, 60)).unwrap();
    std::fs::write(&audio, wav(16_000, 0.5, 0.5)).unwrap();
    (dir, image, audio)
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

/// `(stage, fraction, message)` of each progress report.
fn stages(rec: &Recorder) -> Vec<(String, Option<f32>, Option<String>)> {
    progress_reports(&rec.events())
}

fn invalid(r: Result<Invoked, RunError>) -> (String, String) {
    match r {
        Err(RunError::Invoke(InvokeError::InvalidInput { field, reason })) => (field, reason),
        Err(RunError::Input(InputError::Schema { field, reason })) => (field, reason),
        other => panic!("expected an invalid-input error, got {other:?}"),
    }
}

// ---- success ---------------------------------------------------------------

#[tokio::test]
async fn a_portrait_and_a_wav_become_a_lip_synced_mp4() {
    let (sim, addr) = start().await;
    let (dir, image, audio) = inputs();
    let h = harness(&config(&format!("http://{addr}"), dir.path(), ""), &[]).await;
    let input = json!({
        "image": path_str(&image), "audio": path_str(&audio),
        "prompt": "a woman talking to the camera", "width": 64, "height": 48,
        "seed": 7, "steps": 10, "name": "anna-hello",
    });
    let (r, rec) = h.run("lip-sync", input).await;
    let r = r.expect("lip-sync succeeds");

    // One artifact: a real MP4 with an H.264 track of the sound's length at
    // 25 fps and the sound itself as AAC.
    assert_eq!(r.artifacts.len(), 1);
    let a = &r.artifacts[0];
    assert_eq!(a.mime, "video/mp4");
    assert!(a.file_name.starts_with("anna-hello") && a.file_name.ends_with(".mp4"), "{}", a.file_name);
    let bytes = std::fs::read(&a.path).unwrap();
    assert_eq!(a.bytes, bytes.len() as u64);
    assert_eq!(a.sha256, hex::encode(Sha256::digest(&bytes)));
    let mp4 = Mp4::read(&bytes);
    assert!(mp4.top.iter().any(|t| t == "mdat") && mp4.top.iter().any(|t| t == "moov"), "{mp4:?}");
    assert_eq!(mp4.tracks.len(), 2, "{mp4:?}");
    let v = mp4.track("vide");
    assert_eq!((v.codec.as_str(), v.size, v.entry, v.samples), ("avc1", (64, 48), (64, 48), 25), "{v:?}");
    assert!((v.seconds - 1.0).abs() < 1e-6, "{v:?}");
    let s = mp4.track("soun");
    // 16 kHz is raised to 48 kHz; AAC priming and padding add at most two frames.
    assert_eq!((s.codec.as_str(), s.entry), ("mp4a", (1, 48_000)), "{s:?}");
    assert!((1.0..=1.0 + 2048.0 / 48_000.0 + 1e-6).contains(&s.seconds), "{s:?}");
    assert_eq!(h.output_files(), vec![a.file_name.clone()], "only the video is stored");
    assert_eq!(r.inputs_read_by_skill, 0, "the host spliced the portrait and the sound into the request");

    // The server got exactly the form the input asked for, and both files whole.
    let reqs = sim.requests();
    assert_eq!(reqs.len(), 1);
    let got = &reqs[0];
    assert_eq!(got.status, 200, "{got:?}");
    assert_eq!(
        got.params,
        Some(HumoParams {
            prompt: "a woman talking to the camera".into(),
            width: Some(64),
            height: Some(48),
            fps: 25,
            seed: 7,
            steps: 10
        })
    );
    assert_eq!(got.image_size, Some((80, 60)));
    assert!((got.audio_seconds.unwrap() - 1.0).abs() < 1e-6, "{got:?}");
    assert_eq!((got.output_size, got.frames), (Some((64, 48)), Some(25)));

    // What the caller reads.
    assert!(r.text.starts_with("Lip-synced face.png to voice.wav: 1.0 s at 25 fps (25 frames, 64×48)"), "{}", r.text);
    assert!(r.text.contains("forge-humo") && r.text.contains(&a.path.display().to_string()), "{}", r.text);
    assert_eq!(r.data["prompt"], "a woman talking to the camera");
    assert_eq!((r.data["width"].clone(), r.data["height"].clone()), (json!(64), json!(48)));
    assert_eq!(
        (r.data["fps"].clone(), r.data["seed"].clone(), r.data["steps"].clone()),
        (json!(25), json!(7), json!(10))
    );
    assert_eq!(r.data["bytes"], json!(a.bytes));
    assert_eq!(r.data["service"], "forge-humo");
    assert_eq!(r.data["output"]["frames"], 25);
    assert_eq!(r.data["output"]["audio_codec"], "mp4a");

    // Progress: upload (with bytes), then generate, then download, in order.
    let st = stages(&rec);
    let order: Vec<&str> = st.iter().map(|(s, _, _)| s.as_str()).collect();
    let first =
        |name: &str| order.iter().position(|s| *s == name).unwrap_or_else(|| panic!("no {name} stage in {order:?}"));
    assert!(first("upload") < first("generate") && first("generate") < first("download"), "{order:?}");
    assert!(
        st.iter()
            .any(|(s, _, m)| s == "upload" && m.as_deref().is_some_and(|m| m.contains("sent") && m.contains("KB"))),
        "upload reports bytes: {st:?}"
    );
    assert!(st.iter().any(|(s, f, _)| s == "download" && *f == Some(1.0)), "{st:?}");
    let fractions: Vec<f32> = st.iter().filter_map(|(_, f, _)| *f).collect();
    assert!(fractions.windows(2).all(|w| w[0] <= w[1]), "fractions never go back: {fractions:?}");
}

#[tokio::test]
async fn sizes_come_from_the_image_and_defaults_from_the_settings() {
    let (sim, addr) = start().await;
    let (dir, image, audio) = inputs();
    let settings = "fps = 10\nsteps = 5\nprompt = \"a news anchor reading the headlines\"";
    let h = harness(&config(&format!("http://{addr}"), dir.path(), settings), &[]).await;
    let (r, _) = h.run("lip-sync", json!({"image": path_str(&image), "audio": path_str(&audio)})).await;
    let r = r.expect("lip-sync succeeds");

    let got = &sim.requests()[0];
    let p = got.params.clone().unwrap();
    assert_eq!(
        (p.prompt.as_str(), p.width, p.height, p.fps, p.seed, p.steps),
        ("a news anchor reading the headlines", None, None, 10, 0, 5)
    );
    // 80×60 rounded down to multiples of 16.
    assert_eq!((got.output_size, got.frames), (Some((80, 48)), Some(10)));

    let a = &r.artifacts[0];
    assert!(a.file_name.starts_with("lipsync") && a.file_name.ends_with(".mp4"), "{}", a.file_name);
    let mp4 = Mp4::read(&std::fs::read(&a.path).unwrap());
    let v = mp4.track("vide");
    assert_eq!((v.size, v.samples), ((80, 48), 10));
    assert!(r.data["width"].is_null() && r.data["height"].is_null(), "{}", r.data);
    assert_eq!((r.data["fps"].clone(), r.data["steps"].clone()), (json!(10), json!(5)));
    assert_eq!(r.data["output"]["width"], 80);
    assert!(r.text.contains("1.0 s at 10 fps (10 frames, 80×48)"), "{}", r.text);
}

#[tokio::test]
async fn an_earlier_result_can_be_the_portrait() {
    let (sim, addr) = start().await;
    let (dir, _, audio) = inputs();
    let h = harness(&config(&format!("http://{addr}"), dir.path(), ""), &[]).await;
    // A portrait stored as an earlier run (comfyui-image, say) would store it.
    let store = c41_artifacts::ArtifactStore::open(h.out.path()).unwrap();
    let mut pending = store.create("portrait.png", "image/png", u64::MAX).unwrap();
    pending.write(&portrait(48, 64)).unwrap();
    let stored = pending.finish().unwrap();

    let input = json!({"image": stored.reference(), "audio": path_str(&audio), "height": 32});
    let (r, _) = h.run("lip-sync", input).await;
    let r = r.expect("lip-sync succeeds");
    let got = &sim.requests()[0];
    assert_eq!(got.image_size, Some((48, 64)), "the stored portrait was sent");
    // Only the height given: the width follows the portrait's 3:4.
    assert_eq!(got.output_size, Some((32, 32)));
    assert!(r.text.starts_with(&format!("Lip-synced {} to voice.wav", stored.file_name)), "{}", r.text);
    assert_eq!(r.data["height"], 32);
    assert!(r.data["width"].is_null());
}

// ---- refusals and failures -------------------------------------------------

#[tokio::test]
async fn a_width_that_is_not_a_multiple_of_16_is_refused_before_any_request() {
    let (sim, addr) = start().await;
    let (dir, image, audio) = inputs();
    let h = harness(&config(&format!("http://{addr}"), dir.path(), ""), &[]).await;
    let (r, _) = h.run("lip-sync", json!({"image": path_str(&image), "audio": path_str(&audio), "width": 100})).await;
    let (field, reason) = invalid(r);
    assert_eq!(field, "width", "{reason}");
    assert!(sim.requests().is_empty(), "nothing was sent");

    // The audio is required, and the error says so.
    let (r, _) = h.run("lip-sync", json!({"image": path_str(&image)})).await;
    let (field, reason) = invalid(r);
    assert!(field == "audio" || reason.contains("audio"), "{field}: {reason}");
    assert!(sim.requests().is_empty());
}

#[tokio::test]
async fn a_file_that_is_not_an_image_is_blamed_on_image() {
    let (sim, addr) = start().await;
    let (dir, _, audio) = inputs();
    let fake = dir.path().join("notes.png");
    std::fs::write(&fake, "these are my notes, not a picture\n").unwrap();
    let h = harness(&config(&format!("http://{addr}"), dir.path(), ""), &[]).await;
    let (r, _) = h.run("lip-sync", json!({"image": path_str(&fake), "audio": path_str(&audio)})).await;
    let (field, reason) = invalid(r);
    assert_eq!(field, "image");
    assert!(reason.contains("forge-humo") && reason.contains("not a PNG or JPEG image"), "{reason}");
    let got = sim.requests();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].status, 400);
    assert!(h.output_files().is_empty(), "no artifact for a failure");
}

#[tokio::test]
async fn audio_longer_than_30_seconds_is_blamed_on_audio() {
    let (sim, addr) = start().await;
    let (dir, image, _) = inputs();
    let long = dir.path().join("speech.wav");
    std::fs::write(&long, wav(8_000, 30.5, 0.5)).unwrap();
    let h = harness(&config(&format!("http://{addr}"), dir.path(), ""), &[]).await;
    let (r, _) = h.run("lip-sync", json!({"image": path_str(&image), "audio": path_str(&long)})).await;
    let (field, reason) = invalid(r);
    assert_eq!(field, "audio");
    assert!(reason.contains("31.0 s") && reason.contains("30"), "{reason}");
    assert_eq!(sim.requests()[0].status, 400);
}

#[tokio::test]
async fn a_server_error_is_a_backend_error_naming_service_and_status() {
    // The simulator, like uvicorn, reads the whole upload before answering.
    let (sim, addr) = start().await;
    let (dir, image, audio) = inputs();
    let h = harness(&config(&format!("http://{addr}"), dir.path(), ""), &[]).await;
    sim.fail_next(1, 500);
    let (r, _) = h.run("lip-sync", json!({"image": path_str(&image), "audio": path_str(&audio)})).await;
    let (service, status, message) = backend_error(r);
    assert_eq!((service.as_str(), status), ("forge-humo", Some(500)), "{message}");
    assert_eq!(message, "Internal Server Error");
    assert!(h.output_files().is_empty());

    // The fault is used up: the next call works.
    let (r, _) = h.run("lip-sync", json!({"image": path_str(&image), "audio": path_str(&audio)})).await;
    r.expect("the retry succeeds");
    assert_eq!(sim.requests().len(), 1, "the injected failure never reached the handler");
}

#[tokio::test]
async fn a_down_service_is_a_clear_backend_error() {
    let (sim, addr) = start().await;
    let (dir, image, audio) = inputs();
    let h = harness(&config(&format!("http://{addr}"), dir.path(), ""), &[]).await;
    sim.set_down(true);
    let (r, _) = h.run("lip-sync", json!({"image": path_str(&image), "audio": path_str(&audio)})).await;
    let (service, status, message) = backend_error(r);
    assert_eq!((service.as_str(), status), ("forge-humo", None));
    assert!(message.contains(&format!("http://{addr}/generate")), "the message says what was tried: {message}");
    assert!(sim.requests().is_empty());

    // A port nobody listens on reads the same.
    let h = harness(&config(&format!("http://127.0.0.1:{}", closed_port()), dir.path(), ""), &[]).await;
    let (r, _) = h.run("lip-sync", json!({"image": path_str(&image), "audio": path_str(&audio)})).await;
    let (service, status, _) = backend_error(r);
    assert_eq!((service.as_str(), status), ("forge-humo", None));
}

#[tokio::test]
async fn without_a_humo_grant_the_error_says_which_grant_is_missing() {
    let (dir, image, audio) = inputs();
    let text = format!("output-dir = \"{{out}}\"\n[inputs]\nallow-dirs = [{:?}]\n", path_str(dir.path()));
    let h = harness(&text, &[]).await;
    let (r, _) = h.run("lip-sync", json!({"image": path_str(&image), "audio": path_str(&audio)})).await;
    match r {
        Err(RunError::Invoke(InvokeError::Denied { target, reason, .. })) => {
            assert_eq!(target, "humo");
            assert!(reason.contains("grants"), "{reason}");
        }
        other => panic!("expected denied, got {other:?}"),
    }
}

#[tokio::test]
async fn describe_shows_a_precise_schema() {
    let (dir, _, _) = inputs();
    let h = harness(&config("http://127.0.0.1:9", dir.path(), ""), &[]).await;
    let skill = h.app.catalog.get("lip-sync").expect("lip-sync is built in");
    assert_eq!(skill.description.services, vec!["humo".to_string(), "comfyui".to_string()]);
    let schema: Value = skill.schema.schema().clone();
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(schema["required"], json!(["image", "audio"]));
    for f in ["image", "audio"] {
        assert_eq!(schema["properties"][f]["format"], "c41-file");
    }
    assert_eq!(schema["properties"]["width"]["multipleOf"], 16);
    assert_eq!(schema["properties"]["fps"]["maximum"], 60);
    // No schema defaults for what the settings may override (the host fills
    // schema defaults in before the skill sees the input).
    for f in ["fps", "steps", "prompt"] {
        assert!(schema["properties"][f].get("default").is_none(), "{f}");
    }
}

/// Forwards events to a recorder and cancels the call once HuMo is at work.
struct CancelOnGenerate {
    rec: Recorder,
    token: tokio_util::sync::CancellationToken,
}

impl c41::events::EventSink for CancelOnGenerate {
    fn emit(&self, skill: &str, event: Event) {
        if matches!(&event, Event::Progress { stage, .. } if stage == "generate") {
            self.token.cancel();
        }
        self.rec.emit(skill, event);
    }
}

#[tokio::test]
async fn cancelling_while_humo_works_stops_the_call_and_stores_nothing() {
    let (sim, addr) = start().await;
    sim.set_delay(std::time::Duration::from_secs(60));
    let (dir, image, audio) = inputs();
    let h = harness(&config(&format!("http://{addr}"), dir.path(), ""), &[]).await;
    let token = tokio_util::sync::CancellationToken::new();
    let sink = std::sync::Arc::new(CancelOnGenerate { rec: Recorder::default(), token: token.clone() });
    let input = json!({"image": path_str(&image), "audio": path_str(&audio)});
    let r = h.app.invoke("lip-sync", input, sink.clone(), token).await;
    assert!(matches!(r, Err(RunError::Invoke(InvokeError::Cancelled))), "{r:?}");
    let order: Vec<String> = stages(&sink.rec).into_iter().map(|(s, _, _)| s).collect();
    assert!(order.contains(&"generate".to_string()) && !order.contains(&"download".to_string()), "{order:?}");
    assert!(h.output_files().is_empty());
}

// ---- HuMo inside ComfyUI --------------------------------------------------------

/// A config granting lip-sync the ComfyUI at `addr` (no HuMo service).
fn comfy_config(addr: SocketAddr, inputs: &Path, settings: &str) -> String {
    format!(
        "output-dir = \"{{out}}\"\n[inputs]\nallow-dirs = [{:?}]\n\
         [services.forge]\nurl = \"http://{addr}\"\nkind = \"comfyui\"\n\
         [skills.lip-sync]\ngrants = [\"forge\"]\n[skills.lip-sync.settings]\npoll-ms = 150\n{settings}\n",
        inputs.display().to_string()
    )
}

async fn start_comfy(cfg: c41_sim::comfyui::ComfyConfig) -> (c41_sim::comfyui::ComfySim, SocketAddr) {
    let sim = c41_sim::comfyui::ComfySim::new(c41_sim::comfyui::ComfyConfig { video_max_side: Some(64), ..cfg });
    let addr = sim.start("127.0.0.1:0").await.unwrap();
    (sim, addr)
}

#[tokio::test]
async fn on_comfyui_the_humo_workflow_makes_a_clip_as_long_as_the_sound() {
    let (sim, addr) = start_comfy(
        c41_sim::comfyui::ComfyConfig::default()
            .with_delays(std::time::Duration::from_millis(5), std::time::Duration::ZERO),
    )
    .await;
    let (dir, image, audio) = inputs();
    let h = harness(&comfy_config(addr, dir.path(), ""), &[]).await;
    let (r, rec) =
        h.run("lip-sync", json!({"image": path_str(&image), "audio": path_str(&audio), "steps": 4, "seed": 7})).await;
    let r = r.expect("HuMo on ComfyUI makes the clip");
    assert_eq!(r.artifacts.len(), 1);
    assert_eq!(r.artifacts[0].mime, "video/mp4");
    let d = &r.data;
    // 1 s at 25 fps: 25 frames, already of the 4n+1 form.
    assert_eq!(d["frames_requested"], 25, "{d}");
    assert_eq!(d["output"]["frames"], 25, "the file holds them: {d}");
    assert_eq!(d["output"]["audio_codec"], "mp4a", "the clip carries the sound: {d}");
    assert_eq!(d["workflow"], "humo");
    let id = d["prompt_id"].as_str().unwrap();
    let h_entry: Value = crate::comfyui::http_json(addr, &format!("/history/{id}")).await;
    let g = &h_entry[id]["prompt"][2];
    assert_eq!((g["65"]["inputs"]["length"].as_u64(), g["64"]["inputs"]["seed"].as_u64()), (Some(25), Some(7)));
    assert_eq!(g["64"]["inputs"]["steps"], 4);
    // The 4:3 portrait keeps its aspect at about the workflow's 640×640.
    assert_eq!((g["65"]["inputs"]["width"].as_u64(), g["65"]["inputs"]["height"].as_u64()), (Some(736), Some(560)));
    assert_eq!((d["width"].as_u64(), d["height"].as_u64()), (Some(736), Some(560)), "{d}");
    let name = &r.artifacts[0].file_name;
    assert!(name.starts_with("lipsync-") && !name.contains("_00001_"), "named as the HTTP service's result: {name}");
    assert_eq!(g["49"]["inputs"]["image"], "c41/face.png", "the portrait was uploaded and bound");
    assert_eq!(g["58"]["inputs"]["audio"], "c41/voice.wav", "the sound was uploaded and bound");
    assert_eq!(
        sim.file("input", "c41", "voice.wav").unwrap().to_vec(),
        std::fs::read(&audio).unwrap(),
        "the upload holds the sound"
    );
    let reps = stages(&rec);
    assert!(reps.iter().any(|r| r.0 == "sampling"), "sampler progress: {reps:?}");
    assert!(r.text.starts_with("Lip-synced face.png to voice.wav: 1.0 s at 25 fps (25 frames"), "{}", r.text);
    let stored = std::fs::read(&r.artifacts[0].path).unwrap();
    assert_eq!(r.artifacts[0].sha256, hex::encode(Sha256::digest(&stored)));
}

#[tokio::test]
async fn on_comfyui_a_sound_longer_than_max_frames_is_refused_before_anything_is_sent() {
    let (sim, addr) = start_comfy(c41_sim::comfyui::ComfyConfig::default()).await;
    let (dir, image, _) = inputs();
    let long = dir.path().join("speech.wav");
    std::fs::write(&long, wav(8_000, 4.0, 1.0)).unwrap();
    let h = harness(&comfy_config(addr, dir.path(), ""), &[]).await;
    let (r, _) = h.run("lip-sync", json!({"image": path_str(&image), "audio": path_str(&long)})).await;
    let (field, reason) = invalid(r);
    assert_eq!(field, "audio");
    assert!(reason.contains("5.00 s") && reason.contains("max-frames") && reason.contains("97"), "{reason}");
    assert_eq!(sim.history_len(), 0, "nothing was submitted");
}

#[tokio::test]
async fn on_comfyui_a_missing_humo_model_is_named_with_where_to_put_it() {
    let (_sim, addr) = start_comfy(
        c41_sim::comfyui::ComfyConfig::default().with_models("diffusion_models", &["z_image_turbo_bf16.safetensors"]),
    )
    .await;
    let (dir, image, audio) = inputs();
    let h = harness(&comfy_config(addr, dir.path(), ""), &[]).await;
    let (r, _) = h.run("lip-sync", json!({"image": path_str(&image), "audio": path_str(&audio)})).await;
    match r {
        Err(RunError::Invoke(InvokeError::Backend { message, .. })) => {
            assert!(message.contains("humo_17B_fp8_e4m3fn.safetensors"), "{message}")
        }
        other => panic!("expected a backend error, got {other:?}"),
    }
}
