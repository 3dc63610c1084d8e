//! The result of a connection check: what pages render and what `POST /api/gitlab/validate`
//! answers. Plain data; never holds the token.

use serde::{Deserialize, Serialize};

/// Days before expiry from which Onramp warns (the check's report and the pages' health alike).
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// The checks, in report order. Their ids are part of the public JSON contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckId {
    Url,
    Reachable,
    Gitlab,
    Token,
    User,
    Scopes,
    Expiry,
    Role,
}

impl CheckId {
    pub const ALL: [CheckId; 8] = [
        CheckId::Url,
        CheckId::Reachable,
        CheckId::Gitlab,
        CheckId::Token,
        CheckId::User,
        CheckId::Scopes,
        CheckId::Expiry,
        CheckId::Role,
    ];

    /// The id as in the JSON contract: `url`, `reachable`, …
    pub fn as_str(self) -> &'static str {
        match self {
            CheckId::Url => "url",
            CheckId::Reachable => "reachable",
            CheckId::Gitlab => "gitlab",
            CheckId::Token => "token",
            CheckId::User => "user",
            CheckId::Scopes => "scopes",
            CheckId::Expiry => "expiry",
            CheckId::Role => "role",
        }
    }

    /// What the check establishes, as a short label for people.
    pub fn label(self) -> &'static str {
        match self {
            CheckId::Url => "Address",
            CheckId::Reachable => "Network",
            CheckId::Gitlab => "GitLab",
            CheckId::Token => "Token",
            CheckId::User => "Account",
            CheckId::Scopes => "Scopes",
            CheckId::Expiry => "Expiry",
            CheckId::Role => "Role",
        }
    }

    /// The wizard step that fixes a failure of this check.
    pub fn fix_step(self) -> u8 {
        match self {
            CheckId::Url | CheckId::Gitlab => 11,
            CheckId::Reachable => 12,
            CheckId::Token | CheckId::Expiry => 7,
            CheckId::User => 5,
            CheckId::Scopes => 8,
            CheckId::Role => 6,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
    /// An earlier failure makes this check meaningless.
    Skipped,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "Passed",
            Status::Warn => "Warning",
            Status::Fail => "Failed",
            Status::Skipped => "Not checked",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    pub id: CheckId,
    pub status: Status,
    /// What was found and, when something is wrong, what to do.
    pub message: String,
    /// The wizard step that fixes it (absent when nothing needs fixing).
    pub fix_step: Option<u8>,
}

impl CheckResult {
    pub fn pass(id: CheckId, message: impl Into<String>) -> Self {
        Self { id, status: Status::Pass, message: message.into(), fix_step: None }
    }
    pub fn warn(id: CheckId, message: impl Into<String>) -> Self {
        Self { id, status: Status::Warn, message: message.into(), fix_step: Some(id.fix_step()) }
    }
    pub fn fail(id: CheckId, message: impl Into<String>) -> Self {
        Self { id, status: Status::Fail, message: message.into(), fix_step: Some(id.fix_step()) }
    }
    pub fn skipped(id: CheckId, message: impl Into<String>) -> Self {
        Self { id, status: Status::Skipped, message: message.into(), fix_step: None }
    }
    /// Points the fix at another step than the check's default.
    pub fn fixed_in(mut self, step: u8) -> Self {
        self.fix_step = Some(step);
        self
    }
}

/// The GitLab account the token belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitlabUser {
    pub username: String,
    pub name: String,
    pub web_url: String,
    /// True for project and group access tokens (their user is a bot).
    pub bot: bool,
}

/// What GitLab says about the token itself (never the token).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    pub name: Option<String>,
    pub scopes: Vec<String>,
    /// `YYYY-MM-DD`; the token stops working at 00:00 UTC that day.
    pub expires_at: Option<String>,
    /// GitLab's id of the token: a rotated token gets a new one.
    #[serde(default)]
    pub id: Option<i64>,
    /// When the token was created (GitLab's timestamp, e.g. `2026-08-01T10:00:00.000Z`).
    #[serde(default)]
    pub created_at: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// True when no check failed (warnings allowed).
    pub ok: bool,
    /// The normalised base URL GitLab was found at (or the parsed input when it was not found).
    pub base_url: String,
    pub gitlab_version: Option<String>,
    pub user: Option<GitlabUser>,
    pub token: Option<TokenInfo>,
    pub checks: Vec<CheckResult>,
    pub elapsed_ms: u64,
}

impl Report {
    /// Builds a report, ordering the checks and deriving `ok`.
    pub fn new(
        base_url: String,
        gitlab_version: Option<String>,
        user: Option<GitlabUser>,
        token: Option<TokenInfo>,
        mut checks: Vec<CheckResult>,
        elapsed_ms: u64,
    ) -> Self {
        checks.sort_by_key(|c| CheckId::ALL.iter().position(|id| *id == c.id));
        let ok = !checks.iter().any(|c| c.status == Status::Fail);
        Report { ok, base_url, gitlab_version, user, token, checks, elapsed_ms }
    }

    pub fn check(&self, id: CheckId) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.id == id)
    }

    pub fn failures(&self) -> impl Iterator<Item = &CheckResult> {
        self.checks.iter().filter(|c| c.status == Status::Fail)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &CheckResult> {
        self.checks.iter().filter(|c| c.status == Status::Warn)
    }
}

/// A report kept for the page that shows it after a form post without JavaScript
/// (post/redirect/get), with what the user typed. Never holds the token.
#[derive(Clone, Debug)]
pub struct StoredCheck {
    pub report: Report,
    /// The base URL exactly as typed, to show it again in the form.
    pub typed_base_url: String,
    /// The CA certificate as pasted (public data), to show it again.
    pub extra_ca_pem: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ok_means_no_failure_and_checks_are_ordered() {
        let r = Report::new(
            "https://gitlab.com".into(),
            None,
            None,
            None,
            vec![CheckResult::warn(CheckId::Expiry, "soon"), CheckResult::pass(CheckId::Url, "fine")],
            5,
        );
        assert!(r.ok);
        assert_eq!(r.checks[0].id, CheckId::Url);
        let r = Report::new("x".into(), None, None, None, vec![CheckResult::fail(CheckId::Scopes, "missing")], 1);
        assert!(!r.ok);
        assert_eq!(r.failures().next().unwrap().fix_step, Some(8));
    }

    #[test]
    fn fix_steps_match_the_wizard() {
        let expected =
            [(CheckId::Url, 11), (CheckId::Scopes, 8), (CheckId::Expiry, 7), (CheckId::Role, 6), (CheckId::Token, 7)];
        for (id, step) in expected {
            assert_eq!(id.fix_step(), step, "{id:?}");
        }
    }

    #[test]
    fn ids_match_their_json() {
        for id in CheckId::ALL {
            assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{}\"", id.as_str()));
        }
    }

    #[test]
    fn json_uses_the_contract_names() {
        let c = CheckResult::fail(CheckId::Scopes, "Missing scopes: read_repository");
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, r#"{"id":"scopes","status":"fail","message":"Missing scopes: read_repository","fix_step":8}"#);
    }
}
