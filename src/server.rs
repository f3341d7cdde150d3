//! The HTTP server: accept loop, connection limit, header timeout, graceful shutdown, and the
//! routing table. It owns sockets and lifetimes, never request semantics (those are `api`).
//!
//! Shutdown runs in order (hyper-util's graceful pattern): stop accepting, tell every
//! connection to finish its in-flight request and close, wait at most `server.grace_period`.

use crate::{
    access::{self, Line, REQUEST_ID},
    api::{self, Report, Response},
    config::Config,
    error::Error,
    metrics::{Audience, Route},
    AppState,
};
use http::{HeaderValue, Method, Request};
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
};
use std::{convert::Infallible, future::Future, io, sync::Arc, time::Duration, time::Instant};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore},
};
use tracing::Instrument;

/// The listener a connection came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// `server.listen`: everything, and `/metrics` only when no admin listener is set.
    Main,
    /// `server.admin_listen`: `/metrics`, `/healthz` and `/readyz` only.
    Admin,
}

impl Side {
    /// Who may read what this listener serves.
    fn audience(self) -> Audience {
        match self {
            Side::Main => Audience::Public,
            Side::Admin => Audience::Operator,
        }
    }
}

/// Builds the production state from `config` and serves until `shutdown` resolves; `admin` is
/// the bound `server.admin_listen`, when set.
pub async fn run(
    listener: TcpListener,
    admin: Option<TcpListener>,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let state = AppState::new(config)?;
    serve(listener, admin, state, shutdown).await
}

/// Serves `state` on already-bound listeners (tests bind `127.0.0.1:0`). Each listener has its
/// own connection budget (`server.max_connections`, `server.admin_max_connections`), so a
/// public listener held full by idle or slow clients never starves the operator's `/healthz`
/// and `/metrics`; both share the graceful shutdown.
pub async fn serve(
    listener: TcpListener,
    admin: Option<TcpListener>,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let server = &state.config.server;
    let main_budget = Arc::new(Semaphore::new(server.max_connections));
    let admin_budget = Arc::new(Semaphore::new(server.admin_max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(server.header_timeout.0)
        .keep_alive(true);
    tracing::info!(addr = %listener.local_addr()?, "listening");
    if let Some(a) = &admin {
        tracing::info!(addr = %a.local_addr()?, "admin listening");
    }

    tokio::pin!(shutdown);
    loop {
        // Each arm waits for its own budget, then its own listener; the arm that loses the
        // race gives back any permit it held (accept is cancel-safe).
        let (accepted, permit, side) = tokio::select! {
            (a, p) = accept(Some(&listener), &main_budget) => (a, p, Side::Main),
            (a, p) = accept(admin.as_ref(), &admin_budget) => (a, p, Side::Admin),
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok(stream) => stream,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning or dying.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let service = service_fn(move |req| {
            let state = state.clone();
            async move { Ok::<_, Infallible>(handle(&state, req, side).await) }
        });
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }

    drop((listener, admin));
    state.begin_shutdown();
    let grace = state.config.server.grace_period.0;
    tracing::info!(grace = ?grace, "shutting down: draining connections");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("drained"),
        () = tokio::time::sleep(grace) => tracing::warn!("grace period over; closing the rest"),
    }
    Ok(())
}

/// The next connection on `listener` once `budget` has room for it, with the permit it holds
/// until it closes; never resolves for an absent listener.
async fn accept(
    listener: Option<&TcpListener>,
    budget: &Arc<Semaphore>,
) -> (io::Result<TcpStream>, OwnedSemaphorePermit) {
    let Some(listener) = listener else {
        return std::future::pending().await;
    };
    let Ok(permit) = budget.clone().acquire_owned().await else {
        // The semaphore is never closed.
        return std::future::pending().await;
    };
    (listener.accept().await.map(|(s, _)| s), permit)
}

/// One request: its id, the route, the answer, then the counts and the access line. Every log
/// line written while answering carries the id (the `request` span).
async fn handle(state: &Arc<AppState>, req: Request<Incoming>, side: Side) -> Response {
    let started = Instant::now();
    let id = state.request_ids.for_request(req.headers());
    let method = req.method().clone();
    let path = req.uri().path();
    let mut report = Report::new(if served_here(state, side, path) {
        route_of(path)
    } else {
        Route::Other
    });
    let request_id = id.to_str().unwrap_or_default();
    let span = tracing::info_span!("request", request_id);
    let result = route(state, req, side, &mut report).instrument(span).await;
    let (mut response, error) = match result {
        Ok(r) => (r, None),
        Err(e) => (api::error_response(&e, state), Some(e)),
    };
    let h = response.headers_mut();
    if let Some(tier) = report.cache {
        // An error answer from the cache path says where it came from too.
        h.entry("x-cache")
            .or_insert(HeaderValue::from_static(tier.as_str()));
    }
    h.insert(REQUEST_ID, id.clone());
    let took = started.elapsed();
    state.metrics.request(report.route, response.status(), took);
    if let Some(e) = &error {
        state.metrics.rejected(e);
    }
    let line = Line {
        request_id,
        method,
        route: report.route,
        status: response.status().as_u16(),
        cache: report.cache.map(|t| t.as_str()),
        bytes: http_body::Body::size_hint(response.body())
            .exact()
            .unwrap_or(0),
        at: started + took,
        took,
    };
    access::log(line, error.as_ref(), state.config.log.access);
    response
}

/// Whether `path` is served on this listener: the admin listener serves the operator's three
/// endpoints only; the main one serves `/metrics` only while no admin listener is set.
fn served_here(state: &AppState, side: Side, path: &str) -> bool {
    match side {
        Side::Admin => matches!(path, "/metrics" | "/healthz" | "/readyz"),
        Side::Main => path != "/metrics" || state.config.server.admin_listen.is_empty(),
    }
}

/// The `route` label of a served path (an image request may refine it to `original`).
fn route_of(path: &str) -> Route {
    match path {
        "/" => Route::Image,
        "/healthz" | "/readyz" => Route::Health,
        "/metrics" => Route::Metrics,
        "/rewrite" => Route::Rewrite,
        "/purge" => Route::Purge,
        _ => Route::Other,
    }
}

async fn route(
    state: &Arc<AppState>,
    req: Request<Incoming>,
    side: Side,
    report: &mut Report,
) -> Result<Response, Error> {
    let target = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if target > state.config.limits.max_url_bytes {
        return Err(Error::UriTooLong);
    }
    if !served_here(state, side, req.uri().path()) {
        return Err(Error::NotFound);
    }
    let method = req.method().clone();
    match req.uri().path() {
        "/" | "/healthz" | "/readyz" | "/metrics" if method == Method::OPTIONS => {
            Ok(api::preflight(req.headers(), state))
        }
        "/" | "/healthz" | "/readyz" | "/metrics"
            if method != Method::GET && method != Method::HEAD =>
        {
            Err(Error::MethodNotAllowed(api::ALLOW))
        }
        "/" => api::image::get(state, &method, req.uri(), req.headers(), report).await,
        "/healthz" => Ok(api::health::healthz()),
        // Off while no admin token is set (SPEC §2.5): 404 to every method, like no path at all.
        "/purge" | "/rewrite" if state.config.server.admin_token.is_empty() => Err(Error::NotFound),
        "/metrics" => Ok(api::metrics::get(state, side.audience()).await),
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
