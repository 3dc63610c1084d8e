//! What a connection covers: the groups and projects its token's user can reach (with their role),
//! the selection of what Onramp reads, and the preview counts. Pure: GitLab's answers in, plain
//! data out; the requests are in [`super::discover`].
//!
//! Facts (../shared/gitlab/FACTS.md): access levels 10 Guest, 15 Planner, 20 Reporter,
//! 30 Developer, 40 Maintainer, 50 Owner; merge requests, pipelines and code of a private project
//! need Reporter or above; above 10,000 rows GitLab leaves `x-total` out.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

pub const GUEST: u8 = 10;
pub const REPORTER: u8 = 20;
pub const DEVELOPER: u8 = 30;
pub const MAINTAINER: u8 = 40;
pub const OWNER: u8 = 50;

/// GitLab's name of an access level.
pub fn role_name(level: u8) -> &'static str {
    match level {
        0..=9 => "No access",
        10..=14 => "Guest",
        15..=19 => "Planner",
        20..=29 => "Reporter",
        30..=39 => "Developer",
        40..=49 => "Maintainer",
        _ => "Owner",
    }
}

/// A group the token's user belongs to (directly or through a parent group).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub id: u64,
    pub full_path: String,
    pub name: String,
    pub access_level: u8,
}

/// A project the token's user can reach: in a group, in their personal namespace, or shared with
/// one of their groups.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    pub id: u64,
    pub path_with_namespace: String,
    pub name: String,
    /// The higher of the user's own and their group's level.
    pub access_level: u8,
    pub archived: bool,
    /// `private`, `internal` or `public`.
    pub visibility: String,
    /// Not in the previous snapshot.
    #[serde(default)]
    pub new: bool,
}

impl Project {
    /// Whether the user may read merge requests, pipelines and code: Reporter or above, or a
    /// project that is not private.
    pub fn readable(&self) -> bool {
        self.access_level >= REPORTER || self.visibility != "private"
    }

    /// Why Onramp cannot read this project, and what to do, when it cannot.
    pub fn problem(&self) -> Option<String> {
        (!self.readable()).then(|| {
            format!(
                "Your role in {} is {}: GitLab shows a private project's merge requests, pipelines and code to \
                 Reporter or above. Ask one of its maintainers for Reporter, or connect with the token of someone who \
                 has it.",
                self.path_with_namespace,
                role_name(self.access_level)
            )
        })
    }

    /// The namespace's full path (everything before the last `/`).
    pub fn namespace(&self) -> &str {
        self.path_with_namespace.rsplit_once('/').map_or("", |(ns, _)| ns)
    }
}

/// Whether `path` is `group` or lies under it (subgroups included).
pub fn within(group: &str, path: &str) -> bool {
    work::count(1);
    path == group || path.strip_prefix(group).is_some_and(|rest| rest.starts_with('/'))
}

/// GitLab nests a group under at most 20 ancestors (`NUMBER_OF_ANCESTORS_ALLOWED = 20` in
/// `app/models/namespace.rb`): a group's full path has at most 21 segments. Onramp accepts a few
/// more and walks no deeper.
pub const MAX_GROUP_SEGMENTS: usize = 24;

/// `path` and its ancestors, the root first: `a`, `a/b`, `a/b/c` for `a/b/c`; at most
/// [`MAX_GROUP_SEGMENTS`] of them. Cut at `/` (one byte in UTF-8, so always between characters).
pub fn ancestors(path: &str) -> impl Iterator<Item = &str> + '_ {
    path.match_indices('/')
        .map(move |(at, _)| &path[..at])
        .chain(std::iter::once(path))
        .filter(|p| !p.is_empty())
        .take(MAX_GROUP_SEGMENTS)
}

/// Counts the path comparisons and set lookups of the selection's rules in tests, so a test can
/// assert how much work a large selection costs (never how long it takes).
pub mod work {
    #[cfg(test)]
    thread_local! {
        static DONE: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    }

    #[inline]
    pub(crate) fn count(_n: u64) {
        #[cfg(test)]
        DONE.with(|d| d.set(d.get() + _n));
    }

    /// Work counted on this thread so far (tests only; 0 otherwise).
    pub fn done() -> u64 {
        #[cfg(test)]
        return DONE.with(|d| d.get());
        #[cfg(not(test))]
        0
    }
}

/// Whether `set` has `path` (one counted lookup).
fn has(set: &BTreeSet<String>, path: &str) -> bool {
    work::count(1);
    set.contains(path)
}

/// Everything discovered, sorted by path.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub groups: Vec<Group>,
    pub projects: Vec<Project>,
}

impl Snapshot {
    /// Sorts by path and keeps one entry per path (the higher role where two answers disagree).
    pub fn normalise(mut self) -> Self {
        self.groups.sort_by(|a, b| a.full_path.cmp(&b.full_path).then(b.access_level.cmp(&a.access_level)));
        self.groups.dedup_by(|later, first| later.full_path == first.full_path);
        self.projects.sort_by(|a, b| {
            a.path_with_namespace.cmp(&b.path_with_namespace).then(b.access_level.cmp(&a.access_level))
        });
        self.projects.dedup_by(|later, first| later.path_with_namespace == first.path_with_namespace);
        self
    }

    /// Marks the projects that `previous` did not have as new. Without a previous snapshot (the
    /// first discovery) nothing is new.
    pub fn mark_new(&mut self, previous: Option<&Snapshot>) {
        let Some(previous) = previous else { return };
        let known: std::collections::HashSet<&str> =
            previous.projects.iter().map(|p| p.path_with_namespace.as_str()).collect();
        for project in &mut self.projects {
            project.new = !known.contains(project.path_with_namespace.as_str());
        }
    }

    pub fn group(&self, path: &str) -> Option<&Group> {
        self.groups.binary_search_by(|g| g.full_path.as_str().cmp(path)).ok().map(|i| &self.groups[i])
    }

    pub fn project(&self, path: &str) -> Option<&Project> {
        self.projects.binary_search_by(|p| p.path_with_namespace.as_str().cmp(path)).ok().map(|i| &self.projects[i])
    }

    /// Projects under a group (subgroups included).
    pub fn projects_in<'a>(&'a self, group: &'a str) -> impl Iterator<Item = &'a Project> + 'a {
        self.projects.iter().filter(move |p| within(group, p.namespace()))
    }
}

/// What a selection brings of a snapshot, in numbers: what a page that shows only counts needs.
/// Stored beside the snapshot with the selection it counted, so such a page never reads the
/// snapshot itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub projects: usize,
    pub unreadable: usize,
    /// Projects the selection includes, and of those the ones new since the list before.
    pub included: usize,
    pub included_new: usize,
    /// The selection counted.
    pub of: Selection,
    /// The version of the snapshot counted (the store's; 0 unknown).
    #[serde(default)]
    pub version: i64,
}

impl Counts {
    /// One pass over the projects, O(projects · depth).
    pub fn of(snapshot: &Snapshot, selection: &Selection, version: i64) -> Counts {
        let mut counts =
            Counts { projects: snapshot.projects.len(), of: selection.clone(), version, ..Default::default() };
        for p in &snapshot.projects {
            if selection.includes(p) {
                counts.included += 1;
                counts.included_new += usize::from(p.new);
            }
            counts.unreadable += usize::from(!p.readable());
        }
        counts
    }
}

/// What the user chose: whole groups (their projects now and later, subgroups included), single
/// projects, and projects excluded from an included group. Full paths.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    #[serde(default)]
    pub groups: BTreeSet<String>,
    #[serde(default)]
    pub projects: BTreeSet<String>,
    #[serde(default)]
    pub exclude: BTreeSet<String>,
}

/// The most paths a selection may name (each list).
pub const MAX_SELECTED: usize = 20_000;

/// The longest path accepted (GitLab's own limit is lower).
pub const MAX_PATH_CHARS: usize = 1024;

/// Why a selection is refused before any discovery finished.
pub const NO_SNAPSHOT: &str =
    "Onramp has not listed this connection's groups and projects yet, so it cannot check the \
     selection's paths: wait until GET …/scope says \"ready\" (POST …/scope/refresh starts the list again if it \
     failed), then send the selection.";

impl Selection {
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty() && self.projects.is_empty()
    }

    /// The included group that covers `path` (the group itself or an ancestor; the one nearest
    /// the root where several do). One lookup per ancestor: O(depth · log n).
    pub fn covering_group<'a>(&self, path: &'a str) -> Option<&'a str> {
        ancestors(path).find(|a| has(&self.groups, a))
    }

    /// Whether a group is included (itself or through an ancestor).
    pub fn includes_group(&self, full_path: &str) -> bool {
        self.covering_group(full_path).is_some()
    }

    /// Whether a project is included after groups, single projects and exclusions are applied.
    pub fn includes(&self, project: &Project) -> bool {
        let path = project.path_with_namespace.as_str();
        has(&self.projects, path) || (self.covering_group(project.namespace()).is_some() && !has(&self.exclude, path))
    }

    /// Checks a selection sent by a client: sizes, and that every path is one of the snapshot's
    /// groups or projects (so no list is longer than the snapshot's). Without a snapshot (no
    /// discovery finished yet) nothing can be checked, so nothing is accepted.
    pub fn validate(&self, snapshot: Option<&Snapshot>) -> Result<(), String> {
        for (name, list) in [("groups", &self.groups), ("projects", &self.projects), ("exclude", &self.exclude)] {
            if list.len() > MAX_SELECTED {
                return Err(format!("`{name}` names {} paths; at most {MAX_SELECTED} are accepted.", list.len()));
            }
            if let Some(bad) = list.iter().find(|p| p.is_empty() || p.chars().count() > MAX_PATH_CHARS) {
                return Err(format!(
                    "`{name}` has a path that is empty or longer than {MAX_PATH_CHARS} characters ({} characters).",
                    bad.chars().count()
                ));
            }
        }
        if let Some(deep) = self.groups.iter().find(|g| g.split('/').count() > MAX_GROUP_SEGMENTS) {
            return Err(format!(
                "`groups`: {deep:?} is nested deeper than GitLab allows ({MAX_GROUP_SEGMENTS} levels at most)."
            ));
        }
        let Some(snapshot) = snapshot else { return Err(NO_SNAPSHOT.into()) };
        if let Some(unknown) = self.groups.iter().find(|g| snapshot.group(g).is_none()) {
            return Err(format!(
                "The token's user is not a member of a group {unknown:?}: use full paths as GET …/scope lists them \
                 (refresh it if the group is new)."
            ));
        }
        for (name, list) in [("projects", &self.projects), ("exclude", &self.exclude)] {
            if let Some(unknown) = list.iter().find(|p| snapshot.project(p).is_none()) {
                return Err(format!(
                    "`{name}`: the token's user cannot reach a project {unknown:?}: use full paths as GET …/scope lists \
                     them (refresh it if the project is new)."
                ));
            }
        }
        Ok(())
    }

    /// Drops what is redundant: exclusions outside every included group, single projects already
    /// covered by an included group (and not excluded), groups under another included group.
    /// One lookup per ancestor of each path: O(n · depth · log n), never a comparison of every
    /// path with every other.
    pub fn tidy(mut self) -> Self {
        let all = std::mem::take(&mut self.groups);
        // A group under another included one: its strict ancestors (all but the last) looked up.
        let nested = |g: &str| {
            let mut up: Vec<&str> = ancestors(g).collect();
            up.pop();
            up.into_iter().any(|a| has(&all, a))
        };
        self.groups = all.iter().filter(|g| !nested(g)).cloned().collect();
        let covered = |path: &str, groups: &BTreeSet<String>| {
            let ns = path.rsplit_once('/').map_or("", |(ns, _)| ns);
            ancestors(ns).any(|a| has(groups, a))
        };
        let (groups, exclude) = (&self.groups, &self.exclude);
        self.projects.retain(|p| !covered(p, groups) || has(exclude, p));
        let projects = &self.projects;
        self.exclude.retain(|p| covered(p, groups) && !has(projects, p));
        self
    }

    /// Sets whether a group is included; an exclusion or single choice under it is left alone.
    /// Un-including removes the group, the included groups above it (each looked up) and those
    /// under it (one range of the sorted set: `path/` up to `path0`, `0` following `/`).
    pub fn set_group(&mut self, full_path: &str, included: bool) {
        if included {
            self.groups.insert(full_path.to_owned());
            return;
        }
        for above in ancestors(full_path) {
            work::count(1);
            self.groups.remove(above);
        }
        let under: Vec<String> = self.groups.range(format!("{full_path}/")..format!("{full_path}0")).cloned().collect();
        work::count(1 + under.len() as u64);
        for g in under {
            self.groups.remove(&g);
        }
    }

    /// Sets whether a project is included: through its group where one covers it (by lifting an
    /// exclusion), else as a single project.
    pub fn set_project(&mut self, project: &Project, included: bool) {
        let path = &project.path_with_namespace;
        let covered = self.covering_group(project.namespace()).is_some();
        match (covered, included) {
            (true, true) => {
                self.exclude.remove(path);
            }
            (true, false) => {
                self.exclude.insert(path.clone());
                self.projects.remove(path);
            }
            (false, true) => {
                self.projects.insert(path.clone());
            }
            (false, false) => {
                self.projects.remove(path);
            }
        }
    }
}

/// What a page or the API shows of one project: the snapshot's facts and the selection applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectView {
    pub path_with_namespace: String,
    pub access_level: u8,
    pub archived: bool,
    pub readable: bool,
    pub included: bool,
    pub new: bool,
    pub problem: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupView {
    pub full_path: String,
    pub access_level: u8,
    pub included: bool,
}

impl ProjectView {
    pub fn of(project: &Project, selection: &Selection) -> Self {
        ProjectView {
            path_with_namespace: project.path_with_namespace.clone(),
            access_level: project.access_level,
            archived: project.archived,
            readable: project.readable(),
            included: selection.includes(project),
            new: project.new,
            problem: project.problem(),
        }
    }
}

/// Which projects a list shows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    /// Part of the path or name, any case.
    pub search: String,
    pub role: RoleFilter,
    pub show_archived: bool,
    /// Only projects under this group.
    pub group: Option<String>,
    /// Only included projects.
    pub included_only: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RoleFilter {
    #[default]
    Any,
    /// Roles that read what Onramp needs.
    Readable,
    /// Too low to read a private project.
    Unreadable,
    AtLeast(u8),
}

impl RoleFilter {
    /// From a query value: `readable`, `unreadable`, `30`, `40`, `50`; anything else is "any".
    pub fn parse(value: &str) -> Self {
        match value {
            "readable" => RoleFilter::Readable,
            "unreadable" => RoleFilter::Unreadable,
            other => match other.parse::<u8>() {
                Ok(level) if [10, 20, 30, 40, 50].contains(&level) => RoleFilter::AtLeast(level),
                _ => RoleFilter::Any,
            },
        }
    }

    pub fn as_query(&self) -> String {
        match self {
            RoleFilter::Any => String::new(),
            RoleFilter::Readable => "readable".into(),
            RoleFilter::Unreadable => "unreadable".into(),
            RoleFilter::AtLeast(level) => level.to_string(),
        }
    }

    fn admits_level(&self, level: u8, readable: bool) -> bool {
        match self {
            RoleFilter::Any => true,
            RoleFilter::Readable => readable,
            RoleFilter::Unreadable => !readable,
            RoleFilter::AtLeast(min) => level >= *min,
        }
    }
}

/// Lower-cased for a search that ignores case (Unicode-aware, no byte offsets).
fn folded(text: &str) -> String {
    text.to_lowercase()
}

impl Filter {
    /// From a query's parameters: `q` (or `search`), `role`, `archived` (`1`/`true`/`on` shows
    /// archived projects, anything else hides them; absent: `archived_by_default`), `group`,
    /// `included`.
    pub fn from_query(param: impl Fn(&str) -> Option<String>, archived_by_default: bool) -> Self {
        let flag = |k: &str| param(k).map(|v| matches!(v.as_str(), "1" | "true" | "on"));
        Filter {
            search: param("q").or_else(|| param("search")).unwrap_or_default(),
            role: RoleFilter::parse(&param("role").unwrap_or_default()),
            show_archived: flag("archived").unwrap_or(archived_by_default),
            group: param("group").filter(|g| !g.is_empty()),
            included_only: flag("included").unwrap_or(false),
        }
    }

    /// The search as lists compare it: trimmed and lower-cased, once per list.
    pub fn needle(&self) -> String {
        folded(self.search.trim())
    }

    /// Whether a project passes. Lower-cases its path and name for the search: in a loop over a
    /// snapshot, use [`Listed::projects`], which lower-cased them once.
    pub fn admits(&self, project: &Project, selection: &Selection) -> bool {
        let needle = self.needle();
        self.admits_but_search(project, selection)
            && (needle.is_empty()
                || folded(&project.path_with_namespace).contains(&needle)
                || folded(&project.name).contains(&needle))
    }

    fn admits_but_search(&self, project: &Project, selection: &Selection) -> bool {
        (self.show_archived || !project.archived)
            && self.role.admits_level(project.access_level, project.readable())
            && self.group.as_deref().is_none_or(|g| within(g, project.namespace()))
            && (!self.included_only || selection.includes(project))
    }

    pub fn admits_group(&self, group: &Group) -> bool {
        let needle = self.needle();
        self.admits_group_but_search(group)
            && (needle.is_empty()
                || folded(&group.full_path).contains(&needle)
                || folded(&group.name).contains(&needle))
    }

    fn admits_group_but_search(&self, group: &Group) -> bool {
        self.role.admits_level(group.access_level, group.access_level >= REPORTER)
            && self.group.as_deref().is_none_or(|g| within(g, &group.full_path))
    }
}

/// A snapshot ready to be listed many times: each path and name lower-cased once (when it is
/// read), so a search lower-cases only its own text. What the snapshot cache keeps.
#[derive(Debug, Default)]
pub struct Listed {
    pub snapshot: Snapshot,
    /// The store's version of this snapshot (0 where none is known).
    pub version: i64,
    /// (path, name) of each project, lower-cased, in the snapshot's order.
    projects: Vec<(String, String)>,
    groups: Vec<(String, String)>,
}

impl Listed {
    pub fn new(snapshot: Snapshot) -> Self {
        let projects = snapshot.projects.iter().map(|p| (folded(&p.path_with_namespace), folded(&p.name))).collect();
        let groups = snapshot.groups.iter().map(|g| (folded(&g.full_path), folded(&g.name))).collect();
        Listed { snapshot, version: 0, projects, groups }
    }

    /// The projects `filter` admits, in order.
    pub fn projects<'a>(
        &'a self,
        filter: &'a Filter,
        selection: &'a Selection,
    ) -> impl Iterator<Item = &'a Project> + 'a {
        let needle = filter.needle();
        self.snapshot.projects.iter().zip(&self.projects).filter_map(move |(p, (path, name))| {
            let found = needle.is_empty() || path.contains(&needle) || name.contains(&needle);
            (found && filter.admits_but_search(p, selection)).then_some(p)
        })
    }

    /// The groups `filter` admits, in order.
    pub fn groups<'a>(&'a self, filter: &'a Filter) -> impl Iterator<Item = &'a Group> + 'a {
        let needle = filter.needle();
        self.snapshot.groups.iter().zip(&self.groups).filter_map(move |(g, (path, name))| {
            let found = needle.is_empty() || path.contains(&needle) || name.contains(&needle);
            (found && filter.admits_group_but_search(g)).then_some(g)
        })
    }

    /// About how many bytes of memory this holds (for the cache's bound).
    pub fn bytes(&self) -> usize {
        let project = |p: &Project| {
            std::mem::size_of::<Project>() + 2 * (p.path_with_namespace.len() + p.name.len()) + p.visibility.len()
        };
        let group = |g: &Group| std::mem::size_of::<Group>() + 2 * (g.full_path.len() + g.name.len());
        std::mem::size_of::<Self>()
            + self.snapshot.projects.iter().map(project).sum::<usize>()
            + self.snapshot.groups.iter().map(group).sum::<usize>()
            + (self.projects.len() + self.groups.len()) * 2 * std::mem::size_of::<String>()
    }
}

/// The most items one page of a list holds (`GET …/scope`'s most and default `per_page`). A
/// larger size asked for is clamped to this, and the answer says so.
pub const MAX_PER_PAGE: usize = 10_000;

/// One page of a filtered list: the items, the page (from 1) and how many matched in all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub page: usize,
    pub per_page: usize,
    pub total: usize,
}

impl<T> Page<T> {
    pub fn of<'a, U: 'a>(
        all: impl Iterator<Item = &'a U>,
        page: usize,
        per_page: usize,
        map: impl Fn(&U) -> T,
    ) -> Self {
        let per_page = per_page.clamp(1, MAX_PER_PAGE);
        let page = page.max(1);
        let mut total = 0;
        let mut items = Vec::new();
        let first = (page - 1).saturating_mul(per_page);
        for item in all {
            if total >= first && items.len() < per_page {
                items.push(map(item));
            }
            total += 1;
        }
        Page { items, page, per_page, total }
    }

    pub fn pages(&self) -> usize {
        self.total.div_ceil(self.per_page).max(1)
    }

    /// The page after this one, when there is one (of the clamped size).
    pub fn next(&self) -> Option<usize> {
        (self.page < self.pages()).then_some(self.page + 1)
    }
}

/// A count read from `x-total`: exact, or "10,000+" where GitLab leaves the total out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Count {
    Exact(u64),
    #[serde(deserialize_with = "at_least")]
    AtLeast(u64),
}

fn at_least<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let text = String::deserialize(d)?;
    text.trim_end_matches('+').parse().map_err(serde::de::Error::custom)
}

/// Where GitLab leaves `x-total` out, there are more than this many.
pub const UNCOUNTED_ABOVE: u64 = 10_000;

impl Serialize for Count {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Count::Exact(n) => s.serialize_u64(*n),
            Count::AtLeast(n) => s.serialize_str(&format!("{n}+")),
        }
    }
}

impl Default for Count {
    fn default() -> Self {
        Count::Exact(0)
    }
}

impl std::ops::Add for Count {
    type Output = Count;
    fn add(self, other: Count) -> Count {
        match (self, other) {
            (Count::Exact(a), Count::Exact(b)) => Count::Exact(a.saturating_add(b)),
            (a, b) => Count::AtLeast(a.value().saturating_add(b.value())),
        }
    }
}

impl Count {
    pub fn value(self) -> u64 {
        match self {
            Count::Exact(n) | Count::AtLeast(n) => n,
        }
    }

    /// From an answer's `x-total` (absent: more than GitLab counts). `None` for a value that is
    /// not a number.
    pub fn from_header(total: Option<&str>) -> Option<Count> {
        match total {
            None => Some(Count::AtLeast(UNCOUNTED_ABOVE)),
            Some(text) => text.trim().parse().ok().map(Count::Exact),
        }
    }

    /// "1,234" or "10,000+".
    pub fn label(self) -> String {
        let digits = self.value().to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        if matches!(self, Count::AtLeast(_)) {
            out.push('+');
        }
        out
    }
}

/// The preview of one project over the last [`PREVIEW_DAYS`] days.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviewRow {
    pub path_with_namespace: String,
    pub merge_requests_opened: Count,
    pub merge_requests_merged: Count,
    pub pipelines: Count,
    pub deployments: Count,
    /// Why (part of) it could not be read, and what to do.
    pub problem: Option<String>,
    /// The wizard step that fixes the problem, when one does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix_step: Option<u8>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub merge_requests_opened: Count,
    pub merge_requests_merged: Count,
    pub pipelines: Count,
    pub deployments: Count,
}

/// The preview: `GET …/scope/preview`'s JSON.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preview {
    pub days: u32,
    pub projects: Vec<PreviewRow>,
    pub totals: Totals,
    /// Included projects in all; only the first [`PREVIEW_MAX_PROJECTS`] are counted.
    pub included: usize,
    /// Unix seconds.
    pub computed_at: i64,
}

pub const PREVIEW_DAYS: u32 = 90;

/// A preview counts at most this many projects (four requests each).
pub const PREVIEW_MAX_PROJECTS: usize = 200;

impl Preview {
    pub fn new(projects: Vec<PreviewRow>, included: usize, computed_at: i64) -> Self {
        let mut totals = Totals::default();
        for row in &projects {
            totals.merge_requests_opened = totals.merge_requests_opened + row.merge_requests_opened;
            totals.merge_requests_merged = totals.merge_requests_merged + row.merge_requests_merged;
            totals.pipelines = totals.pipelines + row.pipelines;
            totals.deployments = totals.deployments + row.deployments;
        }
        Preview { days: PREVIEW_DAYS, projects, totals, included, computed_at }
    }
}

/// What one count request's answer means for the preview.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CountAnswer {
    Counted(Count),
    /// Refused: the reason and the step that fixes it, if any.
    Refused(String, Option<u8>),
}

/// Judges the answer to `GET /projects/:id/<what>?per_page=1`.
pub fn judge_count(status: u16, total: Option<&str>, body_error: Option<&str>, project: &str) -> CountAnswer {
    match status {
        200..=299 => match Count::from_header(total) {
            Some(count) => CountAnswer::Counted(count),
            None => CountAnswer::Refused("GitLab answered a count that is not a number.".into(), None),
        },
        401 => CountAnswer::Refused(
            "GitLab refused the token (expired or revoked): replace it on the connection's page.".into(),
            Some(7),
        ),
        403 if body_error == Some("insufficient_scope") => CountAnswer::Refused(
            "The token lacks the `read_api` scope this needs: create a token with the scopes of step 8.".into(),
            Some(8),
        ),
        403 => CountAnswer::Refused(
            format!(
                "GitLab refused to show {project}'s activity to the token's user: ask one of its maintainers for \
                 Reporter, or connect with the token of someone who has it."
            ),
            None,
        ),
        404 => CountAnswer::Refused(
            format!(
                "GitLab no longer shows {project} to the token's user (deleted, moved or membership ended): refresh \
                 the list."
            ),
            None,
        ),
        429 => CountAnswer::Refused("GitLab's rate limit stopped the count: preview again in a minute.".into(), None),
        _ => CountAnswer::Refused(format!("GitLab answered {status} to the count: preview again later."), None),
    }
}

/// How pages of a list come: all known up front (offset pages, fetched concurrently), or one after
/// another (GitLab left the total out: follow `x-next-page` or the `Link` header).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Paging {
    /// The last page's number.
    Known(u32),
    /// The next request's query, or nothing when this was the last page.
    Next(Option<String>),
}

/// Reads the paging of an answer: `x-total-pages` when GitLab gave it, else the `Link` header's
/// `rel="next"` query (only the query is kept: the request goes to the connection's own URL, never
/// to a host an answer names), else `x-next-page`.
pub fn paging(total_pages: Option<&str>, link: Option<&str>, next_page: Option<&str>, query: &str) -> Paging {
    if let Some(pages) = total_pages.and_then(|t| t.trim().parse::<u32>().ok()) {
        return Paging::Known(pages.max(1));
    }
    if let Some(next) = link.and_then(link_next) {
        return Paging::Next(next.split_once('?').map(|(_, q)| q.to_owned()));
    }
    match next_page.map(str::trim).filter(|n| !n.is_empty()).and_then(|n| n.parse::<u32>().ok()) {
        Some(page) => Paging::Next(Some(with_page(query, page))),
        None => Paging::Next(None),
    }
}

/// `query` with its `page` parameter set to `page`.
pub fn with_page(query: &str, page: u32) -> String {
    let mut out: Vec<String> =
        query.split('&').filter(|p| !p.is_empty() && !p.starts_with("page=")).map(str::to_owned).collect();
    out.push(format!("page={page}"));
    out.join("&")
}

/// The target of `rel="next"` in a `Link` header.
pub fn link_next(link: &str) -> Option<&str> {
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim();
            p == "rel=\"next\"" || p == "rel=next"
        });
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then_some(target)
    })
}

/// What to do after an answer, for staying within GitLab's rate limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pace {
    Go,
    /// Wait this many milliseconds, then go on.
    WaitThenGo(u64),
    /// Wait this many milliseconds, then send the same request again.
    Retry(u64),
}

/// The most groups plus projects one discovery keeps: a GitLab that answers more (or never stops
/// paging) fails the run rather than Onramp's memory.
pub const MAX_DISCOVERED: usize = 100_000;

/// Retries of one request refused with 429 before discovery gives up.
pub const MAX_RETRIES: u32 = 6;

/// Below this many requests left in GitLab's window, Onramp waits for the window to end.
pub const LOW_REMAINING: u64 = 20;

/// The longest wait Onramp accepts from GitLab's headers (a longer one fails the run).
pub const MAX_WAIT_MS: u64 = 120_000;

/// Judges an answer's status and rate-limit headers. `attempt` counts earlier 429s of this
/// request; `now` is Unix seconds; `base_ms` the first back-off without `Retry-After`.
pub fn pace(
    status: u16,
    retry_after: Option<&str>,
    remaining: Option<&str>,
    reset: Option<&str>,
    now: i64,
    attempt: u32,
    base_ms: u64,
) -> Pace {
    let seconds = |v: Option<&str>| v.and_then(|v| v.trim().parse::<u64>().ok());
    if status == 429 {
        // GitLab's Projects and Groups APIs answer 429 without headers: back off exponentially.
        let wait = match seconds(retry_after) {
            Some(s) => s.saturating_mul(1000),
            None => base_ms.saturating_mul(1u64 << attempt.min(10)),
        };
        return Pace::Retry(wait.min(MAX_WAIT_MS));
    }
    match (seconds(remaining), reset.and_then(|r| r.trim().parse::<i64>().ok())) {
        (Some(left), Some(reset)) if left < LOW_REMAINING && reset > now => {
            Pace::WaitThenGo((u64::try_from(reset - now).unwrap_or(0).saturating_mul(1000)).min(MAX_WAIT_MS))
        }
        _ => Pace::Go,
    }
}

#[cfg(feature = "client")]
pub use parse::*;

#[cfg(feature = "client")]
mod parse {
    use super::*;
    use serde_json::Value;

    fn level(v: &Value) -> Option<u8> {
        v.as_u64().and_then(|n| u8::try_from(n).ok())
    }

    fn text(v: &Value, key: &str) -> Option<String> {
        v.get(key)?.as_str().map(str::to_owned)
    }

    /// A group's full path: `full_path` where GitLab gives it, else what follows `/groups/` in its
    /// `web_url`.
    fn group_path(v: &Value) -> Option<String> {
        text(v, "full_path").or_else(|| {
            let web = text(v, "web_url")?;
            let after_scheme = web.split_once("://").map_or(web.as_str(), |(_, rest)| rest);
            after_scheme.split_once("/groups/").map(|(_, path)| path.trim_end_matches('/').to_owned())
        })
    }

    fn project(v: &Value, access_level: u8) -> Option<Project> {
        Some(Project {
            id: v.get("id")?.as_u64()?,
            path_with_namespace: text(v, "path_with_namespace")?,
            name: text(v, "name").unwrap_or_default(),
            access_level,
            archived: v.get("archived").and_then(Value::as_bool).unwrap_or(false),
            visibility: text(v, "visibility").unwrap_or_else(|| "private".into()),
            new: false,
        })
    }

    /// One page of `GET /personal_access_tokens/self/associations` (GitLab 17.4+). Entries
    /// without what Onramp needs are skipped.
    pub fn parse_associations(body: &Value) -> Option<(Vec<Group>, Vec<Project>)> {
        let groups = body.get("groups")?.as_array()?;
        let projects = body.get("projects")?.as_array()?;
        let groups = groups
            .iter()
            .filter_map(|g| {
                Some(Group {
                    id: g.get("id")?.as_u64()?,
                    full_path: group_path(g)?,
                    name: text(g, "name").unwrap_or_default(),
                    access_level: g.get("access_levels").and_then(level).unwrap_or(0),
                })
            })
            .collect();
        let projects = projects
            .iter()
            .filter_map(|p| {
                let levels = p.get("access_levels");
                let of = |k: &str| levels.and_then(|l| l.get(k)).and_then(level).unwrap_or(0);
                project(p, of("project_access_level").max(of("group_access_level")))
            })
            .collect();
        Some((groups, projects))
    }

    /// One page of `GET /groups`: the groups, without the user's level (the caller knows which
    /// `min_access_level` it asked for).
    pub fn parse_groups(body: &Value, access_level: u8) -> Option<Vec<Group>> {
        Some(
            body.as_array()?
                .iter()
                .filter_map(|g| {
                    Some(Group {
                        id: g.get("id")?.as_u64()?,
                        full_path: group_path(g)?,
                        name: text(g, "name").unwrap_or_default(),
                        access_level,
                    })
                })
                .collect(),
        )
    }

    /// One page of `GET /projects?membership=true`: the level is the higher of
    /// `permissions.project_access` and `permissions.group_access`.
    pub fn parse_projects(body: &Value) -> Option<Vec<Project>> {
        Some(
            body.as_array()?
                .iter()
                .filter_map(|p| {
                    let permissions = p.get("permissions");
                    let of = |k: &str| {
                        permissions
                            .and_then(|x| x.get(k))
                            .and_then(|a| a.get("access_level"))
                            .and_then(level)
                            .unwrap_or(0)
                    };
                    project(p, of("project_access").max(of("group_access")))
                })
                .collect(),
        )
    }

    /// Groups seen in the `min_access_level` listings, each with the highest level it was listed
    /// at (GitLab's group list does not say the user's level).
    pub fn merge_levels(listings: Vec<Vec<Group>>) -> Vec<Group> {
        let mut all: Vec<Group> = listings.into_iter().flatten().collect();
        all.sort_by(|a, b| a.full_path.cmp(&b.full_path).then(b.access_level.cmp(&a.access_level)));
        all.dedup_by(|later, first| later.full_path == first.full_path);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(path: &str, level: u8) -> Project {
        Project {
            id: 1,
            path_with_namespace: path.into(),
            name: path.rsplit('/').next().unwrap_or_default().into(),
            access_level: level,
            archived: false,
            visibility: "private".into(),
            new: false,
        }
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_group_covers_its_subgroups_and_nothing_that_only_starts_like_it() {
        assert!(within("acme", "acme"));
        assert!(within("acme", "acme/platform/infra"));
        assert!(!within("acme", "acme-labs"));
        assert!(!within("acme/platform", "acme"));
    }

    #[test]
    fn selection_includes_groups_minus_exclusions_plus_single_projects() {
        let s = Selection {
            groups: set(&["acme/platform"]),
            projects: set(&["jdoe/dotfiles"]),
            exclude: set(&["acme/platform/worker"]),
        };
        assert!(s.includes(&project("acme/platform/api", 40)));
        assert!(s.includes(&project("acme/platform/infra/terraform", 40)), "subgroups are included");
        assert!(!s.includes(&project("acme/platform/worker", 40)));
        assert!(s.includes(&project("jdoe/dotfiles", 50)));
        assert!(!s.includes(&project("acme/website", 40)));
        assert!(s.includes_group("acme/platform/infra"));
        assert!(!s.includes_group("acme"));
    }

    #[test]
    fn toggling_projects_uses_exclusions_inside_included_groups() {
        let mut s = Selection { groups: set(&["acme"]), ..Default::default() };
        let worker = project("acme/platform/worker", 40);
        s.set_project(&worker, false);
        assert_eq!(s.exclude, set(&["acme/platform/worker"]));
        s.set_project(&worker, true);
        assert!(s.exclude.is_empty() && s.projects.is_empty());
        let dotfiles = project("jdoe/dotfiles", 50);
        s.set_project(&dotfiles, true);
        assert_eq!(s.projects, set(&["jdoe/dotfiles"]));
        s.set_project(&dotfiles, false);
        assert!(s.projects.is_empty());
        s.set_group("acme/platform", false);
        assert!(s.groups.is_empty(), "un-including a subgroup of an included group un-includes the cover");
        s.groups = set(&["acme", "acme/platform/infra", "acme/platform-x", "acme/platform/x/y", "other"]);
        s.set_group("acme/platform", false);
        assert_eq!(s.groups, set(&["acme/platform-x", "other"]), "the cover and the subgroups go, a sibling stays");
    }

    #[test]
    fn tidy_drops_what_changes_nothing() {
        let s = Selection {
            groups: set(&["acme", "acme/platform"]),
            projects: set(&["acme/website", "jdoe/dotfiles"]),
            exclude: set(&["other/thing", "acme/platform/worker"]),
        }
        .tidy();
        assert_eq!(s.groups, set(&["acme"]));
        assert_eq!(s.projects, set(&["jdoe/dotfiles"]));
        assert_eq!(s.exclude, set(&["acme/platform/worker"]));
    }

    #[test]
    fn covering_group_is_the_included_ancestor_nearest_the_root() {
        let s = Selection { groups: set(&["acme", "acme/platform", "ünï/cødé"]), ..Default::default() };
        assert_eq!(s.covering_group("acme/platform/infra"), Some("acme"));
        assert_eq!(s.covering_group("acme"), Some("acme"));
        assert_eq!(s.covering_group("acme-labs/x"), None, "a prefix that is not a whole segment covers nothing");
        assert_eq!(s.covering_group("ünï/cødé/sub"), Some("ünï/cødé"), "cut between characters");
        assert_eq!(s.covering_group(""), None);
        assert_eq!(ancestors("a/b/c").collect::<Vec<_>>(), ["a", "a/b", "a/b/c"]);
        let deep = vec!["x"; MAX_GROUP_SEGMENTS + 5].join("/");
        assert_eq!(ancestors(&deep).count(), MAX_GROUP_SEGMENTS);
        let bad = Selection { groups: set(&[&deep]), ..Default::default() };
        assert!(bad.validate(None).unwrap_err().contains("deeper than GitLab allows"));
    }

    /// 20,000 groups, 20,000 projects and 20,000 exclusions, 4 levels deep: the work counted (path
    /// comparisons and set lookups) grows with the paths times their depth. Comparing every path
    /// with every other, as before, is 20,000² = 400 million for the groups alone.
    #[test]
    fn a_large_selection_costs_work_in_proportion_to_its_paths_and_their_depth() {
        let n = MAX_SELECTED;
        let groups: BTreeSet<String> = (0..n).map(|i| format!("g{}/s{}/t{i}", i % 100, i % 1000)).collect();
        let projects: BTreeSet<String> = (0..n).map(|i| format!("g{}/s{}/t{i}/p", i % 100, i % 1000)).collect();
        let exclude: BTreeSet<String> = (0..n).map(|i| format!("o{}/s/p{i}", i % 100)).collect();
        let s = Selection { groups, projects, exclude };
        let depth = 4;
        let before = work::done();
        let tidied = s.clone().tidy();
        let tidy_work = work::done() - before;
        assert!(tidy_work <= (3 * n * depth) as u64, "tidy: {tidy_work} lookups for {} paths", 3 * n);
        assert_eq!(tidied.groups.len(), n);
        assert!(tidied.projects.is_empty() && tidied.exclude.is_empty(), "covered projects and stray exclusions go");
        // Through the groups, not as single projects (which one lookup would settle).
        let through_groups = Selection { projects: BTreeSet::new(), ..s.clone() };
        let before = work::done();
        let included = s.projects.iter().filter(|p| through_groups.includes(&project(p, 40))).count();
        let include_work = work::done() - before;
        assert_eq!(included, n);
        assert!(include_work <= (n * (depth + 2)) as u64, "includes: {include_work} lookups for {n} projects");
        // The picker un-ticking every group, one by one.
        let mut unticked = s.clone();
        let before = work::done();
        for g in &s.groups {
            unticked.set_group(g, false);
        }
        let untick_work = work::done() - before;
        assert!(unticked.groups.is_empty());
        assert!(untick_work <= (n * (depth + 2)) as u64, "set_group: {untick_work} for {n} groups");
    }

    /// The figure in BENCHMARKS.md ("Selection rules at 20,000 paths"); timed, so never run by
    /// `make test`: `scripts/in-toolchain.sh cargo test -p gitlab --lib -- --ignored --nocapture
    /// selection_rules_timed`.
    #[test]
    #[ignore]
    fn selection_rules_timed() {
        let n = MAX_SELECTED;
        let groups: BTreeSet<String> = (0..n).map(|i| format!("g{}/s{}/t{i}", i % 100, i % 1000)).collect();
        let projects: BTreeSet<String> = (0..n).map(|i| format!("g{}/s{}/t{i}/p", i % 100, i % 1000)).collect();
        let exclude: BTreeSet<String> = (0..n).map(|i| format!("o{}/s/p{i}", i % 100)).collect();
        let s = Selection { groups, projects, exclude };
        let bytes = serde_json::to_string(&s).unwrap().len();
        let start = std::time::Instant::now();
        let tidied = s.clone().tidy();
        let tidy = start.elapsed();
        let through_groups = Selection { projects: BTreeSet::new(), ..s.clone() };
        let start = std::time::Instant::now();
        let included = s.projects.iter().filter(|p| through_groups.includes(&project(p, 40))).count();
        let includes = start.elapsed();
        println!(
            "selection of {bytes} bytes ({} paths): tidy {tidy:?} ({} groups kept), includes over {n} projects {includes:?} ({included} included)",
            3 * n,
            tidied.groups.len()
        );
    }

    #[test]
    fn validation_names_the_unknown_path() {
        let snapshot = Snapshot {
            groups: vec![Group { id: 1, full_path: "acme".into(), name: "Acme".into(), access_level: 40 }],
            projects: vec![project("acme/api", 40)],
        };
        let ok = Selection { groups: set(&["acme"]), exclude: set(&["acme/api"]), ..Default::default() };
        assert_eq!(ok.validate(Some(&snapshot)), Ok(()));
        let bad = Selection { groups: set(&["acne"]), ..Default::default() };
        assert!(bad.validate(Some(&snapshot)).unwrap_err().contains("\"acne\""));
        let bad = Selection { projects: set(&["acme/apj"]), ..Default::default() };
        assert!(bad.validate(Some(&snapshot)).unwrap_err().contains("\"acme/apj\""));
        let empty = Selection { projects: set(&[""]), ..Default::default() };
        assert!(empty.validate(None).is_err());
        let unchecked = Selection { groups: set(&["acme"]), ..Default::default() };
        assert_eq!(unchecked.validate(None), Err(NO_SNAPSHOT.to_owned()), "nothing to check against: refused");
    }

    #[test]
    fn a_listed_snapshot_searches_like_the_filter_with_names_lower_cased_once() {
        let mut snapshot = Snapshot {
            groups: vec![Group { id: 1, full_path: "Acme".into(), name: "ÄCME Corp".into(), access_level: 40 }],
            projects: vec![project("Acme/Platform/Ünïcode-API", 40), project("acme/web", 40)],
        };
        snapshot.projects[1].archived = true;
        let listed = Listed::new(snapshot.clone());
        let sel = Selection::default();
        for filter in [
            Filter { search: " ÜNÏCODE ".into(), ..Default::default() },
            Filter { search: "acme".into(), show_archived: true, ..Default::default() },
            Filter { search: "acme".into(), ..Default::default() },
            Filter::default(),
        ] {
            let listed_paths: Vec<_> = listed.projects(&filter, &sel).map(|p| p.id).collect();
            let filtered: Vec<_> = snapshot.projects.iter().filter(|p| filter.admits(p, &sel)).map(|p| p.id).collect();
            assert_eq!(listed_paths, filtered, "{filter:?}");
            assert_eq!(
                listed.groups(&filter).count(),
                snapshot.groups.iter().filter(|g| filter.admits_group(g)).count()
            );
        }
        assert_eq!(listed.groups(&Filter { search: "äcme".into(), ..Default::default() }).count(), 1);
        assert!(listed.bytes() > 100);
    }

    #[test]
    fn guests_cannot_read_private_projects_but_can_read_public_ones() {
        let mut p = project("contractors/portal", GUEST);
        assert!(!p.readable());
        assert!(p.problem().unwrap().contains("Guest"));
        p.visibility = "public".into();
        assert!(p.readable() && p.problem().is_none());
        assert!(project("data/warehouse", REPORTER).readable());
    }

    #[test]
    fn new_projects_are_those_the_previous_snapshot_lacked() {
        let previous = Snapshot { groups: vec![], projects: vec![project("a/x", 40)] };
        let mut now = Snapshot { groups: vec![], projects: vec![project("a/x", 40), project("a/y", 40)] };
        now.mark_new(None);
        assert!(now.projects.iter().all(|p| !p.new), "the first discovery marks nothing new");
        now.mark_new(Some(&previous));
        assert_eq!(now.projects.iter().map(|p| p.new).collect::<Vec<_>>(), [false, true]);
    }

    #[test]
    fn normalise_sorts_and_keeps_the_higher_role() {
        let s = Snapshot { groups: vec![], projects: vec![project("b/x", 10), project("a/x", 20), project("b/x", 30)] }
            .normalise();
        assert_eq!(s.projects.len(), 2);
        assert_eq!(s.project("b/x").unwrap().access_level, 30);
        assert!(s.project("c/x").is_none());
    }

    #[test]
    fn filters_search_any_case_and_hide_archived_unless_asked() {
        let sel = Selection::default();
        let mut p = project("Acme/Platform/Ünïcode-API", 40);
        let f = Filter { search: "ünïcode".into(), ..Default::default() };
        assert!(f.admits(&p, &sel));
        p.archived = true;
        assert!(!f.admits(&p, &sel));
        assert!(Filter { show_archived: true, ..f.clone() }.admits(&p, &sel));
        let guest = project("c/portal", GUEST);
        assert!(Filter { role: RoleFilter::Unreadable, ..Default::default() }.admits(&guest, &sel));
        assert!(!Filter { role: RoleFilter::parse("readable"), ..Default::default() }.admits(&guest, &sel));
        assert_eq!(RoleFilter::parse("35"), RoleFilter::Any);
        assert_eq!(RoleFilter::parse("40"), RoleFilter::AtLeast(40));
    }

    #[test]
    fn pages_count_everything_and_keep_one_page() {
        let items: Vec<u32> = (1..=105).collect();
        let page = Page::of(items.iter(), 3, 50, |n| *n);
        assert_eq!(page.items, vec![101, 102, 103, 104, 105]);
        assert_eq!((page.total, page.pages()), (105, 3));
        assert!(Page::of(items.iter(), 9, 50, |n| *n).items.is_empty());
        assert_eq!(Page::of(items.iter(), 0, 0, |n| *n).items, vec![1], "clamped, never a panic");
        assert_eq!((page.next(), Page::of(items.iter(), 2, 50, |n| *n).next()), (None, Some(3)));
        let big: Vec<u32> = (0..10_050).collect();
        let first = Page::of(big.iter(), 1, 20_000, |n| *n);
        assert_eq!((first.items.len(), first.per_page, first.next()), (MAX_PER_PAGE, MAX_PER_PAGE, Some(2)));
    }

    #[test]
    fn counts_read_x_total_and_say_10000_plus_without_it() {
        assert_eq!(Count::from_header(Some("42")), Some(Count::Exact(42)));
        assert_eq!(Count::from_header(None), Some(Count::AtLeast(10_000)));
        assert_eq!(Count::from_header(Some("many")), None);
        assert_eq!((Count::Exact(3) + Count::AtLeast(10_000)).label(), "10,003+");
        assert_eq!(Count::Exact(1234567).label(), "1,234,567");
        assert_eq!(serde_json::to_string(&Count::AtLeast(10_000)).unwrap(), "\"10000+\"");
        assert_eq!(serde_json::from_str::<Count>("\"10000+\"").unwrap(), Count::AtLeast(10_000));
        assert_eq!(serde_json::from_str::<Count>("7").unwrap(), Count::Exact(7));
    }

    #[test]
    fn refused_counts_say_why_and_where_to_fix() {
        assert_eq!(judge_count(200, Some("5"), None, "a/b"), CountAnswer::Counted(Count::Exact(5)));
        match judge_count(403, None, Some("insufficient_scope"), "a/b") {
            CountAnswer::Refused(m, Some(8)) => assert!(m.contains("read_api")),
            other => panic!("{other:?}"),
        }
        match judge_count(403, None, None, "a/b") {
            CountAnswer::Refused(m, None) => assert!(m.contains("Reporter") && m.contains("a/b")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(judge_count(404, None, None, "a/b"), CountAnswer::Refused(m, None) if m.contains("refresh")));
        assert!(matches!(judge_count(401, None, None, "a/b"), CountAnswer::Refused(_, Some(7))));
    }

    #[test]
    fn paging_prefers_the_known_total_then_the_link_then_the_next_page() {
        assert_eq!(paging(Some("7"), None, Some("2"), "per_page=100"), Paging::Known(7));
        let link = "<https://gitlab.example.com/api/v4/projects?id_after=42&pagination=keyset>; rel=\"next\", \
                    <https://gitlab.example.com/api/v4/projects?pagination=keyset>; rel=\"first\"";
        assert_eq!(paging(None, Some(link), None, "x"), Paging::Next(Some("id_after=42&pagination=keyset".into())));
        assert_eq!(
            paging(None, None, Some("3"), "per_page=100&page=2"),
            Paging::Next(Some("per_page=100&page=3".into()))
        );
        assert_eq!(paging(None, Some("<https://h/x?a=1>; rel=\"first\""), Some(""), "q"), Paging::Next(None));
        assert_eq!(link_next("garbage, <unterminated; rel=\"next\""), None);
    }

    #[test]
    fn pace_backs_off_on_429_and_waits_when_the_window_runs_low() {
        assert_eq!(pace(429, Some("3"), None, None, 0, 0, 500), Pace::Retry(3000));
        assert_eq!(pace(429, None, None, None, 0, 0, 500), Pace::Retry(500));
        assert_eq!(pace(429, None, None, None, 0, 3, 500), Pace::Retry(4000));
        assert_eq!(pace(429, None, None, None, 0, 40, 500), Pace::Retry(MAX_WAIT_MS), "capped, no overflow");
        assert_eq!(pace(200, None, Some("5"), Some("110"), 100, 0, 500), Pace::WaitThenGo(10_000));
        assert_eq!(pace(200, None, Some("500"), Some("110"), 100, 0, 500), Pace::Go);
        assert_eq!(pace(200, None, Some("5"), Some("90"), 100, 0, 500), Pace::Go, "a window already over");
        assert_eq!(pace(200, None, Some("x"), Some("y"), 100, 0, 500), Pace::Go);
    }

    #[cfg(feature = "client")] // reading answers is the client's
    #[test]
    fn associations_and_listings_parse_to_the_same_levels() {
        let assoc = serde_json::json!({
            "groups": [{"id": 10, "name": "Acme", "web_url": "https://h/gitlab/groups/acme/platform", "access_levels": 40}],
            "projects": [{"id": 1, "name": "api", "path_with_namespace": "acme/platform/api", "archived": false,
                "visibility": "private", "access_levels": {"project_access_level": null, "group_access_level": 40}}]
        });
        let (groups, projects) = parse_associations(&assoc).unwrap();
        assert_eq!(groups[0].full_path, "acme/platform");
        assert_eq!(projects[0].access_level, 40);
        let listed = serde_json::json!([{"id": 1, "name": "api", "path_with_namespace": "acme/platform/api",
            "archived": false, "visibility": "private",
            "permissions": {"project_access": {"access_level": 20}, "group_access": {"access_level": 40}}}]);
        assert_eq!(parse_projects(&listed).unwrap(), projects);
        assert!(parse_associations(&serde_json::json!({"groups": 1})).is_none());
        let merged = merge_levels(vec![
            parse_groups(&serde_json::json!([{"id": 10, "full_path": "acme"}]), 10).unwrap(),
            parse_groups(&serde_json::json!([{"id": 10, "full_path": "acme"}]), 40).unwrap(),
        ]);
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].access_level, 40);
    }
}
