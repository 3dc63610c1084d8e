//! Workspace-level platform keys, made by an owner at `/settings/platform` for a team that runs
//! its own collector beside Onramp: `/api/platform_keys/create` (the key shown once) and `revoke`.
//! Instance-level keys are made with `onramp platform-key` (server/src/cli.rs).

use super::error::ApiError;
use leptos::prelude::*;
#[cfg(feature = "ssr")]
use {
    super::caller::{audit, state, viewer, workspace_for},
    super::error::RateLimited,
    super::respond::{from_browser, to_page, with_query},
    crate::platform::{KeyScope, Scopes},
    crate::routes::SETTINGS_PLATFORM,
    crate::store::{accounts, platform},
    crate::workspace::{audit as actions, Action},
};

/// `POST /api/platform_keys/create`: `name`, one checkbox per scope (`connections_read`,
/// `credentials_read`, `connect_sessions_write`, `webhooks_write`: any value turns it on),
/// optionally `return_origin` (where connect sessions may send people back to), for the
/// current workspace (or `workspace`). Owners only. The key is answered (or shown on the page)
/// once; Onramp keeps its hash.
#[server(prefix = "/api", endpoint = "platform_keys/create")]
pub async fn create_platform_key(
    name: Option<String>,
    workspace: Option<String>,
    connections_read: Option<String>,
    credentials_read: Option<String>,
    connect_sessions_write: Option<String>,
    webhooks_write: Option<String>,
    return_origin: Option<String>,
) -> Result<String, ApiError> {
    let state = state()?;
    let viewer = viewer()?;
    let ws = workspace_for(&viewer, workspace.as_deref(), Action::ManageMembers)?;
    // New keys count against the same hourly budget as a person's API tokens.
    if let Err(wait) = state.api_tokens_per_user.check(&viewer.user.id) {
        to_page(format!("{SETTINGS_PLATFORM}?error=limited_{wait}"));
        return Err(RateLimited { wait, what: "new keys" }.into());
    }
    let wanted: Vec<&str> = [
        (connections_read, KeyScope::ConnectionsRead),
        (credentials_read, KeyScope::CredentialsRead),
        (connect_sessions_write, KeyScope::ConnectSessionsWrite),
        (webhooks_write, KeyScope::WebhooksWrite),
    ]
    .into_iter()
    .filter(|(on, _)| on.is_some())
    .map(|(_, scope)| scope.as_str())
    .collect();
    let scopes = match Scopes::parse(&wanted.join(",")) {
        Ok(s) => s,
        Err(_) => {
            to_page(format!("{SETTINGS_PLATFORM}?error=scopes"));
            return Err(ApiError::bad_request("Tick at least one thing the key may do."));
        }
    };
    let return_origins = match return_origin.as_deref().map(str::trim).filter(|o| !o.is_empty()) {
        None => Vec::new(),
        Some(typed) => match crate::platform::ReturnOrigin::parse(typed) {
            Ok(origin) => vec![origin],
            Err(why) => {
                to_page(format!("{SETTINGS_PLATFORM}?error=origin"));
                return Err(ApiError::bad_request(why));
            }
        },
    };
    let new = platform::NewKey {
        name: name.as_deref().unwrap_or_default(),
        scopes,
        return_origins,
        workspace_id: Some(&ws.id),
    };
    let (key, secret) = match platform::create_key(&state.db, new).await? {
        Ok(made) => made,
        Err(refused) => {
            to_page(format!("{SETTINGS_PLATFORM}?error=name"));
            return Err(ApiError::bad_request(refused));
        }
    };
    audit(&state, &ws.id, &viewer, actions::PLATFORM_KEY_CREATED, &key.name).await;
    if from_browser() {
        // Shown once, on the page, from a flash: never in the URL.
        let flash = accounts::put_flash(&state.db, &state.keys, &viewer.user.id, &secret).await?;
        leptos_axum::redirect(&with_query(SETTINGS_PLATFORM, "created", &flash));
        return Ok(String::new());
    }
    Ok(secret)
}

/// `POST /api/platform_keys/revoke`: `id`, of a key of the current workspace (or `workspace`).
/// Owners only; the key stops working at once.
#[server(prefix = "/api", endpoint = "platform_keys/revoke")]
pub async fn revoke_platform_key(id: String, workspace: Option<String>) -> Result<bool, ApiError> {
    let state = state()?;
    let viewer = viewer()?;
    let ws = workspace_for(&viewer, workspace.as_deref(), Action::ManageMembers)?;
    let revoked = platform::revoke_key(&state.db, Some(&ws.id), &id).await?;
    to_page(format!("{SETTINGS_PLATFORM}?revoked=1"));
    if !revoked {
        return Err(ApiError::not_found("This workspace has no live platform key with this id."));
    }
    audit(&state, &ws.id, &viewer, actions::PLATFORM_KEY_REVOKED, &id).await;
    Ok(true)
}
