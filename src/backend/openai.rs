//! OpenAI-compatible servers (vLLM, llama.cpp's `llama-server`, TGI, SGLang, …):
//! `POST /v1/chat/completions` with `stream: true` and `stream_options.include_usage`,
//! read as server-sent events.
//!
//! - Each event is a `data: {json}` line; `data: [DONE]` ends the stream; comment lines
//!   (`: ping`) and other fields (`event:`, `id:`) are skipped.
//! - TTFT is stamped at the first chunk whose `delta.content` is non-empty: the role-only
//!   first chunk most servers send does not count. Reasoning text sent apart
//!   (`delta.reasoning_content` or `delta.reasoning`) is timed apart.
//! - Output and prompt tokens come from the final `usage` chunk; without one, output
//!   tokens are the count of content chunks, labelled `tokens_counted`.
//! - llama.cpp's `timings` object (`predicted_n`, `predicted_ms`, `prompt_ms`, `cache_n`)
//!   fills the server-side fields, so `decode_tps` means the server's decode rate exactly
//!   as with Ollama; servers that send no timings leave those fields empty.
//! - An `error` object inside the stream is a `server_error`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::json;

use super::{Backend, ChatRequest, LineParser, ServerInfo, decode, root_cause};
use crate::metrics::{CallError, CallOutcome, ErrorKind};
use crate::scenario::ResponseLimits;

/// Client for one OpenAI-compatible server.
#[derive(Clone)]
pub struct OpenAiClient {
    http: super::Http,
    base_url: String,
    api_key: Option<String>,
    timeout: Duration,
    limits: ResponseLimits,
}

impl std::fmt::Debug for OpenAiClient {
    // By hand, so that the key never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiClient")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The server root for `url`: a trailing `/v1` (as OpenAI clients write it) is dropped.
pub fn server_root(url: &str) -> &str {
    let url = url.trim_end_matches('/');
    url.strip_suffix("/v1").unwrap_or(url)
}

impl OpenAiClient {
    /// A client for the server at `base_url` (with or without `/v1`), sending
    /// `api_key` as a bearer token when given.
    pub fn new(base_url: &str, api_key: Option<String>, timeout: Duration) -> anyhow::Result<Self> {
        Ok(OpenAiClient {
            http: super::Http::new()?,
            base_url: server_root(base_url).to_owned(),
            api_key: api_key.filter(|k| !k.is_empty()),
            timeout,
            limits: ResponseLimits::default(),
        })
    }

    /// Caps each response at `limits` instead of the defaults.
    pub fn with_limits(mut self, limits: ResponseLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The request body. Options map to OpenAI fields (`temperature`, `top_p`, `seed`,
    /// `max_tokens` from a positive `num_predict`); `top_k` and `repeat_penalty` go as the
    /// extra fields llama.cpp and vLLM accept. `num_ctx` and `num_gpu` cannot be sent
    /// per request and are rejected when the scenario is checked.
    pub fn body(req: &ChatRequest<'_>) -> serde_json::Value {
        let mut body = json!({
            "model": req.model,
            "messages": req.messages(),
            "stream": true,
            "stream_options": {"include_usage": true},
        });
        if req.ignore_eos {
            body["ignore_eos"] = json!(true);
        }
        let o = req.options;
        let mut set = |key: &str, value: serde_json::Value| body[key] = value;
        if let Some(t) = o.temperature {
            set("temperature", json!(t));
        }
        if let Some(p) = o.top_p {
            set("top_p", json!(p));
        }
        if let Some(s) = o.seed {
            set("seed", json!(s));
        }
        if let Some(n) = o.num_predict.filter(|&n| n > 0) {
            set("max_tokens", json!(n));
        }
        if let Some(k) = o.top_k {
            set("top_k", json!(k));
        }
        if let Some(r) = o.repeat_penalty {
            set("repeat_penalty", json!(r));
        }
        body
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        let r = self
            .http
            .pooled
            .get(format!("{}{path}", self.base_url))
            .timeout(Duration::from_secs(10));
        match &self.api_key {
            Some(k) => r.bearer_auth(k),
            None => r,
        }
    }

    /// Where each server-side field of a call record comes from in this API.
    pub fn field_sources() -> BTreeMap<&'static str, &'static str> {
        [
            ("output_tokens", "usage.completion_tokens (else the count of content chunks, tokens_counted = true)"),
            ("prompt_tokens", "usage.prompt_tokens"),
            ("cached_prompt_tokens", "timings.cache_n (llama.cpp), else usage.prompt_tokens_details.cached_tokens"),
            ("eval_ms", "timings.predicted_ms (llama.cpp only)"),
            ("decode_tps", "timings.predicted_n / timings.predicted_ms (llama.cpp only; null for servers without timings)"),
            ("prompt_eval_ms", "timings.prompt_ms (llama.cpp only)"),
            ("load_ms", "not reported by this API"),
            ("server_total_ms", "not reported by this API"),
            ("ttft_ms", "client clock: first chunk with non-empty delta.content"),
            ("reasoning_ttft_ms", "client clock: first chunk with delta.reasoning_content or delta.reasoning"),
        ]
        .into_iter()
        .collect()
    }
}

/// One event's JSON. Borrowed where the JSON has no escapes; only the first choice is
/// kept (harness asks for one), without allocating a list per token.
#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(borrow, default, deserialize_with = "first_choice")]
    choices: Option<Choice<'a>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    timings: Option<Timings>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

/// The first element of the `choices` array; the rest are skipped.
fn first_choice<'de, D>(deserializer: D) -> Result<Option<Choice<'de>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct First;
    impl<'de> serde::de::Visitor<'de> for First {
        type Value = Option<Choice<'de>>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a list of choices")
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let first = seq.next_element::<Choice<'de>>()?;
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            Ok(first)
        }

        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    deserializer.deserialize_any(First)
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(borrow, default)]
    delta: Option<Delta<'a>>,
    #[serde(borrow, default)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Usage {
    completion_tokens: Option<u64>,
    prompt_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
}

#[derive(Deserialize)]
struct PromptDetails {
    cached_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct Timings {
    predicted_n: Option<u64>,
    predicted_ms: Option<f64>,
    prompt_ms: Option<f64>,
    cache_n: Option<u64>,
}

/// Parses the events of one stream, in order (see [`LineParser`]).
#[derive(Default)]
pub struct SseParser {
    done: bool,
    finished_choice: bool,
    /// The `data` of the event being read: its `data:` lines joined with `\n`.
    data: Vec<u8>,
    /// When the event's first `data:` line arrived; `None` between events.
    data_at: Option<Instant>,
}

impl SseParser {
    /// Dispatches the event read so far, stamped with the arrival of its first line.
    fn dispatch(&mut self, out: &mut CallOutcome) {
        if let Some(at) = self.data_at.take() {
            let data = std::mem::take(&mut self.data);
            self.event(&data, at, out);
            self.data = data;
            self.data.clear();
        }
    }

    /// One event's data.
    fn event(&mut self, data: &[u8], at: Instant, out: &mut CallOutcome) {
        let data = data.trim_ascii();
        if data == b"[DONE]" {
            self.done = true;
            return;
        }
        let Some(chunk) = decode::<Chunk<'_>>(data, "event", out) else {
            return;
        };
        if let Some(err) = chunk.error {
            let message = err
                .get("message")
                .and_then(|m| m.as_str())
                .map(str::to_owned)
                .or_else(|| err.as_str().map(str::to_owned))
                .unwrap_or_else(|| err.to_string());
            out.error = Some(CallError::new(ErrorKind::ServerError, message));
            return;
        }
        if let Some(choice) = &chunk.choices {
            if let Some(delta) = &choice.delta {
                if let Some(content) = delta.content.as_deref().filter(|c| !c.is_empty()) {
                    out.timer.content(at);
                    out.text.push_str(content);
                }
                let reasoning = delta
                    .reasoning_content
                    .as_deref()
                    .or(delta.reasoning.as_deref());
                if reasoning.is_some_and(|r| !r.is_empty()) {
                    out.timer.reasoning(at);
                }
            }
            if choice.finish_reason.is_some() {
                self.finished_choice = true;
            }
        }
        if let Some(u) = chunk.usage {
            out.server.output_count = u.completion_tokens;
            out.server.prompt_eval_count = u.prompt_tokens;
            if out.server.cached_prompt_count.is_none() {
                out.server.cached_prompt_count =
                    u.prompt_tokens_details.and_then(|d| d.cached_tokens);
            }
        }
        if let Some(t) = chunk.timings {
            out.server.eval_count = t.predicted_n;
            out.server.eval_ms = t.predicted_ms;
            out.server.prompt_eval_ms = t.prompt_ms;
            if t.cache_n.is_some() {
                out.server.cached_prompt_count = t.cache_n;
            }
        }
    }
}

impl LineParser for SseParser {
    /// Lines are read as the SSE specification says: `data:` lines accumulate (joined with
    /// `\n`) until a blank line dispatches the event; comments (`: …`) and the other
    /// fields (`event:`, `id:`, `retry:`) are skipped.
    fn line(&mut self, line: &[u8], at: Instant, out: &mut CallOutcome) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        let Some(value) = line.strip_prefix(b"data:") else {
            return;
        };
        let value = value.strip_prefix(b" ").unwrap_or(value);
        match self.data_at {
            Some(_) => self.data.push(b'\n'),
            None => self.data_at = Some(at),
        }
        self.data.extend_from_slice(value);
    }

    fn accepts(&self, content_type: &str) -> bool {
        content_type.trim_start().starts_with("text/event-stream")
    }

    /// An event the stream ended before dispatching still counts.
    fn end(&mut self, out: &mut CallOutcome) {
        self.dispatch(out);
    }

    fn done(&self) -> bool {
        self.done
    }

    /// Some servers end the stream after the last choice without `[DONE]`.
    fn complete_at_eof(&self) -> bool {
        self.finished_choice
    }
}

impl Backend for OpenAiClient {
    fn chat<'a>(&'a self, request: ChatRequest<'a>) -> BoxFuture<'a, CallOutcome> {
        let mut http = self
            .http
            .pooled
            .post(format!("{}/v1/chat/completions", self.base_url))
            .json(&Self::body(&request));
        if let Some(k) = &self.api_key {
            http = http.bearer_auth(k);
        }
        super::stream_call::<SseParser>(&self.http, http, &self.base_url, self.timeout, self.limits)
            .boxed()
    }

    fn ping(&self) -> BoxFuture<'_, anyhow::Result<()>> {
        async move {
            let response = self.get("/v1/models").send().await.map_err(|e| {
                anyhow::anyhow!(
                    "no OpenAI-compatible server answers at {}: {}",
                    self.base_url,
                    root_cause(&e)
                )
            })?;
            let status = response.status();
            if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN
            {
                anyhow::bail!(
                    "{}/v1/models answered HTTP {status}: set the API key in the environment variable the scenario names (`server.api_key_env`)",
                    self.base_url
                );
            }
            if !status.is_success() {
                anyhow::bail!(
                    "{}/v1/models answered HTTP {status}; is this an OpenAI-compatible server?",
                    self.base_url
                );
            }
            Ok(())
        }
        .boxed()
    }

    fn metrics(&self) -> BoxFuture<'static, Option<Result<String, String>>> {
        let url = format!("{}/metrics", self.base_url);
        let mut request = self.http.side.get(&url).timeout(Duration::from_secs(10));
        if let Some(k) = &self.api_key {
            request = request.bearer_auth(k);
        }
        async move {
            // A server that closed the kept connection fails the request before any byte
            // of the answer: asked once more, on a new one.
            let again = request.try_clone();
            let sent = match request.send().await {
                Err(e) if e.is_request() || e.is_connect() => match again {
                    Some(again) => again.send().await,
                    None => Err(e),
                },
                sent => sent,
            };
            Some(match sent {
                Ok(r) if r.status().is_success() => r
                    .text()
                    .await
                    .map_err(|e| format!("GET /metrics: {}", root_cause(&e))),
                Ok(r) => Err(format!("GET /metrics: HTTP {}", r.status())),
                Err(e) => Err(format!("GET /metrics: {}", root_cause(&e))),
            })
        }
        .boxed()
    }

    fn describe<'a>(&'a self, model: &'a str) -> BoxFuture<'a, ServerInfo> {
        async move {
            let mut info = ServerInfo {
                url: self.base_url.clone(),
                field_sources: Self::field_sources(),
                ..ServerInfo::default()
            };
            let mut details = serde_json::Map::new();
            let fetch = |path: &'static str| async move {
                match self.get(path).send().await {
                    Ok(r) if r.status().is_success() => r
                        .json::<serde_json::Value>()
                        .await
                        .map_err(|e| format!("{path}: {e}")),
                    Ok(r) => Err(format!("{path}: HTTP {}", r.status())),
                    Err(e) => Err(format!("{path}: {}", root_cause(&e))),
                }
            };
            match fetch("/v1/models").await {
                Ok(v) => {
                    let ids: Vec<&str> = v["data"]
                        .as_array()
                        .map(|d| d.iter().filter_map(|m| m["id"].as_str()).collect())
                        .unwrap_or_default();
                    info.served_model = match ids.as_slice() {
                        _ if ids.contains(&model) => Some(model.to_owned()),
                        [only] => Some((*only).to_owned()),
                        _ => None,
                    };
                    if !ids.is_empty() && !ids.contains(&model) {
                        info.notes.push(format!(
                            "model {model} is not among the served models ({}); single-model servers answer anyway",
                            ids.join(", ")
                        ));
                    }
                    details.insert("served_models".into(), json!(ids));
                }
                Err(e) => info.notes.push(e),
            }
            // llama.cpp: /props (build, slots, context) and /health.
            if let Ok(v) = fetch("/props").await {
                info.version = v["build_info"].as_str().map(str::to_owned);
                for key in ["total_slots", "model_path", "model_alias", "model_ftype"] {
                    if let Some(x) = v.get(key) {
                        details.insert(key.into(), x.clone());
                    }
                }
                if let Some(n_ctx) = v["default_generation_settings"].get("n_ctx") {
                    details.insert("n_ctx".into(), n_ctx.clone());
                }
            }
            // llama.cpp: /slots (absent when the server runs with --no-slots).
            if let Ok(v) = fetch("/slots").await
                && let Some(slots) = v.as_array()
            {
                let n_ctx: Vec<&serde_json::Value> = slots.iter().map(|s| &s["n_ctx"]).collect();
                details.insert("slots".into(), json!(slots.len()));
                details.insert("slot_n_ctx".into(), json!(n_ctx));
            }
            // vLLM: /version.
            if info.version.is_none() {
                if let Ok(v) = fetch("/version").await {
                    info.version = v["version"].as_str().map(str::to_owned);
                }
            }
            if let Ok(v) = fetch("/health").await {
                details.insert("health".into(), v);
            }
            info.model_details = Some(serde_json::Value::Object(details));
            info
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::ModelOptions;

    #[test]
    fn options_map_to_openai_fields_and_none_are_sent_for_the_baseline() {
        let none = ModelOptions::default();
        let req = |o| ChatRequest {
            model: "m",
            history: &[],
            ignore_eos: false,
            system: "s",
            user: "u",
            options: o,
            keep_alive: None,
        };
        let b = OpenAiClient::body(&req(&none));
        assert_eq!(b["stream_options"]["include_usage"], true);
        for key in [
            "temperature",
            "top_p",
            "seed",
            "max_tokens",
            "top_k",
            "repeat_penalty",
        ] {
            assert!(b.get(key).is_none(), "{key} sent for defaults");
        }
        let o = ModelOptions {
            temperature: Some(0.2),
            top_p: Some(0.9),
            seed: Some(7),
            num_predict: Some(64),
            top_k: Some(20),
            repeat_penalty: Some(1.1),
            ..ModelOptions::default()
        };
        let b = OpenAiClient::body(&req(&o));
        assert_eq!(b["temperature"], 0.2);
        assert_eq!(b["max_tokens"], 64);
        assert_eq!(b["top_k"], 20);
        assert_eq!(b["repeat_penalty"], 1.1);
        assert_eq!(b["seed"], 7);
        let unlimited = ModelOptions {
            num_predict: Some(-1),
            ..ModelOptions::default()
        };
        assert!(
            OpenAiClient::body(&req(&unlimited))
                .get("max_tokens")
                .is_none()
        );
    }

    #[test]
    fn server_root_drops_v1() {
        assert_eq!(server_root("http://h:8080/v1/"), "http://h:8080");
        assert_eq!(server_root("http://h:8080"), "http://h:8080");
    }

    #[test]
    fn debug_output_hides_the_key() {
        let c = OpenAiClient::new("http://h", Some("sk-secret".into()), Duration::from_secs(1))
            .unwrap();
        assert!(!format!("{c:?}").contains("sk-secret"));
    }
}
