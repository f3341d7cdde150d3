//! The `imgrelay` binary: flags → configuration → subcommand; behaviour lives in the library.

use clap::{Parser, Subcommand};
use std::{path::PathBuf, process::ExitCode};

/// mimalloc keeps freed pages for reuse: a decode's buffers (tens of MB for a large source) are
/// not mapped and zero-faulted afresh for every request, as glibc does above 32 MiB. Its
/// `override` feature makes it the C `malloc` too, so the C codecs' buffers (libjpeg-turbo's
/// coefficients for progressive files, libwebp's) are reused the same way.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(version, about = "Image proxy and article rewriter")]
struct Cli {
    /// Configuration file (default: ./proxy.toml when present).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[arg(long, global = true, help = "Listen address, overriding server.listen")]
    listen: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve HTTP (the default).
    Serve,
    /// Print the effective configuration (secrets masked) and exit.
    CheckConfig,
    /// Print the signed imgrelay URL of a transform: `sign SOURCE w=640 output=webp`.
    Sign { source: String, params: Vec<String> },
    /// Point every image of HTML/Markdown articles at imgrelay (SPEC §3).
    Rewrite(imgrelay::rewrite::cli::RewriteArgs),
    /// Request every image the rewritten articles reference, so a running imgrelay caches it.
    Warm(imgrelay::warm::WarmArgs),
    /// GET /healthz on server.listen (container HEALTHCHECK).
    #[command(hide = true)]
    Probe,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (file, listen) = (cli.config.as_deref(), cli.listen.as_deref());
    let config = match imgrelay::config::load(file, std::env::vars(), listen) {
        Ok(c) => c,
        Err(e) => return fail(&e, 2),
    };
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::CheckConfig => imgrelay::cli::check_config(&config),
        Command::Rewrite(args) => return imgrelay::rewrite::cli::main(&config, &args),
        Command::Warm(args) => return imgrelay::warm::main(&config, &args),
        Command::Probe => imgrelay::cli::probe(&config),
        Command::Sign { source, params } => imgrelay::cli::sign(&config, &source, &params),
        Command::Serve => match config.check_open_proxy() {
            Err(e) => return fail(&e, 2),
            Ok(()) => imgrelay::cli::serve(config),
        },
    };
    result.map_or_else(|e| fail(&e, 1), |()| ExitCode::SUCCESS)
}

fn fail(e: &dyn std::fmt::Display, code: u8) -> ExitCode {
    eprintln!("imgrelay: {e}");
    ExitCode::from(code)
}
