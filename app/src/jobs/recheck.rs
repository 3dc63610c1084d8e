//! The re-check job: every saved connection whose last check is older than the interval is
//! checked again with its stored token (`connections::recheck`, which records the result and an
//! event when a working connection starts failing), and a good re-check refreshes the
//! connection's list of groups and projects ([`super::discover`]).

use super::discover::{self, Refresh};
use crate::connections;
use crate::state::AppState;
use crate::store::{integrations, StoreError};
use std::time::Duration;
use time::OffsetDateTime;

/// What a pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Connections last checked more than an interval before `now`.
    pub due: usize,
    /// Re-checked by this pass (`failed` of them did not pass).
    pub checked: usize,
    pub failed: usize,
    /// Claimed by another process first (or checked meanwhile): left to it.
    pub taken: usize,
    /// Lists of groups and projects made again after a good re-check.
    pub refreshed: usize,
    /// Connections that could not be claimed or re-checked (logged); tried at the next pass.
    pub errors: usize,
}

/// Re-checks every connection last checked before `now - interval`.
pub async fn run(state: &AppState, now: OffsetDateTime, interval: Duration) -> Result<Report, StoreError> {
    run_until(state, now, interval, || false).await
}

/// [`run`], stopping between connections once `stopped` says so (a check under way finishes).
pub async fn run_until(
    state: &AppState,
    now: OffsetDateTime,
    interval: Duration,
    stopped: impl Fn() -> bool,
) -> Result<Report, StoreError> {
    let before = now.unix_timestamp().saturating_sub(i64::try_from(interval.as_secs()).unwrap_or(i64::MAX));
    let mut done = Report::default();
    for (workspace, id) in integrations::due(&state.db, before).await? {
        if stopped() {
            break;
        }
        done.due += 1;
        // Another Onramp process on the same database may have taken it meanwhile.
        match integrations::claim_due(&state.db, &id, before).await {
            Ok(true) => {}
            Ok(false) => {
                done.taken += 1;
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot claim a connection to re-check");
                done.errors += 1;
                continue;
            }
        }
        match connections::recheck(state, &workspace, &id).await {
            Ok(Some(report)) => {
                metrics::counter!("onramp_rechecks_total", "outcome" => if report.ok { "ok" } else { "failed" })
                    .increment(1);
                tracing::info!(ok = report.ok, "scheduled re-check");
                done.checked += 1;
                if !report.ok {
                    done.failed += 1;
                    continue;
                }
                // The list of groups and projects follows, once one was made.
                match discover::run(state, &workspace, &id).await {
                    Ok(Refresh::Ran) => done.refreshed += 1,
                    Ok(Refresh::NeverListed | Refresh::Running) => {}
                    Err(e) => tracing::error!(error = %e, "scheduled discovery failed"),
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "scheduled re-check failed");
                done.errors += 1;
            }
        }
    }
    Ok(done)
}
