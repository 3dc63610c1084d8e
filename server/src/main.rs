//! `onramp`: serves the Onramp web app (default), or checks a GitLab connection from a terminal.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(name = "onramp", version, about = "Connect a GitLab to your engineering-analytics platform")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve Onramp (the default). Address: LEPTOS_SITE_ADDR, default 127.0.0.1:3000.
    Serve,
    /// Check a GitLab connection and print the report. The token is read from
    /// ONRAMP_GITLAB_TOKEN or standard input, never from the command line.
    Check {
        /// The GitLab base URL (a profile or project URL works too).
        #[arg(long)]
        base_url: String,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// A PEM file with your GitLab's private CA certificate.
        #[arg(long)]
        ca_file: Option<PathBuf>,
    },
    /// Re-encrypt every stored GitLab token under a new key, in one transaction.
    RotateKey,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("onramp: cannot start: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Some(Command::Check { base_url, json, ca_file }) => {
            // Reports go to stdout; only warnings and worse to stderr.
            init_logging("warn", true);
            let code = runtime.block_on(server::cli::check(server::cli::CheckArgs { base_url, json, ca_file }));
            ExitCode::from(code as u8)
        }
        Some(Command::RotateKey) => {
            init_logging("warn", true);
            runtime.block_on(async {
                let result = match server::Config::from_env() {
                    Ok(config) => server::rotate_key(&config).await,
                    Err(e) => Err(e),
                };
                match result {
                    Ok(message) => {
                        println!("{message}");
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("onramp rotate-key: {e}");
                        ExitCode::from(1)
                    }
                }
            })
        }
        None | Some(Command::Serve) => {
            init_logging("info", false);
            runtime.block_on(serve())
        }
    }
}

fn init_logging(default: &str, stderr: bool) {
    let filter = EnvFilter::try_from_env("ONRAMP_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if stderr {
        builder.with_writer(std::io::stderr).init();
    } else {
        builder.init();
    }
}

async fn serve() -> ExitCode {
    let config = match server::Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(2);
        }
    };
    // Held while serving: `onramp rotate-key` refuses to run meanwhile.
    let (db, keys, _storage_lock) = match server::open_storage_locked(&config, false).await {
        Ok(storage) => storage,
        Err(e) => {
            tracing::error!("cannot open storage: {e}");
            return ExitCode::from(2);
        }
    };
    let addr = config.leptos.site_addr;
    let interval = config.recheck_interval;
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("cannot listen on {addr}: {e}. Set LEPTOS_SITE_ADDR to another address.");
            return ExitCode::from(2);
        }
    };
    tracing::info!("Onramp listening on http://{addr}");
    let (router, state) = server::router(config, db, keys);
    tokio::spawn(server::housekeeping_loop(state.clone()));
    tokio::spawn(server::recheck_loop(state, interval));
    match server::serve(listener, router).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("server stopped: {e}");
            ExitCode::FAILURE
        }
    }
}
