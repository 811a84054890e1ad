//! Bodies that stay in the host, both ways. `wstd` reads every response body
//! through the guest; a file that only goes to the artifact store need not:
//! [`exchange_streamed`] sends the request over `wasi:http` itself and keeps
//! the response's `incoming-body` stream, which
//! [`Writer::copy_body`](crate::artifacts::Writer::copy_body) hands to the
//! host (`artifact-writer.copy-from`), so a 500 MB video goes from the
//! connection to the disk without crossing into the skill's memory.
//!
//! The other way, the request body is written through a [`Sink`]: a
//! [`Form`](crate::multipart::Form)'s input files are spliced into it from
//! `input-file.stream` (`output-stream.splice`), so an upload goes from the
//! disk to the connection in the host too.
//!
//! The request goes through the same sandbox as any other: the same grants,
//! the same timeouts, the same errors ([`HttpError`]).

use super::{HttpError, Outgoing, Timeouts};
use futures_lite::future;
use std::time::Duration;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    Fields, IncomingBody, IncomingResponse, Method as WasiMethod, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};
use wasip2::io::streams::{InputStream, OutputStream, StreamError};
use wstd::http::body::util::BodyExt;
use wstd::http::{Body, HeaderMap, HeaderName, HeaderValue, Method, Request, Response};
use wstd::runtime::AsyncPollable;

/// A 2xx response with its body unread, held as the `wasi:http` stream.
pub struct Streamed {
    /// The status code.
    pub status: u16,
    /// The response headers.
    pub headers: HeaderMap,
    // Field order matters: the readiness of the stream, the stream and the
    // body are dropped in this order (children before their parents).
    ready: Option<AsyncPollable>,
    stream: InputStream,
    _body: IncomingBody,
}

impl std::fmt::Debug for Streamed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streamed").field("status", &self.status).field("headers", &self.headers).finish()
    }
}

impl Streamed {
    /// The `Content-Length` the server announced, if any.
    pub fn content_length(&self) -> Option<u64> {
        self.header("content-length")?.trim().parse().ok()
    }

    /// A header's value as text, if present and text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name)?.to_str().ok().map(str::to_string)
    }

    /// The body's stream, for `artifact-writer.copy-from`.
    pub(crate) fn stream(&self) -> &InputStream {
        &self.stream
    }

    /// Reads the next bytes into the guest (at most `max`), waiting for
    /// some to arrive; `None` at the end of the body. For the bytes a skill
    /// inspects; the rest goes by [`Writer::copy_body`](crate::artifacts::Writer::copy_body).
    pub async fn read(&mut self, max: usize) -> Result<Option<Vec<u8>>, String> {
        loop {
            match self.stream.read(max as u64) {
                Ok(bytes) if bytes.is_empty() => {
                    let ready = self.ready.get_or_insert_with(|| AsyncPollable::new(self.stream.subscribe()));
                    ready.wait_for().await;
                }
                Ok(bytes) => return Ok(Some(bytes)),
                Err(StreamError::Closed) => return Ok(None),
                Err(StreamError::LastOperationFailed(e)) => return Err(e.to_debug_string()),
            }
        }
    }

    /// The whole rest of the body, read into the guest (an error page);
    /// what arrived before a broken connection.
    pub async fn contents(mut self) -> Vec<u8> {
        let mut all = Vec::new();
        while let Ok(Some(bytes)) = self.read(64 * 1024).await {
            all.extend_from_slice(&bytes);
        }
        all
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The response as `wstd` gives it, its body read into the guest as it
    /// is polled (a JSON answer to an upload).
    pub fn into_response(self) -> Response<Body> {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = wstd::http::StatusCode::from_u16(self.status).unwrap_or_default();
        *response.headers_mut() = self.headers.clone();
        let chunks = futures_lite::stream::unfold(self, |mut body| async move {
            match body.read(64 * 1024).await {
                Ok(Some(bytes)) => Some((Ok(bytes), body)),
                Ok(None) => None,
                Err(e) => Some((Err(std::io::Error::other(e)), body)),
            }
        });
        *response.body_mut() = Body::from_try_stream(chunks);
        response
    }
}

/// Why writing a request body stopped.
#[cfg(feature = "multipart")]
pub(crate) enum WriteError {
    /// The connection failed.
    Sink(String),
    /// The spliced source ended early or failed.
    Source(String),
    /// An input file could not be sent (its field, and why).
    Input { field: String, message: String },
}

/// A request body's `output-stream`: bytes the guest writes, and input
/// files the host splices in (`output-stream.splice`).
pub(crate) struct Sink {
    // Dropped before the stream it watches.
    writable: Option<AsyncPollable>,
    out: OutputStream,
}

fn stream_error(e: StreamError) -> String {
    match e {
        StreamError::Closed => "the connection closed".to_string(),
        StreamError::LastOperationFailed(e) => e.to_debug_string(),
    }
}

impl Sink {
    fn new(out: OutputStream) -> Self {
        Sink { writable: None, out }
    }

    /// Waits until the stream takes more bytes (or has failed).
    async fn writable(&mut self) {
        let out = &self.out;
        self.writable.get_or_insert_with(|| AsyncPollable::new(out.subscribe())).wait_for().await;
    }

    /// Writes all of `bytes`, as fast as the connection takes them.
    pub(crate) async fn write_all(&mut self, mut bytes: &[u8]) -> Result<(), String> {
        while !bytes.is_empty() {
            let permit = self.out.check_write().map_err(stream_error)?;
            if permit == 0 {
                self.writable().await;
                continue;
            }
            let n = bytes.len().min(usize::try_from(permit).unwrap_or(usize::MAX));
            self.out.write(&bytes[..n]).map_err(stream_error)?;
            bytes = &bytes[n..];
        }
        Ok(())
    }

    /// Moves `len` bytes from `from` to the connection in the host: the
    /// bytes never enter the guest, which learns only how many went
    /// (`on_bytes`, after each splice). A source that ends early is an
    /// error: the request announced its length.
    #[cfg(feature = "multipart")]
    pub(crate) async fn splice(
        &mut self,
        from: &InputStream,
        len: u64,
        mut on_bytes: impl FnMut(u64),
    ) -> Result<(), WriteError> {
        // Dropped before `from` (the caller's).
        let mut readable: Option<AsyncPollable> = None;
        let mut left = len;
        while left > 0 {
            match self.out.splice(from, left) {
                // The connection is full or the next bytes are still being
                // read: wait for both.
                Ok(0) => {
                    self.writable().await;
                    readable.get_or_insert_with(|| AsyncPollable::new(from.subscribe())).wait_for().await;
                }
                Ok(n) => {
                    left = left.saturating_sub(n);
                    on_bytes(n);
                }
                Err(StreamError::Closed) if self.out.check_write().is_ok() => {
                    return Err(WriteError::Source(format!(
                        "the file ended after {} of {len} bytes (it changed after the call started)",
                        len - left
                    )));
                }
                Err(e) => return Err(WriteError::Sink(stream_error(e))),
            }
        }
        Ok(())
    }
}

/// Sends `req` with `timeouts` over `wasi:http` and returns a 2xx answer
/// with its body unread, as a [`Streamed`]; any other status becomes
/// [`HttpError::Status`] with the body's text unless `any_status` asks for
/// the response whatever its status. A [`Body`] streams through the guest as
/// with [`exchange`](super::exchange); a [`Form`](crate::multipart::Form)'s
/// input files are spliced into the connection by the host.
pub async fn exchange_streamed(
    req: Request<impl Into<Outgoing>>,
    timeouts: Timeouts,
    any_status: bool,
) -> Result<Streamed, HttpError> {
    let what = &format!("{} {}", req.method(), req.uri());
    let fail = |e: wstd::http::Error| HttpError::transport(what, &e);
    let outgoing = to_wasi(&req).map_err(|e| fail(wstd::http::Error::msg(e)))?;
    let body = req.into_body();
    let wasi_body = outgoing.body().map_err(|()| fail(wstd::http::Error::msg("request body taken")))?;
    let pending = outgoing_handler::handle(outgoing, Some(options(timeouts))).map_err(|e| fail(e.into()))?;
    let send = async move {
        let out = wasi_body.write().map_err(|()| fail(wstd::http::Error::msg("request body stream taken")))?;
        let mut sink = Sink::new(out);
        match body.into() {
            Outgoing::Body(body) => {
                let mut body = body.into_boxed_body();
                while let Some(frame) = body.frame().await {
                    if let Some(data) = frame.map_err(fail)?.data_ref() {
                        sink.write_all(data).await.map_err(|e| fail(wstd::http::Error::msg(e)))?;
                    }
                }
            }
            #[cfg(feature = "multipart")]
            Outgoing::Form(form) => form.write_to(&mut sink).await.map_err(|e| match e {
                WriteError::Input { field, message } => HttpError::Input { field, message },
                WriteError::Sink(e) | WriteError::Source(e) => fail(wstd::http::Error::msg(e)),
            })?,
        }
        drop(sink);
        OutgoingBody::finish(wasi_body, None).map_err(|e| fail(e.into()))?;
        Ok::<_, HttpError>(())
    };
    let receive = async move {
        AsyncPollable::new(pending.subscribe()).wait_for().await;
        let answer = pending.get().and_then(Result::ok).ok_or_else(|| fail(wstd::http::Error::msg("no response")))?;
        answer.map_err(|e| fail(e.into()))
    };
    let ((), response) = future::try_zip(send, receive).await?;
    let streamed = from_wasi(response).map_err(|e| fail(wstd::http::Error::msg(e)))?;
    if any_status || streamed.is_success() {
        return Ok(streamed);
    }
    let status = streamed.status;
    let body = String::from_utf8_lossy(&streamed.contents().await).into_owned();
    Err(HttpError::Status { status, body })
}

fn options(t: Timeouts) -> RequestOptions {
    let nanos = |d: Option<Duration>| d.map(|d| d.as_nanos().min(u64::MAX as u128) as u64);
    let o = RequestOptions::new();
    // A host that does not support a timeout refuses to set it; the
    // invocation's own deadline still applies.
    let _ = o.set_connect_timeout(nanos(t.connect));
    let _ = o.set_first_byte_timeout(nanos(t.first_byte));
    let _ = o.set_between_bytes_timeout(nanos(t.between_bytes));
    o
}

fn to_wasi<B>(req: &Request<B>) -> Result<OutgoingRequest, String> {
    let fields = Fields::new();
    for (name, value) in req.headers() {
        fields.append(name.as_str(), value.as_bytes()).map_err(|e| format!("header {name}: {e:?}"))?;
    }
    let out = OutgoingRequest::new(fields);
    let method = match *req.method() {
        Method::GET => WasiMethod::Get,
        Method::HEAD => WasiMethod::Head,
        Method::POST => WasiMethod::Post,
        Method::PUT => WasiMethod::Put,
        Method::DELETE => WasiMethod::Delete,
        Method::PATCH => WasiMethod::Patch,
        Method::OPTIONS => WasiMethod::Options,
        ref other => WasiMethod::Other(other.as_str().to_string()),
    };
    out.set_method(&method).map_err(|()| format!("method {} refused", req.method()))?;
    let scheme = match req.uri().scheme_str() {
        Some("http") => Scheme::Http,
        Some("https") | None => Scheme::Https,
        Some(other) => Scheme::Other(other.to_string()),
    };
    out.set_scheme(Some(&scheme)).map_err(|()| "scheme refused".to_string())?;
    let authority = req.uri().authority().map(|a| a.as_str());
    out.set_authority(authority).map_err(|()| format!("authority {authority:?} refused"))?;
    if let Some(pq) = req.uri().path_and_query() {
        out.set_path_with_query(Some(pq.as_str())).map_err(|()| format!("path {pq} refused"))?;
    }
    Ok(out)
}

fn from_wasi(response: IncomingResponse) -> Result<Streamed, String> {
    let mut headers = HeaderMap::new();
    for (name, value) in response.headers().entries() {
        let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(&value)) else {
            continue;
        };
        headers.append(name, value);
    }
    let status = response.status();
    let body = response.consume().map_err(|()| "response body taken".to_string())?;
    let stream = body.stream().map_err(|()| "response body stream taken".to_string())?;
    Ok(Streamed { status, headers, ready: None, stream, _body: body })
}
