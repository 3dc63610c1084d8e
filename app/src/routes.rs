//! Onramp's own pages: every path is built here (as [`crate::wizard`] builds the steps'), and a
//! request's path is read back here into the [`Page`] it names. Pure, shared by both builds.
//!
//! The Leptos route table (`crate::App`) must spell its paths as literals (`path!`); the test
//! below checks that each of them parses to the page it renders.

/// The home page.
pub const HOME: &str = "/";
pub const LOGIN: &str = "/login";
pub const SIGNUP: &str = "/signup";
/// Steps 2–3: Settings → Integrations.
pub const SETTINGS_INTEGRATIONS: &str = "/settings/integrations";
/// Step 4: the GitLab integration's page (the connections list).
pub const GITLAB: &str = "/integrations/gitlab";
pub const SETTINGS_WORKSPACE: &str = "/settings/workspace";
pub const SETTINGS_AUDIT: &str = "/settings/audit";
pub const SETTINGS_API_TOKENS: &str = "/settings/api-tokens";
pub const SETTINGS_PLATFORM: &str = "/settings/platform";

/// Where a used or expired connect-session link without a `refresh_url` goes.
pub const CONNECT_ENDED: &str = "/connect/ended";

const CONNECTIONS: &str = "/integrations/gitlab/connections/";
const CONNECT: &str = "/connect/";
const INVITE: &str = "/invite/";

/// One saved connection's page.
pub fn connection(id: &str) -> String {
    format!("{CONNECTIONS}{id}")
}

/// The page that confirms disconnecting a connection.
pub fn disconnect(id: &str) -> String {
    format!("{CONNECTIONS}{id}/disconnect")
}

/// The picker of a connection's groups and projects (also the target of its form).
pub fn scope(id: &str) -> String {
    format!("{CONNECTIONS}{id}/scope")
}

/// The picker's address (or `suffix`'s, e.g. `/preview`) with its filters and pages.
pub fn scope_href(
    id: &str,
    filter: &crate::gitlab::scope::Filter,
    page: usize,
    group_page: usize,
    suffix: &str,
) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    if !filter.search.is_empty() {
        query.append_pair("q", &filter.search);
    }
    let role = filter.role.as_query();
    if !role.is_empty() {
        query.append_pair("role", &role);
    }
    if filter.show_archived {
        query.append_pair("archived", "1");
    }
    if let Some(group) = &filter.group {
        query.append_pair("group", group);
    }
    if filter.included_only {
        query.append_pair("included", "1");
    }
    if page > 1 {
        query.append_pair("page", &page.to_string());
    }
    if group_page > 1 {
        query.append_pair("gpage", &group_page.to_string());
    }
    let query = query.finish();
    let path = format!("{}{suffix}", scope(id));
    if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    }
}

/// The picker with the preview of what the selection brings.
pub fn scope_preview(id: &str) -> String {
    format!("{CONNECTIONS}{id}/scope/preview")
}

/// The picker's "Refresh the list" form target.
pub fn scope_refresh(id: &str) -> String {
    format!("{CONNECTIONS}{id}/scope/refresh")
}

/// An invitation link's path (the secret is the whole credential: shown once, never logged).
pub fn invite(secret: &str) -> String {
    format!("{INVITE}{secret}")
}

/// A connect session's link (issue 22): the secret is the whole credential, shown once to the
/// platform that made it.
pub fn connect_link(secret: &str) -> String {
    format!("{CONNECT}{secret}")
}

/// Whether `secret` looks like an invitation link's secret (43 characters of URL-safe base64 as
/// made; at most 64 accepted): anything else is not worth a query.
pub fn secret_shaped(secret: &str) -> bool {
    secret.len() <= 64
        && !secret.is_empty()
        && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A page reached by a request's path. Query strings are not part of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Page {
    Home,
    Login,
    Signup,
    SettingsIntegrations,
    Gitlab,
    /// `/integrations/gitlab/step/{n}`, as typed (the step page judges `n`).
    Step(String),
    Connection(String),
    Disconnect(String),
    Scope(String),
    ScopePreview(String),
    Workspace,
    Audit,
    ApiTokens,
    PlatformKeys,
    Invite(String),
    /// A connect-session link that was used or ran out.
    ConnectEnded,
    /// `/settings` or anything below it that is no page: still needs a signed-in user.
    OtherSettings,
    /// Below `/integrations/gitlab/connections/{id}/` but no page.
    OtherConnection(String),
    /// Anything else (a not-found page).
    Other,
}

impl Page {
    /// The page `path` names.
    pub fn parse(path: &str) -> Page {
        match path {
            HOME => return Page::Home,
            LOGIN => return Page::Login,
            SIGNUP => return Page::Signup,
            SETTINGS_INTEGRATIONS => return Page::SettingsIntegrations,
            GITLAB => return Page::Gitlab,
            SETTINGS_WORKSPACE => return Page::Workspace,
            SETTINGS_AUDIT => return Page::Audit,
            SETTINGS_API_TOKENS => return Page::ApiTokens,
            SETTINGS_PLATFORM => return Page::PlatformKeys,
            CONNECT_ENDED => return Page::ConnectEnded,
            _ => {}
        }
        if let Some(n) = path.strip_prefix("/integrations/gitlab/step/") {
            return Page::Step(n.to_owned());
        }
        if let Some(rest) = path.strip_prefix(CONNECTIONS) {
            let (id, sub) = rest.split_once('/').unwrap_or((rest, ""));
            let id = id.to_owned();
            return match sub {
                "" => Page::Connection(id),
                "disconnect" => Page::Disconnect(id),
                "scope" => Page::Scope(id),
                "scope/preview" => Page::ScopePreview(id),
                _ => Page::OtherConnection(id),
            };
        }
        if let Some(secret) = path.strip_prefix(INVITE) {
            return Page::Invite(secret.to_owned());
        }
        if path == "/settings" || path.starts_with("/settings/") {
            return Page::OtherSettings;
        }
        Page::Other
    }

    /// The connection this page is about, if any.
    pub fn connection_id(&self) -> Option<&str> {
        match self {
            Page::Connection(id)
            | Page::Disconnect(id)
            | Page::Scope(id)
            | Page::ScopePreview(id)
            | Page::OtherConnection(id) => Some(id),
            _ => None,
        }
    }

    /// Whether the page needs a signed-in user (steps 1–11 stay public: people share them).
    pub fn needs_login(&self) -> bool {
        match self {
            Page::Step(n) => matches!(n.as_str(), "12" | "13"),
            Page::Gitlab
            | Page::SettingsIntegrations
            | Page::Workspace
            | Page::Audit
            | Page::ApiTokens
            | Page::PlatformKeys
            | Page::OtherSettings => true,
            _ => self.connection_id().is_some(),
        }
    }
}

/// API routes anyone may call (logging in needs no session; the public wizard steps confirm an
/// instance; the platform API's OpenAPI document holds no data).
pub fn api_is_public(path: &str) -> bool {
    path.starts_with("/api/auth/") || path.starts_with("/api/wizard/") || path == "/api/v1/openapi.json"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_and_parse_agree() {
        assert_eq!(Page::parse(&connection("abc")), Page::Connection("abc".into()));
        assert_eq!(Page::parse(&disconnect("abc")), Page::Disconnect("abc".into()));
        assert_eq!(Page::parse(&scope("abc")), Page::Scope("abc".into()));
        assert_eq!(Page::parse(&scope_preview("abc")), Page::ScopePreview("abc".into()));
        assert_eq!(Page::parse(&scope_refresh("abc")), Page::OtherConnection("abc".into()));
        assert_eq!(Page::parse(&invite("s3cret")), Page::Invite("s3cret".into()));
        assert_eq!(Page::parse(&crate::wizard::step_href(8, None)), Page::Step("8".into()));
        for (path, page) in [
            (HOME, Page::Home),
            (LOGIN, Page::Login),
            (SIGNUP, Page::Signup),
            (SETTINGS_INTEGRATIONS, Page::SettingsIntegrations),
            (GITLAB, Page::Gitlab),
            (SETTINGS_WORKSPACE, Page::Workspace),
            (SETTINGS_AUDIT, Page::Audit),
            (SETTINGS_API_TOKENS, Page::ApiTokens),
            (SETTINGS_PLATFORM, Page::PlatformKeys),
            (CONNECT_ENDED, Page::ConnectEnded),
            ("/settings", Page::OtherSettings),
            ("/settings/nope", Page::OtherSettings),
            ("/nope", Page::Other),
            ("/integrations/gitlab/connections/abc/x/y", Page::OtherConnection("abc".into())),
        ] {
            assert_eq!(Page::parse(path), page, "{path}");
        }
    }

    /// Each literal of the Leptos route table names the page it renders.
    #[test]
    fn the_route_table_literals_parse() {
        for (path, page) in [
            ("/integrations/gitlab/step/:n", Page::Step(":n".into())),
            ("/integrations/gitlab/connections/:id", Page::Connection(":id".into())),
            ("/integrations/gitlab/connections/:id/disconnect", Page::Disconnect(":id".into())),
            ("/integrations/gitlab/connections/:id/scope", Page::Scope(":id".into())),
            ("/integrations/gitlab/connections/:id/scope/preview", Page::ScopePreview(":id".into())),
            ("/invite/:secret", Page::Invite(":secret".into())),
        ] {
            assert_eq!(Page::parse(path), page, "{path}");
        }
    }

    #[test]
    fn invitation_secrets_worth_a_query() {
        assert!(secret_shaped("Ab-_09xyzAb-_09xyzAb-_09xyzAb-_09xyzAb-_09xy"));
        for bad in ["", "a b", "a/b", "é", &"a".repeat(65), "a%2Fb"] {
            assert!(!secret_shaped(bad), "{bad:?}");
        }
    }

    #[test]
    fn which_pages_need_login() {
        for p in [
            "/integrations/gitlab",
            "/integrations/gitlab/step/12",
            "/integrations/gitlab/step/13",
            "/settings/integrations",
            "/settings/api-tokens",
            "/settings/platform",
            "/integrations/gitlab/connections/abc",
            "/integrations/gitlab/connections/abc/disconnect",
            "/integrations/gitlab/connections/abc/scope",
            "/settings/workspace",
            "/settings/audit",
            "/settings",
            "/settings/unknown",
        ] {
            assert!(Page::parse(p).needs_login(), "{p}");
        }
        for p in [
            "/",
            "/login",
            "/signup",
            "/integrations/gitlab/step/1",
            "/integrations/gitlab/step/11",
            "/integrations/gitlab/step/120",
            "/invite/abc",
        ] {
            assert!(!Page::parse(p).needs_login(), "{p}");
        }
    }
}
