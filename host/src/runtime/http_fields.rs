//! wasi:http header fields live in the host, not in the guest's linear
//! memory: a guest could make the host hold gigabytes of them (25 000
//! `fields` of 120 KiB each) under a small `memory-mb`. These wrappers
//! shadow the calls that add bytes to a `fields` and count those bytes
//! against the invocation's memory limit (the same budget as its linear
//! memories) before handing over to wasmtime-wasi-http. The count never goes
//! down: no honest skill builds hundreds of MiB of headers in one call.

use super::InvocationCtx;
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi_http::p2::bindings::http::types::{HeaderError, HostFields};
use wasmtime_wasi_http::{FieldMap, WasiHttpView};

/// The wasi:http version the host provides (wasmtime-wasi-http 48).
const TYPES: &str = "wasi:http/types@0.2.12";
/// What the memory-limit message calls these bytes.
const WHAT: &str = "wasi:http header fields held by the host";

type Store<'a> = StoreContextMut<'a, InvocationCtx>;

/// Replace the byte-adding `fields` calls with counting ones.
pub(super) fn add_to_linker(linker: &mut Linker<InvocationCtx>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut types = linker.instance(TYPES)?;
    types.func_wrap(
        "[method]fields.append",
        |mut store: Store<'_>, (this, name, value): (Resource<FieldMap>, String, Vec<u8>)| {
            let ctx = store.data_mut();
            ctx.limiter.charge((name.len() + value.len()) as u64, WHAT)?;
            Ok((header_result(HostFields::append(&mut ctx.http(), this, name, value))?,))
        },
    )?;
    types.func_wrap(
        "[method]fields.set",
        |mut store: Store<'_>, (this, name, values): (Resource<FieldMap>, String, Vec<Vec<u8>>)| {
            let ctx = store.data_mut();
            let bytes = name.len() + values.iter().map(|v| name.len() + v.len()).sum::<usize>();
            ctx.limiter.charge(bytes as u64, WHAT)?;
            Ok((header_result(HostFields::set(&mut ctx.http(), this, name, values))?,))
        },
    )?;
    types.func_wrap("[static]fields.from-list", |mut store: Store<'_>, (entries,): (Vec<(String, Vec<u8>)>,)| {
        let ctx = store.data_mut();
        let bytes: usize = entries.iter().map(|(k, v)| k.len() + v.len()).sum();
        ctx.limiter.charge(bytes as u64, WHAT)?;
        Ok((header_result(HostFields::from_list(&mut ctx.http(), entries))?,))
    })?;
    types.func_wrap("[method]fields.clone", |mut store: Store<'_>, (this,): (Resource<FieldMap>,)| {
        let ctx = store.data_mut();
        let map = ctx.table.get(&this)?;
        let bytes: usize = map.iter().map(|(k, v)| k.as_str().len() + v.len()).sum();
        ctx.limiter.charge(bytes as u64, WHAT)?;
        Ok((HostFields::clone(&mut ctx.http(), this)?,))
    })?;
    linker.allow_shadowing(false);
    Ok(())
}

/// wasmtime-wasi-http's header result as the guest sees it: a header error
/// goes back to the guest, anything else traps.
fn header_result<T>(r: Result<T, wasmtime_wasi_http::p2::HeaderError>) -> wasmtime::Result<Result<T, HeaderError>> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(e) => Ok(Err(e.downcast()?)),
    }
}
