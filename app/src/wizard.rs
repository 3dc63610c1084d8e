//! The wizard's 13 steps as one table: the single source of their order, titles, URLs and of who
//! acts at each step. Pages, the step list and Back/Continue links are derived from it.

use crate::gitlab::base_url::BaseUrl;

/// Number of steps in the GitLab wizard.
pub const STEP_COUNT: u8 = 13;

/// Where a step happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Actor {
    /// On one of Onramp's own pages.
    Onramp,
    /// In the user's GitLab; Onramp links straight to the right page.
    GitLab,
}

/// One step of the wizard.
#[derive(Debug, PartialEq, Eq)]
pub struct Step {
    pub number: u8,
    pub title: &'static str,
    pub actor: Actor,
}

/// The 13 steps, in order. `STEPS[n - 1].number == n`.
pub static STEPS: [Step; STEP_COUNT as usize] = [
    Step { number: 1, title: "Log in to Onramp", actor: Actor::Onramp },
    Step { number: 2, title: "Open Settings, then Integrations", actor: Actor::Onramp },
    Step { number: 3, title: "Choose GitLab", actor: Actor::Onramp },
    Step { number: 4, title: "Start the GitLab integration", actor: Actor::Onramp },
    Step { number: 5, title: "Sign in to GitLab", actor: Actor::GitLab },
    Step { number: 6, title: "Open your GitLab user settings", actor: Actor::GitLab },
    Step { number: 7, title: "Name the token and choose its expiry", actor: Actor::GitLab },
    Step { number: 8, title: "Choose the token's scopes", actor: Actor::GitLab },
    Step { number: 9, title: "Create the token and copy it", actor: Actor::GitLab },
    Step { number: 10, title: "Open your GitLab profile", actor: Actor::GitLab },
    Step { number: 11, title: "Find your GitLab base URL", actor: Actor::GitLab },
    Step { number: 12, title: "Connect GitLab to Onramp", actor: Actor::Onramp },
    Step { number: 13, title: "GitLab is connected", actor: Actor::Onramp },
];

/// The path every step lives under.
pub const WIZARD_PATH: &str = "/integrations/gitlab/step";

impl Step {
    /// The step with this number, if there is one.
    pub fn get(number: u8) -> Option<&'static Step> {
        STEPS.get(usize::from(number).checked_sub(1)?)
    }

    /// The step a path segment names: only the canonical decimal form ("8", not "08" or "+8").
    pub fn from_segment(segment: &str) -> Option<&'static Step> {
        if segment.is_empty() || segment.starts_with('0') || !segment.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        segment.parse::<u8>().ok().and_then(Step::get)
    }

    pub fn previous(&self) -> Option<&'static Step> {
        Step::get(self.number - 1)
    }

    pub fn next(&self) -> Option<&'static Step> {
        Step::get(self.number + 1)
    }

    /// "Step 8 of 13".
    pub fn caption(&self) -> String {
        format!("Step {} of {}", self.number, STEP_COUNT)
    }

    /// The document title: "Step 8 of 13: Choose the token's scopes · Onramp".
    pub fn document_title(&self) -> String {
        format!("{}: {} · Onramp", self.caption(), self.title)
    }

    /// This step's URL, carrying the instance as `?base=` when it is known.
    pub fn href(&self, base: Option<&BaseUrl>) -> String {
        step_href(self.number, base)
    }
}

/// The URL of step `number`, with `?base=` when the instance is known. The token never rides along.
pub fn step_href(number: u8, base: Option<&BaseUrl>) -> String {
    match base {
        Some(base) => format!("{WIZARD_PATH}/{number}?base={}", base.query_value()),
        None => format!("{WIZARD_PATH}/{number}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_numbered_in_order() {
        for (i, step) in STEPS.iter().enumerate() {
            assert_eq!(usize::from(step.number), i + 1);
        }
        assert_eq!(STEPS.len(), usize::from(STEP_COUNT));
    }

    #[test]
    fn gitlab_acts_in_steps_5_to_11_only() {
        for step in &STEPS {
            let expected = if (5..=11).contains(&step.number) { Actor::GitLab } else { Actor::Onramp };
            assert_eq!(step.actor, expected, "step {}", step.number);
        }
    }

    #[test]
    fn segments_name_steps_only_in_canonical_form() {
        let cases: &[(&str, Option<u8>)] = &[
            ("1", Some(1)),
            ("8", Some(8)),
            ("13", Some(13)),
            ("0", None),
            ("14", None),
            ("08", None),
            ("+8", None),
            ("-1", None),
            ("abc", None),
            ("", None),
            ("256", None),
            ("99999999999999999999", None),
            ("8 ", None),
        ];
        for (input, expected) in cases {
            assert_eq!(Step::from_segment(input).map(|s| s.number), *expected, "{input:?}");
        }
    }

    #[test]
    fn neighbours_stop_at_the_ends() {
        assert!(STEPS[0].previous().is_none());
        assert_eq!(STEPS[0].next().map(|s| s.number), Some(2));
        assert_eq!(STEPS[12].previous().map(|s| s.number), Some(12));
        assert!(STEPS[12].next().is_none());
    }

    #[test]
    fn titles_and_links() {
        let step = Step::get(8).unwrap();
        assert_eq!(step.caption(), "Step 8 of 13");
        assert_eq!(step.document_title(), "Step 8 of 13: Choose the token's scopes · Onramp");
        assert_eq!(step.href(None), "/integrations/gitlab/step/8");
        let base = BaseUrl::parse("https://git.acme.io:8443/gitlab").unwrap();
        assert_eq!(
            step.href(Some(&base)),
            "/integrations/gitlab/step/8?base=https%3A%2F%2Fgit.acme.io%3A8443%2Fgitlab"
        );
    }
}
