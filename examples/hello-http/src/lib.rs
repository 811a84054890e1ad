//! hello-http: the starter skill. It fetches one URL from a service the
//! config granted it, reports progress while it downloads, and returns the
//! body as an artifact. Copy this crate to start your own skill.

use c41_kit::artifacts::{self, Unwatched};
use c41_kit::http::ServiceClient;
use c41_kit::progress::Progress;
use c41_kit::schema::JsonSchema;
use c41_kit::settings;
use c41_kit::wstd::http::{Body, Request};
use c41_kit::{Invocation, Outcome, Skill, SkillError, StaticDescription, json};
use serde::Deserialize;

struct HelloHttp;

// The schema agents see (`input.schema.json`) is derived from this type:
// its doc comments are the descriptions.
/// What to fetch, and what to call the file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Input {
    /// Path to fetch on the granted `http` service, e.g. /index.html.
    #[serde(default = "root")]
    path: String,
    /// A full URL to fetch instead of `path`. The sandbox refuses any URL outside the granted service.
    url: Option<String>,
    /// File name for the stored artifact (default: the last path segment).
    name: Option<String>,
}

fn root() -> String {
    "/".into()
}

impl Skill for HelloHttp {
    const DESCRIPTION: Option<StaticDescription> = Some(StaticDescription {
        name: "hello-http",
        version: env!("CARGO_PKG_VERSION"),
        summary: "Fetch a URL from a granted HTTP service and store the body as a file.",
        input_schema: include_str!("../input.schema.json"),
        output: "text: what was fetched; one artifact: the response body; data: {url, status, bytes, content_type}",
        services: &["http"],
    });

    async fn invoke(cx: Invocation) -> Result<Outcome, SkillError> {
        let input: Input = cx.input()?;
        let service = settings::require_service("http")?;
        let url = match input.url {
            Some(url) => url,
            None => format!("{}{}", service.url, input.path),
        };
        Progress::stage("connect").fraction(0.0).message(format!("GET {url}")).report();

        // The kit's client: a failure becomes an error naming the service
        // (a non-2xx status with the body's text). `send_streamed` leaves
        // the body in the host: the skill never needs to see its bytes.
        let client = ServiceClient::new(service.clone());
        let request = Request::get(&url).body(Body::empty()).map_err(|e| SkillError::invalid("url", e.to_string()))?;
        let mut response = client.send_streamed(request).await?;
        let status = response.status;
        let content_type = response
            .header("content-type")
            .map(|v| v.split(';').next().unwrap_or("").trim().to_string())
            .unwrap_or_default();
        let expected = response.content_length();

        let name = match input.name {
            Some(n) => n,
            None => url
                .rsplit('/')
                .next()
                .filter(|s| !s.is_empty())
                .map(|s| s.split('?').next().unwrap_or(s).to_string())
                .unwrap_or_else(|| "index.html".into()),
        };
        // The host copies the body from the connection into the store; the
        // skill hears how far it got every few MiB, and may stop it there.
        let artifact =
            artifacts::save_streamed(&name, &content_type, &mut response, &service.name, &mut Unwatched, |done| {
                cx.check_cancelled()?;
                let p = Progress::stage("download").message(format!("{done} bytes"));
                match expected {
                    Some(total) if total > 0 => p.fraction(done as f32 / total as f32).report(),
                    _ => p.report(),
                }
                Ok(())
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

// `C41_BLESS=1 cargo test -p hello-http` rewrites input.schema.json.
c41_kit::input_schema_test!(Input);
