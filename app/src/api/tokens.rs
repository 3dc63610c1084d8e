//! Onramp API tokens, for scripts: `/api/tokens/create` (the secret shown once) and `revoke`.

use super::error::ApiError;
use leptos::prelude::*;
#[cfg(feature = "ssr")]
use {
    super::caller::{actor, state, viewer},
    super::error::RateLimited,
    super::respond::{from_browser, to_page, with_query},
    crate::store::{accounts, workspaces},
    crate::workspace::audit,
};

/// A new Onramp API token, for scripts: `POST /api/tokens/create`, `name` (one line of visible
/// text, cut at 100 characters). The secret is answered (or shown on the page) once. At most 20
/// tokens per account, and 20 new ones an hour.
#[server(prefix = "/api", endpoint = "tokens/create")]
pub async fn create_api_token(name: Option<String>) -> Result<String, ApiError> {
    let state = state()?;
    let viewer = viewer()?;
    if let Err(wait) = state.api_tokens_per_user.check(&viewer.user.id) {
        to_page(format!("/settings/api-tokens?error=limited_{wait}"));
        return Err(RateLimited { wait, what: "new API tokens" }.into());
    }
    let made = accounts::create_api_token(&state.db, &viewer.user.id, name.as_deref().unwrap_or_default()).await?;
    let (token, secret) = match made {
        Ok(made) => made,
        Err(refused) => {
            to_page(format!("/settings/api-tokens?error={}", refused_code(refused)));
            return Err(ApiError::bad_request(refused.to_string()));
        }
    };
    // The name as stored (one line, at most 100 characters): never what was typed.
    if let Err(e) = workspaces::record_everywhere(
        &state.db,
        &viewer.user.id,
        &actor(&viewer),
        audit::API_TOKEN_CREATED,
        &token.name,
    )
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

/// The code the API tokens page shows a refusal by (`?error=`).
#[cfg(feature = "ssr")]
fn refused_code(refused: accounts::TokenRefused) -> &'static str {
    use accounts::{TokenNameProblem, TokenRefused};
    match refused {
        TokenRefused::Name(TokenNameProblem::Empty) => "name",
        TokenRefused::Name(TokenNameProblem::Invisible) => "name_invisible",
        TokenRefused::TooMany(_) => "too_many",
    }
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
