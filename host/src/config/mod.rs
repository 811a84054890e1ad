//! The config file: services, grants, limits, settings, output directory.
//!
//! One readable place where the user says which service each skill may
//! reach (like Spin's `allowed_outbound_hosts`). Everything is denied unless
//! this file grants it. Unknown keys are errors, and every error names the
//! file, the line and the key.

use c41_policy::{Grant, GrantSet};
use indexmap::IndexMap;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

pub mod pins;
pub mod settings_files;
mod starter;
pub use starter::starter_config;

/// Service kinds c41 knows; a skill declares the kinds it may need.
pub const SERVICE_KINDS: &[&str] = &["comfyui", "ollama", "openai", "mmaudio", "humo", "tts", "http"];

/// The whole config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// Where artifacts are stored. Default: `<data dir>/c41/output`
    /// (`~/.local/share/c41/output` on Linux).
    #[serde(default)]
    pub output_dir: Option<PathBuf>,
    /// A directory of extra skill components (`*.wasm`). Default:
    /// `<config dir>/c41/skills`. They get no grants unless `[skills.<name>]`
    /// names them.
    #[serde(default)]
    pub skills_dir: Option<PathBuf>,
    /// Services by name (`comfyui`, `comfyui-2`, `ollama`).
    #[serde(default)]
    pub services: IndexMap<String, ServiceConfig>,
    /// Limits for every skill; `[skills.<name>.limits]` overrides them.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Per-skill grants, limits and settings, keyed by skill name.
    #[serde(default)]
    pub skills: IndexMap<String, SkillConfig>,
    /// Which files skills may be given as inputs.
    #[serde(default)]
    pub inputs: InputsConfig,
    /// How `c41 mcp` answers agents.
    #[serde(default)]
    pub mcp: McpConfig,
    /// The daemon, `c41 serve`.
    #[serde(default)]
    pub serve: ServeConfig,
}

/// One service a skill may be granted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServiceConfig {
    /// Base URL (`http://10.0.0.5:8188`). Scheme, host and port form the
    /// grant: a request matches only if all three match exactly.
    pub url: Spanned<String>,
    /// The kind of server (one of [`SERVICE_KINDS`]). Default: the service
    /// name, or the name without a `-<suffix>` (`comfyui-2` is a `comfyui`).
    #[serde(default)]
    pub kind: Option<String>,
    /// Extra headers the host adds to every request to this service (a
    /// bearer token for a proxy). Skills never see them.
    #[serde(default)]
    pub headers: IndexMap<String, Spanned<String>>,
    /// Shorthand for `headers.Authorization = "Bearer <token>"`.
    #[serde(default)]
    pub token: Option<Spanned<String>>,
    /// Like `token`, read from this environment variable of the host.
    #[serde(default)]
    pub token_env: Option<Spanned<String>>,
    /// At most this many runs use this service at once from a long-running
    /// host (`c41 serve`, `c41 mcp`): more wait in its queue, let in fairly
    /// between clients. Unset: no limit (the server queues them itself).
    #[serde(default)]
    pub max_jobs: Option<Spanned<u32>>,
}

/// Per-invocation limits. Unset values fall back to the global `[limits]`,
/// then to [`Limits::default`]. Each value is range-checked at load (see
/// [`LIMIT_RANGES`]), so no later arithmetic can overflow.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LimitsConfig {
    /// Cap on the sum of all linear memories and tables of the component,
    /// plus the host-side bytes it makes the host hold (wasi:http fields),
    /// in MiB.
    pub memory_mb: Option<Spanned<u64>>,
    /// Wall-clock deadline of one invocation, in seconds.
    pub timeout_secs: Option<Spanned<u64>>,
    /// Largest single artifact, in MiB.
    pub max_artifact_mb: Option<Spanned<u64>>,
    /// Total size of all artifacts of one invocation, in MiB.
    pub max_output_mb: Option<Spanned<u64>>,
    /// Input files and artifact writers one invocation may hold open at once.
    pub open_files: Option<Spanned<u64>>,
    /// Outgoing connections (HTTP requests in flight, websockets) one
    /// invocation may hold open at once.
    pub connections: Option<Spanned<u64>>,
}

/// The accepted range of each `limits` key: (key, smallest, largest, unit).
/// Checked at load with file:line, so `memory-mb << 20` cannot wrap and
/// `now + timeout` cannot overflow.
pub const LIMIT_RANGES: &[(&str, u64, u64, &str)] = &[
    ("memory-mb", 1, 65_536, "MiB"),
    ("timeout-secs", 1, 7 * 24 * 3600, "seconds"),
    ("max-artifact-mb", 1, 1 << 20, "MiB"),
    ("max-output-mb", 1, 1 << 20, "MiB"),
    ("open-files", 1, 4096, "files"),
    ("connections", 1, 1024, "connections"),
];

impl LimitsConfig {
    /// The set values, by config key.
    fn entries(&self) -> [(&'static str, Option<&Spanned<u64>>); 6] {
        [
            ("memory-mb", self.memory_mb.as_ref()),
            ("timeout-secs", self.timeout_secs.as_ref()),
            ("max-artifact-mb", self.max_artifact_mb.as_ref()),
            ("max-output-mb", self.max_output_mb.as_ref()),
            ("open-files", self.open_files.as_ref()),
            ("connections", self.connections.as_ref()),
        ]
    }

    /// The first value outside [`LIMIT_RANGES`]: (span, key, message).
    fn out_of_range(&self) -> Option<(std::ops::Range<usize>, &'static str, String)> {
        for (key, value) in self.entries() {
            let Some(v) = value else { continue };
            let (_, lo, hi, unit) = LIMIT_RANGES.iter().find(|(k, ..)| *k == key).expect("every limit has a range");
            if !(*lo..=*hi).contains(v.get_ref()) {
                return Some((v.span(), key, format!("{} is out of range: {lo} to {hi} {unit}", v.get_ref())));
            }
        }
        None
    }
}

/// What one skill is granted and configured with.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SkillConfig {
    /// Names of services (keys of `[services]`) this skill may reach. A grant
    /// takes effect only if the skill also declares that service's kind.
    #[serde(default)]
    pub grants: Vec<Spanned<String>>,
    /// Limits for this skill.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Free-form settings handed to the skill (`settings.get` in the WIT).
    #[serde(default)]
    pub settings: toml::Table,
    /// A component file to load this skill from (instead of a built-in or
    /// the skills directory). Naming it here is what entitles that file to
    /// this entry's grants, settings and state.
    #[serde(default)]
    pub component: Option<PathBuf>,
    /// With `component`: the SHA-256 the file must have (a rebuilt or
    /// swapped file then gets nothing).
    #[serde(default)]
    pub sha256: Option<Spanned<String>>,
}

/// Which files may be passed to skills as file inputs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct InputsConfig {
    /// Directories whose files may be inputs (`inputs.allow`, formerly
    /// `allow-dirs`), besides the output directory. The working directory
    /// counts too, but only for `c41 run` at a terminal: an agent's MCP
    /// server or `exec` reads only what is listed here.
    #[serde(default, alias = "allow-dirs")]
    pub allow: Vec<PathBuf>,
}

/// `[mcp]`: how `c41 mcp` answers agents.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct McpConfig {
    /// A tool call not finished after this many seconds answers "still
    /// running, call `c41__wait`" and goes on in the server: MCP clients give
    /// up on a request after their own timeout (OpenClaw: 60 s).
    pub answer_within_secs: Option<Spanned<u64>>,
}

/// Default of `mcp.answer-within-secs`: under OpenClaw's 60 s request timeout.
pub const DEFAULT_ANSWER_WITHIN: Duration = Duration::from_secs(45);

impl McpConfig {
    /// How long a tool call waits for its run before answering `running`.
    pub fn answer_within(&self) -> Duration {
        self.answer_within_secs.as_ref().map(|s| Duration::from_secs(*s.get_ref())).unwrap_or(DEFAULT_ANSWER_WITHIN)
    }
}

/// `[serve]`: the daemon (`c41 serve`) that serves the skills over MCP on
/// HTTP to every agent and script on the machine.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServeConfig {
    /// Where it listens (default [`DEFAULT_LISTEN`]); `--listen` overrides.
    pub listen: Option<Spanned<String>>,
    /// The token every request must carry as `Authorization: Bearer
    /// <token>`. Required to listen on anything but loopback.
    pub token: Option<Spanned<String>>,
    /// Like `token`, read from this environment variable.
    pub token_env: Option<Spanned<String>>,
}

/// A `token`, else the value of the variable `token-env` names.
fn token_of(token: &Option<Spanned<String>>, token_env: &Option<Spanned<String>>) -> Option<String> {
    token
        .as_ref()
        .map(|t| t.get_ref().clone())
        .or_else(|| token_env.as_ref().and_then(|v| std::env::var(v.get_ref()).ok()))
}

/// Where `c41 serve` listens unless told otherwise: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7411";

impl ServeConfig {
    /// `token`, else the value of the `token-env` variable.
    pub fn token(&self) -> Option<String> {
        token_of(&self.token, &self.token_env).filter(|t| !t.is_empty())
    }
}

/// The limits in force for one invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Cap in bytes on all linear memories and tables of the store plus the
    /// host-side bytes the guest makes the host hold.
    pub memory_bytes: u64,
    /// Wall-clock deadline.
    pub timeout: Duration,
    /// Largest artifact in bytes.
    pub max_artifact_bytes: u64,
    /// All artifacts of one invocation together, in bytes.
    pub max_output_bytes: u64,
    /// Input files and artifact writers open at once.
    pub open_files: usize,
    /// Outgoing connections (HTTP requests in flight, websockets) at once.
    pub connections: usize,
}

impl Default for Limits {
    /// 512 MiB of memory, 30 minutes, 8 GiB per artifact and 16 GiB per
    /// call, 64 open files, 32 connections: roomy enough for a video job,
    /// small enough to stop a runaway before it hurts the host.
    fn default() -> Self {
        Limits {
            memory_bytes: 512 << 20,
            timeout: Duration::from_secs(30 * 60),
            max_artifact_bytes: 8 << 30,
            max_output_bytes: 16 << 30,
            open_files: 64,
            connections: 32,
        }
    }
}

impl Limits {
    /// Apply the set values of `c` over `self` (values were range-checked at
    /// load; the arithmetic saturates anyway for configs built in code).
    pub fn overlay(self, c: &LimitsConfig) -> Limits {
        let v = |x: &Option<Spanned<u64>>| x.as_ref().map(|s| *s.get_ref());
        let mib = |m: u64| m.saturating_mul(1 << 20);
        Limits {
            memory_bytes: v(&c.memory_mb).map(mib).unwrap_or(self.memory_bytes),
            timeout: v(&c.timeout_secs).map(Duration::from_secs).unwrap_or(self.timeout),
            max_artifact_bytes: v(&c.max_artifact_mb).map(mib).unwrap_or(self.max_artifact_bytes),
            max_output_bytes: v(&c.max_output_mb).map(mib).unwrap_or(self.max_output_bytes),
            open_files: v(&c.open_files).map(|n| n as usize).unwrap_or(self.open_files),
            connections: v(&c.connections).map(|n| n as usize).unwrap_or(self.connections),
        }
    }
}

/// A config that could not be used: always names the file, and the line and
/// key where known.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// TOML syntax or schema error (toml's message names line, column, key).
    #[error("invalid config {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// toml's message, with line, column and key.
        message: String,
    },
    /// A value is well-formed TOML but unusable.
    #[error("invalid config {}: `{key}`: {message}", location(path, *line))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line (0: not known, e.g. a config built in code).
        line: usize,
        /// Dotted key (`skills.comfyui-image.grants`).
        key: String,
        /// Why.
        message: String,
    },
}

fn location(path: &Path, line: usize) -> String {
    if line == 0 { path.display().to_string() } else { format!("{}:{line}", path.display()) }
}

/// A loaded config and where it came from.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The parsed config.
    pub config: Config,
    /// The file, if one was read (none: built-in defaults).
    pub path: Option<PathBuf>,
    /// Service grants by service name, checked at load.
    pub grants: IndexMap<String, Grant>,
    /// Each skill's settings as JSON, with `*-file` keys already replaced by
    /// the files' contents (see [`settings_files`]).
    pub settings: IndexMap<String, serde_json::Map<String, serde_json::Value>>,
    /// The component each file skill's grants belong to, recorded by
    /// `c41 grant` in the lock beside the config (see [`pins`]).
    pub pins: IndexMap<String, pins::Pin>,
}

/// Where the config is looked for, in order: `--config`, `C41_CONFIG`, the
/// platform config dir (`~/.config/c41/c41.toml`).
pub fn default_path() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("c41").join("c41.toml"))
}

/// Load the config. `explicit` is `--config` or `C41_CONFIG` (clap merges
/// them); an explicit file must exist, the default one may be missing (then
/// nothing is granted).
pub fn load(explicit: Option<&Path>) -> Result<LoadedConfig, ConfigError> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => match default_path() {
            Some(p) if p.exists() => p,
            _ => return LoadedConfig::from_config(Config::default(), None),
        },
    };
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read { path: path.clone(), source })?;
    parse(&text, &path)
}

/// Parse config text; `path` is only used in messages and to resolve
/// relative paths.
pub fn parse(text: &str, path: &Path) -> Result<LoadedConfig, ConfigError> {
    let mut config: Config = toml::from_str(text)
        .map_err(|e| ConfigError::Parse { path: path.to_path_buf(), message: e.to_string().trim_end().to_string() })?;
    let base = path.parent().unwrap_or(Path::new("."));
    for p in [&mut config.output_dir, &mut config.skills_dir].into_iter().flatten() {
        *p = resolve_path(base, p);
    }
    for p in &mut config.inputs.allow {
        *p = resolve_path(base, p);
    }
    for skill in config.skills.values_mut() {
        if let Some(p) = &mut skill.component {
            *p = resolve_path(base, p);
        }
    }
    let line_of = |span: std::ops::Range<usize>| text[..span.start.min(text.len())].lines().count().max(1);
    let invalid = |span: std::ops::Range<usize>, key: String, message: String| ConfigError::Invalid {
        path: path.to_path_buf(),
        line: line_of(span),
        key,
        message,
    };

    fill_kinds(&mut config);
    for (name, svc) in &config.services {
        let kind = svc.kind();
        if !SERVICE_KINDS.contains(&kind.as_str()) {
            let why = match &svc.kind {
                Some(k) => format!("unknown kind `{k}`"),
                None => format!("cannot tell the kind from the name `{name}`"),
            };
            return Err(invalid(
                svc.url.span(),
                format!("services.{name}.kind"),
                format!("{why}; set `kind` to one of: {}", SERVICE_KINDS.join(", ")),
            ));
        }
    }
    for (name, svc) in &config.services {
        if let Err(e) = Grant::parse(name, svc.url.get_ref()) {
            return Err(invalid(svc.url.span(), format!("services.{name}.url"), e.to_string()));
        }
        if let Some((span, key, message)) = svc.invalid_header() {
            return Err(invalid(span, format!("services.{name}.{key}"), message));
        }
        if let Some(n) = &svc.max_jobs
            && !(1..=1000).contains(n.get_ref())
        {
            let message = format!("{} is out of range: give 1 to 1000 runs at once", n.get_ref());
            return Err(invalid(n.span(), format!("services.{name}.max-jobs"), message));
        }
    }
    let limit_tables = std::iter::once(("limits".to_string(), &config.limits))
        .chain(config.skills.iter().map(|(n, sc)| (format!("skills.{n}.limits"), &sc.limits)));
    for (table, limits) in limit_tables {
        if let Some((span, key, message)) = limits.out_of_range() {
            return Err(invalid(span, format!("{table}.{key}"), message));
        }
    }
    if let Some(secs) = &config.mcp.answer_within_secs
        && !(1..=3600).contains(secs.get_ref())
    {
        let message = format!("{} is out of range: give 1 to 3600 seconds", secs.get_ref());
        return Err(invalid(secs.span(), "mcp.answer-within-secs".into(), message));
    }
    let mut loaded = LoadedConfig::from_config(config, Some(path.to_path_buf()))?;
    loaded.pins = pins::load(path).map_err(|message| ConfigError::Invalid {
        path: pins::lock_path(path),
        line: 0,
        key: "skills".into(),
        message,
    })?;
    for (skill, sc) in &loaded.config.skills {
        for g in &sc.grants {
            if !loaded.config.services.contains_key(g.get_ref()) {
                let known: Vec<&str> = loaded.config.services.keys().map(String::as_str).collect();
                return Err(invalid(
                    g.span(),
                    format!("skills.{skill}.grants"),
                    format!(
                        "grants `{}`, which is not a service under [services] (known: {})",
                        g.get_ref(),
                        if known.is_empty() { "none".to_string() } else { known.join(", ") }
                    ),
                ));
            }
        }
    }
    Ok(loaded)
}

fn resolve_path(base: &Path, p: &Path) -> PathBuf {
    let expanded = match p.strip_prefix("~") {
        Ok(rest) => dirs::home_dir().map(|h| h.join(rest)).unwrap_or_else(|| p.to_path_buf()),
        Err(_) => p.to_path_buf(),
    };
    if expanded.is_absolute() { expanded } else { base.join(expanded) }
}

impl ServiceConfig {
    /// The effective kind (see [`ServiceConfig::kind`] field docs).
    pub fn kind(&self) -> String {
        self.kind.clone().unwrap_or_default()
    }

    /// The headers the host adds to requests to this service.
    pub fn auth_headers(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> =
            self.headers.iter().map(|(k, v)| (k.clone(), v.get_ref().clone())).collect();
        if let Some(t) = self.token_value() {
            out.push(("authorization".into(), format!("Bearer {t}")));
        }
        out
    }

    /// `token`, else the value of the `token-env` variable.
    fn token_value(&self) -> Option<String> {
        token_of(&self.token, &self.token_env)
    }

    /// The first header (or token) that cannot be sent as an HTTP header:
    /// (span, key, why). Checked at load, so a bad token is an error with
    /// file:line instead of a header silently not sent.
    fn invalid_header(&self) -> Option<(std::ops::Range<usize>, String, String)> {
        for (k, v) in &self.headers {
            if http::HeaderName::try_from(k.as_str()).is_err() {
                return Some((v.span(), format!("headers.{k}"), format!("`{k}` is not a valid HTTP header name")));
            }
            if http::HeaderValue::try_from(v.get_ref().as_str()).is_err() {
                return Some((
                    v.span(),
                    format!("headers.{k}"),
                    "the value is not a valid HTTP header value (control characters or newlines)".into(),
                ));
            }
        }
        let bad_token = |t: &str| http::HeaderValue::try_from(format!("Bearer {t}")).is_err() || t.is_empty();
        if let Some(t) = &self.token
            && bad_token(t.get_ref())
        {
            return Some((t.span(), "token".into(), "the token is empty or not a valid HTTP header value".into()));
        }
        if let Some(var) = &self.token_env {
            match std::env::var(var.get_ref()) {
                Ok(t) if bad_token(&t) => {
                    return Some((
                        var.span(),
                        "token-env".into(),
                        format!("the variable `{}` is empty or not a valid HTTP header value", var.get_ref()),
                    ));
                }
                Ok(_) => {}
                Err(_) => tracing::warn!(
                    variable = %var.get_ref(),
                    "token-env names an environment variable that is not set; no token is sent"
                ),
            }
        }
        None
    }
}

fn infer_kind(name: &str) -> String {
    if SERVICE_KINDS.contains(&name) {
        return name.to_string();
    }
    match name.split_once('-') {
        Some((head, _)) if SERVICE_KINDS.contains(&head) => head.to_string(),
        _ => String::new(),
    }
}

fn fill_kinds(config: &mut Config) {
    for (name, svc) in config.services.iter_mut() {
        if svc.kind.is_none() {
            let k = infer_kind(name);
            if !k.is_empty() {
                svc.kind = Some(k);
            }
        }
    }
}

impl LoadedConfig {
    /// Check a parsed config and compute its grants.
    pub fn from_config(mut config: Config, path: Option<PathBuf>) -> Result<Self, ConfigError> {
        fill_kinds(&mut config);
        let mut grants = IndexMap::new();
        for (name, svc) in config.services.iter() {
            let grant = Grant::parse(name, svc.url.get_ref()).map_err(|e| ConfigError::Invalid {
                path: path.clone().unwrap_or_default(),
                line: 0,
                key: format!("services.{name}.url"),
                message: e.to_string(),
            })?;
            grants.insert(name.clone(), grant);
        }
        let base = path.as_deref().and_then(Path::parent).unwrap_or(Path::new("."));
        let mut settings = IndexMap::new();
        for (skill, sc) in &config.skills {
            let mut json = match serde_json::to_value(&sc.settings) {
                Ok(serde_json::Value::Object(m)) => m,
                _ => serde_json::Map::new(),
            };
            settings_files::inline(&mut json, base, &format!("skills.{skill}.settings")).map_err(
                |(key, message)| ConfigError::Invalid { path: path.clone().unwrap_or_default(), line: 0, key, message },
            )?;
            settings.insert(skill.clone(), json);
        }
        Ok(LoadedConfig { config, path, grants, settings, pins: IndexMap::new() })
    }

    /// Where artifacts go.
    pub fn output_dir(&self) -> PathBuf {
        self.config
            .output_dir
            .clone()
            .unwrap_or_else(|| dirs::data_dir().unwrap_or_else(std::env::temp_dir).join("c41").join("output"))
    }

    /// The extra skills directory.
    pub fn skills_dir(&self) -> Option<PathBuf> {
        self.config.skills_dir.clone().or_else(|| dirs::config_dir().map(|d| d.join("c41").join("skills")))
    }

    /// Limits for `skill`: defaults, then `[limits]`, then the skill's own.
    pub fn limits_for(&self, skill: &str) -> Limits {
        let mut l = Limits::default().overlay(&self.config.limits);
        if let Some(sc) = self.config.skills.get(skill) {
            l = l.overlay(&sc.limits);
        }
        l
    }

    /// The services the config grants `skill` (before intersecting with what
    /// the skill declares), in the order written.
    pub fn granted_services(&self, skill: &str) -> Vec<&str> {
        self.config
            .skills
            .get(skill)
            .map(|sc| sc.grants.iter().map(|g| g.get_ref().as_str()).collect())
            .unwrap_or_default()
    }

    /// The effective grants of `skill`: config grants whose service kind the
    /// skill declares. Returns the grant set and the services granted but not
    /// declared (ignored, reported by `c41 list` and `doctor`).
    pub fn effective_grants(&self, skill: &str, declared: &[String]) -> (Vec<GrantedService>, Vec<String>) {
        let mut granted = Vec::new();
        let mut ignored = Vec::new();
        for name in self.granted_services(skill) {
            let Some(svc) = self.config.services.get(name) else { continue };
            let kind = svc.kind();
            if declared.iter().any(|d| d == &kind || d == name) {
                granted.push(GrantedService {
                    name: name.to_string(),
                    kind,
                    url: svc.url.get_ref().trim_end_matches('/').to_string(),
                    grant: self.grants[name].clone(),
                    headers: svc.auth_headers(),
                });
            } else {
                ignored.push(name.to_string());
            }
        }
        (granted, ignored)
    }

    /// Whether a component loaded from `file` with `sha256` is the one the
    /// config's `[skills.<skill>]` entry was given to: the file named by
    /// `component` (and its `sha256`, if set), or the pin `c41 grant`
    /// recorded. `Err` says why not, for a message that ends in the command.
    pub fn identity(&self, skill: &str, file: &Path, sha256: &str) -> Result<(), String> {
        let same_file = |p: &Path| p == file || p.canonicalize().is_ok_and(|c| c == file);
        if let Some(sc) = self.config.skills.get(skill)
            && let Some(named) = &sc.component
            && same_file(named)
        {
            return match &sc.sha256 {
                Some(want) if !want.get_ref().eq_ignore_ascii_case(sha256) => Err(format!(
                    "the config pins sha256 {} for it, but the file now has sha256 {sha256}",
                    want.get_ref()
                )),
                _ => Ok(()),
            };
        }
        match self.pins.get(skill) {
            Some(pin) if same_file(&pin.component) && pin.sha256 == sha256 => Ok(()),
            Some(pin) if same_file(&pin.component) => {
                Err(format!("it was granted with sha256 {}; the file now has sha256 {sha256}", pin.sha256))
            }
            Some(pin) => Err(format!("it was granted to another file, {}", pin.component.display())),
            None => Err("no grant was ever recorded for this file".into()),
        }
    }

    /// Whether `[skills.<skill>]` gives it anything an impostor must not
    /// get: grants or settings (limits only restrict, so they always apply).
    pub fn entitles(&self, skill: &str) -> bool {
        self.config.skills.get(skill).is_some_and(|sc| !sc.grants.is_empty() || !sc.settings.is_empty())
    }

    /// The skill's settings as a JSON object.
    pub fn settings_for(&self, skill: &str) -> serde_json::Map<String, serde_json::Value> {
        self.settings.get(skill).cloned().unwrap_or_default()
    }
}

/// A service one skill was granted, resolved from the config.
#[derive(Debug, Clone)]
pub struct GrantedService {
    /// Name in `[services]`.
    pub name: String,
    /// Its kind.
    pub kind: String,
    /// Base URL without a trailing slash.
    pub url: String,
    /// The grant (scheme, host, port) requests must match.
    pub grant: Grant,
    /// Headers the host adds to each request (never shown to the skill).
    pub headers: Vec<(String, String)>,
}

/// The grant set of a list of granted services.
pub fn grant_set(services: &[GrantedService]) -> GrantSet {
    GrantSet::new(services.iter().map(|s| s.grant.clone()).collect())
}

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;
