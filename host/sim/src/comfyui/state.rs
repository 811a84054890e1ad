//! The server's memory: queue, history, files, execution cache, sockets.
//!
//! One std mutex guards it and is never held across an await, so handlers
//! and the executor see consistent snapshots without async locking.

use super::faults::Faults;
use super::{ComfyConfig, FileRef};
use bytes::Bytes;
use indexmap::IndexMap;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{Notify, mpsc};

/// A frame for one websocket.
#[derive(Debug, Clone)]
pub(crate) enum WsOut {
    Text(String),
    Binary(Vec<u8>),
}

pub(crate) struct Client {
    pub tx: mpsc::UnboundedSender<WsOut>,
    pub conn: u64,
}

/// A queued prompt, as `/queue` shows it: [number, id, prompt, extra, outputs].
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub number: i64,
    pub id: String,
    pub prompt: IndexMap<String, Value>,
    pub extra: Map<String, Value>,
    pub outputs: Vec<String>,
    pub client_id: Option<String>,
    pub create_time: i64,
}

impl Job {
    pub(crate) fn queue_item(&self) -> Value {
        json!([self.number, self.id, self.prompt, self.extra, self.outputs])
    }
}

pub(crate) struct Running {
    pub job: Arc<Job>,
    pub started: i64,
}

/// A node's result kept for the next prompt, keyed by input signature.
#[derive(Clone)]
pub(crate) struct Cached {
    pub values: Vec<super::nodes::Val>,
    pub ui: Option<Value>,
}

#[derive(Default)]
pub(crate) struct State {
    pub next_number: i64,
    pub pending: Vec<Arc<Job>>,
    pub running: Option<Running>,
    pub history: IndexMap<String, Value>,
    /// Extra facts the jobs API needs about finished jobs: (start, end) ms.
    pub timings: HashMap<String, (i64, i64)>,
    /// Jobs removed from the queue before they ran.
    pub cancelled: IndexMap<String, Arc<Job>>,
    pub files: BTreeMap<FileRef, Bytes>,
    pub cache: HashMap<u64, Cached>,
    /// Bumped by a restart so an executing job knows it no longer exists.
    pub epoch: u64,
}

impl State {
    pub(crate) fn queue_remaining(&self) -> usize {
        self.pending.len() + usize::from(self.running.is_some())
    }

    pub(crate) fn push_history(&mut self, id: String, entry: Value, cap: usize) {
        self.history.insert(id, entry);
        while self.history.len() > cap.max(1) {
            self.history.shift_remove_index(0);
        }
    }

    /// Names of input files of one kind, "sub/name" for files in subfolders.
    /// The files a loader lists: those directly in the input directory
    /// (`os.listdir` of it, files only). Files in subfolders are not listed,
    /// though the loaders accept them by `sub/name` (their validation checks
    /// that the file exists).
    pub(crate) fn input_names(&self, kind: super::objinfo::MediaKind) -> Vec<String> {
        let mut v: Vec<String> = self
            .files
            .keys()
            .filter(|f| f.kind == "input" && f.subfolder.is_empty() && kind.matches(&f.filename))
            .map(|f| f.filename.clone())
            .collect();
        v.sort();
        v
    }

    /// Every subfolder of the input directory, parents included, sorted.
    pub(crate) fn input_folders(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for f in self.files.keys().filter(|f| f.kind == "input" && !f.subfolder.is_empty()) {
            let mut path = String::new();
            for part in f.subfolder.split('/') {
                if !path.is_empty() {
                    path.push('/');
                }
                path.push_str(part);
                v.push(path.clone());
            }
        }
        v.sort();
        v.dedup();
        v
    }

    /// The files directly in input subfolder `folder`: (name, bytes), sorted.
    pub(crate) fn input_folder_files(&self, folder: &str) -> Vec<(String, Bytes)> {
        let mut v: Vec<(String, Bytes)> = self
            .files
            .iter()
            .filter(|(f, _)| f.kind == "input" && f.subfolder == folder)
            .map(|(f, b)| (f.filename.clone(), b.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    pub(crate) fn input_file(&self, name: &str) -> Option<Bytes> {
        let (sub, file) = name.rsplit_once('/').unwrap_or(("", name));
        let key = FileRef { kind: "input".into(), subfolder: sub.into(), filename: file.into() };
        self.files.get(&key).cloned()
    }
}

pub(crate) struct Shared {
    pub cfg: ComfyConfig,
    pub state: Mutex<State>,
    pub faults: Faults,
    pub clients: Mutex<HashMap<String, Client>>,
    /// Sockets replaced by a newer one with the same `clientId`: still open,
    /// never sent to again (keyed by connection number), as in ComfyUI,
    /// which forgets the old socket without closing it.
    pub orphans: Mutex<HashMap<u64, Client>>,
    pub wake: Arc<Notify>,
    pub worker_started: AtomicBool,
    pub conn_ids: AtomicU64,
    /// The server-wide interrupt flag, as in ComfyUI's
    /// `comfy.model_management.interrupt_processing`: `/interrupt` sets it
    /// (for the running job only when it names one), a job's start clears
    /// it, and the first check that sees it (the start of a node, a sampler
    /// step) clears it and stops the job. An interrupt that arrives while
    /// the last node runs is therefore too late: the job ends in success.
    pub interrupt: AtomicBool,
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl Shared {
    pub(crate) fn new(cfg: ComfyConfig) -> Self {
        Shared {
            cfg,
            state: Mutex::new(State::default()),
            faults: Faults::default(),
            clients: Mutex::new(HashMap::new()),
            orphans: Mutex::new(HashMap::new()),
            wake: Arc::new(Notify::new()),
            worker_started: AtomicBool::new(false),
            conn_ids: AtomicU64::new(1),
            interrupt: AtomicBool::new(false),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn clients(&self) -> MutexGuard<'_, HashMap<String, Client>> {
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Choices for a file-list input, from the install and the uploads.
    pub(crate) fn choices(&self, source: super::objinfo::Source) -> Vec<String> {
        use super::objinfo::Source;
        let folder = |f: &str| self.cfg.models.get(f).cloned().unwrap_or_default();
        match source {
            Source::Folder("loras") => self.loras(),
            Source::Folder(f) => {
                let mut v = folder(f);
                v.sort();
                v
            }
            Source::InputFolders => self.lock().input_folders(),
            Source::LorasOrNone => {
                let mut v = self.loras();
                v.push("[None]".into());
                v
            }
            Source::Vae => {
                let mut v = folder("vae");
                v.sort();
                v.push("pixel_space".into());
                v
            }
            Source::Input(kind) => self.lock().input_names(kind),
        }
    }

    /// The LoRAs loaders can name: `models/loras`, and what `SaveLoRANode`
    /// wrote under `output/loras` when that is a LoRA path too.
    pub(crate) fn loras(&self) -> Vec<String> {
        let mut v = self.cfg.models.get("loras").cloned().unwrap_or_default();
        if self.cfg.trained_loras_visible {
            let st = self.lock();
            v.extend(
                st.files.keys().filter(|f| f.kind == "output" && f.filename.ends_with(".safetensors")).filter_map(
                    |f| {
                        let rest = f.subfolder.strip_prefix("loras")?;
                        let rest = rest.trim_start_matches('/');
                        Some(if rest.is_empty() { f.filename.clone() } else { format!("{rest}/{}", f.filename) })
                    },
                ),
            );
        }
        v.sort();
        v.dedup();
        v
    }

    /// The node classes this server has: the catalogue less
    /// [`ComfyConfig::without_nodes`](super::ComfyConfig::without_nodes).
    pub(crate) fn catalogue(&self) -> Map<String, Value> {
        let mut m = super::objinfo::catalogue(|s| self.choices(s));
        m.retain(|class, _| !self.cfg.without_nodes.iter().any(|w| w == class));
        m
    }

    /// One class's entry, unless this server lacks it.
    pub(crate) fn class(&self, name: &str) -> Option<Value> {
        if self.cfg.without_nodes.iter().any(|w| w == name) {
            return None;
        }
        super::objinfo::class(name, |s| self.choices(s))
    }

    /// Sends an event to one client (`Some`) or to every socket (`None`).
    pub(crate) fn send(&self, sid: Option<&str>, event: &str, data: Value) {
        let text = json!({ "type": event, "data": data }).to_string();
        self.send_raw(sid, WsOut::Text(text));
    }

    pub(crate) fn send_raw(&self, sid: Option<&str>, msg: WsOut) {
        let clients = self.clients();
        match sid {
            Some(id) => {
                if let Some(c) = clients.get(id) {
                    let _ = c.tx.send(msg);
                }
            }
            None => {
                for c in clients.values() {
                    let _ = c.tx.send(msg.clone());
                }
            }
        }
    }

    /// Broadcasts the queue size, as the real server does on every queue change.
    pub(crate) fn broadcast_status(&self) {
        let n = self.lock().queue_remaining();
        self.send(None, "status", json!({"status": {"exec_info": {"queue_remaining": n}}}));
    }

    /// A socket connects: it takes `id` over from any socket that had it
    /// (server.py: `self.sockets.pop(sid, None)`, then `self.sockets[sid] = ws`).
    /// The old one stays open but hears nothing more.
    pub(crate) fn register(&self, id: &str, tx: mpsc::UnboundedSender<WsOut>) -> u64 {
        let conn = self.conn_ids.fetch_add(1, Ordering::Relaxed);
        let mut orphans = self.orphans.lock().unwrap_or_else(|e| e.into_inner()); // always before `clients`
        let replaced = self.clients().insert(id.to_string(), Client { tx, conn });
        if let Some(old) = replaced {
            orphans.insert(old.conn, old);
        }
        conn
    }

    /// A socket closed. ComfyUI's handler ends with `self.sockets.pop(sid,
    /// None)` whichever socket holds `sid` by then: a client that opened a
    /// second socket under the same id and then closed the first one has
    /// thereby unregistered the second, which hears nothing from then on.
    pub(crate) fn unregister(&self, id: &str, conn: u64) {
        let mut orphans = self.orphans.lock().unwrap_or_else(|e| e.into_inner());
        orphans.remove(&conn);
        if let Some(newer) = self.clients().remove(id).filter(|c| c.conn != conn) {
            orphans.insert(newer.conn, newer); // open, and deaf from now on
        }
    }

    pub(crate) fn restart(&self) {
        {
            let mut st = self.lock();
            st.epoch += 1;
            st.running = None;
            st.pending.clear();
            st.history.clear();
            st.timings.clear();
            st.cancelled.clear();
            st.cache.clear();
        }
        // Dropping the senders ends every socket task, closing the sockets.
        self.clients().clear();
        self.orphans.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}
