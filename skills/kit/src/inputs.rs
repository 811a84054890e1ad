//! Input files the host opened for this invocation (schema fields marked
//! `"format": "c41-file"`). A skill can read nothing else.

use crate::SkillError;
use crate::bindings::c41::skill::inputs::{self as wit, InputError, InputFile};

/// Most bytes the host hands out per read.
pub const MAX_READ: u32 = 1024 * 1024;

/// An open input file.
pub struct File {
    inner: InputFile,
    field: String,
}

fn to_skill_error(field: &str, e: InputError) -> SkillError {
    match e {
        InputError::NoSuchField(why) => SkillError::invalid(field, why),
        InputError::Io(msg) => SkillError::invalid(field, format!("cannot read the file: {msg}")),
    }
}

/// The file inputs of this call, as [`open`] takes them (`image`,
/// `frames/0`, `frames/1`): the schema's file fields in its order, an
/// array's items in theirs. Needs a host of `c41:skill@0.1.1` or newer.
///
/// ```no_run
/// // Every frame of an array input, in order.
/// let frames: Vec<String> =
///     c41_kit::inputs::fields().into_iter().filter(|f| f.starts_with("frames/")).collect();
/// ```
pub fn fields() -> Vec<String> {
    wit::fields()
}

/// Open the file input at `field` (`image`, `frames/0`).
pub fn open(field: &str) -> Result<File, SkillError> {
    let inner = wit::open(field).map_err(|e| to_skill_error(field, e))?;
    Ok(File { inner, field: field.to_string() })
}

impl File {
    /// The input field it was opened as (`video`, `frames/0`).
    pub fn field(&self) -> &str {
        &self.field
    }
    /// The file's name, for upload names.
    pub fn name(&self) -> String {
        self.inner.name()
    }
    /// MIME type derived from the extension.
    pub fn mime(&self) -> String {
        self.inner.mime()
    }
    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.inner.size()
    }
    /// The file from its start as a `wasi:io` stream, for splicing into a
    /// request body in the host (the kit's multipart forms do). Drop the
    /// stream before the file. Needs a host of `c41:skill@0.1.2` or newer.
    pub fn stream(&self) -> Result<wasip2::io::streams::InputStream, SkillError> {
        self.inner.stream().map_err(|e| to_skill_error(&self.field, e))
    }
    /// The next chunk; empty at the end.
    pub fn read_chunk(&mut self) -> Result<Vec<u8>, SkillError> {
        self.inner.read(MAX_READ).map_err(|e| to_skill_error(&self.field, e))
    }
    /// What the file is (container, length, sizes), read through to its end
    /// without keeping it: an MP4's index may sit at the end. `None` when
    /// it is no media file the probe knows.
    #[cfg(feature = "media")]
    pub fn probe(&mut self) -> Result<Option<crate::media::Info>, SkillError> {
        let mut probe = crate::media::Probe::new();
        loop {
            let chunk = self.read_chunk()?;
            if chunk.is_empty() {
                return Ok(probe.finish().info());
            }
            probe.feed(&chunk);
        }
    }

    /// The whole file (use for files you must send in one body anyway).
    pub fn read_all(&mut self) -> Result<Vec<u8>, SkillError> {
        let mut out = Vec::with_capacity(self.size() as usize);
        loop {
            let chunk = self.read_chunk()?;
            if chunk.is_empty() {
                return Ok(out);
            }
            out.extend_from_slice(&chunk);
        }
    }
}
