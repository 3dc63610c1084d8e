//! Rotating a token before it expires (`POST /personal_access_tokens/self/rotate`): who may, when,
//! for how long, and what GitLab's answers mean. Plain functions, and (feature `client`) the two
//! requests, [`rotate`] and [`alive`]; the bookkeeping that keeps one rotation per token is in
//! Onramp's `app::rotation`.
//!
//! GitLab revokes the old token the moment it rotates, and rotating an already rotated token
//! revokes the whole family, the new token included (reuse detection, 16.3). So a rotation whose
//! answer was lost is never repeated: GitLab is asked, with the old token, whether it still lives.

use super::report::{GitlabUser, TokenInfo};

/// Days before expiry at which Onramp rotates (`ONRAMP_ROTATE_DAYS_BEFORE`).
pub const DEFAULT_DAYS_BEFORE: i64 = 14;

/// GitLab's longest token lifetime (since 16.0, unless an admin set a shorter one).
pub const MAX_LIFETIME_DAYS: i64 = 365;

/// Shorter lifetimes are not worth a rotation: the next one would come within days.
pub const MIN_LIFETIME_DAYS: i64 = 7;

/// `self/rotate` appeared in GitLab 16.10.
pub const FIRST_VERSION: (u32, u32) = (16, 10);

/// Why Onramp cannot rotate a token (and reminds people instead).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CannotRotate {
    /// The token never expires (set before GitLab 16, or by an admin).
    NoExpiry,
    /// GitLab older than 16.10, or its version is unknown.
    OldGitlab(Option<String>),
    /// Neither `api` nor `self_rotate`.
    Scope,
    /// A group or project access token: its bot rotates through the group's or project's own
    /// endpoint, which needs its id; Onramp does not rotate those yet.
    ResourceToken,
    /// The token has expired: GitLab no longer accepts it, not even to rotate it.
    Expired,
}

impl CannotRotate {
    /// What the connection's page says, ending with what Onramp does instead.
    pub fn explain(&self) -> String {
        let tail = "Onramp reminds you 30 and 7 days before it expires instead.";
        match self {
            CannotRotate::NoExpiry => "This token does not expire, so there is nothing to rotate.".to_owned(),
            CannotRotate::OldGitlab(Some(v)) => {
                format!("GitLab {v} cannot rotate a token through its API (GitLab 16.10 or newer can). {tail}")
            }
            CannotRotate::OldGitlab(None) => {
                format!(
                    "Onramp does not know this GitLab's version, and only 16.10 or newer can rotate a token. {tail}"
                )
            }
            CannotRotate::Scope => format!(
                "A token may rotate itself only with the api or self_rotate scope; this one has neither. A new token \
                 with api (step 8) lets Onramp rotate it. {tail}"
            ),
            CannotRotate::Expired => {
                "The token has expired, and GitLab does not rotate an expired token. Create a new \
                token (step 7) and replace this connection's token with it."
                    .to_owned()
            }
            CannotRotate::ResourceToken => {
                format!("This is a group or project access token; Onramp rotates personal and service account tokens. {tail}")
            }
        }
    }
}

/// `"16.10.3-ee"` → `(16, 10)`.
pub fn major_minor(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.trim().split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Whether GitLab lets this token rotate itself.
pub fn can_rotate(version: Option<&str>, token: &TokenInfo, user: Option<&GitlabUser>) -> Result<(), CannotRotate> {
    if token.expires_at.is_none() {
        return Err(CannotRotate::NoExpiry);
    }
    if version.and_then(major_minor).is_none_or(|v| v < FIRST_VERSION) {
        return Err(CannotRotate::OldGitlab(version.map(str::to_owned)));
    }
    if !token.scopes.iter().any(|s| s == "api" || s == "self_rotate") {
        return Err(CannotRotate::Scope);
    }
    if user.is_some_and(is_resource_bot) {
        return Err(CannotRotate::ResourceToken);
    }
    Ok(())
}

/// Group and project access tokens act as bot users named `group_<id>_bot_…` / `project_<id>_bot_…`;
/// service accounts are bots too, but with a name of their choosing and a personal token.
pub fn is_resource_bot(user: &GitlabUser) -> bool {
    user.bot && {
        let mut parts = user.username.splitn(3, '_');
        matches!(parts.next(), Some("group" | "project"))
            && parts.next().is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
            && parts.next().is_some_and(|rest| rest.starts_with("bot"))
    }
}

#[cfg(feature = "client")]
pub use dates::*;

#[cfg(feature = "client")]
mod dates {
    use time::{Date, Duration};

    /// `YYYY-MM-DD`, or the date part of GitLab's `2026-08-01T10:00:00.000Z`.
    pub fn parse_date(text: &str) -> Option<Date> {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        Date::parse(text.get(..10)?, &format).ok()
    }

    /// Whether a token expiring on `expires_at` is due for rotation on `today`.
    pub fn is_due(expires_at: Date, today: Date, days_before: i64) -> bool {
        (expires_at - today).whole_days() <= days_before
    }

    /// The expiry to ask for: the current token's lifetime again, counted from `today`, within
    /// [`super::MIN_LIFETIME_DAYS`]..=[`super::MAX_LIFETIME_DAYS`]. Without a creation date, the
    /// longest.
    pub fn next_expiry(today: Date, created_at: Option<Date>, expires_at: Date) -> Date {
        let lifetime = created_at.map_or(super::MAX_LIFETIME_DAYS, |c| (expires_at - c).whole_days());
        today + Duration::days(lifetime.clamp(super::MIN_LIFETIME_DAYS, super::MAX_LIFETIME_DAYS))
    }

    /// After GitLab refused `asked` with 400 (an instance with a shorter maximum lifetime): half
    /// the lifetime, or none when that is shorter than [`super::MIN_LIFETIME_DAYS`].
    pub fn shorter(today: Date, asked: Date) -> Option<Date> {
        let half = (asked - today).whole_days() / 2;
        (half >= super::MIN_LIFETIME_DAYS).then(|| today + Duration::days(half))
    }
}

#[cfg(feature = "client")]
/// What GitLab's answer to a rotation means. (`Debug` shows the new token redacted.)
#[derive(Debug)]
pub enum Rotated {
    /// 200 with the new token: the old one is revoked now.
    New { token: super::token::GitlabToken, id: Option<i64>, expires_at: Option<String> },
    /// 400: the date (or another parameter) was refused; nothing was revoked.
    BadRequest(String),
    /// 401, 403, 404, 405: GitLab refuses, nothing was rotated (GitLab's message).
    Refused(u16, String),
    /// Anything else (5xx, a 200 without a token, a proxy's page): GitLab may or may not have
    /// rotated. Treated like a lost answer.
    Unknown(u16),
}

#[cfg(feature = "client")]
/// Judges `self/rotate`'s answer from its status and JSON body.
pub fn judge_rotation(status: u16, json: Option<&serde_json::Value>) -> Rotated {
    let message = || {
        json.and_then(|j| j.get("message").or_else(|| j.get("error_description")).or_else(|| j.get("error")))
            .map(|m| match m.as_str() {
                Some(s) => s.to_owned(),
                None => m.to_string(),
            })
            .unwrap_or_default()
    };
    match status {
        200 | 201 => match json
            .and_then(|j| j.get("token"))
            .and_then(|t| t.as_str())
            .and_then(|t| super::token::GitlabToken::parse(t).ok())
        {
            Some(token) => Rotated::New {
                token,
                id: json.and_then(|j| j.get("id")).and_then(|v| v.as_i64()),
                expires_at: json.and_then(|j| j.get("expires_at")).and_then(|v| v.as_str()).map(str::to_owned),
            },
            _ => Rotated::Unknown(status),
        },
        400 => Rotated::BadRequest(message()),
        401 | 403 | 404 | 405 => Rotated::Refused(status, message()),
        _ => Rotated::Unknown(status),
    }
}

#[cfg(feature = "client")]
/// Whether a token still works, from `GET /personal_access_tokens/self`'s answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Alive {
    Yes,
    /// 401: revoked (or expired): it was rotated, and the answer with its successor is lost.
    No,
    /// No usable answer: ask again later; never rotate meanwhile.
    Unknown,
}

#[cfg(feature = "client")]
pub fn judge_alive(status: u16, json: Option<&serde_json::Value>) -> Alive {
    match status {
        200 if json.and_then(|j| j.get("active")).and_then(|a| a.as_bool()) == Some(false) => Alive::No,
        200 => Alive::Yes,
        401 => Alive::No,
        _ => Alive::Unknown,
    }
}

/// The rotation request: `POST {api}/personal_access_tokens/self/rotate` and its JSON body, with
/// an explicit `expires_at` (`YYYY-MM-DD`) so the new token lives as long as the old one did.
pub const ROTATE_PATH: &str = "/personal_access_tokens/self/rotate";

/// The question whether a token still lives: `GET {api}/personal_access_tokens/self` with it.
pub const SELF_PATH: &str = "/personal_access_tokens/self";

#[cfg(feature = "client")]
/// The body of the rotation request.
pub fn rotate_body(expires_at: time::Date) -> serde_json::Value {
    serde_json::json!({ "expires_at": expires_at.to_string() })
}

#[cfg(feature = "client")]
/// Rotates `token` (sent once; never repeat it after a failure that may have been sent, see
/// [`super::outbound::Target::post_json`]) and judges GitLab's answer.
pub async fn rotate(
    target: &super::outbound::Target,
    base: &super::base_url::BaseUrl,
    token: &super::token::GitlabToken,
    expires_at: time::Date,
) -> Result<Rotated, super::outbound::Failure> {
    let answer = target.post_json(&base.api(ROTATE_PATH), token, &rotate_body(expires_at)).await?;
    Ok(judge_rotation(answer.status.as_u16(), answer.json.as_ref()))
}

#[cfg(feature = "client")]
/// Asks GitLab with `old` whether it still lives; no answer is [`Alive::Unknown`].
pub async fn alive(
    target: &super::outbound::Target,
    base: &super::base_url::BaseUrl,
    old: &super::token::GitlabToken,
) -> Alive {
    match target.get(&base.api(SELF_PATH), Some(old)).await {
        Ok(answer) => judge_alive(answer.status.as_u16(), answer.json.as_ref()),
        Err(_) => Alive::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(feature = "client")]
    use serde_json::json;

    fn token(scopes: &[&str], expires: Option<&str>) -> TokenInfo {
        TokenInfo {
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            expires_at: expires.map(str::to_owned),
            ..Default::default()
        }
    }

    fn user(name: &str, bot: bool) -> GitlabUser {
        GitlabUser { username: name.into(), name: name.into(), web_url: String::new(), bot }
    }

    #[test]
    fn who_may_rotate() {
        let api = token(&["api", "read_user"], Some("2027-01-01"));
        assert_eq!(can_rotate(Some("16.10.0"), &api, None), Ok(()));
        assert_eq!(can_rotate(Some("17.5.1-ee"), &api, Some(&user("jdoe", false))), Ok(()));
        assert_eq!(can_rotate(Some("16.9.8"), &api, None), Err(CannotRotate::OldGitlab(Some("16.9.8".into()))));
        assert_eq!(can_rotate(Some("9.99"), &api, None), Err(CannotRotate::OldGitlab(Some("9.99".into()))));
        assert_eq!(can_rotate(None, &api, None), Err(CannotRotate::OldGitlab(None)));
        let read = token(&["read_api", "read_user", "read_repository"], Some("2027-01-01"));
        assert_eq!(can_rotate(Some("17.0.0"), &read, None), Err(CannotRotate::Scope));
        let self_rotate = token(&["read_api", "self_rotate"], Some("2027-01-01"));
        assert_eq!(can_rotate(Some("17.9.0"), &self_rotate, None), Ok(()));
        assert_eq!(can_rotate(Some("17.0.0"), &token(&["api"], None), None), Err(CannotRotate::NoExpiry));
        assert_eq!(
            can_rotate(Some("17.0.0"), &api, Some(&user("project_7_bot_1", true))),
            Err(CannotRotate::ResourceToken)
        );
        assert_eq!(
            can_rotate(Some("17.0.0"), &api, Some(&user("group_12_bot_9f3a", true))),
            Err(CannotRotate::ResourceToken)
        );
        // A service account is a bot with a personal token: it may.
        assert_eq!(can_rotate(Some("17.0.0"), &api, Some(&user("analytics-bot", true))), Ok(()));
        // A human called like a bot is not one.
        assert_eq!(can_rotate(Some("17.0.0"), &api, Some(&user("project_7_bot_1", false))), Ok(()));
        for why in
            [CannotRotate::NoExpiry, CannotRotate::OldGitlab(None), CannotRotate::Scope, CannotRotate::ResourceToken]
        {
            assert!(!why.explain().is_empty());
        }
    }

    #[test]
    fn versions() {
        assert_eq!(major_minor("16.10.3-ee"), Some((16, 10)));
        assert_eq!(major_minor("17.5"), Some((17, 5)));
        assert_eq!(major_minor("garbage"), None);
        assert_eq!(major_minor("17"), None);
        assert_eq!(major_minor("١٧.٥"), None);
    }

    #[cfg(feature = "client")] // the dates are `time`'s
    #[test]
    fn dates() {
        let d = |s: &str| parse_date(s).unwrap();
        assert_eq!(parse_date("2026-08-01T10:00:00.000Z"), Some(d("2026-08-01")));
        assert_eq!(parse_date("2026-13-01"), None);
        assert_eq!(parse_date("€€€€€€€€€€€"), None);
        let today = d("2026-11-26");
        assert!(is_due(d("2026-12-10"), today, 14));
        assert!(!is_due(d("2026-12-11"), today, 14));
        assert!(is_due(d("2026-11-01"), today, 14), "an expired token is due too");
        // The same lifetime again (90 days), from today.
        assert_eq!(next_expiry(today, Some(d("2026-09-11")), d("2026-12-10")), d("2027-02-24"));
        // Capped at a year; at least a week; a year without a creation date.
        assert_eq!(next_expiry(today, Some(d("2020-01-01")), d("2026-12-10")), d("2027-11-26"));
        assert_eq!(next_expiry(today, Some(d("2026-12-08")), d("2026-12-10")), d("2026-12-03"));
        assert_eq!(next_expiry(today, None, d("2026-12-10")), d("2027-11-26"));
        assert_eq!(shorter(today, d("2027-11-26")), Some(d("2027-05-27")));
        assert_eq!(shorter(today, d("2026-12-08")), None);
    }

    #[cfg(feature = "client")]
    #[test]
    fn the_rotation_request_names_its_date() {
        let date = time::macros::date!(2027 - 02 - 24);
        assert_eq!(rotate_body(date), json!({"expires_at": "2027-02-24"}));
        assert_eq!(ROTATE_PATH, "/personal_access_tokens/self/rotate");
        assert_eq!(SELF_PATH, "/personal_access_tokens/self");
    }

    #[cfg(feature = "client")] // the answers are JSON
    #[test]
    fn answers() {
        let body = json!({"id": 8, "token": "glpat-new", "expires_at": "2027-02-24", "active": true});
        match judge_rotation(200, Some(&body)) {
            Rotated::New { token, id, expires_at } => {
                assert_eq!((token.expose(), id, expires_at.as_deref()), ("glpat-new", Some(8), Some("2027-02-24")));
                assert!(!format!("{:?}", Rotated::New { token, id, expires_at }).contains("glpat-new"), "redacted");
            }
            other => panic!("{other:?}"),
        }
        let judged = |status, body: Option<serde_json::Value>| format!("{:?}", judge_rotation(status, body.as_ref()));
        assert_eq!(judged(200, Some(json!({"id": 8}))), "Unknown(200)");
        assert_eq!(judged(200, Some(json!({"token": "two\nlines"}))), "Unknown(200)");
        assert_eq!(judged(200, None), "Unknown(200)");
        assert_eq!(
            judged(400, Some(json!({"message": "400 Bad request - expires_at is invalid"}))),
            r#"BadRequest("400 Bad request - expires_at is invalid")"#
        );
        assert_eq!(judged(401, Some(json!({"message": "401 Unauthorized"}))), r#"Refused(401, "401 Unauthorized")"#);
        assert_eq!(judged(405, None), r#"Refused(405, "")"#);
        assert_eq!(judged(502, None), "Unknown(502)");
        assert_eq!(judge_alive(200, Some(&json!({"active": true}))), Alive::Yes);
        assert_eq!(judge_alive(200, Some(&json!({"active": false, "revoked": true}))), Alive::No);
        assert_eq!(judge_alive(401, None), Alive::No);
        assert_eq!(judge_alive(503, None), Alive::Unknown);
        assert_eq!(judge_alive(429, None), Alive::Unknown);
    }
}
