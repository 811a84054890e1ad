//! `c41 check COMPONENT`: what a skill author must fix before users can load
//! their component, each check on a line of its own: does it load as a
//! component for this host, does it import only what `wit/skill.wit`
//! documents, does `describe()` answer within the limits, is its name
//! well-formed and free, is its input schema a valid JSON Schema for an
//! object, and are the service kinds it declares ones users can grant.

use super::Ctx;
use crate::runtime::{DOCUMENTED_IMPORTS, Origin, Runtime, RuntimeOptions};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// Check a component before you ship it.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  cargo build --target wasm32-wasip2 --release\n  c41 check target/wasm32-wasip2/release/weather.wasm"
)]
pub struct Args {
    /// The component (.wasm) to check.
    pub component: PathBuf,
}

/// Whether c41 knows service `kind`: plain `http`, or one `c41 doctor` can
/// health-check (the kinds the built-in skills use).
fn known_kind(kind: &str) -> bool {
    kind == "http" || super::doctor::health_path(kind).is_some()
}

impl Args {
    pub(super) async fn run(self, ctx: &Ctx) -> anyhow::Result<ExitCode> {
        let config = ctx.config()?;
        let mut problems = 0;
        let mut say = |ok: Option<bool>, what: &str, line: String| {
            let tag = match ok {
                Some(true) => "ok  ",
                Some(false) => {
                    problems += 1;
                    "FAIL"
                }
                None => "warn",
            };
            println!("{tag}  {what:<10} {line}");
        };
        let bytes = match std::fs::read(&self.component) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("error: cannot read {}: {e}", self.component.display());
                return Ok(ExitCode::from(2));
            }
        };
        let runtime = Runtime::new(RuntimeOptions::with_default_cache()).map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let sha256 = crate::config::pins::sha256_hex(&bytes);
        let component = match runtime.cache().load(runtime.engine(), &bytes, &sha256) {
            Ok((c, _)) => c,
            Err(e) => {
                say(Some(false), "component", format!("not a component this host can run: {e:#}"));
                say(None, "", "build it with `cargo build --target wasm32-wasip2` against wit/skill.wit".into());
                return Ok(ExitCode::from(1));
            }
        };
        say(Some(true), "component", format!("{} ({} bytes)", self.component.display(), bytes.len()));

        let imports: Vec<String> =
            component.component_type().imports(runtime.engine()).map(|(n, _)| n.to_string()).collect();
        let strange: Vec<&String> =
            imports.iter().filter(|i| !DOCUMENTED_IMPORTS.iter().any(|d| i.starts_with(d))).collect();
        let denied: Vec<&String> =
            imports.iter().filter(|i| i.starts_with("wasi:filesystem/") || i.starts_with("wasi:sockets/")).collect();
        if !strange.is_empty() {
            let list: Vec<&str> = strange.iter().map(|s| s.as_str()).collect();
            say(
                Some(false),
                "imports",
                format!("{}: not in wit/skill.wit's world; the host cannot link them", list.join(", ")),
            );
        } else if !denied.is_empty() {
            say(
                None,
                "imports",
                format!(
                    "{} link but are denied at run time (no files, no sockets: use inputs, artifacts and granted services)",
                    denied.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                ),
            );
        } else {
            say(Some(true), "imports", format!("{} imports, all in wit/skill.wit's world", imports.len()));
        }
        // Which c41:skill it was built against (see "Versions" in the WIT).
        let mut versions: Vec<&str> =
            imports.iter().filter_map(|i| i.strip_prefix("c41:skill/")?.split_once('@').map(|(_, v)| v)).collect();
        versions.sort();
        versions.dedup();
        if !versions.is_empty() {
            say(Some(true), "wit", format!("built against c41:skill@{}", versions.join(", @")));
        }

        let origin = Origin::File(self.component.canonicalize().unwrap_or_else(|_| self.component.clone()));
        let limits = config.limits_for("");
        let started = Instant::now();
        let skill = match runtime.load_hashed(bytes.into(), sha256, origin, &limits).await {
            Ok(s) => s,
            Err(e) => {
                say(Some(false), "describe", format!("{e}"));
                println!("\n{problems} problem(s) found");
                return Ok(ExitCode::from(1));
            }
        };
        let d = &skill.description;
        say(
            Some(true),
            "describe",
            format!(
                "`{}` {} answered in {} ms (limits: {} MiB, {} s)",
                d.name,
                d.version,
                started.elapsed().as_millis(),
                limits.memory_bytes >> 20,
                limits.timeout.as_secs().min(crate::runtime::describe::DESCRIBE_MAX.as_secs())
            ),
        );

        let builtin = crate::guests::BUILTIN.iter().find(|(name, ..)| *name == d.name);
        let itself = builtin.is_some_and(|(.., sha256)| *sha256 == skill.sha256);
        if crate::catalog::RESERVED.contains(&d.name.as_str()) {
            say(Some(false), "name", format!("`{}` is reserved for c41 mcp's own tools; choose another", d.name));
        } else if itself {
            say(Some(true), "name", format!("`{}`: this is the built-in skill itself", d.name));
        } else if builtin.is_some() {
            say(
                Some(false),
                "name",
                format!("`{}` is a built-in skill's name; c41 refuses to load another under it", d.name),
            );
        } else {
            say(Some(true), "name", format!("`{}` is well-formed and free", d.name));
        }

        let fields = d.input_schema.get("properties").and_then(|p| p.as_object()).map_or(0, |p| p.len());
        let files = skill.schema.file_fields().len();
        if d.input_schema.get("type").and_then(|t| t.as_str()) != Some("object") {
            say(
                Some(false),
                "schema",
                "the input schema must describe an object (\"type\": \"object\"): agents send named fields".into(),
            );
        } else {
            say(
                Some(true),
                "schema",
                format!("a valid JSON Schema for an object: {fields} field(s), {files} file input(s)"),
            );
        }

        if d.services.is_empty() {
            say(Some(true), "services", "declares none: it reaches no network".into());
        }
        for kind in &d.services {
            if known_kind(kind) {
                say(Some(true), "services", format!("`{kind}`: users grant it a [services] entry of that kind"));
            } else {
                say(
                    None,
                    "services",
                    format!(
                        "`{kind}` is no kind c41 knows: users must write kind = \"{kind}\" on the service they grant"
                    ),
                );
            }
        }
        println!();
        if problems == 0 {
            println!("ready: `c41 --component {} run {}` loads it", self.component.display(), d.name);
            Ok(ExitCode::SUCCESS)
        } else {
            println!("{problems} problem(s) found");
            Ok(ExitCode::from(1))
        }
    }
}
