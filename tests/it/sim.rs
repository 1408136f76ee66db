//! The simulator: determinism for a seed, cold loads, and queueing behind its slots.

use std::time::Duration;

use harness::backend::ollama::OllamaClient;
use harness::backend::{Backend, ChatRequest};
use harness::metrics::CallRecord;
use harness::scenario::{ModelOptions, OllamaApi, SimConfig};
use harness::sim::SimServer;

use crate::common::call_context;

fn fast_sim(seed: u64, parallel: u32) -> SimConfig {
    SimConfig {
        seed,
        parallel,
        decode_tps: 400.0,
        load_ms: 150.0,
        median_output_tokens: 30,
        ..SimConfig::default()
    }
}

async fn start(config: SimConfig) -> SimServer {
    SimServer::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn new_client(url: &str, api: OllamaApi) -> OllamaClient {
    OllamaClient::new(url, api, Duration::from_secs(30)).unwrap()
}

async fn ask(url: &str, options: &ModelOptions, user: &str) -> (CallRecord, String) {
    ask_with(&new_client(url, OllamaApi::Chat), options, user).await
}

/// Like `ask` with a client built beforehand: building one takes milliseconds of CPU,
/// which would stall a concurrent request's stream on the same thread.
async fn ask_with(
    client: &OllamaClient,
    options: &ModelOptions,
    user: &str,
) -> (CallRecord, String) {
    let start = std::time::Instant::now();
    let outcome = client
        .chat(ChatRequest {
            model: "gemma3:latest",
            history: &[],
            ignore_eos: false,
            system: "You are an analyst.",
            user,
            options,
            keep_alive: None,
        })
        .await;
    (
        outcome.record(&call_context(), start, "t".into()),
        outcome.text,
    )
}

#[tokio::test]
async fn same_seed_same_text_and_counts() {
    let a = start(fast_sim(3, 1)).await;
    let b = start(fast_sim(3, 1)).await;
    let c = start(fast_sim(4, 1)).await;
    let opts = ModelOptions::default();
    let (ra, ta) = ask(&a.url(), &opts, "Total files analyzed: 12").await;
    let (rb, tb) = ask(&b.url(), &opts, "Total files analyzed: 12").await;
    let (_, tc) = ask(&c.url(), &opts, "Total files analyzed: 12").await;
    assert!(ra.ok && rb.ok);
    assert_eq!(ta, tb);
    assert_eq!(ra.output_tokens, rb.output_tokens);
    assert_eq!(ra.prompt_tokens, rb.prompt_tokens);
    assert_eq!(ra.content_chunks, ra.output_tokens.unwrap());
    assert_ne!(ta, tc, "another seed, another text");
    for s in [a, b, c] {
        s.stop().await;
    }
}

#[tokio::test]
async fn model_reloads_when_num_ctx_or_num_gpu_change() {
    let sim = start(fast_sim(1, 1)).await;
    let defaults = ModelOptions::default();
    let small_ctx = ModelOptions {
        num_ctx: Some(512),
        ..ModelOptions::default()
    };
    let partial = ModelOptions {
        num_gpu: Some(10),
        ..ModelOptions::default()
    };
    let temperature = ModelOptions {
        temperature: Some(0.2),
        ..ModelOptions::default()
    };
    let (first, _) = ask(&sim.url(), &defaults, "x").await;
    let (again, _) = ask(&sim.url(), &defaults, "x").await;
    let (sampling_only, _) = ask(&sim.url(), &temperature, "x").await;
    let (ctx_change, _) = ask(&sim.url(), &small_ctx, "x").await;
    let (gpu_change, _) = ask(&sim.url(), &partial, "x").await;
    assert!(first.cold && first.load_ms.unwrap() >= 140.0);
    assert!(!again.cold, "same configuration stays loaded");
    assert!(!sampling_only.cold, "temperature does not reload the model");
    assert!(ctx_change.cold);
    assert!(gpu_change.cold);
    // Partial offload is slower than full offload, and a smaller context is faster.
    assert!(gpu_change.decode_tps.unwrap() < 0.6 * again.decode_tps.unwrap());
    assert!(ctx_change.decode_tps.unwrap() > again.decode_tps.unwrap());
    sim.stop().await;
}

/// A streaming `/api/chat` request over a plain TCP connection, on its own thread: the
/// receiver gets a message when the first content line arrives; the handle returns the
/// final chunk.
fn chat_raw(
    addr: std::net::SocketAddr,
    user: &str,
) -> (
    std::sync::mpsc::Receiver<()>,
    std::thread::JoinHandle<serde_json::Value>,
) {
    use std::io::{BufRead, Write};
    let body = serde_json::json!({
        "model": "gemma3:latest",
        "messages": [{ "role": "user", "content": user }],
        "stream": true,
    })
    .to_string();
    let (first, got_first) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        write!(
            stream,
            "POST /api/chat HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut sent_first = false;
        // Chunked transfer encoding: size lines between the NDJSON lines; keep the JSON.
        for line in std::io::BufReader::new(stream).lines() {
            let line = line.unwrap();
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line.trim()) else {
                continue;
            };
            if v["done"] == true {
                return v;
            }
            if !sent_first
                && v["message"]["content"]
                    .as_str()
                    .is_some_and(|c| !c.is_empty())
            {
                let _ = first.send(());
                sent_first = true;
            }
        }
        panic!("the stream ended without its final chunk");
    });
    (got_first, handle)
}

/// `sim_timing.<key>` of a final chunk, ms.
fn sim_ms(chunk: &serde_json::Value, key: &str) -> f64 {
    chunk["sim_timing"][key].as_f64().unwrap()
}

/// Two requests, the second sent once the first is decoding (its first token is in): the
/// final chunks of both, first request first.
async fn overlapping_pair(parallel: u32) -> (serde_json::Value, serde_json::Value) {
    // Long answers (about half a second at 400 tokens/s) leave the second request ample
    // time to arrive while the first decodes, however slowly a loaded machine sends it.
    let sim = start(SimConfig {
        median_output_tokens: 200,
        ..fast_sim(2, parallel)
    })
    .await;
    let addr = sim.addr;
    let result = tokio::task::spawn_blocking(move || {
        let (_, warm) = chat_raw(addr, "warm");
        warm.join().unwrap();
        let (first_token, a) = chat_raw(addr, "one");
        first_token.recv().unwrap();
        let (_, b) = chat_raw(addr, "two");
        (a.join().unwrap(), b.join().unwrap())
    })
    .await
    .unwrap();
    sim.stop().await;
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_slots_queue() {
    // Asserted on the simulator's own clock (`sim_timing`), which a loaded machine can
    // delay but not reorder: with one slot the second request gets it only when the first
    // has finished decoding; with two it decodes while the first still does.
    let (a, b) = overlapping_pair(1).await;
    let decoded_a = sim_ms(&a, "decode_ended_ms");
    assert!(
        sim_ms(&b, "arrived_ms") < decoded_a,
        "b arrived while a decoded"
    );
    assert!(
        sim_ms(&b, "slot_ms") >= decoded_a,
        "b waited for a's slot: {b}"
    );
    assert!(sim_ms(&b, "decode_started_ms") >= decoded_a);
    let waited = |c: &serde_json::Value| sim_ms(c, "slot_ms") - sim_ms(c, "arrived_ms");
    assert!(
        waited(&a) < waited(&b),
        "a {} ms, b {} ms",
        waited(&a),
        waited(&b)
    );

    let (a, b) = overlapping_pair(2).await;
    let decoded_a = sim_ms(&a, "decode_ended_ms");
    assert!(
        sim_ms(&b, "arrived_ms") < decoded_a,
        "b arrived while a decoded"
    );
    assert!(
        sim_ms(&b, "decode_started_ms") < decoded_a,
        "with two slots b decodes while a does: {a} {b}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decode_rate_matches_the_model() {
    let config = SimConfig {
        jitter_sigma: 0.0,
        call_sigma: 0.0,
        decode_tps: 150.0,
        median_output_tokens: 60,
        ..fast_sim(9, 1)
    };
    let expected = config.expected_decode_tps(&ModelOptions::default());
    let sim = start(config).await;
    let addr = sim.addr;
    let last = tokio::task::spawn_blocking(move || chat_raw(addr, "rate").1.join().unwrap())
        .await
        .unwrap();
    sim.stop().await;
    // The model's own time gives exactly its rate; the measured eval_duration can only be
    // longer (timers and a loaded machine delay a token, never hasten it).
    let n = last["eval_count"].as_f64().unwrap();
    let model_ms = sim_ms(&last, "model_eval_ms");
    assert!(
        ((n / (model_ms / 1e3)) / expected - 1.0).abs() < 1e-9,
        "{last}"
    );
    let eval_ms = last["eval_duration"].as_f64().unwrap() / 1e6;
    assert!(
        eval_ms >= model_ms,
        "measured {eval_ms} ms, model {model_ms} ms"
    );
}

#[tokio::test]
async fn generate_endpoint_streams_the_same_way() {
    let sim = start(fast_sim(5, 1)).await;
    let client = new_client(&sim.url(), OllamaApi::Generate);
    let (r, text) = ask_with(&client, &ModelOptions::default(), "Total files analyzed: 7").await;
    assert!(r.ok, "{:?}", r.error);
    assert!(text.contains("7 files"), "{text}");
    assert_eq!(r.output_tokens, Some(r.content_chunks));
    assert!(r.decode_tps.unwrap() > 0.0);
    sim.stop().await;
}

#[test]
fn the_readme_lists_every_simulator_key_with_its_default() {
    let readme = std::fs::read_to_string(crate::common::repo_root().join("README.md")).unwrap();
    let defaults = serde_json::to_value(SimConfig::default()).unwrap();
    let defaults = defaults.as_object().unwrap();
    let rows: std::collections::BTreeMap<String, String> = readme
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let key = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            let value = cells.get(2)?.to_string();
            defaults.contains_key(key).then(|| (key.to_owned(), value))
        })
        .collect();
    for (key, value) in defaults {
        let shown = rows
            .get(key)
            .unwrap_or_else(|| panic!("README's simulator table lacks `{key}`"));
        let same = match value {
            serde_json::Value::Array(a) => a.is_empty() && shown == "`[]`",
            number => shown.parse::<f64>().ok() == number.as_f64(),
        };
        assert!(
            same,
            "README says `{key}` defaults to {shown}, the code to {value}"
        );
    }
}

/// `harness sim-server --port 0 ARGS` started: the process, the line it announced itself
/// with ("simulated server (not a real GPU; …) listening on http://127.0.0.1:PORT") and
/// its address.
pub(crate) fn sim_server(args: &[&str]) -> (std::process::Child, String, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(crate::common::harness_bin())
        .args(["sim-server", "--port", "0"])
        .args(args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line.trim().rsplit("http://").next().unwrap().to_owned();
    (child, line, addr)
}

/// Sends one HTTP/1.1 request to `addr` and returns the whole response.
fn http(addr: &str, request: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn sim_server_answers_over_real_http_and_obeys_the_fault_header() {
    let (mut child, line, addr) = sim_server(&["--seed", "3"]);
    assert!(line.contains("not a real GPU"), "{line}");
    let body = r#"{"model":"m:latest","messages":[{"role":"user","content":"hi"}],"stream":true}"#;
    let request = |fault: Option<&str>| {
        let header = fault
            .map(|f| format!("x-harness-fault: {f}\r\n"))
            .unwrap_or_default();
        format!(
            "POST /api/chat HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n{header}content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let version = http(
        &addr,
        &format!("GET /api/version HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"),
    );
    assert!(version.contains("harness-sim-"), "{version}");
    let ok = http(&addr, &request(None));
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(
        ok.contains("application/x-ndjson") && ok.contains("\"done\":true"),
        "{ok}"
    );
    let refused = http(&addr, &request(Some("http_503")));
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.contains("server busy"), "{refused}");
    // A cut stream: two content chunks, then the connection ends without the final chunk.
    let cut = http(&addr, &request(Some("cut;after_chunks=2")));
    assert!(cut.starts_with("HTTP/1.1 200"), "{cut}");
    assert!(!cut.contains("\"done\":true"), "{cut}");
    let bad = http(&addr, &request(Some("explode")));
    assert!(
        bad.starts_with("HTTP/1.1 400") && bad.contains("unknown fault"),
        "{bad}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

/// The simulator's OpenAI-compatible API, read by harness's OpenAI client: the same
/// model behind it (counts, cache, timers) and the same faults, in server-sent events.
#[tokio::test]
async fn the_openai_api_streams_the_same_model_as_events() {
    use harness::backend::openai::OpenAiClient;
    use harness::backend::{Message, Role};
    use harness::metrics::ErrorKind;
    use harness::scenario::{Fault, FaultKind};

    let sim = start(SimConfig {
        faults: vec![Fault {
            kind: FaultKind::Malformed,
            requests: vec![2],
            every: None,
            after_chunks: 3,
            down_ms: 0,
        }],
        ..fast_sim(5, 1)
    })
    .await;
    let client = OpenAiClient::new(&sim.url(), None, Duration::from_secs(30)).unwrap();
    assert!(client.ping().await.is_ok());
    let info = client.describe("gemma3:latest").await;
    assert!(harness::sim::is_simulator_version(
        info.version.as_deref().unwrap()
    ));
    let options = ModelOptions {
        num_predict: Some(12),
        ..ModelOptions::default()
    };
    let first_user = "a".repeat(200);
    let history = [
        Message {
            role: Role::User,
            content: first_user.clone(),
        },
        Message {
            role: Role::Assistant,
            content: "b".repeat(80),
        },
    ];
    let request = |history, user| ChatRequest {
        model: "gemma3:latest",
        system: "You are an analyst.",
        history,
        user,
        ignore_eos: true,
        options: &options,
        keep_alive: None,
    };
    let start_at = std::time::Instant::now();
    let first = client.chat(request(&[], &first_user)).await;
    let second = client.chat(request(&history, "Tool result: 42.")).await;
    for outcome in [&first, &second] {
        let r = outcome.record(&call_context(), start_at, "t".into());
        assert!(r.ok, "{r:?}");
        // Exactly the 12 tokens asked for, counted by usage and timed by `timings`.
        assert_eq!((r.output_tokens, r.content_chunks), (Some(12), 12));
        assert!(!r.tokens_counted && r.decode_tps.is_some() && r.prompt_eval_ms.is_some());
    }
    let (a, b) = (
        first.record(&call_context(), start_at, "t".into()),
        second.record(&call_context(), start_at, "t".into()),
    );
    // The second prompt holds the first: it grew and found it in the prefix cache.
    assert!(b.prompt_tokens.unwrap() > a.prompt_tokens.unwrap() + 20);
    assert_eq!(a.cached_prompt_tokens, Some(0));
    assert!(b.cached_prompt_tokens.unwrap() >= 48, "{b:?}");
    // Request 2 gets a malformed event after three chunks: recorded as that.
    let third = client.chat(request(&[], "x")).await;
    let r = third.record(&call_context(), start_at, "t".into());
    assert_eq!(r.error_kind, Some(ErrorKind::MalformedChunk), "{r:?}");
    assert_eq!(r.content_chunks, 3);
    sim.stop().await;
}

/// Status line of `GET path` from `addr`.
fn status_of(addr: &str, path: &str) -> String {
    let response = http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"),
    );
    response.lines().next().unwrap_or_default().to_owned()
}

#[test]
fn sim_server_serves_only_the_api_it_is_asked_for() {
    for (api, ollama, openai) in [
        ("openai", "404", "200"),
        ("ollama", "200", "404"),
        ("both", "200", "200"),
    ] {
        let (mut child, line, addr) = sim_server(&["--api", api]);
        let ollama_status = status_of(&addr, "/api/version");
        let openai_status = status_of(&addr, "/v1/models");
        child.kill().unwrap();
        let _ = child.wait();
        assert!(line.contains("simulated"), "{line}");
        assert!(ollama_status.contains(ollama), "{api}: {ollama_status}");
        assert!(openai_status.contains(openai), "{api}: {openai_status}");
    }
}
