//! Onramp's pages. Thin: they read the URL, call the domain and render its results; they never
//! build GitLab URLs (see `gitlab::links`) or read HTTP answers (see `gitlab::check`).

mod account;
mod common;
mod embed;
mod integrations;
mod platform;
mod report;
mod scope;
mod steps;
mod workspaces;

#[cfg(feature = "ssr")]
pub mod load;

pub use account::{ApiTokensPage, LoginPage, SignupPage};
pub use embed::{ConnectEndedPage, EmbedBanner};
pub use integrations::{ConnectionPage, DisconnectPage, GitlabIntegration, SettingsIntegrations};
pub use platform::PlatformKeysPage;
pub use scope::{ScopePage, ScopePreviewPage};
pub use steps::StepPage;
pub use workspaces::{AuditPage, InvitePage, WorkspacePage};

use crate::gitlab::base_url::BaseUrl;
use crate::wizard::step_href;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

/// What the page loader ([`load::middleware`]) put in the request for the page at hand:
/// `T::default()` when it loaded nothing of that kind, and always in the browser (pages render on
/// the server; the island never reads page data).
pub(crate) fn loaded<T: Clone + Default + Send + Sync + 'static>() -> T {
    #[cfg(feature = "ssr")]
    {
        use_context::<http::request::Parts>().and_then(|p| p.extensions.get::<T>().cloned()).unwrap_or_default()
    }
    #[cfg(not(feature = "ssr"))]
    {
        T::default()
    }
}

/// A query parameter of the current request.
pub(crate) fn query(key: &str) -> Option<String> {
    use_query_map().with_untracked(|q| q.get(key))
}

/// A wait in seconds from the query (`?limited=12`): only a number is ever shown, never the text
/// of a link someone crafted.
pub(crate) fn query_seconds(key: &str) -> Option<u64> {
    query(key).and_then(|v| seconds(&v))
}

/// `"12"` → 12; anything but a plain number of at most a day → `None`.
pub(crate) fn seconds(text: &str) -> Option<u64> {
    text.parse::<u64>().ok().filter(|n| *n <= 86_400)
}

/// The instance riding along as `?base=`, when it is a valid base URL.
pub(crate) fn base_param() -> Option<BaseUrl> {
    query("base").and_then(|b| BaseUrl::parse(&b).ok())
}

/// Answers the current request with this status (server only).
pub(crate) fn set_status(_code: u16) {
    #[cfg(feature = "ssr")]
    if let (Some(options), Ok(status)) =
        (use_context::<leptos_axum::ResponseOptions>(), http::StatusCode::from_u16(_code))
    {
        options.set_status(status);
    }
}

#[component]
pub fn Home() -> impl IntoView {
    view! {
        <Title text="Connect GitLab · Onramp"/>
        <main id="main" tabindex="-1" class="narrow">
            <h1 tabindex="-1">"Connect your GitLab to Onramp"</h1>
            <p class="lead">
                "Onramp needs two things from your GitLab: a personal access token and the address of your GitLab. "
                "This guide takes you to the right page of your own GitLab at each step, then checks the connection "
                "and tells you exactly what to fix if something is wrong."
            </p>
            <p>"It takes about five minutes. You need the Maintainer role (or higher) on the groups or projects Onramp should see."</p>
            <a class="button" href=step_href(1, None)>"Start now"</a>
        </main>
    }
}

/// The Back link, before `<main>`: a real link, so it works without JavaScript.
#[component]
pub(crate) fn BackLink(
    href: String,
    #[prop(optional)] text: Option<&'static str>,
    /// Where "Back" goes, for screen readers (the link makes sense out of context).
    #[prop(optional)]
    to: Option<String>,
) -> impl IntoView {
    view! {
        <nav class="back-nav" aria-label="Back">
            <a class="back-link" href=href>
                {text.unwrap_or("Back")}
                {to.map(|to| view! { <span class="visually-hidden">{format!(" to {to}")}</span> })}
            </a>
        </nav>
    }
}

#[component]
pub fn NotFound() -> impl IntoView {
    set_status(404);
    view! {
        <Title text="Page not found · Onramp"/>
        <main id="main" tabindex="-1" class="narrow">
            <h1 tabindex="-1">"Page not found"</h1>
            <p>"If you typed the address, check it is correct. The GitLab guide has 13 steps, numbered 1 to 13."</p>
            <p><a href=step_href(1, None)>"Go to step 1 of the GitLab guide"</a></p>
        </main>
    }
}

pub(crate) fn with_base(path: &str, base: Option<&BaseUrl>) -> String {
    match base {
        Some(base) => format!("{path}?base={}", base.query_value()),
        None => path.to_owned(),
    }
}
