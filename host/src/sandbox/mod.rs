//! The sandbox's outgoing-HTTP policy: the one place where a skill's request
//! is allowed or refused.
//!
//! Every `wasi:http` request a component makes reaches
//! [`SandboxHooks::send_request`]. It asks `c41-policy` whether the URL
//! matches a grant (scheme, normalised host and port, all exact), records
//! every refusal so the host can explain it (a guest library may only see
//! "connection reset"), resolves a granted name in the host and connects to
//! the checked address itself (no DNS-rebinding gap), and adds the service's
//! configured auth headers, which the skill never sees.
//!
//! What else is closed, and where: filesystem, environment and sockets are
//! never granted (`runtime::instance_ctx` builds a `WasiCtx` with none of
//! them); redirects are not followed (wasi:http never does, so each hop comes
//! back through this hook).

mod abort;
mod connect;

use crate::config::GrantedService;
use crate::runtime::budget::{LimitLog, Slot, Slots};
use c41_policy::{Denial, GrantSet, Host};
use http::{HeaderName, HeaderValue};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiHttpHooks};

pub use connect::{Stream, open_stream, send_pinned};

/// Connect timeout when the skill sets none: LAN services answer quickly, and
/// a wrong address should fail fast with a clear error.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Headers the host adds to requests to one service.
type ServiceHeaders = Vec<(HeaderName, HeaderValue)>;

/// The refusals of one invocation, shared between the hook and the caller.
#[derive(Debug, Clone, Default)]
pub struct DenialLog(Arc<Mutex<Vec<Denial>>>);

impl DenialLog {
    /// Record one refusal.
    pub fn record(&self, denial: Denial) {
        self.0.lock().unwrap().push(denial);
    }
    /// All refusals so far, oldest first.
    pub fn all(&self) -> Vec<Denial> {
        self.0.lock().unwrap().clone()
    }
}

/// One invocation's outgoing-HTTP policy.
pub struct SandboxHooks {
    skill: String,
    grants: Arc<GrantSet>,
    headers: Arc<Vec<(String, ServiceHeaders)>>,
    denials: DenialLog,
    connections: Slots,
    limits: LimitLog,
    cancel: Option<tokio_util::sync::CancellationToken>,
    /// Told which service the skill reaches, when that changes.
    events: Option<ServiceReports>,
}

/// Where [`SandboxHooks`] reports the service a skill reaches, and the last
/// one it reported.
#[derive(Clone)]
struct ServiceReports {
    events: Arc<dyn crate::events::EventSink>,
    last: Arc<Mutex<String>>,
}

impl SandboxHooks {
    /// Policy for `skill` with the services it was granted; `connections`
    /// caps the connections it holds open at once.
    pub fn new(
        skill: &str,
        services: &[GrantedService],
        denials: DenialLog,
        connections: Slots,
        limits: LimitLog,
    ) -> Self {
        let headers = services
            .iter()
            .map(|s| {
                let hs = s
                    .headers
                    .iter()
                    .filter_map(|(k, v)| {
                        Some((HeaderName::try_from(k.as_str()).ok()?, HeaderValue::try_from(v.as_str()).ok()?))
                    })
                    .collect();
                (s.name.clone(), hs)
            })
            .collect();
        SandboxHooks {
            skill: skill.to_string(),
            grants: Arc::new(crate::config::grant_set(services)),
            headers: Arc::new(headers),
            denials,
            connections,
            limits,
            cancel: None,
            events: None,
        }
    }

    /// Emit [`Event::Service`](crate::events::Event::Service) to `events`
    /// whenever a request reaches a service other than the last one.
    pub fn reporting_to(mut self, events: Arc<dyn crate::events::EventSink>) -> Self {
        self.events = Some(ServiceReports { events, last: Arc::default() });
        self
    }

    /// One outgoing connection (an HTTP request in flight, a websocket),
    /// held until the returned slot is dropped; refused (and recorded) past
    /// `limits.connections`.
    pub fn connection(&self) -> Result<Slot, String> {
        self.connections.take().inspect_err(|m| self.limits.record(&self.skill, m.clone()))
    }

    /// Abort requests in flight when `cancel` fires (see the `abort` module).
    pub fn abort_on_cancel(&mut self, cancel: tokio_util::sync::CancellationToken) {
        self.cancel = Some(cancel);
    }
}

type BoxFut<T> = Box<dyn Future<Output = T> + Send>;
type SendResult = Result<(http::Response<wasmtime_wasi_http::WasiBody>, BoxFut<Result<(), HttpError>>), HttpError>;

/// Where an allowed request goes: the checked address, the name TLS must
/// verify, and the headers the host adds.
#[derive(Debug, Clone)]
pub struct Pinned {
    /// The address to connect to (checked against the grant).
    pub addr: SocketAddr,
    /// For HTTPS: the granted host name to verify the certificate for.
    pub tls_name: Option<String>,
    /// The service's configured headers (auth), added by the host.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl SandboxHooks {
    /// Check `uri` against the grants, resolve a granted name in the host,
    /// and return where to connect. Every refusal is recorded before the
    /// error is returned. This is the only way out of the sandbox: HTTP
    /// requests and websocket connections both come through here.
    pub fn authorize(&self, uri: &http::Uri) -> impl Future<Output = Result<Pinned, Denial>> + Send + 'static {
        let checked = self.grants.check(uri);
        let grants = self.grants.clone();
        let denials = self.denials.clone();
        let skill = self.skill.clone();
        let all_headers = self.headers.clone();
        let events = self.events.clone();
        async move {
            let record = |denial: Denial| {
                tracing::info!(skill = %skill, "{denial}");
                denials.record(denial.clone());
                denial
            };
            let target = checked.map_err(record)?;
            let addr = match &target.host {
                Host::Ip(ip) => SocketAddr::new(*ip, target.port),
                Host::Name(name) => {
                    let found: Vec<std::net::IpAddr> = tokio::net::lookup_host((name.as_str(), target.port))
                        .await
                        .map(|it| it.map(|a| a.ip()).collect())
                        .unwrap_or_default();
                    grants.check_resolved(&target, &found).map_err(|d| match d.reason {
                        // A lookup failure is not a refusal: do not record it.
                        c41_policy::DenialReason::Unresolved => d,
                        _ => record(d),
                    })?
                }
            };
            let tls_name = match target.scheme {
                c41_policy::Scheme::Https => Some(target.host.to_string().trim_matches(['[', ']']).to_string()),
                c41_policy::Scheme::Http => None,
            };
            let headers = all_headers
                .iter()
                .find(|(name, _)| *name == target.service)
                .map(|(_, h)| h.clone())
                .unwrap_or_default();
            if let Some(ServiceReports { events, last }) = events {
                let changed = {
                    let mut last = last.lock().unwrap();
                    let changed = *last != target.service;
                    if changed {
                        last.clone_from(&target.service);
                    }
                    changed
                };
                if changed {
                    events.emit(&skill, crate::events::Event::Service(target.service.clone()));
                }
            }
            Ok(Pinned { addr, tls_name, headers })
        }
    }
}

impl WasiHttpHooks for SandboxHooks {
    fn send_request(
        &mut self,
        mut request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<RequestOptions>,
        _fut: BoxFut<Result<(), HttpError>>,
    ) -> BoxFut<SendResult> {
        let authorized = self.authorize(request.uri());
        let skill = self.skill.clone();
        let slot = self.connection();
        let cancel = self.cancel.clone();
        Box::new(async move {
            let Ok(slot) = slot else { return Err(HttpError::ConnectionLimitReached) };
            let pinned = match authorized.await {
                Ok(p) => p,
                Err(denial) if matches!(denial.reason, c41_policy::DenialReason::Unresolved) => {
                    return Err(HttpError::DnsError { rcode: Some("NXDOMAIN".into()), info_code: None });
                }
                Err(_) => return Err(HttpError::HttpRequestDenied),
            };
            for (k, v) in pinned.headers {
                request.headers_mut().insert(k, v);
            }
            tracing::debug!(skill = %skill, url = %request.uri(), addr = %pinned.addr, "outgoing request");
            // A request made after the cancel is the skill cleaning up: let it
            // run; one in flight when the cancel comes is aborted.
            let armed = cancel.filter(|c| !c.is_cancelled());
            let (response, io) = match &armed {
                None => send_pinned(request, pinned.addr, pinned.tls_name, options).await?,
                Some(cancel) => tokio::select! {
                    r = send_pinned(request, pinned.addr, pinned.tls_name, options) => r?,
                    _ = cancel.cancelled() => return Err(abort::aborted()),
                },
            };
            let response = match armed {
                Some(cancel) => {
                    response.map(|body| http_body_util::BodyExt::boxed_unsync(abort::AbortOnCancel::new(body, cancel)))
                }
                None => response,
            };
            // The connection counts until it closes (the response is read
            // or dropped).
            let io: BoxFut<Result<(), HttpError>> = Box::new(async move {
                let _slot = slot;
                Box::into_pin(io).await
            });
            Ok((response, io))
        })
    }
}

#[cfg(test)]
mod tests;
