//! The embed, pure: what a platform's `POST /api/v1/connect_sessions` asks for
//! ([`ConnectRequest`] → [`ConnectSpec`]), where a connect session is ([`SessionStatus`]) and the
//! address "Back to the platform" goes to ([`return_href`]). A connect session is a platform's
//! single-use link that signs its end user in and opens the wizard on step 5, with the connection
//! to be saved into the named workspace (issue 22). `store::connect_sessions` keeps them.

use crate::account::Email;
use crate::platform::{check_return_url, ReturnOrigin};
use crate::workspace::{is_invisible, Role};
use serde::{Deserialize, Serialize};

/// A connect session's link works this long unless the platform asks otherwise.
pub const DEFAULT_EXPIRES_IN: i64 = 30 * 60;
/// The longest a link may be asked to work (`expires_in`).
pub const MAX_EXPIRES_IN: i64 = 24 * 3600;
/// The shortest.
pub const MIN_EXPIRES_IN: i64 = 60;
/// An opened session that saved nothing is over this long after it was opened.
pub const OPENED_SECONDS: i64 = 24 * 3600;
/// The most characters of a platform's `state`, and of an external id.
pub const STATE_MAX: usize = 1024;
pub const EXTERNAL_ID_MAX: usize = 255;

/// The body of `POST /api/v1/connect_sessions`, as sent.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ConnectRequest {
    /// The platform's customer the connection belongs to: found by `external_id`, created with
    /// `name` the first time. Required with an instance-level key; a workspace-level key's sessions
    /// always go to its own workspace (leave it out).
    pub workspace: Option<ExternalWorkspace>,
    /// The platform's user who walks the wizard: found by `external_id`, created the first time.
    pub end_user: Option<ExternalUser>,
    /// The end user's role in the workspace: `admin` (may save connections) or `viewer`.
    pub role: Option<String>,
    /// Where "Back to the platform" goes once a connection is saved (on one of the key's return
    /// origins). Onramp adds `connect_session`, `connection_id` and `state` to its query.
    pub return_url: Option<String>,
    /// Where an expired or used link sends the browser, so the platform can make a new session.
    pub refresh_url: Option<String>,
    /// The platform's own value, given back on the return (at most 1,024 characters).
    pub state: Option<String>,
    /// The user's GitLab, when the platform knows it: the wizard opens on it.
    pub base_url: Option<String>,
    /// Seconds the link works: 60 to 86,400, default 1,800.
    pub expires_in: Option<i64>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ExternalWorkspace {
    pub external_id: Option<String>,
    pub name: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ExternalUser {
    pub external_id: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
}

/// A connect session as asked for, every field checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectSpec {
    /// `(external_id, name)`; `None` for a workspace-level key.
    pub workspace: Option<(String, String)>,
    pub user_external_id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub return_url: String,
    pub refresh_url: Option<String>,
    pub state: String,
    pub base_url: Option<String>,
    pub expires_in: i64,
}

/// An external id: 1 to 255 characters, none of them control or invisible ones.
fn external_id(text: Option<&str>, field: &str) -> Result<String, String> {
    let text = text.unwrap_or_default();
    let count = text.chars().count();
    if count == 0 || count > EXTERNAL_ID_MAX {
        return Err(format!("`{field}` is required: the platform's own id, 1 to {EXTERNAL_ID_MAX} characters"));
    }
    if text.chars().any(|c| c.is_control() || is_invisible(c)) {
        return Err(format!("`{field}` cannot contain control or invisible characters"));
    }
    Ok(text.to_owned())
}

impl ConnectSpec {
    /// Checks a request against the key that sends it: `instance_key` (a key that serves many
    /// workspaces) and its return origins. The error is the message of a 400.
    pub fn parse(
        request: &ConnectRequest,
        instance_key: bool,
        origins: &[ReturnOrigin],
    ) -> Result<ConnectSpec, String> {
        let workspace = match (&request.workspace, instance_key) {
            (Some(w), true) => {
                let id = external_id(w.external_id.as_deref(), "workspace.external_id")?;
                let name = w.name.as_deref().unwrap_or_default();
                let name = crate::workspace::parse_name(name).map_err(|e| format!("`workspace.name`: {e}"))?;
                Some((id, name))
            }
            (None, true) => {
                return Err(
                    "`workspace` is required: {\"external_id\": your id for the customer, \"name\": what to call it}"
                        .to_owned(),
                )
            }
            (Some(_), false) => {
                return Err("this key belongs to one workspace and its sessions go there: leave out `workspace`".into())
            }
            (None, false) => None,
        };
        let user = request.end_user.clone().unwrap_or_default();
        let user_external_id = external_id(user.external_id.as_deref(), "end_user.external_id")?;
        let email = Email::parse(user.email.as_deref().unwrap_or_default())
            .map_err(|e| format!("`end_user.email`: {e}"))?
            .as_str()
            .to_owned();
        let name = match user.name.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
            Some(name) => crate::workspace::parse_name(name).map_err(|e| format!("`end_user.name`: {e}"))?,
            None => email.clone(),
        };
        let role = match request.role.as_deref() {
            Some("admin") => Role::Admin,
            Some("viewer") => Role::Viewer,
            _ => return Err("`role` is \"admin\" (may save the connection) or \"viewer\"".to_owned()),
        };
        let return_url = request.return_url.as_deref().ok_or("`return_url` is required")?;
        let return_url = check_return_url(return_url, origins).map_err(|e| format!("`return_url`: {e}"))?;
        let refresh_url = match request.refresh_url.as_deref() {
            Some(url) => Some(check_return_url(url, origins).map_err(|e| format!("`refresh_url`: {e}"))?.to_string()),
            None => None,
        };
        let state = request.state.clone().unwrap_or_default();
        if state.chars().count() > STATE_MAX || state.chars().any(char::is_control) {
            return Err(format!("`state` is at most {STATE_MAX} characters, none of them control characters"));
        }
        let base_url = match request.base_url.as_deref().map(str::trim).filter(|b| !b.is_empty()) {
            Some(typed) => Some(
                crate::gitlab::base_url::BaseUrl::parse(typed).map_err(|e| format!("`base_url`: {e}"))?.to_string(),
            ),
            None => None,
        };
        let expires_in = request.expires_in.unwrap_or(DEFAULT_EXPIRES_IN);
        if !(MIN_EXPIRES_IN..=MAX_EXPIRES_IN).contains(&expires_in) {
            return Err(format!("`expires_in` is {MIN_EXPIRES_IN} to {MAX_EXPIRES_IN} seconds"));
        }
        Ok(ConnectSpec {
            workspace,
            user_external_id,
            email,
            name,
            role,
            return_url: return_url.to_string(),
            refresh_url,
            state,
            base_url,
            expires_in,
        })
    }
}

/// Where a connect session is, as `GET /api/v1/connect_sessions/{id}` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub enum SessionStatus {
    /// Made; its link was not opened yet.
    Pending,
    /// The end user opened the link and is in the wizard.
    Opened,
    /// A connection was saved (`connection_id`).
    Completed,
    /// The link ran out unopened, or the wizard was left without saving for a day.
    Expired,
}

impl SessionStatus {
    /// From what is stored: the `status` column, the link's expiry and when it was opened.
    pub fn of(stored: &str, expires_at: i64, opened_at: Option<i64>, now: i64) -> SessionStatus {
        match stored {
            "completed" => SessionStatus::Completed,
            "opened" if opened_at.is_some_and(|t| now < t.saturating_add(OPENED_SECONDS)) => SessionStatus::Opened,
            "pending" if now < expires_at => SessionStatus::Pending,
            _ => SessionStatus::Expired,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Pending => "pending",
            SessionStatus::Opened => "opened",
            SessionStatus::Completed => "completed",
            SessionStatus::Expired => "expired",
        }
    }
}

/// What the pages of a browser session a connect session opened say: which platform sent the
/// reader, which workspace the connection goes to, and (once it is saved) the way back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Embed {
    pub session_id: String,
    /// The platform key's name, as the platform's name.
    pub platform: String,
    pub workspace_id: String,
    pub workspace: String,
    /// "Back to the platform", once a connection is saved: [`return_href`].
    pub back_href: Option<String>,
}

/// The platform's `return_url` with `connect_session`, `connection_id` and `state` added to its
/// query (any of those it had already are replaced, so the platform reads one value of each).
pub fn return_href(return_url: &str, session_id: &str, connection_id: &str, state: &str) -> Option<String> {
    let mut url = url::Url::parse(return_url).ok()?;
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !matches!(k.as_ref(), "connect_session" | "connection_id" | "state"))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .append_pair("connect_session", session_id)
        .append_pair("connection_id", connection_id)
        .append_pair("state", state);
    Some(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins() -> Vec<ReturnOrigin> {
        vec![ReturnOrigin::parse("https://platform.example").unwrap()]
    }

    fn request() -> ConnectRequest {
        ConnectRequest {
            workspace: Some(ExternalWorkspace { external_id: Some("cust-1".into()), name: Some("Acme".into()) }),
            end_user: Some(ExternalUser {
                external_id: Some("u-7".into()),
                email: Some("Lead@Acme.example".into()),
                name: Some("Lee".into()),
            }),
            role: Some("admin".into()),
            return_url: Some("https://platform.example/integrations/gitlab/done?tab=1".into()),
            refresh_url: None,
            state: Some("xyz".into()),
            base_url: Some("https://gitlab.acme.example/gitlab/".into()),
            expires_in: None,
        }
    }

    #[test]
    fn a_full_request_is_checked_into_its_spec() {
        let spec = ConnectSpec::parse(&request(), true, &origins()).unwrap();
        assert_eq!(spec.workspace, Some(("cust-1".into(), "Acme".into())));
        assert_eq!(spec.email, "lead@acme.example");
        assert_eq!(spec.role, Role::Admin);
        assert_eq!(spec.base_url.as_deref(), Some("https://gitlab.acme.example/gitlab"));
        assert_eq!(spec.expires_in, DEFAULT_EXPIRES_IN);
        // Without a name the address stands for the person.
        let mut r = request();
        r.end_user.as_mut().unwrap().name = None;
        assert_eq!(ConnectSpec::parse(&r, true, &origins()).unwrap().name, "lead@acme.example");
    }

    #[test]
    fn every_bad_field_is_refused_by_name() {
        let refused = |change: &dyn Fn(&mut ConnectRequest), instance: bool, field: &str| {
            let mut r = request();
            change(&mut r);
            let e = ConnectSpec::parse(&r, instance, &origins()).unwrap_err();
            assert!(e.contains(field), "{field}: {e}");
        };
        refused(&|r| r.workspace = None, true, "`workspace`");
        refused(&|_| {}, false, "leave out `workspace`");
        refused(&|r| r.workspace.as_mut().unwrap().external_id = Some(String::new()), true, "workspace.external_id");
        refused(&|r| r.workspace.as_mut().unwrap().external_id = Some("a\u{0}b".into()), true, "workspace.external_id");
        refused(&|r| r.workspace.as_mut().unwrap().external_id = Some("é".repeat(256)), true, "workspace.external_id");
        refused(&|r| r.workspace.as_mut().unwrap().name = Some("  ".into()), true, "workspace.name");
        refused(&|r| r.end_user = None, true, "end_user.external_id");
        refused(&|r| r.end_user.as_mut().unwrap().email = Some("not an address".into()), true, "end_user.email");
        refused(&|r| r.role = Some("owner".into()), true, "`role`");
        refused(&|r| r.role = None, true, "`role`");
        refused(&|r| r.return_url = None, true, "`return_url`");
        refused(&|r| r.return_url = Some("https://evil.example/x".into()), true, "`return_url`");
        refused(&|r| r.return_url = Some("http://platform.example/x".into()), true, "`return_url`");
        refused(&|r| r.refresh_url = Some("javascript:alert(1)".into()), true, "`refresh_url`");
        refused(&|r| r.state = Some("ü".repeat(1025)), true, "`state`");
        refused(&|r| r.state = Some("a\nb".into()), true, "`state`");
        refused(&|r| r.base_url = Some("ftp://gitlab.example".into()), true, "`base_url`");
        refused(&|r| r.expires_in = Some(86_401), true, "`expires_in`");
        refused(&|r| r.expires_in = Some(59), true, "`expires_in`");
        // A workspace-level key's request without a workspace is fine.
        let mut r = request();
        r.workspace = None;
        assert!(ConnectSpec::parse(&r, false, &origins()).unwrap().workspace.is_none());
        // 1,024 characters of state, several bytes each, are fine.
        r.state = Some("ü".repeat(1024));
        assert!(ConnectSpec::parse(&r, false, &origins()).is_ok());
    }

    #[test]
    fn a_session_is_pending_until_its_link_expires_opened_for_a_day_then_expired() {
        use SessionStatus::*;
        assert_eq!(SessionStatus::of("pending", 100, None, 99), Pending);
        assert_eq!(SessionStatus::of("pending", 100, None, 100), Expired);
        assert_eq!(SessionStatus::of("opened", 100, Some(50), 50 + OPENED_SECONDS - 1), Opened);
        assert_eq!(SessionStatus::of("opened", 100, Some(50), 50 + OPENED_SECONDS), Expired);
        assert_eq!(SessionStatus::of("completed", 100, Some(50), i64::MAX), Completed);
        assert_eq!(SessionStatus::of("garbage", i64::MAX, None, 0), Expired);
    }

    #[test]
    fn the_return_address_carries_one_of_each_parameter() {
        let href =
            return_href("https://p.example/done?tab=1&state=forged&connection_id=x", "cs1", "c 2", "a&b=c").unwrap();
        assert_eq!(href, "https://p.example/done?tab=1&connect_session=cs1&connection_id=c+2&state=a%26b%3Dc");
    }
}
