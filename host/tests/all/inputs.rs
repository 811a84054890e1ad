//! Which files a skill may be given: the output directory and the config's
//! `inputs.allow`, never the MCP server's working directory (its client
//! chooses it).

use crate::mcp::Session;
use serde_json::{Value, json};

fn tool_error(r: &Value) -> (&str, &Value) {
    assert_eq!(r["result"]["isError"], true, "{r}");
    (r["result"]["content"][0]["text"].as_str().unwrap(), &r["result"]["structuredContent"]["error"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_reads_inputs_only_from_allowed_directories_not_its_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let allowed = dir.path().join("clips");
    std::fs::create_dir_all(&allowed).unwrap();
    let clip = allowed.join("clip.mp4");
    std::fs::write(&clip, b"not really a video").unwrap();
    let cfg = dir.path().join("c41.toml");
    std::fs::write(
        &cfg,
        format!(
            "output-dir = {:?}\n[inputs]\nallow = [{:?}]\n",
            dir.path().join("out").display().to_string(),
            allowed.display().to_string()
        ),
    )
    .unwrap();

    tokio::task::spawn_blocking(move || {
        // Started from `/`, as a client may do.
        let mut s = Session::start_in(&cfg, std::path::Path::new("/"));
        s.call(
            1,
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}}),
        );
        s.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        let call = |s: &mut Session, id: u64, video: &str| {
            s.call(id, "tools/call", json!({"name": "audio-gen", "arguments": {"prompt": "rain", "video": video}})).0
        };

        let r = call(&mut s, 2, "/etc/passwd");
        let (text, error) = tool_error(&r);
        assert_eq!(error["kind"], "invalid-input", "{r}");
        assert_eq!(error["field"], "video", "{r}");
        assert!(text.contains("`video`") && text.contains("`inputs.allow`"), "{text}");

        // A relative path does not resolve against the server's cwd.
        let r = call(&mut s, 3, "etc/passwd");
        let (text, error) = tool_error(&r);
        assert_eq!(error["field"], "video", "{r}");
        assert!(text.contains("relative path") && text.contains("`inputs.allow`"), "{text}");

        // A file in `inputs.allow` passes (the call then fails further on:
        // no MMAudio service is granted).
        let r = call(&mut s, 4, &clip.display().to_string());
        let (_, error) = tool_error(&r);
        assert_ne!(error["kind"], "invalid-input", "{r}");
    })
    .await
    .unwrap();
}
