//! hello-http: the starter skill. It fetches one URL from a service the
//! config granted it, reports progress while it downloads, and returns the
//! body as an artifact. Copy this crate to start your own skill.

use c41_kit::artifacts;
use c41_kit::progress::Progress;
use c41_kit::settings;
use c41_kit::wstd::http::{Body, Client, Request};
use c41_kit::{Invocation, Outcome, Skill, SkillError, StaticDescription, json};

struct HelloHttp;

const SCHEMA: &str = r#"{
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "path": {
      "type": "string",
      "description": "Path to fetch on the granted `http` service, e.g. /index.html.",
      "default": "/"
    },
    "url": {
      "type": "string",
      "description": "A full URL to fetch instead of `path`. The sandbox refuses any URL outside the granted service."
    },
    "name": {
      "type": "string",
      "description": "File name for the stored artifact (default: the last path segment)."
    }
  }
}"#;

impl Skill for HelloHttp {
    const DESCRIPTION: Option<StaticDescription> = Some(StaticDescription {
        name: "hello-http",
        version: env!("CARGO_PKG_VERSION"),
        summary: "Fetch a URL from a granted HTTP service and store the body as a file.",
        input_schema: SCHEMA,
        output: "text: what was fetched; one artifact: the response body; data: {url, status, bytes, content_type}",
        services: &["http"],
    });

    async fn invoke(cx: Invocation) -> Result<Outcome, SkillError> {
        let service = settings::require_service("http")?;
        let url = match cx.str("url") {
            Some(url) => url.to_string(),
            None => format!("{}{}", service.url, cx.str("path").unwrap_or("/")),
        };
        Progress::stage("connect").fraction(0.0).message(format!("GET {url}")).report();

        let request = Request::get(&url).body(Body::empty()).map_err(|e| SkillError::invalid("url", e.to_string()))?;
        let response = Client::new()
            .send(request)
            .await
            .map_err(|e| SkillError::backend(&service.name, None, format!("GET {url}: {e:#}")))?;
        let status = response.status().as_u16();
        if !response.status().is_success() {
            return Err(SkillError::backend(&service.name, Some(status), format!("GET {url}")));
        }
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_string())
            .unwrap_or_default();
        let expected = response.body().content_length();

        let name = match cx.str("name") {
            Some(n) => n.to_string(),
            None => url
                .rsplit('/')
                .next()
                .filter(|s| !s.is_empty())
                .map(|s| s.split('?').next().unwrap_or(s).to_string())
                .unwrap_or_else(|| "index.html".into()),
        };
        let artifact = artifacts::save_body(&name, &content_type, response.into_body(), &service.name, |done| {
            let p = Progress::stage("download").message(format!("{done} bytes"));
            match expected {
                Some(total) if total > 0 => p.fraction(done as f32 / total as f32).report(),
                _ => p.report(),
            }
        })
        .await?;
        Progress::stage("done").fraction(1.0).report();

        Ok(Outcome {
            text: format!("Fetched {} bytes from {url} into {}", artifact.bytes, artifact.path),
            data: json!({
                "url": url,
                "status": status,
                "bytes": artifact.bytes,
                "content_type": content_type,
            }),
            artifacts: vec![artifact],
        })
    }
}

c41_kit::skill!(HelloHttp);
