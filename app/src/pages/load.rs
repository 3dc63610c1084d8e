//! The page loader: after [`crate::auth::ssr::middleware`] has identified the caller, this reads
//! which page a `GET` asks for ([`Page`], from the route table in [`crate::routes`]) and runs that
//! page family's loader, which puts its typed data in the request for the page to read with
//! [`super::loaded`]. Pages stay synchronous and thin; the authentication middleware knows
//! nothing of them. A new page adds its loader call here and nothing in `auth`.

use super::account::ApiTokens;
use super::common::InvitationOffer;
use super::platform::PlatformKeys;
use super::scope::PickerData;
use super::steps::load_check;
use super::workspaces::{AuditEvents, NewInvitationLink, Team};
use crate::auth::{Viewer, AUDIT_PAGE};
use crate::routes::Page;
use crate::state::AppState;
use crate::store::StoreError;
use crate::workspace::Action;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::{Extensions, Method};

/// Loads the data of the page a `GET` asks for; every other request passes untouched.
pub async fn middleware(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if req.method() != Method::GET || path.starts_with("/api/") || path.starts_with("/pkg/") {
        return next.run(req).await;
    }
    let page = Page::parse(path);
    let query: Vec<(String, String)> =
        req.uri().query().map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
    let param = |k: &str| query.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    let viewer = req.extensions().get::<Viewer>().cloned();
    // Judged once by the authentication middleware (ONRAMP_PUBLIC_URL included).
    let https = req.extensions().get::<crate::client::ClientInfo>().is_some_and(|c| c.https);
    let origin = crate::auth::ssr::public_origin(app.settings.public_url.as_deref(), req.headers(), https);
    let mut data = Extensions::new();
    if let Err(e) = load(&app, viewer.as_ref(), &page, &param, &origin, &mut data).await {
        return crate::auth::ssr::internal(e);
    }
    req.extensions_mut().extend(data);
    next.run(req).await
}

/// What `page` shows besides its URL, into `data`. `origin` is where links people copy point.
async fn load(
    app: &AppState,
    viewer: Option<&Viewer>,
    page: &Page,
    param: &impl Fn(&str) -> Option<String>,
    origin: &str,
    data: &mut Extensions,
) -> Result<(), StoreError> {
    // What an invitation link offers is shown before signing in too.
    let invite = match page {
        Page::Invite(secret) => Some(secret.clone()),
        Page::Login | Page::Signup => param("invite"),
        _ => None,
    };
    if let Some(secret) = invite.filter(|s| crate::routes::secret_shaped(s)) {
        data.insert(InvitationOffer::load(app, &secret).await);
    }
    let Some(viewer) = viewer else { return Ok(()) };
    let user_id = viewer.user.id.as_str();
    // Named by the query on any page: the kept check of step 12 or of a replacement, and a new
    // invitation's link (shown once).
    if let Some(id) = param("check") {
        data.insert(load_check(app, user_id, &id).await?);
    }
    if let Some(id) = param("invited") {
        use secrecy::ExposeSecret;
        if let Some(secret) = crate::store::accounts::take_flash(&app.db, &app.keys, user_id, &id).await? {
            let link = format!("{origin}{}", crate::routes::invite(secret.expose_secret()));
            data.insert(NewInvitationLink(Some(link)));
        }
    }
    if let Some(id) = page.connection_id() {
        let mut connection = super::integrations::load(app, user_id, id).await?;
        if let Some((c, role)) = &connection.connection {
            match page {
                Page::Scope(_) | Page::ScopePreview(_) => {
                    let preview = matches!(page, Page::ScopePreview(_));
                    let picker = super::scope::load(app, user_id, c, *role, preview, param).await?;
                    connection.scope = picker.summary.clone();
                    data.insert(PickerData(Some(picker)));
                }
                _ => connection.scope = crate::discovery::summary(app, c).await?,
            }
        }
        data.insert(connection);
    }
    match (page, viewer.workspace.as_ref()) {
        (Page::Workspace, Some(w)) => {
            data.insert(Team::load(app, w).await?);
        }
        (Page::Audit, Some(w)) if w.role.may(Action::ViewAudit) => {
            let wanted = param("before");
            let audit = match crate::workspace::audit_cursor(wanted.as_deref()) {
                Ok(before) => AuditEvents {
                    events: crate::store::workspaces::audit_log(&app.db, &w.id, before.as_deref(), AUDIT_PAGE).await?,
                    older_page: wanted.is_some(),
                    bad_cursor: false,
                },
                Err(_) => AuditEvents { bad_cursor: true, ..AuditEvents::default() },
            };
            data.insert(audit);
        }
        (Page::PlatformKeys, Some(w)) => {
            data.insert(PlatformKeys::load(app, user_id, w, param("created").as_deref()).await?);
        }
        (Page::ApiTokens, _) => {
            data.insert(ApiTokens::load(app, user_id, param("created").as_deref()).await?);
        }
        _ => {}
    }
    Ok(())
}
