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

use super::{Backend, ChatRequest, LineParser, ServerInfo, decode, root_cause};
use crate::metrics::{CallError, CallOutcome, ErrorKind, ServerTimers};
use crate::scenario::{OllamaApi, ResponseLimits};

/// Client for one Ollama server.
#[derive(Debug, Clone)]
pub struct OllamaClient {
    http: super::Http,
    base_url: String,
    api: OllamaApi,
    timeout: Duration,
    limits: ResponseLimits,
}

impl OllamaClient {
    /// A client for `base_url` (no trailing slash) with a per-call timeout.
    pub fn new(base_url: &str, api: OllamaApi, timeout: Duration) -> anyhow::Result<Self> {
        Ok(OllamaClient {
            http: super::Http::new()?,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api,
            timeout,
            limits: ResponseLimits::default(),
        })
    }

    /// Caps each response at `limits` instead of the defaults.
    pub fn with_limits(mut self, limits: ResponseLimits) -> Self {
        self.limits = limits;
        self
    }

    fn body(&self, req: &ChatRequest<'_>) -> serde_json::Value {
        let mut body = match self.api {
            OllamaApi::Chat => json!({
                "model": req.model,
                "messages": req.messages(),
                "stream": true,
            }),
            OllamaApi::Generate => json!({
                "model": req.model,
                "system": req.system,
                "prompt": req.flat_prompt(),
                "stream": true,
            }),
        };
        if req.ignore_eos {
            body["ignore_eos"] = json!(true);
        }
        // The baseline sends no `options` key at all: the server's defaults, untouched.
        if !req.options.is_empty() {
            body["options"] = serde_json::to_value(req.options).unwrap_or_default();
        }
        if let Some(k) = req.keep_alive {
            body["keep_alive"] = json!(k);
        }
        body
    }
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
    /// The simulator's own field: prompt tokens taken from its prefix cache.
    cached_prompt_count: Option<u64>,
    prompt_eval_duration: Option<u64>,
    load_duration: Option<u64>,
    total_duration: Option<u64>,
}

#[derive(Deserialize)]
struct ChunkMessage<'a> {
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
}

/// Parses the lines of one stream, in order (see [`LineParser`]).
#[derive(Default)]
pub struct ChunkParser {
    done: bool,
}

impl LineParser for ChunkParser {
    fn line(&mut self, line: &[u8], at: Instant, out: &mut CallOutcome) {
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let Some(chunk) = decode::<Chunk<'_>>(line, "chunk", out) else {
            return;
        };
        if let Some(err) = chunk.error {
            out.error = Some(CallError::new(ErrorKind::ServerError, err.into_owned()));
            return;
        }
        let content = chunk
            .message
            .and_then(|m| m.content)
            .or(chunk.response)
            .unwrap_or_default();
        if !content.is_empty() {
            out.timer.content(at);
            out.text.push_str(&content);
        }
        if chunk.done {
            let ms = |ns: Option<u64>| ns.map(|v| v as f64 / 1e6);
            out.server = ServerTimers {
                eval_count: chunk.eval_count,
                output_count: None,
                cached_prompt_count: chunk.cached_prompt_count,
                prompt_eval_count: chunk.prompt_eval_count,
                load_ms: ms(chunk.load_duration),
                prompt_eval_ms: ms(chunk.prompt_eval_duration),
                eval_ms: ms(chunk.eval_duration),
                total_ms: ms(chunk.total_duration),
            };
            self.done = true;
        }
    }

    fn accepts(&self, content_type: &str) -> bool {
        content_type.contains("json")
    }

    fn done(&self) -> bool {
        self.done
    }
}

impl Backend for OllamaClient {
    fn chat<'a>(&'a self, request: ChatRequest<'a>) -> BoxFuture<'a, CallOutcome> {
        let path = match self.api {
            OllamaApi::Chat => "/api/chat",
            OllamaApi::Generate => "/api/generate",
        };
        let body = self.body(&request);
        let http = self
            .http
            .pooled
            .post(format!("{}{path}", self.base_url))
            .json(&body);
        super::stream_call::<ChunkParser>(
            &self.http,
            http,
            &self.base_url,
            self.timeout,
            self.limits,
        )
        .boxed()
    }

    fn ping(&self) -> BoxFuture<'_, anyhow::Result<()>> {
        async move {
            let url = format!("{}/api/version", self.base_url);
            let response = self
                .http
                .pooled
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

    fn loaded(&self) -> BoxFuture<'_, Option<Result<Vec<super::LoadedModel>, String>>> {
        async move {
            let reply = self
                .http
                .pooled
                .get(format!("{}/api/ps", self.base_url))
                .timeout(Duration::from_secs(10))
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .map_err(|e| format!("/api/ps: {e}"));
            let body = match reply {
                Ok(r) => r
                    .json::<serde_json::Value>()
                    .await
                    .map_err(|e| format!("/api/ps: {e}")),
                Err(e) => Err(e),
            };
            Some(body.and_then(|v| parse_ps(&v)))
        }
        .boxed()
    }

    fn describe<'a>(&'a self, model: &'a str) -> BoxFuture<'a, ServerInfo> {
        async move {
            let mut info = ServerInfo {
                url: self.base_url.clone(),
                field_sources: [
                    ("output_tokens", "eval_count (else the count of content chunks, tokens_counted = true)"),
                    ("prompt_tokens", "prompt_eval_count"),
                    ("cached_prompt_tokens", "cached_prompt_count (the built-in simulator only; Ollama reports none)"),
                    ("eval_ms", "eval_duration"),
                    ("decode_tps", "eval_count / eval_duration"),
                    ("prompt_eval_ms", "prompt_eval_duration"),
                    ("load_ms", "load_duration"),
                    ("server_total_ms", "total_duration"),
                    ("ttft_ms", "client clock: first chunk with non-empty message.content or response"),
                ]
                .into_iter()
                .collect(),
                ..ServerInfo::default()
            };
            let get = |path: &str| {
                self.http.pooled
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
                            Some(m) => {
                                info.model_digest = m["digest"].as_str().map(str::to_owned);
                                info.served_model = Some(model.to_owned());
                            }
                            None => info.notes.push(format!("model {model} is not in /api/tags")),
                        }
                    }
                    Err(e) => info.notes.push(format!("/api/tags: {e}")),
                },
                Err(e) => info.notes.push(format!("/api/tags: {e}")),
            }
            let show = self
                .http
                .pooled
                .post(format!("{}/api/show", self.base_url))
                .json(&json!({ "model": model }))
                .timeout(Duration::from_secs(10))
                .send()
                .await;
            match show {
                Ok(r) if r.status().is_success() => match r.json::<serde_json::Value>().await {
                    Ok(v) => {
                        info.model_shape = Some(super::ModelShape::from_show(&v));
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

/// `/api/ps`'s reply as loaded models.
fn parse_ps(v: &serde_json::Value) -> Result<Vec<super::LoadedModel>, String> {
    let models = v["models"]
        .as_array()
        .ok_or_else(|| "/api/ps: no `models` list".to_owned())?;
    models
        .iter()
        .map(|m| {
            let name = m["model"].as_str().or(m["name"].as_str());
            Ok(super::LoadedModel {
                model: name.ok_or("/api/ps: a model without a name")?.to_owned(),
                size: m["size"].as_u64().unwrap_or(0),
                size_vram: m["size_vram"].as_u64().unwrap_or(0),
                context_length: m["context_length"]
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok()),
                digest: m["digest"].as_str().map(str::to_owned),
                expires_at: m["expires_at"].as_str().map(str::to_owned),
            })
        })
        .collect()
}
