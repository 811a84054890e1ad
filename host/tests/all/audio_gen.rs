//! The audio-gen skill against the simulated studio, through the real sandbox.
//!
//! The replies are checked as files (FLAC STREAMINFO, MP4 boxes read by
//! `common`: the host has no media decoders as dependencies), the forms the simulated
//! MMAudio received through its request log, and every failure for the
//! field or service it names.

use crate::common::*;
use c41::app::RunError;
use c41::events::Event;
use c41::runtime::InvokeError;
use c41_sim::media::{self, Frames};
use c41_sim::services::mmaudio::{MmAudioConfig, MmAudioParams, MmAudioSim};
use serde_json::json;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

// ---- helpers ---------------------------------------------------------------

async fn start(config: MmAudioConfig) -> (MmAudioSim, SocketAddr) {
    let sim = MmAudioSim::new(config);
    let addr = sim.start("127.0.0.1:0").await.unwrap();
    (sim, addr)
}

/// A config granting audio-gen the MMAudio at `url`, reading inputs from
/// `inputs`, with `settings` lines under its settings table.
fn config(url: &str, inputs: &Path, settings: &str) -> String {
    format!(
        "output-dir = \"{{out}}\"\n[inputs]\nallow-dirs = [{:?}]\n\
         [services.forge-mmaudio]\nurl = {url:?}\nkind = \"mmaudio\"\n\
         [skills.audio-gen]\ngrants = [\"forge-mmaudio\"]\n[skills.audio-gen.settings]\n{settings}\n",
        inputs.display().to_string()
    )
}

/// A small H.264 MP4 (no audio) of `n` gradient frames, written to `dir/name`.
fn write_video(dir: &Path, name: &str, w: u32, h: u32, n: u32, fps: f64) -> PathBuf {
    let frames = Frames { width: w, height: h, rgb: (0..n).map(|i| media::gradient_frame(w, h, 3, i)).collect() };
    let path = dir.join(name);
    std::fs::write(&path, media::mp4(&frames, fps, None).unwrap()).unwrap();
    path
}

/// `(stage, fraction, message)` of each progress report ("" for none).
fn reports(events: &[Event]) -> Vec<(String, Option<f32>, String)> {
    progress_reports(events).into_iter().map(|(s, f, m)| (s, f, m.unwrap_or_default())).collect()
}

/// Stages in the order first seen.
fn stages(events: &[Event]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (s, _, _) in reports(events) {
        if out.last() != Some(&s) {
            out.push(s);
        }
    }
    out
}

// ---- text to audio ---------------------------------------------------------

#[tokio::test]
async fn text_to_audio_stores_a_flac_of_the_asked_length_with_the_form_mapped() {
    let (sim, addr) = start(MmAudioConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    // Settings override the built-in defaults; the input overrides settings.
    let h = harness(&config(&format!("http://{addr}"), dir.path(), "steps = 12\nseconds = 3"), &[]).await;
    let input = json!({"prompt": "rain on a tin roof", "negative_prompt": "music", "seconds": 1.5, "seed": 7});
    let (r, events) = h.run("audio-gen", input.clone()).await;
    let r = r.expect("text-to-audio succeeds");

    assert_eq!(r.artifacts.len(), 1);
    let a = &r.artifacts[0];
    assert_eq!(a.mime, "audio/flac");
    assert!(a.file_name.starts_with("sound") && a.file_name.ends_with(".flac"), "{}", a.file_name);
    let bytes = std::fs::read(&a.path).unwrap();
    assert_eq!(bytes.len() as u64, a.bytes);
    let (rate, channels, bits, samples) = flac_streaminfo(&bytes);
    assert_eq!((rate, channels, bits), (44_100, 1, 16));
    assert_eq!(samples, 66_150, "exactly 1.5 s at 44.1 kHz");

    // The form, as MMAudio parsed it.
    let reqs = sim.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!((reqs[0].status, reqs[0].content_type, reqs[0].video.is_none()), (200, Some("audio/flac"), true));
    assert_eq!(
        reqs[0].params,
        Some(MmAudioParams {
            prompt: "rain on a tin roof".into(),
            negative_prompt: "music".into(),
            duration: 1.5,
            cfg_strength: 4.5,
            num_steps: 12,
            seed: 7,
        })
    );

    let d = &r.data;
    assert_eq!(
        (d["mode"].as_str(), d["seconds"].as_f64(), d["steps"].as_u64(), d["cfg"].as_f64(), d["seed"].as_u64()),
        (Some("text-to-audio"), Some(1.5), Some(12), Some(4.5), Some(7))
    );
    assert_eq!((d["measured_seconds"].as_f64(), d["sample_rate"].as_u64()), (Some(1.5), Some(44_100)));
    assert_eq!(
        (d["bytes"].as_u64(), d["service"].as_str(), d["prompt"].as_str()),
        (Some(a.bytes), Some("forge-mmaudio"), Some("rain on a tin roof"))
    );
    assert!(r.text.starts_with("Made 1.5 s of sound for 'rain on a tin roof' (seed 7)"), "{}", r.text);
    assert!(r.text.contains(&a.path.display().to_string()), "{}", r.text);

    // No upload without a video; the download reports bytes and ends at 1.
    let ev = events.events();
    assert_eq!(stages(&ev), ["generate", "download"]);
    let reps = reports(&ev);
    assert!(reps.iter().any(|(s, _, m)| s == "download" && m.contains(&format!("{} bytes", a.bytes))), "{reps:?}");
    assert_eq!(reps.last().unwrap().1, Some(1.0));

    // The same seed gives the same file; no seed draws one and reports it.
    let (again, _) = h.run("audio-gen", input).await;
    assert_eq!(again.unwrap().artifacts[0].sha256, a.sha256, "same seed, same sound");
    let (r, _) = h.run("audio-gen", json!({"prompt": "rain on a tin roof", "name": "rain"})).await;
    let r = r.unwrap();
    let seed = r.data["seed"].as_u64().expect("the drawn seed is reported");
    let p = sim.requests()[2].params.clone().unwrap();
    assert_eq!(
        (p.seed, p.duration, p.num_steps, p.cfg_strength),
        (seed as i64, 3.0, 12, 4.5),
        "settings.seconds applies"
    );
    assert!(
        r.artifacts[0].file_name.starts_with("rain") && r.artifacts[0].file_name.ends_with(".flac"),
        "{}",
        r.artifacts[0].file_name
    );
    assert_eq!(flac_streaminfo(&std::fs::read(&r.artifacts[0].path).unwrap()).3, 3 * 44_100);
    assert!(r.text.contains(&format!("(seed {seed})")), "{}", r.text);
}

// ---- video to audio --------------------------------------------------------

#[tokio::test]
async fn video_to_audio_streams_the_clip_and_stores_it_with_a_sound_track() {
    let (sim, addr) = start(MmAudioConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    // 2 s at 10 fps; 1.5 s asked: MMAudio cuts the clip to 15 frames.
    let clip = write_video(dir.path(), "clip.mp4", 64, 48, 20, 10.0);
    let h = harness(&config(&format!("http://{addr}"), dir.path(), ""), &[]).await;
    let (r, events) = h
        .run(
            "audio-gen",
            json!({"prompt": "footsteps on gravel", "video": clip.display().to_string(), "seconds": 1.5, "seed": 3}),
        )
        .await;
    let r = r.expect("video-to-audio succeeds");

    assert_eq!(r.artifacts.len(), 1);
    let a = &r.artifacts[0];
    assert_eq!(a.mime, "video/mp4");
    assert!(a.file_name.starts_with("clip-sound") && a.file_name.ends_with(".mp4"), "{}", a.file_name);
    let mp4 = Mp4::read(&std::fs::read(&a.path).unwrap());
    assert_eq!(mp4.tracks.len(), 2, "{mp4:?}");
    let v = mp4.track("vide");
    assert_eq!((v.codec.as_str(), v.entry, v.samples), ("avc1", (64, 48), 15), "{v:?}");
    assert!((v.seconds - 1.5).abs() < 1e-6, "{v:?}");
    let s = mp4.track("soun");
    assert_eq!((s.codec.as_str(), s.entry, s.timescale), ("mp4a", (1, 44_100), 44_100), "{s:?}");
    // AAC: 1024 samples a frame, plus at most two frames of priming and padding.
    assert!((1.5..=1.5 + 2048.0 / 44_100.0).contains(&s.seconds), "{s:?}");
    assert_eq!(u64::from(s.samples) * 1024, (s.seconds * 44_100.0).round() as u64, "{s:?}");

    // The upload reached MMAudio whole, under its own name.
    let rec = &sim.requests()[0];
    let video = rec.video.as_ref().expect("the video was uploaded");
    assert_eq!((video.filename.as_deref(), video.frame_count, video.decoded), (Some("clip.mp4"), 20, true));
    assert_eq!((video.width, video.height, video.fps), (64, 48, 10.0));
    assert_eq!(rec.params.as_ref().unwrap().duration, 1.5);
    assert_eq!(rec.content_type, Some("video/mp4"));
    assert_eq!(r.inputs_read_by_skill, 0, "the host spliced the clip into the request; the skill read none of it");

    let d = &r.data;
    assert_eq!(
        (d["mode"].as_str(), d["video"].as_str(), d["has_audio_track"].as_bool()),
        (Some("video-to-audio"), Some("clip.mp4"), Some(true))
    );
    let measured = d["measured_seconds"].as_f64().unwrap();
    assert!((1.5..=1.55).contains(&measured), "{d}");
    assert!(r.text.starts_with("Added 1.5 s of sound for 'footsteps on gravel' to clip.mp4 (seed 3)"), "{}", r.text);

    // upload (with bytes) -> generate -> download, in that order.
    let ev = events.events();
    assert_eq!(stages(&ev), ["upload", "generate", "download"]);
    let size = std::fs::metadata(&clip).unwrap().len();
    let reps = reports(&ev);
    let first_upload = reps.iter().find(|(s, _, _)| s == "upload").unwrap();
    assert_eq!(first_upload.2, format!("sending clip.mp4 ({size} bytes)"), "the clip's own size");
    let last_upload = reps.iter().rfind(|(s, _, _)| s == "upload").unwrap();
    assert_eq!(last_upload.2, "sending clip.mp4: 100%", "the whole form went out: {reps:?}");

    // A video shorter than `seconds` keeps its own length; an artifact
    // reference works as the input, and `name` names the file.
    let short = write_video(dir.path(), "short.mp4", 32, 32, 8, 8.0);
    let (r, _) =
        h.run("audio-gen", json!({"prompt": "a door creaks", "video": short.display().to_string(), "seed": 1})).await;
    let first = r.unwrap();
    let (r, _) = h
        .run("audio-gen", json!({"prompt": "a door creaks", "video": format!("artifact:{}", first.artifacts[0].sha256), "seconds": 0.5, "name": "door"}))
        .await;
    let r = r.expect("an artifact reference is a valid video input");
    assert!(
        r.artifacts[0].file_name.starts_with("door") && r.artifacts[0].file_name.ends_with(".mp4"),
        "{}",
        r.artifacts[0].file_name
    );
    let v1 = Mp4::read(&std::fs::read(&first.artifacts[0].path).unwrap());
    assert_eq!(v1.track("vide").samples, 8, "8 s asked, 1 s clip: all 8 frames");
    assert!(first.text.starts_with("Added 1.0 s of sound"), "the length said is the file's: {}", first.text);
    let v2 = Mp4::read(&std::fs::read(&r.artifacts[0].path).unwrap());
    assert_eq!(v2.track("vide").samples, 4, "0.5 s of an 8 fps clip");
}

// ---- bad input -------------------------------------------------------------

#[tokio::test]
async fn bad_seconds_are_refused_naming_the_field() {
    let (sim, addr) = start(MmAudioConfig { max_duration: 5.0, ..MmAudioConfig::default() }).await;
    let dir = tempfile::tempdir().unwrap();
    let h = harness(&config(&format!("http://{addr}"), dir.path(), ""), &[]).await;
    for seconds in [json!(45), json!(0), json!(-1), json!("long")] {
        let (r, _) = h.run("audio-gen", json!({"prompt": "wind", "seconds": seconds})).await;
        let e = r.unwrap_err();
        assert!(matches!(e, RunError::Input(_)), "refused before the skill runs: {e:?}");
        assert_eq!(e.field(), Some("seconds"), "{e}");
    }
    assert!(sim.requests().is_empty(), "nothing was sent");

    // This server allows only 5 s: its 422 on `duration` names `seconds`.
    let (r, _) = h.run("audio-gen", json!({"prompt": "wind", "seconds": 10})).await;
    match r {
        Err(RunError::Invoke(InvokeError::InvalidInput { field, reason })) => {
            assert_eq!(field, "seconds");
            assert!(reason.contains("forge-mmaudio") && reason.contains("less than or equal to 5"), "{reason}");
        }
        other => panic!("expected invalid `seconds`, got {other:?}"),
    }
    assert_eq!(sim.requests()[0].status, 422);
    assert!(h.output_files().is_empty(), "no file for a refused request: {:?}", h.output_files());

    // Unknown fields are refused by the schema.
    let (r, _) = h.run("audio-gen", json!({"prompt": "wind", "duration": 3})).await;
    assert!(matches!(r, Err(RunError::Input(_))), "{r:?}");
}

#[tokio::test]
async fn a_file_that_is_not_a_video_is_refused_by_the_server_naming_video() {
    let (sim, addr) = start(MmAudioConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.mp4");
    std::fs::write(&notes, b"this is not a video, just some notes\n").unwrap();
    let h = harness(&config(&format!("http://{addr}"), dir.path(), ""), &[]).await;
    let (r, _) = h.run("audio-gen", json!({"prompt": "birdsong", "video": notes.display().to_string()})).await;
    match r {
        Err(RunError::Invoke(InvokeError::InvalidInput { field, reason })) => {
            assert_eq!(field, "video");
            assert!(reason.contains("not an MP4/MOV file"), "{reason}");
        }
        other => panic!("expected invalid `video`, got {other:?}"),
    }
    let rec = &sim.requests()[0];
    assert_eq!(rec.status, 400);
    assert!(rec.error.as_deref().unwrap().starts_with("video:"), "{rec:?}");
    assert!(h.output_files().is_empty());

    // A path outside the allowed directories never reaches the skill.
    let (r, _) = h.run("audio-gen", json!({"prompt": "birdsong", "video": "/etc/hostname"})).await;
    assert_eq!(r.unwrap_err().field(), Some("video"));
    assert_eq!(sim.requests().len(), 1);
}

// ---- failing services ------------------------------------------------------

#[tokio::test]
async fn a_server_error_is_a_backend_error_naming_service_and_status() {
    let (sim, addr) = start(MmAudioConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let h = harness(&config(&format!("http://{addr}"), dir.path(), ""), &[]).await;
    sim.fail_next(1, 500);
    let (r, _) = h.run("audio-gen", json!({"prompt": "thunder", "seconds": 1})).await;
    let (service, status, message) = backend_error(r);
    assert_eq!((service.as_str(), status), ("forge-mmaudio", Some(500)), "{message}");
    assert_eq!(message, "Internal Server Error");
    assert!(h.output_files().is_empty());

    // The failure was used up: the next call works.
    let (r, _) = h.run("audio-gen", json!({"prompt": "thunder", "seconds": 1})).await;
    assert_eq!(r.expect("works again").artifacts[0].mime, "audio/flac");

    // With a video the failure comes after the upload: the simulator, like
    // uvicorn, reads the whole form before answering.
    let clip = write_video(dir.path(), "clip.mp4", 32, 32, 4, 8.0);
    sim.fail_next(1, 500);
    let (r, _) = h.run("audio-gen", json!({"prompt": "thunder", "video": clip.display().to_string()})).await;
    let (service, status, message) = backend_error(r);
    assert_eq!((service.as_str(), status, message.as_str()), ("forge-mmaudio", Some(500), "Internal Server Error"));
    assert!(h.output_files().iter().all(|f| !f.starts_with("clip-sound")), "{:?}", h.output_files());
}

#[tokio::test]
async fn a_service_that_is_down_or_missing_is_a_clear_error() {
    let (sim, addr) = start(MmAudioConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let h = harness(&config(&format!("http://{addr}"), dir.path(), ""), &[]).await;
    sim.set_down(true);
    let (r, _) = h.run("audio-gen", json!({"prompt": "thunder", "seconds": 1})).await;
    let (service, status, message) = backend_error(r);
    assert_eq!((service.as_str(), status), ("forge-mmaudio", None));
    assert!(
        message.contains("cannot reach MMAudio") && message.contains(&format!("http://{addr}/process")),
        "{message}"
    );
    sim.set_down(false);
    let (r, _) = h.run("audio-gen", json!({"prompt": "thunder", "seconds": 1})).await;
    r.expect("up again");

    // Nothing listening at all.
    let url = format!("http://127.0.0.1:{}", closed_port());
    let h = harness(&config(&url, dir.path(), ""), &[]).await;
    let (r, _) = h.run("audio-gen", json!({"prompt": "thunder"})).await;
    let (_, status, message) = backend_error(r);
    assert_eq!(status, None);
    assert!(message.contains("cannot reach MMAudio") && message.contains(&url), "{message}");

    // No MMAudio granted: the error says which grant is missing.
    let h = harness("output-dir = \"{out}\"\n", &[]).await;
    let (r, _) = h.run("audio-gen", json!({"prompt": "thunder"})).await;
    match r {
        Err(RunError::Invoke(e @ InvokeError::Denied { .. })) => {
            let m = e.to_string();
            assert!(m.contains("mmaudio") && m.contains("grants"), "{m}");
        }
        other => panic!("expected denied, got {other:?}"),
    }
}

// ---- MMAudio inside ComfyUI ---------------------------------------------------

/// audio-gen granted only a ComfyUI (the ComfyUI-MMAudio nodes): a prompt
/// becomes a FLAC of the asked length through the built-in workflow.
#[tokio::test]
async fn on_comfyui_a_prompt_becomes_a_flac_through_the_mmaudio_nodes() {
    let sim = c41_sim::comfyui::ComfySim::new(
        c41_sim::comfyui::ComfyConfig::default()
            .with_delays(std::time::Duration::from_millis(5), std::time::Duration::ZERO),
    );
    let addr = sim.start("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "output-dir = \"{{out}}\"\n[inputs]\nallow-dirs = [{:?}]\n[services.forge]\nurl = \"http://{addr}\"\nkind = \"comfyui\"\n\
         [skills.audio-gen]\ngrants = [\"forge\"]\n[skills.audio-gen.settings]\npoll-ms = 150\n",
        dir.path().display().to_string()
    );
    let h = harness(&text, &[]).await;
    let (r, events) = h
        .run(
            "audio-gen",
            json!({"prompt": "rain on a tin roof", "seconds": 2.5, "steps": 3, "seed": 1, "name": "rain"}),
        )
        .await;
    let r = r.expect("MMAudio on ComfyUI makes the sound");
    assert_eq!(r.artifacts.len(), 1);
    assert_eq!(r.artifacts[0].mime, "audio/flac");
    let d = &r.data;
    assert_eq!((d["measured_seconds"].as_f64(), d["sample_rate"].as_u64()), (Some(2.5), Some(44100)), "{d}");
    assert_eq!((d["workflow"].as_str(), d["service"].as_str()), (Some("mmaudio-t2a"), Some("forge")));
    let id = d["prompt_id"].as_str().unwrap();
    let entry = crate::comfyui::http_json(addr, &format!("/history/{id}")).await;
    let g = &entry[id]["prompt"][2];
    assert_eq!((g["3"]["inputs"]["duration"].as_f64(), g["3"]["inputs"]["seed"].as_u64()), (Some(2.5), Some(1)));
    assert_eq!(g["3"]["inputs"]["prompt"], "rain on a tin roof");
    assert!(
        r.artifacts[0].path.file_name().unwrap().to_string_lossy().starts_with("rain"),
        "{:?}",
        r.artifacts[0].path
    );
    assert!(stages(&events.events()).iter().any(|s| s == "sampling"), "sampler progress");
    assert!(r.text.starts_with("Made 2.5 s of sound for"), "{}", r.text);

    let flac = r.artifacts[0].file_name.clone();
    assert!(flac.starts_with("rain-") && flac.ends_with(".flac"), "named as the HTTP service's result: {flac}");

    // A video: uploaded, its frames guide the sampler, and the clip comes
    // back as MP4 with the sound, cut to `seconds` (2 s of a 3 s clip).
    let video = write_video(dir.path(), "clip.mp4", 64, 48, 30, 10.0);
    let (r, events) = h
        .run(
            "audio-gen",
            json!({"prompt": "footsteps", "video": video.display().to_string(), "seconds": 2.0, "steps": 3, "seed": 3}),
        )
        .await;
    let r = r.expect("MMAudio on ComfyUI gives the clip a sound");
    let a = &r.artifacts[0];
    assert_eq!(a.mime, "video/mp4");
    assert!(a.file_name.starts_with("clip-sound-") && a.file_name.ends_with(".mp4"), "{}", a.file_name);
    let mp4 = Mp4::read(&std::fs::read(&a.path).unwrap());
    let v = mp4.track("vide");
    assert_eq!((v.entry, v.samples), ((64, 48), 20), "the clip's own size, cut to 2 s at 10 fps: {v:?}");
    assert!((v.seconds - 2.0).abs() < 0.01, "at the clip's own frame rate: {v:?}");
    assert_eq!(mp4.track("soun").codec, "mp4a", "with a sound track");
    let d = &r.data;
    assert_eq!(
        (d["workflow"].as_str(), d["mode"].as_str(), d["video"].as_str()),
        (Some("mmaudio-v2a"), Some("video-to-audio"), Some("clip.mp4"))
    );
    assert_eq!(d["has_audio_track"], true, "{d}");
    let id = d["prompt_id"].as_str().unwrap();
    let entry = crate::comfyui::http_json(addr, &format!("/history/{id}")).await;
    let g = &entry[id]["prompt"][2];
    assert_eq!(g["5"]["inputs"]["duration"].as_f64(), Some(2.0), "{g}");
    assert_eq!(g["8"]["inputs"]["length"].as_u64(), Some(20), "{g}");
    let uploaded = g["3"]["inputs"]["file"].as_str().unwrap();
    assert!(uploaded.contains("clip") && uploaded.ends_with(".mp4"), "{uploaded}");
    assert!(stages(&events.events()).iter().any(|s| s == "upload"), "upload progress");
    assert!(r.text.starts_with("Added 2.0 s of sound for 'footsteps' to clip.mp4"), "{}", r.text);

    // Something that is not a video is refused before anything is sent.
    let before = sim.history_len();
    let bogus = dir.path().join("notes.mp4");
    std::fs::write(&bogus, b"these are not moving pictures").unwrap();
    let (r, _) = h.run("audio-gen", json!({"prompt": "steps", "video": bogus.display().to_string()})).await;
    match r {
        Err(RunError::Invoke(InvokeError::InvalidInput { field, reason })) => {
            assert_eq!(field, "video");
            assert!(reason.contains("notes.mp4") && reason.contains("MP4 or MOV"), "{reason}");
        }
        other => panic!("expected an invalid-input error, got {other:?}"),
    }
    assert_eq!(sim.history_len(), before);
}

/// A stand-in MMAudio for uploads the simulator cannot decode: `/process`
/// reads the form as it arrives (calling `on_first_bytes` once, with the
/// first bytes in hand), keeps the whole body in `got`, and answers
/// `reply` as `video/mp4`; a broken body gets a 400.
async fn upload_server(
    reply: Vec<u8>,
    on_first_bytes: impl Fn() + Send + Sync + 'static,
) -> (SocketAddr, std::sync::Arc<std::sync::Mutex<Vec<u8>>>) {
    use futures::StreamExt;
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (seen, on_first_bytes) = (got.clone(), std::sync::Arc::new(on_first_bytes));
    let app = axum::Router::new().route(
        "/process",
        axum::routing::post(move |body: axum::body::Body| {
            let (seen, on_first_bytes, reply) = (seen.clone(), on_first_bytes.clone(), reply.clone());
            async move {
                let mut stream = body.into_data_stream();
                let mut first = true;
                while let Some(chunk) = stream.next().await {
                    let Ok(chunk) = chunk else {
                        return axum::http::Response::builder().status(400).body(axum::body::Body::empty()).unwrap();
                    };
                    if std::mem::take(&mut first) {
                        on_first_bytes();
                    }
                    seen.lock().unwrap().extend_from_slice(&chunk);
                }
                axum::http::Response::builder()
                    .header("content-type", "video/mp4")
                    .body(axum::body::Body::from(reply))
                    .unwrap()
            }
        }),
    );
    let addr = serve_app(app).await;
    (addr, got)
}

/// `input-file.stream` (c41:skill@0.1.2) spliced into the request body: a
/// 48 MiB upload reaches the service byte for byte, with its progress, and
/// not one byte of it passes through the skill.
#[tokio::test]
async fn a_big_upload_goes_from_the_file_to_the_connection_without_entering_the_skill() {
    let dir = tempfile::tempdir().unwrap();
    let reply = std::fs::read(write_video(dir.path(), "reply.mp4", 32, 32, 8, 8.0)).unwrap();
    let (addr, got) = upload_server(reply.clone(), || {}).await;
    let clip = dir.path().join("clip.mp4");
    let bytes: Vec<u8> = (0..48u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(&clip, &bytes).unwrap();
    let h = harness(&config(&format!("http://{addr}"), dir.path(), ""), &[]).await;
    let (r, events) =
        h.run("audio-gen", json!({"prompt": "rain", "video": clip.display().to_string(), "seconds": 1})).await;
    let r = r.expect("the upload succeeds");

    let body = got.lock().unwrap().clone();
    let head = b"filename=\"clip.mp4\"\r\nContent-Type: video/mp4\r\n\r\n";
    let at = body.windows(head.len()).position(|w| w == head).expect("the form carries the clip") + head.len();
    assert!(body[at..].starts_with(&bytes), "the service got the clip byte for byte");
    assert_eq!(&body[at + bytes.len()..at + bytes.len() + 2], b"\r\n");
    assert_eq!(r.inputs_read_by_skill, 0, "the host spliced the clip; the skill read none of it");
    assert_eq!(std::fs::read(&r.artifacts[0].path).unwrap(), reply);

    let uploads: Vec<_> = reports(&events.events()).into_iter().filter(|(s, _, _)| s == "upload").collect();
    assert!(uploads.len() > 3, "the upload reported its progress: {uploads:?}");
    assert_eq!(uploads.last().map(|u| u.2.as_str()), Some("sending clip.mp4: 100%"), "{uploads:?}");
}

/// An input cut short while it is being sent (another program truncated
/// it) is the input's fault: the call fails naming the field, the file and
/// why, and stores nothing.
#[tokio::test]
async fn an_input_that_shrinks_during_the_upload_is_named_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.mp4");
    std::fs::write(&clip, vec![7u8; 48 << 20]).unwrap();
    let truncate = clip.clone();
    let (addr, _) = upload_server(Vec::new(), move || {
        std::fs::OpenOptions::new().write(true).open(&truncate).unwrap().set_len(0).unwrap();
    })
    .await;
    let h = harness(&config(&format!("http://{addr}"), dir.path(), ""), &[]).await;
    let (r, _) = h.run("audio-gen", json!({"prompt": "rain", "video": clip.display().to_string(), "seconds": 1})).await;
    match r {
        Err(RunError::Invoke(InvokeError::InvalidInput { field, reason })) => {
            assert_eq!(field, "video");
            assert!(
                reason.starts_with("clip.mp4: the file ended after ")
                    && reason.ends_with(&format!(" of {} bytes (it changed after the call started)", 48 << 20)),
                "{reason}"
            );
        }
        other => panic!("expected invalid `video`, got {other:?}"),
    }
    assert!(h.output_files().is_empty(), "{:?}", h.output_files());
}

/// A proxy in front of MMAudio with a size limit (nginx's
/// `client_max_body_size`) answers 413 at once, without reading the upload,
/// and closes the connection: the user is told the status, not that the
/// connection broke.
#[tokio::test]
async fn a_size_limit_answered_before_the_upload_ends_is_reported_with_its_status() {
    let app = axum::Router::new().route(
        "/process",
        axum::routing::post(|| async {
            (
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                [("connection", "close")],
                "<html><body><h1>413 Request Entity Too Large</h1></body></html>",
            )
        }),
    );
    let addr = serve_app(app).await;
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.mp4");
    std::fs::write(&clip, vec![7u8; 48 << 20]).unwrap();
    let h = harness(&config(&format!("http://{addr}"), dir.path(), ""), &[]).await;
    let (r, _) = h.run("audio-gen", json!({"prompt": "rain", "video": clip.display().to_string(), "seconds": 1})).await;
    let (service, status, message) = backend_error(r);
    assert_eq!((service.as_str(), status), ("forge-mmaudio", Some(413)), "{message}");
    assert!(message.contains("413 Request Entity Too Large"), "{message}");
    assert!(h.output_files().is_empty());
}
