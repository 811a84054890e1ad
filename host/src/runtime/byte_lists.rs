//! The hot byte paths, lifted in one copy. The generated bindings lift a
//! `list<u8>` parameter element by element (in a profile of a 256 MiB
//! download that lift was a fifth of the time); these wrappers shadow the
//! two host calls every big file goes through, take the list as a
//! [`WasmList`] (a view of guest memory) and copy it with one `memcpy`
//! before handing over to the usual implementation:
//!
//! - `c41:skill/artifacts` `artifact-writer.write` (downloads into the
//!   artifact store);
//! - `wasi:io/streams` `output-stream.write` (request bodies, uploads).

use super::InvocationCtx;
use crate::imports::artifacts::ArtifactWriter;
use crate::runtime::bindings::c41::skill::artifacts::HostArtifactWriter;
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource, WasmList};
use wasmtime_wasi::p2::DynOutputStream;
use wasmtime_wasi::p2::bindings::io::streams::{Host as StreamsHost, StreamError};

/// The c41:skill artifacts interface, as the host provides it: the version
/// is `wit/skill.wit`'s (build.rs reads it), so a compatible bump cannot
/// leave this shadow on a name the bindings no longer define.
const ARTIFACTS: &str = concat!("c41:skill/artifacts@", env!("C41_WIT_VERSION"));
/// The wasi:io streams interface wasmtime-wasi 48 provides.
const STREAMS: &str = "wasi:io/streams@0.2.12";

type Store<'a> = StoreContextMut<'a, InvocationCtx>;

/// Replace the bindings' byte-wise lifts of the two writes. Fails when a
/// write is not defined by the bindings under the name shadowed here (a
/// version moved): that would leave the slow lift in place unnoticed.
pub(super) fn add_to_linker(linker: &mut Linker<InvocationCtx>) -> wasmtime::Result<()> {
    let artifacts = |linker: &mut Linker<InvocationCtx>| {
        linker.instance(ARTIFACTS)?.func_wrap_async(
            "[method]artifact-writer.write",
            |mut store: Store<'_>, (this, chunk): (Resource<ArtifactWriter>, WasmList<u8>)| {
                let bytes = chunk.as_le_slice(&store).to_vec();
                Box::new(async move { Ok((HostArtifactWriter::write(store.data_mut(), this, bytes).await?,)) })
            },
        )
    };
    let streams = |linker: &mut Linker<InvocationCtx>| {
        linker.instance(STREAMS)?.func_wrap(
            "[method]output-stream.write",
            |mut store: Store<'_>, (this, contents): (Resource<DynOutputStream>, WasmList<u8>)| {
                let bytes = bytes::Bytes::copy_from_slice(contents.as_le_slice(&store));
                let table = &mut store.data_mut().table;
                let written = table.get_mut(&this).map_err(wasmtime::Error::from)?.write(bytes);
                let result: Result<(), StreamError> = match written {
                    Ok(()) => Ok(()),
                    Err(e) => Err(StreamsHost::convert_stream_error(table, e)?),
                };
                Ok((result,))
            },
        )
    };
    // Without shadowing, defining a name the bindings defined fails: that
    // failure is the proof the shadow lands on the bindings' function.
    for (name, define) in [(ARTIFACTS, &artifacts as &dyn Fn(&mut Linker<InvocationCtx>) -> _), (STREAMS, &streams)] {
        if define(linker).is_ok() {
            wasmtime::bail!("byte_lists: {name} is not defined by the bindings (did its version change?)");
        }
    }
    linker.allow_shadowing(true);
    artifacts(linker)?;
    streams(linker)?;
    linker.allow_shadowing(false);
    Ok(())
}
