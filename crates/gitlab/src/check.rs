//! The connection check: every check at once, in about one GitLab round trip, each finding with
//! what to do and the wizard step that fixes it.
//!
//! Round 1 asks, concurrently, the address as pasted for `/metadata`, `/user`,
//! `/personal_access_tokens/self` and the Maintainer-level groups and projects, and probes every
//! shorter prefix of the path for a GitLab API (a profile or project URL may have been pasted).
//! Only when GitLab lives under a shorter prefix, or is older than 15.2 (no `/metadata`), does a
//! second round follow. The evaluation of the answers is plain functions, unit-tested below.

use super::base_url::BaseUrl;
use super::links::REQUIRED_SCOPES;
use super::outbound::{parse_ca, Answer, Failure, Outbound, ResolveError, Target};
use super::report::{CheckId, CheckResult, GitlabUser, Report, Status, TokenInfo};
use super::token::{GitlabToken, TokenError};
use http::StatusCode;
use std::collections::HashMap;
use std::time::Instant;

/// What the user gave: the address as pasted, the token (already parsed), an optional CA (PEM).
pub struct CheckInput<'a> {
    pub base_url: &'a str,
    pub token: Result<GitlabToken, TokenError>,
    pub extra_ca_pem: Option<&'a str>,
}

/// Days before expiry from which the report warns: the same as the pages' health.
pub use super::report::EXPIRY_WARNING_DAYS;

type Reply = Result<Answer, Failure>;

/// The answers of one round against one candidate base.
struct Round {
    base: BaseUrl,
    metadata: Reply,
    user: Option<Reply>,
    token_self: Option<Reply>,
    groups: Option<Reply>,
    projects: Option<Reply>,
}

async fn ask(target: &Target, base: &BaseUrl, token: Option<&GitlabToken>) -> Round {
    let maintainer = "?min_access_level=40&per_page=1&simple=true";
    let urls = [
        base.api("/metadata"),
        base.api("/user"),
        base.api("/personal_access_tokens/self"),
        base.api(&format!("/groups{maintainer}")),
        base.api(&format!("/projects{maintainer}")),
    ];
    match token {
        None => {
            let metadata = target.get(&urls[0], None).await;
            Round { base: base.clone(), metadata, user: None, token_self: None, groups: None, projects: None }
        }
        Some(token) => {
            let (metadata, user, token_self, groups, projects) = tokio::join!(
                target.get(&urls[0], Some(token)),
                target.get(&urls[1], Some(token)),
                target.get(&urls[2], Some(token)),
                target.get(&urls[3], Some(token)),
                target.get(&urls[4], Some(token)),
            );
            Round {
                base: base.clone(),
                metadata,
                user: Some(user),
                token_self: Some(token_self),
                groups: Some(groups),
                projects: Some(projects),
            }
        }
    }
}

/// Runs every check and builds the report. Never fails: every problem is a finding.
pub async fn run(outbound: &Outbound, input: &CheckInput<'_>, today: time::Date) -> Report {
    let started = Instant::now();
    let mut found = Findings::default();
    let outcome = run_checks(outbound, input, today, &mut found).await;
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let report = found.into_report(outcome, elapsed_ms);
    metrics::counter!("onramp_checks_total", "outcome" => if report.ok { "ok" } else { "failed" }).increment(1);
    metrics::histogram!("onramp_check_duration_seconds").record(started.elapsed().as_secs_f64());
    tracing::info!(
        base_url = %super::token::redact_for_log(&report.base_url),
        ok = report.ok,
        failed = ?report.failures().map(|c| c.id).collect::<Vec<_>>(),
        elapsed_ms,
        "gitlab connection check"
    );
    report
}

/// What the checks learnt besides their results.
#[derive(Default)]
struct Outcome {
    base_url: String,
    version: Option<String>,
    user: Option<GitlabUser>,
    token: Option<TokenInfo>,
}

#[derive(Default)]
struct Findings(HashMap<CheckId, CheckResult>);

impl Findings {
    fn add(&mut self, result: CheckResult) {
        self.0.insert(result.id, result);
    }

    fn into_report(mut self, outcome: Outcome, elapsed_ms: u64) -> Report {
        let first_failure =
            CheckId::ALL.iter().find(|id| self.0.get(id).is_some_and(|c| c.status == Status::Fail)).copied();
        for id in CheckId::ALL {
            self.0.entry(id).or_insert_with(|| {
                let why = match first_failure {
                    Some(failed) => format!("Not checked: the {} check failed first.", failed.label().to_lowercase()),
                    None => "Not checked.".to_owned(),
                };
                CheckResult::skipped(id, why)
            });
        }
        Report::new(
            outcome.base_url,
            outcome.version,
            outcome.user,
            outcome.token,
            self.0.into_values().collect(),
            elapsed_ms,
        )
    }
}

async fn run_checks(outbound: &Outbound, input: &CheckInput<'_>, today: time::Date, found: &mut Findings) -> Outcome {
    let mut outcome = Outcome { base_url: input.base_url.trim().to_owned(), ..Outcome::default() };

    // url: parse, then resolve and ask the guard.
    let pasted = match BaseUrl::parse(input.base_url) {
        Ok(base) => base,
        Err(e) => {
            found.add(CheckResult::fail(CheckId::Url, e.to_string()));
            return outcome;
        }
    };
    outcome.base_url = pasted.to_string();
    let extra_ca = match input.extra_ca_pem.map(str::trim).filter(|p| !p.is_empty()).map(parse_ca) {
        None => Vec::new(),
        Some(Ok(certs)) => certs,
        Some(Err(e)) => {
            found.add(CheckResult::pass(CheckId::Url, format!("{pasted} is a web address.")));
            found.add(CheckResult::fail(CheckId::Reachable, format!("The CA certificate under \"Advanced\": {e}.")));
            return outcome;
        }
    };
    let addrs = match outbound.resolve(&pasted).await {
        Ok(addrs) => addrs,
        Err(ResolveError::Blocked(blocked)) => {
            found.add(CheckResult::fail(
                CheckId::Url,
                format!(
                    "{blocked}. If your GitLab runs on a private network, ask whoever runs Onramp to allow it \
                     (ONRAMP_OUTBOUND_ALLOW)."
                ),
            ));
            return outcome;
        }
        Err(ResolveError::NotFound(host)) => {
            found.add(CheckResult::pass(CheckId::Url, format!("{pasted} is a web address.")));
            found.add(CheckResult::fail(
                CheckId::Reachable,
                format!("No such host: DNS has no address for {host}. Check the spelling, or copy the address again from your browser (step 11)."),
            ).fixed_in(11));
            return outcome;
        }
    };
    let ips: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
    found.add(CheckResult::pass(
        CheckId::Url,
        format!("{pasted} is a web address; {} resolves to {}.", pasted.host(), ips.join(", ")),
    ));
    let target = match outbound.target(&pasted, addrs, &extra_ca) {
        Ok(t) => t,
        Err(e) => {
            found.add(CheckResult::fail(CheckId::Reachable, e));
            return outcome;
        }
    };

    // Round 1: the address as pasted, with everything the token allows, and every shorter prefix.
    let token = input.token.as_ref().ok();
    let candidates = pasted.candidates();
    let shorter = &candidates[1..];
    let probes = futures::future::join_all(shorter.iter().map(|c| target.get_owned(c.api("/metadata"))));
    let (mut round, probes) = tokio::join!(ask(&target, &pasted, token), probes);

    // reachable (an untrusted certificate is told with its issuer: the CA to paste)
    if let Err(Failure::Tls(why)) = &mut round.metadata {
        if why == super::outbound::UNKNOWN_ISSUER {
            if let Some(issuer) = target.peek_issuer(&pasted).await {
                *why = format!("{why}; it was issued by \u{201c}{issuer}\u{201d}");
            }
        }
    }
    let reachable = match &round.metadata {
        Err(failure) => Err(describe_failure(failure, &pasted)),
        Ok(answer) if answer.status.is_redirection() => match redirect_suggestion(answer) {
            Some(message) => Err(message),
            None => Ok(()),
        },
        Ok(_) => Ok(()),
    };
    if let Err(message) = reachable {
        found.add(CheckResult::fail(CheckId::Reachable, message));
        return outcome;
    }
    found.add(reachable_pass(&pasted));

    // gitlab: here, or under a shorter prefix?
    if !speaks_gitlab_api(&round.metadata) {
        let under =
            shorter.iter().zip(&probes).find(|(_, probe)| speaks_gitlab_api(probe)).map(|(base, _)| base.clone());
        match under {
            Some(base) => round = ask(&target, &base, token).await,
            None => {
                found.add(CheckResult::fail(CheckId::Gitlab, no_gitlab_message(&pasted, &round.metadata)));
                return outcome;
            }
        }
    }
    let base = round.base.clone();
    outcome.base_url = base.to_string();
    outcome.version = version_of(&round.metadata);
    if outcome.version.is_none() && answered(&round.metadata, StatusCode::NOT_FOUND) && token.is_some() {
        // GitLab before 15.2 has no /metadata; /version is older than that.
        outcome.version = version_of(&target.get(&base.api("/version"), token).await);
    }
    found.add(gitlab_pass(&base, &pasted, outcome.version.as_deref()));

    // token
    if let Err(e) = &input.token {
        found.add(CheckResult::fail(CheckId::Token, e.to_string()).fixed_in(9));
        return outcome;
    }
    let user_reply = round.user.as_ref().expect("asked with a token");
    let token_result = evaluate_token(user_reply);
    let token_ok = token_result.status != Status::Fail;
    found.add(token_result);
    if !token_ok {
        return outcome;
    }

    // user
    let (user_result, user) = evaluate_user(user_reply, &pasted, &base);
    outcome.user = user;
    // GitLab refuses the account (blocked…): it refuses the scopes and role questions for the
    // same reason, which says nothing about the token or GitLab's version. Those stay skipped.
    let user_refused = user_result.status == Status::Fail;
    found.add(user_result);
    if user_refused {
        return outcome;
    }

    // scopes and expiry
    let self_reply = round.token_self.as_ref().expect("asked with a token");
    let info = token_info(self_reply);
    found.add(evaluate_scopes(info.as_ref(), round.projects.as_ref().expect("asked with a token"), user_reply));
    found.add(match &info {
        Some(info) => evaluate_expiry(info.expires_at.as_deref(), today),
        None => CheckResult::skipped(
            CheckId::Expiry,
            "This GitLab (older than 15.5) does not tell when a token expires: note the date you chose in step 7.",
        ),
    });
    outcome.token = info;

    // role
    found.add(evaluate_role(
        round.groups.as_ref().expect("asked with a token"),
        round.projects.as_ref().expect("asked with a token"),
    ));
    outcome
}

impl Target {
    /// `get` without a token, owning its URL (for probing several prefixes at once).
    async fn get_owned(&self, url: String) -> Reply {
        self.get(&url, None).await
    }
}

fn answered(reply: &Reply, status: StatusCode) -> bool {
    matches!(reply, Ok(a) if a.status == status)
}

/// Does a GitLab API v4 answer here? Its API answers JSON (401 without a token, 404 JSON for an
/// unknown route); a web page, a sign-in redirect or another server answer HTML.
fn speaks_gitlab_api(reply: &Reply) -> bool {
    match reply {
        Ok(a) => a.json.is_some() && matches!(a.status.as_u16(), 200 | 401 | 403 | 404),
        Err(_) => false,
    }
}

fn version_of(reply: &Reply) -> Option<String> {
    match reply {
        Ok(a) if a.status == StatusCode::OK => a.str_field("version").map(str::to_owned),
        _ => None,
    }
}

fn reachable_pass(base: &BaseUrl) -> CheckResult {
    if base.is_https() {
        CheckResult::pass(CheckId::Reachable, format!("Connected to {} over HTTPS.", base.host()))
    } else {
        CheckResult::warn(
            CheckId::Reachable,
            format!(
                "Connected to {} over plain HTTP: the token travels unencrypted. Use https:// if your GitLab offers it.",
                base.host()
            ),
        )
        .fixed_in(11)
    }
}

/// A failure to reach GitLab in words people know, with what to check.
pub fn describe_failure(failure: &Failure, base: &BaseUrl) -> String {
    let host = base.host();
    match failure {
        Failure::Timeout => format!(
            "{host} did not answer in time. Check that your GitLab is up and that Onramp's network can reach it (a firewall may drop the connection)."
        ),
        Failure::Refused => format!(
            "{host} refused the connection on port {}. Check the port in the address, and that GitLab is running.",
            base.port()
        ),
        Failure::Tls(why) => format!(
            "Could not connect securely to {host}: {why}. If your GitLab uses a private CA, paste its certificate under \"Advanced\"."
        ),
        Failure::PlainHttp => {
            let plain = base.to_string().replacen("https://", "http://", 1);
            format!(
                "{host} answers plain HTTP on port {}, not HTTPS. Use the address your GitLab has: with HTTPS on another port, or {plain} if it has no HTTPS at all (the token then travels unencrypted).",
                base.port()
            )
        }
        Failure::Proxy(proxy) => format!(
            "Could not reach {host} through the proxy {proxy}. Check the proxy settings (HTTPS_PROXY, NO_PROXY) of the Onramp server."
        ),
        Failure::Other(why) => format!("Could not connect to {host}: {why}."),
    }
}

/// A redirect of an API call says the base URL is elsewhere (http → https, another host).
/// A redirect to a web page (a sign-in screen) says there is no API here: `None`.
fn redirect_suggestion(answer: &Answer) -> Option<String> {
    let location = answer.header("location")?;
    let (before, _) = location.split_once("/api/v4/")?;
    let suggested = BaseUrl::parse(before).ok()?;
    Some(format!(
        "The server redirects to {location}. Onramp does not follow redirects with your token: use {suggested} as the base URL."
    ))
}

fn no_gitlab_message(pasted: &BaseUrl, reply: &Reply) -> String {
    let api = pasted.api("");
    let detail = match reply {
        Ok(a) if a.status == StatusCode::TOO_MANY_REQUESTS => return rate_limited_message(a),
        Ok(a) if a.status.is_server_error() => {
            return format!(
                "The server at {api} answered {}: GitLab, or a proxy in front of it, has a problem. Try again later, or tell your GitLab admin.",
                status_text(a.status)
            )
        }
        Ok(a) => format!("it answered {} with a web page, not GitLab's API", status_text(a.status)),
        Err(_) => "it did not answer".to_owned(),
    };
    let mut message = format!("No GitLab answers at {api}: {detail}.");
    if pasted.depth() > 0 {
        let root = pasted.candidates().pop().expect("candidates end at the root");
        message.push_str(&format!(" Did you mean {root}?"));
    }
    message.push_str(" Copy the address of your profile page again (step 10) and derive the base URL from it.");
    message
}

fn gitlab_pass(base: &BaseUrl, pasted: &BaseUrl, version: Option<&str>) -> CheckResult {
    let what = match version {
        Some(v) => format!("GitLab {v} answers at {}.", base.api("")),
        None => format!("GitLab answers at {}.", base.api("")),
    };
    if base != pasted {
        CheckResult::pass(
            CheckId::Gitlab,
            format!("{what} The address you pasted points into it; Onramp uses {base} as the base URL."),
        )
    } else {
        CheckResult::pass(CheckId::Gitlab, what)
    }
}

fn status_text(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

fn rate_limited_message(answer: &Answer) -> String {
    match answer.retry_after() {
        Some(secs) => format!("GitLab is limiting requests (429 Too Many Requests). Try again in {secs} seconds."),
        None => "GitLab is limiting requests (429 Too Many Requests). Try again in a minute.".to_owned(),
    }
}

/// A problem GitLab reported that is not about the thing being checked (rate limits, 5xx).
fn unexpected(id: CheckId, what: &str, reply: &Reply) -> CheckResult {
    let message = match reply {
        Ok(a) if a.status == StatusCode::TOO_MANY_REQUESTS => rate_limited_message(a),
        Ok(a) if a.status.is_server_error() => {
            format!(
                "GitLab answered {} when asked about {what}. Try again later, or tell your GitLab admin.",
                status_text(a.status)
            )
        }
        Ok(a) => format!("GitLab answered {} when asked about {what}.", status_text(a.status)),
        Err(Failure::Timeout) => format!("GitLab did not answer in time when asked about {what}. Try again."),
        Err(_) => format!("The connection failed when Onramp asked GitLab about {what}. Try again."),
    };
    CheckResult::fail(id, message).fixed_in(12)
}

/// `token`: GitLab's `/user` answer tells unknown, expired and revoked tokens apart.
fn evaluate_token(user: &Reply) -> CheckResult {
    let Ok(answer) = user else { return unexpected(CheckId::Token, "the token", user) };
    match answer.status.as_u16() {
        200 => CheckResult::pass(CheckId::Token, "GitLab accepted the token."),
        401 => {
            let description = answer.str_field("error_description").unwrap_or_default().to_ascii_lowercase();
            if description.contains("expired") {
                CheckResult::fail(
                    CheckId::Token,
                    "This token has expired. Create a new one (step 7) and paste it here.",
                )
            } else if description.contains("revoked") {
                CheckResult::fail(
                    CheckId::Token,
                    "This token was revoked. Create a new one (step 7) and paste it here.",
                )
            } else {
                CheckResult::fail(
                    CheckId::Token,
                    "GitLab does not know this token. Check that you copied all of it (step 9) and that it was created on this GitLab.",
                )
                .fixed_in(9)
            }
        }
        // 403 with a valid token: a blocked account or too few scopes; both are told later.
        403 => CheckResult::pass(CheckId::Token, "GitLab accepted the token."),
        _ => unexpected(CheckId::Token, "the token", user),
    }
}

/// `user`: the account behind the token is active; a bot (project/group token) is noted; a pasted
/// profile URL matches the token's owner.
/// Why GitLab refuses an account (its 403 `message`, "403 Forbidden - …"), told apart with what
/// to do; `None` when the message names none of GitLab's reasons.
pub fn refused_account(message: &str) -> Option<&'static str> {
    let message = message.to_ascii_lowercase();
    // "pending approval … and hence blocked": before "blocked".
    let reasons: [(&str, &'static str); 6] = [
        ("pending approval", "Your GitLab account is waiting for an administrator's approval. Ask your GitLab admin to approve it, or use a token of another account (step 5)."),
        ("deactivated", "Your GitLab account was deactivated (it had not been used for a while). Sign in to GitLab in a browser to reactivate it (step 5), then check again."),
        ("email address is not confirmed", "Your GitLab account's primary email address is not confirmed. Follow the link in GitLab's confirmation email, or ask for a new one when you sign in (step 5), then check again."),
        ("terms of service", "Your GitLab account has not accepted the Terms of Service. Sign in to GitLab in a browser and accept them (step 5), then check again."),
        ("password expired", "Your GitLab password has expired, and GitLab refuses your tokens until you set a new one. Sign in to GitLab in a browser and change it (step 5), then check again."),
        ("blocked", "Your GitLab account is blocked. Ask your GitLab admin to unblock it, or sign in as another user (step 5)."),
    ];
    reasons.into_iter().find(|(words, _)| message.contains(words)).map(|(_, why)| why)
}

fn evaluate_user(user: &Reply, pasted: &BaseUrl, base: &BaseUrl) -> (CheckResult, Option<GitlabUser>) {
    let Ok(answer) = user else { return (unexpected(CheckId::User, "your account", user), None) };
    if answer.status == StatusCode::FORBIDDEN {
        let message = answer.str_field("message").unwrap_or_default();
        if let Some(why) = refused_account(message) {
            return (CheckResult::fail(CheckId::User, why), None);
        }
        if answer.str_field("error") == Some("insufficient_scope") {
            return (CheckResult::skipped(CheckId::User, "The token may not read your account: see Scopes."), None);
        }
    }
    if answer.status != StatusCode::OK {
        return (unexpected(CheckId::User, "your account", user), None);
    }
    let json = answer.json.as_ref();
    let field = |k: &str| json.and_then(|j| j.get(k)).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
    let account = GitlabUser {
        username: field("username"),
        name: field("name"),
        web_url: field("web_url"),
        bot: json.and_then(|j| j.get("bot")).and_then(|v| v.as_bool()).unwrap_or(false),
    };
    let state = field("state");
    let who = format!("{} (@{})", account.name, account.username);
    let result = if !state.is_empty() && state != "active" {
        CheckResult::fail(CheckId::User, format!("The account {who} is {state}. Ask your GitLab admin to reactivate it, or sign in as another user (step 5)."))
    } else if account.bot && !super::rotation::is_resource_bot(&account) {
        CheckResult::pass(
            CheckId::User,
            format!(
                "Signed in as the service account {who}: a machine user, so the connection does not depend on any \
                 person's account. It reads what it is a member of (see the role check)."
            ),
        )
    } else if account.bot {
        CheckResult::warn(
            CheckId::User,
            format!(
                "This token belongs to the bot user @{} of a project or group access token: it reaches that one project or group only. \
                 For all your projects, create a personal access token (step 6).",
                account.username
            ),
        )
        .fixed_in(6)
    } else if pasted.depth() == base.depth() + 1 && !same_profile(pasted.as_str(), &account.username) {
        CheckResult::warn(
            CheckId::User,
            format!(
                "Signed in as {who}, but the profile you pasted, {pasted}, is someone else's. Make sure the token is yours (step 10)."
            ),
        )
        .fixed_in(10)
    } else {
        CheckResult::pass(CheckId::User, format!("Signed in as {who}."))
    };
    (result, Some(account))
}

/// Is the pasted profile URL the token user's? Compared by the user name it ends with, not the
/// whole URL: GitLab builds `web_url` from its configured external URL, while people paste the
/// address they reach it by (an IP, an alias, another port through a proxy).
fn same_profile(pasted: &str, username: &str) -> bool {
    pasted.trim_end_matches('/').rsplit('/').next().is_some_and(|last| last.eq_ignore_ascii_case(username))
}

fn token_info(token_self: &Reply) -> Option<TokenInfo> {
    let Ok(answer) = token_self else { return None };
    if answer.status != StatusCode::OK {
        return None;
    }
    let json = answer.json.as_ref()?;
    Some(TokenInfo {
        name: json.get("name").and_then(|v| v.as_str()).map(str::to_owned),
        scopes: json
            .get("scopes")
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
            .unwrap_or_default(),
        expires_at: json.get("expires_at").and_then(|v| v.as_str()).map(str::to_owned),
        id: json.get("id").and_then(|v| v.as_i64()),
        created_at: json.get("created_at").and_then(|v| v.as_str()).map(str::to_owned),
    })
}

/// `scopes`: from `/personal_access_tokens/self` (GitLab 15.5+); older GitLab: inferred from
/// which calls answered 403 `insufficient_scope`.
fn evaluate_scopes(info: Option<&TokenInfo>, projects: &Reply, user: &Reply) -> CheckResult {
    if let Some(info) = info {
        let missing: Vec<&str> =
            REQUIRED_SCOPES.iter().copied().filter(|s| !info.scopes.iter().any(|have| have == s)).collect();
        return if missing.is_empty() {
            CheckResult::pass(
                CheckId::Scopes,
                format!("The token has the scopes Onramp needs: {}.", info.scopes.join(", ")),
            )
        } else {
            CheckResult::fail(
                CheckId::Scopes,
                format!(
                    "Missing scopes: {}. Scopes cannot be added to a token: create a new one with {} selected (step 8).",
                    missing.join(", "),
                    REQUIRED_SCOPES.join(", ")
                ),
            )
        };
    }
    let insufficient = |r: &Reply| matches!(r, Ok(a) if a.status == StatusCode::FORBIDDEN && a.str_field("error") == Some("insufficient_scope"));
    if insufficient(user) || insufficient(projects) {
        let missing = if insufficient(user) { "api, read_api, read_user" } else { "api, read_api" };
        return CheckResult::fail(
            CheckId::Scopes,
            format!(
                "Missing scopes: the token has none of {missing}. Create a new token with {} selected (step 8).",
                REQUIRED_SCOPES.join(", ")
            ),
        );
    }
    CheckResult::warn(
        CheckId::Scopes,
        "This GitLab (older than 15.5) cannot list a token's scopes. The token can read the API; make sure read_repository was selected too (step 8).",
    )
}

/// `expiry`: fail when expired, warn within [`EXPIRY_WARNING_DAYS`], pass with the date.
pub fn evaluate_expiry(expires_at: Option<&str>, today: time::Date) -> CheckResult {
    let Some(raw) = expires_at else {
        return CheckResult::pass(
            CheckId::Expiry,
            "The token does not expire (your GitLab admin allows that). Onramp will still re-check it daily.",
        );
    };
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let Ok(date) = time::Date::parse(raw.get(..10).unwrap_or(raw), &format) else {
        return CheckResult::warn(
            CheckId::Expiry,
            format!("GitLab gave an expiry date Onramp cannot read ({raw}). Check it on the token page (step 7)."),
        );
    };
    let days = (date - today).whole_days();
    if days <= 0 {
        CheckResult::fail(CheckId::Expiry, format!("The token expired on {date}. Create a new one (step 7)."))
    } else if days <= EXPIRY_WARNING_DAYS {
        CheckResult::warn(
            CheckId::Expiry,
            format!(
                "The token expires in {days} day{} ({date}, 00:00 UTC). Create a replacement soon (step 7) so the connection does not break.",
                if days == 1 { "" } else { "s" }
            ),
        )
    } else {
        CheckResult::pass(
            CheckId::Expiry,
            format!("The token is valid until {date} ({days} days). GitLab emails you a week before it expires."),
        )
    }
}

/// The number of items a paginated answer stands for: `x-total`, else the page (and "more" when
/// `x-next-page` says so; GitLab leaves `x-total` out above 10,000 records).
fn count(answer: &Answer) -> Option<(u64, bool)> {
    if let Some(total) = answer.header("x-total").and_then(|t| t.trim().parse().ok()) {
        return Some((total, false));
    }
    let on_page = answer.json.as_ref()?.as_array()?.len() as u64;
    let more = answer.header("x-next-page").is_some_and(|n| !n.trim().is_empty());
    Some((on_page, more))
}

/// `role`: Maintainer (40) or above in at least one group or project.
fn evaluate_role(groups: &Reply, projects: &Reply) -> CheckResult {
    let insufficient = |r: &Reply| matches!(r, Ok(a) if a.status == StatusCode::FORBIDDEN);
    if insufficient(groups) || insufficient(projects) {
        return CheckResult::skipped(CheckId::Role, "The token may not list your groups and projects: see Scopes.");
    }
    let counted = |r: &Reply| match r {
        Ok(a) if a.status == StatusCode::OK => count(a),
        _ => None,
    };
    let show = |(n, more): (u64, bool), one: &str, many: &str| {
        let plus = if more { "+" } else { "" };
        format!("{n}{plus} {}", if n == 1 && !more { one } else { many })
    };
    let (g, p) = match (counted(groups), counted(projects)) {
        (Some(g), Some(p)) => (g, p),
        // One list answered (gitlab.com rate-limits /groups on its own): a Maintainer role found
        // there settles the check; the other list's trouble is told beside it.
        (Some(found), None) | (None, Some(found)) if found.0 > 0 => {
            let (listed, other, other_name) = if counted(groups).is_some() {
                (show(found, "group", "groups"), projects, "your projects")
            } else {
                (show(found, "project", "projects"), groups, "your groups")
            };
            let trouble = unexpected(CheckId::Role, other_name, other).message;
            return CheckResult::pass(
                CheckId::Role,
                format!("Maintainer or above in {listed}; {other_name} were not counted: {trouble}"),
            );
        }
        (g, _) => {
            let bad = if g.is_none() { groups } else { projects };
            return unexpected(CheckId::Role, "your groups and projects", bad);
        }
    };
    if g.0 == 0 && p.0 == 0 {
        CheckResult::fail(
            CheckId::Role,
            "You are not Maintainer of any group or project. Ask an Owner for the Maintainer role, or let someone who has it create the token (step 6).",
        )
    } else {
        CheckResult::pass(
            CheckId::Role,
            format!("Maintainer or above in {} and {}.", show(g, "group", "groups"), show(p, "project", "projects")),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    fn answer(status: u16, json: &str, headers: &[(&str, &str)]) -> Reply {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        Ok(Answer {
            status: StatusCode::from_u16(status).unwrap(),
            headers: map,
            body: bytes::Bytes::from(json.to_owned()),
            json: serde_json::from_str(json).ok(),
        })
    }

    fn html(status: u16) -> Reply {
        Ok(Answer {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: "<html>".into(),
            json: None,
        })
    }

    #[test]
    fn tokens_told_apart_by_gitlab_401_body() {
        let cases = [
            (answer(200, r#"{"id":1}"#, &[]), Status::Pass, None, "accepted"),
            (answer(401, r#"{"message":"401 Unauthorized"}"#, &[]), Status::Fail, Some(9), "does not know"),
            (
                answer(
                    401,
                    r#"{"error":"invalid_token","error_description":"Token is expired. You can either do re-authorization or token refresh."}"#,
                    &[],
                ),
                Status::Fail,
                Some(7),
                "expired",
            ),
            (
                answer(
                    401,
                    r#"{"error":"invalid_token","error_description":"Token was revoked. You have to re-authorize from the user."}"#,
                    &[],
                ),
                Status::Fail,
                Some(7),
                "revoked",
            ),
            (
                answer(403, r#"{"message":"403 Forbidden - Your account has been blocked."}"#, &[]),
                Status::Pass,
                None,
                "accepted",
            ),
            (answer(429, "slow down", &[("retry-after", "17")]), Status::Fail, Some(12), "17 seconds"),
            (html(502), Status::Fail, Some(12), "502 Bad Gateway"),
            (Err(Failure::Timeout), Status::Fail, Some(12), "in time"),
        ];
        for (reply, status, fix, needle) in cases {
            let got = evaluate_token(&reply);
            assert_eq!((got.status, got.fix_step), (status, fix), "{got:?}");
            assert!(got.message.contains(needle), "{:?} lacks {needle:?}", got.message);
        }
    }

    #[test]
    fn user_states() {
        let pasted = BaseUrl::parse("https://gitlab.example.com/jdoe").unwrap();
        let base = BaseUrl::parse("https://gitlab.example.com").unwrap();
        let me = r#"{"username":"jdoe","name":"Jane Doe","state":"active","web_url":"https://gitlab.example.com/jdoe","bot":false}"#;
        let (r, user) = evaluate_user(&answer(200, me, &[]), &pasted, &base);
        assert_eq!(r.status, Status::Pass);
        assert_eq!(user.unwrap().username, "jdoe");
        let other = BaseUrl::parse("https://gitlab.example.com/alice").unwrap();
        let (r, _) = evaluate_user(&answer(200, me, &[]), &other, &base);
        assert_eq!((r.status, r.fix_step), (Status::Warn, Some(10)));
        let (r, _) = evaluate_user(&answer(200, me, &[]), &base, &base);
        assert_eq!(r.status, Status::Pass);
        let bot = r#"{"username":"project_7_bot_x","name":"bot","state":"active","web_url":"u","bot":true}"#;
        let (r, _) = evaluate_user(&answer(200, bot, &[]), &base, &base);
        assert_eq!(r.status, Status::Warn);
        let service = r#"{"username":"onramp-reader","name":"Onramp","state":"active","web_url":"u","bot":true}"#;
        let (r, user) = evaluate_user(&answer(200, service, &[]), &base, &base);
        assert_eq!(r.status, Status::Pass);
        assert!(
            r.message.contains("service account @onramp-reader")
                || r.message.contains("service account Onramp (@onramp-reader)"),
            "{}",
            r.message
        );
        assert!(user.unwrap().bot);
        let blocked = answer(403, r#"{"message":"403 Forbidden - Your account has been blocked."}"#, &[]);
        let (r, _) = evaluate_user(&blocked, &base, &base);
        assert_eq!((r.status, r.fix_step), (Status::Fail, Some(5)));
        let deactivated = r#"{"username":"j","name":"J","state":"deactivated","web_url":"u"}"#;
        assert_eq!(evaluate_user(&answer(200, deactivated, &[]), &base, &base).0.status, Status::Fail);
    }

    #[test]
    fn scopes_listed_or_inferred() {
        let all = TokenInfo { scopes: REQUIRED_SCOPES.iter().map(|s| s.to_string()).collect(), ..Default::default() };
        let ok = answer(200, "[]", &[]);
        assert_eq!(evaluate_scopes(Some(&all), &ok, &ok).status, Status::Pass);
        let some =
            TokenInfo { scopes: vec!["api".into(), "read_api".into(), "read_user".into()], ..Default::default() };
        let r = evaluate_scopes(Some(&some), &ok, &ok);
        assert_eq!((r.status, r.fix_step), (Status::Fail, Some(8)));
        assert!(r.message.starts_with("Missing scopes: read_repository."), "{}", r.message);
        // GitLab < 15.5
        assert_eq!(evaluate_scopes(None, &ok, &ok).status, Status::Warn);
        let scope = answer(403, r#"{"error":"insufficient_scope","scope":"api read_api"}"#, &[]);
        let r = evaluate_scopes(None, &scope, &ok);
        assert_eq!(r.status, Status::Fail);
        assert!(r.message.contains("api, read_api"));
    }

    #[test]
    fn expiry_windows() {
        let today = time::macros::date!(2026 - 11 - 25);
        let cases = [
            (None, Status::Pass, "does not expire"),
            (Some("2027-06-01"), Status::Pass, "valid until 2027-06-01"),
            (Some("2026-12-25"), Status::Warn, "30 days"),
            (Some("2026-11-26"), Status::Warn, "1 day ("),
            (Some("2026-11-25"), Status::Fail, "expired on 2026-11-25"),
            (Some("2025-01-01"), Status::Fail, "expired"),
            (Some("soon"), Status::Warn, "cannot read"),
        ];
        for (date, status, needle) in cases {
            let r = evaluate_expiry(date, today);
            assert_eq!(r.status, status, "{date:?}");
            assert!(r.message.contains(needle), "{:?} lacks {needle:?}", r.message);
        }
        assert_eq!(evaluate_expiry(Some("2026-11-30"), today).fix_step, Some(7));
    }

    #[test]
    fn role_counts() {
        let none = answer(200, "[]", &[("x-total", "0")]);
        let r = evaluate_role(&none, &none);
        assert_eq!((r.status, r.fix_step), (Status::Fail, Some(6)));
        let three = answer(200, "[{}]", &[("x-total", "3")]);
        let one = answer(200, "[{}]", &[]);
        let r = evaluate_role(&three, &one);
        assert_eq!(r.status, Status::Pass);
        assert_eq!(r.message, "Maintainer or above in 3 groups and 1 project.");
        let many = answer(200, "[{}]", &[("x-next-page", "2")]);
        assert!(evaluate_role(&none, &many).message.contains("1+ projects"));
        let scope = answer(403, r#"{"error":"insufficient_scope"}"#, &[]);
        assert_eq!(evaluate_role(&scope, &none).status, Status::Skipped);
        assert_eq!(evaluate_role(&html(502), &none).status, Status::Fail);
    }

    #[test]
    fn gitlab_api_is_recognised_by_its_json() {
        assert!(speaks_gitlab_api(&answer(401, r#"{"message":"401 Unauthorized"}"#, &[])));
        assert!(speaks_gitlab_api(&answer(404, r#"{"error":"404 Not Found"}"#, &[])));
        assert!(!speaks_gitlab_api(&html(404)));
        assert!(!speaks_gitlab_api(&html(200)));
        assert!(!speaks_gitlab_api(&answer(502, r#"{"x":1}"#, &[])));
        assert!(!speaks_gitlab_api(&Err(Failure::Refused)));
    }

    #[test]
    fn redirects_suggest_the_base() {
        let Ok(a) = answer(301, "", &[("location", "https://gitlab.example.com/gitlab/api/v4/metadata")]) else {
            unreachable!()
        };
        let m = redirect_suggestion(&a).unwrap();
        assert!(m.contains("use https://gitlab.example.com/gitlab as the base URL"), "{m}");
        let Ok(a) = answer(302, "", &[("location", "https://gitlab.example.com/users/sign_in")]) else {
            unreachable!()
        };
        assert!(redirect_suggestion(&a).is_none());
    }

    #[test]
    fn no_gitlab_suggests_the_root() {
        let pasted = BaseUrl::parse("https://git.example.com/tools/x").unwrap();
        let m = no_gitlab_message(&pasted, &html(404));
        assert!(m.starts_with("No GitLab answers at https://git.example.com/tools/x/api/v4"), "{m}");
        assert!(m.contains("Did you mean https://git.example.com?"), "{m}");
        let m = no_gitlab_message(&pasted, &answer(429, "x", &[("retry-after", "5")]));
        assert!(m.contains("5 seconds"));
    }

    #[test]
    fn each_reason_gitlab_refuses_an_account_is_told_apart() {
        // GitLab's own texts (Gitlab::Auth::UserAccessDeniedReason), as the API's 403 message.
        let cases = [
            ("403 Forbidden - Your account has been blocked.", "is blocked"),
            ("403 Forbidden - Your account is pending approval from your GitLab administrator and hence blocked. Please contact your GitLab administrator if you think this is an error.", "approval"),
            ("403 Forbidden - Your account has been deactivated by your administrator. Please log back in from a web browser to reactivate your account at https://gitlab.example.com", "reactivate"),
            ("403 Forbidden - Your primary email address is not confirmed. Please check your inbox for the confirmation instructions.", "not confirmed"),
            ("403 Forbidden - You (@jdoe) must accept the Terms of Service in order to perform this action. To accept these terms, please access GitLab from a web browser at https://gitlab.example.com.", "Terms of Service"),
            ("403 Forbidden - Your password expired. Please access GitLab from a web browser to update your password.", "password has expired"),
        ];
        let mut seen = std::collections::HashSet::new();
        for (message, words) in cases {
            let why = refused_account(message).unwrap_or_else(|| panic!("{message}"));
            assert!(why.contains(words), "{message} -> {why}");
            assert!(seen.insert(why), "told apart: {why}");
        }
        assert_eq!(refused_account("403 Forbidden"), None);
    }
}
