//! A ComfyUI client that runs inside the sandbox, shared by every
//! ComfyUI-driven skill so none of them re-learns the server's quirks.
//!
//! A skill loads a [`Workflow`] (a template plus bindings, see [`workflow`]),
//! fills a [`Job`] and calls [`run`], which:
//!
//! 1. picks a backend among the granted `comfyui` services: reachable, with
//!    the nodes and model files the graph names, shortest queue first;
//! 2. uploads file inputs (`/upload/image`) and binds the names the server
//!    returns (it renames clashes);
//! 3. opens the websocket *before* submitting (events go only to the
//!    submitting client id) and submits with its own uuid4 `prompt_id`; a
//!    backend that cannot be reached or answers 5xx is skipped for the next;
//! 4. follows the job ([`follow`]) with live progress and previews, deciding
//!    the outcome only from the server's records;
//! 5. streams every output file from `/view` into the artifact sink.
//!
//! Auth headers are added by the host per service; nothing here sees them.

pub mod check;
pub mod client;
pub mod errors;
pub mod follow;
pub mod protocol;
pub mod workflow;

pub use check::check;
pub use client::{Backend, CallError, SubmitError};
pub use follow::{Finished, FollowOptions, Followed};
pub use protocol::OutputFile;
pub use workflow::{Instance, Library, Lora, Sidecar, Workflow};

use crate::progress::Progress;
use crate::{Artifact, Invocation, SkillError, artifacts, inputs, log, settings};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The service kind the skills declare and the config grants.
pub const SERVICE_KIND: &str = "comfyui";

/// Whether a skill that also has a dedicated HTTP service of kind `own`
/// (HuMo, MMAudio) runs on ComfyUI instead: `settings.backend` (`"comfyui"`
/// or `own`) when set; else ComfyUI only when no `own` service is granted
/// and a `comfyui` one is.
pub fn chosen_over(own: &str, skill: &str, settings: &Value) -> Result<bool, SkillError> {
    match settings.get("backend").and_then(Value::as_str) {
        Some(SERVICE_KIND) => Ok(true),
        Some(b) if b == own => Ok(false),
        Some(other) => Err(SkillError::Denied {
            target: "settings".into(),
            reason: format!("[skills.{skill}.settings] backend = {other:?}: expected \"{own}\" or \"comfyui\""),
        }),
        None => Ok(settings::services_of_kind(own).is_empty() && !settings::services_of_kind(SERVICE_KIND).is_empty()),
    }
}

/// Folder uploads go to on the server (`input/c41/...`), to keep the
/// user's own inputs apart.
pub const UPLOAD_SUBFOLDER: &str = "c41";

/// ComfyUI ≥ 0.38 accepts no `prompt_id` but a lowercase uuid4.
pub use crate::uuid4;

/// Knobs from the skill's settings (`poll-ms`, `stall-secs`).
#[derive(Debug, Clone)]
pub struct Options {
    /// How often to poll the server's records (default 2000 ms).
    pub poll: Duration,
    /// Socket silence while a job runs that is reported once (default 15 s);
    /// never a reason to reconnect (see [`follow`]).
    pub stall: Duration,
    /// How long the backend running a job may stay unreachable before the
    /// job is submitted again to another granted backend that has its
    /// models (`failover-secs`, default 20 s; with one backend the job waits
    /// up to [`follow::LOST_CONTACT`] for it to come back).
    pub failover: Duration,
    /// The stem to store the job's (first) output file under, as the
    /// skill's other backends name it (`lipsync.mp4`, not ComfyUI's
    /// `lipsync_00001_.mp4`); the extension stays the server's. `None`:
    /// ComfyUI's file names.
    pub store_as: Option<String>,
}

impl Options {
    /// Read `poll-ms` and `stall-secs` from the settings object.
    pub fn from_settings(settings: &Value) -> Options {
        let num = |k: &str| settings.get(k).and_then(Value::as_f64);
        Options {
            poll: Duration::from_millis(num("poll-ms").unwrap_or(2000.0).clamp(50.0, 60_000.0) as u64),
            stall: Duration::from_secs_f64(num("stall-secs").unwrap_or(15.0).clamp(0.2, 3600.0)),
            failover: Duration::from_secs_f64(num("failover-secs").unwrap_or(20.0).clamp(0.2, 3600.0)),
            store_as: None,
        }
    }
}

/// A file input to upload and bind: the workflow parameter it sets and the
/// input field (`"format": "c41-file"`) it comes from.
#[derive(Debug, Clone)]
pub struct FileParam {
    /// Workflow parameter (`image`).
    pub param: String,
    /// Skill input field (`image`).
    pub field: String,
}

/// A folder of files a job reads as a whole (a training set): uploaded into
/// `subfolder` of the server's input directory on each backend the job is
/// sent to, and bound to `param` as that folder's name. A subfolder of its
/// own per invocation keeps two jobs' files apart.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Workflow parameter the folder name sets (`dataset`).
    pub param: String,
    /// Folder below `input/` (`c41-lora/<invocation id>`).
    pub subfolder: String,
    /// Its files.
    pub files: Vec<DatasetFile>,
}

/// One file of a [`Dataset`].
#[derive(Debug, Clone)]
pub enum DatasetFile {
    /// A file input (`images/0`), uploaded as `name`.
    Input {
        /// The input field.
        field: String,
        /// Its name on the server.
        name: String,
    },
    /// Text the skill made (a caption), uploaded as `name`.
    Text {
        /// Its name on the server.
        name: String,
        /// The text.
        text: String,
    },
}

impl DatasetFile {
    fn name(&self) -> &str {
        match self {
            DatasetFile::Input { name, .. } | DatasetFile::Text { name, .. } => name,
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Job<'a> {
    /// The checked workflow.
    pub workflow: &'a Workflow,
    /// Parameter values (`prompt`, `seed`, `width`, ...).
    pub params: Map<String, Value>,
    /// File inputs to upload.
    pub files: Vec<FileParam>,
    /// A folder to upload, if the workflow reads one.
    pub dataset: Option<Dataset>,
    /// Files the graph writes without reporting them (`SaveLoRANode`), at
    /// names the skill derives: downloaded first, before the reported ones.
    pub unreported: Vec<OutputFile>,
}

/// Wall-clock time of each phase, in the outcome's data.
#[derive(Debug, Clone, Default)]
pub struct Timings {
    /// Choosing a backend and uploading.
    pub prepare: Duration,
    /// Waiting in the server's queue.
    pub queued: Duration,
    /// Running on the server.
    pub run: Duration,
    /// Downloading outputs.
    pub download: Duration,
    /// All of it.
    pub total: Duration,
}

impl Timings {
    /// As JSON milliseconds.
    pub fn to_json(&self) -> Value {
        let ms = |d: Duration| d.as_millis() as u64;
        json!({
            "prepare_ms": ms(self.prepare),
            "queued_ms": ms(self.queued),
            "run_ms": ms(self.run),
            "download_ms": ms(self.download),
            "total_ms": ms(self.total),
        })
    }
}

/// A finished job.
#[derive(Debug, Clone)]
pub struct Done {
    /// The backend that ran it (config name).
    pub backend: String,
    /// The job's id on that backend.
    pub prompt_id: String,
    /// The graph as sent and what was applied.
    pub instance: Instance,
    /// The stored files, in the order the server listed them.
    pub artifacts: Vec<Artifact>,
    /// The server's names for them.
    pub files: Vec<OutputFile>,
    /// What each stored file is, read while it downloaded (length, video
    /// size, frames, fps): what a skill reports must be what the file holds,
    /// not what a binding asked for.
    pub media: Vec<Option<crate::media::Info>>,
    /// Phase timings.
    pub timings: Timings,
    /// Uploaded inputs: parameter → name on the server.
    pub uploads: Map<String, Value>,
}

impl Done {
    /// The common part of a skill's `data`.
    pub fn data(&self, workflow: &Workflow) -> Value {
        json!({
            "workflow": workflow.name,
            "backend": self.backend,
            "prompt_id": self.prompt_id,
            "params": self.instance.applied,
            "ignored": self.instance.ignored,
            "uploads": self.uploads,
            "files": self.files.iter().zip(&self.artifacts).map(|(f, a)| json!({
                "server_name": f.filename, "subfolder": f.subfolder, "path": a.path, "mime": a.mime, "bytes": a.bytes, "sha256": a.sha256,
            })).collect::<Vec<_>>(),
            "timings": self.timings.to_json(),
        })
    }
}

/// What a backend probe found.
struct Probe {
    backend: Backend,
    queue: u64,
}

/// The `models/` folder a loader input reads its file list from.
fn model_folder(class: &str, input: &str) -> Option<&'static str> {
    Some(match (class, input) {
        ("UNETLoader", "unet_name") => "diffusion_models",
        ("CLIPLoader" | "DualCLIPLoader", _) => "text_encoders",
        ("VAELoader", "vae_name") => "vae",
        ("CheckpointLoaderSimple", "ckpt_name") => "checkpoints",
        ("LoraLoader" | "LoraLoaderModelOnly", "lora_name") => "loras",
        ("CLIPVisionLoader", "clip_name") => "clip_vision",
        ("AudioEncoderLoader", _) => "audio_encoders",
        ("UpscaleModelLoader", _) => "upscale_models",
        _ if class.starts_with("MMAudio") => "mmaudio",
        _ => return None,
    })
}

/// Class → is it there, and its combo lists; per backend, asked once each.
async fn lacks(backend: &Backend, graph: &Value, skip: &[(String, String)]) -> Result<Vec<String>, CallError> {
    let Some(nodes) = graph.as_object() else { return Ok(Vec::new()) };
    let mut defs: BTreeMap<String, Option<Value>> = BTreeMap::new();
    let mut missing = Vec::new();
    for (id, node) in nodes {
        let class = node.get("class_type").and_then(Value::as_str).unwrap_or_default().to_string();
        if !defs.contains_key(&class) {
            let def = backend.object_info(&class).await?;
            if def.is_none() {
                missing.push(format!("node type {class}: {}", errors::missing_node_fix(&class)));
            }
            defs.insert(class.clone(), def);
        }
        let Some(def) = defs.get(&class).cloned().flatten() else { continue };
        for (input, value) in node.get("inputs").and_then(Value::as_object).into_iter().flatten() {
            let Some(value) = value.as_str() else { continue };
            if skip.iter().any(|(n, i)| n == id && i == input) {
                continue;
            }
            let spec = def
                .pointer(&format!("/input/required/{input}"))
                .or_else(|| def.pointer(&format!("/input/optional/{input}")));
            let options = match spec.and_then(|s| s.get(0)) {
                Some(Value::Array(list)) => list.clone(),
                Some(Value::String(s)) if s == "COMBO" => {
                    spec.and_then(|s| s.pointer("/1/options")).and_then(Value::as_array).cloned().unwrap_or_default()
                }
                _ => continue,
            };
            if !options.iter().any(|o| o.as_str() == Some(value)) {
                let place = match model_folder(&class, input) {
                    Some(folder) => format!("put it in ComfyUI/models/{folder} on that server"),
                    None => "put it where that node loads from on that server".to_string(),
                };
                missing.push(format!("'{value}' ({class}.{input}: {place})"));
            }
        }
    }
    Ok(missing)
}

/// Reachable backends able to run `graph`, shortest queue first (config
/// order breaks ties). With one reachable backend the capability check is
/// skipped: its own 400 names the missing piece more precisely.
async fn choose(
    services: Vec<settings::Service>,
    graph: &Value,
    skip: &[(String, String)],
    check_one: bool,
) -> Result<Vec<Probe>, SkillError> {
    let mut up = Vec::new();
    let mut down = Vec::new();
    for s in services {
        let b = Backend::new(s);
        match b.queue_remaining().await {
            Ok(queue) => up.push(Probe { backend: b, queue }),
            Err(e) => {
                log::warn("comfyui backend unavailable", &[("backend", b.name()), ("error", &e.to_string())]);
                down.push(format!("{} ({}): {e}", b.name(), b.service.url));
            }
        }
    }
    if up.is_empty() {
        return Err(SkillError::backend(
            SERVICE_KIND,
            None,
            format!("no ComfyUI backend is reachable: {}", down.join("; ")),
        ));
    }
    up.sort_by_key(|p| p.queue);
    // One backend: its own validation says what is missing, unless a
    // dataset would be uploaded first for nothing.
    if up.len() == 1 && !check_one {
        return Ok(up);
    }
    let mut able = Vec::new();
    let mut unable = Vec::new();
    for p in up {
        match lacks(&p.backend, graph, skip).await {
            Ok(m) if m.is_empty() => able.push(p),
            Ok(m) => unable.push(format!("{} lacks {}", p.backend.name(), m.join(", "))),
            Err(e) => unable.push(format!("{}: {e}", p.backend.name())),
        }
    }
    if able.is_empty() {
        let mut why = unable;
        why.extend(down.into_iter().map(|d| format!("{d} (down)")));
        return Err(SkillError::backend(
            SERVICE_KIND,
            None,
            format!("no ComfyUI backend can run this workflow: {}", why.join("; ")),
        ));
    }
    for u in &unable {
        log::info("comfyui backend skipped", &[("why", u)]);
    }
    Ok(able)
}

/// The files to download: the sidecar's output nodes, or every `output`
/// file (previews in `temp` are not results).
fn outputs_of(finished: &Finished, workflow: &Workflow) -> Vec<OutputFile> {
    match workflow.outputs() {
        Some(nodes) => nodes.iter().flat_map(|n| finished.entry.files_of(n)).collect(),
        None => finished
            .entry
            .outputs
            .keys()
            .flat_map(|n| finished.entry.files_of(n))
            .filter(|f| f.kind == "output")
            .collect(),
    }
}

/// Stream one `/view` into an artifact; one retry, since a dropped
/// connection leaves no partial file behind.
async fn download(
    backend: &Backend,
    file: &OutputFile,
    (index, count): (usize, usize),
    store_as: Option<&str>,
) -> Result<(Artifact, Option<crate::media::Info>), SkillError> {
    let mime = protocol::mime_for(&file.filename);
    let stored_name = match (store_as, file.filename.rsplit_once('.')) {
        (Some(stem), Some((_, ext))) => format!("{stem}.{ext}"),
        (Some(stem), None) => stem.to_string(),
        (None, _) => file.filename.clone(),
    };
    let mut last = None;
    for _attempt in 0..2 {
        let mut resp = match backend.view(file).await {
            Ok(r) => r,
            Err(e) => {
                last = Some(backend.fail(&format!("downloading {}", file.filename), e));
                continue;
            }
        };
        let total = resp.content_length();
        let base = 0.90 + 0.10 * index as f32 / count as f32;
        let span = 0.10 / count as f32;
        let name = file.filename.clone();
        // The host copies the file from the connection into the store; the
        // probe reads only the header (and an MP4's `moov`).
        let mut probe = crate::media::Probe::new();
        let r = artifacts::save_streamed(&stored_name, mime, &mut resp, backend.name(), &mut probe, |done| {
            let p = Progress::stage("download").message(format!("{name}: {done} bytes"));
            match total {
                Some(t) if t > 0 => p.fraction(base + span * (done as f32 / t as f32)).report(),
                _ => p.fraction(base).report(),
            }
            Ok(())
        })
        .await;
        match r {
            Ok(a) => return Ok((a, probe.finish().info())),
            Err(SkillError::Backend { message, .. }) => {
                log::warn("comfyui download failed", &[("file", &file.filename), ("error", &message)]);
                last = Some(backend.error(
                    None,
                    format!("downloading {} from /view broke off ({message}); nothing was stored", file.filename),
                ));
            }
            Err(e) => return Err(e),
        }
    }
    let mut e = last.unwrap_or_else(|| SkillError::internal("download failed"));
    if let SkillError::Backend { message, .. } = &mut e {
        message.push_str(" (tried twice)");
    }
    Err(e)
}

/// Run `job` on the best granted backend and store its outputs.
pub async fn run(cx: &Invocation, job: Job<'_>, opts: &Options) -> Result<Done, SkillError> {
    let t0 = Instant::now();
    let wf = job.workflow;
    settings::require_service(SERVICE_KIND)?;
    let services = settings::services_of_kind(SERVICE_KIND);
    for r in wf.required() {
        let given = job.params.get(r).is_some_and(|v| !v.is_null())
            || job.files.iter().any(|f| &f.param == r)
            || job.dataset.as_ref().is_some_and(|d| &d.param == r);
        if !given {
            return Err(SkillError::invalid(r.as_str(), format!("workflow `{}` needs `{r}`", wf.name)));
        }
    }
    for f in &job.files {
        if !wf.binds(&f.param) {
            return Err(SkillError::invalid(
                f.field.as_str(),
                format!("workflow `{}` takes no `{}` input", wf.name, f.param),
            ));
        }
    }
    let mut instance = wf.instantiate(&job.params)?;
    // File inputs are opened (and checked) now, and streamed from the host
    // to whichever backend runs the job, opened again for each attempt.
    let mut files = Vec::new();
    for f in &job.files {
        let file = inputs::open(&f.field)?;
        if file.size() == 0 {
            return Err(SkillError::invalid(f.field.as_str(), format!("{} is empty", file.name())));
        }
        files.push((f.clone(), file.name()));
    }
    if let Some(d) = &job.dataset {
        if !wf.binds(&d.param) {
            return Err(SkillError::invalid(
                d.param.as_str(),
                format!("workflow `{}` reads no `{}` folder", wf.name, d.param),
            ));
        }
        for f in &d.files {
            if let DatasetFile::Input { field, .. } = f
                && inputs::open(field)?.size() == 0
            {
                return Err(SkillError::invalid(field.as_str(), "the file is empty"));
            }
        }
    }
    let mut skip: Vec<(String, String)> = job.files.iter().flat_map(|f| instance.targets(&f.param)).collect();
    skip.extend(job.dataset.iter().flat_map(|d| instance.targets(&d.param)));
    let unreported = &job.unreported;

    if let Some(done) = resume(cx, &services, &mut instance, wf, opts, t0, unreported).await? {
        return Ok(done);
    }
    Progress::stage("connect")
        .fraction(0.0)
        .message(format!("choosing among {} ComfyUI backend(s)", services.len()))
        .report();
    let mut candidates: std::collections::VecDeque<Probe> =
        choose(services, &instance.graph, &skip, job.dataset.is_some()).await?.into();
    let mut failures = Vec::new();
    let mut lost: Option<(String, String)> = None;
    let mut moved = false;
    while let Some(probe) = candidates.pop_front() {
        cx.check_cancelled()?;
        let backend = probe.backend;
        match lost.take() {
            // Said once, where a person or an agent reads progress.
            Some((from, why)) => {
                log::warn(
                    "comfyui backend went away mid-job; running the job again",
                    &[("from", &from), ("to", backend.name()), ("why", &why)],
                );
                Progress::stage("connect")
                    .fraction(0.02)
                    .message(format!("{from} went away ({why}); running again on {}", backend.name()))
                    .report();
            }
            None => Progress::stage("connect")
                .fraction(0.02)
                .message(format!("using {} ({} job(s) queued)", backend.name(), probe.queue))
                .report(),
        }
        let mut uploads = Map::new();
        let mut upload_failed = None;
        for (f, name) in &files {
            Progress::stage("upload")
                .fraction(0.03)
                .message(format!("uploading {name} to {}", backend.name()))
                .report();
            match backend.upload(inputs::open(&f.field)?, UPLOAD_SUBFOLDER).await {
                Ok(reply) => {
                    let value = Value::String(reply.loader_value());
                    instance.set(&f.param, &value)?;
                    uploads.insert(f.param.clone(), value);
                }
                Err(e) if e.is_retryable() => {
                    upload_failed = Some(e);
                    break;
                }
                Err(e) => return Err(backend.fail(&format!("uploading {name}"), e)),
            }
        }
        if upload_failed.is_none()
            && let Some(d) = &job.dataset
        {
            match upload_dataset(&backend, d).await? {
                Ok(()) => {
                    let folder = Value::String(d.subfolder.clone());
                    instance.set(&d.param, &folder)?;
                    uploads.insert(d.param.clone(), folder);
                }
                Err(e) if e.is_retryable() => upload_failed = Some(e),
                Err(e) => return Err(backend.fail("uploading the dataset", e)),
            }
        }
        if let Some(e) = upload_failed {
            failures.push(format!("{}: {e}", backend.name()));
            continue;
        }
        // Connect before submitting: events go only to a socket that was
        // there when the job started. Without one we still follow by polling.
        // Each job's socket has an id of its own, never reused (see
        // `follow`'s module docs for what reusing one does on ComfyUI).
        let client_id = uuid4().replace('-', "");
        let ws = match crate::websocket::connect(&backend.ws_url(&client_id), backend.name()) {
            Ok(ws) => Some(ws),
            Err(e) => {
                log::warn(
                    "comfyui websocket unavailable; following by polling",
                    &[("backend", backend.name()), ("error", &e.to_string())],
                );
                None
            }
        };
        cx.check_cancelled()?;
        let prompt_id = uuid4();
        let prepare = t0.elapsed();
        // Remembered before it is sent: a host stopped while the request is
        // on its way (or before the reply) must find the job on resume, not
        // submit a second one. A job that never arrived reads as gone then,
        // and the resumed call starts over.
        remember(cx, &backend, &prompt_id, &client_id, &uploads);
        match backend.submit(&wf.name, &instance.graph, &prompt_id, &client_id).await {
            Ok(_) => {}
            Err(SubmitError::Rejected(message)) => {
                forget(cx);
                return Err(backend.error(Some(400), message));
            }
            Err(SubmitError::Call(e)) if e.is_retryable() => {
                forget(cx);
                log::warn(
                    "comfyui submit failed; trying the next backend",
                    &[("backend", backend.name()), ("error", &e.to_string())],
                );
                failures.push(format!("{}: {e}", backend.name()));
                continue;
            }
            Err(SubmitError::Call(e)) => {
                forget(cx);
                return Err(backend.fail("submitting the workflow", e));
            }
        }
        log::info(
            "comfyui job submitted",
            &[("backend", backend.name()), ("prompt_id", &prompt_id), ("workflow", &wf.name)],
        );
        Progress::stage("queued").fraction(0.05).message(format!("submitted to {}", backend.name())).report();
        // Dispatches at the same instant (other calls, other processes) all
        // saw the same idle backend. The server's queue settles who was
        // first: a job that finds itself waiting while another backend with
        // its models is idle moves there, once.
        if !moved && let Some(to) = idle_elsewhere(&backend, &prompt_id, &mut candidates).await {
            moved = true;
            log::info(
                "comfyui job moved to an idle backend",
                &[("from", backend.name()), ("to", &to), ("prompt_id", &prompt_id)],
            );
            Progress::stage("queued")
                .fraction(0.05)
                .message(format!("{} got another job first; moving to idle {to}", backend.name()))
                .report();
            forget(cx);
            candidates.push_back(Probe { backend, queue: 0 });
            continue;
        }
        // Another backend can take the job over only if one is left to try.
        let failover = (!candidates.is_empty()).then_some(opts.failover);
        let name = backend.name().to_string();
        let done = finish(
            cx,
            backend,
            ws,
            prompt_id,
            instance.clone(),
            uploads,
            (wf, unreported),
            opts,
            failover,
            (t0, prepare),
        )
        .await;
        match done {
            Ok(Attempt::Lost(why)) => {
                failures.push(format!("{name}: went away mid-job ({why})"));
                lost = Some((name, why));
                continue;
            }
            Ok(Attempt::Done(d)) => {
                forget(cx);
                return Ok(*d);
            }
            Err(e) => {
                forget(cx);
                return Err(e);
            }
        }
    }
    forget(cx);
    Err(SkillError::backend(SERVICE_KIND, None, format!("every ComfyUI backend failed: {}", failures.join("; "))))
}

/// Upload every file of `d` into its subfolder on `backend`, under the names
/// it gives (captions pair with images by name, so a renamed upload is an
/// error). The inner error is the server's; the outer, an input's.
async fn upload_dataset(backend: &Backend, d: &Dataset) -> Result<Result<(), CallError>, SkillError> {
    let n = d.files.len();
    for (i, f) in d.files.iter().enumerate() {
        if i % 8 == 0 || i + 1 == n {
            Progress::stage("upload")
                .fraction(0.03)
                .message(format!("uploading the dataset to {}: file {} of {n}", backend.name(), i + 1))
                .report();
        }
        let reply = match f {
            DatasetFile::Input { field, name } => backend.upload_as(inputs::open(field)?, name, &d.subfolder).await,
            DatasetFile::Text { name, text } => {
                backend.upload_bytes(name, text.clone().into_bytes(), &d.subfolder).await
            }
        };
        match reply {
            Ok(r) if r.name == f.name() => {}
            Ok(r) => {
                return Ok(Err(CallError::Protocol(format!(
                    "{} stored {} as {} in input/{}: the folder is not this job's alone",
                    backend.name(),
                    f.name(),
                    r.name,
                    d.subfolder
                ))));
            }
            Err(e) => return Ok(Err(e)),
        }
    }
    Ok(Ok(()))
}

/// If job `id` waits in `backend`'s queue while one of `others` is idle,
/// take the job off this queue (only while it still waits) and put the idle
/// backend first; its name. Best effort: any doubt keeps the job where it is.
async fn idle_elsewhere(backend: &Backend, id: &str, others: &mut std::collections::VecDeque<Probe>) -> Option<String> {
    if others.is_empty() {
        return None;
    }
    let Ok(follow::Status::Pending { ahead }) = follow::status(backend, id).await else { return None };
    if ahead == 0 {
        return None;
    }
    let mut idle = None;
    for (i, p) in others.iter().enumerate() {
        if p.backend.queue_remaining().await.is_ok_and(|q| q == 0) {
            idle = Some(i);
            break;
        }
    }
    let i = idle?;
    backend.delete(id).await.ok()?;
    // Gone from the queue and never ran: only then is it safe to submit again.
    if !matches!(backend.queue().await.map(|q| q.place(id)), Ok(protocol::QueuePlace::Absent))
        || !matches!(backend.history(id).await, Ok(None))
    {
        return None;
    }
    let p = others.remove(i)?;
    let name = p.backend.name().to_string();
    others.push_front(p);
    Some(name)
}

/// How one backend's attempt at a job ended, short of an error.
enum Attempt {
    Done(Box<Done>),
    /// The backend went away mid-job (see [`Followed::Lost`]).
    Lost(String),
}

/// Follow a submitted job to its end and store its outputs.
#[allow(clippy::too_many_arguments)]
async fn finish(
    cx: &Invocation,
    backend: Backend,
    ws: Option<crate::websocket::WebSocket>,
    prompt_id: String,
    instance: Instance,
    uploads: Map<String, Value>,
    (wf, unreported): (&Workflow, &[OutputFile]),
    opts: &Options,
    failover: Option<Duration>,
    (t0, prepare): (Instant, Duration),
) -> Result<Attempt, SkillError> {
    // Keep a margin for downloads and for reporting before the host's
    // deadline stops us.
    let remaining = Duration::from_millis(cx.remaining_ms());
    let margin = (remaining / 10).clamp(Duration::from_secs(2), Duration::from_secs(30));
    let deadline = Instant::now() + remaining.saturating_sub(margin);
    let fopts = FollowOptions { poll: opts.poll, stall: opts.stall, deadline, failover };
    let finished = match follow::follow(cx, &backend, ws, &prompt_id, &instance.graph, &fopts).await? {
        Followed::Finished(f) => f,
        Followed::Lost(why) => return Ok(Attempt::Lost(why)),
    };

    let t_dl = Instant::now();
    let mut outputs: Vec<OutputFile> = unreported.to_vec();
    outputs.extend(outputs_of(&finished, wf));
    let ws_images: Vec<&follow::WsImage> =
        finished.ws_images.iter().filter(|i| wf.outputs().is_none_or(|nodes| nodes.contains(&i.node))).collect();
    if outputs.is_empty() && ws_images.is_empty() {
        let nodes: Vec<&String> = finished.entry.outputs.keys().collect();
        return Err(backend.error(
            None,
            format!(
                "job {prompt_id} succeeded but produced no output files (nodes with outputs: {nodes:?}); does the workflow end in a Save node?"
            ),
        ));
    }
    let (mut stored, mut media) = (Vec::new(), Vec::new());
    for (i, f) in outputs.iter().enumerate() {
        cx.check_cancelled()?;
        let store_as = opts.store_as.as_deref().filter(|_| i == 0);
        let (artifact, info) = download(&backend, f, (i, outputs.len()), store_as).await?;
        stored.push(artifact);
        media.push(info);
    }
    // SaveImageWebsocket's images came over the socket; ComfyUI keeps no
    // file of them. Named after the workflow and the node.
    for (n, img) in ws_images.iter().enumerate() {
        let ext = if img.mime == "image/jpeg" { "jpg" } else { "png" };
        let filename = format!("{}_{}_{:05}.{ext}", wf.name, img.node, n + 1);
        let mut w = artifacts::create(&filename, img.mime)?;
        w.write_all(&img.bytes)?;
        stored.push(w.finish()?);
        media.push(None);
        outputs.push(OutputFile { filename, subfolder: String::new(), kind: "websocket".into() });
    }
    Progress::stage("done").fraction(1.0).message(format!("{} file(s) from {}", stored.len(), backend.name())).report();
    let timings =
        Timings { prepare, queued: finished.queued, run: finished.ran, download: t_dl.elapsed(), total: t0.elapsed() };
    Ok(Attempt::Done(Box::new(Done {
        backend: backend.name().to_string(),
        prompt_id,
        instance,
        artifacts: stored,
        files: outputs,
        media,
        timings,
        uploads,
    })))
}

// ---- resuming after a restart of the host ----------------------------------

/// The job an invocation submitted, kept in the host's per-skill state until
/// the invocation ends, so that `c41 resume` (the same invocation id, after
/// the host was killed or restarted) follows the job already running on the
/// server instead of generating it again.
fn job_key(cx: &Invocation) -> String {
    format!("comfyui-job:{}", cx.id)
}

/// The longest the host keeps state (24 h): a job older than that is
/// generated again.
const JOB_TTL: Duration = Duration::from_secs(24 * 60 * 60);

fn remember(cx: &Invocation, backend: &Backend, prompt_id: &str, client_id: &str, uploads: &Map<String, Value>) {
    let saved = json!({"backend": backend.name(), "prompt_id": prompt_id, "client_id": client_id, "uploads": uploads});
    crate::state::set(&job_key(cx), &saved.to_string(), JOB_TTL);
}

/// The invocation ended, either way (a cancel or timeout has already
/// removed the job from the server): nothing is left to resume. Only a host
/// that dies mid-job leaves the record behind.
fn forget(cx: &Invocation) {
    crate::state::clear(&job_key(cx));
}

/// If this invocation already submitted a job that its backend still knows
/// (queued, running or finished), follow that job to its end.
async fn resume(
    cx: &Invocation,
    services: &[settings::Service],
    instance: &mut Instance,
    wf: &Workflow,
    opts: &Options,
    t0: Instant,
    unreported: &[OutputFile],
) -> Result<Option<Done>, SkillError> {
    let Some(saved) = crate::state::get(&job_key(cx)).and_then(|s| serde_json::from_str::<Value>(&s).ok()) else {
        return Ok(None);
    };
    let (Some(name), Some(prompt_id)) = (saved["backend"].as_str(), saved["prompt_id"].as_str()) else {
        return Ok(None);
    };
    let Some(service) = services.iter().find(|s| s.name == name) else {
        log::warn("comfyui job to resume is on a backend no longer granted; starting over", &[("backend", name)]);
        return Ok(None);
    };
    let backend = Backend::new(service.clone());
    match follow::status(&backend, prompt_id).await {
        Ok(follow::Status::Gone(why)) => {
            log::warn("comfyui job to resume is gone; starting over", &[("prompt_id", prompt_id), ("why", &why)]);
            return Ok(None);
        }
        Err(e) => {
            log::warn(
                "cannot check the comfyui job to resume; starting over",
                &[("prompt_id", prompt_id), ("error", &e.to_string())],
            );
            return Ok(None);
        }
        Ok(_) => {}
    }
    let uploads = saved["uploads"].as_object().cloned().unwrap_or_default();
    for (param, value) in &uploads {
        instance.set(param, value)?;
    }
    log::info("resuming comfyui job", &[("backend", name), ("prompt_id", prompt_id)]);
    Progress::stage("queued")
        .fraction(0.05)
        .message(format!("resumed job {prompt_id} on {name}, submitted before the restart"))
        .report();
    // The job's events go only to its submitter's socket id. The socket of
    // the process that submitted it closed when that process died (and
    // ComfyUI unregistered the id then), so this one takes the id over.
    let client_id = saved["client_id"].as_str().unwrap_or(&cx.id);
    let ws = crate::websocket::connect(&backend.ws_url(client_id), backend.name()).ok();
    let done = finish(
        cx,
        backend,
        ws,
        prompt_id.to_string(),
        instance.clone(),
        uploads,
        (wf, unreported),
        opts,
        None,
        (t0, Duration::ZERO),
    )
    .await;
    forget(cx);
    match done? {
        Attempt::Done(d) => Ok(Some(*d)),
        Attempt::Lost(why) => Err(SkillError::internal(format!("following the resumed job {prompt_id}: {why}"))),
    }
}
