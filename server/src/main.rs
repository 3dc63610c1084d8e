//! `onramp`: serves the Onramp web app (default), or checks a GitLab connection from a terminal.

use clap::{Parser, Subcommand};

/// mimalloc returns freed memory to the system; glibc's per-thread arenas kept each 19 MiB
/// password-hash block they had served (see server/Cargo.toml).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::io::IsTerminal;
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
    /// Create an API token with the admin flag for an existing account: it may read /metrics
    /// from anywhere (loopback may without one). Printed once.
    AdminToken {
        /// The account's email address.
        #[arg(long)]
        email: String,
        /// What the token is for.
        #[arg(long, default_value = "metrics")]
        name: String,
    },
    /// Instance-level platform keys: an analytics platform that serves many customers sends
    /// `Authorization: Bearer onp_…` to /api/v1. Works while the server runs, on the same storage.
    PlatformKey {
        #[command(subcommand)]
        action: PlatformKeyCommand,
    },
}

#[derive(Subcommand)]
enum PlatformKeyCommand {
    /// Make a key; it is printed once, alone on the last line, and only its hash is kept.
    Create {
        /// Who the key is for ("DevDynamics production").
        #[arg(long)]
        name: String,
        /// What it may do, comma-separated: connect_sessions:write, connections:read,
        /// credentials:read, webhooks:write.
        #[arg(long)]
        scopes: String,
        /// An origin (https://platform.example.com) the platform's users may be sent back to
        /// after the wizard; repeat for several.
        #[arg(long = "return-origin")]
        return_origins: Vec<String>,
        /// Make a workspace-level key instead: it reaches this workspace only (for a team that
        /// runs its own collector beside Onramp).
        #[arg(long)]
        workspace: Option<String>,
    },
    /// List the instance-level keys, or a workspace's (never their secrets), revoked ones too.
    List {
        #[arg(long)]
        workspace: Option<String>,
    },
    /// Revoke a key by its id or name; it stops working at once.
    Revoke {
        /// The key's id or name.
        key: String,
        /// The workspace of a workspace-level key.
        #[arg(long)]
        workspace: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, None | Some(Command::Serve)) {
        with_allocator_options();
    }
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
        Some(Command::AdminToken { email, name }) => {
            init_logging("warn", true);
            runtime.block_on(async {
                let result = match server::Config::from_env() {
                    Ok(config) => server::open_storage(&config).await.map(|(db, _)| db),
                    Err(e) => Err(e),
                };
                let created = match result {
                    Ok(db) => {
                        app::store::accounts::create_admin_token(&db, &email, &name).await.map_err(|e| e.to_string())
                    }
                    Err(e) => Err(e),
                };
                match created {
                    Ok(Some(secret)) => {
                        println!("{secret}");
                        ExitCode::SUCCESS
                    }
                    Ok(None) => {
                        eprintln!("onramp admin-token: no account has the address {email:?}: sign up first");
                        ExitCode::from(1)
                    }
                    Err(e) => {
                        eprintln!("onramp admin-token: {e}");
                        ExitCode::from(1)
                    }
                }
            })
        }
        Some(Command::PlatformKey { action }) => {
            init_logging("warn", true);
            let action = match action {
                PlatformKeyCommand::Create { name, scopes, return_origins, workspace } => {
                    server::cli::PlatformKeyAction::Create { name, scopes, return_origins, workspace }
                }
                PlatformKeyCommand::List { workspace } => server::cli::PlatformKeyAction::List { workspace },
                PlatformKeyCommand::Revoke { key, workspace } => {
                    server::cli::PlatformKeyAction::Revoke { key, workspace }
                }
            };
            runtime.block_on(async {
                let db = match server::Config::from_env() {
                    Ok(config) => server::open_storage(&config).await.map(|(db, _)| db),
                    Err(e) => Err(e),
                };
                let (out, result) = match db {
                    Ok(db) => server::cli::platform_key(&db, action).await,
                    Err(e) => (String::new(), Err((2, e))),
                };
                print!("{out}");
                match result {
                    Ok(()) => ExitCode::SUCCESS,
                    Err((code, message)) => {
                        eprintln!("onramp platform-key: {message}");
                        ExitCode::from(code)
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

/// mimalloc reads its options from the environment once, when the process starts. A server gives
/// freed memory back to the system at once (`MIMALLOC_PURGE_DELAY=0`): with the default (a
/// second later, and only when the allocator happens to be busy then) the 19 MiB of each password
/// hash stayed resident after a burst of sign-ups (measured: 20 sign-ups, 28 -> 81 MB, still 81 a
/// minute later; with it, 32 MB). So `onramp serve` starts itself again with the option set,
/// unless the variable is set already (an operator's choice wins). Nothing else differs.
#[cfg(unix)]
fn with_allocator_options() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    let error =
        std::process::Command::new(exe).args(std::env::args_os().skip(1)).env("MIMALLOC_PURGE_DELAY", "0").exec();
    eprintln!("onramp: cannot restart with MIMALLOC_PURGE_DELAY=0 ({error}); serving without it");
}

#[cfg(not(unix))]
fn with_allocator_options() {}

/// `ONRAMP_LOG` filters (default `default`); `ONRAMP_LOG_FORMAT=json` writes one JSON object per
/// line, with the request's span (its id, method and path) in each.
fn init_logging(default: &str, stderr: bool) {
    let filter = EnvFilter::try_from_env("ONRAMP_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let json = std::env::var("ONRAMP_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    // Colours only on a terminal: a log file or journal gets plain text.
    let ansi = if stderr { std::io::stderr().is_terminal() } else { std::io::stdout().is_terminal() };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi);
    match (json, stderr) {
        (true, true) => {
            builder.json().with_current_span(true).with_span_list(false).with_writer(std::io::stderr).init()
        }
        (true, false) => builder.json().with_current_span(true).with_span_list(false).init(),
        (false, true) => builder.with_writer(std::io::stderr).init(),
        (false, false) => builder.init(),
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
    let (stop_tx, stop) = server::Stop::new();
    tokio::spawn(async move {
        server::shutdown_signal().await;
        tracing::info!("shutting down: no new connections; finishing requests in flight");
        let _ = stop_tx.send(true);
    });
    tokio::spawn(server::housekeeping_loop(state.clone(), stop.clone()));
    tokio::spawn(server::metrics_upkeep_loop(stop.clone()));
    tokio::spawn(server::delivery_loop(state.clone(), stop.clone()));
    let rechecks = tokio::spawn(server::recheck_loop(state.clone(), interval, stop.clone()));
    let served = server::serve(listener, router, stop).await;
    // The re-check stops between connections; give the one under way its time.
    if tokio::time::timeout(server::SHUTDOWN_GRACE, rechecks).await.is_err() {
        tracing::warn!("a re-check was still running: stopped");
    }
    state.db.pool().close().await;
    match served {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!("server stopped: {e}");
            ExitCode::FAILURE
        }
    }
}
