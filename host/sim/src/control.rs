//! Switching faults from outside the process, the same way for every
//! simulator: at start (`c41 sim --fault comfyui:fail=3x503`), while running
//! (`POST /c41-sim/faults` on the service's own port, so a skill author can
//! break a backend with curl in the middle of a job), and for one request
//! (the `c41-sim-fault` header, which a c41 config can attach to every call
//! a skill makes through a service's `headers`).
//!
//! A fault is written `name` or `name=value`:
//!
//! | fault              | services            | effect                                              |
//! |--------------------|---------------------|-----------------------------------------------------|
//! | `delay=500ms`      | all                 | every request waits first                           |
//! | `fail=503`, `fail=3x503` | all           | the next request(s) answer that status              |
//! | `down`, `down=5s`  | all                 | the port closes (for that long; else until restart) |
//! | `clear`            | all                 | disarms everything                                  |
//! | `restart`          | comfyui             | queue and history wiped, running job forgotten      |
//! | `stall-ws`, `stall-ws=off` | comfyui     | websockets stay open but go silent                  |
//! | `drop-view=4096`   | comfyui             | `/view` cuts the connection after that many bytes   |
//! | `fail-node=Class:message` | comfyui      | nodes of that class raise at execution              |
//! | `mid-stream-error` | ollama              | the next reply breaks after a few tokens            |
//! | `token-delay=50ms` | ollama              | time between streamed tokens                        |
//! | `load-time=5s`     | ollama              | how long a cold model load takes                    |
//!
//! Per request (the header), only `delay` and `fail=STATUS` apply: they
//! concern that one request and nothing else. A `down` posted to the control
//! route takes effect just after the reply, which it would otherwise cut.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

/// The request header that injects a fault into that one request.
pub const HEADER: &str = "c41-sim-fault";

/// The control route every simulator serves on its own port (outside its
/// faults, so a delay or a 5xx burst never blocks switching them off).
pub const CONTROL_PATH: &str = "/c41-sim/faults";

/// One fault, parsed from `name` or `name=value`; see the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultSpec {
    /// Every request waits this long first (zero turns it off).
    Delay(Duration),
    /// The next `count` requests answer `status`.
    Fail {
        /// How many requests fail.
        count: u32,
        /// The status they get.
        status: u16,
    },
    /// The port closes, for this long or (None) until the process restarts.
    Down(Option<Duration>),
    /// Everything disarmed.
    Clear,
    /// ComfyUI forgets its queue and history.
    Restart,
    /// ComfyUI websockets go silent (true) or resume (false).
    StallWs(bool),
    /// ComfyUI's `/view` drops the connection after this many bytes.
    DropView(usize),
    /// ComfyUI nodes of this class raise `RuntimeError(message)`.
    FailNode {
        /// Class whose nodes fail.
        class_type: String,
        /// The exception message.
        message: String,
    },
    /// The LLM's next reply breaks after a few tokens.
    MidStreamError,
    /// The LLM's time between streamed tokens.
    TokenDelay(Duration),
    /// How long the LLM takes to load a cold model.
    LoadTime(Duration),
}

impl FaultSpec {
    /// The fault's name as written (`fail`, `stall-ws`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            FaultSpec::Delay(_) => "delay",
            FaultSpec::Fail { .. } => "fail",
            FaultSpec::Down(_) => "down",
            FaultSpec::Clear => "clear",
            FaultSpec::Restart => "restart",
            FaultSpec::StallWs(_) => "stall-ws",
            FaultSpec::DropView(_) => "drop-view",
            FaultSpec::FailNode { .. } => "fail-node",
            FaultSpec::MidStreamError => "mid-stream-error",
            FaultSpec::TokenDelay(_) => "token-delay",
            FaultSpec::LoadTime(_) => "load-time",
        }
    }
}

fn duration(name: &str, v: &str) -> Result<Duration, String> {
    if v == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(v).map_err(|e| format!("`{name}={v}`: {e} (write a time like 500ms, 2s or 1m)"))
}

fn status(name: &str, v: &str) -> Result<u16, String> {
    match v.parse::<u16>() {
        Ok(s) if (100..=599).contains(&s) => Ok(s),
        _ => Err(format!("`{name}={v}`: the status must be an HTTP status code like 503")),
    }
}

impl FromStr for FaultSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (name, value) = match s.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (s, None),
        };
        let need = |what: &str| -> Result<&str, String> {
            value.filter(|v| !v.is_empty()).ok_or_else(|| format!("`{name}` needs a value: {name}={what}"))
        };
        let none = |spec: FaultSpec| -> Result<FaultSpec, String> {
            match value {
                None => Ok(spec),
                Some(v) => Err(format!("`{name}` takes no value (got `{v}`)")),
            }
        };
        Ok(match name {
            "delay" => FaultSpec::Delay(duration(name, need("500ms")?)?),
            "fail" => {
                let v = need("503 or 3x503")?;
                match v.split_once(['x', 'X']) {
                    Some((n, st)) => FaultSpec::Fail {
                        count: n
                            .trim()
                            .parse()
                            .map_err(|_| format!("`fail={v}`: write the count as a number, as in fail=3x503"))?,
                        status: status(name, st.trim())?,
                    },
                    None => FaultSpec::Fail { count: 1, status: status(name, v)? },
                }
            }
            "down" => match value {
                None => FaultSpec::Down(None),
                Some(v) => FaultSpec::Down(Some(duration(name, v)?)),
            },
            "clear" => none(FaultSpec::Clear)?,
            "restart" => none(FaultSpec::Restart)?,
            "stall-ws" => match value {
                None | Some("on") | Some("true") => FaultSpec::StallWs(true),
                Some("off") | Some("false") => FaultSpec::StallWs(false),
                Some(v) => return Err(format!("`stall-ws={v}`: write stall-ws, stall-ws=on or stall-ws=off")),
            },
            "drop-view" => {
                let v = need("4096")?;
                FaultSpec::DropView(
                    v.parse().map_err(|_| format!("`drop-view={v}`: write a byte count, as in drop-view=4096"))?,
                )
            }
            "fail-node" => {
                let v = need("ClassName:message")?;
                let (class, message) = v.split_once(':').unwrap_or((v, ""));
                let message = if message.trim().is_empty() {
                    format!("simulated failure in {}", class.trim())
                } else {
                    message.trim().to_string()
                };
                FaultSpec::FailNode { class_type: class.trim().to_string(), message }
            }
            "mid-stream-error" => none(FaultSpec::MidStreamError)?,
            "token-delay" => FaultSpec::TokenDelay(duration(name, need("50ms")?)?),
            "load-time" => FaultSpec::LoadTime(duration(name, need("5s")?)?),
            "" => return Err("empty fault: write one like fail=503 or delay=2s".into()),
            other => {
                return Err(format!(
                    "unknown fault `{other}`: the faults are delay, fail, down, clear, restart, \
                     stall-ws, drop-view, fail-node, mid-stream-error, token-delay, load-time"
                ));
            }
        })
    }
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: &Duration| format!("{}ms", d.as_millis());
        match self {
            FaultSpec::Delay(d) => write!(f, "delay={}", ms(d)),
            FaultSpec::Fail { count, status } => write!(f, "fail={count}x{status}"),
            FaultSpec::Down(None) => write!(f, "down"),
            FaultSpec::Down(Some(d)) => write!(f, "down={}", ms(d)),
            FaultSpec::Clear => write!(f, "clear"),
            FaultSpec::Restart => write!(f, "restart"),
            FaultSpec::StallWs(on) => write!(f, "stall-ws={}", if *on { "on" } else { "off" }),
            FaultSpec::DropView(n) => write!(f, "drop-view={n}"),
            FaultSpec::FailNode { class_type, message } => write!(f, "fail-node={class_type}:{message}"),
            FaultSpec::MidStreamError => write!(f, "mid-stream-error"),
            FaultSpec::TokenDelay(d) => write!(f, "token-delay={}", ms(d)),
            FaultSpec::LoadTime(d) => write!(f, "load-time={}", ms(d)),
        }
    }
}

/// A simulator whose faults can be switched by name. Implemented by
/// `ComfySim`, `LlmSim` and the MMAudio/HuMo/TTS `ServiceSim`s.
pub trait FaultTarget: Send + Sync + 'static {
    /// The service's kind, for messages (`comfyui`, `ollama`, `tts`...).
    fn kind(&self) -> &'static str;
    /// The fault names this simulator understands.
    fn supported(&self) -> &'static [&'static str];
    /// Arms `fault` (`clear` disarms everything). Must be called inside a
    /// tokio runtime: a timed `down` schedules its own end.
    fn apply(&self, fault: &FaultSpec) -> Result<(), String>;
}

/// The names every simulator understands.
pub(crate) const COMMON: &[&str] = &["delay", "fail", "down", "clear"];

/// The error for a fault `target` does not simulate.
pub(crate) fn unsupported(target: &dyn FaultTarget, fault: &FaultSpec) -> String {
    format!(
        "the {} simulator has no `{}` fault; it has: {}",
        target.kind(),
        fault.name(),
        target.supported().join(", ")
    )
}

/// Closes the port through `set_down`, and reopens it after `d` if given.
pub(crate) fn down_for(d: Option<Duration>, set_down: impl Fn(bool) + Send + 'static) {
    set_down(true);
    if let Some(d) = d {
        tokio::spawn(async move {
            tokio::time::sleep(d).await;
            set_down(false);
        });
    }
}

/// Parses faults written one per line (blank lines and `#` comments
/// skipped), checking each against what `target` simulates.
pub fn parse_lines(target: &dyn FaultTarget, text: &str) -> Result<Vec<FaultSpec>, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| {
            let fault: FaultSpec = line.parse()?;
            if target.supported().contains(&fault.name()) { Ok(fault) } else { Err(unsupported(target, &fault)) }
        })
        .collect()
}

/// `GET` lists the faults the service has; `POST` (faults one per line)
/// arms them; `DELETE` clears them.
pub(crate) fn router(target: Arc<dyn FaultTarget>) -> Router {
    Router::new().route(CONTROL_PATH, get(list).post(arm).delete(clear)).with_state(target)
}

type T = State<Arc<dyn FaultTarget>>;

async fn list(State(t): T) -> Response {
    axum::Json(json!({
        "service": t.kind(),
        "faults": t.supported(),
        "usage": format!("POST faults one per line (e.g. fail=3x503, delay=2s) to {CONTROL_PATH}; DELETE clears them; \
                          the {HEADER} header (delay=..., fail=STATUS) breaks one request"),
    }))
    .into_response()
}

async fn arm(State(t): T, body: Bytes) -> Response {
    let text = String::from_utf8_lossy(&body);
    if text.trim().is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "no fault in the body: POST one per line, e.g. fail=3x503"})),
        )
            .into_response();
    }
    let faults = match parse_lines(t.as_ref(), &text) {
        Ok(f) => f,
        Err(e) => return (StatusCode::BAD_REQUEST, axum::Json(json!({"error": e}))).into_response(),
    };
    let armed: Vec<String> = faults.iter().map(ToString::to_string).collect();
    // `down` would cut this very connection before the reply went out: close
    // the port just after answering instead.
    let (now, later): (Vec<_>, Vec<_>) = faults.into_iter().partition(|f| !matches!(f, FaultSpec::Down(_)));
    for f in &now {
        if let Err(e) = t.apply(f) {
            return (StatusCode::BAD_REQUEST, axum::Json(json!({"error": e}))).into_response();
        }
    }
    if !later.is_empty() {
        let t = t.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            for f in &later {
                let _ = t.apply(f);
            }
        });
    }
    axum::Json(json!({"service": t.kind(), "armed": armed})).into_response()
}

async fn clear(State(t): T) -> Response {
    match t.apply(&FaultSpec::Clear) {
        Ok(()) => axum::Json(json!({"service": t.kind(), "armed": []})).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(json!({"error": e}))).into_response(),
    }
}

/// How one simulator turns a fault into a reply, for [`gate`].
pub(crate) struct Gate<A, F> {
    /// The armed delay every request waits first.
    pub delay: Duration,
    /// Takes one armed failure for this request, if any (called only when
    /// the request's own header asked for none).
    pub armed: A,
    /// The failure reply, in the service's own shape.
    pub fail: F,
    /// Read the whole body before failing, as servers that parse the form
    /// before their handler runs (uvicorn) do; the client then gets to
    /// finish its upload and read the status.
    pub drain: bool,
}

/// The one fault path of every simulator's middleware: the request's own
/// `c41-sim-fault` header (400 if it does not parse), then the armed delay,
/// then the header's or an armed failure, else the handler.
pub(crate) async fn gate<A, F>(req: axum::extract::Request, next: axum::middleware::Next, g: Gate<A, F>) -> Response
where
    A: FnOnce(&axum::extract::Request) -> Option<u16>,
    F: FnOnce(&axum::extract::Request, StatusCode) -> Response,
{
    let own = match RequestFault::from_headers(req.headers()) {
        Ok(f) => f,
        Err(bad) => return bad.into_response(),
    };
    if !g.delay.is_zero() {
        tokio::time::sleep(g.delay).await;
    }
    let failure = match own.run().await {
        Some(code) => Some(code),
        None => (g.armed)(&req).map(|s| StatusCode::from_u16(s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)),
    };
    match failure {
        Some(code) => {
            let resp = (g.fail)(&req, code);
            if g.drain {
                let _ = axum::body::to_bytes(req.into_body(), 1 << 30).await;
            }
            resp
        }
        None => next.run(req).await,
    }
}

/// A `c41-sim-fault` header that does not parse: answered with 400.
#[derive(Debug)]
pub(crate) struct BadHeader(String);

impl IntoResponse for BadHeader {
    fn into_response(self) -> Response {
        (StatusCode::BAD_REQUEST, self.0).into_response()
    }
}

/// What the `c41-sim-fault` header asks of one request.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RequestFault {
    /// Wait this long before handling.
    pub delay: Duration,
    /// Answer this status instead of handling.
    pub fail: Option<u16>,
}

impl RequestFault {
    /// Reads the header (faults separated by commas); a fault that does not
    /// parse or does not make sense for one request is answered with 400,
    /// naming the header, so a typo is never silently ignored.
    pub(crate) fn from_headers(headers: &HeaderMap) -> Result<RequestFault, BadHeader> {
        let mut rf = RequestFault::default();
        let Some(v) = headers.get(HEADER) else {
            return Ok(rf);
        };
        let bad = |msg: String| BadHeader(format!("{HEADER} header: {msg}"));
        let text = v.to_str().map_err(|_| bad("not text".into()))?;
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.parse::<FaultSpec>().map_err(&bad)? {
                FaultSpec::Delay(d) => rf.delay = d,
                FaultSpec::Fail { count: 1, status } => rf.fail = Some(status),
                other => {
                    return Err(bad(format!(
                        "`{other}` is not a per-request fault (use delay=... or fail=STATUS; \
                         POST others to {CONTROL_PATH})"
                    )));
                }
            }
        }
        Ok(rf)
    }

    /// Sleeps the delay; then the status to answer with, if any.
    pub(crate) async fn run(self) -> Option<StatusCode> {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        self.fail.map(|s| StatusCode::from_u16(s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_fault_and_prints_it_back() {
        for (text, want) in [
            ("delay=500ms", FaultSpec::Delay(Duration::from_millis(500))),
            ("delay=0", FaultSpec::Delay(Duration::ZERO)),
            ("fail=503", FaultSpec::Fail { count: 1, status: 503 }),
            ("fail=3x500", FaultSpec::Fail { count: 3, status: 500 }),
            ("down", FaultSpec::Down(None)),
            ("down=2s", FaultSpec::Down(Some(Duration::from_secs(2)))),
            ("clear", FaultSpec::Clear),
            ("restart", FaultSpec::Restart),
            ("stall-ws", FaultSpec::StallWs(true)),
            ("stall-ws=off", FaultSpec::StallWs(false)),
            ("drop-view=4096", FaultSpec::DropView(4096)),
            (
                "fail-node=VAELoader: bad file",
                FaultSpec::FailNode { class_type: "VAELoader".into(), message: "bad file".into() },
            ),
            ("mid-stream-error", FaultSpec::MidStreamError),
            ("token-delay=50ms", FaultSpec::TokenDelay(Duration::from_millis(50))),
            ("load-time=1m", FaultSpec::LoadTime(Duration::from_secs(60))),
        ] {
            let got: FaultSpec = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(got, want, "{text}");
            assert_eq!(got.to_string().parse::<FaultSpec>().unwrap(), want, "{text} round trip");
        }
    }

    #[test]
    fn bad_faults_say_what_to_write() {
        for (text, needle) in [
            ("explode", "unknown fault `explode`"),
            ("fail", "`fail` needs a value"),
            ("fail=abc", "HTTP status code"),
            ("fail=3x99", "HTTP status code"),
            ("fail=manyx503", "count as a number"),
            ("delay=soon", "500ms"),
            ("restart=now", "takes no value"),
            ("stall-ws=maybe", "stall-ws=off"),
            ("", "empty fault"),
        ] {
            let err = text.parse::<FaultSpec>().unwrap_err();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn the_header_takes_only_per_request_faults() {
        let mut h = HeaderMap::new();
        h.insert(HEADER, "delay=20ms, fail=502".parse().unwrap());
        let rf = RequestFault::from_headers(&h).unwrap();
        assert_eq!(rf, RequestFault { delay: Duration::from_millis(20), fail: Some(502) });

        h.insert(HEADER, "fail=3x503".parse().unwrap());
        let resp = RequestFault::from_headers(&h).unwrap_err().into_response();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

        assert_eq!(RequestFault::from_headers(&HeaderMap::new()).unwrap(), RequestFault::default());
    }
}

/// The control route and the header, over real HTTP, on each kind of
/// simulator.
#[cfg(test)]
mod http_tests {
    use super::*;
    use crate::comfyui::{ComfyConfig, ComfySim};
    use crate::llm::{LlmConfig, LlmSim};
    use crate::services::tts::TtsSim;

    fn client() -> reqwest::Client {
        reqwest::Client::builder().no_proxy().build().unwrap()
    }

    async fn post_faults(base: &str, body: &str) -> (u16, serde_json::Value) {
        let r = client().post(format!("{base}{CONTROL_PATH}")).body(body.to_string()).send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    #[tokio::test]
    async fn comfyui_faults_switch_over_http() {
        let sim = ComfySim::new(ComfyConfig::default());
        let base = format!("http://{}", sim.start("127.0.0.1:0").await.unwrap());
        let stats = || client().get(format!("{base}/system_stats")).send();

        // Armed by the control route: two failures, then normal service.
        let (code, body) = post_faults(&base, "# two 503s\nfail=2x503\n").await;
        assert_eq!((code, body["armed"][0].as_str()), (200, Some("fail=2x503")), "{body}");
        assert_eq!(stats().await.unwrap().status(), 503);
        assert_eq!(stats().await.unwrap().status(), 503);
        assert_eq!(stats().await.unwrap().status(), 200);

        // A fault the simulator does not have is refused by name.
        let (code, body) = post_faults(&base, "mid-stream-error").await;
        assert_eq!(code, 400);
        let err = body["error"].as_str().unwrap();
        assert!(err.contains("comfyui simulator has no `mid-stream-error`") && err.contains("stall-ws"), "{err}");

        // One request's own header.
        let r = client().get(format!("{base}/system_stats")).header(HEADER, "fail=502").send().await.unwrap();
        assert_eq!(r.status(), 502);
        let r = client().get(format!("{base}/system_stats")).header(HEADER, "restart").send().await.unwrap();
        assert_eq!(r.status(), 400);
        assert!(r.text().await.unwrap().contains("not a per-request fault"));

        // A timed outage: refused, then back on the same port. The control
        // route itself is outside the faults, so a 5xx burst can be cleared.
        let (code, _) = post_faults(&base, "down=3s").await;
        assert_eq!(code, 200);
        let mut closed = false;
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if stats().await.is_err() {
                closed = true;
                break;
            }
        }
        assert!(closed, "the port must close while down");
        let mut back = false;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if let Ok(r) = stats().await {
                assert_eq!(r.status(), 200);
                back = true;
                break;
            }
        }
        assert!(back, "the port must reopen after the outage");
        post_faults(&base, "fail=100x500").await;
        let r = client().delete(format!("{base}{CONTROL_PATH}")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(stats().await.unwrap().status(), 200);
    }

    #[tokio::test]
    async fn ollama_faults_keep_each_api_shape() {
        let sim = LlmSim::new(LlmConfig::default());
        let server = sim.serve(0).await.unwrap();
        let base = server.url();
        let r = client().get(format!("{base}/v1/models")).header(HEADER, "fail=503").send().await.unwrap();
        assert_eq!(r.status(), 503);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["message"], "simulated failure (503)", "{body}");
        let r = client().get(format!("{base}/api/tags")).header(HEADER, "fail=503").send().await.unwrap();
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"], "simulated failure (503)", "{body}");

        let (code, body) = post_faults(&base, "mid-stream-error\ntoken-delay=1ms\nload-time=0").await;
        assert_eq!(code, 200, "{body}");
        assert_eq!(body["armed"].as_array().unwrap().len(), 3);
        let (code, body) = post_faults(&base, "stall-ws").await;
        assert_eq!(code, 400);
        assert!(body["error"].as_str().unwrap().contains("ollama simulator has no `stall-ws`"));
        let r = client().get(format!("{base}{CONTROL_PATH}")).send().await.unwrap();
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["service"], "ollama");
        assert!(body["faults"].as_array().unwrap().iter().any(|f| f == "mid-stream-error"));
    }

    #[tokio::test]
    async fn service_faults_apply_to_work_requests() {
        let tts = TtsSim::default();
        let base = format!("http://{}", tts.start("127.0.0.1:0").await.unwrap());
        let speak = || {
            client()
                .post(format!("{base}/v1/audio/speech"))
                .json(&serde_json::json!({"model": "tts-1", "input": "hi", "voice": "alloy"}))
                .send()
        };
        assert_eq!(speak().await.unwrap().status(), 200);
        let (code, body) = post_faults(&base, "fail=1x500").await;
        assert_eq!((code, body["service"].as_str()), (200, Some("tts")));
        assert_eq!(speak().await.unwrap().status(), 500);
        assert_eq!(speak().await.unwrap().status(), 200);
        let (code, body) = post_faults(&base, "bogus").await;
        assert_eq!(code, 400);
        assert!(body["error"].as_str().unwrap().contains("unknown fault `bogus`"));
    }
}
