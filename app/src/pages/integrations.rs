//! Settings › Integrations, the GitLab integration page (connect, or manage a saved connection)
//! and the disconnect confirmation.

use super::report::{CheckList, ErrorLink, ErrorSummary};
use super::{base_param, query, query_seconds, with_base};
use crate::auth::{use_page_data, use_viewer};
use crate::integration::{Health, Integration};
use crate::wizard::step_href;
use leptos::prelude::*;
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

fn when(unix: i64) -> String {
    #[cfg(feature = "ssr")]
    {
        time::OffsetDateTime::from_unix_timestamp(unix)
            .map(|t| format!("{} {:02}:{:02} UTC", t.date(), t.hour(), t.minute()))
            .unwrap_or_default()
    }
    #[cfg(not(feature = "ssr"))]
    {
        unix.to_string()
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
fn health_notice(integration: &Integration) -> Option<impl IntoView> {
    let (title, text) = match integration.health(&today()) {
        Health::Healthy => return None,
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

/// Steps 2–3 happen here: Settings › Integrations, with the GitLab card.
#[component]
pub fn SettingsIntegrations() -> impl IntoView {
    let base = base_param();
    let saved = use_viewer().and_then(|v| v.integration);
    let disconnected = query("disconnected").is_some();
    view! {
        <Title text="Integrations · Settings · Onramp"/>
        <main id="main" tabindex="-1" class="narrow">
            <span class="caption">"Settings"</span>
            <h1 tabindex="-1">"Integrations"</h1>
            {disconnected.then(|| view! { <p class="callout" role="status">"GitLab was disconnected and its token deleted."</p> })}
            <ul class="cards">
                <li class="card" id="gitlab-card">
                    <h2>"GitLab"</h2>
                    {match saved {
                        Some(saved) => view! {
                            <p><strong>"Connected"</strong> {format!(" to {} as @{}.", saved.base_url, saved.username)}</p>
                            {health_notice(&saved)}
                            <p>{match saved.days_left(&today()) {
                                Some(d) if d > 0 => format!("Token expires in {d} days."),
                                Some(_) => "Token expired.".to_owned(),
                                None => "Token does not expire.".to_owned(),
                            }}</p>
                            <a class="button secondary" href="/integrations/gitlab">"Manage"</a>
                        }
                        .into_any(),
                        None => view! {
                            <p>"Read merge requests, commits and pipelines from GitLab.com or your own GitLab."</p>
                            <a class="button" href=with_base("/integrations/gitlab", base.as_ref()) aria-label="Integrate GitLab">"Integrate"</a>
                        }
                        .into_any(),
                    }}
                </li>
            </ul>
            <p><a href="/settings/api-tokens">"Onramp API tokens for scripts"</a></p>
        </main>
    }
}

/// Step 4 when nothing is connected; the management page of the saved connection otherwise.
#[component]
pub fn GitlabIntegration() -> impl IntoView {
    let base = base_param();
    let saved = use_viewer().and_then(|v| v.integration);
    let body = match saved {
        None => view! {
            <p class="lead">"Onramp connects with a personal access token of yours. You will:"</p>
            <ol>
                <li>"create the token in your GitLab, with the scopes Onramp needs and an expiry date;"</li>
                <li>"find your GitLab's base URL;"</li>
                <li>"paste both here. Onramp checks them at once and explains anything that needs fixing."</li>
            </ol>
            <p>"You need the Maintainer role or higher on at least one group or project."</p>
            <a class="button" href=step_href(5, base.as_ref())>"Integrate GitLab"</a>
        }
        .into_any(),
        Some(saved) => manage(saved).into_any(),
    };
    view! {
        <Title text="GitLab · Integrations · Onramp"/>
        <super::BackLink href="/settings/integrations".to_owned() text="Back to Integrations"/>
        <main id="main" tabindex="-1" class="narrow">
            <span class="caption">"Integrations"</span>
            <h1 tabindex="-1">"GitLab"</h1>
            {body}
        </main>
    }
}

fn manage(saved: Integration) -> impl IntoView {
    let page = use_page_data();
    let failed_replacement = page.check.map(|c| c.report).filter(|r| !r.ok);
    let limited = query_seconds("limited");
    let status = if query("rechecked").is_some() {
        Some(if saved.last_check_ok {
            "Checked again: the connection works."
        } else {
            "Checked again: there are problems, see below."
        })
    } else if query("replaced").is_some() {
        Some("The token was replaced: Onramp uses the new one from now on.")
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
    let base = crate::gitlab::base_url::BaseUrl::parse(&saved.base_url).ok();
    view! {
        {(!errors.is_empty()).then(|| view! { <ErrorSummary links=errors/> })}
        {status.map(|s| view! { <p class="callout" role="status" id="status">{s}</p> })}
        {health_notice(&saved)}
        <IntegrationSummary integration=saved.clone()/>
        <form method="post" action="/api/gitlab/recheck" data-enhance="" data-pending-label="Checking…" id="recheck">
            <button type="submit" class="button">"Re-check now"</button>
        </form>
        <h2>"Replace the token"</h2>
        <p>"Create a new token (" <a href=step_href(7, base.as_ref())>"steps 7 to 9"</a> "), paste it here, and Onramp checks it before swapping it in. Until then the current token stays in use."</p>
        <form method="post" action="/api/gitlab/replace" data-enhance="" data-pending-label="Checking the new token…" novalidate>
            <div class="field">
                <label for="new-token">"New personal access token"</label>
                <input id="new-token" name="token" type="password" autocomplete="off" spellcheck="false"/>
            </div>
            <button type="submit" class="button secondary">"Check and replace"</button>
        </form>
        {failed_replacement.map(|r| view! { <h2>"The new token was not saved"</h2> <CheckList report=r base=base.clone()/> })}
        <h2>"Last check"</h2>
        <CheckList report=saved.last_report.clone() base=base.clone()/>
        <h2>"Disconnect"</h2>
        <p>"Onramp stops reading GitLab and deletes the token. Revoke it in GitLab too."</p>
        <p><a href="/integrations/gitlab/disconnect" class="danger-link">"Disconnect GitLab"</a></p>
    }
}

/// Asks before deleting the saved connection.
#[component]
pub fn DisconnectPage() -> impl IntoView {
    let saved = use_viewer().and_then(|v| v.integration);
    view! {
        <Title text="Disconnect GitLab? · Onramp"/>
        <super::BackLink href="/integrations/gitlab".to_owned()/>
        <main id="main" tabindex="-1" class="narrow">
            <h1 tabindex="-1">"Disconnect GitLab?"</h1>
            {match saved {
                Some(saved) => view! {
                    <p>"Onramp will stop reading " <strong>{saved.base_url}</strong> " and delete the token. This cannot be undone: to connect again you will need a token."</p>
                    <form method="post" action="/api/gitlab/disconnect">
                        <button type="submit" class="button danger">"Yes, disconnect GitLab"</button>
                    </form>
                    <p><a href="/integrations/gitlab">"No, keep the connection"</a></p>
                }
                .into_any(),
                None => view! { <p>"GitLab is not connected." " " <a href="/settings/integrations">"Back to Integrations"</a></p> }.into_any(),
            }}
        </main>
    }
}
