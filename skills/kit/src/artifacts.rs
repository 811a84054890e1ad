//! Streaming files to the host's artifact store. Bytes go out in chunks, so a
//! large video never has to fit in guest memory.

use crate::bindings::c41::skill::artifacts::{self as wit, ArtifactError, ArtifactWriter};
use crate::{Artifact, SkillError};
use wstd::http::body::util::BodyExt;

/// Chunk size used when the kit splits a buffer for the host.
pub const CHUNK: usize = 64 * 1024;

/// An artifact being written; nothing is visible until [`Writer::finish`].
pub struct Writer {
    inner: ArtifactWriter,
    name: String,
}

fn to_skill_error(name: &str, e: ArtifactError) -> SkillError {
    match e {
        ArtifactError::TooLarge(limit) => SkillError::Denied {
            target: format!("artifact {name}"),
            reason: format!("larger than the artifact limit of {limit} bytes (limits.max-artifact-mb)"),
        },
        ArtifactError::InvalidName(why) => SkillError::internal(format!("artifact name {name:?}: {why}")),
        ArtifactError::Closed => SkillError::internal(format!("artifact {name} written after finish")),
        ArtifactError::Io(msg) => SkillError::internal(format!("host could not store artifact {name}: {msg}")),
    }
}

/// Start an artifact named like `name` (the host makes it unique). An empty
/// `mime` lets the host derive it from the extension.
pub fn create(name: &str, mime: &str) -> Result<Writer, SkillError> {
    let inner = wit::create(name, mime).map_err(|e| to_skill_error(name, e))?;
    Ok(Writer { inner, name: name.to_string() })
}

impl Writer {
    /// Append bytes, split into host-sized chunks.
    pub fn write_all(&mut self, bytes: &[u8]) -> Result<(), SkillError> {
        for chunk in bytes.chunks(CHUNK) {
            self.inner.write(chunk).map_err(|e| to_skill_error(&self.name, e))?;
        }
        Ok(())
    }

    /// Store the file atomically and describe it.
    pub fn finish(self) -> Result<Artifact, SkillError> {
        self.inner.finish().map_err(|e| to_skill_error(&self.name, e))
    }
}

/// Store a whole buffer as one artifact.
pub fn save(name: &str, mime: &str, bytes: &[u8]) -> Result<Artifact, SkillError> {
    let mut w = create(name, mime)?;
    w.write_all(bytes)?;
    w.finish()
}

/// Stream an HTTP response body into an artifact, calling `on_bytes` with the
/// running total after each chunk (for download progress).
pub async fn save_body(
    name: &str,
    mime: &str,
    body: wstd::http::Body,
    service: &str,
    mut on_bytes: impl FnMut(u64),
) -> Result<Artifact, SkillError> {
    save_body_with(name, mime, body, service, |_, total| {
        on_bytes(total);
        Ok(())
    })
    .await
}

/// Like [`save_body`], but `on_chunk` sees each chunk's bytes and the
/// running total, so a skill can read the file as it passes (a
/// `media::Probe`, progress) without buffering it.
/// An error from `on_chunk` stops the download and stores nothing.
pub async fn save_body_with(
    name: &str,
    mime: &str,
    body: wstd::http::Body,
    service: &str,
    on_chunk: impl FnMut(&[u8], u64) -> Result<(), SkillError>,
) -> Result<Artifact, SkillError> {
    let mut w = create(name, mime)?;
    w.write_body(body, service, on_chunk).await?;
    w.finish()
}

impl Writer {
    /// Appends an HTTP response body, calling `on_chunk` with each chunk and
    /// the running total; returns the bytes written. The artifact stays
    /// unstored until [`finish`](Writer::finish), so a skill can still
    /// refuse what arrived (dropping the writer discards it).
    pub async fn write_body(
        &mut self,
        body: wstd::http::Body,
        service: &str,
        mut on_chunk: impl FnMut(&[u8], u64) -> Result<(), SkillError>,
    ) -> Result<u64, SkillError> {
        let mut body = body.into_boxed_body();
        let mut total = 0u64;
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|e| SkillError::backend(service, None, format!("reading {}: {e:#}", self.name)))?;
            if let Some(data) = frame.data_ref() {
                self.write_all(data)?;
                total += data.len() as u64;
                on_chunk(data, total)?;
            }
        }
        Ok(total)
    }
}
