//! Onramp: the pages, server functions and domain of the GitLab connection wizard.
//!
//! Pages are rendered on the server and work without JavaScript; the one island
//! ([`islands::Enhancer`]) adds client-side navigation, pending states and focus management.
//! See ARCHITECTURE.md for the code map.

pub mod api;
pub mod gitlab;
pub mod integration;
pub mod islands;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod state;
#[cfg(feature = "ssr")]
pub mod store;
pub mod wizard;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;

/// The HTML document around every page.
pub fn shell(options: LeptosOptions) -> impl IntoView {
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
        <header class="site-header">
            <a class="brand" href="/">"Onramp"</a>
        </header>
        <div id="page">
            <Router>
                <Routes fallback=pages::NotFound>
                    <Route path=path!("/") view=pages::Home/>
                    <Route path=path!("/settings/integrations") view=pages::SettingsIntegrations/>
                    <Route path=path!("/integrations/gitlab") view=pages::GitlabIntegration/>
                    <Route path=path!("/integrations/gitlab/step/:n") view=pages::StepPage/>
                </Routes>
            </Router>
        </div>
    }
}
