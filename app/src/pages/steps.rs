//! The wizard's step pages: `/integrations/gitlab/step/{n}`, each complete on the server.

use super::common::KeptCheck;
use super::loaded;
use super::report::{CheckList, ErrorLink, ErrorSummary};
use super::workspaces::ShareStep;
use super::{base_param, query, query_seconds, NotFound};
use crate::api;
use crate::auth::{use_confirmed_hosts, use_viewer};
use crate::gitlab::base_url::BaseUrl;
use crate::gitlab::links;
use crate::gitlab::report::CheckId;
use crate::trust::InstanceTrust;
use crate::wizard::{step_href, Actor, Step, STEPS};
use crate::workspace::Action;
use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

/// What a step's content adds to the page around it.
struct Content {
    view: AnyView,
    /// The page shows a problem: its title starts with "Error: ".
    error: bool,
    /// Where "Continue" goes; `None` when the step has its own primary action.
    next: Option<String>,
}

impl Content {
    fn new(view: AnyView, step: &Step, base: Option<&BaseUrl>) -> Self {
        Content { view, error: false, next: step.next().map(|s| s.href(base)) }
    }
}

#[component]
pub fn StepPage() -> impl IntoView {
    let segment = use_params_map().with_untracked(|p| p.get("n")).unwrap_or_default();
    let Some(step) = Step::from_segment(&segment) else {
        return NotFound().into_any();
    };
    let base = base_param();
    let base = base.as_ref();
    // An instance named by a link is confirmed by the reader before any page links into it.
    let trust = base.map(|b| {
        let saved: Vec<BaseUrl> = use_viewer()
            .map(|v| v.integrations.iter().filter_map(|i| BaseUrl::parse(&i.base_url).ok()).collect())
            .unwrap_or_default();
        crate::trust::judge(b, &use_confirmed_hosts(), &saved)
    });
    // Arrived from an invitation link: say where the connection will go.
    let joined = query("joined").and_then(|_| use_viewer()).and_then(|v| v.workspace).map(|w| {
        view! {
            <p class="callout" role="status" id="joined">
                "Welcome to " <strong>{w.name.clone()}</strong> {format!(": you joined as {}. ", w.role.label().to_lowercase())}
                "Follow the guide from here; the connection you save in step 12 belongs to " <strong>{w.name}</strong> "."
            </p>
        }
    });
    let share = (5..=12).contains(&step.number).then(|| view! { <ShareStep step=step.number base=base.cloned()/> });
    // The drawing shows the reader's GitLab only once they confirmed it, like every link into it.
    let confirmed = base.filter(|_| trust.as_ref().is_some_and(InstanceTrust::is_confirmed));
    let figure = step_figure(step.number, confirmed);
    let with_figure = figure.is_some();
    let content = match step.number {
        1 => Content::new(step_1().into_any(), step, base),
        2 => Content::new(step_2(base).into_any(), step, base),
        3 => Content::new(step_3(base).into_any(), step, base),
        4 => Content::new(step_4(base).into_any(), step, base),
        5..=10 => gitlab_step(step, base, trust),
        11 => step_11(step, base),
        12 => step_12(step, base, trust),
        _ => step_13(base),
    };
    let title = if content.error { format!("Error: {}", step.document_title()) } else { step.document_title() };
    let (back, back_to) = match step.previous() {
        Some(prev) => (prev.href(base), format!("step {}", prev.number)),
        None => ("/".to_owned(), "Onramp's home page".to_owned()),
    };
    let next_number = step.next().map(|s| s.number);
    view! {
        <Title text=title/>
        <super::BackLink href=back to=back_to/>
        <div class="wizard">
            <main id="main" tabindex="-1">
                <span class="caption" id="step-caption">{step.caption()}</span>
                <h1 id="step-title" tabindex="-1" aria-describedby="step-caption">{step.title}</h1>
                {joined}
                <div class="step-body" class:with-figure=with_figure>
                    <div class="step-text">{content.view}</div>
                    {figure}
                </div>
                {content.next.map(|href| view! {
                    <a class="button" href=href>"Continue"
                        {next_number.map(|n| view! { <span class="visually-hidden">{format!(" to step {n}")}</span> })}
                    </a>
                })}
                {share}
            </main>
            <StepList current=step.number base=base.cloned()/>
        </div>
    }
    .into_any()
}

/// The drawing of the GitLab screen of steps 5–11, with its numbered markers named below it.
fn step_figure(step: u8, base: Option<&BaseUrl>) -> Option<impl IntoView> {
    let figure = crate::figures::figure(step, base.map(BaseUrl::to_string).as_deref())?;
    let markers = figure.markers.iter().map(|m| view! { <li>{*m}</li> }).collect_view();
    Some(view! {
        <figure class="step-figure" id="figure">
            <div class="figure-drawing" inner_html=figure.svg></div>
            <figcaption>
                <span class="figure-title">{figure.title}</span>
                <ol class="figure-markers">{markers}</ol>
            </figcaption>
        </figure>
    })
}

#[component]
fn StepList(current: u8, base: Option<BaseUrl>) -> impl IntoView {
    view! {
        <nav class="step-list" aria-label="Steps of the GitLab guide">
            <ol>
                {STEPS
                    .iter()
                    .map(|s| {
                        let is_current = s.number == current;
                        let done = s.number < current;
                        view! {
                            <li class:current=is_current class:done=done>
                                <a href=s.href(base.as_ref()) aria-current=is_current.then_some("step")>
                                    <span class="step-number" aria-hidden="true">{s.number}</span>
                                    <span>{s.title}</span>
                                    {(s.actor == Actor::GitLab).then(|| view! { <span class="visually-hidden">" (in GitLab)"</span> })}
                                    {done.then(|| view! { <span class="visually-hidden">" (completed)"</span> })}
                                </a>
                            </li>
                        }
                    })
                    .collect_view()}
            </ol>
        </nav>
    }
}

fn step_1() -> impl IntoView {
    let next: String = url::form_urlencoded::byte_serialize(step_href(2, None).as_bytes()).collect();
    match use_viewer() {
        Some(viewer) => view! {
            <p>"You are logged in to Onramp as " <strong>{viewer.user.email}</strong> "."</p>
        }
        .into_any(),
        None => view! {
            <p>"Log in to Onramp with your work email address. The GitLab connection will belong to your workspace: you and the colleagues you invite see it; nobody else can."</p>
            <p>
                <a href=format!("/login?next={next}")>"Log in"</a>
                " or "
                <a href=format!("/signup?next={next}")>"create an account"</a>
                "."
            </p>
            <p class="hint">"Steps 1 to 11 can be read without an account, so you can share them with the colleague who creates the token."</p>
        }
        .into_any(),
    }
}

fn step_2(base: Option<&BaseUrl>) -> impl IntoView {
    view! {
        <p>"In Onramp, open " <strong>"Settings"</strong> ", then " <strong>"Integrations"</strong> "."</p>
        <p><a href=super::with_base("/settings/integrations", base)>"Open Settings › Integrations"</a></p>
    }
}

fn step_3(base: Option<&BaseUrl>) -> impl IntoView {
    view! {
        <p>"On the Integrations page, find the " <strong>"GitLab"</strong> " card and select " <strong>"Integrate"</strong> "."</p>
        <p><a href=super::with_base("/settings/integrations", base)>"Open the Integrations page"</a></p>
    }
}

fn step_4(base: Option<&BaseUrl>) -> impl IntoView {
    view! {
        <p>"The GitLab page explains what Onramp will read. Select " <strong>"Integrate GitLab"</strong> " to start: the next steps happen in your GitLab."</p>
        <p><a href=super::with_base("/integrations/gitlab", base)>"Open the GitLab integration page"</a></p>
    }
}

/// Steps 5–10 happen in GitLab: each explains what to do there and links to the exact page of the
/// user's instance, once it is known. Until then, a small form asks which GitLab it is.
fn gitlab_step(step: &Step, base: Option<&BaseUrl>, trust: Option<InstanceTrust>) -> Content {
    let invalid = query("base").filter(|_| base.is_none()).map(|typed| {
        let message = BaseUrl::parse(&typed).err().map(|e| e.to_string()).unwrap_or_default();
        (typed, message)
    });
    let error = invalid.is_some();
    // Links into the instance only once it is confirmed.
    let linkable = base.filter(|_| trust.as_ref().is_some_and(InstanceTrust::is_confirmed));
    let instance = match (base, trust) {
        (Some(base), Some(InstanceTrust::Unconfirmed { mixes_scripts, saved_elsewhere })) => view! {
            <ConfirmInstance base=base.clone() step=step.number mixes_scripts saved_elsewhere/>
        }
        .into_any(),
        (Some(base), _) => view! {
            <p class="instance">"Your GitLab: " <InstanceName base=base.clone()/> " "
                <a href=step.href(None)>"Change" <span class="visually-hidden">" your GitLab"</span></a>
            </p>
        }
        .into_any(),
        (None, _) => instance_form(step, invalid).into_any(),
    };
    let body = match step.number {
        5 => step_5(linkable).into_any(),
        6 => step_6(linkable).into_any(),
        7 => step_7(linkable).into_any(),
        8 => step_8(linkable).into_any(),
        9 => step_9().into_any(),
        _ => step_10(linkable).into_any(),
    };
    let mut content =
        Content::new(view! { {instance} {body} {service_account_path(step.number)} }.into_any(), step, base);
    content.error = error;
    content
}

/// GitLab's page about service accounts (who may create one, on which tier).
const SERVICE_ACCOUNTS_DOCS: &str = "https://docs.gitlab.com/user/profile/service_accounts/";

/// The other way through steps 5–9: a token of a service account (a machine user) instead of a
/// person's. Folded away: most people take the first way; teams should know the second exists.
fn service_account_path(step: u8) -> Option<impl IntoView> {
    let body = match step {
        5 => view! {
            <p>"A personal token stops working when its owner leaves or is blocked. A " <strong>"service account"</strong>
                " is a machine user that belongs to nobody: the connection outlives people. It takes no seat. It is free on every tier since GitLab 18.11 (Premium or Ultimate before)."</p>
            <p>"A service account cannot sign in. Its token is created by the Owner of your top-level group (on GitLab.com) or by an administrator (self-managed): sign in as that person now."</p>
            <p><a href=SERVICE_ACCOUNTS_DOCS target="_blank" rel="noopener noreferrer">"GitLab's guide to service accounts" <span class="visually-hidden">" (opens in a new tab)"</span></a></p>
        }.into_any(),
        6 => view! {
            <p>"Instead of your own settings, open your top-level group's " <strong>"Settings"</strong> " › " <strong>"Service accounts"</strong>
                " (administrators of a self-managed GitLab: " <strong>"Admin"</strong> " › " <strong>"Service accounts"</strong> ") and select "
                <strong>"Add service account"</strong> ". Name it " <strong>"Onramp"</strong> "."</p>
            <p>"Then add it to the groups Onramp should read, with the " <strong>"Maintainer"</strong> " role: in each group, "
                <strong>"Manage"</strong> " › " <strong>"Members"</strong> " › " <strong>"Invite members"</strong> "."</p>
        }.into_any(),
        7 => view! {
            <p>"On the service account, select " <strong>"Manage access tokens"</strong> " (the ⋮ menu next to it) › " <strong>"Add new token"</strong>
                ". Name and expiry date as below."</p>
        }.into_any(),
        8 => view! {
            <p>"The same four scopes. Keep " <code>"api"</code> ": with it Onramp rotates the token itself before it expires, and a service account gets no mail from GitLab when its token is about to expire."</p>
        }.into_any(),
        9 => view! {
            <p>"GitLab shows the service account's token once, like any other: copy it now. In step 12 Onramp tells you it belongs to a service account."</p>
        }.into_any(),
        _ => return None,
    };
    Some(view! {
        <details class="other-path" id="service-account">
            <summary>"Using a service account instead (recommended for teams)"</summary>
            {body}
        </details>
    })
}

fn instance_form(step: &Step, invalid: Option<(String, String)>) -> impl IntoView {
    let (typed, message) = invalid.unzip();
    let gitlab_com = BaseUrl::parse("https://gitlab.com").expect("a valid URL");
    view! {
        {message.clone().map(|m| view! {
            <ErrorSummary links=vec![ErrorLink { href: "#base".into(), text: m }]/>
        })}
        <form method="post" action=api::ConfirmInstance::PATH class="instance-form" data-enhance="">
            <input type="hidden" name="step" value=step.number.to_string()/>
            <div class="field" class:field-error=message.is_some()>
                <label for="base">"Which GitLab do you use?"</label>
                <p class="hint" id="base-hint">"Its address, for example https://gitlab.example.com. Onramp then links you to the right pages of it."</p>
                {message.clone().map(|m| view! { <p class="error-message" id="base-error"><span class="visually-hidden">"Error: "</span>{m}</p> })}
                <input id="base" name="base" type="text" inputmode="url" autocomplete="url" spellcheck="false"
                    value=typed aria-describedby="base-hint base-error"/>
            </div>
            <button type="submit" class="button secondary">"Use this GitLab"</button>
            <p>"Or " <a href=step.href(Some(&gitlab_com))>"use GitLab.com"</a> "."</p>
        </form>
    }
}

/// An instance's address, with its host as people read it when that differs (`xn--…`).
#[component]
fn InstanceName(base: BaseUrl) -> impl IntoView {
    let unicode = base.unicode_host();
    view! {
        <strong class="instance-url">{base.to_string()}</strong>
        {unicode.map(|u| view! { " " <span class="instance-unicode">"(" <span lang="">{u}</span> ")"</span> })}
    }
}

/// "Is this your GitLab?": shown instead of any link into an instance a link named, until the
/// reader confirms it (a plain form: works without JavaScript).
#[component]
fn ConfirmInstance(base: BaseUrl, step: u8, mixes_scripts: bool, saved_elsewhere: Option<String>) -> impl IntoView {
    let host = base.host().to_owned();
    view! {
        <section class="callout warning confirm-instance" aria-labelledby="confirm-title">
            <h2 id="confirm-title">"Is this your GitLab?"</h2>
            <p>"This page was opened with the address of a GitLab you have not used with Onramp in this browser:"</p>
            <p class="instance-name"><InstanceName base=base.clone()/></p>
            <p>"Its host name is " <strong class="instance-host">{host}</strong> "."</p>
            {mixes_scripts.then(|| view! {
                <p class="error-message"><strong>"Careful: "</strong>"this name mixes letters of different alphabets, as look-alikes of real addresses do."</p>
            })}
            {saved_elsewhere.map(|saved| view! {
                <p class="error-message"><strong>"Careful: "</strong>"your saved connection uses " <strong>{saved}</strong> ", not this GitLab."</p>
            })}
            <p>"Continue only if you recognise it as your organisation's GitLab. A look-alike address can capture your password and your token."</p>
            <form method="post" action=api::ConfirmInstance::PATH data-enhance="">
                <input type="hidden" name="base" value=base.to_string()/>
                <input type="hidden" name="step" value=step.to_string()/>
                <button type="submit" class="button">"Yes, this is my GitLab"</button>
            </form>
            <p><a href=step_href(step, None)>"No, let me enter my GitLab's address"</a></p>
        </section>
    }
}

/// A link into the user's GitLab, opening in a new tab so the guide stays open.
fn gitlab_link(href: String, text: &'static str) -> impl IntoView {
    view! {
        <a class="gitlab-link" href=href target="_blank" rel="noopener noreferrer">
            {text} <span class="visually-hidden">" (opens in a new tab)"</span>
        </a>
    }
}

fn step_5(base: Option<&BaseUrl>) -> impl IntoView {
    view! {
        <p>"Sign in to your GitLab as the person whose token Onramp will use. If you use single sign-on, sign in the way you always do."</p>
        {base.map(|b| view! { <p>{gitlab_link(links::sign_in(b), "Sign in to GitLab")}</p> })}
        <p>"Already signed in? Continue."</p>
    }
}

fn step_6(base: Option<&BaseUrl>) -> impl IntoView {
    view! {
        <p>"In GitLab, select your avatar (top of the left sidebar, or top right in older versions), then " <strong>"Edit profile"</strong> "."</p>
        {base.map(|b| view! { <p>{gitlab_link(links::user_settings(b), "Open your user settings")}</p> })}
        <div class="callout">
            <h2>"You need the Maintainer role"</h2>
            <p>"Onramp sees what the token's owner sees. Create the token as someone with the Maintainer role or higher on the groups or projects Onramp should read. Onramp checks this in step 12."</p>
        </div>
    }
}

fn step_7(base: Option<&BaseUrl>) -> impl IntoView {
    view! {
        <p>"In your user settings, select " <strong>"Access"</strong> " › " <strong>"Personal access tokens"</strong> ", then " <strong>"Add new token"</strong>
            " (on the newest GitLab, " <strong>"Generate token"</strong> " › " <strong>"Legacy token"</strong> "). On GitLab 15 to 17 it is "
            <strong>"Access tokens"</strong> " › " <strong>"Add new token"</strong> "."</p>
        {token_links(base)}
        <h2>"Name"</h2>
        <p>"Name it " <strong>"Onramp"</strong> " so you recognise it later. The link above fills the name in for you."</p>
        <h2>"Expiry date"</h2>
        <p>"Since GitLab 16, every token expires: if you leave the date empty, GitLab sets the longest allowed, usually one year from today, and your admin may allow less. Choose a date you will remember."</p>
        <p>"You need not remember it: with the " <code>"api"</code> " scope (step 8) on GitLab 16.10 or newer, Onramp rotates the token itself 14 days before it expires, and GitLab issues a new one with the same lifetime. Otherwise Onramp reminds you 30 and 7 days before; replacing the token is then a single paste."</p>
    }
}

fn token_links(base: Option<&BaseUrl>) -> impl IntoView {
    base.map(|b| {
        view! {
            <p>{gitlab_link(links::token_page(b), "Open the token page, prefilled for Onramp")}</p>
            <p class="hint">"GitLab older than 16.7? " {gitlab_link(links::legacy_token_page(b), "Use the older token page")}</p>
        }
    })
}

fn step_8(base: Option<&BaseUrl>) -> impl IntoView {
    view! {
        <p>"Select these scopes (the prefilled link selects them for you):"</p>
        <ul class="scopes">
            <li><code>"api"</code>" — read and write access to the API, used for webhooks and for rotating the token before it expires"</li>
            <li><code>"read_api"</code>" — read projects, merge requests and pipelines"</li>
            <li><code>"read_user"</code>" — read your profile"</li>
            <li><code>"read_repository"</code>" — read commits and files"</li>
        </ul>
        <p>"Older guides also list " <code>"create"</code> ": that is not a GitLab scope, only the button you press next."</p>
        {token_links(base)}
    }
}

fn step_9() -> impl IntoView {
    view! {
        <p>"Select " <strong>"Create token"</strong> " at the bottom of the form. GitLab shows the new token once, at the top of the page: copy it now with the copy button next to it."</p>
        <div class="callout warning">
            <h2>"The token is shown only once"</h2>
            <p>"If you leave the page before copying it, create a new token. Paste it only into Onramp in step 12: it works like your password."</p>
        </div>
    }
}

fn step_10(base: Option<&BaseUrl>) -> impl IntoView {
    view! {
        <p>"Open your profile: select your avatar, then your name. Your browser's address bar now shows your profile URL, for example " <code>"https://gitlab.example.com/jdoe"</code> "."</p>
        {base.map(|b| view! { <p>{gitlab_link(links::user_settings(b), "Open your user settings")}</p> <p class="hint">"From there, select your avatar, then your name."</p> })}
        <p>"Copy that address: step 11 turns it into the base URL."</p>
    }
}

/// Step 11: a plain form derives the base URL from the pasted profile URL. It posts to the
/// instance confirmation: an address the reader typed is one they trust. (A link that carries
/// `?profile=` shows the result too, but step 12 asks before using it.)
fn step_11(step: &Step, base: Option<&BaseUrl>) -> Content {
    let profile = query("profile");
    let derived = profile.as_deref().map(BaseUrl::from_profile_url);
    let error = derived.as_ref().and_then(|d| d.as_ref().err()).map(|e| e.to_string());
    let found = derived.and_then(Result::ok).or_else(|| base.cloned());
    let continue_to = step.next().map(|s| s.href(found.as_ref()));
    let view = view! {
        {error.clone().map(|m| view! { <ErrorSummary links=vec![ErrorLink { href: "#profile".into(), text: m }]/> })}
        <p>"Your base URL is your profile URL without your user name at the end. Paste your profile URL and Onramp works it out, keeping any port and path your GitLab is served under."</p>
        <form method="post" action=api::ConfirmInstance::PATH data-enhance="">
            <input type="hidden" name="step" value="11"/>
            <div class="field" class:field-error=error.is_some()>
                <label for="profile">"Your GitLab profile URL"</label>
                <p class="hint" id="profile-hint">"For example https://gitlab.example.com/jdoe"</p>
                {error.clone().map(|m| view! { <p class="error-message" id="profile-error"><span class="visually-hidden">"Error: "</span>{m}</p> })}
                <input id="profile" name="profile" type="text" inputmode="url" spellcheck="false" autocomplete="url"
                    value=profile aria-describedby="profile-hint profile-error"/>
            </div>
            <button type="submit" class="button secondary">"Find base URL"</button>
        </form>
        {found.as_ref().map(|b| view! {
            <div class="result" role="status">
                <p>"Your GitLab base URL is"</p>
                <p class="base-url" id="derived-base"><strong>{b.to_string()}</strong></p>
            </div>
        })}
    };
    Content { view: view.into_any(), error: error.is_some(), next: continue_to }
}

#[cfg(feature = "ssr")]
pub(crate) async fn load_check(
    app: &crate::state::AppState,
    user_id: &str,
    id: &str,
) -> Result<KeptCheck, crate::store::StoreError> {
    Ok(match crate::store::integrations::get_check(&app.db, &app.keys, user_id, id).await? {
        Some((check, token)) => KeptCheck { check: Some(check), has_token: token.is_some() },
        None => KeptCheck::default(),
    })
}

/// Step 12: the connect form, and the report of the last check when there is one.
fn step_12(step: &Step, base: Option<&BaseUrl>, trust: Option<InstanceTrust>) -> Content {
    let page = loaded::<KeptCheck>();
    let viewer = use_viewer();
    let workspace = viewer.as_ref().and_then(|v| v.workspace.clone());
    let may_connect = viewer.as_ref().is_some_and(|v| v.may(Action::ManageConnections));
    // The check found a connection the workspace has already: offer to replace its token.
    let exists = query("exists").and_then(|id| viewer.as_ref().and_then(|v| v.connection(&id).cloned()));
    let limited = query_seconds("limited");
    let stored = page.check;
    // A link's instance is prefilled only once confirmed: the token goes where this field says.
    let confirm = match (base, trust) {
        (Some(base), Some(InstanceTrust::Unconfirmed { mixes_scripts, saved_elsewhere })) if stored.is_none() => {
            Some(view! { <ConfirmInstance base=base.clone() step=step.number mixes_scripts saved_elsewhere/> })
        }
        _ => None,
    };
    let prefill = base.filter(|_| confirm.is_none());
    let typed_base = stored
        .as_ref()
        .map(|s| s.typed_base_url.clone())
        .or_else(|| prefill.map(BaseUrl::to_string))
        .unwrap_or_default();
    let ca_pem = stored.as_ref().map(|s| s.extra_ca_pem.clone()).unwrap_or_default();
    let report = stored.map(|s| s.report);
    let check_id = query("check");
    let failed = |id: CheckId| {
        report
            .as_ref()
            .and_then(|r| r.check(id))
            .filter(|c| c.status == crate::gitlab::report::Status::Fail)
            .map(|c| c.message.clone())
    };
    let url_error = failed(CheckId::Url);
    let token_error = failed(CheckId::Token)
        .filter(|_| report.as_ref().is_some_and(|r| r.check(CheckId::Token).is_some_and(|c| c.fix_step == Some(9))));
    let tls_problem = failed(CheckId::Reachable).is_some() || !ca_pem.is_empty();
    let error = report.as_ref().is_some_and(|r| !r.ok) || limited.is_some();
    let only_warnings = report.as_ref().is_some_and(|r| r.ok) && page.has_token && exists.is_none();
    let mut links: Vec<ErrorLink> = report
        .as_ref()
        .map(|r| {
            r.failures()
                .map(|c| ErrorLink {
                    href: match c.id {
                        CheckId::Url => "#base_url".into(),
                        CheckId::Token if token_error.is_some() => "#token".into(),
                        id => format!("#check-{}", id.as_str()),
                    },
                    text: c.message.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    if let Some(wait) = &limited {
        links.push(ErrorLink {
            href: "#token".into(),
            text: format!("Too many connection checks. Try again in {wait} seconds."),
        });
    }
    let view = view! {
        {error.then(|| view! { <ErrorSummary links=links/> })}
        {confirm}
        {only_warnings.then(|| view! {
            <div class="callout warning" id="warnings">
                <h2>"The connection works, with warnings"</h2>
                <p>"Read the warnings below. You can fix them first, or integrate now and fix them later."</p>
                <form method="post" action=api::AcceptWarnings::PATH data-enhance="" data-pending-label="Saving…">
                    <input type="hidden" name="check" value=check_id.clone()/>
                    <button type="submit" class="button">"Integrate anyway"</button>
                </form>
            </div>
        })}
        {exists.map(|e| view! {
            <div class="callout warning" id="exists">
                <h2>"This GitLab is connected already"</h2>
                <p>"The workspace has a connection to " <strong>{e.base_url.clone()}</strong> {format!(" as @{}. ", e.username)}
                    "The token you checked works: use it for that connection, or keep the old one."</p>
                {page.has_token.then(|| view! {
                    <form method="post" action=api::AcceptWarnings::PATH data-enhance="" data-pending-label="Replacing…">
                        <input type="hidden" name="check" value=check_id.clone()/>
                        <input type="hidden" name="replace" value=e.id.clone()/>
                        <button type="submit" class="button">"Replace its token with this one"</button>
                    </form>
                })}
                <p><a href=format!("/integrations/gitlab/connections/{}", e.id)>"Open that connection"</a></p>
            </div>
        })}
        {workspace.is_none().then(|| view! {
            <p class="callout warning" id="target-workspace">"You are not a member of any workspace, so there is nowhere to save a connection. "
                <a href="/settings/workspace">"Create a workspace"</a> " or open an invitation link a colleague sent you."</p>
        })}
        {workspace.clone().map(|w| if may_connect {
            view! {
                <p class="callout" id="target-workspace">"The connection will be saved to the workspace " <strong>{w.name}</strong>
                    ", where its members see it. " <a href="/settings/workspace">"Change workspace"</a></p>
            }.into_any()
        } else {
            view! {
                <p class="callout warning" id="target-workspace">"You are a viewer in the workspace " <strong>{w.name}</strong>
                    ": only its owners and admins connect GitLab. Ask one of them to make you admin, or "
                    <a href="/settings/workspace">"switch to another workspace"</a> "."</p>
            }.into_any()
        })}
        <p>"Paste the base URL from step 11 and the token from step 9. Onramp checks the connection against your GitLab at once: the address, the token, its scopes and expiry, and your role. When every check passes, the connection is saved."</p>
        <form method="post" action=api::Validate::PATH class="connect-form" data-enhance="" data-pending-label="Checking the connection…" novalidate hidden=!may_connect>
            <div class="field" class:field-error=url_error.is_some()>
                <label for="base_url">"GitLab base URL"</label>
                <p class="hint" id="base_url-hint">"For example https://gitlab.com or https://git.example.com/gitlab"</p>
                {url_error.clone().map(|m| view! { <p class="error-message" id="base_url-error"><span class="visually-hidden">"Error: "</span>{m}</p> })}
                <input id="base_url" name="base_url" type="text" inputmode="url" autocomplete="url" spellcheck="false"
                    value=typed_base aria-describedby="base_url-hint base_url-error"/>
            </div>
            <div class="field" class:field-error=token_error.is_some()>
                <label for="token">"Personal access token"</label>
                <p class="hint" id="token-hint">"The token you copied in step 9. Onramp sends it to your GitLab only, stores it encrypted, and never shows it again."</p>
                {token_error.clone().map(|m| view! { <p class="error-message" id="token-error"><span class="visually-hidden">"Error: "</span>{m}</p> })}
                <input id="token" name="token" type="password" autocomplete="off" spellcheck="false"
                    aria-describedby="token-hint token-error"/>
            </div>
            <details class="advanced" open=tls_problem>
                <summary>"Advanced: your GitLab uses a private certificate authority"</summary>
                <div class="field">
                    <label for="ca_pem">"CA certificate (PEM)"</label>
                    <p class="hint" id="ca_pem-hint">"Only if your GitLab's HTTPS certificate comes from your organisation's own CA. Paste the text that starts with -----BEGIN CERTIFICATE-----."</p>
                    <textarea id="ca_pem" name="ca_pem" rows="6" spellcheck="false" aria-describedby="ca_pem-hint">{ca_pem}</textarea>
                </div>
            </details>
            <button type="submit" class="button">"Integrate GitLab"</button>
        </form>
        {report.map(|r| view! { <CheckList report=r base=base.cloned()/> })}
    };
    Content { view: view.into_any(), error, next: None }
}

/// Step 13: the saved connection: who and which instance got connected.
fn step_13(base: Option<&BaseUrl>) -> Content {
    let wanted = query("connection");
    let saved = use_viewer().and_then(|v| {
        let found = wanted.as_deref().and_then(|id| v.connection(id).cloned());
        found.or_else(|| v.integrations.iter().max_by_key(|i| i.updated_at).cloned())
    });
    let workspace = use_viewer().and_then(|v| v.workspace).map(|w| w.name);
    // Sent by a platform (a connect session): the way back to it, once the connection is saved.
    let back = use_viewer().and_then(|v| v.embed).and_then(|e| e.back_href.map(|href| (e.platform, href)));
    let view = match saved {
        Some(saved) => {
            let has_warnings = saved.last_report.warnings().next().is_some();
            view! {
                <div class="panel success" role="status">
                    <p class="panel-title">"You have successfully integrated GitLab"</p>
                    <super::integrations::IntegrationSummary integration=saved.clone()/>
                </div>
                {workspace.map(|w| view! {
                    <p id="saved-to">"Saved to the workspace " <strong>{w}</strong> ": its members see the connection and its health."</p>
                })}
                {has_warnings.then(|| view! { <h2>"Worth fixing soon"</h2> })}
                <CheckList report=saved.last_report base=base.cloned() only_warnings=true/>
                <p>"Onramp checks the connection every day and warns you 30 days before the token expires."</p>
                <h2>"Next: choose what Onramp reads"</h2>
                <p>"Onramp is listing the groups and projects this token can reach. Pick whole groups or single projects, and see what they will bring before anything is synced."</p>
                <div class="actions">
                    <a class="button" href=format!("/integrations/gitlab/connections/{}/scope", saved.id)>"Choose groups and projects"</a>
                    {back.map(|(platform, href)| view! {
                        <a class="button secondary" href=href>{format!("Back to {platform}")}</a>
                    })}
                    <a href=format!("/integrations/gitlab/connections/{}", saved.id)>"Manage the connection"</a>
                </div>
            }
            .into_any()
        }
        None => view! {
            <p>"Nothing is connected yet: the connection is saved here once its check passes in step 12."</p>
            <p><a href=step_href(12, base)>"Go to step 12 to connect GitLab"</a></p>
        }
        .into_any(),
    };
    Content { view, error: false, next: None }
}
