//! `c41 openclaw install`: set OpenClaw up to use c41 in one command. It
//! writes the MCP server entry into OpenClaw's config (`mcp.servers.c41`,
//! what `openclaw mcp add c41 --command … --arg … --timeout …` would write)
//! and/or one SKILL.md folder per skill, and says what it did.
//!
//! OpenClaw's config is edited as JSON: every other key is kept as it was,
//! and an `mcp.servers.c41` entry that does not start `c41 mcp` is not
//! replaced without `--force`.

use super::Ctx;
use super::export::{is_ours as skill_md_is_ours, write_skill};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Set up OpenClaw to use c41.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub action: Action,
}

/// `c41 openclaw …` actions.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Add c41 to OpenClaw: the MCP server entry (default) and/or SKILL.md folders.
    Install(InstallArgs),
}

/// `c41 openclaw install`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  c41 --config ~/.config/c41/c41.toml openclaw install\n  \
                        c41 openclaw install --skills --workspace ~/agent-workspace")]
pub struct InstallArgs {
    /// Write the MCP server entry (the default).
    #[arg(long, conflicts_with_all = ["skills", "both"])]
    pub mcp: bool,
    /// Write one SKILL.md folder per skill (for agents that use exec).
    #[arg(long, conflicts_with = "both")]
    pub skills: bool,
    /// Both.
    #[arg(long)]
    pub both: bool,
    /// The agent workspace: SKILL.md folders go in DIR/skills [default: ~/.openclaw/skills].
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// OpenClaw's config file [default: $OPENCLAW_CONFIG_PATH, else
    /// $OPENCLAW_STATE_DIR/openclaw.json, else ~/.openclaw/openclaw.json].
    #[arg(long, value_name = "FILE")]
    pub openclaw_config: Option<PathBuf>,
    /// Replace an `mcp.servers.c41` entry or skill folders that c41 did not write.
    #[arg(long)]
    pub force: bool,
}

/// Environment variables passed on to the MCP server: OpenClaw starts it with
/// a bare environment, so without them it would use another component cache
/// and run journal than the shell that ran the installer.
const PASSED_ENV: &[&str] = &["C41_CACHE_DIR", "C41_STATE_DIR"];

/// The MCP request timeout written for c41: long enough for the longest
/// configured job, and at least an hour (a Wan 2.2 clip takes minutes).
fn request_timeout_ms(ctx_limits_secs: u64) -> u64 {
    (ctx_limits_secs + 60).max(3600) * 1000
}

impl Args {
    pub(super) async fn run(self, ctx: &Ctx) -> anyhow::Result<ExitCode> {
        match self.action {
            Action::Install(a) => a.run(ctx).await,
        }
    }
}

impl InstallArgs {
    async fn run(self, ctx: &Ctx) -> anyhow::Result<ExitCode> {
        let config = ctx.config()?;
        let Some(c41_config) = config.path.as_ref().map(|p| p.canonicalize().unwrap_or_else(|_| p.clone())) else {
            eprintln!("error: no c41 config to point OpenClaw at: run `c41 init` first, or pass --config FILE");
            return Ok(ExitCode::from(2));
        };
        let (mcp, skills) = match (self.mcp, self.skills, self.both) {
            (_, _, true) => (true, true),
            (false, true, false) => (false, true),
            _ => (true, false),
        };
        if mcp {
            let path = match self.openclaw_config.clone().or_else(default_openclaw_config) {
                Some(p) => p,
                None => anyhow::bail!("cannot tell where OpenClaw's config is; pass --openclaw-config FILE"),
            };
            let longest = config
                .config
                .skills
                .keys()
                .map(|s| config.limits_for(s).timeout.as_secs())
                .chain([config.limits_for("").timeout.as_secs()])
                .max()
                .unwrap_or(0);
            let entry = server_entry(&std::env::current_exe()?, &c41_config, request_timeout_ms(longest));
            match install_mcp(&path, entry, self.force) {
                Ok(done) => println!("{done}"),
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(ExitCode::from(2));
                }
            }
        }
        if skills {
            let dir = match (&self.workspace, default_openclaw_dir()) {
                (Some(w), _) => w.join("skills"),
                (None, Some(d)) => d.join("skills"),
                (None, None) => anyhow::bail!("cannot tell where OpenClaw's skills go; pass --workspace DIR"),
            };
            let app = ctx.app().await?;
            let mut refused = Vec::new();
            for s in app.catalog.iter() {
                let md = dir.join(&s.description.name).join("SKILL.md");
                if md.exists() && !self.force && !skill_md_is_ours(&md) {
                    refused.push(md.display().to_string());
                    continue;
                }
                let path = write_skill(&dir, &s.description, Some(&c41_config))?;
                println!("wrote the skill {}", path.display());
            }
            if !refused.is_empty() {
                eprintln!(
                    "error: not replaced, c41 did not write them (pass --force to replace them): {}",
                    refused.join(", ")
                );
                return Ok(ExitCode::from(2));
            }
        }
        if !skills {
            eprintln!("(SKILL.md folders for agents that use exec: add --skills or --both)");
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// OpenClaw's state directory: `$OPENCLAW_STATE_DIR`, else `~/.openclaw`.
fn default_openclaw_dir() -> Option<PathBuf> {
    std::env::var_os("OPENCLAW_STATE_DIR").map(PathBuf::from).or_else(|| dirs::home_dir().map(|h| h.join(".openclaw")))
}

/// OpenClaw's config file, found the way OpenClaw finds it.
fn default_openclaw_config() -> Option<PathBuf> {
    std::env::var_os("OPENCLAW_CONFIG_PATH")
        .map(PathBuf::from)
        .or_else(|| default_openclaw_dir().map(|d| d.join("openclaw.json")))
}

/// The `mcp.servers.c41` entry: this binary, `mcp --config <abs>`, the
/// request timeout, and the environment it needs from this shell.
pub fn server_entry(c41: &Path, config: &Path, request_timeout_ms: u64) -> Map<String, Value> {
    let mut entry = Map::new();
    entry.insert("command".into(), json!(c41.display().to_string()));
    entry.insert("args".into(), json!(["mcp", "--config", config.display().to_string()]));
    entry.insert("requestTimeoutMs".into(), json!(request_timeout_ms));
    let env: Map<String, Value> =
        PASSED_ENV.iter().filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), json!(v)))).collect();
    if !env.is_empty() {
        entry.insert("env".into(), Value::Object(env));
    }
    entry
}

/// Whether an existing server entry starts `c41 mcp` (then c41 may update it).
fn is_c41_entry(entry: &Value) -> bool {
    let command = entry["command"].as_str().map(Path::new);
    command.and_then(Path::file_name).is_some_and(|n| n == "c41") && entry["args"][0] == "mcp"
}

/// Why OpenClaw's config was left alone.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The file cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// OpenClaw's config.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not JSON c41 can edit (OpenClaw also reads JSON5).
    #[error(
        "{path} is not plain JSON ({message}); c41 edits only JSON. Add the server with:\n  openclaw mcp add c41 {}",
        .cli_args
    )]
    NotJson {
        /// OpenClaw's config.
        path: PathBuf,
        /// serde_json's message.
        message: String,
        /// The `openclaw mcp add` arguments that do the same.
        cli_args: String,
    },
    /// `mcp.servers.c41` is someone else's.
    #[error("{path}: mcp.servers.c41 is not a `c41 mcp` server (command {command}); pass --force to replace it")]
    Foreign {
        /// OpenClaw's config.
        path: PathBuf,
        /// The entry's command.
        command: String,
    },
}

/// `openclaw mcp add c41 …` arguments equivalent to `entry`, quoted for the shell.
fn cli_args(entry: &Map<String, Value>) -> String {
    let q = |s: &str| super::export::shell_quote(s);
    let mut out = format!("--command {}", q(entry["command"].as_str().unwrap_or("c41")));
    for a in entry["args"].as_array().into_iter().flatten() {
        out.push_str(&format!(" --arg {}", q(a.as_str().unwrap_or(""))));
    }
    if let Some((k, v)) = entry.get("env").and_then(Value::as_object).into_iter().flatten().next() {
        out.push_str(&format!(" --env {}", q(&format!("{k}={}", v.as_str().unwrap_or("")))));
    }
    out.push_str(&format!(" --timeout {}", entry["requestTimeoutMs"].as_u64().unwrap_or(3_600_000) / 1000));
    out
}

/// Put `entry` at `mcp.servers.c41` in the JSON config at `path` (created if
/// missing), keeping every other key and the entry's own other keys (a
/// `toolFilter` the user set, say). Returns what was done, in a sentence.
pub fn install_mcp(path: &Path, entry: Map<String, Value>, force: bool) -> Result<String, InstallError> {
    let io = |source| InstallError::Io { path: path.to_path_buf(), source };
    let mut root: Value = match std::fs::read_to_string(path) {
        Ok(text) if text.trim().is_empty() => json!({}),
        Ok(text) => serde_json::from_str(&text).map_err(|e| InstallError::NotJson {
            path: path.to_path_buf(),
            message: e.to_string(),
            cli_args: cli_args(&entry),
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => json!({}),
        Err(e) => return Err(io(e)),
    };
    let not_object = |what: &str| InstallError::NotJson {
        path: path.to_path_buf(),
        message: format!("{what} is not an object"),
        cli_args: cli_args(&entry),
    };
    let servers = root
        .as_object_mut()
        .ok_or_else(|| not_object("the top level"))?
        .entry("mcp")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or_else(|| not_object("`mcp`"))?
        .entry("servers")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or_else(|| not_object("`mcp.servers`"))?;
    let verb = match servers.get("c41") {
        None => "added",
        Some(old) if !force && !is_c41_entry(old) => {
            return Err(InstallError::Foreign {
                path: path.to_path_buf(),
                command: old["command"].as_str().unwrap_or("(none)").to_string(),
            });
        }
        Some(_) => "updated",
    };
    let mut merged = match (servers.get("c41"), force) {
        (Some(Value::Object(old)), false) => old.clone(),
        _ => Map::new(),
    };
    let before = Value::Object(merged.clone());
    merged.extend(entry);
    let merged = Value::Object(merged);
    let described = format!(
        "mcp.servers.c41 in {}: {} {} (request timeout {} s)",
        path.display(),
        merged["command"].as_str().unwrap_or(""),
        merged["args"].as_array().into_iter().flatten().filter_map(Value::as_str).collect::<Vec<_>>().join(" "),
        merged["requestTimeoutMs"].as_u64().unwrap_or(0) / 1000
    );
    if verb == "updated" && before == merged {
        return Ok(format!("unchanged {described}"));
    }
    servers.insert("c41".into(), merged);
    let mut text = serde_json::to_string_pretty(&root).expect("JSON serialises");
    text.push('\n');
    crate::files::write_atomically(path, text.as_bytes()).map_err(io)?;
    Ok(format!("{verb} {described}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Map<String, Value> {
        let mut e = Map::new();
        e.insert("command".into(), json!("/usr/local/bin/c41"));
        e.insert("args".into(), json!(["mcp", "--config", "/etc/c41 conf/c41.toml"]));
        e.insert("requestTimeoutMs".into(), json!(3_600_000));
        e
    }

    #[test]
    fn keeps_other_keys_and_refuses_a_foreign_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("openclaw.json");
        std::fs::write(&path, r#"{"agents": {"x": 1}, "mcp": {"servers": {"other": {"command": "o"}}}}"#).unwrap();
        let done = install_mcp(&path, entry(), false).unwrap();
        assert!(done.starts_with("added mcp.servers.c41"), "{done}");
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(v["agents"], json!({"x": 1}));
        assert_eq!(v["mcp"]["servers"]["other"], json!({"command": "o"}));
        assert_eq!(v["mcp"]["servers"]["c41"]["requestTimeoutMs"], 3_600_000);
        assert!(install_mcp(&path, entry(), false).unwrap().starts_with("unchanged"));

        // A user's own key in the entry survives an update.
        let mut v = v;
        v["mcp"]["servers"]["c41"]["toolFilter"] = json!({"include": ["comfyui-*"]});
        std::fs::write(&path, v.to_string()).unwrap();
        let mut newer = entry();
        newer.insert("requestTimeoutMs".into(), json!(7_200_000));
        assert!(install_mcp(&path, newer, false).unwrap().starts_with("updated"));
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(v["mcp"]["servers"]["c41"]["toolFilter"], json!({"include": ["comfyui-*"]}));
        assert_eq!(v["mcp"]["servers"]["c41"]["requestTimeoutMs"], 7_200_000);

        // Someone else's `c41` entry: refused, untouched, unless forced.
        let mut v = v;
        v["mcp"]["servers"]["c41"] = json!({"url": "https://c41.example/mcp"});
        std::fs::write(&path, v.to_string()).unwrap();
        let before = std::fs::read_to_string(&path).unwrap();
        let e = install_mcp(&path, entry(), false).unwrap_err().to_string();
        assert!(e.contains("--force"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
        install_mcp(&path, entry(), true).unwrap();
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(Value::Object(entry()), v["mcp"]["servers"]["c41"]);
    }

    #[test]
    fn json5_is_left_alone_with_the_equivalent_command() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("openclaw.json");
        std::fs::write(&path, "{ // mine\n agents: {} }\n").unwrap();
        let e = install_mcp(&path, entry(), false).unwrap_err().to_string();
        assert!(
            e.contains("openclaw mcp add c41 --command /usr/local/bin/c41 --arg mcp --arg --config --arg '/etc/c41 conf/c41.toml' --timeout 3600"),
            "{e}"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{ // mine\n agents: {} }\n");
    }
}
