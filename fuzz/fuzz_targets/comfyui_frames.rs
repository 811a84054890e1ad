//! Anything a ComfyUI server (or something pretending to be one) sends:
//! websocket frames and JSON replies get a reading or a refusal, never a
//! panic.
#![no_main]
use c41_kit::comfyui::errors::{execution_error_message, rejection_message};
use c41_kit::comfyui::protocol::{HistoryEntry, Queue, WsEvent, preview_image};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = preview_image(data);
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(ev) = serde_json::from_str::<WsEvent>(text) {
        let _ = ev.prompt_id();
    }
    let graph = serde_json::json!({"9": {"class_type": "SaveImage", "inputs": {}}});
    let _ = rejection_message("wf", &graph, text);
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
        let _ = execution_error_message(&graph, &v);
        if let Ok(q) = serde_json::from_value::<Queue>(v.clone()) {
            let _ = q.place("x");
        }
        if let Ok(h) = serde_json::from_value::<HistoryEntry>(v) {
            let _ = h.files_of("9");
        }
    }
});
