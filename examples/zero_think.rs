//! A zero-think server for measuring the client: it speaks Ollama's `/api/chat` stream,
//! writes its first token as soon as a request arrives and the rest `--gap-ms` apart, and
//! stamps, on its own clock, when it wrote each request's first token. It encodes the
//! request's number in `prompt_eval_count`, which the client records as `prompt_tokens`,
//! so every call record pairs with its stamp exactly.
//!
//! `GET /stamps` returns `[[request, ms from arrival to the first token's write], …]`;
//! `GET /stats` the most streams it held open at once.
//!
//!     cargo run --release --example zero_think -- --port 8089 --tokens 256 --gap-ms 5
//!
//! Used by `scripts/bench_client.py` (`make bench-client`).

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::{Json, Router};
use futures::Stream;

#[derive(Default)]
struct Server {
    tokens: u64,
    gap: Duration,
    next: AtomicU64,
    open: AtomicUsize,
    max_open: AtomicUsize,
    stamps: Mutex<Vec<(u64, f64)>>,
}

/// One response's stream: the first token on the first poll, then one every `gap`, then
/// the final chunk. Counts itself open until dropped.
struct Tokens {
    server: Arc<Server>,
    id: u64,
    arrived: Instant,
    sent: u64,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Stream for Tokens {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.sent > this.server.tokens {
            return Poll::Ready(None);
        }
        if this.sent > 0 && !this.server.gap.is_zero() {
            let due = this.arrived + this.server.gap * this.sent as u32;
            let timer = this
                .timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due.into())));
            timer.as_mut().reset(due.into());
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
        let line = if this.sent == this.server.tokens {
            format!(
                "{{\"model\":\"m\",\"message\":{{\"role\":\"assistant\",\"content\":\"\"}},\"done\":true,\"done_reason\":\"length\",\"prompt_eval_count\":{},\"prompt_eval_duration\":1000,\"load_duration\":1000,\"eval_count\":{},\"eval_duration\":{},\"total_duration\":{}}}\n",
                this.id,
                this.server.tokens,
                (this.arrived.elapsed().as_nanos() as u64).max(1),
                this.arrived.elapsed().as_nanos() as u64,
            )
        } else {
            "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"tok \"},\"done\":false}\n"
                .to_owned()
        };
        if this.sent == 0 {
            let ms = this.arrived.elapsed().as_secs_f64() * 1e3;
            this.server
                .stamps
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((this.id, ms));
        }
        this.sent += 1;
        Poll::Ready(Some(Ok(Bytes::from(line))))
    }
}

impl Drop for Tokens {
    fn drop(&mut self) {
        self.server.open.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn chat(State(server): State<Arc<Server>>, _body: Bytes) -> Body {
    let arrived = Instant::now();
    let id = server.next.fetch_add(1, Ordering::Relaxed);
    let open = server.open.fetch_add(1, Ordering::Relaxed) + 1;
    server.max_open.fetch_max(open, Ordering::Relaxed);
    Body::from_stream(Tokens {
        server,
        id,
        arrived,
        sent: 0,
        timer: None,
    })
}

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_owned())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let server = Arc::new(Server {
        tokens: arg("--tokens", "256").parse()?,
        gap: Duration::from_secs_f64(arg("--gap-ms", "0").parse::<f64>()? / 1e3),
        ..Server::default()
    });
    let app = Router::new()
        .route("/api/chat", post(chat))
        .route(
            "/api/version",
            get(|| async { Json(serde_json::json!({"version": "zero-think"})) }),
        )
        .route(
            "/stamps",
            get(|State(s): State<Arc<Server>>| async move {
                Json(s.stamps.lock().unwrap_or_else(|e| e.into_inner()).clone())
            }),
        )
        .route(
            "/stats",
            get(|State(s): State<Arc<Server>>| async move {
                Json(serde_json::json!({"max_open": s.max_open.load(Ordering::Relaxed)}))
            }),
        )
        .with_state(server);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", arg("--port", "8089").parse()?))
        .await?
        .tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
    axum::serve(listener, app).await?;
    Ok(())
}
