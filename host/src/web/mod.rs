//! The studio's page, served by `c41 serve` at `/`, for a person watching
//! the studio's jobs: the runs (live progress, queue place, backend, the
//! latest sampler preview, cancel and resume), a gallery of the files they
//! made, the services' health, and a form, generated from a skill's input
//! schema, that starts a run.
//!
//! The page is plain HTML, CSS and JavaScript embedded in the binary (no
//! build step); it talks to the small JSON API below, and live updates come
//! as server-sent events. It sees the same runs as MCP clients do: they are
//! the [`Registry`](crate::mcp::runs::Registry) of the daemon's one [`McpServer`]. Every route sits
//! behind the daemon's guard (Host, Origin, token).
//!
//! | route | what |
//! |---|---|
//! | `GET /api/runs` | this daemon's runs and the journal's older ones |
//! | `GET /api/events` | `runs` events: this daemon's runs, on every change |
//! | `POST /api/runs` | `{skill, input}` starts a run (input checked first) |
//! | `POST /api/runs/{id}/cancel`, `/resume` | cancel a run, resume an interrupted one |
//! | `GET /api/runs/{id}/preview` | its latest preview image |
//! | `GET /api/outputs` | stored files, newest first, with input, seed, reference |
//! | `GET /api/skills`, `/api/services` | input schemas; the `doctor` view |
//! | `GET /files/{name}` | a file of the output directory (ranges for players) |

use crate::mcp::McpServer;
use crate::mcp::runs::Run;
use crate::runs::{RunRecord, Status};
use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::convert::Infallible;
use std::time::Duration;

/// The page and its API, for `server`'s runs.
pub fn routes(server: McpServer) -> axum::Router {
    axum::Router::new()
        .route("/", get(|| async { page(include_str!("page/index.html"), "text/html; charset=utf-8") }))
        .route("/app.js", get(|| async { page(include_str!("page/app.js"), "text/javascript; charset=utf-8") }))
        .route("/style.css", get(|| async { page(include_str!("page/style.css"), "text/css; charset=utf-8") }))
        .route("/api/runs", get(runs).post(start))
        .route("/api/events", get(events))
        .route("/api/runs/{id}/preview", get(preview))
        .route("/api/runs/{id}/cancel", post(cancel))
        .route("/api/runs/{id}/resume", post(resume))
        .route("/api/outputs", get(outputs))
        .route("/api/skills", get(skills))
        .route("/api/services", get(services))
        .route("/files/{name}", get(file))
        .with_state(server)
}

/// Most runs and files a listing returns.
const LISTED: usize = 100;
/// Changes that come closer together than this go out as one event.
const COALESCE: Duration = Duration::from_millis(150);

fn page(text: &'static str, mime: &'static str) -> Response {
    ([(header::CONTENT_TYPE, mime), (header::CACHE_CONTROL, "no-cache")], text).into_response()
}

/// An error the page shows as it is.
fn problem(status: StatusCode, why: impl Into<String>) -> Response {
    (status, Json(json!({"error": why.into()}))).into_response()
}

/// A file of the output directory as the page links it.
fn file_view(path: &std::path::Path) -> Option<Value> {
    let name = path.file_name()?.to_str()?.to_string();
    let bytes = std::fs::metadata(path).ok()?.len();
    Some(json!({
        "file": name,
        "mime": mime_of(&name),
        "bytes": bytes,
        "reference": format!("artifact:{name}"),
        "url": format!("/files/{name}"),
    }))
}

/// The MIME type the page needs to pick an image, video or audio player:
/// the artifact store's own table.
fn mime_of(name: &str) -> &'static str {
    name.rsplit_once('.')
        .and_then(|(_, ext)| c41_artifacts::mime_for_extension(ext))
        .unwrap_or("application/octet-stream")
}

/// A run of this daemon, as the page shows it.
fn live_view(run: &Run) -> Value {
    let p = run.progress();
    let ended = run.ended();
    let state = match &ended {
        Some(e) => e.status,
        None if p.queued.is_some() => "waiting",
        None if run.cancel_requested() => "cancelling",
        None => "running",
    };
    let now = crate::files::now_ms();
    let ended_ms = ended.as_ref().map(|e| e.ended_ms);
    let preview = run.preview().map(|pv| format!("/api/runs/{}/preview?n={}", run.id, pv.number));
    json!({
        "id": run.id,
        "skill": run.skill,
        "live": true,
        "state": state,
        "stage": p.stage,
        "fraction": p.fraction,
        "step": p.step,
        "message": p.message,
        "backend": p.backend,
        "queue_position": p.queued.as_ref().map(|q| q.position),
        "started_ms": run.started_ms,
        "ended_ms": ended_ms,
        "elapsed_ms": ended_ms.unwrap_or(now).saturating_sub(run.started_ms),
        "preview": preview,
        "text": ended.as_ref().map(|e| e.text.clone()),
        "files": ended.as_ref().map(|e| e.artifacts.iter().filter_map(|a| file_view(&a.path)).collect::<Vec<_>>()),
    })
}

/// A run from the journal that this daemon did not start (an earlier one's,
/// a `c41 run`'s).
fn journal_view(server: &McpServer, r: &RunRecord) -> Value {
    let status = r.status();
    let preview =
        server.app().runs.as_ref().and_then(|l| l.preview_of(&r.id)).map(|_| format!("/api/runs/{}/preview", r.id));
    json!({
        "id": r.id,
        "skill": r.skill,
        "live": false,
        "state": status.as_str(),
        "resumable": status == Status::Interrupted,
        "started_ms": r.started_ms,
        "ended_ms": r.finished_ms,
        "elapsed_ms": r.finished_ms.map(|f| f.saturating_sub(r.started_ms)),
        "preview": preview,
        "text": r.error.clone().or_else(|| r.text.clone()),
        "files": r.files.iter().filter_map(|f| file_view(f)).collect::<Vec<_>>(),
    })
}

fn live_views(runs: &[std::sync::Arc<Run>]) -> Vec<Value> {
    runs.iter().take(LISTED).map(|r| live_view(r)).collect()
}

/// Reads the journal on the blocking pool.
async fn journal(server: &McpServer) -> Vec<RunRecord> {
    let Some(log) = server.app().runs.clone() else { return Vec::new() };
    tokio::task::spawn_blocking(move || log.list()).await.unwrap_or_default()
}

async fn runs(State(server): State<McpServer>) -> Response {
    let runs = server.runs().list();
    let mut list = live_views(&runs);
    let live: std::collections::HashSet<&str> = runs.iter().map(|r| r.id.as_str()).collect();
    for r in journal(&server).await.iter().filter(|r| !live.contains(r.id.as_str())) {
        if list.len() >= LISTED {
            break;
        }
        list.push(journal_view(&server, r));
    }
    Json(json!({"runs": list})).into_response()
}

/// `runs` events: this daemon's runs now, then after every change (changes
/// close together go out as one).
async fn events(State(server): State<McpServer>) -> Response {
    let changes = server.runs().changes();
    let stream = futures::stream::unfold((server, changes, true), |(server, mut changes, first)| async move {
        if !first {
            changes.changed().await.ok()?;
            tokio::time::sleep(COALESCE).await;
            changes.borrow_and_update();
        }
        let data = json!({"runs": live_views(&server.runs().list())}).to_string();
        let event = SseEvent::default().event("runs").data(data);
        Some((Ok::<_, Infallible>(event), (server, changes, false)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}

#[derive(serde::Deserialize)]
struct StartRun {
    skill: String,
    #[serde(default)]
    input: Value,
}

async fn start(
    State(server): State<McpServer>,
    body: Result<Json<StartRun>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return problem(StatusCode::BAD_REQUEST, format!("expected {{\"skill\", \"input\"}}: {e}")),
    };
    let app = server.app().clone();
    let Some(skill) = app.catalog.get(&req.skill) else {
        return problem(StatusCode::NOT_FOUND, format!("no skill named `{}`", req.skill));
    };
    let mut input = if req.input.is_null() { json!({}) } else { req.input };
    if let Value::Object(fields) = &mut input {
        // An empty form field means "not given".
        fields.retain(|_, v| !(v.is_null() || v.as_str() == Some("")));
    }
    // The same check the run makes, answered now so the form can say which
    // field is wrong.
    let mut checked = input.clone();
    skill.schema.apply_defaults(&mut checked);
    if let Err(e) = skill.schema.validate(&checked) {
        return problem(StatusCode::BAD_REQUEST, e.to_string());
    }
    let run = server.runs().start(app, "page", &req.skill, input);
    (StatusCode::ACCEPTED, Json(json!({"run": run.id}))).into_response()
}

async fn cancel(State(server): State<McpServer>, Path(id): Path<String>) -> Response {
    match server.runs().find(&id) {
        Ok(run) if run.result().is_none() => {
            run.cancel();
            (StatusCode::ACCEPTED, Json(json!({"run": run.id, "state": "cancelling"}))).into_response()
        }
        Ok(run) => problem(StatusCode::CONFLICT, format!("run {} has ended already", run.id)),
        Err(e) => problem(StatusCode::NOT_FOUND, e.to_string()),
    }
}

async fn resume(State(server): State<McpServer>, Path(id): Path<String>) -> Response {
    if let Ok(run) = server.runs().find(&id)
        && run.result().is_none()
    {
        return problem(StatusCode::CONFLICT, format!("run {} is still running", run.id));
    }
    let Some(log) = server.app().runs.clone() else {
        return problem(StatusCode::NOT_FOUND, "this daemon keeps no run journal (no state directory)");
    };
    let record = match tokio::task::spawn_blocking(move || log.find(&id)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return problem(StatusCode::NOT_FOUND, e.to_string()),
        Err(e) => return problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    if record.status() != Status::Interrupted {
        return problem(
            StatusCode::CONFLICT,
            format!("run {} is {}: only an interrupted run resumes", record.id, record.status().as_str()),
        );
    }
    let run = server.runs().resume(server.app().clone(), "page", record);
    (StatusCode::ACCEPTED, Json(json!({"run": run.id}))).into_response()
}

async fn preview(State(server): State<McpServer>, Path(id): Path<String>) -> Response {
    let image = |mime: String, bytes: Vec<u8>| {
        ([(header::CONTENT_TYPE, mime), (header::CACHE_CONTROL, "no-store".to_string())], bytes).into_response()
    };
    if let Ok(run) = server.runs().find(&id)
        && let Some(p) = run.preview()
    {
        return image(p.mime, p.bytes.as_ref().clone());
    }
    let kept = server.app().runs.as_ref().and_then(|l| l.preview_of(&id));
    match kept.and_then(|path| Some((mime_of(&path.to_string_lossy()), std::fs::read(path).ok()?))) {
        Some((mime, bytes)) => image(mime.to_string(), bytes),
        None => problem(StatusCode::NOT_FOUND, format!("run {id} has no preview")),
    }
}

/// Stored files, newest first: each with its run's skill, input and seed.
async fn outputs(State(server): State<McpServer>) -> Response {
    let mut files = Vec::new();
    let mut records = journal(&server).await;
    records.retain(|r| r.status() == Status::Ok && !r.files.is_empty());
    records.sort_by_key(|r| std::cmp::Reverse(r.finished_ms.unwrap_or(r.started_ms)));
    for r in &records {
        let seed = r.data.as_ref().and_then(|d| d.get("seed")).or_else(|| r.input.get("seed")).cloned();
        for f in r.files.iter().filter_map(|f| file_view(f)) {
            let mut entry = f;
            entry["run"] = json!(r.id);
            entry["skill"] = json!(r.skill);
            entry["input"] = r.input.clone();
            entry["seed"] = seed.clone().unwrap_or(Value::Null);
            entry["made_ms"] = json!(r.finished_ms);
            files.push(entry);
        }
        if files.len() >= LISTED {
            break;
        }
    }
    Json(json!({"files": files})).into_response()
}

async fn skills(State(server): State<McpServer>) -> Response {
    let list: Vec<Value> = server
        .app()
        .catalog
        .iter()
        .map(|s| {
            let d = &s.description;
            json!({"name": d.name, "summary": d.summary, "version": d.version, "services": d.services, "input_schema": d.input_schema})
        })
        .collect();
    Json(json!({"skills": list})).into_response()
}

/// The `c41 doctor` view: services reachable, grants, workflows ready.
async fn services(State(server): State<McpServer>) -> Response {
    let app = server.app().clone();
    let health = crate::cli::doctor::service_health(&app.config, Duration::from_secs(5)).await;
    let mut skills = Vec::new();
    for s in app.catalog.iter() {
        let d = &s.description;
        let (granted, problem) = match app.grants_in_force(s) {
            Ok((g, _)) => (g.into_iter().map(|g| g.name).collect::<Vec<_>>(), None),
            Err(e) => (Vec::new(), Some(e.to_string())),
        };
        let comfy = app.grants_in_force(s).is_ok_and(|(g, _)| g.iter().any(|g| g.kind == "comfyui"));
        let workflows = match comfy {
            false => Value::Null,
            true => match app.check_readiness(&d.name).await {
                Ok(r) => json!({"lines": r.text.lines().collect::<Vec<_>>(), "problems": r.data["problems"]}),
                Err(e) => json!({"lines": [], "problems": [format!("cannot check: {e}")]}),
            },
        };
        skills.push(json!({
            "name": d.name, "kinds": d.services, "granted": granted, "problem": problem, "workflows": workflows,
        }));
    }
    Json(json!({"services": health, "skills": skills})).into_response()
}

/// A file of the output directory, with ranges (video and audio players
/// seek), by plain name only: no paths, no hidden files, no symlinks.
async fn file(State(server): State<McpServer>, Path(name): Path<String>, req: Request) -> Response {
    use tower::ServiceExt;
    let plain = !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\\', '\0']) && name != "..";
    let path = server.app().config.output_dir().join(&name);
    let regular = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file());
    if !plain || !regular {
        return problem(StatusCode::NOT_FOUND, format!("no file {name:?} in the output directory"));
    }
    match tower_http::services::ServeFile::new(path).oneshot(req).await {
        Ok(r) => r.into_response(),
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
