//! lip-sync: a talking-portrait video from one picture and one sound, made
//! by HuMo on the studio's workstation (service kind `humo`).
//!
//! The HuMo wrapper's contract is the simulator's module docs
//! (`host/sim/src/services/humo.rs`): one `POST /generate` multipart form
//! with the portrait, the sound and a few text fields, answered with an MP4
//! (H.264 + AAC) or a FastAPI error naming the field at fault. This crate
//! fills in defaults (input, then settings, then HuMo's own), streams both
//! files from the host while the form is sent, maps the server's field
//! errors back to the skill's inputs, and streams the MP4 into one artifact
//! while reading its `moov` to say how long the clip is.
//!
//! The same skill runs HuMo inside the workstation's ComfyUI instead when
//! a `comfyui` service is granted ([`on_comfyui`]). Which one: the setting
//! `backend = "humo" | "comfyui"` when given; else the HuMo service when one
//! is granted, else ComfyUI.
//!
//! Settings (`[skills.lip-sync.settings]`): `prompt` (default scene
//! description), `fps`, `steps`, `backend`, and for ComfyUI `max-frames`
//! (default 97), `workflow`, `workflows`, `poll-ms`, `failover-secs`.

mod on_comfyui;
mod plan;

use c41_kit::schema::JsonSchema;
use serde::Deserialize;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use c41_kit::http::{Outgoing, ServiceClient, Streamed};
use c41_kit::media::Probe;
use c41_kit::media::mp4::Movie;
use c41_kit::multipart::Form;
use c41_kit::progress::Progress;
use c41_kit::wstd::http::Request;
use c41_kit::{Invocation, Outcome, Skill, SkillError, StaticDescription, artifacts, fastapi, inputs, json, settings};

use plan::{Made, Params, human_bytes};

/// The service kind this skill needs granted.
const SERVICE_KIND: &str = "humo";

/// How often a pending request checks whether the caller cancelled.
const CANCEL_POLL: Duration = Duration::from_millis(200);

/// Most bytes of an error reply kept for the message.
const MAX_ERROR_BODY: usize = 64 * 1024;

// The input. The schema agents see (`input.schema.json`) is derived from
// this type; `C41_BLESS=1 cargo test` rewrites it after a change.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// The portrait to animate: a PNG or JPEG file path, or an artifact reference (artifact:<sha256>) such as a comfyui-image result. A face seen from the front, head and shoulders, works best.
    #[schemars(extend("format" = "c41-file"))]
    pub image: String,
    /// The speech (or song) the face lip-syncs to: a WAV, FLAC or MP3 file path, or an artifact reference (artifact:<sha256>) such as a tts result. At most 30 seconds; the video is exactly as long as the sound. On ComfyUI the clip has 4n+1 frames covering the sound, at most settings.max-frames (default 97: 3.9 s at 25 fps, what HuMo was trained on); a longer sound is refused.
    #[schemars(extend("format" = "c41-file"))]
    pub audio: String,
    /// Describes the scene and the speaker's manner, e.g. "a woman speaking calmly to the camera, soft studio light". Default: settings.prompt, else "a person talking".
    #[schemars(length(min = 1, max = 4000))]
    pub prompt: Option<String>,
    /// Video width in pixels, a multiple of 16. Default: from the portrait (scaled to fit 1280, rounded down to a multiple of 16); with only `height` given, it follows the portrait's aspect ratio. On ComfyUI likewise, at about the workflow's own pixel count (640×640: a 9:16 portrait makes 480×848).
    #[schemars(range(min = 16, max = 1280), extend("multipleOf" = 16))]
    pub width: Option<u64>,
    /// Video height in pixels, a multiple of 16. Default: from the portrait, like `width`.
    #[schemars(range(min = 16, max = 1280), extend("multipleOf" = 16))]
    pub height: Option<u64>,
    /// Frames per second of the video. Default: settings.fps, else 25 (HuMo's native rate).
    #[schemars(range(min = 1, max = 60))]
    pub fps: Option<u64>,
    /// Sampling seed; the same inputs and seed give the same video. Change it for a different take. Default: 0.
    #[schemars(range(min = -9007199254740991i64, max = 9007199254740991i64))]
    pub seed: Option<i64>,
    /// Sampling steps: more is slower and cleaner. Default: settings.steps, else 50.
    #[schemars(range(min = 1, max = 200))]
    pub steps: Option<u64>,
    /// Only check which HuMo workflows each granted ComfyUI backend can run (node types and model files) and say what is missing; runs nothing, needs no other input. `c41 doctor` uses it.
    pub check: Option<bool>,
    /// File name stem of the video ("anna-intro" saves anna-intro.mp4). Default: lipsync.
    #[schemars(length(max = 100), regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9 _.-]*$"))]
    pub name: Option<String>,
}

struct LipSync;

impl Skill for LipSync {
    const DESCRIPTION: Option<StaticDescription> = Some(StaticDescription {
        name: "lip-sync",
        version: env!("CARGO_PKG_VERSION"),
        summary: "Make a talking-portrait video: animate one portrait image so it lip-syncs to one sound file (speech or song), with HuMo on the workstation (its HTTP service, or inside ComfyUI).",
        input_schema: include_str!("../input.schema.json"),
        output: "text: what was lip-synced to what, the clip's length, fps, frames and size; one artifact: the MP4 (H.264 video + AAC audio, \
                     lipsync.mp4 or <name>.mp4); data: {prompt, width, height (null when taken from the image), fps, seed, steps, bytes, service, \
                     image, audio, output: {width, height, frames, seconds, video_codec, audio_codec} or null}",
        services: &[SERVICE_KIND, c41_kit::comfyui::SERVICE_KIND],
    });

    async fn invoke(cx: Invocation) -> Result<Outcome, SkillError> {
        let all = settings::all();
        if cx.input.get("check").and_then(|v| v.as_bool()) == Some(true) {
            return on_comfyui::check(&all).await;
        }
        let params = plan::params(&cx.input, &all)?;
        let on_comfyui = c41_kit::comfyui::chosen_over(SERVICE_KIND, "lip-sync", &all)?;
        if on_comfyui {
            return on_comfyui::run(&cx, &params, &all).await;
        }
        let service = settings::require_service(SERVICE_KIND)?;
        let client = ServiceClient::new(service.clone());

        let image = open_nonempty("image")?;
        let audio = open_nonempty("audio")?;
        let (image_name, audio_name) = (image.name(), audio.name());
        let uploads = image.size() + audio.size();

        let mut form = Form::new();
        for (k, v) in params.fields() {
            form = form.text(k, v);
        }
        let form = form.file("image", image).file("audio", audio);
        let req = upload_request(&client, form, &image_name, &audio_name)?;
        Progress::stage("upload")
            .fraction(0.0)
            .message(format!("sending {image_name} and {audio_name} ({}) to {}", human_bytes(uploads), service.name))
            .report();

        let mut resp =
            until_cancelled(&cx, client.send_streamed_any(req)).await.map_err(|e| plan::no_answer(e, &service.url))?;
        let status = resp.status;
        if !resp.is_success() {
            let bytes = resp.contents().await;
            let bytes = &bytes[..bytes.len().min(MAX_ERROR_BODY)];
            return Err(fastapi::error(&service.name, status, bytes, plan::input_field));
        }

        let expected = resp.content_length();
        let content_type = resp.header("content-type").unwrap_or_default();
        let (artifact, movie) = download(&cx, &service.name, &params, &mut resp, expected, &content_type).await?;
        Progress::stage("download").fraction(1.0).message(format!("saved {}", human_bytes(artifact.bytes))).report();

        let made = made(&movie);
        let text = format!(
            "{} with {}: {}",
            plan::summary(&image_name, &audio_name, params.fps, made.as_ref()),
            service.name,
            artifact.path
        );
        let data = json!({
            "prompt": params.prompt,
            "width": params.width,
            "height": params.height,
            "fps": params.fps,
            "seed": params.seed,
            "steps": params.steps,
            "bytes": artifact.bytes,
            "service": service.name,
            "image": image_name,
            "audio": audio_name,
            "output": made.map(|m| json!({
                "width": m.width,
                "height": m.height,
                "frames": m.frames,
                "seconds": (m.seconds * 1000.0).round() / 1000.0,
                "video_codec": m.video_codec,
                "audio_codec": m.audio_codec,
            })),
        });
        Ok(Outcome { text, artifacts: vec![artifact], data })
    }
}

/// Opens a file input, refusing an empty file before anything is sent.
fn open_nonempty(field: &str) -> Result<inputs::File, SkillError> {
    let file = inputs::open(field)?;
    if file.size() == 0 {
        return Err(SkillError::invalid(field, format!("{} is empty", file.name())));
    }
    Ok(file)
}

/// The `POST /generate` request; its body reports upload progress as the
/// host streams the files out, and announces the "generate" stage once the
/// last byte has gone (HuMo only answers when the video is done).
fn upload_request(
    client: &ServiceClient,
    form: Form,
    image: &str,
    audio: &str,
) -> Result<Request<Outgoing>, SkillError> {
    let generate = Progress::stage("generate").fraction(0.1).message(format!(
        "{} is lip-syncing {image} to {audio} (the video comes back whole when done)",
        client.service.name
    ));
    // Every 5% (and the end), not every chunk.
    let form = form.report_upload(
        0.1,
        20,
        |sent, total| format!("sent {} of {}", human_bytes(sent), human_bytes(total)),
        generate,
    );
    client.form_request("/generate", form)
}

/// Copies the reply into the artifact while reading its boxes (the host
/// copies the `mdat`, the skill reads the rest); the artifact is only
/// stored when the reply is a complete MP4.
async fn download(
    cx: &Invocation,
    service: &str,
    params: &Params,
    body: &mut Streamed,
    expected: Option<u64>,
    content_type: &str,
) -> Result<(c41_kit::Artifact, Movie), SkillError> {
    let mut writer = artifacts::create(&params.file_name, "video/mp4")?;
    let mut probe = Probe::new();
    let mut shown = 0u64;
    let total = writer
        .copy_body(body, service, &mut probe, |total| {
            cx.check_cancelled()?;
            if shown == 0 || total - shown >= 256 * 1024 {
                shown = total.max(1);
                let p = Progress::stage("download");
                let p = match expected {
                    Some(n) if n > 0 => p.fraction(0.9 + 0.1 * total as f32 / n as f32).message(format!(
                        "{} of {}",
                        human_bytes(total),
                        human_bytes(n)
                    )),
                    _ => p.fraction(0.9).message(human_bytes(total)),
                };
                p.report();
            }
            Ok(())
        })
        .await?;
    if let Some(n) = expected
        && n != total
    {
        return Err(SkillError::backend(
            service,
            Some(200),
            format!("the video was cut short: {total} of {n} bytes arrived"),
        ));
    }
    let movie = probe.finish().movie().cloned().map_err(|why| {
        let ct = if content_type.is_empty() { String::new() } else { format!(" (content-type {content_type})") };
        SkillError::backend(service, Some(200), format!("the reply to POST /generate is unusable{ct}: {why}"))
    })?;
    Ok((writer.finish()?, movie))
}

/// The video track's facts, when the MP4 has one.
fn made(movie: &Movie) -> Option<Made> {
    let v = movie.video()?;
    Some(Made {
        frames: v.samples,
        seconds: v.seconds,
        width: v.width,
        height: v.height,
        video_codec: v.codec.clone(),
        audio_codec: movie.audio().map(|a| a.codec.clone()),
    })
}

/// Runs `work` until it finishes or the caller cancels (checked every
/// [`CANCEL_POLL`]), so a cancelled call returns at once instead of waiting
/// minutes for HuMo.
async fn until_cancelled<T>(
    cx: &Invocation,
    work: impl Future<Output = Result<T, SkillError>>,
) -> Result<T, SkillError> {
    let watch = async {
        loop {
            c41_kit::wstd::task::sleep(CANCEL_POLL.into()).await;
            if cx.cancelled() {
                return Err(SkillError::Cancelled);
            }
        }
    };
    let mut work = pin!(work);
    let mut watch = pin!(watch);
    poll_fn(|ctx| {
        if let Poll::Ready(r) = work.as_mut().poll(ctx) {
            return Poll::Ready(r);
        }
        watch.as_mut().poll(ctx)
    })
    .await
}

c41_kit::skill!(LipSync);

c41_kit::input_schema_test!(Input);
