//! `c41:skill/artifacts`: the artifact sink. Chunks go straight to a temp
//! file in the output directory (`c41-artifacts` hashes and stores them
//! atomically), so a large video never sits in memory. The host remembers
//! what each invocation stored: an outcome may only list those files.
//!
//! Four things keep big files near the speed of a plain download:
//! `copy-from` reads a response body's stream here, in the host, so its
//! bytes never enter the guest; otherwise a chunk is copied out of the
//! guest's memory in one `memcpy` (`runtime::byte_lists`);
//! small chunks are gathered into [`BATCH`] bytes before one trip to the
//! blocking pool; and that trip (write and SHA-256) runs while the next
//! chunks arrive, one batch in flight per file.

use crate::runtime::InvocationCtx;
use crate::runtime::bindings::c41::skill::artifacts::{ArtifactError, CopyError, Host, HostArtifactWriter};
use crate::runtime::bindings::c41::skill::types::Artifact;
use crate::runtime::budget::Slot;
use c41_artifacts::{ArtifactError as StoreError, PendingArtifact, StoredArtifact};
use wasmtime::component::Resource;
use wasmtime_wasi::p2::{DynInputStream, StreamError};

/// Bytes gathered from a skill's writes before they go to disk together.
pub const BATCH: usize = 256 * 1024;

/// The host object behind an `artifact-writer` resource.
pub struct ArtifactWriter {
    /// The file, while no batch is being written to it (`None` with nothing
    /// in flight: finished, or failed and removed).
    pending: Option<PendingArtifact>,
    /// The batch being written and hashed on the blocking pool, which holds
    /// the file meanwhile: the skill's next chunks arrive in the meantime.
    in_flight: Option<tokio::task::JoinHandle<Written>>,
    /// Written by the skill, not yet handed to the disk: under [`BATCH`]
    /// bytes, so with the batch in flight at most `limits.open-files` ×
    /// 512 KiB per call.
    batch: Vec<u8>,
    /// Bytes the skill wrote to this file so far (the per-file cap).
    accepted: u64,
    /// Counts against `limits.open-files` until the file is finished or
    /// dropped.
    slot: Option<Slot>,
}

impl Drop for ArtifactWriter {
    /// A batch still being written holds the unfinished file: wait for it
    /// (one batch at most, on another thread), so that the file is gone
    /// when the writer is, even when a trap drops the whole table.
    fn drop(&mut self) {
        if let Some(job) = self.in_flight.take() {
            let _ = futures::executor::block_on(job);
        }
    }
}

/// A batch written: the file back, how it went, and the buffer for reuse.
type Written = (PendingArtifact, Result<(), StoreError>, Vec<u8>);

impl ArtifactWriter {
    /// The file, once the batch in flight (if any) is on disk; its error if
    /// that write failed (the file is then removed).
    async fn settle(&mut self) -> wasmtime::Result<Option<Result<PendingArtifact, StoreError>>> {
        if let Some(job) = self.in_flight.take() {
            let (pending, r, mut buf) = job.await?;
            buf.clear();
            if self.batch.is_empty() {
                self.batch = buf;
            }
            return Ok(Some(r.map(|()| pending)));
        }
        Ok(self.pending.take().map(Ok))
    }
}

/// A file stored during this invocation.
pub type Produced = StoredArtifact;

fn to_wit(e: StoreError) -> ArtifactError {
    match e {
        StoreError::TooLarge { limit } => ArtifactError::TooLarge(limit),
        StoreError::InvalidName { reason } => ArtifactError::InvalidName(reason),
        StoreError::Closed => ArtifactError::Closed,
        other => ArtifactError::Io(other.to_string()),
    }
}

/// The WIT record for a stored artifact.
pub fn to_record(a: &StoredArtifact) -> Artifact {
    Artifact { path: a.path.display().to_string(), mime: a.mime.clone(), bytes: a.bytes, sha256: a.sha256.clone() }
}

/// Run file work (write, hash, fsync, rename) on tokio's blocking pool,
/// never on a worker thread that other invocations need.
async fn blocking<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> wasmtime::Result<R> {
    Ok(tokio::task::spawn_blocking(f).await?)
}

impl Host for InvocationCtx {
    async fn create(
        &mut self,
        name: String,
        mime: String,
    ) -> wasmtime::Result<Result<Resource<ArtifactWriter>, ArtifactError>> {
        let Some(store) = &self.artifacts else {
            return Ok(Err(ArtifactError::Io("this call has no output directory".into())));
        };
        let slot = match self.files.take() {
            Ok(s) => s,
            Err(refused) => {
                self.limit_log.record(&self.skill, refused.clone());
                return Ok(Err(ArtifactError::Io(refused)));
            }
        };
        let (store, max) = (store.clone(), self.limits.max_artifact_bytes);
        match blocking(move || store.create(&name, &mime, max)).await? {
            Ok(pending) => {
                let writer = ArtifactWriter {
                    pending: Some(pending),
                    in_flight: None,
                    batch: Vec::new(),
                    accepted: 0,
                    slot: Some(slot),
                };
                Ok(Ok(self.table.push(writer)?))
            }
            Err(e) => Ok(Err(to_wit(e))),
        }
    }
}

impl InvocationCtx {
    /// Append `chunk` to the writer `this` (see `write`): gathered into the
    /// batch, or handed to the blocking pool with it once the batch is full.
    /// Takes the chunk as a `Vec` (a guest's write) or `Bytes` (a stream
    /// read by `copy-from`), and copies it only when gathering.
    async fn append<C: AsRef<[u8]> + Into<Vec<u8>>>(
        &mut self,
        this: &Resource<ArtifactWriter>,
        chunk: C,
    ) -> wasmtime::Result<Result<(), ArtifactError>> {
        let chunk_len = chunk.as_ref().len() as u64;
        let (max_artifact, max_output) = (self.limits.max_artifact_bytes, self.limits.max_output_bytes);
        let total = self.output_bytes.saturating_add(chunk_len);
        let writer = self.table.get_mut(this)?;
        if writer.pending.is_none() && writer.in_flight.is_none() {
            return Ok(Err(ArtifactError::Closed));
        }
        let in_file = writer.accepted + chunk_len;
        let refused = if total > max_output {
            Some(StoreError::TooLarge { limit: max_output })
        } else if in_file > max_artifact {
            Some(StoreError::TooLarge { limit: max_artifact })
        } else {
            None
        };
        let result = match refused {
            Some(e) => Err(e),
            None if writer.batch.len() + chunk.as_ref().len() < BATCH => {
                // Gathered: goes to disk with the next full batch or `finish`.
                writer.batch.extend_from_slice(chunk.as_ref());
                Ok(())
            }
            // A full batch: written and hashed on the blocking pool while
            // the skill goes on; the one before it must be on disk first.
            None => match writer.settle().await? {
                None => return Ok(Err(ArtifactError::Closed)),
                Some(Err(e)) => Err(e),
                Some(Ok(mut pending)) => {
                    let mut batch = std::mem::take(&mut writer.batch);
                    if batch.is_empty() {
                        batch = chunk.into();
                    } else {
                        batch.extend_from_slice(chunk.as_ref());
                    }
                    writer.in_flight = Some(tokio::task::spawn_blocking(move || {
                        let r = pending.write(&batch);
                        (pending, r, batch)
                    }));
                    Ok(())
                }
            },
        };
        match result {
            Ok(()) => {
                writer.accepted = in_file;
                self.output_bytes = total;
                Ok(Ok(()))
            }
            Err(e) => {
                // The partial file is removed (with the writer's file, or
                // with the batch in flight once it is written), and the
                // descriptor closed.
                writer.pending = None;
                if let Some(job) = writer.in_flight.take() {
                    let _ = job.await;
                }
                writer.slot = None;
                if let StoreError::TooLarge { limit } = e {
                    let key = if total > max_output {
                        "limits.max-output-mb, all files of one call"
                    } else {
                        "limits.max-artifact-mb, per file"
                    };
                    self.limit_log.record(&self.skill, format!("refused: an artifact went past {limit} bytes ({key})"));
                }
                Ok(Err(to_wit(e)))
            }
        }
    }
}

impl HostArtifactWriter for InvocationCtx {
    async fn write(
        &mut self,
        this: Resource<ArtifactWriter>,
        chunk: Vec<u8>,
    ) -> wasmtime::Result<Result<(), ArtifactError>> {
        self.append(&this, chunk).await
    }

    async fn copy_from(
        &mut self,
        this: Resource<ArtifactWriter>,
        source: Resource<DynInputStream>,
        len: u64,
    ) -> wasmtime::Result<Result<u64, CopyError>> {
        let cancel = self.cancel.clone();
        let cancelled = || CopyError::Source("the invocation was cancelled".into());
        let mut copied = 0u64;
        while copied < len {
            if cancel.is_cancelled() {
                return Ok(Err(cancelled()));
            }
            // At most a batch per read: the batch in memory stays bounded.
            let want = (len - copied).min(BATCH as u64) as usize;
            let stream = self.table.get_mut(&source)?;
            let bytes = match stream.read(want) {
                Ok(bytes) if bytes.is_empty() => {
                    tokio::select! {
                        () = stream.ready() => continue,
                        () = cancel.cancelled() => return Ok(Err(cancelled())),
                    }
                }
                Ok(bytes) => bytes,
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => return Ok(Err(CopyError::Source(format!("{e:#}")))),
                Err(StreamError::Trap(e)) => return Err(e),
            };
            let n = bytes.len() as u64;
            if let Err(e) = self.append(&this, bytes).await? {
                return Ok(Err(CopyError::Artifact(e)));
            }
            copied += n;
            self.copied_in_host += n;
        }
        Ok(Ok(copied))
    }

    async fn finish(&mut self, this: Resource<ArtifactWriter>) -> wasmtime::Result<Result<Artifact, ArtifactError>> {
        let writer = self.table.get_mut(&this)?;
        let _slot = writer.slot.take();
        let mut pending = match writer.settle().await? {
            None => return Ok(Err(ArtifactError::Closed)),
            Some(Err(e)) => return Ok(Err(to_wit(e))),
            Some(Ok(p)) => p,
        };
        let batch = std::mem::take(&mut writer.batch);
        let done = blocking(move || {
            pending.write(&batch)?;
            pending.finish()
        });
        match done.await? {
            Ok(stored) => {
                tracing::info!(skill = %self.skill, path = %stored.path.display(), bytes = stored.bytes, "artifact stored");
                let record = to_record(&stored);
                self.produced.lock().unwrap().push(stored);
                Ok(Ok(record))
            }
            Err(e) => Ok(Err(to_wit(e))),
        }
    }

    async fn drop(&mut self, this: Resource<ArtifactWriter>) -> wasmtime::Result<()> {
        // Dropping an unfinished PendingArtifact removes its temp file.
        let writer = self.table.delete(this)?;
        blocking(move || drop(writer)).await
    }
}
