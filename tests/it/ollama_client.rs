//! The Ollama client against a fake server that streams scripted NDJSON.

use std::time::Duration;

use harness::backend::ollama::OllamaClient;
use harness::backend::{Backend, ChatRequest};
use harness::metrics::{CallRecord, ErrorKind};
use harness::scenario::{ModelOptions, OllamaApi};

use crate::common::{Reply, Step, call_context, fake_server};

const DONE: &str = "{\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\",\"total_duration\":150000000,\"load_duration\":1000000,\"prompt_eval_count\":12,\"prompt_eval_duration\":8000000,\"eval_count\":3,\"eval_duration\":60000000}\n";

async fn call(url: &str, options: &ModelOptions, timeout_ms: u64) -> (CallRecord, String) {
    let client =
        OllamaClient::new(url, OllamaApi::Chat, Duration::from_millis(timeout_ms)).unwrap();
    let start = std::time::Instant::now();
    let outcome = client
        .chat(ChatRequest {
            model: "m",
            history: &[],
            ignore_eos: false,
            system: "sys",
            user: "hi",
            options,
            keep_alive: None,
        })
        .await;
    let record = outcome.record(&call_context(), start, "t".into());
    (record, outcome.text)
}

fn content(text: &'static str) -> Step {
    Step::SendOwned(format!(
        "{{\"message\":{{\"role\":\"assistant\",\"content\":{}}},\"done\":false}}\n",
        serde_json::to_string(text).unwrap()
    ))
}

#[tokio::test]
async fn ttft_is_stamped_at_the_first_non_empty_chunk_and_timers_are_parsed() {
    let fake = fake_server(Reply::Stream(vec![
        Step::Send("{\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":false}\n"),
        Step::Sleep(80),
        content("Hel"),
        Step::Sleep(30),
        content("lo"),
        Step::Sleep(30),
        content("!"),
        Step::Send(DONE),
    ]))
    .await;
    let (r, text) = call(&fake.url, &ModelOptions::default(), 5_000).await;
    assert!(r.ok, "{:?}", r.error);
    assert_eq!(text, "Hello!");
    let ttft = r.ttft_ms.unwrap();
    assert!(
        ttft >= 80.0,
        "an empty first chunk must not count: ttft {ttft}"
    );
    assert!(ttft < r.e2e_ms);
    assert!(r.e2e_ms >= 140.0);
    assert_eq!(r.output_tokens, Some(3));
    assert!(!r.tokens_counted);
    assert_eq!(r.prompt_tokens, Some(12));
    assert!(
        (r.decode_tps.unwrap() - 50.0).abs() < 1e-9,
        "3 tokens / 60 ms"
    );
    assert_eq!(r.load_ms, Some(1.0));
    assert_eq!(r.prompt_eval_ms, Some(8.0));
    assert_eq!(r.server_total_ms, Some(150.0));
    assert!(!r.cold);
    // The gaps between the three content chunks sum to the time from the first to the last,
    // which cannot exceed e2e − TTFT however late a loaded machine reads them.
    let itl = r.itl_mean_ms.unwrap();
    assert!(
        itl > 0.0 && itl * 2.0 <= r.e2e_ms - ttft + 1e-6,
        "itl {itl}"
    );
    assert_eq!(r.content_chunks, 3);
    // Baseline: no `options` key at all.
    let body = &fake.requests.lock().unwrap()[0];
    assert!(body.get("options").is_none(), "{body}");
    assert_eq!(body["stream"], true);
    assert_eq!(body["messages"][0]["role"], "system");
}

#[tokio::test]
async fn options_are_sent_when_set() {
    let fake = fake_server(Reply::Stream(vec![content("x"), Step::Send(DONE)])).await;
    let options = ModelOptions {
        num_gpu: Some(80),
        num_ctx: Some(512),
        temperature: Some(1.0),
        ..ModelOptions::default()
    };
    let (r, _) = call(&fake.url, &options, 5_000).await;
    assert!(r.ok);
    let body = &fake.requests.lock().unwrap()[0];
    assert_eq!(
        body["options"],
        serde_json::json!({"num_gpu": 80, "num_ctx": 512, "temperature": 1.0})
    );
}

#[tokio::test]
async fn lines_split_across_network_chunks_are_reassembled() {
    let fake = fake_server(Reply::Stream(vec![
        Step::Send("{\"message\":{\"content\":\"a\"},"),
        Step::Sleep(10),
        Step::Send("\"done\":false}\n{\"message\":{\"content\":\"b\"},\"done\":false}\n"),
        Step::Send(DONE),
    ]))
    .await;
    let (r, text) = call(&fake.url, &ModelOptions::default(), 5_000).await;
    assert!(r.ok, "{:?}", r.error);
    assert_eq!(text, "ab");
}

#[tokio::test]
async fn malformed_chunk_is_recorded_with_what_came_before() {
    let fake = fake_server(Reply::Stream(vec![
        content("ok "),
        Step::Send("{\"message\": {\"content\": \"x\"\n"),
        content("never"),
        Step::Send(DONE),
    ]))
    .await;
    let (r, text) = call(&fake.url, &ModelOptions::default(), 5_000).await;
    assert!(!r.ok);
    assert_eq!(r.error_kind, Some(ErrorKind::MalformedChunk));
    assert_eq!(text, "ok ");
    assert!(r.ttft_ms.is_some());
    assert_eq!(r.decode_tps, None);
}

#[tokio::test]
async fn cut_stream_is_recorded() {
    let fake = fake_server(Reply::Stream(vec![content("a"), content("b")])).await;
    let (r, _) = call(&fake.url, &ModelOptions::default(), 5_000).await;
    assert_eq!(r.error_kind, Some(ErrorKind::StreamCut));
    assert_eq!(r.output_tokens, Some(2), "falls back to counted chunks");
    assert!(r.tokens_counted);
}

#[tokio::test]
async fn error_inside_the_stream_is_a_server_error() {
    let fake = fake_server(Reply::Stream(vec![
        content("a"),
        Step::Send("{\"error\":\"out of memory\"}\n"),
    ]))
    .await;
    let (r, _) = call(&fake.url, &ModelOptions::default(), 5_000).await;
    assert_eq!(r.error_kind, Some(ErrorKind::ServerError));
    assert!(r.error.unwrap().contains("out of memory"));
}

#[tokio::test]
async fn http_errors_and_missing_models_have_their_kinds() {
    let fake = fake_server(Reply::Status(
        404,
        "{\"error\":\"model \\\"m\\\" not found, try pulling it first\"}",
    ))
    .await;
    let (r, _) = call(&fake.url, &ModelOptions::default(), 5_000).await;
    assert_eq!(r.error_kind, Some(ErrorKind::ModelNotFound));
    let fake = fake_server(Reply::Status(500, "{\"error\":\"boom\"}")).await;
    let (r, _) = call(&fake.url, &ModelOptions::default(), 5_000).await;
    assert_eq!(r.error_kind, Some(ErrorKind::Http));
    assert!(r.error.unwrap().contains("500"));
}

#[tokio::test]
async fn refused_connection_and_timeout_are_recorded() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let (r, _) = call(&url, &ModelOptions::default(), 5_000).await;
    assert_eq!(r.error_kind, Some(ErrorKind::Connect));

    let fake = fake_server(Reply::Stream(vec![
        content("a"),
        Step::Sleep(3_000),
        Step::Send(DONE),
    ]))
    .await;
    let (r, _) = call(&fake.url, &ModelOptions::default(), 300).await;
    assert_eq!(r.error_kind, Some(ErrorKind::Timeout));
    assert!(
        r.ttft_ms.is_some(),
        "what arrived before the timeout is kept"
    );
    assert!((250.0..2_000.0).contains(&r.e2e_ms), "e2e {}", r.e2e_ms);
}
