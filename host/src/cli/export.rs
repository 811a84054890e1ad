//! `c41 export-skills DIR`: one OpenClaw skill folder (`SKILL.md`) per c41
//! skill, for agents that call skills through their `exec` tool rather than
//! MCP. The text tells the agent how to call `c41 run`, what the input is,
//! and how to deliver files (MEDIA lines in the final reply).

use super::Ctx;
use super::describe::input_fields;
use crate::runtime::SkillDescription;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Write a SKILL.md folder per skill.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example: c41 --config ~/.config/c41/c41.toml export-skills ~/.openclaw/skills")]
pub struct Args {
    /// Where to write the skill folders (e.g. ~/.openclaw/skills).
    pub dir: PathBuf,
}

/// `s` as one word for a POSIX shell: as is when it is plain, else in single
/// quotes (a config path with spaces or quotes stays one argument).
pub fn shell_quote(s: &str) -> String {
    match shlex::try_quote(s) {
        Ok(q) => q.into_owned(),
        // Only a NUL byte is refused, and no path holds one.
        Err(_) => format!("'{}'", s.replace('\0', "").replace('\'', "'\\''")),
    }
}

/// The SKILL.md text for one skill. `config` is written into every command
/// because OpenClaw runs commands with a minimal environment.
pub fn skill_md(d: &SkillDescription, config: Option<&Path>) -> String {
    let config_arg = config.map(|p| format!(" --config {}", shell_quote(&p.display().to_string()))).unwrap_or_default();
    let mut summary = d.summary.replace('\n', " ");
    if summary.chars().count() > 155 {
        summary = summary.chars().take(152).collect::<String>() + "...";
    }
    let mut md = format!(
        "---\nname: {name}\ndescription: {desc}\n{REQUIRES_C41}\n---\n\n# {name}\n\n{summary}\n\n",
        name = d.name,
        desc = serde_json::to_string(&summary).unwrap_or_default(),
        summary = d.summary,
    );
    md.push_str(&format!(
        "Run it with your exec tool (the skill runs sandboxed; it can reach only the services the c41 config grants it):\n\n```sh\nc41{config_arg} run {} --input '<JSON object>'\n```\n\n",
        d.name
    ));
    md.push_str("## Input (a JSON object)\n\n");
    for line in input_fields(d) {
        md.push_str(&format!("- {line}\n"));
    }
    md.push_str(&format!("\n## Output\n\n{}\n\n", d.output));
    md.push_str(
        "The command prints progress on stderr, then the result text and one `MEDIA:<absolute path>` line per file \
         on stdout. To deliver a file to the user, copy each `MEDIA:` line exactly, on its own line, into your final \
         reply (not inside a code block).\n\n\
         Long jobs (a video) can take minutes: if exec moves the command to the background, poll it with the process \
         tool until it exits; its final output still carries the MEDIA lines. If the command was killed before it \
         finished, `c41 runs` lists it as interrupted and `c41 resume <run id>` finishes it (a job already running \
         on the workstation is followed, not started again; the run remembers its config).\n\n\
         Exit code 0: success. 1: the skill ran and failed (the message says why: a refused request, a backend error, \
         a limit). 2: the input was refused (the message names the field); fix it and run again.\n",
    );
    md
}

/// The line by which a SKILL.md c41 wrote is recognised (`c41 openclaw
/// install` replaces only those without `--force`).
const REQUIRES_C41: &str = "metadata: {\"openclaw\": {\"requires\": {\"bins\": [\"c41\"]}}}";

/// Whether the SKILL.md at `path` is one c41 wrote.
pub fn is_ours(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| t.lines().any(|l| l == REQUIRES_C41))
}

/// Write `<dir>/<skill>/SKILL.md` atomically; returns its path.
pub fn write_skill(dir: &Path, d: &SkillDescription, config: Option<&Path>) -> std::io::Result<PathBuf> {
    let dir = dir.join(&d.name);
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("SKILL.md");
    let mut tmp = tempfile::NamedTempFile::new_in(&dir)?;
    std::io::Write::write_all(&mut tmp, skill_md(d, config).as_bytes())?;
    tmp.persist(&path)?;
    Ok(path)
}

impl Args {
    pub(super) async fn run(self, ctx: &Ctx) -> anyhow::Result<ExitCode> {
        let app = ctx.app().await?;
        let config = app.config.path.as_ref().and_then(|p| p.canonicalize().ok());
        for s in app.catalog.iter() {
            println!("{}", write_skill(&self.dir, &s.description, config.as_deref())?.display());
        }
        Ok(ExitCode::SUCCESS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The config path in a SKILL.md command stays one shell word, whatever
    /// it holds: a POSIX shell gives it back unchanged.
    #[test]
    fn the_config_path_is_quoted_for_the_shell() {
        let d = SkillDescription {
            name: "tts".into(),
            version: "0.1.0".into(),
            summary: "s".into(),
            input_schema: serde_json::json!({"type": "object"}),
            output: "o".into(),
            services: vec![],
        };
        for path in [
            "/Users/me/Library/Application Support/c41/c41.toml",
            "/tmp/it's \"here\"/c41.toml",
            "/tmp/$HOME `id` ;&|*?/c41.toml",
            "/plain/c41.toml",
        ] {
            let md = skill_md(&d, Some(Path::new(path)));
            let line = md.lines().find(|l| l.starts_with("c41 --config ")).expect("a command line");
            let word = line.strip_prefix("c41 --config ").unwrap().strip_suffix(" run tts --input '<JSON object>'");
            let word = word.unwrap_or_else(|| panic!("unexpected command {line:?}"));
            let out = std::process::Command::new("sh").arg("-c").arg(format!("printf '%s' {word}")).output().unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), path, "{line}");
        }
    }
}
