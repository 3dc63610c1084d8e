//! Saved connections over time: re-checking them with the stored token (on demand and daily).

use crate::gitlab::check::{self, CheckInput};
use crate::gitlab::report::Report;
use crate::state::AppState;
use crate::store::{integrations, StoreError};

/// Re-checks one user's saved integration with its stored token and records the result.
/// `None` when the user has none.
pub async fn recheck_user(state: &AppState, user_id: &str) -> Result<Option<Report>, StoreError> {
    let Some((integration, token, ca_pem)) = integrations::with_token(&state.db, &state.keys, user_id).await? else {
        return Ok(None);
    };
    let input = CheckInput { base_url: &integration.base_url, token: Ok(token), extra_ca_pem: Some(&ca_pem) };
    let report = check::run(&state.outbound, &input, time::OffsetDateTime::now_utc().date()).await;
    integrations::record_check(&state.db, user_id, &integration.id, &report).await?;
    Ok(Some(report))
}
