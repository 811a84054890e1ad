//! `c41:skill/inputs`: the files the user passed in fields the schema marks
//! `"format": "c41-file"`. The host resolved and checked them before the
//! call (see `crate::input`); here it only opens and streams them. A skill
//! has no other way to read a host file.

use crate::runtime::InvocationCtx;
use crate::runtime::bindings::c41::skill::inputs::{Host, HostInputFile, InputError};
use crate::runtime::budget::Slot;
use std::io::Read;
use wasmtime::component::Resource;

/// Most bytes handed out per `read`.
const MAX_READ: u32 = 1 << 20;

/// The host object behind an `input-file` resource.
pub struct InputFile {
    /// Counts against `limits.open-files` while the file is open.
    _slot: Slot,
    file: std::fs::File,
    name: String,
    mime: String,
    size: u64,
}

impl Host for InvocationCtx {
    async fn fields(&mut self) -> wasmtime::Result<Vec<String>> {
        Ok(self.inputs.fields())
    }

    async fn open(&mut self, field: String) -> wasmtime::Result<Result<Resource<InputFile>, InputError>> {
        let Some(input) = self.inputs.get(&field) else {
            let known = self.inputs.fields().join(", ");
            return Ok(Err(InputError::NoSuchField(format!(
                "no file input `{field}` (file inputs of this call: {})",
                if known.is_empty() { "none".into() } else { known }
            ))));
        };
        let slot = match self.files.take() {
            Ok(s) => s,
            Err(refused) => {
                self.limit_log.record(&self.skill, refused.clone());
                return Ok(Err(InputError::Io(refused)));
            }
        };
        let path = input.path.clone();
        let opened = tokio::task::spawn_blocking(move || open_checked(&path)).await?;
        let (file, size) = match opened {
            Ok(f) => f,
            Err(e) => return Ok(Err(InputError::Io(format!("{}: {e}", input.path.display())))),
        };
        let handle = InputFile { _slot: slot, file, name: input.name.clone(), mime: input.mime.clone(), size };
        Ok(Ok(self.table.push(handle)?))
    }
}

/// Opens a resolved input again, as what it was when the call started: the
/// host checked a regular file at a canonical path, but the skill opens it
/// later, and by then the path may name a FIFO (whose open would block a
/// thread for ever) or a symlink to somewhere else. So: no following a
/// symlink in the last component, no waiting on the open, and only a
/// regular file is handed out.
fn open_checked(path: &std::path::Path) -> std::io::Result<(std::fs::File, u64)> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // O_NONBLOCK changes nothing for a regular file's reads.
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW);
    }
    let file = options.open(path).map_err(|e| match e.raw_os_error() {
        #[cfg(unix)]
        Some(libc::ELOOP) => {
            std::io::Error::other("was replaced by a symbolic link after the call started; refusing to follow it")
        }
        _ => e,
    })?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("is no longer a regular file (it was replaced after the call started)"));
    }
    Ok((file, meta.len()))
}

impl HostInputFile for InvocationCtx {
    async fn name(&mut self, this: Resource<InputFile>) -> wasmtime::Result<String> {
        Ok(self.table.get(&this)?.name.clone())
    }

    async fn mime(&mut self, this: Resource<InputFile>) -> wasmtime::Result<String> {
        Ok(self.table.get(&this)?.mime.clone())
    }

    async fn size(&mut self, this: Resource<InputFile>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&this)?.size)
    }

    async fn read(&mut self, this: Resource<InputFile>, max: u32) -> wasmtime::Result<Result<Vec<u8>, InputError>> {
        // A clone of the descriptor shares its offset: the read advances
        // the file the table holds.
        let mut file = self.table.get(&this)?.file.try_clone()?;
        let len = max.min(MAX_READ) as usize;
        let (buf, read) = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; len];
            let r = file.read(&mut buf);
            (buf, r)
        })
        .await?;
        let mut buf = buf;
        match read {
            Ok(n) => {
                buf.truncate(n);
                Ok(Ok(buf))
            }
            Err(e) => Ok(Err(InputError::Io(e.to_string()))),
        }
    }

    async fn drop(&mut self, this: Resource<InputFile>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}
