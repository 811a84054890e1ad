//! Streaming files to the host's artifact store. Bytes go out in chunks, so a
//! large video never has to fit in guest memory; a response body that only
//! goes to the store need not enter it at all ([`Writer::copy_body`]).

use crate::bindings::c41::skill::artifacts::{self as wit, ArtifactError, ArtifactWriter, CopyError};
use crate::http::Streamed;
use crate::{Artifact, SkillError};
use wstd::http::body::util::BodyExt;

/// Chunk size used when the kit splits a buffer for the host.
pub const CHUNK: usize = 64 * 1024;

/// Most bytes one `copy-from` call moves: between two calls the kit reports
/// progress and checks for a cancel.
pub const COPY_STEP: u64 = 4 << 20;

/// What a skill wants to see of a body copied by [`Writer::copy_body`]: the
/// bytes it asks for cross into the skill, the others stay in the host.
pub trait Watch {
    /// How many of the next bytes it need not see (`u64::MAX`: none of the
    /// rest; 0: it wants the next ones).
    fn skippable(&self) -> u64;
    /// The next bytes, seen.
    fn feed(&mut self, chunk: &[u8]);
    /// The next `n` bytes went by unseen.
    fn skip(&mut self, n: u64);
}

/// Sees none of the bytes: the whole body stays in the host.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unwatched;

impl Watch for Unwatched {
    fn skippable(&self) -> u64 {
        u64::MAX
    }
    fn feed(&mut self, _: &[u8]) {}
    fn skip(&mut self, _: u64) {}
}

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

/// Store a streamed response body as one artifact (see
/// [`Writer::copy_body`]).
pub async fn save_streamed(
    name: &str,
    mime: &str,
    body: &mut Streamed,
    service: &str,
    watch: &mut impl Watch,
    on_bytes: impl FnMut(u64) -> Result<(), SkillError>,
) -> Result<Artifact, SkillError> {
    let mut w = create(name, mime)?;
    w.copy_body(body, service, watch, on_bytes).await?;
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
    /// Appends a streamed response body, to its end, and returns the bytes
    /// appended. The host reads it from the connection and stores it
    /// (`artifact-writer.copy-from`), except the bytes `watch` wants to see
    /// (a file's header, an MP4's `moov`), which the skill reads in between.
    /// `on_bytes` gets the running total at least every [`COPY_STEP`]
    /// bytes; its error stops the copy. The artifact stays unstored until
    /// [`finish`](Writer::finish).
    pub async fn copy_body(
        &mut self,
        body: &mut Streamed,
        service: &str,
        watch: &mut impl Watch,
        mut on_bytes: impl FnMut(u64) -> Result<(), SkillError>,
    ) -> Result<u64, SkillError> {
        let broke = |name: &str, e: String| SkillError::backend(service, None, format!("reading {name}: {e}"));
        let mut total = 0u64;
        loop {
            let skip = watch.skippable().min(COPY_STEP);
            let moved = if skip > 0 {
                let n = self.inner.copy_from(body.stream(), skip).map_err(|e| match e {
                    CopyError::Source(e) => broke(&self.name, e),
                    CopyError::Artifact(e) => to_skill_error(&self.name, e),
                })?;
                watch.skip(n);
                n
            } else {
                match body.read(CHUNK).await.map_err(|e| broke(&self.name, e))? {
                    Some(chunk) => {
                        self.write_all(&chunk)?;
                        watch.feed(&chunk);
                        chunk.len() as u64
                    }
                    None => 0,
                }
            };
            if moved == 0 {
                return Ok(total);
            }
            total += moved;
            on_bytes(total)?;
        }
    }

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
