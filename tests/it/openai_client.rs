//! The OpenAI-compatible client against a fake server that streams scripted SSE.

use std::time::Duration;

use harness::backend::openai::OpenAiClient;
use harness::backend::{Backend, ChatRequest};
use harness::metrics::{CallRecord, ErrorKind};
use harness::scenario::ModelOptions;

use crate::common::{Reply, Step, call_context, fake_server};

async fn call_with(url: &str, key: Option<&str>, options: &ModelOptions) -> (CallRecord, String) {
    let client = OpenAiClient::new(url, key.map(str::to_owned), Duration::from_secs(5)).unwrap();
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

async fn call(url: &str) -> (CallRecord, String) {
    call_with(url, None, &ModelOptions::default()).await
}

/// One `data:` event with a delta.
fn delta(fields: &str) -> Step {
    Step::SendOwned(format!(
        "data: {{\"object\":\"chat.completion.chunk\",\"choices\":[{{\"index\":0,\"delta\":{{{fields}}},\"finish_reason\":null}}]}}\n\n"
    ))
}

fn content(text: &str) -> Step {
    delta(&format!(
        "\"content\":{}",
        serde_json::to_string(text).unwrap()
    ))
}

const FINISH: &str =
    "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n";
const USAGE_WITH_TIMINGS: &str = "data: {\"choices\":[],\"usage\":{\"completion_tokens\":3,\"prompt_tokens\":20,\"total_tokens\":23},\"timings\":{\"cache_n\":15,\"prompt_n\":5,\"prompt_ms\":12.5,\"predicted_n\":3,\"predicted_ms\":60.0}}\n\n";
const DONE: &str = "data: [DONE]\n\n";

#[tokio::test]
async fn role_only_first_chunk_does_not_count_and_usage_and_timings_are_read() {
    let fake = fake_server(Reply::Stream(vec![
        delta("\"role\":\"assistant\",\"content\":null"),
        Step::Sleep(80),
        Step::Send(": keep-alive comment\n\n"),
        content("Hel"),
        Step::Sleep(30),
        content("lo"),
        Step::Sleep(30),
        content("!"),
        Step::Send(FINISH),
        Step::Send(USAGE_WITH_TIMINGS),
        Step::Send(DONE),
    ]))
    .await;
    let (r, text) = call(&fake.url).await;
    assert!(r.ok, "{:?}", r.error);
    assert_eq!(text, "Hello!");
    let ttft = r.ttft_ms.unwrap();
    assert!(
        ttft >= 80.0,
        "the role-only chunk must not count: ttft {ttft}"
    );
    assert!(ttft < r.e2e_ms);
    assert_eq!(r.output_tokens, Some(3));
    assert!(!r.tokens_counted);
    assert_eq!(r.prompt_tokens, Some(20));
    assert_eq!(r.cached_prompt_tokens, Some(15));
    assert!(
        (r.decode_tps.unwrap() - 50.0).abs() < 1e-9,
        "3 tokens / 60 ms"
    );
    assert_eq!(r.prompt_eval_ms, Some(12.5));
    assert_eq!(r.load_ms, None, "the API does not report loads");
    assert_eq!(r.content_chunks, 3);
    let body = &fake.requests.lock().unwrap()[0];
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
    assert!(
        body.get("temperature").is_none(),
        "defaults send no options: {body}"
    );
    assert_eq!(fake.authorization.lock().unwrap()[0], None);
}

#[tokio::test]
async fn reasoning_sent_apart_is_timed_apart() {
    let fake = fake_server(Reply::Stream(vec![
        delta("\"role\":\"assistant\""),
        delta("\"reasoning_content\":\"Let me think.\""),
        Step::Sleep(60),
        delta("\"reasoning_content\":\" Done.\""),
        content("Answer"),
        Step::Send(FINISH),
        Step::Send(DONE),
    ]))
    .await;
    let (r, text) = call(&fake.url).await;
    assert!(r.ok, "{:?}", r.error);
    assert_eq!(text, "Answer", "reasoning is not part of the answer");
    assert_eq!(r.reasoning_chunks, 2);
    // TTFT runs to the answer, which the server sent at least 60 ms into the call; the
    // reasoning came first. (The gap between the two as read by the client shrinks when a
    // loaded machine reads late, so it is not what is asserted.)
    let (reasoning, ttft) = (r.reasoning_ttft_ms.unwrap(), r.ttft_ms.unwrap());
    assert!(ttft >= 60.0, "ttft {ttft}");
    assert!(reasoning < ttft, "ttft {ttft} vs reasoning {reasoning}");
}

#[tokio::test]
async fn without_usage_tokens_are_counted_and_labelled() {
    let fake = fake_server(Reply::Stream(vec![
        content("a"),
        content("b"),
        Step::Send(FINISH),
        Step::Send(DONE),
    ]))
    .await;
    let (r, _) = call(&fake.url).await;
    assert!(r.ok);
    assert_eq!(r.output_tokens, Some(2));
    assert!(r.tokens_counted);
    assert_eq!(
        r.decode_tps, None,
        "no server timings, no server decode rate"
    );
    assert!(r.e2e_tps.is_some());
}

#[tokio::test]
async fn an_error_object_in_the_stream_is_a_server_error() {
    let fake = fake_server(Reply::Stream(vec![
        content("a"),
        Step::Send("data: {\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\",\"code\":500}}\n\n"),
    ]))
    .await;
    let (r, _) = call(&fake.url).await;
    assert!(!r.ok);
    assert_eq!(r.error_kind, Some(ErrorKind::ServerError));
    assert!(r.error.unwrap().contains("out of memory"));
    assert!(r.ttft_ms.is_some(), "what arrived before the error is kept");
}

#[tokio::test]
async fn http_errors_are_recorded_with_their_status() {
    for (code, body, says) in [
        (
            429,
            "{\"error\":{\"message\":\"rate limit reached\"}}",
            "429",
        ),
        (500, "{\"error\":\"boom\"}", "boom"),
    ] {
        let fake = fake_server(Reply::Status(code, body)).await;
        let (r, _) = call(&fake.url).await;
        assert!(!r.ok);
        assert_eq!(r.error_kind, Some(ErrorKind::Http), "{code}");
        let message = r.error.unwrap();
        assert!(message.contains(says), "{message}");
    }
}

#[tokio::test]
async fn a_cut_stream_is_an_error_but_a_missing_done_after_the_finish_is_not() {
    let cut = fake_server(Reply::Stream(vec![content("a"), content("b")])).await;
    let (r, _) = call(&cut.url).await;
    assert_eq!(r.error_kind, Some(ErrorKind::StreamCut));
    assert_eq!(r.content_chunks, 2, "what arrived is kept");

    let no_done = fake_server(Reply::Stream(vec![content("a"), Step::Send(FINISH)])).await;
    let (r, _) = call(&no_done.url).await;
    assert!(r.ok, "{:?}", r.error);
}

#[tokio::test]
async fn a_successful_reply_that_is_not_a_stream_says_what_came_back() {
    // A gateway's page (axum sends text/plain for a bare string body).
    let fake = fake_server(Reply::Status(
        200,
        "<html><body>Please sign in</body></html>",
    ))
    .await;
    let (r, _) = call(&fake.url).await;
    assert_eq!(r.error_kind, Some(ErrorKind::NotAStream), "{:?}", r.error);
    let message = r.error.unwrap();
    assert!(
        message.contains("text/plain") && message.contains("Please sign in"),
        "{message}"
    );
}

#[tokio::test]
async fn events_end_with_a_lone_cr_and_data_may_span_lines() {
    let fake = fake_server(Reply::Stream(vec![
        // An event whose JSON is split over two `data:` lines, with CR line ends.
        Step::Send("data: {\"choices\":[{\"index\":0,\r"),
        Step::Send("data: \"delta\":{\"content\":\"Hel\"}}]}\r\r"),
        Step::Send(": a comment\r\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"}}]}\r\n\r\n"),
        Step::Send(FINISH),
        Step::Send(DONE),
    ]))
    .await;
    let (r, text) = call(&fake.url).await;
    assert!(r.ok, "{:?}", r.error);
    assert_eq!(text, "Hello");
    assert_eq!(r.content_chunks, 2);
}

#[tokio::test]
async fn a_malformed_event_is_recorded_as_such() {
    let fake = fake_server(Reply::Stream(vec![
        content("a"),
        Step::Send("data: {\"choices\": [\n\n"),
        content("b"),
    ]))
    .await;
    let (r, _) = call(&fake.url).await;
    assert_eq!(r.error_kind, Some(ErrorKind::MalformedChunk));
}

#[tokio::test]
async fn the_key_goes_in_the_authorization_header_and_options_in_the_body() {
    let fake = fake_server(Reply::Stream(vec![
        content("a"),
        Step::Send(FINISH),
        Step::Send(DONE),
    ]))
    .await;
    let options = ModelOptions {
        temperature: Some(0.3),
        num_predict: Some(32),
        top_k: Some(10),
        ..ModelOptions::default()
    };
    let url = format!("{}/v1", fake.url);
    let (r, _) = call_with(&url, Some("sk-test-123"), &options).await;
    assert!(r.ok, "{:?}", r.error);
    assert_eq!(
        fake.authorization.lock().unwrap()[0].as_deref(),
        Some("Bearer sk-test-123")
    );
    let body = &fake.requests.lock().unwrap()[0];
    assert_eq!(body["temperature"], 0.3);
    assert_eq!(body["max_tokens"], 32);
    assert_eq!(body["top_k"], 10);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_report_says_what_was_served_and_which_options_were_not_sent() {
    // A single-model server that serves `m` whatever the scenario asks for.
    let fake = fake_server(Reply::Stream(vec![
        content("- finding one\n- finding two"),
        Step::Send(FINISH),
        Step::Send(USAGE_WITH_TIMINGS),
        Step::Send(DONE),
    ]))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("served.yaml");
    let data = crate::common::repo_root().join("scenarios/data");
    let text = format!(
        r#"
name: served
model: gemma3:latest
server: {{ backend: openai, url: "{}", ignore_options: [num_ctx] }}
workload: {{ kind: agent_report, data_dir: "{}" }}
agents:
  a: {{ persona: "You list findings." }}
variants:
  baseline: {{}}
  cool: {{ options: {{ num_ctx: 512, temperature: 0.5 }} }}
arms: [[baseline], [cool]]
trials: 2
warmup: 0
"#,
        fake.url,
        data.display()
    );
    std::fs::write(&scenario, text).unwrap();
    let out = dir.path().join("out");
    let run = tokio::task::spawn_blocking(move || {
        crate::common::harness()
            .args(["run", "-q", "--out"])
            .arg(&out)
            .arg(&scenario)
            .assert()
            .success();
        crate::common::only_subdir(&out)
    })
    .await
    .unwrap();
    let read = |f: &str| std::fs::read_to_string(run.join(f)).unwrap();
    let report = read("report.md");
    assert!(report.contains("serving m"), "{report}");
    assert!(
        report.contains("cool: model gemma3:latest, options sent: temperature=0.5; not sent (server.ignore_options): num_ctx"),
        "{report}"
    );
    let agent = read("agents/cool/run_1.md");
    assert!(
        agent.contains("gemma3:latest requested, m served"),
        "{agent}"
    );
    assert!(
        agent.contains("**Options sent:** temperature=0.5; not sent"),
        "{agent}"
    );
    assert!(!agent.contains("num_ctx=512"), "{agent}");
    let table = read("table.tex");
    assert!(
        table.contains("serving m") && table.contains("not sent"),
        "{table}"
    );
}
