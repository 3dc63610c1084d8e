//! What a saved connection covers, over time: discovery runs (in the background, one at a time per
//! connection, on demand and after the daily re-check), the selection, and the preview. The
//! requests and the rules are in `gitlab::discover` and `gitlab::scope`; the storage in
//! `store::scopes`.

use crate::connections::UNUSABLE_TOKEN;
use crate::gitlab::discover::{self, Progress};
use crate::gitlab::scope::{
    Counts, Filter, GroupView, Listed, Page, Preview, ProjectView, Selection, Snapshot, PREVIEW_DAYS,
    PREVIEW_MAX_PROJECTS,
};
use crate::integration::{GroupRow, Integration, Picker, ScopeSummary};
use crate::state::AppState;
use crate::store::scopes::{self, Scope};
use crate::store::{integrations, now, StoreError};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A run that started longer ago than this is taken for dead (its process stopped): another may
/// start.
pub const STALE_AFTER_SECONDS: i64 = 15 * 60;

/// The longest a discovery may take (its wait for its workspace's turn not counted).
pub const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// Starts discovery in the background unless one is running. True when it started.
pub async fn start(state: &AppState, workspace_id: &str, id: &str) -> Result<bool, StoreError> {
    if !scopes::claim(&state.db, workspace_id, id, now() - STALE_AFTER_SECONDS).await? {
        return Ok(false);
    }
    let (state, workspace_id, id) = (state.clone(), workspace_id.to_owned(), id.to_owned());
    tokio::spawn(async move {
        if let Err(e) = run_claimed(&state, &workspace_id, &id).await {
            tracing::error!(error = %e, "cannot record a discovery");
        }
    });
    Ok(true)
}

/// Runs discovery now and waits for it (the daily re-check). False when one was running already.
pub async fn refresh(state: &AppState, workspace_id: &str, id: &str) -> Result<bool, StoreError> {
    if !scopes::claim(&state.db, workspace_id, id, now() - STALE_AFTER_SECONDS).await? {
        return Ok(false);
    }
    run_claimed(state, workspace_id, id).await?;
    Ok(true)
}

/// Discoveries one workspace runs at once (each holds a list of up to
/// [`crate::gitlab::scope::MAX_DISCOVERED`] entries while it runs); its others wait their turn,
/// shown as running. Other workspaces do not wait for them: no process-wide run slot is held
/// for a whole run.
pub const RUNS_PER_WORKSPACE: usize = 1;

/// GitLab requests in flight at once across every discovery and preview of this process. A
/// request takes a slot when it is sent and gives it back when its answer came, before any
/// back-off or rate-limit wait; the slots are handed out first come, first served, so one
/// workspace's many requests queue with everyone else's instead of ahead of them.
pub const REQUESTS_AT_ONCE: usize = 32;

static REQUESTS: Semaphore = Semaphore::const_new(REQUESTS_AT_ONCE);

/// Discovery turns per workspace.
static WORKSPACE_RUNS: Turns = Turns::new();

/// One preview at a time per connection.
static PREVIEWS: Turns = Turns::new();

/// Semaphores by key (a workspace, a connection), made when first asked for and dropped when no
/// one holds or waits for one.
struct Turns(Mutex<BTreeMap<String, Arc<Semaphore>>>);

impl Turns {
    const fn new() -> Self {
        Turns(Mutex::new(BTreeMap::new()))
    }

    /// Waits for one of `at_once` turns of `key`.
    async fn take(&'static self, key: &str, at_once: usize) -> Turn {
        let semaphore = {
            let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(key.to_owned()).or_insert_with(|| Arc::new(Semaphore::new(at_once))).clone()
        };
        let permit = semaphore.acquire_owned().await.ok();
        Turn { turns: self, key: key.to_owned(), permit }
    }
}

/// A turn of [`Turns`]; given back on drop.
struct Turn {
    turns: &'static Turns,
    key: String,
    permit: Option<OwnedSemaphorePermit>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        drop(self.permit.take());
        let mut map = self.turns.0.lock().unwrap_or_else(|e| e.into_inner());
        // Only the map holds it: no one has a turn or waits for one.
        if map.get(&self.key).is_some_and(|s| Arc::strong_count(s) == 1) {
            map.remove(&self.key);
        }
    }
}

async fn run_claimed(state: &AppState, workspace_id: &str, id: &str) -> Result<(), StoreError> {
    let _turn = WORKSPACE_RUNS.take(workspace_id, RUNS_PER_WORKSPACE).await;
    let started = std::time::Instant::now();
    let found = discover_with_token(state, workspace_id, id).await;
    let outcome = if found.is_ok() { "ok" } else { "failed" };
    metrics::counter!("onramp_discoveries_total", "outcome" => outcome).increment(1);
    metrics::histogram!("onramp_discovery_duration_seconds").record(started.elapsed().as_secs_f64());
    if let Err(why) = &found {
        tracing::warn!(reason = %why, "discovery failed");
    }
    scopes::finish(&state.db, workspace_id, id, found).await
}

async fn discover_with_token(state: &AppState, workspace_id: &str, id: &str) -> Result<Snapshot, String> {
    let (integration, token, ca) = match integrations::with_token(&state.db, &state.keys, workspace_id, id).await {
        Ok(Some(saved)) => saved,
        Ok(None) => return Err("The connection was removed meanwhile.".into()),
        Err(StoreError::Crypto(_)) => return Err(UNUSABLE_TOKEN.into()),
        Err(e) => {
            tracing::error!(error = %e, "cannot read a connection for discovery");
            return Err("Onramp could not read the connection: try again in a moment.".into());
        }
    };
    let (base, target) = crate::connections::target_for(state, &integration, &ca)
        .await
        .map_err(|why| format!("Onramp cannot reach {}: {why}.", integration.base_url))?;
    let (progress, mut seen) = tokio::sync::watch::channel(Progress::default());
    let db = state.db.clone();
    let (ws, conn) = (workspace_id.to_owned(), id.to_owned());
    // Found-so-far goes to the database at most five times a second, for the page to show.
    let writer = tokio::spawn(async move {
        while seen.changed().await.is_ok() {
            let now = *seen.borrow_and_update();
            if let Err(e) = scopes::progress(&db, &ws, &conn, now.groups, now.projects).await {
                tracing::warn!(error = %e, "cannot record discovery progress");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let knobs = state.settings.discovery;
    let listing = discover::discover(&target, &base, &token, knobs, &REQUESTS, &progress);
    let found = tokio::time::timeout(DISCOVERY_TIMEOUT, listing).await.unwrap_or_else(|_| {
        Err(format!(
            "Discovery took longer than {} minutes: GitLab is slow or rate-limits hard. Refresh later.",
            DISCOVERY_TIMEOUT.as_secs() / 60
        ))
    });
    drop(progress);
    let _ = writer.await;
    found
}

/// Why a preview was not counted: what to do, and when to try again where waiting helps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    pub message: String,
    /// Seconds.
    pub retry_after: Option<u64>,
}

impl From<String> for Refused {
    fn from(message: String) -> Self {
        Refused { message, retry_after: None }
    }
}

/// A kept preview of the same selection younger than this is the answer: GitLab is not asked
/// again.
pub const PREVIEW_KEPT_SECONDS: i64 = 300;

/// The window of [`crate::gitlab::discover::Knobs::preview_budget`].
pub const PREVIEW_BUDGET_WINDOW_SECONDS: i64 = 600;

/// GitLab requests previews spent per connection in the current window (pure).
#[derive(Debug, Default)]
pub struct Budget(BTreeMap<String, (i64, u32)>);

impl Budget {
    pub const fn new() -> Self {
        Budget(BTreeMap::new())
    }

    /// Spends `cost` requests of `key`'s `limit` per `window` seconds at `now` (Unix seconds), or
    /// says in how many seconds the window ends when that would go over. Ended windows are
    /// forgotten.
    pub fn spend(&mut self, key: &str, cost: u32, limit: u32, now: i64, window: i64) -> Result<(), u64> {
        self.0.retain(|_, (start, _)| now < *start + window);
        let (start, spent) = self.0.entry(key.to_owned()).or_insert((now, 0));
        if spent.saturating_add(cost) > limit {
            return Err(u64::try_from(*start + window - now).unwrap_or(1).max(1));
        }
        *spent += cost;
        Ok(())
    }
}

static BUDGET: Mutex<Budget> = Mutex::new(Budget::new());

/// What `selection` would bring over the last [`PREVIEW_DAYS`] days. `may_count` (an owner or
/// admin): counted by GitLab and kept, unless a kept count of the same selection is younger than
/// [`PREVIEW_KEPT_SECONDS`]; one count at a time per connection (a second waits for the first and
/// takes its result), within the connection's request budget. Otherwise (a viewer) the kept
/// preview only: a viewer never spends the token owner's GitLab rate limit.
/// `Ok(Err(why))` when there is nothing to show or GitLab cannot be asked.
pub async fn preview(
    state: &AppState,
    integration: &Integration,
    selection: &Selection,
    may_count: bool,
) -> Result<Result<Preview, Refused>, StoreError> {
    let (ws, id) = (integration.workspace_id.as_str(), integration.id.as_str());
    if !may_count {
        let scope = scopes::find(&state.db, ws, id).await?;
        return Ok(scope.as_ref().and_then(|s| s.preview_of(selection)).cloned().ok_or_else(|| {
            Refused::from(
                "No preview of this selection was counted yet: an owner or admin of the workspace counts one \
                 (\"Preview what this brings\"), and it shows here."
                    .to_owned(),
            )
        }));
    }
    let _turn = PREVIEWS.take(id, 1).await;
    let scope = scopes::find(&state.db, ws, id).await?;
    let kept = scope.as_ref().and_then(|s| s.preview_of(selection));
    if let Some(kept) = kept.filter(|p| now() - p.computed_at < PREVIEW_KEPT_SECONDS) {
        return Ok(Ok(kept.clone()));
    }
    let Some(snapshot) = scopes::snapshot(&state.db, ws, id).await? else {
        return Ok(Err("Onramp has not listed this connection's groups and projects yet: wait for the list."
            .to_owned()
            .into()));
    };
    let chosen = selection.clone();
    let included = off_the_workers(move || {
        snapshot.snapshot.projects.iter().filter(|p| chosen.includes(p)).cloned().collect::<Vec<_>>()
    })
    .await?;
    let counted: Vec<_> = included.iter().take(PREVIEW_MAX_PROJECTS).cloned().collect();
    let (cost, limit) = (discover::preview_cost(&counted), state.settings.discovery.preview_budget);
    let spent =
        BUDGET.lock().unwrap_or_else(|e| e.into_inner()).spend(id, cost, limit, now(), PREVIEW_BUDGET_WINDOW_SECONDS);
    if let Err(wait) = spent {
        return Ok(Err(Refused {
            message: format!(
                "Previews of this connection may send GitLab {limit} requests in {} minutes (GitLab's rate limit is \
                 its token owner's) and this one needs {cost} more: preview again in {wait} seconds.",
                PREVIEW_BUDGET_WINDOW_SECONDS / 60
            ),
            retry_after: Some(wait),
        }));
    }
    let (token, ca) = match integrations::with_token(&state.db, &state.keys, ws, id).await {
        Ok(Some((_, token, ca))) => (token, ca),
        Ok(None) => return Ok(Err("The connection was removed meanwhile.".to_owned().into())),
        Err(StoreError::Crypto(_)) => return Ok(Err(UNUSABLE_TOKEN.to_owned().into())),
        Err(e) => return Err(e),
    };
    let (base, target) = match crate::connections::target_for(state, integration, &ca).await {
        Ok(found) => found,
        Err(why) => return Ok(Err(format!("Onramp cannot reach {}: {why}.", integration.base_url).into())),
    };
    let since = time::OffsetDateTime::now_utc() - time::Duration::days(i64::from(PREVIEW_DAYS));
    let since = since.replace_nanosecond(0).unwrap_or(since);
    let since = since.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    let knobs = state.settings.discovery;
    let rows = discover::preview(&target, &base, &token, knobs, &REQUESTS, &counted, &since).await;
    let preview = Preview::new(rows, included.len(), now());
    scopes::save_preview(&state.db, ws, id, &preview, selection).await?;
    Ok(Ok(preview))
}

/// Progress of a running discovery.
#[derive(Clone, Debug, Serialize)]
pub struct Found {
    pub groups: i64,
    pub projects: i64,
}

/// Runs CPU-heavy work over a snapshot or a selection (up to 100,000 entries) on a blocking
/// thread, so the async workers keep answering (`/healthz` included) meanwhile.
pub async fn off_the_workers<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        tracing::error!(error = %e, "work on a blocking thread stopped");
        StoreError::Config("work on a blocking thread stopped".into())
    })
}

/// `GET …/scope`'s JSON: where discovery stands and, once a snapshot exists, its groups and
/// projects with the selection applied.
#[derive(Clone, Debug, Serialize)]
pub struct ScopeAnswer {
    pub state: &'static str,
    /// Unix seconds of the snapshot shown, if any.
    pub discovered_at: Option<i64>,
    pub started_at: i64,
    pub found: Found,
    pub error: Option<String>,
    pub selection: Selection,
    pub saved_at: Option<i64>,
    pub groups: Vec<GroupView>,
    pub projects: Vec<ProjectView>,
    /// Projects matching (all pages).
    pub total_projects: usize,
    pub page: usize,
    /// The page size used: the one asked for, clamped to 1..=[`MAX_PER_PAGE`].
    pub per_page: usize,
    /// The page after this one at the same size, if any.
    pub next_page: Option<usize>,
}

/// The most projects one answer lists, and the default (a plain GET returns everything up to this
/// many). About 2-3 MB of JSON at most.
pub use crate::gitlab::scope::MAX_PER_PAGE;

impl ScopeAnswer {
    pub fn new(scope: &Scope, snapshot: Option<&Listed>, filter: &Filter, page: usize, per_page: usize) -> Self {
        let selection = &scope.selection;
        let per_page = per_page.clamp(1, MAX_PER_PAGE);
        let (groups, projects) = match snapshot {
            Some(s) => (
                s.groups(filter)
                    .map(|g| GroupView {
                        full_path: g.full_path.clone(),
                        access_level: g.access_level,
                        included: selection.includes_group(&g.full_path),
                    })
                    .collect(),
                Page::of(s.projects(filter, selection), page, per_page, |p| ProjectView::of(p, selection)),
            ),
            None => (Vec::new(), Page { items: Vec::new(), page: 1, per_page, total: 0 }),
        };
        ScopeAnswer {
            state: scope.state.as_str(),
            discovered_at: scope.discovered_at,
            started_at: scope.started_at,
            found: Found { groups: scope.groups_found, projects: scope.projects_found },
            error: scope.error.clone(),
            selection: selection.clone(),
            saved_at: scope.saved_at,
            groups,
            total_projects: projects.total,
            page: projects.page,
            per_page: projects.per_page,
            next_page: projects.next(),
            projects: projects.items,
        }
    }
}

/// Groups and projects per picker page.
pub const PICKER_PER_PAGE: usize = 50;

/// The summary of a scope with the counts of its saved selection (none: no snapshot yet).
fn summary_of(scope: Option<&Scope>, counts: Option<&Counts>) -> ScopeSummary {
    let Some(scope) = scope else { return ScopeSummary::default() };
    let selection = &scope.selection;
    let Counts { included, included_new, projects, unreadable, .. } = counts.cloned().unwrap_or_default();
    ScopeSummary {
        state: if scope.discovered_at.is_none() && scope.started_at == 0 {
            String::new()
        } else {
            scope.state.as_str().to_owned()
        },
        started_at: scope.started_at,
        discovered_at: scope.discovered_at,
        groups_found: scope.groups_found,
        projects_found: scope.projects_found,
        stalled: scope.state == scopes::State::Discovering && scope.started_at < now() - STALE_AFTER_SECONDS,
        error: scope.error.clone(),
        selection: selection.clone(),
        saved_at: scope.saved_at,
        draft: scope.draft.clone(),
        included,
        included_new,
        projects,
        unreadable,
        preview: scope.preview_of(selection).cloned(),
    }
}

/// What the connection's page shows of its scope.
pub async fn summary(state: &AppState, integration: &Integration) -> Result<ScopeSummary, StoreError> {
    let (ws, id) = (integration.workspace_id.as_str(), integration.id.as_str());
    let scope = scopes::find(&state.db, ws, id).await?;
    // The counts stored with the saved selection: the snapshot is not read at all.
    if let Some(counts) = scope.as_ref().and_then(Scope::counts) {
        return Ok(summary_of(scope.as_ref(), Some(counts)));
    }
    let snapshot = match &scope {
        Some(s) if s.discovered_at.is_some() => scopes::snapshot(&state.db, ws, id).await?,
        _ => None,
    };
    off_the_workers(move || {
        let counts = snapshot.as_deref().map(|s| counts_of(scope.as_ref(), s));
        summary_of(scope.as_ref(), counts.as_ref())
    })
    .await
}

/// The stored counts when they are of the saved selection, else counted now.
fn counts_of(scope: Option<&Scope>, listed: &Listed) -> Counts {
    let selection = scope.map(|s| s.selection.clone()).unwrap_or_default();
    scope.and_then(Scope::counts).cloned().unwrap_or_else(|| Counts::of(&listed.snapshot, &selection, listed.version))
}

/// The picker page's data. Starts the first discovery when none ever ran (and the viewer may).
/// With `preview`, also counts what the edited selection brings.
pub async fn picker(
    state: &AppState,
    integration: &Integration,
    may_edit: bool,
    filter: Filter,
    page: usize,
    group_page: usize,
    preview: bool,
) -> Result<Picker, StoreError> {
    let (ws, id) = (integration.workspace_id.as_str(), integration.id.as_str());
    let mut scope = scopes::find(&state.db, ws, id).await?;
    let never = scope.as_ref().is_none_or(Scope::never_ran);
    if never && may_edit && start(state, ws, id).await? {
        scope = scopes::find(&state.db, ws, id).await?;
    }
    let snapshot = match &scope {
        Some(s) if s.discovered_at.is_some() => scopes::snapshot(&state.db, ws, id).await?,
        _ => None,
    };
    let editing = scope.as_ref().map(|s| s.editing().clone()).unwrap_or_default();
    let has_snapshot = snapshot.is_some();
    let (summary, groups, projects, editing_included, filter) = {
        let (scope, editing) = (scope.clone(), editing.clone());
        off_the_workers(move || {
            let counts = snapshot.as_deref().map(|s| counts_of(scope.as_ref(), s));
            let summary = summary_of(scope.as_ref(), counts.as_ref());
            let (groups, projects, included) = picker_lists(snapshot.as_deref(), &editing, &filter, page, group_page);
            (summary, groups, projects, included, filter)
        })
        .await?
    };
    let preview = if preview && has_snapshot {
        Some(self::preview(state, integration, &editing, may_edit).await?.map_err(|r| r.message))
    } else {
        None
    };
    Ok(Picker { summary, filter, groups, projects, editing_included, preview, may_edit })
}

/// The picker's two lists (one page each) and how many projects the edited selection includes.
fn picker_lists(
    snapshot: Option<&Listed>,
    editing: &Selection,
    filter: &Filter,
    page: usize,
    group_page: usize,
) -> (Page<GroupRow>, Page<ProjectView>, usize) {
    let Some(listed) = snapshot else {
        return (
            Page { items: Vec::new(), page: 1, per_page: PICKER_PER_PAGE, total: 0 },
            Page { items: Vec::new(), page: 1, per_page: PICKER_PER_PAGE, total: 0 },
            0,
        );
    };
    let snap = &listed.snapshot;
    let groups = Page::of(listed.groups(filter), group_page, PICKER_PER_PAGE, |g| {
        let through = editing.covering_group(&g.full_path).filter(|c| *c != g.full_path).map(str::to_owned);
        GroupRow {
            full_path: g.full_path.clone(),
            name: g.name.clone(),
            access_level: g.access_level,
            included: editing.includes_group(&g.full_path),
            through,
            projects: snap.projects_in(&g.full_path).count(),
        }
    });
    let projects = Page::of(listed.projects(filter, editing), page, PICKER_PER_PAGE, |p| ProjectView::of(p, editing));
    (groups, projects, snap.projects.iter().filter(|p| editing.includes(p)).count())
}

/// What a submitted picker form changes. Only boxes whose state differs from what was shown are
/// applied, so a group ticked on the same submit does not exclude its projects shown unticked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PickerForm {
    pub shown_groups: Vec<String>,
    pub was_groups: Vec<String>,
    pub groups: Vec<String>,
    pub shown_projects: Vec<String>,
    pub was_projects: Vec<String>,
    pub projects: Vec<String>,
    /// `apply`, `include_all`, `exclude_all`, `preview`, `save`, `discard`.
    pub action: String,
    pub filter: Filter,
}

/// Applies a picker form to the selection being edited (pure).
pub fn apply_form(mut selection: Selection, form: &PickerForm, listed: &Listed) -> Selection {
    let snapshot = &listed.snapshot;
    // Sets: a form's lists are as long as its body allows.
    fn set(list: &[String]) -> std::collections::HashSet<&str> {
        list.iter().map(String::as_str).collect()
    }
    let (groups, was_groups) = (set(&form.groups), set(&form.was_groups));
    let (projects, was_projects) = (set(&form.projects), set(&form.was_projects));
    for group in &form.shown_groups {
        let (now, was) = (groups.contains(group.as_str()), was_groups.contains(group.as_str()));
        if now != was && snapshot.group(group).is_some() {
            selection.set_group(group, now);
        }
    }
    for path in &form.shown_projects {
        let (now, was) = (projects.contains(path.as_str()), was_projects.contains(path.as_str()));
        if let (true, Some(project)) = (now != was, snapshot.project(path)) {
            selection.set_project(project, now);
        }
    }
    if matches!(form.action.as_str(), "include_all" | "exclude_all") {
        let include = form.action == "include_all";
        let chosen: Vec<_> = listed.projects(&form.filter, &selection).cloned().collect();
        for project in &chosen {
            selection.set_project(project, include);
        }
    }
    selection.tidy()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gitlab::scope::{Group, Project};

    fn snapshot() -> Listed {
        Listed::new(plain_snapshot())
    }

    fn plain_snapshot() -> Snapshot {
        let project = |id, path: &str| Project {
            id,
            path_with_namespace: path.into(),
            name: path.rsplit('/').next().unwrap_or_default().into(),
            access_level: 40,
            archived: false,
            visibility: "private".into(),
            new: false,
        };
        let group = |id, path: &str| Group { id, full_path: path.into(), name: path.into(), access_level: 40 };
        Snapshot {
            groups: vec![group(1, "acme"), group(2, "acme/platform")],
            projects: vec![
                project(1, "acme/platform/api"),
                project(2, "acme/platform/worker"),
                project(3, "acme/website"),
                project(4, "jdoe/dotfiles"),
            ],
        }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_preview_budget_refuses_past_its_limit_until_the_window_ends() {
        let mut budget = Budget::new();
        assert_eq!(budget.spend("c1", 800, 2000, 1_000, 600), Ok(()));
        assert_eq!(budget.spend("c1", 800, 2000, 1_100, 600), Ok(()));
        assert_eq!(budget.spend("c1", 800, 2000, 1_200, 600), Err(400), "the window ends at 1,600");
        assert_eq!(budget.spend("c2", 800, 2000, 1_200, 600), Ok(()), "per connection");
        assert_eq!(budget.spend("c1", 800, 2000, 1_600, 600), Ok(()), "a new window");
        assert_eq!(budget.spend("c3", 2001, 2000, 1_600, 600), Err(600), "more than a window allows");
        assert_eq!(budget.spend("c4", 4, 2000, 2_300, 600), Ok(()));
        assert_eq!(budget.0.len(), 1, "ended windows are forgotten");
    }

    #[test]
    fn a_group_ticked_with_its_projects_shown_unticked_includes_them_all() {
        let form = PickerForm {
            shown_groups: strings(&["acme/platform"]),
            groups: strings(&["acme/platform"]),
            shown_projects: strings(&["acme/platform/api", "acme/platform/worker"]),
            action: "apply".into(),
            ..Default::default()
        };
        let s = apply_form(Selection::default(), &form, &snapshot());
        assert!(s.groups.contains("acme/platform"));
        assert!(s.exclude.is_empty(), "boxes that did not change change nothing: {s:?}");
    }

    #[test]
    fn unticking_a_project_of_an_included_group_leaves_it_out_and_unknown_paths_are_ignored() {
        let mut start = Selection::default();
        start.groups.insert("acme/platform".into());
        let form = PickerForm {
            shown_projects: strings(&["acme/platform/api", "acme/platform/worker", "evil/injected"]),
            was_projects: strings(&["acme/platform/api", "acme/platform/worker", "evil/injected"]),
            projects: strings(&["acme/platform/api"]),
            action: "apply".into(),
            ..Default::default()
        };
        let s = apply_form(start, &form, &snapshot());
        assert_eq!(s.exclude.iter().collect::<Vec<_>>(), ["acme/platform/worker"]);
        assert!(!s.projects.contains("evil/injected"));
    }

    #[test]
    fn include_all_takes_every_result_of_the_search() {
        let form = PickerForm {
            action: "include_all".into(),
            filter: Filter { search: "WEB".into(), ..Default::default() },
            ..Default::default()
        };
        let s = apply_form(Selection::default(), &form, &snapshot());
        assert_eq!(s.projects.iter().collect::<Vec<_>>(), ["acme/website"]);
        let form = PickerForm { action: "exclude_all".into(), ..form };
        assert!(apply_form(s, &form, &snapshot()).is_empty());
    }
}
