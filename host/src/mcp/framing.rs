//! JSON-RPC over stdio, one message per line, with the errors JSON-RPC 2.0
//! prescribes for lines that are not a message (rmcp's own stdio transport
//! drops them silently, and a client waits for an answer that never comes):
//!
//! - not JSON at all, or truncated: `-32700` Parse error, `id: null`;
//! - JSON that is not a JSON-RPC request (no `jsonrpc: "2.0"`, a method that
//!   is not a string, a batch): `-32600` Invalid Request, carrying the
//!   request's `id` when it has a usable one, else `id: null`;
//! - a known method whose params do not fit: `-32602` Invalid params, with
//!   the `id`;
//! - a line longer than [`MAX_LINE`] (16 MiB): it is not buffered, and the
//!   answer is `-32600` with the `id` read from the start of the line when
//!   it is there.
//!
//! Notifications that do not parse get no answer (JSON-RPC never answers
//! notifications). Writes go through one task, so an error reply can never
//! land inside another message.

use rmcp::RoleServer;
use rmcp::model::{ClientRequest, JsonRpcMessage};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot};

/// Longest line (one JSON-RPC message) accepted: 16 MiB.
pub const MAX_LINE: usize = 16 << 20;

/// How much of an over-long line is kept to find its `id`.
const HEAD: usize = 64 << 10;

const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const INVALID_PARAMS: i64 = -32602;

/// Methods whose params rmcp checks: a request for one of these that does
/// not deserialize has bad params, not a bad shape.
const KNOWN_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "prompts/list",
    "prompts/get",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "resources/subscribe",
    "resources/unsubscribe",
    "completion/complete",
    "logging/setLevel",
    "tasks/get",
    "tasks/update",
    "tasks/cancel",
];

type Write = (Vec<u8>, Option<oneshot::Sender<std::io::Result<()>>>);

/// The stdio transport of `c41 mcp`.
pub struct LineTransport<R> {
    read: BufReader<R>,
    line: Vec<u8>,
    over: Option<Oversized>,
    tx: Option<mpsc::UnboundedSender<Write>>,
}

/// An over-long line being skipped: its start and its length so far.
struct Oversized {
    head: Vec<u8>,
    len: usize,
}

/// stdin and stdout.
pub fn stdio() -> LineTransport<tokio::io::Stdin> {
    LineTransport::new(tokio::io::stdin(), tokio::io::stdout())
}

impl<R: AsyncRead + Unpin + Send> LineTransport<R> {
    /// A transport reading `read` and writing `write` (from a task of its own).
    pub fn new<W: AsyncWrite + Unpin + Send + 'static>(read: R, mut write: W) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Write>();
        tokio::spawn(async move {
            while let Some((bytes, ack)) = rx.recv().await {
                let r = async {
                    write.write_all(&bytes).await?;
                    write.flush().await
                }
                .await;
                let failed = r.is_err();
                if let Some(ack) = ack {
                    let _ = ack.send(r);
                }
                if failed {
                    break;
                }
            }
        });
        LineTransport { read: BufReader::new(read), line: Vec::new(), over: None, tx: Some(tx) }
    }

    fn reply(&self, msg: Value) {
        tracing::debug!("answering a line that is not a JSON-RPC message: {msg}");
        if let Some(tx) = &self.tx {
            let mut bytes = msg.to_string().into_bytes();
            bytes.push(b'\n');
            let _ = tx.send((bytes, None));
        }
    }

    /// Read up to the next newline into `self.line` (or skip an over-long
    /// line, keeping its head). Cancel-safe: the state lives in `self`.
    async fn read_line(&mut self) -> std::io::Result<Option<Option<Oversized>>> {
        loop {
            let (take, ends) = {
                let buf = self.read.fill_buf().await?;
                if buf.is_empty() {
                    return Ok(None);
                }
                let nl = buf.iter().position(|&b| b == b'\n');
                let take = nl.map_or(buf.len(), |i| i + 1);
                let chunk = &buf[..take];
                match &mut self.over {
                    Some(o) => {
                        o.len += take;
                        let room = HEAD.saturating_sub(o.head.len());
                        o.head.extend_from_slice(&chunk[..room.min(take)]);
                    }
                    None if self.line.len() + take > MAX_LINE + 1 => {
                        let len = self.line.len() + take;
                        let mut head = std::mem::take(&mut self.line);
                        head.truncate(HEAD);
                        let room = HEAD.saturating_sub(head.len());
                        head.extend_from_slice(&chunk[..room.min(take)]);
                        self.over = Some(Oversized { len, head });
                    }
                    None => self.line.extend_from_slice(chunk),
                }
                (take, nl.is_some())
            };
            self.read.consume(take);
            if ends {
                return Ok(Some(self.over.take()));
            }
        }
    }
}

impl<R: AsyncRead + Unpin + Send> Transport<RoleServer> for LineTransport<R> {
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let tx = self.tx.clone();
        async move {
            let mut bytes = serde_json::to_vec(&item)?;
            bytes.push(b'\n');
            let (ack, done) = oneshot::channel();
            let closed = || std::io::Error::new(std::io::ErrorKind::NotConnected, "stdout is closed");
            tx.ok_or_else(closed)?.send((bytes, Some(ack))).map_err(|_| closed())?;
            done.await.map_err(|_| closed())?
        }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        loop {
            match self.read_line().await {
                Ok(None) => return None,
                Err(e) => {
                    tracing::error!("reading stdin: {e}");
                    return None;
                }
                Ok(Some(Some(over))) => {
                    self.reply(too_long(&over.head, over.len));
                    continue;
                }
                Ok(Some(None)) => {}
            }
            let line = std::mem::take(&mut self.line);
            match classify(&line) {
                Verdict::Message(m) => return Some(*m),
                Verdict::Reply(v) => self.reply(v),
                Verdict::Ignore => {}
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.tx = None;
        Ok(())
    }
}

/// What to do with one line.
pub enum Verdict {
    /// A message for the server.
    Message(Box<RxJsonRpcMessage<RoleServer>>),
    /// Not one: answer this error.
    Reply(Value),
    /// Nothing to answer (an empty line, a notification or response that
    /// does not parse).
    Ignore,
}

fn error(id: Value, code: i64, message: String) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// An id a reply may carry: a string or an integer.
fn usable_id(id: Option<&Value>) -> Value {
    match id {
        Some(v @ Value::String(_)) => v.clone(),
        Some(v @ Value::Number(n)) if n.is_i64() || n.is_u64() => v.clone(),
        _ => Value::Null,
    }
}

/// Decide what one line (without its newline) is.
pub fn classify(line: &[u8]) -> Verdict {
    let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return Verdict::Ignore;
    }
    let value: Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => {
            return Verdict::Reply(error(
                Value::Null,
                PARSE_ERROR,
                format!("Parse error: {e} (each line must be one JSON-RPC message)"),
            ));
        }
    };
    let Value::Object(obj) = &value else {
        let what = if value.is_array() { "a batch (MCP does not use batches)" } else { "not a JSON object" };
        return Verdict::Reply(error(Value::Null, INVALID_REQUEST, format!("Invalid Request: {what}")));
    };
    let has_id = obj.contains_key("id");
    let id = usable_id(obj.get("id"));
    let invalid = |why: &str| Verdict::Reply(error(id.clone(), INVALID_REQUEST, format!("Invalid Request: {why}")));
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return invalid("`jsonrpc` must be \"2.0\"");
    }
    if has_id && id.is_null() {
        return invalid("`id` must be a string or an integer");
    }
    let method = match obj.get("method") {
        Some(Value::String(m)) => Some(m.clone()),
        Some(_) => return invalid("`method` must be a string"),
        None if !has_id => return invalid("no `method`"),
        None => None,
    };
    let known = method.as_deref().is_some_and(|m| KNOWN_METHODS.contains(&m));
    match serde_json::from_value::<RxJsonRpcMessage<RoleServer>>(value.clone()) {
        // rmcp takes a known method whose params do not fit for a custom one.
        Ok(JsonRpcMessage::Request(r)) if known && matches!(r.request, ClientRequest::CustomRequest(_)) => {
            let m = method.unwrap_or_default();
            Verdict::Reply(error(id, INVALID_PARAMS, format!("Invalid params for {m}: see the MCP schema of `{m}`")))
        }
        Ok(m) => Verdict::Message(Box::new(m)),
        // Notifications and responses are never answered.
        Err(e) if !has_id || method.is_none() => {
            tracing::debug!("ignoring a message that does not parse: {e}");
            Verdict::Ignore
        }
        Err(e) if known => {
            Verdict::Reply(error(id, INVALID_PARAMS, format!("Invalid params for {}: {e}", method.unwrap_or_default())))
        }
        Err(e) => invalid(&e.to_string()),
    }
}

/// The answer to a line over [`MAX_LINE`]: `-32600`, with the id when the
/// line's start shows one.
pub fn too_long(head: &[u8], len: usize) -> Value {
    error(
        peek_id(head).unwrap_or(Value::Null),
        INVALID_REQUEST,
        format!(
            "Invalid Request: the message is {len} bytes, over the limit of {MAX_LINE} bytes ({} MiB) for one line; it was dropped",
            MAX_LINE >> 20
        ),
    )
}

/// The top-level `"id"` of a JSON object whose text is cut off, if it comes
/// before the cut (clients write `jsonrpc`, `id`, `method` first).
pub fn peek_id(head: &[u8]) -> Option<Value> {
    let mut i = skip_ws(head, 0);
    if head.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    loop {
        i = skip_ws(head, i);
        let key_end = string_end(head, i)?;
        let key = &head[i + 1..key_end - 1];
        i = skip_ws(head, key_end);
        if head.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(head, i + 1);
        let end = value_end(head, i)?;
        if key == b"id" {
            return Some(usable_id(Some(&serde_json::from_slice(&head[i..end]).ok()?))).filter(|v| !v.is_null());
        }
        i = skip_ws(head, end);
        if head.get(i) != Some(&b',') {
            return None;
        }
        i += 1;
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

/// The index after the string starting at `i` (which must be `"`).
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let mut j = i + 1;
    loop {
        match *b.get(j)? {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
}

/// The index after the JSON value starting at `i`, if it ends within `b`.
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' => string_end(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match *b.get(j)? {
                    b'"' => {
                        j = string_end(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let n = b[i..].iter().position(|c| matches!(c, b',' | b'}' | b']') || c.is_ascii_whitespace())?;
            Some(i + n)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(line: &str) -> Value {
        match classify(line.as_bytes()) {
            Verdict::Reply(v) => v,
            Verdict::Message(_) => panic!("{line:?} parsed as a message"),
            Verdict::Ignore => panic!("{line:?} was ignored"),
        }
    }

    #[test]
    fn lines_that_are_not_json_get_a_parse_error_with_a_null_id() {
        for line in ["not json at all", r#"{"jsonrpc":"2.0","id":7,"method":"tools/li"#] {
            let r = reply(line);
            assert_eq!((r["error"]["code"].as_i64(), &r["id"]), (Some(PARSE_ERROR), &Value::Null), "{line}: {r}");
        }
    }

    #[test]
    fn invalid_requests_carry_their_id() {
        let r = reply(r#"{"jsonrpc":"1.0","id":"a1","method":"ping"}"#);
        assert_eq!((r["error"]["code"].as_i64(), r["id"].as_str()), (Some(INVALID_REQUEST), Some("a1")), "{r}");
        let r = reply(r#"{"jsonrpc":"2.0","id":3,"method":5}"#);
        assert_eq!((r["error"]["code"].as_i64(), r["id"].as_i64()), (Some(INVALID_REQUEST), Some(3)), "{r}");
        let r = reply(r#"{"jsonrpc":"2.0","id":{"x":1},"method":"ping"}"#);
        assert_eq!((r["error"]["code"].as_i64(), &r["id"]), (Some(INVALID_REQUEST), &Value::Null), "{r}");
        let r = reply(r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#);
        assert_eq!(r["error"]["code"].as_i64(), Some(INVALID_REQUEST), "{r}");
        let r = reply(r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"arguments":{}}}"#);
        assert_eq!((r["error"]["code"].as_i64(), r["id"].as_i64()), (Some(INVALID_PARAMS), Some(9)), "{r}");
    }

    #[test]
    fn good_messages_pass_and_stray_notifications_are_ignored() {
        assert!(matches!(classify(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#), Verdict::Message(_)));
        assert!(matches!(
            classify(b"\xEF\xBB\xBF{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\r"),
            Verdict::Message(_)
        ));
        // Notifications are never answered, whatever they hold.
        assert!(!matches!(classify(br#"{"jsonrpc":"2.0","method":"notifications/whatever"}"#), Verdict::Reply(_)));
        assert!(matches!(
            classify(br#"{"jsonrpc":"2.0","method":"notifications/progress","params":5}"#),
            Verdict::Ignore
        ));
        assert!(matches!(classify(b"   "), Verdict::Ignore));
    }

    #[test]
    fn the_id_of_a_cut_off_message_is_found_at_its_start() {
        let head = br#"{"jsonrpc":"2.0", "id" : 42, "method":"tools/call","params":{"arguments":{"text":"aaaa"#;
        assert_eq!(peek_id(head), Some(json!(42)));
        let head = br#"{"method":"x","params":{"a":[1,{"id":5}],"s":"}\"]"},"id":"r-9","more":"#;
        assert_eq!(peek_id(head), Some(json!("r-9")));
        assert_eq!(peek_id(br#"{"jsonrpc":"2.0","method":"tools/call","params":{"text":"aaaa"#), None);
        assert_eq!(peek_id(b"not json"), None);
        let r = too_long(br#"{"jsonrpc":"2.0","id":"big","method""#, MAX_LINE + 10);
        assert_eq!((r["error"]["code"].as_i64(), r["id"].as_str()), (Some(INVALID_REQUEST), Some("big")), "{r}");
    }
}
