//! `c41:skill/inputs`: the files the user passed in fields the schema marks
//! `"format": "c41-file"`. The host resolved and checked them before the
//! call (see `crate::input`); here it only opens and streams them. A skill
//! has no other way to read a host file.
//!
//! A file is read two ways: `read` copies chunks into the skill, and
//! `stream` hands out a `wasi:io` stream ([`FileStream`]) that the skill
//! splices into a request body, so an upload's bytes go from the file to the
//! connection in the host.

use crate::runtime::InvocationCtx;
use crate::runtime::bindings::c41::skill::inputs::{Host, HostInputFile, InputError};
use crate::runtime::budget::Slot;
use bytes::Bytes;
use std::io::Read;
use std::sync::Arc;
use wasmtime::component::Resource;
use wasmtime_wasi::p2::{DynInputStream, InputStream, Pollable, StreamError, StreamResult};

/// Most bytes handed out per `read`.
const MAX_READ: u32 = 1 << 20;

/// The host object behind an `input-file` resource.
pub struct InputFile {
    /// Counts against `limits.open-files` while the file is open.
    _slot: Slot,
    file: Arc<std::fs::File>,
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
        let handle =
            InputFile { _slot: slot, file: Arc::new(file), name: input.name.clone(), mime: input.mime.clone(), size };
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
                self.inputs_read_by_skill += n as u64;
                Ok(Ok(buf))
            }
            Err(e) => Ok(Err(InputError::Io(e.to_string()))),
        }
    }

    async fn stream(
        &mut self,
        this: Resource<InputFile>,
    ) -> wasmtime::Result<Result<Resource<DynInputStream>, InputError>> {
        let file = self.table.get(&this)?.file.clone();
        // Each stream buffers up to two chunks in the host: streams count
        // against `limits.open-files` as files do, so a skill cannot make
        // the host hold memory by opening thousands.
        let slot = match self.files.take() {
            Ok(s) => s,
            Err(refused) => {
                self.limit_log.record(&self.skill, refused.clone());
                return Ok(Err(InputError::Io(refused)));
            }
        };
        let stream: DynInputStream = Box::new(FileStream::new(file, Some(slot)));
        // A child of the file: the file (and its `open-files` slot) cannot
        // be dropped while the stream is alive.
        Ok(Ok(self.table.push_child(stream, &this)?))
    }

    async fn drop(&mut self, this: Resource<InputFile>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

/// Bytes a [`FileStream`] reads at once, and reads ahead: one chunk of a
/// `wasi:http` outgoing body (wasmtime-wasi-http's default, 1 MiB), so one
/// `splice` moves a whole chunk. wasmtime-wasi's own `FileInputStream` reads
/// at most 64 KiB and only when asked, so an upload would take sixteen
/// times as many splices, each waiting for its read.
pub const STREAM_CHUNK: usize = 1 << 20;

/// An input file as a `wasi:io` input stream, reading from its own offset
/// (positioned reads on the shared descriptor, so `input-file.read` and the
/// stream do not disturb each other). The next chunk is read on the
/// blocking pool while the last one is being sent.
pub struct FileStream {
    /// Counts against `limits.open-files` while the stream is alive.
    _slot: Option<Slot>,
    file: Arc<std::fs::File>,
    /// Offset of the next read.
    at: u64,
    state: ReadState,
}

enum ReadState {
    /// No read in flight and nothing buffered.
    Idle,
    Reading(tokio::task::JoinHandle<std::io::Result<Bytes>>),
    Ready(Bytes),
    Failed(std::io::Error),
    Closed,
}

impl FileStream {
    fn new(file: Arc<std::fs::File>, slot: Option<Slot>) -> Self {
        FileStream { _slot: slot, file, at: 0, state: ReadState::Idle }
    }

    fn start_read(&mut self) {
        let (file, at) = (self.file.clone(), self.at);
        self.state = ReadState::Reading(tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; STREAM_CHUNK];
            let n = loop {
                match read_at(&file, &mut buf, at) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    other => break other?,
                }
            };
            buf.truncate(n);
            Ok(Bytes::from(buf))
        }));
    }

    fn settle(&mut self, read: Result<std::io::Result<Bytes>, tokio::task::JoinError>) {
        self.state = match read {
            Ok(Ok(bytes)) if bytes.is_empty() => ReadState::Closed,
            Ok(Ok(bytes)) => {
                self.at += bytes.len() as u64;
                ReadState::Ready(bytes)
            }
            Ok(Err(e)) => ReadState::Failed(e),
            Err(e) => ReadState::Failed(std::io::Error::other(e)),
        };
    }
}

#[cfg(unix)]
fn read_at(file: &std::fs::File, buf: &mut [u8], at: u64) -> std::io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, at)
}

#[cfg(windows)]
fn read_at(file: &std::fs::File, buf: &mut [u8], at: u64) -> std::io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, at)
}

#[async_trait::async_trait]
impl InputStream for FileStream {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        if let ReadState::Reading(task) = &mut self.state
            && task.is_finished()
        {
            let done = futures::FutureExt::now_or_never(task).expect("a finished task is ready");
            self.settle(done);
        }
        match &mut self.state {
            ReadState::Idle => {
                self.start_read();
                Ok(Bytes::new())
            }
            ReadState::Reading(_) => Ok(Bytes::new()),
            ReadState::Ready(bytes) => {
                let chunk = bytes.split_to(size.min(bytes.len()));
                if bytes.is_empty() {
                    // Read ahead while this chunk goes out.
                    self.start_read();
                }
                Ok(chunk)
            }
            ReadState::Failed(_) => match std::mem::replace(&mut self.state, ReadState::Closed) {
                ReadState::Failed(e) => Err(StreamError::LastOperationFailed(e.into())),
                _ => unreachable!(),
            },
            ReadState::Closed => Err(StreamError::Closed),
        }
    }

    async fn cancel(&mut self) {
        // A blocking read cannot be interrupted; it ends on its own (one
        // chunk) and its result is dropped.
        self.state = ReadState::Closed;
    }
}

#[async_trait::async_trait]
impl Pollable for FileStream {
    async fn ready(&mut self) {
        if let ReadState::Idle = self.state {
            self.start_read();
        }
        if let ReadState::Reading(task) = &mut self.state {
            let done = task.await;
            self.settle(done);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `stream` to its end as `splice` does: `read`, and `ready` when
    /// nothing is buffered yet.
    async fn drain(stream: &mut FileStream, step: usize) -> (Vec<u8>, StreamResult<()>) {
        let mut got = Vec::new();
        loop {
            match stream.read(step) {
                Ok(bytes) if bytes.is_empty() => stream.ready().await,
                Ok(bytes) => got.extend_from_slice(&bytes),
                Err(StreamError::Closed) => return (got, Ok(())),
                Err(e) => return (got, Err(e)),
            }
        }
    }

    #[tokio::test]
    async fn a_stream_hands_out_the_file_exactly_in_steps_of_any_size_then_closes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clip.bin");
        let bytes: Vec<u8> = (0..(2 * STREAM_CHUNK + 12_345) as u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let file = Arc::new(std::fs::File::open(&path).unwrap());
        for step in [1 << 20, 100_003, 3 * STREAM_CHUNK] {
            let (got, end) = drain(&mut FileStream::new(file.clone(), None), step).await;
            assert!(end.is_ok());
            assert_eq!(got, bytes, "step {step}");
        }
        // Positioned reads: a stream does not move the descriptor's offset
        // that `input-file.read` uses.
        let mut head = [0u8; 4];
        (&*file).read_exact(&mut head).unwrap();
        assert_eq!(head, bytes[..4]);
    }

    #[tokio::test]
    async fn an_empty_file_is_a_closed_stream() {
        let file = tempfile::tempfile().unwrap();
        let (got, end) = drain(&mut FileStream::new(Arc::new(file), None), 1 << 20).await;
        assert!(got.is_empty() && end.is_ok());
    }
}
