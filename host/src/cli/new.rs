//! `c41 new NAME`: a ready skill crate for an author, outside this
//! repository: Cargo.toml (the kit as a dependency, `c41-test` for tests),
//! `src/lib.rs` (a skill with a typed input that greets, or with `--service
//! KIND` also asks a granted service), its derived `input.schema.json`, unit
//! tests, a sandbox test (`tests/sandbox.rs`: the component in the real host
//! against a mock service), a README with the build, check, grant and run
//! steps, and a config snippet.

use super::Ctx;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Start a new skill crate.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  c41 new weather --service http\n  cd weather && cargo build --target wasm32-wasip2 --release"
)]
pub struct Args {
    /// The skill's name: lowercase letters, digits and hyphens.
    pub name: String,
    /// A service kind the skill declares and calls (e.g. `http`, `ollama`).
    #[arg(long, value_name = "KIND")]
    pub service: Option<String>,
    /// Where to create the crate [default: ./NAME].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// The c41-kit crate to depend on [default: the kit of the source tree
    /// this c41 was built from].
    #[arg(long, value_name = "PATH")]
    pub kit: Option<PathBuf>,
    /// The c41-test crate the sandbox test uses [default: the one of the
    /// source tree this c41 was built from].
    #[arg(long, value_name = "PATH")]
    pub harness: Option<PathBuf>,
}

/// The kit beside the source this binary was built from.
fn built_kit() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../skills/kit")
}

/// The test harness beside the source this binary was built from.
fn built_harness() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("test")
}

/// `dir` made absolute, if it holds a crate.
fn crate_at(dir: PathBuf) -> Option<PathBuf> {
    dir.join("Cargo.toml").is_file().then(|| dir.canonicalize().ok()).flatten()
}

/// A skill name `describe()` accepts that also makes a good crate name:
/// starts with a letter, ends without a hyphen, at most 64 bytes.
fn valid_name(name: &str) -> bool {
    crate::runtime::describe::valid_name(name)
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
}

impl Args {
    pub(super) async fn run(self, _ctx: &Ctx) -> anyhow::Result<ExitCode> {
        if !valid_name(&self.name) || crate::catalog::RESERVED.contains(&self.name.as_str()) {
            eprintln!(
                "error: NAME `{}` must be lowercase letters, digits and hyphens, start with a letter, and not be wait, runs or cancel",
                self.name
            );
            return Ok(ExitCode::from(2));
        }
        if crate::guests::BUILTIN.iter().any(|(n, ..)| *n == self.name) {
            eprintln!("error: `{}` is a built-in skill's name; c41 would refuse to load another under it", self.name);
            return Ok(ExitCode::from(2));
        }
        if let Some(kind) = &self.service
            && !valid_name(kind)
        {
            eprintln!("error: --service `{kind}` must be a kind like http, ollama or comfyui");
            return Ok(ExitCode::from(2));
        }
        let Some(kit) = crate_at(self.kit.clone().unwrap_or_else(built_kit)) else {
            eprintln!("error: no c41-kit crate found (give --kit PATH: the skills/kit folder of a c41 checkout)");
            return Ok(ExitCode::from(2));
        };
        let Some(harness) = crate_at(self.harness.clone().unwrap_or_else(built_harness)) else {
            eprintln!("error: no c41-test crate found (give --harness PATH: the host/test folder of a c41 checkout)");
            return Ok(ExitCode::from(2));
        };
        let dir = self.dir.clone().unwrap_or_else(|| PathBuf::from(&self.name));
        if dir.exists() && std::fs::read_dir(&dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
            eprintln!("error: {} exists and is not empty; choose another --dir", dir.display());
            return Ok(ExitCode::from(2));
        }
        for (path, text) in files(&self.name, self.service.as_deref(), &kit, &harness) {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().unwrap_or(&dir))?;
            crate::files::write_atomically(&path, text.as_bytes())?;
        }
        let crate_ident = self.name.replace('-', "_");
        println!("created {} (skill `{}`)", dir.display(), self.name);
        println!("\nnext:");
        println!("  cd {}", dir.display());
        println!("  cargo test                                   # unit tests, then the component in the sandbox");
        println!("  cargo build --target wasm32-wasip2 --release");
        println!("  c41 check target/wasm32-wasip2/release/{crate_ident}.wasm");
        println!("  c41 --component target/wasm32-wasip2/release/{crate_ident}.wasm run {} who=studio", self.name);
        Ok(ExitCode::SUCCESS)
    }
}

/// The crate's files, relative to its folder.
fn files(name: &str, service: Option<&str>, kit: &Path, harness: &Path) -> Vec<(&'static str, String)> {
    let ident = name.replace('-', "_");
    let camel: String = name
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect();
    let path_of = |p: &Path| p.display().to_string().replace('\\', "/");
    let (kit, harness) = (path_of(kit), path_of(harness));
    let cargo = format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
# cdylib: the component; rlib: so `cargo test` runs the unit tests natively.
crate-type = ["cdylib", "rlib"]

[dependencies]
c41-kit = {{ path = "{kit}" }}
serde = {{ version = "1", features = ["derive"] }}
schemars = "1.2"

[dev-dependencies]
# The real c41 host and sandbox, for tests/sandbox.rs.
c41-test = {{ path = "{harness}" }}
tokio = {{ version = "1", features = ["macros", "rt-multi-thread"] }}
axum = "0.8"

[profile.release]
opt-level = "s"
strip = "debuginfo"

# The test host compiles your component with Cranelift: keep that quick in
# debug builds.
[profile.dev]
debug = "line-tables-only"
[profile.dev.package."*"]
debug = false
[profile.dev.package.cranelift-codegen]
opt-level = 2
[profile.dev.package.regalloc2]
opt-level = 2

# A crate of its own, not a member of an enclosing workspace.
[workspace]
"#
    );
    let toolchain = "[toolchain]\nchannel = \"1.95.0\"\ntargets = [\"wasm32-wasip2\"]\n".to_string();
    let (services, call, use_settings) = match service {
        Some(kind) => (
            format!("&[\"{kind}\"]"),
            format!(
                r#"
        // The service the user granted (its URL; the host adds any token).
        let service = settings::require_service("{kind}")?;
        Progress::stage("ask").fraction(0.5).message(format!("asking {{}}", service.name)).report();
        // The kit's client: a failure to connect becomes an error naming
        // the service. `send_any` takes any status (this only shows that
        // the service answered); `get` and `get_json` refuse a non-2xx one.
        let client = ServiceClient::new(service.clone());
        let request = Request::get(&service.url).body(Body::empty()).map_err(|e| SkillError::internal(e.to_string()))?;
        let status = client.send_any(request).await?.status().as_u16();
        data["service"] = json!({{"name": service.name, "status": status}});
"#
            ),
            "use c41_kit::http::ServiceClient;\nuse c41_kit::settings;\nuse c41_kit::wstd::http::{Body, Request};\n",
        ),
        None => ("&[]".to_string(), String::new(), ""),
    };
    let lib = format!(
        r##"//! {name}: a c41 skill. `describe` says what it takes and gives; `invoke`
//! runs once per call in a fresh sandboxed instance.

use c41_kit::progress::Progress;
use c41_kit::schema::JsonSchema;
{use_settings}use c41_kit::{{Invocation, Outcome, Skill, SkillError, StaticDescription, json, log}};
use serde::Deserialize;

struct {camel};

// The input. Its doc comments, defaults and ranges become the JSON Schema
// agents and `c41 describe` show (`input.schema.json`, kept equal to this
// type by the test below).
/// A greeting for someone.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {{
    /// Whom to greet.
    #[serde(default = "world")]
    #[schemars(length(min = 1, max = 100))]
    pub who: String,
}}

fn world() -> String {{
    "world".into()
}}

/// The skill's logic, kept pure so `cargo test` checks it natively.
pub fn greeting(who: &str) -> String {{
    format!("Hello, {{}}!", who.trim())
}}

impl Skill for {camel} {{
    const DESCRIPTION: Option<StaticDescription> = Some(StaticDescription {{
        name: "{name}",
        version: env!("CARGO_PKG_VERSION"),
        summary: "Greets someone.",
        input_schema: include_str!("../input.schema.json"),
        output: "text: the greeting; data: {{who}}",
        services: {services},
    }});

    async fn invoke(cx: Invocation) -> Result<Outcome, SkillError> {{
        let input: Input = cx.input()?;
        let mut data = json!({{"who": input.who}});
        log::info("greeting", &[("who", &input.who)]);
{call}        Progress::stage("done").fraction(1.0).report();
        Ok(Outcome {{ text: greeting(&input.who), artifacts: vec![], data }})
    }}
}}

c41_kit::skill!({camel});

#[cfg(test)]
mod tests {{
    use super::*;

    #[test]
    fn greets_by_name() {{
        assert_eq!(greeting(" studio "), "Hello, studio!");
    }}}}

// `input_schema_is_current`: `C41_BLESS=1 cargo test` rewrites
// input.schema.json after `Input` changed.
c41_kit::input_schema_test!(Input);
"##
    );
    let (mock, mock_checks) = match service {
        // A kind the built-in simulators serve: the simulated studio.
        Some(kind) if SIMULATED.contains(&kind) => (
            format!(
                r#"
    // The simulated studio (what `c41 sim` serves), its `{kind}` service
    // granted to the skill.
    let h = Harness::builder().component(&wasm).simulated_studio().start().await;
"#
            ),
            format!(
                r#"    assert_eq!(out.data["service"]["name"], "{kind}", "{{}}", out.data);
    assert!(out.data["service"]["status"].as_u64().is_some(), "the simulator answered: {{}}", out.data);
"#
            ),
        ),
        Some(kind) => (
            format!(
                r#"
    // A mock of the `{kind}` service, granted to the skill.
    let asked = Arc::new(AtomicUsize::new(0));
    let seen = asked.clone();
    let api = axum::Router::new().fallback(move || async move {{
        seen.fetch_add(1, Ordering::SeqCst);
        "ok"
    }});
    let h = Harness::builder().component(&wasm).mock_service("my-{kind}", "{kind}", api).start().await;
"#
            ),
            r#"    assert_eq!(out.data["service"]["status"], 200, "{}", out.data);
    assert_eq!(asked.load(Ordering::SeqCst), 1, "the skill asked the granted service once");
"#
            .to_string(),
        ),
        None => ("\n    let h = Harness::builder().component(&wasm).start().await;\n".to_string(), String::new()),
    };
    let uses = if service.is_some_and(|k| !SIMULATED.contains(&k)) {
        "use std::sync::Arc;\nuse std::sync::atomic::{AtomicUsize, Ordering};\n"
    } else {
        ""
    };
    let sandbox_test = format!(
        r#"//! The component in the real c41 sandbox (`c41-test`): what users get.

use c41_test::{{Harness, json}};
{uses}
#[tokio::test(flavor = "multi_thread")]
async fn runs_in_the_sandbox() {{
    let wasm = c41_test::build_component(env!("CARGO_MANIFEST_DIR")).unwrap();
{mock}
    let run = h.run("{name}", json!({{"who": "studio"}})).await;
    let out = run.outcome();
    assert_eq!(out.text, "Hello, studio!");
{mock_checks}    assert!(run.denials().is_empty(), "the sandbox refused: {{:?}}", run.denials());
    assert!(run.progress().iter().any(|p| p.stage == "done"));
    assert!(run.logs().iter().any(|l| l.message == "greeting" && l.fields == "who=studio"));

    // The host checks the input against the schema before the skill runs.
    let bad = h.run("{name}", json!({{"who": "studio", "shout": true}})).await;
    assert!(bad.error().to_string().contains("shout"), "{{}}", bad.error());
}}
"#
    );
    let grant = match service {
        Some(kind) => format!(
            "[services.my-{kind}]\nurl = \"http://127.0.0.1:8080\"   # where your {kind} service answers\nkind = \"{kind}\"\n\n[skills.{name}]\ncomponent = \"target/wasm32-wasip2/release/{ident}.wasm\"\ngrants = [\"my-{kind}\"]\n"
        ),
        None => format!("[skills.{name}]\ncomponent = \"target/wasm32-wasip2/release/{ident}.wasm\"\n"),
    };
    let readme = format!(
        r#"# {name}

A c41 skill: a WebAssembly component that `c41` runs in its sandbox.

```sh
cargo test                                    # the logic natively, then the component in the sandbox
cargo build --target wasm32-wasip2 --release  # the component
c41 check target/wasm32-wasip2/release/{ident}.wasm
c41 --component target/wasm32-wasip2/release/{ident}.wasm run {name} who=studio
```

- `src/lib.rs` is the skill. Its input is the `Input` type: the JSON Schema
  users and agents see is derived from it into `input.schema.json`. After
  changing `Input`, run `C41_BLESS=1 cargo test` once to rewrite the file.
- `tests/sandbox.rs` builds the component and runs it in the real c41 host
  (`c41-test`){mocked}, then checks the outcome, progress, log records and
  that the sandbox refused nothing. The first run compiles the host: a few
  minutes, once.
- `c41 check` says what users would trip over: imports outside the skill
  world, a slow or failing `describe()`, a taken name, a schema that is not an
  object.

The skill reaches {reach}. To give it grants and settings, add
`c41.example.toml` to your c41 config (`c41 grant {name}` records which
binary the grants belong to).
"#,
        mocked = match service {
            Some(kind) if SIMULATED.contains(&kind) => format!(" against the simulated `{kind}` service"),
            Some(kind) => format!(" against a mock `{kind}` service"),
            None => String::new(),
        },
        reach = match service {
            Some(kind) => format!("only the `{kind}` service the config grants it"),
            None => "no network at all".into(),
        }
    );
    vec![
        ("Cargo.toml", cargo),
        ("rust-toolchain.toml", toolchain),
        ("src/lib.rs", lib),
        ("input.schema.json", INPUT_SCHEMA.to_string()),
        ("tests/sandbox.rs", sandbox_test),
        ("README.md", readme),
        ("c41.example.toml", grant),
        (".gitignore", "/target\n".to_string()),
    ]
}

/// Service kinds the simulated studio serves: a new skill of one of these
/// kinds is tested against the simulator, any other against a mock.
const SIMULATED: &[&str] = &["comfyui", "ollama", "mmaudio", "humo", "tts"];

/// What `c41_kit::schema::input_schema` derives from the template's `Input`
/// (the new crate's `input_schema_is_current` test checks it).
const INPUT_SCHEMA: &str = r#"{
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "who": {
      "type": "string",
      "description": "Whom to greet.",
      "minLength": 1,
      "maxLength": 100,
      "default": "world"
    }
  },
  "description": "A greeting for someone."
}
"#;
