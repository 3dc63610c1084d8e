//! Choosing what a connection reads: the picker (`…/connections/{id}/scope`), the preview
//! (`…/scope/preview`) and the summary on the connection's page. The pages render what
//! `discovery` prepared; the forms post to `api::scope`.

use super::common::{missing_connection as missing, when, ConnectionData};
use super::loaded;
use super::query_seconds;
use crate::gitlab::scope::{role_name, Filter, Page, Preview, ProjectView, RoleFilter};
use crate::integration::{GroupRow, Integration, Picker, ScopeSummary};
use crate::routes::scope_href;
use leptos::prelude::*;
use leptos_meta::Title;

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Where discovery stands: running (with what it found so far), failed, or when it last listed.
#[component]
fn DiscoveryStatus(id: String, summary: ScopeSummary, may_edit: bool) -> impl IntoView {
    let here = format!("/integrations/gitlab/connections/{id}/scope");
    let refresh = may_edit.then(|| {
        view! {
            <form method="post" action=format!("{here}/refresh") data-enhance="" data-pending-label="Starting…" class="inline-form">
                <button type="submit" class="button secondary small">"Refresh the list"</button>
            </form>
        }
    });
    let status = match summary.state.as_str() {
        "discovering" if summary.stalled => view! {
            <div class="callout warning" role="alert" id="discovery">
                <p><strong>"The list has been running for more than 15 minutes"</strong></p>
                <p>"Onramp may have restarted meanwhile. Start it again."</p>
                {refresh}
            </div>
        }
        .into_any(),
        "discovering" => view! {
            <div class="callout" role="status" id="discovery" data-refresh-ms="1500">
                <p><strong>"Listing your groups and projects in GitLab…"</strong></p>
                <p>{format!(
                    "Found so far: {} and {}.",
                    plural(usize::try_from(summary.groups_found).unwrap_or(0), "group", "groups"),
                    plural(usize::try_from(summary.projects_found).unwrap_or(0), "project", "projects"),
                )}</p>
                <p class="hint">"With JavaScript this page updates by itself. Without it, "
                    <a href=here.clone()>"reload the page"</a>" to see the progress."</p>
            </div>
        }
        .into_any(),
        "failed" => view! {
            <div class="callout warning" role="alert" id="discovery">
                <p><strong>"Listing your groups and projects failed"</strong></p>
                <p>{summary.error.clone().unwrap_or_default()}</p>
                {summary.discovered_at.map(|t| view! { <p>"Shown below: the list of " {when(t)} "."</p> })}
                {refresh}
            </div>
        }
        .into_any(),
        "" => view! {
            <p class="callout" id="discovery">"Onramp has not listed this connection's groups and projects yet."</p>
            {refresh}
        }
        .into_any(),
        _ => view! {
            <div class="actions" id="discovery">
                <p>{format!(
                    "Listed {}: {} and {} the token's user can reach.",
                    summary.discovered_at.map(when).unwrap_or_default(),
                    plural(usize::try_from(summary.groups_found).unwrap_or(0), "group", "groups"),
                    plural(summary.projects, "project", "projects"),
                )}</p>
                {refresh}
            </div>
        }
        .into_any(),
    };
    view! {
        {query_seconds("limited").map(|wait| view! {
            <p class="callout warning" role="alert">{format!("Too many requests to GitLab for you. Try again in {wait} seconds.")}</p>
        })}
        {status}
    }
}

fn pager(
    label: &'static str,
    anchor: &'static str,
    page: usize,
    pages: usize,
    href: impl Fn(usize) -> String,
) -> impl IntoView {
    (pages > 1).then(|| {
        view! {
            <nav class="pager" aria-label=label>
                {(page > 1).then(|| view! { <a href=format!("{}#{anchor}", href(page - 1)) rel="prev">"Previous"</a> })}
                <span>{format!("Page {page} of {pages}")}</span>
                {(page < pages).then(|| view! { <a href=format!("{}#{anchor}", href(page + 1)) rel="next">"Next"</a> })}
            </nav>
        }
    })
}

fn role_tag(level: u8) -> impl IntoView {
    view! { <span class="tag">{role_name(level)}</span> }
}

fn group_rows(groups: &Page<GroupRow>, id: &str, filter: &Filter, may_edit: bool) -> impl IntoView {
    let rows = groups
        .items
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let input_id = format!("g-{i}");
            let in_group = Filter { group: Some(g.full_path.clone()), ..filter.clone() };
            let through = g.through.clone();
            let control = match (&through, may_edit) {
                (Some(_), _) | (None, false) => view! {
                    <input type="checkbox" id=input_id.clone() checked=g.included disabled=true/>
                }
                .into_any(),
                (None, true) => view! {
                    <input type="hidden" name="shown_group" value=g.full_path.clone()/>
                    {g.included.then(|| view! { <input type="hidden" name="was_group" value=g.full_path.clone()/> })}
                    <input type="checkbox" id=input_id.clone() name="group_in" value=g.full_path.clone() checked=g.included/>
                }
                .into_any(),
            };
            view! {
                <li class="choice">
                    {control}
                    <label for=input_id>
                        <span class="path">{g.full_path.clone()}</span>" "{role_tag(g.access_level)}
                        {through.map(|t| view! { <span class="hint">{format!(" included with {t}")}</span> })}
                    </label>
                    <a class="choice-link" href=scope_href(id, &in_group, 1, 1, "")>
                        {plural(g.projects, "project", "projects")}
                        <span class="visually-hidden">{format!(" in {}", g.full_path)}</span>
                    </a>
                </li>
            }
        })
        .collect_view();
    view! { <ul class="choices">{rows}</ul> }
}

fn project_rows(projects: &[ProjectView], may_edit: bool) -> impl IntoView {
    let rows = projects
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let input_id = format!("p-{i}");
            let problem_id = format!("p-{i}-problem");
            let control = if may_edit {
                view! {
                    <input type="hidden" name="shown_project" value=p.path_with_namespace.clone()/>
                    {p.included.then(|| view! { <input type="hidden" name="was_project" value=p.path_with_namespace.clone()/> })}
                    <input type="checkbox" id=input_id.clone() name="project_in" value=p.path_with_namespace.clone()
                        checked=p.included aria-describedby=p.problem.as_ref().map(|_| problem_id.clone())/>
                }
                .into_any()
            } else {
                view! { <input type="checkbox" id=input_id.clone() checked=p.included disabled=true/> }.into_any()
            };
            view! {
                <li class="choice" class:unreadable=!p.readable>
                    {control}
                    <label for=input_id>
                        <span class="path">{p.path_with_namespace.clone()}</span>" "{role_tag(p.access_level)}
                        {p.archived.then(|| view! { " "<span class="tag muted">"Archived"</span> })}
                        {p.new.then(|| view! { " "<span class="tag new">"New since the last list"</span> })}
                    </label>
                    {p.problem.clone().map(|text| view! { <p class="choice-problem" id=problem_id>{text}</p> })}
                </li>
            }
        })
        .collect_view();
    view! { <ul class="choices">{rows}</ul> }
}

fn filters(id: &str, filter: &Filter) -> impl IntoView {
    let role = filter.role;
    let option = move |value: &'static str, label: &'static str| {
        let selected = RoleFilter::parse(value) == role;
        view! { <option value=value selected=selected>{label}</option> }
    };
    view! {
        <form method="get" action=format!("/integrations/gitlab/connections/{id}/scope") role="search" class="filters" data-enhance="">
            <div class="field">
                <label for="q">"Search by name or path"</label>
                <input id="q" name="q" type="search" value=filter.search.clone() spellcheck="false"/>
            </div>
            <div class="field">
                <label for="role">"Your role"</label>
                <select id="role" name="role">
                    {option("", "Any role")}
                    {option("readable", "Reporter or above (readable)")}
                    {option("unreadable", "Too low to read (Guest)")}
                    {option("30", "Developer or above")}
                    {option("40", "Maintainer or above")}
                    {option("50", "Owner")}
                </select>
            </div>
            {filter.group.clone().map(|g| view! { <input type="hidden" name="group" value=g/> })}
            <div class="field checkbox">
                <input id="archived" name="archived" type="checkbox" value="1" checked=filter.show_archived/>
                <label for="archived">"Show archived projects"</label>
            </div>
            <div class="field checkbox">
                <input id="included" name="included" type="checkbox" value="1" checked=filter.included_only/>
                <label for="included">"Only included projects"</label>
            </div>
            <button type="submit" class="button secondary">"Search"</button>
        </form>
    }
}

/// Hidden fields that carry the filters and page through a form post.
fn carried(filter: &Filter, page: usize) -> impl IntoView {
    view! {
        {(!filter.search.is_empty()).then(|| view! { <input type="hidden" name="q" value=filter.search.clone()/> })}
        {(filter.role != RoleFilter::Any).then(|| view! { <input type="hidden" name="role" value=filter.role.as_query()/> })}
        {filter.show_archived.then(|| view! { <input type="hidden" name="archived" value="1"/> })}
        {filter.group.clone().map(|g| view! { <input type="hidden" name="group" value=g/> })}
        {filter.included_only.then(|| view! { <input type="hidden" name="included" value="1"/> })}
        {(page > 1).then(|| view! { <input type="hidden" name="page" value=page.to_string()/> })}
    }
}

fn lists(id: &str, picker: &Picker) -> impl IntoView {
    let filter = &picker.filter;
    let may_edit = picker.may_edit;
    let (page, gpage) = (picker.projects.page, picker.groups.page);
    let unsaved = picker.summary.draft.is_some();
    let group_href = {
        let (id, filter) = (id.to_owned(), filter.clone());
        move |n: usize| scope_href(&id, &filter, page, n, "")
    };
    let project_href = {
        let (id, filter) = (id.to_owned(), filter.clone());
        move |n: usize| scope_href(&id, &filter, n, gpage, "")
    };
    let total = picker.projects.total;
    let body = view! {
        <section aria-labelledby="groups-title">
            <h2 id="groups-title">{format!("Groups ({})", picker.groups.total)}</h2>
            <p class="hint">"Including a group includes its projects now and in the future, subgroups included. Untick a project below to leave it out."</p>
            {filter.group.clone().map(|g| view! {
                <p>{format!("Showing {g} and what is under it. ")}
                    <a href=scope_href(id, &Filter { group: None, ..filter.clone() }, 1, 1, "")>"Show every group"</a></p>
            })}
            {group_rows(&picker.groups, id, filter, may_edit)}
            {pager("Pages of groups", "groups-title", gpage, picker.groups.pages(), group_href)}
        </section>
        <section aria-labelledby="projects">
            <h2 id="projects" tabindex="-1">{format!("Projects ({total})")}</h2>
            {(total == 0).then(|| view! { <p>"No project matches. Change the search, or show archived projects."</p> })}
            {project_rows(&picker.projects.items, may_edit)}
            {pager("Pages of projects", "projects", page, picker.projects.pages(), project_href)}
            {(may_edit && total > 0).then(|| view! {
                <div class="actions">
                    // These belong to the form #bulk (after the picker): Enter in the picker's
                    // boxes submits its first own button, "Apply ticks", never "Include all".
                    <button type="submit" form="bulk" name="intent" value="include_all" class="button secondary small">
                        {format!("Include all {total} results")}</button>
                    <button type="submit" form="bulk" name="intent" value="exclude_all" class="button secondary small">
                        {format!("Leave out all {total} results")}</button>
                </div>
            })}
        </section>
    };
    if !may_edit {
        return view! { {body} }.into_any();
    }
    view! {
        <form method="post" action=format!("/integrations/gitlab/connections/{id}/scope") data-enhance="" data-pending-label="Saving…" id="picker">
            {carried(filter, page)}
            {body}
            <div class="picker-bar" role="region" aria-label="Your selection">
                <p id="selection-count">
                    {format!("{} included", plural(picker.editing_included, "project", "projects"))}
                    {unsaved.then_some(" (not saved yet)")}
                </p>
                <div class="actions">
                    <button type="submit" name="intent" value="apply" class="button secondary">"Apply ticks"</button>
                    <button type="submit" name="intent" value="preview" class="button secondary">"Preview what this brings"</button>
                    <button type="submit" name="intent" value="save" class="button">"Save selection"</button>
                </div>
            </div>
        </form>
        <form method="post" action=format!("/integrations/gitlab/connections/{id}/scope") data-enhance="" data-pending-label="Saving…" id="bulk">
            {carried(filter, page)}
        </form>
        {unsaved.then(|| view! {
            <form method="post" action=format!("/integrations/gitlab/connections/{id}/scope") class="inline-form">
                <input type="hidden" name="intent" value="discard"/>
                <button type="submit" class="link-button">"Discard unsaved changes"</button>
            </form>
        })}
    }
    .into_any()
}

/// The picker of `…/connections/{id}/scope` and `…/scope/preview`, loaded beside [`ConnectionData`].
#[derive(Clone, Debug, Default)]
pub(crate) struct PickerData(pub Option<Picker>);

/// Loads the picker of `connection` for the viewer: the filter and pages from the query; with
/// `preview`, the counts of what the selection brings (a preview asks GitLab a few hundred
/// questions: it counts against the viewer's checks budget, and says when to try again).
#[cfg(feature = "ssr")]
pub(crate) async fn load(
    app: &crate::state::AppState,
    user_id: &str,
    connection: &Integration,
    role: crate::workspace::Role,
    mut preview: bool,
    param: impl Fn(&str) -> Option<String>,
) -> Result<Picker, crate::store::StoreError> {
    let number = |k: &str| param(k).and_then(|v| v.trim().parse::<usize>().ok()).unwrap_or(1);
    let filter = Filter::from_query(&param, false);
    let may_edit = role.may(crate::workspace::Action::ManageConnections);
    let mut limited = None;
    if preview {
        if let Err(wait) = app.checks_per_user.check(&user_id.to_owned()) {
            (preview, limited) = (false, Some(wait));
        }
    }
    let mut picker =
        crate::discovery::picker(app, connection, may_edit, filter, number("page"), number("gpage"), preview).await?;
    if let Some(wait) = limited {
        picker.preview = Some(Err(format!("Too many requests to GitLab for you: preview again in {wait} seconds.")));
    }
    Ok(picker)
}

/// `/integrations/gitlab/connections/{id}/scope`: choose groups and projects.
#[component]
pub fn ScopePage() -> impl IntoView {
    let (Some((saved, _)), PickerData(Some(picker))) = (loaded::<ConnectionData>().connection, loaded::<PickerData>())
    else {
        return missing().into_any();
    };
    let id = saved.id.clone();
    view! {
        <Title text=format!("Choose groups and projects · {} · Onramp", saved.base_url)/>
        <super::BackLink href=format!("/integrations/gitlab/connections/{id}") text="Back to the connection"/>
        <main id="main" tabindex="-1">
            <span class="caption">{format!("{} as @{}", saved.base_url, saved.username)}</span>
            <h1 tabindex="-1">"Choose what Onramp reads"</h1>
            <p class="lead">"Pick whole groups or single projects. Onramp reads merge requests, pipelines and deployments of what you include."</p>
            <DiscoveryStatus id=id.clone() summary=picker.summary.clone() may_edit=picker.may_edit/>
            {(!picker.may_edit).then(|| view! { <p class="callout">"You can see the selection; an owner or admin of the workspace can change it."</p> })}
            {(picker.summary.discovered_at.is_some()).then(|| view! {
                {filters(&id, &picker.filter)}
                {lists(&id, &picker)}
            })}
        </main>
    }
    .into_any()
}

/// The preview table: per project and in total.
#[component]
pub fn PreviewTable(preview: Preview) -> impl IntoView {
    let rows = preview
        .projects
        .iter()
        .map(|r| {
            view! {
                <tr>
                    <th scope="row">{r.path_with_namespace.clone()}
                        {r.problem.clone().map(|p| view! { <p class="choice-problem">{p}
                            {r.fix_step.map(|s| view! { " "<a href=crate::wizard::step_href(s, None)>{format!("Step {s} shows how.")}</a> })}
                        </p> })}
                    </th>
                    <td>{r.merge_requests_opened.label()}</td>
                    <td>{r.merge_requests_merged.label()}</td>
                    <td>{r.pipelines.label()}</td>
                    <td>{r.deployments.label()}</td>
                </tr>
            }
        })
        .collect_view();
    let t = preview.totals.clone();
    let counted = preview.projects.len();
    view! {
        {(preview.included > counted).then(|| view! {
            <p class="callout">{format!("The selection includes {} projects: the preview counts the first {counted}.", preview.included)}</p>
        })}
        <p id="preview-caption" class="hint">{format!("The last {} days, counted {}.", preview.days, when(preview.computed_at))}</p>
        <div class="table-scroll" tabindex="0" role="region" aria-labelledby="preview-caption">
            <table class="preview" id="preview">
                <caption class="visually-hidden">{format!("What the selection brings over the last {} days", preview.days)}</caption>
                <thead><tr>
                    <th scope="col">"Project"</th><th scope="col">"MRs opened"</th>
                    <th scope="col">"MRs merged"</th><th scope="col">"Pipelines"</th><th scope="col">"Deployments"</th>
                </tr></thead>
                <tbody>{rows}</tbody>
                <tfoot><tr id="preview-totals">
                    <th scope="row">"Total"</th><td>{t.merge_requests_opened.label()}</td><td>{t.merge_requests_merged.label()}</td>
                    <td>{t.pipelines.label()}</td><td>{t.deployments.label()}</td>
                </tr></tfoot>
            </table>
        </div>
    }
}

/// `/integrations/gitlab/connections/{id}/scope/preview`: what the selection being edited brings.
#[component]
pub fn ScopePreviewPage() -> impl IntoView {
    let (Some((saved, _)), PickerData(Some(picker))) = (loaded::<ConnectionData>().connection, loaded::<PickerData>())
    else {
        return missing().into_any();
    };
    let id = saved.id.clone();
    let back = scope_href(&id, &picker.filter, picker.projects.page, 1, "");
    let unsaved = picker.summary.draft.is_some();
    let result = match picker.preview.clone() {
        Some(Ok(preview)) => view! { <PreviewTable preview/> }.into_any(),
        Some(Err(why)) => view! { <p class="callout warning" role="alert">{why}</p> }.into_any(),
        None => view! { <p class="callout">"Nothing to preview until Onramp has listed the groups and projects."</p> }
            .into_any(),
    };
    view! {
        <Title text=format!("Preview · {} · Onramp", saved.base_url)/>
        <super::BackLink href=back.clone() text="Back to choosing"/>
        <main id="main" tabindex="-1">
            <span class="caption">{format!("{} as @{}", saved.base_url, saved.username)}</span>
            <h1 tabindex="-1">"What this selection brings"</h1>
            <p class="lead">{format!(
                "{} included{}. Counts come from GitLab now, before anything is synced.",
                plural(picker.editing_included, "project", "projects"),
                if unsaved { " (not saved yet)" } else { "" },
            )}</p>
            {result}
            {picker.may_edit.then(|| view! {
                <div class="actions">
                    <form method="post" action=format!("/integrations/gitlab/connections/{id}/scope") data-enhance="" data-pending-label="Saving…">
                        <input type="hidden" name="intent" value="save"/>
                        <button type="submit" class="button">"Save selection"</button>
                    </form>
                    <a href=back>"Change the selection"</a>
                </div>
            })}
        </main>
    }
    .into_any()
}

/// The connection page's section: what the saved selection includes, and its last preview.
pub fn scope_section(saved: &Integration, summary: ScopeSummary, may_edit: bool) -> impl IntoView {
    let href = format!("/integrations/gitlab/connections/{}/scope", saved.id);
    let s = &summary.selection;
    let chosen = if s.is_empty() {
        "Nothing is chosen yet: Onramp reads no project until you choose.".to_owned()
    } else {
        format!(
            "{}, {}{}: {} included{}.",
            plural(s.groups.len(), "whole group", "whole groups"),
            plural(s.projects.len(), "single project", "single projects"),
            if s.exclude.is_empty() { String::new() } else { format!(", {} left out", s.exclude.len()) },
            plural(summary.included, "project", "projects"),
            if summary.included_new > 0 {
                format!(" ({} new since the last list)", summary.included_new)
            } else {
                String::new()
            },
        )
    };
    let saved_note =
        super::query("scope").map(|_| view! { <p class="callout success" role="status">"Selection saved."</p> });
    view! {
        <section aria-labelledby="scope" class="scope-summary">
            <h2 id="scope" tabindex="-1">"Groups and projects"</h2>
            {saved_note}
            <p id="scope-chosen">{chosen}</p>
            {(summary.unreadable > 0).then(|| view! {
                <p class="hint">{format!(
                    "@{} cannot read {} of the {} they can reach (Guest on a private project): the picker marks them.",
                    saved.username,
                    plural(summary.unreadable, "project", "projects"),
                    plural(summary.projects, "project", "projects"),
                )}</p>
            })}
            {summary.draft.is_some().then(|| view! { <p class="hint">"There are unsaved changes in the picker."</p> })}
            {summary.preview.clone().map(|preview| view! { <PreviewTable preview/> })}
            <p><a class="button secondary" href=href>{if may_edit { "Choose groups and projects" } else { "See the groups and projects" }}</a></p>
        </section>
    }
}
