//! The `c41` binary as people and agents use it: output formats, MEDIA
//! lines, exit codes, config errors.

use crate::common::*;
use serde_json::Value;
use std::process::Command;

fn c41(config: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_c41"));
    cmd.env("C41_CONFIG", config).env("C41_CACHE_DIR", cache_dir()).env_remove("RUST_LOG");
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_prints_media_lines_and_json() {
    let (addr, _) = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &format!(
            "output-dir = \"{{out}}\"\n[services.web]\nurl = \"http://127.0.0.1:{}\"\nkind = \"http\"\n[skills.hello-http]\ngrants = [\"web\"]\n",
            addr.port()
        ),
    );
    let out = tokio::task::spawn_blocking({
        let cfg = cfg.clone();
        move || c41(&cfg).args(["run", "hello-http", "path=/hello.txt"]).output().unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let media: Vec<&str> = stdout.lines().filter_map(|l| l.strip_prefix("MEDIA:")).collect();
    assert_eq!(media.len(), 1, "{stdout}");
    assert!(std::path::Path::new(media[0]).is_absolute());
    assert_eq!(std::fs::read_to_string(media[0]).unwrap(), "hello from the forge\n");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("[hello-http] done 100%"), "plain progress lines on a non-terminal: {stderr}");

    let out = tokio::task::spawn_blocking({
        let cfg = cfg.clone();
        move || {
            c41(&cfg).args(["run", "hello-http", "--input", "{\"path\":\"/hello.txt\"}", "--json"]).output().unwrap()
        }
    })
    .await
    .unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["skill"], "hello-http");
    assert_eq!(v["ok"], true);
    assert_eq!(v["artifacts"][0]["bytes"], 21);
    assert_eq!(v["artifacts"][0]["mime"], "text/plain");
    assert_eq!(v["artifacts"][0]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(v["data"]["status"], 200);

    let out = tokio::task::spawn_blocking(move || {
        c41(&cfg).args(["run", "hello-http", "url=http://127.0.0.1:1/", "--json"]).output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"]["kind"], "denied");
    assert_eq!(v["error"]["fault"], "grant");
    assert_eq!(v["error"]["denials"][0]["url"], "http://127.0.0.1:1");
    assert_eq!(v["error"]["denials"][0]["closest_grant"]["service"], "web");
}

#[test]
fn usage_errors_exit_2_and_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "output-dir = \"{out}\"\n");
    let out = c41(&cfg).args(["run", "hello-htp"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean `hello-http`?"));

    let out = c41(&cfg).args(["run", "hello-http", "--json", "path=3", "nope=1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "invalid-input");
    assert_eq!(v["error"]["field"], "nope");

    let bad = write_config(dir.path(), "[services.comfyui]\nurl = \"http://a:1\"\n[skills.x]\ngrants = [\"olama\"]\n");
    let out = c41(&bad).arg("list").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("c41.toml:4") && err.contains("skills.x.grants") && err.contains("olama"), "{err}");
}

#[test]
fn list_and_describe_show_skills_and_grants() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "output-dir = \"{out}\"\n[services.web]\nurl = \"http://127.0.0.1:9\"\nkind = \"http\"\n[skills.hello-http]\ngrants = [\"web\"]\n",
    );
    let out = c41(&cfg).args(["list", "--json"]).output().unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let hello = v.as_array().unwrap().iter().find(|s| s["name"] == "hello-http").expect("starter skill listed");
    assert_eq!(hello["granted"][0]["url"], "http://127.0.0.1:9");

    let runaway = guest("runaway");
    let out = c41(&cfg).args(["list", "--component"]).arg(&runaway).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("test-runaway") && text.contains("(none)"), "a --component skill gets no grants: {text}");

    let out = c41(&cfg).args(["describe", "hello-http", "--json"]).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["input_schema"]["properties"]["path"]["default"], "/");
    assert_eq!(v["limits"]["memory_mb"], 512);
}

#[test]
fn init_writes_a_config_that_loads() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("sub").join("c41.toml");
    let out = c41(&cfg).args(["init", "--output-dir"]).arg(dir.path().join("out")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    c41::config::load(Some(&cfg)).expect("the starter config loads");
    let again = c41(&cfg).arg("init").output().unwrap();
    assert_eq!(again.status.code(), Some(2), "refuses to overwrite");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starter_component_is_refused_an_ungranted_url() {
    // What a skill author does: load the built starter as --component.
    let (addr, _) = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &format!(
            "output-dir = \"{{out}}\"\n[services.site]\nurl = \"http://127.0.0.1:{}\"\nkind = \"http\"\n[skills.hello-http]\ngrants = [\"site\"]\n",
            addr.port()
        ),
    );
    let other = closed_port();
    let out = tokio::task::spawn_blocking(move || {
        c41(&cfg)
            .arg("--component")
            .arg(guest("hello-http"))
            .args(["run", "hello-http", &format!("url=http://127.0.0.1:{other}/")])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "refused http://127.0.0.1:{other}: no grant for that port (site = http://127.0.0.1:{})",
            addr.port()
        )),
        "{err}"
    );
    assert!(err.contains("help: the grant `site` allows only"), "{err}");
}

#[test]
fn demo_runs_every_builtin_skill_against_the_simulator() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_c41"))
        .env("C41_CACHE_DIR", cache_dir())
        .env_remove("C41_CONFIG")
        .args(["demo", "--output-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");
    assert!(stderr.contains("SIMULATED"), "the demo says the backends are simulated: {stderr}");
    for (name, ..) in c41::guests::BUILTIN {
        assert!(stdout.contains(&format!("== {name}:")), "demo ran {name}:\n{stdout}");
    }
    // HuMo and MMAudio also inside ComfyUI, as the workstation runs them.
    for line in [
        "== lip-sync on ComfyUI",
        "with HuMo on ComfyUI comfyui",
        "== audio-gen on ComfyUI",
        "with MMAudio on ComfyUI comfyui",
        "== lora-train",
        "== comfyui-image with the trained LoRA",
        "with LoRA c41/demo-fox-",
    ] {
        assert!(stdout.contains(line), "{line}:\n{stdout}");
    }
    let media: Vec<&str> = stdout.lines().filter_map(|l| l.strip_prefix("MEDIA:")).collect();
    assert!(!media.is_empty(), "{stdout}");
    for m in media {
        let p = std::path::Path::new(m);
        assert!(p.starts_with(dir.path().canonicalize().unwrap()) && p.metadata().unwrap().len() > 0, "{m}");
    }
    assert!(stdout.contains(", 0 failed;"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_every_service_and_names_the_dead_one() {
    let studio = c41::studio::SimStudio::start(c41::studio::SimPorts::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &studio.config_toml("{out}"));
    let out = tokio::task::spawn_blocking({
        let cfg = cfg.clone();
        move || c41(&cfg).arg("doctor").output().unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for (name, _, _) in studio.services() {
        assert!(text.lines().any(|l| l.starts_with("ok") && l.contains(name)), "{name} checked: {text}");
    }
    assert!(text.contains("all checks passed"));

    let dead = closed_port();
    let broken = write_config(
        dir.path(),
        &format!("output-dir = \"{{out}}\"\n[services.ollama]\nurl = \"http://127.0.0.1:{dead}\"\n"),
    );
    let out = tokio::task::spawn_blocking(move || c41(&broken).arg("doctor").output().unwrap()).await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("FAIL") && l.contains("ollama") && l.contains(&dead.to_string())),
        "{text}"
    );
}

/// A backend without the default workflow's model: doctor says, per
/// workflow, which is ready and what is missing where, with the fix, and
/// fails (it no longer says "all checks passed").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_every_workflow_on_every_comfyui_backend() {
    let cfg = c41_sim::comfyui::ComfyConfig::default()
        .with_models("diffusion_models", &["z_image_turbo_bf16.safetensors"])
        .without_nodes(&["Flux2Scheduler"]);
    let sim = c41_sim::comfyui::ComfySim::new(cfg);
    let addr = sim.start("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &format!(
            "output-dir = \"{{out}}\"\n[services.comfyui]\nurl = \"http://{addr}\"\n[skills.comfyui-image]\ngrants = [\"comfyui\"]\n"
        ),
    );
    let out = tokio::task::spawn_blocking(move || c41(&cfg).arg("doctor").output().unwrap()).await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(!text.contains("all checks passed"), "{text}");
    let line = |w: &str| text.lines().find(|l| l.contains("comfyui ") && l.contains(w)).unwrap_or_default().to_string();
    assert!(line("z-image-turbo").ends_with("ready"), "{text}");
    let flux = line("flux2-dev");
    assert!(flux.contains("missing") && flux.contains("flux2_dev_fp8mixed.safetensors"), "{text}");
    assert!(flux.contains("models/diffusion_models"), "where to put it: {text}");
    assert!(flux.contains("Flux2Scheduler") && flux.contains("update ComfyUI"), "{text}");
    assert!(text.contains("PROBLEM: flux2-dev cannot run on any granted backend"), "{text}");
    println!("{text}");
}

#[test]
fn export_skills_writes_an_openclaw_skill_per_skill() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "output-dir = \"{out}\"\n");
    let out = c41(&cfg).arg("export-skills").arg(dir.path().join("skills")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for (name, ..) in c41::guests::BUILTIN {
        let md = std::fs::read_to_string(dir.path().join("skills").join(name).join("SKILL.md")).unwrap();
        let front = md.strip_prefix("---\n").and_then(|r| r.split_once("\n---\n")).expect("frontmatter").0;
        assert!(front.lines().any(|l| l == format!("name: {name}")), "{front}");
        let desc = front.lines().find_map(|l| l.strip_prefix("description: ")).expect("description");
        let desc: String = serde_json::from_str(desc).expect("description is a quoted string");
        assert!(!desc.is_empty() && desc.chars().count() < 160, "{desc}");
        assert!(md.contains(&format!("run {name} --input")), "how to call it");
        assert!(md.contains("MEDIA:"), "how to deliver files");
        assert!(md.contains(&format!("--config {}", cfg.canonicalize().unwrap().display())), "the config is explicit");
    }
}

/// `GET path` over a plain socket; the status code, or None if refused.
fn http_status(base: &str, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let hostport = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(hostport).ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).ok()?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).ok()?;
    reply.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn sim_arms_faults_from_the_command_line() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let ports =
        ["--comfyui-port", "0", "--ollama-port", "0", "--mmaudio-port", "0", "--humo-port", "0", "--tts-port", "0"];

    // A wrong fault is refused before anything is served, naming what is wrong.
    let out = c41(&cfg).arg("sim").args(ports).args(["--fault", "comfyui:mid-stream-error"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("comfyui simulator has no `mid-stream-error`"), "{err}");
    let out = c41(&cfg).arg("sim").args(ports).args(["--fault", "comfy:fail=503"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no simulated service `comfy`"));

    let mut child = c41(&cfg)
        .arg("sim")
        .args(ports)
        .args(["--fault", "comfyui:fail=2x503", "--fault", "tts:down"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut urls = std::collections::HashMap::new();
    let mut section = String::new();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(name) = line.strip_prefix("[services.") {
            section = name.trim_end_matches(']').to_string();
        } else if let Some(url) = line.strip_prefix("url = ") {
            urls.insert(section.clone(), url.trim_matches('"').to_string());
        } else if line.starts_with("[skills.llm-route]") {
            break;
        }
    }
    // Keep reading, as a terminal would: the simulator's output must not
    // hit a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));
    let comfy = &urls["comfyui"];
    let result = std::panic::catch_unwind(|| {
        assert_eq!(http_status(comfy, "/system_stats"), Some(503));
        assert_eq!(http_status(comfy, "/system_stats"), Some(503));
        assert_eq!(http_status(comfy, "/system_stats"), Some(200));
        assert_eq!(http_status(&urls["tts"], "/v1/models"), None, "tts:down closes the port");
        assert_eq!(http_status(&urls["ollama"], "/api/tags"), Some(200), "other services unaffected");
    });
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    result.unwrap();
    assert!(stderr.contains("Faults armed: comfyui:fail=2x503, tts:down"), "{stderr}");
    assert!(stderr.contains("/c41-sim/faults"), "{stderr}");
}

/// The per-request fault header, attached by the host to every call a skill
/// makes through a service (`headers` in the config): the simulated TTS
/// fails exactly those calls, in its own error shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_header_breaks_a_skills_requests_to_the_simulator() {
    let tts = c41_sim::services::tts::TtsSim::default();
    let addr = tts.start("127.0.0.1:0").await.unwrap();
    let config = |header: &str| {
        format!(
            "output-dir = \"{{out}}\"\n[services.tts]\nurl = \"http://{addr}\"\n{header}\n[skills.tts]\ngrants = [\"tts\"]\n"
        )
    };
    let broken = harness(&config("headers = { c41-sim-fault = \"fail=503\" }"), &[]).await;
    let (r, _) = broken.run("tts", serde_json::json!({"text": "hello"})).await;
    let (service, status, message) = backend_error(r);
    assert_eq!((service.as_str(), status), ("tts", Some(503)), "{message}");
    assert!(broken.output_files().is_empty());

    let fine = harness(&config(""), &[]).await;
    let (r, _) = fine.run("tts", serde_json::json!({"text": "hello"})).await;
    assert_eq!(r.expect("without the header the same call works").artifacts.len(), 1);
}

/// `c41 check` tells an author what stops users from loading a component:
/// a taken name fails, denied imports warn, a file that is no component
/// fails; a clean one is ready. Exit 0 only when nothing failed.
#[test]
fn check_reports_what_an_author_must_fix() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "output-dir = \"{out}\"\n");
    let check = |file: &std::path::Path| {
        let out = c41(&cfg).arg("check").arg(file).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, text) = check(&guest("impostor"));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.lines().any(|l| l.starts_with("FAIL  name") && l.contains("`llm-route` is a built-in")), "{text}");
    assert!(text.lines().any(|l| l.starts_with("ok    describe") && l.contains("6.6.6")), "{text}");

    let (code, text) = check(&guest("escape"));
    assert_eq!(code, Some(0), "{text}");
    assert!(text.lines().any(|l| l.starts_with("warn  imports") && l.contains("wasi:sockets/tcp")), "{text}");
    assert!(text.contains("ready: `c41 --component") && text.contains("run test-escape"), "{text}");

    let (code, text) = check(&guest("hello-http"));
    assert_eq!(code, Some(0), "the built-in's own bytes: {text}");
    assert!(text.contains("this is the built-in skill itself"), "{text}");
    let current = concat!("c41:skill@", env!("C41_WIT_VERSION"));
    assert!(text.lines().any(|l| l.starts_with("ok    wit") && l.contains(current)), "{text}");

    let bogus = dir.path().join("notes.wasm");
    std::fs::write(&bogus, b"not wasm at all").unwrap();
    let (code, text) = check(&bogus);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.starts_with("FAIL  component") && text.contains("not a component"), "{text}");
}

/// An author's path from an empty folder outside the repository: `c41 new`
/// writes a crate whose own test passes, which builds to a component that
/// `c41 check` passes and `c41 run` runs with the service the config
/// grants it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_skill_builds_tests_checks_and_runs_from_an_empty_folder() {
    let (addr, seen) = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "output-dir = \"{out}\"\n");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map(std::path::PathBuf::from).unwrap_or_else(|| root.join("target"));
    let authors = target.join("authors");
    let cargo = |at: &std::path::Path| {
        let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        c.current_dir(at).env_remove("RUSTFLAGS").env_remove("CARGO_ENCODED_RUSTFLAGS");
        c.env("CARGO_TARGET_DIR", &authors);
        c
    };

    // The kit as a crate of its own, as `cargo package` makes it: what an
    // author downloads. Unpacked outside the repository, it has to build
    // with the WIT it carries.
    let packaged = cargo(root).args(["package", "-p", "c41-kit", "--no-verify", "--allow-dirty"]).output().unwrap();
    assert!(packaged.status.success(), "{}", String::from_utf8_lossy(&packaged.stderr));
    let version = env!("CARGO_PKG_VERSION");
    let tarball = authors.join(format!("package/c41-kit-{version}.crate"));
    let unpacked = Command::new("tar").arg("xzf").arg(&tarball).arg("-C").arg(dir.path()).status().unwrap();
    assert!(unpacked.success());
    let kit = dir.path().join(format!("c41-kit-{version}"));
    assert!(kit.join("wit/skill.wit").is_file(), "the package carries its WIT");

    // `c41 new NAME --service KIND` with the packaged kit: the crate's folder
    // and what the command printed.
    let new_crate = |name: &str, kind: &str| {
        let at = dir.path().join(name);
        let out = c41(&cfg).args(["new", name, "--service", kind, "--dir"]).arg(&at).arg("--kit").arg(&kit).output();
        let out = out.unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        (at, out)
    };
    let (crate_dir, out) = new_crate("weather", "http");
    assert!(String::from_utf8_lossy(&out.stdout).contains("cargo build --target wasm32-wasip2 --release"));
    for f in ["Cargo.toml", "src/lib.rs", "input.schema.json", "tests/sandbox.rs", "README.md", "c41.example.toml"] {
        assert!(crate_dir.join(f).is_file(), "{f}");
    }
    // A second `new` into the same folder is refused, naming it.
    let again = c41(&cfg).args(["new", "weather", "--dir"]).arg(&crate_dir).output().unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    // The workspace's lock file: the same dependency versions, no network.
    std::fs::copy(root.join("Cargo.lock"), crate_dir.join("Cargo.lock")).unwrap();
    // `cargo test` as the author runs it: the unit tests natively, then the
    // component built and run in the real host against a mock service.
    let tested = cargo(&crate_dir).arg("test").output().unwrap();
    let said = String::from_utf8_lossy(&tested.stdout);
    assert!(tested.status.success(), "{said}{}", String::from_utf8_lossy(&tested.stderr));
    for test in ["tests::greets_by_name", "input_schema_is_current", "runs_in_the_sandbox"] {
        assert!(said.contains(&format!("{test} ... ok")), "{test}: {said}");
    }
    // The component the sandbox test built.
    let wasm = authors.join("wasm32-wasip2/release/weather.wasm");
    assert!(wasm.is_file());

    let checked = c41(&cfg).arg("check").arg(&wasm).output().unwrap();
    let said = String::from_utf8_lossy(&checked.stdout);
    assert_eq!(checked.status.code(), Some(0), "{said}");
    assert!(said.contains("`weather` is well-formed and free"), "{said}");

    let cfg = write_config(
        dir.path(),
        &format!(
            "output-dir = \"{{out}}\"\n[services.site]\nurl = \"http://{addr}\"\nkind = \"http\"\n\
             [skills.weather]\ncomponent = \"{}\"\ngrants = [\"site\"]\n",
            wasm.display()
        ),
    );
    let ran = c41(&cfg).args(["run", "weather", "who=studio", "--json"]).output().unwrap();
    let v: Value = serde_json::from_slice(&ran.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}{}", String::from_utf8_lossy(&ran.stdout), String::from_utf8_lossy(&ran.stderr))
    });
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["text"], "Hello, studio!", "{v}");
    assert_eq!(v["data"]["service"]["status"], 200, "{v}");
    assert!(!seen.paths.lock().unwrap().is_empty(), "the skill asked the granted service");

    // A skill of a kind the built-in simulators serve is tested against the
    // simulated studio instead of a mock.
    let (sim_crate, _) = new_crate("local-llm", "ollama");
    assert!(std::fs::read_to_string(sim_crate.join("tests/sandbox.rs")).unwrap().contains("simulated_studio()"));
    std::fs::copy(root.join("Cargo.lock"), sim_crate.join("Cargo.lock")).unwrap();
    let tested = cargo(&sim_crate).arg("test").output().unwrap();
    let said = String::from_utf8_lossy(&tested.stdout);
    assert!(tested.status.success(), "{said}{}", String::from_utf8_lossy(&tested.stderr));
    assert!(said.contains("runs_in_the_sandbox ... ok"), "{said}");
}
