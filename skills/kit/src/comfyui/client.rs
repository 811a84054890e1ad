//! One ComfyUI backend over `wasi:http`: every endpoint the skills use, with
//! timeouts, and failures sorted into "could not reach it" (try another
//! backend) and "it answered no" (tell the user what it said).

use super::errors;
use super::protocol::{
    HistoryEntry, JobInfo, OutputFile, PromptAccepted, PromptInfo, PromptRequest, Queue, UploadReply, encode_query,
};
use crate::SkillError;
use crate::http::{self, HttpError, Timeouts};
use crate::settings::Service;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::cell::Cell;
use std::time::Duration;
use wstd::http::{Body, Method, Request, Response};

/// LAN backends answer a connect in milliseconds; a dead one should cost
/// little before we fall back to the next.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Control endpoints (`/queue`, `/history`) answer at once even under load.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(30);
/// `POST /prompt` validates the whole graph and uploads can be large.
const SUBMIT_TIMEOUT: Duration = Duration::from_secs(120);
/// A download that stops delivering bytes for this long is dead.
const STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a call failed.
#[derive(Debug, Clone)]
pub enum CallError {
    /// No HTTP answer: refused, reset, timed out. Another backend may work.
    Unreachable(String),
    /// The server answered with a non-2xx status and this body.
    Status(u16, String),
    /// The answer was not what ComfyUI sends.
    Protocol(String),
    /// An input file could not be uploaded as it was (it changed while it
    /// was sent): the user's input, not the server, is at fault.
    Input {
        /// The input field.
        field: String,
        /// Why, with the file's name.
        message: String,
    },
}

impl From<HttpError> for CallError {
    fn from(e: HttpError) -> Self {
        match e {
            HttpError::Transport { error, .. } => CallError::Unreachable(error),
            HttpError::Status { status, body } => CallError::Status(status, body),
            HttpError::Input { field, message } => CallError::Input { field, message },
        }
    }
}

impl CallError {
    /// True when another backend is worth trying (no answer, or a 5xx from
    /// a crashing worker or the proxy in front of it).
    pub fn is_retryable(&self) -> bool {
        matches!(self, CallError::Unreachable(_) | CallError::Status(500..=599, _))
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Unreachable(m) => write!(f, "unreachable: {m}"),
            CallError::Status(s, body) => write!(f, "HTTP {s}: {}", body.trim()),
            CallError::Protocol(m) => write!(f, "unexpected answer: {m}"),
            CallError::Input { field, message } => write!(f, "input `{field}`: {message}"),
        }
    }
}

/// Result of `POST /prompt`.
#[derive(Debug)]
pub enum SubmitError {
    /// The server refused the workflow (400); the message names node, class,
    /// input and reason.
    Rejected(String),
    /// Anything else.
    Call(CallError),
}

/// A granted ComfyUI service.
#[derive(Debug, Clone)]
pub struct Backend {
    /// Name, kind and base URL from the config.
    pub service: Service,
    /// Whether `/api/jobs` exists (`None` until first asked).
    jobs_api: Cell<Option<bool>>,
}

impl Backend {
    /// A client for `service`.
    pub fn new(service: Service) -> Self {
        Self { service, jobs_api: Cell::new(None) }
    }

    /// The config name, used in every message.
    pub fn name(&self) -> &str {
        &self.service.name
    }

    /// A backend error naming this service.
    pub fn error(&self, status: Option<u16>, message: impl Into<String>) -> SkillError {
        SkillError::backend(self.service.name.clone(), status, message)
    }

    /// Turn a call failure into the error the user sees.
    pub fn fail(&self, what: &str, e: CallError) -> SkillError {
        match e {
            CallError::Unreachable(m) => self.error(None, format!("{what}: cannot reach {}: {m}", self.service.url)),
            CallError::Status(s, body) => self.error(Some(s), format!("{what}: {}", body.trim())),
            CallError::Protocol(m) => self.error(None, format!("{what}: {m}")),
            CallError::Input { field, message } => SkillError::invalid(field, message),
        }
    }

    /// The websocket URL for `client_id` (`ws://` for `http://`).
    pub fn ws_url(&self, client_id: &str) -> String {
        let base = &self.service.url;
        let ws = if let Some(rest) = base.strip_prefix("https://") {
            format!("wss://{rest}")
        } else if let Some(rest) = base.strip_prefix("http://") {
            format!("ws://{rest}")
        } else {
            base.clone()
        };
        format!("{ws}/ws?clientId={}", encode_query(client_id))
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
        timeout: Duration,
    ) -> Result<Response<Body>, CallError> {
        let mut builder = Request::builder().method(method).uri(format!("{}{}", self.service.url, path));
        let body = match body {
            Some((ct, bytes)) => {
                builder = builder.header("content-type", ct);
                Body::from(bytes)
            }
            None => Body::empty(),
        };
        let req = builder.body(body).map_err(|e| CallError::Protocol(format!("bad request {path}: {e}")))?;
        self.send(req, timeout).await
    }

    /// Sends `req` with the client's timeouts (`timeout` until the head);
    /// a non-2xx status becomes [`CallError::Status`] with the body's text.
    async fn send(
        &self,
        req: Request<impl Into<http::Outgoing>>,
        timeout: Duration,
    ) -> Result<Response<Body>, CallError> {
        http::exchange(req, self.timeouts(timeout), false).await.map_err(CallError::from)
    }

    /// The client's timeouts, with `timeout` until the head.
    fn timeouts(&self, timeout: Duration) -> Timeouts {
        Timeouts { connect: Some(CONNECT_TIMEOUT), first_byte: Some(timeout), between_bytes: Some(STALL_TIMEOUT) }
    }

    async fn read_text(resp: Response<Body>) -> Result<String, CallError> {
        let mut body = resp.into_body();
        let bytes = body.contents().await.map_err(|e| CallError::Unreachable(format!("reading the reply: {e:#}")))?;
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }

    async fn json<T: DeserializeOwned>(resp: Response<Body>, what: &str) -> Result<T, CallError> {
        let text = Self::read_text(resp).await?;
        serde_json::from_str(&text).map_err(|e| CallError::Protocol(format!("{what}: {e}: {}", clip(&text))))
    }

    async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, CallError> {
        let resp = self.call(Method::GET, path, None, CONTROL_TIMEOUT).await?;
        Self::json(resp, path).await
    }

    async fn post_json(&self, path: &str, body: &Value) -> Result<Response<Body>, CallError> {
        let bytes = serde_json::to_vec(body).map_err(|e| CallError::Protocol(e.to_string()))?;
        self.call(Method::POST, path, Some(("application/json", bytes)), CONTROL_TIMEOUT).await
    }

    /// `GET /prompt`: jobs waiting plus running; the cheap load signal used
    /// to pick a backend, and a liveness probe.
    pub async fn queue_remaining(&self) -> Result<u64, CallError> {
        let info: PromptInfo = self.get_json("/prompt").await?;
        Ok(info.exec_info.queue_remaining)
    }

    /// `GET /queue`.
    pub async fn queue(&self) -> Result<Queue, CallError> {
        self.get_json("/queue").await
    }

    /// `GET /history/{id}`: `None` while queued or running and for ids the
    /// server never knew or forgot (the two are indistinguishable here).
    pub async fn history(&self, id: &str) -> Result<Option<HistoryEntry>, CallError> {
        let v: Value = self.get_json(&format!("/history/{}", encode_query(id))).await?;
        match v.get(id) {
            Some(entry) => serde_json::from_value(entry.clone())
                .map(Some)
                .map_err(|e| CallError::Protocol(format!("history entry: {e}"))),
            None => Ok(None),
        }
    }

    /// Whether the server has the newer `/api/jobs` endpoints (asked once).
    pub async fn has_jobs_api(&self) -> bool {
        if let Some(known) = self.jobs_api.get() {
            return known;
        }
        let known = match self.call(Method::GET, "/api/jobs?limit=1", None, CONTROL_TIMEOUT).await {
            Ok(resp) => Self::read_text(resp).await.is_ok_and(|t| t.contains("\"jobs\"")),
            Err(_) => false,
        };
        self.jobs_api.set(Some(known));
        known
    }

    /// `GET /api/jobs/{id}` (newer servers): `None` when the server does not
    /// know the job.
    pub async fn job(&self, id: &str) -> Result<Option<JobInfo>, CallError> {
        match self.call(Method::GET, &format!("/api/jobs/{}", encode_query(id)), None, CONTROL_TIMEOUT).await {
            Ok(resp) => Self::json(resp, "/api/jobs").await.map(Some),
            Err(CallError::Status(404, _)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST /queue {"delete": [id]}`: drops a job that has not started.
    pub async fn delete(&self, id: &str) -> Result<(), CallError> {
        self.post_json("/queue", &json!({"delete": [id]})).await.map(drop)
    }

    /// `POST /interrupt {"prompt_id": id}`: stops the running job at the
    /// next node or sampler step, and only if it is this one.
    pub async fn interrupt(&self, id: &str) -> Result<(), CallError> {
        self.post_json("/interrupt", &json!({"prompt_id": id})).await.map(drop)
    }

    /// `GET /object_info/{class}`: `None` when the class is not installed.
    pub async fn object_info(&self, class: &str) -> Result<Option<Value>, CallError> {
        let v: Value = self.get_json(&format!("/object_info/{}", encode_query(class))).await?;
        Ok(v.get(class).cloned())
    }

    /// `POST /prompt` with our own ids.
    pub async fn submit(
        &self,
        workflow: &str,
        graph: &Value,
        prompt_id: &str,
        client_id: &str,
    ) -> Result<PromptAccepted, SubmitError> {
        let body = PromptRequest { prompt: graph, client_id, prompt_id };
        let bytes = serde_json::to_vec(&body).map_err(|e| SubmitError::Call(CallError::Protocol(e.to_string())))?;
        match self.call(Method::POST, "/prompt", Some(("application/json", bytes)), SUBMIT_TIMEOUT).await {
            Ok(resp) => Self::json(resp, "POST /prompt").await.map_err(SubmitError::Call),
            Err(CallError::Status(400, body)) => {
                Err(SubmitError::Rejected(errors::rejection_message(workflow, graph, &body)))
            }
            Err(e) => Err(SubmitError::Call(e)),
        }
    }

    /// `POST /upload/image` (any file type). Returns what the server stored,
    /// which may be renamed: always use the returned name.
    /// The input file is streamed from the host as the request goes out.
    pub async fn upload(&self, file: crate::inputs::File, subfolder: &str) -> Result<UploadReply, CallError> {
        let name = file.name();
        self.upload_form(subfolder, |f| f.file_as("image", &name, file)).await
    }

    /// `POST /upload/image` of an input file under `name`.
    pub async fn upload_as(
        &self,
        file: crate::inputs::File,
        name: &str,
        subfolder: &str,
    ) -> Result<UploadReply, CallError> {
        self.upload_form(subfolder, |f| f.file_as("image", name, file)).await
    }

    /// `POST /upload/image` of bytes the skill made (a caption), as `name`.
    /// The endpoint stores any file, whatever its name says.
    pub async fn upload_bytes(&self, name: &str, bytes: Vec<u8>, subfolder: &str) -> Result<UploadReply, CallError> {
        self.upload_form(subfolder, |f| f.bytes("image", name, "text/plain", bytes)).await
    }

    async fn upload_form(
        &self,
        subfolder: &str,
        file: impl FnOnce(crate::multipart::Form) -> crate::multipart::Form,
    ) -> Result<UploadReply, CallError> {
        let form =
            crate::multipart::Form::new().text("type", "input").text("subfolder", subfolder).text("overwrite", "false");
        let form = file(form);
        let req =
            form.into_request(&format!("{}/upload/image", self.service.url), false).map_err(CallError::Protocol)?;
        let resp = self.send(req, SUBMIT_TIMEOUT).await?;
        Self::json(resp, "POST /upload/image").await
    }

    /// `GET /view` for one output, its body left in the host for
    /// [`Writer::copy_body`](crate::artifacts::Writer::copy_body).
    pub async fn view(&self, file: &OutputFile) -> Result<http::Streamed, CallError> {
        let path = format!(
            "/view?filename={}&subfolder={}&type={}",
            encode_query(&file.filename),
            encode_query(&file.subfolder),
            encode_query(&file.kind)
        );
        let req = Request::get(format!("{}{}", self.service.url, path))
            .body(Body::empty())
            .map_err(|e| CallError::Protocol(format!("bad request {path}: {e}")))?;
        http::exchange_streamed(req, self.timeouts(CONTROL_TIMEOUT), false).await.map_err(CallError::from)
    }
}

fn clip(s: &str) -> String {
    let s = s.trim();
    if s.len() <= 200 {
        return s.to_string();
    }
    let mut end = 200;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}
