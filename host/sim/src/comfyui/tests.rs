//! The simulator against recorded real-server transcripts, over real HTTP and
//! websockets on 127.0.0.1, plus the behaviours clients depend on.

use super::compare::{Rules, assert_same_shape};
use super::{ComfyConfig, ComfySim, Fault};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn data(name: &str) -> Value {
    let path = format!("{}/src/comfyui/testdata/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    // err_* transcripts carry a trailing "HTTP 400" line.
    let json_part = text.split("\nHTTP ").next().unwrap_or(&text);
    serde_json::from_str(json_part).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The one entry of a recorded `/history/{id}` answer.
fn entry(v: &Value) -> Value {
    v.as_object().and_then(|o| o.values().next()).cloned().expect("one history entry")
}

/// A server as the recordings saw it: 0.3.64, the transcript's installed files.
fn legacy() -> ComfyConfig {
    ComfyConfig::default()
        .with_jobs_api(false)
        .with_models(
            "diffusion_models",
            &[
                "humo_17B_fp8_e4m3fn.safetensors",
                "wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors",
                "wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors",
                "wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors",
                "wan2.2_t2v_low_noise_14B_fp8_scaled.safetensors",
            ],
        )
        .with_models("text_encoders", &["umt5_xxl_fp8_e4m3fn_scaled.safetensors"])
        .with_models("vae", &["wan_2.1_vae.safetensors"])
        .with_models("audio_encoders", &["whisper_large_v3_fp16.safetensors"])
        .with_models("mmaudio", &[])
}

struct Sim {
    sim: ComfySim,
    base: String,
    http: reqwest::Client,
}

async fn start(cfg: ComfyConfig) -> Sim {
    let sim = ComfySim::new(cfg);
    let addr = sim.start("127.0.0.1:0").await.unwrap();
    Sim { sim, base: format!("http://{addr}"), http: reqwest::Client::new() }
}

impl Sim {
    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.http.get(format!("{}{path}", self.base)).send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self.http.post(format!("{}{path}", self.base)).json(&body).send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn submit(&self, prompt: Value, client_id: &str) -> (u16, Value) {
        let id = uuid::Uuid::new_v4().to_string();
        self.post("/prompt", json!({"prompt": prompt, "client_id": client_id, "prompt_id": id})).await
    }

    async fn ws(&self, client_id: &str) -> Ws {
        let url = format!("{}/ws?clientId={client_id}", self.base.replace("http://", "ws://"));
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        ws
    }

    /// Waits until `id` is the running job, as `/queue` shows it.
    async fn until_running(&self, id: &str) {
        for _ in 0..500 {
            let (_, q) = self.get("/queue").await;
            if q["queue_running"][0][1] == id {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("job {id} never started running");
    }

    async fn history(&self, id: &str) -> Value {
        for _ in 0..600 {
            let (_, h) = self.get(&format!("/history/{id}")).await;
            if h.get(id).is_some() {
                return h[id].clone();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("job {id} never reached history");
    }

    async fn upload(&self, name: &str, bytes: Vec<u8>, subfolder: &str) -> Value {
        let form = reqwest::multipart::Form::new()
            .part("image", reqwest::multipart::Part::bytes(bytes).file_name(name.to_string()))
            .text("subfolder", subfolder.to_string())
            .text("type", "input");
        let r = self.http.post(format!("{}/upload/image", self.base)).multipart(form).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    async fn view(&self, file: &Value) -> Vec<u8> {
        let r = self
            .http
            .get(format!("{}/view", self.base))
            .query(&[
                ("filename", file["filename"].as_str().unwrap()),
                ("subfolder", file["subfolder"].as_str().unwrap()),
                ("type", file["type"].as_str().unwrap()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap().to_vec()
    }
}

/// One websocket message: JSON events as themselves, binary frames as
/// `{"binary_event": type, "format": format}` (as the recordings note them).
async fn next_event(ws: &mut Ws) -> Option<Value> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(20), ws.next()).await.ok()??.ok()?;
        match msg {
            Message::Text(t) => return serde_json::from_str(&t).ok(),
            Message::Binary(b) => {
                let t = u32::from_be_bytes(b[..4].try_into().unwrap());
                let f = u32::from_be_bytes(b[4..8].try_into().unwrap());
                return Some(json!({"binary_event": t, "format": f, "len": b.len() - 4}));
            }
            Message::Close(_) => return None,
            _ => {}
        }
    }
}

/// Events up to and including `executing {node: null}` for `prompt_id`.
async fn events_until_done(ws: &mut Ws, prompt_id: &str) -> Vec<Value> {
    let mut out = Vec::new();
    while let Some(ev) = next_event(ws).await {
        let done = ev["type"] == "executing" && ev["data"]["node"].is_null() && ev["data"]["prompt_id"] == prompt_id;
        out.push(ev);
        if done {
            return out;
        }
    }
    panic!("socket ended before {prompt_id} finished; got {out:#?}");
}

fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e.get("binary_event") {
            Some(b) => format!("binary:{b}"),
            None => e["type"].as_str().unwrap_or("?").to_string(),
        })
        .collect()
}

/// Runs `workflow` with a socket open and checks both the socket's event
/// sequence and the history entry against the recordings.
async fn replay(s: &Sim, workflow: Value, ws_name: &str, history_name: &str, rules: &Rules) -> Value {
    let client = uuid::Uuid::new_v4().simple().to_string();
    let mut ws = s.ws(&client).await;
    let hello = next_event(&mut ws).await.unwrap();
    let (status, resp) = s.submit(workflow, &client).await;
    assert_eq!(status, 200, "{resp}");
    let id = resp["prompt_id"].as_str().unwrap().to_string();
    let mut events = vec![hello];
    events.extend(events_until_done(&mut ws, &id).await);
    let recorded: Vec<Value> = data(ws_name).as_array().unwrap().clone();
    assert_eq!(kinds(&recorded), kinds(&events), "{ws_name}: event sequence");
    for (i, (r, e)) in recorded.iter().zip(&events).enumerate() {
        if r.get("binary_event").is_some() {
            let head = r["head"].as_str().unwrap();
            assert_eq!(e["format"], u32::from_str_radix(&head[..8], 16).unwrap(), "{ws_name}: preview format");
            continue;
        }
        assert_same_shape(&format!("{ws_name} event {i} ({})", r["type"]), r, e, rules);
    }
    let h = s.history(&id).await;
    assert_same_shape(history_name, &entry(&data(history_name)), &h, rules);
    h
}

/// History and event data whose keys are node ids depend on which of several
/// ready output nodes ran first, which the real server picks by set order.
fn multi_output_rules() -> Rules {
    Rules::standard()
        .opaque(&["nodes", "meta", "outputs", "output"])
        .loose(&["node", "display_node", "executed"])
        .skip("/prompt/4")
}

#[tokio::test]
async fn replay_image_post_history_and_view() {
    let s = start(legacy()).await;
    let (status, resp) = s.post("/prompt", json!({"prompt": data("image"), "client_id": "curl-test"})).await;
    assert_eq!(status, 200);
    assert_same_shape("post_prompt_image", &data("t_post_prompt_image"), &resp, &Rules::standard());
    let id = resp["prompt_id"].as_str().unwrap();
    let h = s.history(id).await;
    assert_same_shape("history_image", &entry(&data("t_history_image")), &h, &Rules::standard());
    let file = &h["outputs"]["2"]["images"][0];
    let png = s.view(file).await;
    let r = png::Decoder::new(std::io::Cursor::new(png)).read_info().unwrap();
    assert_eq!((r.info().width, r.info().height), (64, 64));
}

#[tokio::test]
async fn replay_image2_then_cached_image2b() {
    let s = start(legacy()).await;
    let first = replay(&s, data("image2"), "t_image2_ws", "t_image2_history", &Rules::standard()).await;
    let files_before = s.sim.files().len();
    let again = replay(&s, data("image2"), "t_image2b_ws", "t_image2b_history", &Rules::standard()).await;
    assert_eq!(first["outputs"], again["outputs"], "a cached run replays the old output");
    assert_eq!(s.sim.files().len(), files_before, "a cached run writes no new file");
}

#[tokio::test]
async fn replay_wsimage_sends_png_frame() {
    let s = start(legacy()).await;
    replay(&s, data("wsimage"), "t_wsimage_ws", "t_wsimage_history", &Rules::standard()).await;
}

#[tokio::test]
async fn replay_video_outputs_are_real_media() {
    let s = start(legacy()).await;
    let h = replay(&s, data("video"), "t_video_ws", "t_video_history", &multi_output_rules()).await;
    let mp4 = s.view(&h["outputs"]["5"]["images"][0]).await;
    let len = mp4.len() as u64;
    let r = mp4::Mp4Reader::read_header(std::io::Cursor::new(mp4.clone()), len).unwrap();
    let t = r.tracks().values().next().unwrap();
    assert_eq!(t.media_type().unwrap(), mp4::MediaType::H264);
    assert_eq!((t.sample_count(), t.width(), t.height()), (8, 64, 64));
    assert!((t.frame_rate() - 8.0).abs() < 1e-6);
    let webm = s.view(&h["outputs"]["8"]["images"][0]).await;
    assert_eq!(&webm[..4], &[0x1a, 0x45, 0xdf, 0xa3]);
    let webp = s.view(&h["outputs"]["6"]["images"][0]).await;
    assert_eq!(&webp[8..12], b"WEBP");
    let apng = s.view(&h["outputs"]["7"]["images"][0]).await;
    let reader = png::Decoder::new(std::io::Cursor::new(apng)).read_info().unwrap();
    assert_eq!(reader.info().animation_control().unwrap().num_frames, 8);
    if let Some(p) = crate::media::tests::ffprobe(&mp4, "mp4") {
        assert_eq!(p["streams"][0]["nb_read_frames"], "8");
    }
    if let Some(p) = crate::media::tests::ffprobe(&webm, "webm") {
        assert_eq!(p["streams"][0]["codec_name"], "vp9");
    }
}

#[tokio::test]
async fn replay_audio_flac_mp3_and_video_with_sound() {
    let s = start(legacy()).await;
    let h = replay(&s, data("audio"), "t_audio_ws", "t_audio_history", &multi_output_rules()).await;
    let flac = s.view(&h["outputs"]["2"]["audio"][0]).await;
    let r = claxon::FlacReader::new(std::io::Cursor::new(flac)).unwrap();
    assert_eq!((r.streaminfo().sample_rate, r.streaminfo().channels, r.streaminfo().samples), (44100, 2, Some(44100)));
    let mp3 = s.view(&h["outputs"]["3"]["audio"][0]).await;
    let mp4 = s.view(&h["outputs"]["6"]["images"][0]).await;
    let len = mp4.len() as u64;
    let r = mp4::Mp4Reader::read_header(std::io::Cursor::new(mp4.clone()), len).unwrap();
    let audio = r.tracks().values().find(|t| t.track_type().ok() == Some(mp4::TrackType::Audio));
    assert_eq!(audio.unwrap().media_type().unwrap(), mp4::MediaType::AAC);
    if let Some(p) = crate::media::tests::ffprobe(&mp3, "mp3") {
        let d: f64 = p["format"]["duration"].as_str().unwrap().parse().unwrap();
        assert!((d - 1.0).abs() < 0.1, "mp3 lasts {d}s");
    }
    if let Some(p) = crate::media::tests::ffprobe(&mp4, "mp4") {
        let codecs: Vec<&str> =
            p["streams"].as_array().unwrap().iter().map(|s| s["codec_name"].as_str().unwrap()).collect();
        assert_eq!(codecs, ["h264", "aac"]);
    }
}

#[tokio::test]
async fn replay_runtime_error() {
    let s = start(legacy()).await;
    s.upload("bogus.mp4", b"this is not a video".to_vec(), "skills").await;
    let h = replay(&s, data("runtime_err"), "t_runtime_err_ws", "t_runtime_err_history", &Rules::standard()).await;
    let err = &h["status"]["messages"][2][1];
    assert!(err["exception_message"].as_str().unwrap().ends_with("/input/skills/bogus.mp4'\n"));
}

#[tokio::test]
async fn replay_validation_errors() {
    let s = start(legacy().with_models("vae", &[])).await;
    let missing = json!({
        "1": {"class_type": "VAELoader", "inputs": {"vae_name": "flux2-vae.safetensors"}},
        "2": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "3": {"class_type": "VAEDecode", "inputs": {"samples": ["2", 0], "vae": ["1", 0]}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "x"}},
    });
    let (status, body) = s.submit(missing, "c").await;
    assert_eq!(status, 400);
    assert_same_shape("err_missing_model", &data("t_err_missing_model"), &body, &Rules::standard());
    let invalid = json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 0, "height": 64, "batch_size": 1}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}},
    });
    let (status, body) = s.submit(invalid, "c").await;
    assert_eq!(status, 400);
    assert_same_shape("err_validation", &data("t_err_validation"), &body, &Rules::standard());
}

#[tokio::test]
async fn replay_system_stats_and_object_info() {
    let s = start(legacy()).await;
    s.upload("example.png", crate::media::png(2, 2, &[0; 12]).unwrap(), "").await;
    s.upload("ref.png", crate::media::png(2, 2, &[1; 12]).unwrap(), "").await;
    s.upload("ref.png", crate::media::png(2, 2, &[2; 12]).unwrap(), "").await;
    s.upload("speech.flac", b"fLaC".to_vec(), "").await;
    // The recorded server's input directory had two subfolders.
    s.upload("a.png", crate::media::png(2, 2, &[3; 12]).unwrap(), "3d").await;
    s.upload("b.png", crate::media::png(2, 2, &[4; 12]).unwrap(), "skills").await;
    let (_, stats) = s.get("/system_stats").await;
    assert_same_shape("system_stats", &data("t_system_stats"), &stats, &Rules::standard());
    let (_, info) = s.get("/object_info").await;
    let real_text = include_str!("object_info.json");
    let real: Value = serde_json::from_str(real_text).unwrap();
    let rules = Rules::standard().skip("/CLIPLoader/input/required/type/0");
    let mut sim_subset = serde_json::Map::new();
    for k in real.as_object().unwrap().keys() {
        sim_subset.insert(k.clone(), info[k].clone());
    }
    assert_same_shape("object_info", &real, &Value::Object(sim_subset), &rules);
    let extra: Vec<&String> = info.as_object().unwrap().keys().filter(|k| real.get(k.as_str()).is_none()).collect();
    assert_eq!(extra.len(), 6, "added schemas: {extra:?}");
    let (_, one) = s.get("/api/object_info/MMAudioSampler").await;
    assert_eq!(one["MMAudioSampler"]["output"], json!(["AUDIO"]));
}

#[tokio::test]
async fn model_workflows_run_with_installed_files() {
    let s = start(ComfyConfig::default()).await;
    let mut t2v = data("wan22_t2v_api");
    t2v["9"]["inputs"]["width"] = json!(64);
    t2v["9"]["inputs"]["height"] = json!(48);
    t2v["9"]["inputs"]["length"] = json!(9);
    t2v["13"]["inputs"]["fps"] = json!(16.0);
    let (status, resp) = s.submit(t2v.clone(), "c").await;
    assert_eq!(status, 200, "{resp}");
    let h = s.history(resp["prompt_id"].as_str().unwrap()).await;
    assert_eq!(h["status"]["status_str"], "success", "{h}");
    let mp4 = s.view(&h["outputs"]["14"]["images"][0]).await;
    let len = mp4.len() as u64;
    let r = mp4::Mp4Reader::read_header(std::io::Cursor::new(mp4), len).unwrap();
    let t = r.tracks().values().next().unwrap();
    assert_eq!((t.sample_count(), t.width(), t.height()), (9, 64, 48));
    assert!((t.frame_rate() - 16.0).abs() < 1e-6);

    // HuMo needs its uploads; without them LoadImage/LoadAudio fail validation.
    let mut humo = data("humo_api");
    humo["65"]["inputs"]["width"] = json!(32);
    humo["65"]["inputs"]["height"] = json!(32);
    humo["65"]["inputs"]["length"] = json!(5);
    let (status, body) = s.submit(humo.clone(), "c").await;
    assert_eq!(status, 400);
    assert_eq!(body["node_errors"]["49"]["errors"][0]["type"], "custom_validation_failed");
    let pcm = crate::media::Pcm { sample_rate: 16000, channels: 1, samples: crate::media::tone(16000, 1, 0.5, 1) };
    s.upload("speech.flac", crate::media::flac(&pcm).unwrap(), "").await;
    s.upload("ref.png", crate::media::png(8, 8, &[9; 192]).unwrap(), "").await;
    let (status, resp) = s.submit(humo, "c").await;
    assert_eq!(status, 200, "{resp}");
    let h = s.history(resp["prompt_id"].as_str().unwrap()).await;
    assert_eq!(h["status"]["status_str"], "success", "{h}");
    let mp4 = s.view(&h["outputs"]["59"]["images"][0]).await;
    if let Some(p) = crate::media::tests::ffprobe(&mp4, "mp4") {
        let codecs: Vec<&str> =
            p["streams"].as_array().unwrap().iter().map(|s| s["codec_name"].as_str().unwrap()).collect();
        assert_eq!(codecs, ["h264", "aac"]);
    }

    // A model that is not installed is value_not_in_list naming the allowed files.
    t2v["1"]["inputs"]["unet_name"] = json!("missing.safetensors");
    let (status, body) = s.submit(t2v, "c").await;
    assert_eq!(status, 400);
    let e = &body["node_errors"]["1"]["errors"][0];
    assert_eq!(e["type"], "value_not_in_list");
    assert!(e["details"].as_str().unwrap().contains("'wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors'"));
}

#[tokio::test]
async fn flux2_and_mmaudio_workflows() {
    let s = start(ComfyConfig::default()).await;
    let flux = json!({
        "1": {"class_type": "UNETLoader", "inputs": {"unet_name": "flux2_dev_fp8mixed.safetensors", "weight_dtype": "default"}},
        "2": {"class_type": "CLIPLoader", "inputs": {"clip_name": "mistral_3_small_flux2_fp8.safetensors", "type": "flux2"}},
        "3": {"class_type": "VAELoader", "inputs": {"vae_name": "flux2-vae.safetensors"}},
        "4": {"class_type": "CLIPTextEncode", "inputs": {"text": "a fox", "clip": ["2", 0]}},
        "5": {"class_type": "FluxGuidance", "inputs": {"conditioning": ["4", 0], "guidance": 4.0}},
        "6": {"class_type": "BasicGuider", "inputs": {"model": ["1", 0], "conditioning": ["5", 0]}},
        "7": {"class_type": "RandomNoise", "inputs": {"noise_seed": 7}},
        "8": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}},
        "9": {"class_type": "Flux2Scheduler", "inputs": {"steps": 4, "width": 48, "height": 32}},
        "10": {"class_type": "EmptyFlux2LatentImage", "inputs": {"width": 48, "height": 32, "batch_size": 2}},
        "11": {"class_type": "SamplerCustomAdvanced", "inputs": {"noise": ["7", 0], "guider": ["6", 0], "sampler": ["8", 0], "sigmas": ["9", 0], "latent_image": ["10", 0]}},
        "12": {"class_type": "VAEDecode", "inputs": {"samples": ["11", 0], "vae": ["3", 0]}},
        "13": {"class_type": "SaveImage", "inputs": {"images": ["12", 0], "filename_prefix": "flux/img"}},
    });
    let client = "flux-client";
    let mut ws = s.ws(client).await;
    let (status, resp) = s.submit(flux.clone(), client).await;
    assert_eq!(status, 200, "{resp}");
    let id = resp["prompt_id"].as_str().unwrap();
    let events = events_until_done(&mut ws, id).await;
    let progress: Vec<&Value> = events.iter().filter(|e| e["type"] == "progress").collect();
    assert_eq!(progress.len(), 4);
    assert_eq!(progress[3]["data"], json!({"value": 4, "max": 4, "prompt_id": id, "node": "11"}));
    assert_eq!(events.iter().filter(|e| e.get("binary_event").is_some()).count(), 4, "one preview per step");
    let h = s.history(id).await;
    let images = h["outputs"]["13"]["images"].as_array().unwrap();
    assert_eq!(images.len(), 2);
    let a = s.view(&images[0]).await;
    let r = png::Decoder::new(std::io::Cursor::new(a.clone())).read_info().unwrap();
    assert_eq!((r.info().width, r.info().height), (48, 32));

    // Another seed, other pixels.
    let mut other = flux;
    other["7"]["inputs"]["noise_seed"] = json!(8);
    let (_, resp) = s.submit(other, client).await;
    let h2 = s.history(resp["prompt_id"].as_str().unwrap()).await;
    let b = s.view(&h2["outputs"]["13"]["images"][0]).await;
    assert_ne!(a, b);

    let mm = json!({
        "1": {"class_type": "MMAudioModelLoader", "inputs": {"mmaudio_model": "mmaudio_large_44k_v2_fp16.safetensors", "base_precision": "fp16"}},
        "2": {"class_type": "MMAudioFeatureUtilsLoader", "inputs": {"vae_model": "mmaudio_vae_44k_fp16.safetensors", "synchformer_model": "mmaudio_synchformer_fp16.safetensors", "clip_model": "apple_DFN5B-CLIP-ViT-H-14-384_fp16.safetensors"}},
        "3": {"class_type": "MMAudioSampler", "inputs": {"mmaudio_model": ["1", 0], "feature_utils": ["2", 0], "duration": 2.5, "steps": 3, "cfg": 4.5, "seed": 1, "prompt": "rain", "negative_prompt": "", "mask_away_clip": false, "force_offload": true}},
        "4": {"class_type": "SaveAudio", "inputs": {"audio": ["3", 0], "filename_prefix": "audio/mm"}},
    });
    let (status, resp) = s.submit(mm, client).await;
    assert_eq!(status, 200, "{resp}");
    let h = s.history(resp["prompt_id"].as_str().unwrap()).await;
    let flac = s.view(&h["outputs"]["4"]["audio"][0]).await;
    let r = claxon::FlacReader::new(std::io::Cursor::new(flac)).unwrap();
    assert_eq!((r.streaminfo().sample_rate, r.streaminfo().samples), (44100, Some(110250)));
}

#[tokio::test]
async fn validation_error_shapes() {
    let s = start(ComfyConfig::default()).await;
    let (status, body) = s.submit(json!({"1": {"class_type": "NoSuchNode", "inputs": {}}}), "c").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "missing_node_type");
    let legacy_sim = start(legacy()).await;
    let (_, body) = legacy_sim.submit(json!({"1": {"class_type": "NoSuchNode", "inputs": {}}}), "c").await;
    assert_eq!(body["error"]["type"], "invalid_prompt");
    assert_eq!(body["error"]["message"], "Cannot execute because node NoSuchNode does not exist.");

    let (_, body) = s.submit(json!({"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}}}), "c").await;
    assert_eq!(body["error"]["type"], "prompt_no_outputs");

    let big = json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 99999, "height": 8, "batch_size": 1, "color": 0}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}},
        // Not connected to an output: never validated.
        "3": {"class_type": "EmptyImage", "inputs": {"width": -5}},
    });
    let (_, body) = s.submit(big, "c").await;
    let e = &body["node_errors"]["1"]["errors"][0];
    assert_eq!(e["type"], "value_bigger_than_max");
    assert_eq!(e["message"], "Value 99999 bigger than max of 16384");
    assert!(body["node_errors"].get("3").is_none());

    let dangling = json!({"2": {"class_type": "SaveImage", "inputs": {"images": ["9", 0], "filename_prefix": "x"}}});
    let (status, body) = s.submit(dangling, "c").await;
    assert_eq!(status, 400);
    assert_eq!(body["node_errors"]["2"]["errors"][0]["type"], "exception_during_validation");

    let r = s.http.post(format!("{}/prompt", s.base)).body("{not json").send().await.unwrap();
    assert_eq!(r.status(), 500);
    assert!(r.text().await.unwrap().starts_with("500 Internal Server Error"));

    let (status, body) = s.post("/prompt", json!({"prompt": data("image"), "prompt_id": "NOT-A-UUID"})).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "invalid_prompt_id");
    let (status, _) = legacy_sim.post("/prompt", json!({"prompt": data("image"), "prompt_id": "my-own-id"})).await;
    assert_eq!(status, 200, "0.3.64 accepts any id");
    let (status, body) = s.post("/prompt", json!({"client_id": "x"})).await;
    assert_eq!((status, body["error"]["type"].clone()), (400, json!("no_prompt")));
}

#[tokio::test]
async fn upload_renames_and_dedups() {
    let s = start(ComfyConfig::default()).await;
    let a = s.upload("ref.png", b"one".to_vec(), "").await;
    assert_eq!(a, json!({"name": "ref.png", "subfolder": "", "type": "input"}));
    let b = s.upload("ref.png", b"two".to_vec(), "").await;
    assert_eq!(b["name"], "ref (1).png");
    let c = s.upload("ref.png", b"two".to_vec(), "").await;
    assert_eq!(c["name"], "ref (1).png", "same content, same name");
    let d = s.upload("ref.png", b"one".to_vec(), "").await;
    assert_eq!(d["name"], "ref.png");
    let (_, info) = s.get("/object_info/LoadImage").await;
    assert_eq!(info["LoadImage"]["input"]["required"]["image"][0], json!(["ref (1).png", "ref.png"]));
}

#[tokio::test]
async fn view_ranges_and_path_rules() {
    let s = start(ComfyConfig::default()).await;
    s.sim.put_file("output", "sub", "f.png", (0u8..100).collect::<Vec<u8>>());
    let url = format!("{}/view?filename=f.png&subfolder=sub&type=output", s.base);
    let r = s.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let expected_headers =
        std::fs::read_to_string(format!("{}/src/comfyui/testdata/view_headers.txt", env!("CARGO_MANIFEST_DIR")))
            .unwrap();
    for line in expected_headers.lines().skip(1).filter(|l| !l.is_empty()) {
        let name = line.split(':').next().unwrap().to_ascii_lowercase();
        if name == "date" || name == "server" {
            continue;
        }
        assert!(r.headers().contains_key(name.as_str()), "missing header {name}");
    }
    assert_eq!(r.headers()["content-type"], "image/png");
    let r = s.http.get(&url).header("Range", "bytes=10-19").send().await.unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], "bytes 10-19/100");
    assert_eq!(r.bytes().await.unwrap().to_vec(), (10u8..20).collect::<Vec<u8>>());
    let r = s.http.get(&url).header("Range", "bytes=200-").send().await.unwrap();
    assert_eq!(r.status(), 416);
    let code = |q: &'static str| {
        let url = format!("{}/view?{q}", s.base);
        let http = s.http.clone();
        async move { http.get(url).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(code("filename=missing.png").await, 404);
    assert_eq!(code("filename=../etc/passwd").await, 400);
    assert_eq!(code("filename=f.png&subfolder=../../etc").await, 403);
    assert_eq!(code("filename=f.png&subfolder=sub/../sub").await, 200);

    s.sim.inject(Fault::DropView(Some(30)));
    let r = s.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.is_err(), "the body must break off");
    s.sim.inject(Fault::DropView(None));
    assert_eq!(s.http.get(&url).send().await.unwrap().bytes().await.unwrap().len(), 100);
}

fn slow(steps: u32) -> Value {
    json!({
        "1": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "2": {"class_type": "KSampler", "inputs": {"model": ["3", 0], "seed": 1, "steps": steps, "cfg": 1.0, "sampler_name": "euler",
              "scheduler": "simple", "positive": ["4", 0], "negative": ["4", 0], "latent_image": ["1", 0], "denoise": 1.0}},
        "3": {"class_type": "UNETLoader", "inputs": {"unet_name": "z_image_turbo_bf16.safetensors", "weight_dtype": "default"}},
        "4": {"class_type": "CLIPTextEncode", "inputs": {"text": format!("slow {steps}"), "clip": ["5", 0]}},
        "5": {"class_type": "CLIPLoader", "inputs": {"clip_name": "qwen_3_4b.safetensors", "type": "lumina2"}},
        "6": {"class_type": "VAEDecode", "inputs": {"samples": ["2", 0], "vae": ["7", 0]}},
        "7": {"class_type": "VAELoader", "inputs": {"vae_name": "ae.safetensors"}},
        "8": {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": "slow"}},
    })
}

fn slow_config() -> ComfyConfig {
    ComfyConfig::default().with_delays(Duration::from_millis(20), Duration::ZERO)
}

#[tokio::test]
async fn interrupt_mid_run_stops_at_next_step() {
    let s = start(slow_config()).await;
    let mut ws = s.ws("int").await;
    let (_, resp) = s.submit(slow(200), "int").await;
    let id = resp["prompt_id"].as_str().unwrap().to_string();
    loop {
        let e = next_event(&mut ws).await.unwrap();
        if e["type"] == "progress" && e["data"]["value"] == 3 {
            break;
        }
    }
    let (status, _) = s.post("/interrupt", json!({"prompt_id": id})).await;
    assert_eq!(status, 200);
    let events = events_until_done(&mut ws, &id).await;
    let ev = events.iter().find(|e| e["type"] == "execution_interrupted").expect("interrupted event");
    assert_eq!(ev["data"]["node_id"], "2");
    assert_eq!(ev["data"]["node_type"], "KSampler");
    let last_step = events
        .iter()
        .filter(|e| e["type"] == "progress")
        .filter_map(|e| e["data"]["value"].as_u64())
        .max()
        .unwrap_or(3);
    assert!(last_step < 10, "stopped promptly, at step {last_step}");
    let h = s.history(&id).await;
    assert_eq!(h["status"]["status_str"], "error");
    assert_eq!(h["status"]["completed"], false);
    assert_eq!(h["status"]["messages"][2][0], "execution_interrupted");
}

/// Plain nodes take 600 ms, sampler steps nothing: an interrupt can land
/// inside a node that does not check for it.
fn slow_nodes() -> ComfyConfig {
    ComfyConfig::default().with_delays(Duration::ZERO, Duration::from_millis(600))
}

/// Reads events until node `node` of `id` starts executing.
async fn until_executing(ws: &mut Ws, id: &str, node: &str) {
    while let Some(e) = next_event(ws).await {
        if e["type"] == "executing" && e["data"]["prompt_id"] == id && e["data"]["node"] == node {
            return;
        }
    }
    panic!("node {node} of {id} never started");
}

#[tokio::test]
async fn an_interrupt_inside_a_node_stops_the_job_at_the_start_of_the_next() {
    let s = start(slow_nodes()).await;
    let mut ws = s.ws("between").await;
    let (_, resp) = s.submit(slow(2), "between").await;
    let id = resp["prompt_id"].as_str().unwrap().to_string();
    // VAEDecode (6) does not look at the flag; SaveImage (8) starts by it.
    until_executing(&mut ws, &id, "6").await;
    s.post("/interrupt", json!({"prompt_id": id})).await;
    let events = events_until_done(&mut ws, &id).await;
    let ev = events.iter().find(|e| e["type"] == "execution_interrupted").expect("interrupted");
    assert_eq!((ev["data"]["node_id"].as_str(), ev["data"]["node_type"].as_str()), (Some("8"), Some("SaveImage")));
    assert!(ev["data"]["executed"].as_array().unwrap().contains(&json!("6")), "{ev}");
    assert!(!kinds(&events).contains(&"executed".to_string()), "SaveImage never ran: {:?}", kinds(&events));
}

#[tokio::test]
async fn an_interrupt_during_the_last_node_is_too_late_and_does_not_reach_the_next_job() {
    let s = start(slow_nodes()).await;
    let mut ws = s.ws("late").await;
    let (_, resp) = s.submit(slow(2), "late").await;
    let id = resp["prompt_id"].as_str().unwrap().to_string();
    until_executing(&mut ws, &id, "8").await;
    s.post("/interrupt", json!({"prompt_id": id})).await;
    let events = events_until_done(&mut ws, &id).await;
    assert!(kinds(&events).contains(&"execution_success".to_string()), "{:?}", kinds(&events));
    assert_eq!(s.history(&id).await["status"]["status_str"], "success");
    // The flag is still set; the next job clears it when it starts.
    let (_, resp) = s.submit(slow(3), "late").await;
    let next = resp["prompt_id"].as_str().unwrap().to_string();
    let events = events_until_done(&mut ws, &next).await;
    assert!(kinds(&events).contains(&"execution_success".to_string()), "{:?}", kinds(&events));
}

#[tokio::test]
async fn an_interrupt_naming_a_job_that_does_not_run_is_ignored() {
    let s = start(slow_config()).await;
    let mut ws = s.ws("other").await;
    let (_, a) = s.submit(slow(40), "other").await;
    let (_, b) = s.submit(slow(41), "other").await;
    let (a, b) = (a["prompt_id"].as_str().unwrap().to_string(), b["prompt_id"].as_str().unwrap().to_string());
    until_executing(&mut ws, &a, "2").await;
    // b waits in the queue: naming it interrupts nothing, now or later.
    s.post("/interrupt", json!({"prompt_id": b})).await;
    for id in [&a, &b] {
        let events = events_until_done(&mut ws, id).await;
        assert!(kinds(&events).contains(&"execution_success".to_string()), "{id}: {:?}", kinds(&events));
    }
}

#[tokio::test]
async fn queue_delete_and_history_empty_while_pending() {
    let s = start(slow_config()).await;
    let (_, first) = s.submit(slow(50), "q").await;
    let (_, second) = s.submit(slow(51), "q").await;
    let second_id = second["prompt_id"].as_str().unwrap();
    let (_, q) = s.get("/queue").await;
    assert_eq!(q["queue_pending"].as_array().unwrap().len() + q["queue_running"].as_array().unwrap().len(), 2);
    assert_eq!(q["queue_pending"][0].as_array().unwrap().len(), 5);
    let (_, p) = s.get("/prompt").await;
    assert_eq!(p["exec_info"]["queue_remaining"], 2);
    assert_eq!(s.get(&format!("/history/{second_id}")).await.1, json!({}));
    assert_eq!(s.get("/history/unknown").await.1, json!({}));
    let (status, _) = s.post("/queue", json!({"delete": [second_id]})).await;
    assert_eq!(status, 200);
    s.history(first["prompt_id"].as_str().unwrap()).await;
    // The queue drains (a job that was not deleted would keep it non-empty
    // for its 51 steps, then land in history).
    until("the queue is empty", || s.sim.queue_remaining() == 0).await;
    assert_eq!(s.get(&format!("/history/{second_id}")).await.1, json!({}), "a deleted job never reaches history");
    assert_eq!(s.sim.history_len(), 1);
}

#[tokio::test]
async fn restart_wipes_queue_history_and_running_job() {
    let s = start(slow_config()).await;
    let (_, done) = s.submit(slow(1), "r").await;
    let done_id = done["prompt_id"].as_str().unwrap().to_string();
    s.history(&done_id).await;
    let mut ws = s.ws("r").await;
    let (_, running) = s.submit(slow(300), "r").await;
    let running_id = running["prompt_id"].as_str().unwrap().to_string();
    loop {
        let e = next_event(&mut ws).await.unwrap();
        if e["type"] == "progress" {
            break;
        }
    }
    s.sim.restart();
    // The socket is closed by the "restart".
    while next_event(&mut ws).await.is_some() {}
    assert_eq!(s.get(&format!("/history/{done_id}")).await.1, json!({}));
    assert_eq!(s.get("/queue").await.1, json!({"queue_running": [], "queue_pending": []}));
    assert_eq!(s.get(&format!("/api/jobs/{running_id}")).await.0, 404);
    // The server keeps working afterwards. Its one worker runs jobs one at
    // a time, so once the next job is in history the vanished one's task has
    // ended: whatever it would have written is written by then.
    let (_, again) = s.submit(slow(2), "r").await;
    let again_id = again["prompt_id"].as_str().unwrap().to_string();
    let h = s.history(&again_id).await;
    assert_eq!(h["status"]["status_str"], "success");
    assert_eq!(s.get(&format!("/history/{running_id}")).await.1, json!({}), "the vanished job left no trace");
    let all = s.get("/history").await.1;
    assert_eq!(all.as_object().unwrap().keys().collect::<Vec<_>>(), vec![&again_id], "{all}");
}

#[tokio::test]
async fn jobs_api_on_and_off() {
    let s = start(slow_config()).await;
    let (_, a) = s.submit(slow(1), "j").await;
    let a_id = a["prompt_id"].as_str().unwrap();
    s.history(a_id).await;
    let (_, b) = s.submit(slow(300), "j").await;
    let b_id = b["prompt_id"].as_str().unwrap();
    let (_, c) = s.submit(slow(301), "j").await;
    let c_id = c["prompt_id"].as_str().unwrap();
    s.until_running(b_id).await;
    let (status, list) = s.get("/api/jobs?status=pending,in_progress").await;
    assert_eq!(status, 200);
    let statuses: Vec<(String, String)> = list["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| (j["id"].as_str().unwrap().to_string(), j["status"].as_str().unwrap().to_string()))
        .collect();
    assert!(statuses.contains(&(b_id.to_string(), "in_progress".into())), "{statuses:?}");
    assert!(statuses.contains(&(c_id.to_string(), "pending".into())));
    let (status, job) = s.get(&format!("/api/jobs/{a_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(job["status"], "completed");
    assert_eq!(job["outputs_count"], 1);
    assert_eq!(job["preview_output"]["mediaType"], "images");
    assert_eq!(s.get("/api/jobs/0b3c6ad5-0000-4000-8000-000000000000").await, (404, json!({"error": "Job not found"})));
    let (status, _) = s.post(&format!("/api/jobs/{c_id}/cancel"), json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(s.get(&format!("/api/jobs/{c_id}")).await.1["status"], "cancelled");
    let (status, _) = s.post(&format!("/api/jobs/{b_id}/cancel"), json!({})).await;
    assert_eq!(status, 200);
    let h = s.history(b_id).await;
    assert_eq!(h["status"]["status_str"], "error");
    assert_eq!(s.get(&format!("/api/jobs/{b_id}")).await.1["status"], "failed");

    let old = start(legacy()).await;
    assert_eq!(old.get("/api/jobs").await.0, 404);
    assert_eq!(old.get(&format!("/api/jobs/{a_id}")).await.0, 404);
    assert_eq!(old.post(&format!("/api/jobs/{a_id}/cancel"), json!({})).await.0, 404);
}

#[tokio::test]
async fn events_only_reach_the_submitting_client() {
    let s = start(ComfyConfig::default()).await;
    let mut mine = s.ws("mine").await;
    let mut other = s.ws("other").await;
    assert_eq!(next_event(&mut mine).await.unwrap()["data"]["sid"], "mine");
    assert_eq!(next_event(&mut other).await.unwrap()["data"]["sid"], "other");
    let (_, resp) = s.submit(data("image"), "mine").await;
    let id = resp["prompt_id"].as_str().unwrap();
    let events = events_until_done(&mut mine, id).await;
    assert!(events.iter().any(|e| e["type"] == "executed"));
    // The other socket sees only the broadcast queue status.
    let mut seen = Vec::new();
    while let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(300), next_event(&mut other)).await {
        seen.push(e["type"].as_str().unwrap_or("").to_string());
    }
    assert!(!seen.is_empty() && seen.iter().all(|t| t == "status"), "{seen:?}");
    let _ = other.send(Message::Close(None)).await;
}

/// server.py's `/ws` handler: a second socket under an id takes it over (the
/// first stays open but hears nothing), and closing the first afterwards
/// runs `self.sockets.pop(sid, None)`, which unregisters the second: from
/// then on the id's jobs send their events nowhere.
#[tokio::test]
async fn a_socket_replaced_under_the_same_id_and_then_closed_takes_the_new_one_with_it() {
    let s = start(ComfyConfig::default()).await;
    let mut first = s.ws("same").await;
    next_event(&mut first).await.unwrap();
    let mut second = s.ws("same").await;
    assert_eq!(next_event(&mut second).await.unwrap()["data"]["sid"], "same");

    // While both are open the newer one gets the job's events, the older none.
    let (_, resp) = s.submit(data("image"), "same").await;
    let id = resp["prompt_id"].as_str().unwrap().to_string();
    let events = events_until_done(&mut second, &id).await;
    assert!(events.iter().any(|e| e["type"] == "executed"), "{events:?}");
    let quiet = tokio::time::timeout(Duration::from_millis(300), next_event(&mut first)).await;
    assert!(quiet.is_err(), "the replaced socket stays open and silent: {quiet:?}");

    // Closing the old one unregisters the id, new socket and all.
    first.send(Message::Close(None)).await.unwrap();
    for _ in 0..500 {
        if !s.sim.ws_clients().contains(&"same".to_string()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!s.sim.ws_clients().contains(&"same".to_string()), "closing the old socket popped the id");
    let (_, resp) = s.submit(data("image2"), "same").await;
    let id = resp["prompt_id"].as_str().unwrap();
    s.history(id).await;
    let deaf = tokio::time::timeout(Duration::from_millis(300), next_event(&mut second)).await;
    assert!(deaf.is_err(), "the newer socket is open but deaf: {deaf:?}");
}

#[tokio::test]
async fn faults_5xx_burst_delay_stall_and_failing_node() {
    let s = start(ComfyConfig::default()).await;
    s.sim.fail_next(2, 503);
    assert_eq!(s.get("/system_stats").await.0, 503);
    assert_eq!(s.get("/queue").await.0, 503);
    assert_eq!(s.get("/queue").await.0, 200);

    s.sim.inject(Fault::Delay(Duration::from_millis(150)));
    let t = std::time::Instant::now();
    s.get("/prompt").await;
    assert!(t.elapsed() >= Duration::from_millis(150));
    s.sim.clear_faults();

    let mut ws = s.ws("stall").await;
    next_event(&mut ws).await.unwrap();
    s.sim.set_stall_ws(true);
    let (_, resp) = s.submit(data("image2"), "stall").await;
    let id = resp["prompt_id"].as_str().unwrap();
    s.history(id).await;
    let silent = tokio::time::timeout(Duration::from_millis(300), next_event(&mut ws)).await;
    assert!(silent.is_err(), "a stalled socket stays open and silent");
    assert!(s.sim.ws_clients().contains(&"stall".to_string()));
    s.sim.set_stall_ws(false);

    s.sim.inject(Fault::FailNode { class_type: "EmptyImage".into(), message: "broken".into() });
    let (_, resp) = s.submit(data("image3"), "stall").await;
    let h = s.history(resp["prompt_id"].as_str().unwrap()).await;
    let err = &h["status"]["messages"][2];
    assert_eq!(err[0], "execution_error");
    assert_eq!(err[1]["exception_message"], "broken");
    assert_eq!(err[1]["node_type"], "EmptyImage");
}

#[tokio::test]
async fn vhs_video_combine_reports_gifs() {
    let s = start(ComfyConfig::default()).await;
    let wf = json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 32, "height": 32, "batch_size": 4, "color": 255}},
        "2": {"class_type": "VHS_VideoCombine", "inputs": {"images": ["1", 0], "frame_rate": 8, "loop_count": 0,
              "filename_prefix": "vhs/clip", "format": "video/h264-mp4", "pingpong": false, "save_output": true}},
        "3": {"class_type": "VHS_VideoCombine", "inputs": {"images": ["1", 0], "frame_rate": 8, "loop_count": 0,
              "filename_prefix": "vhs/anim", "format": "image/gif", "pingpong": false, "save_output": true}},
    });
    let (status, resp) = s.submit(wf, "v").await;
    assert_eq!(status, 200, "{resp}");
    let h = s.history(resp["prompt_id"].as_str().unwrap()).await;
    let g = &h["outputs"]["2"]["gifs"][0];
    assert_eq!(g["filename"], "clip_00001.mp4");
    assert_eq!(g["format"], "video/h264-mp4");
    let mp4 = s.view(g).await;
    assert_eq!(&mp4[4..8], b"ftyp");
    let gif = s.view(&h["outputs"]["3"]["gifs"][0]).await;
    assert_eq!(&gif[..3], b"GIF");
}

#[tokio::test]
async fn wan_i2v_respects_video_size_limit() {
    let s = start(ComfyConfig { video_max_side: Some(64), ..Default::default() }).await;
    s.upload("ref.png", crate::media::png(4, 4, &[200; 48]).unwrap(), "").await;
    let mut wf = data("wan22_i2v_api");
    wf["16"]["inputs"]["length"] = json!(17);
    wf["16"]["inputs"]["height"] = json!(320);
    let (status, resp) = s.submit(wf, "c").await;
    assert_eq!(status, 200, "{resp}");
    let h = s.history(resp["prompt_id"].as_str().unwrap()).await;
    assert_eq!(h["status"]["status_str"], "success", "{h}");
    let mp4 = s.view(&h["outputs"]["14"]["images"][0]).await;
    let len = mp4.len() as u64;
    let r = mp4::Mp4Reader::read_header(std::io::Cursor::new(mp4), len).unwrap();
    let t = r.tracks().values().next().unwrap();
    assert_eq!((t.sample_count(), t.width(), t.height()), (17, 64, 32));
}

/// Waits for `cond`, polling; fails the test after 10 s.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

/// The training template every LoRA test starts from, dataset in `folder`.
fn lora_training(folder: &str, steps: u32) -> Value {
    let text = include_str!("../../../../skills/workflows/z_image_lora_train.json");
    let mut wf: Value = serde_json::from_str(text).unwrap();
    wf["20"]["inputs"]["folder"] = json!(folder);
    wf["20"]["inputs"]["width"] = json!(64);
    wf["20"]["inputs"]["height"] = json!(64);
    wf["22"]["inputs"]["steps"] = json!(steps);
    wf["23"]["inputs"]["prefix"] = json!("loras/c41/fox-t1");
    wf
}

/// The header of a `.safetensors` file: its length prefix, and the JSON.
fn safetensors_header(bytes: &[u8]) -> Value {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    assert!(n.is_multiple_of(8), "the header is padded to 8 bytes");
    serde_json::from_slice(&bytes[8..8 + n]).unwrap()
}

#[tokio::test]
async fn lora_training_reads_a_captioned_folder_and_saves_a_safetensors_file_it_does_not_report() {
    let s = start(ComfyConfig::default()).await;
    for i in 0..4 {
        s.upload(&format!("img{i}.png"), crate::media::png(16, 16, &[40 * i as u8; 768]).unwrap(), "c41-lora/t1").await;
        s.upload(&format!("img{i}.txt"), format!("photo of fx{i} fox").into_bytes(), "c41-lora/t1").await;
    }
    // The dataset folder is a choice of the loaders, parents included.
    let (_, info) = s.get("/object_info/LoadImageTextSetFromFolderNode").await;
    assert_eq!(
        info["LoadImageTextSetFromFolderNode"]["input"]["required"]["folder"][0],
        json!(["c41-lora", "c41-lora/t1"])
    );

    let mut ws = s.ws("trainer").await;
    let (status, resp) = s.submit(lora_training("c41-lora/t1", 6), "trainer").await;
    assert_eq!(status, 200, "{resp}");
    let id = resp["prompt_id"].as_str().unwrap();
    let events = events_until_done(&mut ws, id).await;
    assert!(
        !events.iter().any(|e| e["type"] == "progress" && e["data"]["node"] == "22"),
        "0.3.64's trainer reports no progress: {events:?}"
    );
    let h = s.history(id).await;
    assert_eq!(h["status"]["status_str"], "success", "{h}");
    // SaveLoRANode reports nothing; the loss graph is a temp image.
    assert!(h["outputs"].get("23").is_none(), "{h}");
    let graph = &h["outputs"]["24"]["images"][0];
    assert_eq!(graph["type"], "temp", "{h}");
    assert!(graph["filename"].as_str().unwrap().starts_with("loss_graph_"), "{graph}");
    let png = s.view(graph).await;
    assert!(png.starts_with(b"\x89PNG"));

    // The file's name follows from the prefix and the steps.
    let name = "fox-t1_6_steps_00001_.safetensors";
    let lora = s.view(&json!({"filename": name, "subfolder": "loras/c41", "type": "output"})).await;
    let header = safetensors_header(&lora);
    let tensors = header.as_object().unwrap();
    assert_eq!(tensors.len(), 4, "{header}");
    let data_len = lora.len() - 8 - u64::from_le_bytes(lora[..8].try_into().unwrap()) as usize;
    for t in tensors.values() {
        assert_eq!(t["dtype"], "BF16");
        let [a, b] = [t["data_offsets"][0].as_u64().unwrap(), t["data_offsets"][1].as_u64().unwrap()];
        let shape: u64 = t["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap()).product();
        assert_eq!(b - a, shape * 2);
        assert!(b as usize <= data_len);
    }
    assert!(tensors.values().any(|t| t["shape"].as_array().unwrap().contains(&json!(16))), "rank 16: {header}");
    // LoRA loaders see it (output/loras is a LoRA path of the studio's server).
    let (_, info) = s.get("/object_info/LoraLoaderModelOnly").await;
    let loras = &info["LoraLoaderModelOnly"]["input"]["required"]["lora_name"][0];
    assert_eq!(*loras, json!([format!("c41/{name}")]), "{info}");

    // The same prefix again (another seed: the same graph would be cached
    // whole) continues the counter from the steps' digits.
    let mut other = lora_training("c41-lora/t1", 6);
    other["22"]["inputs"]["seed"] = json!(1);
    let (_, again) = s.submit(other, "trainer").await;
    s.history(again["prompt_id"].as_str().unwrap()).await;
    let (status, _) = s.get("/view?filename=fox-t1_6_steps_00007_.safetensors&subfolder=loras/c41&type=output").await;
    assert_eq!(status, 200, "counter 6 + 1");
}

#[tokio::test]
async fn an_uncaptioned_image_or_an_empty_folder_fails_the_training_as_on_the_real_server() {
    let s = start(ComfyConfig::default()).await;
    for i in 0..4 {
        s.upload(&format!("img{i}.png"), crate::media::png(8, 8, &[i as u8; 192]).unwrap(), "set").await;
        if i != 2 {
            s.upload(&format!("img{i}.txt"), b"fx fox".to_vec(), "set").await;
        }
    }
    s.upload("notes.txt", b"no images here".to_vec(), "empty").await;
    let (_, resp) = s.submit(lora_training("set", 2), "c").await;
    let h = s.history(resp["prompt_id"].as_str().unwrap()).await;
    assert_eq!(h["status"]["status_str"], "error", "{h}");
    let error = h["status"]["messages"].as_array().unwrap().iter().find(|m| m[0] == "execution_error").unwrap();
    assert_eq!(error[1]["exception_type"], "ValueError", "{error}");
    assert_eq!(
        error[1]["exception_message"], "Number of positive conditions (5) does not match number of images (4).",
        "the empty caption counts twice"
    );
    let (_, resp) = s.submit(lora_training("empty", 2), "c").await;
    let h = s.history(resp["prompt_id"].as_str().unwrap()).await;
    let error = h["status"]["messages"].as_array().unwrap().iter().find(|m| m[0] == "execution_error").unwrap();
    assert_eq!(error[1]["exception_message"], "No valid images found in input", "{error}");
    // A folder that does not exist is a validation error naming the choices.
    let (status, body) = s.submit(lora_training("nope", 2), "c").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["node_errors"]["20"]["errors"][0]["type"], "value_not_in_list", "{body}");
}

#[tokio::test]
async fn an_interrupt_stops_a_training_between_steps() {
    let s = start(ComfyConfig::default().with_delays(Duration::from_millis(20), Duration::ZERO)).await;
    for i in 0..4 {
        s.upload(&format!("img{i}.png"), crate::media::png(8, 8, &[i as u8; 192]).unwrap(), "slow").await;
        s.upload(&format!("img{i}.txt"), b"fx fox".to_vec(), "slow").await;
    }
    let (_, resp) = s.submit(lora_training("slow", 10_000), "c").await;
    let id = resp["prompt_id"].as_str().unwrap();
    s.until_running(id).await;
    let started = std::time::Instant::now();
    let (status, _) = s.post("/interrupt", json!({})).await;
    assert_eq!(status, 200);
    let h = s.history(id).await;
    assert!(started.elapsed() < Duration::from_secs(20), "10000 steps of 20 ms were not all taken");
    assert_eq!(h["status"]["status_str"], "error", "{h}");
    assert!(h["status"]["messages"].as_array().unwrap().iter().any(|m| m[0] == "execution_interrupted"), "{h}");
    let (status, _) =
        s.get("/view?filename=fox-t1_10000_steps_00001_.safetensors&subfolder=loras/c41&type=output").await;
    assert_eq!(status, 404, "nothing saved");
}

#[tokio::test]
async fn a_server_whose_trainer_reports_progress_sends_each_step() {
    let s = start(ComfyConfig { training_progress: true, ..ComfyConfig::default() }).await;
    for i in 0..4 {
        s.upload(&format!("img{i}.png"), crate::media::png(8, 8, &[i as u8; 192]).unwrap(), "p").await;
        s.upload(&format!("img{i}.txt"), b"fx fox".to_vec(), "p").await;
    }
    let mut ws = s.ws("p").await;
    let (_, resp) = s.submit(lora_training("p", 5), "p").await;
    let events = events_until_done(&mut ws, resp["prompt_id"].as_str().unwrap()).await;
    let steps: Vec<(u64, u64)> = events
        .iter()
        .filter(|e| e["type"] == "progress" && e["data"]["node"] == "22")
        .map(|e| (e["data"]["value"].as_u64().unwrap(), e["data"]["max"].as_u64().unwrap()))
        .collect();
    assert_eq!(steps, (1..=5).map(|i| (i, 5)).collect::<Vec<_>>());
}
