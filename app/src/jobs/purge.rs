//! The purge job (housekeeping): deletes expired sessions, unclaimed flashes, kept checks past
//! their time, audit events past `ONRAMP_AUDIT_DAYS` (365 by default) and invitations that ended a
//! month ago, platform events, ended webhook deliveries and connect sessions after 30 days. The store's purge functions read the clock themselves.

use crate::state::AppState;
use crate::store::{accounts, connect_sessions, integrations, platform_events, webhooks, workspaces, StoreError};

/// Rows a pass deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub sessions_and_flashes: u64,
    pub checks: u64,
    pub audit_and_invitations: u64,
    /// Platform events past 30 days, webhook deliveries that ended that long ago, and connect
    /// sessions made that long ago.
    pub events_and_deliveries: u64,
}

/// Deletes what has expired. Each kind is purged even when another fails; the first error is
/// returned.
pub async fn run(state: &AppState) -> Result<Report, StoreError> {
    let sessions = accounts::purge_expired(&state.db).await;
    let checks = integrations::purge_old_checks(&state.db).await;
    let audit = workspaces::purge(&state.db, state.settings.audit_days).await;
    let events = platform_events::purge(&state.db).await;
    let deliveries = webhooks::purge(&state.db, platform_events::KEPT_DAYS).await;
    let sessions_made = connect_sessions::purge(&state.db, platform_events::KEPT_DAYS).await;
    Ok(Report {
        sessions_and_flashes: sessions?,
        checks: checks?,
        audit_and_invitations: audit?,
        events_and_deliveries: events? + deliveries? + sessions_made?,
    })
}
