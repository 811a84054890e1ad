//! The executor: one job at a time, FIFO by queue number, emitting the
//! websocket events and history entry a real ComfyUI would, in its order.

use super::graph;
use super::nodes::{self, Args, Val};
use super::objinfo;
use super::state::{Cached, Job, Running, Shared, WsOut, now_ms};
use bytes::Bytes;
use indexmap::IndexMap;
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Why a node stopped early.
#[derive(Debug)]
pub(crate) enum Stop {
    /// `/interrupt` (or a cancel) reached the job at a node's start or a sampler step.
    Interrupted,
    /// The server "restarted": the job no longer exists anywhere.
    Vanished,
    /// The node raised: Python exception type and message.
    Failed { ty: String, msg: String },
}

/// Starts the executor task once per server, holding only a weak reference
/// so a dropped simulator stops it.
pub(crate) fn ensure_worker(shared: &Arc<Shared>) {
    if shared.worker_started.swap(true, Ordering::SeqCst) {
        return;
    }
    let weak: Weak<Shared> = Arc::downgrade(shared);
    let wake = shared.wake.clone();
    tokio::spawn(async move {
        loop {
            let Some(shared) = weak.upgrade() else { break };
            let next = {
                let mut st = shared.lock();
                if st.running.is_some() || st.pending.is_empty() {
                    None
                } else {
                    let i = (0..st.pending.len()).min_by_key(|&i| st.pending[i].number).unwrap_or(0);
                    let job = st.pending.remove(i);
                    st.running = Some(Running { job: job.clone(), started: now_ms() });
                    Some((job, st.epoch))
                }
            };
            match next {
                Some((job, epoch)) => execute(&shared, job, epoch).await,
                None => {
                    drop(shared);
                    let _ = tokio::time::timeout(Duration::from_millis(250), wake.notified()).await;
                }
            }
        }
    });
}

/// What a node body may do while it runs: report progress, wait, read inputs.
pub(crate) struct NodeRun<'a> {
    pub shared: &'a Shared,
    pub job: &'a Job,
    pub node: String,
    pub sig: u64,
    epoch: u64,
    progress: &'a mut IndexMap<String, Value>,
    stepped: bool,
}

impl NodeRun<'_> {
    fn sid(&self) -> Option<&str> {
        self.job.client_id.as_deref()
    }

    fn vanished(&self) -> Result<(), Stop> {
        if self.shared.lock().epoch != self.epoch { Err(Stop::Vanished) } else { Ok(()) }
    }

    /// An ordinary node's work: the configured node time. Like a real node
    /// body it does not look at the interrupt flag (the check is at the
    /// start of the next node).
    pub(crate) async fn idle(&mut self) -> Result<(), Stop> {
        let d = self.shared.cfg.node_delay;
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
        self.vanished()
    }

    /// One sampler step: wait, then the progress hook, which raises on a
    /// pending interrupt (`throw_exception_if_processing_interrupted`), then
    /// report progress and a preview.
    pub(crate) async fn step(&mut self, value: u32, max: u32, preview: Option<Vec<u8>>) -> Result<(), Stop> {
        let d = self.shared.cfg.step_delay;
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
        self.vanished()?;
        interrupted(self.shared)?;
        self.progress_only(value, max, preview).await
    }

    /// One training step: wait, and stop on a pending interrupt, reporting
    /// progress only when the server is configured to
    /// ([`ComfyConfig::training_progress`](super::ComfyConfig)).
    pub(crate) async fn training_step(&mut self, value: u32, max: u32) -> Result<(), Stop> {
        if self.shared.cfg.training_progress {
            return self.step(value, max, None).await;
        }
        let d = self.shared.cfg.step_delay;
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
        self.vanished()?;
        interrupted(self.shared)
    }

    /// Progress and an optional PNG preview frame, without waiting.
    pub(crate) async fn progress_only(&mut self, value: u32, max: u32, preview: Option<Vec<u8>>) -> Result<(), Stop> {
        self.stepped = true;
        let (pid, node) = (self.job.id.clone(), self.node.clone());
        self.progress.insert(node.clone(), progress_entry(&pid, &node, json!(value), json!(max), "running"));
        self.shared.send(self.sid(), "progress_state", json!({"prompt_id": pid, "nodes": self.progress}));
        self.shared.send(self.sid(), "progress", json!({"value": value, "max": max, "prompt_id": pid, "node": node}));
        if let Some(png) = preview {
            let mut frame = Vec::with_capacity(png.len() + 8);
            frame.extend_from_slice(&1u32.to_be_bytes());
            frame.extend_from_slice(&2u32.to_be_bytes());
            frame.extend_from_slice(&png);
            self.shared.send_raw(self.sid(), WsOut::Binary(frame));
        }
        tokio::task::yield_now().await;
        Ok(())
    }

    pub(crate) fn input_file(&self, name: &str) -> Option<Bytes> {
        self.shared.lock().input_file(name)
    }

    pub(crate) fn input_path(&self, name: &str) -> String {
        format!("{}/input/{name}", self.shared.cfg.base_dir)
    }

    /// PyAV's complaint about a file that is not a video.
    pub(crate) fn invalid_video(&self, name: &str) -> Stop {
        Stop::Failed {
            ty: "av.error.InvalidDataError".into(),
            msg: format!("[Errno 1094995529] Invalid data found when processing input: '{}'\n", self.input_path(name)),
        }
    }
}

fn progress_entry(pid: &str, node: &str, value: Value, max: Value, state: &str) -> Value {
    json!({"value": value, "max": max, "state": state, "node_id": node, "prompt_id": pid,
           "display_node_id": node, "parent_node_id": null, "real_node_id": node})
}

fn traceback(base: &str, class: &str) -> Vec<String> {
    vec![
        format!(
            "  File \"{base}/execution.py\", line 496, in execute\n    output_data, output_ui, has_subgraph, has_pending_tasks = await get_output_data(prompt_id, unique_id, obj, input_data_all, execution_block_cb=execution_block_cb, pre_execute_cb=pre_execute_cb, hidden_inputs=hidden_inputs)\n"
        ),
        format!(
            "  File \"{base}/execution.py\", line 315, in get_output_data\n    return_values = await _async_map_node_over_list(prompt_id, unique_id, obj, input_data_all, obj.FUNCTION, allow_interrupt=True, execution_block_cb=execution_block_cb, pre_execute_cb=pre_execute_cb, hidden_inputs=hidden_inputs)\n"
        ),
        format!(
            "  File \"{base}/execution.py\", line 289, in _async_map_node_over_list\n    await process_inputs(input_dict, i)\n"
        ),
        format!(
            "  File \"{base}/execution.py\", line 277, in process_inputs\n    result = f(**inputs)\n             ^^^^^^^^^^^\n"
        ),
        format!("  File \"{base}/nodes.py\", line 1, in {class}\n    raise\n"),
    ]
}

/// Hash of the files a loader reads, so re-uploading changes the cache key
/// (ComfyUI's IS_CHANGED for LoadImage hashes the file).
fn file_salt(shared: &Shared, class: &str, node: &Value) -> u64 {
    let key = objinfo::FILE_INPUTS
        .iter()
        .find(|(c, _, s)| *c == class && matches!(s, objinfo::Source::Input(_)))
        .map(|(_, input, _)| *input);
    let Some(name) = key.and_then(|k| node.pointer(&format!("/inputs/{k}"))).and_then(Value::as_str) else {
        return 0;
    };
    let mut h = DefaultHasher::new();
    shared.lock().input_file(name).map(|b| b.to_vec()).hash(&mut h);
    h.finish()
}

struct Exec<'a> {
    shared: &'a Shared,
    job: &'a Job,
    messages: Vec<Value>,
}

impl Exec<'_> {
    /// Records a status message for history and sends it to the job's client
    /// (or to everyone when `broadcast` and the job has none), as add_message does.
    fn add_message(&mut self, event: &str, mut data: Value, broadcast: bool) {
        data["timestamp"] = json!(now_ms());
        self.messages.push(json!([event, data]));
        match self.job.client_id.as_deref() {
            Some(sid) => self.shared.send(Some(sid), event, data),
            None if broadcast => self.shared.send(None, event, data),
            None => {}
        }
    }

    fn to_client(&self, event: &str, data: Value) {
        if let Some(sid) = self.job.client_id.as_deref() {
            self.shared.send(Some(sid), event, data);
        }
    }
}

/// `throw_exception_if_processing_interrupted`: a pending interrupt stops
/// the job, and is used up.
fn interrupted(shared: &Shared) -> Result<(), Stop> {
    if shared.interrupt.swap(false, Ordering::SeqCst) { Err(Stop::Interrupted) } else { Ok(()) }
}

async fn execute(shared: &Shared, job: Arc<Job>, epoch: u64) {
    // execution.py's `execute_async` starts with `interrupt_processing(False)`.
    shared.interrupt.store(false, Ordering::SeqCst);
    shared.broadcast_status();
    let pid = job.id.clone();
    let mut ex = Exec { shared, job: &job, messages: Vec::new() };
    ex.add_message("execution_start", json!({"prompt_id": pid}), false);

    let defs: HashMap<String, Value> = job
        .prompt
        .values()
        .filter_map(|n| n["class_type"].as_str())
        .collect::<HashSet<_>>()
        .into_iter()
        .filter_map(|c| objinfo::class(c, |s| shared.choices(s)).map(|d| (c.to_string(), d)))
        .collect();
    let class_of = |id: &str| job.prompt.get(id).and_then(|n| n["class_type"].as_str()).unwrap_or_default().to_string();
    let is_output = |id: &str| defs.get(&class_of(id)).and_then(|d| d["output_node"].as_bool()).unwrap_or(false);
    let sigs = graph::signatures(&job.prompt, &|class, node| file_salt(shared, class, node));
    type Prior = (Vec<String>, HashMap<String, Vec<Val>>, HashMap<u64, Cached>);
    let (cached_ids, mut values, mut new_cache): Prior = {
        let st = shared.lock();
        let ids: Vec<String> = job.prompt.keys().filter(|id| st.cache.contains_key(&sigs[*id])).cloned().collect();
        let vals = ids.iter().map(|id| (id.clone(), st.cache[&sigs[id]].values.clone())).collect();
        let keep = ids.iter().map(|id| (sigs[id], st.cache[&sigs[id]].clone())).collect();
        (ids, vals, keep)
    };
    ex.add_message("execution_cached", json!({"nodes": cached_ids, "prompt_id": pid}), false);
    let cached: HashSet<String> = cached_ids.iter().cloned().collect();

    let mut progress: IndexMap<String, Value> = IndexMap::new();
    let mut ui_outputs: Map<String, Value> = Map::new();
    let mut meta: Map<String, Value> = Map::new();
    let mut executed: Vec<String> = Vec::new();
    let mut outcome: Result<(), (String, Stop)> = Ok(());

    let order = match graph::order(&job.prompt, &job.outputs, &is_output, &cached) {
        Ok(o) => o,
        Err(stuck) => {
            outcome = Err((
                stuck.first().cloned().unwrap_or_default(),
                Stop::Failed {
                    ty: "comfy_execution.graph.DependencyCycleError".into(),
                    msg: "Dependency cycle detected".into(),
                },
            ));
            Vec::new()
        }
    };

    for id in order {
        let class = class_of(&id);
        let meta_entry = json!({"node_id": id, "display_node": id, "parent_node": null, "real_node_id": id});
        if cached.contains(&id) {
            let ui = shared.lock().cache.get(&sigs[&id]).and_then(|c| c.ui.clone());
            if let Some(ui) = &ui {
                ex.to_client("executed", json!({"node": id, "display_node": id, "output": ui, "prompt_id": pid}));
                ui_outputs.insert(id.clone(), ui.clone());
                meta.insert(id.clone(), meta_entry);
            }
            progress.insert(id.clone(), progress_entry(&pid, &id, json!(1), json!(1), "finished"));
            ex.to_client("progress_state", json!({"prompt_id": pid, "nodes": progress}));
            executed.push(id);
            continue;
        }
        if shared.lock().epoch != epoch {
            return;
        }
        // `before_node_execution`, at the start of every node that runs.
        if let Err(stop) = interrupted(shared) {
            outcome = Err((id, stop));
            break;
        }
        progress.insert(id.clone(), progress_entry(&pid, &id, json!(0.0), json!(1.0), "running"));
        ex.to_client("progress_state", json!({"prompt_id": pid, "nodes": progress}));
        ex.to_client("executing", json!({"node": id, "display_node": id, "prompt_id": pid}));

        let node = &job.prompt[&id];
        let empty = Map::new();
        let inputs = node.get("inputs").and_then(Value::as_object).unwrap_or(&empty);
        let mut literal = Map::new();
        let mut linked = Vec::new();
        for (k, v) in inputs {
            if super::validate::is_link(v) {
                let src = v[0].as_str().unwrap_or_default();
                let idx = v[1].as_u64().unwrap_or(0) as usize;
                if let Some(val) = values.get(src).and_then(|vs| vs.get(idx)) {
                    linked.push((k.clone(), val.clone()));
                }
            } else {
                literal.insert(k.clone(), v.clone());
            }
        }
        let outputs: Vec<String> = defs
            .get(&class)
            .and_then(|d| d["output"].as_array())
            .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
            .unwrap_or_default();
        let args = Args { literal: &literal, linked };
        let mut run = NodeRun {
            shared,
            job: &job,
            node: id.clone(),
            sig: sigs[&id],
            epoch,
            progress: &mut progress,
            stepped: false,
        };
        let result = nodes::run(&mut run, &class, &args, &outputs, sigs[&id]).await;
        let stepped = run.stepped;
        match result {
            Ok(out) => {
                if let Some(ui) = &out.ui {
                    ex.to_client("executed", json!({"node": id, "display_node": id, "output": ui, "prompt_id": pid}));
                    ui_outputs.insert(id.clone(), ui.clone());
                    meta.insert(id.clone(), meta_entry);
                }
                let (v, m) = match progress.get(&id) {
                    Some(p) if stepped => (p["max"].clone(), p["max"].clone()),
                    _ => (json!(1.0), json!(1.0)),
                };
                progress.insert(id.clone(), progress_entry(&pid, &id, v, m, "finished"));
                ex.to_client("progress_state", json!({"prompt_id": pid, "nodes": progress}));
                new_cache.insert(sigs[&id], Cached { values: out.values.clone(), ui: out.ui });
                values.insert(id.clone(), out.values);
                executed.push(id);
            }
            Err(Stop::Vanished) => return,
            Err(stop) => {
                outcome = Err((id, stop));
                break;
            }
        }
    }

    let status_str = match outcome {
        Ok(()) => {
            ex.add_message("execution_success", json!({"prompt_id": pid}), false);
            "success"
        }
        Err((node_id, Stop::Interrupted)) => {
            let data =
                json!({"prompt_id": pid, "node_id": node_id, "node_type": class_of(&node_id), "executed": executed});
            ex.add_message("execution_interrupted", data, true);
            "error"
        }
        Err((node_id, Stop::Failed { ty, msg })) => {
            let node = &job.prompt.get(&node_id).cloned().unwrap_or(Value::Null);
            let current_inputs: Map<String, Value> = node
                .get("inputs")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| {
                            let shown = if super::validate::is_link(v) { json!("<linked value>") } else { v.clone() };
                            (k.clone(), json!([shown]))
                        })
                        .collect()
                })
                .unwrap_or_default();
            let class = class_of(&node_id);
            let data = json!({
                "prompt_id": pid, "node_id": node_id, "node_type": class, "executed": executed,
                "exception_message": msg, "exception_type": ty,
                "traceback": traceback(&shared.cfg.base_dir, &class),
                "current_inputs": current_inputs,
                "current_outputs": job.prompt.keys().collect::<Vec<_>>(),
            });
            ex.add_message("execution_error", data, false);
            "error"
        }
        Err((_, Stop::Vanished)) => return,
    };

    let entry = json!({
        "prompt": job.queue_item(),
        "outputs": ui_outputs,
        "status": {"status_str": status_str, "completed": status_str == "success", "messages": ex.messages},
        "meta": meta,
    });
    {
        let mut st = shared.lock();
        if st.epoch != epoch {
            return;
        }
        let started = st.running.take().map(|r| r.started).unwrap_or_else(now_ms);
        st.timings.insert(pid.clone(), (started, now_ms()));
        st.push_history(pid.clone(), entry, shared.cfg.history_cap);
        st.cache = new_cache;
    }
    shared.broadcast_status();
    ex.to_client("executing", json!({"node": null, "prompt_id": pid}));
    shared.wake.notify_one();
}
