//! Subcommands behind the binary: `serve`, `check-config`, and the hidden `probe` used by the
//! container HEALTHCHECK (the runtime image has no curl). Each returns an `io::Result`; `main`
//! turns failures into messages and exit codes.

use crate::{config::Config, request, server, telemetry, transform::Transform};
use std::{io, net::SocketAddr, time::Duration};

/// Runs the server until SIGTERM or SIGINT, then drains and returns.
pub fn serve(config: Config) -> io::Result<()> {
    // Declared before the runtime, so dropped after it: the last lines are flushed.
    let _logging = telemetry::init(&config.log);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.server.listen)
            .await
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot listen on {}: {e}", config.server.listen),
                )
            })?;
        let admin =
            match config.server.admin_listen.as_str() {
                "" => None,
                addr => Some(tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                    io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}"))
                })?),
            };
        server::run(listener, admin, config, shutdown_signal()).await
    })
}

/// Resolves on the first SIGTERM or SIGINT.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("signal received");
}

/// Prints the effective configuration as TOML, secrets masked.
pub fn check_config(config: &Config) -> io::Result<()> {
    let text = toml::to_string_pretty(config).map_err(io::Error::other)?;
    print!("{text}");
    if let Err(e) = config.check_open_proxy() {
        eprintln!("warning: `serve` would refuse to start: {e}");
    }
    Ok(())
}

/// `imgrelay sign SOURCE [NAME=VALUE…]`: prints the canonical (and, with keys, signed) URL of
/// a transform of `SOURCE` on `server.public_url`.
pub fn sign(config: &Config, source: &str, params: &[String]) -> io::Result<()> {
    let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidInput, m);
    crate::fetch::source::parse(source).map_err(|e| invalid(format!("{source}: {e}")))?;
    let mut map = std::collections::BTreeMap::new();
    for p in params {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        if matches!(k, "url" | "s") || !request::PARAMS.contains(&k) {
            return Err(invalid(format!("`{k}` is not a transform parameter")));
        }
        map.insert(k.to_string(), v.to_string());
    }
    let t = Transform::from_params(&map, config.limits.max_output_px)
        .map_err(|e| invalid(e.to_string()))?;
    let keys = &config.security.signing_keys;
    if keys.is_empty() {
        eprintln!("note: security.signing_keys is empty, so the URL is not signed");
    }
    println!(
        "{}",
        request::transform_url(&config.server.public_url, keys, source, &t)
    );
    Ok(())
}

/// `GET /healthz` against the configured listener (an unspecified address means loopback).
pub fn probe(config: &Config) -> io::Result<()> {
    use std::io::{Read, Write};
    let mut addr: SocketAddr = config.server.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            [127, 0, 0, 1].into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let timeout = Duration::from_secs(3);
    let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: imgrelay\r\nConnection: close\r\n\r\n")?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head)?;
    if head.starts_with(b"HTTP/1.1 200") {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "unhealthy: {}",
            String::from_utf8_lossy(&head)
        )))
    }
}
