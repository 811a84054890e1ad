//! HTTP routes, each shaped after the real server's handler (server.py), so
//! status codes, empty bodies and error JSON match what clients will meet.

use super::state::{Job, Shared, now_ms};
use super::{FileRef, objinfo, validate, ws};
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Arc;

type S = State<Arc<Shared>>;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let api = Router::new()
        .route("/prompt", get(get_prompt).post(post_prompt))
        .route("/queue", get(get_queue).post(post_queue))
        .route("/interrupt", post(interrupt))
        .route("/history", get(history).post(post_history))
        .route("/history/{id}", get(history_one))
        .route("/object_info", get(object_info))
        .route("/object_info/{class}", get(object_info_one))
        .route("/models", get(models))
        .route("/models/{folder}", get(models_in))
        .route("/system_stats", get(system_stats))
        .route("/features", get(features))
        .route("/embeddings", get(|| async { Json(json!([])) }))
        .route("/extensions", get(|| async { Json(json!([])) }))
        .route("/view", get(view))
        .route("/upload/image", post(upload))
        .route("/ws", get(ws::handler))
        .route("/jobs", get(jobs))
        .route("/jobs/{id}", get(job_one))
        .route("/jobs/{id}/cancel", post(job_cancel));
    Router::new()
        .merge(api.clone())
        .nest("/api", api)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(110 * 1024 * 1024))
        .layer(middleware::from_fn(origin_check))
        .layer(middleware::from_fn_with_state(shared.clone(), super::faults::middleware))
        .with_state(shared)
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "404: Not Found").into_response()
}

/// aiohttp's answer when a handler raises (malformed JSON, for one).
fn server_error() -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, "500 Internal Server Error\n\nServer got itself in trouble").into_response()
}

/// ComfyUI refuses cross-origin requests to a loopback host (CSRF guard).
async fn origin_check(req: Request, next: Next) -> Response {
    let headers = req.headers();
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
        let origin_host = origin.split("://").nth(1).unwrap_or(origin);
        let loopback = ["127.", "localhost", "[::1]"].iter().any(|p| host.starts_with(p));
        if loopback && origin_host != host {
            return StatusCode::FORBIDDEN.into_response();
        }
    }
    next.run(req).await
}

fn bad(error: Value, node_errors: Value) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": error, "node_errors": node_errors}))).into_response()
}

#[derive(Deserialize)]
struct PromptBody {
    prompt: Option<IndexMap<String, Value>>,
    client_id: Option<Value>,
    prompt_id: Option<Value>,
    extra_data: Option<Map<String, Value>>,
    front: Option<bool>,
    number: Option<f64>,
    partial_execution_targets: Option<Vec<String>>,
}

fn is_uuid4_lower(s: &str) -> bool {
    s.len() == 36
        && uuid::Uuid::parse_str(s).is_ok_and(|u| u.get_version_num() == 4)
        && s.chars().all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c))
}

async fn post_prompt(State(sh): S, body: Bytes) -> Response {
    let Ok(b) = serde_json::from_slice::<PromptBody>(&body) else {
        return server_error();
    };
    let Some(mut prompt) = b.prompt else {
        let e = json!({"type": "no_prompt", "message": "No prompt provided", "details": "No prompt provided", "extra_info": {}});
        return bad(e, json!({}));
    };
    let id = match &b.prompt_id {
        None => uuid::Uuid::new_v4().to_string(),
        Some(v) => {
            let s = super::pyfmt::str(v);
            if sh.cfg.jobs_api && !is_uuid4_lower(&s) {
                let e = json!({"type": "invalid_prompt_id", "message": "Invalid prompt_id format",
                    "details": format!("prompt_id must be a lowercase UUID4 string, got {}", super::pyfmt::repr_str(&s)),
                    "extra_info": {}});
                return bad(e, json!({}));
            }
            s
        }
    };
    let catalogue = sh.catalogue();
    let accepted = match validate::validate(
        &mut prompt,
        &catalogue,
        sh.cfg.jobs_api,
        b.partial_execution_targets.as_deref(),
        &|name: &str| sh.lock().input_file(name).is_some(),
    ) {
        Ok(a) => a,
        Err(r) => return bad(r.error, r.node_errors),
    };
    let mut extra = b.extra_data.unwrap_or_default();
    let client_id = b.client_id.map(|c| super::pyfmt::str(&c));
    if let Some(c) = &client_id {
        extra.insert("client_id".into(), json!(c));
    }
    let create_time = now_ms();
    if sh.cfg.jobs_api {
        extra.insert("create_time".into(), json!(create_time));
    }
    let number = {
        let mut st = sh.lock();
        let number = match b.number {
            Some(n) => n as i64,
            None => {
                let n = st.next_number;
                st.next_number += 1;
                if b.front == Some(true) { -n } else { n }
            }
        };
        st.pending.push(Arc::new(Job {
            number,
            id: id.clone(),
            prompt,
            extra,
            outputs: accepted.outputs,
            client_id,
            create_time,
        }));
        number
    };
    sh.broadcast_status();
    sh.wake.notify_one();
    Json(json!({"prompt_id": id, "number": number, "node_errors": accepted.node_errors})).into_response()
}

async fn get_prompt(State(sh): S) -> Json<Value> {
    Json(json!({"exec_info": {"queue_remaining": sh.lock().queue_remaining()}}))
}

async fn get_queue(State(sh): S) -> Json<Value> {
    let st = sh.lock();
    let running: Vec<Value> = st.running.iter().map(|r| r.job.queue_item()).collect();
    let mut pending: Vec<&Arc<Job>> = st.pending.iter().collect();
    pending.sort_by_key(|j| j.number);
    let pending: Vec<Value> = pending.iter().map(|j| j.queue_item()).collect();
    Json(json!({"queue_running": running, "queue_pending": pending}))
}

async fn post_queue(State(sh): S, body: Bytes) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return server_error();
    };
    {
        let mut st = sh.lock();
        if v.get("clear").and_then(Value::as_bool) == Some(true) {
            st.pending.clear();
        }
        if let Some(ids) = v.get("delete").and_then(Value::as_array) {
            let ids: Vec<String> = ids.iter().map(super::pyfmt::str).collect();
            st.pending.retain(|j| !ids.contains(&j.id));
        }
    }
    sh.broadcast_status();
    StatusCode::OK.into_response()
}

/// `POST /interrupt`: like server.py, a `prompt_id` that is not the running
/// job's is ignored ("Prompt ... is not currently running, skipping
/// interrupt"); without one, the flag is set whatever runs (a job that
/// starts later clears it).
async fn interrupt(State(sh): S, body: Bytes) -> Response {
    let target = serde_json::from_slice::<Value>(&body).ok().and_then(|v| v.get("prompt_id").map(super::pyfmt::str));
    let st = sh.lock();
    let running = st.running.as_ref().map(|r| r.job.id.as_str());
    if target.as_deref().is_none_or(|t| Some(t) == running) {
        sh.interrupt.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    StatusCode::OK.into_response()
}

async fn history(State(sh): S, Query(q): Query<HashMap<String, String>>) -> Json<Value> {
    let st = sh.lock();
    let max = q.get("max_items").and_then(|m| m.parse::<usize>().ok());
    let offset = q.get("offset").and_then(|m| m.parse::<usize>().ok()).unwrap_or(0);
    let n = st.history.len();
    let start = match max {
        Some(m) => n.saturating_sub(m + offset),
        None => 0,
    };
    let end = n.saturating_sub(offset);
    let out: Map<String, Value> =
        st.history.iter().skip(start).take(end.saturating_sub(start)).map(|(k, v)| (k.clone(), v.clone())).collect();
    Json(Value::Object(out))
}

async fn history_one(State(sh): S, Path(id): Path<String>) -> Json<Value> {
    let st = sh.lock();
    match st.history.get(&id) {
        Some(e) => Json(json!({ id: e })),
        None => Json(json!({})),
    }
}

async fn post_history(State(sh): S, body: Bytes) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return server_error();
    };
    let mut st = sh.lock();
    if v.get("clear").and_then(Value::as_bool) == Some(true) {
        st.history.clear();
    }
    if let Some(ids) = v.get("delete").and_then(Value::as_array) {
        for id in ids {
            st.history.shift_remove(&super::pyfmt::str(id));
        }
    }
    StatusCode::OK.into_response()
}

async fn object_info(State(sh): S) -> Json<Value> {
    Json(Value::Object(sh.catalogue()))
}

async fn object_info_one(State(sh): S, Path(class): Path<String>) -> Json<Value> {
    match sh.class(&class) {
        Some(def) => Json(json!({ class: def })),
        None => Json(json!({})),
    }
}

async fn models() -> Json<Value> {
    Json(json!(objinfo::FOLDERS))
}

async fn models_in(State(sh): S, Path(folder): Path<String>) -> Response {
    let canonical = objinfo::canonical_folder(&folder);
    if !objinfo::FOLDERS.contains(&canonical) {
        return not_found().await;
    }
    let mut files = sh.cfg.models.get(canonical).cloned().unwrap_or_default();
    files.sort();
    Json(json!(files)).into_response()
}

async fn system_stats(State(sh): S) -> Json<Value> {
    let total: u64 = 25_276_502_016;
    Json(json!({
        "system": {
            "os": "posix", "ram_total": total, "ram_free": 22_052_147_200u64,
            "comfyui_version": sh.cfg.version, "required_frontend_version": "1.27.10",
            "installed_templates_version": "0.1.95", "required_templates_version": "0.1.95",
            "python_version": "3.11.7 (main, May  9 2026, 07:35:25) [GCC 12.2.0]",
            "pytorch_version": "2.15.0+cu132", "embedded_python": false,
            "argv": ["main.py", "--cpu", "--listen", "127.0.0.1", "--port", "8188"]
        },
        "devices": [{
            "name": "cpu", "type": "cpu", "index": null, "vram_total": total, "vram_free": 22_052_147_200u64,
            "torch_vram_total": total, "torch_vram_free": 22_052_147_200u64
        }]
    }))
}

async fn features() -> Json<Value> {
    Json(json!({"supports_preview_metadata": true, "max_upload_size": 104_857_600}))
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or("").to_ascii_lowercase().as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "flac" => "audio/flac",
        "mp3" => "audio/mpeg",
        "wav" => "audio/x-wav",
        "json" => "application/json",
        "txt" => "text/plain",
        _ => "application/octet-stream",
    }
}

/// Resolves `sub` below the root; `None` when it escapes (`..` past the root).
fn normalize_subfolder(sub: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for p in sub.split(['/', '\\']) {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    if sub.starts_with('/') {
        return None;
    }
    Some(parts.join("/"))
}

async fn view(State(sh): S, Query(q): Query<HashMap<String, String>>, headers: HeaderMap) -> Response {
    let Some(raw) = q.get("filename") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    // "name.png [output]" picks the folder like the real annotated_filepath.
    let (mut name, mut kind) = (raw.as_str(), q.get("type").map(String::as_str).unwrap_or("output"));
    for k in ["output", "input", "temp"] {
        if let Some(n) = raw.strip_suffix(&format!(" [{k}]")) {
            name = n;
            kind = k;
        }
    }
    if name.is_empty() || name.starts_with('/') || name.contains("..") {
        return StatusCode::BAD_REQUEST.into_response();
    }
    if !["output", "input", "temp"].contains(&kind) {
        return StatusCode::BAD_REQUEST.into_response();
    }
    let Some(sub) = normalize_subfolder(q.get("subfolder").map(String::as_str).unwrap_or("")) else {
        return StatusCode::FORBIDDEN.into_response();
    };
    let name = name.rsplit('/').next().unwrap_or(name);
    let key = FileRef { kind: kind.into(), subfolder: sub, filename: name.into() };
    let Some(data) = sh.lock().files.get(&key).cloned() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let total = data.len();
    let mut h = std::hash::DefaultHasher::new();
    std::hash::Hash::hash(&data[..], &mut h);
    let etag = format!("\"{:x}-{:x}\"", std::hash::Hasher::finish(&h), total);
    let mut resp_headers = HeaderMap::new();
    let hv = |s: String| HeaderValue::from_str(&s).unwrap_or(HeaderValue::from_static(""));
    resp_headers.insert(header::CONTENT_DISPOSITION, hv(format!("filename=\"{name}\"")));
    resp_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(name)));
    resp_headers.insert(header::ETAG, hv(etag));
    resp_headers.insert(header::LAST_MODIFIED, HeaderValue::from_static("Wed, 25 Nov 2026 17:46:48 GMT"));
    resp_headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    let (status, body) = match headers.get(header::RANGE).and_then(|r| r.to_str().ok()) {
        Some(r) => match parse_range(r, total) {
            Some((a, b)) => {
                resp_headers.insert(header::CONTENT_RANGE, hv(format!("bytes {a}-{b}/{total}")));
                (StatusCode::PARTIAL_CONTENT, data.slice(a..=b))
            }
            None => {
                resp_headers.insert(header::CONTENT_RANGE, hv(format!("bytes */{total}")));
                return (StatusCode::RANGE_NOT_SATISFIABLE, resp_headers).into_response();
            }
        },
        None => (StatusCode::OK, data),
    };
    resp_headers.insert(header::CONTENT_LENGTH, hv(body.len().to_string()));
    let body = match sh.faults.drop_view() {
        Some(after) => {
            let head = body.slice(..after.min(body.len()));
            // Let the headers and the first bytes reach the client before the cut.
            let cut = futures::stream::once(async {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                Err::<Bytes, _>(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "simulated drop"))
            });
            Body::from_stream(futures::StreamExt::chain(futures::stream::iter([Ok(head)]), cut))
        }
        None => Body::from(body),
    };
    (status, resp_headers, body).into_response()
}

/// One `bytes=` range, inclusive, or `None` if unsatisfiable.
fn parse_range(r: &str, total: usize) -> Option<(usize, usize)> {
    let spec = r.strip_prefix("bytes=")?.split(',').next()?.trim();
    let (a, b) = spec.split_once('-')?;
    if total == 0 {
        return None;
    }
    let (start, end) = if a.is_empty() {
        let n: usize = b.parse().ok()?;
        (total.saturating_sub(n), total - 1)
    } else {
        let s: usize = a.parse().ok()?;
        let e = if b.is_empty() { total - 1 } else { b.parse::<usize>().ok()?.min(total - 1) };
        (s, e)
    };
    (start <= end && start < total).then_some((start, end))
}

async fn upload(State(sh): S, mut mp: Multipart) -> Response {
    let (mut file, mut overwrite, mut kind, mut sub) = (None, None, None, String::new());
    while let Ok(Some(field)) = mp.next_field().await {
        match field.name().unwrap_or("") {
            "image" => {
                let name = field.file_name().unwrap_or("").to_string();
                let Ok(data) = field.bytes().await else {
                    return StatusCode::BAD_REQUEST.into_response();
                };
                file = Some((name, data));
            }
            "overwrite" => overwrite = field.text().await.ok(),
            "type" => kind = field.text().await.ok(),
            "subfolder" => sub = field.text().await.unwrap_or_default(),
            _ => {}
        }
    }
    let kind = match kind.as_deref() {
        Some("temp") => "temp",
        Some("output") => "output",
        _ => "input",
    };
    let Some((name, data)) = file else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    if name.is_empty() {
        return StatusCode::BAD_REQUEST.into_response();
    }
    let Some(folder) = normalize_subfolder(&sub) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    if name.contains('/') || name.contains('\\') || name == ".." {
        return StatusCode::BAD_REQUEST.into_response();
    }
    let overwrite = matches!(overwrite.as_deref(), Some("true") | Some("1"));
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name.as_str(), ""),
    };
    let mut st = sh.lock();
    let mut filename = name.clone();
    let mut duplicate = false;
    if !overwrite {
        let mut i = 1;
        loop {
            let key = FileRef { kind: kind.into(), subfolder: folder.clone(), filename: filename.clone() };
            match st.files.get(&key) {
                Some(existing) if *existing == data => {
                    duplicate = true;
                    break;
                }
                Some(_) => {
                    filename = format!("{stem} ({i}){ext}");
                    i += 1;
                }
                None => break,
            }
        }
    }
    if !duplicate {
        st.files.insert(FileRef { kind: kind.into(), subfolder: folder, filename: filename.clone() }, data);
    }
    Json(json!({"name": filename, "subfolder": sub, "type": kind})).into_response()
}

// ---- /api/jobs (newer servers) ---------------------------------------------

fn queued_job(j: &Job, status: &str) -> Value {
    json!({"id": j.id, "status": status, "create_time": j.create_time, "error_message": null,
           "execution_error": null, "execution_start_time": null, "execution_end_time": null,
           "outputs_count": 0, "preview_output": null, "workflow_id": null})
}

fn finished_job(id: &str, entry: &Value, timing: Option<(i64, i64)>, full: bool) -> Value {
    let status_info = &entry["status"];
    let failed = status_info["status_str"] == "error";
    let create_time = entry.pointer("/prompt/3/create_time").cloned().unwrap_or(Value::Null);
    let (mut count, mut preview, mut fallback) = (0, Value::Null, Value::Null);
    if let Some(outs) = entry["outputs"].as_object() {
        for (node, media) in outs {
            for (kind, items) in media.as_object().into_iter().flatten() {
                let Some(items) = items.as_array().filter(|_| kind != "animated") else {
                    continue;
                };
                for item in items {
                    count += 1;
                    if preview.is_null() && ["images", "video", "audio"].contains(&kind.as_str()) {
                        let mut e = item.clone();
                        e["nodeId"] = json!(node);
                        e["mediaType"] = json!(kind);
                        if item["type"] == "output" {
                            preview = e;
                        } else if fallback.is_null() {
                            fallback = e;
                        }
                    }
                }
            }
        }
    }
    let error = if failed {
        status_info["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m[0] == "execution_error")
            .map(|m| m[1].clone())
            .unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    let mut job = json!({
        "id": id, "status": if failed { "failed" } else { "completed" }, "create_time": create_time,
        "error_message": if error.is_null() { Value::Null } else { json!(super::pyfmt::str(&error["exception_message"])) },
        "execution_error": error,
        "execution_start_time": timing.map(|t| t.0), "execution_end_time": timing.map(|t| t.1),
        "outputs_count": count, "preview_output": if preview.is_null() { fallback } else { preview },
        "workflow_id": null,
    });
    if full {
        job["outputs"] = entry["outputs"].clone();
        job["execution_status"] = status_info.clone();
        job["workflow"] = json!({"prompt": entry["prompt"][2], "extra_data": entry["prompt"][3]});
    }
    job
}

fn all_jobs(sh: &Shared, full: bool) -> Vec<Value> {
    let st = sh.lock();
    let mut v: Vec<Value> = Vec::new();
    if let Some(r) = &st.running {
        let mut j = queued_job(&r.job, "in_progress");
        j["execution_start_time"] = json!(r.started);
        v.push(j);
    }
    v.extend(st.pending.iter().map(|j| queued_job(j, "pending")));
    v.extend(st.history.iter().map(|(id, e)| finished_job(id, e, st.timings.get(id).copied(), full)));
    v.extend(st.cancelled.values().map(|j| queued_job(j, "cancelled")));
    v
}

async fn jobs(State(sh): S, Query(q): Query<HashMap<String, String>>) -> Response {
    if !sh.cfg.jobs_api {
        return not_found().await;
    }
    let mut list = all_jobs(&sh, false);
    if let Some(filter) = q.get("status") {
        let wanted: Vec<&str> = filter.split(',').map(str::trim).collect();
        list.retain(|j| wanted.contains(&j["status"].as_str().unwrap_or("")));
    }
    let desc = q.get("sort_order").map(String::as_str) != Some("asc");
    list.sort_by_key(|j| j["create_time"].as_i64().unwrap_or(0));
    if desc {
        list.reverse();
    }
    let total = list.len();
    let offset = q.get("offset").and_then(|s| s.parse().ok()).unwrap_or(0usize);
    let limit = q.get("limit").and_then(|s| s.parse().ok());
    let page: Vec<Value> = list.into_iter().skip(offset).take(limit.unwrap_or(usize::MAX)).collect();
    let has_more = offset + page.len() < total;
    Json(json!({"jobs": page, "pagination": {"offset": offset, "limit": limit, "total": total, "has_more": has_more}}))
        .into_response()
}

async fn job_one(State(sh): S, Path(id): Path<String>) -> Response {
    if !sh.cfg.jobs_api {
        return not_found().await;
    }
    match all_jobs(&sh, true).into_iter().find(|j| j["id"] == id.as_str()) {
        Some(j) => Json(j).into_response(),
        None => (StatusCode::NOT_FOUND, Json(json!({"error": "Job not found"}))).into_response(),
    }
}

async fn job_cancel(State(sh): S, Path(id): Path<String>) -> Response {
    if !sh.cfg.jobs_api {
        return not_found().await;
    }
    let found = {
        let mut st = sh.lock();
        if let Some(i) = st.pending.iter().position(|j| j.id == id) {
            let job = st.pending.remove(i);
            st.cancelled.insert(id.clone(), job);
            true
        } else if st.running.as_ref().is_some_and(|r| r.job.id == id) {
            sh.interrupt.store(true, std::sync::atomic::Ordering::SeqCst);
            true
        } else {
            false
        }
    };
    if !found {
        return (StatusCode::NOT_FOUND, Json(json!({"error": "Job not found"}))).into_response();
    }
    sh.broadcast_status();
    Json(json!({"id": id, "status": "cancelled"})).into_response()
}
