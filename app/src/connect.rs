//! What Onramp does with a connection check (step 12 and a connection's "Replace the token"):
//! save, ask to accept warnings, offer an existing connection the token ("Replace its token"),
//! or only show the report. Pure rules on a [`Report`]: no HTTP, no Leptos, no store; the
//! handlers in `api::checks` call them and carry the outcome out (store, redirect, JSON).

use crate::gitlab::report::Report;

/// What step 12 does with a report of a token a browser just checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// No check failed nor warned: the connection is saved (unless the workspace already has
    /// this instance as this GitLab user: then the save offers that connection the token).
    Save,
    /// It works, with warnings: the check is kept with its token (sealed) and the reader is
    /// asked to accept the warnings ("Integrate anyway"). With `existing_user`, the workspace
    /// may already connect to this instance as that user: look it up and offer that connection
    /// the token instead.
    AskToAccept { existing_user: Option<String> },
    /// A check failed, or the token could not be read: only the report is kept, to show it.
    Show,
}

impl Verdict {
    /// Is the checked token kept (sealed) with the report, for a later "Integrate anyway" or
    /// "Replace its token"?
    pub fn keeps_token(&self) -> bool {
        !matches!(self, Verdict::Show)
    }
}

/// The step-12 verdict on `report`; `token_readable`: the typed token parsed as a token at all.
pub fn judge(report: &Report, token_readable: bool) -> Verdict {
    if !token_readable || !report.ok {
        return Verdict::Show;
    }
    if report.warnings().next().is_none() {
        return Verdict::Save;
    }
    Verdict::AskToAccept { existing_user: report.user.as_ref().map(|u| u.username.clone()) }
}

/// May a kept check still be accepted ("Integrate anyway")? Only one that passed and kept its
/// token: anything else is answered as gone, and the reader checks again.
pub fn may_accept(kept: &Report, has_token: bool) -> bool {
    kept.ok && has_token
}

/// Why a checked token may not go into a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The check was made against another GitLab than the connection's.
    OtherInstance,
}

/// Accepting a kept check *into* an existing connection swaps its token: only when the check was
/// made against that connection's own GitLab (the token must work where the connection points).
pub fn may_swap_into(check: &Report, connection_base_url: &str) -> Result<(), Refusal> {
    if check.base_url == connection_base_url {
        Ok(())
    } else {
        Err(Refusal::OtherInstance)
    }
}

/// What "Replace the token" does with the check of the new token against the connection's
/// instance: the check comes first, the swap only after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replacement {
    /// No check failed (warnings allowed: the connection exists already): swap the token in.
    Swap,
    /// A check failed or the token could not be read: nothing changes; the report is shown.
    Keep,
}

/// The [`Replacement`] for the report of a new token.
pub fn replacement(report: &Report, token_readable: bool) -> Replacement {
    if token_readable && report.ok {
        Replacement::Swap
    } else {
        Replacement::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gitlab::report::{CheckId, CheckResult, GitlabUser};

    fn report(checks: Vec<CheckResult>) -> Report {
        let user = GitlabUser {
            username: "jdoe".into(),
            name: "J. Doe".into(),
            web_url: "https://gitlab.example.com/jdoe".into(),
            bot: false,
        };
        Report::new("https://gitlab.example.com".into(), Some("17.5.0".into()), Some(user), None, checks, 10)
    }

    fn clean() -> Report {
        report(vec![CheckResult::pass(CheckId::Token, "ok"), CheckResult::pass(CheckId::Scopes, "ok")])
    }

    fn warned() -> Report {
        report(vec![CheckResult::pass(CheckId::Token, "ok"), CheckResult::warn(CheckId::Expiry, "soon")])
    }

    fn failed() -> Report {
        report(vec![CheckResult::fail(CheckId::Token, "revoked"), CheckResult::warn(CheckId::Expiry, "soon")])
    }

    #[test]
    fn a_clean_check_is_saved() {
        assert_eq!(judge(&clean(), true), Verdict::Save);
        assert!(Verdict::Save.keeps_token());
    }

    #[test]
    fn warnings_ask_to_accept_and_name_the_user_an_existing_connection_may_have() {
        let verdict = judge(&warned(), true);
        assert_eq!(verdict, Verdict::AskToAccept { existing_user: Some("jdoe".into()) });
        assert!(verdict.keeps_token());
        let mut anonymous = warned();
        anonymous.user = None;
        assert_eq!(judge(&anonymous, true), Verdict::AskToAccept { existing_user: None });
    }

    #[test]
    fn a_failure_or_an_unreadable_token_is_only_shown_and_keeps_no_token() {
        assert_eq!(judge(&failed(), true), Verdict::Show);
        assert_eq!(judge(&clean(), false), Verdict::Show);
        assert!(!Verdict::Show.keeps_token());
    }

    #[test]
    fn only_a_passed_check_with_its_token_can_be_accepted() {
        assert!(may_accept(&warned(), true));
        assert!(!may_accept(&warned(), false));
        assert!(!may_accept(&failed(), true));
    }

    #[test]
    fn a_token_goes_only_into_a_connection_of_the_gitlab_it_was_checked_against() {
        assert_eq!(may_swap_into(&warned(), "https://gitlab.example.com"), Ok(()));
        assert_eq!(may_swap_into(&warned(), "https://gitlab.other.example"), Err(Refusal::OtherInstance));
    }

    #[test]
    fn replacing_checks_first_and_swaps_despite_warnings_but_never_after_a_failure() {
        assert_eq!(replacement(&clean(), true), Replacement::Swap);
        assert_eq!(replacement(&warned(), true), Replacement::Swap);
        assert_eq!(replacement(&failed(), true), Replacement::Keep);
        assert_eq!(replacement(&clean(), false), Replacement::Keep);
    }
}
