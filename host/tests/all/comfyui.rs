//! The ComfyUI skills (comfyui-image, comfyui-video) end to end: real
//! components in the real sandbox against the ComfyUI simulator, including
//! every way a job can go wrong.

use crate::common::*;
use c41::app::RunError;
use c41::events::{Event, EventSink, Recorder};
use c41::runtime::{InvokeError, Invoked};
use c41_sim::comfyui::{ComfyConfig, ComfySim, Fault};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

// ---- helpers ---------------------------------------------------------------

/// Quick steps, small videos: the protocol is what is under test.
fn fast() -> ComfyConfig {
    ComfyConfig {
        video_max_side: Some(64),
        ..ComfyConfig::default().with_delays(Duration::from_millis(5), Duration::ZERO)
    }
}

/// Steps slow enough to act in the middle of a job.
fn slow() -> ComfyConfig {
    ComfyConfig {
        video_max_side: Some(64),
        ..ComfyConfig::default().with_delays(Duration::from_millis(25), Duration::ZERO)
    }
}

pub(crate) async fn start(cfg: ComfyConfig) -> (ComfySim, SocketAddr) {
    let sim = ComfySim::new(cfg);
    let addr = sim.start("127.0.0.1:0").await.unwrap();
    (sim, addr)
}

/// A config granting both skills the given `comfyui` backends, polling fast.
fn config(backends: &[(&str, String)], image_settings: &str, video_settings: &str) -> String {
    let mut c = String::from("output-dir = \"{out}\"\n");
    for (name, url) in backends {
        c.push_str(&format!("[services.{name}]\nurl = \"{url}\"\nkind = \"comfyui\"\n"));
    }
    let grants: Vec<String> = backends.iter().map(|(n, _)| format!("{n:?}")).collect();
    let grants = grants.join(", ");
    c.push_str(&format!(
        "[skills.comfyui-image]\ngrants = [{grants}]\n[skills.comfyui-image.settings]\npoll-ms = 150\nstall-secs = 0.5\n{image_settings}\n\
         [skills.comfyui-video]\ngrants = [{grants}]\n[skills.comfyui-video.settings]\npoll-ms = 150\nstall-secs = 0.5\n{video_settings}\n"
    ));
    c
}

fn one(addr: SocketAddr) -> String {
    config(&[("comfyui", format!("http://{addr}"))], "", "")
}

/// Forwards events to a recorder and runs `hook` on each (to cancel, restart
/// or interrupt at the right moment).
pub(crate) struct Hooked<F: Fn(&Event) + Send + Sync> {
    pub(crate) rec: Recorder,
    pub(crate) hook: F,
}

impl<F: Fn(&Event) + Send + Sync> EventSink for Hooked<F> {
    fn emit(&self, skill: &str, event: Event) {
        (self.hook)(&event);
        self.rec.emit(skill, event);
    }
}

async fn run_hooked<F: Fn(&Event) + Send + Sync + 'static>(
    h: &Harness,
    skill: &str,
    input: Value,
    token: CancellationToken,
    hook: F,
) -> (Result<Invoked, RunError>, Arc<Hooked<F>>) {
    let sink = Arc::new(Hooked { rec: Recorder::default(), hook });
    let r = h.app.invoke(skill, input, sink.clone(), token).await;
    (r, sink)
}

fn is_step(e: &Event) -> bool {
    matches!(e, Event::Progress { step: Some(_), .. })
}

/// `(stage, fraction, step, message)` of each progress report.
type Report = (String, Option<f32>, Option<(u32, u32)>, Option<String>);

fn reports(events: &[Event]) -> Vec<Report> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Progress { stage, fraction, step, message } => {
                Some((stage.clone(), *fraction, *step, message.clone()))
            }
            _ => None,
        })
        .collect()
}

fn previews(events: &[Event]) -> usize {
    events.iter().filter(|e| matches!(e, Event::Preview { .. })).count()
}

/// A plain HTTP/1.1 call to the simulator (what another ComfyUI client does).
pub async fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

pub async fn http_json(addr: SocketAddr, path: &str) -> Value {
    let (status, body) = http(addr, "GET", path, "").await;
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

/// Another client's long job, to keep a backend busy.
async fn blocker(addr: SocketAddr, steps: u32) -> String {
    let graph = json!({
        "1": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "2": {"class_type": "KSampler", "inputs": {"model": ["3", 0], "seed": steps, "steps": steps, "cfg": 1.0, "sampler_name": "euler",
              "scheduler": "simple", "positive": ["4", 0], "negative": ["4", 0], "latent_image": ["1", 0], "denoise": 1.0}},
        "3": {"class_type": "UNETLoader", "inputs": {"unet_name": "z_image_turbo_bf16.safetensors", "weight_dtype": "default"}},
        "4": {"class_type": "CLIPTextEncode", "inputs": {"text": "someone else's job", "clip": ["5", 0]}},
        "5": {"class_type": "CLIPLoader", "inputs": {"clip_name": "qwen_3_4b.safetensors", "type": "lumina2"}},
        "6": {"class_type": "VAEDecode", "inputs": {"samples": ["2", 0], "vae": ["7", 0]}},
        "7": {"class_type": "VAELoader", "inputs": {"vae_name": "ae.safetensors"}},
        "8": {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": "other/blocker"}},
    });
    let (status, body) =
        http(addr, "POST", "/prompt", &json!({"prompt": graph, "client_id": "other"}).to_string()).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["prompt_id"].as_str().unwrap().to_string()
}

/// Stop everything on a simulator (so a test does not leave work running).
async fn drain(addr: SocketAddr) {
    http(addr, "POST", "/queue", r#"{"clear": true}"#).await;
    http(addr, "POST", "/interrupt", "{}").await;
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < Duration::from_secs(10), "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The graph the server ran for `prompt_id`, from its history.
async fn ran_graph(addr: SocketAddr, prompt_id: &str) -> Value {
    let h = http_json(addr, &format!("/history/{prompt_id}")).await;
    h[prompt_id]["prompt"][2].clone()
}

/// Every artifact is byte-identical to the file `/view` served, and the
/// host's hash is right.
fn assert_identical(sim: &ComfySim, r: &Invoked) {
    let files = r.data["files"].as_array().expect("data.files");
    assert_eq!(files.len(), r.artifacts.len());
    for (f, a) in files.iter().zip(&r.artifacts) {
        let served = sim
            .file("output", f["subfolder"].as_str().unwrap(), f["server_name"].as_str().unwrap())
            .unwrap_or_else(|| panic!("the server holds {f}"));
        let stored = std::fs::read(&a.path).unwrap();
        assert_eq!(stored, served.to_vec(), "{} is byte-identical to what /view served", a.path.display());
        assert_eq!(a.sha256, hex::encode(Sha256::digest(&stored)));
        assert_eq!(a.bytes, stored.len() as u64);
    }
}

// ---- success paths ------------------------------------------------------------

#[tokio::test]
async fn image_job_runs_end_to_end_with_progress_previews_and_identical_files() {
    let (sim, addr) = start(fast()).await;
    let h = harness(&one(addr), &[]).await;
    let (r, events) = h
        .run(
            "comfyui-image",
            json!({"prompt": "a red fox in snow", "width": 256, "height": 320, "steps": 4, "count": 2}),
        )
        .await;
    let r = r.expect("image job succeeds");
    assert_eq!(r.artifacts.len(), 2, "one artifact per image of the batch");
    assert!(r.artifacts.iter().all(|a| a.mime == "image/png"));
    assert_identical(&sim, &r);

    // Data: the random seed is reported, and is the one the server got.
    let d = &r.data;
    let seed = d["seed"].as_u64().expect("a random seed is reported");
    assert_eq!((d["workflow"].as_str(), d["backend"].as_str()), (Some("flux2-dev"), Some("comfyui")));
    assert_eq!(
        (d["width"].as_u64(), d["height"].as_u64(), d["steps"].as_u64(), d["count"].as_u64()),
        (Some(256), Some(320), Some(4), Some(2))
    );
    for k in ["prepare_ms", "queued_ms", "run_ms", "download_ms", "total_ms"] {
        assert!(d["timings"][k].is_u64(), "timings.{k}: {d}");
    }
    let g = ran_graph(addr, d["prompt_id"].as_str().unwrap()).await;
    assert_eq!(g["7"]["inputs"]["noise_seed"], json!(seed));
    assert_eq!(g["4"]["inputs"]["text"], "a red fox in snow");
    assert_eq!((g["9"]["inputs"]["steps"].as_u64(), g["10"]["inputs"]["batch_size"].as_u64()), (Some(4), Some(2)));
    assert_eq!((g["9"]["inputs"]["width"].as_u64(), g["10"]["inputs"]["height"].as_u64()), (Some(256), Some(320)));

    // Progress: sampler steps n of 4, the node running, previews, done at 100 %.
    let ev = events.events();
    let reps = reports(&ev);
    let steps: Vec<(u32, u32)> = reps.iter().filter_map(|r| r.2).collect();
    assert_eq!(steps.last(), Some(&(4, 4)), "sampler steps reported: {reps:?}");
    assert!(steps.len() >= 4, "{steps:?}");
    assert!(
        reps.iter().any(|r| r.0 == "sampling" && r.3.as_deref().is_some_and(|m| m.contains("SamplerCustomAdvanced"))),
        "{reps:?}"
    );
    assert!(
        reps.iter().any(|r| r.0 == "running" && r.3.as_deref().is_some_and(|m| m.contains("VAEDecode"))),
        "current node: {reps:?}"
    );
    assert!(reps.iter().any(|r| r.0 == "download"), "{reps:?}");
    assert_eq!(reps.last().unwrap().1, Some(1.0));
    assert!(previews(&ev) >= 1, "sampler previews forwarded");
    // The last preview is kept beside the run's journal entry.
    let last_preview = ev
        .iter()
        .rev()
        .find_map(|e| match e {
            Event::Preview { bytes, .. } => Some(bytes.clone()),
            _ => None,
        })
        .unwrap();
    let journal = h.app.runs.as_ref().expect("the harness keeps a journal");
    let record = journal.list().into_iter().find(|rec| rec.id == r.invocation_id).expect("the run is in the journal");
    let kept = record.preview.expect("the record names the kept preview");
    assert_eq!(std::fs::read(&kept).unwrap(), *last_preview, "{} is the latest preview", kept.display());

    // A given seed is used as is; the workflow's own step count applies when
    // none is given; inputs the workflow does not use are listed.
    let (r, _) = h
        .run("comfyui-image", json!({"prompt": "a fox", "negative_prompt": "blur", "width": 256, "height": 256, "seed": 42, "workflow": "z-image-turbo"}))
        .await;
    let r = r.expect("z-image job succeeds");
    assert_identical(&sim, &r);
    assert_eq!((r.data["seed"].as_u64(), r.data["steps"].as_u64()), (Some(42), Some(8)));
    assert_eq!(r.data["ignored"], json!(["negative_prompt"]));
    let g = ran_graph(addr, r.data["prompt_id"].as_str().unwrap()).await;
    assert_eq!((g["8"]["inputs"]["seed"].as_u64(), g["8"]["inputs"]["steps"].as_u64()), (Some(42), Some(8)));
    assert!(r.text.contains("seed 42") && r.text.contains("z-image-turbo"), "{}", r.text);
}

#[tokio::test]
async fn video_job_converts_seconds_to_wan_frames_and_stores_the_mp4() {
    let (sim, addr) = start(fast()).await;
    let h = harness(&one(addr), &[]).await;
    let (r, events) = h
        .run(
            "comfyui-video",
            json!({"prompt": "a fox running", "seconds": 0.5, "fps": 16, "width": 128, "height": 128, "steps": 4, "seed": 7}),
        )
        .await;
    let r = r.expect("video job succeeds");
    assert_eq!(r.artifacts.len(), 1);
    assert_eq!(r.artifacts[0].mime, "video/mp4");
    assert_identical(&sim, &r);
    let d = &r.data;
    // 0.5 s × 16 fps = 8 frames, rounded to Wan's 4n+1.
    assert_eq!(
        (d["frames"].as_u64(), d["frames_requested"].as_u64(), d["fps"].as_f64()),
        (Some(9), Some(8), Some(16.0))
    );
    assert_eq!(d["workflow"], "wan22-t2v");
    let g = ran_graph(addr, d["prompt_id"].as_str().unwrap()).await;
    assert_eq!(g["9"]["inputs"]["length"], 9);
    assert_eq!(g["13"]["inputs"]["fps"], 16.0, "a float input stays a float");
    // Steps are split between the two experts.
    assert_eq!((g["10"]["inputs"]["steps"].as_u64(), g["10"]["inputs"]["end_at_step"].as_u64()), (Some(4), Some(2)));
    assert_eq!(g["11"]["inputs"]["start_at_step"], 2);
    assert_eq!(g["10"]["inputs"]["noise_seed"], 7);
    let reps = reports(&events.events());
    let steps: Vec<(u32, u32)> = reps.iter().filter_map(|r| r.2).collect();
    assert!(steps.contains(&(2, 2)), "both sampler passes report steps: {steps:?}");
    assert_eq!(reps.last().unwrap().1, Some(1.0));
}

#[tokio::test]
async fn image_to_video_uploads_the_start_image_and_uses_the_name_the_server_returns() {
    let (sim, addr) = start(fast()).await;
    let h = harness(&one(addr), &[]).await;
    // The start image is an artifact of an earlier run, passed by reference.
    let (r, _) = h.run("comfyui-image", json!({"prompt": "a portrait", "width": 256, "height": 256, "steps": 2})).await;
    let image = r.expect("image").artifacts.remove(0);
    let name = image.path.file_name().unwrap().to_string_lossy().into_owned();
    // A different file already has that name on the server: the upload is renamed.
    sim.put_file("input", "c41", &name, b"somebody else's file".to_vec());

    let (r, _) = h
        .run(
            "comfyui-video",
            json!({"prompt": "she smiles", "image": format!("artifact:{}", image.sha256), "frames": 5, "width": 128, "height": 128, "steps": 2}),
        )
        .await;
    let r = r.expect("image→video succeeds");
    assert_identical(&sim, &r);
    assert_eq!(r.data["workflow"], "wan22-i2v", "a start image selects image→video");
    assert_eq!(r.inputs_read_by_skill, 0, "the host spliced the start image into the upload");
    let (stem, ext) = name.rsplit_once('.').unwrap();
    let renamed = format!("{stem} (1).{ext}");
    assert_eq!(r.data["uploads"]["image"], format!("c41/{renamed}"));
    assert_eq!(
        sim.file("input", "c41", &renamed).unwrap().to_vec(),
        std::fs::read(&image.path).unwrap(),
        "the upload holds the start image"
    );
    let g = ran_graph(addr, r.data["prompt_id"].as_str().unwrap()).await;
    assert_eq!(g["15"]["inputs"]["image"], format!("c41/{renamed}"), "LoadImage uses the returned name");
    assert_eq!(g["16"]["inputs"]["length"], 5);

    // The image→video workflow without an image is refused before any job.
    let before = sim.history_len();
    let (r, _) = h.run("comfyui-video", json!({"prompt": "x", "workflow": "wan22-i2v"})).await;
    let e = r.unwrap_err();
    assert_eq!(e.field(), Some("image"), "{e}");
    assert_eq!(sim.history_len(), before);
}

#[tokio::test]
async fn user_workflows_from_settings_run_and_every_output_kind_is_downloaded() {
    let (sim, addr) = start(fast()).await;
    // Model-free graphs: VHS (gifs: mp4 + gif), SaveAudio (audio: flac), a
    // PreviewAudio temp file (not a result).
    let video_settings = r#"
[skills.comfyui-video.settings.workflows.mixed]
description = "test: every output key"
graph = '''{
  "1": {"class_type": "EmptyImage", "inputs": {"width": 32, "height": 32, "batch_size": 4, "color": 255}},
  "2": {"class_type": "VHS_VideoCombine", "inputs": {"images": ["1", 0], "frame_rate": 8, "loop_count": 0, "filename_prefix": "vhs/clip", "format": "video/h264-mp4", "pingpong": false, "save_output": true}},
  "3": {"class_type": "VHS_VideoCombine", "inputs": {"images": ["1", 0], "frame_rate": 8, "loop_count": 0, "filename_prefix": "vhs/anim", "format": "image/gif", "pingpong": false, "save_output": true}},
  "4": {"class_type": "EmptyAudio", "inputs": {"duration": 0.5, "sample_rate": 44100, "channels": 1}},
  "5": {"class_type": "SaveAudio", "inputs": {"audio": ["4", 0], "filename_prefix": "audio/tone"}},
  "6": {"class_type": "PreviewAudio", "inputs": {"audio": ["4", 0]}}
}'''
bindings = { fps = [{ node = "2", input = "frame_rate" }, { node = "3", input = "frame_rate" }], frames = [{ node = "1", input = "batch_size" }] }
"#;
    let h = harness(&config(&[("comfyui", format!("http://{addr}"))], "", video_settings), &[]).await;
    let (r, _) = h.run("comfyui-video", json!({"prompt": "unused", "workflow": "mixed", "fps": 12, "frames": 6})).await;
    let r = r.expect("user workflow runs");
    let mimes: Vec<&str> = r.artifacts.iter().map(|a| a.mime.as_str()).collect();
    assert_eq!(mimes, ["video/mp4", "image/gif", "audio/flac"], "gifs and audio keys, media type by extension");
    assert_identical(&sim, &r);
    assert!(sim.files().iter().any(|f| f.kind == "temp"), "the preview exists on the server but is not a result");
    assert_eq!(r.data["frames"], 6, "no 4n+1 rule unless the sidecar says so");
    let ignored: Vec<&str> = r.data["ignored"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(ignored.contains(&"prompt") && ignored.contains(&"seed"), "{ignored:?}");
    let g = ran_graph(addr, r.data["prompt_id"].as_str().unwrap()).await;
    assert_eq!(
        (g["2"]["inputs"]["frame_rate"].as_f64(), g["1"]["inputs"]["batch_size"].as_u64()),
        (Some(12.0), Some(6))
    );
}

/// A parameter the caller leaves out keeps the workflow's own value (the
/// schema has no default of its own for bound parameters), `data.params`
/// says what was sent, and a video's frames are counted in the file, not
/// taken from a (here scaled) binding.
#[tokio::test]
async fn a_left_out_parameter_keeps_the_workflows_value_and_data_reports_the_file() {
    let (sim, addr) = start(fast()).await;
    let image_settings = r#"
[skills.comfyui-image.settings.workflows.portrait]
graph = '''{
  "1": {"class_type": "EmptyImage", "inputs": {"width": 832, "height": 1216, "batch_size": 1, "color": 0}},
  "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "u/portrait"}}
}'''
bindings = { width = [{ node = "1", input = "width" }], height = [{ node = "1", input = "height" }], count = [{ node = "1", input = "batch_size" }] }
"#;
    // `frames` doubled by the binding: 3 asked, 6 in the file.
    let video_settings = r#"
[skills.comfyui-video.settings.workflows.doubled]
graph = '''{
  "1": {"class_type": "EmptyImage", "inputs": {"width": 32, "height": 48, "batch_size": 4, "color": 255}},
  "2": {"class_type": "VHS_VideoCombine", "inputs": {"images": ["1", 0], "frame_rate": 8, "loop_count": 0, "filename_prefix": "vhs/clip", "format": "video/h264-mp4", "pingpong": false, "save_output": true}}
}'''
bindings = { frames = [{ node = "1", input = "batch_size", scale = 2 }], fps = [{ node = "2", input = "frame_rate" }] }
"#;
    let h = harness(&config(&[("comfyui", format!("http://{addr}"))], image_settings, video_settings), &[]).await;

    let (r, _) = h.run("comfyui-image", json!({"prompt": "unused", "workflow": "portrait"})).await;
    let r = r.expect("the user workflow runs");
    let g = ran_graph(addr, r.data["prompt_id"].as_str().unwrap()).await;
    assert_eq!((g["1"]["inputs"]["width"].as_u64(), g["1"]["inputs"]["height"].as_u64()), (Some(832), Some(1216)));
    assert_eq!((r.data["params"]["width"].as_u64(), r.data["params"]["height"].as_u64()), (Some(832), Some(1216)));
    assert_eq!((r.data["width"].as_u64(), r.data["height"].as_u64()), (Some(832), Some(1216)));
    assert!(r.text.contains("832×1216"), "{}", r.text);
    let png = std::fs::read(&r.artifacts[0].path).unwrap();
    assert_eq!(
        (u32::from_be_bytes(png[16..20].try_into().unwrap()), u32::from_be_bytes(png[20..24].try_into().unwrap())),
        (832, 1216)
    );

    let (r, _) = h.run("comfyui-video", json!({"prompt": "unused", "workflow": "doubled", "frames": 3})).await;
    let r = r.expect("the scaled workflow runs");
    assert_identical(&sim, &r);
    assert_eq!(r.data["params"]["frames"], 6, "what was sent: {}", r.data);
    assert_eq!(r.data["frames"], 6, "the frames in the file: {}", r.data);
    assert_eq!(r.data["fps"], 8.0, "the workflow's own fps, as the file has it: {}", r.data);
    assert_eq!((r.data["width"].as_u64(), r.data["height"].as_u64()), (Some(32), Some(48)));
    assert!(r.text.contains("6 frames at 8 fps"), "{}", r.text);
}

/// A workflow whose only output is `SaveImageWebsocket`: its images come
/// over the socket (framed like previews, sent while that node runs) and
/// are the results; ComfyUI keeps no file of them.
#[tokio::test]
async fn save_image_websocket_images_are_the_results() {
    let (sim, addr) = start(fast()).await;
    let image_settings = r#"
[skills.comfyui-image.settings.workflows.socket]
graph = '''{
  "1": {"class_type": "EmptyImage", "inputs": {"width": 48, "height": 32, "batch_size": 2, "color": 4095}},
  "2": {"class_type": "SaveImageWebsocket", "inputs": {"images": ["1", 0]}}
}'''
bindings = { count = [{ node = "1", input = "batch_size" }] }
"#;
    let h = harness(&config(&[("comfyui", format!("http://{addr}"))], image_settings, ""), &[]).await;
    let (r, events) = h.run("comfyui-image", json!({"prompt": "unused", "workflow": "socket"})).await;
    let r = r.expect("the socket's images are the outputs");
    assert_eq!(r.artifacts.len(), 2, "{:?}", r.artifacts);
    for a in &r.artifacts {
        assert_eq!(a.mime, "image/png");
        let png = std::fs::read(&a.path).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        assert_eq!(
            (u32::from_be_bytes(png[16..20].try_into().unwrap()), u32::from_be_bytes(png[20..24].try_into().unwrap())),
            (48, 32)
        );
    }
    assert_eq!(previews(&events.events()), 0, "not shown as previews");
    assert!(sim.files().iter().all(|f| f.kind != "output"), "nothing was saved on the server");
}

// ---- errors -------------------------------------------------------------------

#[tokio::test]
async fn bindings_to_missing_nodes_or_inputs_are_rejected_before_anything_is_sent() {
    let (sim, addr) = start(fast()).await;
    let graph = r#"'''{"1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}}, "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "u"}}}'''"#;
    let settings = format!(
        "[skills.comfyui-image.settings.workflows.no-node]\ngraph = {graph}\nbindings = {{ seed = [{{ node = \"25\", input = \"noise_seed\" }}] }}\n\
         [skills.comfyui-image.settings.workflows.no-input]\ngraph = {graph}\nbindings = {{ width = [{{ node = \"1\", input = \"wdith\" }}] }}\n\
         [skills.comfyui-image.settings.workflows.no-title]\ngraph = {graph}\nbindings = {{ prompt = [{{ title = \"Positive\", input = \"text\" }}] }}\n\
         [skills.comfyui-image.settings.workflows.linked]\ngraph = {graph}\nbindings = {{ prompt = [{{ node = \"2\", input = \"images\" }}] }}\n"
    );
    let h = harness(&config(&[("comfyui", format!("http://{addr}"))], &settings, ""), &[]).await;
    let cases = [
        ("no-node", vec!["binding `seed`", "node 25", "no such node", "the graph has 1, 2"]),
        (
            "no-input",
            vec![
                "binding `width`",
                "node 1 (EmptyImage)",
                "input `wdith`",
                "no such input",
                "width, height, batch_size, color",
            ],
        ),
        ("no-title", vec!["binding `prompt`", "titled \"Positive\"", "no node has that title"]),
        ("linked", vec!["node 2 (SaveImage)", "input `images`", "linked"]),
    ];
    for (wf, needles) in cases {
        let (r, _) = h.run("comfyui-image", json!({"prompt": "x", "workflow": wf})).await;
        match r {
            Err(RunError::Invoke(InvokeError::InvalidInput { field, reason })) => {
                assert_eq!(field, "workflow");
                assert!(reason.contains(&format!("workflow `{wf}` (settings workflows.{wf})")), "{reason}");
                for n in needles {
                    assert!(reason.contains(n), "{wf}: {reason:?} should mention {n:?}");
                }
            }
            other => panic!("{wf}: expected invalid input, got {other:?}"),
        }
    }
    let (r, _) = h.run("comfyui-image", json!({"prompt": "x", "workflow": "nope"})).await;
    let e = r.unwrap_err();
    assert!(e.to_string().contains("flux2-dev, z-image-turbo"), "unknown names list the known ones: {e}");
    assert_eq!(sim.history_len() + sim.queue_remaining(), 0, "nothing reached the server");
}

#[tokio::test]
async fn a_missing_model_names_node_class_input_file_and_what_the_server_has() {
    let (sim, addr) = start(fast().with_models("vae", &["ae.safetensors", "wan_2.1_vae.safetensors"])).await;
    let h = harness(&one(addr), &[]).await;
    let (r, _) = h.run("comfyui-image", json!({"prompt": "x", "width": 256, "height": 256})).await;
    let (_, status, m) = backend_error(r);
    assert_eq!(status, Some(400));
    for needle in [
        "workflow `flux2-dev`",
        "node 3 (VAELoader \"Load VAE\")",
        "input `vae_name`",
        "'flux2-vae.safetensors' is not installed",
        "ae.safetensors, wan_2.1_vae.safetensors",
    ] {
        assert!(m.contains(needle), "{m:?} should mention {needle:?}");
    }
    assert_eq!(sim.history_len() + sim.queue_remaining(), 0);
}

/// A server older than the Flux 2 nodes (0.3.64 style and newer style
/// rejections): the error says those nodes ship with ComfyUI and that
/// updating it fixes this, not "install the custom node".
#[tokio::test]
async fn a_server_too_old_for_a_core_node_is_told_to_update_comfyui() {
    for jobs_api in [false, true] {
        let (_sim, addr) =
            start(fast().with_jobs_api(jobs_api).without_nodes(&["Flux2Scheduler", "EmptyFlux2LatentImage"])).await;
        let h = harness(&one(addr), &[]).await;
        let (r, _) = h.run("comfyui-image", json!({"prompt": "x", "workflow": "flux2-dev"})).await;
        let (_, _, m) = backend_error(r);
        assert!(m.contains("ships with ComfyUI itself") && m.contains("update ComfyUI"), "jobs_api={jobs_api}: {m}");
        assert!(!m.contains("install the custom node"), "{m}");
    }
}

#[tokio::test]
async fn a_runtime_error_names_the_node_class_and_exception() {
    let (sim, addr) = start(fast()).await;
    sim.inject(Fault::FailNode {
        class_type: "VAEDecode".into(),
        message: "CUDA out of memory. Tried to allocate 2.00 GiB".into(),
    });
    let h = harness(&one(addr), &[]).await;
    let (r, _) = h.run("comfyui-image", json!({"prompt": "x", "width": 256, "height": 256, "steps": 2})).await;
    let (_, status, m) = backend_error(r);
    assert_eq!(status, None);
    for needle in ["node 12 (VAEDecode \"VAE Decode\")", "RuntimeError", "CUDA out of memory"] {
        assert!(m.contains(needle), "{m:?} should mention {needle:?}");
    }
    assert!(h.output_files().is_empty(), "no false success, no files");
}

#[tokio::test]
async fn an_interrupt_on_the_server_is_reported_not_taken_for_success() {
    let (_sim, addr) = start(slow()).await;
    let h = harness(&one(addr), &[]).await;
    let fired = Arc::new(AtomicBool::new(false));
    let f = fired.clone();
    // Someone presses Cancel in the ComfyUI web page.
    let (r, _) = run_hooked(
        &h,
        "comfyui-image",
        json!({"prompt": "x", "width": 256, "height": 256, "steps": 60}),
        CancellationToken::new(),
        move |e| {
            if is_step(e) && !f.swap(true, Ordering::SeqCst) {
                tokio::spawn(async move { http(addr, "POST", "/interrupt", "{}").await });
            }
        },
    )
    .await;
    let (_, _, m) = backend_error(r);
    assert!(m.contains("interrupted") && m.contains("SamplerCustomAdvanced"), "{m}");
    assert!(h.output_files().is_empty());
}

#[tokio::test]
async fn cancelling_a_running_job_interrupts_it_on_the_server() {
    let (sim, addr) = start(slow()).await;
    let h = harness(&one(addr), &[]).await;
    let token = CancellationToken::new();
    let t = token.clone();
    let started = Instant::now();
    let (r, _) = run_hooked(
        &h,
        "comfyui-image",
        json!({"prompt": "x", "width": 256, "height": 256, "steps": 100}),
        token,
        move |e| {
            if is_step(e) {
                t.cancel();
            }
        },
    )
    .await;
    assert!(matches!(r, Err(RunError::Invoke(InvokeError::Cancelled))), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(8), "the skill returned promptly, not after the grace period");
    // The job stopped at its next step instead of running all 100 (2.5 s).
    wait_until("the job left the queue", || sim.queue_remaining() == 0).await;
    let history = http_json(addr, "/history").await;
    let (_, entry) = history.as_object().unwrap().iter().next().expect("the interrupted job is in history");
    assert_eq!(entry["status"]["status_str"], "error");
    let events: Vec<&str> =
        entry["status"]["messages"].as_array().unwrap().iter().map(|m| m[0].as_str().unwrap()).collect();
    assert!(events.contains(&"execution_interrupted"), "{events:?}");
    assert!(h.output_files().is_empty());
}

/// ComfyUI acts on an interrupt only at the start of a node or a sampler
/// step: one that lands inside the last node is ignored. The skill must not
/// take its one interrupt for done: it looks at `/queue` again (and asks
/// again) until the server has let go of the job.
#[tokio::test]
async fn a_cancel_during_the_last_node_returns_only_once_the_server_let_go_of_the_job() {
    let cfg = ComfyConfig {
        video_max_side: Some(64),
        ..ComfyConfig::default().with_delays(Duration::ZERO, Duration::from_millis(1500))
    };
    let (sim, addr) = start(cfg).await;
    let h = harness(&one(addr), &[]).await;
    let token = CancellationToken::new();
    let t = token.clone();
    let (r, _) = run_hooked(
        &h,
        "comfyui-image",
        json!({"prompt": "x", "width": 256, "height": 256, "steps": 2}),
        token,
        move |e| {
            if let Event::Progress { message: Some(m), .. } = e
                && m.starts_with("running")
                && m.contains("SaveImage")
            {
                t.cancel();
            }
        },
    )
    .await;
    assert!(matches!(r, Err(RunError::Invoke(InvokeError::Cancelled))), "{r:?}");
    assert_eq!(sim.queue_remaining(), 0, "the skill returned while the server still held its job");
    let history = http_json(addr, "/history").await;
    let (_, entry) = history.as_object().unwrap().iter().next().expect("the job is in history");
    assert_eq!(entry["status"]["status_str"], "success", "too late to interrupt: SaveImage ran to its end");
    assert!(h.output_files().is_empty(), "nothing was downloaded after the cancel");
}

#[tokio::test]
async fn cancelling_a_queued_job_deletes_it_from_the_queue() {
    let (sim, addr) = start(slow()).await;
    let other = blocker(addr, 400).await;
    let h = harness(&one(addr), &[]).await;
    let token = CancellationToken::new();
    let t = token.clone();
    let (r, rec) = run_hooked(
        &h,
        "comfyui-image",
        json!({"prompt": "x", "width": 256, "height": 256, "steps": 2}),
        token,
        move |e| {
            if let Event::Progress { stage, message: Some(m), .. } = e
                && stage == "queued"
                && m.contains("1 job(s) ahead")
            {
                t.cancel();
            }
        },
    )
    .await;
    assert!(matches!(r, Err(RunError::Invoke(InvokeError::Cancelled))), "{r:?}");
    assert!(reports(&rec.rec.events()).iter().any(|r| r.0 == "queued"), "queue position was reported");
    // Only the other client's job is left, and ours never runs.
    let q = http_json(addr, "/queue").await;
    assert_eq!(q["queue_pending"], json!([]), "{q}");
    assert_eq!(q["queue_running"][0][1], other.as_str());
    drain(addr).await;
    // One worker, one job at a time: once nothing is queued or running,
    // a job of ours that was not deleted would have run and be in history.
    wait_until("the blocker stopped", || sim.queue_remaining() == 0).await;
    assert_eq!(sim.history_len(), 1, "a deleted job never reaches history");
}

#[tokio::test]
async fn a_server_restart_mid_job_is_reported_as_a_forgotten_job() {
    // Newer servers answer /api/jobs/{id} with 404; older ones only show an
    // empty queue and an empty history: both must read as "forgotten".
    for jobs_api in [true, false] {
        let (sim, addr) = start(slow().with_jobs_api(jobs_api)).await;
        let h = harness(&one(addr), &[]).await;
        let s = sim.clone();
        let fired = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let (r, _) = run_hooked(
            &h,
            "comfyui-image",
            json!({"prompt": "x", "width": 256, "height": 256, "steps": 100}),
            CancellationToken::new(),
            move |e| {
                if is_step(e) && !fired.swap(true, Ordering::SeqCst) {
                    s.restart();
                }
            },
        )
        .await;
        let (_, _, m) = backend_error(r);
        assert!(m.contains("forgot job") && m.contains("restarted"), "jobs_api={jobs_api}: {m}");
        assert!(started.elapsed() < Duration::from_secs(8), "noticed promptly, no hang");
        assert!(h.output_files().is_empty(), "no false success");
    }
}

#[tokio::test]
async fn a_download_cut_mid_stream_is_an_error_and_leaves_no_file() {
    let (sim, addr) = start(fast()).await;
    sim.inject(Fault::DropView(Some(100)));
    let h = harness(&one(addr), &[]).await;
    let (r, _) = h.run("comfyui-image", json!({"prompt": "x", "width": 256, "height": 256, "steps": 2})).await;
    let (_, _, m) = backend_error(r);
    assert!(m.contains(".png"), "names the file: {m}");
    assert!(h.output_files().is_empty(), "no truncated file: {:?}", h.output_files());
}

#[tokio::test]
async fn a_job_outliving_the_invocation_times_out_cleanly_and_is_interrupted() {
    let (sim, addr) = start(ComfyConfig::default().with_delays(Duration::from_millis(50), Duration::ZERO)).await;
    let limits = "[skills.comfyui-image.limits]\ntimeout-secs = 4\n";
    let h = harness(&config(&[("comfyui", format!("http://{addr}"))], limits, ""), &[]).await;
    let (r, _) = h.run("comfyui-image", json!({"prompt": "x", "width": 256, "height": 256, "steps": 100})).await;
    match r {
        Err(RunError::Invoke(InvokeError::Timeout { what })) => {
            assert!(what.contains("limits.timeout-secs") && what.contains("interrupted it"), "{what}")
        }
        other => panic!("expected the skill's own timeout before the host's deadline, got {other:?}"),
    }
    wait_until("the job was interrupted", || sim.queue_remaining() == 0).await;
    assert!(h.output_files().is_empty());
}

#[tokio::test]
async fn a_stalled_websocket_falls_back_to_polling() {
    for jobs_api in [true, false] {
        let cfg = ComfyConfig::default().with_delays(Duration::from_millis(20), Duration::ZERO).with_jobs_api(jobs_api);
        let (sim, addr) = start(cfg).await;
        sim.set_stall_ws(true);
        let h = harness(&one(addr), &[]).await;
        let started = Instant::now();
        let (r, events) =
            h.run("comfyui-image", json!({"prompt": "x", "width": 256, "height": 256, "steps": 60})).await;
        let r = r.expect("the job is followed by polling and succeeds");
        assert_identical(&sim, &r);
        assert!(started.elapsed() < Duration::from_secs(15));
        let reps = reports(&events.events());
        assert!(reps.iter().all(|r| r.2.is_none()), "no step events came over the silent socket");
        assert!(
            reps.iter().any(|r| r.3.as_deref().is_some_and(|m| m.contains("websocket silent"))),
            "jobs_api={jobs_api}: the stall is reported: {reps:?}"
        );
        assert!(reps.iter().any(|r| r.0 == "running"), "progress still reaches the user: {reps:?}");
    }
}

/// A quiet socket is not a broken one: a job that waits in the queue far
/// longer than `stall-secs` (0.5 s here) still streams its sampler steps.
/// Reconnecting on silence under the same client id would leave ComfyUI
/// (and the simulator, which pops ids as server.py does) with no socket to
/// send this job's events to.
#[tokio::test]
async fn a_job_that_waited_in_the_queue_still_streams_its_steps() {
    let (sim, addr) = start(slow()).await;
    let other = blocker(addr, 80).await; // 80 × 25 ms: four times stall-secs
    let h = harness(&one(addr), &[]).await;
    let (r, rec) = run_hooked(
        &h,
        "comfyui-image",
        json!({"prompt": "x", "width": 256, "height": 256, "steps": 6}),
        CancellationToken::new(),
        |_| {},
    )
    .await;
    let r = r.expect("the job runs after the other one");
    assert_identical(&sim, &r);
    let events = rec.rec.events();
    let reps = reports(&events);
    assert!(
        reps.iter().any(|r| r.0 == "queued" && r.3.as_deref().is_some_and(|m| m.contains("1 job(s) ahead"))),
        "it did wait behind the other job: {reps:?}"
    );
    let history = http_json(addr, &format!("/history/{other}")).await;
    assert!(history.get(&other).is_some(), "the other job ran first");
    let steps: Vec<_> = reps.iter().filter_map(|r| r.2).collect();
    assert!(steps.contains(&(6, 6)), "every sampler step arrived over the socket after the wait: {reps:?}");

    // What plain progress lines (logs, agents, `c41 run` off a terminal)
    // keep of these reports, with the CLI's one-line-a-second gate: the
    // queue position and the first node are milestones, never swallowed.
    let mut gate = c41::events::ProgressGate::new(c41::cli::progress::LINE_INTERVAL);
    let shown: Vec<&str> =
        reps.iter().filter(|r| gate.admit(&r.0, r.2, r.3.as_deref())).filter_map(|r| r.3.as_deref()).collect();
    assert!(shown.iter().any(|m| m.contains("1 job(s) ahead")), "{shown:?}");
    assert!(shown.iter().any(|m| m.starts_with("running node")), "{shown:?}");
}

// ---- several backends ------------------------------------------------------------

#[tokio::test]
async fn a_backend_that_is_down_is_skipped_and_all_down_is_a_clear_error() {
    let (sim, addr) = start(fast()).await;
    let dead = format!("http://127.0.0.1:{}", closed_port());
    let h = harness(&config(&[("comfyui-ws1", dead.clone()), ("comfyui-ws2", format!("http://{addr}"))], "", ""), &[])
        .await;
    let (r, _) = h.run("comfyui-image", json!({"prompt": "x", "width": 256, "height": 256, "steps": 2})).await;
    let r = r.expect("falls back to the backend that is up");
    assert_eq!(r.data["backend"], "comfyui-ws2");
    assert_identical(&sim, &r);

    let dead2 = format!("http://127.0.0.1:{}", closed_port());
    let h = harness(&config(&[("comfyui-ws1", dead.clone()), ("comfyui-ws2", dead2.clone())], "", ""), &[]).await;
    let (r, _) = h.run("comfyui-image", json!({"prompt": "x"})).await;
    let (_, status, m) = backend_error(r);
    assert_eq!(status, None);
    assert!(m.contains("no ComfyUI backend is reachable") && m.contains(&dead) && m.contains(&dead2), "{m}");
}

/// The backend running the job stops (process gone: port closed, queue
/// lost). After `failover-secs` the job runs again on the other backend,
/// with the same seed, and the user is told once; no line per poll.
#[tokio::test]
async fn a_backend_that_dies_mid_job_hands_the_job_to_another_after_the_grace() {
    let (first, first_addr) = start(slow()).await;
    let (second, second_addr) = start(fast()).await;
    let h = harness(
        &config(
            &[("comfyui-a", format!("http://{first_addr}")), ("comfyui-b", format!("http://{second_addr}"))],
            "failover-secs = 1\n",
            "",
        ),
        &[],
    )
    .await;
    let s = first.clone();
    let fired = Arc::new(AtomicBool::new(false));
    let (r, rec) = run_hooked(
        &h,
        "comfyui-image",
        json!({"prompt": "a lighthouse", "width": 256, "height": 256, "steps": 40}),
        CancellationToken::new(),
        move |e| {
            if is_step(e) && !fired.swap(true, Ordering::SeqCst) {
                s.set_down(true);
                s.restart();
            }
        },
    )
    .await;
    let r = r.expect("the job is run again on the backend that is up");
    assert_eq!(r.data["backend"], "comfyui-b");
    assert_identical(&second, &r);
    let g = ran_graph(second_addr, r.data["prompt_id"].as_str().unwrap()).await;
    assert_eq!(g["7"]["inputs"]["noise_seed"], r.data["seed"], "the same seed: {g}");
    assert_eq!(g["4"]["inputs"]["text"], "a lighthouse");
    let reps = reports(&rec.rec.events());
    let said = |what: &str| reps.iter().filter(|r| r.3.as_deref().is_some_and(|m| m.contains(what))).count();
    assert_eq!(said("lost contact with comfyui-a"), 1, "the outage is said once: {reps:?}");
    assert_eq!(said("comfyui-a went away"), 1, "{reps:?}");
    assert_eq!(said("running again on comfyui-b"), 1, "{reps:?}");
    first.set_down(false);
}

/// Two calls dispatched at the same instant both see two idle backends and
/// pick the same one; the one that finds itself second in that queue moves
/// to the idle backend, so they run side by side.
#[tokio::test]
async fn simultaneous_dispatches_spread_over_idle_backends() {
    let (one_sim, one_addr) = start(slow()).await;
    let (two_sim, two_addr) = start(slow()).await;
    let h = harness(
        &config(&[("comfyui-a", format!("http://{one_addr}")), ("comfyui-b", format!("http://{two_addr}"))], "", ""),
        &[],
    )
    .await;
    let input = json!({"prompt": "x", "width": 256, "height": 256, "steps": 30});
    let (a, b) = tokio::join!(h.run("comfyui-image", input.clone()), h.run("comfyui-image", input));
    let (a, b) = (a.0.expect("first call"), b.0.expect("second call"));
    let mut used = [a.data["backend"].as_str().unwrap(), b.data["backend"].as_str().unwrap()];
    used.sort();
    assert_eq!(used, ["comfyui-a", "comfyui-b"], "one job on each backend");
    assert_eq!((one_sim.history_len(), two_sim.history_len()), (1, 1), "each backend ran one job, none ran twice");
}

#[tokio::test]
async fn the_busier_backend_is_avoided() {
    let (busy, busy_addr) = start(slow()).await;
    let (idle, idle_addr) = start(fast()).await;
    blocker(busy_addr, 400).await;
    blocker(busy_addr, 401).await;
    // The busy one is listed first: order alone would pick it.
    let h = harness(
        &config(&[("comfyui-a", format!("http://{busy_addr}")), ("comfyui-b", format!("http://{idle_addr}"))], "", ""),
        &[],
    )
    .await;
    let (r, _) = h.run("comfyui-image", json!({"prompt": "x", "width": 256, "height": 256, "steps": 2})).await;
    let r = r.expect("runs on the idle backend");
    assert_eq!(r.data["backend"], "comfyui-b");
    assert_identical(&idle, &r);
    assert_eq!(idle.history_len(), 1);
    let q = http_json(busy_addr, "/queue").await;
    let ids: Vec<&str> = q["queue_running"]
        .as_array()
        .unwrap()
        .iter()
        .chain(q["queue_pending"].as_array().unwrap())
        .map(|i| i[1].as_str().unwrap())
        .collect();
    assert!(!ids.contains(&r.data["prompt_id"].as_str().unwrap()), "nothing was sent to the busy backend");
    assert_eq!(busy.queue_remaining(), 2);
    drain(busy_addr).await;
}

#[tokio::test]
async fn a_backend_without_the_needed_model_is_skipped_even_when_idle() {
    let (bare, bare_addr) = start(fast().with_models("diffusion_models", &["sd15.safetensors"])).await;
    let (full, full_addr) = start(slow()).await;
    blocker(full_addr, 40).await;
    let h = harness(
        &config(
            &[("comfyui-bare", format!("http://{bare_addr}")), ("comfyui-full", format!("http://{full_addr}"))],
            "",
            "",
        ),
        &[],
    )
    .await;
    let (r, _) = h.run("comfyui-image", json!({"prompt": "x", "width": 256, "height": 256, "steps": 2})).await;
    let r = r.expect("runs where the model is installed");
    assert_eq!(r.data["backend"], "comfyui-full");
    assert_identical(&full, &r);
    assert_eq!(bare.history_len() + bare.queue_remaining(), 0);
}

/// Loads the config file `text` as if it lived in `dir` (so `-file` paths
/// resolve there), with its own state dir, and runs comfyui-image on `input`.
async fn run_from_config(text: &str, dir: &std::path::Path, state: &str, input: Value) -> Result<Invoked, RunError> {
    let loaded = c41::config::parse(text, &dir.join("c41.toml")).expect("the config with workflow files loads");
    let options = c41::runtime::RuntimeOptions { cache_dir: Some(cache_dir()), pooling: None };
    let app = c41::app::App::with_state_root(loaded, options, &[], Some(dir.join(state))).await.unwrap();
    app.invoke("comfyui-image", input, Arc::new(Recorder::default()), CancellationToken::new()).await
}

#[tokio::test]
async fn exported_workflow_files_named_in_the_config_are_read_by_the_host() {
    // A user adds an exported API workflow without pasting it into the
    // config and without recompiling: the host reads `graph-file` and
    // `bindings-file` (the skill cannot read files) and hands their content
    // to the skill as settings.
    let (sim, addr) = start(fast()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("workflows")).unwrap();
    std::fs::write(
        dir.path().join("workflows/tiny_api.json"),
        r#"{"1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
            "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "tiny"}}}"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("workflows/tiny.bindings.json"),
        r#"{"width": [{"node": "1", "input": "width"}], "height": [{"node": "1", "input": "height"}]}"#,
    )
    .unwrap();
    let settings = "[skills.comfyui-image.settings.workflows.tiny]\ngraph-file = \"workflows/tiny_api.json\"\nbindings-file = \"workflows/tiny.bindings.json\"\n";
    let text = config(&[("comfyui", format!("http://{addr}"))], settings, "")
        .replace("{out}", &dir.path().join("out").display().to_string());
    let r = run_from_config(
        &text,
        dir.path(),
        "state",
        json!({"prompt": "unused", "workflow": "tiny", "width": 320, "height": 256}),
    )
    .await
    .expect("the workflow from files runs");
    assert_eq!(r.data["workflow"], "tiny");
    assert_identical(&sim, &r);
    let png = std::fs::read(&r.artifacts[0].path).unwrap();
    let (w, h) =
        (u32::from_be_bytes(png[16..20].try_into().unwrap()), u32::from_be_bytes(png[20..24].try_into().unwrap()));
    assert_eq!((w, h), (320, 256), "the bindings from the file were applied");

    let missing = text.replace("tiny_api.json", "nope.json");
    let err = c41::config::parse(&missing, &dir.path().join("c41.toml")).unwrap_err().to_string();
    assert!(err.contains("workflows.tiny.graph-file") && err.contains("nope.json"), "{err}");

    // A whole sidecar in the documented format works as `bindings-file` too:
    // its `required` and `outputs` apply.
    std::fs::write(
        dir.path().join("workflows/tiny.bindings.json"),
        r#"{"description": "tiny", "required": ["width"], "outputs": ["2"],
            "bindings": {"width": [{"node": "1", "input": "width"}], "height": [{"node": "1", "input": "height"}]}}"#,
    )
    .unwrap();
    let r = run_from_config(
        &text,
        dir.path(),
        "state2",
        json!({"prompt": "unused", "workflow": "tiny", "width": 272, "height": 256}),
    )
    .await
    .expect("the workflow with a whole sidecar as bindings-file runs");
    assert_eq!((r.data["params"]["width"].as_u64(), r.data["params"]["height"].as_u64()), (Some(272), Some(256)));

    // Anything else is refused with the expected formats named.
    std::fs::write(dir.path().join("workflows/tiny.bindings.json"), r#"{"width": "node 1"}"#).unwrap();
    let e = run_from_config(&text, dir.path(), "state3", json!({"prompt": "unused", "workflow": "tiny"}))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("workflows.tiny") && e.contains("bindings-file") && e.contains("whole sidecar"), "{e}");
}

// ---- resuming after the host dies --------------------------------------------

/// `c41 run` is killed while its image job runs on ComfyUI; `c41 runs` shows
/// the run as interrupted, and `c41 resume` follows the job already on the
/// server to its end (nothing is generated twice) and stores its image.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_is_resumed_without_generating_again() {
    use std::io::BufRead;
    let (sim, addr) = start(ComfyConfig::default().with_delays(Duration::from_millis(150), Duration::ZERO)).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c41.toml");
    std::fs::write(&cfg, one(addr).replace("{out}", &dir.path().join("out").display().to_string())).unwrap();
    let c41 = |args: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_c41"));
        cmd.args(args)
            .env("C41_CONFIG", &cfg)
            .env("C41_CACHE_DIR", cache_dir())
            .env("C41_STATE_DIR", dir.path().join("state"))
            .env_remove("RUST_LOG");
        cmd
    };

    let mut child = c41(&["run", "comfyui-image", "prompt=a lighthouse at dusk", "width=256", "height=256"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let seen = tokio::task::spawn_blocking(move || {
        // Sampler steps mean the job is on the server and the run recorded it.
        let mut lines = std::io::BufReader::new(stderr).lines();
        lines.by_ref().map_while(Result::ok).find(|l| l.contains("sampling")).map(|l| (l, lines))
    })
    .await
    .unwrap();
    let (_line, rest) = seen.expect("the job started sampling");
    child.kill().unwrap();
    child.wait().unwrap();
    drop(rest);
    assert_eq!(sim.history_len(), 0, "killed before the job ended");
    assert_eq!(sim.queue_remaining(), 1, "the job goes on on the server");

    let runs = |args: &[&str]| -> Value {
        let out = c41(args).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let listed = runs(&["runs", "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let run = &listed[0];
    assert_eq!((run["skill"].as_str(), run["status"].as_str()), (Some("comfyui-image"), Some("interrupted")), "{run}");
    let id = run["id"].as_str().unwrap().to_string();

    let resumed = runs(&["resume", &id[..8], "--json"]);
    assert_eq!(resumed["ok"], true, "{resumed}");
    assert_eq!(resumed["invocation_id"], id, "the same invocation");
    assert_eq!(resumed["artifacts"].as_array().unwrap().len(), 1);
    let png = std::fs::read(resumed["artifacts"][0]["path"].as_str().unwrap()).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    assert_eq!((sim.history_len(), sim.queue_remaining()), (1, 0), "one job in all: followed, not submitted again");
    let outputs: Vec<_> = sim.files().into_iter().filter(|f| f.kind == "output").collect();
    assert_eq!(outputs.len(), 1, "{outputs:?}");
    assert_eq!(
        sim.file("output", &outputs[0].subfolder, &outputs[0].filename).unwrap().to_vec(),
        png,
        "the job's own image"
    );

    let listed = runs(&["runs", "--json"]);
    assert_eq!((listed[0]["status"].as_str(), listed[0]["resumed"].as_u64()), (Some("ok"), Some(1)), "{listed}");
    let again = c41(&["resume", &id]).output().unwrap();
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already finished"));
    assert_eq!(
        String::from_utf8_lossy(&again.stdout).trim(),
        format!("MEDIA:{}", resumed["artifacts"][0]["path"].as_str().unwrap())
    );
}
