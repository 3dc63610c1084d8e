//! Invitations to a workspace: `/api/invitations/create` (a link, shown once), `revoke`, and the
//! invited colleague's `accept` and `decline` (also used by sign-up and log-in with an invitation).

use super::error::ApiError;
use crate::workspace::Membership;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
#[cfg(feature = "ssr")]
use {
    super::caller::{audit, client, https, parts, record, state, viewer, workspace_for},
    super::error::ApiErrorKind,
    super::respond::{from_browser, to_page, with_query},
    super::workspaces::refuse,
    crate::auth::Viewer,
    crate::gitlab::base_url::BaseUrl,
    crate::state::AppState,
    crate::store::{accounts, workspaces},
    crate::workspace::{audit, Action, MemberError, Role},
};

/// A new invitation (owners and admins, for a role up to their own): `POST
/// /api/invitations/create`, `role` (default `admin`), optional `email` (only that address may
/// accept), optional `step` and `base` (the wizard step the colleague lands on after joining).
/// Answers the link, shown once; it works once, for 7 days.
#[server(prefix = "/api", endpoint = "invitations/create")]
pub async fn create_invitation(
    role: Option<String>,
    email: Option<String>,
    step: Option<String>,
    base: Option<String>,
    workspace: Option<String>,
) -> Result<NewInvitation, ApiError> {
    let state = state()?;
    let viewer = viewer()?;
    let target = workspace_for(&viewer, workspace.as_deref(), Action::Invite)?;
    let role = match role.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
        None => Role::Admin,
        Some(text) => {
            Role::parse(text).ok_or_else(|| ApiError::bad_request("Choose a role: owner, admin or viewer."))?
        }
    };
    if !target.role.may_grant(role) {
        return Err(refuse(MemberError::AboveOwnRole));
    }
    let email = match email.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
        Some(typed) => Some(accounts::Email::parse(typed).map_err(|problem| {
            to_page(format!("/settings/workspace?error=invite_email_{}#invite", problem.code()));
            ApiError::bad_request(format!(
                "{problem} Enter the colleague's email address like name@example.com, or leave it empty."
            ))
        })?),
        None => None,
    };
    // Made on a wizard step: the colleague lands there after joining (with the instance).
    let step = step.as_deref().and_then(crate::wizard::Step::from_segment).filter(|s| (5..=12).contains(&s.number));
    let base = base.as_deref().and_then(|b| BaseUrl::parse(b).ok());
    let next = step.map(|s| s.href(base.as_ref()));
    let (id, secret) =
        workspaces::create_invitation(&state.db, &target.id, role, email.as_ref(), next.as_deref(), &viewer.user.email)
            .await?
            .map_err(refuse)?;
    let whom = match &email {
        Some(e) => format!("{} as {}", e.as_str(), role.as_str()),
        None => format!("a link as {}", role.as_str()),
    };
    audit(&state, &target.id, &viewer, audit::MEMBER_INVITED, &whom).await;
    let headers = parts().map(|p| p.headers).unwrap_or_default();
    let link = format!(
        "{}/invite/{secret}",
        crate::auth::ssr::public_origin(state.settings.public_url.as_deref(), &headers, https())
    );
    if from_browser() {
        // The link is shown once, on the page, from a flash: never in the URL.
        let flash = accounts::put_flash(&state.db, &state.keys, &viewer.user.id, &secret).await?;
        let page = next.unwrap_or_else(|| "/settings/workspace".to_owned());
        leptos_axum::redirect(&format!("{}#invite-link", with_query(&page, "invited", &flash)));
        return Ok(NewInvitation { id, link: String::new() });
    }
    Ok(NewInvitation { id, link })
}

/// `POST /api/invitations/create` answers this.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewInvitation {
    pub id: String,
    pub link: String,
}

/// Withdraws an open invitation: `POST /api/invitations/revoke`, `id`.
#[server(prefix = "/api", endpoint = "invitations/revoke")]
pub async fn revoke_invitation(id: Option<String>, workspace: Option<String>) -> Result<bool, ApiError> {
    let state = state()?;
    let viewer = viewer()?;
    let target = workspace_for(&viewer, workspace.as_deref(), Action::Invite)?;
    let revoked = workspaces::revoke_invitation(&state.db, &target.id, id.as_deref().unwrap_or_default()).await?;
    if revoked {
        audit(&state, &target.id, &viewer, audit::INVITATION_REVOKED, id.as_deref().unwrap_or_default()).await;
    }
    to_page("/settings/workspace?revoked=1");
    if revoked {
        Ok(true)
    } else {
        Err(ApiError::not_found("This workspace has no open invitation with this id."))
    }
}

/// Accepts (or declines) an invitation for the signed-in account and sends a browser on: to
/// the step the link was made on, else the workspace page; a link that cannot be used goes
/// back to its page, which says why.
#[cfg(feature = "ssr")]
pub(crate) async fn answer_invitation(
    state: &AppState,
    user: &accounts::User,
    secret: &str,
    accept: bool,
) -> Result<workspaces::Answered, ApiError> {
    let answered = if accept {
        workspaces::accept(&state.db, secret, user).await
    } else {
        workspaces::decline(&state.db, secret, user).await
    }?;
    let page = format!("/invite/{}", url_segment(secret));
    match answered {
        Ok(answered) => {
            let actor = workspaces::Actor { email: user.email.clone(), ip: client().ip.to_string() };
            let (action, target) = if accept {
                (audit::MEMBER_JOINED, format!("{} as {}", user.email, answered.role.as_str()))
            } else {
                (audit::INVITATION_DECLINED, user.email.clone())
            };
            record(state, &answered.workspace_id, &actor, action, &target).await;
            to_page(match (&answered.info.next, accept) {
                (Some(next), true) => with_query(next, "joined", "1"),
                (None, true) => "/settings/workspace?joined=1".to_owned(),
                (_, false) => with_query(&page, "declined", "1"),
            });
            Ok(answered)
        }
        Err(e) => {
            to_page(&page);
            let kind =
                if matches!(e, MemberError::OtherEmail) { ApiErrorKind::Forbidden } else { ApiErrorKind::NotFound };
            Err(ApiError::new(kind, e.to_string()))
        }
    }
}

/// An invitation secret as a path segment: only the characters a secret has, else nothing.
#[cfg(feature = "ssr")]
pub(crate) fn url_segment(secret: &str) -> String {
    secret.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_')).take(64).collect()
}

#[cfg(feature = "ssr")]
fn account(viewer: &Viewer) -> accounts::User {
    accounts::User { id: viewer.user.id.clone(), email: viewer.user.email.clone() }
}

/// Joins the workspace of an invitation: `POST /api/invitations/accept`, `invite` (the secret of
/// the link). The workspace becomes the caller's current one; a browser goes on to the step the
/// link was made on.
#[server(prefix = "/api", endpoint = "invitations/accept")]
pub async fn accept_invitation(invite: Option<String>) -> Result<Membership, ApiError> {
    let state = state()?;
    let viewer = viewer()?;
    let answered = answer_invitation(&state, &account(&viewer), invite.as_deref().unwrap_or_default(), true).await?;
    Ok(Membership { id: answered.workspace_id, name: answered.info.workspace_name, role: answered.role })
}

/// Declines an invitation: `POST /api/invitations/decline`, `invite`. The link stops working.
#[server(prefix = "/api", endpoint = "invitations/decline")]
pub async fn decline_invitation(invite: Option<String>) -> Result<bool, ApiError> {
    let state = state()?;
    let viewer = viewer()?;
    answer_invitation(&state, &account(&viewer), invite.as_deref().unwrap_or_default(), false).await?;
    Ok(true)
}
