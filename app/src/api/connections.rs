//! A saved connection's own actions: `/api/gitlab/rotate` (rotate its token now), `events` (its
//! rotation state and latest events), `disconnect`, and `/api/integrations` (every connection the
//! caller can see).

use super::error::ApiError;
use crate::integration::Integration;
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};
#[cfg(feature = "ssr")]
use {
    super::caller::{audit, connection_for, limit_checks_on_page, named, not_connected, state, viewer},
    super::respond::{to_page, with_query},
    super::today,
    crate::store::integrations,
    crate::workspace::{audit, Action},
};

/// Rotates a connection's token now (GitLab 16.10+, a token with `api` or `self_rotate`):
/// `POST /api/gitlab/rotate`, `id`. Never sends a second rotation for the same token.
#[server(prefix = "/api", endpoint = "gitlab/rotate")]
pub async fn rotate_token(id: Option<String>) -> Result<RotationAnswer, ApiError> {
    use crate::rotation::{Outcome, Trigger};
    let state = state()?;
    let viewer = viewer()?;
    let integration = connection_for(&state, &viewer, id.as_deref(), Action::ManageConnections).await?;
    limit_checks_on_page(&state, &viewer, &crate::routes::connection(&integration.id))?;
    let outcome =
        crate::rotation::rotate(&state, &integration.workspace_id, &integration.id, Trigger::Manual, today()).await?;
    let code = match &outcome {
        Outcome::Rotated(_) => "rotated",
        Outcome::NotDue => "not_due",
        Outcome::Cannot(_) => "cannot",
        Outcome::Taken => "taken",
        Outcome::Refused(_) => "refused",
        Outcome::Kept(_) => "kept",
        Outcome::Lost => "lost",
        Outcome::Unsettled => "unsettled",
        Outcome::Unusable => "unusable",
        Outcome::Gone => return Err(not_connected()),
    };
    audit(&state, &integration.workspace_id, &viewer, audit::TOKEN_ROTATED, &named(&integration)).await;
    to_page(with_query(&crate::routes::connection(&integration.id), "rotation", code));
    let expires_at = match &outcome {
        Outcome::Rotated(date) => date.clone(),
        _ => None,
    };
    Ok(RotationAnswer { outcome: code.to_owned(), message: outcome.explain(), expires_at })
}

/// `POST /api/gitlab/rotate` answers this.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationAnswer {
    /// `rotated`, `not_due`, `cannot`, `taken`, `refused`, `kept`, `lost`, `unsettled`, `unusable`.
    pub outcome: String,
    pub message: String,
    /// The new token's expiry, when it rotated.
    pub expires_at: Option<String>,
}

/// A connection's rotation state and latest events (newest first, at most 50):
/// `GET /api/gitlab/events?id=…`.
#[server(prefix = "/api", endpoint = "gitlab/events", input = GetUrl)]
pub async fn connection_events(id: Option<String>) -> Result<EventsAnswer, ApiError> {
    let state = state()?;
    let viewer = viewer()?;
    let integration = connection_for(&state, &viewer, id.as_deref(), Action::ViewConnections).await?;
    let rotation = crate::rotation::view(&state, &integration).await?;
    let events = crate::store::events::list(&state.db, &integration.workspace_id, &integration.id, 50).await?;
    Ok(EventsAnswer { id: integration.id, rotation, events })
}

/// `GET /api/gitlab/events` answers this.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsAnswer {
    pub id: String,
    pub rotation: crate::integration::RotationView,
    pub events: Vec<crate::integration::ConnectionEvent>,
}

/// Deletes a connection and its token: `POST /api/gitlab/disconnect`, `id`.
#[server(prefix = "/api", endpoint = "gitlab/disconnect")]
pub async fn disconnect(id: Option<String>) -> Result<bool, ApiError> {
    let state = state()?;
    let viewer = viewer()?;
    let target = connection_for(&state, &viewer, id.as_deref(), Action::ManageConnections).await?;
    let deleted = integrations::delete(&state.db, &target.workspace_id, &target.id).await?;
    if deleted {
        audit(&state, &target.workspace_id, &viewer, audit::CONNECTION_DISCONNECTED, &named(&target)).await;
    }
    to_page("/integrations/gitlab?disconnected=1");
    Ok(deleted)
}

/// The connections of every workspace the caller belongs to, without secrets:
/// `GET /api/integrations` (each names its `workspace_id`).
#[server(prefix = "/api", endpoint = "integrations", input = GetUrl)]
pub async fn list_integrations() -> Result<Vec<Integration>, ApiError> {
    let state = state()?;
    let viewer = viewer()?;
    let all = integrations::list_for_user(&state.db, &viewer.user.id).await?;
    Ok(all.into_iter().map(|(i, _)| i).collect())
}
