//! Onramp: the pages, server functions and domain of the GitLab connection wizard.
//!
//! Pages are rendered on the server and work without JavaScript; the one island
//! ([`islands::Enhancer`]) adds client-side navigation, pending states and focus management.
//! See ARCHITECTURE.md for the code map.

// The workspace page's view types nest deeper than the default limit allows when the hydrate
// build computes their layout.
#![recursion_limit = "256"]

pub mod account;
pub mod api;
pub mod auth;
#[cfg(feature = "ssr")]
pub mod client;
pub mod connect;
#[cfg(feature = "ssr")]
pub mod connections;
#[cfg(feature = "ssr")]
pub mod discovery;
pub mod embed;
pub mod figures;
/// Everything that knows GitLab: the `gitlab` crate (`crates/gitlab`), re-exported so that
/// `crate::gitlab::…` names it.
pub use gitlab;
pub mod integration;
pub mod islands;
#[cfg(feature = "ssr")]
pub mod jobs;
#[cfg(feature = "ssr")]
pub mod mail;
pub mod pages;
pub mod platform;
#[cfg(feature = "ssr")]
pub mod rotation;
pub mod routes;
#[cfg(feature = "ssr")]
pub mod signing;
#[cfg(feature = "ssr")]
pub mod state;
#[cfg(feature = "ssr")]
pub mod store;
pub mod trust;
pub mod wizard;
pub mod workspace;

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::{provide_meta_context, MetaTags};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;

/// The Content-Security-Policy: only Onramp's own scripts (the inline hydration scripts by
/// `scripts`: the per-response `'nonce-…'`, or their `'sha256-…'` hashes on a page kept
/// compressed by the server) and WASM, nothing framed, forms only to Onramp.
pub fn content_security_policy(scripts: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval' {scripts}; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"
    )
}

/// The HTML document around every page.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let (Some(nonce), Some(response)) = (leptos::nonce::use_nonce(), use_context::<leptos_axum::ResponseOptions>()) {
        if let Ok(value) =
            http::HeaderValue::from_str(&content_security_policy(&format!("'nonce-{}'", nonce.as_inner())))
        {
            response.insert_header(http::header::CONTENT_SECURITY_POLICY, value);
        }
    }
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                <link rel="icon" href="data:,"/>
                <link rel="stylesheet" href="/pkg/onramp.css"/>
                <HydrationScripts options islands=true/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <islands::Enhancer/>
        <a class="skip-link" href="#main">"Skip to main content"</a>
        <div id="page">
            <header class="site-header">
                <a class="brand" href="/">"Onramp"</a>
                {match auth::use_viewer() {
                    Some(viewer) => view! {
                        <nav class="account" aria-label="Account">
                            {viewer.workspace.map(|w| view! {
                                <a href="/settings/workspace" class="workspace-name">
                                    <span class="visually-hidden">"Workspace: "</span>{w.name}
                                </a>
                            })}
                            <a href="/settings/integrations">"Settings"</a>
                            <span class="who">{viewer.user.email}</span>
                            <form method="post" action=api::Logout::PATH class="inline">
                                <button type="submit" class="link-button">"Log out"</button>
                            </form>
                        </nav>
                    }
                    .into_any(),
                    None => view! { <nav class="account" aria-label="Account"><a href="/login">"Log in"</a></nav> }.into_any(),
                }}
            </header>
            {auth::use_viewer().and_then(|v| v.embed).map(|embed| view! { <pages::EmbedBanner embed/> })}
            <Router>
                <Routes fallback=pages::NotFound>
                    <Route path=path!("/") view=pages::Home/>
                    <Route path=path!("/settings/integrations") view=pages::SettingsIntegrations/>
                    <Route path=path!("/integrations/gitlab") view=pages::GitlabIntegration/>
                    <Route path=path!("/integrations/gitlab/step/:n") view=pages::StepPage/>
                    <Route path=path!("/integrations/gitlab/connections/:id") view=pages::ConnectionPage/>
                    <Route path=path!("/integrations/gitlab/connections/:id/disconnect") view=pages::DisconnectPage/>
                    <Route path=path!("/integrations/gitlab/connections/:id/scope") view=pages::ScopePage/>
                    <Route path=path!("/integrations/gitlab/connections/:id/scope/preview") view=pages::ScopePreviewPage/>
                    <Route path=path!("/settings/workspace") view=pages::WorkspacePage/>
                    <Route path=path!("/settings/audit") view=pages::AuditPage/>
                    <Route path=path!("/invite/:secret") view=pages::InvitePage/>
                    <Route path=path!("/login") view=pages::LoginPage/>
                    <Route path=path!("/signup") view=pages::SignupPage/>
                    <Route path=path!("/settings/api-tokens") view=pages::ApiTokensPage/>
                    <Route path=path!("/settings/platform") view=pages::PlatformKeysPage/>
                    <Route path=path!("/connect/ended") view=pages::ConnectEndedPage/>
                </Routes>
            </Router>
        </div>
    }
}
