//! Saved connections over time: re-checking them with the stored token (on demand and by the
//! re-check job, `jobs::recheck`), reaching their GitLab, and recording their events. Below
//! `rotation` and `discovery`, which use it; it uses neither.

use crate::gitlab::base_url::BaseUrl;
use crate::gitlab::check::{self, CheckInput};
use crate::gitlab::outbound::{parse_ca, ResolveError, Target};
use crate::gitlab::report::{CheckId, CheckResult, Report};
use crate::integration::{event, Integration};
use crate::platform::EventType;
use crate::state::AppState;
use crate::store::{events, integrations, platform_events, StoreError};

/// What a page and the API say when a stored token cannot be opened.
pub const UNUSABLE_TOKEN: &str = "Onramp cannot use the stored token: the saved connection was changed outside \
    Onramp, or Onramp now runs with another encryption key. Nothing was sent to GitLab. Disconnect, then connect \
    again with a new token.";

/// Re-checks a saved connection of a workspace with its stored token and records the result.
/// `None` when the workspace has no such connection. A row whose token does not open (changed
/// outside Onramp, or a key that is not loaded) is recorded as a failed check, and nothing is sent
/// anywhere.
pub async fn recheck(state: &AppState, workspace_id: &str, id: &str) -> Result<Option<Report>, StoreError> {
    let (integration, token, ca_pem) = match integrations::with_token(&state.db, &state.keys, workspace_id, id).await {
        Ok(Some(saved)) => saved,
        Ok(None) => return Ok(None),
        Err(StoreError::Crypto(e)) => {
            tracing::error!(error = %e, "a stored token does not open");
            let Some(integration) = integrations::find(&state.db, workspace_id, id).await? else { return Ok(None) };
            let report = Report::new(
                integration.base_url.clone(),
                None,
                None,
                None,
                vec![CheckResult::fail(CheckId::Token, UNUSABLE_TOKEN).fixed_in(7)],
                0,
            );
            integrations::record_check(&state.db, workspace_id, id, &report).await?;
            return Ok(Some(report));
        }
        Err(e) => return Err(e),
    };
    let input = CheckInput { base_url: &integration.base_url, token: Ok(token), extra_ca_pem: Some(&ca_pem) };
    let report = check::run(&state.outbound, &input, time::OffsetDateTime::now_utc().date()).await;
    integrations::record_check(&state.db, workspace_id, id, &report).await?;
    if integration.last_check_ok && !report.ok {
        // Working until now: someone should hear about it (once, not at every failing re-check).
        let first = report.failures().next();
        let detail = first.map_or_else(|| "The re-check failed.".to_owned(), |c| c.message.clone());
        let once = format!("check_failed:{}", crate::store::now());
        let fix = first.and_then(|c| c.fix_step);
        note(state, &integration, event::CHECK_FAILED, &detail, fix, &once).await?;
    } else if !integration.last_check_ok && report.ok {
        let data = serde_json::json!({ "base_url": integration.base_url });
        platform_events::emit_logged(&state.db, workspace_id, Some(id), EventType::ConnectionRecovered, data).await;
    }
    Ok(Some(report))
}

/// Records an event of the connection (mailed when a mail server is set up).
pub async fn note(
    state: &AppState,
    integration: &Integration,
    kind: &str,
    detail: &str,
    fix_step: Option<u8>,
    once_key: &str,
) -> Result<bool, StoreError> {
    let once = format!("{}:{once_key}", integration.id);
    let event = events::NewEvent { kind, detail, fix_step, once_key: &once };
    // The connection's platforms hear of it too, once like the event, in the same transaction.
    let heard = match kind {
        event::ROTATED => Some(EventType::ConnectionTokenRotated),
        event::CHECK_FAILED | event::ROTATION_LOST => Some(EventType::ConnectionCheckFailed),
        event::EXPIRES_SOON => Some(EventType::ConnectionExpiring),
        _ => None,
    }
    .map(|heard| {
        let data = serde_json::json!({
            "base_url": integration.base_url,
            "detail": detail,
            "fix_step": fix_step,
            "fix_path": fix_step.map(|s| crate::wizard::step_href(s, None)),
            "token_expires_at": integration.expires_at,
        });
        (heard, data)
    });
    events::record(&state.db, &integration.workspace_id, &integration.id, &event, state.mailer.is_some(), heard).await
}

/// The connection's GitLab, resolved and admitted by the guard, with its CA.
pub(crate) async fn target_for(
    state: &AppState,
    integration: &Integration,
    ca: &str,
) -> Result<(BaseUrl, Target), String> {
    let base = BaseUrl::parse(&integration.base_url).map_err(|e| e.to_string())?;
    let addrs = state.outbound.resolve(&base).await.map_err(|e| match e {
        ResolveError::NotFound(host) => format!("{host} has no address in DNS"),
        ResolveError::Blocked(_) => {
            "its address is not one Onramp may connect to (see ONRAMP_OUTBOUND_ALLOW)".to_owned()
        }
    })?;
    let cas = if ca.is_empty() { Vec::new() } else { parse_ca(ca)? };
    let target = state.outbound.target(&base, addrs, &cas)?;
    Ok((base, target))
}
