//! Rendering a connection report: the error summary and the list of checks with their fixes.

use crate::gitlab::base_url::BaseUrl;
use crate::gitlab::report::{Report, Status};
use crate::wizard::step_href;
use leptos::prelude::*;

#[derive(Clone, Debug)]
pub(crate) struct ErrorLink {
    pub href: String,
    pub text: String,
}

/// GOV.UK-style error summary: first in `<main>`, takes focus (also without JavaScript, through
/// `autofocus`), links to each field or finding.
#[component]
pub(crate) fn ErrorSummary(links: Vec<ErrorLink>) -> impl IntoView {
    view! {
        <div class="error-summary" tabindex="-1" autofocus aria-labelledby="error-summary-title" role="alert">
            <h2 id="error-summary-title">"There is a problem"</h2>
            <ul>
                {links.into_iter().map(|l| view! { <li><a href=l.href>{l.text}</a></li> }).collect_view()}
            </ul>
        </div>
    }
}

/// Every check with its status, message and, for problems, a link to the step that fixes it.
#[component]
pub(crate) fn CheckList(report: Report, base: Option<BaseUrl>, #[prop(optional)] only_warnings: bool) -> impl IntoView {
    let base = BaseUrl::parse(&report.base_url).ok().or(base);
    let items = report
        .checks
        .into_iter()
        .filter(|c| !only_warnings || c.status == Status::Warn)
        .map(|c| {
            let class = format!("check check-{}", match c.status {
                Status::Pass => "pass",
                Status::Warn => "warn",
                Status::Fail => "fail",
                Status::Skipped => "skipped",
            });
            let fix = c
                .fix_step
                .filter(|_| matches!(c.status, Status::Fail | Status::Warn))
                .map(|n| view! { <a class="fix-link" href=step_href(n, base.as_ref())>{format!("Fix this in step {n}")}</a> });
            view! {
                <li id=format!("check-{}", c.id.as_str()) class=class data-status=c.status.label()>
                    <span class="check-label">{c.id.label()}</span>
                    <span class="check-status">{c.status.label()}</span>
                    <p class="check-message">{c.message}</p>
                    {fix}
                </li>
            }
        })
        .collect_view();
    view! {
        <section class="report" aria-labelledby=(!only_warnings).then_some("report-title") aria-label=only_warnings.then_some("Warnings")>
            {(!only_warnings).then(|| view! { <h2 id="report-title">"Connection check"</h2> })}
            <ul class="checks">{items}</ul>
            {(!only_warnings).then(|| view! { <p class="hint">{format!("Checked in {} ms.", report.elapsed_ms)}</p> })}
        </section>
    }
}
