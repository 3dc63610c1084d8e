//! What a platform hears (issue 22): `GET /api/v1/events` (pull, kept 30 days) and its webhook
//! endpoints, `POST/GET/DELETE /api/v1/webhooks`, `POST …/{id}/test`, `GET …/{id}/deliveries`
//! and `POST …/{id}/deliveries/{delivery_id}/retry` (`webhooks:write`). Events are written by
//! `store::platform_events`; deliveries are sent by `jobs::deliver`.

use super::embed::body;
use super::error::ApiError;
use super::platform::{allowed, json, paged, rfc3339, PageParams, PageQuery, Paged, PlatformCaller};
use crate::platform::{check_webhook_url, page_limit, Cursor, EventType, KeyScope};
use crate::state::AppState;
use crate::store::platform_events;
use crate::store::webhooks::{self, Delivery, Endpoint};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};

/// An event as `/api/v1/events` lists it (and, as `{"type", "timestamp", "data"}`, as a webhook
/// delivers it).
#[derive(Serialize, utoipa::ToSchema)]
pub struct EventOut {
    /// Stable: the same in the pull list and as a delivery's `webhook-id`.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub created_at: String,
    pub workspace_id: Option<String>,
    pub connection_id: Option<String>,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

#[derive(Deserialize, Default)]
pub struct EventsQuery {
    after: Option<String>,
    limit: Option<String>,
}

/// `GET /api/v1/events?after=…` (`connections:read`): the events the key hears, oldest first.
/// `after` is the id of the last event handled (or a page's `next`); without it, the list starts
/// at the oldest event kept.
#[utoipa::path(get, path = "/api/v1/events", tag = "events", params(PageParams),
    responses((status = 200, body = Paged<EventOut>), (status = "4XX", body = ApiError)))]
pub async fn list_events(
    State(state): State<AppState>,
    caller: Option<Extension<PlatformCaller>>,
    Query(query): Query<EventsQuery>,
) -> Result<Response, ApiError> {
    let key = allowed(&state, caller, KeyScope::ConnectionsRead)?;
    let limit = page_limit(query.limit.as_deref()).map_err(ApiError::bad_request)?;
    let seq = match query.after.as_deref().filter(|a| !a.is_empty()) {
        None => 0,
        Some(after) => {
            // A page's `next` is the last event's id in a cursor; a bare event id works too.
            let id = Cursor::decode(after).map(|c| c.0).ok().filter(|i| i.starts_with("evt_"));
            let id = id.unwrap_or_else(|| after.to_owned());
            platform_events::position(&state.db, &key, &id).await?.ok_or_else(|| {
                ApiError::bad_request(format!(
                    "`after` names no event this key hears: events are kept {} days. Start again without `after`.",
                    platform_events::KEPT_DAYS
                ))
            })?
        }
    };
    let found = platform_events::after(&state.db, &key, seq, limit as i64 + 1).await?;
    let out: Vec<EventOut> = found
        .into_iter()
        .map(|e| EventOut {
            id: e.id,
            kind: e.kind,
            created_at: rfc3339(e.created_at),
            workspace_id: e.workspace_id,
            connection_id: e.connection_id,
            data: e.data,
        })
        .collect();
    Ok(json(&paged(out, limit, |e| &e.id)))
}

/// The body of `POST /api/v1/webhooks`.
#[derive(Deserialize, Default, utoipa::ToSchema)]
pub struct NewEndpoint {
    /// Where deliveries go: https (or http), through Onramp's outbound guard.
    pub url: Option<String>,
    /// The event types to send, or `["*"]` for all.
    pub events: Option<Vec<String>>,
}

/// A webhook endpoint as listed: never its secret.
#[derive(Serialize, utoipa::ToSchema)]
pub struct EndpointOut {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub created_at: String,
    /// Since when every delivery failed, while they do.
    pub failing_since: Option<String>,
    /// Set when 5 days of failures disabled it; a retried delivery enables it again.
    pub disabled_at: Option<String>,
}

impl From<Endpoint> for EndpointOut {
    fn from(e: Endpoint) -> Self {
        EndpointOut {
            id: e.id,
            url: e.url,
            events: e.events,
            created_at: rfc3339(e.created_at),
            failing_since: e.failing_since.map(rfc3339),
            disabled_at: e.disabled_at.map(rfc3339),
        }
    }
}

/// The answer to `POST /api/v1/webhooks`: the endpoint and its signing secret, shown this once.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedEndpointOut {
    #[serde(flatten)]
    pub endpoint: EndpointOut,
    /// `whsec_…`: verify each delivery's `webhook-signature` with it (Standard Webhooks).
    pub secret: String,
}

/// `POST /api/v1/webhooks` (`webhooks:write`): 201 with the endpoint's secret. A URL whose host
/// is a literal address the outbound guard refuses is a 400; a name is judged at each delivery.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", request_body = NewEndpoint,
    responses((status = 201, body = CreatedEndpointOut), (status = "4XX", body = ApiError)))]
pub async fn create_endpoint(
    State(state): State<AppState>,
    caller: Option<Extension<PlatformCaller>>,
    request: Result<Json<NewEndpoint>, JsonRejection>,
) -> Result<Response, ApiError> {
    let key = allowed(&state, caller, KeyScope::WebhooksWrite)?;
    let request = body(request)?;
    let url = check_webhook_url(request.url.as_deref().unwrap_or_default())
        .map_err(|e| ApiError::bad_request(format!("`url`: {e}")))?;
    let literal = match url.host() {
        Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
        _ => None,
    };
    if let Some(ip) = literal {
        let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
        state.outbound.config().guard.check(host, ip).map_err(|blocked| {
            ApiError::bad_request(format!(
                "`url`: Onramp does not send to {ip} ({}): use the endpoint's public address (an operator can \
                 allow it with ONRAMP_OUTBOUND_ALLOW)",
                blocked.kind
            ))
        })?;
    }
    let events = EventType::parse_list(&request.events.unwrap_or_default())
        .map_err(|e| ApiError::bad_request(format!("`events`: {e}")))?;
    let (endpoint, secret) =
        webhooks::create(&state.db, &state.keys, &key, url.as_str(), &events).await?.map_err(ApiError::conflict)?;
    let out = CreatedEndpointOut { endpoint: endpoint.into(), secret: secret.expose().to_string() };
    Ok((StatusCode::CREATED, json(&out)).into_response())
}

/// `GET /api/v1/webhooks` (`webhooks:write`): the key's endpoints.
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks",
    responses((status = 200, body = Paged<EndpointOut>), (status = "4XX", body = ApiError)))]
pub async fn list_endpoints(
    State(state): State<AppState>,
    caller: Option<Extension<PlatformCaller>>,
) -> Result<Response, ApiError> {
    let key = allowed(&state, caller, KeyScope::WebhooksWrite)?;
    let all: Vec<EndpointOut> = webhooks::list(&state.db, &key).await?.into_iter().map(Into::into).collect();
    Ok(json(&Paged { data: all, next: None }))
}

fn no_endpoint() -> ApiError {
    ApiError::not_found("This key has no webhook endpoint with this id (GET /api/v1/webhooks lists them).")
}

/// `DELETE /api/v1/webhooks/{id}` (`webhooks:write`): 204; its deliveries go with it.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 204, description = "Deleted, with its deliveries"), (status = "4XX", body = ApiError)))]
pub async fn delete_endpoint(
    State(state): State<AppState>,
    caller: Option<Extension<PlatformCaller>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let key = allowed(&state, caller, KeyScope::WebhooksWrite)?;
    if webhooks::delete(&state.db, &key, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_endpoint())
    }
}

/// The answer to a test or a retry: the delivery that will be sent.
#[derive(Serialize, utoipa::ToSchema)]
pub struct QueuedOut {
    pub delivery_id: String,
}

/// `POST /api/v1/webhooks/{id}/test` (`webhooks:write`): 202; a `ping` goes out like any delivery.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/test", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 202, body = QueuedOut), (status = "4XX", body = ApiError)))]
pub async fn test_endpoint(
    State(state): State<AppState>,
    caller: Option<Extension<PlatformCaller>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let key = allowed(&state, caller, KeyScope::WebhooksWrite)?;
    let delivery_id = webhooks::ping(&state.db, &key, &id).await?.ok_or_else(no_endpoint)?;
    state.db.outbox().notify_one();
    Ok((StatusCode::ACCEPTED, json(&QueuedOut { delivery_id })).into_response())
}

/// One try of a delivery.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AttemptOut {
    pub at: String,
    pub duration_ms: i64,
    /// The endpoint's HTTP status; `null` when it gave none (then `error` says why).
    pub status: Option<u16>,
    pub error: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DeliveryOut {
    pub id: String,
    pub event_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// `pending`, `delivered` or `failed` (no try left).
    pub state: String,
    pub next_attempt_at: Option<String>,
    pub created_at: String,
    pub attempts: Vec<AttemptOut>,
}

impl From<Delivery> for DeliveryOut {
    fn from(d: Delivery) -> Self {
        DeliveryOut {
            id: d.id,
            event_id: d.event_id,
            kind: d.kind,
            state: d.state,
            next_attempt_at: d.next_attempt_at.map(rfc3339),
            created_at: rfc3339(d.created_at),
            attempts: d
                .attempts
                .into_iter()
                .map(|a| AttemptOut {
                    at: rfc3339(a.started_at),
                    duration_ms: a.duration_ms,
                    status: a.status,
                    error: a.error,
                })
                .collect(),
        }
    }
}

/// `GET /api/v1/webhooks/{id}/deliveries` (`webhooks:write`): newest first, every attempt.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks", params(("id" = String, Path), PageParams),
    responses((status = 200, body = Paged<DeliveryOut>), (status = "4XX", body = ApiError)))]
pub async fn list_deliveries(
    State(state): State<AppState>,
    caller: Option<Extension<PlatformCaller>>,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let key = allowed(&state, caller, KeyScope::WebhooksWrite)?;
    let (before, limit) = query.bounds()?;
    let found = webhooks::deliveries(&state.db, &key, &id, &before, limit as i64 + 1).await?.ok_or_else(no_endpoint)?;
    let out: Vec<DeliveryOut> = found.into_iter().map(Into::into).collect();
    Ok(json(&paged(out, limit, |d| &d.id)))
}

/// `POST /api/v1/webhooks/{id}/deliveries/{delivery_id}/retry` (`webhooks:write`): 202; the
/// delivery is sent again now (same `webhook-id`).
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/deliveries/{delivery_id}/retry", tag = "webhooks",
    params(("id" = String, Path), ("delivery_id" = String, Path)),
    responses((status = 202, body = QueuedOut), (status = "4XX", body = ApiError)))]
pub async fn retry_delivery(
    State(state): State<AppState>,
    caller: Option<Extension<PlatformCaller>>,
    Path((id, delivery_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let key = allowed(&state, caller, KeyScope::WebhooksWrite)?;
    if !webhooks::retry(&state.db, &key, &id, &delivery_id).await? {
        return Err(ApiError::not_found("This endpoint has no delivery with this id."));
    }
    state.db.outbox().notify_one();
    Ok((StatusCode::ACCEPTED, json(&QueuedOut { delivery_id })).into_response())
}
