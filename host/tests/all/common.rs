//! Shared helpers: a loopback HTTP server that records what it saw, and a
//! host built from a config string by `c41-test`, the authors' harness.

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;
use c41::app::RunError;
use c41::events::{Event, Recorder};
use c41::runtime::{InvokeError, Invoked};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The path of a test guest component built by build.rs.
pub fn guest(name: &str) -> PathBuf {
    let (_, path) = c41::guests::TEST_GUESTS.iter().find(|(n, _)| *n == name).expect("test guest exists");
    PathBuf::from(path)
}

/// A shared compiled-component cache, so tests compile each guest once.
pub fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("c41-component-cache")
}

/// What the test server saw.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// Request paths, in order.
    pub paths: Arc<Mutex<Vec<String>>>,
    /// The Authorization header of each request.
    pub auth: Arc<Mutex<Vec<Option<String>>>>,
}

/// The body `/big` serves: 3 MiB of varied bytes.
pub fn big_body() -> Vec<u8> {
    (0..3 * 1024 * 1024u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect()
}

/// Serve `/`, `/hello.txt` and `/big` on 127.0.0.1 at a free port.
pub async fn serve() -> (SocketAddr, Seen) {
    async fn record(State(seen): State<Seen>, uri: axum::http::Uri, headers: HeaderMap) {
        seen.paths.lock().unwrap().push(uri.path().to_string());
        seen.auth.lock().unwrap().push(headers.get("authorization").map(|v| v.to_str().unwrap_or("").to_string()));
    }
    let seen = Seen::default();
    let app = Router::new()
        .route(
            "/hello.txt",
            get(|s: State<Seen>, u: axum::http::Uri, h: HeaderMap| async move {
                record(s, u, h).await;
                ([("content-type", "text/plain")], "hello from the forge\n")
            }),
        )
        .route(
            "/big",
            get(|s: State<Seen>, u: axum::http::Uri, h: HeaderMap| async move {
                record(s, u, h).await;
                ([("content-type", "application/octet-stream")], big_body())
            }),
        )
        .fallback(|s: State<Seen>, u: axum::http::Uri, h: HeaderMap| async move {
            record(s, u, h).await;
            "index"
        })
        .with_state(seen.clone());
    (serve_app(app).await, seen)
}

/// Serves `app` on a free loopback port for the rest of the test.
pub async fn serve_app(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A config file `c41.toml` in `dir` (`{out}` is `dir/out`): a real file,
/// so the grants lock can sit beside it.
pub fn write_config(dir: &std::path::Path, text: &str) -> PathBuf {
    let p = dir.join("c41.toml");
    std::fs::write(&p, text.replace("{out}", &dir.join("out").display().to_string())).unwrap();
    p
}

/// A port on 127.0.0.1 that nothing listens on.
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A test host: the harness skill authors use ([`c41_test::Harness`]), with
/// `run` giving the parts the tests here were written against.
pub struct Harness(pub c41_test::Harness);

impl std::ops::Deref for Harness {
    type Target = c41_test::Harness;
    fn deref(&self) -> &c41_test::Harness {
        &self.0
    }
}

impl std::ops::DerefMut for Harness {
    fn deref_mut(&mut self) -> &mut c41_test::Harness {
        &mut self.0
    }
}

/// Build a host from config text (`{out}` is replaced by the output dir)
/// with the given test guests loaded and granted as by `c41 grant`.
pub async fn harness(config_text: &str, guests: &[&str]) -> Harness {
    let mut b = c41_test::Harness::builder().config(config_text).cache_dir(cache_dir());
    for g in guests {
        b = b.component(guest(g));
    }
    Harness(b.start().await)
}

impl Harness {
    /// Invoke `skill` with `input`, recording events.
    pub async fn run(
        &self,
        skill: &str,
        input: Value,
    ) -> (Result<c41::runtime::Invoked, c41::app::RunError>, Arc<Recorder>) {
        self.0.run(skill, input).await.into_parts()
    }
}

/// The backend error a run ended with: (service, status, message).
pub fn backend_error(r: Result<Invoked, RunError>) -> (String, Option<u16>, String) {
    match r {
        Err(RunError::Invoke(InvokeError::Backend { service, status, message })) => (service, status, message),
        other => panic!("expected a backend error, got {other:?}"),
    }
}

/// `(stage, fraction, message)` of each progress report, in order.
pub fn progress_reports(events: &[Event]) -> Vec<(String, Option<f32>, Option<String>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Progress { stage, fraction, message, .. } => Some((stage.clone(), *fraction, message.clone())),
            _ => None,
        })
        .collect()
}

// ---- reading what the skills store (the host has no media decoders) ---------

/// An MP4 read box by box, as ffprobe would describe it: the top-level box
/// types and every track of `moov`. Panics on sizes that do not add up.
#[derive(Debug)]
pub struct Mp4 {
    /// Top-level box types, in order.
    pub top: Vec<String>,
    /// The tracks, in file order.
    pub tracks: Vec<Track>,
}

/// One track of an [`Mp4`].
#[derive(Debug)]
pub struct Track {
    /// Handler: `vide`, `soun`.
    pub handler: String,
    /// Sample entry type: `avc1`, `mp4a`.
    pub codec: String,
    /// `tkhd`'s display size.
    pub size: (u32, u32),
    /// From the sample entry: (width, height) for video, (channels, sample
    /// rate) for audio.
    pub entry: (u32, u32),
    /// Samples (`stsz`): frames for video, AAC frames for audio.
    pub samples: u32,
    /// `mdhd`'s timescale.
    pub timescale: u32,
    /// `mdhd`'s duration in seconds.
    pub seconds: f64,
}

/// Child boxes of an ISO-BMFF box body: (type, body).
pub fn boxes(mut b: &[u8]) -> Vec<(String, &[u8])> {
    let mut out = Vec::new();
    while b.len() >= 8 {
        let kind = String::from_utf8_lossy(&b[4..8]).into_owned();
        let (size, head) = match be32(b, 0) {
            1 => (u64::from_be_bytes(b[8..16].try_into().unwrap()) as usize, 16),
            0 => (b.len(), 8),
            s => (s as usize, 8),
        };
        assert!(size >= head && size <= b.len(), "box {kind} of {size} bytes in {} bytes", b.len());
        out.push((kind, &b[head..size]));
        b = &b[size..];
    }
    assert!(b.is_empty(), "no trailing bytes after the last box");
    out
}

/// The body of the box at `path` (`["mdia", "hdlr"]`) under a box body.
pub fn find_box<'a>(b: &'a [u8], path: &[&str]) -> Option<&'a [u8]> {
    let (first, rest) = path.split_first()?;
    let body = boxes(b).into_iter().find(|(k, _)| k == first)?.1;
    if rest.is_empty() { Some(body) } else { find_box(body, rest) }
}

fn need<'a>(b: &'a [u8], path: &[&str]) -> &'a [u8] {
    find_box(b, path).unwrap_or_else(|| panic!("no {} box", path.join("/")))
}

/// A big-endian u32 at `at`.
pub fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

fn be16(b: &[u8], at: usize) -> u32 {
    u32::from(u16::from_be_bytes([b[at], b[at + 1]]))
}

impl Mp4 {
    /// Reads a whole MP4: it starts with `ftyp` and has media data and a `moov`.
    pub fn read(file: &[u8]) -> Mp4 {
        let top: Vec<String> = boxes(file).into_iter().map(|(k, _)| k).collect();
        assert_eq!(top.first().map(String::as_str), Some("ftyp"), "an MP4 starts with ftyp");
        assert!(find_box(file, &["mdat"]).is_some_and(|m| !m.is_empty()), "an MP4 with media data: {top:?}");
        let moov = need(file, &["moov"]);
        let tracks = boxes(moov).into_iter().filter(|(k, _)| k == "trak").map(|(_, trak)| Track::read(trak)).collect();
        Mp4 { top, tracks }
    }

    /// The first track with `handler` (`vide`, `soun`).
    pub fn track(&self, handler: &str) -> &Track {
        self.tracks
            .iter()
            .find(|t| t.handler == handler)
            .unwrap_or_else(|| panic!("no {handler} track in {:?}", self.tracks))
    }
}

impl Track {
    fn read(trak: &[u8]) -> Track {
        let tkhd = need(trak, &["tkhd"]);
        let n = tkhd.len();
        let mdhd = need(trak, &["mdia", "mdhd"]);
        let (timescale, duration) = match mdhd[0] {
            1 => (be32(mdhd, 20), u64::from_be_bytes(mdhd[24..32].try_into().unwrap())),
            _ => (be32(mdhd, 12), u64::from(be32(mdhd, 16))),
        };
        let handler = String::from_utf8_lossy(&need(trak, &["mdia", "hdlr"])[8..12]).into_owned();
        let stsd = need(trak, &["mdia", "minf", "stbl", "stsd"]);
        let (codec, entry) = boxes(&stsd[8..]).into_iter().next().expect("a sample entry");
        let entry = match handler.as_str() {
            "vide" => (be16(entry, 24), be16(entry, 26)),
            _ => (be16(entry, 16), be32(entry, 24) >> 16),
        };
        Track {
            handler,
            codec,
            size: (be32(tkhd, n - 8) >> 16, be32(tkhd, n - 4) >> 16),
            entry,
            samples: be32(need(trak, &["mdia", "minf", "stbl", "stsz"]), 8),
            timescale,
            seconds: duration as f64 / f64::from(timescale),
        }
    }
}

/// What a FLAC's STREAMINFO says: (sample rate, channels, bits, samples).
/// Checks that STREAMINFO comes first and that an audio frame follows the
/// metadata blocks.
pub fn flac_streaminfo(b: &[u8]) -> (u32, u32, u32, u64) {
    assert_eq!(&b[0..4], b"fLaC", "a FLAC stream");
    assert_eq!(b[4] & 0x7f, 0, "STREAMINFO comes first");
    assert_eq!(u32::from_be_bytes([0, b[5], b[6], b[7]]), 34, "STREAMINFO is 34 bytes");
    let packed = u64::from_be_bytes(b[18..26].try_into().unwrap());
    let rate = (packed >> 44) as u32;
    let channels = ((packed >> 41) & 7) as u32 + 1;
    let bits = ((packed >> 36) & 31) as u32 + 1;
    let samples = packed & ((1 << 36) - 1);
    // Skip the metadata blocks: the first audio frame starts with its sync code.
    let mut at = 4;
    loop {
        let last = b[at] & 0x80 != 0;
        let len = u32::from_be_bytes([0, b[at + 1], b[at + 2], b[at + 3]]) as usize;
        at += 4 + len;
        if last {
            break;
        }
    }
    assert_eq!((b[at], b[at + 1] & 0xfe), (0xff, 0xf8), "a FLAC frame follows the metadata");
    (rate, channels, bits, samples)
}
