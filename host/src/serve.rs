//! The HTTP front of `c41 serve`: one host process for every agent session
//! and script on the machine, instead of a `c41 mcp` per session.
//!
//! - `/mcp`: the same MCP server as `c41 mcp` ([`McpServer`]: tools,
//!   progress, cancellation, deferred results), over Streamable HTTP
//!   (rmcp's server transport). Every session shares one server, so a run
//!   started by one client can be waited on by another, and it goes on when
//!   its client goes away.
//! - `/health`: `{"ok": true, "skills": N}`, for service managers and
//!   scripts that wait for the daemon.
//! - `/`: the studio's page and its API ([`crate::web`]), over the same runs.
//!
//! A daemon that starts again resumes the runs the one before it left
//! interrupted (a SIGTERM records them so; see `c41 serve`), under their ids.
//!
//! Every request passes [`Guard`] first: the `Host` must name this daemon and
//! a browser's `Origin` must be this daemon's own (a web page elsewhere must
//! not drive it through DNS rebinding), and when a token is configured the
//! request must carry it. Listening on anything but loopback requires a
//! token ([`check_listen`]).

use crate::app::App;
use crate::mcp::McpServer;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Refuse to listen beyond loopback without a token: anyone on the LAN could
/// otherwise run the studio's skills with the studio's grants.
pub fn check_listen(addr: &SocketAddr, token: Option<&str>) -> Result<(), String> {
    if addr.ip().is_loopback() || token.is_some() {
        Ok(())
    } else {
        Err(format!(
            "listening on {addr} (not loopback) needs a token: set `token` or `token-env` under [serve] in the config; \
             every request must then carry `Authorization: Bearer <token>`"
        ))
    }
}

/// Who may talk to the daemon: the `Host` names it, a browser's `Origin` is
/// its own (the page it serves, never another site's), and the token when
/// one is set.
#[derive(Debug, Clone)]
pub struct Guard {
    /// Accepted `Host` values (`127.0.0.1:7411`, `localhost:7411`, ...);
    /// `None` on a wildcard address (0.0.0.0), where the names are the
    /// machine's and the token (required there) does the guarding.
    hosts: Option<Vec<String>>,
    token: Option<String>,
}

impl Guard {
    /// The guard for a daemon bound to `addr`.
    pub fn new(addr: &SocketAddr, token: Option<String>) -> Self {
        if addr.ip().is_unspecified() {
            return Guard { hosts: None, token };
        }
        let port = addr.port();
        let ip = if addr.is_ipv6() { format!("[{}]", addr.ip()) } else { addr.ip().to_string() };
        let mut names = vec![ip, "localhost".to_string()];
        if addr.ip().is_loopback() {
            names.extend(["127.0.0.1".to_string(), "[::1]".to_string()]);
        }
        names.sort();
        names.dedup();
        Guard { hosts: Some(names.iter().map(|n| format!("{n}:{port}")).collect()), token }
    }

    /// Why a request with `headers` (and `query`) may not pass, if it may
    /// not. Besides `Authorization`, the token may come as the page's cookie,
    /// or once as `?token=` in the link a person opens (which sets the cookie).
    fn refuse(&self, headers: &HeaderMap, query: Option<&str>) -> Option<(StatusCode, String)> {
        let value = |name| headers.get(name).and_then(|v| v.to_str().ok());
        let host = value(header::HOST).unwrap_or_default();
        if let Some(hosts) = &self.hosts
            && !hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
        {
            let why = format!("Host {host:?} is not this daemon's (expected one of {})", hosts.join(", "));
            return Some((StatusCode::FORBIDDEN, why));
        }
        if let Some(origin) = value(header::ORIGIN)
            && !origin.eq_ignore_ascii_case(&format!("http://{host}"))
        {
            return Some((StatusCode::FORBIDDEN, format!("Origin {origin:?} is not this daemon's own")));
        }
        if let Some(token) = &self.token {
            let bearer = value(header::AUTHORIZATION).and_then(|v| v.strip_prefix("Bearer "));
            let cookie = headers
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .find_map(|c| c.trim().strip_prefix(TOKEN_COOKIE)?.strip_prefix('='));
            let given = [bearer, cookie, query_token(query)];
            if !given.iter().flatten().any(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
                return Some((
                    StatusCode::UNAUTHORIZED,
                    "a valid `Authorization: Bearer <token>` is required (a browser: open the page once as /?token=<token>)"
                        .into(),
                ));
            }
        }
        None
    }
}

/// The cookie the page's token is kept in.
const TOKEN_COOKIE: &str = "c41_token";

/// The `token` parameter of a query string.
fn query_token(query: Option<&str>) -> Option<&str> {
    query?.split('&').find_map(|kv| kv.strip_prefix("token="))
}

/// Equal bytes, in a time that does not depend on where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn guard(State(guard): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    match guard.refuse(req.headers(), req.uri().query()) {
        None => {
            // A link with the token: keep it in a cookie the page's requests
            // carry (same site only, not readable by scripts).
            let keep = guard
                .token
                .as_ref()
                .filter(|_| query_token(req.uri().query()).is_some())
                .map(|t| format!("{TOKEN_COOKIE}={t}; Path=/; HttpOnly; SameSite=Strict"));
            let mut response = next.run(req).await;
            if let Some(cookie) = keep.and_then(|c| header::HeaderValue::try_from(c).ok()) {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            response
        }
        Some((status, why)) => {
            tracing::warn!(uri = %req.uri(), "refused: {why}");
            let mut r = (status, format!("c41 serve: {why}\n")).into_response();
            if status == StatusCode::UNAUTHORIZED {
                r.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
            }
            r
        }
    }
}

/// The daemon's routes for `app`'s MCP `server`, behind `guard`; `stop`
/// ends every MCP session.
pub fn router(app: &App, server: McpServer, guard: Guard, stop: CancellationToken) -> axum::Router {
    // The guard checks Host and Origin for every route; rmcp's own checks
    // would only repeat them for /mcp.
    let config = StreamableHttpServerConfig::default()
        .disable_allowed_hosts()
        .disable_allowed_origins()
        .with_cancellation_token(stop);
    let server_for_page = server.clone();
    let mcp = StreamableHttpService::new(move || Ok(server.clone()), Arc::new(LocalSessionManager::default()), config);
    let skills = app.catalog.iter().count();
    crate::web::routes(server_for_page)
        .nest_service("/mcp", mcp)
        .route(
            "/health",
            axum::routing::get(move || async move { axum::Json(serde_json::json!({"ok": true, "skills": skills})) }),
        )
        .layer(axum::middleware::from_fn_with_state(Arc::new(guard), self::guard))
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Guard {
        fn refuse_h(&self, headers: &HeaderMap) -> Option<(StatusCode, String)> {
            self.refuse(headers, None)
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn only_this_daemons_host_and_origin_and_the_token_pass() {
        let addr: SocketAddr = "127.0.0.1:7411".parse().unwrap();
        let open = Guard::new(&addr, None);
        assert!(open.refuse_h(&headers(&[("host", "127.0.0.1:7411")])).is_none());
        assert!(open.refuse_h(&headers(&[("host", "localhost:7411"), ("origin", "http://localhost:7411")])).is_none());
        // DNS rebinding: evil.example resolving to 127.0.0.1.
        assert_eq!(open.refuse_h(&headers(&[("host", "evil.example:7411")])).unwrap().0, StatusCode::FORBIDDEN);
        assert_eq!(open.refuse_h(&headers(&[("host", "127.0.0.1:7412")])).unwrap().0, StatusCode::FORBIDDEN);
        let cross = headers(&[("host", "127.0.0.1:7411"), ("origin", "https://evil.example")]);
        assert_eq!(open.refuse_h(&cross).unwrap().0, StatusCode::FORBIDDEN);

        // On a wildcard address any name of the machine will do; the token
        // guards, and a browser may still only come from the daemon's page.
        let lan = Guard::new(&"0.0.0.0:7411".parse().unwrap(), Some("t".into()));
        let from_lan = [("host", "studio.local:7411"), ("authorization", "Bearer t")];
        assert!(lan.refuse_h(&headers(&from_lan)).is_none());
        let page =
            [("host", "studio.local:7411"), ("origin", "http://studio.local:7411"), ("authorization", "Bearer t")];
        assert!(lan.refuse_h(&headers(&page)).is_none());
        let other = [("host", "studio.local:7411"), ("origin", "http://evil.example"), ("authorization", "Bearer t")];
        assert_eq!(lan.refuse_h(&headers(&other)).unwrap().0, StatusCode::FORBIDDEN);

        let locked = Guard::new(&addr, Some("s3cret".into()));
        assert_eq!(locked.refuse_h(&headers(&[("host", "127.0.0.1:7411")])).unwrap().0, StatusCode::UNAUTHORIZED);
        let wrong = headers(&[("host", "127.0.0.1:7411"), ("authorization", "Bearer s3creT")]);
        assert_eq!(locked.refuse_h(&wrong).unwrap().0, StatusCode::UNAUTHORIZED);
        assert!(locked.refuse_h(&headers(&[("host", "127.0.0.1:7411"), ("authorization", "Bearer s3cret")])).is_none());
        // The page: the token in a link once, then in its cookie.
        let host = headers(&[("host", "127.0.0.1:7411")]);
        assert!(locked.refuse(&host, Some("tab=runs&token=s3cret")).is_none());
        assert!(locked.refuse(&host, Some("token=s3creT")).is_some());
        assert!(
            locked.refuse_h(&headers(&[("host", "127.0.0.1:7411"), ("cookie", "a=b; c41_token=s3cret")])).is_none()
        );
        assert!(locked.refuse_h(&headers(&[("host", "127.0.0.1:7411"), ("cookie", "c41_token=nope")])).is_some());
    }

    #[test]
    fn beyond_loopback_needs_a_token() {
        let lan: SocketAddr = "0.0.0.0:7411".parse().unwrap();
        assert!(check_listen(&lan, None).unwrap_err().contains("[serve]"));
        assert!(check_listen(&lan, Some("t")).is_ok());
        assert!(check_listen(&"127.0.0.1:7411".parse().unwrap(), None).is_ok());
        assert!(check_listen(&"[::1]:7411".parse().unwrap(), None).is_ok());
    }
}
