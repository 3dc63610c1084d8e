//! Sends due webhook deliveries (issue 22): one pass claims up to [`BATCH`] of them from the
//! outbox (`store::webhooks::claim`: of several processes, each row goes to one), sends them at
//! once, each signed per Standard Webhooks, and records each attempt. A pass never sleeps; the
//! server runs one whenever a delivery is written here and every few seconds.
//!
//! Every delivery goes through the outbound guard like a GitLab request: the URL's host is
//! resolved here and each address judged (a name that resolves to a loopback, private or metadata
//! address is refused, as an attempt with an error), the connection is pinned to the checked
//! addresses, redirects are not followed, and the whole request has the outbound timeout (10 s).

use crate::gitlab::base_url::BaseUrl;
use crate::gitlab::outbound::{Failure, ResolveError};
use crate::platform::EventType;
use crate::state::AppState;
use crate::store::platform_events::{self, Audience};
use crate::store::webhooks::{self, Attempt, Due, Finished};
use crate::store::StoreError;

/// Deliveries one pass claims at most.
pub const BATCH: i64 = 32;

/// What a pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub sent: usize,
    pub delivered: usize,
    pub retrying: usize,
    pub given_up: usize,
    pub disabled: usize,
}

/// One pass at `now` (Unix seconds).
pub async fn run(state: &AppState, now: i64) -> Result<Report, StoreError> {
    let due = webhooks::claim(&state.db, &state.keys, now, BATCH).await?;
    let attempts = futures::future::join_all(due.iter().map(|d| send(state, d))).await;
    let mut report = Report { sent: due.len(), ..Report::default() };
    for (due, attempt) in due.iter().zip(attempts) {
        let (finished, disabled) = webhooks::finish(&state.db, due, &attempt).await?;
        match finished {
            Finished::Delivered => report.delivered += 1,
            Finished::Retry(_) => report.retrying += 1,
            Finished::GaveUp => report.given_up += 1,
            Finished::Lost => {}
        }
        metrics::counter!("onramp_webhook_attempts_total", "outcome" => if attempt.succeeded() { "delivered" } else { "failed" })
            .increment(1);
        if disabled {
            report.disabled += 1;
            endpoint_disabled(state, due).await;
        }
    }
    Ok(report)
}

/// The `webhook-*` headers of a delivery sent at `timestamp` (Standard Webhooks).
pub fn headers(due: &Due, timestamp: i64) -> Vec<(&'static str, String)> {
    vec![
        ("content-type", "application/json".to_owned()),
        ("webhook-id", due.message_id.clone()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", due.secret.sign(&due.message_id, timestamp, due.body.as_bytes())),
    ]
}

/// One attempt: resolve and judge the host, POST the signed body, read the status.
async fn send(state: &AppState, due: &Due) -> Attempt {
    let started = std::time::Instant::now();
    let started_at = crate::store::now();
    let outcome = attempt(state, due, started_at).await;
    let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    match outcome {
        Ok(status) => Attempt { started_at, duration_ms, status: Some(status), error: None },
        Err(error) => Attempt { started_at, duration_ms, status: None, error: Some(error) },
    }
}

async fn attempt(state: &AppState, due: &Due, timestamp: i64) -> Result<u16, String> {
    let url = url::Url::parse(&due.url).map_err(|_| "the endpoint's URL no longer parses".to_owned())?;
    let origin = BaseUrl::parse(&url.origin().ascii_serialization()).map_err(|e| e.to_string())?;
    let addrs = state.outbound.resolve(&origin).await.map_err(|e| match e {
        ResolveError::NotFound(host) => format!("{host} has no address in DNS"),
        ResolveError::Blocked(b) => {
            format!("the endpoint's host resolves to {} ({}), where Onramp does not send", b.ip, b.kind)
        }
    })?;
    let target = state.outbound.target(&origin, addrs, &[])?;
    let answer =
        target.post_body(url.as_str(), &headers(due, timestamp), due.body.clone()).await.map_err(|f| match f {
            Failure::Timeout => {
                format!("no answer within {} s", state.outbound.config().request_timeout.as_secs())
            }
            Failure::Refused => "the connection was refused".to_owned(),
            Failure::Tls(why) => format!("TLS failed: {why}"),
            Failure::PlainHttp => "an https:// URL whose server answers in plain HTTP".to_owned(),
            Failure::Proxy(why) => format!("the proxy failed: {why}"),
            Failure::Other(why) => why,
        })?;
    Ok(answer.status.as_u16())
}

/// An endpoint was disabled after 5 days of failures: its key hears `webhook_endpoint.disabled`
/// (in `/api/v1/events`), and the owners of a workspace-level key's workspace get a mail.
async fn endpoint_disabled(state: &AppState, due: &Due) {
    tracing::warn!(endpoint = %due.endpoint_id, "disabled a webhook endpoint after 5 days of failed deliveries");
    let data = serde_json::json!({ "endpoint_id": due.endpoint_id, "url": due.url });
    if let Err(e) =
        platform_events::emit(&state.db, Audience::Key(&due.key_id), None, EventType::WebhookEndpointDisabled, data)
            .await
    {
        tracing::error!(error = %e, "cannot record that a webhook endpoint was disabled");
    }
    let Some(mailer) = &state.mailer else { return };
    let owners = match crate::store::platform::owners_of_key(&state.db, &due.key_id).await {
        Ok(owners) => owners,
        Err(e) => return tracing::error!(error = %e, "cannot find whom to tell of a disabled webhook endpoint"),
    };
    if owners.is_empty() {
        return;
    }
    let body = format!(
        "Onramp could not deliver events to the webhook endpoint {} for 5 days and has disabled it.\n\n\
         Fix the endpoint, then retry one of its deliveries (POST /api/v1/webhooks/{}/deliveries/ID/retry): that \
         enables it again. GET /api/v1/events lists every event meanwhile.\n\n\
         You receive this because you own the Onramp workspace of this platform key.\n",
        due.url, due.endpoint_id
    );
    if let Err(e) = mailer.send(&owners, "A webhook endpoint was disabled", body).await {
        tracing::error!(error = %e, "cannot mail that a webhook endpoint was disabled");
    }
}
