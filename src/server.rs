//! The HTTP server: accept loop, connection limit, header timeout, graceful shutdown, and the
//! routing table. It owns sockets and lifetimes, never request semantics (those are `api`).
//!
//! Shutdown runs in order (hyper-util's graceful pattern): stop accepting, tell every
//! connection to finish its in-flight request and close, wait at most `server.grace_period`.

use crate::{
    api::{self, Response},
    config::Config,
    error::{Error, Severity},
    AppState,
};
use http::{Method, Request};
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
};
use std::{convert::Infallible, future::Future, io, sync::Arc, time::Duration, time::Instant};
use tokio::{net::TcpListener, sync::Semaphore};

/// Builds the production state from `config` and serves until `shutdown` resolves.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let state = AppState::new(config)?;
    serve(listener, state, shutdown).await
}

/// Serves `state` on an already-bound listener (tests bind `127.0.0.1:0`).
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let server = &state.config.server;
    let limit = Arc::new(Semaphore::new(server.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(server.header_timeout.0)
        .keep_alive(true);
    tracing::info!(addr = %listener.local_addr()?, "listening");

    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => p.map_err(io::Error::other)?,
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning or dying.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let service = service_fn(move |req| {
            let state = state.clone();
            async move { Ok::<_, Infallible>(handle(&state, req).await) }
        });
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }

    drop(listener);
    state.begin_shutdown();
    let grace = state.config.server.grace_period.0;
    tracing::info!(grace = ?grace, "shutting down: draining connections");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("drained"),
        () = tokio::time::sleep(grace) => tracing::warn!("grace period over; closing the rest"),
    }
    Ok(())
}

/// One request: route, answer, and write the one log line.
async fn handle(state: &Arc<AppState>, req: Request<Incoming>) -> Response {
    let started = Instant::now();
    let id = state.request_id();
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let (response, error) = match route(state, req).await {
        Ok(r) => (r, None),
        Err(e) => (api::error_response(&e, state), Some(e)),
    };
    let status = response.status().as_u16();
    let bytes = http_body::Body::size_hint(response.body())
        .exact()
        .unwrap_or(0);
    let cache = response
        .headers()
        .get("x-cache")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    let ms = (started.elapsed().as_secs_f64() * 1e4).round() / 10.0;
    match &error {
        None => tracing::info!(id, %method, path, status, cache, bytes, ms, "request"),
        Some(e) => {
            let (code, detail) = (e.code(), e.detail().unwrap_or(""));
            match e.severity() {
                Severity::Server => {
                    tracing::error!(id, %method, path, status, code, detail, ms, "request")
                }
                Severity::Upstream => {
                    tracing::warn!(id, %method, path, status, code, detail, ms, "request")
                }
                Severity::Client => tracing::info!(id, %method, path, status, code, ms, "request"),
            }
        }
    }
    response
}

async fn route(state: &Arc<AppState>, req: Request<Incoming>) -> Result<Response, Error> {
    let target = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if target > state.config.limits.max_url_bytes {
        return Err(Error::UriTooLong);
    }
    let method = req.method().clone();
    match req.uri().path() {
        "/" | "/healthz" | "/readyz" if method == Method::OPTIONS => {
            Ok(api::preflight(req.headers(), state))
        }
        "/" | "/healthz" | "/readyz" if method != Method::GET && method != Method::HEAD => {
            Err(Error::MethodNotAllowed(api::ALLOW))
        }
        "/" => api::image::get(state, &method, req.uri(), req.headers()).await,
        "/healthz" => Ok(api::health::healthz()),
        // Off while no admin token is set (SPEC §2.5): 404 to every method, like no path at all.
        "/purge" | "/rewrite" if state.config.server.admin_token.is_empty() => Err(Error::NotFound),
        "/purge" if method == Method::POST => {
            api::admin::purge(state, req.uri(), req.headers()).await
        }
        "/rewrite" if method == Method::POST => api::rewrite::post(state, req).await,
        "/purge" | "/rewrite" if method == Method::OPTIONS => Ok(api::preflight_allowing(
            req.headers(),
            state,
            api::ALLOW_POST,
        )),
        "/purge" | "/rewrite" => Err(Error::MethodNotAllowed(api::ALLOW_POST)),
        "/readyz" => Ok(api::health::readyz(state).await),
        _ => Err(Error::NotFound),
    }
}
