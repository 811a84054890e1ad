//! `c41:skill/artifacts`: the artifact sink. Chunks go straight to a temp
//! file in the output directory (`c41-artifacts` hashes and stores them
//! atomically), so a large video never sits in memory. The host remembers
//! what each invocation stored: an outcome may only list those files.

use crate::runtime::InvocationCtx;
use crate::runtime::bindings::c41::skill::artifacts::{ArtifactError, Host, HostArtifactWriter};
use crate::runtime::bindings::c41::skill::types::Artifact;
use crate::runtime::budget::Slot;
use c41_artifacts::{ArtifactError as StoreError, PendingArtifact, StoredArtifact};
use wasmtime::component::Resource;

/// The host object behind an `artifact-writer` resource.
pub struct ArtifactWriter {
    pending: Option<PendingArtifact>,
    /// Counts against `limits.open-files` until the file is finished or
    /// dropped.
    slot: Option<Slot>,
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
            Ok(pending) => Ok(Ok(self.table.push(ArtifactWriter { pending: Some(pending), slot: Some(slot) })?)),
            Err(e) => Ok(Err(to_wit(e))),
        }
    }
}

impl HostArtifactWriter for InvocationCtx {
    async fn write(
        &mut self,
        this: Resource<ArtifactWriter>,
        chunk: Vec<u8>,
    ) -> wasmtime::Result<Result<(), ArtifactError>> {
        let writer = self.table.get_mut(&this)?;
        let Some(mut pending) = writer.pending.take() else {
            return Ok(Err(ArtifactError::Closed));
        };
        let total = self.output_bytes.saturating_add(chunk.len() as u64);
        let result = if total > self.limits.max_output_bytes {
            Err(StoreError::TooLarge { limit: self.limits.max_output_bytes })
        } else {
            let (back, r) = blocking(move || {
                let r = pending.write(&chunk);
                (pending, r)
            })
            .await?;
            pending = back;
            r
        };
        let writer = self.table.get_mut(&this)?;
        match result {
            Ok(()) => {
                writer.pending = Some(pending);
                self.output_bytes = total;
                Ok(Ok(()))
            }
            Err(e) => {
                // The partial file is removed, and the descriptor closed.
                drop(pending);
                writer.slot = None;
                if let StoreError::TooLarge { limit } = e {
                    let key = if total > self.limits.max_output_bytes {
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

    async fn finish(&mut self, this: Resource<ArtifactWriter>) -> wasmtime::Result<Result<Artifact, ArtifactError>> {
        let writer = self.table.get_mut(&this)?;
        let Some(pending) = writer.pending.take() else {
            return Ok(Err(ArtifactError::Closed));
        };
        let _slot = writer.slot.take();
        match blocking(move || pending.finish()).await? {
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
