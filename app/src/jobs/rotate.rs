//! The rotation job: settles rotations left without an answer (`rotation::settle_stale`), rotates
//! every token that is due (`rotation::rotate`, scheduled: each token rotated at most once, through
//! the rotation ledger), and records a reminder 30 and 7 days before an expiry that will not be
//! rotated. "Rotate now" calls `rotation::rotate` itself.

use crate::connections::note;
use crate::gitlab::rotation as rules;
use crate::integration::event;
use crate::rotation::{eligible, rotate, settle_stale, Outcome, Trigger};
use crate::state::AppState;
use crate::store::{integrations, rotations, StoreError};
use time::OffsetDateTime;

/// What a pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Rotations left without an answer that were settled (kept, lost, or gone).
    pub settled: usize,
    /// Tokens expiring within the horizon (the rotation's days before, or the first reminder).
    pub expiring: usize,
    /// Tokens rotated by this pass; the others of `expiring` were not due, could not rotate (a
    /// reminder, when one is due), or failed (`errors`, logged).
    pub rotated: usize,
    pub errors: usize,
}

/// Rotates what is due on `now`'s date (UTC), after settling what earlier passes left unsettled.
pub async fn run(state: &AppState, now: OffsetDateTime) -> Result<Report, StoreError> {
    let today = now.date();
    let mut done = Report { settled: settle_stale(state).await?, ..Report::default() };
    let horizon = today + time::Duration::days(state.settings.rotate_days_before.max(REMIND_DAYS[0]));
    for (workspace, id) in integrations::expiring(&state.db, &horizon.to_string()).await? {
        done.expiring += 1;
        match rotate(state, &workspace, &id, Trigger::Schedule, today).await {
            Ok(Outcome::Rotated(_)) => done.rotated += 1,
            Ok(_) => remind(state, &workspace, &id, today).await?,
            Err(e) => {
                tracing::error!(error = %e, "a scheduled rotation failed");
                done.errors += 1;
            }
        }
    }
    Ok(done)
}

/// Days before expiry at which people are reminded of a token Onramp will not rotate.
pub const REMIND_DAYS: [i64; 2] = [30, 7];

/// Records a reminder when the connection's token expires within [`REMIND_DAYS`] and Onramp will
/// not rotate it (it cannot, or its rotation was refused or lost). Once per threshold and expiry.
async fn remind(state: &AppState, workspace_id: &str, id: &str, today: time::Date) -> Result<(), StoreError> {
    let Some(integration) = integrations::find(&state.db, workspace_id, id).await? else { return Ok(()) };
    let Some(expires) = integration.expires_at.as_deref().and_then(rules::parse_date) else { return Ok(()) };
    let days = (expires - today).whole_days();
    let why = match eligible(&integration) {
        Err(why) => why.explain(),
        Ok(()) => match rotations::latest(&state.db, workspace_id, id).await? {
            Some(r) if Some(r.token_id) == integration.token_id && matches!(r.state.as_str(), "refused" | "lost") => {
                r.message
            }
            // Onramp rotates it before then.
            _ if days > 0 => return Ok(()),
            _ => String::new(),
        },
    };
    let Some(threshold) = REMIND_DAYS.iter().rev().find(|t| days <= **t) else { return Ok(()) };
    let when = match days {
        d if d <= 0 => format!("expired on {expires}"),
        1 => format!("expires tomorrow ({expires})"),
        d => format!("expires on {expires}, in {d} days"),
    };
    let detail = format!(
        "The token {when}. {why} Create a new token (step 7) and replace this connection's token with it before then."
    );
    let once = format!("expires:{expires}:{threshold}");
    note(state, &integration, event::EXPIRES_SOON, detail.trim(), Some(7), &once).await?;
    Ok(())
}
