//! Which calls opened a connection, and how long connecting took (TCP and TLS).
//!
//! A layer around the HTTP client's connector times every connection it makes. The call
//! whose request is waiting on that connection reads the time from a task-local cell: the
//! connector runs inside the call's own task when the call uses the connection it opens.
//! (When a kept connection frees up first, the client finishes the new one in a task of
//! its own: that connection was not this call's, and nothing is attributed to it.)

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

tokio::task_local! {
    /// The connect time of the call running in this task, once it has one.
    static CONNECT_MS: Cell<Option<f64>>;
}

/// Runs `call` (one request) and returns its output with the time the connection it
/// opened took to make, or `None` when it reused a kept one.
pub(crate) async fn timed<T>(call: impl Future<Output = T>) -> (T, Option<f64>) {
    CONNECT_MS
        .scope(Cell::new(None), async {
            let output = call.await;
            (output, CONNECT_MS.with(Cell::get))
        })
        .await
}

/// The layer that times connections (see the module's docs).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TimeConnections;

impl<S> tower_layer::Layer<S> for TimeConnections {
    type Service = Timed<S>;

    fn layer(&self, inner: S) -> Timed<S> {
        Timed(inner)
    }
}

/// A connector that times each connection it makes.
#[derive(Debug, Clone)]
pub(crate) struct Timed<S>(S);

impl<S, R> tower_service::Service<R> for Timed<S>
where
    S: tower_service::Service<R>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let started = Instant::now();
        let connecting = self.0.call(request);
        Box::pin(async move {
            let connected = connecting.await;
            if connected.is_ok() {
                let ms = started.elapsed().as_secs_f64() * 1e3;
                // Outside a call's task (a connection finished in the background) there
                // is no cell, and no call to attribute it to.
                let _ = CONNECT_MS.try_with(|cell| cell.set(Some(ms)));
            }
            connected
        })
    }
}
