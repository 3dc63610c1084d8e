//! Discovery and preview requests: the plans of requests sent through [`Target`], judged by the
//! pure functions of [`super::scope`].
//!
//! Discovery asks `GET /personal_access_tokens/self/associations?min_access_level=10` (GitLab
//! 17.4+, groups and projects with the user's levels in one listing); where GitLab does not have
//! it, the user's groups from `GET /groups?min_access_level=N` for each level (the group list does
//! not say the level) and their projects from `GET /projects?membership=true` (the level from
//! `permissions`). Pages come concurrently where the total is known, by keyset (`Link:
//! rel="next"`) where it is not; at most [`Knobs::in_flight`] requests at once for a run and the
//! process-wide `shared` slots, each taken per request and given back before any wait; 429s back
//! off and retry the same page, a low `RateLimit-Remaining` waits for the window's end.
//!
//! What GitLab's source says about the associations (and why the follow-ups):
//! - Without `min_access_level` `lib/api/personal_access_tokens/self_information.rb` hands
//!   `GroupsFinder` and `ProjectsFinder` no filter, and both return everything *visible* to the
//!   user (`app/finders/groups_finder.rb` adds `Group.public_to_user`, `app/finders/
//!   projects_finder.rb` `Project.public_or_visible_to_user`): on gitlab.com every public
//!   project. So Onramp asks `min_access_level=10` (Guest, [`MEMBER`]): the lowest level a
//!   membership gives on a project (`project_authorizations`; Minimal Access, 5, reaches no
//!   project), so every project the user is a member of in any way is listed, and a Guest of a
//!   private project is still shown with what to do.
//! - `lib/api/entities/project_association_details.rb` has no `archived`: Onramp lists the
//!   archived ones with `GET /projects?membership=true&min_access_level=10&archived=true`
//!   (`archived=true` is `'only'` in `lib/api/helpers.rb` `archived_param`) and marks them.
//! - Its `group_access_level` is `project.group.highest_group_member(user)` (the project's own
//!   group chain) and `project_access_level` the direct membership: a project shared with one of
//!   the user's groups (`project_group_links`) shows both `null`, as does `/projects`'
//!   `permissions` (`lib/api/entities/project_with_access.rb`). Only `min_access_level` (which
//!   filters `project_authorizations`, shares counted) tells its level: such a private project is
//!   asked about once more with `min_access_level=20`; found there it is Reporter (readable),
//!   else Guest.

use super::base_url::BaseUrl;
use super::check::describe_failure;
use super::outbound::{Answer, Target};
use super::scope::{self, CountAnswer, Group, Pace, Paging, PreviewRow, Project, Snapshot};
use super::token::GitlabToken;
use futures::StreamExt;
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::{watch, Semaphore};

/// The `min_access_level` discovery asks for: Guest, the lowest role a membership gives on a
/// project (see the module's notes).
pub const MEMBER: u8 = scope::GUEST;

/// How hard discovery and the preview press on a GitLab.
#[derive(Clone, Copy, Debug)]
pub struct Knobs {
    /// Requests in flight at once for one connection's discovery.
    pub in_flight: usize,
    /// Requests in flight at once for a preview (four per project).
    pub preview_in_flight: usize,
    /// The first back-off after a 429 without `Retry-After`, doubled at each retry.
    pub backoff_ms: u64,
    /// GitLab requests previews may send for one connection per budget window (ten minutes):
    /// a preview asks four per project, and GitLab's rate limit is the token owner's.
    pub preview_budget: u32,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs { in_flight: 4, preview_in_flight: 16, backoff_ms: 1000, preview_budget: 2000 }
    }
}

/// Found so far, for the page that shows discovery running.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub groups: usize,
    pub projects: usize,
}

const PER_PAGE: u32 = 100;
/// Full project entities are a few KiB each: 50 keep a page under Onramp's answer size cap.
const PROJECTS_PER_PAGE: u32 = 50;

struct Client<'a> {
    target: &'a Target,
    base: &'a BaseUrl,
    token: &'a GitlabToken,
    permits: Arc<Semaphore>,
    /// Requests in flight across every discovery and preview of the process.
    shared: &'a Semaphore,
    knobs: Knobs,
}

impl Client<'_> {
    /// GET an API path (with its query), paced: waits for this run's permit, then for a shared
    /// one, holds both only while the request is on the wire (never while sleeping), retries
    /// 429s after the wait GitLab asks for (or an exponential back-off), slows down when the
    /// window runs low.
    async fn get(&self, path_and_query: &str) -> Result<Answer, String> {
        let url = self.base.api(path_and_query);
        let mut attempt = 0;
        loop {
            let answer = {
                let stopped = |_| "discovery was stopped".to_owned();
                let _permit = self.permits.acquire().await.map_err(stopped)?;
                let _shared = self.shared.acquire().await.map_err(stopped)?;
                self.target.get(&url, Some(self.token)).await.map_err(|f| describe_failure(&f, self.base))?
            };
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let pace = scope::pace(
                answer.status.as_u16(),
                answer.header("retry-after"),
                answer.header("ratelimit-remaining"),
                answer.header("ratelimit-reset"),
                now,
                attempt,
                self.knobs.backoff_ms,
            );
            match pace {
                Pace::Go => return Ok(answer),
                Pace::WaitThenGo(ms) => {
                    tracing::info!(wait_ms = ms, "GitLab's rate limit window is nearly used: waiting");
                    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                    return Ok(answer);
                }
                Pace::Retry(ms) => {
                    attempt += 1;
                    metrics::counter!("onramp_gitlab_rate_limited_total").increment(1);
                    if attempt > scope::MAX_RETRIES {
                        return Err(format!(
                            "GitLab kept refusing requests for its rate limit ({} tries): refresh again in a few \
                             minutes.",
                            scope::MAX_RETRIES + 1
                        ));
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                }
            }
        }
    }
}

/// What a refused listing means, in words that say what to do.
fn refused(answer: &Answer, what: &str) -> String {
    match answer.status.as_u16() {
        401 => "GitLab refused the token (expired or revoked): replace it on the connection's page.".into(),
        403 if answer.str_field("error") == Some("insufficient_scope") => {
            "The token lacks the `read_api` scope that listing groups and projects needs: create a token with the \
             scopes of step 8."
                .into()
        }
        200..=299 => format!("GitLab's answer to {what} could not be read (not JSON, or larger than Onramp reads)."),
        status => format!("GitLab answered {status} to {what}: refresh again later."),
    }
}

type Found = (Vec<Group>, Vec<Project>);

/// Reads every page of a listing. `first` is the answer to `path?query` (page 1).
async fn all_pages(
    client: &Client<'_>,
    path: &str,
    query: &str,
    first: Answer,
    parse: &(dyn Fn(&serde_json::Value) -> Option<Found> + Sync),
    progress: &(dyn Fn(&Found) + Sync),
) -> Result<Found, String> {
    let read = |answer: &Answer| -> Result<Found, String> {
        if !answer.status.is_success() {
            return Err(refused(answer, path));
        }
        answer.json.as_ref().and_then(parse).ok_or_else(|| refused(answer, path))
    };
    let found = read(&first)?;
    progress(&found);
    let (mut groups, mut projects) = found;
    let mut paging =
        scope::paging(first.header("x-total-pages"), first.header("link"), first.header("x-next-page"), query);
    let too_many = || {
        format!(
            "GitLab lists more than {} groups and projects for this token: Onramp stops there. Connect with the token \
             of a user who belongs to fewer (a service account made for the analytics).",
            scope::MAX_DISCOVERED
        )
    };
    if let Paging::Known(pages) = paging {
        let per_page = groups.len().max(projects.len()).max(1);
        if usize::try_from(pages).unwrap_or(usize::MAX).saturating_mul(per_page) > scope::MAX_DISCOVERED * 2 {
            return Err(too_many());
        }
        let mut rest = futures::stream::iter(2..=pages)
            .map(|page| async move {
                let answer = client.get(&format!("{path}?{}", scope::with_page(query, page))).await?;
                let found = read(&answer)?;
                progress(&found);
                Ok::<_, String>(found)
            })
            .buffer_unordered(client.knobs.in_flight);
        while let Some(found) = rest.next().await {
            let (g, p) = found?;
            groups.extend(g);
            projects.extend(p);
            if groups.len() + projects.len() > scope::MAX_DISCOVERED {
                return Err(too_many());
            }
        }
        return Ok((groups, projects));
    }
    // One page after another: GitLab did not say how many there are.
    let mut seen = 0usize;
    while let Paging::Next(Some(next)) = paging {
        seen += 1;
        if seen > 10_000 {
            return Err(format!("GitLab kept sending more pages of {path}: stopped after 10,000."));
        }
        let answer = client.get(&format!("{path}?{next}")).await?;
        let found = read(&answer)?;
        progress(&found);
        groups.extend(found.0);
        projects.extend(found.1);
        if groups.len() + projects.len() > scope::MAX_DISCOVERED {
            return Err(too_many());
        }
        paging = match scope::paging(None, answer.header("link"), answer.header("x-next-page"), &next) {
            Paging::Known(_) => Paging::Next(None),
            next => next,
        };
    }
    Ok((groups, projects))
}

/// Discovers everything the token's user can reach. Progress goes to `progress` as pages come.
/// `shared`: the process-wide request slots (see [`Client::get`]).
pub async fn discover(
    target: &Target,
    base: &BaseUrl,
    token: &GitlabToken,
    knobs: Knobs,
    shared: &Semaphore,
    progress: &watch::Sender<Progress>,
) -> Result<Snapshot, String> {
    let client =
        Client { target, base, token, permits: Arc::new(Semaphore::new(knobs.in_flight.max(1))), shared, knobs };
    let count = |found: &Found| {
        progress.send_modify(|p| {
            p.groups += found.0.len();
            p.projects += found.1.len();
        })
    };
    let query = format!("min_access_level={MEMBER}&per_page={PER_PAGE}&page=1");
    let path = "/personal_access_tokens/self/associations";
    let first = client.get(&format!("{path}?{query}")).await?;
    let (groups, mut projects) = if matches!(first.status.as_u16(), 404 | 405) {
        listings(&client, progress).await?
    } else {
        let (mut groups, mut projects) =
            all_pages(&client, path, &query, first, &scope::parse_associations, &count).await?;
        // GitLab's paging headers are the projects' (the second `paginate` call of
        // self_information.rb sets them last): groups may go on after the projects end.
        let per_page = PER_PAGE as usize;
        let mut page = projects.len().div_ceil(per_page).max(1);
        while groups.len() >= page * per_page {
            page += 1;
            let answer = client.get(&format!("{path}?{}", scope::with_page(&query, page as u32))).await?;
            let found = answer
                .json
                .as_ref()
                .filter(|_| answer.status.is_success())
                .and_then(scope::parse_associations)
                .ok_or_else(|| refused(&answer, path))?;
            count(&found);
            let more = found.0.len();
            groups.extend(found.0);
            projects.extend(found.1);
            if more < per_page || groups.len() + projects.len() > scope::MAX_DISCOVERED {
                break;
            }
        }
        // The association entity has no `archived`: the archived ones, listed apart.
        let archived = ids_listed(&client, &format!("archived=true&min_access_level={MEMBER}")).await?;
        mark_archived(&mut projects, &archived);
        (groups, projects)
    };
    // Projects reached only through a share show no level: ask GitLab which are Reporter.
    if projects.iter().any(|p| p.access_level == 0 && p.visibility == "private") {
        let reporter = ids_listed(&client, &format!("min_access_level={}&visibility=private", scope::REPORTER)).await?;
        settle_shared(&mut projects, &reporter);
    } else {
        settle_shared(&mut projects, &HashSet::new());
    }
    Ok(Snapshot { groups, projects }.normalise())
}

/// The ids of the user's projects that `GET /projects?membership=true&simple=true&{filter}`
/// lists (every page).
async fn ids_listed(client: &Client<'_>, filter: &str) -> Result<HashSet<u64>, String> {
    let query = format!("membership=true&simple=true&{filter}&per_page={PER_PAGE}&page=1");
    let first = client.get(&format!("/projects?{query}")).await?;
    let parse = |v: &serde_json::Value| scope::parse_projects(v).map(|p| (Vec::new(), p));
    let (_, projects) = all_pages(client, "/projects", &query, first, &parse, &|_: &Found| {}).await?;
    Ok(projects.into_iter().map(|p| p.id).collect())
}

/// Marks the projects whose id is in `archived` as archived.
fn mark_archived(projects: &mut [Project], archived: &HashSet<u64>) {
    for project in projects {
        project.archived = archived.contains(&project.id);
    }
}

/// Gives a level to the projects GitLab listed without one (reached only through a share with one
/// of the user's groups): Reporter where `reporter` (the private projects listed with
/// `min_access_level=20`) has them, else Guest, the level they were listed at.
fn settle_shared(projects: &mut [Project], reporter: &HashSet<u64>) {
    for project in projects.iter_mut().filter(|p| p.access_level == 0) {
        project.access_level = if reporter.contains(&project.id) { scope::REPORTER } else { MEMBER };
    }
}

/// GitLab before 17.4: the group listings at each level and the project listing.
async fn listings(client: &Client<'_>, progress: &watch::Sender<Progress>) -> Result<Found, String> {
    let levels = [10u8, 15, 20, 30, 40, 50];
    let groups = futures::future::try_join_all(levels.iter().map(|&level| async move {
        let query = format!("min_access_level={level}&per_page={PER_PAGE}&page=1");
        let first = client.get(&format!("/groups?{query}")).await?;
        // Found-so-far counts groups once: from the lowest level's listing.
        let count = |found: &Found| {
            if level == 10 {
                progress.send_modify(|p| p.groups += found.0.len());
            }
        };
        let parse = move |v: &serde_json::Value| scope::parse_groups(v, level).map(|g| (g, Vec::new()));
        all_pages(client, "/groups", &query, first, &parse, &count).await.map(|(g, _)| g)
    }));
    let projects = async {
        let count = |found: &Found| progress.send_modify(|p| p.projects += found.1.len());
        let parse = |v: &serde_json::Value| scope::parse_projects(v).map(|p| (Vec::new(), p));
        let query = format!("membership=true&per_page={PROJECTS_PER_PAGE}&page=1");
        let first = client.get(&format!("/projects?{query}")).await?;
        if first.status.is_success() && first.header("x-total-pages").is_none() {
            // More than 10,000: keyset pagination, the fast path GitLab offers for big lists.
            let keyset = format!("membership=true&pagination=keyset&order_by=id&sort=asc&per_page={PROJECTS_PER_PAGE}");
            let first = client.get(&format!("/projects?{keyset}")).await?;
            return all_pages(client, "/projects", &keyset, first, &parse, &count).await;
        }
        all_pages(client, "/projects", &query, first, &parse, &count).await
    };
    let (groups, (_, projects)) = futures::try_join!(groups, projects)?;
    Ok((scope::merge_levels(groups), projects))
}

/// The GitLab requests [`preview`] sends for `projects`: four per project it may read.
pub fn preview_cost(projects: &[Project]) -> u32 {
    let asked = projects.iter().filter(|p| p.problem().is_none()).count();
    u32::try_from(asked.saturating_mul(4)).unwrap_or(u32::MAX)
}

/// Counts, for each project, merge requests opened and merged, pipelines and deployments since
/// `since` (ISO 8601), at most [`Knobs::preview_in_flight`] requests at once (and `shared`, the
/// process-wide slots). Projects the user cannot read are not asked about: their row says why.
pub async fn preview(
    target: &Target,
    base: &BaseUrl,
    token: &GitlabToken,
    knobs: Knobs,
    shared: &Semaphore,
    projects: &[Project],
    since: &str,
) -> Vec<PreviewRow> {
    let client = Client {
        target,
        base,
        token,
        permits: Arc::new(Semaphore::new(knobs.preview_in_flight.max(1))),
        shared,
        knobs: Knobs { in_flight: knobs.preview_in_flight, ..knobs },
    };
    let since: String = url::form_urlencoded::byte_serialize(since.as_bytes()).collect();
    let client = &client;
    let since = since.as_str();
    futures::future::join_all(projects.iter().map(|project| async move {
        let mut row = PreviewRow { path_with_namespace: project.path_with_namespace.clone(), ..Default::default() };
        if let Some(problem) = project.problem() {
            row.problem = Some(problem);
            return row;
        }
        let id = project.id;
        let asks = [
            format!("/projects/{id}/merge_requests?state=all&created_after={since}&per_page=1"),
            format!("/projects/{id}/merge_requests?state=merged&created_after={since}&per_page=1"),
            format!("/projects/{id}/pipelines?updated_after={since}&per_page=1"),
            format!("/projects/{id}/deployments?updated_after={since}&order_by=updated_at&per_page=1"),
        ];
        let answers = futures::future::join_all(asks.iter().map(|ask| async move {
            match client.get(ask).await {
                Ok(answer) => scope::judge_count(
                    answer.status.as_u16(),
                    answer.header("x-total"),
                    answer.str_field("error"),
                    &project.path_with_namespace,
                ),
                Err(why) => CountAnswer::Refused(why, None),
            }
        }))
        .await;
        let mut counts = [scope::Count::default(); 4];
        for (slot, answer) in counts.iter_mut().zip(answers) {
            match answer {
                CountAnswer::Counted(count) => *slot = count,
                CountAnswer::Refused(why, step) => {
                    if row.problem.is_none() {
                        row.problem = Some(why);
                        row.fix_step = step;
                    }
                }
            }
        }
        [row.merge_requests_opened, row.merge_requests_merged, row.pipelines, row.deployments] = counts;
        if row.problem.is_none() && project.archived {
            row.problem =
                Some("Archived: its history is read, nothing new will come until a maintainer unarchives it.".into());
        }
        row
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One page of associations as GitLab 17.4+ writes it (project_association_details.rb: no
    /// `archived`; a share shows both levels null).
    fn page() -> serde_json::Value {
        serde_json::json!({
            "groups": [{"id": 10, "web_url": "https://h/groups/acme", "name": "Acme", "parent_id": null,
                        "organization_id": 1, "access_levels": 40, "visibility": "public"}],
            "projects": [
                {"id": 105, "path_with_namespace": "acme/legacy", "name": "Legacy", "visibility": "private",
                 "access_levels": {"project_access_level": null, "group_access_level": 40}},
                {"id": 106, "path_with_namespace": "partner/sdk", "name": "SDK", "visibility": "private",
                 "access_levels": {"project_access_level": null, "group_access_level": null}},
                {"id": 107, "path_with_namespace": "partner/docs", "name": "Docs", "visibility": "internal",
                 "access_levels": {"project_access_level": null, "group_access_level": null}},
                {"id": 108, "path_with_namespace": "partner/vault", "name": "Vault", "visibility": "private",
                 "access_levels": {"project_access_level": null, "group_access_level": null}}
            ]
        })
    }

    #[test]
    fn archived_projects_come_from_their_own_listing() {
        let (_, mut projects) = scope::parse_associations(&page()).unwrap();
        assert!(projects.iter().all(|p| !p.archived), "the entity says nothing of it");
        mark_archived(&mut projects, &HashSet::from([105]));
        let archived: Vec<u64> = projects.iter().filter(|p| p.archived).map(|p| p.id).collect();
        assert_eq!(archived, [105]);
    }

    #[test]
    fn a_shared_project_gets_the_level_the_listings_prove() {
        let (_, mut projects) = scope::parse_associations(&page()).unwrap();
        let level = |projects: &[Project], id: u64| projects.iter().find(|p| p.id == id).map(|p| p.access_level);
        assert_eq!(level(&projects, 106), Some(0), "both levels null");
        settle_shared(&mut projects, &HashSet::from([106]));
        assert_eq!(level(&projects, 105), Some(40), "a level GitLab gave is kept");
        assert_eq!(level(&projects, 106), Some(scope::REPORTER), "listed with min_access_level=20");
        assert_eq!(level(&projects, 108), Some(MEMBER), "only the level it was listed at");
        assert_eq!(level(&projects, 107), Some(MEMBER));
        let readable: Vec<u64> = projects.iter().filter(|p| p.readable()).map(|p| p.id).collect();
        assert_eq!(readable, [105, 106, 107], "internal is readable at any level; a private Guest is not");
    }

    #[test]
    fn a_preview_costs_four_requests_per_readable_project() {
        let (_, mut projects) = scope::parse_associations(&page()).unwrap();
        settle_shared(&mut projects, &HashSet::new());
        assert_eq!(preview_cost(&projects), 8, "105 and 107; the private Guest ones are not asked");
    }
}
