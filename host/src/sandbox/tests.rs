//! The hook on its own, without a component (like Spin's factor tests):
//! what it refuses, what it records, what it adds.

use super::*;
use crate::config::GrantedService;
use http_body_util::BodyExt;

fn service(url: &str) -> GrantedService {
    GrantedService {
        name: "comfyui".into(),
        kind: "comfyui".into(),
        url: url.into(),
        grant: c41_policy::Grant::parse("comfyui", url).unwrap(),
        headers: vec![("authorization".into(), "Bearer t0ken".into())],
    }
}

fn test_slots() -> Slots {
    Slots::new(8, "outgoing connections", "limits.connections")
}

fn request(url: &str) -> http::Request<wasmtime_wasi_http::WasiBody> {
    let body = http_body_util::Empty::<bytes::Bytes>::new().map_err(|never| match never {}).boxed_unsync();
    http::Request::get(url).body(body).unwrap()
}

async fn send(hooks: &mut SandboxHooks, url: &str) -> Result<u16, HttpError> {
    let fut = hooks.send_request(request(url), None, Box::new(async { Ok(()) }));
    let (resp, io) = Box::into_pin(fut).await?;
    tokio::spawn(Box::into_pin(io));
    Ok(resp.status().as_u16())
}

#[tokio::test]
async fn refusals_never_connect_and_are_recorded() {
    let log = DenialLog::default();
    let mut hooks = SandboxHooks::new(
        "test-skill",
        &[service("http://127.0.0.1:8188")],
        log.clone(),
        test_slots(),
        Default::default(),
    );
    for url in [
        "http://127.0.0.1:8189/prompt",
        "http://169.254.169.254/latest/meta-data/",
        "http://2130706433:8189/",
        "http://[::ffff:127.0.0.1]:8189/",
        "http://user@127.0.0.1:8188/",
        "http://127.0.0.1:8188@example.com/",
        "https://127.0.0.1:8188/",
        "http://localhost:8188/",
    ] {
        let r = send(&mut hooks, url).await;
        assert!(matches!(r, Err(HttpError::HttpRequestDenied)), "{url}: {r:?}");
    }
    let denials = log.all();
    assert_eq!(denials.len(), 8);
    assert_eq!(denials[0].url, "http://127.0.0.1:8189");
    assert_eq!(denials[0].closest.as_ref().unwrap().url, "http://127.0.0.1:8188");
    assert_eq!(denials[2].url, "http://127.0.0.1:8189", "decimal spelling is normalised");
    assert_eq!(denials[3].url, "http://127.0.0.1:8189", "IPv4-mapped IPv6 is normalised");
}

#[tokio::test]
async fn allowed_requests_reach_the_pinned_address_with_the_service_headers() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = tokio::io::AsyncReadExt::read(&mut sock, &mut buf).await.unwrap();
        let head = String::from_utf8_lossy(&buf[..n]).to_string();
        tokio::io::AsyncWriteExt::write_all(&mut sock, b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
            .await
            .unwrap();
        head
    });
    let log = DenialLog::default();
    let mut hooks = SandboxHooks::new(
        "test-skill",
        &[service(&format!("http://127.0.0.1:{port}"))],
        log.clone(),
        test_slots(),
        Default::default(),
    );
    let status = send(&mut hooks, &format!("http://0x7f000001:{port}/system_stats")).await.expect("allowed");
    assert_eq!(status, 204);
    let head = server.await.unwrap().to_lowercase();
    assert!(head.starts_with("get /system_stats http/1.1"), "origin-form request line: {head}");
    assert!(head.contains("authorization: bearer t0ken"), "service header added by the host: {head}");
    assert!(log.all().is_empty());
}
