//! Log in, sign up, and Onramp API tokens for scripts.

use super::common::InvitationOffer;
use super::loaded;
use super::report::{ErrorLink, ErrorSummary};
use super::{query, seconds};
use crate::api;
use crate::auth::safe_next;
use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;

/// The wait of a `limited_<seconds>` code; only a number is ever shown.
fn limited_wait(code: &str) -> Option<u64> {
    code.strip_prefix("limited_").and_then(seconds)
}

const BUSY: &str = "Onramp is busy: try again in a few seconds";

fn login_error(code: &str) -> (String, &'static str) {
    if let Some(wait) = limited_wait(code) {
        return (format!("Too many log-in attempts. Try again in {wait} seconds"), "#email");
    }
    match code {
        "invalid" => ("The email address or password is not right".into(), "#email"),
        "busy" => (BUSY.into(), "#password"),
        _ => ("Something went wrong: try again".into(), "#email"),
    }
}

fn signup_error(code: &str) -> (String, &'static str) {
    if let Some(wait) = limited_wait(code) {
        let minutes = wait.div_ceil(60);
        return (
            format!("Too many new accounts from your network. Try again in {minutes} minutes, or log in"),
            "#email",
        );
    }
    match code {
        "busy" => (BUSY.into(), "#password"),
        "email_invalid" => ("Enter an email address in the right format, like name@example.com".into(), "#email"),
        code if code.starts_with("email_") && code != "email_taken" => {
            match code.strip_prefix("email_").and_then(crate::account::EmailProblem::from_code) {
                Some(problem) => (problem.to_string().trim_end_matches('.').to_owned(), "#email"),
                None => ("Enter an email address in the right format, like name@example.com".into(), "#email"),
            }
        }
        "email_taken" => ("An account with this email address already exists: log in instead".into(), "#email"),
        "password_short" => ("Your password must be at least 10 characters long".into(), "#password"),
        "password_long" => ("Your password must be at most 200 characters long".into(), "#password"),
        _ => ("Something went wrong: try again".into(), "#email"),
    }
}

#[component]
fn AccountForm(
    title: &'static str,
    action: &'static str,
    button: &'static str,
    error: Option<(String, &'static str)>,
    new_password: bool,
) -> impl IntoView {
    let email = query("email").unwrap_or_default();
    let next = safe_next(query("next").as_deref(), "");
    // Opened from an invitation: the account joins its workspace as soon as it exists.
    let invitation = loaded::<InvitationOffer>().0;
    let invite = invitation.as_ref().and_then(|_| query("invite"));
    let page_title = if error.is_some() { format!("Error: {title} · Onramp") } else { format!("{title} · Onramp") };
    let email_error = error.clone().filter(|(_, field)| *field == "#email").map(|(m, _)| m);
    let password_error = error.clone().filter(|(_, field)| *field == "#password").map(|(m, _)| m);
    let (email_invalid, password_invalid) = (email_error.is_some(), password_error.is_some());
    view! {
        <Title text=page_title/>
        <main id="main" tabindex="-1" class="narrow">
            <h1 tabindex="-1">{title}</h1>
            {error.map(|(text, href)| view! { <ErrorSummary links=vec![ErrorLink { href: href.into(), text }]/> })}
            {invitation.map(|i| view! { <super::workspaces::InvitationNotice info=i/> })}
            <form method="post" action=action data-enhance="" novalidate>
                <input type="hidden" name="next" value=next/>
                {invite.map(|invite| view! { <input type="hidden" name="invite" value=invite/> })}
                <div class="field" class:field-error=email_invalid>
                    <label for="email">"Email address"</label>
                    {email_error.map(|m| view! { <p class="error-message" id="email-error"><span class="visually-hidden">"Error: "</span>{m}</p> })}
                    <input id="email" name="email" type="email" autocomplete="email" spellcheck="false" value=email aria-describedby="email-error"/>
                </div>
                <div class="field" class:field-error=password_invalid>
                    <label for="password">"Password"</label>
                    {new_password.then(|| view! { <p class="hint" id="password-hint">"At least 10 characters. A few unrelated words work well."</p> })}
                    {password_error.map(|m| view! { <p class="error-message" id="password-error"><span class="visually-hidden">"Error: "</span>{m}</p> })}
                    <input id="password" name="password" type="password"
                        autocomplete=if new_password { "new-password" } else { "current-password" }
                        aria-describedby="password-hint password-error"/>
                </div>
                <button type="submit" class="button">{button}</button>
            </form>
        </main>
    }
}

/// The link from log-in to sign-up and back, keeping where to go next and the invitation.
fn other_form_link(page: &str) -> String {
    let encode = |v: String| -> String { url::form_urlencoded::byte_serialize(v.as_bytes()).collect() };
    let mut href = format!("{page}?next={}", encode(query("next").unwrap_or_default()));
    if let Some(invite) = query("invite").filter(|_| loaded::<InvitationOffer>().0.is_some()) {
        href.push_str(&format!("&invite={}", encode(invite)));
    }
    href
}

#[component]
pub fn LoginPage() -> impl IntoView {
    let error = query("error").map(|c| login_error(&c));
    let other = other_form_link("/signup");
    view! {
        {query("logged_out").map(|how| {
            let text = if how == "everywhere" {
                "You have logged out on every device and browser."
            } else {
                "You have logged out."
            };
            view! { <p class="callout narrow" role="status">{text}</p> }
        })}
        <AccountForm title="Log in" action=api::Login::PATH button="Log in" error=error new_password=false/>
        <p class="narrow">"No account yet? " <a href=other>"Create an account"</a></p>
    }
}

#[component]
pub fn SignupPage() -> impl IntoView {
    let error = query("error").map(|c| signup_error(&c));
    let other = other_form_link("/login");
    view! {
        <AccountForm title="Create an account" action=api::Signup::PATH button="Create account" error=error new_password=true/>
        <p class="narrow">"Already have an account? " <a href=other>"Log in"</a></p>
    }
}

/// What a `?error=` code of the API tokens page means.
fn api_token_error(code: &str) -> String {
    use crate::account::{TokenNameProblem, MAX_API_TOKENS};
    if let Some(wait) = limited_wait(code) {
        return format!("Too many new API tokens. Try again in {wait} seconds");
    }
    let text = match code {
        "name_invisible" => TokenNameProblem::Invisible.to_string(),
        "too_many" => {
            format!("You have {MAX_API_TOKENS} API tokens, the most an account may have: revoke one you no longer use first.")
        }
        _ => TokenNameProblem::Empty.to_string(),
    };
    text.trim_end_matches('.').to_owned()
}

/// An Onramp API token as listed: never its secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiTokenView {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// On `/settings/api-tokens`: the viewer's tokens, and a new token's secret, shown once
/// (`?created=` names it).
#[derive(Clone, Debug, Default)]
pub(crate) struct ApiTokens {
    pub tokens: Vec<ApiTokenView>,
    pub new_token: Option<String>,
}

#[cfg(feature = "ssr")]
impl ApiTokens {
    pub(crate) async fn load(
        app: &crate::state::AppState,
        user_id: &str,
        created: Option<&str>,
    ) -> Result<ApiTokens, crate::store::StoreError> {
        use secrecy::ExposeSecret;
        let tokens = crate::store::accounts::list_api_tokens(&app.db, user_id)
            .await?
            .into_iter()
            .map(|t| ApiTokenView { id: t.id, name: t.name, created_at: t.created_at, last_used_at: t.last_used_at })
            .collect();
        let new_token = match created {
            Some(id) => crate::store::accounts::take_flash(&app.db, &app.keys, user_id, id)
                .await?
                .map(|s| s.expose_secret().to_owned()),
            None => None,
        };
        Ok(ApiTokens { tokens, new_token })
    }
}

#[component]
pub fn ApiTokensPage() -> impl IntoView {
    let page = loaded::<ApiTokens>();
    let name_error = query("error").map(|code| api_token_error(&code));
    let title = if name_error.is_some() { "Error: Onramp API tokens · Onramp" } else { "Onramp API tokens · Onramp" };
    view! {
        <Title text=title/>
        <super::BackLink href="/settings/integrations".to_owned() text="Back to Integrations"/>
        <main id="main" tabindex="-1" class="narrow">
            <span class="caption">"Settings"</span>
            <h1 tabindex="-1">"Onramp API tokens"</h1>
            {name_error.clone().map(|m| view! { <ErrorSummary links=vec![ErrorLink { href: "#token-name".into(), text: m }]/> })}
            {page.new_token.map(|secret| view! {
                <div class="panel success" role="status">
                    <p class="panel-title">"Your new API token"</p>
                    <p>"Copy it now: it is shown only once."</p>
                    <p><code id="new-api-token">{secret}</code></p>
                </div>
            })}
            {query("revoked").map(|_| view! { <p class="callout" role="status">"The token was revoked."</p> })}
            <p>"Scripts send an API token as " <code>"Authorization: Bearer onr_…"</code> ", for example to " <code>"GET /api/integrations"</code> "."</p>
            <form method="post" action=api::CreateApiToken::PATH data-enhance="" novalidate>
                <div class="field" class:field-error=name_error.is_some()>
                    <label for="token-name">"Token name"</label>
                    <p class="hint" id="token-name-hint">{format!(
                        "What will use it, for example \"nightly export\": one line, at most {} characters (a longer name is cut). An account has at most {} tokens.",
                        crate::account::TOKEN_NAME_MAX,
                        crate::account::MAX_API_TOKENS,
                    )}</p>
                    <input id="token-name" name="name" type="text" maxlength=crate::account::TOKEN_NAME_MAX.to_string() aria-describedby="token-name-hint"/>
                </div>
                <button type="submit" class="button">"Create token"</button>
            </form>
            <h2>"Your tokens"</h2>
            {if page.tokens.is_empty() {
                view! { <p>"You have no API tokens."</p> }.into_any()
            } else {
                view! {
                    <ul class="token-list">
                        {page.tokens.into_iter().map(|t| view! {
                            <li>
                                <strong>{t.name.clone()}</strong>
                                <span class="hint">{if t.last_used_at.is_some() { " — used" } else { " — never used" }}</span>
                                <form method="post" action=api::RevokeApiToken::PATH class="inline">
                                    <input type="hidden" name="id" value=t.id/>
                                    <button type="submit" class="button secondary" aria-label=format!("Revoke {}", t.name)>"Revoke"</button>
                                </form>
                            </li>
                        }).collect_view()}
                    </ul>
                }
                .into_any()
            }}
            <h2>"Sessions"</h2>
            <p>"Lost a laptop, or logged in on a shared computer? End every session of your account, on every device and browser, this one included. API tokens keep working: revoke them above."</p>
            <form method="post" action=api::LogoutEverywhere::PATH>
                <button type="submit" class="button secondary">"Log out everywhere"</button>
            </form>
        </main>
    }
}
