//! What the pages say when a platform sent the reader (issue 22): the banner of a browser session
//! a connect session opened, and the page of a link that was used or ran out.

use super::set_status;
use crate::embed::Embed;
use leptos::prelude::*;
use leptos_meta::Title;

/// Under the header of every page of a connect session's browser session: which platform sent
/// the reader, where the connection goes, and (once it is saved) the way back.
#[component]
pub fn EmbedBanner(embed: Embed) -> impl IntoView {
    let Embed { platform, workspace, back_href, .. } = embed;
    let label = format!("Sent by {platform}");
    view! {
        <aside class="embed-banner" aria-label=label>
            <p>
                <strong>{platform.clone()}</strong>" sent you here to connect GitLab. The connection you save belongs to "
                <strong>{workspace}</strong>{format!(", the {platform} workspace it reads from.")}
            </p>
            {back_href.map(|href| view! {
                <a class="button" id="back-to-platform" href=href>{format!("Back to {platform}")}</a>
            })}
        </aside>
    }
}

/// `/connect/ended`: a connect-session link that was used already or ran out, from a platform
/// that gave no `refresh_url` to send such a browser to.
#[component]
pub fn ConnectEndedPage() -> impl IntoView {
    set_status(410);
    view! {
        <Title text="This link no longer works · Onramp"/>
        <main id="main" tabindex="-1" class="narrow">
            <h1 tabindex="-1">"This link no longer works"</h1>
            <p>"The link that brought you here works once, for a limited time, and it was used already or has run out."</p>
            <p>"Go back to the platform that sent you and start connecting GitLab there again: it makes you a new link."</p>
        </main>
    }
}
