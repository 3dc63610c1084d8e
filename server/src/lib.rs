//! Process wiring: configuration, database and keys, the axum router around Leptos' routes, the
//! background loops, which only schedule the passes of `app::jobs`. No business logic lives here
//! (see the `app` crate).

pub mod cli;
pub mod lock;
pub mod ops;
pub mod page_cache;

use app::api::{embed, platform, scope, webhooks};
use app::client::TrustedProxies;
use app::gitlab::outbound::OutboundConfig;
use app::jobs::{self, Job};
use app::state::{AppState, Settings};
use app::store::crypto::{load_or_create_key, write_key_file, Cipher, Keyring};
use app::store::{integrations, Db, StoreError};
use app::{shell, App};
use axum::extract::{Query, State};
use axum::http::{header, HeaderName, HeaderValue};
use axum::response::IntoResponse;
use axum::response::Redirect;
use axum::routing::{any, delete, get, post};
use axum::Router;
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::collections::HashMap;
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tower_http::compression::CompressionLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

/// Everything the server reads from its environment, checked at start-up.
pub struct Config {
    pub leptos: LeptosOptions,
    pub outbound: OutboundConfig,
    /// Rate limits and trusted proxies (`ONRAMP_CHECK_RATE_PER_MIN`, `ONRAMP_SIGNUPS_PER_IP_PER_HOUR`,
    /// `ONRAMP_TRUSTED_PROXIES`).
    pub settings: Settings,
    /// `ONRAMP_DATA_DIR`, default `./data`: the SQLite database and the key file.
    pub data_dir: PathBuf,
    /// `DATABASE_URL`: PostgreSQL (or an explicit SQLite URL) instead of the file in `data_dir`.
    pub database_url: Option<String>,
    /// `ONRAMP_SECRET_KEY` (base64, 32 bytes); else the key file in `data_dir`.
    pub secret_key: Option<String>,
    /// How often saved connections are re-checked (`ONRAMP_RECHECK_INTERVAL_SECS`, default a day).
    pub recheck_interval: Duration,
    /// `ONRAMP_SMTP_URL`, `ONRAMP_MAIL_FROM`, `ONRAMP_PUBLIC_URL`: mail about connections.
    pub mail: Option<app::mail::MailSettings>,
}

impl Config {
    /// Reads `LEPTOS_*` (set by cargo-leptos or defaulted at build time), `ONRAMP_*` and
    /// `DATABASE_URL`. An invalid value is an error that names the variable.
    pub fn from_env() -> Result<Self, String> {
        let leptos = get_configuration(None).map_err(|e| format!("Leptos configuration: {e}"))?.leptos_options;
        let outbound = OutboundConfig::from_env()?;
        let number = |name: &str, default: u64| -> Result<u64, String> {
            match std::env::var(name) {
                Ok(v) => v
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("{name}: expected a whole number above 0, got {v:?}")),
                Err(_) => Ok(default),
            }
        };
        let non_zero = |n: u64| NonZeroU32::new(u32::try_from(n).unwrap_or(u32::MAX)).expect("above 0");
        let defaults = Settings::default();
        let settings = Settings {
            checks_per_minute: non_zero(number("ONRAMP_CHECK_RATE_PER_MIN", defaults.checks_per_minute.get().into())?),
            signups_per_hour: non_zero(number(
                "ONRAMP_SIGNUPS_PER_IP_PER_HOUR",
                defaults.signups_per_hour.get().into(),
            )?),
            api_tokens_per_hour: defaults.api_tokens_per_hour,
            platform_calls_per_minute: non_zero(number(
                "ONRAMP_PLATFORM_RATE_PER_MIN",
                defaults.platform_calls_per_minute.get().into(),
            )?),
            trusted_proxies: TrustedProxies::parse(&std::env::var("ONRAMP_TRUSTED_PROXIES").unwrap_or_default())?,
            // At most a century: the purge computes its cut-off in seconds.
            audit_days: i64::try_from(number("ONRAMP_AUDIT_DAYS", 365)?.min(36_500)).unwrap_or(365),
            // GitLab's tokens live at most a year.
            rotate_days_before: i64::try_from(
                number("ONRAMP_ROTATE_DAYS_BEFORE", defaults.rotate_days_before.unsigned_abs())?.min(300),
            )
            .unwrap_or(defaults.rotate_days_before),
            // Longer than any request may take, or a second process would ask GitLab about a
            // rotation whose answer may still come.
            rotation_lease_seconds: i64::try_from(
                number("ONRAMP_ROTATION_LEASE_SECS", defaults.rotation_lease_seconds.unsigned_abs())?
                    .max(outbound.request_timeout.as_secs() * 2 + 1),
            )
            .unwrap_or(defaults.rotation_lease_seconds),
            discovery: app::gitlab::discover::Knobs {
                in_flight: usize::try_from(number("ONRAMP_DISCOVERY_IN_FLIGHT", 4)?.clamp(1, 32)).unwrap_or(4),
                preview_in_flight: usize::try_from(number("ONRAMP_PREVIEW_IN_FLIGHT", 16)?.clamp(1, 64)).unwrap_or(16),
                backoff_ms: number("ONRAMP_DISCOVERY_BACKOFF_MS", defaults.discovery.backoff_ms)?.clamp(1, 60_000),
                preview_budget: u32::try_from(
                    number("ONRAMP_PREVIEW_BUDGET", u64::from(defaults.discovery.preview_budget))?.clamp(4, 100_000),
                )
                .unwrap_or(defaults.discovery.preview_budget),
            },
            public_url: Settings::public_url_from(std::env::var("ONRAMP_PUBLIC_URL").ok().as_deref()),
        };
        Ok(Config {
            leptos,
            outbound,
            settings,
            data_dir: std::env::var_os("ONRAMP_DATA_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("data")),
            database_url: std::env::var("DATABASE_URL").ok().filter(|u| !u.trim().is_empty()),
            secret_key: std::env::var("ONRAMP_SECRET_KEY").ok().filter(|k| !k.trim().is_empty()),
            recheck_interval: Duration::from_secs(number("ONRAMP_RECHECK_INTERVAL_SECS", 24 * 3600)?),
            mail: app::mail::MailSettings::from_env()?,
        })
    }
}

/// Opens the database (running migrations) and loads the keys, finishing a key rotation that was
/// interrupted (see [`rotate_key`]). Takes no lock: for tests and tools; a server uses
/// [`open_storage_locked`].
pub async fn open_storage(config: &Config) -> Result<(Db, Keyring), String> {
    let db = Db::open(config.database_url.as_deref(), &config.data_dir).await.map_err(|e| e.to_string())?;
    let keys = load_keys(config, &db).await?;
    Ok((db, keys))
}

/// [`open_storage`] holding the storage lock: shared for a server, exclusive for
/// `onramp rotate-key` (refused while a server runs, see [`lock`]).
pub async fn open_storage_locked(config: &Config, exclusive: bool) -> Result<(Db, Keyring, lock::StorageLock), String> {
    let db = Db::open(config.database_url.as_deref(), &config.data_dir).await.map_err(|e| e.to_string())?;
    let held = if exclusive {
        lock::exclusive(&db, &config.data_dir).await?
    } else {
        lock::shared(&db, &config.data_dir).await?
    };
    let keys = load_keys(config, &db).await?;
    Ok((db, keys, held))
}

async fn load_keys(config: &Config, db: &Db) -> Result<Keyring, String> {
    app::store::create_private_dir(&config.data_dir).map_err(|e| e.to_string())?;
    let current = load_or_create_key(config.secret_key.as_deref(), &config.data_dir).map_err(|e| e.to_string())?;
    let mut keys = Keyring::new(current);
    if let Ok(previous) = std::env::var("ONRAMP_PREVIOUS_SECRET_KEYS") {
        for key in previous.split(',').filter(|k| !k.trim().is_empty()) {
            keys.previous.push(Cipher::from_base64(key).map_err(|e| format!("ONRAMP_PREVIOUS_SECRET_KEYS: {e}"))?);
        }
    }
    let next_file = next_key_path(&config.data_dir);
    if config.secret_key.is_none() && next_file.exists() {
        // A rotation stopped between writing the new key and installing it: finish it.
        let text = std::fs::read_to_string(&next_file).map_err(|e| format!("{}: {e}", next_file.display()))?;
        let next = Cipher::from_base64(&text).map_err(|e| e.to_string())?;
        let old = std::mem::replace(&mut keys.current, next.clone());
        keys.previous.push(old);
        integrations::rotate_key(db, &keys, &next).await.map_err(|e| e.to_string())?;
        std::fs::rename(&next_file, config.data_dir.join("secret.key")).map_err(|e| e.to_string())?;
        tracing::info!("finished an interrupted key rotation");
    }
    let upgraded = integrations::upgrade_bindings(db, &keys).await.map_err(|e| e.to_string())?;
    if upgraded > 0 {
        tracing::info!(upgraded, "bound stored tokens to their base URL and CA");
    }
    Ok(keys)
}

fn next_key_path(dir: &Path) -> PathBuf {
    dir.join("secret.key.next")
}

/// `onramp rotate-key`: re-encrypts every stored token under a new key, in one transaction.
/// With a key file: the new key is written to `secret.key.next` first and installed after the
/// commit, so a crash at any point leaves a state `open_storage` can finish. With
/// `ONRAMP_SECRET_KEY`: the new key comes from `ONRAMP_NEW_SECRET_KEY`; set it as
/// `ONRAMP_SECRET_KEY` afterwards.
pub async fn rotate_key(config: &Config) -> Result<String, String> {
    let (db, keys, _held) = open_storage_locked(config, true).await?;
    if config.secret_key.is_some() {
        let new = std::env::var("ONRAMP_NEW_SECRET_KEY")
            .map_err(|_| "ONRAMP_SECRET_KEY is set: put the new key in ONRAMP_NEW_SECRET_KEY".to_owned())?;
        let new = Cipher::from_base64(&new).map_err(|e| format!("ONRAMP_NEW_SECRET_KEY: {e}"))?;
        let n = integrations::rotate_key(&db, &keys, &new).await.map_err(|e: StoreError| e.to_string())?;
        return Ok(format!("Re-encrypted {n} token(s). Now set ONRAMP_SECRET_KEY to the new key and restart Onramp."));
    }
    let (key, new) = Cipher::generate();
    let next_file = next_key_path(&config.data_dir);
    write_key_file(&next_file, &key).map_err(|e| format!("{}: {e}", next_file.display()))?;
    let n = integrations::rotate_key(&db, &keys, &new).await.map_err(|e| e.to_string())?;
    std::fs::rename(&next_file, config.data_dir.join("secret.key")).map_err(|e| e.to_string())?;
    Ok(format!("Re-encrypted {n} token(s) under a new key (id {}).", new.key_id()))
}

/// The whole HTTP application.
pub fn router(config: Config, db: Db, keys: Keyring) -> (Router, AppState) {
    let mut state = AppState::new(config.outbound, db, keys, config.settings);
    if let Some(mail) = &config.mail {
        // Checked by `Config::from_env` already.
        match app::mail::Mailer::new(mail) {
            Ok(mailer) => state = state.with_mailer(mailer),
            Err(e) => tracing::error!(error = %e, "mail is off"),
        }
    }
    let options = config.leptos;
    let routes = generate_route_list(App);
    let labels = ops::RouteLabels::new(
        routes
            .iter()
            .map(|r| r.path().to_owned())
            .chain(leptos::server_fn::axum::server_fn_paths().map(|(path, _)| path.to_owned()))
            .chain(["/healthz", "/readyz", "/metrics", "/robots.txt"].map(str::to_owned)),
    );
    let context = {
        let state = state.clone();
        move || provide_context(state.clone())
    };
    // The routes, without layers: `Router::layer` wraps every route on its own, and each
    // middleware clones the service inside it per request, so layers applied here cloned the
    // Leptos handler (and its options) several times for every answer. Wrapped once below.
    let routes = Router::new()
        .route("/integrations/gitlab/step", get(first_step))
        .route("/integrations/gitlab/step/", get(first_step))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ops::readyz).with_state(state.clone()))
        .route("/metrics", get(ops::metrics_endpoint).with_state(state.clone()))
        .route(
            "/api/gitlab/connections/{id}/scope",
            get(scope::get_scope).put(scope::put_scope).with_state(state.clone()),
        )
        .route("/api/v1/workspaces", get(platform::list_workspaces).with_state(state.clone()))
        .route("/api/v1/connections", get(platform::list_connections).with_state(state.clone()))
        .route("/api/v1/connections/{id}", get(platform::get_connection).with_state(state.clone()))
        .route("/api/v1/connections/{id}/credentials", get(platform::credentials).with_state(state.clone()))
        .route("/api/v1/connections/{id}/scope", get(platform::scope).with_state(state.clone()))
        .route("/api/v1/openapi.json", get(app::api::openapi::serve))
        .route("/api/v1/connect_sessions", post(embed::create).with_state(state.clone()))
        .route("/api/v1/connect_sessions/{id}", get(embed::status).with_state(state.clone()))
        .route("/api/v1/events", get(webhooks::list_events).with_state(state.clone()))
        .route(
            "/api/v1/webhooks",
            post(webhooks::create_endpoint).get(webhooks::list_endpoints).with_state(state.clone()),
        )
        .route("/api/v1/webhooks/{id}", delete(webhooks::delete_endpoint).with_state(state.clone()))
        .route("/api/v1/webhooks/{id}/test", post(webhooks::test_endpoint).with_state(state.clone()))
        .route("/api/v1/webhooks/{id}/deliveries", get(webhooks::list_deliveries).with_state(state.clone()))
        .route(
            "/api/v1/webhooks/{id}/deliveries/{delivery_id}/retry",
            post(webhooks::retry_delivery).with_state(state.clone()),
        )
        .route("/connect/{secret}", get(embed::open).with_state(state.clone()))
        .route("/api/v1", any(platform::not_found))
        .route("/api/v1/{*rest}", any(platform::not_found))
        .route("/api/gitlab/connections/{id}/scope/refresh", post(scope::refresh).with_state(state.clone()))
        .route("/api/gitlab/connections/{id}/scope/preview", get(scope::preview).with_state(state.clone()))
        .route("/integrations/gitlab/connections/{id}/scope", post(scope::picker_form).with_state(state.clone()))
        .route(
            "/integrations/gitlab/connections/{id}/scope/refresh",
            post(scope::picker_refresh).with_state(state.clone()),
        )
        .leptos_routes_with_context(&options, routes, context, {
            let options = options.clone();
            move || shell(options.clone())
        })
        .fallback(files_and_not_found)
        .with_state(options);
    // Every answer passes these, outermost first, as one service around the routes.
    let stack = tower::ServiceBuilder::new()
        // The last line of defence: a panic anywhere answers 500 (and is logged) rather than
        // dropping the connection. Each one found is a bug (the fuzzer looks for them).
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_: Box<dyn std::any::Any + Send>| {
            tracing::error!("a request handler panicked");
            (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong. Try again in a moment.")
                .into_response()
        }))
        .layer(axum::middleware::from_fn(refuse_targets_without_a_path))
        // Pages, CSS, JS and WASM go out brotli- or gzip-compressed when the browser accepts it
        // (kept step pages come compressed already and pass through).
        .layer(CompressionLayer::new())
        .layer(header_layer(header::X_FRAME_OPTIONS, "DENY"))
        // Pages set their own policy with the nonce of their inline script (app::shell); this one
        // covers everything else (files, API answers, redirects).
        .layer(header_layer(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ))
        .layer(header_layer(header::REFERRER_POLICY, "same-origin"))
        .layer(header_layer(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        // Signed-in answers and pages that show a secret stay out of browser and proxy caches.
        .layer(axum::middleware::from_fn(no_store))
        .layer(axum::middleware::from_fn_with_state(labels, ops::request_metrics))
        .layer(axum::middleware::from_fn(ops::request_id))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &axum::http::Request<_>| {
                    // The path only (queries may carry addresses people typed), without an
                    // invitation link's secret.
                    let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default();
                    let path = ops::loggable_path(req.uri().path());
                    tracing::info_span!("request", id = %id, method = %req.method(), path = %path)
                })
                // One access-log line per answer: status and latency, in the request's span.
                .on_response(tower_http::trace::DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(axum::middleware::from_fn(limit_body))
        // Step pages for visitors without a cookie come out of memory, already compressed.
        .layer(axum::middleware::from_fn_with_state(
            page_cache::PageCache::default(),
            page_cache::PageCache::middleware,
        ))
        .layer(axum::middleware::from_fn_with_state(state.clone(), app::auth::ssr::middleware))
        // After the caller is known: the data of the page a GET asks for (app::pages::load).
        .layer(axum::middleware::from_fn_with_state(state.clone(), app::pages::load::middleware))
        .service(routes);
    let router = Router::new().fallback_service(stack);
    ops::metrics_handle();
    (router, state)
}

/// Static files and the not-found page: GET and HEAD only (a file answered to CONNECT, with a
/// body, made the connection drop).
async fn files_and_not_found(
    State(options): State<LeptosOptions>,
    req: axum::extract::Request,
) -> axum::response::Response {
    if !matches!(*req.method(), axum::http::Method::GET | axum::http::Method::HEAD) {
        return (axum::http::StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "GET, HEAD")], "Method not allowed")
            .into_response();
    }
    let uri = req.uri().clone();
    leptos_axum::file_and_error_handler(shell)(uri, State(options), req).await
}

/// A request target without a path (`GET host:port`, the form only CONNECT may use) is answered
/// 400 before anything reads its path.
async fn refuse_targets_without_a_path(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if req.uri().path_and_query().is_none() || !req.uri().path().starts_with('/') {
        return (axum::http::StatusCode::BAD_REQUEST, "The request target must be a path, like /login.")
            .into_response();
    }
    next.run(req).await
}

/// The largest request body a route reads: a few KiB for forms, more where a CA certificate may
/// come along (`ca_pem`, at most 64 KiB, percent-encoded).
pub fn body_limit(path: &str) -> usize {
    match path {
        "/api/gitlab/validate" => 256 * 1024,
        // A selection names up to 20,000 paths per list.
        p if p.starts_with("/api/gitlab/connections/") && p.ends_with("/scope") => 4 * 1024 * 1024,
        // The picker's form: a page of groups and projects, three fields each.
        p if p.starts_with("/integrations/gitlab/connections/") && p.ends_with("/scope") => 256 * 1024,
        _ => 16 * 1024,
    }
}

/// Refuses a body over [`body_limit`] with 413 before anything reads it (by `Content-Length`),
/// and cuts one that grows past it while being read (chunked).
async fn limit_body(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::response::IntoResponse;
    let limit = body_limit(req.uri().path());
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return (
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::json!({
                "error": "too_large",
                "message": format!("This request is larger than the {} KiB this address accepts.", limit / 1024),
            })
            .to_string(),
        )
            .into_response();
    }
    let (parts, body) = req.into_parts();
    let body = axum::body::Body::new(http_body_util::Limited::new(body, limit));
    next.run(axum::extract::Request::from_parts(parts, body)).await
}

/// Whether the answer to this request must stay out of every cache (`Cache-Control:
/// no-store`): anything answered to a request with a session cookie or an `Authorization` header
/// (a person's own pages and API answers: a new API token or invitation link is shown once, and
/// a shared computer's browser cache must not show it again), and an invitation link's page
/// (`/invite/…`, and log-in or sign-up opened from one: the secret is in the address and the
/// form). An answer that sets a cookie is kept out too ([`no_store`]). Everything else, the
/// public step pages served from memory included, keeps the caching it has.
pub fn keep_out_of_caches(path: &str, query: Option<&str>, request: &axum::http::HeaderMap) -> bool {
    use app::auth::ssr::{cookie, SECURE_SESSION_COOKIE, SESSION_COOKIE};
    let signed_in = request.contains_key(header::AUTHORIZATION)
        || cookie(request, SESSION_COOKIE).is_some()
        || cookie(request, SECURE_SESSION_COOKIE).is_some();
    let invitation = path.starts_with("/invite/")
        || (matches!(path, "/login" | "/signup")
            && query.is_some_and(|q| q.split('&').any(|pair| pair.split('=').next() == Some("invite"))));
    signed_in || invitation
}

/// Adds `Cache-Control: no-store` where [`keep_out_of_caches`] says so, and to every answer that
/// sets a cookie.
async fn no_store(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let private = keep_out_of_caches(req.uri().path(), req.uri().query(), req.headers());
    let mut response = next.run(req).await;
    if private || response.headers().contains_key(header::SET_COOKIE) {
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

fn header_layer(name: HeaderName, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
}

/// `/integrations/gitlab/step` → step 1, keeping `?base=`.
async fn first_step(Query(query): Query<HashMap<String, String>>) -> Redirect {
    let base = query.get("base").and_then(|b| app::gitlab::base_url::BaseUrl::parse(b).ok());
    Redirect::to(&app::wizard::step_href(1, base.as_ref()))
}

/// Every minute: forgets idle rate-limit windows (this process's) and runs the mail job; every
/// hour: the purge job. Until `stop` turns true.
pub async fn housekeeping_loop(state: AppState, mut stop: Stop) {
    let mut minutes = 0u64;
    loop {
        if stop.sleep(Duration::from_secs(60)).await {
            return;
        }
        let keys = state.forget_idle_limits();
        tracing::debug!(keys, "rate-limit windows kept");
        match jobs::leased(&state, Job::Mail, now(), Duration::from_secs(60), jobs::mail::run(&state)).await {
            Ok(Some(done)) if done.sent > 0 => tracing::info!(sent = done.sent, "mailed connection events"),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "cannot mail connection events"),
        }
        if minutes.is_multiple_of(60) {
            match jobs::leased(&state, Job::Purge, now(), Duration::from_secs(3600), jobs::purge::run(&state)).await {
                Ok(Some(done)) => tracing::info!(
                    sessions_and_flashes = done.sessions_and_flashes,
                    checks = done.checks,
                    audit_and_invitations = done.audit_and_invitations,
                    "purged expired rows"
                ),
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "purge failed"),
            }
        }
        minutes += 1;
    }
}

/// Sends due webhook deliveries: whenever this process writes one, and every 5 s for those
/// others wrote or whose retry came due. Until `stop` turns true (a send under way finishes; one
/// cut off by a kill is sent again when its lease runs out).
pub async fn delivery_loop(state: AppState, mut stop: Stop) {
    loop {
        match jobs::deliver::run(&state, time::OffsetDateTime::now_utc().unix_timestamp()).await {
            // A full batch: more may be due at once.
            Ok(done) if done.sent as i64 == jobs::deliver::BATCH => continue,
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "cannot send webhook deliveries"),
        }
        tokio::select! {
            _ = state.db.outbox().notified() => {}
            stopped = stop.sleep(Duration::from_secs(5)) => if stopped { return },
        }
        if stop.stopped() {
            return;
        }
    }
}

/// Folds the request-latency samples into the Prometheus histograms every 5 s. The recorder
/// keeps each sample until then: without this, a server nobody scraped grew by about 20 bytes a
/// request (10 MB per half a million step pages, measured), for ever.
pub async fn metrics_upkeep_loop(mut stop: Stop) {
    loop {
        if stop.sleep(Duration::from_secs(5)).await {
            return;
        }
        ops::metrics_handle().run_upkeep();
    }
}

/// At start and then every `interval` (at most an hour): the rotation job, then the re-check job
/// (a token rotated now is re-checked with the new one). Until `stop` turns true, which the
/// re-check heeds between connections (a check under way finishes).
pub async fn recheck_loop(state: AppState, interval: Duration, mut stop: Stop) {
    let pause = interval.min(Duration::from_secs(3600));
    // A pass left by a dead process is taken over when its rotations' leases would be.
    let rotation_lease = Duration::from_secs(state.settings.rotation_lease_seconds.unsigned_abs());
    loop {
        match jobs::leased(&state, Job::Rotate, now(), rotation_lease, jobs::rotate::run(&state, now())).await {
            Ok(Some(done)) if done.rotated > 0 => {
                tracing::info!(rotated = done.rotated, "rotated tokens before they expire")
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "scheduled rotations failed"),
        }
        let pass = jobs::recheck::run_until(&state, now(), interval, || stop.stopped());
        match jobs::leased(&state, Job::Recheck, now(), pause, pass).await {
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "cannot list connections to re-check"),
        }
        if stop.stopped() || stop.sleep(pause).await {
            return;
        }
    }
}

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// The shutdown signal, as background tasks see it.
#[derive(Clone)]
pub struct Stop(tokio::sync::watch::Receiver<bool>);

impl Stop {
    /// A signal that never fires (tests), and its sender.
    pub fn new() -> (tokio::sync::watch::Sender<bool>, Stop) {
        let (tx, rx) = tokio::sync::watch::channel(false);
        (tx, Stop(rx))
    }

    pub fn stopped(&self) -> bool {
        *self.0.borrow()
    }

    /// Sleeps for `duration`; true when stopped meanwhile (or before).
    pub async fn sleep(&mut self, duration: Duration) -> bool {
        let woke = tokio::select! {
            _ = tokio::time::sleep(duration) => false,
            _ = self.0.wait_for(|s| *s) => true,
        };
        woke || self.stopped()
    }

    /// Resolves once stopped.
    pub async fn wait(mut self) {
        let _ = self.0.wait_for(|s| *s).await;
    }
}

/// How long requests in flight may finish after SIGTERM before the process stops anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// Serves until `stop`: then accepts no more connections, lets requests in flight finish (at
/// most [`SHUTDOWN_GRACE`]) and returns.
pub async fn serve(listener: tokio::net::TcpListener, app: Router, stop: Stop) -> std::io::Result<()> {
    let graceful = stop.clone().wait();
    let server = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(graceful)
        .into_future();
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => result,
        _ = async { stop.wait().await; tokio::time::sleep(SHUTDOWN_GRACE).await } => {
            tracing::warn!("requests still running {} s after the signal: stopping", SHUTDOWN_GRACE.as_secs());
            Ok(())
        }
    }
}

/// Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
