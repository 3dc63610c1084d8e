//! Rotating a saved connection's token before it expires, without ever losing the connection to
//! a lost answer. The rules are in [`crate::gitlab::rotation`]; the ledger that allows one
//! rotation per token in [`crate::store::rotations`].
//!
//! 1. The rotation is written down (`sending`, with a lease) before GitLab is asked. Whoever
//!    cannot write it (another process has, or the token was rotated before) sends nothing.
//! 2. `POST /personal_access_tokens/self/rotate` with an explicit `expires_at`; a 400 (the date is
//!    too far for this instance) revokes nothing and is asked again with a shorter date.
//! 3. The new token is sealed into the connection and the rotation closed in one transaction,
//!    then the connection is re-checked with it.
//! 4. No answer (a timeout, a reset, a 5xx, a crash before step 3): never sent again. GitLab is
//!    asked with the old token whether it still lives: alive means nothing was rotated (`kept`,
//!    a later rotation may try again); revoked means the new token is lost (`lost`: the
//!    connection needs a new token, step 7). No answer to that either: the rotation stays
//!    `sending`, and when its lease runs out the next pass asks again.

use crate::connections::{self, note, target_for};
use crate::gitlab::base_url::BaseUrl;
use crate::gitlab::outbound::{Failure, Target};
use crate::gitlab::report::{CheckId, CheckResult, Report, TokenInfo};
use crate::gitlab::rotation::{self as rules, Alive, CannotRotate, Rotated};
use crate::gitlab::token::GitlabToken;
use crate::integration::{event, Integration, Rotation, RotationView};
use crate::state::AppState;
use crate::store::{integrations, rotations, StoreError};

/// Who asked for the rotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// The daily pass: only when the token is due.
    Schedule,
    /// "Rotate now" on the page, or `POST /api/gitlab/rotate`.
    Manual,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
        }
    }
}

/// How a rotation ended, as the page and the API tell it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The new token is stored (and expires on this date, when GitLab said).
    Rotated(Option<String>),
    /// Not due yet (scheduled rotations only).
    NotDue,
    /// GitLab or the token cannot rotate; reminders instead.
    Cannot(CannotRotate),
    /// This token already has a rotation (another process, or done before): nothing sent.
    Taken,
    /// GitLab refused; nothing was revoked. The message says why.
    Refused(String),
    /// The answer was lost but the old token still works: nothing was rotated.
    Kept(String),
    /// The old token was revoked and the new one never arrived: the connection needs a new token.
    Lost,
    /// Neither the answer nor whether the old token lives is known yet; asked again later.
    Unsettled,
    /// The stored token does not open (see [`connections::UNUSABLE_TOKEN`]).
    Unusable,
    /// No such connection in the workspace.
    Gone,
}

impl Outcome {
    /// One sentence for the page.
    pub fn explain(&self) -> String {
        match self {
            Outcome::Rotated(Some(date)) => format!("The token was rotated; the new one expires on {date}."),
            Outcome::Rotated(None) => "The token was rotated.".to_owned(),
            Outcome::NotDue => "The token is not due for rotation yet.".to_owned(),
            Outcome::Cannot(why) => why.explain(),
            Outcome::Taken => "This token has already been rotated, or a rotation of it is under way.".to_owned(),
            Outcome::Refused(why) => format!("GitLab refused to rotate the token: {why}"),
            Outcome::Kept(why) => why.clone(),
            Outcome::Lost => LOST.to_owned(),
            Outcome::Unsettled => UNSETTLED.to_owned(),
            Outcome::Unusable => connections::UNUSABLE_TOKEN.to_owned(),
            Outcome::Gone => "There is no such connection.".to_owned(),
        }
    }
}

/// The connection's state after a rotation whose answer was lost while GitLab did rotate.
pub const LOST: &str = "This connection needs a new token: GitLab rotated the token, but its answer with the new \
    token never reached Onramp, and GitLab revokes the old one when it rotates. Create a new token (step 7) and \
    replace this connection's token with it.";

const UNSETTLED: &str = "GitLab did not answer the rotation, and could not be asked whether the old token still \
    works. Onramp will not send the rotation again; it asks GitLab again shortly and says here what happened.";

const KEPT: &str = "GitLab's answer to the rotation was lost, but the old token still works, so nothing was rotated. \
    Onramp will try again.";

/// How often a rotated token is offered to the store, with waits of 100 ms doubling in between
/// (about 6 s in all, beside SQLite's own 10 s busy timeout per try).
const STORE_ATTEMPTS: u32 = 7;

/// GitLab has issued a new token and revoked the old one: the new token is the connection's only
/// way in, so a storage failure (the database busy or briefly away) is tried again before it is
/// given up. Never logs the token.
async fn keep_rotated(
    state: &AppState,
    rotation_id: &str,
    workspace_id: &str,
    id: &str,
    token_id: i64,
    answer: &rotations::NewToken<'_>,
) -> Result<bool, StoreError> {
    let mut wait = std::time::Duration::from_millis(100);
    let mut attempt = 1;
    loop {
        match rotations::rotated(&state.db, &state.keys, rotation_id, workspace_id, id, token_id, answer).await {
            Ok(stored) => return Ok(stored),
            Err(e) if attempt < STORE_ATTEMPTS => {
                tracing::warn!(error = %e, attempt, connection = id, "storing a rotated token failed; trying again");
                tokio::time::sleep(wait).await;
                wait *= 2;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Rotates the connection's token (scheduled: only when due). Never sends a second rotation for
/// a token; see the module's text.
pub async fn rotate(
    state: &AppState,
    workspace_id: &str,
    id: &str,
    trigger: Trigger,
    today: time::Date,
) -> Result<Outcome, StoreError> {
    let (integration, token, ca) = match integrations::with_token(&state.db, &state.keys, workspace_id, id).await {
        Ok(Some(saved)) => saved,
        Ok(None) => return Ok(Outcome::Gone),
        Err(StoreError::Crypto(_)) => return Ok(Outcome::Unusable),
        Err(e) => return Err(e),
    };
    if let Err(why) = eligible(&integration) {
        return Ok(Outcome::Cannot(why));
    }
    let Some(expires_at) = integration.expires_at.as_deref().and_then(rules::parse_date) else {
        return Ok(Outcome::Cannot(CannotRotate::NoExpiry));
    };
    if expires_at <= today {
        return Ok(Outcome::Cannot(CannotRotate::Expired));
    }
    if trigger == Trigger::Schedule && !rules::is_due(expires_at, today, state.settings.rotate_days_before) {
        return Ok(Outcome::NotDue);
    }
    let Some(token_id) = integration.token_id else {
        // Known after the next check that reads /personal_access_tokens/self.
        return Ok(Outcome::Cannot(CannotRotate::OldGitlab(integration.gitlab_version.clone())));
    };
    let lease = state.settings.rotation_lease_seconds;
    let Some(rotation_id) = rotations::begin(&state.db, workspace_id, id, token_id, trigger.as_str(), lease).await?
    else {
        return Ok(Outcome::Taken);
    };
    let (base, target) = match target_for(state, &integration, &ca).await {
        Ok(found) => found,
        Err(why) => {
            // Nothing was sent: the rotation may be tried again.
            let message = format!("Onramp could not reach GitLab to rotate the token ({why}). It will try again.");
            return keep(state, &integration, &rotation_id, &message).await;
        }
    };
    let created = integration.token_created_at.as_deref().and_then(rules::parse_date);
    let mut asked = rules::next_expiry(today, created, expires_at);
    loop {
        let answer = match rules::rotate(&target, &base, &token, asked).await {
            Ok(answer) => answer,
            Err(failure) if nothing_sent(&failure) => {
                let why = crate::gitlab::check::describe_failure(&failure, &base);
                let message = format!("Onramp could not reach GitLab to rotate the token. {why} It will try again.");
                return keep(state, &integration, &rotation_id, &message).await;
            }
            Err(_) => return settle(state, &base, &target, &integration, &token, &rotation_id).await,
        };
        match answer {
            Rotated::New { token: new, id: new_id, expires_at } => {
                let answer = rotations::NewToken {
                    token: &new,
                    id: new_id,
                    expires_at: expires_at.clone(),
                    created_on: today.to_string(),
                };
                let stored = keep_rotated(state, &rotation_id, workspace_id, id, token_id, &answer).await?;
                metrics::counter!("onramp_rotations_total", "outcome" => "rotated").increment(1);
                tracing::info!(connection = id, stored, "rotated a connection's token");
                if stored {
                    let detail = match &expires_at {
                        Some(date) => {
                            format!("Onramp rotated the token; the new one expires on {date}. Nothing to do.")
                        }
                        None => "Onramp rotated the token. Nothing to do.".to_owned(),
                    };
                    // Its platforms hear the new expiry, not the one the rotation replaced.
                    let now_known = Integration { expires_at: expires_at.clone(), ..integration.clone() };
                    note(state, &now_known, event::ROTATED, &detail, None, &format!("rotated:{rotation_id}")).await?;
                    connections::recheck(state, workspace_id, id).await?;
                }
                return Ok(Outcome::Rotated(expires_at));
            }
            Rotated::BadRequest(why) => match rules::shorter(today, asked) {
                Some(shorter) => asked = shorter,
                None => return refuse(state, &integration, &rotation_id, &why).await,
            },
            Rotated::Refused(status, why) => {
                let why = if why.is_empty() { format!("HTTP {status}") } else { why };
                return refuse(state, &integration, &rotation_id, &why).await;
            }
            Rotated::Unknown(_) => return settle(state, &base, &target, &integration, &token, &rotation_id).await,
        }
    }
}

/// What the connection's page says about rotation.
pub async fn view(state: &AppState, integration: &Integration) -> Result<RotationView, StoreError> {
    let latest = rotations::latest(&state.db, &integration.workspace_id, &integration.id).await?;
    let today = time::OffsetDateTime::now_utc().date();
    let expires = integration.expires_at.as_deref().and_then(rules::parse_date);
    let (cannot, rotates_on) = match eligible(integration) {
        Err(why) => (Some(why.explain()), None),
        Ok(()) if expires.is_some_and(|e| e <= today) => (Some(CannotRotate::Expired.explain()), None),
        Ok(()) => {
            // A token already due is rotated at the next pass: today.
            let on =
                expires.map(|e| (e - time::Duration::days(state.settings.rotate_days_before)).max(today).to_string());
            (None, on)
        }
    };
    Ok(RotationView { cannot, rotates_on, latest })
}

/// Whether GitLab lets this connection's token rotate itself, from what the last checks learnt.
pub fn eligible(integration: &Integration) -> Result<(), CannotRotate> {
    let token = TokenInfo {
        scopes: integration.scopes.clone(),
        expires_at: integration.expires_at.clone(),
        ..Default::default()
    };
    rules::can_rotate(integration.gitlab_version.as_deref(), &token, integration.last_report.user.as_ref())
}

/// Settles every rotation left `sending` past its lease (a process died or never heard back), by
/// asking GitLab whether the old token lives. Returns how many were settled.
pub async fn settle_stale(state: &AppState) -> Result<usize, StoreError> {
    let mut settled = 0;
    for rotation in rotations::stale(&state.db).await? {
        if !rotations::claim_stale(&state.db, &rotation.id, state.settings.rotation_lease_seconds).await? {
            continue;
        }
        if settle_one(state, &rotation).await? != Outcome::Unsettled {
            settled += 1;
        }
    }
    Ok(settled)
}

async fn settle_one(state: &AppState, rotation: &Rotation) -> Result<Outcome, StoreError> {
    let (ws, id) = (rotation.workspace_id.as_str(), rotation.integration_id.as_str());
    let (integration, token, ca) = match integrations::with_token(&state.db, &state.keys, ws, id).await {
        Ok(Some(saved)) => saved,
        Ok(None) => return Ok(Outcome::Gone),
        Err(StoreError::Crypto(_)) => return Ok(Outcome::Unusable),
        Err(e) => return Err(e),
    };
    if integration.token_id != Some(rotation.token_id) {
        // Replaced (or rotated and stored) meanwhile: the stored token is not the one in question.
        rotations::finish(&state.db, &rotation.id, "kept", "The connection's token was replaced meanwhile.").await?;
        return Ok(Outcome::Kept("The connection's token was replaced meanwhile.".to_owned()));
    }
    match target_for(state, &integration, &ca).await {
        Ok((base, target)) => settle(state, &base, &target, &integration, &token, &rotation.id).await,
        Err(_) => Ok(Outcome::Unsettled),
    }
}

/// Asks GitLab, with the old token, whether it still lives, and closes the rotation by the answer.
async fn settle(
    state: &AppState,
    base: &BaseUrl,
    target: &Target,
    integration: &Integration,
    old: &GitlabToken,
    rotation_id: &str,
) -> Result<Outcome, StoreError> {
    match rules::alive(target, base, old).await {
        Alive::Yes => keep(state, integration, rotation_id, KEPT).await,
        Alive::No => lose(state, integration, rotation_id).await,
        Alive::Unknown => {
            metrics::counter!("onramp_rotations_total", "outcome" => "unsettled").increment(1);
            tracing::warn!(connection = %integration.id, "a rotation's outcome is unknown; asking again later");
            Ok(Outcome::Unsettled)
        }
    }
}

async fn keep(
    state: &AppState,
    integration: &Integration,
    rotation_id: &str,
    message: &str,
) -> Result<Outcome, StoreError> {
    rotations::finish(&state.db, rotation_id, "kept", message).await?;
    metrics::counter!("onramp_rotations_total", "outcome" => "kept").increment(1);
    // Once per rotation: a GitLab that keeps failing to answer is told once, not at every pass.
    let once = format!("rotation:{rotation_id}:kept");
    note(state, integration, event::ROTATION_FAILED, message, None, &once).await?;
    Ok(Outcome::Kept(message.to_owned()))
}

async fn refuse(
    state: &AppState,
    integration: &Integration,
    rotation_id: &str,
    why: &str,
) -> Result<Outcome, StoreError> {
    let message = format!(
        "GitLab refused to rotate the token: {why}. Nothing was revoked; the token works until it expires, and \
         Onramp reminds you before then."
    );
    rotations::finish(&state.db, rotation_id, "refused", &message).await?;
    metrics::counter!("onramp_rotations_total", "outcome" => "refused").increment(1);
    note(state, integration, event::ROTATION_FAILED, &message, Some(7), &format!("rotation:{rotation_id}:refused"))
        .await?;
    Ok(Outcome::Refused(why.to_owned()))
}

async fn lose(state: &AppState, integration: &Integration, rotation_id: &str) -> Result<Outcome, StoreError> {
    rotations::finish(&state.db, rotation_id, "lost", LOST).await?;
    metrics::counter!("onramp_rotations_total", "outcome" => "lost").increment(1);
    tracing::error!(connection = %integration.id, "a rotation's answer was lost and the old token is revoked");
    let report = Report::new(
        integration.base_url.clone(),
        integration.gitlab_version.clone(),
        integration.last_report.user.clone(),
        None,
        vec![CheckResult::fail(CheckId::Token, LOST).fixed_in(7)],
        0,
    );
    integrations::record_check(&state.db, &integration.workspace_id, &integration.id, &report).await?;
    note(state, integration, event::ROTATION_LOST, LOST, Some(7), &format!("rotation:{rotation_id}:lost")).await?;
    Ok(Outcome::Lost)
}

/// Failures where the request cannot have reached GitLab: safe to try again later.
fn nothing_sent(failure: &Failure) -> bool {
    matches!(failure, Failure::Refused | Failure::Tls(_) | Failure::PlainHttp | Failure::Proxy(_))
}
