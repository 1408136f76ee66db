//! Client cost per streamed token: line splitting, JSON parsing, timing and text append
//! for Ollama's NDJSON stream and an OpenAI-compatible SSE stream, one token per network
//! chunk (the worst case the DESIGN budget is stated for: ≤ 2 CPU-seconds per million
//! tokens, i.e. ≤ 2 µs a token).
//!
//! Run: `cargo bench --bench stream_parse`. Criterion reports time per stream of
//! `TOKENS` tokens; divide by `TOKENS` for the cost of one token.

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use harness::backend::LineParser;
use harness::backend::lines::LineSplitter;
use harness::backend::ollama::ChunkParser;
use harness::backend::openai::SseParser;
use harness::metrics::CallOutcome;

const TOKENS: usize = 1000;

fn stream_chunks() -> Vec<Vec<u8>> {
    let mut chunks: Vec<Vec<u8>> = (0..TOKENS)
        .map(|i| {
            format!(
                "{{\"model\":\"gemma3:latest\",\"created_at\":\"2026-11-28T02:36:24.573Z\",\"message\":{{\"role\":\"assistant\",\"content\":\" tok{i}\"}},\"done\":false}}\n"
            )
            .into_bytes()
        })
        .collect();
    chunks.push(
        b"{\"model\":\"gemma3:latest\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"total_duration\":1,\"load_duration\":1,\"prompt_eval_count\":1,\"prompt_eval_duration\":1,\"eval_count\":1000,\"eval_duration\":1}\n"
            .to_vec(),
    );
    chunks
}

/// The same stream as llama.cpp's server sends it: one `data:` event per token, then the
/// finish, usage and timings events and `[DONE]`.
fn sse_chunks() -> Vec<Vec<u8>> {
    let mut chunks: Vec<Vec<u8>> = (0..TOKENS)
        .map(|i| {
            format!(
                "data: {{\"choices\":[{{\"finish_reason\":null,\"index\":0,\"delta\":{{\"content\":\" tok{i}\"}}}}],\"created\":1795837413,\"id\":\"chatcmpl-1Y2fhdOnzcqv9oVYTtxKmJqLmjDMsaXm\",\"model\":\"smollm2-135m\",\"system_fingerprint\":\"b0-unknown\",\"object\":\"chat.completion.chunk\"}}\n\n"
            )
            .into_bytes()
        })
        .collect();
    chunks.push(b"data: {\"choices\":[{\"finish_reason\":\"stop\",\"index\":0,\"delta\":{}}]}\n\ndata: {\"choices\":[],\"usage\":{\"completion_tokens\":1000,\"prompt_tokens\":23},\"timings\":{\"cache_n\":22,\"prompt_n\":1,\"prompt_ms\":11.6,\"predicted_n\":1000,\"predicted_ms\":10000.0}}\n\ndata: [DONE]\n\n".to_vec());
    chunks
}

/// Feeds one stream's chunks to `P` as `stream_call` does, each stamped on arrival.
fn one_stream<P: LineParser + Default>(chunks: &[Vec<u8>]) -> (u64, usize) {
    let mut splitter = LineSplitter::new();
    let mut parser = P::default();
    let mut out = CallOutcome::start(TOKENS);
    out.text.reserve(8 * TOKENS);
    for chunk in chunks {
        let at = Instant::now();
        let _ = splitter.feed(chunk, |line| {
            parser.line(line, at, &mut out);
            out.error.is_none() && !parser.done()
        });
    }
    assert!(parser.done() && out.error.is_none());
    (out.timer.content_chunks(), out.text.len())
}

fn bench(c: &mut Criterion) {
    let chunks = stream_chunks();
    let mut group = c.benchmark_group("ollama_ndjson");
    group.throughput(Throughput::Elements(TOKENS as u64));
    group.bench_function("parse_1000_token_stream", |b| {
        b.iter(|| black_box(one_stream::<ChunkParser>(black_box(&chunks))))
    });
    group.finish();

    let chunks = sse_chunks();
    let mut group = c.benchmark_group("openai_sse");
    group.throughput(Throughput::Elements(TOKENS as u64));
    group.bench_function("parse_1000_token_stream", |b| {
        b.iter(|| black_box(one_stream::<SseParser>(black_box(&chunks))))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
