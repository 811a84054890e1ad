//! `c41 new NAME`: a ready skill crate for an author, outside this
//! repository: Cargo.toml (the kit as a dependency), `src/lib.rs` (a skill
//! that greets, or with `--service KIND` also asks a granted service), a
//! unit test that passes as written, a README with the build, check, grant
//! and run steps, and a config snippet.

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
}

/// The kit beside the source this binary was built from.
fn built_kit() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../skills/kit")
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
        let kit = self.kit.clone().unwrap_or_else(built_kit);
        let kit = match kit.join("Cargo.toml").is_file().then(|| kit.canonicalize()) {
            Some(Ok(k)) => k,
            _ => {
                eprintln!(
                    "error: no c41-kit at {} (give --kit PATH: the skills/kit folder of a c41 checkout)",
                    kit.display()
                );
                return Ok(ExitCode::from(2));
            }
        };
        let dir = self.dir.clone().unwrap_or_else(|| PathBuf::from(&self.name));
        if dir.exists() && std::fs::read_dir(&dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
            eprintln!("error: {} exists and is not empty; choose another --dir", dir.display());
            return Ok(ExitCode::from(2));
        }
        for (path, text) in files(&self.name, self.service.as_deref(), &kit) {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().unwrap_or(&dir))?;
            crate::files::write_atomically(&path, text.as_bytes())?;
        }
        let crate_ident = self.name.replace('-', "_");
        println!("created {} (skill `{}`)", dir.display(), self.name);
        println!("\nnext:");
        println!("  cd {}", dir.display());
        println!("  cargo test                                   # the skill's own unit test");
        println!("  cargo build --target wasm32-wasip2 --release");
        println!("  c41 check target/wasm32-wasip2/release/{crate_ident}.wasm");
        println!("  c41 --component target/wasm32-wasip2/release/{crate_ident}.wasm run {} who=studio", self.name);
        Ok(ExitCode::SUCCESS)
    }
}

/// The crate's files, relative to its folder.
fn files(name: &str, service: Option<&str>, kit: &Path) -> Vec<(&'static str, String)> {
    let ident = name.replace('-', "_");
    let camel: String = name
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect();
    let kit = kit.display().to_string().replace('\\', "/");
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

[profile.release]
opt-level = "s"
strip = "debuginfo"

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
        let request = Request::get(&service.url).body(Body::empty()).map_err(|e| SkillError::internal(e.to_string()))?;
        let response = Client::new()
            .send(request)
            .await
            .map_err(|e| SkillError::backend(&service.name, None, format!("GET {{}}: {{e:#}}", service.url)))?;
        let status = response.status().as_u16();
        data["service"] = json!({{"name": service.name, "status": status}});
"#
            ),
            "use c41_kit::settings;\nuse c41_kit::wstd::http::{Body, Client, Request};\n",
        ),
        None => ("&[]".to_string(), String::new(), ""),
    };
    let lib = format!(
        r##"//! {name}: a c41 skill. `describe` says what it takes and gives; `invoke`
//! runs once per call in a fresh sandboxed instance.

use c41_kit::progress::Progress;
{use_settings}use c41_kit::{{Invocation, Outcome, Skill, SkillError, StaticDescription, json}};

struct {camel};

/// The input, as a JSON Schema: agents and `c41 describe` show it.
const SCHEMA: &str = r#"{{
  "type": "object",
  "additionalProperties": false,
  "properties": {{
    "who": {{"type": "string", "description": "Whom to greet.", "default": "world"}}
  }}
}}"#;

/// The skill's logic, kept pure so `cargo test` checks it natively.
pub fn greeting(who: &str) -> String {{
    format!("Hello, {{}}!", who.trim())
}}

impl Skill for {camel} {{
    const DESCRIPTION: Option<StaticDescription> = Some(StaticDescription {{
        name: "{name}",
        version: env!("CARGO_PKG_VERSION"),
        summary: "Greets someone.",
        input_schema: SCHEMA,
        output: "text: the greeting; data: {{who}}",
        services: {services},
    }});

    async fn invoke(cx: Invocation) -> Result<Outcome, SkillError> {{
        let who = cx.str("who").unwrap_or("world").to_string();
        let mut data = json!({{"who": who}});
{call}        Progress::stage("done").fraction(1.0).report();
        Ok(Outcome {{ text: greeting(&who), artifacts: vec![], data }})
    }}
}}

c41_kit::skill!({camel});

#[cfg(test)]
mod tests {{
    use super::greeting;

    #[test]
    fn greets_by_name() {{
        assert_eq!(greeting(" studio "), "Hello, studio!");
    }}
}}
"##
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
cargo test                                    # the logic, natively
cargo build --target wasm32-wasip2 --release  # the component
c41 check target/wasm32-wasip2/release/{ident}.wasm
c41 --component target/wasm32-wasip2/release/{ident}.wasm run {name} who=studio
```

`c41 check` says what users would trip over: imports outside the skill
world, a slow or failing `describe()`, a taken name, a schema that is not an
object. The skill reaches {reach}. To give it grants and settings, add
`c41.example.toml` to your c41 config (`c41 grant {name}` records which
binary the grants belong to).
"#,
        reach = match service {
            Some(kind) => format!("only the `{kind}` service the config grants it"),
            None => "no network at all".into(),
        }
    );
    vec![
        ("Cargo.toml", cargo),
        ("rust-toolchain.toml", toolchain),
        ("src/lib.rs", lib),
        ("README.md", readme),
        ("c41.example.toml", grant),
        (".gitignore", "/target\n".to_string()),
    ]
}
