//! Workspaces and their members: `/api/workspaces` (list), `create`, `switch`, `rename`,
//! `members`, `set_role`, `remove`, `leave`. The rules (who may, the last owner) are
//! `crate::workspace`'s; refusals send a browser back to the workspace page, which says why.

use super::error::ApiError;
use crate::workspace::{Member, Membership};
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};
#[cfg(feature = "ssr")]
use {
    super::caller::{audit, state, viewer, workspace_for},
    super::error::ApiErrorKind,
    super::respond::{to_page, with_query},
    crate::auth::safe_next,
    crate::store::workspaces,
    crate::workspace::{audit, Action, MemberError, Role},
};

/// The caller's workspaces and the current one: `GET /api/workspaces`.
#[server(prefix = "/api", endpoint = "workspaces", input = GetUrl)]
pub async fn list_workspaces() -> Result<Workspaces, ApiError> {
    let viewer = viewer()?;
    Ok(Workspaces { current: viewer.workspace.map(|w| w.id), workspaces: viewer.workspaces })
}

/// `GET /api/workspaces` answers this.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workspaces {
    pub current: Option<String>,
    pub workspaces: Vec<Membership>,
}

/// The code a page shows a member error by.
#[cfg(feature = "ssr")]
fn member_code(e: &MemberError) -> &'static str {
    use MemberError::*;
    match e {
        LastOwner => "last_owner",
        NotAMember => "not_a_member",
        AboveOwnRole => "above_own_role",
        OtherEmail => "other_email",
        NotPending(_) => "not_pending",
        TooManyInvitations(_) => "too_many_invitations",
        TooManyWorkspaces(_) => "too_many_workspaces",
        BadName => "bad_name",
        InvisibleName => "invisible_name",
        InviterCannotInvite => "inviter_cannot_invite",
    }
}

/// What the audit log adds when a member's change withdrew their open invitations.
#[cfg(feature = "ssr")]
fn revoked_note(revoked: u64) -> String {
    match revoked {
        0 => String::new(),
        1 => " (their open invitation was withdrawn)".to_owned(),
        n => format!(" (their {n} open invitations were withdrawn)"),
    }
}

/// A refused change to members: a browser goes back to the workspace page, which says why.
#[cfg(feature = "ssr")]
pub(crate) fn refuse(e: MemberError) -> ApiError {
    to_page(with_query("/settings/workspace", "error", member_code(&e)));
    let kind = match e {
        MemberError::NotAMember => ApiErrorKind::NotFound,
        MemberError::AboveOwnRole | MemberError::OtherEmail => ApiErrorKind::Forbidden,
        MemberError::LastOwner | MemberError::NotPending(_) | MemberError::InviterCannotInvite => {
            ApiErrorKind::Conflict
        }
        _ => ApiErrorKind::BadRequest,
    };
    ApiError::new(kind, e.to_string())
}

/// A new workspace owned by the caller, made current: `POST /api/workspaces/create`, `name`.
#[server(prefix = "/api", endpoint = "workspaces/create")]
pub async fn create_workspace(name: Option<String>) -> Result<Membership, ApiError> {
    let state = state()?;
    let viewer = viewer()?;
    let created =
        workspaces::create(&state.db, &viewer.user.id, name.as_deref().unwrap_or_default()).await?.map_err(refuse)?;
    audit(&state, &created.id, &viewer, audit::WORKSPACE_CREATED, &created.name).await;
    to_page("/settings/workspace?created=1");
    Ok(created)
}

/// Works in another of the caller's workspaces from now on: `POST /api/workspaces/switch`,
/// `workspace`, and for a browser `next` (a page to go back to).
#[server(prefix = "/api", endpoint = "workspaces/switch")]
pub async fn switch_workspace(workspace: Option<String>, next: Option<String>) -> Result<Membership, ApiError> {
    let state = state()?;
    let viewer = viewer()?;
    let target = workspace_for(&viewer, Some(workspace.as_deref().unwrap_or("-")), Action::ViewConnections)?;
    workspaces::switch(&state.db, &viewer.user.id, &target.id).await?;
    to_page(safe_next(next.as_deref(), "/settings/workspace"));
    Ok(target)
}

/// Renames a workspace (owners): `POST /api/workspaces/rename`, `name`, optional `workspace`
/// (default: the current one, as for every workspace call below).
#[server(prefix = "/api", endpoint = "workspaces/rename")]
pub async fn rename_workspace(name: Option<String>, workspace: Option<String>) -> Result<String, ApiError> {
    let state = state()?;
    let viewer = viewer()?;
    let target = workspace_for(&viewer, workspace.as_deref(), Action::ManageMembers)?;
    let name = workspaces::rename(&state.db, &target.id, name.as_deref().unwrap_or_default()).await?.map_err(refuse)?;
    audit(&state, &target.id, &viewer, audit::WORKSPACE_RENAMED, &format!("{} → {name}", target.name)).await;
    to_page("/settings/workspace?renamed=1");
    Ok(name)
}

/// The members of a workspace: `GET /api/workspaces/members?workspace=…`.
#[server(prefix = "/api", endpoint = "workspaces/members", input = GetUrl)]
pub async fn list_members(workspace: Option<String>) -> Result<Vec<Member>, ApiError> {
    let state = state()?;
    let viewer = viewer()?;
    let target = workspace_for(&viewer, workspace.as_deref(), Action::ViewConnections)?;
    Ok(workspaces::members(&state.db, &target.id).await?)
}

/// Gives a member another role (owners): `POST /api/workspaces/set_role`, `user_id`, `role`
/// (`owner`, `admin` or `viewer`). A workspace always keeps an owner.
#[server(prefix = "/api", endpoint = "workspaces/set_role")]
pub async fn set_role(
    user_id: Option<String>,
    role: Option<String>,
    workspace: Option<String>,
) -> Result<Member, ApiError> {
    let state = state()?;
    let viewer = viewer()?;
    let target = workspace_for(&viewer, workspace.as_deref(), Action::ManageMembers)?;
    let Some(role) = role.as_deref().and_then(Role::parse) else {
        return Err(ApiError::bad_request("Choose a role: owner, admin or viewer."));
    };
    let changed = workspaces::set_role(&state.db, &target.id, user_id.as_deref().unwrap_or_default(), role)
        .await?
        .map_err(refuse)?;
    let before = changed.member;
    let what = format!(
        "{}: {} → {}{}",
        before.email,
        before.role.as_str(),
        role.as_str(),
        revoked_note(changed.invitations_revoked)
    );
    audit(&state, &target.id, &viewer, audit::MEMBER_ROLE_CHANGED, &what).await;
    to_page("/settings/workspace?changed=1");
    Ok(Member { role, ..before })
}

/// Removes a member (owners): `POST /api/workspaces/remove`, `user_id`.
#[server(prefix = "/api", endpoint = "workspaces/remove")]
pub async fn remove_member(user_id: Option<String>, workspace: Option<String>) -> Result<Member, ApiError> {
    let state = state()?;
    let viewer = viewer()?;
    let target = workspace_for(&viewer, workspace.as_deref(), Action::ManageMembers)?;
    let removed =
        workspaces::remove(&state.db, &target.id, user_id.as_deref().unwrap_or_default()).await?.map_err(refuse)?;
    let what = format!("{}{}", removed.member.email, revoked_note(removed.invitations_revoked));
    audit(&state, &target.id, &viewer, audit::MEMBER_REMOVED, &what).await;
    to_page("/settings/workspace?removed=1");
    Ok(removed.member)
}

/// Leaves a workspace: `POST /api/workspaces/leave`. Its last owner cannot.
#[server(prefix = "/api", endpoint = "workspaces/leave")]
pub async fn leave_workspace(workspace: Option<String>) -> Result<bool, ApiError> {
    let state = state()?;
    let viewer = viewer()?;
    let target = workspace_for(&viewer, workspace.as_deref(), Action::ViewConnections)?;
    let left = workspaces::remove(&state.db, &target.id, &viewer.user.id).await?.map_err(refuse)?;
    let what = format!("{}{}", viewer.user.email, revoked_note(left.invitations_revoked));
    audit(&state, &target.id, &viewer, audit::MEMBER_LEFT, &what).await;
    to_page("/settings/workspace?left=1");
    Ok(true)
}
