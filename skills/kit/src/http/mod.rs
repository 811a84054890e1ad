//! The one HTTP client of the kit, over `wstd::http`: every skill and the
//! ComfyUI client send through [`exchange`] (timeouts, and a failure sorted
//! into [`HttpError`]: no answer of which [`TransportKind`], or a non-2xx
//! status with its body), and most use [`ServiceClient`] on top, which turns
//! failures into a [`SkillError::Backend`] naming the service.
//!
//! A response whose body only goes to the artifact store can stay in the
//! host: [`exchange_streamed`] and [`ServiceClient::send_streamed`] give a
//! [`Streamed`] for [`Writer::copy_body`](crate::artifacts::Writer::copy_body).
//!
//! A request the sandbox refuses surfaces here as [`TransportKind::Denied`];
//! the host records the refusal itself and shows the user the URL and the
//! missing grant, so skills need not guess.

use crate::SkillError;
#[cfg(feature = "multipart")]
use crate::multipart::Form;
use crate::settings::Service;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;
use wstd::http::{Body, Client, ErrorCode, Method, Request, Response};

mod streamed;
#[cfg(feature = "multipart")]
pub(crate) use streamed::{Sink, WriteError};
pub use streamed::{Streamed, exchange_streamed};

/// What a request sends: a [`Body`] the guest writes out, or a multipart
/// [`Form`] whose input files the host splices into the connection (the
/// file's bytes never enter the skill).
pub enum Outgoing {
    /// Bytes the guest has or makes.
    Body(Body),
    /// A form; its input files are streamed by the host.
    #[cfg(feature = "multipart")]
    Form(Form),
}

impl From<Body> for Outgoing {
    fn from(body: Body) -> Self {
        Outgoing::Body(body)
    }
}

#[cfg(feature = "multipart")]
impl From<Form> for Outgoing {
    fn from(form: Form) -> Self {
        Outgoing::Form(form)
    }
}

/// The timeouts of a request; `None` waits as long as the host's deadline
/// allows (a HuMo render can take many minutes before its first byte).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timeouts {
    /// To open the connection.
    pub connect: Option<Duration>,
    /// Until the response head arrives.
    pub first_byte: Option<Duration>,
    /// The longest pause inside the body.
    pub between_bytes: Option<Duration>,
}

/// Why a request got no HTTP answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// A timeout: connecting, waiting for the head, or between body bytes.
    Timeout,
    /// The sandbox refused it (no grant covers the URL).
    Denied,
    /// Refused, reset, unreachable: the server is down or not there.
    Unreachable,
}

/// A request that failed.
#[derive(Debug, Clone, PartialEq)]
pub enum HttpError {
    /// No HTTP answer.
    Transport {
        /// What kind of failure.
        kind: TransportKind,
        /// The request: `GET http://…`.
        what: String,
        /// The transport's error.
        error: String,
    },
    /// A non-2xx answer.
    Status {
        /// The status code.
        status: u16,
        /// The body's text (empty when it could not be read).
        body: String,
    },
    /// An input file of a [`Form`] could not be sent as it was: it cannot
    /// be read, or it changed while it was being sent. The user's input is
    /// at fault, not the service.
    Input {
        /// The input field (`video`, `frames/0`).
        field: String,
        /// What went wrong, with the file's name.
        message: String,
    },
}

impl HttpError {
    /// From a transport error of `what` (`GET http://…`).
    pub fn transport(what: &str, e: &wstd::http::Error) -> Self {
        let error = format!("{e:#}");
        let kind = match e.downcast_ref::<ErrorCode>() {
            Some(
                ErrorCode::ConnectionTimeout
                | ErrorCode::ConnectionReadTimeout
                | ErrorCode::ConnectionWriteTimeout
                | ErrorCode::HttpResponseTimeout
                | ErrorCode::DnsTimeout,
            ) => TransportKind::Timeout,
            Some(ErrorCode::HttpRequestDenied | ErrorCode::DestinationIpProhibited) => TransportKind::Denied,
            _ if error.to_lowercase().contains("timeout") || error.contains("TimedOut") => TransportKind::Timeout,
            _ => TransportKind::Unreachable,
        };
        HttpError::Transport { kind, what: what.to_string(), error }
    }
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Transport { what, error, .. } => write!(f, "{what}: {error}"),
            HttpError::Status { status, body } => write!(f, "{status}: {}", body.trim()),
            HttpError::Input { field, message } => write!(f, "input `{field}`: {message}"),
        }
    }
}

/// Send `req` with `timeouts` (a [`Form`]'s files go from the host, see
/// [`exchange_streamed`]). A 2xx answer is returned with its body
/// unread; a non-2xx answer becomes [`HttpError::Status`] with its body's
/// text unless `any_status` asks for the response whatever its status (for
/// services whose error bodies the caller reads itself).
pub async fn exchange(
    req: Request<impl Into<Outgoing>>,
    timeouts: Timeouts,
    any_status: bool,
) -> Result<Response<Body>, HttpError> {
    let (head, body) = req.into_parts();
    let req = match body.into() {
        Outgoing::Body(body) => Request::from_parts(head, body),
        #[cfg(feature = "multipart")]
        form => {
            return Ok(exchange_streamed(Request::from_parts(head, form), timeouts, any_status).await?.into_response());
        }
    };
    let what = format!("{} {}", req.method(), req.uri());
    let mut client = Client::new();
    if let Some(t) = timeouts.connect {
        client.set_connect_timeout(t);
    }
    if let Some(t) = timeouts.first_byte {
        client.set_first_byte_timeout(t);
    }
    if let Some(t) = timeouts.between_bytes {
        client.set_between_bytes_timeout(t);
    }
    let resp = client.send(req).await.map_err(|e| HttpError::transport(&what, &e))?;
    let status = resp.status();
    if any_status || status.is_success() {
        return Ok(resp);
    }
    let mut body = resp.into_body();
    let body = body.contents().await.map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
    Err(HttpError::Status { status: status.as_u16(), body })
}

/// A client bound to one granted service: paths are joined to its base URL,
/// and failures become errors naming the service.
#[derive(Debug, Clone)]
pub struct ServiceClient {
    /// The granted service.
    pub service: Service,
    /// The timeouts of every request (none by default).
    pub timeouts: Timeouts,
}

impl ServiceClient {
    /// A client for `service`, without timeouts of its own.
    pub fn new(service: Service) -> Self {
        Self { service, timeouts: Timeouts::default() }
    }

    /// The same client with other timeouts.
    pub fn with_timeouts(&self, timeouts: Timeouts) -> Self {
        Self { service: self.service.clone(), timeouts }
    }

    /// The absolute URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.service.url, path)
    }

    fn fail(&self, status: Option<u16>, msg: impl Into<String>) -> SkillError {
        SkillError::backend(self.service.name.clone(), status, msg)
    }

    /// A failed request as an error naming the service (or, for an input
    /// file that could not be sent, the field).
    fn failed(&self, what: &str, e: HttpError) -> SkillError {
        match e {
            HttpError::Status { status, body } => self.fail(Some(status), format!("{what}: {}", body.trim())),
            other => self.failed_any(other),
        }
    }

    /// A request that got no answer, for the `*_any` calls.
    fn failed_any(&self, e: HttpError) -> SkillError {
        match e {
            HttpError::Input { field, message } => SkillError::invalid(field, message),
            other => self.fail(None, other.to_string()),
        }
    }

    /// Send a request and return the response whatever its status, for
    /// services whose error bodies the skill explains itself (FastAPI's
    /// `detail`, OpenAI's `error.param`). Only a failed connection is an error.
    pub async fn send_any(&self, req: Request<impl Into<Outgoing>>) -> Result<Response<Body>, SkillError> {
        exchange(req, self.timeouts, true).await.map_err(|e| self.failed_any(e))
    }

    /// Send a request; a non-2xx status becomes a backend error carrying the
    /// body's text.
    pub async fn send(&self, req: Request<impl Into<Outgoing>>) -> Result<Response<Body>, SkillError> {
        let what = format!("{} {}", req.method(), req.uri());
        exchange(req, self.timeouts, false).await.map_err(|e| self.failed(&what, e))
    }

    /// Like [`send`](Self::send), but the body of the 2xx answer stays in
    /// the host, for [`Writer::copy_body`](crate::artifacts::Writer::copy_body).
    pub async fn send_streamed(&self, req: Request<impl Into<Outgoing>>) -> Result<Streamed, SkillError> {
        let what = format!("{} {}", req.method(), req.uri());
        exchange_streamed(req, self.timeouts, false).await.map_err(|e| self.failed(&what, e))
    }

    /// Like [`send_any`](Self::send_any), but the body stays in the host
    /// (see [`send_streamed`](Self::send_streamed)); read an error body
    /// with [`Streamed::contents`].
    pub async fn send_streamed_any(&self, req: Request<impl Into<Outgoing>>) -> Result<Streamed, SkillError> {
        exchange_streamed(req, self.timeouts, true).await.map_err(|e| self.failed_any(e))
    }

    /// GET `path`.
    pub async fn get(&self, path: &str) -> Result<Response<Body>, SkillError> {
        let req = Request::get(self.url(path))
            .body(Body::empty())
            .map_err(|e| self.fail(None, format!("bad request: {e}")))?;
        self.send(req).await
    }

    /// GET `path` and parse the JSON body.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, SkillError> {
        let resp = self.get(path).await?;
        self.read_json(resp).await
    }

    /// A `POST` of `body` as JSON to `path`, for [`send`](Self::send) or
    /// [`send_any`](Self::send_any).
    pub fn json_request<B: Serialize>(&self, path: &str, body: &B) -> Result<Request<Body>, SkillError> {
        let bytes = serde_json::to_vec(body).map_err(SkillError::internal)?;
        Request::builder()
            .method(Method::POST)
            .uri(self.url(path))
            .header("content-type", "application/json")
            .body(Body::from(bytes))
            .map_err(|e| self.fail(None, format!("bad request: {e}")))
    }

    /// POST a JSON body to `path`; a non-2xx status is an error.
    pub async fn post_json<B: Serialize>(&self, path: &str, body: &B) -> Result<Response<Body>, SkillError> {
        self.send(self.json_request(path, body)?).await
    }

    /// POST a JSON body to `path` and return the response whatever its
    /// status (see [`send_any`](Self::send_any)).
    pub async fn post_json_any<B: Serialize>(&self, path: &str, body: &B) -> Result<Response<Body>, SkillError> {
        self.send_any(self.json_request(path, body)?).await
    }

    /// A `POST` of `form` to `path`, with its exact `Content-Length`; the
    /// host splices the form's input files into the connection as the body
    /// is sent, and the skill sees only their progress ([`Form::on_sent`]).
    #[cfg(feature = "multipart")]
    pub fn form_request(&self, path: &str, form: Form) -> Result<Request<Outgoing>, SkillError> {
        form.into_request(&self.url(path), false).map_err(|e| self.fail(None, e))
    }

    /// Like [`form_request`](Self::form_request), but with the body built in
    /// memory and sent whole (see [`Form::into_request`]). Input files in the
    /// form are read whole into guest memory.
    #[cfg(feature = "multipart")]
    pub fn buffered_form_request(&self, path: &str, form: Form) -> Result<Request<Outgoing>, SkillError> {
        form.into_request(&self.url(path), true).map_err(|e| self.fail(None, e))
    }

    /// POST a multipart form to `path` (see [`form_request`](Self::form_request)).
    #[cfg(feature = "multipart")]
    pub async fn post_form(&self, path: &str, form: Form) -> Result<Response<Body>, SkillError> {
        let req = self.form_request(path, form)?;
        self.send(req).await
    }

    /// Parse a response body as JSON.
    pub async fn read_json<T: DeserializeOwned>(&self, resp: Response<Body>) -> Result<T, SkillError> {
        let mut body = resp.into_body();
        let bytes = body.contents().await.map_err(|e| self.fail(None, format!("reading body: {e:#}")))?;
        serde_json::from_slice(bytes).map_err(|e| self.fail(None, format!("unexpected JSON: {e}")))
    }
}
