//! What an operator needs: `/healthz` (the process is up), `/readyz` (the database answers),
//! Prometheus metrics at `/metrics` (loopback or an admin API token only), a request id on every
//! request and answer, and per-route request counts and latencies.

use app::client::ClientInfo;
use app::state::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::collections::HashSet;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The process-wide Prometheus recorder (installed on first use).
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
            .expect("valid buckets")
            .build_recorder();
        let handle = recorder.handle();
        // Fails only when another recorder is installed already (never in Onramp).
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// `GET /readyz`: 200 when the database answers within 2 s, else 503 (a load balancer stops
/// sending requests here meanwhile).
pub async fn readyz(State(state): State<AppState>) -> Response {
    let ping = sqlx::query("SELECT 1").execute(state.db.pool());
    match tokio::time::timeout(Duration::from_secs(2), ping).await {
        Ok(Ok(_)) => (StatusCode::OK, "ready").into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready: the database does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "the database does not answer").into_response()
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "the database does not answer in time").into_response(),
    }
}

/// `GET /metrics`: Prometheus text, for a scraper on the same machine (the client address, as
/// judged with `ONRAMP_TRUSTED_PROXIES`, is loopback) or one that sends an admin API token
/// (`onramp admin-token`). Everyone else gets 404: the endpoint is not advertised.
pub async fn metrics_endpoint(State(state): State<AppState>, req: Request) -> Response {
    let loopback = req.extensions().get::<ClientInfo>().is_some_and(|c| c.ip.is_loopback());
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let admin = match bearer {
        Some(token) => app::store::accounts::api_token_is_admin(&state.db, token).await.unwrap_or(false),
        None => false,
    };
    if !loopback && !admin {
        return (StatusCode::NOT_FOUND, "Not found").into_response();
    }
    let pool = state.db.pool();
    metrics::gauge!("onramp_db_pool_connections", "state" => "idle").set(pool.num_idle() as f64);
    metrics::gauge!("onramp_db_pool_connections", "state" => "in_use")
        .set(f64::from(pool.size()) - pool.num_idle() as f64);
    metrics::gauge!("onramp_rate_limit_keys").set(state.forget_idle_limits() as f64);
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"))],
        metrics_handle().render(),
    )
        .into_response()
}

/// The route a path belongs to, for metric labels: the known routes themselves, step pages and
/// files as one route each, everything else "other" (so no request can invent a label).
#[derive(Clone)]
pub struct RouteLabels {
    known: Arc<HashSet<String>>,
}

impl RouteLabels {
    pub fn new(paths: impl IntoIterator<Item = String>) -> Self {
        RouteLabels { known: Arc::new(paths.into_iter().collect()) }
    }

    pub fn label(&self, path: &str) -> String {
        if let Some(n) = path.strip_prefix("/integrations/gitlab/step/") {
            return if app::wizard::Step::from_segment(n).is_some() {
                "/integrations/gitlab/step/:n".to_owned()
            } else {
                "other".to_owned()
            };
        }
        if path.starts_with("/pkg/") {
            return "/pkg/*".to_owned();
        }
        if path.starts_with("/invite/") {
            return "/invite/:secret".to_owned();
        }
        if path.starts_with("/connect/") && path != app::routes::CONNECT_ENDED {
            return "/connect/:secret".to_owned();
        }
        if let Some(rest) = path.strip_prefix("/integrations/gitlab/connections/") {
            return match rest.split_once('/') {
                None => "/integrations/gitlab/connections/:id".to_owned(),
                Some((_, "disconnect")) => "/integrations/gitlab/connections/:id/disconnect".to_owned(),
                Some(_) => "other".to_owned(),
            };
        }
        if self.known.contains(path) {
            path.to_owned()
        } else {
            "other".to_owned()
        }
    }
}

/// A request's path as logs show it: the secret of an invitation link (it lets someone into a
/// workspace) or of a connect session's link (it signs a platform's user in) is left out: each
/// is handled like a password.
pub fn loggable_path(path: &str) -> &str {
    if path.starts_with("/invite/") {
        "/invite/…"
    } else if path.starts_with("/connect/") && path != app::routes::CONNECT_ENDED {
        "/connect/…"
    } else {
        path
    }
}

/// Counts requests by route, method and status, and times them.
pub async fn request_metrics(State(labels): State<RouteLabels>, req: Request, next: Next) -> Response {
    let route = labels.label(req.uri().path());
    let method = req.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("onramp_http_requests_total", "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("onramp_http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// The request id of a request: made here (whatever the client sent), logged with every line
/// of the request's span, and answered as `X-Request-Id` so a user can quote it.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

pub async fn request_id(mut req: Request, next: Next) -> Response {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let value = HeaderValue::from_str(&id).expect("hex is a valid header value");
    req.headers_mut().insert("x-request-id", value.clone());
    req.extensions_mut().insert(RequestId(id));
    let mut response = next.run(req).await;
    response.headers_mut().insert("x-request-id", value);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_bounded() {
        let labels = RouteLabels::new(["/login".to_owned(), "/api/gitlab/validate".to_owned()]);
        assert_eq!(labels.label("/login"), "/login");
        assert_eq!(labels.label("/api/gitlab/validate"), "/api/gitlab/validate");
        assert_eq!(labels.label("/integrations/gitlab/step/8"), "/integrations/gitlab/step/:n");
        assert_eq!(labels.label("/integrations/gitlab/step/99"), "other");
        assert_eq!(labels.label("/pkg/onramp.wasm"), "/pkg/*");
        assert_eq!(labels.label("/api/made-up-by-a-client-123"), "other");
        assert_eq!(labels.label("/invite/SECRETsecret"), "/invite/:secret");
        assert_eq!(labels.label("/connect/SECRETsecret"), "/connect/:secret");
        assert_eq!(labels.label("/integrations/gitlab/connections/abc"), "/integrations/gitlab/connections/:id");
        assert_eq!(labels.label("/integrations/gitlab/connections/abc/x/y"), "other");
    }

    #[test]
    fn invitation_secrets_stay_out_of_logs() {
        assert_eq!(loggable_path("/invite/SECRETsecret"), "/invite/…");
        assert_eq!(loggable_path("/connect/SECRETsecret"), "/connect/…");
        assert_eq!(loggable_path("/connect/ended"), "/connect/ended");
        assert_eq!(loggable_path("/integrations/gitlab/step/8"), "/integrations/gitlab/step/8");
    }
}
