//! A workspace's audit log: `GET /api/audit` (owners and admins).

use super::error::ApiError;
use crate::workspace::AuditEvent;
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
#[cfg(feature = "ssr")]
use {
    super::caller::{state, viewer, workspace_for},
    crate::store::workspaces,
    crate::workspace::Action,
};

/// The audit log of a workspace (owners and admins), newest first: `GET /api/audit`, optional
/// `workspace` and `before` (Unix seconds, for the next page).
#[server(prefix = "/api", endpoint = "audit", input = GetUrl)]
pub async fn audit_log(workspace: Option<String>, before: Option<i64>) -> Result<Vec<AuditEvent>, ApiError> {
    let state = state()?;
    let viewer = viewer()?;
    let target = workspace_for(&viewer, workspace.as_deref(), Action::ViewAudit)?;
    Ok(workspaces::audit_log(&state.db, &target.id, before, crate::auth::AUDIT_PAGE).await?)
}
