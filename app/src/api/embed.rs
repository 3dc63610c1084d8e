//! The embed (issue 22): `POST /api/v1/connect_sessions` (a platform sends its end user into the
//! wizard), `GET /api/v1/connect_sessions/{id}` (where that user is), and the link itself,
//! `GET /connect/{secret}`, which signs the end user in once and opens step 5. The rules are in
//! [`crate::embed`]; the rows in [`crate::store::connect_sessions`].

use super::error::ApiError;
use super::platform::{allowed, json, rfc3339, PlatformCaller};
use crate::client::ClientInfo;
use crate::embed::{ConnectRequest, ConnectSpec, SessionStatus};
use crate::platform::KeyScope;
use crate::state::AppState;
use crate::store::connect_sessions::{self, Opened};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Json};
use serde::Serialize;

/// The answer to `POST /api/v1/connect_sessions`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedOut {
    pub id: String,
    /// Send the end user's browser here (a redirect). Single use; it holds a secret: never log it.
    pub url: String,
    pub workspace_id: String,
    /// RFC 3339: the link works until then.
    pub expires_at: String,
}

/// A connect session as its platform reads it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionOut {
    pub id: String,
    pub status: SessionStatus,
    pub workspace_id: String,
    /// Once `completed`: the connection the end user saved.
    pub connection_id: Option<String>,
    pub created_at: String,
    pub expires_at: String,
    pub opened_at: Option<String>,
    pub completed_at: Option<String>,
}

/// The body as JSON, or a 400 that says what is wrong with it.
pub(crate) fn body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(b)| b)
        .map_err(|e| ApiError::bad_request(format!("The body is not the JSON this call takes ({}).", e.body_text())))
}

/// `POST /api/v1/connect_sessions` (`connect_sessions:write`): 201 with the link to send the end
/// user to.
#[utoipa::path(post, path = "/api/v1/connect_sessions", tag = "connect sessions", request_body = ConnectRequest,
    responses((status = 201, body = CreatedOut), (status = "4XX", body = ApiError)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Option<Extension<PlatformCaller>>,
    client: Option<Extension<ClientInfo>>,
    headers: HeaderMap,
    request: Result<Json<ConnectRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let key = allowed(&state, caller, KeyScope::ConnectSessionsWrite)?;
    let request = body(request)?;
    let spec =
        ConnectSpec::parse(&request, key.workspace_id.is_none(), &key.return_origins).map_err(ApiError::bad_request)?;
    let created = connect_sessions::create(&state.db, &key, &spec).await?;
    let https = client.as_ref().is_some_and(|Extension(c)| c.https);
    let origin = crate::auth::ssr::public_origin(state.settings.public_url.as_deref(), &headers, https);
    super::platform::audit(
        &state,
        &key,
        client,
        &created.workspace_id,
        &format!("sent {} into the wizard (connect session {})", spec.email, created.id),
    )
    .await;
    let out = CreatedOut {
        url: format!("{origin}{}", crate::routes::connect_link(&created.secret)),
        id: created.id,
        workspace_id: created.workspace_id,
        expires_at: rfc3339(created.expires_at),
    };
    Ok((StatusCode::CREATED, json(&out)).into_response())
}

/// `GET /api/v1/connect_sessions/{id}` (`connect_sessions:write`): pending, opened, completed
/// (with the connection) or expired. Another key's session is a 404.
#[utoipa::path(get, path = "/api/v1/connect_sessions/{id}", tag = "connect sessions", params(("id" = String, Path)),
    responses((status = 200, body = SessionOut), (status = "4XX", body = ApiError)))]
pub async fn status(
    State(state): State<AppState>,
    caller: Option<Extension<PlatformCaller>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let key = allowed(&state, caller, KeyScope::ConnectSessionsWrite)?;
    let found = connect_sessions::find(&state.db, &key, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("This key made no connect session with this id."))?;
    Ok(json(&SessionOut {
        id: found.id,
        status: found.status,
        workspace_id: found.workspace_id,
        connection_id: found.connection_id,
        created_at: rfc3339(found.created_at),
        expires_at: rfc3339(found.expires_at),
        opened_at: found.opened_at.map(rfc3339),
        completed_at: found.completed_at.map(rfc3339),
    }))
}

/// `GET /connect/{secret}`: spends the link, signs its end user in (a new session cookie: whoever
/// was signed in in this browser before is not any more) and redirects to step 5, so the secret
/// leaves the address bar at once. A used or expired link goes to the platform's `refresh_url`
/// when it gave one, else to a page that says so; an unknown one is a 404.
pub async fn open(
    State(state): State<AppState>,
    client: Option<Extension<ClientInfo>>,
    Path(secret): Path<String>,
) -> Result<Response, ApiError> {
    let https = client.as_ref().is_some_and(|Extension(c)| c.https);
    let opened = if crate::routes::secret_shaped(&secret) {
        connect_sessions::open(&state.db, &secret).await?
    } else {
        Opened::Unknown
    };
    let no_trace = [(header::REFERRER_POLICY, "no-referrer"), (header::CACHE_CONTROL, "no-store")];
    Ok(match opened {
        Opened::Opened { session_secret, base_url } => {
            let base = base_url.as_deref().and_then(|b| crate::gitlab::base_url::BaseUrl::parse(b).ok());
            let cookie = crate::auth::ssr::session_cookie(&session_secret, https);
            let step = crate::wizard::step_href(5, base.as_ref());
            (no_trace, [(header::SET_COOKIE, cookie)], Redirect::to(&step)).into_response()
        }
        Opened::Spent { refresh_url: Some(url) } => (no_trace, Redirect::to(&url)).into_response(),
        Opened::Spent { refresh_url: None } => (no_trace, Redirect::to(crate::routes::CONNECT_ENDED)).into_response(),
        Opened::Unknown => (StatusCode::NOT_FOUND, no_trace, "Not found").into_response(),
    })
}

/// A connection was saved, or its token replaced, by a browser that a connect session opened
/// for this workspace: the session is completed (once; its platform hears
/// `connect_session.completed`). A failure is logged: the connection is saved either way.
pub async fn completed(state: &AppState, embed: Option<&crate::embed::Embed>, workspace_id: &str, connection_id: &str) {
    let Some(embed) = embed.filter(|e| e.workspace_id == workspace_id) else { return };
    if let Err(e) = connect_sessions::complete(&state.db, &embed.session_id, workspace_id, connection_id).await {
        tracing::error!(error = %e, "cannot complete a connect session");
    }
}
