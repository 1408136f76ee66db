//! Helpers shared by the integration tests.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;

/// One step of a scripted NDJSON response.
#[derive(Clone, Debug)]
pub enum Step {
    /// Send these bytes (a line needs its own `\n`).
    Send(&'static str),
    /// Send an owned string.
    SendOwned(String),
    /// Wait.
    Sleep(u64),
}

/// What the fake server answers.
#[derive(Clone, Debug)]
pub enum Reply {
    /// 200 with a streamed body; the stream ends after the last step.
    Stream(Vec<Step>),
    /// An error status with a body.
    Status(u16, &'static str),
}

/// A fake LLM server on 127.0.0.1:0 that answers every generation request (Ollama's
/// `/api/chat` and `/api/generate`, OpenAI's `/v1/chat/completions`) with `reply`, and
/// keeps the request bodies and `Authorization` headers it saw.
pub struct FakeServer {
    pub url: String,
    pub requests: Arc<Mutex<Vec<serde_json::Value>>>,
    pub authorization: Arc<Mutex<Vec<Option<String>>>>,
    /// TCP connections accepted so far.
    pub connections: Arc<AtomicUsize>,
}

impl FakeServer {
    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

pub async fn fake_server(reply: Reply) -> FakeServer {
    let requests: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let authorization: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let state = (reply, requests.clone(), authorization.clone());
    let app = Router::new()
        .route("/api/chat", post(answer))
        .route("/api/generate", post(answer))
        .route("/v1/chat/completions", post(answer))
        .route(
            "/v1/models",
            axum::routing::get(|| async {
                axum::Json(serde_json::json!({"object": "list", "data": [{"id": "m"}]}))
            }),
        )
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    // Small writes must leave at once, as from a real server (see the simulator's no_delay).
    let connections: Arc<AtomicUsize> = Arc::default();
    let accepted = connections.clone();
    let listener = axum::serve::ListenerExt::tap_io(listener, move |tcp| {
        accepted.fetch_add(1, Ordering::SeqCst);
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    FakeServer {
        url,
        requests,
        authorization,
        connections,
    }
}

type FakeState = (
    Reply,
    Arc<Mutex<Vec<serde_json::Value>>>,
    Arc<Mutex<Vec<Option<String>>>>,
);

async fn answer(
    State((reply, requests, authorization)): State<FakeState>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    authorization.lock().unwrap().push(
        headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    );
    requests
        .lock()
        .unwrap()
        .push(serde_json::from_slice(&body).unwrap_or_default());
    match reply {
        Reply::Status(code, body) => (StatusCode::from_u16(code).unwrap(), body).into_response(),
        Reply::Stream(steps) => {
            let stream = futures::stream::unfold(steps.into_iter(), |mut steps| async move {
                loop {
                    match steps.next()? {
                        Step::Sleep(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
                        Step::Send(s) => return Some((Ok::<_, Infallible>(Bytes::from(s)), steps)),
                        Step::SendOwned(s) => return Some((Ok(Bytes::from(s)), steps)),
                    }
                }
            });
            Response::new(Body::from_stream(stream))
        }
    }
}

/// Path of the built `harness` binary.
pub fn harness_bin() -> &'static str {
    env!("CARGO_BIN_EXE_harness")
}

/// The repository root.
pub fn repo_root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A call context for tests that look at one call alone.
pub fn call_context() -> harness::metrics::CallContext {
    harness::metrics::CallContext {
        trial: 0,
        round: 0,
        phase: harness::plan::Phase::Measured,
        arm: "a".into(),
        variant: "v".into(),
        slot: 0,
        agent: "g".into(),
        step: "analysis".into(),
        instance: None,
        turn: None,
    }
}

/// Writes `yaml` as `dir/s.yaml`, runs it with `harness run` (which must succeed) into
/// `dir/out`, and returns the results folder.
pub fn run_scenario(dir: &std::path::Path, yaml: &str) -> std::path::PathBuf {
    let path = dir.join("s.yaml");
    std::fs::write(&path, yaml).unwrap();
    let out = dir.join("out");
    harness()
        .arg("run")
        .arg(&path)
        .arg("--out")
        .arg(&out)
        .arg("-q")
        .assert()
        .success();
    only_subdir(&out)
}

/// The binary, with no OLLAMA_HOST and no colour.
pub fn harness() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new(harness_bin());
    cmd.env_remove("OLLAMA_HOST").env("NO_COLOR", "1");
    cmd
}

/// The one folder inside `dir` (a results folder under `--out`).
pub fn only_subdir(dir: &std::path::Path) -> std::path::PathBuf {
    let dirs: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(
        dirs.len(),
        1,
        "one results folder expected in {}",
        dir.display()
    );
    dirs[0].clone()
}

/// Parses a JSON file.
pub fn json<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> T {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The decode-rate ratio the simulator's model gives a 1024-token context against the
/// default 4096 with `decode_tps: 600, ctx_cost_per_1k: 1/14`: (1 + 4/14) / (1 + 1/14) = 1.2.
pub fn true_ratio_1024() -> f64 {
    use harness::scenario::{ModelOptions, SimConfig};
    let sim = SimConfig {
        decode_tps: 600.0,
        ctx_cost_per_1k: 1.0 / 14.0,
        ..SimConfig::default()
    };
    let fast = ModelOptions {
        num_ctx: Some(1024),
        ..ModelOptions::default()
    };
    sim.expected_decode_tps(&fast) / sim.expected_decode_tps(&ModelOptions::default())
}
