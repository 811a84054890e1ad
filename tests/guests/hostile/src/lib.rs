//! Test guest: written against the raw WIT and wasi:http (not the kit's
//! helpers) to exhaust what the host holds for it, so tests can prove each
//! per-invocation cap refuses with a clear `limit` error and the host keeps
//! serving. `mode` picks the attack; `n` how many times; `url` where to.

use c41_kit::bindings::c41::skill::{artifacts, inputs};
use c41_kit::{Description, Invocation, Outcome, Skill, SkillError, json};
use wasip2::http::{outgoing_handler, types as http};

struct Hostile;

fn fail(what: &str, done: u64, why: impl std::fmt::Debug) -> SkillError {
    SkillError::internal(format!("{what} failed after {done}: {why:?}"))
}

impl Skill for Hostile {
    fn describe() -> Description {
        Description {
            name: "test-hostile".into(),
            version: "0.0.0".into(),
            summary: "Test guest that exhausts host-side resources on purpose.".into(),
            input_schema: r#"{"type":"object","properties":{
                "mode":{"type":"string","enum":["fields","handles","files","writers","connections","outputs","trap-after-deny","own-denied","hold-partial","open-later","read","chunks","trap-mid-write","input-fields","copy","streams","ok"]},
                "n":{"type":"integer","minimum":0},
                "url":{"type":"string"},
                "file":{"type":"string","format":"c41-file"}},"required":["mode"]}"#
                .into(),
            output: "data: {done}".into(),
            services: vec!["http".into()],
        }
    }

    async fn invoke(cx: Invocation) -> Result<Outcome, SkillError> {
        let n = cx.u64("n").unwrap_or(1);
        let mut done = 0u64;
        match cx.str("mode") {
            Some("fields") => {
                // Header fields live in the host: 120 KiB each, all kept.
                let mut kept = Vec::new();
                for _ in 0..n {
                    let f = http::Fields::new();
                    f.append("x-pad", &vec![b'a'; 120 * 1024]).map_err(|e| fail("fields.append", done, e))?;
                    kept.push(f);
                    done += 1;
                }
                std::hint::black_box(&kept);
            }
            Some("handles") => {
                // Empty fields: no bytes, just handles in the host's table.
                let kept: Vec<http::Fields> = (0..n).map(|_| http::Fields::new()).collect();
                done = kept.len() as u64;
            }
            Some("files") => {
                let mut kept = Vec::new();
                for _ in 0..n {
                    kept.push(inputs::open("file").map_err(|e| fail("inputs.open", done, e))?);
                    done += 1;
                }
            }
            Some("streams") => {
                // `input-file.stream` (0.1.2) again and again on one file,
                // each stream made to read (which fills a host buffer).
                let file = inputs::open("file").map_err(|e| fail("inputs.open", done, e))?;
                let mut kept = Vec::new();
                for _ in 0..n {
                    let stream = file.stream().map_err(|e| fail("input-file.stream", done, e))?;
                    stream.subscribe().block();
                    kept.push(stream);
                    done += 1;
                }
            }
            Some("writers") => {
                let mut kept = Vec::new();
                for i in 0..n {
                    kept.push(
                        artifacts::create(&format!("w{i}.bin"), "").map_err(|e| fail("artifacts.create", done, e))?,
                    );
                    done += 1;
                }
            }
            Some("outputs") => {
                let mut stored = Vec::new();
                for i in 0..n {
                    let w = artifacts::create(&format!("part{i}.bin"), "").map_err(|e| fail("create", done, e))?;
                    w.write(&vec![7u8; 1 << 20]).map_err(|e| fail("artifact write", done, e))?;
                    stored.push(w.finish().map_err(|e| fail("finish", done, e))?);
                    done += 1;
                }
                return Ok(Outcome { text: format!("stored {done}"), artifacts: stored, data: json!({"done": done}) });
            }
            Some("connections") => {
                // Requests sent and never read: each holds a connection.
                let url = cx.required_str("url")?;
                let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
                let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
                let mut kept = Vec::new();
                for _ in 0..n {
                    let req = http::OutgoingRequest::new(http::Fields::new());
                    let _ =
                        req.set_scheme(Some(&if scheme == "https" { http::Scheme::Https } else { http::Scheme::Http }));
                    let _ = req.set_authority(Some(authority));
                    let _ = req.set_path_with_query(Some(&format!("/{path}")));
                    let pending = outgoing_handler::handle(req, None).map_err(|e| fail("handle", done, e))?;
                    // The server answers the head and never ends the body:
                    // each response kept holds its connection open.
                    pending.subscribe().block();
                    match pending.get() {
                        Some(Ok(Ok(response))) => kept.push(response),
                        other => return Err(fail("request", done, other)),
                    }
                    done += 1;
                }
            }
            Some("chunks") | Some("trap-mid-write") => {
                // One file from `n` chunks of 1 byte to 100 KiB; byte i of
                // the file is `i % 251`. `trap-mid-write` panics before finish.
                let w = artifacts::create("chunks.bin", "").map_err(|e| fail("create", done, e))?;
                let mut at = 0u64;
                for i in 0..n {
                    let len = 1 + (i * 7919) % (100 * 1024);
                    let chunk: Vec<u8> = (at..at + len).map(|b| (b % 251) as u8).collect();
                    w.write(&chunk).map_err(|e| fail("artifact write", done, e))?;
                    at += len;
                    done += 1;
                }
                if cx.str("mode") == Some("trap-mid-write") {
                    panic!("boom: the skill panicked with {at} bytes written");
                }
                let stored = w.finish().map_err(|e| fail("finish", done, e))?;
                return Ok(Outcome {
                    text: format!("stored {at}"),
                    artifacts: vec![stored],
                    data: json!({"bytes": at}),
                });
            }
            Some("copy") => {
                // `artifact-writer.copy-from` (0.1.2): GET `url` and hand its
                // body to the host in steps of `n` bytes (all at once when
                // 0), writing nothing itself.
                let url = cx.required_str("url")?;
                let (_, rest) = url.split_once("://").unwrap_or(("http", url));
                let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
                let req = http::OutgoingRequest::new(http::Fields::new());
                let _ = req.set_scheme(Some(&http::Scheme::Http));
                let _ = req.set_authority(Some(authority));
                let _ = req.set_path_with_query(Some(&format!("/{path}")));
                let pending = outgoing_handler::handle(req, None).map_err(|e| fail("handle", done, e))?;
                pending.subscribe().block();
                let response = match pending.get() {
                    Some(Ok(Ok(response))) => response,
                    other => return Err(fail("request", done, other)),
                };
                let body = response.consume().map_err(|e| fail("consume", done, e))?;
                let stream = body.stream().map_err(|e| fail("stream", done, e))?;
                let w = artifacts::create("copied.bin", "").map_err(|e| fail("create", done, e))?;
                let step = if n == 0 { u64::MAX } else { n };
                loop {
                    match w.copy_from(&stream, step).map_err(|e| fail("copy-from", done, e))? {
                        0 => break,
                        moved => done += moved,
                    }
                }
                drop(stream);
                let stored = w.finish().map_err(|e| fail("finish", done, e))?;
                return Ok(Outcome {
                    text: format!("copied {done}"),
                    artifacts: vec![stored],
                    data: json!({"bytes": done}),
                });
            }
            Some("input-fields") => {
                // `inputs.fields`, the first addition of c41:skill@0.1.1.
                return Ok(Outcome {
                    text: String::new(),
                    artifacts: vec![],
                    data: json!({"fields": inputs::fields()}),
                });
            }
            Some("read") => {
                // Read the input through to its end.
                let file = inputs::open("file").map_err(|e| fail("inputs.open", done, e))?;
                loop {
                    let chunk = file.read(1 << 20).map_err(|e| fail("read", done, e))?;
                    if chunk.is_empty() {
                        break;
                    }
                    done += chunk.len() as u64;
                }
            }
            Some("open-later") => {
                // Ask `url` first (the test swaps the file meanwhile), then
                // open the input and read from it.
                let url = cx.required_str("url")?;
                let req = c41_kit::wstd::http::Request::get(url)
                    .body(c41_kit::wstd::http::Body::empty())
                    .map_err(|e| SkillError::invalid("url", e.to_string()))?;
                c41_kit::wstd::http::Client::new().send(req).await.map_err(|e| fail("request", done, e))?;
                let file = inputs::open("file").map_err(|e| fail("inputs.open", done, e))?;
                let bytes = file.read(64).map_err(|e| fail("read", done, e))?;
                return Ok(Outcome {
                    text: String::from_utf8_lossy(&bytes).into_owned(),
                    artifacts: vec![],
                    data: json!({"done": 1}),
                });
            }
            Some("hold-partial") => {
                // An artifact half written, then a long wait: the host is
                // stopped (SIGTERM) while the file is unfinished.
                let w = artifacts::create("held.bin", "").map_err(|e| fail("create", done, e))?;
                w.write(&[1u8; 1024]).map_err(|e| fail("artifact write", done, e))?;
                wasip2::clocks::monotonic_clock::subscribe_duration(600_000_000_000).block();
                drop(w);
            }
            Some("trap-after-deny") => {
                let url = cx.required_str("url")?;
                let req = c41_kit::wstd::http::Request::get(url)
                    .body(c41_kit::wstd::http::Body::empty())
                    .map_err(|e| SkillError::invalid("url", e.to_string()))?;
                let _ = c41_kit::wstd::http::Client::new().send(req).await;
                panic!("boom: the skill panicked after the refusal");
            }
            Some("own-denied") => {
                return Err(SkillError::Denied {
                    target: "job 42".into(),
                    reason: "the service said the job belongs to someone else".into(),
                });
            }
            _ => {}
        }
        Ok(Outcome { text: format!("done {done}"), artifacts: vec![], data: json!({"done": done}) })
    }
}

c41_kit::skill!(Hostile);
