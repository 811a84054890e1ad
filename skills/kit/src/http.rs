//! Small HTTP helpers over `wstd::http` that turn every failure into a
//! [`SkillError::Backend`] naming the service, so skills never hand-roll
//! error mapping.
//!
//! A request the sandbox refuses surfaces here as a connection error; the host
//! records the refusal itself and shows the user the URL and the missing
//! grant, so skills need not guess.

use crate::SkillError;
use crate::multipart::Form;
use crate::settings::Service;
use serde::Serialize;
use serde::de::DeserializeOwned;
use wstd::http::{Body, Client, Method, Request, Response};

/// A client bound to one granted service: paths are joined to its base URL.
#[derive(Debug, Clone)]
pub struct ServiceClient {
    /// The granted service.
    pub service: Service,
}

impl ServiceClient {
    /// A client for `service`.
    pub fn new(service: Service) -> Self {
        Self { service }
    }

    /// The absolute URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.service.url, path)
    }

    fn fail(&self, status: Option<u16>, msg: impl Into<String>) -> SkillError {
        SkillError::backend(self.service.name.clone(), status, msg)
    }

    /// Send a request and return the response whatever its status, for
    /// services whose error bodies the skill explains itself (FastAPI's
    /// `detail`, OpenAI's `error.param`). Only a failed connection is an error.
    pub async fn send_any(&self, req: Request<Body>) -> Result<Response<Body>, SkillError> {
        let what = format!("{} {}", req.method(), req.uri());
        Client::new().send(req).await.map_err(|e| self.fail(None, format!("{what}: {e:#}")))
    }

    /// Send a request; a non-2xx status becomes a backend error carrying the
    /// body's text.
    pub async fn send(&self, req: Request<Body>) -> Result<Response<Body>, SkillError> {
        let what = format!("{} {}", req.method(), req.uri());
        let resp = self.send_any(req).await?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let mut body = resp.into_body();
        let text = body.str_contents().await.map(str::to_owned).unwrap_or_default();
        Err(self.fail(Some(status.as_u16()), format!("{what}: {}", text.trim())))
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

    /// A `POST` of `form` to `path`, with its exact `Content-Length`; input
    /// files in the form are streamed from the host as the body is sent.
    pub fn form_request(&self, path: &str, form: Form) -> Result<Request<Body>, SkillError> {
        form.into_request(&self.url(path), false).map_err(|e| self.fail(None, e))
    }

    /// Like [`form_request`](Self::form_request), but with the body built in
    /// memory and sent whole (see [`Form::into_request`]). Input files in the
    /// form are read whole into guest memory.
    pub fn buffered_form_request(&self, path: &str, form: Form) -> Result<Request<Body>, SkillError> {
        form.into_request(&self.url(path), true).map_err(|e| self.fail(None, e))
    }

    /// POST a multipart form to `path` (see [`form_request`](Self::form_request)).
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
