//! Backends: one trait, one file per server API. Every backend streams, stamps each
//! network chunk with the monotonic clock when its bytes arrive, and returns a
//! [`CallOutcome`] — failures included, as data.

pub mod lines;
pub mod ollama;

use futures::future::BoxFuture;
use serde::Serialize;

use crate::metrics::CallOutcome;
use crate::scenario::ModelOptions;

/// Installs ring as the process's TLS crypto provider (reqwest is built without a default
/// one to keep builds short). Idempotent; every HTTP client is built after calling it.
pub fn install_tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err means another provider is already installed, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// One chat request in backend-neutral form.
#[derive(Debug, Clone, Copy)]
pub struct ChatRequest<'a> {
    /// Model tag.
    pub model: &'a str,
    /// System prompt (the persona).
    pub system: &'a str,
    /// User message.
    pub user: &'a str,
    /// Options; an empty set sends none.
    pub options: &'a ModelOptions,
    /// Ollama `keep_alive`.
    pub keep_alive: Option<&'a str>,
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
}
