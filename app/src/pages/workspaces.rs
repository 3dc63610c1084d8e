//! The workspace pages: members and invitations (`/settings/workspace`), the audit log
//! (`/settings/audit`), an invitation link (`/invite/{secret}`), and the "send this step to a
//! colleague" box of the wizard's GitLab steps.

use super::common::{when, InvitationOffer};
use super::loaded;
use super::report::{ErrorLink, ErrorSummary};
use super::{query, set_status};
use crate::api;
use crate::auth::{use_viewer, AUDIT_PAGE};
use crate::gitlab::base_url::BaseUrl;
use crate::workspace::{
    audit, Action, AuditEvent, Invitation, InvitationInfo, InvitationState, Member, MemberError, Membership, Role,
    UNVERIFIED,
};
use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

/// What a `?error=` code of the workspace page means.
fn member_error(code: &str) -> Option<String> {
    Some(match code {
        "last_owner" => MemberError::LastOwner.to_string(),
        "not_a_member" => MemberError::NotAMember.to_string(),
        "above_own_role" => MemberError::AboveOwnRole.to_string(),
        "too_many_invitations" => MemberError::TooManyInvitations(crate::workspace::MAX_OPEN_INVITATIONS).to_string(),
        "too_many_workspaces" => MemberError::TooManyWorkspaces(crate::workspace::MAX_OWNED_WORKSPACES).to_string(),
        "bad_name" => MemberError::BadName.to_string(),
        "invite_email" => "Enter the colleague's email address like name@example.com, or leave it empty.".to_owned(),
        "invisible_name" => MemberError::InvisibleName.to_string(),
        code => {
            let problem = code.strip_prefix("invite_email_").and_then(crate::account::EmailProblem::from_code)?;
            format!("{problem} Enter the colleague's email address like name@example.com, or leave it empty.")
        }
    })
}

/// The notice of a finished action (`?created=1` …), for the status region.
fn done_notice() -> Option<&'static str> {
    [
        ("created", "The workspace was created. You work in it now."),
        ("renamed", "The workspace was renamed."),
        ("changed", "The role was changed."),
        ("removed", "The member was removed. Their sessions no longer see this workspace."),
        ("left", "You left the workspace."),
        ("joined", "You joined the workspace. You work in it now."),
        ("revoked", "The invitation was withdrawn: its link no longer works."),
    ]
    .into_iter()
    .find(|(key, _)| query(key).is_some())
    .map(|(_, text)| text)
}

/// On `/settings/workspace`: the current workspace's members, and its open invitations for those
/// who may invite.
#[derive(Clone, Debug, Default)]
pub(crate) struct Team {
    pub members: Vec<Member>,
    pub invitations: Vec<Invitation>,
}

#[cfg(feature = "ssr")]
impl Team {
    pub(crate) async fn load(
        app: &crate::state::AppState,
        workspace: &Membership,
    ) -> Result<Team, crate::store::StoreError> {
        let members = crate::store::workspaces::members(&app.db, &workspace.id).await?;
        let invitations = if workspace.role.may(Action::Invite) {
            crate::store::workspaces::open_invitations(&app.db, &workspace.id).await?
        } else {
            Vec::new()
        };
        Ok(Team { members, invitations })
    }
}

/// A new invitation's link, shown once on the page it was made on (`?invited=` names it).
#[derive(Clone, Debug, Default)]
pub(crate) struct NewInvitationLink(pub Option<String>);

/// On `/settings/audit`: one page of the current workspace's audit log (`?before=` the id of
/// the last event of the page before, see [`crate::workspace::audit_cursor`]).
#[derive(Clone, Debug, Default)]
pub(crate) struct AuditEvents {
    pub events: Vec<AuditEvent>,
    /// A page after the first.
    pub older_page: bool,
    /// `?before=` was not a cursor Onramp makes.
    pub bad_cursor: bool,
}

/// `/settings/workspace`: the current workspace, its members and invitations, and the others.
#[component]
pub fn WorkspacePage() -> impl IntoView {
    let Some(viewer) = use_viewer() else { return ().into_any() };
    let team = loaded::<Team>();
    let error = query("error").and_then(|c| member_error(&c));
    let body = match viewer.workspace.clone() {
        None => view! {
            <p>"You are not a member of any workspace any more. Create one, or open an invitation link a colleague sent you."</p>
        }
        .into_any(),
        Some(current) => {
            let owner = current.role.may(Action::ManageMembers);
            let me = viewer.user.id.clone();
            let members = team.members.clone();
            let owners = members.iter().filter(|m| m.role == Role::Owner).count();
            let last_owner = current.role == Role::Owner && owners <= 1;
            view! {
                <section aria-labelledby="current-title">
                    <h2 id="current-title">{current.name.clone()}</h2>
                    <p>"You are " <strong id="my-role">{current.role.label()}</strong> ": you " {current.role.explain()} "."</p>
                    {owner.then(|| view! {
                        <form method="post" action=api::RenameWorkspace::PATH class="inline-form" data-enhance="">
                            <div class="field">
                                <label for="workspace-name">"Workspace name"</label>
                                <input id="workspace-name" name="name" type="text" maxlength="80" value=current.name.clone() required/>
                            </div>
                            <button type="submit" class="button secondary">"Rename"</button>
                        </form>
                    })}
                </section>
                {members_section(&current, &me, members)}
                {current.role.may(Action::Invite).then(|| invite_section(&current, loaded::<NewInvitationLink>().0, team.invitations.clone()).into_any())}
                {current.role.may(Action::ViewAudit).then(|| view! {
                    <p><a href="/settings/audit">"Audit log: who changed what in this workspace"</a></p>
                })}
                <section aria-labelledby="leave-title">
                    <h2 id="leave-title">"Leave this workspace"</h2>
                    {if last_owner {
                        view! { <p>"You are its only owner: make another member owner before you leave, so that someone can still manage it."</p> }.into_any()
                    } else {
                        view! {
                            <p>"You will no longer see its connections."</p>
                            <form method="post" action=api::LeaveWorkspace::PATH data-enhance="">
                                <input type="hidden" name="workspace" value=current.id.clone()/>
                                <button type="submit" class="button secondary">{format!("Leave {}", current.name)}</button>
                            </form>
                        }.into_any()
                    }}
                </section>
            }
            .into_any()
        }
    };
    let others = viewer.workspaces.clone();
    let current_id = viewer.workspace.as_ref().map(|w| w.id.clone()).unwrap_or_default();
    let title =
        if error.is_some() { "Error: Workspace · Settings · Onramp" } else { "Workspace · Settings · Onramp" };
    view! {
        <Title text=title/>
        <main id="main" tabindex="-1" class="narrow">
            <span class="caption">"Settings"</span>
            <h1 tabindex="-1">"Workspace"</h1>
            {error.map(|e| view! { <ErrorSummary links=vec![ErrorLink { href: "#main".into(), text: e }]/> })}
            {done_notice().map(|t| view! { <p class="callout" role="status" id="status">{t}</p> })}
            {body}
            <section aria-labelledby="all-title">
                <h2 id="all-title">"Your workspaces"</h2>
                <ul class="workspaces">
                    {others.into_iter().map(|w| {
                        let current = w.id == current_id;
                        view! {
                            <li>
                                <strong>{w.name.clone()}</strong> {format!(" — {}", w.role.label())}
                                {if current {
                                    view! { <span class="badge">" (current)"</span> }.into_any()
                                } else {
                                    view! { <SwitchButton workspace=w.clone() next="/settings/workspace".to_owned()/> }.into_any()
                                }}
                            </li>
                        }
                    }).collect_view()}
                </ul>
                <form method="post" action=api::CreateWorkspace::PATH class="inline-form" data-enhance="">
                    <div class="field">
                        <label for="new-workspace">"New workspace"</label>
                        <p class="hint" id="new-workspace-hint">"For a team or an organisation: its connections are shared with the members you invite."</p>
                        <input id="new-workspace" name="name" type="text" maxlength="80" aria-describedby="new-workspace-hint"/>
                    </div>
                    <button type="submit" class="button secondary">"Create workspace"</button>
                </form>
            </section>
        </main>
    }
    .into_any()
}

/// The members table; owners change roles and remove members from it.
fn members_section(current: &Membership, me: &str, members: Vec<crate::workspace::Member>) -> AnyView {
    let owner = current.role.may(Action::ManageMembers);
    let me = me.to_owned();
    view! {
                <section aria-labelledby="members-title">
            <h2 id="members-title">"Members"</h2>
            <p class="hint" id="unverified-hint">"Addresses are marked unverified: Onramp sends no mail, so it has not checked that an address belongs to the person who typed it."</p>
            // A region that may scroll sideways at 360 px: reachable and named for the keyboard.
            <div class="table-scroll" tabindex="0" role="region" aria-labelledby="members-title">
            <table class="members">
                <caption class="visually-hidden">"Members of " {current.name.clone()} " and their roles"</caption>
                <thead><tr><th scope="col">"Email"</th><th scope="col">"Role"</th><th scope="col">"Joined"</th>
                    {owner.then(|| view! { <th scope="col">"Change"</th> })}</tr></thead>
                <tbody>
                    {members.into_iter().map(|m| {
                        let is_me = m.user_id == me;
                        let select_id = format!("role-{}", m.user_id);
                        view! {
                            <tr>
                                <td class="member-email">{m.email.clone()}{is_me.then_some(" (you)")}
                                    {(!m.email_verified).then(|| view! { <span class="unverified">{format!(" ({UNVERIFIED})")}</span> })}</td>
                                <td class="member-role">{m.role.label()}</td>
                                <td>{when(m.joined_at)}</td>
                                {owner.then(|| view! {
                                    <td class="member-actions">
                                        <form method="post" action=api::SetRole::PATH class="inline-form" data-enhance="">
                                            <input type="hidden" name="user_id" value=m.user_id.clone()/>
                                            <label for=select_id.clone() class="visually-hidden">{format!("Role of {}", m.email)}</label>
                                            <select id=select_id name="role">
                                                {Role::ALL.into_iter().map(|r| view! {
                                                    <option value=r.as_str() selected=r == m.role>{r.label()}</option>
                                                }).collect_view()}
                                            </select>
                                            <button type="submit" class="button secondary small">
                                                "Change role" <span class="visually-hidden">{format!(" of {}", m.email)}</span>
                                            </button>
                                        </form>
                                        {(!is_me).then(|| view! {
                                            <form method="post" action=api::RemoveMember::PATH class="inline-form" data-enhance="">
                                                <input type="hidden" name="user_id" value=m.user_id.clone()/>
                                                <button type="submit" class="link-button danger-link">
                                                    "Remove" <span class="visually-hidden">{format!(" {}", m.email)}</span>
                                                </button>
                                            </form>
                                        })}
                                    </td>
                                })}
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
            </div>
        </section>
    }
    .into_any()
}

/// A form button that makes `workspace` the current one, then goes to `next`.
#[component]
pub(crate) fn SwitchButton(workspace: Membership, next: String) -> impl IntoView {
    view! {
        <form method="post" action=api::SwitchWorkspace::PATH class="inline-form" data-enhance="">
            <input type="hidden" name="workspace" value=workspace.id.clone()/>
            <input type="hidden" name="next" value=next/>
            <button type="submit" class="link-button">"Switch to " {workspace.name}</button>
        </form>
    }
}

fn invite_section(
    current: &Membership,
    new_link: Option<String>,
    open: Vec<crate::workspace::Invitation>,
) -> impl IntoView {
    let grantable: Vec<Role> = Role::ALL.into_iter().filter(|r| current.role.may_grant(*r)).collect();
    view! {
        <section aria-labelledby="invite-title" id="invite">
            <h2 id="invite-title">"Invite a colleague"</h2>
            {new_link.map(|link| view! { <NewLink link=link label="Invitation link"/> })}
            <p>"Onramp sends no email: it makes a link for you to send. The link works once, for 7 days."</p>
            <form method="post" action=api::CreateInvitation::PATH data-enhance="" novalidate>
                <div class="field">
                    <label for="invite-role">"Role"</label>
                    <select id="invite-role" name="role" aria-describedby="invite-role-hint">
                        {grantable.into_iter().map(|r| view! { <option value=r.as_str() selected=r == Role::Admin>{r.label()}</option> }).collect_view()}
                    </select>
                    <p class="hint" id="invite-role-hint">"Admins connect and manage GitLab connections; viewers only see them; owners also manage members."</p>
                </div>
                <div class="field">
                    <label for="invite-email">"Their email address (optional)"</label>
                    <p class="hint" id="invite-email-hint">"Only an account with this address can use the link. Leave empty for whoever you send it to."</p>
                    <input id="invite-email" name="email" type="email" autocomplete="off" spellcheck="false" aria-describedby="invite-email-hint"/>
                </div>
                <button type="submit" class="button secondary">"Create invitation link"</button>
            </form>
            {(!open.is_empty()).then(|| view! {
                <h3>"Open invitations"</h3>
                <ul class="invitations">
                    {open.into_iter().map(|i| view! {
                        <li>
                            {format!("{} — {}, by {} ({UNVERIFIED}), expires {}", i.role.label(), i.email.clone().unwrap_or_else(|| "anyone with the link".into()), i.invited_by, when(i.expires_at))}
                            <form method="post" action=api::RevokeInvitation::PATH class="inline-form" data-enhance="">
                                <input type="hidden" name="id" value=i.id.clone()/>
                                <button type="submit" class="link-button danger-link">"Revoke" <span class="visually-hidden">" this invitation"</span></button>
                            </form>
                        </li>
                    }).collect_view()}
                </ul>
            })}
        </section>
    }
}

/// A link shown once, ready to copy.
#[component]
fn NewLink(link: String, label: &'static str) -> impl IntoView {
    view! {
        <div class="callout success new-secret" role="status">
            <label for="invite-link"><strong>{label}</strong></label>
            <input id="invite-link" type="text" readonly value=link aria-describedby="invite-link-hint" spellcheck="false"/>
            <p class="hint" id="invite-link-hint">"Copy it now and send it to your colleague: Onramp shows it only once. It works once, for 7 days."</p>
        </div>
    }
}

/// The wizard's GitLab steps: "send this step to the colleague who creates the token", with an
/// invitation to the current workspace as admin. Only for owners and admins.
#[component]
pub(crate) fn ShareStep(step: u8, base: Option<BaseUrl>) -> impl IntoView {
    let viewer = use_viewer().filter(|v| v.may(Action::Invite));
    viewer.and_then(|viewer| viewer.workspace).map(|workspace| {
        let link = loaded::<NewInvitationLink>().0;
        view! {
            <section class="share" aria-labelledby="share-title">
                <h2 id="share-title">"Someone else creates the token?"</h2>
                {match link {
                    Some(link) => view! { <NewLink link=link label="Link to this step, with an invitation"/> }.into_any(),
                    None => view! {
                        <p>"Send this step to the colleague with the Maintainer role. The link also invites them to "
                            <strong>{workspace.name.clone()}</strong>
                            " as admin, so the connection they save in step 12 is one you see too."</p>
                        <form method="post" action=api::CreateInvitation::PATH data-enhance="">
                            <input type="hidden" name="step" value=step.to_string()/>
                            <input type="hidden" name="role" value="admin"/>
                            {base.map(|b| view! { <input type="hidden" name="base" value=b.to_string()/> })}
                            <button type="submit" class="button secondary">{format!("Make a link to step {step} for a colleague")}</button>
                        </form>
                    }
                    .into_any(),
                }}
            </section>
        }
    })
}

/// Who invites whom where, as a callout (the invitation page, sign-up and log-in).
#[component]
pub(crate) fn InvitationNotice(info: InvitationInfo) -> impl IntoView {
    view! {
        <div class="callout invitation" id="invitation">
            <p>
                <strong class="invited-by">{info.invited_by.clone()}</strong>
                {(!info.invited_by_verified).then(|| view! { <span class="unverified">{format!(" ({UNVERIFIED} address)")}</span> })}
                " invites you to the workspace "
                <strong class="invited-to">{info.workspace_name.clone()}</strong> " as "
                <strong>{info.role.label().to_lowercase()}</strong> "."
            </p>
            <p>{format!("As {}, you {}.", info.role.label().to_lowercase(), info.role.explain())}</p>
            {(!info.invited_by_verified).then(|| view! {
                <p class="hint">"Onramp has not verified this address: it sends no mail, so anyone could have typed it. Join only if you expected this invitation."</p>
            })}
            {info.email.clone().map(|e| view! { <p>"This invitation is for " <strong>{e}</strong> "."</p> })}
        </div>
    }
}

/// `/invite/{secret}`: what the link offers, and joining or declining it.
#[component]
pub fn InvitePage() -> impl IntoView {
    let secret = use_params_map().with_untracked(|p| p.get("secret")).unwrap_or_default();
    let info = loaded::<InvitationOffer>().0;
    let viewer = use_viewer();
    let body = match info {
        None => {
            set_status(404);
            view! {
                <h1 tabindex="-1">"This invitation link does not work"</h1>
                <p>"Check that you copied the whole link. If you did, ask the colleague who sent it for a new one."</p>
            }
            .into_any()
        }
        Some(info) if info.state != InvitationState::Pending => {
            set_status(410);
            let declined_now = query("declined").is_some() && info.state == InvitationState::Declined;
            view! {
                <h1 tabindex="-1">{if declined_now { "You declined the invitation" } else { "This invitation can no longer be used" }}</h1>
                <p id="invitation-state">{if declined_now {
                    format!("You did not join {}. The link no longer works.", info.workspace_name)
                } else {
                    info.state.explain().to_owned()
                }}</p>
                <p>{format!("It was sent by {} for the workspace {}.", info.invited_by, info.workspace_name)}</p>
            }
            .into_any()
        }
        Some(info) => {
            let encode = |v: &str| -> String { url::form_urlencoded::byte_serialize(v.as_bytes()).collect() };
            let wrong_account = viewer.as_ref().zip(info.email.as_ref()).is_some_and(|(v, e)| &v.user.email != e);
            let actions = match &viewer {
                Some(v) if wrong_account => view! {
                    <p class="callout warning">"You are logged in as " <strong>{v.user.email.clone()}</strong>
                        ", but this invitation is for another address. Log out, then open the link again and log in with that address."</p>
                    <form method="post" action=api::Logout::PATH><button type="submit" class="button secondary">"Log out"</button></form>
                }
                .into_any(),
                Some(v) => view! {
                    <p>"You are logged in as " <strong>{v.user.email.clone()}</strong> "."</p>
                    <div class="actions">
                        <form method="post" action=api::AcceptInvitation::PATH data-enhance="" data-pending-label="Joining…">
                            <input type="hidden" name="invite" value=secret.clone()/>
                            <button type="submit" class="button">{format!("Join {}", info.workspace_name)}</button>
                        </form>
                        <form method="post" action=api::DeclineInvitation::PATH data-enhance="">
                            <input type="hidden" name="invite" value=secret.clone()/>
                            <button type="submit" class="button secondary">"Decline"</button>
                        </form>
                    </div>
                }
                .into_any(),
                None => view! {
                    <p>"To join, create an Onramp account, or log in if you have one. You join the workspace as soon as you are in."</p>
                    <p class="actions">
                        <a class="button" href=format!("/signup?invite={}", encode(&secret))>"Create an account and join"</a>
                        " "
                        <a class="button secondary" href=format!("/login?invite={}", encode(&secret))>"Log in and join"</a>
                    </p>
                }
                .into_any(),
            };
            view! {
                <h1 tabindex="-1">{format!("Join {} on Onramp", info.workspace_name)}</h1>
                <InvitationNotice info=info.clone()/>
                {info.next.is_some().then(|| view! {
                    <p>"After joining you continue with the GitLab guide at the step your colleague sent you. The connection you save there belongs to the workspace."</p>
                })}
                {actions}
            }
            .into_any()
        }
    };
    view! {
        <Title text="Invitation · Onramp"/>
        <main id="main" tabindex="-1" class="narrow">{body}</main>
    }
}

/// `/settings/audit`: who changed what in the current workspace (owners and admins).
#[component]
pub fn AuditPage() -> impl IntoView {
    let viewer = use_viewer();
    let allowed = viewer.as_ref().is_some_and(|v| v.may(Action::ViewAudit));
    let name = viewer.and_then(|v| v.workspace).map(|w| w.name).unwrap_or_default();
    let AuditEvents { events, older_page, bad_cursor } = loaded::<AuditEvents>();
    let older = (events.len() as i64 == AUDIT_PAGE)
        .then(|| events.last().map(|e| format!("/settings/audit?before={}", e.id)))
        .flatten();
    let body = if !allowed {
        set_status(403);
        view! { <p>"Only the workspace's owners and admins can read its audit log."</p> }.into_any()
    } else if bad_cursor {
        set_status(400);
        view! {
            <p class="callout warning">"This link to older events is not one Onramp makes: "
                <a href="/settings/audit">"start from the newest events"</a> " and follow \"Older events\"."</p>
        }
        .into_any()
    } else if events.is_empty() && older_page {
        view! { <p>"There are no older events."</p> <p><a href="/settings/audit">"Newest events"</a></p> }.into_any()
    } else if events.is_empty() {
        view! { <p>"Nothing has been recorded yet."</p> }.into_any()
    } else {
        view! {
            <div class="table-scroll" tabindex="0" role="region" aria-label="Audit log">
            <table class="audit">
                <caption class="visually-hidden">"Changes to " {name.clone()} ", newest first"</caption>
                <thead><tr><th scope="col">"When"</th><th scope="col">{format!("Who ({UNVERIFIED} address)")}</th><th scope="col">"What"</th><th scope="col">"From"</th></tr></thead>
                <tbody>
                    {events.into_iter().map(|e| view! {
                        <tr data-action=e.action.clone()>
                            <td>{when(e.at)}</td>
                            <td>{e.actor}</td>
                            <td>{audit::describe(&e.action)} <span class="audit-target">{format!(": {}", e.target)}</span></td>
                            <td>{e.ip}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
            </div>
            {older.map(|href| view! { <p><a href=href>"Older events"</a></p> })}
        }
        .into_any()
    };
    view! {
        <Title text="Audit log · Settings · Onramp"/>
        <super::BackLink href="/settings/workspace".to_owned() text="Back to Workspace"/>
        <main id="main" tabindex="-1">
            <span class="caption">{format!("Workspace {name}")}</span>
            <h1 tabindex="-1">"Audit log"</h1>
            <p>"Every change to the workspace and its connections, kept for a year. Tokens are never recorded."</p>
            {body}
        </main>
    }
}
