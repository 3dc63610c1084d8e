//! Who is calling, and what they may reach: the signed-in caller ([`Viewer`], put in the request
//! by `auth::ssr::middleware`), the workspace a call is about, and a connection found through the
//! caller's membership with the role an action needs. Another workspace's id is answered like one
//! that does not exist. Every server function and the scope's axum handlers use these lookups.

use super::error::{ApiError, ApiErrorKind, RateLimited};
use super::respond::{to_page, with_query};
use crate::auth::Viewer;
use crate::client::{limit_key, ClientInfo};
use crate::integration::Integration;
use crate::state::AppState;
use crate::store::{integrations, workspaces};
use crate::workspace::{Action, Membership, Role};
use http::request::Parts;
use leptos::prelude::use_context;
use std::net::{IpAddr, Ipv4Addr};

/// The server's state, inside a server function.
pub(crate) fn state() -> Result<AppState, ApiError> {
    use_context::<AppState>().ok_or_else(|| ApiError::internal("the server is not set up"))
}

/// The request a server function answers.
pub(crate) fn parts() -> Option<Parts> {
    use_context::<Parts>()
}

/// The signed-in caller of a server function.
pub(crate) fn viewer() -> Result<Viewer, ApiError> {
    signed_in(parts().and_then(|p| p.extensions.get::<Viewer>().cloned()))
}

/// The caller the middleware identified (session or API token), else 401.
pub(crate) fn signed_in(viewer: Option<Viewer>) -> Result<Viewer, ApiError> {
    viewer.ok_or_else(|| ApiError::new(ApiErrorKind::Unauthorized, "Log in to Onramp, or send an Onramp API token."))
}

/// The client as the middleware judged it (trusted proxies considered).
pub(crate) fn client() -> ClientInfo {
    parts()
        .and_then(|p| p.extensions.get::<ClientInfo>().copied())
        .unwrap_or(ClientInfo { ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED), https: false })
}

/// The key rate limits count a client by (IPv6: its /64).
pub(crate) fn client_key() -> IpAddr {
    limit_key(client().ip)
}

/// Does the browser reach Onramp over https (directly, through a trusted proxy, or as
/// `ONRAMP_PUBLIC_URL` says)? Then the session cookie is `__Host-` and `Secure`.
pub(crate) fn https() -> bool {
    client().https // judged once by the middleware, ONRAMP_PUBLIC_URL included
}

/// Counts a connection check (or other work sent to GitLab) against the client's and the
/// caller's budgets.
pub(crate) fn limit_checks(state: &AppState, viewer: &Viewer) -> Result<(), RateLimited> {
    let refused = RateLimited::of("connection checks");
    state.checks_per_ip.check(&client_key()).map_err(&refused)?;
    state.checks_per_user.check(&viewer.user.id).map_err(refused)
}

/// Who is acting, for the audit log.
pub(crate) fn actor(viewer: &Viewer) -> workspaces::Actor {
    workspaces::Actor { email: viewer.user.email.clone(), ip: client().ip.to_string() }
}

/// Records a change in a workspace's audit log. The change is made already: a failure to
/// record it is logged, not answered as if the change had failed.
pub(crate) async fn record(
    state: &AppState,
    workspace_id: &str,
    actor: &workspaces::Actor,
    action: &str,
    target: &str,
) {
    if let Err(e) = workspaces::record(&state.db, workspace_id, actor, action, target).await {
        tracing::error!(error = %e, action, "cannot record an audit event");
    }
}

/// [`record`] with the calling viewer as the actor.
pub(crate) async fn audit(state: &AppState, workspace_id: &str, viewer: &Viewer, action: &str, target: &str) {
    record(state, workspace_id, &actor(viewer), action, target).await
}

/// "gitlab.example.com as @jdoe": how the audit log names a connection.
pub(crate) fn named(integration: &Integration) -> String {
    format!("{} as @{}", integration.base_url, integration.username)
}

fn forbidden(role: Role, what: &str) -> ApiError {
    ApiError::new(
        ApiErrorKind::Forbidden,
        format!("You are {} in this workspace: {what} needs an owner or admin.", role.label().to_lowercase()),
    )
}

/// The workspace a call is about (`workspace`, else the current one), when the caller is a
/// member and their role allows `action`. Another workspace's id is answered like one that
/// does not exist.
pub(crate) fn workspace_for(viewer: &Viewer, requested: Option<&str>, action: Action) -> Result<Membership, ApiError> {
    let found = match requested.map(str::trim).filter(|w| !w.is_empty()) {
        Some(id) => viewer.workspaces.iter().find(|w| w.id == id).cloned(),
        None => viewer.workspace.clone(),
    };
    let Some(workspace) = found else {
        return Err(ApiError::not_found("You are not a member of this workspace."));
    };
    if !workspace.role.may(action) {
        return Err(match action {
            Action::ManageMembers => {
                ApiError::new(ApiErrorKind::Forbidden, "Only an owner of the workspace can change its members or name.")
            }
            _ => forbidden(workspace.role, "this"),
        });
    }
    Ok(workspace)
}

/// The connection with this id, when the caller is a member of its workspace and their role
/// allows `action`. A connection of a workspace the caller is not in is answered like one that
/// does not exist.
pub(crate) async fn connection(
    state: &AppState,
    viewer: &Viewer,
    id: &str,
    action: Action,
) -> Result<Integration, ApiError> {
    let (integration, role) = integrations::find_for_user(&state.db, &viewer.user.id, id).await?.ok_or_else(|| {
        ApiError::not_found(
            "There is no connection with this id in your workspaces (GET /api/integrations lists them).",
        )
    })?;
    allowed(role, action)?;
    Ok(integration)
}

/// [`connection`] for a server function, whose `id` may be left out: then the current
/// workspace's only connection.
pub(crate) async fn connection_for(
    state: &AppState,
    viewer: &Viewer,
    id: Option<&str>,
    action: Action,
) -> Result<Integration, ApiError> {
    if let Some(id) = id.map(str::trim).filter(|i| !i.is_empty()) {
        return connection(state, viewer, id, action).await;
    }
    match (viewer.integrations.as_slice(), viewer.role()) {
        ([], _) | (_, None) => Err(not_connected()),
        ([only], Some(role)) => {
            allowed(role, action)?;
            Ok(only.clone())
        }
        (_, Some(_)) => Err(ApiError::bad_request(
            "This workspace has several connections: say which one with `id` (GET /api/integrations lists them).",
        )),
    }
}

fn allowed(role: Role, action: Action) -> Result<(), ApiError> {
    if role.may(action) {
        Ok(())
    } else {
        Err(forbidden(role, "changing a connection"))
    }
}

/// [`limit_checks`] for the actions of a connection's page, which shows the wait.
pub(crate) fn limit_checks_on_page(state: &AppState, viewer: &Viewer, page: &str) -> Result<(), ApiError> {
    limit_checks(state, viewer).map_err(|refused: RateLimited| {
        to_page(with_query(page, "limited", &refused.wait.to_string()));
        refused.into()
    })
}

/// The current workspace has no connection (or not this one any more): a browser goes to the
/// GitLab page, which offers to connect.
pub(crate) fn not_connected() -> ApiError {
    to_page("/integrations/gitlab");
    ApiError::not_found("This workspace has not connected GitLab yet.")
}
