//! Plumbing the services share: fault switches, serving with an off switch,
//! FastAPI-style form parsing and errors, and stable hashing.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;

// ---- fault switches ---------------------------------------------------------

#[derive(Default)]
struct Armed {
    delay: Duration,
    fail_count: u32,
    fail_status: u16,
}

/// The armed faults of one service, shared by its middleware and listener.
pub(crate) struct Faults {
    armed: Mutex<Armed>,
    down: watch::Sender<bool>,
}

impl Default for Faults {
    fn default() -> Self {
        Self { armed: Mutex::default(), down: watch::channel(false).0 }
    }
}

impl Faults {
    fn lock(&self) -> MutexGuard<'_, Armed> {
        self.armed.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn fail_next(&self, n: u32, status: u16) {
        let mut a = self.lock();
        a.fail_count = n;
        a.fail_status = status;
    }

    pub(crate) fn set_delay(&self, d: Duration) {
        self.lock().delay = d;
    }

    pub(crate) fn set_down(&self, down: bool) {
        self.down.send_replace(down);
    }

    pub(crate) fn is_down(&self) -> bool {
        *self.down.borrow()
    }

    fn take_failure(&self) -> Option<u16> {
        let mut a = self.lock();
        (a.fail_count > 0).then(|| {
            a.fail_count -= 1;
            a.fail_status
        })
    }
}

/// Renders an injected failure in the service's own error shape.
pub(crate) type FailBody = fn(StatusCode) -> Response;

#[derive(Clone)]
struct Guard {
    faults: Arc<Faults>,
    body: FailBody,
}

async fn guard(State(g): State<Guard>, req: Request, next: Next) -> Response {
    let gate = crate::control::Gate {
        delay: g.faults.lock().delay,
        // Armed failures hit the work requests, not health checks or listings.
        armed: |req: &Request| if req.method() == Method::POST { g.faults.take_failure() } else { None },
        fail: |_: &Request, code: StatusCode| (g.body)(code),
        drain: true,
    };
    crate::control::gate(req, next, gate).await
}

/// uvicorn/Starlette's plain-text error body (`Internal Server Error`).
pub(crate) fn plain_failure(code: StatusCode) -> Response {
    (code, code.canonical_reason().unwrap_or("Error").to_string()).into_response()
}

/// `GET /health` of the FastAPI-style services.
pub(crate) async fn health() -> axum::Json<Value> {
    axum::Json(json!({"status": "ok"}))
}

// ---- serving with an off switch --------------------------------------------

/// Binds `addr`, serves `router` in a background task and returns the bound
/// address; while `faults` says down, the port is closed and open
/// connections fail on their next read or write.
pub(crate) async fn start(router: Router, addr: &str, faults: &Faults) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let listener = crate::offswitch::OffSwitch::new(listener, faults.down.subscribe())?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::warn!("service sim stopped: {e}");
        }
    });
    Ok(addr)
}

// ---- multipart forms, FastAPI style ----------------------------------------

/// One multipart field.
pub(crate) struct Part {
    /// The client's file name, for file fields.
    pub filename: Option<String>,
    /// The bytes sent.
    pub data: Bytes,
}

/// A parsed form; empty strings count as absent, as in FastAPI.
pub(crate) struct Form(HashMap<String, Part>);

/// Reads the whole form. A body that is not multipart, or has no readable
/// part, reads as an empty form (FastAPI then reports every required field
/// missing); one that breaks after a part is FastAPI's 400.
pub(crate) async fn read_form(mp: Result<Multipart, MultipartRejection>) -> Result<Form, Response> {
    let mut fields = HashMap::new();
    let Ok(mut mp) = mp else {
        return Ok(Form(fields));
    };
    let broken = || {
        (StatusCode::BAD_REQUEST, axum::Json(json!({"detail": "There was an error parsing the body"}))).into_response()
    };
    loop {
        let field = match mp.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            // python-multipart reads a body without parts as an empty form.
            Err(_) if fields.is_empty() => break,
            Err(_) => return Err(broken()),
        };
        let name = field.name().unwrap_or_default().to_string();
        let filename = field.file_name().map(str::to_string);
        let data = field.bytes().await.map_err(|_| broken())?;
        fields.entry(name).or_insert(Part { filename, data });
    }
    Ok(Form(fields))
}

impl Form {
    /// A non-empty field.
    pub(crate) fn part(&self, name: &str) -> Option<&Part> {
        self.0.get(name).filter(|p| !p.data.is_empty())
    }

    /// A non-empty text field, lossily decoded.
    pub(crate) fn text(&self, name: &str) -> Option<String> {
        self.part(name).map(|p| String::from_utf8_lossy(&p.data).into_owned())
    }
}

/// Pydantic-v1 validation errors, answered as FastAPI's 422.
#[derive(Default)]
pub(crate) struct FieldErrors(Vec<Value>);

impl FieldErrors {
    pub(crate) fn push(&mut self, field: &str, msg: &str, ty: &str, ctx: Option<Value>) {
        let mut e = json!({"loc": ["body", field], "msg": msg, "type": ty});
        if let Some(ctx) = ctx {
            e["ctx"] = ctx;
        }
        self.0.push(e);
    }

    pub(crate) fn missing(&mut self, field: &str) {
        self.push(field, "field required", "value_error.missing", None);
    }

    /// The text of a required field, or a `field required` error.
    pub(crate) fn required(&mut self, form: &Form, field: &str) -> Option<String> {
        let v = form.text(field);
        if v.is_none() {
            self.missing(field);
        }
        v
    }

    /// A float field (`default` when absent) within `(gt, le]`.
    pub(crate) fn float(&mut self, form: &Form, field: &str, default: f64, gt: f64, le: f64) -> f64 {
        let Some(raw) = form.text(field) else {
            return default;
        };
        match raw.trim().parse::<f64>() {
            Ok(v) if v.is_finite() => {
                self.bounds(field, v, gt, le, false);
                v
            }
            _ => {
                self.push(field, "value is not a valid float", "type_error.float", None);
                default
            }
        }
    }

    /// An integer field (`default` when absent) within `[ge, le]`.
    pub(crate) fn int(&mut self, form: &Form, field: &str, default: i64, ge: i64, le: i64) -> i64 {
        let Some(raw) = form.text(field) else {
            return default;
        };
        match raw.trim().parse::<i64>() {
            Ok(v) => {
                self.bounds(field, v as f64, ge as f64, le as f64, true);
                v
            }
            Err(_) => {
                self.push(field, "value is not a valid integer", "type_error.integer", None);
                default
            }
        }
    }

    fn bounds(&mut self, field: &str, v: f64, low: f64, high: f64, low_inclusive: bool) {
        let num = |x: f64| json!({"limit_value": x as i64});
        if low_inclusive && v < low {
            let msg = format!("ensure this value is greater than or equal to {low}");
            self.push(field, &msg, "value_error.number.not_ge", Some(num(low)));
        } else if !low_inclusive && v <= low {
            let msg = format!("ensure this value is greater than {low}");
            self.push(field, &msg, "value_error.number.not_gt", Some(num(low)));
        } else if v > high {
            let msg = format!("ensure this value is less than or equal to {high}");
            self.push(field, &msg, "value_error.number.not_le", Some(num(high)));
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first error's message, for request logs.
    pub(crate) fn summary(&self) -> String {
        self.0
            .first()
            .map(|e| format!("{}: {}", e["loc"][1].as_str().unwrap_or(""), e["msg"].as_str().unwrap_or("")))
            .unwrap_or_default()
    }

    /// FastAPI's answer: `status` with `{"detail": [...]}`.
    pub(crate) fn respond(&self, status: StatusCode) -> Response {
        (status, axum::Json(json!({ "detail": self.0 }))).into_response()
    }
}

// ---- determinism -------------------------------------------------------------

/// FNV-1a over the parts with separators: a seed that is stable across runs,
/// platforms and Rust versions (std's hasher promises none of that).
pub(crate) fn stable_hash(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in p.iter().chain(&[0xff]) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// splitmix64: cheap deterministic noise for the synthesizers.
pub(crate) struct Rng(pub u64);

impl Rng {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut x = self.0;
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^ (x >> 31)
    }

    /// Uniform in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [-1, 1).
    pub(crate) fn signed(&mut self) -> f32 {
        (self.unit() * 2.0 - 1.0) as f32
    }
}

/// Runs CPU-heavy media work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    tokio::task::spawn_blocking(f).await.map_err(|e| format!("worker failed: {e}"))
}

/// What every service simulator keeps: its config, its fault switches and
/// the log of requests that reached a handler.
pub(crate) struct Shared<C, R> {
    pub(crate) config: C,
    pub(crate) faults: Arc<Faults>,
    pub(crate) log: Log<R>,
}

/// Names the service a simulator's config belongs to (`mmaudio`, `humo`,
/// `tts`), for fault messages and the control route.
pub trait ServiceKind {
    /// The service's kind, as in a c41 config.
    const KIND: &'static str;
}

/// The handle of one service simulator (config `C`, request records `R`);
/// clones share state. `MmAudioSim`, `HumoSim` and `TtsSim` are this type;
/// each adds its own `router` and `start`.
pub struct ServiceSim<C, R> {
    pub(crate) shared: Arc<Shared<C, R>>,
}

impl<C, R> Clone for ServiceSim<C, R> {
    fn clone(&self) -> Self {
        ServiceSim { shared: self.shared.clone() }
    }
}

impl<C: Default, R: Clone> Default for ServiceSim<C, R> {
    fn default() -> Self {
        Self::new(C::default())
    }
}

impl<C, R: Clone> ServiceSim<C, R> {
    /// A fresh server with an empty request log and no faults armed.
    pub fn new(config: C) -> Self {
        ServiceSim { shared: Arc::new(Shared { config, faults: Arc::default(), log: Log::default() }) }
    }

    /// The configuration the server was made with.
    pub fn config(&self) -> &C {
        &self.shared.config
    }

    /// The next `n` `POST`s answer `status` (with the service's own failure
    /// body); health checks and listings are not counted.
    pub fn fail_next(&self, n: u32, status: u16) {
        self.shared.faults.fail_next(n, status);
    }

    /// Every request waits this long first (zero turns it off).
    pub fn set_delay(&self, delay: Duration) {
        self.shared.faults.set_delay(delay);
    }

    /// Closes (true) or reopens (false) the port opened by `start`; open
    /// connections fail on their next read or write.
    pub fn set_down(&self, down: bool) {
        self.shared.faults.set_down(down);
    }

    /// Whether `set_down(true)` is in force.
    pub fn is_down(&self) -> bool {
        self.shared.faults.is_down()
    }

    /// Every request that reached the service's handler, oldest first.
    pub fn requests(&self) -> Vec<R> {
        self.shared.log.all()
    }

    /// Forgets the request log.
    pub fn clear_requests(&self) {
        self.shared.log.clear();
    }
}

impl<C, R> ServiceSim<C, R>
where
    C: ServiceKind + Send + Sync + 'static,
    R: Clone + Send + Sync + 'static,
{
    /// Wraps the service's `router`: the request's `c41-sim-fault` header and
    /// armed delays apply to every request, armed failures to POSTs (in the
    /// shape `body` renders); the fault control route is served beside it.
    pub(crate) fn with_faults(&self, router: Router, body: FailBody) -> Router {
        router
            .layer(axum::middleware::from_fn_with_state(Guard { faults: self.shared.faults.clone(), body }, guard))
            .merge(crate::control::router(Arc::new(self.clone())))
    }
}

impl<C, R> crate::control::FaultTarget for ServiceSim<C, R>
where
    C: ServiceKind + Send + Sync + 'static,
    R: Clone + Send + Sync + 'static,
{
    fn kind(&self) -> &'static str {
        C::KIND
    }

    fn supported(&self) -> &'static [&'static str] {
        crate::control::COMMON
    }

    fn apply(&self, fault: &crate::control::FaultSpec) -> Result<(), String> {
        use crate::control::FaultSpec as F;
        match fault {
            F::Delay(d) => self.set_delay(*d),
            F::Fail { count, status } => self.fail_next(*count, *status),
            F::Down(d) => {
                let me = self.clone();
                crate::control::down_for(*d, move |down| me.set_down(down));
            }
            F::Clear => {
                self.fail_next(0, 500);
                self.set_delay(Duration::ZERO);
                self.set_down(false);
            }
            _ => return Err(crate::control::unsupported(self, fault)),
        }
        Ok(())
    }
}

/// A locked request log.
pub(crate) struct Log<T>(Mutex<Vec<T>>);

impl<T: Clone> Log<T> {
    pub(crate) fn push(&self, r: T) {
        self.lock().push(r);
    }
    pub(crate) fn all(&self) -> Vec<T> {
        self.lock().clone()
    }
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }
    fn lock(&self) -> MutexGuard<'_, Vec<T>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<T> Default for Log<T> {
    fn default() -> Self {
        Self(Mutex::new(Vec::new()))
    }
}
