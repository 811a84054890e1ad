//! The `bindgen!` call for `wit/skill.wit`, and nothing else.

wasmtime::component::bindgen!({
    world: "skill",
    path: "../wit",
    imports: {
        "c41:skill/websocket": async | trappable,
        "c41:skill/progress": async | trappable,
        // File I/O, hashing and fsync run on tokio's blocking pool.
        "c41:skill/artifacts": async | trappable,
        "c41:skill/inputs": async | trappable,
        default: trappable,
    },
    exports: { default: async },
    with: {
        // `copy-from` reads a guest's `input-stream`: the same resource the
        // wasi:io host behind wasi:http hands out.
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "c41:skill/artifacts.artifact-writer": crate::imports::artifacts::ArtifactWriter,
        "c41:skill/inputs.input-file": crate::imports::inputs::InputFile,
        "c41:skill/websocket.connection": crate::imports::websocket::WsConnection,
    },
});
