//! `/api/v1`: what a platform reads with its key (issue 22) — the workspaces it reaches and their
//! connections with their health, never a secret. Plain axum handlers. The middleware
//! (`auth::ssr::middleware`) identified the key ([`PlatformCaller`]) before these run; each
//! handler checks the scope the call needs (403 naming it), counts the call against the key's rate
//! limit, and finds what is asked for through the key ([`store::platform::tenant_of`]): another
//! platform's or another workspace's id is a 404, as if it did not exist. Lists are paged by
//! cursor: `{"data": [...], "next": "…" | null}`, `?limit=` up to 100.

use super::error::{ApiError, ApiErrorKind, RateLimited};
use crate::client::ClientInfo;
use crate::integration::Integration;
use crate::platform::{page_limit, Cursor, KeyScope};
use crate::state::AppState;
use crate::store::platform::{self, PlatformKey, Tenant};
use crate::store::{integrations, workspaces};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};

/// The platform key of a `/api/v1` call, put in the request by the middleware.
#[derive(Clone, Debug)]
pub struct PlatformCaller(pub PlatformKey);

/// What `/api/v1` calls are counted as when a key sends too many.
pub(crate) const CALLS: &str = "calls with this platform key";

/// The key, when it has `scope` and has calls left; else 403 naming the scope, or 429.
pub(crate) fn allowed(
    state: &AppState,
    caller: Option<Extension<PlatformCaller>>,
    scope: KeyScope,
) -> Result<PlatformKey, ApiError> {
    let Some(Extension(PlatformCaller(key))) = caller else {
        return Err(ApiError::new(ApiErrorKind::Unauthorized, "Send a platform key: Authorization: Bearer onp_…"));
    };
    key.scopes.require(scope).map_err(|message| ApiError::new(ApiErrorKind::Forbidden, message))?;
    state.platform_calls.check(&key.id).map_err(RateLimited::of(CALLS))?;
    Ok(key)
}

/// Records the key's use in the workspace it acted on (key name, client address). The answer does
/// not wait on a failure to record it: that is logged.
pub(crate) async fn audit(
    state: &AppState,
    key: &PlatformKey,
    client: Option<Extension<ClientInfo>>,
    workspace_id: &str,
    what: &str,
) {
    let actor = workspaces::Actor {
        email: format!("platform key “{}”", key.name),
        ip: client.map(|Extension(c)| c.ip.to_string()).unwrap_or_default(),
    };
    if let Err(e) =
        workspaces::record(&state.db, workspace_id, &actor, crate::workspace::audit::PLATFORM_READ, what).await
    {
        tracing::error!(error = %e, "cannot record an audit event");
    }
}

/// A page of a list.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Paged<T> {
    pub data: Vec<T>,
    /// Pass it as `?after=` for the next page; `null` on the last one.
    pub next: Option<String>,
}

/// `?after=` (a page's `next`) and `?limit=` (1–100, default 50), as the document names them.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct PageParams {
    after: Option<String>,
    limit: Option<u32>,
}

/// `?workspace_id=`: which workspace (a workspace-level key may leave it out).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct WorkspaceParam {
    workspace_id: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct PageQuery {
    pub after: Option<String>,
    pub limit: Option<String>,
    pub workspace_id: Option<String>,
}

impl PageQuery {
    pub(crate) fn bounds(&self) -> Result<(String, usize), ApiError> {
        let limit = page_limit(self.limit.as_deref()).map_err(ApiError::bad_request)?;
        let after = match self.after.as_deref().filter(|a| !a.is_empty()) {
            Some(cursor) => Cursor::decode(cursor).map_err(ApiError::bad_request)?.0,
            None => String::new(),
        };
        Ok((after, limit))
    }
}

/// Cuts a list fetched with one item more than the page holds: the page, and its `next`.
pub(crate) fn paged<T, K: Fn(&T) -> &str>(mut items: Vec<T>, limit: usize, key: K) -> Paged<T> {
    let next = (items.len() > limit).then(|| {
        items.truncate(limit);
        Cursor::encode(key(&items[limit - 1]))
    });
    Paged { data: items, next }
}

/// A workspace as `/api/v1` shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct WorkspaceOut {
    pub id: String,
    pub name: String,
    /// The platform's own id for it, as it gave it when creating a connect session.
    pub external_id: Option<String>,
    /// RFC 3339.
    pub created_at: String,
}

impl From<Tenant> for WorkspaceOut {
    fn from(t: Tenant) -> Self {
        WorkspaceOut { id: t.id, name: t.name, external_id: t.external_id, created_at: rfc3339(t.created_at) }
    }
}

/// Unix seconds as RFC 3339, as `/api/v1` writes times.
pub use crate::store::rfc3339;

pub(crate) fn json<T: Serialize>(body: &T) -> Response {
    // Nothing of it belongs in a cache between Onramp and the platform.
    ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

/// `GET /api/v1/workspaces`: the workspaces the key reaches (`connections:read`).
#[utoipa::path(get, path = "/api/v1/workspaces", tag = "connections", params(PageParams),
    responses((status = 200, body = Paged<WorkspaceOut>), (status = "4XX", body = ApiError)))]
pub async fn list_workspaces(
    State(state): State<AppState>,
    caller: Option<Extension<PlatformCaller>>,
    Query(query): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let key = allowed(&state, caller, KeyScope::ConnectionsRead)?;
    let (after, limit) = query.bounds()?;
    let found = platform::tenants(&state.db, &key, &after, limit as i64 + 1).await?;
    let page = paged(found.into_iter().map(WorkspaceOut::from).collect(), limit, |w| &w.id);
    Ok(json(&page))
}

/// One finding of a connection's last check.
#[derive(Serialize, utoipa::ToSchema)]
pub struct FindingOut {
    pub check: String,
    /// `pass`, `warn`, `fail` or `skipped`.
    #[schema(value_type = String)]
    pub status: crate::gitlab::report::Status,
    pub message: String,
    /// The wizard step that fixes it, and its address on this Onramp.
    pub fix_step: Option<u8>,
    pub fix_path: Option<String>,
}

/// A connection as `/api/v1` shows it: never its token.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ConnectionOut {
    pub id: String,
    pub workspace_id: String,
    /// The GitLab base URL collectors call (`…/api/v4` is under it).
    pub base_url: String,
    pub gitlab_version: Option<String>,
    /// The GitLab user the token acts as.
    pub gitlab_username: String,
    pub token_name: Option<String>,
    pub token_scopes: Vec<String>,
    /// `YYYY-MM-DD`, or `null` for a token without expiry.
    pub token_expires_at: Option<String>,
    pub health: HealthOut,
    /// When Onramp rotates the token, or why it cannot (then it reminds instead).
    pub rotation: RotationOut,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Serialize, Default, utoipa::ToSchema)]
pub struct RotationOut {
    /// `YYYY-MM-DD`: the day Onramp rotates the token, when it can.
    pub rotates_on: Option<String>,
    /// Why Onramp cannot rotate it, when it cannot.
    pub cannot: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct HealthOut {
    /// No check failed at the last check (warnings allowed).
    pub ok: bool,
    pub last_check_at: String,
    pub findings: Vec<FindingOut>,
}

impl From<Integration> for ConnectionOut {
    fn from(i: Integration) -> Self {
        let findings = i
            .last_report
            .checks
            .iter()
            .map(|c| FindingOut {
                check: c.id.as_str().to_owned(),
                status: c.status,
                message: c.message.clone(),
                fix_step: c.fix_step,
                fix_path: c.fix_step.map(|s| crate::wizard::step_href(s, None)),
            })
            .collect();
        ConnectionOut {
            id: i.id,
            workspace_id: i.workspace_id,
            base_url: i.base_url,
            gitlab_version: i.gitlab_version,
            gitlab_username: i.username,
            token_name: i.token_name,
            token_scopes: i.scopes,
            token_expires_at: i.expires_at,
            health: HealthOut { ok: i.last_check_ok, last_check_at: rfc3339(i.last_check_at), findings },
            rotation: RotationOut::default(),
            created_at: rfc3339(i.created_at),
            updated_at: rfc3339(i.updated_at),
        }
    }
}

/// A connection with its rotation plan.
async fn described(state: &AppState, integration: Integration) -> Result<ConnectionOut, ApiError> {
    let plan = crate::rotation::view(state, &integration).await?;
    let mut out = ConnectionOut::from(integration);
    out.rotation = RotationOut { rotates_on: plan.rotates_on, cannot: plan.cannot };
    Ok(out)
}

/// The workspace a call names, when the key reaches it; a workspace-level key may leave it out.
async fn tenant(state: &AppState, key: &PlatformKey, requested: Option<&str>) -> Result<Tenant, ApiError> {
    let id = match (requested.map(str::trim).filter(|w| !w.is_empty()), &key.workspace_id) {
        (Some(id), _) => id.to_owned(),
        (None, Some(own)) => own.clone(),
        (None, None) => {
            return Err(ApiError::bad_request(
                "Say which workspace: ?workspace_id=… (GET /api/v1/workspaces lists them).",
            ))
        }
    };
    platform::tenant_of(&state.db, key, &id).await?.ok_or_else(|| {
        ApiError::not_found("This key reaches no workspace with this id (GET /api/v1/workspaces lists them).")
    })
}

/// `GET /api/v1/connections?workspace_id=…`: a workspace's connections (`connections:read`).
#[utoipa::path(get, path = "/api/v1/connections", tag = "connections", params(PageParams, WorkspaceParam),
    responses((status = 200, body = Paged<ConnectionOut>), (status = "4XX", body = ApiError)))]
pub async fn list_connections(
    State(state): State<AppState>,
    caller: Option<Extension<PlatformCaller>>,
    client: Option<Extension<ClientInfo>>,
    Query(query): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let key = allowed(&state, caller, KeyScope::ConnectionsRead)?;
    let (after, limit) = query.bounds()?;
    let workspace = tenant(&state, &key, query.workspace_id.as_deref()).await?;
    // At most 50 connections a workspace (store::integrations), so one read and a cut.
    let mut all = integrations::list(&state.db, &workspace.id).await?;
    all.sort_by(|a, b| a.id.cmp(&b.id));
    all.retain(|i| i.id > after);
    all.truncate(limit + 1);
    let mut rest = Vec::with_capacity(all.len());
    for integration in all {
        rest.push(described(&state, integration).await?);
    }
    audit(&state, &key, client, &workspace.id, "listed the connections").await;
    Ok(json(&paged(rest, limit, |c| &c.id)))
}

/// `GET /api/v1/connections/{id}` (`connections:read`).
#[utoipa::path(get, path = "/api/v1/connections/{id}", tag = "connections", params(("id" = String, Path)),
    responses((status = 200, body = ConnectionOut), (status = "4XX", body = ApiError)))]
pub async fn get_connection(
    State(state): State<AppState>,
    caller: Option<Extension<PlatformCaller>>,
    client: Option<Extension<ClientInfo>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let key = allowed(&state, caller, KeyScope::ConnectionsRead)?;
    let integration = connection(&state, &key, &id).await?;
    audit(
        &state,
        &key,
        client,
        &integration.workspace_id,
        &format!("read the connection {}", crate::api::caller::named(&integration)),
    )
    .await;
    Ok(json(&described(&state, integration).await?))
}

/// What a collector needs to call GitLab. Only here does a token leave Onramp.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CredentialsOut {
    pub base_url: String,
    pub token: String,
    /// The PEM of the GitLab's private CA, when the connection has one.
    pub ca_pem: Option<String>,
    pub token_expires_at: Option<String>,
    pub rotates_at: Option<String>,
}

/// `GET /api/v1/connections/{id}/credentials` (`credentials:read`): the token, with
/// `Cache-Control: no-store`; 409 with the reason and the fixing step when it cannot be used.
/// Each read is an audit event in the connection's workspace.
#[utoipa::path(get, path = "/api/v1/connections/{id}/credentials", tag = "credentials",
    params(("id" = String, Path)),
    responses((status = 200, body = CredentialsOut), (status = "4XX", body = ApiError)))]
pub async fn credentials(
    State(state): State<AppState>,
    caller: Option<Extension<PlatformCaller>>,
    client: Option<Extension<ClientInfo>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let key = allowed(&state, caller, KeyScope::CredentialsRead)?;
    let integration = connection(&state, &key, &id).await?;
    let unusable = |why: String| ApiError::conflict(why);
    if !integration.last_check_ok {
        let failed = integration.last_report.failures().next();
        return Err(unusable(match failed {
            Some(f) => format!(
                "The token cannot be used: {} Fix it at step {} ({}), then re-check the connection.",
                f.message,
                f.fix_step.unwrap_or(7),
                crate::wizard::step_href(f.fix_step.unwrap_or(7), None)
            ),
            None => "The token failed its last check: re-check the connection in Onramp.".to_owned(),
        }));
    }
    let today = time::OffsetDateTime::now_utc().date();
    if integration.expires_at.as_deref().and_then(crate::gitlab::rotation::parse_date).is_some_and(|e| e <= today) {
        return Err(unusable(format!(
            "The token expired on {}. Replace it: make a new one at step 7 ({}).",
            integration.expires_at.as_deref().unwrap_or_default(),
            crate::wizard::step_href(7, None)
        )));
    }
    let opened = match integrations::with_token(&state.db, &state.keys, &integration.workspace_id, &integration.id).await {
        Ok(Some(found)) => found,
        Ok(None) => return Err(ApiError::not_found("This connection was disconnected just now.")),
        Err(crate::store::StoreError::Crypto(_)) => {
            return Err(unusable(format!(
                "Onramp cannot decrypt this connection's token (was the secret key changed?). Replace the token at step 7 ({}).",
                crate::wizard::step_href(7, None)
            )))
        }
        Err(e) => return Err(e.into()),
    };
    let (integration, token, ca_pem) = opened;
    let plan = crate::rotation::view(&state, &integration).await?;
    audit(
        &state,
        &key,
        client,
        &integration.workspace_id,
        &format!("read the token of {}", crate::api::caller::named(&integration)),
    )
    .await;
    let body = CredentialsOut {
        base_url: integration.base_url.clone(),
        token: token.expose().to_owned(),
        ca_pem: Some(ca_pem).filter(|p| !p.trim().is_empty()),
        token_expires_at: integration.expires_at.clone(),
        rotates_at: plan.rotates_on,
    };
    Ok(json(&body))
}

/// One chosen project, as a collector iterates over them.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ProjectOut {
    /// GitLab's numeric id (`/api/v4/projects/{id}`).
    pub id: u64,
    pub path_with_namespace: String,
    /// The token user's role: `guest`, `reporter`, `developer`, `maintainer` or `owner`.
    pub role: &'static str,
    pub archived: bool,
}

fn role_name(level: u8) -> &'static str {
    match level {
        50.. => "owner",
        40..=49 => "maintainer",
        30..=39 => "developer",
        20..=29 => "reporter",
        10..=19 => "guest",
        _ => "none",
    }
}

/// `GET /api/v1/connections/{id}/scope` (`connections:read`): the saved selection resolved against
/// the last discovery, the projects Onramp can read, ordered by path; 409 while nothing was chosen
/// or discovered.
#[utoipa::path(get, path = "/api/v1/connections/{id}/scope", tag = "connections",
    params(("id" = String, Path), PageParams),
    responses((status = 200, body = Paged<ProjectOut>), (status = "4XX", body = ApiError)))]
pub async fn scope(
    State(state): State<AppState>,
    caller: Option<Extension<PlatformCaller>>,
    client: Option<Extension<ClientInfo>>,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let key = allowed(&state, caller, KeyScope::ConnectionsRead)?;
    let (after, limit) = query.bounds()?;
    let integration = connection(&state, &key, &id).await?;
    let choose = crate::routes::scope(&integration.id);
    let chosen = crate::store::scopes::find(&state.db, &integration.workspace_id, &integration.id).await?;
    let Some(selection) = chosen.filter(|s| s.saved_at.is_some()).map(|s| s.selection) else {
        return Err(ApiError::new(
            ApiErrorKind::NotReady,
            format!("Nobody has chosen what this connection reads yet: a workspace admin chooses it at {choose}."),
        ));
    };
    let Some(listed) = crate::store::scopes::snapshot(&state.db, &integration.workspace_id, &integration.id).await?
    else {
        return Err(ApiError::new(
            ApiErrorKind::NotReady,
            format!("Onramp has not listed this GitLab yet: see {choose}."),
        ));
    };
    let projects: Vec<ProjectOut> = listed
        .snapshot
        .projects
        .iter()
        .filter(|p| p.readable() && selection.includes(p) && p.path_with_namespace.as_str() > after.as_str())
        .take(limit + 1)
        .map(|p| ProjectOut {
            id: p.id,
            path_with_namespace: p.path_with_namespace.clone(),
            role: role_name(p.access_level),
            archived: p.archived,
        })
        .collect();
    audit(
        &state,
        &key,
        client,
        &integration.workspace_id,
        &format!("read the projects of {}", crate::api::caller::named(&integration)),
    )
    .await;
    Ok(json(&paged(projects, limit, |p| &p.path_with_namespace)))
}

/// The connection with this id, when it belongs to a workspace the key reaches; else 404.
async fn connection(state: &AppState, key: &PlatformKey, id: &str) -> Result<Integration, ApiError> {
    let missing =
        || ApiError::not_found("This key reaches no connection with this id (GET /api/v1/connections lists them).");
    let workspace_id = integrations::workspace_of(&state.db, id).await?.ok_or_else(missing)?;
    platform::tenant_of(&state.db, key, &workspace_id).await?.ok_or_else(missing)?;
    integrations::find(&state.db, &workspace_id, id).await?.ok_or_else(missing)
}

/// Anything else under `/api/v1`: a JSON 404 that says where the list of calls is.
pub async fn not_found() -> ApiError {
    ApiError::not_found("There is no such /api/v1 call. The README's \"Embedding Onramp in your platform\" lists them.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_cut_from_one_item_more_names_the_next() {
        let items = |n: usize| (0..n).map(|i| format!("id{i:02}")).collect::<Vec<_>>();
        let page = paged(items(3), 2, |s| s);
        assert_eq!(page.data, ["id00", "id01"]);
        assert_eq!(Cursor::decode(page.next.as_deref().unwrap()).unwrap().0, "id01");
        let last = paged(items(2), 2, |s| s);
        assert_eq!((last.data.len(), last.next), (2, None));
        assert!(paged(Vec::<String>::new(), 5, |s| s).next.is_none());
    }
}
