//! Onramp API tokens, for scripts: `/api/tokens/create` (the secret shown once) and `revoke`.

use super::error::ApiError;
use leptos::prelude::*;
#[cfg(feature = "ssr")]
use {
    super::caller::{actor, state, viewer},
    super::respond::{from_browser, to_page, with_query},
    crate::store::{accounts, workspaces},
    crate::workspace::audit,
};

/// A new Onramp API token, for scripts: `POST /api/tokens/create`, `name`. The secret is answered
/// (or shown on the page) once.
#[server(prefix = "/api", endpoint = "tokens/create")]
pub async fn create_api_token(name: Option<String>) -> Result<String, ApiError> {
    let state = state()?;
    let viewer = viewer()?;
    let name = name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
    let Some(name) = name else {
        to_page("/settings/api-tokens?error=name");
        return Err(ApiError::bad_request("Give the token a name, so you know later what uses it."));
    };
    let (_, secret) = accounts::create_api_token(&state.db, &viewer.user.id, &name).await?;
    if let Err(e) =
        workspaces::record_everywhere(&state.db, &viewer.user.id, &actor(&viewer), audit::API_TOKEN_CREATED, &name)
            .await
    {
        tracing::error!(error = %e, "cannot record an audit event");
    }
    if from_browser() {
        // The secret is shown once, on the page, from a flash: never in the URL.
        let flash = accounts::put_flash(&state.db, &state.keys, &viewer.user.id, &secret).await?;
        leptos_axum::redirect(&with_query("/settings/api-tokens", "created", &flash));
        return Ok(String::new());
    }
    Ok(secret)
}

/// `POST /api/tokens/revoke`, `id`.
#[server(prefix = "/api", endpoint = "tokens/revoke")]
pub async fn revoke_api_token(id: String) -> Result<bool, ApiError> {
    let state = state()?;
    let viewer = viewer()?;
    let revoked = accounts::revoke_api_token(&state.db, &viewer.user.id, &id).await?;
    if revoked {
        let recorded =
            workspaces::record_everywhere(&state.db, &viewer.user.id, &actor(&viewer), audit::API_TOKEN_REVOKED, &id)
                .await;
        if let Err(e) = recorded {
            tracing::error!(error = %e, "cannot record an audit event");
        }
    }
    to_page("/settings/api-tokens?revoked=1");
    if revoked {
        Ok(true)
    } else {
        Err(ApiError::not_found("You have no API token with this id."))
    }
}
