//! What several page families show alike: a time as people read it, and the page for a
//! connection that is not (or no longer) the viewer's. Pages import these from here, never from
//! one another, so the page modules form no cycle.

use crate::gitlab::report::StoredCheck;
use crate::integration::{ConnectionEvent, Integration, RotationView, ScopeSummary};
use crate::workspace::{InvitationInfo, Role};
use leptos::prelude::*;
use leptos_meta::Title;

/// What a connection's pages show besides the URL: the connection, when the viewer is a member
/// of its workspace (with their role there), what Onramp does about its expiry, its latest events
/// and what it covers.
#[derive(Clone, Debug, Default)]
pub(crate) struct ConnectionData {
    pub connection: Option<(Integration, Role)>,
    pub rotation: RotationView,
    pub events: Vec<ConnectionEvent>,
    pub scope: ScopeSummary,
}

/// The kept check named by `?check=` (step 12's report, a connection page's failed replacement),
/// when it is the viewer's.
#[derive(Clone, Debug, Default)]
pub(crate) struct KeptCheck {
    pub check: Option<StoredCheck>,
    /// Whether that check kept a token that can still be saved ("Integrate anyway").
    pub has_token: bool,
}

/// What an invitation link offers, on `/invite/{secret}` and on `/signup` and `/login` opened
/// with `?invite=`; `None` for a link that never existed.
#[derive(Clone, Debug, Default)]
pub(crate) struct InvitationOffer(pub Option<InvitationInfo>);

#[cfg(feature = "ssr")]
impl InvitationOffer {
    /// The invitation `secret` names (a storage failure is logged and shown as no invitation).
    pub(crate) async fn load(app: &crate::state::AppState, secret: &str) -> InvitationOffer {
        match crate::store::workspaces::invitation(&app.db, secret).await {
            Ok(info) => InvitationOffer(info),
            Err(e) => {
                tracing::error!(error = %e, "cannot read an invitation");
                InvitationOffer(None)
            }
        }
    }
}

/// A moment as people read it: `2026-12-03 11:28 UTC`.
pub(crate) fn when(unix: i64) -> String {
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

/// The page for a connection that is not the viewer's (or no longer exists): 404.
pub(crate) fn missing_connection() -> impl IntoView {
    super::set_status(404);
    view! {
        <Title text="Connection not found · Onramp"/>
        <main id="main" tabindex="-1" class="narrow">
            <h1 tabindex="-1">"Connection not found"</h1>
            <p>"None of your workspaces has a connection with this address. It may have been disconnected, or you may have been removed from its workspace."</p>
            <p><a href="/integrations/gitlab">"Your workspace's GitLab connections"</a></p>
        </main>
    }
}
