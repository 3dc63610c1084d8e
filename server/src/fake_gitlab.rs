//! A fake GitLab for tests, end-to-end runs and benchmarks: the API answers Onramp's connection
//! check needs, with GitLab's real status codes and bodies (../shared/gitlab/FACTS.md).
//!
//! The token decides who you are:
//!
//! | token | behaves as |
//! |---|---|
//! | `glpat-good` | active user `jdoe`, all four scopes, Maintainer in 2 groups and 5 projects (and a lower role in 1 group and 3 projects: `min_access_level` matters) |
//! | `glpat-noscope` | lacks `read_repository` |
//! | `glpat-readuser` | only `read_user`: groups and projects answer 403 `insufficient_scope` |
//! | `glpat-expired`, `glpat-revoked` | GitLab's 401 bodies for those |
//! | `glpat-blocked` | 403 "Your account has been blocked." on every route |
//! | `glpat-pending`, `glpat-deactivated`, `glpat-unconfirmed`, `glpat-terms`, `glpat-password` | 403 on every route with GitLab's text for an account pending approval, deactivated, with an unconfirmed email, that has not accepted the Terms of Service, or whose password expired |
//! | `glpat-soon` | expires in 10 days |
//! | `glpat-noexpiry` | `expires_at: null` |
//! | `glpat-guest` | Maintainer nowhere |
//! | `glpat-bot` | a project access token's bot user |
//! | `glpat-service` | the service account `onramp-reader` (a bot with a personal token), Maintainer like `glpat-good` |
//! | anything else | 401 `{"message":"401 Unauthorized"}` |
//!
//! Tokens rotate as GitLab's do (`POST /personal_access_tokens/self/rotate`, see [`Tokens`]): the
//! old token is revoked at once, the new one (`glpat-soon-r0001`, …) acts as the same persona with
//! its own id and expiry, and rotating a revoked token revokes its whole family (reuse detection).
//! `glpat-soon` was created 80 days before it expires (a 90-day token).

use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request the fake saw (never the token itself: only whether one came).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    pub path: String,
    pub with_token: bool,
}

#[derive(Clone, Default)]
pub struct FakeGitlab {
    /// Relative URL root, e.g. `/gitlab` ("" for the root).
    pub prefix: String,
    /// GitLab 14.x: no `/metadata` (15.2) and no `/personal_access_tokens/self` (15.5).
    pub legacy: bool,
    /// GitLab's configured external URL (`external_url` in gitlab.rb): what `web_url` is built
    /// from. `None`: the Host of the request, as a GitLab reached by its own name.
    pub external_url: Option<String>,
    /// A private instance: every web page but the sign-in page redirects (302) to it.
    pub sign_in_only: bool,
    /// GitLab 15.2–15.4: `/metadata` but no `/personal_access_tokens/self`, which answers this
    /// status (401 or 404) even for a good token.
    pub no_token_self: Option<u16>,
    /// This API path alone answers 429 in plain text without rate-limit headers (gitlab.com's
    /// `/groups` limit).
    pub rate_limited_path: Option<&'static str>,
    /// Added before every answer.
    pub latency: Duration,
    /// Answer every API call with this status (429 with a text body, 5xx with HTML).
    pub fail_status: Option<u16>,
    /// Redirect every API call to this origin (keeping the path).
    pub redirect_to: Option<String>,
    /// What a rotation request gets.
    pub rotation: RotationMode,
    /// The longest token lifetime this instance allows (an admin's setting): a rotation asking for
    /// a later `expires_at` gets 400 and revokes nothing.
    pub max_lifetime_days: Option<i64>,
    /// Tokens issued by rotation and tokens revoked: GitLab's memory.
    pub tokens: Arc<Mutex<Tokens>>,
    pub hits: Arc<Mutex<Vec<Hit>>>,
    /// Requests being answered right now, and the most there ever were at once.
    pub in_flight: Arc<(std::sync::atomic::AtomicUsize, std::sync::atomic::AtomicUsize)>,
}

/// How the double answers `POST /personal_access_tokens/self/rotate`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RotationMode {
    /// As GitLab does.
    #[default]
    Answer,
    /// Rotates (the old token is revoked), then never answers: the client times out. The answer
    /// with the new token is lost.
    LoseAnswer,
    /// Never answers and rotates nothing (a proxy that swallowed the request).
    Hang,
    /// Answers 502 from a proxy after rotating.
    BadGatewayAfter,
}

/// The tokens a GitLab has issued by rotation, and the ones it revoked.
#[derive(Debug, Default)]
pub struct Tokens {
    issued: HashMap<String, Issued>,
    revoked: HashSet<String>,
    /// Family of every token that was ever rotated or issued: the persona token it descends from.
    family: HashMap<String, String>,
    /// Rotations performed (not requests: a refused one is not counted).
    pub rotations: usize,
    /// Families revoked because a revoked token was rotated again.
    pub families_revoked: usize,
}

#[derive(Clone, Debug)]
struct Issued {
    persona: String,
    id: i64,
    expires_at: String,
    created_at: String,
}

impl Tokens {
    /// Whether GitLab would accept this token now.
    pub fn is_active(&self, token: &str) -> bool {
        !self.revoked.contains(token)
    }

    /// The newest token of the family `persona` descends from, if it was ever rotated.
    pub fn newest_of(&self, persona: &str) -> Option<String> {
        self.issued.iter().filter(|(_, i)| i.persona == persona).max_by_key(|(_, i)| i.id).map(|(t, _)| t.clone())
    }
}

/// Counts a request as in flight until it is answered.
struct InFlight(Arc<(std::sync::atomic::AtomicUsize, std::sync::atomic::AtomicUsize)>);

impl InFlight {
    fn enter(counters: &Arc<(std::sync::atomic::AtomicUsize, std::sync::atomic::AtomicUsize)>) -> Self {
        use std::sync::atomic::Ordering::SeqCst;
        let now = counters.0.fetch_add(1, SeqCst) + 1;
        counters.1.fetch_max(now, SeqCst);
        InFlight(counters.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl FakeGitlab {
    pub fn router(self) -> Router {
        Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: axum::body::Bytes| {
            let fake = self.clone();
            async move { fake.answer(method, uri, headers, body).await }
        })
    }

    /// The most requests this GitLab was answering at the same moment.
    pub fn most_at_once(&self) -> usize {
        self.in_flight.1.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// How many times this GitLab rotated a token.
    pub fn rotations(&self) -> usize {
        self.tokens.lock().unwrap_or_else(|e| e.into_inner()).rotations
    }

    async fn answer(&self, method: Method, uri: Uri, headers: HeaderMap, body: axum::body::Bytes) -> Response {
        let token = headers.get("private-token").and_then(|v| v.to_str().ok()).map(str::to_owned).or_else(|| {
            headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::to_owned)
        });
        self.hits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Hit { path: uri.path().to_owned(), with_token: token.is_some() });
        let _in_flight = InFlight::enter(&self.in_flight);
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        let Some(rest) = uri.path().strip_prefix(self.prefix.as_str()) else { return not_found_page() };
        let Some(api) = rest.strip_prefix("/api/v4") else {
            return match rest {
                "/users/sign_in" => (StatusCode::OK, html("GitLab")).into_response(),
                _ if self.sign_in_only => {
                    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("gitlab.test");
                    let location = format!("http://{host}{}/users/sign_in", self.prefix);
                    (StatusCode::FOUND, [("location", location)], html("redirected")).into_response()
                }
                "/jdoe" => (StatusCode::OK, html("GitLab")).into_response(),
                _ => not_found_page(),
            };
        };
        if self.rate_limited_path.is_some_and(|p| api == p) {
            return (StatusCode::TOO_MANY_REQUESTS, [("content-type", "text/plain")], "Retry later\n").into_response();
        }
        if let Some(origin) = &self.redirect_to {
            return (StatusCode::MOVED_PERMANENTLY, [("location", format!("{origin}{}", uri.path()))]).into_response();
        }
        match self.fail_status {
            Some(429) => {
                return (
                    StatusCode::TOO_MANY_REQUESTS,
                    [("retry-after", "30"), ("content-type", "text/plain")],
                    "Retry later\n",
                )
                    .into_response()
            }
            Some(code) => {
                let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY);
                return (status, html("<h1>502 Bad Gateway</h1>")).into_response();
            }
            None => {}
        }
        let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("gitlab.test").to_owned();
        if api == "/personal_access_tokens/self/rotate" {
            if method != Method::POST {
                return json_answer(StatusCode::METHOD_NOT_ALLOWED, json!({"error": "405 Method Not Allowed"}), &[]);
            }
            return self.rotate(token.as_deref(), &body).await;
        }
        if method != Method::GET {
            return json_answer(StatusCode::METHOD_NOT_ALLOWED, json!({"error": "405 Method Not Allowed"}), &[]);
        }
        self.api(api, uri.query().unwrap_or_default(), token.as_deref(), &host)
    }

    /// `POST /personal_access_tokens/self/rotate`, as GitLab 16.10+ answers it.
    async fn rotate(&self, token: Option<&str>, body: &[u8]) -> Response {
        let Some(token) = token else { return unauthorized() };
        let today = time::OffsetDateTime::now_utc().date();
        let answer = {
            let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
            if tokens.revoked.contains(token) {
                // Reuse detection: the whole family goes, the newest token included.
                let family = tokens.family.get(token).cloned().unwrap_or_else(|| token.to_owned());
                let members: Vec<String> =
                    tokens.family.iter().filter(|(_, f)| **f == family).map(|(t, _)| t.clone()).collect();
                tokens.revoked.extend(members);
                tokens.families_revoked += 1;
                return unauthorized();
            }
            let persona = tokens.issued.get(token).map_or_else(|| token.to_owned(), |i| i.persona.clone());
            match persona.as_str() {
                "glpat-good" | "glpat-soon" | "glpat-noscope" | "glpat-noexpiry" | "glpat-guest" | "glpat-service" => {}
                "glpat-readuser" => {
                    return json_answer(StatusCode::FORBIDDEN, json!({"message": "403 Forbidden"}), &[]);
                }
                "glpat-bot" => {
                    return json_answer(
                        StatusCode::METHOD_NOT_ALLOWED,
                        json!({"message": "405 Method Not Allowed"}),
                        &[],
                    );
                }
                _ => return unauthorized(),
            }
            let asked = serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|b| b.get("expires_at").and_then(|v| v.as_str()).map(str::to_owned));
            let expires_at = match asked {
                Some(date) => {
                    let format = time::macros::format_description!("[year]-[month]-[day]");
                    let Ok(date) = time::Date::parse(&date, &format) else {
                        return json_answer(StatusCode::BAD_REQUEST, json!({"error": "expires_at is invalid"}), &[]);
                    };
                    if self.max_lifetime_days.is_some_and(|max| (date - today).whole_days() > max) {
                        return json_answer(
                            StatusCode::BAD_REQUEST,
                            json!({"message": "400 Bad request - Expiration date must be before the maximum allowable lifetime"}),
                            &[],
                        );
                    }
                    date
                }
                // GitLab's default where expiry is required: one week.
                None => today + time::Duration::days(7),
            };
            if self.rotation == RotationMode::Hang {
                None
            } else {
                tokens.rotations += 1;
                let n = tokens.rotations;
                // The counter last: the last four characters (all Onramp shows) change.
                let new = format!("{persona}-r{n:04}");
                let family = tokens.family.get(token).cloned().unwrap_or_else(|| token.to_owned());
                tokens.family.insert(token.to_owned(), family.clone());
                tokens.family.insert(new.clone(), family);
                tokens.revoked.insert(token.to_owned());
                let issued = Issued {
                    persona: persona.clone(),
                    id: 100 + i64::try_from(n).unwrap_or(0),
                    expires_at: expires_at.to_string(),
                    created_at: format!("{today}T10:00:00.000Z"),
                };
                tokens.issued.insert(new.clone(), issued.clone());
                Some(json!({
                    "id": issued.id, "name": "Onramp", "revoked": false, "active": true,
                    "scopes": ["api", "read_api", "read_user", "read_repository"], "user_id": 1,
                    "created_at": issued.created_at, "last_used_at": null, "expires_at": issued.expires_at,
                    "token": new,
                }))
            }
        };
        match (self.rotation, answer) {
            (RotationMode::Answer, Some(body)) => json_answer(StatusCode::OK, body, &[]),
            (RotationMode::BadGatewayAfter, _) => {
                (StatusCode::BAD_GATEWAY, html("<h1>502 Bad Gateway</h1>")).into_response()
            }
            _ => {
                // The answer never comes: the client gives up.
                tokio::time::sleep(Duration::from_secs(3600)).await;
                not_found_page()
            }
        }
    }

    fn api(&self, path: &str, query: &str, token: Option<&str>, host: &str) -> Response {
        let known = ["/metadata", "/version", "/user", "/personal_access_tokens/self", "/groups", "/projects"];
        if !known.contains(&path) {
            return json_answer(StatusCode::NOT_FOUND, json!({"error": "404 Not Found"}), &[]);
        }
        let Some(token) = token else { return unauthorized() };
        let (token, issued) = {
            let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
            if tokens.revoked.contains(token) {
                return json_answer(
                    StatusCode::UNAUTHORIZED,
                    json!({"error":"invalid_token","error_description":"Token was revoked. You have to re-authorize from the user."}),
                    &[],
                );
            }
            match tokens.issued.get(token) {
                Some(issued) => (issued.persona.clone(), Some(issued.clone())),
                None => (token.to_owned(), None),
            }
        };
        let token = token.as_str();
        let persona = match token {
            "glpat-good" | "glpat-noscope" | "glpat-readuser" | "glpat-blocked" | "glpat-soon" | "glpat-noexpiry"
            | "glpat-guest" | "glpat-bot" | "glpat-pending" | "glpat-deactivated" | "glpat-unconfirmed"
            | "glpat-terms" | "glpat-password" | "glpat-service" => token,
            "glpat-expired" => {
                return json_answer(
                    StatusCode::UNAUTHORIZED,
                    json!({"error":"invalid_token","error_description":"Token is expired. You can either do re-authorization or token refresh."}),
                    &[],
                )
            }
            "glpat-revoked" => {
                return json_answer(
                    StatusCode::UNAUTHORIZED,
                    json!({"error":"invalid_token","error_description":"Token was revoked. You have to re-authorize from the user."}),
                    &[],
                )
            }
            _ => return unauthorized(),
        };
        if persona == "glpat-blocked" {
            return json_answer(
                StatusCode::FORBIDDEN,
                json!({"message": "403 Forbidden - Your account has been blocked."}),
                &[],
            );
        }
        let web = match &self.external_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{host}{}", self.prefix),
        };
        let refused = match persona {
            "glpat-pending" => Some("Your account is pending approval from your GitLab administrator and hence blocked. Please contact your GitLab administrator if you think this is an error.".to_owned()),
            "glpat-deactivated" => Some(format!("Your account has been deactivated by your administrator. Please log back in from a web browser to reactivate your account at {web}")),
            "glpat-unconfirmed" => Some(format!("Your primary email address is not confirmed. Please check your inbox for the confirmation instructions. In case the link is expired, you can request a new confirmation email at {web}/users/confirmation/new")),
            "glpat-terms" => Some(format!("You (@jdoe) must accept the Terms of Service in order to perform this action. To accept these terms, please access GitLab from a web browser at {web}.")),
            "glpat-password" => Some("Your password expired. Please access GitLab from a web browser to update your password.".to_owned()),
            _ => None,
        };
        if let Some(reason) = refused {
            return json_answer(StatusCode::FORBIDDEN, json!({"message": format!("403 Forbidden - {reason}")}), &[]);
        }
        let scopes: &[&str] = match persona {
            "glpat-noscope" => &["api", "read_api", "read_user"],
            "glpat-readuser" => &["read_user"],
            _ => &["api", "read_api", "read_user", "read_repository"],
        };
        let api_scope = scopes.contains(&"api") || scopes.contains(&"read_api");
        match path {
            "/metadata" if self.legacy => json_answer(StatusCode::NOT_FOUND, json!({"error": "404 Not Found"}), &[]),
            "/metadata" => json_answer(
                StatusCode::OK,
                json!({"version": "17.5.1", "revision": "abc123", "enterprise": false}),
                &[],
            ),
            "/version" => json_answer(
                StatusCode::OK,
                json!({"version": if self.legacy { "14.10.5" } else { "17.5.1" }, "revision": "abc123"}),
                &[],
            ),
            "/personal_access_tokens/self" if self.legacy || self.no_token_self == Some(404) => {
                json_answer(StatusCode::NOT_FOUND, json!({"error": "404 Not Found"}), &[])
            }
            "/personal_access_tokens/self" if self.no_token_self.is_some() => unauthorized(),
            "/personal_access_tokens/self" => {
                let today = time::OffsetDateTime::now_utc().date();
                let (id, expires_at, created_at) = match (&issued, persona) {
                    (Some(i), _) => (i.id, Value::from(i.expires_at.clone()), i.created_at.clone()),
                    (None, "glpat-soon") => (
                        7,
                        Value::from((today + time::Duration::days(10)).to_string()),
                        format!("{}T10:00:00.000Z", today - time::Duration::days(80)),
                    ),
                    (None, "glpat-noexpiry") => (7, Value::Null, "2023-01-01T10:00:00.000Z".to_owned()),
                    (None, _) => (7, Value::from("2099-01-01"), "2025-01-01T10:00:00.000Z".to_owned()),
                };
                json_answer(
                    StatusCode::OK,
                    json!({"id": id, "name": "Onramp", "revoked": false, "active": true, "scopes": scopes, "expires_at": expires_at, "created_at": created_at, "last_used_at": null}),
                    &[],
                )
            }
            "/user" => {
                let (username, bot) = match persona {
                    "glpat-bot" => ("project_7_bot_1", true),
                    "glpat-service" => ("onramp-reader", true),
                    _ => ("jdoe", false),
                };
                let name = if persona == "glpat-service" { "Onramp reader" } else { "Jane Doe" };
                json_answer(
                    StatusCode::OK,
                    json!({"id": 1, "username": username, "name": name, "state": "active", "web_url": format!("{web}/{username}"), "bot": bot}),
                    &[],
                )
            }
            "/groups" | "/projects" if !api_scope => insufficient_scope(),
            "/groups" | "/projects" => {
                // The user's memberships, with their access level: Maintainer (40) in some, lower
                // roles in others. GitLab filters by `min_access_level` and pages as asked.
                let levels: &[(usize, u64)] = match (persona, path) {
                    ("glpat-guest", "/groups") => &[(1, 10)],
                    ("glpat-guest", _) => &[(2, 20)],
                    (_, "/groups") => &[(2, 40), (1, 10)],
                    _ => &[(5, 40), (3, 20)],
                };
                let params: Vec<(String, String)> =
                    url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
                let param = |k: &str| params.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
                let min = param("min_access_level").and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
                let items: Vec<Value> = levels
                    .iter()
                    .filter(|(_, level)| *level >= min)
                    .flat_map(|(n, level)| (0..*n).map(move |_| *level))
                    .enumerate()
                    .map(|(i, level)| json!({"id": i + 1, "access_level": level}))
                    .collect();
                page_of(items, param("per_page"), param("page"), &format!("http://{host}{}/api/v4{path}", self.prefix))
            }
            _ => json_answer(StatusCode::NOT_FOUND, json!({"error": "404 Not Found"}), &[]),
        }
    }
}

fn json_answer(status: StatusCode, body: Value, headers: &[(&str, &str)]) -> Response {
    let mut builder = Response::builder().status(status).header("content-type", "application/json");
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    builder.body(Body::from(body.to_string())).expect("a valid response")
}

/// One page of `items` as GitLab's offset pagination answers it: `per_page` (default 20, at most
/// 100), `page` (from 1), the `x-*` headers (`x-next-page` empty on the last page; `x-total` and
/// `x-total-pages` left out above 10,000 rows, as GitLab does) and a `Link` header.
fn page_of(items: Vec<Value>, per_page: Option<&str>, page: Option<&str>, url: &str) -> Response {
    let per_page = per_page.and_then(|p| p.parse::<usize>().ok()).filter(|p| *p > 0).unwrap_or(20).min(100);
    let page = page.and_then(|p| p.parse::<usize>().ok()).filter(|p| *p > 0).unwrap_or(1);
    let total = items.len();
    let pages = total.div_ceil(per_page).max(1);
    let shown: Vec<Value> = items.into_iter().skip((page - 1) * per_page).take(per_page).collect();
    let next = if page < pages { (page + 1).to_string() } else { String::new() };
    let link_to = |p: usize, rel: &str| format!("<{url}?page={p}&per_page={per_page}>; rel=\"{rel}\"");
    let mut links = vec![link_to(1, "first")];
    if page < pages {
        links.push(link_to(page + 1, "next"));
    }
    let mut headers = vec![
        ("x-page", page.to_string()),
        ("x-per-page", per_page.to_string()),
        ("x-next-page", next),
        ("x-prev-page", if page > 1 { (page - 1).to_string() } else { String::new() }),
    ];
    if total <= 10_000 {
        headers.push(("x-total", total.to_string()));
        headers.push(("x-total-pages", pages.to_string()));
        links.push(link_to(pages, "last"));
    }
    headers.push(("link", links.join(", ")));
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    json_answer(StatusCode::OK, Value::from(shown), &headers)
}

fn unauthorized() -> Response {
    json_answer(StatusCode::UNAUTHORIZED, json!({"message": "401 Unauthorized"}), &[])
}

fn insufficient_scope() -> Response {
    json_answer(
        StatusCode::FORBIDDEN,
        json!({"error": "insufficient_scope", "error_description": "The request requires higher privileges than provided by the access token.", "scope": "api read_api"}),
        &[],
    )
}

fn html(text: &str) -> ([(&'static str, &'static str); 1], String) {
    ([("content-type", "text/html; charset=utf-8")], format!("<!DOCTYPE html><html><body>{text}</body></html>"))
}

fn not_found_page() -> Response {
    (StatusCode::NOT_FOUND, html("<h1>404 Page not found</h1>")).into_response()
}
