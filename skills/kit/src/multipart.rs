//! `multipart/form-data` request bodies: text fields, in-memory files and
//! input files the host opened. Sent with the kit's HTTP functions, an input
//! file goes from the host's disk to the connection without entering the
//! skill (`input-file.stream` spliced into the request body), so a large
//! video input costs the skill neither memory nor copies.
//!
//! ```ignore
//! let form = Form::new()
//!     .text("prompt", "rain on a tin roof")
//!     .file("video", c41_kit::inputs::open("video")?);
//! let resp = client.post_form("/process", form).await?;
//! ```
//!
//! The body is sent with its exact `Content-Length` (every part's size is
//! known up front), which the small FastAPI and aiohttp servers of the studio
//! expect for uploads. [`Form::on_sent`] watches the bytes go out, for upload
//! progress.

use crate::SkillError;
use crate::http::{Outgoing, Sink, WriteError};
use crate::inputs::File;
use crate::progress::Progress;
use wstd::http::{Body, Method, Request};

enum Content {
    Bytes(Vec<u8>),
    File(File),
}

struct Part {
    head: Vec<u8>,
    content: Content,
}

impl Part {
    fn len(&self) -> u64 {
        let content = match &self.content {
            Content::Bytes(b) => b.len() as u64,
            Content::File(f) => f.size(),
        };
        self.head.len() as u64 + content + 2
    }
}

/// Called with (bytes sent, total bytes) as the body goes out.
type OnSent = Box<dyn FnMut(u64, u64) + Send>;

/// A form being built; see the module docs.
pub struct Form {
    boundary: String,
    parts: Vec<Part>,
    on_sent: Option<OnSent>,
}

impl Default for Form {
    fn default() -> Self {
        Self::new()
    }
}

/// Field and file names go inside quoted header values: no quotes, line
/// breaks or path separators.
fn quoted(s: &str) -> String {
    s.chars().map(|c| if matches!(c, '"' | '\r' | '\n' | '/' | '\\') { '_' } else { c }).collect()
}

impl Form {
    /// An empty form with a fresh random boundary.
    pub fn new() -> Self {
        Self::with_boundary(format!("c41-{}", crate::uuid4().replace('-', "")))
    }

    fn with_boundary(boundary: String) -> Self {
        Form { boundary, parts: Vec::new(), on_sent: None }
    }

    fn head(&self, name: &str, file: Option<(&str, &str)>) -> Vec<u8> {
        let mut h = format!("--{}\r\nContent-Disposition: form-data; name=\"{}\"", self.boundary, quoted(name));
        if let Some((filename, mime)) = file {
            let mime = if mime.is_empty() { "application/octet-stream" } else { mime };
            h.push_str(&format!("; filename=\"{}\"\r\nContent-Type: {mime}", quoted(filename)));
        }
        h.push_str("\r\n\r\n");
        h.into_bytes()
    }

    /// Adds a text field.
    pub fn text(mut self, name: &str, value: impl ToString) -> Self {
        let head = self.head(name, None);
        self.parts.push(Part { head, content: Content::Bytes(value.to_string().into_bytes()) });
        self
    }

    /// Adds a text field when `value` is `Some`.
    pub fn text_opt(self, name: &str, value: Option<impl ToString>) -> Self {
        match value {
            Some(v) => self.text(name, v),
            None => self,
        }
    }

    /// Adds a file held in memory.
    pub fn bytes(mut self, name: &str, filename: &str, mime: &str, data: Vec<u8>) -> Self {
        let head = self.head(name, Some((filename, mime)));
        self.parts.push(Part { head, content: Content::Bytes(data) });
        self
    }

    /// Adds an input file the host opened; its bytes are read from the host
    /// only as the request body is sent. The part carries the file's own
    /// name and MIME type.
    pub fn file(self, name: &str, file: File) -> Self {
        let filename = file.name();
        self.file_as(name, &filename, file)
    }

    /// [`file`](Self::file), sent under `filename` instead of its own name.
    pub fn file_as(mut self, name: &str, filename: &str, file: File) -> Self {
        let head = self.head(name, Some((filename, &file.mime())));
        self.parts.push(Part { head, content: Content::File(file) });
        self
    }

    /// Calls `on_sent(sent, total)` after each chunk of the body is handed
    /// to the host, `sent == total` after the last: upload progress, and the
    /// moment the whole form is out (when a server that answers only once
    /// its work is done starts on it).
    pub fn on_sent(mut self, on_sent: impl FnMut(u64, u64) + Send + 'static) -> Self {
        self.on_sent = Some(Box::new(on_sent));
        self
    }

    /// Reports the upload as the form goes out: the `upload` stage moves
    /// from 0 to `span` (overall fraction) at most `steps` times plus once at
    /// the end, with `message(sent, total)`; when the last byte has gone,
    /// `then` is reported (the stage that waits for the server). With one
    /// streamed request there is no other moment at which the upload is
    /// known to be done.
    pub fn report_upload(
        self,
        span: f32,
        steps: u64,
        message: impl Fn(u64, u64) -> String + Send + 'static,
        then: Progress,
    ) -> Self {
        let mut shown = 0u64;
        let mut then = Some(then);
        self.on_sent(move |sent, total| {
            let step = (total / steps.max(1)).max(1);
            if sent >= total || sent - shown >= step {
                shown = sent;
                Progress::stage("upload")
                    .fraction(span * sent as f32 / total.max(1) as f32)
                    .message(message(sent, total))
                    .report();
            }
            if sent >= total
                && let Some(then) = then.take()
            {
                then.report();
            }
        })
    }

    /// The request's `Content-Type`, with the boundary.
    pub fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    fn trailer(&self) -> Vec<u8> {
        format!("--{}--\r\n", self.boundary).into_bytes()
    }

    /// The exact size of the body in bytes.
    pub fn content_length(&self) -> u64 {
        self.parts.iter().map(Part::len).sum::<u64>() + self.trailer().len() as u64
    }

    /// The whole body in memory (for small forms and tests).
    pub fn to_vec(self) -> Result<Vec<u8>, SkillError> {
        let mut out = Vec::with_capacity(self.content_length() as usize);
        for chunk in self.chunks() {
            out.extend_from_slice(&chunk.map_err(|e| SkillError::internal(e.to_string()))?);
        }
        Ok(out)
    }

    /// The body as a stream of chunks read through the guest (input files
    /// too, as it is polled), for a `wstd` client. The kit's own HTTP
    /// functions send a [`Form`] itself instead, splicing its files in the
    /// host.
    pub fn into_body(self) -> Body {
        Body::from_try_stream(futures_lite::stream::iter(self.chunks()))
    }

    /// A `POST` of this form to `uri` with its `Content-Type` and exact
    /// `Content-Length`. Streamed, the request carries the form itself,
    /// whose input files the host splices into the connection; `buffered`
    /// builds the body in memory and sends it whole instead (small forms of
    /// text fields: a server or proxy that answers before reading the body
    /// still gets its status through, where a half-streamed body can end in
    /// a protocol error).
    pub fn into_request(self, uri: &str, buffered: bool) -> Result<Request<Outgoing>, String> {
        let builder = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header("content-type", self.content_type())
            .header("content-length", self.content_length());
        let body = if buffered {
            Outgoing::Body(Body::from(self.to_vec().map_err(|e| e.to_string())?))
        } else {
            Outgoing::Form(self)
        };
        builder.body(body).map_err(|e| format!("bad request {uri}: {e}"))
    }

    /// Writes the form to a request body: heads and in-memory parts from
    /// the guest, input files spliced by the host, counting for
    /// [`Form::on_sent`].
    pub(crate) async fn write_to(self, sink: &mut Sink) -> Result<(), WriteError> {
        let total = self.content_length();
        let (pieces, mut on_sent) = self.pieces();
        let mut sent = 0u64;
        let mut count = |n: u64| {
            sent += n;
            if let Some(on_sent) = &mut on_sent {
                on_sent(sent, total);
            }
        };
        for piece in pieces {
            match piece {
                Piece::Bytes(bytes) => {
                    sink.write_all(&bytes).await.map_err(WriteError::Sink)?;
                    count(bytes.len() as u64);
                }
                Piece::File(file) => {
                    let input = |message: String| WriteError::Input {
                        field: file.field().to_string(),
                        message: format!("{}: {message}", file.name()),
                    };
                    let stream = file.stream().map_err(|e| input(e.to_string()))?;
                    sink.splice(&stream, file.size(), &mut count).await.map_err(|e| match e {
                        WriteError::Source(e) => input(e),
                        other => other,
                    })?;
                }
            }
        }
        Ok(())
    }

    /// The body in order, as the two ways of sending it take it: bytes
    /// (heads, in-memory parts, line breaks, the closing boundary) and the
    /// input files between them.
    fn pieces(self) -> (impl Iterator<Item = Piece>, Option<OnSent>) {
        let trailer = self.trailer();
        let pieces = self
            .parts
            .into_iter()
            .flat_map(|Part { mut head, content }| match content {
                Content::Bytes(bytes) => {
                    head.extend_from_slice(&bytes);
                    head.extend_from_slice(b"\r\n");
                    vec![Piece::Bytes(head)]
                }
                Content::File(file) => vec![Piece::Bytes(head), Piece::File(file), Piece::Bytes(b"\r\n".to_vec())],
            })
            .chain(std::iter::once(Piece::Bytes(trailer)));
        (pieces, self.on_sent)
    }

    fn chunks(self) -> Chunks {
        let total = self.content_length();
        let (pieces, on_sent) = self.pieces();
        Chunks { pieces: Box::new(pieces), current: None, sent: 0, total, on_sent }
    }
}

/// A stretch of a form's body: bytes, or an input file.
enum Piece {
    Bytes(Vec<u8>),
    File(File),
}

/// Yields the form's [`Piece`]s, an input file in host-sized reads through
/// the guest, counting the bytes for [`Form::on_sent`].
struct Chunks {
    pieces: Box<dyn Iterator<Item = Piece> + Send>,
    current: Option<File>,
    sent: u64,
    total: u64,
    on_sent: Option<OnSent>,
}

impl Iterator for Chunks {
    type Item = Result<Vec<u8>, std::io::Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.next_chunk();
        if let Some(Ok(chunk)) = &item {
            self.sent += chunk.len() as u64;
            if let Some(on_sent) = &mut self.on_sent {
                on_sent(self.sent, self.total);
            }
        }
        item
    }
}

impl Chunks {
    fn next_chunk(&mut self) -> Option<Result<Vec<u8>, std::io::Error>> {
        loop {
            if let Some(file) = &mut self.current {
                match file.read_chunk() {
                    Ok(chunk) if chunk.is_empty() => self.current = None,
                    Ok(chunk) => return Some(Ok(chunk)),
                    Err(e) => {
                        self.current = None;
                        self.pieces = Box::new(std::iter::empty());
                        return Some(Err(std::io::Error::other(e.to_string())));
                    }
                }
            }
            match self.pieces.next()? {
                Piece::Bytes(bytes) => return Some(Ok(bytes)),
                Piece::File(file) => self.current = Some(file),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_is_well_formed_and_its_length_is_exact() {
        let form = Form::with_boundary("c41-test".into())
            .text("prompt", "a \"quoted\" prompt")
            .text_opt("seed", Some(7))
            .text_opt("steps", None::<u32>)
            .bytes("image", "in/../face.png", "image/png", vec![0x89, b'P', b'N', b'G']);
        let boundary = form.boundary.clone();
        assert_eq!(form.content_type(), format!("multipart/form-data; boundary={boundary}"));
        let len = form.content_length();
        let body = form.to_vec().unwrap();
        assert_eq!(body.len() as u64, len);
        let text = String::from_utf8_lossy(&body);
        assert!(
            text.starts_with(&format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\na \"quoted\" prompt\r\n"
            )),
            "{text}"
        );
        assert!(text.contains("name=\"seed\"\r\n\r\n7\r\n"), "{text}");
        assert!(!text.contains("steps"), "absent optional fields are left out: {text}");
        let image = b"name=\"image\"; filename=\"in_.._face.png\"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n";
        assert!(body.windows(image.len()).any(|w| w == image), "{text}");
        assert!(text.ends_with(&format!("--{boundary}--\r\n")), "{text}");
    }

    #[test]
    fn on_sent_counts_every_byte_up_to_the_total() {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        let form = Form::with_boundary("b".into())
            .text("a", "1")
            .bytes("f", "x.bin", "", vec![7; 100])
            .on_sent(move |sent, total| log.lock().unwrap().push((sent, total)));
        let len = form.content_length();
        assert_eq!(form.to_vec().unwrap().len() as u64, len);
        let seen = seen.lock().unwrap();
        assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "{seen:?}");
        assert!(seen.iter().all(|(_, t)| *t == len), "{seen:?}");
        assert_eq!(seen.last(), Some(&(len, len)));
    }

    /// Any fields and files, in any order: the body is exactly
    /// `content_length` bytes, and a multipart reader (the one behind the
    /// studio's Rust servers) reads back every part, with its name, file
    /// name and bytes, in order.
    mod props {
        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Field {
            Text(String, String),
            File(String, String, Vec<u8>),
        }

        fn field() -> impl Strategy<Value = Field> {
            prop_oneof![
                ("\\PC{1,12}", "\\PC{0,40}").prop_map(|(n, v)| Field::Text(n, v)),
                ("\\PC{1,12}", "\\PC{1,12}", prop::collection::vec(any::<u8>(), 0..300))
                    .prop_map(|(n, f, b)| Field::File(n, f, b)),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]
            #[test]
            fn the_body_reads_back_part_by_part(fields in prop::collection::vec(field(), 0..6)) {
                let boundary = "c41-0123456789abcdef0123456789abcdef".to_string();
                let mut form = Form::with_boundary(boundary.clone());
                for f in &fields {
                    form = match f.clone() {
                        Field::Text(n, v) => form.text(&n, v),
                        Field::File(n, name, b) => form.bytes(&n, &name, "application/octet-stream", b),
                    };
                }
                let len = form.content_length();
                let body = form.to_vec().unwrap();
                prop_assert_eq!(body.len() as u64, len);

                let stream = futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(body))]);
                let mut reader = multer::Multipart::new(stream, boundary);
                let got = futures::executor::block_on(async {
                    let mut got = Vec::new();
                    while let Some(part) = reader.next_field().await.unwrap() {
                        let name = part.name().unwrap_or_default().to_string();
                        let file = part.file_name().map(str::to_string);
                        got.push((name, file, part.bytes().await.unwrap().to_vec()));
                    }
                    got
                });
                prop_assert_eq!(got.len(), fields.len());
                for (f, (name, file, data)) in fields.iter().zip(got) {
                    match f {
                        Field::Text(n, v) => {
                            prop_assert_eq!(&name, &quoted(n));
                            prop_assert_eq!(file, None);
                            prop_assert_eq!(data, v.as_bytes().to_vec());
                        }
                        Field::File(n, fname, b) => {
                            prop_assert_eq!(&name, &quoted(n));
                            prop_assert_eq!(file, Some(quoted(fname)));
                            prop_assert_eq!(&data, b);
                        }
                    }
                }
            }
        }
    }
}
