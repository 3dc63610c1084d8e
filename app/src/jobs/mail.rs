//! The mail job: the connection events waiting to be mailed go out (each at most once, even with
//! several processes: `events::claim_mail`), when a mail server is set up. Composing and sending
//! one mail is `crate::mail`'s.

use crate::state::AppState;
use crate::store::{events, StoreError};

/// Events mailed per pass.
const PER_PASS: i64 = 50;

/// What a pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Mails the mail server took.
    pub sent: usize,
    /// Mails it refused or never answered: tried again at a later pass.
    pub failed: usize,
}

/// Sends the mails of pending events. Nothing without a mail server.
pub async fn run(state: &AppState) -> Result<Report, StoreError> {
    let mut done = Report::default();
    let Some(mailer) = &state.mailer else { return Ok(done) };
    for out in events::outbox(&state.db, PER_PASS).await? {
        if !events::claim_mail(&state.db, &out.event.id).await? {
            continue;
        }
        if out.to.is_empty() {
            events::mailed(&state.db, &out.event.id, "none").await?;
            continue;
        }
        match mailer.send_event(&out).await {
            Ok(()) => {
                events::mailed(&state.db, &out.event.id, "sent").await?;
                metrics::counter!("onramp_mails_total", "outcome" => "sent").increment(1);
                done.sent += 1;
            }
            Err(e) => {
                tracing::warn!(error = %e, kind = %out.event.kind, "a connection mail was not sent; trying again later");
                metrics::counter!("onramp_mails_total", "outcome" => "failed").increment(1);
                events::mail_failed(&state.db, &out.event.id).await?;
                done.failed += 1;
            }
        }
    }
    Ok(done)
}
