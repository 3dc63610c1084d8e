//! Checking a GitLab connection and saving it: `/api/gitlab/validate`, `accept` (save despite
//! warnings, or swap the checked token into an existing connection), `recheck` and `replace`
//! (check a new token, then swap it in).

use super::error::ApiError;
use crate::gitlab::report::Report;
use crate::integration::Integration;
use leptos::prelude::*;
#[cfg(feature = "ssr")]
use {
    super::caller::{
        audit, connection_for, limit_checks, limit_checks_on_page, named, not_connected, state, viewer, workspace_for,
    },
    super::respond::{from_browser, to_page, with_query},
    super::today,
    crate::auth::Viewer,
    crate::connect::{self, Replacement, Verdict},
    crate::gitlab::base_url::BaseUrl,
    crate::gitlab::check::{self, CheckInput},
    crate::gitlab::report::StoredCheck,
    crate::gitlab::token::GitlabToken,
    crate::state::AppState,
    crate::store::{integrations, StoreError},
    crate::wizard::step_href,
    crate::workspace::{audit, Action},
};

/// Checks a GitLab connection: `POST /api/gitlab/validate`, form fields `base_url`, `token` and
/// optionally `ca_pem` (a private CA, PEM). Answers the [`Report`] as JSON, 200 even when checks
/// fail. A browser posting the form is redirected: to step 13 once the connection is saved in the
/// current workspace (no check failed nor warned), else back to step 12 with the report (and, when
/// only warnings were found, an "Integrate anyway" button; when the workspace already has this
/// instance and GitLab user, an offer to replace that connection's token). The token is never in
/// the answer, a URL or a log.
#[server(prefix = "/api", endpoint = "gitlab/validate")]
pub async fn validate(
    base_url: Option<String>,
    token: Option<String>,
    ca_pem: Option<String>,
) -> Result<Report, ApiError> {
    let state = state()?;
    let viewer = viewer()?;
    let browser = from_browser();
    // A browser saves into the current workspace: only an owner or admin may.
    let workspace = if browser { Some(workspace_for(&viewer, None, Action::ManageConnections)?) } else { None };
    let typed_base_url = base_url.clone().unwrap_or_default();
    if let Err(refused) = limit_checks(&state, &viewer) {
        let base = BaseUrl::parse(&typed_base_url).ok();
        to_page(with_query(&step_href(12, base.as_ref()), "limited", &refused.wait.to_string()));
        return Err(refused.into());
    }
    if !browser && (base_url.is_none() || token.is_none()) {
        return Err(ApiError::bad_request("Send the form fields base_url and token (form-urlencoded)."));
    }
    let typed_ca = ca_pem.unwrap_or_default();
    let token = GitlabToken::parse(token.as_deref().unwrap_or_default());
    let input = CheckInput { base_url: &typed_base_url, token, extra_ca_pem: Some(&typed_ca) };
    let report = check::run(&state.outbound, &input, today()).await;
    let Some(workspace) = workspace else {
        return Ok(report);
    };
    // Saved or kept only when it is a usable CA: junk is reported (above), never stored.
    let usable_ca = typed_ca.trim().is_empty() || crate::gitlab::outbound::parse_ca(&typed_ca).is_ok();
    let ca_pem = if usable_ca { typed_ca.clone() } else { String::new() };
    // A browser: save when nothing needs a decision, else show the report on step 12.
    let verdict = connect::judge(&report, input.token.is_ok());
    let token = input.token.ok();
    let base = BaseUrl::parse(&report.base_url).ok();
    let check = StoredCheck { report: report.clone(), typed_base_url, extra_ca_pem: ca_pem.clone() };
    match token {
        Some(token) if verdict == Verdict::Save => {
            let saved =
                integrations::save(&state.db, &state.keys, &workspace.id, &viewer.user.id, &report, &token, &ca_pem)
                    .await?;
            // A conflict was redirected to step 12 already; the browser needs no error.
            let _ = after_save(&state, &viewer, &workspace.id, saved, Some((check, &token))).await;
        }
        token => {
            let keep = token.filter(|_| verdict.keeps_token());
            let id = integrations::put_check(&state.db, &state.keys, &viewer.user.id, &check, keep.as_ref()).await?;
            let mut href = with_query(&step_href(12, base.as_ref()), "check", &id);
            // It works, with warnings, for an instance and user the workspace has already:
            // step 12 offers that connection the token instead of "Integrate anyway".
            if let Verdict::AskToAccept { existing_user: Some(user) } = &verdict {
                let found = integrations::find_by_instance(&state.db, &workspace.id, &report.base_url, user).await?;
                if let Some(found) = found {
                    href = with_query(&href, "exists", &found.id);
                }
            }
            leptos_axum::redirect(&href);
        }
    }
    Ok(report)
}

/// After a save: step 13 showing the saved connection, or step 12 offering to replace the
/// one the workspace already has (the checked token waits, sealed, in the kept check).
#[cfg(feature = "ssr")]
async fn after_save(
    state: &AppState,
    viewer: &Viewer,
    workspace_id: &str,
    saved: integrations::Saved,
    check: Option<(StoredCheck, &GitlabToken)>,
) -> Result<Integration, ApiError> {
    match saved {
        integrations::Saved::Saved(saved) => {
            audit(state, workspace_id, viewer, audit::CONNECTION_SAVED, &named(&saved)).await;
            super::embed::completed(state, viewer.embed.as_ref(), workspace_id, &saved.id).await;
            // Its groups and projects are listed meanwhile, for the picker after step 13.
            if let Err(e) = crate::discovery::start(state, workspace_id, &saved.id).await {
                tracing::error!(error = %e, "cannot start discovery");
            }
            let base = BaseUrl::parse(&saved.base_url).ok();
            to_page(with_query(&step_href(13, base.as_ref()), "connection", &saved.id));
            Ok(saved)
        }
        integrations::Saved::Exists(existing) => {
            if from_browser() {
                if let Some((check, token)) = check {
                    let base = BaseUrl::parse(&check.report.base_url).ok();
                    let id =
                        integrations::put_check(&state.db, &state.keys, &viewer.user.id, &check, Some(token)).await?;
                    let href = with_query(&step_href(12, base.as_ref()), "check", &id);
                    leptos_axum::redirect(&with_query(&href, "exists", &existing.id));
                }
            }
            Err(ApiError::conflict(format!(
                "This workspace already has a connection to {} as @{} (id {}): replace its token instead.",
                existing.base_url, existing.username, existing.id
            )))
        }
        integrations::Saved::Gone => Err(ApiError::not_found("The connection went away meanwhile: connect again.")),
        integrations::Saved::Full => {
            to_page(with_query(crate::routes::SETTINGS_INTEGRATIONS, "full", "1"));
            Err(ApiError::conflict(integrations::full_message()))
        }
    }
}

/// Saves the connection of a check that passed with warnings: `POST /api/gitlab/accept`, `check`;
/// with `replace` (a connection's id), swaps the checked token into that connection instead.
#[server(prefix = "/api", endpoint = "gitlab/accept")]
pub async fn accept_warnings(check: String, replace: Option<String>) -> Result<Integration, ApiError> {
    let check_id = check;
    let state = state()?;
    let viewer = viewer()?;
    let kept = integrations::get_check(&state.db, &state.keys, &viewer.user.id, &check_id).await?;
    let Some((check, Some(token))) = kept.filter(|(c, t)| connect::may_accept(&c.report, t.is_some())) else {
        to_page(step_href(12, None));
        return Err(ApiError::not_found("This check is no longer available: check the connection again."));
    };
    if let Some(replace) = replace.filter(|r| !r.trim().is_empty()) {
        let target = connection_for(&state, &viewer, Some(&replace), Action::ManageConnections).await?;
        if connect::may_swap_into(&check.report, &target.base_url).is_err() {
            return Err(ApiError::bad_request(
                "This check was for another GitLab than the connection: check the token against it instead.",
            ));
        }
        let saved =
            integrations::replace(&state.db, &state.keys, &target.workspace_id, &target.id, &check.report, &token)
                .await?;
        let integrations::Saved::Saved(saved) = saved else {
            return Err(ApiError::conflict("The connection changed meanwhile: try again."));
        };
        integrations::delete_check(&state.db, &viewer.user.id, &check_id).await?;
        audit(&state, &saved.workspace_id, &viewer, audit::TOKEN_REPLACED, &named(&saved)).await;
        super::embed::completed(&state, viewer.embed.as_ref(), &saved.workspace_id, &saved.id).await;
        to_page(with_query(&crate::routes::connection(&saved.id), "replaced", "1"));
        return Ok(saved);
    }
    let workspace = workspace_for(&viewer, None, Action::ManageConnections)?;
    let saved = integrations::save(
        &state.db,
        &state.keys,
        &workspace.id,
        &viewer.user.id,
        &check.report,
        &token,
        &check.extra_ca_pem,
    )
    .await?;
    if matches!(saved, integrations::Saved::Saved(_)) {
        integrations::delete_check(&state.db, &viewer.user.id, &check_id).await?;
    } else if !matches!(saved, integrations::Saved::Full) {
        // Still there, with its token: step 12 offers to replace the existing connection.
        let exists = match &saved {
            integrations::Saved::Exists(e) => e.id.clone(),
            _ => String::new(),
        };
        let base = BaseUrl::parse(&check.report.base_url).ok();
        let href = with_query(&step_href(12, base.as_ref()), "check", &check_id);
        to_page(with_query(&href, "exists", &exists));
    }
    after_save(&state, &viewer, &workspace.id, saved, None).await
}

/// Runs every check again with the stored token: `POST /api/gitlab/recheck`, `id` (the
/// connection; may be left out when the current workspace has only one).
#[server(prefix = "/api", endpoint = "gitlab/recheck")]
pub async fn recheck(id: Option<String>) -> Result<Report, ApiError> {
    let state = state()?;
    let viewer = viewer()?;
    let integration = connection_for(&state, &viewer, id.as_deref(), Action::ManageConnections).await?;
    limit_checks_on_page(&state, &viewer, &crate::routes::connection(&integration.id))?;
    let Some(report) = crate::connections::recheck(&state, &integration.workspace_id, &integration.id).await? else {
        return Err(not_connected());
    };
    audit(&state, &integration.workspace_id, &viewer, audit::CONNECTION_RECHECKED, &named(&integration)).await;
    to_page(with_query(&crate::routes::connection(&integration.id), "rechecked", "1"));
    Ok(report)
}

/// Checks a new token against a connection's instance and, when no check fails, swaps it in:
/// `POST /api/gitlab/replace`, `id`, `token`.
#[server(prefix = "/api", endpoint = "gitlab/replace")]
pub async fn replace_token(id: Option<String>, token: Option<String>) -> Result<Report, ApiError> {
    let state = state()?;
    let viewer = viewer()?;
    let target = connection_for(&state, &viewer, id.as_deref(), Action::ManageConnections).await?;
    let page = crate::routes::connection(&target.id);
    limit_checks_on_page(&state, &viewer, &page)?;
    // The saved row must open: its address and CA decide where the new token goes.
    let saved = match integrations::with_token(&state.db, &state.keys, &target.workspace_id, &target.id).await {
        Err(StoreError::Crypto(_)) => {
            to_page(&page);
            return Err(ApiError::bad_request(crate::connections::UNUSABLE_TOKEN));
        }
        other => other?,
    };
    let Some((integration, _, ca_pem)) = saved else {
        return Err(not_connected());
    };
    let token = GitlabToken::parse(token.as_deref().unwrap_or_default());
    let input = CheckInput { base_url: &integration.base_url, token, extra_ca_pem: Some(&ca_pem) };
    let report = check::run(&state.outbound, &input, today()).await;
    // The check comes first; the swap only when it allows.
    let swap = connect::replacement(&report, input.token.is_ok()) == Replacement::Swap;
    match input.token.ok().filter(|_| swap) {
        Some(token) => {
            let saved = integrations::replace(
                &state.db,
                &state.keys,
                &integration.workspace_id,
                &integration.id,
                &report,
                &token,
            )
            .await?;
            match saved {
                integrations::Saved::Saved(saved) => {
                    audit(&state, &saved.workspace_id, &viewer, audit::TOKEN_REPLACED, &named(&saved)).await;
                    super::embed::completed(&state, viewer.embed.as_ref(), &saved.workspace_id, &saved.id).await;
                    to_page(with_query(&page, "replaced", "1"));
                }
                integrations::Saved::Exists(other) => {
                    to_page(with_query(&page, "clash", &other.id));
                    return Err(ApiError::conflict(format!(
                        "This token belongs to @{}, whom another connection of this workspace (id {}) uses already. Nothing was changed.",
                        other.username, other.id
                    )));
                }
                integrations::Saved::Gone | integrations::Saved::Full => return Err(not_connected()),
            }
        }
        None if from_browser() => {
            let check = StoredCheck {
                report: report.clone(),
                typed_base_url: integration.base_url.clone(),
                extra_ca_pem: ca_pem,
            };
            let id = integrations::put_check(&state.db, &state.keys, &viewer.user.id, &check, None).await?;
            leptos_axum::redirect(&with_query(&page, "check", &id));
        }
        None => {}
    }
    Ok(report)
}
