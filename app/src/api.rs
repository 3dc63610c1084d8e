//! Server functions: Onramp's public HTTP API. Thin: parse the input into domain types, call the
//! domain, return its result — JSON for scripts, a redirect to the page that shows the result for
//! a browser posting a form (with or without JavaScript).
//!
//! Every function here except those under `/api/auth/` needs a signed-in user or an Onramp API
//! token; [`crate::auth::ssr::middleware`] enforces that, and CSRF, before they run.

use crate::gitlab::report::Report;
use crate::integration::Integration;
use leptos::prelude::*;
use leptos::server_fn::codec::{GetUrl, JsonEncoding};
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// An error of the API itself (not a finding about GitLab: those are in the [`Report`]).
/// JSON: `{"error": "rate_limited", "message": "…", "retry_after": 12}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub error: ApiErrorKind,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub retry_after: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiErrorKind {
    BadRequest,
    Unauthorized,
    NotFound,
    RateLimited,
    Internal,
    /// Onramp is at capacity for this kind of work (503, with `Retry-After`).
    Busy,
}

impl ApiError {
    fn new(error: ApiErrorKind, message: impl Into<String>) -> Self {
        #[cfg(feature = "ssr")]
        ssr::set_status(match error {
            ApiErrorKind::BadRequest => http::StatusCode::BAD_REQUEST,
            ApiErrorKind::Unauthorized => http::StatusCode::UNAUTHORIZED,
            ApiErrorKind::NotFound => http::StatusCode::NOT_FOUND,
            ApiErrorKind::RateLimited => http::StatusCode::TOO_MANY_REQUESTS,
            ApiErrorKind::Internal => http::StatusCode::INTERNAL_SERVER_ERROR,
            ApiErrorKind::Busy => http::StatusCode::SERVICE_UNAVAILABLE,
        });
        ApiError { error, message: message.into(), retry_after: None }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ApiErrorKind::BadRequest, message)
    }
}

impl FromServerFnError for ApiError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            // The request could not be read: the caller's mistake, answered 400, never 500.
            ServerFnErrorErr::Args(_) | ServerFnErrorErr::Deserialization(_) | ServerFnErrorErr::MissingArg(_) => {
                ApiError::bad_request(
                    "The request could not be read: send the documented form fields, form-urlencoded.",
                )
            }
            other => ApiError::new(ApiErrorKind::Internal, other.to_string()),
        }
    }
}

/// Checks a GitLab connection: `POST /api/gitlab/validate`, form fields `base_url`, `token` and
/// optionally `ca_pem` (a private CA, PEM). Answers the [`Report`] as JSON, 200 even when checks
/// fail. A browser posting the form is redirected: to step 13 once the integration is saved (no
/// check failed nor warned), else back to step 12 with the report (and, when only warnings were
/// found, an "Integrate anyway" button). The token is never in the answer, a URL or a log.
#[server(prefix = "/api", endpoint = "gitlab/validate")]
pub async fn validate(
    base_url: Option<String>,
    token: Option<String>,
    ca_pem: Option<String>,
) -> Result<Report, ApiError> {
    ssr::validate(base_url, token, ca_pem).await
}

/// Saves the integration of a check that passed with warnings: `POST /api/gitlab/accept`, `check`.
#[server(prefix = "/api", endpoint = "gitlab/accept")]
pub async fn accept_warnings(check: String) -> Result<Integration, ApiError> {
    ssr::accept_warnings(check).await
}

/// Runs every check again with the stored token: `POST /api/gitlab/recheck`.
#[server(prefix = "/api", endpoint = "gitlab/recheck")]
pub async fn recheck() -> Result<Report, ApiError> {
    ssr::recheck().await
}

/// Checks a new token against the saved instance and, when no check fails, swaps it in:
/// `POST /api/gitlab/replace`, `token`.
#[server(prefix = "/api", endpoint = "gitlab/replace")]
pub async fn replace_token(token: Option<String>) -> Result<Report, ApiError> {
    ssr::replace_token(token).await
}

/// Deletes the saved integration and its token: `POST /api/gitlab/disconnect`.
#[server(prefix = "/api", endpoint = "gitlab/disconnect")]
pub async fn disconnect() -> Result<bool, ApiError> {
    ssr::disconnect().await
}

/// The caller's saved integrations, without secrets: `GET /api/integrations`.
#[server(prefix = "/api", endpoint = "integrations", input = GetUrl)]
pub async fn list_integrations() -> Result<Vec<Integration>, ApiError> {
    ssr::list_integrations().await
}

/// `POST /api/auth/signup`: `email`, `password`, `next`.
#[server(prefix = "/api", endpoint = "auth/signup")]
pub async fn signup(email: Option<String>, password: Option<String>, next: Option<String>) -> Result<(), ApiError> {
    ssr::signup(email, password, next).await
}

/// `POST /api/auth/login`: `email`, `password`, `next`.
#[server(prefix = "/api", endpoint = "auth/login")]
pub async fn login(email: Option<String>, password: Option<String>, next: Option<String>) -> Result<(), ApiError> {
    ssr::login(email, password, next).await
}

/// `POST /api/auth/logout`.
#[server(prefix = "/api", endpoint = "auth/logout")]
pub async fn logout() -> Result<(), ApiError> {
    ssr::logout().await
}

/// `POST /api/auth/logout_everywhere`: ends every session of the signed-in user, this one included.
/// Answers how many sessions ended.
#[server(prefix = "/api", endpoint = "auth/logout_everywhere")]
pub async fn logout_everywhere() -> Result<u64, ApiError> {
    ssr::logout_everywhere().await
}

/// `POST /api/wizard/confirm_instance`: `base` (or `profile`, a profile URL, as on step 11) and
/// `step`. The reader confirms that the GitLab a link named, or that they typed, is theirs:
/// remembered in this browser, then back to the step, which now links into it. Public, like the
/// steps that ask. Answers the base URL.
#[server(prefix = "/api", endpoint = "wizard/confirm_instance")]
pub async fn confirm_instance(
    base: Option<String>,
    profile: Option<String>,
    step: Option<String>,
) -> Result<String, ApiError> {
    ssr::confirm_instance(base, profile, step).await
}

/// A new Onramp API token, for scripts: `POST /api/tokens/create`, `name`. The secret is answered
/// (or shown on the page) once.
#[server(prefix = "/api", endpoint = "tokens/create")]
pub async fn create_api_token(name: Option<String>) -> Result<String, ApiError> {
    ssr::create_api_token(name).await
}

/// `POST /api/tokens/revoke`, `id`.
#[server(prefix = "/api", endpoint = "tokens/revoke")]
pub async fn revoke_api_token(id: String) -> Result<bool, ApiError> {
    ssr::revoke_api_token(id).await
}

#[cfg(feature = "ssr")]
pub(crate) mod ssr {
    use super::*;
    use crate::auth::ssr::{clear_session_cookie, session_cookie, session_secret};
    use crate::auth::{safe_next, Viewer};
    use crate::client::{limit_key, text_key, ClientInfo};
    use crate::gitlab::base_url::BaseUrl;
    use crate::gitlab::check::{self, CheckInput};
    use crate::gitlab::report::StoredCheck;
    use crate::gitlab::token::GitlabToken;
    use crate::state::AppState;
    use crate::store::{accounts, integrations, StoreError};
    use crate::wizard::step_href;
    use http::{header, request::Parts, HeaderValue, StatusCode};
    use std::net::{IpAddr, Ipv4Addr};

    /// Sets the answer's status, unless a browser is already being redirected to the page that
    /// explains the problem: a form posted without JavaScript must get the redirect (302), not
    /// a 400 whose `Location` no browser follows.
    pub fn set_status(status: StatusCode) {
        if let Some(options) = use_context::<leptos_axum::ResponseOptions>() {
            let redirecting =
                options.0.read().map(|parts| parts.status.is_some_and(|s| s.is_redirection())).unwrap_or(false);
            if !redirecting {
                options.set_status(status);
            }
        }
    }

    fn state() -> Result<AppState, ApiError> {
        use_context::<AppState>().ok_or_else(|| ApiError::new(ApiErrorKind::Internal, "the server is not set up"))
    }

    fn parts() -> Option<Parts> {
        use_context::<Parts>()
    }

    fn viewer() -> Result<Viewer, ApiError> {
        parts()
            .and_then(|p| p.extensions.get::<Viewer>().cloned())
            .ok_or_else(|| ApiError::new(ApiErrorKind::Unauthorized, "Log in to Onramp, or send an Onramp API token."))
    }

    /// A browser posting a form (it accepts HTML): answer with a redirect to a page.
    fn from_browser() -> bool {
        parts()
            .and_then(|p| p.headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).map(|a| a.contains("text/html")))
            .unwrap_or(false)
    }

    /// The client as the middleware judged it (trusted proxies considered).
    fn client() -> ClientInfo {
        parts()
            .and_then(|p| p.extensions.get::<ClientInfo>().copied())
            .unwrap_or(ClientInfo { ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED), https: false })
    }

    /// The key rate limits count a client by (IPv6: its /64).
    fn client_key() -> IpAddr {
        limit_key(client().ip)
    }

    /// Seconds a client told "busy" should wait before trying again.
    const BUSY_RETRY_SECONDS: u64 = 2;

    fn stored(e: StoreError) -> ApiError {
        if let StoreError::Busy(what) = e {
            tracing::warn!(what, "at capacity");
            if let Some(options) = use_context::<leptos_axum::ResponseOptions>() {
                options.insert_header(header::RETRY_AFTER, HeaderValue::from(BUSY_RETRY_SECONDS));
            }
            let mut e = ApiError::new(
                ApiErrorKind::Busy,
                format!("Onramp is busy. Try again in {BUSY_RETRY_SECONDS} seconds."),
            );
            e.retry_after = Some(BUSY_RETRY_SECONDS);
            return e;
        }
        tracing::error!(error = %e, "storage failed");
        ApiError::new(ApiErrorKind::Internal, "Something went wrong on Onramp's side. Try again in a moment.")
    }

    /// [`stored`] for the log-in and sign-up forms: a browser goes back to the form, told to
    /// retry, rather than to a JSON error.
    fn stored_on_form(e: StoreError, page: &str, email: &str, next: &str) -> ApiError {
        let busy = matches!(e, StoreError::Busy(_));
        let e = stored(e);
        if busy && from_browser() {
            back_to(page, "busy", email, next);
        }
        e
    }

    fn rate_limited(wait: u64, what: &'static str) -> ApiError {
        metrics::counter!("onramp_rate_limited_total", "limit" => what).increment(1);
        if let Some(options) = use_context::<leptos_axum::ResponseOptions>() {
            options.insert_header(header::RETRY_AFTER, HeaderValue::from(wait));
        }
        let mut e = ApiError::new(ApiErrorKind::RateLimited, format!("Too many {what}. Try again in {wait} seconds."));
        e.retry_after = Some(wait);
        e
    }

    fn today() -> time::Date {
        time::OffsetDateTime::now_utc().date()
    }

    fn with_query(path: &str, key: &str, value: &str) -> String {
        let sep = if path.contains('?') { '&' } else { '?' };
        let value: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
        format!("{path}{sep}{key}={value}")
    }

    async fn limit_checks(state: &AppState, viewer: &Viewer) -> Result<(), u64> {
        state.checks_per_ip.check(&client_key())?;
        state.checks_per_user.check(&viewer.user.id)
    }

    /// [`limit_checks`] for the actions of `/integrations/gitlab`, which shows the wait.
    async fn limit_checks_on_manage_page(state: &AppState, viewer: &Viewer) -> Result<(), ApiError> {
        limit_checks(state, viewer).await.map_err(|wait| {
            if from_browser() {
                leptos_axum::redirect(&format!("/integrations/gitlab?limited={wait}"));
            }
            rate_limited(wait, "connection checks")
        })
    }

    pub async fn validate(
        base_url: Option<String>,
        token: Option<String>,
        ca_pem: Option<String>,
    ) -> Result<Report, ApiError> {
        let state = state()?;
        let viewer = viewer()?;
        let browser = from_browser();
        let typed_base_url = base_url.clone().unwrap_or_default();
        if let Err(wait) = limit_checks(&state, &viewer).await {
            let e = rate_limited(wait, "connection checks");
            if browser {
                let base = BaseUrl::parse(&typed_base_url).ok();
                leptos_axum::redirect(&with_query(&step_href(12, base.as_ref()), "limited", &wait.to_string()));
            }
            return Err(e);
        }
        if !browser && (base_url.is_none() || token.is_none()) {
            return Err(ApiError::bad_request("Send the form fields base_url and token (form-urlencoded)."));
        }
        let typed_ca = ca_pem.unwrap_or_default();
        let token = GitlabToken::parse(token.as_deref().unwrap_or_default());
        let input = CheckInput { base_url: &typed_base_url, token, extra_ca_pem: Some(&typed_ca) };
        let report = check::run(&state.outbound, &input, today()).await;
        if !browser {
            return Ok(report);
        }
        // Saved or kept only when it is a usable CA: junk is reported (above), never stored.
        let usable_ca = typed_ca.trim().is_empty() || crate::gitlab::outbound::parse_ca(&typed_ca).is_ok();
        let ca_pem = if usable_ca { typed_ca.clone() } else { String::new() };
        // A browser: save when nothing needs a decision, else show the report on step 12.
        let token = input.token.ok();
        let base = BaseUrl::parse(&report.base_url).ok();
        let warned = report.warnings().next().is_some();
        match token {
            Some(token) if report.ok && !warned => {
                integrations::save(&state.db, &state.keys, &viewer.user.id, &report, &token, &ca_pem)
                    .await
                    .map_err(stored)?;
                leptos_axum::redirect(&step_href(13, base.as_ref()));
            }
            token => {
                let keep = token.filter(|_| report.ok);
                let check = StoredCheck { report: report.clone(), typed_base_url, extra_ca_pem: ca_pem };
                let id = integrations::put_check(&state.db, &state.keys, &viewer.user.id, &check, keep.as_ref())
                    .await
                    .map_err(stored)?;
                leptos_axum::redirect(&with_query(&step_href(12, base.as_ref()), "check", &id));
            }
        }
        Ok(report)
    }

    pub async fn accept_warnings(check_id: String) -> Result<Integration, ApiError> {
        let state = state()?;
        let viewer = viewer()?;
        let kept = integrations::get_check(&state.db, &state.keys, &viewer.user.id, &check_id).await.map_err(stored)?;
        let Some((check, Some(token))) = kept.filter(|(c, _)| c.report.ok) else {
            if from_browser() {
                leptos_axum::redirect(&step_href(12, None));
            }
            return Err(ApiError::new(
                ApiErrorKind::NotFound,
                "This check is no longer available: check the connection again.",
            ));
        };
        let saved =
            integrations::save(&state.db, &state.keys, &viewer.user.id, &check.report, &token, &check.extra_ca_pem)
                .await
                .map_err(stored)?;
        integrations::delete_check(&state.db, &viewer.user.id, &check_id).await.map_err(stored)?;
        if from_browser() {
            let base = BaseUrl::parse(&saved.base_url).ok();
            leptos_axum::redirect(&step_href(13, base.as_ref()));
        }
        Ok(saved)
    }

    pub async fn recheck() -> Result<Report, ApiError> {
        let state = state()?;
        let viewer = viewer()?;
        limit_checks_on_manage_page(&state, &viewer).await?;
        let Some(report) = crate::connections::recheck_user(&state, &viewer.user.id).await.map_err(stored)? else {
            return Err(not_connected());
        };
        if from_browser() {
            leptos_axum::redirect("/integrations/gitlab?rechecked=1");
        }
        Ok(report)
    }

    fn not_connected() -> ApiError {
        if from_browser() {
            leptos_axum::redirect("/integrations/gitlab");
        }
        ApiError::new(ApiErrorKind::NotFound, "You have not connected GitLab yet.")
    }

    pub async fn replace_token(token: Option<String>) -> Result<Report, ApiError> {
        let state = state()?;
        let viewer = viewer()?;
        limit_checks_on_manage_page(&state, &viewer).await?;
        // The saved row must open: its address and CA decide where the new token goes.
        let saved = match integrations::with_token(&state.db, &state.keys, &viewer.user.id).await {
            Err(StoreError::Crypto(_)) => {
                if from_browser() {
                    leptos_axum::redirect("/integrations/gitlab");
                }
                return Err(ApiError::bad_request(crate::connections::UNUSABLE_TOKEN));
            }
            other => other.map_err(stored)?,
        };
        let Some((integration, _, ca_pem)) = saved else {
            return Err(not_connected());
        };
        let token = GitlabToken::parse(token.as_deref().unwrap_or_default());
        let input = CheckInput { base_url: &integration.base_url, token, extra_ca_pem: Some(&ca_pem) };
        let report = check::run(&state.outbound, &input, today()).await;
        match input.token.ok().filter(|_| report.ok) {
            Some(token) => {
                integrations::save(&state.db, &state.keys, &viewer.user.id, &report, &token, &ca_pem)
                    .await
                    .map_err(stored)?;
                if from_browser() {
                    leptos_axum::redirect("/integrations/gitlab?replaced=1");
                }
            }
            None if from_browser() => {
                let check = StoredCheck {
                    report: report.clone(),
                    typed_base_url: integration.base_url.clone(),
                    extra_ca_pem: ca_pem,
                };
                let id = integrations::put_check(&state.db, &state.keys, &viewer.user.id, &check, None)
                    .await
                    .map_err(stored)?;
                leptos_axum::redirect(&with_query("/integrations/gitlab", "check", &id));
            }
            None => {}
        }
        Ok(report)
    }

    pub async fn disconnect() -> Result<bool, ApiError> {
        let state = state()?;
        let viewer = viewer()?;
        let deleted = integrations::delete_for_user(&state.db, &viewer.user.id).await.map_err(stored)?;
        if from_browser() {
            leptos_axum::redirect("/settings/integrations?disconnected=1");
        }
        Ok(deleted)
    }

    pub async fn list_integrations() -> Result<Vec<Integration>, ApiError> {
        let viewer = viewer()?;
        Ok(viewer.integration.into_iter().collect())
    }

    fn set_cookie(value: String) {
        if let (Some(options), Ok(value)) =
            (use_context::<leptos_axum::ResponseOptions>(), HeaderValue::from_str(&value))
        {
            options.append_header(header::SET_COOKIE, value);
        }
    }

    /// Does the browser reach Onramp over https (directly, through a trusted proxy, or as
    /// `ONRAMP_PUBLIC_URL` says)? Then the session cookie is `__Host-` and `Secure`.
    fn https() -> bool {
        client().https || crate::auth::ssr::public_url_is_https()
    }

    /// Ends the current session (if any) and starts a new one: the session id changes at log-in.
    async fn start_session(state: &AppState, user_id: &str) -> Result<(), ApiError> {
        if let Some(old) = parts().and_then(|p| session_secret(&p.headers, https())) {
            accounts::delete_session(&state.db, &old).await.map_err(stored)?;
        }
        let secret = accounts::create_session(&state.db, user_id).await.map_err(stored)?;
        set_cookie(session_cookie(&secret, https()));
        Ok(())
    }

    fn back_to(page: &str, error: &str, email: &str, next: &str) {
        let mut path = with_query(page, "error", error);
        // Typed back into the form; an "address" longer than any can be is not worth a long URL.
        if !email.is_empty() && email.len() <= 254 {
            path = with_query(&path, "email", email);
        }
        if !next.is_empty() {
            path = with_query(&path, "next", next);
        }
        leptos_axum::redirect(&path);
    }

    pub async fn signup(email: Option<String>, password: Option<String>, next: Option<String>) -> Result<(), ApiError> {
        let state = state()?;
        let typed = email.unwrap_or_default();
        let next = safe_next(next.as_deref(), "/integrations/gitlab/step/2");
        if let Err(wait) = state.signups_per_ip.check(&client_key()) {
            tracing::warn!("sign-ups rate-limited");
            if from_browser() {
                back_to("/signup", &format!("limited_{wait}"), &typed, &next);
            }
            return Err(rate_limited(wait, "new accounts from your network"));
        }
        let result = match accounts::Email::parse(&typed) {
            Ok(email) => accounts::create_user(&state.db, &email, password.as_deref().unwrap_or_default())
                .await
                .map_err(|e| stored_on_form(e, "/signup", &typed, &next))?,
            Err(e) => Err(e),
        };
        match result {
            Ok(user) => {
                start_session(&state, &user.id).await?;
                leptos_axum::redirect(&next);
                Ok(())
            }
            Err(e) => {
                let code = match e {
                    accounts::AccountError::EmailInvalid => "email_invalid",
                    accounts::AccountError::EmailTaken => "email_taken",
                    accounts::AccountError::PasswordTooShort => "password_short",
                    accounts::AccountError::PasswordTooLong => "password_long",
                };
                if from_browser() {
                    back_to("/signup", code, &typed, &next);
                }
                Err(ApiError::bad_request(e.to_string()))
            }
        }
    }

    pub async fn login(email: Option<String>, password: Option<String>, next: Option<String>) -> Result<(), ApiError> {
        let state = state()?;
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
            if from_browser() {
                back_to("/login", &format!("limited_{wait}"), &typed, &next);
            }
            return Err(rate_limited(wait, "log-in attempts"));
        }
        match accounts::verify_login(&state.db, &typed, password.as_deref().unwrap_or_default())
            .await
            .map_err(|e| stored_on_form(e, "/login", &typed, &next))?
        {
            Some(user) => {
                start_session(&state, &user.id).await?;
                leptos_axum::redirect(&next);
                Ok(())
            }
            None => {
                if from_browser() {
                    back_to("/login", "invalid", &typed, &next);
                }
                Err(ApiError::new(ApiErrorKind::Unauthorized, "The email address or password is not right."))
            }
        }
    }

    pub async fn logout() -> Result<(), ApiError> {
        let state = state()?;
        if let Some(secret) = parts().and_then(|p| session_secret(&p.headers, https())) {
            accounts::delete_session(&state.db, &secret).await.map_err(stored)?;
        }
        set_cookie(clear_session_cookie(https()));
        leptos_axum::redirect("/login?logged_out=1");
        Ok(())
    }

    pub async fn confirm_instance(
        base: Option<String>,
        profile: Option<String>,
        step: Option<String>,
    ) -> Result<String, ApiError> {
        use crate::trust::{add_confirmed, parse_confirmed, CONFIRMED_COOKIE};
        let step = step
            .as_deref()
            .and_then(crate::wizard::Step::from_segment)
            .map(|s| s.number)
            .filter(|n| (5..=12).contains(n))
            .unwrap_or(5);
        // Step 11 sends the profile URL it turns into the base; the page shows the result.
        let from_profile = profile.is_some();
        let (parsed, back_to) = match profile {
            Some(profile) => {
                let back = with_query(&step_href(11, None), "profile", &profile);
                (BaseUrl::from_profile_url(&profile), back)
            }
            None => {
                let typed = base.unwrap_or_default();
                let back = with_query(&step_href(step, None), "base", &typed);
                (BaseUrl::parse(&typed), back)
            }
        };
        let base = match parsed {
            Ok(base) => base,
            Err(e) => {
                // Back to the step, which explains what is wrong with the address.
                if from_browser() {
                    leptos_axum::redirect(&back_to);
                }
                return Err(ApiError::bad_request(e.to_string()));
            }
        };
        let existing = parts()
            .and_then(|p| crate::auth::ssr::cookie(&p.headers, CONFIRMED_COOKIE))
            .map(|v| parse_confirmed(&v))
            .unwrap_or_default();
        let value = add_confirmed(&existing, base.host());
        set_cookie(format!(
            "{CONFIRMED_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age=31536000{}",
            if https() { "; Secure" } else { "" }
        ));
        if from_browser() {
            // Step 11 shows the base it found; the other steps now link into the instance.
            let href = if from_profile { back_to } else { step_href(step, Some(&base)) };
            leptos_axum::redirect(&href);
        }
        Ok(base.to_string())
    }

    pub async fn logout_everywhere() -> Result<u64, ApiError> {
        let state = state()?;
        let viewer = viewer()?;
        let ended = accounts::delete_sessions_of(&state.db, &viewer.user.id).await.map_err(stored)?;
        tracing::info!(ended, "logged out everywhere");
        if !viewer.via_api_token {
            set_cookie(clear_session_cookie(https()));
        }
        if from_browser() {
            leptos_axum::redirect("/login?logged_out=everywhere");
        }
        Ok(ended)
    }

    pub async fn create_api_token(name: Option<String>) -> Result<String, ApiError> {
        let state = state()?;
        let viewer = viewer()?;
        let name = name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
        let Some(name) = name else {
            if from_browser() {
                leptos_axum::redirect("/settings/api-tokens?error=name");
            }
            return Err(ApiError::bad_request("Give the token a name, so you know later what uses it."));
        };
        let (_, secret) = accounts::create_api_token(&state.db, &viewer.user.id, &name).await.map_err(stored)?;
        if from_browser() {
            let flash = accounts::put_flash(&state.db, &state.keys, &viewer.user.id, &secret).await.map_err(stored)?;
            leptos_axum::redirect(&with_query("/settings/api-tokens", "created", &flash));
            return Ok(String::new());
        }
        Ok(secret)
    }

    pub async fn revoke_api_token(id: String) -> Result<bool, ApiError> {
        let state = state()?;
        let viewer = viewer()?;
        let revoked = accounts::revoke_api_token(&state.db, &viewer.user.id, &id).await.map_err(stored)?;
        if from_browser() {
            leptos_axum::redirect("/settings/api-tokens?revoked=1");
        }
        if revoked {
            Ok(true)
        } else {
            Err(ApiError::new(ApiErrorKind::NotFound, "You have no API token with this id."))
        }
    }
}
