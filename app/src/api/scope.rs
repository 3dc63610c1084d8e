//! What a connection reads, over HTTP: the JSON API (`/api/gitlab/connections/{id}/scope`,
//! `…/scope/refresh`, `…/scope/preview`) and the picker's form posts
//! (`POST /integrations/gitlab/connections/{id}/scope[/refresh]`). Plain axum handlers, since their
//! paths carry the id, on the server functions' [`ApiError`], lookup ([`caller::connection`]) and
//! rate limits. Thin: find the connection through the caller's membership, call `discovery` and the
//! store. The JSON API always answers JSON; the picker (a form only a browser posts) always answers
//! with a page (303), except for a connection the caller cannot reach, answered as the API does.
//!
//! The middleware (`auth::ssr::middleware`) has identified the caller (session or API token) and
//! refused cross-site state changes before these run.

use super::caller::{self, signed_in};
use super::error::{ApiError, ApiErrorKind, RateLimited};
use crate::auth::Viewer;
use crate::client::ClientInfo;
use crate::discovery::{self, off_the_workers, PickerForm, ScopeAnswer};
use crate::gitlab::scope::{Counts, Filter, Selection};
use crate::integration::Integration;
use crate::state::AppState;
use crate::store::scopes::{self, Scope};
use crate::store::workspaces;
use crate::workspace::{audit, Action};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use std::collections::HashMap;

/// What the scope's GitLab work is counted as ("Too many requests to GitLab for you.").
const GITLAB_REQUESTS: &str = "requests to GitLab for you";

fn json<T: serde::Serialize>(status: StatusCode, body: &T) -> Result<Response, ApiError> {
    let text = serde_json::to_string(body).map_err(|e| {
        tracing::error!(error = %e, "cannot write an answer");
        ApiError::internal("Something went wrong on Onramp's side. Try again in a moment.")
    })?;
    Ok((status, [(header::CONTENT_TYPE, "application/json")], text).into_response())
}

/// The caller and the connection (see [`caller::connection`]).
async fn connection(
    state: &AppState,
    viewer: Option<Extension<Viewer>>,
    id: &str,
    action: Action,
) -> Result<(Viewer, Integration), ApiError> {
    let viewer = signed_in(viewer.map(|Extension(v)| v))?;
    let integration = caller::connection(state, &viewer, id, action).await?;
    Ok((viewer, integration))
}

/// [`connection`] for work that sends requests to GitLab: it also counts against the caller's
/// connection-check budget.
async fn connection_limited(
    state: &AppState,
    viewer: Option<Extension<Viewer>>,
    id: &str,
    action: Action,
) -> Result<(Viewer, Integration), ApiError> {
    let (viewer, integration) = connection(state, viewer, id, action).await?;
    state.checks_per_user.check(&viewer.user.id).map_err(RateLimited::of(GITLAB_REQUESTS))?;
    Ok((viewer, integration))
}

/// The filter of a query (see [`Filter::from_query`]): the API shows archived projects unless
/// `archived=false`, the picker hides them unless asked.
fn filter_of(query: &HashMap<String, String>, archived_by_default: bool) -> Filter {
    Filter::from_query(|k| query.get(k).cloned(), archived_by_default)
}

fn number(query: &HashMap<String, String>, key: &str, default: usize) -> usize {
    query.get(key).and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

/// `GET /api/gitlab/connections/{id}/scope`: where discovery stands and what it found, with the
/// saved selection applied. Paging: `page`, `per_page` (default and most: [`discovery::MAX_PER_PAGE`];
/// a larger size is clamped, and the answer's `per_page`, `next_page` and `Link: …; rel="next"` say
/// the size used); filters as [`filter_of`]. The first call for a connection starts its discovery.
pub async fn get_scope(
    State(state): State<AppState>,
    viewer: Option<Extension<Viewer>>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (_, integration) = connection(&state, viewer, &id, Action::ViewConnections).await?;
    let (ws, id) = (integration.workspace_id.as_str(), integration.id.as_str());
    let mut scope = scopes::find(&state.db, ws, id).await?;
    if scope.as_ref().is_none_or(Scope::never_ran) {
        discovery::start(&state, ws, id).await?;
        scope = scopes::find(&state.db, ws, id).await?;
    }
    let Some(scope) = scope else {
        tracing::error!("the scope row went away");
        return Err(ApiError::internal("Something went wrong on Onramp's side. Try again in a moment."));
    };
    let snapshot = match scope.discovered_at {
        Some(_) => scopes::snapshot(&state.db, ws, id).await?,
        None => None,
    };
    let filter = filter_of(&query, true);
    let (page, per_page) = (number(&query, "page", 1), number(&query, "per_page", discovery::MAX_PER_PAGE));
    let (answer, text) = off_the_workers(move || {
        let answer = ScopeAnswer::new(&scope, snapshot.as_deref(), &filter, page, per_page);
        let text = serde_json::to_string(&answer);
        (answer.next_page.map(|next| (next, answer.per_page)), text)
    })
    .await?;
    let text = text.map_err(|e| {
        tracing::error!(error = %e, "cannot write an answer");
        ApiError::internal("Something went wrong on Onramp's side. Try again in a moment.")
    })?;
    let mut response = (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], text).into_response();
    if let Some((next, per_page)) = answer {
        let mut next_query: Vec<(String, String)> =
            query.into_iter().filter(|(k, _)| k != "page" && k != "per_page").collect();
        next_query.sort();
        next_query.push(("per_page".into(), per_page.to_string()));
        next_query.push(("page".into(), next.to_string()));
        let encoded = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(next_query).finish();
        let link = format!("</api/gitlab/connections/{id}/scope?{encoded}>; rel=\"next\"");
        if let Ok(value) = header::HeaderValue::from_str(&link) {
            response.headers_mut().insert(header::LINK, value);
        }
    }
    Ok(response)
}

/// `PUT /api/gitlab/connections/{id}/scope` with `{"groups": [...], "projects": [...],
/// "exclude": [...]}` (full paths): sets the selection. Paths must be among those discovered, so
/// nothing is accepted before the first discovery finished (409).
pub async fn put_scope(
    State(state): State<AppState>,
    viewer: Option<Extension<Viewer>>,
    client: Option<Extension<ClientInfo>>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let (viewer, integration) = connection(&state, viewer, &id, Action::ManageConnections).await?;
    let (ws, id) = (integration.workspace_id.as_str(), integration.id.as_str());
    let Some(snapshot) = scopes::snapshot(&state.db, ws, id).await? else {
        return Err(ApiError::new(ApiErrorKind::NotReady, crate::gitlab::scope::NO_SNAPSHOT));
    };
    // Parsing, checking and tidying up to 60,000 paths: off the async workers.
    let checked = off_the_workers(move || {
        let selection: Selection = serde_json::from_slice(&body).map_err(|e| {
            format!(
                "Send JSON like {{\"groups\": [\"acme/platform\"], \"projects\": [\"jdoe/dotfiles\"], \"exclude\": \
                 [\"acme/platform/worker\"]}} (full paths): {e}"
            )
        })?;
        selection.validate(Some(&snapshot.snapshot))?;
        let selection = selection.tidy();
        let counts = Counts::of(&snapshot.snapshot, &selection, snapshot.version);
        Ok::<_, String>((selection, counts))
    })
    .await?;
    let (selection, counts) = checked.map_err(ApiError::bad_request)?;
    scopes::save_selection(&state.db, ws, id, &selection, Some(&counts)).await?;
    record(&state, &viewer, client, &integration).await;
    json(StatusCode::OK, &selection)
}

/// Records a saved selection in the audit log, with the client's address as the middleware
/// judged it (trusted proxies considered), like every other audit event.
async fn record(state: &AppState, viewer: &Viewer, client: Option<Extension<ClientInfo>>, integration: &Integration) {
    let ip = client.map(|Extension(c)| c.ip.to_string()).unwrap_or_default();
    let actor = workspaces::Actor { email: viewer.user.email.clone(), ip };
    caller::record(state, &integration.workspace_id, &actor, audit::SCOPE_SAVED, &caller::named(integration)).await;
}

/// `POST /api/gitlab/connections/{id}/scope/refresh`: starts discovery again (202; 200 with
/// `"started": false` when one is running already).
pub async fn refresh(
    State(state): State<AppState>,
    viewer: Option<Extension<Viewer>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (_, integration) = connection_limited(&state, viewer, &id, Action::ManageConnections).await?;
    let started = discovery::start(&state, &integration.workspace_id, &integration.id).await?;
    let status = if started { StatusCode::ACCEPTED } else { StatusCode::OK };
    json(status, &serde_json::json!({"started": started, "state": "discovering"}))
}

/// `GET /api/gitlab/connections/{id}/scope/preview`: counts of the last 90 days for the saved
/// selection's projects (at most the first 200). Owners and admins count (see
/// [`discovery::preview`]: one at a time, a fresh count reused, a budget per connection: 429
/// with `Retry-After` past it); a viewer reads the kept count, never asking GitLab.
pub async fn preview(
    State(state): State<AppState>,
    viewer: Option<Extension<Viewer>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (viewer, integration) = connection_limited(&state, viewer, &id, Action::ViewConnections).await?;
    let may_count =
        viewer.workspaces.iter().any(|m| m.id == integration.workspace_id && m.role.may(Action::ManageConnections));
    let scope = scopes::find(&state.db, &integration.workspace_id, &integration.id).await?;
    let selection = scope.map(|s| s.selection).unwrap_or_default();
    match discovery::preview(&state, &integration, &selection, may_count).await? {
        Ok(preview) => json(StatusCode::OK, &preview),
        Err(discovery::Refused { message, retry_after: Some(wait) }) => {
            Err(ApiError { retry_after: Some(wait), ..ApiError::new(ApiErrorKind::RateLimited, message) })
        }
        Err(discovery::Refused { message, retry_after: None }) => Err(ApiError::new(ApiErrorKind::NotReady, message)),
    }
}

fn picker_href(id: &str, filter: &Filter, page: usize, suffix: &str) -> String {
    crate::routes::scope_href(id, filter, page, 1, suffix)
}

/// `POST /integrations/gitlab/connections/{id}/scope`: the picker's form (with or without
/// JavaScript). Applies the ticked and unticked boxes to the draft, then: back to the picker,
/// to the preview, or (save) the draft becomes the selection and the connection's page shows it.
pub async fn picker_form(
    State(state): State<AppState>,
    viewer: Option<Extension<Viewer>>,
    client: Option<Extension<ClientInfo>>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Redirect, ApiError> {
    if viewer.is_none() {
        return Ok(Redirect::to("/login"));
    }
    let (viewer, integration) = connection(&state, viewer, &id, Action::ManageConnections).await?;
    let mut form = PickerForm::default();
    let mut query = HashMap::new();
    for (key, value) in url::form_urlencoded::parse(&body) {
        let value = value.into_owned();
        match key.as_ref() {
            "shown_group" => form.shown_groups.push(value),
            "was_group" => form.was_groups.push(value),
            "group_in" => form.groups.push(value),
            "shown_project" => form.shown_projects.push(value),
            "was_project" => form.was_projects.push(value),
            "project_in" => form.projects.push(value),
            "intent" => form.action = value,
            "q" | "role" | "archived" | "group" | "included" | "page" => {
                query.insert(key.into_owned(), value);
            }
            _ => {}
        }
    }
    form.filter = filter_of(&query, false);
    let page = number(&query, "page", 1);
    let (ws, cid) = (integration.workspace_id.as_str(), integration.id.as_str());
    let (scope, snapshot) = (scopes::find(&state.db, ws, cid).await, scopes::snapshot(&state.db, ws, cid).await);
    let (scope, snapshot) = (scope?, snapshot?);
    let Some(snapshot) = snapshot else {
        return Ok(Redirect::to(&picker_href(cid, &form.filter, 1, "")));
    };
    let saved = scope.as_ref().map(|s| s.selection.clone()).unwrap_or_default();
    let editing = scope.as_ref().map(|s| s.editing().clone()).unwrap_or_default();
    if form.action == "discard" {
        scopes::save_draft(&state.db, ws, cid, None).await?;
        return Ok(Redirect::to(&picker_href(cid, &form.filter, page, "")));
    }
    let form_for_work = form.clone();
    let (edited, counts) = off_the_workers(move || {
        let edited = discovery::apply_form(editing, &form_for_work, &snapshot);
        let counts =
            (form_for_work.action == "save").then(|| Counts::of(&snapshot.snapshot, &edited, snapshot.version));
        (edited, counts)
    })
    .await?;
    if form.action == "save" {
        scopes::save_selection(&state.db, ws, cid, &edited, counts.as_ref()).await?;
        record(&state, &viewer, client, &integration).await;
        // The connection's page shows what the saved selection brings: counted now unless
        // the preview before saving counted this very selection.
        let counted = scope.as_ref().and_then(|s| s.preview_of(&edited)).is_some();
        if !counted && !edited.is_empty() && state.checks_per_user.check(&viewer.user.id).is_ok() {
            let (state, integration, edited) = (state.clone(), integration.clone(), edited.clone());
            tokio::spawn(async move {
                if let Err(e) = discovery::preview(&state, &integration, &edited, true).await {
                    tracing::error!(error = %e, "cannot keep a preview");
                }
            });
        }
    } else {
        scopes::save_draft(&state.db, ws, cid, (edited != saved).then_some(&edited)).await?;
    }
    let to = match form.action.as_str() {
        "save" => format!("/integrations/gitlab/connections/{cid}?scope=saved#scope"),
        "preview" => picker_href(cid, &form.filter, page, "/preview"),
        _ => picker_href(cid, &form.filter, page, "") + "#projects",
    };
    Ok(Redirect::to(&to))
}

/// `POST /integrations/gitlab/connections/{id}/scope/refresh`: the picker's "Refresh" button.
pub async fn picker_refresh(
    State(state): State<AppState>,
    viewer: Option<Extension<Viewer>>,
    Path(id): Path<String>,
) -> Result<Redirect, ApiError> {
    if viewer.is_none() {
        return Ok(Redirect::to("/login"));
    }
    let (viewer, integration) = connection(&state, viewer, &id, Action::ManageConnections).await?;
    let href = picker_href(&integration.id, &Filter::default(), 1, "");
    if let Err(wait) = state.checks_per_user.check(&viewer.user.id) {
        return Ok(Redirect::to(&format!("{href}?limited={wait}")));
    }
    discovery::start(&state, &integration.workspace_id, &integration.id).await?;
    Ok(Redirect::to(&href))
}
