//! audio-gen: "give it sound". Text-to-audio, or video-to-audio (a generated
//! soundtrack muxed onto a video, e.g. a comfyui-video result), with MMAudio
//! on the studio's workstation (service kind `mmaudio`, `POST /process`).
//!
//! The request mapping and error attribution are pure and live in
//! [`params`]; the length of the result is read from its header as it
//! streams by (`c41_kit::media`); this file does the I/O: the multipart form
//! (the video streamed from the host, never whole in guest memory),
//! progress, and the reply streamed into one artifact.
//!
//! With a `comfyui` service granted it runs MMAudio inside ComfyUI instead
//! ([`on_comfyui`], both modes). Which one: `backend = "mmaudio" |
//! "comfyui"` in the settings when given; else the MMAudio service when one
//! is granted, else ComfyUI.

mod on_comfyui;
pub mod params;

use c41_kit::http::ServiceClient;
use c41_kit::media::Probe;
use c41_kit::multipart::Form;
use c41_kit::progress::Progress;
use c41_kit::schema::JsonSchema;
use c41_kit::{Invocation, Outcome, Skill, SkillError, StaticDescription, artifacts, inputs, json, settings};
use serde::Deserialize;

use params::{Mode, Params};

/// The service kind the skill declares and the config grants.
pub const SERVICE_KIND: &str = "mmaudio";

struct AudioGen;

// The input. The schema agents see (`input.schema.json`) is derived from
// this type; `C41_BLESS=1 cargo test` rewrites it after a change.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// What should be heard, as concrete sounds: "rain on a tin roof, distant thunder", "footsteps on gravel, a dog barks twice". With a video, describe the sound of what happens in it.
    #[schemars(length(min = 1, max = 2000))]
    pub prompt: String,
    /// Sounds to keep out, e.g. "music, speech". Default: none.
    #[schemars(length(max = 2000))]
    pub negative_prompt: Option<String>,
    /// A video to give a soundtrack (MP4 or MOV with H.264): a file path or an artifact reference (artifact:<sha256>), e.g. a comfyui-video result. The result is then this video with the generated sound, cut to `seconds` if longer. Without it, the result is an audio file (FLAC).
    #[schemars(extend("format" = "c41-file"))]
    pub video: Option<String>,
    /// Length of the sound in seconds (at most 30). With a video, the clip is cut to this length; a shorter clip keeps its own length. Default: 8 (or the configured settings.seconds).
    #[schemars(range(max = 30), extend("exclusiveMinimum" = 0))]
    pub seconds: Option<f64>,
    /// Sampling steps: more is slower and a little cleaner. Default: 25 (or settings.steps).
    #[schemars(range(min = 1, max = 1000))]
    pub steps: Option<u64>,
    /// How strictly the sound follows the prompt (classifier-free guidance). Default: 4.5 (or settings.cfg).
    #[schemars(range(min = 0, max = 20))]
    pub cfg: Option<f64>,
    /// Sampling seed; the same seed, prompt and settings give the same sound. Random when absent; the seed used is returned in data.seed.
    #[schemars(range(min = 0, max = 9007199254740991i64))]
    pub seed: Option<u64>,
    /// Only check which MMAudio workflows each granted ComfyUI backend can run (node types and model files) and say what is missing; runs nothing, needs no other input. `c41 doctor` uses it.
    pub check: Option<bool>,
    /// Stem of the output file name (the extension is added). Default: `sound`, or `<video name>-sound` with a video.
    #[schemars(regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"))]
    pub name: Option<String>,
}

impl Skill for AudioGen {
    const DESCRIPTION: Option<StaticDescription> = Some(StaticDescription {
        name: "audio-gen",
        version: env!("CARGO_PKG_VERSION"),
        summary: "Generate sound effects and ambience from a text prompt, or add a generated soundtrack to a video (MMAudio: its HTTP service, or inside ComfyUI).",
        input_schema: include_str!("../input.schema.json"),
        output: "text: how many seconds of sound were made, for which prompt, with which seed, and the file; \
                     artifacts: one file, a FLAC (text-to-audio) or the video as MP4 with the new sound track (video-to-audio); \
                     data: {prompt, negative_prompt, seconds (requested), measured_seconds (read from the file), sample_rate, \
                     has_audio_track (video only), steps, cfg, seed, mode (text-to-audio|video-to-audio), video (input name), \
                     file, mime, bytes, service}",
        services: &[SERVICE_KIND, c41_kit::comfyui::SERVICE_KIND],
    });

    async fn invoke(cx: Invocation) -> Result<Outcome, SkillError> {
        let all = settings::all();
        if cx.input.get("check").and_then(|v| v.as_bool()) == Some(true) {
            return on_comfyui::check(&all).await;
        }
        let on_comfyui = c41_kit::comfyui::chosen_over(SERVICE_KIND, "audio-gen", &all)?;
        if on_comfyui {
            let p = Params::resolve(&cx.input, &all, || cx.random_seed())?;
            return on_comfyui::run(&cx, &p, &all).await;
        }
        let service = settings::require_service(SERVICE_KIND)?;
        let p = Params::resolve(&cx.input, &all, || cx.random_seed())?;
        let client = ServiceClient::new(service.clone());
        let svc = service.name.as_str();

        let mut form = Form::new();
        for (field, value) in p.form_fields() {
            form = form.text(field, value);
        }
        let mut video_size = 0;
        let video = match p.mode {
            Mode::VideoToAudio => {
                let file = inputs::open("video")?;
                let name = file.name();
                if file.size() == 0 {
                    return Err(SkillError::invalid("video", format!("{name} is empty")));
                }
                video_size = file.size();
                form = form.file("video", file);
                Some(name)
            }
            Mode::TextToAudio => None,
        };
        let generating =
            format!("{svc} is generating {:.1} s of sound ({} steps, seed {})", p.seconds, p.steps, p.seed);
        cx.check_cancelled()?;
        let req = match &video {
            Some(name) => {
                Progress::stage("upload")
                    .fraction(0.0)
                    .message(format!("sending {name} ({video_size} bytes)"))
                    .report();
                let file = name.clone();
                let sending = move |sent, total: u64| format!("sending {file}: {}%", sent * 100 / total.max(1));
                let generate = Progress::stage("generate").fraction(0.3).message(generating.clone());
                client.form_request("/process", form.report_upload(0.3, 50, sending, generate))?
            }
            None => {
                Progress::stage("generate").fraction(0.1).message(generating.clone()).report();
                // A few hundred bytes: sent whole, with the head, so that a
                // proxy's or middleware's early error keeps its status.
                client.buffered_form_request("/process", form)?
            }
        };

        // The sound (or the video with its new track) stays in the host on
        // its way to the store; the probe reads the headers it needs.
        let mut resp = client.send_streamed_any(req).await.map_err(|e| match e {
            SkillError::Backend { status: None, message, .. } => {
                params::no_reply(svc, &client.url("/process"), &message, video.as_deref())
            }
            other => other,
        })?;
        let status = resp.status;
        if !resp.is_success() {
            let bytes = resp.contents().await;
            return Err(params::explain(svc, status, &bytes));
        }
        cx.check_cancelled()?;

        let mime = resp.header("content-type").map(|c| params::bare_mime(&c)).unwrap_or_default();
        let ext = params::extension(&mime, resp.header("content-disposition").as_deref(), p.mode);
        let file = params::file_name(p.name.as_deref(), video.as_deref(), &ext);
        let expected = resp.content_length();
        Progress::stage("download").fraction(0.9).message(format!("receiving {file}")).report();

        let mut probe = Probe::new();
        let mut shown = 0u64;
        let artifact = artifacts::save_streamed(&file, &mime, &mut resp, svc, &mut probe, |n| {
            let step = expected.map_or(256 * 1024, |len| (len / 20).max(1));
            if n - shown >= step || Some(n) == expected {
                shown = n;
                let mut pr = Progress::stage("download").message(match expected {
                    Some(len) => format!("{file}: {n} of {len} bytes"),
                    None => format!("{file}: {n} bytes"),
                });
                if let Some(len) = expected {
                    pr = pr.fraction(0.9 + 0.1 * n as f32 / len.max(1) as f32);
                }
                pr.report();
            }
            Ok(())
        })
        .await?;
        if let Some(len) = expected
            && artifact.bytes != len
        {
            return Err(SkillError::backend(
                svc,
                Some(status),
                format!("the reply was cut: {} of {len} bytes", artifact.bytes),
            ));
        }
        Progress::stage("download").fraction(1.0).message(format!("stored {file} ({} bytes)", artifact.bytes)).report();

        let info = probe.finish().info();
        let heard = info.as_ref().map_or(p.seconds, |i| i.seconds);
        let prompt = params::quoted_prompt(&p.prompt);
        let text = match &video {
            None => format!("Made {heard:.1} s of sound for {prompt} (seed {}): {}", p.seed, artifact.path),
            Some(v) => format!("Added {heard:.1} s of sound for {prompt} to {v} (seed {}): {}", p.seed, artifact.path),
        };
        let data = json!({
            "prompt": p.prompt,
            "negative_prompt": p.negative_prompt,
            "seconds": p.seconds,
            "measured_seconds": info.as_ref().map(|i| (i.seconds * 1000.0).round() / 1000.0),
            "sample_rate": info.as_ref().and_then(|i| i.sample_rate),
            "has_audio_track": info.as_ref().and_then(|i| i.has_audio_track),
            "steps": p.steps,
            "cfg": p.cfg,
            "seed": p.seed,
            "mode": p.mode.as_str(),
            "video": video,
            "file": file,
            "mime": artifact.mime,
            "bytes": artifact.bytes,
            "service": svc,
        });
        Ok(Outcome { text, artifacts: vec![artifact], data })
    }
}

c41_kit::skill!(AudioGen);

c41_kit::input_schema_test!(Input);
