//! Backends: one trait, one file per server API. Every backend streams, stamps each
//! network chunk with the monotonic clock when its bytes arrive, and returns a
//! [`CallOutcome`] — failures included, as data.

mod connect;
pub mod lines;
pub mod ollama;
pub mod openai;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::metrics::{CallError, CallOutcome, ErrorKind};
use crate::scenario::{ModelOptions, ResponseLimits};
use lines::LineSplitter;

/// Installs ring as the process's TLS crypto provider (reqwest is built without a default
/// one to keep builds short). Idempotent; every HTTP client is built after calling it.
pub fn install_tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err means another provider is already installed, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Who wrote a message of a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The agent's side: a request, or a tool's result handed back.
    User,
    /// The model's reply.
    Assistant,
}

/// One earlier message of a multi-turn conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// Its text.
    pub content: String,
}

/// One chat request in backend-neutral form.
#[derive(Debug, Clone, Copy)]
pub struct ChatRequest<'a> {
    /// Model tag.
    pub model: &'a str,
    /// System prompt (the persona); an empty one is not sent.
    pub system: &'a str,
    /// The conversation so far, oldest first, between the system prompt and `user`.
    pub history: &'a [Message],
    /// The new user message.
    pub user: &'a str,
    /// Generate exactly the `num_predict` tokens asked for, past the end-of-sequence token
    /// (trace replay): `ignore_eos`, which vLLM, SGLang, llama.cpp and the simulator
    /// honour and Ollama ignores.
    pub ignore_eos: bool,
    /// Options; an empty set sends none.
    pub options: &'a ModelOptions,
    /// Ollama `keep_alive`.
    pub keep_alive: Option<&'a str>,
}

impl ChatRequest<'_> {
    /// The request's messages in chat order: system (when not empty), history, user.
    pub fn messages(&self) -> Vec<serde_json::Value> {
        let mut out = Vec::with_capacity(self.history.len() + 2);
        if !self.system.is_empty() {
            out.push(serde_json::json!({"role": "system", "content": self.system}));
        }
        for m in self.history {
            out.push(serde_json::json!({"role": m.role, "content": m.content}));
        }
        out.push(serde_json::json!({"role": "user", "content": self.user}));
        out
    }

    /// The history and the user message as one prompt, for completion-style endpoints
    /// (Ollama's `/api/generate`): each earlier message on its own paragraph.
    pub fn flat_prompt(&self) -> String {
        if self.history.is_empty() {
            return self.user.to_owned();
        }
        let mut prompt = String::new();
        for m in self.history {
            prompt.push_str(&m.content);
            prompt.push_str("\n\n");
        }
        prompt.push_str(self.user);
        prompt
    }
}

/// A model the server holds in memory, as it reports it (Ollama's `/api/ps`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadedModel {
    /// The model's name.
    pub model: String,
    /// Memory it takes, bytes.
    pub size: u64,
    /// Of which on the GPU, bytes.
    pub size_vram: u64,
    /// The context it was loaded with, tokens (absent from older servers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_length: Option<u32>,
    /// Its digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// When the server will unload it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

impl LoadedModel {
    /// The share of its memory on the GPU, 0–1.
    pub fn vram_share(&self) -> f64 {
        if self.size == 0 {
            0.0
        } else {
            self.size_vram as f64 / self.size as f64
        }
    }
}

/// The model's shape as the server describes it (Ollama's `/api/show`), to read what is
/// loaded against: how many layers `num_gpu` counts, the longest context it takes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelShape {
    /// Architecture (`gemma3`, `llama`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// Layers (blocks): `num_gpu` at or above this offloads all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<u32>,
    /// The context length the model was trained for, tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_length: Option<u32>,
    /// Quantization (`Q4_K_M`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization: Option<String>,
    /// Parameter count as the server writes it (`4.3B`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_size: Option<String>,
}

impl ModelShape {
    /// Reads `/api/show`'s reply: `model_info` keys are prefixed with the architecture
    /// (`gemma3.block_count`).
    pub fn from_show(v: &serde_json::Value) -> ModelShape {
        let info = &v["model_info"];
        let architecture = info["general.architecture"].as_str().map(str::to_owned);
        let field = |name: &str| {
            architecture
                .as_ref()
                .and_then(|a| info[format!("{a}.{name}")].as_u64())
                .and_then(|n| u32::try_from(n).ok())
        };
        ModelShape {
            layers: field("block_count"),
            context_length: field("context_length"),
            architecture: architecture.clone(),
            quantization: v["details"]["quantization_level"]
                .as_str()
                .map(str::to_owned),
            parameter_size: v["details"]["parameter_size"].as_str().map(str::to_owned),
        }
    }
}

/// What the server says about itself and the model, for the manifest.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerInfo {
    /// Base URL.
    pub url: String,
    /// Server version string.
    pub version: Option<String>,
    /// Digest of the model as the server stores it.
    pub model_digest: Option<String>,
    /// Model details (family, parameter size, quantization, …) as the server reports them.
    pub model_details: Option<serde_json::Value>,
    /// Where each server-side field of a call record comes from in this API.
    pub field_sources: BTreeMap<&'static str, &'static str>,
    /// The model that answers, as the server names it: the requested one when the server
    /// lists it, or the one model a single-model server serves whatever is asked.
    pub served_model: Option<String>,
    /// The model's shape (layers, trained context), when the API tells it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_shape: Option<ModelShape>,
    /// Problems met while asking (the run goes on without the field).
    pub notes: Vec<String>,
}

/// A server API.
pub trait Backend: Send + Sync {
    /// Streams one call. Never fails: a failure is an outcome with an error.
    fn chat<'a>(&'a self, request: ChatRequest<'a>) -> BoxFuture<'a, CallOutcome>;

    /// Checks the server answers at all; the error names the URL.
    fn ping(&self) -> BoxFuture<'_, anyhow::Result<()>>;

    /// Version and model facts for the manifest.
    fn describe<'a>(&'a self, model: &'a str) -> BoxFuture<'a, ServerInfo>;

    /// The models the server holds in memory now (Ollama's `/api/ps`), or `None` when its
    /// API cannot say. A failure to ask is an `Err` with the reason; the run goes on.
    fn loaded(&self) -> BoxFuture<'_, Option<Result<Vec<LoadedModel>, String>>> {
        futures::future::ready(None).boxed()
    }

    /// The server's Prometheus metrics page (`GET /metrics`), or `None` when its API has
    /// none. A failure to fetch it is an `Err` in words; the run goes on.
    fn metrics(&self) -> BoxFuture<'static, Option<Result<String, String>>> {
        futures::future::ready(None).boxed()
    }
}

/// Parses the lines of one streamed response, in order, into a [`CallOutcome`]: one per
/// API.
pub trait LineParser {
    /// Handles one line that arrived at `at`; a failure goes into `out.error`.
    fn line(&mut self, line: &[u8], at: Instant, out: &mut CallOutcome);
    /// The stream ended: handle what was read but not yet acted on (an event whose blank
    /// line never came).
    fn end(&mut self, _out: &mut CallOutcome) {}

    /// Whether a successful reply with this `Content-Type` can be this API's stream (a
    /// gateway's HTML page cannot).
    fn accepts(&self, _content_type: &str) -> bool {
        true
    }

    /// The response is complete (final chunk, `[DONE]`).
    fn done(&self) -> bool;
    /// The stream ended at `at` before [`LineParser::done`]: whether that still counts
    /// as complete (e.g. a server that omits `[DONE]` after its last choice).
    fn complete_at_eof(&self) -> bool {
        false
    }
}

/// Sends `request` (the clock starts right before) and feeds the streamed body to a fresh
/// parser `P` line by line, each line stamped when its bytes arrived, until the parser is
/// done, something fails, or `timeout` has passed since the start — in which case what
/// was measured until then is kept. HTTP errors become [`ErrorKind::Http`] (or
/// `ModelNotFound` for a 404 about the model); a successful reply the parser cannot read
/// as its stream, [`ErrorKind::NotAStream`]. After the final event the rest of the body is
/// read, so the connection is kept for the next call; [`CallOutcome::connect_ms`] says
/// whether this call opened one.
///
/// A request written onto a pooled connection that the server had already closed fails
/// before any response byte arrives (servers such as llama.cpp's close the connection
/// after each streamed reply while advertising keep-alive). Such a request is sent once
/// more, on a new connection; the clock restarts for it and the outcome says so.
pub(crate) async fn stream_call<P: LineParser + Default>(
    http: &Http,
    request: reqwest::RequestBuilder,
    url: &str,
    timeout: Duration,
    limits: ResponseLimits,
) -> CallOutcome {
    let mut parser = P::default();
    let mut out = CallOutcome::start(256);
    let deadline = tokio::time::Instant::now() + timeout;
    let timed_out = |out: &mut CallOutcome| {
        out.timer.finish(Instant::now());
        out.error = Some(CallError::new(
            ErrorKind::Timeout,
            format!("no complete response within {:.1} s", timeout.as_secs_f64()),
        ));
    };
    let request = match request.build() {
        Ok(r) => r,
        Err(e) => return CallOutcome::failed(out.timer, transport_error(&e, url)),
    };
    let mut resend = request.try_clone();
    let mut sent = http.pooled.execute(request);
    let mut response = loop {
        let (result, connect_ms) = connect::timed(tokio::time::timeout_at(deadline, sent)).await;
        out.connect_ms = connect_ms;
        match result {
            Err(_) => {
                timed_out(&mut out);
                return out;
            }
            Ok(Err(e)) if closed_before_response(&e) && resend.is_some() => {
                tracing::debug!("resending on a new connection: {}", root_cause(&e));
                out = CallOutcome::start(256);
                out.resent = true;
                sent = http.fresh.execute(resend.take().expect("checked above"));
            }
            Ok(Err(e)) => {
                out.timer.finish(Instant::now());
                out.error = Some(transport_error(&e, url));
                return out;
            }
            Ok(Ok(r)) => break r,
        }
    };
    let status = response.status();
    if !status.is_success() {
        let text = tokio::time::timeout_at(deadline, response.text())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        out.timer.finish(Instant::now());
        let message = error_message(&text);
        let kind = if status == reqwest::StatusCode::NOT_FOUND && message.contains("not found") {
            ErrorKind::ModelNotFound
        } else {
            ErrorKind::Http
        };
        out.error = Some(CallError::new(kind, format!("HTTP {status}: {message}")));
        return out;
    }
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    if let Some(content_type) = content_type.filter(|t| !parser.accepts(t)) {
        // Say what came back: the start of the page a proxy or gateway sent instead.
        let mut start = Vec::new();
        while start.len() < 200 {
            match tokio::time::timeout_at(deadline, response.chunk()).await {
                Ok(Ok(Some(bytes))) => start.extend_from_slice(&bytes),
                _ => break,
            }
        }
        out.timer.finish(Instant::now());
        let shown: String = String::from_utf8_lossy(&start).chars().take(120).collect();
        out.error = Some(CallError::new(
            ErrorKind::NotAStream,
            format!("HTTP {status} with Content-Type {content_type}, not a stream: {shown}"),
        ));
        return out;
    }
    let mut splitter = LineSplitter::new();
    let mut received_bytes = 0u64;
    // One timer for the whole stream: a `timeout_at` per chunk would register and cancel
    // a timer for every token.
    let expiry = tokio::time::sleep_until(deadline);
    tokio::pin!(expiry);
    loop {
        let chunk = tokio::select! {
            biased;
            c = response.chunk() => c,
            () = &mut expiry => {
                timed_out(&mut out);
                break;
            }
        };
        match chunk {
            Ok(Some(bytes)) => {
                let at = Instant::now();
                received_bytes += bytes.len() as u64;
                let fed = splitter.feed(&bytes, |line| {
                    parser.line(line, at, &mut out);
                    out.error.is_none() && !parser.done()
                });
                if fed.is_err() && out.error.is_none() {
                    out.error = Some(CallError::new(
                        ErrorKind::MalformedChunk,
                        "a line longer than the protocol allows",
                    ));
                }
                if out.error.is_none()
                    && (received_bytes > limits.max_bytes
                        || out.timer.content_chunks() > limits.max_tokens)
                {
                    out.error = Some(CallError::new(
                        ErrorKind::ResponseTooLong,
                        format!(
                            "response passed the cap ({} bytes, {} chunks; caps {} bytes, {} tokens)",
                            received_bytes,
                            out.timer.content_chunks(),
                            limits.max_bytes,
                            limits.max_tokens
                        ),
                    ));
                    // Keep the text bounded too.
                    let mut keep = out.text.len().min(limits.max_bytes as usize);
                    while !out.text.is_char_boundary(keep) {
                        keep -= 1;
                    }
                    out.text.truncate(keep);
                }
                if parser.done() || out.error.is_some() {
                    out.timer.finish(at);
                    if out.error.is_none() {
                        drain(&mut response, deadline, limits).await;
                    }
                    break;
                }
            }
            Ok(None) => {
                let at = Instant::now();
                out.timer.finish(at);
                let tail = splitter.pending().to_vec();
                if !tail.is_empty() {
                    // A last line without its newline: accept it if it is complete.
                    parser.line(&tail, at, &mut out);
                }
                parser.end(&mut out);
                if !parser.done() && out.error.is_none() && !parser.complete_at_eof() {
                    out.error = Some(CallError::new(
                        ErrorKind::StreamCut,
                        format!(
                            "stream ended after {} content chunks without its final chunk",
                            out.timer.content_chunks()
                        ),
                    ));
                }
                break;
            }
            Err(e) => {
                out.timer.finish(Instant::now());
                out.error = Some(if e.is_timeout() {
                    CallError::new(ErrorKind::Timeout, e.to_string())
                } else {
                    CallError::new(ErrorKind::StreamCut, format!("stream broke: {e}"))
                });
                break;
            }
        }
    }
    out
}

/// How long the rest of a body may take to arrive after the response's final event.
const DRAIN_GRACE: Duration = Duration::from_millis(250);

/// Reads what follows the final event (usually only the end of the chunked body), so the
/// connection goes back to the pool instead of being closed: the next call then does not
/// pay for a new connection. A server that sends more, or not soon, loses the connection.
async fn drain(
    response: &mut reqwest::Response,
    deadline: tokio::time::Instant,
    limits: ResponseLimits,
) {
    let until = deadline.min(tokio::time::Instant::now() + DRAIN_GRACE);
    let mut extra = 0u64;
    while let Ok(Ok(Some(bytes))) = tokio::time::timeout_at(until, response.chunk()).await {
        extra += bytes.len() as u64;
        if extra > limits.max_bytes {
            break;
        }
    }
}

/// True when a request failed after its connection was made but before any response byte
/// arrived: what writing onto a connection the server had closed looks like.
fn closed_before_response(e: &reqwest::Error) -> bool {
    e.is_request() && !e.is_connect() && !e.is_timeout()
}

/// One line's JSON as `T`; a line that is not becomes the call's `malformed_chunk` error
/// (quoting its first 80 bytes), and `None`. `what` names the line in that message.
pub(crate) fn decode<'a, T: serde::Deserialize<'a>>(
    json: &'a [u8],
    what: &str,
    out: &mut CallOutcome,
) -> Option<T> {
    match serde_json::from_slice(json) {
        Ok(value) => Some(value),
        Err(e) => {
            let shown = String::from_utf8_lossy(&json[..json.len().min(80)]);
            out.error = Some(CallError::new(
                ErrorKind::MalformedChunk,
                format!("malformed {what} ({e}): {shown}"),
            ));
            None
        }
    }
}

/// The `error` text of a JSON error body (`{"error": "…"}` or `{"error": {"message": …}}`),
/// else the start of the body.
pub(crate) fn error_message(body: &str) -> String {
    let v: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let from_json = v.as_ref().and_then(|v| {
        let e = v.get("error")?;
        e.as_str()
            .map(str::to_owned)
            .or_else(|| e.get("message").and_then(|m| m.as_str()).map(str::to_owned))
    });
    from_json.unwrap_or_else(|| body.chars().take(200).collect())
}

/// A failure before any response: connect, timeout, or other transport error.
pub(crate) fn transport_error(e: &reqwest::Error, url: &str) -> CallError {
    if e.is_connect() {
        CallError::new(
            ErrorKind::Connect,
            format!("cannot connect to {url}: {}", root_cause(e)),
        )
    } else if e.is_timeout() {
        CallError::new(ErrorKind::Timeout, format!("timed out talking to {url}"))
    } else {
        CallError::new(
            ErrorKind::StreamCut,
            format!("request to {url} failed: {}", root_cause(e)),
        )
    }
}

/// The innermost cause of an error, which is usually the one that says what happened.
pub(crate) fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// The HTTP clients of one backend, tuned for streaming measurements. `pooled` keeps
/// connections alive between calls, as the clients of these servers do; `fresh` never
/// keeps one, for the one resend of a request whose pooled connection was closed; `side`
/// carries the requests made beside the calls (metrics scrapes), so that they never take
/// or leave a connection a call would find.
#[derive(Debug, Clone)]
pub(crate) struct Http {
    /// Every request goes through it first.
    pub(crate) pooled: reqwest::Client,
    fresh: reqwest::Client,
    pub(crate) side: reqwest::Client,
}

impl Http {
    pub(crate) fn new() -> anyhow::Result<Http> {
        install_tls_provider();
        let client = |idle_per_host: usize| {
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .tcp_nodelay(true)
                .pool_idle_timeout(Duration::from_secs(90))
                .pool_max_idle_per_host(idle_per_host)
                .connector_layer(connect::TimeConnections)
                .build()
        };
        Ok(Http {
            pooled: client(usize::MAX)?,
            fresh: client(0)?,
            side: client(1)?,
        })
    }
}
