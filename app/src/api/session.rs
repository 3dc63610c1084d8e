//! Accounts and sessions: `/api/auth/signup`, `login`, `logout`, `logout_everywhere`. Public
//! except the last; a browser whose form is refused goes back to it, told why, with what it typed
//! (never the password).

use super::error::ApiError;
use leptos::prelude::*;
#[cfg(feature = "ssr")]
use {
    super::caller::{client_key, https, parts, state, viewer},
    super::error::{ApiErrorKind, RateLimited},
    super::invitations::{answer_invitation, url_segment},
    super::respond::{to_page, with_query},
    crate::auth::safe_next,
    crate::auth::ssr::{clear_session_cookie, session_cookie, session_secret},
    crate::client::text_key,
    crate::state::AppState,
    crate::store::{accounts, StoreError},
    http::{header, HeaderValue},
};

#[cfg(feature = "ssr")]
pub(crate) fn set_cookie(value: String) {
    if let (Some(options), Ok(value)) = (use_context::<leptos_axum::ResponseOptions>(), HeaderValue::from_str(&value)) {
        options.append_header(header::SET_COOKIE, value);
    }
}

/// Ends the current session (if any) and starts a new one: the session id changes at log-in.
#[cfg(feature = "ssr")]
async fn start_session(state: &AppState, user_id: &str) -> Result<(), ApiError> {
    if let Some(old) = parts().and_then(|p| session_secret(&p.headers, https())) {
        accounts::delete_session(&state.db, &old).await?;
    }
    let secret = accounts::create_session(&state.db, user_id).await?;
    set_cookie(session_cookie(&secret, https()));
    Ok(())
}

/// [`back_to`], keeping the invitation the form was opened with.
#[cfg(feature = "ssr")]
fn back_to_form(page: &str, error: &str, email: &str, next: &str, invite: Option<&str>) {
    match invite {
        Some(invite) => back_to(&with_query(page, "invite", &url_segment(invite)), error, email, next),
        None => back_to(page, error, email, next),
    }
}

/// Sends a browser back to the form `page`, which shows `error` and what was typed.
#[cfg(feature = "ssr")]
fn back_to(page: &str, error: &str, email: &str, next: &str) {
    let mut path = with_query(page, "error", error);
    // Typed back into the form; an "address" longer than any can be is not worth a long URL.
    if !email.is_empty() && email.len() <= 254 {
        path = with_query(&path, "email", email);
    }
    if !next.is_empty() {
        path = with_query(&path, "next", next);
    }
    to_page(path);
}

/// A storage failure on the log-in and sign-up forms: a browser goes back to the form, told to
/// retry when Onramp is busy, rather than to a JSON error.
#[cfg(feature = "ssr")]
fn stored_on_form(e: StoreError, page: &str, email: &str, next: &str) -> ApiError {
    let busy = matches!(e, StoreError::Busy(_));
    let e = ApiError::from(e);
    if busy {
        back_to(page, "busy", email, next);
    }
    e
}

/// `POST /api/auth/signup`: `email`, `password`, `next`, and `invite` (an invitation the new
/// account accepts at once).
#[server(prefix = "/api", endpoint = "auth/signup")]
pub async fn signup(
    email: Option<String>,
    password: Option<String>,
    next: Option<String>,
    invite: Option<String>,
) -> Result<(), ApiError> {
    let state = state()?;
    let invite = invite.filter(|i| !i.trim().is_empty());
    let typed = email.unwrap_or_default();
    let next = safe_next(next.as_deref(), "/integrations/gitlab/step/2");
    if let Err(wait) = state.signups_per_ip.check(&client_key()) {
        tracing::warn!("sign-ups rate-limited");
        back_to_form("/signup", &format!("limited_{wait}"), &typed, &next, invite.as_deref());
        return Err(RateLimited { wait, what: "new accounts from your network" }.into());
    }
    let result = match accounts::Email::parse(&typed) {
        Ok(email) => crate::store::signup::create_user(&state.db, &email, password.as_deref().unwrap_or_default())
            .await
            .map_err(|e| stored_on_form(e, "/signup", &typed, &next))?,
        Err(problem) => Err(accounts::AccountError::EmailInvalid(problem)),
    };
    match result {
        Ok(user) => {
            start_session(&state, &user.id).await?;
            leptos_axum::redirect(&next);
            if let Some(invite) = invite {
                answer_invitation(&state, &user, &invite, true).await?;
            }
            Ok(())
        }
        Err(e) => {
            let code = match e {
                accounts::AccountError::EmailInvalid(problem) => format!("email_{}", problem.code()),
                accounts::AccountError::EmailTaken => "email_taken".to_owned(),
                accounts::AccountError::PasswordTooShort => "password_short".to_owned(),
                accounts::AccountError::PasswordTooLong => "password_long".to_owned(),
            };
            back_to_form("/signup", &code, &typed, &next, invite.as_deref());
            Err(ApiError::bad_request(e.to_string()))
        }
    }
}

/// `POST /api/auth/login`: `email`, `password`, `next`, `invite` (as for sign-up).
#[server(prefix = "/api", endpoint = "auth/login")]
pub async fn login(
    email: Option<String>,
    password: Option<String>,
    next: Option<String>,
    invite: Option<String>,
) -> Result<(), ApiError> {
    let state = state()?;
    let invite = invite.filter(|i| !i.trim().is_empty());
    let typed = email.unwrap_or_default();
    let next = safe_next(next.as_deref(), "/settings/integrations");
    // A fixed-size key, whatever was typed; the owner's own attempts from another address are
    // counted apart from a guesser's (see crate::state for the three limits).
    let account = text_key(&typed.trim().to_lowercase());
    let ip = client_key();
    let limited = state
        .logins_per_ip
        .check(&ip)
        .and_then(|_| state.logins_per_account_and_ip.check(&(account, ip)))
        .and_then(|_| state.logins_per_account.check(&account));
    if let Err(wait) = limited {
        tracing::warn!("log-in attempts rate-limited");
        back_to_form("/login", &format!("limited_{wait}"), &typed, &next, invite.as_deref());
        return Err(RateLimited { wait, what: "log-in attempts" }.into());
    }
    match accounts::verify_login(&state.db, &typed, password.as_deref().unwrap_or_default())
        .await
        .map_err(|e| stored_on_form(e, "/login", &typed, &next))?
    {
        Some(user) => {
            start_session(&state, &user.id).await?;
            leptos_axum::redirect(&next);
            if let Some(invite) = invite {
                answer_invitation(&state, &user, &invite, true).await?;
            }
            Ok(())
        }
        None => {
            back_to_form("/login", "invalid", &typed, &next, invite.as_deref());
            Err(ApiError::new(ApiErrorKind::Unauthorized, "The email address or password is not right."))
        }
    }
}

/// `POST /api/auth/logout`.
#[server(prefix = "/api", endpoint = "auth/logout")]
pub async fn logout() -> Result<(), ApiError> {
    let state = state()?;
    if let Some(secret) = parts().and_then(|p| session_secret(&p.headers, https())) {
        accounts::delete_session(&state.db, &secret).await?;
    }
    set_cookie(clear_session_cookie(https()));
    leptos_axum::redirect("/login?logged_out=1");
    Ok(())
}

/// `POST /api/auth/logout_everywhere`: ends every session of the signed-in user, this one included.
/// Answers how many sessions ended.
#[server(prefix = "/api", endpoint = "auth/logout_everywhere")]
pub async fn logout_everywhere() -> Result<u64, ApiError> {
    let state = state()?;
    let viewer = viewer()?;
    let ended = accounts::delete_sessions_of(&state.db, &viewer.user.id).await?;
    tracing::info!(ended, "logged out everywhere");
    if !viewer.via_api_token {
        set_cookie(clear_session_cookie(https()));
    }
    to_page("/login?logged_out=everywhere");
    Ok(ended)
}
