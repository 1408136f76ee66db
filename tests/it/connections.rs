//! Connections between calls: responses are read to their end so the next call reuses the
//! connection, and a call written onto a pooled connection the server had closed is sent
//! again on a new one instead of being lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use harness::backend::openai::OpenAiClient;
use harness::backend::{Backend, ChatRequest};
use harness::metrics::CallRecord;
use harness::scenario::ModelOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::common::{Reply, Step, call_context, fake_server};

/// The SSE events of one short reply, as llama.cpp's server sends them.
const EVENTS: [&str; 5] = [
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null}}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"}}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" world\"}}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"completion_tokens\":2,\"prompt_tokens\":5}}\n\n",
    "data: [DONE]\n\n",
];

async fn calls(url: &str, n: usize) -> Vec<CallRecord> {
    let client = OpenAiClient::new(url, None, Duration::from_secs(5)).unwrap();
    let mut records = Vec::new();
    for _ in 0..n {
        let start = std::time::Instant::now();
        let outcome = client
            .chat(ChatRequest {
                model: "m",
                history: &[],
                ignore_eos: false,
                system: "sys",
                user: "hi",
                options: &ModelOptions::default(),
                keep_alive: None,
            })
            .await;
        records.push(outcome.record(&call_context(), start, "t".into()));
    }
    records
}

#[tokio::test]
async fn calls_in_a_row_reuse_one_connection() {
    let fake = fake_server(Reply::Stream(
        EVENTS.iter().map(|e| Step::Send(e)).collect(),
    ))
    .await;
    let records = calls(&fake.url, 8).await;
    assert!(records.iter().all(|r| r.ok && !r.resent), "{records:?}");
    // Each response is read to its end, so its connection goes back to the pool.
    assert_eq!(fake.connections(), 1, "connections for 8 calls");
    // The first call opened it and says how long that took; the others reused it.
    let connect_ms = records[0].connect_ms.expect("the first call connected");
    assert!(connect_ms > 0.0 && connect_ms < records[0].ttft_ms.unwrap());
    assert!(
        records[1..].iter().all(|r| r.connect_ms.is_none()),
        "{records:#?}"
    );
}

/// Reads one HTTP request (headers and a `Content-Length` body); false at EOF.
async fn read_request(tcp: &mut TcpStream) -> bool {
    let mut buffer = Vec::new();
    let mut byte = [0u8; 1];
    while !buffer.ends_with(b"\r\n\r\n") {
        match tcp.read(&mut byte).await {
            Ok(1) => buffer.push(byte[0]),
            _ => return false,
        }
    }
    let head = String::from_utf8_lossy(&buffer).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    tcp.read_exact(&mut body).await.is_ok()
}

/// A server that advertises keep-alive but answers one request per connection: a second
/// request on the same connection gets the connection closed without a byte, as when the
/// client reuses a connection llama.cpp's server closed after its reply. Counts the
/// connections it accepted.
async fn one_reply_per_connection() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted: Arc<AtomicUsize> = Arc::default();
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                if !read_request(&mut tcp).await {
                    return;
                }
                let mut reply = String::from(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5, max=100\r\nTransfer-Encoding: chunked\r\n\r\n",
                );
                for event in EVENTS {
                    reply.push_str(&format!("{:x}\r\n{event}\r\n", event.len()));
                }
                reply.push_str("0\r\n\r\n");
                let _ = tcp.write_all(reply.as_bytes()).await;
                // The next request on this connection: closed, not answered.
                let _ = read_request(&mut tcp).await;
            });
        }
    });
    (url, accepted)
}

/// A plain TCP relay in front of `upstream`, copying bytes both ways.
async fn relay(upstream: &str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let upstream = upstream.trim_start_matches("http://").to_owned();
    tokio::spawn(async move {
        while let Ok((mut down, _)) = listener.accept().await {
            let upstream = upstream.clone();
            tokio::spawn(async move {
                if let Ok(mut up) = TcpStream::connect(&upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                }
            });
        }
    });
    url
}

fn check_none_lost(records: &[CallRecord]) {
    let failed: Vec<_> = records.iter().filter(|r| !r.ok).collect();
    assert!(failed.is_empty(), "calls lost: {failed:#?}");
    assert!(records.iter().all(|r| r.output_tokens == Some(2)));
    // Every call after one whose connection was kept met a closed connection and was resent.
    let resent = records.iter().filter(|r| r.resent).count();
    assert!(resent >= 1, "no call was resent: {records:#?}");
    // Here every call that was answered opened its own connection.
    assert!(
        records.iter().all(|r| r.connect_ms.is_some()),
        "{records:#?}"
    );
}

#[tokio::test]
async fn a_call_on_a_closed_pooled_connection_is_resent_on_a_new_one() {
    let (url, accepted) = one_reply_per_connection().await;
    let records = calls(&url, 6).await;
    check_none_lost(&records);
    // One connection per answered request: a resend never reuses a pooled connection.
    assert_eq!(accepted.load(Ordering::SeqCst), records.len());
}

#[tokio::test]
async fn behind_a_relay_too() {
    let (url, _) = one_reply_per_connection().await;
    let records = calls(&relay(&url).await, 6).await;
    check_none_lost(&records);
}
