//! Server functions: Onramp's public HTTP API. Thin: parse the input into domain types, call the
//! domain, return its result — JSON for scripts, a redirect to the page that shows the result for
//! a browser posting a form (with or without JavaScript).
//!
//! Every function here except those under `/api/auth/` needs a signed-in user or an Onramp API
//! token; [`crate::auth::ssr::middleware`] enforces that, and CSRF, before they run.

use crate::gitlab::report::Report;
use crate::integration::Integration;
use crate::workspace::{AuditEvent, Member, Membership};
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
    /// Signed in, but the role in that workspace does not allow it (403).
    Forbidden,
    NotFound,
    /// It exists already (409): the message says which.
    Conflict,
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
            ApiErrorKind::Forbidden => http::StatusCode::FORBIDDEN,
            ApiErrorKind::NotFound => http::StatusCode::NOT_FOUND,
            ApiErrorKind::Conflict => http::StatusCode::CONFLICT,
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
/// fail. A browser posting the form is redirected: to step 13 once the connection is saved in the
/// current workspace (no check failed nor warned), else back to step 12 with the report (and, when
/// only warnings were found, an "Integrate anyway" button; when the workspace already has this
/// instance and GitLab user, an offer to replace that connection's token). The token is never in
/// the answer, a URL or a log.
#[server(prefix = "/api", endpoint = "gitlab/validate")]
pub async fn validate(
    base_url: Option<String>,
    token: Option<String>,
    ca_pem: Option<String>,
) -> Result<Report, ApiError> {
    ssr::validate(base_url, token, ca_pem).await
}

/// Saves the connection of a check that passed with warnings: `POST /api/gitlab/accept`, `check`;
/// with `replace` (a connection's id), swaps the checked token into that connection instead.
#[server(prefix = "/api", endpoint = "gitlab/accept")]
pub async fn accept_warnings(check: String, replace: Option<String>) -> Result<Integration, ApiError> {
    ssr::accept_warnings(check, replace).await
}

/// Runs every check again with the stored token: `POST /api/gitlab/recheck`, `id` (the
/// connection; may be left out when the current workspace has only one).
#[server(prefix = "/api", endpoint = "gitlab/recheck")]
pub async fn recheck(id: Option<String>) -> Result<Report, ApiError> {
    ssr::recheck(id).await
}

/// Checks a new token against a connection's instance and, when no check fails, swaps it in:
/// `POST /api/gitlab/replace`, `id`, `token`.
#[server(prefix = "/api", endpoint = "gitlab/replace")]
pub async fn replace_token(id: Option<String>, token: Option<String>) -> Result<Report, ApiError> {
    ssr::replace_token(id, token).await
}

/// Rotates a connection's token now (GitLab 16.10+, a token with `api` or `self_rotate`):
/// `POST /api/gitlab/rotate`, `id`. Never sends a second rotation for the same token.
#[server(prefix = "/api", endpoint = "gitlab/rotate")]
pub async fn rotate_token(id: Option<String>) -> Result<RotationAnswer, ApiError> {
    ssr::rotate_token(id).await
}

/// `POST /api/gitlab/rotate` answers this.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationAnswer {
    /// `rotated`, `not_due`, `cannot`, `taken`, `refused`, `kept`, `lost`, `unsettled`, `unusable`.
    pub outcome: String,
    pub message: String,
    /// The new token's expiry, when it rotated.
    pub expires_at: Option<String>,
}

/// A connection's rotation state and latest events (newest first, at most 50):
/// `GET /api/gitlab/events?id=…`.
#[server(prefix = "/api", endpoint = "gitlab/events", input = GetUrl)]
pub async fn connection_events(id: Option<String>) -> Result<EventsAnswer, ApiError> {
    ssr::connection_events(id).await
}

/// `GET /api/gitlab/events` answers this.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsAnswer {
    pub id: String,
    pub rotation: crate::integration::RotationView,
    pub events: Vec<crate::integration::ConnectionEvent>,
}

/// Deletes a connection and its token: `POST /api/gitlab/disconnect`, `id`.
#[server(prefix = "/api", endpoint = "gitlab/disconnect")]
pub async fn disconnect(id: Option<String>) -> Result<bool, ApiError> {
    ssr::disconnect(id).await
}

/// The connections of every workspace the caller belongs to, without secrets:
/// `GET /api/integrations` (each names its `workspace_id`).
#[server(prefix = "/api", endpoint = "integrations", input = GetUrl)]
pub async fn list_integrations() -> Result<Vec<Integration>, ApiError> {
    ssr::list_integrations().await
}

/// The caller's workspaces and the current one: `GET /api/workspaces`.
#[server(prefix = "/api", endpoint = "workspaces", input = GetUrl)]
pub async fn list_workspaces() -> Result<Workspaces, ApiError> {
    ssr::list_workspaces().await
}

/// `GET /api/workspaces` answers this.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workspaces {
    pub current: Option<String>,
    pub workspaces: Vec<Membership>,
}

/// A new workspace owned by the caller, made current: `POST /api/workspaces/create`, `name`.
#[server(prefix = "/api", endpoint = "workspaces/create")]
pub async fn create_workspace(name: Option<String>) -> Result<Membership, ApiError> {
    ssr::create_workspace(name).await
}

/// Works in another of the caller's workspaces from now on: `POST /api/workspaces/switch`,
/// `workspace`, and for a browser `next` (a page to go back to).
#[server(prefix = "/api", endpoint = "workspaces/switch")]
pub async fn switch_workspace(workspace: Option<String>, next: Option<String>) -> Result<Membership, ApiError> {
    ssr::switch_workspace(workspace, next).await
}

/// Renames a workspace (owners): `POST /api/workspaces/rename`, `name`, optional `workspace`
/// (default: the current one, as for every workspace call below).
#[server(prefix = "/api", endpoint = "workspaces/rename")]
pub async fn rename_workspace(name: Option<String>, workspace: Option<String>) -> Result<String, ApiError> {
    ssr::rename_workspace(name, workspace).await
}

/// The members of a workspace: `GET /api/workspaces/members?workspace=…`.
#[server(prefix = "/api", endpoint = "workspaces/members", input = GetUrl)]
pub async fn list_members(workspace: Option<String>) -> Result<Vec<Member>, ApiError> {
    ssr::list_members(workspace).await
}

/// Gives a member another role (owners): `POST /api/workspaces/set_role`, `user_id`, `role`
/// (`owner`, `admin` or `viewer`). A workspace always keeps an owner.
#[server(prefix = "/api", endpoint = "workspaces/set_role")]
pub async fn set_role(
    user_id: Option<String>,
    role: Option<String>,
    workspace: Option<String>,
) -> Result<Member, ApiError> {
    ssr::set_role(user_id, role, workspace).await
}

/// Removes a member (owners): `POST /api/workspaces/remove`, `user_id`.
#[server(prefix = "/api", endpoint = "workspaces/remove")]
pub async fn remove_member(user_id: Option<String>, workspace: Option<String>) -> Result<Member, ApiError> {
    ssr::remove_member(user_id, workspace).await
}

/// Leaves a workspace: `POST /api/workspaces/leave`. Its last owner cannot.
#[server(prefix = "/api", endpoint = "workspaces/leave")]
pub async fn leave_workspace(workspace: Option<String>) -> Result<bool, ApiError> {
    ssr::leave_workspace(workspace).await
}

/// A new invitation (owners and admins, for a role up to their own): `POST
/// /api/invitations/create`, `role` (default `admin`), optional `email` (only that address may
/// accept), optional `step` and `base` (the wizard step the colleague lands on after joining).
/// Answers the link, shown once; it works once, for 7 days.
#[server(prefix = "/api", endpoint = "invitations/create")]
pub async fn create_invitation(
    role: Option<String>,
    email: Option<String>,
    step: Option<String>,
    base: Option<String>,
    workspace: Option<String>,
) -> Result<NewInvitation, ApiError> {
    ssr::create_invitation(role, email, step, base, workspace).await
}

/// `POST /api/invitations/create` answers this.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewInvitation {
    pub id: String,
    pub link: String,
}

/// Withdraws an open invitation: `POST /api/invitations/revoke`, `id`.
#[server(prefix = "/api", endpoint = "invitations/revoke")]
pub async fn revoke_invitation(id: Option<String>, workspace: Option<String>) -> Result<bool, ApiError> {
    ssr::revoke_invitation(id, workspace).await
}

/// Joins the workspace of an invitation: `POST /api/invitations/accept`, `invite` (the secret of
/// the link). The workspace becomes the caller's current one; a browser goes on to the step the
/// link was made on.
#[server(prefix = "/api", endpoint = "invitations/accept")]
pub async fn accept_invitation(invite: Option<String>) -> Result<Membership, ApiError> {
    ssr::accept_invitation(invite).await
}

/// Declines an invitation: `POST /api/invitations/decline`, `invite`. The link stops working.
#[server(prefix = "/api", endpoint = "invitations/decline")]
pub async fn decline_invitation(invite: Option<String>) -> Result<bool, ApiError> {
    ssr::decline_invitation(invite).await
}

/// The audit log of a workspace (owners and admins), newest first: `GET /api/audit`, optional
/// `workspace` and `before` (Unix seconds, for the next page).
#[server(prefix = "/api", endpoint = "audit", input = GetUrl)]
pub async fn audit_log(workspace: Option<String>, before: Option<i64>) -> Result<Vec<AuditEvent>, ApiError> {
    ssr::audit_log(workspace, before).await
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
    ssr::signup(email, password, next, invite).await
}

/// `POST /api/auth/login`: `email`, `password`, `next`, `invite` (as for sign-up).
#[server(prefix = "/api", endpoint = "auth/login")]
pub async fn login(
    email: Option<String>,
    password: Option<String>,
    next: Option<String>,
    invite: Option<String>,
) -> Result<(), ApiError> {
    ssr::login(email, password, next, invite).await
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
    use crate::store::{accounts, integrations, workspaces, StoreError};
    use crate::wizard::step_href;
    use crate::workspace::{audit, Action, Role};
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

    /// [`limit_checks`] for the actions of a connection's page, which shows the wait.
    async fn limit_checks_on_page(state: &AppState, viewer: &Viewer, page: &str) -> Result<(), ApiError> {
        limit_checks(state, viewer).await.map_err(|wait| {
            if from_browser() {
                leptos_axum::redirect(&with_query(page, "limited", &wait.to_string()));
            }
            rate_limited(wait, "connection checks")
        })
    }

    /// Who is acting, for the audit log.
    fn actor(viewer: &Viewer) -> workspaces::Actor {
        workspaces::Actor { email: viewer.user.email.clone(), ip: client().ip.to_string() }
    }

    /// Records a change in a workspace's audit log. The change is made already: a failure to
    /// record it is logged, not answered as if the change had failed.
    async fn audit(state: &AppState, workspace_id: &str, viewer: &Viewer, action: &str, target: &str) {
        if let Err(e) = workspaces::record(&state.db, workspace_id, &actor(viewer), action, target).await {
            tracing::error!(error = %e, action, "cannot record an audit event");
        }
    }

    fn forbidden(role: Role, what: &str) -> ApiError {
        ApiError::new(
            ApiErrorKind::Forbidden,
            format!("You are {} in this workspace: {what} needs an owner or admin.", role.label().to_lowercase()),
        )
    }

    /// The workspace a call is about (`workspace`, else the current one), when the caller is a
    /// member and their role allows `action`. Another workspace's id is answered like one that
    /// does not exist.
    fn workspace_for(viewer: &Viewer, requested: Option<&str>, action: Action) -> Result<Membership, ApiError> {
        let found = match requested.map(str::trim).filter(|w| !w.is_empty()) {
            Some(id) => viewer.workspaces.iter().find(|w| w.id == id).cloned(),
            None => viewer.workspace.clone(),
        };
        let Some(workspace) = found else {
            return Err(ApiError::new(ApiErrorKind::NotFound, "You are not a member of this workspace."));
        };
        if !workspace.role.may(action) {
            return Err(match action {
                Action::ManageMembers => ApiError::new(
                    ApiErrorKind::Forbidden,
                    "Only an owner of the workspace can change its members or name.",
                ),
                _ => forbidden(workspace.role, "this"),
            });
        }
        Ok(workspace)
    }

    /// The connection a call is about, when the caller's role in its workspace allows `action`.
    /// Without an id: the current workspace's only connection. A connection of a workspace the
    /// caller is not in is answered like one that does not exist.
    async fn connection_for(
        state: &AppState,
        viewer: &Viewer,
        id: Option<&str>,
        action: Action,
    ) -> Result<Integration, ApiError> {
        let (integration, role) = match id.map(str::trim).filter(|i| !i.is_empty()) {
            Some(id) => integrations::find_for_user(&state.db, &viewer.user.id, id)
                .await
                .map_err(stored)?
                .ok_or_else(|| ApiError::new(ApiErrorKind::NotFound, "There is no connection with this id in your workspaces."))?,
            None => match (viewer.integrations.as_slice(), viewer.role()) {
                ([], _) | (_, None) => return Err(not_connected()),
                ([only], Some(role)) => (only.clone(), role),
                (_, Some(_)) => {
                    return Err(ApiError::bad_request(
                        "This workspace has several connections: say which one with `id` (GET /api/integrations lists them).",
                    ))
                }
            },
        };
        if !role.may(action) {
            return Err(forbidden(role, "changing a connection"));
        }
        Ok(integration)
    }

    /// "gitlab.example.com as @jdoe": how the audit log names a connection.
    fn named(integration: &Integration) -> String {
        format!("{} as @{}", integration.base_url, integration.username)
    }

    fn connection_page(id: &str) -> String {
        format!("/integrations/gitlab/connections/{id}")
    }

    /// After a save: step 13 showing the saved connection, or step 12 offering to replace the
    /// one the workspace already has (the checked token waits, sealed, in the kept check).
    async fn after_save(
        state: &AppState,
        viewer: &Viewer,
        workspace_id: &str,
        saved: integrations::Saved,
        check: Option<(StoredCheck, &GitlabToken)>,
    ) -> Result<Integration, ApiError> {
        match saved {
            integrations::Saved::Saved(saved) => {
                audit(state, workspace_id, viewer, audit::CONNECTION_SAVED, &named(&saved)).await;
                // Its groups and projects are listed meanwhile, for the picker after step 13.
                if let Err(e) = crate::discovery::start(state, workspace_id, &saved.id).await {
                    tracing::error!(error = %e, "cannot start discovery");
                }
                if from_browser() {
                    let base = BaseUrl::parse(&saved.base_url).ok();
                    leptos_axum::redirect(&with_query(&step_href(13, base.as_ref()), "connection", &saved.id));
                }
                Ok(saved)
            }
            integrations::Saved::Exists(existing) => {
                if from_browser() {
                    if let Some((check, token)) = check {
                        let base = BaseUrl::parse(&check.report.base_url).ok();
                        let id = integrations::put_check(&state.db, &state.keys, &viewer.user.id, &check, Some(token))
                            .await
                            .map_err(stored)?;
                        let href = with_query(&step_href(12, base.as_ref()), "check", &id);
                        leptos_axum::redirect(&with_query(&href, "exists", &existing.id));
                    }
                }
                Err(ApiError::new(
                    ApiErrorKind::Conflict,
                    format!(
                        "This workspace already has a connection to {} as @{} (id {}): replace its token instead.",
                        existing.base_url, existing.username, existing.id
                    ),
                ))
            }
            integrations::Saved::Gone => {
                Err(ApiError::new(ApiErrorKind::NotFound, "The connection went away meanwhile: connect again."))
            }
        }
    }

    pub async fn validate(
        base_url: Option<String>,
        token: Option<String>,
        ca_pem: Option<String>,
    ) -> Result<Report, ApiError> {
        let state = state()?;
        let viewer = viewer()?;
        let browser = from_browser();
        // A browser saves into the current workspace: only an owner or admin may.
        let workspace = if browser { Some(workspace_for(&viewer, None, Action::ManageConnections)?) } else { None };
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
        let Some(workspace) = workspace else {
            return Ok(report);
        };
        // Saved or kept only when it is a usable CA: junk is reported (above), never stored.
        let usable_ca = typed_ca.trim().is_empty() || crate::gitlab::outbound::parse_ca(&typed_ca).is_ok();
        let ca_pem = if usable_ca { typed_ca.clone() } else { String::new() };
        // A browser: save when nothing needs a decision, else show the report on step 12.
        let token = input.token.ok();
        let base = BaseUrl::parse(&report.base_url).ok();
        let warned = report.warnings().next().is_some();
        let check = StoredCheck { report: report.clone(), typed_base_url, extra_ca_pem: ca_pem.clone() };
        match token {
            Some(token) if report.ok && !warned => {
                let saved = integrations::save(
                    &state.db,
                    &state.keys,
                    &workspace.id,
                    &viewer.user.id,
                    &report,
                    &token,
                    &ca_pem,
                )
                .await
                .map_err(stored)?;
                // A conflict was redirected to step 12 already; the browser needs no error.
                let _ = after_save(&state, &viewer, &workspace.id, saved, Some((check, &token))).await;
            }
            token => {
                let keep = token.filter(|_| report.ok);
                let id = integrations::put_check(&state.db, &state.keys, &viewer.user.id, &check, keep.as_ref())
                    .await
                    .map_err(stored)?;
                let mut href = with_query(&step_href(12, base.as_ref()), "check", &id);
                // It works, with warnings, for an instance and user the workspace has already:
                // step 12 offers that connection the token instead of "Integrate anyway".
                if let (Some(_), Some(user)) = (&keep, &report.user) {
                    let found =
                        integrations::find_by_instance(&state.db, &workspace.id, &report.base_url, &user.username)
                            .await
                            .map_err(stored)?;
                    if let Some(found) = found {
                        href = with_query(&href, "exists", &found.id);
                    }
                }
                leptos_axum::redirect(&href);
            }
        }
        Ok(report)
    }

    pub async fn accept_warnings(check_id: String, replace: Option<String>) -> Result<Integration, ApiError> {
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
        if let Some(replace) = replace.filter(|r| !r.trim().is_empty()) {
            let target = connection_for(&state, &viewer, Some(&replace), Action::ManageConnections).await?;
            if target.base_url != check.report.base_url {
                return Err(ApiError::bad_request(
                    "This check was for another GitLab than the connection: check the token against it instead.",
                ));
            }
            let saved =
                integrations::replace(&state.db, &state.keys, &target.workspace_id, &target.id, &check.report, &token)
                    .await
                    .map_err(stored)?;
            let integrations::Saved::Saved(saved) = saved else {
                return Err(ApiError::new(ApiErrorKind::Conflict, "The connection changed meanwhile: try again."));
            };
            integrations::delete_check(&state.db, &viewer.user.id, &check_id).await.map_err(stored)?;
            audit(&state, &saved.workspace_id, &viewer, audit::TOKEN_REPLACED, &named(&saved)).await;
            if from_browser() {
                leptos_axum::redirect(&with_query(&connection_page(&saved.id), "replaced", "1"));
            }
            return Ok(saved);
        }
        let workspace = workspace_for(&viewer, None, Action::ManageConnections)?;
        let saved = integrations::save(
            &state.db,
            &state.keys,
            &workspace.id,
            &viewer.user.id,
            &check.report,
            &token,
            &check.extra_ca_pem,
        )
        .await
        .map_err(stored)?;
        if matches!(saved, integrations::Saved::Saved(_)) {
            integrations::delete_check(&state.db, &viewer.user.id, &check_id).await.map_err(stored)?;
        } else if from_browser() {
            // Still there, with its token: step 12 offers to replace the existing connection.
            let exists = match &saved {
                integrations::Saved::Exists(e) => e.id.clone(),
                _ => String::new(),
            };
            let base = BaseUrl::parse(&check.report.base_url).ok();
            let href = with_query(&step_href(12, base.as_ref()), "check", &check_id);
            leptos_axum::redirect(&with_query(&href, "exists", &exists));
        }
        after_save(&state, &viewer, &workspace.id, saved, None).await
    }

    pub async fn recheck(id: Option<String>) -> Result<Report, ApiError> {
        let state = state()?;
        let viewer = viewer()?;
        let integration = connection_for(&state, &viewer, id.as_deref(), Action::ManageConnections).await?;
        limit_checks_on_page(&state, &viewer, &connection_page(&integration.id)).await?;
        let Some(report) =
            crate::connections::recheck(&state, &integration.workspace_id, &integration.id).await.map_err(stored)?
        else {
            return Err(not_connected());
        };
        audit(&state, &integration.workspace_id, &viewer, audit::CONNECTION_RECHECKED, &named(&integration)).await;
        if from_browser() {
            leptos_axum::redirect(&with_query(&connection_page(&integration.id), "rechecked", "1"));
        }
        Ok(report)
    }

    pub async fn rotate_token(id: Option<String>) -> Result<RotationAnswer, ApiError> {
        use crate::rotation::{Outcome, Trigger};
        let state = state()?;
        let viewer = viewer()?;
        let integration = connection_for(&state, &viewer, id.as_deref(), Action::ManageConnections).await?;
        limit_checks_on_page(&state, &viewer, &connection_page(&integration.id)).await?;
        let today = time::OffsetDateTime::now_utc().date();
        let outcome =
            crate::rotation::rotate(&state, &integration.workspace_id, &integration.id, Trigger::Manual, today)
                .await
                .map_err(stored)?;
        let code = match &outcome {
            Outcome::Rotated(_) => "rotated",
            Outcome::NotDue => "not_due",
            Outcome::Cannot(_) => "cannot",
            Outcome::Taken => "taken",
            Outcome::Refused(_) => "refused",
            Outcome::Kept(_) => "kept",
            Outcome::Lost => "lost",
            Outcome::Unsettled => "unsettled",
            Outcome::Unusable => "unusable",
            Outcome::Gone => return Err(not_connected()),
        };
        audit(&state, &integration.workspace_id, &viewer, audit::TOKEN_ROTATED, &named(&integration)).await;
        if from_browser() {
            leptos_axum::redirect(&with_query(&connection_page(&integration.id), "rotation", code));
        }
        let expires_at = match &outcome {
            Outcome::Rotated(date) => date.clone(),
            _ => None,
        };
        Ok(RotationAnswer { outcome: code.to_owned(), message: outcome.explain(), expires_at })
    }

    pub async fn connection_events(id: Option<String>) -> Result<EventsAnswer, ApiError> {
        let state = state()?;
        let viewer = viewer()?;
        let integration = connection_for(&state, &viewer, id.as_deref(), Action::ViewConnections).await?;
        let rotation = crate::rotation::view(&state, &integration).await.map_err(stored)?;
        let events = crate::store::events::list(&state.db, &integration.workspace_id, &integration.id, 50)
            .await
            .map_err(stored)?;
        Ok(EventsAnswer { id: integration.id, rotation, events })
    }

    fn not_connected() -> ApiError {
        if from_browser() {
            leptos_axum::redirect("/integrations/gitlab");
        }
        ApiError::new(ApiErrorKind::NotFound, "This workspace has not connected GitLab yet.")
    }

    pub async fn replace_token(id: Option<String>, token: Option<String>) -> Result<Report, ApiError> {
        let state = state()?;
        let viewer = viewer()?;
        let target = connection_for(&state, &viewer, id.as_deref(), Action::ManageConnections).await?;
        let page = connection_page(&target.id);
        limit_checks_on_page(&state, &viewer, &page).await?;
        // The saved row must open: its address and CA decide where the new token goes.
        let saved = match integrations::with_token(&state.db, &state.keys, &target.workspace_id, &target.id).await {
            Err(StoreError::Crypto(_)) => {
                if from_browser() {
                    leptos_axum::redirect(&page);
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
                let saved = integrations::replace(
                    &state.db,
                    &state.keys,
                    &integration.workspace_id,
                    &integration.id,
                    &report,
                    &token,
                )
                .await
                .map_err(stored)?;
                match saved {
                    integrations::Saved::Saved(saved) => {
                        audit(&state, &saved.workspace_id, &viewer, audit::TOKEN_REPLACED, &named(&saved)).await;
                        if from_browser() {
                            leptos_axum::redirect(&with_query(&page, "replaced", "1"));
                        }
                    }
                    integrations::Saved::Exists(other) => {
                        if from_browser() {
                            leptos_axum::redirect(&with_query(&page, "clash", &other.id));
                        }
                        return Err(ApiError::new(
                            ApiErrorKind::Conflict,
                            format!(
                                "This token belongs to @{}, whom another connection of this workspace (id {}) uses already. Nothing was changed.",
                                other.username, other.id
                            ),
                        ));
                    }
                    integrations::Saved::Gone => return Err(not_connected()),
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
                leptos_axum::redirect(&with_query(&page, "check", &id));
            }
            None => {}
        }
        Ok(report)
    }

    pub async fn disconnect(id: Option<String>) -> Result<bool, ApiError> {
        let state = state()?;
        let viewer = viewer()?;
        let target = connection_for(&state, &viewer, id.as_deref(), Action::ManageConnections).await?;
        let deleted = integrations::delete(&state.db, &target.workspace_id, &target.id).await.map_err(stored)?;
        if deleted {
            audit(&state, &target.workspace_id, &viewer, audit::CONNECTION_DISCONNECTED, &named(&target)).await;
        }
        if from_browser() {
            leptos_axum::redirect("/integrations/gitlab?disconnected=1");
        }
        Ok(deleted)
    }

    pub async fn list_integrations() -> Result<Vec<Integration>, ApiError> {
        let state = state()?;
        let viewer = viewer()?;
        let all = integrations::list_for_user(&state.db, &viewer.user.id).await.map_err(stored)?;
        Ok(all.into_iter().map(|(i, _)| i).collect())
    }

    pub async fn list_workspaces() -> Result<Workspaces, ApiError> {
        let viewer = viewer()?;
        Ok(Workspaces { current: viewer.workspace.map(|w| w.id), workspaces: viewer.workspaces })
    }

    /// A refused change to members: a browser goes back to the workspace page, which says why.
    fn member_error(e: crate::workspace::MemberError, code: &str) -> ApiError {
        if from_browser() {
            leptos_axum::redirect(&with_query("/settings/workspace", "error", code));
        }
        let kind = match e {
            crate::workspace::MemberError::NotAMember => ApiErrorKind::NotFound,
            crate::workspace::MemberError::AboveOwnRole | crate::workspace::MemberError::OtherEmail => {
                ApiErrorKind::Forbidden
            }
            crate::workspace::MemberError::LastOwner | crate::workspace::MemberError::NotPending(_) => {
                ApiErrorKind::Conflict
            }
            _ => ApiErrorKind::BadRequest,
        };
        ApiError::new(kind, e.to_string())
    }

    /// The code a page shows a member error by.
    fn member_code(e: &crate::workspace::MemberError) -> &'static str {
        use crate::workspace::MemberError::*;
        match e {
            LastOwner => "last_owner",
            NotAMember => "not_a_member",
            AboveOwnRole => "above_own_role",
            OtherEmail => "other_email",
            NotPending(_) => "not_pending",
            TooManyInvitations(_) => "too_many_invitations",
            TooManyWorkspaces(_) => "too_many_workspaces",
            BadName => "bad_name",
        }
    }

    fn refuse(e: crate::workspace::MemberError) -> ApiError {
        let code = member_code(&e);
        member_error(e, code)
    }

    pub async fn create_workspace(name: Option<String>) -> Result<Membership, ApiError> {
        let state = state()?;
        let viewer = viewer()?;
        let created = workspaces::create(&state.db, &viewer.user.id, name.as_deref().unwrap_or_default())
            .await
            .map_err(stored)?
            .map_err(refuse)?;
        audit(&state, &created.id, &viewer, audit::WORKSPACE_CREATED, &created.name).await;
        if from_browser() {
            leptos_axum::redirect("/settings/workspace?created=1");
        }
        Ok(created)
    }

    pub async fn switch_workspace(workspace: Option<String>, next: Option<String>) -> Result<Membership, ApiError> {
        let state = state()?;
        let viewer = viewer()?;
        let target = workspace_for(&viewer, Some(workspace.as_deref().unwrap_or("-")), Action::ViewConnections)?;
        workspaces::switch(&state.db, &viewer.user.id, &target.id).await.map_err(stored)?;
        if from_browser() {
            leptos_axum::redirect(&safe_next(next.as_deref(), "/settings/workspace"));
        }
        Ok(target)
    }

    pub async fn rename_workspace(name: Option<String>, workspace: Option<String>) -> Result<String, ApiError> {
        let state = state()?;
        let viewer = viewer()?;
        let target = workspace_for(&viewer, workspace.as_deref(), Action::ManageMembers)?;
        let name = workspaces::rename(&state.db, &target.id, name.as_deref().unwrap_or_default())
            .await
            .map_err(stored)?
            .map_err(refuse)?;
        audit(&state, &target.id, &viewer, audit::WORKSPACE_RENAMED, &format!("{} → {name}", target.name)).await;
        if from_browser() {
            leptos_axum::redirect("/settings/workspace?renamed=1");
        }
        Ok(name)
    }

    pub async fn list_members(workspace: Option<String>) -> Result<Vec<Member>, ApiError> {
        let state = state()?;
        let viewer = viewer()?;
        let target = workspace_for(&viewer, workspace.as_deref(), Action::ViewConnections)?;
        workspaces::members(&state.db, &target.id).await.map_err(stored)
    }

    pub async fn set_role(
        user_id: Option<String>,
        role: Option<String>,
        workspace: Option<String>,
    ) -> Result<Member, ApiError> {
        let state = state()?;
        let viewer = viewer()?;
        let target = workspace_for(&viewer, workspace.as_deref(), Action::ManageMembers)?;
        let Some(role) = role.as_deref().and_then(Role::parse) else {
            return Err(ApiError::bad_request("Choose a role: owner, admin or viewer."));
        };
        let before = workspaces::set_role(&state.db, &target.id, user_id.as_deref().unwrap_or_default(), role)
            .await
            .map_err(stored)?
            .map_err(refuse)?;
        let what = format!("{}: {} → {}", before.email, before.role.as_str(), role.as_str());
        audit(&state, &target.id, &viewer, audit::MEMBER_ROLE_CHANGED, &what).await;
        if from_browser() {
            leptos_axum::redirect("/settings/workspace?changed=1");
        }
        Ok(Member { role, ..before })
    }

    pub async fn remove_member(user_id: Option<String>, workspace: Option<String>) -> Result<Member, ApiError> {
        let state = state()?;
        let viewer = viewer()?;
        let target = workspace_for(&viewer, workspace.as_deref(), Action::ManageMembers)?;
        let removed = workspaces::remove(&state.db, &target.id, user_id.as_deref().unwrap_or_default())
            .await
            .map_err(stored)?
            .map_err(refuse)?;
        audit(&state, &target.id, &viewer, audit::MEMBER_REMOVED, &removed.email).await;
        if from_browser() {
            leptos_axum::redirect("/settings/workspace?removed=1");
        }
        Ok(removed)
    }

    pub async fn leave_workspace(workspace: Option<String>) -> Result<bool, ApiError> {
        let state = state()?;
        let viewer = viewer()?;
        let target = workspace_for(&viewer, workspace.as_deref(), Action::ViewConnections)?;
        workspaces::remove(&state.db, &target.id, &viewer.user.id).await.map_err(stored)?.map_err(refuse)?;
        audit(&state, &target.id, &viewer, audit::MEMBER_LEFT, &viewer.user.email).await;
        if from_browser() {
            leptos_axum::redirect("/settings/workspace?left=1");
        }
        Ok(true)
    }

    pub async fn create_invitation(
        role: Option<String>,
        email: Option<String>,
        step: Option<String>,
        base: Option<String>,
        workspace: Option<String>,
    ) -> Result<NewInvitation, ApiError> {
        let state = state()?;
        let viewer = viewer()?;
        let target = workspace_for(&viewer, workspace.as_deref(), Action::Invite)?;
        let role = match role.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
            None => Role::Admin,
            Some(text) => {
                Role::parse(text).ok_or_else(|| ApiError::bad_request("Choose a role: owner, admin or viewer."))?
            }
        };
        if !target.role.may_grant(role) {
            return Err(refuse(crate::workspace::MemberError::AboveOwnRole));
        }
        let email = match email.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
            Some(typed) => Some(accounts::Email::parse(typed).map_err(|_| {
                if from_browser() {
                    leptos_axum::redirect("/settings/workspace?error=invite_email#invite");
                }
                ApiError::bad_request("Enter the colleague's email address like name@example.com, or leave it empty.")
            })?),
            None => None,
        };
        // Made on a wizard step: the colleague lands there after joining (with the instance).
        let step = step.as_deref().and_then(crate::wizard::Step::from_segment).filter(|s| (5..=12).contains(&s.number));
        let base = base.as_deref().and_then(|b| BaseUrl::parse(b).ok());
        let next = step.map(|s| s.href(base.as_ref()));
        let (id, secret) = workspaces::create_invitation(
            &state.db,
            &target.id,
            role,
            email.as_ref(),
            next.as_deref(),
            &viewer.user.email,
        )
        .await
        .map_err(stored)?
        .map_err(refuse)?;
        let whom = match &email {
            Some(e) => format!("{} as {}", e.as_str(), role.as_str()),
            None => format!("a link as {}", role.as_str()),
        };
        audit(&state, &target.id, &viewer, audit::MEMBER_INVITED, &whom).await;
        let headers = parts().map(|p| p.headers).unwrap_or_default();
        let link = format!("{}/invite/{secret}", crate::auth::ssr::public_origin(&headers, https()));
        if from_browser() {
            let flash = accounts::put_flash(&state.db, &state.keys, &viewer.user.id, &secret).await.map_err(stored)?;
            let page = next.unwrap_or_else(|| "/settings/workspace".to_owned());
            leptos_axum::redirect(&format!("{}#invite-link", with_query(&page, "invited", &flash)));
            return Ok(NewInvitation { id, link: String::new() });
        }
        Ok(NewInvitation { id, link })
    }

    pub async fn revoke_invitation(id: Option<String>, workspace: Option<String>) -> Result<bool, ApiError> {
        let state = state()?;
        let viewer = viewer()?;
        let target = workspace_for(&viewer, workspace.as_deref(), Action::Invite)?;
        let revoked = workspaces::revoke_invitation(&state.db, &target.id, id.as_deref().unwrap_or_default())
            .await
            .map_err(stored)?;
        if revoked {
            audit(&state, &target.id, &viewer, audit::INVITATION_REVOKED, id.as_deref().unwrap_or_default()).await;
        }
        if from_browser() {
            leptos_axum::redirect("/settings/workspace?revoked=1");
        }
        if revoked {
            Ok(true)
        } else {
            Err(ApiError::new(ApiErrorKind::NotFound, "This workspace has no open invitation with this id."))
        }
    }

    /// Accepts (or declines) an invitation for the signed-in account and sends a browser on: to
    /// the step the link was made on, else the workspace page; a link that cannot be used goes
    /// back to its page, which says why.
    async fn answer_invitation(
        state: &AppState,
        user: &accounts::User,
        secret: &str,
        accept: bool,
    ) -> Result<workspaces::Answered, ApiError> {
        let answered = if accept {
            workspaces::accept(&state.db, secret, user).await
        } else {
            workspaces::decline(&state.db, secret, user).await
        }
        .map_err(stored)?;
        let page = format!("/invite/{}", url_segment(secret));
        match answered {
            Ok(answered) => {
                let actor = workspaces::Actor { email: user.email.clone(), ip: client().ip.to_string() };
                let (action, target) = if accept {
                    (audit::MEMBER_JOINED, format!("{} as {}", user.email, answered.role.as_str()))
                } else {
                    (audit::INVITATION_DECLINED, user.email.clone())
                };
                if let Err(e) = workspaces::record(&state.db, &answered.workspace_id, &actor, action, &target).await {
                    tracing::error!(error = %e, "cannot record an audit event");
                }
                if from_browser() {
                    let next = match (&answered.info.next, accept) {
                        (Some(next), true) => with_query(next, "joined", "1"),
                        (None, true) => "/settings/workspace?joined=1".to_owned(),
                        (_, false) => with_query(&page, "declined", "1"),
                    };
                    leptos_axum::redirect(&next);
                }
                Ok(answered)
            }
            Err(e) => {
                if from_browser() {
                    leptos_axum::redirect(&page);
                }
                let kind = if matches!(e, crate::workspace::MemberError::OtherEmail) {
                    ApiErrorKind::Forbidden
                } else {
                    ApiErrorKind::NotFound
                };
                Err(ApiError::new(kind, e.to_string()))
            }
        }
    }

    /// An invitation secret as a path segment: only the characters a secret has, else nothing.
    fn url_segment(secret: &str) -> String {
        secret.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_')).take(64).collect()
    }

    fn account(viewer: &Viewer) -> accounts::User {
        accounts::User { id: viewer.user.id.clone(), email: viewer.user.email.clone() }
    }

    pub async fn accept_invitation(invite: Option<String>) -> Result<Membership, ApiError> {
        let state = state()?;
        let viewer = viewer()?;
        let answered =
            answer_invitation(&state, &account(&viewer), invite.as_deref().unwrap_or_default(), true).await?;
        Ok(Membership { id: answered.workspace_id, name: answered.info.workspace_name, role: answered.role })
    }

    pub async fn decline_invitation(invite: Option<String>) -> Result<bool, ApiError> {
        let state = state()?;
        let viewer = viewer()?;
        answer_invitation(&state, &account(&viewer), invite.as_deref().unwrap_or_default(), false).await?;
        Ok(true)
    }

    pub async fn audit_log(workspace: Option<String>, before: Option<i64>) -> Result<Vec<AuditEvent>, ApiError> {
        let state = state()?;
        let viewer = viewer()?;
        let target = workspace_for(&viewer, workspace.as_deref(), Action::ViewAudit)?;
        workspaces::audit_log(&state.db, &target.id, before, crate::auth::AUDIT_PAGE).await.map_err(stored)
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

    /// [`back_to`], keeping the invitation the form was opened with.
    fn back_to_form(page: &str, error: &str, email: &str, next: &str, invite: Option<&str>) {
        match invite {
            Some(invite) => back_to(&with_query(page, "invite", &url_segment(invite)), error, email, next),
            None => back_to(page, error, email, next),
        }
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
            if from_browser() {
                back_to_form("/signup", &format!("limited_{wait}"), &typed, &next, invite.as_deref());
            }
            return Err(rate_limited(wait, "new accounts from your network"));
        }
        let result = match accounts::Email::parse(&typed) {
            Ok(email) => crate::store::signup::create_user(&state.db, &email, password.as_deref().unwrap_or_default())
                .await
                .map_err(|e| stored_on_form(e, "/signup", &typed, &next))?,
            Err(e) => Err(e),
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
                    accounts::AccountError::EmailInvalid => "email_invalid",
                    accounts::AccountError::EmailTaken => "email_taken",
                    accounts::AccountError::PasswordTooShort => "password_short",
                    accounts::AccountError::PasswordTooLong => "password_long",
                };
                if from_browser() {
                    back_to_form("/signup", code, &typed, &next, invite.as_deref());
                }
                Err(ApiError::bad_request(e.to_string()))
            }
        }
    }

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
            if from_browser() {
                back_to_form("/login", &format!("limited_{wait}"), &typed, &next, invite.as_deref());
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
                if let Some(invite) = invite {
                    answer_invitation(&state, &user, &invite, true).await?;
                }
                Ok(())
            }
            None => {
                if from_browser() {
                    back_to_form("/login", "invalid", &typed, &next, invite.as_deref());
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
        if let Err(e) =
            workspaces::record_everywhere(&state.db, &viewer.user.id, &actor(&viewer), audit::API_TOKEN_CREATED, &name)
                .await
        {
            tracing::error!(error = %e, "cannot record an audit event");
        }
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
        if revoked {
            let recorded = workspaces::record_everywhere(
                &state.db,
                &viewer.user.id,
                &actor(&viewer),
                audit::API_TOKEN_REVOKED,
                &id,
            )
            .await;
            if let Err(e) = recorded {
                tracing::error!(error = %e, "cannot record an audit event");
            }
        }
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
