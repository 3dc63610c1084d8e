//! Settings › Integrations, the GitLab integration page (connect, or manage a saved connection)
//! and the disconnect confirmation.

use super::common::{missing_connection, when, ConnectionData, KeptCheck};
use super::loaded;
use super::report::{CheckList, ErrorLink, ErrorSummary};
use super::{base_param, query, query_seconds, with_base};
use crate::api;
use crate::auth::use_viewer;
use crate::integration::{ConnectionEvent, Health, Integration, RotationView};
use crate::wizard::step_href;
use crate::workspace::{Action, Role};
use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;

/// Today as `YYYY-MM-DD` (pages render on the server).
pub(crate) fn today() -> String {
    #[cfg(feature = "ssr")]
    {
        time::OffsetDateTime::now_utc().date().to_string()
    }
    #[cfg(not(feature = "ssr"))]
    {
        String::new()
    }
}

/// What is saved: instance, account, token (name and last four characters), expiry, last check.
#[component]
pub(crate) fn IntegrationSummary(integration: Integration) -> impl IntoView {
    let today = today();
    let expiry = match (&integration.expires_at, integration.days_left(&today)) {
        (Some(date), Some(days)) if days > 0 => format!("{date} ({days} day{} left)", if days == 1 { "" } else { "s" }),
        (Some(date), _) => format!("{date} (expired)"),
        (None, _) => "never".to_owned(),
    };
    let token = match &integration.token_name {
        Some(name) => format!("{name} (…{})", integration.token_last4),
        None => format!("…{}", integration.token_last4),
    };
    view! {
        <dl class="summary">
            <dt>"GitLab"</dt><dd id="connected-base">{integration.base_url.clone()}</dd>
            {integration.gitlab_version.clone().map(|v| view! { <dt>"Version"</dt><dd>{v}</dd> })}
            <dt>"Account"</dt><dd id="connected-user">{format!("@{}", integration.username)}</dd>
            <dt>"Token"</dt><dd id="connected-token">{token}</dd>
            <dt>"Expires"</dt><dd id="connected-expiry">{expiry}</dd>
            <dt>"Last checked"</dt>
            <dd id="connected-checked">
                {when(integration.last_check_at)}
                {if integration.last_check_ok { " — all good" } else { " — problems found" }}
            </dd>
        </dl>
    }
}

/// A warning about a saved connection that needs attention, if any.
fn health_notice(integration: &Integration, rotation: &RotationView) -> Option<impl IntoView> {
    let rotates = rotation.cannot.is_none()
        && !rotation.latest.as_ref().is_some_and(|r| {
            Some(r.token_id) == integration.token_id && matches!(r.state.as_str(), "lost" | "refused")
        });
    let (title, text) = match integration.health(&today()) {
        Health::Healthy => return None,
        Health::ExpiresSoon(days) if rotates => (
            "Onramp rotates the token before it expires".to_owned(),
            format!(
                "It expires in {days} day{}; Onramp replaces it with a new one{}. Nothing to do.",
                if days == 1 { "" } else { "s" },
                rotation.rotates_on.as_ref().map(|d| format!(" from {d}")).unwrap_or_default()
            ),
        ),
        Health::ExpiresSoon(days) => (
            "The token expires soon".to_owned(),
            format!(
                "It stops working in {days} day{}. Create a new token and replace this one.",
                if days == 1 { "" } else { "s" }
            ),
        ),
        Health::Expired => {
            ("The token has expired".to_owned(), "Onramp cannot read GitLab any more: replace the token.".to_owned())
        }
        Health::CheckFailed => (
            "The last check failed".to_owned(),
            "Onramp could not use the connection when it last checked: see the report below.".to_owned(),
        ),
    };
    Some(view! {
        <div class="callout warning" role="status" id="health">
            <h2>{title}</h2>
            <p>{text}</p>
        </div>
    })
}

/// The health of a connection in a few words, for lists.
fn health_words(integration: &Integration) -> (&'static str, String) {
    match integration.health(&today()) {
        Health::Healthy => ("ok", "Working".to_owned()),
        Health::ExpiresSoon(d) => ("warning", format!("Token expires in {d} day{}", if d == 1 { "" } else { "s" })),
        Health::Expired => ("problem", "Token expired".to_owned()),
        Health::CheckFailed => ("problem", "Last check failed".to_owned()),
    }
}

/// Steps 2–3 happen here: Settings › Integrations, with the GitLab card.
#[component]
pub fn SettingsIntegrations() -> impl IntoView {
    let base = base_param();
    let viewer = use_viewer();
    let saved = viewer.as_ref().map(|v| v.integrations.clone()).unwrap_or_default();
    let workspace = viewer.as_ref().and_then(|v| v.workspace.clone()).map(|w| w.name).unwrap_or_default();
    let problems = saved.iter().filter(|i| i.health(&today()) != Health::Healthy).count();
    view! {
        <Title text="Integrations · Settings · Onramp"/>
        <main id="main" tabindex="-1" class="narrow">
            <span class="caption">{format!("Settings · {workspace}")}</span>
            <h1 tabindex="-1">"Integrations"</h1>
            {query("full").map(|_| view! {
                <p class="callout warning" role="alert">{crate::integration::full_message()}</p>
            })}
            <ul class="cards">
                <li class="card" id="gitlab-card">
                    <h2>"GitLab"</h2>
                    {if saved.is_empty() {
                        view! {
                            <p>"Read merge requests, commits and pipelines from GitLab.com or your own GitLab."</p>
                            <a class="button" href=with_base("/integrations/gitlab", base.as_ref()) aria-label="Integrate GitLab">"Integrate"</a>
                        }
                        .into_any()
                    } else {
                        let count = saved.len();
                        view! {
                            <p><strong>"Connected"</strong>
                                {format!(": {count} connection{}", if count == 1 { "" } else { "s" })}
                                {(count == 1).then(|| format!(" to {} as @{}", saved[0].base_url, saved[0].username))}
                                "."</p>
                            {(count == 1).then(|| view! { <p>{match saved[0].days_left(&today()) {
                                Some(d) if d > 0 => format!("Token expires in {d} days."),
                                Some(_) => "Token expired.".to_owned(),
                                None => "Token does not expire.".to_owned(),
                            }}</p> })}
                            {(problems > 0).then(|| view! {
                                <p class="callout warning" id="health">{format!("{problems} need{} attention.", if problems == 1 { "s" } else { "" })}</p>
                            })}
                            <a class="button secondary" href="/integrations/gitlab">"Manage"</a>
                        }
                        .into_any()
                    }}
                </li>
            </ul>
            <p><a href="/settings/workspace">"Workspace, members and invitations"</a></p>
            <p><a href="/settings/api-tokens">"Onramp API tokens for scripts"</a></p>
            <p><a href="/settings/platform">"Platform keys for your own collector"</a></p>
        </main>
    }
}

/// Step 4 when the workspace has no connection; its connections otherwise.
#[component]
pub fn GitlabIntegration() -> impl IntoView {
    let base = base_param();
    let viewer = use_viewer();
    let saved = viewer.as_ref().map(|v| v.integrations.clone()).unwrap_or_default();
    let may_manage = viewer.as_ref().is_some_and(|v| v.may(Action::ManageConnections));
    let workspace = viewer.as_ref().and_then(|v| v.workspace.clone()).map(|w| w.name).unwrap_or_default();
    let disconnected = query("disconnected").is_some();
    let start = view! {
        <p class="lead">"Onramp connects with a personal access token. You will:"</p>
        <ol>
            <li>"create the token in your GitLab, with the scopes Onramp needs and an expiry date;"</li>
            <li>"find your GitLab's base URL;"</li>
            <li>"paste both here. Onramp checks them at once and explains anything that needs fixing."</li>
        </ol>
        <p>"You need the Maintainer role or higher on at least one group or project. If a colleague has it, each GitLab step lets you send them a link to it."</p>
    };
    let body = match (saved.is_empty(), may_manage) {
        (true, true) => view! {
            {start}
            <a class="button" href=step_href(5, base.as_ref())>"Integrate GitLab"</a>
        }
        .into_any(),
        (true, false) => view! {
            <p>"This workspace has no GitLab connection yet. You are a viewer here: an owner or admin of the workspace connects GitLab."</p>
        }
        .into_any(),
        (false, _) => view! {
            <ul class="connections">
                {saved.into_iter().map(|i| {
                    let (class, words) = health_words(&i);
                    let href = format!("/integrations/gitlab/connections/{}", i.id);
                    view! {
                        <li class="card connection">
                            <h2><a href=href>{i.base_url.clone()}</a></h2>
                            <p>{format!("As @{} · ", i.username)} <span class=format!("health {class}")>{words}</span></p>
                            <p class="hint">{format!("Last checked {}", when(i.last_check_at))}</p>
                        </li>
                    }
                }).collect_view()}
            </ul>
            {may_manage.then(|| view! {
                <h2>"Add another connection"</h2>
                <p>"Another GitLab (gitlab.com beside a self-managed instance), or another GitLab user: each connection has its own token and health."</p>
                <a class="button secondary" href=step_href(5, base.as_ref())>"Connect another GitLab"</a>
            })}
        }
        .into_any(),
    };
    view! {
        <Title text="GitLab · Integrations · Onramp"/>
        <super::BackLink href="/settings/integrations".to_owned() text="Back to Integrations"/>
        <main id="main" tabindex="-1" class="narrow">
            <span class="caption">{format!("Integrations · {workspace}")}</span>
            <h1 tabindex="-1">"GitLab"</h1>
            {disconnected.then(|| view! { <p class="callout" role="status" id="status">"The connection was disconnected and its token deleted."</p> })}
            {body}
        </main>
    }
}

/// Loads [`ConnectionData`] for `/integrations/gitlab/connections/{id}…`, found through the
/// viewer's membership (another workspace's connection is as missing as one that never was).
#[cfg(feature = "ssr")]
pub(crate) async fn load(
    app: &crate::state::AppState,
    user_id: &str,
    id: &str,
) -> Result<ConnectionData, crate::store::StoreError> {
    let Some((connection, role)) = crate::store::integrations::find_for_user(&app.db, user_id, id).await? else {
        return Ok(ConnectionData::default());
    };
    Ok(ConnectionData {
        rotation: crate::rotation::view(app, &connection).await?,
        events: crate::store::events::list(&app.db, &connection.workspace_id, &connection.id, 20).await?,
        scope: Default::default(),
        connection: Some((connection, role)),
    })
}

/// `/integrations/gitlab/connections/{id}`: one connection, managed by owners and admins, seen by
/// viewers.
#[component]
pub fn ConnectionPage() -> impl IntoView {
    let Some((saved, role)) = loaded::<ConnectionData>().connection else {
        return missing_connection().into_any();
    };
    let title = format!("{} · GitLab · Onramp", saved.base_url);
    view! {
        <Title text=title/>
        <super::BackLink href="/integrations/gitlab".to_owned() text="Back to GitLab connections"/>
        <main id="main" tabindex="-1" class="narrow">
            <span class="caption">"GitLab connection"</span>
            <h1 tabindex="-1">{saved.base_url.clone()}</h1>
            {manage(saved, role)}
        </main>
    }
    .into_any()
}

fn manage(saved: Integration, role: Role) -> impl IntoView {
    let page = loaded::<ConnectionData>();
    let may_manage = role.may(Action::ManageConnections);
    let failed_replacement = loaded::<KeptCheck>().check.map(|c| c.report).filter(|r| !r.ok);
    let limited = query_seconds("limited");
    let status = if query("rechecked").is_some() {
        Some(if saved.last_check_ok {
            "Checked again: the connection works."
        } else {
            "Checked again: there are problems, see below."
        })
    } else if query("replaced").is_some() {
        Some("The token was replaced: Onramp uses the new one from now on.")
    } else if query("rotation").as_deref() == Some("rotated") {
        Some("The token was rotated: Onramp uses the new one from now on, and GitLab revoked the old one.")
    } else if query("rotation").is_some() {
        Some("The token was not rotated: see Rotation below.")
    } else {
        None
    };
    let mut errors: Vec<ErrorLink> = failed_replacement
        .as_ref()
        .map(|r| r.failures().map(|c| ErrorLink { href: "#new-token".into(), text: c.message.clone() }).collect())
        .unwrap_or_default();
    if let Some(wait) = limited {
        errors.push(ErrorLink {
            href: "#recheck".into(),
            text: format!("Too many connection checks. Try again in {wait} seconds."),
        });
    }
    if query("clash").is_some() {
        errors.push(ErrorLink {
            href: "#new-token".into(),
            text: "That token belongs to a GitLab user another connection of this workspace already uses: nothing was changed."
                .into(),
        });
    }
    let base = crate::gitlab::base_url::BaseUrl::parse(&saved.base_url).ok();
    let id = saved.id.clone();
    view! {
        {(!errors.is_empty()).then(|| view! { <ErrorSummary links=errors/> })}
        {status.map(|s| view! { <p class="callout" role="status" id="status">{s}</p> })}
        {health_notice(&saved, &page.rotation)}
        <IntegrationSummary integration=saved.clone()/>
        {super::scope::scope_section(&saved, page.scope.clone(), may_manage)}
        {rotation_section(&saved, &page.rotation, may_manage)}
        {may_manage.then(|| view! {
            <form method="post" action=api::Recheck::PATH data-enhance="" data-pending-label="Checking…" id="recheck">
                <input type="hidden" name="id" value=id.clone()/>
                <button type="submit" class="button">"Re-check now"</button>
            </form>
            <h2>"Replace the token"</h2>
            <p>"Create a new token (" <a href=step_href(7, base.as_ref())>"steps 7 to 9"</a> "), paste it here, and Onramp checks it before swapping it in. Until then the current token stays in use."</p>
            <form method="post" action=api::ReplaceToken::PATH data-enhance="" data-pending-label="Checking the new token…" novalidate>
                <input type="hidden" name="id" value=id.clone()/>
                <div class="field">
                    <label for="new-token">"New personal access token"</label>
                    <input id="new-token" name="token" type="password" autocomplete="off" spellcheck="false"/>
                </div>
                <button type="submit" class="button secondary">"Check and replace"</button>
            </form>
        })}
        {(!may_manage).then(|| view! {
            <p class="callout">"You are a viewer in this workspace: you see the connection and its health. An owner or admin re-checks, replaces or disconnects it."</p>
        })}
        {failed_replacement.map(|r| view! { <h2>"The new token was not saved"</h2> <CheckList report=r base=base.clone()/> })}
        <h2>"Last check"</h2>
        <CheckList report=saved.last_report.clone() base=base.clone()/>
        {events_section(page.events.clone(), base.clone())}
        {may_manage.then(|| view! {
            <h2>"Disconnect"</h2>
            <p>"Onramp stops reading this GitLab and deletes the token. Revoke it in GitLab too."</p>
            <p><a href=format!("/integrations/gitlab/connections/{id}/disconnect") class="danger-link">"Disconnect this GitLab connection"</a></p>
        })}
    }
}

/// When and whether Onramp rotates the token, the latest rotation, and "Rotate now".
fn rotation_section(saved: &Integration, rotation: &RotationView, may_manage: bool) -> impl IntoView {
    // A rotation of an earlier token (replaced since) matters only when it worked: history.
    let latest = rotation.latest.clone().filter(|r| r.state == "rotated" || Some(r.token_id) == saved.token_id);
    let plan = match (&rotation.cannot, &rotation.rotates_on) {
        (Some(why), _) => why.clone(),
        (None, Some(on)) => format!(
            "Onramp rotates this token on {on} (before it expires): GitLab issues a new token with the same \
             lifetime and revokes this one, and Onramp keeps using the new one. Nothing to do."
        ),
        (None, None) => "Onramp rotates this token before it expires.".to_owned(),
    };
    let last = latest.map(|r| {
        let (class, text) = match r.state.as_str() {
            "rotated" => (
                "",
                format!(
                    "Rotated on {}{}{}.",
                    when(r.finished_at.unwrap_or(r.started_at)),
                    r.new_expires_at.as_ref().map(|d| format!(", expires on {d}")).unwrap_or_default(),
                    if r.trigger == "manual" { " (asked for on this page or the API)" } else { "" }
                ),
            ),
            "sending" => ("", format!("A rotation started on {} is waiting for GitLab's answer.", when(r.started_at))),
            _ => ("callout warning", r.message.clone()),
        };
        view! { <p class=class id="last-rotation">{text}</p> }
    });
    let id = saved.id.clone();
    view! {
        <h2 id="rotation">"Rotation"</h2>
        <p id="rotation-plan">{plan}</p>
        {last}
        {(may_manage && rotation.cannot.is_none()).then(|| view! {
            <form method="post" action=api::RotateToken::PATH data-enhance="" data-pending-label="Rotating…" id="rotate">
                <input type="hidden" name="id" value=id/>
                <p class="hint">"Rotating now replaces the token at once; the old one stops working."</p>
                <button type="submit" class="button secondary">"Rotate now"</button>
            </form>
        })}
    }
}

/// What happened to the connection lately (rotations, failures, reminders), newest first.
fn events_section(events: Vec<ConnectionEvent>, base: Option<crate::gitlab::base_url::BaseUrl>) -> impl IntoView {
    (!events.is_empty()).then(|| {
        let items = events
            .into_iter()
            .map(|e| {
                let fix = e
                    .fix_step
                    .map(|n| view! { " " <a href=step_href(n, base.as_ref())>{format!("Step {n} fixes it.")}</a> });
                let mailed = match e.mail_state.as_str() {
                    "sent" => " Mailed to the workspace's owners and admins.",
                    "failed" => " The mail could not be sent.",
                    _ => "",
                };
                view! { <li><span class="caption">{when(e.created_at)}</span> " " {e.detail} {fix} {mailed}</li> }
            })
            .collect_view();
        view! {
            <h2 id="events">"What happened"</h2>
            <ul class="events">{items}</ul>
        }
    })
}

/// Asks before deleting a connection.
#[component]
pub fn DisconnectPage() -> impl IntoView {
    let Some((saved, role)) = loaded::<ConnectionData>().connection.filter(|(_, r)| r.may(Action::ManageConnections))
    else {
        return missing_connection().into_any();
    };
    let _ = role;
    let back = format!("/integrations/gitlab/connections/{}", saved.id);
    view! {
        <Title text="Disconnect GitLab? · Onramp"/>
        <super::BackLink href=back.clone()/>
        <main id="main" tabindex="-1" class="narrow">
            <h1 tabindex="-1">"Disconnect GitLab?"</h1>
            <p>"Onramp will stop reading " <strong>{saved.base_url.clone()}</strong> {format!(" as @{}", saved.username)}
                " and delete the token. This cannot be undone: to connect again you will need a token."</p>
            <form method="post" action=api::Disconnect::PATH>
                <input type="hidden" name="id" value=saved.id.clone()/>
                <button type="submit" class="button danger">"Yes, disconnect"</button>
            </form>
            <p><a href=back>"No, keep the connection"</a></p>
        </main>
    }
    .into_any()
}
