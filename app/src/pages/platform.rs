//! `/settings/platform`: a workspace's platform keys, for a team that runs its own collector
//! beside Onramp (issue 22). Owners make and revoke them; the key is shown once. Others see what
//! the keys are and who may manage them.

use super::report::{ErrorLink, ErrorSummary};
use super::{loaded, query};
use crate::api;
use crate::platform::KeyScope;
use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;

/// A platform key as listed: never its secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformKeyView {
    pub id: String,
    pub name: String,
    pub scopes: Vec<&'static str>,
    /// Where its connect sessions may send people back to.
    pub return_origins: Vec<String>,
    /// `YYYY-MM-DD`.
    pub created_on: String,
    pub last_used_on: Option<String>,
    pub revoked: bool,
}

/// The page's data: the current workspace's keys, whether the viewer may manage them, and a new
/// key, shown once (`?created=` names its flash).
#[derive(Clone, Debug, Default)]
pub(crate) struct PlatformKeys {
    pub workspace_name: String,
    pub may_manage: bool,
    pub keys: Vec<PlatformKeyView>,
    pub new_key: Option<String>,
}

#[cfg(feature = "ssr")]
impl PlatformKeys {
    pub(crate) async fn load(
        app: &crate::state::AppState,
        user_id: &str,
        workspace: &crate::workspace::Membership,
        created: Option<&str>,
    ) -> Result<PlatformKeys, crate::store::StoreError> {
        use secrecy::ExposeSecret;
        let day =
            |t: i64| time::OffsetDateTime::from_unix_timestamp(t).map(|t| t.date().to_string()).unwrap_or_default();
        let keys = crate::store::platform::list_keys(&app.db, Some(&workspace.id))
            .await?
            .into_iter()
            .map(|k| PlatformKeyView {
                id: k.id,
                name: k.name,
                scopes: k.scopes.iter().map(KeyScope::as_str).collect(),
                return_origins: k.return_origins.iter().map(|o| o.as_str().to_owned()).collect(),
                created_on: day(k.created_at),
                last_used_on: k.last_used_at.map(day),
                revoked: k.revoked_at.is_some(),
            })
            .collect();
        let may_manage = workspace.role.may(crate::workspace::Action::ManageMembers);
        let new_key = match created.filter(|_| may_manage) {
            Some(id) => crate::store::accounts::take_flash(&app.db, &app.keys, user_id, id)
                .await?
                .map(|s| s.expose_secret().to_owned()),
            None => None,
        };
        Ok(PlatformKeys { workspace_name: workspace.name.clone(), may_manage, keys, new_key })
    }
}

fn error_text(code: &str) -> String {
    if let Some(wait) = code.strip_prefix("limited_").and_then(super::seconds) {
        return format!("Too many new keys. Try again in {wait} seconds");
    }
    match code {
        "scopes" => "Tick at least one thing the key may do".to_owned(),
        "origin" => "Write the return origin as https://platform.example.com: scheme, host and port only (http only \
                     on localhost)"
            .to_owned(),
        _ => "Give the key a name: one line of visible text, at most 100 characters".to_owned(),
    }
}

/// " · returns to https://…" when a key has return origins.
fn origins(list: &[String]) -> String {
    if list.is_empty() {
        String::new()
    } else {
        format!(" · returns to {}", list.join(", "))
    }
}

/// The checkbox name of a scope in the form.
fn field(scope: KeyScope) -> &'static str {
    match scope {
        KeyScope::ConnectionsRead => "connections_read",
        KeyScope::CredentialsRead => "credentials_read",
        KeyScope::ConnectSessionsWrite => "connect_sessions_write",
        KeyScope::WebhooksWrite => "webhooks_write",
    }
}

#[component]
pub fn PlatformKeysPage() -> impl IntoView {
    let page = loaded::<PlatformKeys>();
    let error = query("error").map(|c| error_text(&c));
    let title = if error.is_some() { "Error: Platform keys · Onramp" } else { "Platform keys · Onramp" };
    let target = match query("error").as_deref() {
        Some("scopes") => "#scope-connections_read",
        Some("origin") => "#return-origin",
        _ => "#key-name",
    };
    let origin_error = query("error").as_deref() == Some("origin");
    let keys = page.keys.clone();
    view! {
        <Title text=title/>
        <super::BackLink href="/settings/integrations".to_owned() text="Back to Integrations"/>
        <main id="main" tabindex="-1" class="narrow">
            <span class="caption">{format!("Settings · {}", page.workspace_name)}</span>
            <h1 tabindex="-1">"Platform keys"</h1>
            {error.clone().map(|m| view! { <ErrorSummary links=vec![ErrorLink { href: target.into(), text: m }]/> })}
            {page.new_key.map(|secret| view! {
                <div class="panel success" role="status">
                    <p class="panel-title">"Your new platform key"</p>
                    <p>"Copy it now: it is shown only once. Onramp keeps only its hash."</p>
                    <p><code id="new-platform-key">{secret}</code></p>
                </div>
            })}
            {query("revoked").map(|_| view! { <p class="callout" role="status">"The key was revoked: it stops working now."</p> })}
            <p>
                "A platform key lets a collector your team runs beside Onramp read this workspace's connections through "
                <code>"/api/v1"</code> ", sent as " <code>"Authorization: Bearer onp_…"</code>
                ". It reaches this workspace only. The README's \"Embedding Onramp in your platform\" lists the calls."
            </p>
            {if page.may_manage {
                view! {
                    <form method="post" action=api::CreatePlatformKey::PATH data-enhance="" novalidate>
                        <div class="field" class:field-error=error.is_some() && !origin_error && target != "#scope-connections_read">
                            <label for="key-name">"Key name"</label>
                            <p class="hint" id="key-name-hint">"What will use it, for example \"nightly collector\": one line, at most 100 characters."</p>
                            <input id="key-name" name="name" type="text" maxlength="100" aria-describedby="key-name-hint"/>
                        </div>
                        <fieldset class="field">
                            <legend>"What the key may do"</legend>
                            {KeyScope::ALL.into_iter().map(|scope| {
                                let id = format!("scope-{}", field(scope));
                                view! {
                                    <div class="field checkbox">
                                        <input type="checkbox" id=id.clone() name=field(scope) value="on" checked=scope == KeyScope::ConnectionsRead/>
                                        <label for=id><code>{scope.as_str()}</code>": " {scope.allows()}</label>
                                    </div>
                                }
                            }).collect_view()}
                        </fieldset>
                        <div class="field" class:field-error=origin_error>
                            <label for="return-origin">"Return origin (optional)"</label>
                            <p class="hint" id="return-origin-hint">"Only for connect sessions: the address your platform's pages are at, where people go back to from the wizard, for example https://analytics.example.com."</p>
                            <input id="return-origin" name="return_origin" type="url" inputmode="url" spellcheck="false" aria-describedby="return-origin-hint"/>
                        </div>
                        <button type="submit" class="button">"Create key"</button>
                    </form>
                }.into_any()
            } else {
                view! { <p class="callout">"Only an owner of this workspace can make or revoke its platform keys."</p> }.into_any()
            }}
            <h2>"This workspace's keys"</h2>
            {if keys.is_empty() {
                view! { <p>"This workspace has no platform keys."</p> }.into_any()
            } else {
                let may_manage = page.may_manage;
                view! {
                    <ul class="token-list">
                        {keys.into_iter().map(|k| {
                            let used = match (&k.last_used_on, k.revoked) {
                                (_, true) => " — revoked".to_owned(),
                                (Some(day), false) => format!(" — last used {day}"),
                                (None, false) => " — never used".to_owned(),
                            };
                            view! {
                                <li>
                                    <strong>{k.name.clone()}</strong>
                                    <span class="hint">{format!(" {}{} · made {}{used}", k.scopes.join(", "), origins(&k.return_origins), k.created_on)}</span>
                                    {(may_manage && !k.revoked).then(|| view! {
                                        <form method="post" action=api::RevokePlatformKey::PATH class="inline">
                                            <input type="hidden" name="id" value=k.id.clone()/>
                                            <button type="submit" class="button secondary" aria-label=format!("Revoke {}", k.name)>"Revoke"</button>
                                        </form>
                                    })}
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
        </main>
    }
}
