//! A workspace's audit log: `GET /api/audit` (owners and admins).

use super::error::ApiError;
use crate::workspace::AuditEvent;
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
#[cfg(feature = "ssr")]
use {
    super::caller::{state, viewer, workspace_for},
    crate::store::workspaces,
    crate::workspace::{audit_cursor, Action},
};

/// The audit log of a workspace (owners and admins), newest first, 100 events a page: `GET
/// /api/audit`, optional `workspace` and `before` (the `id` of the last event of the page read,
/// for the next one; Unix seconds as before still work, see [`crate::workspace::audit_cursor`]).
#[server(prefix = "/api", endpoint = "audit", input = GetUrl)]
pub async fn audit_log(workspace: Option<String>, before: Option<String>) -> Result<Vec<AuditEvent>, ApiError> {
    let state = state()?;
    let viewer = viewer()?;
    let target = workspace_for(&viewer, workspace.as_deref(), Action::ViewAudit)?;
    let before = audit_cursor(before.as_deref()).map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(workspaces::audit_log(&state.db, &target.id, before.as_deref(), crate::auth::AUDIT_PAGE).await?)
}
