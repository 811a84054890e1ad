//! ComfyUI's wire shapes, as recorded from real servers (see
//! `comfyui.md`). Parsing is lenient on purpose: servers add fields between
//! versions, and a client that fails on an unknown key fails in production.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The body of `POST /prompt`. We always send our own `prompt_id` (newer
/// servers require a lowercase uuid4) so a lost reply never loses the job.
#[derive(Debug, Serialize)]
pub struct PromptRequest<'a> {
    /// The API-format graph.
    pub prompt: &'a Value,
    /// The websocket client that receives the job's events.
    pub client_id: &'a str,
    /// Our id for the job.
    pub prompt_id: &'a str,
}

/// `200` from `POST /prompt`.
#[derive(Debug, Deserialize)]
pub struct PromptAccepted {
    /// The job's id (ours, echoed).
    pub prompt_id: String,
    /// Queue number.
    #[serde(default)]
    pub number: i64,
}

/// One validation error, in `error` or in a node's `errors`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ErrorInfo {
    /// `value_not_in_list`, `required_input_missing`, ...
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Human summary.
    #[serde(default)]
    pub message: String,
    /// The specifics (`vae_name: 'x' not in ['y']`).
    #[serde(default)]
    pub details: String,
    /// `input_name`, `input_config`, `received_value`, ...
    #[serde(default)]
    pub extra_info: Value,
}

/// The errors of one node in a 400 reply.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NodeErrors {
    /// What is wrong with it.
    #[serde(default)]
    pub errors: Vec<ErrorInfo>,
    /// Its class.
    #[serde(default)]
    pub class_type: String,
}

/// `400` from `POST /prompt`.
#[derive(Debug, Default, Deserialize)]
pub struct PromptRejected {
    /// The overall error.
    #[serde(default)]
    pub error: Option<ErrorInfo>,
    /// Per-node errors, by node id.
    #[serde(default)]
    pub node_errors: Map<String, Value>,
}

/// `GET /prompt`.
#[derive(Debug, Default, Deserialize)]
pub struct PromptInfo {
    /// Queue load.
    #[serde(default)]
    pub exec_info: ExecInfo,
}

/// The queue size the server reports.
#[derive(Debug, Default, Deserialize)]
pub struct ExecInfo {
    /// Jobs waiting plus the one running.
    #[serde(default)]
    pub queue_remaining: u64,
}

/// `GET /queue`: items are `[number, prompt_id, prompt, extra, outputs]`.
#[derive(Debug, Default, Deserialize)]
pub struct Queue {
    /// The job running now (0 or 1 on a stock server).
    #[serde(default)]
    pub queue_running: Vec<Value>,
    /// Jobs waiting.
    #[serde(default)]
    pub queue_pending: Vec<Value>,
}

/// Where a job stands according to `/queue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueuePlace {
    /// Running now.
    Running,
    /// Waiting, with this many jobs ahead of it (including the running one).
    Pending {
        /// Jobs ahead.
        ahead: usize,
    },
    /// Not in the queue.
    Absent,
}

fn item_id(item: &Value) -> Option<&str> {
    item.get(1).and_then(Value::as_str)
}

fn item_number(item: &Value) -> f64 {
    item.get(0).and_then(Value::as_f64).unwrap_or(f64::MAX)
}

impl Queue {
    /// Where `id` stands. Pending jobs run in queue-number order.
    pub fn place(&self, id: &str) -> QueuePlace {
        if self.queue_running.iter().any(|i| item_id(i) == Some(id)) {
            return QueuePlace::Running;
        }
        let Some(mine) = self.queue_pending.iter().find(|i| item_id(i) == Some(id)) else {
            return QueuePlace::Absent;
        };
        let n = item_number(mine);
        let before = self.queue_pending.iter().filter(|i| item_number(i) < n).count();
        QueuePlace::Pending { ahead: before + self.queue_running.len() }
    }
}

/// One entry of `/history/{id}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HistoryEntry {
    /// Outputs by node id: `{images|gifs|audio: [file...], animated: [...]}`.
    #[serde(default)]
    pub outputs: Map<String, Value>,
    /// How it ended.
    #[serde(default)]
    pub status: HistoryStatus,
}

/// `status` of a history entry.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HistoryStatus {
    /// `success` or `error` (an interrupted job is `error` too).
    #[serde(default)]
    pub status_str: String,
    /// True only on success.
    #[serde(default)]
    pub completed: bool,
    /// `[[event, data], ...]`: execution_start, execution_error, ...
    #[serde(default)]
    pub messages: Vec<(String, Value)>,
}

impl HistoryStatus {
    /// The data of the first message named `event`.
    pub fn message(&self, event: &str) -> Option<&Value> {
        self.messages.iter().find(|(e, _)| e == event).map(|(_, d)| d)
    }

    /// The `timestamp` (ms) of the first message named `event`.
    pub fn timestamp(&self, event: &str) -> Option<i64> {
        self.message(event).and_then(|d| d.get("timestamp")).and_then(Value::as_i64)
    }
}

/// A file the server produced, as `/view` addresses it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputFile {
    /// File name.
    pub filename: String,
    /// Folder below the kind's root.
    #[serde(default)]
    pub subfolder: String,
    /// `output`, `temp` or `input`.
    #[serde(rename = "type", default = "output_kind")]
    pub kind: String,
}

fn output_kind() -> String {
    "output".into()
}

/// The keys under which nodes report files. Video savers report under
/// `images` (with `animated`), VHS under `gifs`, audio savers under `audio`.
pub const OUTPUT_KEYS: &[&str] = &["images", "gifs", "audio", "video", "videos"];

impl HistoryEntry {
    /// Every file of node `node`, in the order the node reported them.
    pub fn files_of(&self, node: &str) -> Vec<OutputFile> {
        let Some(media) = self.outputs.get(node).and_then(Value::as_object) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for key in OUTPUT_KEYS {
            for item in media.get(*key).and_then(Value::as_array).into_iter().flatten() {
                if let Ok(f) = serde_json::from_value::<OutputFile>(item.clone()) {
                    out.push(f);
                }
            }
        }
        out
    }
}

/// `POST /upload/image`.
#[derive(Debug, Clone, Deserialize)]
pub struct UploadReply {
    /// The stored name: it may differ from the one sent (`ref (1).png`).
    pub name: String,
    /// The folder it went to.
    #[serde(default)]
    pub subfolder: String,
    /// `input`, `temp` or `output`.
    #[serde(rename = "type", default)]
    pub kind: String,
}

impl UploadReply {
    /// The value a loader node (`LoadImage.image`) expects.
    pub fn loader_value(&self) -> String {
        if self.subfolder.is_empty() { self.name.clone() } else { format!("{}/{}", self.subfolder, self.name) }
    }
}

/// `GET /api/jobs/{id}` on newer servers.
#[derive(Debug, Clone, Deserialize)]
pub struct JobInfo {
    /// `pending`, `in_progress`, `completed`, `failed` or `cancelled`.
    #[serde(default)]
    pub status: String,
}

/// One text frame of `/ws`.
#[derive(Debug, Clone, Deserialize)]
pub struct WsEvent {
    /// `status`, `execution_start`, `executing`, `progress`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// The event's payload.
    #[serde(default)]
    pub data: Value,
}

impl WsEvent {
    /// The job the event is about, if it names one.
    pub fn prompt_id(&self) -> Option<&str> {
        self.data.get("prompt_id").and_then(Value::as_str)
    }
}

/// A binary frame: a preview image, if it is one (event type 1, then the
/// image type: 1 JPEG, 2 PNG).
pub fn preview_image(frame: &[u8]) -> Option<(&'static str, &[u8])> {
    if frame.len() < 8 {
        return None;
    }
    let event = u32::from_be_bytes(frame[0..4].try_into().ok()?);
    if event != 1 {
        return None;
    }
    let mime = match u32::from_be_bytes(frame[4..8].try_into().ok()?) {
        1 => "image/jpeg",
        2 => "image/png",
        _ => return None,
    };
    Some((mime, &frame[8..]))
}

/// The MIME type of a produced file, by extension: ComfyUI reports videos
/// and animations under `images`, so the key says nothing.
pub fn mime_for(filename: &str) -> &'static str {
    let ext = filename.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "mp4" | "m4v" => "video/mp4",
        "webm" => "video/webm",
        "mov" => "video/quicktime",
        "mkv" => "video/x-matroska",
        "flac" => "audio/flac",
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "ogg" | "opus" => "audio/ogg",
        "m4a" => "audio/mp4",
        "json" => "application/json",
        "txt" => "text/plain",
        "glb" => "model/gltf-binary",
        _ => "application/octet-stream",
    }
}

/// Percent-encode a query value (everything but RFC 3986 unreserved bytes).
pub fn encode_query(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn queue_place_counts_jobs_ahead() {
        let q: Queue = serde_json::from_value(json!({
            "queue_running": [[0, "a", {}, {}, []]],
            "queue_pending": [[3, "c", {}, {}, []], [2, "b", {}, {}, []]]
        }))
        .unwrap();
        assert_eq!(q.place("a"), QueuePlace::Running);
        assert_eq!(q.place("b"), QueuePlace::Pending { ahead: 1 });
        assert_eq!(q.place("c"), QueuePlace::Pending { ahead: 2 });
        assert_eq!(q.place("z"), QueuePlace::Absent);
    }

    #[test]
    fn previews_and_mimes() {
        let mut f = 1u32.to_be_bytes().to_vec();
        f.extend(2u32.to_be_bytes());
        f.extend(b"png!");
        assert_eq!(preview_image(&f), Some(("image/png", &b"png!"[..])));
        assert_eq!(mime_for("wan_00001_.MP4"), "video/mp4");
        assert_eq!(encode_query("ref (1).png"), "ref%20%281%29.png");
    }
}
