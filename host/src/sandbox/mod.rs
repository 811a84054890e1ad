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

mod connect;

use crate::config::GrantedService;
use c41_policy::{Denial, GrantSet, Host};
use http::{HeaderName, HeaderValue};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiHttpHooks};

pub use connect::send_pinned;

/// Connect timeout when the skill sets none: LAN services answer quickly, and
/// a wrong address should fail fast with a clear error.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

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
    headers: Arc<Vec<(String, Vec<(HeaderName, HeaderValue)>)>>,
    denials: DenialLog,
}

impl SandboxHooks {
    /// Policy for `skill` with the services it was granted.
    pub fn new(skill: &str, services: &[GrantedService], denials: DenialLog) -> Self {
        let headers = services
            .iter()
            .map(|s| {
                let hs = s
                    .headers
                    .iter()
                    .filter_map(|(k, v)| Some((HeaderName::try_from(k.as_str()).ok()?, HeaderValue::try_from(v.as_str()).ok()?)))
                    .collect();
                (s.name.clone(), hs)
            })
            .collect();
        SandboxHooks {
            skill: skill.to_string(),
            grants: Arc::new(crate::config::grant_set(services)),
            headers: Arc::new(headers),
            denials,
        }
    }

    fn deny(&self, denial: Denial) -> HttpError {
        tracing::info!(skill = %self.skill, "{denial}");
        self.denials.record(denial);
        HttpError::HttpRequestDenied
    }
}

type BoxFut<T> = Box<dyn Future<Output = T> + Send>;
type SendResult = Result<(http::Response<wasmtime_wasi_http::WasiBody>, BoxFut<Result<(), HttpError>>), HttpError>;

impl WasiHttpHooks for SandboxHooks {
    fn send_request(
        &mut self,
        mut request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<RequestOptions>,
        _fut: BoxFut<Result<(), HttpError>>,
    ) -> BoxFut<SendResult> {
        let target = match self.grants.check(request.uri()) {
            Ok(t) => t,
            Err(denial) => {
                let err = self.deny(denial);
                return Box::new(async move { Err(err) });
            }
        };
        if let Some((_, extra)) = self.headers.iter().find(|(name, _)| *name == target.service) {
            for (k, v) in extra {
                request.headers_mut().insert(k.clone(), v.clone());
            }
        }
        let grants = self.grants.clone();
        let denials = self.denials.clone();
        let skill = self.skill.clone();
        Box::new(async move {
            let addr: SocketAddr = match &target.host {
                Host::Ip(ip) => SocketAddr::new(*ip, target.port),
                Host::Name(name) => {
                    let found: Vec<std::net::IpAddr> = tokio::net::lookup_host((name.as_str(), target.port))
                        .await
                        .map(|it| it.map(|a| a.ip()).collect())
                        .unwrap_or_default();
                    if found.is_empty() {
                        return Err(HttpError::DnsError { rcode: Some("NXDOMAIN".into()), info_code: None });
                    }
                    match grants.check_resolved(&target, &found) {
                        Ok(addr) => addr,
                        Err(denial) => {
                            tracing::info!(skill = %skill, "{denial}");
                            denials.record(denial);
                            return Err(HttpError::HttpRequestDenied);
                        }
                    }
                }
            };
            tracing::debug!(skill = %skill, url = %request.uri(), %addr, "outgoing request");
            let tls_name = match (&target.scheme, &target.host) {
                (c41_policy::Scheme::Https, host) => Some(host.to_string().trim_matches(['[', ']']).to_string()),
                _ => None,
            };
            send_pinned(request, addr, tls_name, options).await
        })
    }
}

#[cfg(test)]
mod tests;
