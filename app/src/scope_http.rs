//! The scope's HTTP side: the JSON API (`/api/gitlab/connections/{id}/scope[/refresh|/preview]`)
//! and the picker's form (`POST /integrations/gitlab/connections/{id}/scope`). Thin: find the
//! connection through the caller's membership, check the role, call `discovery` and the store.
//!
//! The middleware (`auth::ssr::middleware`) has identified the caller (session or API token) and
//! refused cross-site state changes before these run.

use crate::auth::Viewer;
use crate::discovery::{self, PickerForm, ScopeAnswer};
use crate::gitlab::scope::{Filter, Selection};
use crate::integration::Integration;
use crate::state::AppState;
use crate::store::scopes::{self, Scope};
use crate::store::{integrations, workspaces, StoreError};
use crate::workspace::{audit, Action};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use std::collections::HashMap;

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "error": kind, "message": message }).to_string(),
    )
        .into_response()
}

fn stored(e: StoreError) -> Response {
    tracing::error!(error = %e, "storage failed");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "Something went wrong on Onramp's side. Try again in a moment.",
    )
}

fn json<T: serde::Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_string(body) {
        Ok(text) => (status, [(header::CONTENT_TYPE, "application/json")], text).into_response(),
        Err(e) => stored(StoreError::Config(e.to_string())),
    }
}

/// The caller and the connection, when the caller is a member of its workspace and their role
/// allows `action`. Another workspace's connection is answered like one that does not exist.
async fn connection(
    state: &AppState,
    viewer: Option<Extension<Viewer>>,
    id: &str,
    action: Action,
) -> Result<(Viewer, Integration), Response> {
    let Some(Extension(viewer)) = viewer else {
        return Err(error(StatusCode::UNAUTHORIZED, "unauthorized", "Log in to Onramp, or send an Onramp API token."));
    };
    let found = integrations::find_for_user(&state.db, &viewer.user.id, id).await.map_err(stored)?;
    let Some((integration, role)) = found else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "not_found",
            "There is no connection with this id in your workspaces (GET /api/integrations lists them).",
        ));
    };
    if !role.may(action) {
        return Err(error(
            StatusCode::FORBIDDEN,
            "forbidden",
            &format!(
                "You are {} in this workspace: choosing what a connection reads needs an owner or admin.",
                role.label().to_lowercase()
            ),
        ));
    }
    Ok((viewer, integration))
}

/// [`connection`] for work that sends requests to GitLab: it also counts against the caller's
/// connection-check budget.
async fn connection_limited(
    state: &AppState,
    viewer: Option<Extension<Viewer>>,
    id: &str,
    action: Action,
) -> Result<(Viewer, Integration), Response> {
    let (viewer, integration) = connection(state, viewer, id, action).await?;
    state.checks_per_user.check(&viewer.user.id).map_err(rate_limited)?;
    Ok((viewer, integration))
}

fn rate_limited(wait: u64) -> Response {
    let mut answer = error(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        &format!("Too many requests to GitLab for you. Try again in {wait} seconds."),
    );
    answer.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait));
    answer
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
/// saved selection applied. Paging: `page`, `per_page` (default and most: 10,000); filters as
/// [`filter_of`]. The first call for a connection starts its discovery.
pub async fn get_scope(
    State(state): State<AppState>,
    viewer: Option<Extension<Viewer>>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let integration = match connection(&state, viewer, &id, Action::ViewConnections).await {
        Ok((_, i)) => i,
        Err(answer) => return answer,
    };
    let (ws, id) = (integration.workspace_id.as_str(), integration.id.as_str());
    let mut scope = match scopes::find(&state.db, ws, id).await {
        Ok(s) => s,
        Err(e) => return stored(e),
    };
    let never = scope.as_ref().is_none_or(Scope::never_ran);
    if never {
        if let Err(e) = discovery::start(&state, ws, id).await {
            return stored(e);
        }
        scope = match scopes::find(&state.db, ws, id).await {
            Ok(s) => s,
            Err(e) => return stored(e),
        };
    }
    let Some(scope) = scope else { return stored(StoreError::Config("the scope row went away".into())) };
    let snapshot = match scope.discovered_at {
        Some(_) => match scopes::snapshot(&state.db, ws, id).await {
            Ok(s) => s,
            Err(e) => return stored(e),
        },
        None => None,
    };
    let filter = filter_of(&query, true);
    let per_page = number(&query, "per_page", discovery::MAX_PER_PAGE);
    let answer = ScopeAnswer::new(&scope, snapshot.as_ref(), &filter, number(&query, "page", 1), per_page);
    json(StatusCode::OK, &answer)
}

/// `PUT /api/gitlab/connections/{id}/scope` with `{"groups": [...], "projects": [...],
/// "exclude": [...]}` (full paths): sets the selection. Paths must be among those discovered.
pub async fn put_scope(
    State(state): State<AppState>,
    viewer: Option<Extension<Viewer>>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let (viewer, integration) = match connection(&state, viewer, &id, Action::ManageConnections).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let selection: Selection = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                &format!(
                    "Send JSON like {{\"groups\": [\"acme/platform\"], \"projects\": [\"jdoe/dotfiles\"], \"exclude\": \
                     [\"acme/platform/worker\"]}} (full paths): {e}"
                ),
            )
        }
    };
    let (ws, id) = (integration.workspace_id.as_str(), integration.id.as_str());
    let snapshot = match scopes::snapshot(&state.db, ws, id).await {
        Ok(s) => s,
        Err(e) => return stored(e),
    };
    if let Err(why) = selection.validate(snapshot.as_ref()) {
        return error(StatusCode::BAD_REQUEST, "bad_request", &why);
    }
    let selection = selection.tidy();
    if let Err(e) = scopes::save_selection(&state.db, ws, id, &selection).await {
        return stored(e);
    }
    record(&state, &viewer, &integration).await;
    json(StatusCode::OK, &selection)
}

async fn record(state: &AppState, viewer: &Viewer, integration: &Integration) {
    let actor = workspaces::Actor { email: viewer.user.email.clone(), ip: String::new() };
    let target = format!("{} as @{}", integration.base_url, integration.username);
    if let Err(e) = workspaces::record(&state.db, &integration.workspace_id, &actor, audit::SCOPE_SAVED, &target).await
    {
        tracing::error!(error = %e, "cannot record an audit event");
    }
}

/// `POST /api/gitlab/connections/{id}/scope/refresh`: starts discovery again (202; 200 with
/// `"started": false` when one is running already).
pub async fn refresh(
    State(state): State<AppState>,
    viewer: Option<Extension<Viewer>>,
    Path(id): Path<String>,
) -> Response {
    let integration = match connection_limited(&state, viewer, &id, Action::ManageConnections).await {
        Ok((_, i)) => i,
        Err(answer) => return answer,
    };
    match discovery::start(&state, &integration.workspace_id, &integration.id).await {
        Ok(true) => json(StatusCode::ACCEPTED, &serde_json::json!({"started": true, "state": "discovering"})),
        Ok(false) => json(StatusCode::OK, &serde_json::json!({"started": false, "state": "discovering"})),
        Err(e) => stored(e),
    }
}

/// `GET /api/gitlab/connections/{id}/scope/preview`: counts of the last 90 days for the saved
/// selection's projects (at most the first 200).
pub async fn preview(
    State(state): State<AppState>,
    viewer: Option<Extension<Viewer>>,
    Path(id): Path<String>,
) -> Response {
    let integration = match connection_limited(&state, viewer, &id, Action::ViewConnections).await {
        Ok((_, i)) => i,
        Err(answer) => return answer,
    };
    let scope = match scopes::find(&state.db, &integration.workspace_id, &integration.id).await {
        Ok(s) => s,
        Err(e) => return stored(e),
    };
    let selection = scope.map(|s| s.selection).unwrap_or_default();
    match discovery::preview(&state, &integration, &selection).await {
        Ok(Ok(preview)) => json(StatusCode::OK, &preview),
        Ok(Err(why)) => error(StatusCode::CONFLICT, "not_ready", &why),
        Err(e) => stored(e),
    }
}

fn picker_href(id: &str, filter: &Filter, page: usize, suffix: &str) -> String {
    crate::pages::scope_href(id, filter, page, 1, suffix)
}

/// `POST /integrations/gitlab/connections/{id}/scope`: the picker's form (with or without
/// JavaScript). Applies the ticked and unticked boxes to the draft, then: back to the picker,
/// to the preview, or (save) the draft becomes the selection and the connection's page shows it.
pub async fn picker_form(
    State(state): State<AppState>,
    viewer: Option<Extension<Viewer>>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if viewer.is_none() {
        return Redirect::to("/login").into_response();
    }
    let (viewer, integration) = match connection(&state, viewer, &id, Action::ManageConnections).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
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
    let (scope, snapshot) = match (scopes::find(&state.db, ws, cid).await, scopes::snapshot(&state.db, ws, cid).await) {
        (Ok(scope), Ok(snapshot)) => (scope, snapshot),
        (Err(e), _) | (_, Err(e)) => return stored(e),
    };
    let Some(snapshot) = snapshot else {
        return Redirect::to(&picker_href(cid, &form.filter, 1, "")).into_response();
    };
    let saved = scope.as_ref().map(|s| s.selection.clone()).unwrap_or_default();
    let editing = scope.as_ref().map(|s| s.editing().clone()).unwrap_or_default();
    if form.action == "discard" {
        return match scopes::save_draft(&state.db, ws, cid, None).await {
            Ok(_) => Redirect::to(&picker_href(cid, &form.filter, page, "")).into_response(),
            Err(e) => stored(e),
        };
    }
    let edited = discovery::apply_form(editing, &form, &snapshot);
    let result = if form.action == "save" {
        let done = scopes::save_selection(&state.db, ws, cid, &edited).await;
        if done.is_ok() {
            record(&state, &viewer, &integration).await;
            // The connection's page shows what the saved selection brings: counted now unless
            // the preview before saving counted this very selection.
            let counted = scope.as_ref().and_then(|s| s.preview_of(&edited)).is_some();
            if !counted && !edited.is_empty() && state.checks_per_user.check(&viewer.user.id).is_ok() {
                let (state, integration, edited) = (state.clone(), integration.clone(), edited.clone());
                tokio::spawn(async move {
                    if let Err(e) = discovery::preview(&state, &integration, &edited).await {
                        tracing::error!(error = %e, "cannot keep a preview");
                    }
                });
            }
        }
        done
    } else {
        scopes::save_draft(&state.db, ws, cid, (edited != saved).then_some(&edited)).await
    };
    if let Err(e) = result {
        return stored(e);
    }
    let to = match form.action.as_str() {
        "save" => format!("/integrations/gitlab/connections/{cid}?scope=saved#scope"),
        "preview" => picker_href(cid, &form.filter, page, "/preview"),
        _ => picker_href(cid, &form.filter, page, "") + "#projects",
    };
    Redirect::to(&to).into_response()
}

/// `POST /integrations/gitlab/connections/{id}/scope/refresh`: the picker's "Refresh" button.
pub async fn picker_refresh(
    State(state): State<AppState>,
    viewer: Option<Extension<Viewer>>,
    Path(id): Path<String>,
) -> Response {
    if viewer.is_none() {
        return Redirect::to("/login").into_response();
    }
    let (viewer, integration) = match connection(&state, viewer, &id, Action::ManageConnections).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let href = picker_href(&integration.id, &Filter::default(), 1, "");
    if let Err(wait) = state.checks_per_user.check(&viewer.user.id) {
        return Redirect::to(&format!("{href}?limited={wait}")).into_response();
    }
    match discovery::start(&state, &integration.workspace_id, &integration.id).await {
        Ok(_) => Redirect::to(&href).into_response(),
        Err(e) => stored(e),
    }
}
