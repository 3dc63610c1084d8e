//! Who is asking, and what they may do.
//!
//! On the server, [`ssr::middleware`] runs before every route: it finds the user (session cookie
//! or `Authorization: Bearer onr_…` API token), refuses cross-site state changes (CSRF), sends
//! logged-out visitors of protected pages to `/login?next=…` and protected API calls a 401. It
//! only identifies: what a page shows is loaded by the page loader (`pages::load`), which
//! runs after it.

use crate::integration::Integration;
use crate::workspace::{Action, Membership, Role};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserView {
    pub id: String,
    pub email: String,
}

/// The signed-in user, the workspace they work in, and its connections.
#[derive(Clone, Debug)]
pub struct Viewer {
    pub user: UserView,
    /// The current workspace and the viewer's role in it; `None` when they belong to none (they
    /// left or were removed from every one).
    pub workspace: Option<Membership>,
    /// Every workspace the viewer belongs to.
    pub workspaces: Vec<Membership>,
    /// The current workspace's connections, oldest first.
    pub integrations: Vec<Integration>,
    /// Authenticated with an Onramp API token rather than a browser session.
    pub via_api_token: bool,
    /// The browser session was opened by a platform's connect session: which platform sent the
    /// reader, and the way back to it.
    pub embed: Option<crate::embed::Embed>,
}

impl Viewer {
    /// The viewer's role in the current workspace.
    pub fn role(&self) -> Option<Role> {
        self.workspace.as_ref().map(|w| w.role)
    }

    /// May the viewer do this in the current workspace? The one question pages ask.
    pub fn may(&self, action: Action) -> bool {
        self.role().is_some_and(|r| r.may(action))
    }

    /// A connection of the current workspace.
    pub fn connection(&self, id: &str) -> Option<&Integration> {
        self.integrations.iter().find(|i| i.id == id)
    }
}

/// The viewer of the current request (server side; always `None` in the browser).
pub fn use_viewer() -> Option<Viewer> {
    #[cfg(feature = "ssr")]
    {
        leptos::prelude::use_context::<http::request::Parts>()?.extensions.get::<Viewer>().cloned()
    }
    #[cfg(not(feature = "ssr"))]
    {
        None
    }
}

/// The GitLab hosts this browser confirmed (see [`crate::trust`]); empty in the browser.
pub fn use_confirmed_hosts() -> Vec<String> {
    #[cfg(feature = "ssr")]
    {
        leptos::prelude::use_context::<http::request::Parts>()
            .and_then(|p| ssr::cookie(&p.headers, crate::trust::CONFIRMED_COOKIE))
            .map(|v| crate::trust::parse_confirmed(&v))
            .unwrap_or_default()
    }
    #[cfg(not(feature = "ssr"))]
    {
        Vec::new()
    }
}

/// A same-site path to return to after logging in; anything else becomes `fallback`.
pub fn safe_next(next: Option<&str>, fallback: &str) -> String {
    match next {
        Some(n)
            if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') && !n.chars().any(char::is_control) =>
        {
            n.to_owned()
        }
        _ => fallback.to_owned(),
    }
}

/// Events on one page of the audit log.
pub const AUDIT_PAGE: i64 = 100;

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::*;
    use crate::routes::{api_is_public, Page};
    use crate::state::AppState;
    use crate::store::{accounts, integrations, workspaces};
    use axum::body::Body;
    use axum::extract::{Request, State};
    use axum::middleware::Next;
    use axum::response::{IntoResponse, Redirect, Response};
    use http::{header, HeaderMap, Method, StatusCode};

    /// The session cookie over plain http (a developer's machine).
    pub const SESSION_COOKIE: &str = "onramp_session";
    /// The session cookie over https: the `__Host-` prefix makes the browser refuse it unless it
    /// is `Secure`, `Path=/` and has no `Domain`, so a sibling subdomain cannot plant a session.
    pub const SECURE_SESSION_COOKIE: &str = "__Host-onramp_session";

    fn cookie_name(secure: bool) -> &'static str {
        if secure {
            SECURE_SESSION_COOKIE
        } else {
            SESSION_COOKIE
        }
    }

    /// `Set-Cookie` for a session: HttpOnly, SameSite=Lax; over https `__Host-…` and Secure.
    pub fn session_cookie(secret: &str, secure: bool) -> String {
        format!(
            "{}={secret}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
            cookie_name(secure),
            accounts::SESSION_SECONDS,
            if secure { "; Secure" } else { "" }
        )
    }

    pub fn clear_session_cookie(secure: bool) -> String {
        format!(
            "{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}",
            cookie_name(secure),
            if secure { "; Secure" } else { "" }
        )
    }

    /// The session secret from the cookie of this scheme: over https only the `__Host-` cookie
    /// counts, so a cookie planted without the prefix is ignored.
    pub fn session_secret(headers: &HeaderMap, https: bool) -> Option<String> {
        cookie(headers, cookie_name(https))
    }

    /// The value of the cookie `wanted`, when it is there and not empty.
    pub fn cookie(headers: &HeaderMap, wanted: &str) -> Option<String> {
        headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(
            |pair| {
                let (name, value) = pair.trim().split_once('=')?;
                (name == wanted && !value.is_empty()).then(|| value.to_owned())
            },
        )
    }

    fn bearer(headers: &HeaderMap) -> Option<&str> {
        headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ").map(str::trim)
    }

    /// Does a state-changing request come from Onramp's own pages?
    pub fn same_origin(headers: &HeaderMap) -> bool {
        if headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) == Some("same-origin") {
            return true;
        }
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
        match (origin, host) {
            (Some(origin), Some(host)) => origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                .is_some_and(|o| o.eq_ignore_ascii_case(host)),
            _ => false,
        }
    }

    fn json_error(status: StatusCode, error: &str, message: &str) -> Response {
        (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::json!({ "error": error, "message": message }).to_string(),
        )
            .into_response()
    }

    pub async fn middleware(State(app): State<AppState>, mut req: Request<Body>, next: Next) -> Response {
        // Who is on the other end (forwarding headers only from ONRAMP_TRUSTED_PROXIES).
        let peer = req
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|info| info.0.ip())
            .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        let mut client = crate::client::ClientInfo::from_request(peer, req.headers(), &app.trusted_proxies);
        // Over https as far as the browser is concerned: directly, through a trusted proxy, or
        // behind a proxy that terminates TLS as `ONRAMP_PUBLIC_URL` says. Everything after this
        // (cookies, links) reads it from the request's `ClientInfo`.
        client.https = client.https || app.settings.public_url_is_https();
        let https = client.https;
        req.extensions_mut().insert(client);
        let path = req.uri().path().to_owned();
        if path.starts_with("/pkg/") || matches!(path.as_str(), "/healthz" | "/readyz" | "/metrics" | "/robots.txt") {
            return next.run(req).await; // static files: nobody to identify
        }
        let headers = req.headers().clone();
        let is_api = path.starts_with("/api/");
        let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);

        // A platform's call (`/api/v1`, issue 22): its key and nothing else identifies it. A
        // bearer key is no browser's, so no CSRF check; the handlers check the key's scopes.
        // The API's OpenAPI document holds no data: anyone may read it.
        if (path.starts_with("/api/v1/") || path == "/api/v1") && path != "/api/v1/openapi.json" {
            let key = match bearer(&headers).filter(|t| t.starts_with(crate::platform::PLATFORM_KEY_PREFIX)) {
                Some(secret) => match crate::store::platform::authenticate(&app.db, secret).await {
                    Ok(found) => found,
                    Err(e) => return internal(e),
                },
                None => None,
            };
            let Some(key) = key else {
                return json_error(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "Send a live platform key: Authorization: Bearer onp_… (onramp platform-key create makes one).",
                );
            };
            req.extensions_mut().insert(crate::api::platform::PlatformCaller(key));
            return next.run(req).await;
        }

        // Who is asking?
        let mut via_api_token = false;
        let mut connect_session = None;
        let user = if let Some(token) = bearer(&headers).filter(|t| t.starts_with(accounts::API_TOKEN_PREFIX)) {
            match accounts::api_token_user(&app.db, token).await {
                Ok(Some(user)) => {
                    via_api_token = true;
                    Some(user)
                }
                Ok(None) => {
                    return json_error(
                        StatusCode::UNAUTHORIZED,
                        "unauthorized",
                        "This Onramp API token is not valid (revoked?). Create one at /settings/api-tokens.",
                    )
                }
                Err(e) => return internal(e),
            }
        } else if let Some(secret) = session_secret(&headers, https) {
            match accounts::session(&app.db, &secret).await {
                Ok(Some((user, from))) => {
                    connect_session = from;
                    Some(user)
                }
                Ok(None) => None,
                Err(e) => return internal(e),
            }
        } else {
            None
        };

        // Cross-site request forgery: a state change must come from our own pages, or carry an API token.
        if unsafe_method && !via_api_token && !same_origin(&headers) {
            tracing::warn!(path = %path, "refused a cross-site request");
            return if is_api {
                json_error(
                    StatusCode::FORBIDDEN,
                    "cross_site",
                    "Cross-site requests are refused. Scripts authenticate with an Onramp API token.",
                )
            } else {
                (StatusCode::FORBIDDEN, "Cross-site requests are refused.").into_response()
            };
        }

        let Some(user) = user else {
            if is_api && !api_is_public(&path) {
                return json_error(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "Log in to Onramp, or send an Onramp API token (Authorization: Bearer onr_…).",
                );
            }
            if !is_api && Page::parse(&path).needs_login() {
                let here = req.uri().path_and_query().map(|pq| pq.as_str().to_owned()).unwrap_or(path);
                let next: String = url::form_urlencoded::byte_serialize(here.as_bytes()).collect();
                return Redirect::to(&format!("/login?next={next}")).into_response();
            }
            return next.run(req).await;
        };

        let (workspaces, mut workspace) = match workspaces::memberships(&app.db, &user.id).await {
            Ok(w) => w,
            Err(e) => return internal(e),
        };
        let embed = match connect_session {
            Some(id) => match crate::store::connect_sessions::embed(&app.db, &id).await {
                Ok(embed) => embed,
                Err(e) => return internal(e),
            },
            None => None,
        };
        // A browser session a connect session opened works in that session's workspace, whatever
        // the account chose elsewhere (the same end user may be in the wizard for two of the
        // platform's workspaces at once, in two browsers).
        if let Some(pinned) = embed.as_ref().and_then(|e| workspaces.iter().find(|w| w.id == e.workspace_id)) {
            workspace = Some(pinned.clone());
        }
        let integrations = match &workspace {
            Some(w) => match integrations::list(&app.db, &w.id).await {
                Ok(i) => i,
                Err(e) => return internal(e),
            },
            None => Vec::new(),
        };
        let viewer = Viewer {
            embed,
            user: UserView { id: user.id, email: user.email },
            workspace,
            workspaces,
            integrations,
            via_api_token,
        };
        req.extensions_mut().insert(viewer);
        next.run(req).await
    }

    /// The address this Onramp is reached at, for links people copy: `ONRAMP_PUBLIC_URL`
    /// (`Settings::public_url`), else the scheme and Host of the request.
    pub fn public_origin(public_url: Option<&str>, headers: &HeaderMap, https: bool) -> String {
        if let Some(url) = public_url {
            return url.to_owned();
        }
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("localhost");
        format!("{}://{host}", if https { "https" } else { "http" })
    }

    /// Logged once, with the detail; the person sees only that something went wrong.
    pub fn internal(error: impl std::fmt::Display) -> Response {
        tracing::error!(%error, "request failed");
        (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong. Try again in a moment.").into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_site() {
        assert_eq!(safe_next(Some("/integrations/gitlab/step/12?base=x"), "/"), "/integrations/gitlab/step/12?base=x");
        for bad in ["https://evil.example", "//evil.example", "/\\evil.example", "javascript:alert(1)", "", "/a\nb"] {
            assert_eq!(safe_next(Some(bad), "/home"), "/home", "{bad:?}");
        }
        assert_eq!(safe_next(None, "/home"), "/home");
    }
}
