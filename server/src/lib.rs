//! Process wiring: configuration, the axum router around Leptos' routes, serving. No business
//! logic lives here (see the `app` crate).

pub mod cli;
pub mod fake_gitlab;

use app::gitlab::outbound::OutboundConfig;
use app::state::AppState;
use app::{shell, App};
use axum::extract::Query;
use axum::http::{header, HeaderName, HeaderValue};
use axum::response::Redirect;
use axum::routing::get;
use axum::Router;
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use tower_http::compression::CompressionLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

/// Everything the server reads from its environment, checked at start-up.
pub struct Config {
    pub leptos: LeptosOptions,
    pub outbound: OutboundConfig,
    pub checks_per_minute: NonZeroU32,
}

impl Config {
    /// Reads `LEPTOS_*` (set by cargo-leptos or defaulted at build time) and `ONRAMP_*`.
    /// An invalid value is an error that names the variable.
    pub fn from_env() -> Result<Self, String> {
        let leptos = get_configuration(None).map_err(|e| format!("Leptos configuration: {e}"))?.leptos_options;
        let outbound = OutboundConfig::from_env()?;
        let checks_per_minute = match std::env::var("ONRAMP_CHECK_RATE_PER_MIN") {
            Ok(v) => v
                .trim()
                .parse::<NonZeroU32>()
                .map_err(|_| format!("ONRAMP_CHECK_RATE_PER_MIN: expected a whole number above 0, got {v:?}"))?,
            Err(_) => NonZeroU32::new(30).expect("30 > 0"),
        };
        Ok(Config { leptos, outbound, checks_per_minute })
    }
}

/// The whole HTTP application.
pub fn router(config: Config) -> Router {
    let state = AppState::new(config.outbound, config.checks_per_minute);
    let options = config.leptos;
    let routes = generate_route_list(App);
    let context = {
        let state = state.clone();
        move || provide_context(state.clone())
    };
    Router::new()
        .route("/integrations/gitlab/step", get(first_step))
        .route("/integrations/gitlab/step/", get(first_step))
        .route("/healthz", get(|| async { "ok" }))
        .leptos_routes_with_context(&options, routes, context, {
            let options = options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler(shell))
        .with_state(options)
        .layer(TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
            // The path only: queries may carry addresses people typed, and are not needed here.
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path())
        }))
        .layer(header_layer(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(header_layer(header::REFERRER_POLICY, "same-origin"))
        .layer(header_layer(header::CONTENT_SECURITY_POLICY, "frame-ancestors 'none'"))
        .layer(header_layer(header::X_FRAME_OPTIONS, "DENY"))
        // Pages, CSS, JS and WASM go out brotli- or gzip-compressed when the browser accepts it.
        .layer(CompressionLayer::new())
}

fn header_layer(name: HeaderName, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
}

/// `/integrations/gitlab/step` → step 1, keeping `?base=`.
async fn first_step(Query(query): Query<HashMap<String, String>>) -> Redirect {
    let base = query.get("base").and_then(|b| app::gitlab::base_url::BaseUrl::parse(b).ok());
    Redirect::to(&app::wizard::step_href(1, base.as_ref()))
}

/// Serves until Ctrl-C or SIGTERM.
pub async fn serve(listener: tokio::net::TcpListener, app: Router) -> std::io::Result<()> {
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await
}

async fn shutdown_signal() {
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
