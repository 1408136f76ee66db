//! Ollama's native API: `POST /api/chat` or `/api/generate`, streaming NDJSON.
//!
//! Each line is one JSON object; content chunks carry `message.content` (chat) or
//! `response` (generate); the final one has `done: true` and the server's counters and
//! timers in nanoseconds. See `DESIGN.md` for what each becomes.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::json;

use super::lines::LineSplitter;
use super::{Backend, ChatRequest, ServerInfo};
use crate::metrics::{CallError, CallOutcome, ErrorKind, ServerTimers, StreamTimer};
use crate::scenario::OllamaApi;

/// Client for one Ollama server.
#[derive(Debug, Clone)]
pub struct OllamaClient {
    http: reqwest::Client,
    base_url: String,
    api: OllamaApi,
    timeout: Duration,
}

impl OllamaClient {
    /// A client for `base_url` (no trailing slash) with a per-call timeout.
    pub fn new(base_url: &str, api: OllamaApi, timeout: Duration) -> anyhow::Result<Self> {
        super::install_tls_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            .build()?;
        Ok(OllamaClient {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api,
            timeout,
        })
    }

    fn body(&self, req: &ChatRequest<'_>) -> serde_json::Value {
        let mut body = match self.api {
            OllamaApi::Chat => json!({
                "model": req.model,
                "messages": [
                    {"role": "system", "content": req.system},
                    {"role": "user", "content": req.user},
                ],
                "stream": true,
            }),
            OllamaApi::Generate => json!({
                "model": req.model,
                "system": req.system,
                "prompt": req.user,
                "stream": true,
            }),
        };
        // The baseline sends no `options` key at all: the server's defaults, untouched.
        if !req.options.is_empty() {
            body["options"] = serde_json::to_value(req.options).unwrap_or_default();
        }
        if let Some(k) = req.keep_alive {
            body["keep_alive"] = json!(k);
        }
        body
    }

    async fn stream(&self, req: ChatRequest<'_>, out: &mut Partial) {
        let path = match self.api {
            OllamaApi::Chat => "/api/chat",
            OllamaApi::Generate => "/api/generate",
        };
        let body = self.body(&req);
        out.timer = StreamTimer::start(256);
        let response = self
            .http
            .post(format!("{}{path}", self.base_url))
            .json(&body)
            .send()
            .await;
        let mut response = match response {
            Ok(r) => r,
            Err(e) => {
                out.error = Some(transport_error(&e, &self.base_url));
                return;
            }
        };
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            let message = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
                .unwrap_or_else(|| text.chars().take(200).collect());
            let kind = if status == reqwest::StatusCode::NOT_FOUND && message.contains("not found")
            {
                ErrorKind::ModelNotFound
            } else {
                ErrorKind::Http
            };
            out.error = Some(CallError::new(kind, format!("HTTP {status}: {message}")));
            out.timer.finish(Instant::now());
            return;
        }
        let mut splitter = LineSplitter::new();
        let mut parser = ChunkParser::default();
        loop {
            match response.chunk().await {
                Ok(Some(bytes)) => {
                    let at = Instant::now();
                    let fed = splitter.feed(&bytes, |line| {
                        parser.line(line, at, &mut out.timer, &mut out.text, &mut out.server)
                    });
                    if fed.is_err() {
                        parser.error = Some(CallError::new(
                            ErrorKind::MalformedChunk,
                            "a line longer than the protocol allows",
                        ));
                    }
                    if parser.done || parser.error.is_some() {
                        out.timer.finish(at);
                        break;
                    }
                }
                Ok(None) => {
                    out.timer.finish(Instant::now());
                    let tail = splitter.pending();
                    if !tail.is_empty() && parser.error.is_none() {
                        // A last line without its newline: accept it if it is complete JSON.
                        let at = Instant::now();
                        let tail = tail.to_vec();
                        parser.line(&tail, at, &mut out.timer, &mut out.text, &mut out.server);
                    }
                    if !parser.done && parser.error.is_none() {
                        parser.error = Some(CallError::new(
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
                    parser.error = Some(if e.is_timeout() {
                        CallError::new(ErrorKind::Timeout, e.to_string())
                    } else {
                        CallError::new(ErrorKind::StreamCut, format!("stream broke: {e}"))
                    });
                    break;
                }
            }
        }
        out.error = parser.error;
    }
}

/// The state of a call that may be abandoned at the timeout: it lives outside the future
/// so that what was measured before the timeout is kept.
struct Partial {
    timer: StreamTimer,
    server: ServerTimers,
    text: String,
    error: Option<CallError>,
}

fn transport_error(e: &reqwest::Error, url: &str) -> CallError {
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

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// One NDJSON line of Ollama's stream. Borrowed where the JSON has no escapes.
#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(borrow, default)]
    message: Option<ChunkMessage<'a>>,
    #[serde(borrow, default)]
    response: Option<Cow<'a, str>>,
    #[serde(default)]
    done: bool,
    #[serde(borrow, default)]
    error: Option<Cow<'a, str>>,
    eval_count: Option<u64>,
    eval_duration: Option<u64>,
    prompt_eval_count: Option<u64>,
    prompt_eval_duration: Option<u64>,
    load_duration: Option<u64>,
    total_duration: Option<u64>,
}

#[derive(Deserialize)]
struct ChunkMessage<'a> {
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
}

/// Parses lines of one stream, in order.
#[derive(Default)]
pub struct ChunkParser {
    /// The final chunk was seen.
    pub done: bool,
    /// The first failure seen.
    pub error: Option<CallError>,
}

impl ChunkParser {
    /// Handles one line that arrived at `at`. Returns false when the stream should stop
    /// being read (final chunk, error, malformed line).
    pub fn line(
        &mut self,
        line: &[u8],
        at: Instant,
        timer: &mut StreamTimer,
        text: &mut String,
        server: &mut ServerTimers,
    ) -> bool {
        if line.iter().all(u8::is_ascii_whitespace) {
            return true;
        }
        let chunk: Chunk<'_> = match serde_json::from_slice(line) {
            Ok(c) => c,
            Err(e) => {
                let shown = String::from_utf8_lossy(&line[..line.len().min(80)]).into_owned();
                self.error = Some(CallError::new(
                    ErrorKind::MalformedChunk,
                    format!("malformed chunk ({e}): {shown}"),
                ));
                return false;
            }
        };
        if let Some(err) = chunk.error {
            self.error = Some(CallError::new(ErrorKind::ServerError, err.into_owned()));
            return false;
        }
        let content = chunk
            .message
            .and_then(|m| m.content)
            .or(chunk.response)
            .unwrap_or_default();
        if !content.is_empty() {
            timer.content(at);
            text.push_str(&content);
        }
        if chunk.done {
            let ms = |ns: Option<u64>| ns.map(|v| v as f64 / 1e6);
            *server = ServerTimers {
                eval_count: chunk.eval_count,
                prompt_eval_count: chunk.prompt_eval_count,
                load_ms: ms(chunk.load_duration),
                prompt_eval_ms: ms(chunk.prompt_eval_duration),
                eval_ms: ms(chunk.eval_duration),
                total_ms: ms(chunk.total_duration),
            };
            self.done = true;
            return false;
        }
        true
    }
}

impl Backend for OllamaClient {
    fn chat<'a>(&'a self, request: ChatRequest<'a>) -> BoxFuture<'a, CallOutcome> {
        async move {
            let mut partial = Partial {
                timer: StreamTimer::start(0),
                server: ServerTimers::default(),
                text: String::new(),
                error: None,
            };
            let finished =
                tokio::time::timeout(self.timeout, self.stream(request, &mut partial)).await;
            if finished.is_err() {
                partial.timer.finish(Instant::now());
                partial.error = Some(CallError::new(
                    ErrorKind::Timeout,
                    format!("no final chunk within {:.1} s", self.timeout.as_secs_f64()),
                ));
            }
            CallOutcome {
                timer: partial.timer,
                server: partial.server,
                text: partial.text,
                error: partial.error,
            }
        }
        .boxed()
    }

    fn ping(&self) -> BoxFuture<'_, anyhow::Result<()>> {
        async move {
            let url = format!("{}/api/version", self.base_url);
            let response = self
                .http
                .get(&url)
                .timeout(Duration::from_secs(5))
                .send()
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "no Ollama server answers at {}: {}",
                        self.base_url,
                        root_cause(&e)
                    )
                })?;
            if !response.status().is_success() {
                anyhow::bail!(
                    "{url} answered HTTP {}; is this an Ollama server?",
                    response.status()
                );
            }
            Ok(())
        }
        .boxed()
    }

    fn describe<'a>(&'a self, model: &'a str) -> BoxFuture<'a, ServerInfo> {
        async move {
            let mut info = ServerInfo {
                url: self.base_url.clone(),
                ..ServerInfo::default()
            };
            let get = |path: &str| {
                self.http
                    .get(format!("{}{path}", self.base_url))
                    .timeout(Duration::from_secs(10))
                    .send()
            };
            match get("/api/version").await {
                Ok(r) => match r.json::<serde_json::Value>().await {
                    Ok(v) => info.version = v["version"].as_str().map(str::to_owned),
                    Err(e) => info.notes.push(format!("/api/version: {e}")),
                },
                Err(e) => info.notes.push(format!("/api/version: {e}")),
            }
            match get("/api/tags").await {
                Ok(r) => match r.json::<serde_json::Value>().await {
                    Ok(v) => {
                        let found = v["models"].as_array().and_then(|models| {
                            models.iter().find(|m| {
                                m["name"].as_str() == Some(model) || m["model"].as_str() == Some(model)
                            })
                        });
                        match found {
                            Some(m) => info.model_digest = m["digest"].as_str().map(str::to_owned),
                            None => info.notes.push(format!("model {model} is not in /api/tags")),
                        }
                    }
                    Err(e) => info.notes.push(format!("/api/tags: {e}")),
                },
                Err(e) => info.notes.push(format!("/api/tags: {e}")),
            }
            let show = self
                .http
                .post(format!("{}/api/show", self.base_url))
                .json(&json!({ "model": model }))
                .timeout(Duration::from_secs(10))
                .send()
                .await;
            match show {
                Ok(r) if r.status().is_success() => match r.json::<serde_json::Value>().await {
                    Ok(v) => {
                        info.model_details = Some(json!({
                            "details": v.get("details"),
                            "parameters": v.get("parameters"),
                            "context_length": v.get("model_info").and_then(|mi| {
                                mi.as_object().and_then(|o| {
                                    o.iter().find(|(k, _)| k.ends_with(".context_length")).map(|(_, v)| v.clone())
                                })
                            }),
                        }))
                    }
                    Err(e) => info.notes.push(format!("/api/show: {e}")),
                },
                Ok(r) => info.notes.push(format!("/api/show: HTTP {}", r.status())),
                Err(e) => info.notes.push(format!("/api/show: {e}")),
            }
            info
        }
        .boxed()
    }
}
