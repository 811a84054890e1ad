//! Sending a request to an address the policy already checked.
//!
//! Adapted from `wasmtime_wasi_http::default_send_request` (Apache-2.0 WITH
//! LLVM-exception), which connects to whatever the URI's authority resolves
//! to. Here the caller passes the pinned `SocketAddr`, and TLS verifies the
//! granted host name, so what was checked is what is reached.

use bytes::Bytes;
use http_body::Body;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::net::TcpStream;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

/// A connected byte stream (TCP, or TLS over TCP).
pub trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Sync + Unpin + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Sync + Unpin + 'static> Stream for T {}

type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;

/// Send `req` over a new connection to `addr`; for HTTPS, verify the
/// certificate for `tls_name` (the granted host, not the address).
pub async fn send_pinned(
    req: http::Request<WasiBody>,
    addr: SocketAddr,
    tls_name: Option<String>,
    options: Option<RequestOptions>,
) -> Result<(http::Response<WasiBody>, IoFuture), Error> {
    let opt = options.unwrap_or_default();
    let connect_timeout = opt.connect_timeout.unwrap_or(super::DEFAULT_CONNECT_TIMEOUT);
    let first_byte_timeout = opt.first_byte_timeout.unwrap_or(Duration::from_secs(600));
    let between_bytes_timeout =
        opt.between_bytes_timeout.unwrap_or(Duration::from_secs(600)).max(Duration::from_nanos(1));

    let stream = open_stream(addr, tls_name, connect_timeout).await?;
    let (mut sender, conn) = tokio::time::timeout(
        connect_timeout,
        hyper::client::conn::http1::Builder::new().handshake(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)??;

    let mut req = pump_body(req);

    // Origin-form on the wire: the authority travels in the Host header.
    *req.uri_mut() = http::Uri::builder()
        .path_and_query(req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/"))
        .build()
        .expect("path comes from a valid request");

    let mut conn = Box::pin(conn);
    let send = tokio::time::timeout(first_byte_timeout, sender.send_request(req));
    let mut send = std::pin::pin!(send);
    let mut conn_done = false;
    // Drive the connection while waiting for the response head.
    let res = std::future::poll_fn(|cx| {
        if let Poll::Ready(r) = send.as_mut().poll(cx) {
            return Poll::Ready(r);
        }
        if !conn_done && let Poll::Ready(r) = conn.as_mut().poll(cx) {
            conn_done = true;
            // A server may answer before it read the whole body (a proxy's
            // size limit: 413, then it closes the connection, and the
            // write fails). The answer hyper read before the failure is
            // what the skill needs, not the broken write.
            let answered = send.as_mut().poll(cx);
            return match (answered, r) {
                (Poll::Ready(Ok(Ok(res))), _) => Poll::Ready(Ok(Ok(res))),
                (_, Err(e)) => Poll::Ready(Ok(Err(e))),
                (answered, Ok(())) => answered,
            };
        }
        Poll::Pending
    })
    .await
    .map_err(|_| Error::ConnectionReadTimeout)?
    .map_err(Error::from)?;

    let mut timeout = tokio::time::interval(between_bytes_timeout);
    timeout.reset();
    let res = res.map(|incoming| TimedBody { incoming, timeout }.boxed_unsync());
    let io: IoFuture = Box::new(async move {
        if conn_done {
            return Ok(());
        }
        match conn.await {
            Ok(()) => Ok(()),
            Err(e) if e.is_timeout() => Err(Error::HttpResponseTimeout),
            Err(e) => Err(e.into()),
        }
    });
    Ok((res, io))
}

/// Put a forwarding task between the guest's request body and hyper.
///
/// hyper drops a request body as soon as it no longer needs it (a server
/// that answered a GET without reading its chunked body, or a body whose
/// `content-length` bytes were all sent). The guest may still be writing or
/// finishing that body, and its next write would then fail with "connection
/// reset" although the request succeeded. The pump keeps draining the
/// guest's body to its end whatever hyper does, so a guest never sees a
/// spurious error.
fn pump_body(req: http::Request<WasiBody>) -> http::Request<WasiBody> {
    let (parts, mut body) = req.into_parts();
    if body.is_end_stream() {
        return http::Request::from_parts(parts, body);
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<http_body::Frame<Bytes>, Error>>(4);
    tokio::spawn(async move {
        let mut open = true;
        while let Some(frame) = body.frame().await {
            if open && tx.send(frame).await.is_err() {
                open = false; // hyper is done with it; drain the rest
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|f| (f, rx)) });
    http::Request::from_parts(parts, http_body_util::StreamBody::new(stream).boxed_unsync())
}

/// Connect to the pinned `addr`; for TLS, verify `tls_name` (the granted
/// host), never the address.
pub async fn open_stream(
    addr: SocketAddr,
    tls_name: Option<String>,
    connect_timeout: Duration,
) -> Result<Box<dyn Stream>, Error> {
    let tcp = match tokio::time::timeout(connect_timeout, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Err(Error::ConnectionRefused),
        Ok(Err(e)) => return Err(Error::Connect(e)),
        Err(_) => return Err(Error::ConnectionTimeout),
    };
    let _ = tcp.set_nodelay(true);
    Ok(match tls_name {
        Some(name) => {
            let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.into() };
            let config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
            let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
            let server_name = rustls::pki_types::ServerName::try_from(name)?;
            Box::new(connector.connect(server_name, tcp).await.map_err(Error::Tls)?)
        }
        None => Box::new(tcp),
    })
}

/// A response body that fails if no bytes arrive for the between-bytes
/// timeout, instead of hanging the skill until its deadline.
struct TimedBody {
    incoming: hyper::body::Incoming,
    timeout: tokio::time::Interval,
}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Error>>> {
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Err(e))) => {
                Poll::Ready(Some(Err(if e.is_timeout() { Error::HttpResponseTimeout } else { e.into() })))
            }
            Poll::Ready(Some(Ok(frame))) => {
                self.timeout.reset();
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                ready!(self.timeout.poll_tick(cx));
                Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.incoming.size_hint()
    }
}
