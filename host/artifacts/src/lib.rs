//! Atomic, hashed storage of the files c41 skills produce.
//!
//! A skill streams its output in chunks (a 500 MB video never has to sit in
//! memory) and the host answers with where the file ended up, its MIME type,
//! size and sha256. Skills are untrusted and runs can crash or be aborted, so
//! the store is built around a few guarantees:
//!
//! - **Nothing half-written is ever visible under a final name.** Bytes go to
//!   a temporary file (`.c41-partial-…`) created *in the output directory
//!   itself*, so the final step is a same-filesystem rename, which is atomic.
//!   Anyone watching the directory sees either no file or the complete file.
//! - **The hash costs no second pass.** Every chunk is fed to sha256 while it
//!   is written, so a 500 MB artifact is read exactly once.
//! - **A skill cannot fill the disk.** Each artifact has a byte limit; the
//!   write that would exceed it fails and the temporary file is removed on
//!   the spot rather than at the end.
//! - **A finished artifact survives a power cut.** The file is `fsync`ed
//!   before the rename and, on unix, the directory after it, so the name is
//!   never durable without its content.
//! - **Stored files are never overwritten.** The rename refuses to replace an
//!   existing name. The final name carries the first 12 hex digits of the
//!   sha256, so a clash almost always means "same content": that is verified
//!   by comparing the existing file with the new copy, and the write is
//!   deduplicated (the copy is dropped unsynced). Anything else is reported,
//!   never clobbered.
//! - **Skill-chosen names cannot escape the directory.** Names are reduced to
//!   a single conservative component (`[A-Za-z0-9._-]`, no leading dot), so a
//!   suggestion like `../../etc/passwd` becomes `passwd-<hash>`, and stored
//!   names can never collide with the hidden temporary files.
//!
//! Dropping a [`PendingArtifact`] without [`PendingArtifact::finish`] (an
//! abort, a trap in the skill, a panic in the host) removes its temporary
//! file. A crash of the whole process (SIGKILL, a power cut) can leave
//! `.c41-partial-<pid>-*` files behind; they are hidden, never resolved as
//! artifacts, and [`ArtifactStore::sweep_partials`] deletes those whose
//! process is gone (the host calls it at start).
//!
//! Later runs refer to earlier outputs as `artifact:<sha256 or prefix>` or
//! `artifact:<file name>`; [`ArtifactStore::resolve`] turns such a reference
//! back into a verified [`StoredArtifact`].
//!
//! Everything is synchronous `std::io`: the host calls it from blocking tasks.

#![deny(missing_docs)]

use std::fs::{self, File};
use std::io::{self, Read, Seek, Write};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;

/// Prefix of artifact references, as in `artifact:3f2a9c01d4e5`.
pub const REFERENCE_PREFIX: &str = "artifact:";

/// Prefix of the temporary files; the leading dot keeps them out of the way
/// of people and of [`ArtifactStore::resolve`].
const PARTIAL_PREFIX: &str = ".c41-partial-";

/// A partial file nobody touched for this long is swept even if a process
/// with the pid in its name is alive (the pid was reused).
pub const STALE_PARTIAL: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

/// Whether `path` names a temporary file of an artifact being written (or
/// left behind by a crash): never a finished artifact, never a valid input.
pub fn is_partial(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n.to_string_lossy().starts_with(PARTIAL_PREFIX))
}

/// Hex digits of the sha256 that go into a stored file name: enough that a
/// clash between different contents is practically impossible in one
/// directory, short enough to keep names readable.
const NAME_HASH_LEN: usize = 12;

/// Shortest hash prefix [`ArtifactStore::resolve`] accepts; shorter prefixes
/// would match by accident too easily.
const MIN_PREFIX_LEN: usize = 8;

/// Longest stem kept from a suggested name, so names stay well under file
/// system limits once the hash and extension are added.
const MAX_STEM_LEN: usize = 64;

/// Longest suffix still treated as an extension rather than part of the stem
/// (`safetensors`, a LoRA's, is 11).
const MAX_EXT_LEN: usize = 12;

/// MIME type used when neither the name nor the skill says what the bytes are.
const FALLBACK_MIME: &str = "application/octet-stream";

/// Extension ↔ MIME table. Lookups take the first match in either direction,
/// so the preferred extension of a type comes first (`jpg` before `jpeg`), and
/// alias types sit after the canonical one (`audio/x-wav` after `audio/wav`).
const MIME_TABLE: &[(&str, &str)] = &[
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("jpg", "image/jpg"),
    ("webp", "image/webp"),
    ("gif", "image/gif"),
    ("apng", "image/apng"),
    ("bmp", "image/bmp"),
    ("mp4", "video/mp4"),
    ("webm", "video/webm"),
    ("mov", "video/quicktime"),
    ("mkv", "video/x-matroska"),
    ("wav", "audio/wav"),
    ("wav", "audio/x-wav"),
    ("wav", "audio/wave"),
    ("flac", "audio/flac"),
    ("flac", "audio/x-flac"),
    ("mp3", "audio/mpeg"),
    ("mp3", "audio/mp3"),
    ("ogg", "audio/ogg"),
    ("opus", "audio/opus"),
    ("m4a", "audio/mp4"),
    ("aac", "audio/aac"),
    ("json", "application/json"),
    ("txt", "text/plain"),
    ("md", "text/markdown"),
    ("html", "text/html"),
    ("htm", "text/html"),
    ("pdf", "application/pdf"),
];

/// The MIME type for a file extension (without the dot, any case), if known.
pub fn mime_for_extension(ext: &str) -> Option<&'static str> {
    MIME_TABLE.iter().find(|(e, _)| e.eq_ignore_ascii_case(ext)).map(|&(_, m)| m)
}

/// The preferred file extension (without the dot) for a MIME type, if known.
/// Parameters such as `; charset=utf-8` are ignored.
pub fn extension_for_mime(mime: &str) -> Option<&'static str> {
    let essence = mime.split(';').next().unwrap_or("").trim();
    MIME_TABLE.iter().find(|(_, m)| m.eq_ignore_ascii_case(essence)).map(|&(e, _)| e)
}

/// Why storing or resolving an artifact failed.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The artifact grew past its byte limit; its temporary file is gone.
    #[error("artifact exceeds its size limit of {limit} bytes")]
    TooLarge {
        /// The limit given to [`ArtifactStore::create`].
        limit: u64,
    },
    /// A MIME type or artifact reference that cannot be used.
    #[error("invalid artifact name: {reason}")]
    InvalidName {
        /// What is wrong, naming the offending input.
        reason: String,
    },
    /// The artifact was already aborted (size limit, I/O error) or finished.
    #[error("artifact is closed: it was aborted after an earlier error")]
    Closed,
    /// A file system operation failed.
    #[error("I/O error on {}", path.display())]
    Io {
        /// The file or directory the operation was about.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// No stored artifact matches the reference.
    #[error("no artifact matches `{reference}`")]
    NotFound {
        /// The reference as given.
        reference: String,
    },
    /// A hash prefix matches artifacts with different contents.
    #[error("`{reference}` matches several artifacts: {}", candidates.join(", "))]
    Ambiguous {
        /// The reference as given.
        reference: String,
        /// File names of the matching artifacts, sorted.
        candidates: Vec<String>,
    },
    /// A stored file no longer holds the content its name's hash promises
    /// (edited or damaged after it was stored).
    #[error("{} does not hold the content its name promises", path.display())]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
    },
}

/// Attaches the path an I/O error was about.
fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ArtifactError + '_ {
    move |source| ArtifactError::Io { path: path.to_path_buf(), source }
}

/// A finished, stored artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredArtifact {
    /// Absolute path of the file.
    pub path: PathBuf,
    /// The file's name inside the store, e.g. `cat-3f2a9c01d4e5.png`.
    pub file_name: String,
    /// MIME type, without parameters, lowercase.
    pub mime: String,
    /// Size in bytes.
    pub bytes: u64,
    /// sha256 of the content, lowercase hex.
    pub sha256: String,
}

impl StoredArtifact {
    /// The reference a later run can pass to [`ArtifactStore::resolve`]:
    /// `artifact:<sha256>`. It names the content, so it stays valid however
    /// the file is named.
    pub fn reference(&self) -> String {
        format!("{REFERENCE_PREFIX}{}", self.sha256)
    }
}

/// An output directory holding artifacts.
#[derive(Debug, Clone)]
pub struct ArtifactStore {
    dir: PathBuf,
}

impl ArtifactStore {
    /// Opens (creating it and its parents if missing) the output directory.
    /// The path is canonicalised so that every path handed out is absolute
    /// and stays valid if the process changes its working directory.
    pub fn open(dir: impl Into<PathBuf>) -> Result<ArtifactStore, ArtifactError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let dir = fs::canonicalize(&dir).map_err(io_err(&dir))?;
        Ok(ArtifactStore { dir })
    }

    /// The canonical (absolute) output directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Starts a new artifact. `suggested_name` comes from the skill and is
    /// only a hint (see the crate docs); `mime` may be empty to derive it from
    /// the name's extension. Writes beyond `max_bytes` fail.
    pub fn create(&self, suggested_name: &str, mime: &str, max_bytes: u64) -> Result<PendingArtifact, ArtifactError> {
        let plan = plan_name(suggested_name, mime)?;
        let mut builder = tempfile::Builder::new();
        // The pid tells a sweep whose file this is.
        let prefix = format!("{PARTIAL_PREFIX}{}-", std::process::id());
        builder.prefix(&prefix);
        // tempfile's default 0600 would make outputs private to the host user;
        // 0666 minus the umask is what any other program writing the file gets.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(fs::Permissions::from_mode(0o666));
        }
        let file = builder.tempfile_in(&self.dir).map_err(io_err(&self.dir))?;
        Ok(PendingArtifact {
            dir: self.dir.clone(),
            plan,
            max_bytes,
            bytes: 0,
            written_back: 0,
            open: Some((file, Sha256::new())),
        })
    }

    /// Deletes the partial files of processes that are gone
    /// (`process_alive(pid)` false), and any partial untouched for
    /// [`STALE_PARTIAL`]; keeps those of live processes (another c41 storing
    /// a file right now). Returns what it deleted.
    pub fn sweep_partials(&self, process_alive: impl Fn(u32) -> bool) -> Vec<PathBuf> {
        let Ok(entries) = fs::read_dir(&self.dir) else { return Vec::new() };
        let mut swept = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix(PARTIAL_PREFIX) else { continue };
            let pid = rest.split_once('-').and_then(|(pid, _)| pid.parse::<u32>().ok());
            let untouched = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= STALE_PARTIAL);
            // A partial without a pid comes from an older c41: its age decides.
            let owner_alive = pid.is_some_and(&process_alive) || (pid.is_none() && !untouched);
            if (!owner_alive || untouched)
                && entry.file_type().is_ok_and(|t| t.is_file())
                && fs::remove_file(entry.path()).is_ok()
            {
                swept.push(entry.path());
            }
        }
        swept
    }

    /// Resolves `artifact:<hex>` (a full sha256 or a prefix of at least 8 hex
    /// digits) or `artifact:<file name>` to a stored artifact, verifying its
    /// content by hashing it.
    ///
    /// Several files with identical content (stored under different stems)
    /// are not ambiguous: the content is what a reference names, and the
    /// first file name in sorted order is returned.
    pub fn resolve(&self, reference: &str) -> Result<StoredArtifact, ArtifactError> {
        let invalid = |why: &str| ArtifactError::InvalidName { reason: format!("`{reference}`: {why}") };
        let body = reference
            .strip_prefix(REFERENCE_PREFIX)
            .ok_or_else(|| invalid("expected artifact:<sha256> or artifact:<file name>"))?;
        if !body.is_empty() && body.bytes().all(|b| b.is_ascii_hexdigit()) {
            if body.len() < MIN_PREFIX_LEN {
                return Err(invalid("a hash prefix needs at least 8 hex digits"));
            }
            if body.len() > 64 {
                return Err(invalid("longer than a sha256"));
            }
            return self.resolve_hash(reference, &body.to_ascii_lowercase());
        }
        let mut components = Path::new(body).components();
        let single_normal = matches!(components.next(), Some(Component::Normal(_))) && components.next().is_none();
        if !single_normal || body.contains(['/', '\\', '\0']) {
            return Err(invalid("not a plain file name inside the output directory"));
        }
        if body.starts_with('.') {
            return Err(invalid("hidden files are not artifacts"));
        }
        let path = self.dir.join(body);
        match fs::symlink_metadata(&path) {
            // Symlinks are refused: they could point anywhere.
            Ok(meta) if meta.is_file() => {}
            Ok(_) => return Err(not_found(reference)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(not_found(reference)),
            Err(e) => return Err(io_err(&path)(e)),
        }
        let (sha256, bytes) = hash_file(&path)?;
        if name_hash(body).is_some_and(|tag| !sha256.starts_with(tag)) {
            return Err(ArtifactError::Corrupt { path });
        }
        Ok(self.stored(body.to_string(), sha256, bytes))
    }

    fn resolve_hash(&self, reference: &str, query: &str) -> Result<StoredArtifact, ArtifactError> {
        let tag_query = &query[..query.len().min(NAME_HASH_LEN)];
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io_err(&self.dir))? {
            let entry = entry.map_err(io_err(&self.dir))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if name.starts_with('.') || !name_hash(&name).is_some_and(|t| t.starts_with(tag_query)) {
                continue;
            }
            // DirEntry::file_type does not follow symlinks, so they are skipped.
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                names.push(name);
            }
        }
        names.sort();

        let mut matches: Vec<(String, String, u64)> = Vec::new();
        let mut corrupt = None;
        for name in names {
            let path = self.dir.join(&name);
            let (sha256, bytes) = hash_file(&path)?;
            if name_hash(&name).is_some_and(|tag| !sha256.starts_with(tag)) {
                corrupt.get_or_insert(path);
            } else if sha256.starts_with(query) {
                matches.push((name, sha256, bytes));
            }
        }
        let Some((first_name, first_sha, first_bytes)) = matches.first().cloned() else {
            return Err(match corrupt {
                Some(path) => ArtifactError::Corrupt { path },
                None => not_found(reference),
            });
        };
        if matches.iter().any(|(_, sha, _)| *sha != first_sha) {
            return Err(ArtifactError::Ambiguous {
                reference: reference.to_string(),
                candidates: matches.into_iter().map(|(name, _, _)| name).collect(),
            });
        }
        Ok(self.stored(first_name, first_sha, first_bytes))
    }

    fn stored(&self, file_name: String, sha256: String, bytes: u64) -> StoredArtifact {
        let mime = extension_of(&file_name).and_then(mime_for_extension).unwrap_or(FALLBACK_MIME);
        StoredArtifact { path: self.dir.join(&file_name), file_name, mime: mime.to_string(), bytes, sha256 }
    }
}

fn not_found(reference: &str) -> ArtifactError {
    ArtifactError::NotFound { reference: reference.to_string() }
}

/// An artifact being written. Finish it with [`PendingArtifact::finish`];
/// dropping it instead discards everything written so far.
#[derive(Debug)]
pub struct PendingArtifact {
    dir: PathBuf,
    plan: NamePlan,
    max_bytes: u64,
    bytes: u64,
    /// Bytes handed to the kernel's writeback so far (see [`WRITEBACK_EVERY`]).
    written_back: u64,
    /// `None` once aborted: dropping the `NamedTempFile` deletes it.
    open: Option<(NamedTempFile, Sha256)>,
}

impl PendingArtifact {
    /// Appends a chunk. A chunk that would take the artifact past its limit
    /// is not written at all: the artifact is aborted and its temporary file
    /// deleted, as after any other write error; later calls return
    /// [`ArtifactError::Closed`].
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), ArtifactError> {
        let (file, hasher) = self.open.as_mut().ok_or(ArtifactError::Closed)?;
        let within_limit = self.bytes.checked_add(chunk.len() as u64).filter(|&total| total <= self.max_bytes);
        let Some(total) = within_limit else {
            self.open = None;
            return Err(ArtifactError::TooLarge { limit: self.max_bytes });
        };
        if let Err(source) = file.write_all(chunk) {
            let path = file.path().to_path_buf();
            self.open = None;
            return Err(ArtifactError::Io { path, source });
        }
        hasher.update(chunk);
        self.bytes = total;
        if total - self.written_back >= WRITEBACK_EVERY {
            start_writeback(file.as_file(), self.written_back, total - self.written_back);
            self.written_back = total;
        }
        Ok(())
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.bytes
    }

    /// Makes the artifact durable and visible under its final name,
    /// `<stem>-<first 12 hex of sha256>.<ext>`. If that name already holds the
    /// same content, the existing file is returned and the new copy dropped.
    pub fn finish(mut self) -> Result<StoredArtifact, ArtifactError> {
        let (mut file, hasher) = self.open.take().ok_or(ArtifactError::Closed)?;
        let temp_path = file.path().to_path_buf();
        file.flush().map_err(io_err(&temp_path))?;

        let sha256 = hex::encode(hasher.finalize());
        let file_name = self.plan.file_name(&sha256[..NAME_HASH_LEN]);
        let path = self.dir.join(&file_name);
        let stored =
            StoredArtifact { path: path.clone(), file_name, mime: self.plan.mime.clone(), bytes: self.bytes, sha256 };

        // Stored before: this copy is only compared with it and dropped, so
        // it is never synced.
        if let Some(same) = dedupe(&stored, file.as_file_mut())? {
            return Ok(same);
        }
        file.as_file().sync_all().map_err(io_err(&temp_path))?;
        match file.persist_noclobber(&path) {
            Ok(_) => {
                sync_dir(&self.dir)?;
                Ok(stored)
            }
            // Stored by someone else meanwhile. The error hands the temporary
            // file back; it is deleted when dropped, whatever the outcome.
            Err(mut err) => match dedupe(&stored, err.file.as_file_mut())? {
                Some(same) => Ok(same),
                None => Err(io_err(&path)(err.error)),
            },
        }
    }
}

/// What is at `stored.path` already: nothing (`None`), the same bytes as
/// `copy` (the artifact, deduplicated), or anything else, which is
/// [`ArtifactError::Corrupt`] and left as it is. Comparing the bytes
/// is cheaper than hashing the existing file and proves the same: `copy`'s
/// hash is the one the name promises.
fn dedupe(stored: &StoredArtifact, copy: &mut File) -> Result<Option<StoredArtifact>, ArtifactError> {
    let path = &stored.path;
    let existing = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path)(e)),
    };
    if existing.is_file() && existing.len() == stored.bytes && same_bytes(path, copy, stored.bytes)? {
        Ok(Some(stored.clone()))
    } else {
        Err(ArtifactError::Corrupt { path: path.clone() })
    }
}

/// Whether the file at `path` holds the `len` bytes `copy` holds.
fn same_bytes(path: &Path, copy: &mut File, len: u64) -> Result<bool, ArtifactError> {
    const CHUNK: usize = 256 * 1024;
    let mut other = File::open(path).map_err(io_err(path))?;
    copy.seek(io::SeekFrom::Start(0)).map_err(io_err(path))?;
    let (mut a, mut b) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
    let mut left = len;
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        copy.read_exact(&mut a[..n]).map_err(io_err(path))?;
        if other.read_exact(&mut b[..n]).is_err() || a[..n] != b[..n] {
            return Ok(false);
        }
        left -= n as u64;
    }
    Ok(true)
}

/// Bytes written to a file before they are handed to the kernel's writeback.
/// The `fsync` at [`PendingArtifact::finish`] then waits for the last few
/// MiB only, not for a whole 256 MiB video that sat in the page cache.
const WRITEBACK_EVERY: u64 = 8 << 20;

/// Starts writing `len` bytes at `from` of `file` to disk, without waiting
/// (Linux `sync_file_range` with `SYNC_FILE_RANGE_WRITE`). Durability still
/// comes from the `fsync` at `finish`; a failure here costs only the head
/// start. Elsewhere a no-op.
fn start_writeback(file: &File, from: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let (from, len) = (from.min(i64::MAX as u64) as i64, len.min(i64::MAX as u64) as i64);
        // SAFETY: a syscall on a descriptor `file` keeps open; it reads no
        // memory of ours.
        unsafe {
            libc::sync_file_range(file.as_raw_fd(), from, len, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, from, len);
}

/// Makes a rename in `dir` durable. Directories cannot be opened for syncing
/// on Windows, where the rename is already durable enough.
fn sync_dir(dir: &Path) -> Result<(), ArtifactError> {
    #[cfg(unix)]
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// sha256 (lowercase hex) and size of a file, read in bounded chunks.
fn hash_file(path: &Path) -> Result<(String, u64), ArtifactError> {
    let mut file = File::open(path).map_err(io_err(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut bytes = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(path)(e)),
        };
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), bytes))
}

/// What a suggested name and MIME type turn into.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NamePlan {
    stem: String,
    ext: Option<String>,
    mime: String,
}

impl NamePlan {
    fn file_name(&self, hash_tag: &str) -> String {
        match &self.ext {
            Some(ext) => format!("{}-{hash_tag}.{ext}", self.stem),
            None => format!("{}-{hash_tag}", self.stem),
        }
    }
}

/// Sanitises the suggested name and reconciles it with the MIME type.
fn plan_name(suggested_name: &str, mime: &str) -> Result<NamePlan, ArtifactError> {
    let mime = normalise_mime(mime)?;
    let (stem, ext) = sanitise_name(suggested_name);
    let ext = ext.or_else(|| mime.as_deref().and_then(extension_for_mime).map(str::to_string));
    let mime = mime.unwrap_or_else(|| ext.as_deref().and_then(mime_for_extension).unwrap_or(FALLBACK_MIME).to_string());
    Ok(NamePlan { stem, ext, mime })
}

/// `None` for an empty MIME type; otherwise its lowercase `type/subtype`
/// without parameters, or an error if it is not shaped like one.
fn normalise_mime(mime: &str) -> Result<Option<String>, ArtifactError> {
    let essence = mime.split(';').next().unwrap_or("").trim();
    if mime.trim().is_empty() {
        return Ok(None);
    }
    let is_token = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b));
    match essence.split_once('/') {
        Some((ty, sub)) if is_token(ty) && is_token(sub) => Ok(Some(essence.to_ascii_lowercase())),
        _ => Err(ArtifactError::InvalidName { reason: format!("MIME type `{mime}` is not of the form type/subtype") }),
    }
}

/// Reduces a skill-suggested name to `(stem, extension)`: last path
/// component only, `[A-Za-z0-9._-]` only, no runs of `-` or `.`, no leading
/// dot or dash (hidden files, command-line options), stem capped at
/// [`MAX_STEM_LEN`], extension lowercase.
fn sanitise_name(suggested: &str) -> (String, Option<String>) {
    let last = suggested.rsplit(['/', '\\']).next().unwrap_or("");
    let mut clean = String::with_capacity(last.len());
    for c in last.chars() {
        let c = if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '-' };
        if matches!(c, '-' | '.') && clean.ends_with(c) {
            continue;
        }
        clean.push(c);
    }
    let trim = |s: &str| s.trim_matches(['.', '-']).to_string();
    let clean = trim(&clean);

    let (stem, ext) = match clean.rsplit_once('.') {
        Some((stem, ext))
            if !stem.is_empty()
                && !ext.is_empty()
                && ext.len() <= MAX_EXT_LEN
                && ext.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            (trim(stem), Some(ext.to_ascii_lowercase()))
        }
        _ => (clean, None),
    };
    // All ASCII by now, so byte truncation is a char boundary.
    let mut stem = stem;
    if stem.len() > MAX_STEM_LEN {
        stem.truncate(MAX_STEM_LEN);
        stem = trim(&stem);
    }
    if stem.is_empty() {
        stem = "artifact".to_string();
    }
    (stem, ext)
}

/// The extension of a stored file name, if it has one.
fn extension_of(file_name: &str) -> Option<&str> {
    file_name.rsplit_once('.').map(|(_, ext)| ext)
}

/// The hash tag in a stored file name (`<stem>-<12 hex>[.<ext>]`), if any.
fn name_hash(file_name: &str) -> Option<&str> {
    fn tag_at_end(s: &str) -> Option<&str> {
        let (_, tag) = s.rsplit_once('-')?;
        let is_tag = tag.len() == NAME_HASH_LEN && tag.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        is_tag.then_some(tag)
    }
    tag_at_end(file_name).or_else(|| tag_at_end(file_name.rsplit_once('.')?.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha_hex(data: &[u8]) -> String {
        hex::encode(Sha256::digest(data))
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        names
    }

    fn partials(dir: &Path) -> Vec<String> {
        entries(dir).into_iter().filter(|n| n.starts_with(PARTIAL_PREFIX)).collect()
    }

    fn store_bytes(store: &ArtifactStore, name: &str, mime: &str, data: &[u8]) -> StoredArtifact {
        let mut pending = store.create(name, mime, u64::MAX).unwrap();
        pending.write(data).unwrap();
        pending.finish().unwrap()
    }

    /// Deterministic, non-repeating test data.
    fn pseudo_random(len: usize) -> Vec<u8> {
        let mut x: u32 = 0x1234_5678;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect()
    }

    #[test]
    fn chunked_write_is_hashed_and_stored_intact() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(tmp.path()).unwrap();
        let data = pseudo_random(5 * 1024 * 1024 + 123);

        let mut pending = store.create("clip.mp4", "video/mp4", 10 << 20).unwrap();
        for chunk in data.chunks(64 * 1024 + 7) {
            pending.write(chunk).unwrap();
        }
        assert_eq!(pending.bytes_written(), data.len() as u64);
        let stored = pending.finish().unwrap();

        let expected = sha_hex(&data);
        assert_eq!(stored.sha256, expected);
        assert_eq!(stored.bytes, data.len() as u64);
        assert_eq!(stored.mime, "video/mp4");
        assert_eq!(stored.file_name, format!("clip-{}.mp4", &expected[..12]));
        assert!(stored.path.is_absolute());
        assert_eq!(stored.path.parent().unwrap(), store.dir());
        assert!(stored.path.starts_with(fs::canonicalize(tmp.path()).unwrap()));
        assert_eq!(fs::read(&stored.path).unwrap(), data);
        assert_eq!(stored.reference(), format!("artifact:{expected}"));
        assert!(partials(store.dir()).is_empty());
        assert_eq!(entries(store.dir()), vec![stored.file_name.clone()]);
    }

    #[test]
    fn open_creates_missing_parents_and_canonicalises() {
        let tmp = tempfile::tempdir().unwrap();
        let nested = tmp.path().join("a").join("b").join("..").join("c");
        let store = ArtifactStore::open(&nested).unwrap();
        assert!(store.dir().is_absolute());
        assert_eq!(store.dir(), fs::canonicalize(tmp.path()).unwrap().join("a").join("c"));
        assert!(store.dir().is_dir());
    }

    #[test]
    fn open_error_names_the_path() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("plain-file");
        fs::write(&file, b"x").unwrap();
        let err = ArtifactStore::open(file.join("sub")).unwrap_err();
        assert!(matches!(err, ArtifactError::Io { .. }));
        assert!(err.to_string().contains("plain-file"), "{err}");
    }

    #[test]
    fn nothing_visible_under_a_final_name_before_finish() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(tmp.path()).unwrap();
        let mut pending = store.create("out.txt", "", 1 << 20).unwrap();
        pending.write(b"first half, ").unwrap();
        let mid = entries(store.dir());
        assert_eq!(mid.len(), 1);
        assert!(mid[0].starts_with(PARTIAL_PREFIX), "{mid:?}");
        pending.write(b"second half").unwrap();
        let stored = pending.finish().unwrap();
        assert_eq!(entries(store.dir()), vec![stored.file_name]);
    }

    #[test]
    fn drop_without_finish_removes_the_temp_file() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(tmp.path()).unwrap();
        let mut pending = store.create("out.bin", "", 1 << 20).unwrap();
        pending.write(&[1, 2, 3]).unwrap();
        assert_eq!(partials(store.dir()).len(), 1);
        drop(pending);
        assert!(entries(store.dir()).is_empty());
    }

    #[test]
    fn limit_is_inclusive_and_one_more_byte_aborts() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(tmp.path()).unwrap();

        let mut exact = store.create("exact.bin", "", 10).unwrap();
        exact.write(&[0; 4]).unwrap();
        exact.write(&[0; 6]).unwrap();
        assert_eq!(exact.finish().unwrap().bytes, 10);

        let mut over = store.create("over.bin", "", 10).unwrap();
        over.write(&[0; 10]).unwrap();
        assert!(matches!(over.write(&[0]), Err(ArtifactError::TooLarge { limit: 10 })));
        assert!(partials(store.dir()).is_empty());
        assert!(matches!(over.write(&[]), Err(ArtifactError::Closed)));
        assert!(matches!(over.finish(), Err(ArtifactError::Closed)));
        assert_eq!(entries(store.dir()).len(), 1, "only exact.bin's file");
    }

    #[test]
    fn single_oversized_chunk_is_not_written() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(tmp.path()).unwrap();
        let mut pending = store.create("big", "", 0).unwrap();
        let err = pending.write(&[0; 1]).unwrap_err();
        assert_eq!(err.to_string(), "artifact exceeds its size limit of 0 bytes");
        assert!(entries(store.dir()).is_empty());
    }

    #[test]
    fn empty_artifact_is_allowed() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(tmp.path()).unwrap();
        let stored = store.create("empty.txt", "", 0).unwrap().finish().unwrap();
        assert_eq!(stored.bytes, 0);
        assert_eq!(stored.sha256, sha_hex(b""));
    }

    #[test]
    fn names_are_sanitised() {
        let long = "x".repeat(300);
        let long_png = format!("{long}.png");
        let cases: &[(&str, &str, &str, Option<&str>, &str)] = &[
            // (suggested, mime, stem, ext, mime out)
            ("../../etc/passwd", "", "passwd", None, FALLBACK_MIME),
            ("..\\..\\win.ini", "", "win", Some("ini"), FALLBACK_MIME),
            ("a b?.png", "", "a-b", Some("png"), "image/png"),
            (".hidden", "", "hidden", None, FALLBACK_MIME),
            ("..", "", "artifact", None, FALLBACK_MIME),
            ("", "", "artifact", None, FALLBACK_MIME),
            ("", "image/png", "artifact", Some("png"), "image/png"),
            ("???", "audio/wav", "artifact", Some("wav"), "audio/wav"),
            ("--rm -rf", "", "rm-rf", None, FALLBACK_MIME),
            ("Photo.JPEG", "", "Photo", Some("jpeg"), "image/jpeg"),
            ("archive.tar.gz", "", "archive.tar", Some("gz"), FALLBACK_MIME),
            ("a...b..txt", "", "a.b", Some("txt"), "text/plain"),
            ("café.md", "", "caf", Some("md"), "text/markdown"),
            ("render", "image/webp", "render", Some("webp"), "image/webp"),
            ("render", "Text/Plain; charset=utf-8", "render", Some("txt"), "text/plain"),
            ("notes.weird", "", "notes", Some("weird"), FALLBACK_MIME),
            ("x.not-an-ext", "", "x.not-an-ext", None, FALLBACK_MIME),
            ("data", "application/x-unknown", "data", None, "application/x-unknown"),
            // A mismatch between name and type is the skill's business.
            ("pic.png", "image/jpeg", "pic", Some("png"), "image/jpeg"),
        ];
        for &(suggested, mime, stem, ext, mime_out) in cases {
            let plan = plan_name(suggested, mime).unwrap();
            assert_eq!(
                plan,
                NamePlan { stem: stem.to_string(), ext: ext.map(str::to_string), mime: mime_out.to_string() },
                "suggested {suggested:?} with mime {mime:?}"
            );
        }

        let plan = plan_name(&long, "").unwrap();
        assert_eq!(plan.stem, "x".repeat(MAX_STEM_LEN));
        let plan = plan_name(&long_png, "").unwrap();
        assert_eq!((plan.stem.len(), plan.ext.as_deref()), (MAX_STEM_LEN, Some("png")));
        let dashes = format!("{}-tail", "y".repeat(MAX_STEM_LEN - 1));
        assert_eq!(plan_name(&dashes, "").unwrap().stem, "y".repeat(MAX_STEM_LEN - 1));
    }

    #[test]
    fn malformed_mime_is_rejected() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(tmp.path()).unwrap();
        for mime in ["png", "image/", "/png", "image/png/x", "ima ge/png", "image/p\"ng"] {
            let err = store.create("x.png", mime, 1).unwrap_err();
            assert!(matches!(&err, ArtifactError::InvalidName { reason } if reason.contains(mime)), "{mime:?}: {err}");
        }
        assert!(entries(store.dir()).is_empty());
    }

    #[test]
    fn mime_table_both_ways() {
        let pairs = [
            ("png", "image/png"),
            ("jpg", "image/jpeg"),
            ("webp", "image/webp"),
            ("gif", "image/gif"),
            ("apng", "image/apng"),
            ("bmp", "image/bmp"),
            ("mp4", "video/mp4"),
            ("webm", "video/webm"),
            ("mov", "video/quicktime"),
            ("mkv", "video/x-matroska"),
            ("wav", "audio/wav"),
            ("flac", "audio/flac"),
            ("mp3", "audio/mpeg"),
            ("ogg", "audio/ogg"),
            ("opus", "audio/opus"),
            ("m4a", "audio/mp4"),
            ("aac", "audio/aac"),
            ("json", "application/json"),
            ("txt", "text/plain"),
            ("md", "text/markdown"),
            ("html", "text/html"),
            ("pdf", "application/pdf"),
        ];
        for (ext, mime) in pairs {
            assert_eq!(mime_for_extension(ext), Some(mime), "{ext}");
            assert_eq!(extension_for_mime(mime), Some(ext), "{mime}");
        }
        assert_eq!(mime_for_extension("jpeg"), Some("image/jpeg"));
        assert_eq!(mime_for_extension("PNG"), Some("image/png"));
        assert_eq!(extension_for_mime("audio/x-wav"), Some("wav"));
        assert_eq!(extension_for_mime("IMAGE/PNG"), Some("png"));
        assert_eq!(extension_for_mime("text/plain; charset=utf-8"), Some("txt"));
        assert_eq!(mime_for_extension("safetensors"), None);
        assert_eq!(extension_for_mime("application/octet-stream"), None);
        // Every table entry round-trips to a type with the same extension.
        for &(ext, _) in MIME_TABLE {
            let canonical = mime_for_extension(ext).unwrap();
            assert_eq!(mime_for_extension(extension_for_mime(canonical).unwrap()), Some(canonical));
        }
    }

    #[test]
    fn identical_artifacts_dedupe_to_one_file() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(tmp.path()).unwrap();
        let a = store_bytes(&store, "frame.png", "", b"same pixels");
        let b = store_bytes(&store, "frame.png", "", b"same pixels");
        assert_eq!(a, b);
        assert_eq!(entries(store.dir()), vec![a.file_name]);
    }

    #[test]
    fn dedupe_refuses_a_tampered_file() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(tmp.path()).unwrap();
        let a = store_bytes(&store, "frame.png", "", b"same pixels");
        fs::write(&a.path, b"SAME PIXELS").unwrap();
        let mut pending = store.create("frame.png", "", 100).unwrap();
        pending.write(b"same pixels").unwrap();
        let err = pending.finish().unwrap_err();
        assert!(matches!(&err, ArtifactError::Corrupt { path } if *path == a.path), "{err}");
        assert_eq!(fs::read(&a.path).unwrap(), b"SAME PIXELS", "not clobbered");
        assert!(partials(store.dir()).is_empty());
    }

    #[test]
    fn same_stem_different_content_gives_two_files() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(tmp.path()).unwrap();
        let a = store_bytes(&store, "out.txt", "", b"one");
        let b = store_bytes(&store, "out.txt", "", b"two");
        assert_ne!(a.path, b.path);
        assert_eq!(fs::read(&a.path).unwrap(), b"one");
        assert_eq!(fs::read(&b.path).unwrap(), b"two");
        assert_eq!(entries(store.dir()).len(), 2);
    }

    #[test]
    fn resolve_by_hash_prefix_and_file_name() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(tmp.path()).unwrap();
        let a = store_bytes(&store, "cat.png", "", b"meow");
        store_bytes(&store, "dog.png", "", b"woof");
        // An extensionless name with a dot in the stem still parses.
        let c = store_bytes(&store, "v1.2-notes", "", b"changelog");
        assert_eq!(c.file_name, format!("v1.2-notes-{}", &c.sha256[..12]));

        assert_eq!(store.resolve(&a.reference()).unwrap(), a);
        assert_eq!(store.resolve(&format!("artifact:{}", &a.sha256[..8])).unwrap(), a);
        assert_eq!(store.resolve(&format!("artifact:{}", &a.sha256[..20])).unwrap(), a);
        let upper = format!("artifact:{}", a.sha256[..16].to_ascii_uppercase());
        assert_eq!(store.resolve(&upper).unwrap(), a);
        assert_eq!(store.resolve(&format!("artifact:{}", a.file_name)).unwrap(), a);
        assert_eq!(store.resolve(&c.reference()).unwrap(), c);
        assert_eq!(store.resolve(&format!("artifact:{}", c.file_name)).unwrap(), c);

        // Right tag, wrong continuation: a different content.
        let mut wrong = a.sha256.clone();
        wrong.replace_range(40.., &"0".repeat(24));
        let wrong = format!("artifact:{wrong}");
        let err = store.resolve(&wrong).unwrap_err();
        assert!(matches!(&err, ArtifactError::NotFound { reference } if *reference == wrong));
        assert!(err.to_string().contains(&wrong));

        let err = store.resolve("artifact:00000000").unwrap_err();
        assert!(matches!(err, ArtifactError::NotFound { .. }));
        let err = store.resolve("artifact:missing.png").unwrap_err();
        assert!(err.to_string().contains("artifact:missing.png"), "{err}");
    }

    #[test]
    fn resolve_plain_files_and_detect_corruption() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(tmp.path()).unwrap();
        fs::write(store.dir().join("input.json"), b"{}").unwrap();
        let plain = store.resolve("artifact:input.json").unwrap();
        assert_eq!(plain.mime, "application/json");
        assert_eq!(plain.sha256, sha_hex(b"{}"));
        assert_eq!(plain.bytes, 2);

        let a = store_bytes(&store, "cat.png", "", b"meow");
        fs::write(&a.path, b"purr").unwrap();
        for reference in [a.reference(), format!("artifact:{}", a.file_name)] {
            let err = store.resolve(&reference).unwrap_err();
            assert!(matches!(err, ArtifactError::Corrupt { .. }), "{reference}: {err}");
        }
    }

    #[test]
    fn ambiguous_prefix_names_the_candidates() {
        // Found by a birthday search; their sha256s share the first 8 hex digits.
        let (x, y) = (b"collide-14550", b"collide-37896");
        assert_eq!(sha_hex(x)[..8], sha_hex(y)[..8]);
        assert_ne!(sha_hex(x)[..9], sha_hex(y)[..9]);

        let tmp = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(tmp.path()).unwrap();
        let a = store_bytes(&store, "x.txt", "", x);
        let b = store_bytes(&store, "y.txt", "", y);
        let reference = format!("artifact:{}", &a.sha256[..8]);
        match store.resolve(&reference).unwrap_err() {
            ArtifactError::Ambiguous { reference: r, candidates } => {
                assert_eq!(r, reference);
                assert_eq!(candidates, vec![a.file_name.clone(), b.file_name.clone()]);
            }
            other => panic!("expected Ambiguous, got {other}"),
        }
        assert_eq!(store.resolve(&format!("artifact:{}", &a.sha256[..9])).unwrap(), a);
        assert_eq!(store.resolve(&format!("artifact:{}", &b.sha256[..9])).unwrap(), b);

        // The same content under two stems is not ambiguous.
        let c = store_bytes(&store, "w.txt", "", x);
        assert_ne!(c.file_name, a.file_name);
        let resolved = store.resolve(&a.reference()).unwrap();
        assert_eq!(resolved.sha256, a.sha256);
        assert_eq!(resolved.file_name, c.file_name, "first in sorted order");
    }

    #[test]
    fn sweep_deletes_partials_of_dead_processes_only() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(tmp.path()).unwrap();
        let mine = store.create("live.txt", "", 10).unwrap();
        let dead = store.dir().join(format!("{PARTIAL_PREFIX}4000000-abc"));
        let legacy_old = store.dir().join(format!("{PARTIAL_PREFIX}xyz"));
        fs::write(&dead, b"half").unwrap();
        fs::write(&legacy_old, b"half").unwrap();
        File::options()
            .write(true)
            .open(&legacy_old)
            .unwrap()
            .set_modified(std::time::SystemTime::now() - STALE_PARTIAL)
            .unwrap();
        store_bytes(&store, "done.txt", "", b"done");
        let alive = |pid: u32| pid == std::process::id();
        let mut swept = store.sweep_partials(alive);
        swept.sort();
        let mut expected = vec![dead, legacy_old];
        expected.sort();
        assert_eq!(swept, expected);
        assert_eq!(partials(store.dir()).len(), 1, "the live process's partial stays");
        assert!(is_partial(&store.dir().join(&partials(store.dir())[0])));
        assert!(!is_partial(&store.dir().join("done.txt")));
        drop(mine);
    }

    #[test]
    fn resolve_rejects_traversal_and_bad_references() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("secret.txt");
        fs::write(&outside, b"secret").unwrap();
        let store = ArtifactStore::open(tmp.path().join("out")).unwrap();
        store_bytes(&store, "ok.txt", "", b"ok");
        let partial = store.create("p.txt", "", 10).unwrap();
        let partial_name = partials(store.dir()).pop().unwrap();

        let rejected = [
            "artifact:../secret.txt".to_string(),
            "artifact:..".to_string(),
            "artifact:.".to_string(),
            "artifact:".to_string(),
            "artifact:sub/x.txt".to_string(),
            "artifact:sub\\x.txt".to_string(),
            format!("artifact:{}", outside.display()),
            format!("artifact:{partial_name}"),
            "artifact:abc123".to_string(),
            "ok.txt".to_string(),
            format!("artifact:{}", "a".repeat(65)),
        ];
        for reference in &rejected {
            let err = store.resolve(reference).unwrap_err();
            assert!(
                matches!(&err, ArtifactError::InvalidName { reason } if reason.contains(reference.as_str())),
                "{reference}: {err}"
            );
        }
        drop(partial);
    }

    #[cfg(unix)]
    #[test]
    fn resolve_ignores_symlinks() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("secret.txt");
        fs::write(&outside, b"secret").unwrap();
        let store = ArtifactStore::open(tmp.path().join("out")).unwrap();
        let tag = &sha_hex(b"secret")[..12];
        let link = format!("link-{tag}.txt");
        std::os::unix::fs::symlink(&outside, store.dir().join(&link)).unwrap();
        for reference in [format!("artifact:{link}"), format!("artifact:{tag}")] {
            let err = store.resolve(&reference).unwrap_err();
            assert!(matches!(err, ArtifactError::NotFound { .. }), "{reference}: {err}");
        }
    }

    #[test]
    fn name_hash_parsing() {
        assert_eq!(name_hash("cat-0123456789ab.png"), Some("0123456789ab"));
        assert_eq!(name_hash("cat-0123456789ab"), Some("0123456789ab"));
        assert_eq!(name_hash("a.b-0123456789ab"), Some("0123456789ab"));
        assert_eq!(name_hash("cat-0123456789AB.png"), None);
        assert_eq!(name_hash("cat-0123456789a.png"), None);
        assert_eq!(name_hash("cat.png"), None);
        assert_eq!(name_hash("0123456789ab"), None);
    }
}
