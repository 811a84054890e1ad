//! `c41 doctor`: is each configured service reachable, is the output
//! directory writable, does every skill have the grants it needs, and can
//! every ComfyUI workflow (built-in and configured) run on the backends
//! (node types and model files present)?

use super::Ctx;
use crate::config::{GrantedService, LoadedConfig};
use http_body_util::{BodyExt, Empty};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Check the setup.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seconds to wait for each service.
    #[arg(long, default_value_t = 5)]
    pub timeout: u64,
}

/// The path that shows a service of `kind` is up.
/// `None` for kinds without one: any HTTP answer below 500 then shows the
/// server is up.
pub(super) fn health_path(kind: &str) -> Option<&'static str> {
    match kind {
        "comfyui" => Some("/system_stats"),
        "ollama" => Some("/api/version"),
        "openai" | "tts" => Some("/v1/models"),
        "mmaudio" | "humo" => Some("/health"),
        _ => None,
    }
}

/// GET `url` with `headers`; the status and the first bytes of the body.
pub async fn probe(url: &str, headers: &[(String, String)], timeout: Duration) -> Result<(u16, String), String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("bad URL: {e}"))?;
    let host = uri.host().ok_or("no host")?.trim_matches(['[', ']']).to_string();
    let https = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let fut = async {
        let addr = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .next()
            .ok_or_else(|| format!("{host} has no address"))?;
        let mut req = http::Request::get(uri.clone()).header("host", uri.authority().map(|a| a.as_str()).unwrap_or(""));
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let req = req
            .body(Empty::<bytes::Bytes>::new().map_err(|never| match never {}).boxed_unsync())
            .map_err(|e| e.to_string())?;
        let tls = https.then(|| host.clone());
        let (resp, io) = crate::sandbox::send_pinned(req, addr, tls, None).await.map_err(|e| e.to_string())?;
        tokio::spawn(Box::into_pin(io));
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok::<_, String>((status, String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned()))
    };
    tokio::time::timeout(timeout, fut).await.map_err(|_| format!("no answer within {}s", timeout.as_secs()))?
}

/// One configured service, probed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServiceHealth {
    /// Its name in the config.
    pub name: String,
    /// Its kind.
    pub kind: String,
    /// The URL probed.
    pub url: String,
    /// Whether it answered as a healthy server of its kind does.
    pub ok: bool,
    /// `200, 12 ms`, or what went wrong.
    pub detail: String,
}

/// Probe every service of `config` at once, each within `timeout`.
pub async fn service_health(config: &LoadedConfig, timeout: Duration) -> Vec<ServiceHealth> {
    let probes = config.config.services.iter().map(|(name, svc)| async move {
        let kind = svc.kind();
        let health = health_path(&kind);
        let url = format!("{}{}", svc.url.get_ref().trim_end_matches('/'), health.unwrap_or("/"));
        let healthy = |status: u16| if health.is_some() { status < 400 } else { status < 500 };
        let started = Instant::now();
        let (ok, detail) = match probe(&url, &svc.auth_headers(), timeout).await {
            Ok((status, _)) if healthy(status) => (true, format!("{status}, {} ms", started.elapsed().as_millis())),
            Ok((status, body)) => (false, format!("answered {status}: {}", body.trim())),
            Err(e) => (false, e),
        };
        ServiceHealth { name: name.clone(), kind: kind.to_string(), url, ok, detail }
    });
    futures::future::join_all(probes).await
}

impl Args {
    pub(super) async fn run(self, ctx: &Ctx) -> anyhow::Result<ExitCode> {
        let mut problems = 0;
        let config: LoadedConfig = ctx.config()?;
        match &config.path {
            Some(p) => println!("config      {}", p.display()),
            None => {
                println!("config      none found (run `c41 init`): nothing is granted");
                problems += 1;
            }
        }
        let out = config.output_dir();
        match c41_artifacts::ArtifactStore::open(&out) {
            Ok(_) => println!("output dir  {} (writable)", out.display()),
            Err(e) => {
                println!("output dir  {}: {e}", out.display());
                problems += 1;
            }
        }
        println!();
        for h in service_health(&config, Duration::from_secs(self.timeout)).await {
            let ServiceHealth { name, kind, url, .. } = &h;
            if h.ok {
                println!("ok    {name:<12} {kind:<8} {url} ({})", h.detail);
            } else {
                problems += 1;
                println!("FAIL  {name:<12} {kind:<8} {url}: {}", h.detail);
            }
        }
        let app = ctx.app().await?;
        println!();
        for s in app.catalog.iter() {
            let d = &s.description;
            let (granted, ignored): (Vec<GrantedService>, Vec<String>) = match app.grants_in_force(s) {
                Ok(g) => g,
                Err(e) => {
                    problems += 1;
                    println!("{:<16} FAIL {e}", d.name);
                    continue;
                }
            };
            let missing: Vec<&str> =
                d.services.iter().filter(|k| !granted.iter().any(|g| &g.kind == *k)).map(String::as_str).collect();
            let mut line = format!("{:<16}", d.name);
            if d.services.is_empty() {
                line.push_str(" needs no service");
            } else if granted.is_empty() {
                line.push_str(&format!(
                    " has no grant: it can use {} (add such a service and list it under [skills.{}] grants)",
                    d.services.join(" or "),
                    d.name
                ));
            } else {
                let names: Vec<&str> = granted.iter().map(|g| g.name.as_str()).collect();
                line.push_str(&format!(" may reach {}", names.join(", ")));
                if !missing.is_empty() {
                    line.push_str(&format!(" (could also use: {})", missing.join(", ")));
                }
            }
            if !ignored.is_empty() {
                line.push_str(&format!("; ignored grants (not declared): {}", ignored.join(", ")));
            }
            println!("{line}");
        }
        problems += workflows(&app).await;
        println!();
        if problems == 0 {
            println!("all checks passed");
            Ok(ExitCode::SUCCESS)
        } else {
            println!("{problems} problem(s) found");
            Ok(ExitCode::from(1))
        }
    }
}

/// Asks each granted ComfyUI skill which of its workflows each backend can
/// run (the skill's `check` input: the skill knows its workflows, the
/// user's included, and reads the backends' `/object_info`), prints the
/// answer, and counts the problems: a default or configured workflow that
/// no backend can run, or one that does not load.
async fn workflows(app: &crate::app::App) -> usize {
    let mut problems = 0;
    for s in app.catalog.iter() {
        let d = &s.description;
        if !app.grants_in_force(s).is_ok_and(|(granted, _)| granted.iter().any(|g| g.kind == "comfyui")) {
            continue;
        }
        println!();
        println!("{} workflows:", d.name);
        match app.check_readiness(&d.name).await {
            Ok(r) => {
                for line in r.text.lines() {
                    println!("  {line}");
                }
                let found = r.data["problems"].as_array().cloned().unwrap_or_default();
                for p in &found {
                    println!("  PROBLEM: {}", p.as_str().unwrap_or_default());
                }
                problems += found.len();
            }
            Err(e) => {
                println!("  FAIL  cannot check: {e}");
                problems += 1;
            }
        }
    }
    problems
}
