//! A fake GitLab for tests, end-to-end runs and benchmarks: the API answers Onramp's connection
//! check, discovery and preview need, with GitLab's real status codes and bodies
//! (../shared/gitlab/FACTS.md).
//!
//! The token decides who you are:
//!
//! | token | behaves as |
//! |---|---|
//! | `glpat-good` | active user `jdoe`, all four scopes, member of the small [`World`] (below): Maintainer or more in 2 groups and 5 projects, a lower role in 1 group and 3 projects (`min_access_level` matters) |
//! | `glpat-noscope` | lacks `read_repository` |
//! | `glpat-readuser` | only `read_user`: groups, projects, associations and the counts answer 403 `insufficient_scope` |
//! | `glpat-expired`, `glpat-revoked` | GitLab's 401 bodies for those |
//! | `glpat-blocked` | 403 "Your account has been blocked." on every route |
//! | `glpat-pending`, `glpat-deactivated`, `glpat-unconfirmed`, `glpat-terms`, `glpat-password` | 403 on every route with GitLab's text for an account pending approval, deactivated, with an unconfirmed email, that has not accepted the Terms of Service, or whose password expired |
//! | `glpat-soon` | expires in 10 days |
//! | `glpat-noexpiry` | `expires_at: null` |
//! | `glpat-guest` | Maintainer nowhere: its own tiny world, Guest of `contractors` (no projects in it) and Reporter of `data-team/warehouse` (107) and `data-team/dashboards` (109) |
//! | `glpat-bot` | a project access token's bot user (sees the same world as `glpat-good`) |
//! | `glpat-service` | the service account `onramp-reader` (a bot with a personal token), Maintainer like `glpat-good` |
//! | anything else | 401 `{"message":"401 Unauthorized"}` |
//!
//! Tokens rotate as GitLab's do (`POST /personal_access_tokens/self/rotate`, see [`Tokens`]): the
//! old token is revoked at once, the new one (`glpat-soon-r0001`, …) acts as the same persona with
//! its own id and expiry, and rotating a revoked token revokes its whole family (reuse detection).
//! `glpat-soon` was created 80 days before it expires (a 90-day token).
//!
//! # The world
//!
//! Every persona but `glpat-guest` sees one [`World`] (`FakeGitlab::world`, shared by clones):
//! groups and projects with jdoe's role in each. A group's level is jdoe's direct membership or the
//! one inherited from its parent, the higher of the two; a project's effective level (GitLab's
//! `project_authorizations`) is the highest of `project_access` (direct membership),
//! `group_access` (through its own group chain) and `shared_access` (through a group it is shared
//! with, which no entity shows). The small world (the default):
//!
//! | id | group or project | jdoe's level |
//! |---|---|---|
//! | 10 | group `acme` (public) | 40, direct |
//! | 11 | group `acme/platform` | 40, inherited |
//! | 12 | group `contractors` | 10, direct |
//! | 20, 21 | groups `partner`, `data-team` | not a member |
//! | 101, 102 | `acme/platform/api`, `acme/platform/worker` | 40 through the group |
//! | 103 | `acme/website` (public) | 40 through the group |
//! | 104 | `jdoe/dotfiles` (personal namespace, id 2) | `project_access` 50 |
//! | 105 | `acme/legacy` (archived) | 40 through the group |
//! | 106 | `partner/sdk` | `shared_access` 30: shared with `acme`; entities show no level |
//! | 107 | `data-team/warehouse` | `project_access` 20 |
//! | 108 | `contractors/portal` | 10 through the group: a private project it cannot read |
//! | 30, 110 | group `gitlab-org` and `gitlab-org/gitlab` (public) | not a member: a stranger's, visible |
//!
//! [`FakeGitlab::big`] (`fake-gitlab --groups N --projects M`) replaces it with a generated one;
//! [`World::big`] tells its layout. `POST {prefix}/_fake/projects` with
//! `{"path_with_namespace": "acme/platform/new-service"}` (no token; only the fake has it) adds a
//! private project to an existing group or to `jdoe/`, with the next free id, and answers 201 with
//! it as `/projects` lists it (404 for an unknown namespace, 400 for a bad or taken path); Rust
//! tests call [`FakeGitlab::add_project`].
//!
//! # The API
//!
//! Besides `/metadata`, `/version`, `/user`, `/personal_access_tokens/self` and its `rotate`:
//!
//! - `GET /personal_access_tokens/self/associations` (GitLab 17.4+; 404 `{"error":"404 Not Found"}`
//!   when `legacy` or `no_associations`): as `self_information.rb` and the finders answer it (see
//!   `Listing::associations`): without `min_access_level` everything visible (strangers' public
//!   groups and projects too), with it memberships only; the entities' fields only (no
//!   `archived`, no group `full_path`, a share's levels `null`); newest first; paged
//!   independently, with the *projects'* paging headers.
//! - `GET /groups`: jdoe's groups (all of them, or those with `min_access_level`), without jdoe's
//!   level (GitLab's list does not say it); `order_by` name (default), path or id, `sort`.
//! - `GET /projects`: with `min_access_level` jdoe's projects at that level or more (shares
//!   counted), with `membership=true` all of jdoe's, else every visible one (the stranger's public
//!   project too); `archived` (`true`: only archived ones), `visibility`, `search` (in
//!   `path_with_namespace`, case-insensitive), `permissions: {project_access, group_access}` (the
//!   project's own group chain: `null` for a share, as `project_with_access.rb`) unless
//!   `simple=true` (as GitLab: the simple entity has no permissions). Newest first unless `sort=asc`. Offset
//!   pagination, or keyset with `pagination=keyset&order_by=id` (`sort=asc` pages by `id_after`,
//!   `desc` by `id_before`; only a `Link: rel="next"`, no `x-*` headers; another `order_by`
//!   answers 405).
//! - `GET /projects/:id/merge_requests`, `/pipelines`, `/deployments` (`:id` a number or the
//!   URL-encoded path): `per_page` minimal `{"id": n}` items with `x-total`, filtered by date as
//!   GitLab does (`created_after`/`updated_after` inclusive, see `Listing::counts`). Each project
//!   has, 1 to 30 days old, merge requests `(id*7)%40+1` (`state=merged` two thirds of them,
//!   `opened` the rest, `closed`/`locked` none), pipelines `(id*13)%200` (project 101: 12,000, so
//!   `x-total` is left out), deployments `(id%5)*3` ([`counted`]); and 120 to 319 days old a few
//!   more ([`counted_old`]): the last 90 days hold exactly the first. A private project where jdoe is below Reporter:
//!   403 `{"message":"403 Forbidden"}`; an unknown one or one jdoe is no member of: 404
//!   `{"message":"404 Project Not Found"}`.
//!
//! Offset pages: `per_page` (default 20, at most 100), `page`, `x-page`, `x-per-page`,
//! `x-next-page` (empty on the last page), `x-prev-page`, `x-total` and `x-total-pages` (left out
//! above 10,000 rows, as GitLab does) and a `Link` header keeping the query. A parameter that is not
//! a number, a boolean, a date or an allowed value where GitLab wants one answers 400
//! `{"error":"<name> is invalid"}` or `"... does not have a valid value"`.
//!
//! Rate limits: every API answer carries `RateLimit-Limit: 2000`, `RateLimit-Observed` (API
//! requests in the current fixed 60 s window), `RateLimit-Remaining` (2000 minus that, or
//! `rate_limit_remaining`) and `RateLimit-Reset` (Unix seconds at the window's end), except the
//! plain-text 429s: `rate_limited_path`, `fail_status: Some(429)` and `burst_429_every: Some(n)`
//! (every nth request to `/groups`, `/projects` or the associations answers 429 `Retry later`, with
//! `Retry-After` only if `retry_after_429` is set; the next request goes through).
//!
//! [`FakeGitlab::hits`] records every request's path and query; [`FakeGitlab::hits_to`] counts
//! them by [`Endpoint`]. [`FakeGitlab::hold`] keeps requests to the associations waiting until
//! the test releases them ([`Hold`]).

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
pub use world::World;

pub mod world {
    //! The groups and projects a fake GitLab holds and jdoe's role in each: what discovery lists
    //! and what preview counts. Everything is deterministic.

    use std::collections::HashMap;
    use std::fmt;

    pub const GUEST: u64 = 10;
    pub const REPORTER: u64 = 20;
    pub const DEVELOPER: u64 = 30;
    pub const MAINTAINER: u64 = 40;
    pub const OWNER: u64 = 50;

    /// jdoe's personal namespace: `jdoe/…` projects live in it.
    pub const USER_NAMESPACE_ID: u64 = 2;
    pub const USER_NAMESPACE: &str = "jdoe";

    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
    pub enum Visibility {
        Private,
        Internal,
        Public,
    }

    impl Visibility {
        pub fn as_str(self) -> &'static str {
            match self {
                Visibility::Private => "private",
                Visibility::Internal => "internal",
                Visibility::Public => "public",
            }
        }
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum NamespaceKind {
        Group,
        User,
    }

    impl NamespaceKind {
        pub fn as_str(self) -> &'static str {
            match self {
                NamespaceKind::Group => "group",
                NamespaceKind::User => "user",
            }
        }
    }

    #[derive(Clone, Debug)]
    pub struct Group {
        pub id: u64,
        pub name: String,
        pub path: String,
        pub full_path: String,
        pub parent_id: Option<u64>,
        /// At most its parent's.
        pub visibility: Visibility,
        /// jdoe's own membership of this group.
        pub direct_level: Option<u64>,
        /// jdoe's level here: the direct one or the parent's, the higher (`None`: not a member).
        pub level: Option<u64>,
    }

    #[derive(Clone, Debug)]
    pub struct Project {
        pub id: u64,
        pub name: String,
        pub path: String,
        pub path_with_namespace: String,
        pub namespace_id: u64,
        pub namespace_kind: NamespaceKind,
        pub archived: bool,
        /// At most its group's.
        pub visibility: Visibility,
        /// jdoe's direct membership of the project.
        pub project_access: Option<u64>,
        /// jdoe's level through the project's own group and its ancestors (what GitLab's
        /// `project.group.highest_group_member(user)` finds).
        pub group_access: Option<u64>,
        /// jdoe's level through a group the project is shared with (`project_group_links`: the
        /// lower of the link's `group_access` and jdoe's role in that group). GitLab counts it in
        /// `project_authorizations` (what `min_access_level` filters on) but no entity shows it.
        pub shared_access: Option<u64>,
    }

    impl Project {
        /// jdoe's effective level, as `project_authorizations` holds it: the highest of the
        /// direct membership, the group chain's and a share's.
        pub fn level(&self) -> Option<u64> {
            self.project_access.max(self.group_access).max(self.shared_access)
        }

        /// Whether jdoe sees it at all: a member (any way), or a project that is not private
        /// (`Project.public_or_visible_to_user`: internal projects are visible to every
        /// non-external user, jdoe included).
        pub fn visible(&self) -> bool {
            self.level().is_some() || self.visibility != Visibility::Private
        }

        pub fn namespace_full_path(&self) -> &str {
            self.path_with_namespace.rsplit_once('/').map_or("", |(namespace, _)| namespace)
        }

        /// Whether jdoe may read its merge requests, pipelines and deployments: a member, and at
        /// least Reporter unless the project is internal or public.
        pub fn readable(&self) -> bool {
            self.visible()
                && (self.level().is_some_and(|level| level >= REPORTER) || self.visibility != Visibility::Private)
        }
    }

    /// Why [`World::add_project`] refused.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum AddError {
        NamespaceNotFound,
        InvalidPath,
        Taken,
    }

    impl fmt::Display for AddError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(match self {
                AddError::NamespaceNotFound => "404 Namespace Not Found",
                AddError::InvalidPath => "path is invalid",
                AddError::Taken => "path has already been taken",
            })
        }
    }

    /// Groups and projects, with lookups by id and by path. Projects are kept in id order (keyset
    /// pagination relies on it).
    #[derive(Clone, Debug)]
    pub struct World {
        groups: Vec<Group>,
        projects: Vec<Project>,
        group_at: HashMap<u64, usize>,
        group_by_path: HashMap<String, usize>,
        project_at: HashMap<u64, usize>,
        project_by_path: HashMap<String, usize>,
    }

    impl Default for World {
        fn default() -> Self {
            World::small()
        }
    }

    impl World {
        fn empty() -> Self {
            World {
                groups: Vec::new(),
                projects: Vec::new(),
                group_at: HashMap::new(),
                group_by_path: HashMap::new(),
                project_at: HashMap::new(),
                project_by_path: HashMap::new(),
            }
        }

        /// The world of `glpat-good` and the other Maintainer personas (see the module's table):
        /// with `min_access_level=40`, 2 groups and 5 projects; below, 1 group and 3 projects.
        pub fn small() -> Self {
            use Visibility::{Private, Public};
            let mut w = World::empty();
            w.put_group(10, "Acme", "acme", None, Public, Some(MAINTAINER));
            w.put_group(11, "Platform", "platform", Some(10), Private, None);
            w.put_group(12, "Contractors", "contractors", None, Private, Some(GUEST));
            w.put_group(20, "Partner", "partner", None, Private, None);
            w.put_group(21, "Data team", "data-team", None, Private, None);
            w.put_project(101, Some(11), "api", "API", Private, false, None, None);
            w.put_project(102, Some(11), "worker", "Worker", Private, false, None, None);
            w.put_project(103, Some(10), "website", "Website", Public, false, None, None);
            w.put_project(104, None, "dotfiles", "dotfiles", Private, false, Some(OWNER), None);
            w.put_project(105, Some(10), "legacy", "Legacy", Private, true, None, None);
            // Shared with acme as Developer: jdoe's Maintainer role in acme is capped at 30.
            w.put_project(106, Some(20), "sdk", "SDK", Private, false, None, Some(DEVELOPER));
            w.put_project(107, Some(21), "warehouse", "Warehouse", Private, false, Some(REPORTER), None);
            w.put_project(108, Some(12), "portal", "Portal", Private, false, None, None);
            // A stranger's public group and project (gitlab.com is full of them): jdoe is no
            // member, GitLab lists them wherever it lists what is *visible*.
            w.put_group(30, "GitLab.org", "gitlab-org", None, Public, None);
            w.put_project(110, Some(30), "gitlab", "GitLab", Public, false, None, None);
            w
        }

        /// `glpat-guest`'s world: Guest of one group without projects, Reporter of two projects.
        pub fn guest() -> Self {
            use Visibility::Private;
            let mut w = World::empty();
            w.put_group(12, "Contractors", "contractors", None, Private, Some(GUEST));
            w.put_group(21, "Data team", "data-team", None, Private, None);
            w.put_project(107, Some(21), "warehouse", "Warehouse", Private, false, Some(REPORTER), None);
            w.put_project(109, Some(21), "dashboards", "Dashboards", Private, false, Some(REPORTER), None);
            w
        }

        /// A generated world of `groups` groups (at least 1) and `projects` projects.
        ///
        /// Groups: `org` (id 1000, public, jdoe not a member), then `g1`…`g{groups-1}` (ids
        /// 1000+i), the parent of `gi` being group `(i-1)/5` (`org` for g1–g5), so paths grow like
        /// `org/g3/g17/g87/g440` (depth 4 from `g156` on: `org/g1/g6/g31/g156`). jdoe is Maintainer (40) of
        /// `g1` and `g3`, Developer (30) of `g2` and `g4`, all inherited below; `org` and the
        /// subtree of `g5` are groups jdoe is not in. A group is private when `i%4 == 0`, else as
        /// visible as its parent allows.
        ///
        /// Projects: ids 1…`projects`, path `p{id}`, index `j = id-1`:
        /// - `j%1000 == 7`: `jdoe/p{id}`, `project_access` 50;
        /// - else `j%20 == 19`: Guest (10, direct) of a private project in a group jdoe is not in:
        ///   listed but unreadable (403 on the counts);
        /// - else `j%10 == 3`: Reporter (20, direct) of a project in a group jdoe is not in;
        /// - else in one of jdoe's groups (round robin), 30 or 40 through it, with a direct
        ///   `project_access` 40 as well when `j%7 == 0`;
        /// - archived when `j%50 == 49`; internal when `j%10 == 1` and public when `j%10 == 5`,
        ///   at most as visible as the group.
        pub fn big(groups: usize, projects: usize) -> Self {
            use Visibility::{Internal, Private, Public};
            let mut w = World::empty();
            for i in 0..groups.max(1) {
                let id = 1000 + i as u64;
                if i == 0 {
                    w.put_group(id, "org", "org", None, Public, None);
                    continue;
                }
                let parent = 1000 + ((i - 1) / 5) as u64;
                let level = match i {
                    1 | 3 => Some(MAINTAINER),
                    2 | 4 => Some(DEVELOPER),
                    _ => None,
                };
                let visibility = if i.is_multiple_of(4) { Private } else { Public };
                let name = format!("g{i}");
                w.put_group(id, &name, &name, Some(parent), visibility, level);
            }
            let member: Vec<u64> = w.groups.iter().filter(|g| g.level.is_some()).map(|g| g.id).collect();
            let outside: Vec<u64> = w.groups.iter().filter(|g| g.level.is_none()).map(|g| g.id).collect();
            let pick = |list: &[u64], j: usize| list.get(j % list.len().max(1)).copied().unwrap_or(1000);
            for j in 0..projects {
                let id = j as u64 + 1;
                let wanted = match j % 10 {
                    1 => Internal,
                    5 => Public,
                    _ => Private,
                };
                let (namespace, project_access, visibility) = if j % 1000 == 7 {
                    (None, Some(OWNER), wanted)
                } else if j % 20 == 19 {
                    (Some(pick(&outside, j)), Some(GUEST), Private)
                } else if j % 10 == 3 {
                    (Some(pick(&outside, j)), Some(REPORTER), wanted)
                } else if member.is_empty() {
                    (Some(pick(&outside, j)), Some(if j.is_multiple_of(2) { DEVELOPER } else { MAINTAINER }), wanted)
                } else {
                    (Some(pick(&member, j)), j.is_multiple_of(7).then_some(MAINTAINER), wanted)
                };
                let path = format!("p{id}");
                w.put_project(id, namespace, &path, &path, visibility, j % 50 == 49, project_access, None);
            }
            w
        }

        /// In id order.
        pub fn groups(&self) -> &[Group] {
            &self.groups
        }

        /// In id order.
        pub fn projects(&self) -> &[Project] {
            &self.projects
        }

        pub fn group(&self, id: u64) -> Option<&Group> {
            self.group_at.get(&id).and_then(|&i| self.groups.get(i))
        }

        /// By full path, case-insensitively as GitLab finds it.
        pub fn group_by_path(&self, full_path: &str) -> Option<&Group> {
            self.group_by_path.get(&full_path.to_ascii_lowercase()).and_then(|&i| self.groups.get(i))
        }

        /// By id (all digits) or by `path_with_namespace`, as GitLab's `:id` in a route.
        pub fn project(&self, id_or_path: &str) -> Option<&Project> {
            let index = match id_or_path.parse::<u64>() {
                Ok(id) if id_or_path.bytes().all(|b| b.is_ascii_digit()) => self.project_at.get(&id),
                _ => self.project_by_path.get(&id_or_path.to_ascii_lowercase()),
            };
            index.and_then(|&i| self.projects.get(i))
        }

        /// Adds a private, unarchived project at `path_with_namespace` in an existing group (or
        /// `jdoe/`), with the next free id; jdoe's level is the group's (Owner in `jdoe/`).
        pub fn add_project(&mut self, path_with_namespace: &str) -> Result<u64, AddError> {
            let Some((namespace, path)) = path_with_namespace.rsplit_once('/') else {
                return Err(AddError::InvalidPath);
            };
            let (namespace, project_access) = if namespace.eq_ignore_ascii_case(USER_NAMESPACE) {
                (None, Some(OWNER))
            } else {
                (Some(self.group_by_path(namespace).ok_or(AddError::NamespaceNotFound)?.id), None)
            };
            let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
            if path.is_empty()
                || path.len() > 255
                || path.starts_with(['-', '.'])
                || path.ends_with(".git")
                || path.ends_with(".atom")
                || !path.chars().all(valid)
            {
                return Err(AddError::InvalidPath);
            }
            if self.project(path_with_namespace).is_some() {
                return Err(AddError::Taken);
            }
            let id = self.projects.last().map_or(1, |p| p.id + 1);
            self.put_project(id, namespace, path, path, Visibility::Private, false, project_access, None);
            Ok(id)
        }

        fn put_group(
            &mut self,
            id: u64,
            name: &str,
            path: &str,
            parent_id: Option<u64>,
            visibility: Visibility,
            direct_level: Option<u64>,
        ) {
            let parent = parent_id.and_then(|p| self.group(p));
            let full_path = parent.map_or_else(|| path.to_owned(), |p| format!("{}/{path}", p.full_path));
            let level = direct_level.max(parent.and_then(|p| p.level));
            let visibility = parent.map_or(visibility, |p| visibility.min(p.visibility));
            self.group_at.insert(id, self.groups.len());
            self.group_by_path.insert(full_path.to_ascii_lowercase(), self.groups.len());
            let (name, path) = (name.to_owned(), path.to_owned());
            self.groups.push(Group { id, name, path, full_path, parent_id, visibility, direct_level, level });
        }

        /// `namespace`: a group's id, or `None` for `jdoe/`. `shared`: jdoe's level through a
        /// group the project is shared with. Ids must come in increasing order.
        #[allow(clippy::too_many_arguments)]
        fn put_project(
            &mut self,
            id: u64,
            namespace: Option<u64>,
            path: &str,
            name: &str,
            visibility: Visibility,
            archived: bool,
            project_access: Option<u64>,
            shared: Option<u64>,
        ) {
            let group = namespace.and_then(|g| self.group(g));
            let (namespace_id, namespace_kind, namespace_path, group_level, visibility) = match group {
                Some(g) => (g.id, NamespaceKind::Group, g.full_path.as_str(), g.level, visibility.min(g.visibility)),
                None => (USER_NAMESPACE_ID, NamespaceKind::User, USER_NAMESPACE, None, visibility),
            };
            let path_with_namespace = format!("{namespace_path}/{path}");
            self.project_at.insert(id, self.projects.len());
            self.project_by_path.insert(path_with_namespace.to_ascii_lowercase(), self.projects.len());
            self.projects.push(Project {
                id,
                name: name.to_owned(),
                path: path.to_owned(),
                path_with_namespace,
                namespace_id,
                namespace_kind,
                archived,
                visibility,
                project_access,
                group_access: group_level,
                shared_access: shared,
            });
        }
    }
}

use world::{Group, Project};

/// One request the fake saw (never the token itself: only whether one came).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    pub path: String,
    /// The query string as sent (`""` without one): tests assert which page or cursor was asked.
    pub query: String,
    pub with_token: bool,
}

/// What a request asked for, as [`FakeGitlab::hits_to`] counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Metadata,
    Version,
    User,
    TokenSelf,
    Rotate,
    Associations,
    Groups,
    Projects,
    MergeRequests,
    Pipelines,
    Deployments,
    /// `POST {prefix}/_fake/projects`.
    FakeControl,
    /// Anything else: web pages, unknown API routes.
    Other,
}

impl Endpoint {
    /// The endpoint of an API path (after `/api/v4`), and the `:id` of a project route.
    fn route(api: &str) -> (Endpoint, Option<&str>) {
        let endpoint = match api {
            "/metadata" => Endpoint::Metadata,
            "/version" => Endpoint::Version,
            "/user" => Endpoint::User,
            "/personal_access_tokens/self" => Endpoint::TokenSelf,
            "/personal_access_tokens/self/rotate" => Endpoint::Rotate,
            "/personal_access_tokens/self/associations" => Endpoint::Associations,
            "/groups" => Endpoint::Groups,
            "/projects" => Endpoint::Projects,
            _ => {
                let Some((id, what)) = api.strip_prefix("/projects/").and_then(|rest| rest.split_once('/')) else {
                    return (Endpoint::Other, None);
                };
                let endpoint = match what {
                    "merge_requests" => Endpoint::MergeRequests,
                    "pipelines" => Endpoint::Pipelines,
                    "deployments" => Endpoint::Deployments,
                    _ => return (Endpoint::Other, None),
                };
                return (endpoint, Some(id));
            }
        };
        (endpoint, None)
    }

    /// Whether `burst_429_every` counts requests to it.
    fn is_listing(self) -> bool {
        matches!(self, Endpoint::Groups | Endpoint::Projects | Endpoint::Associations)
    }
}

#[derive(Clone, Default)]
pub struct FakeGitlab {
    /// Relative URL root, e.g. `/gitlab` ("" for the root).
    pub prefix: String,
    /// GitLab 14.x: no `/metadata` (15.2), no `/personal_access_tokens/self` (15.5) and no
    /// associations (17.4).
    pub legacy: bool,
    /// GitLab before 17.4: no `/personal_access_tokens/self/associations` (404).
    pub no_associations: bool,
    /// GitLab's configured external URL (`external_url` in gitlab.rb): what `web_url` is built
    /// from. `None`: the Host of the request, as a GitLab reached by its own name.
    pub external_url: Option<String>,
    /// A private instance: every web page but the sign-in page redirects (302) to it.
    pub sign_in_only: bool,
    /// GitLab 15.2–15.4: `/metadata` but no `/personal_access_tokens/self`, which answers this
    /// status (401 or 404) even for a good token.
    pub no_token_self: Option<u16>,
    /// This API path alone answers 429 in plain text without rate-limit headers (gitlab.com's
    /// `/groups` limit).
    pub rate_limited_path: Option<&'static str>,
    /// Every nth request to `/groups`, `/projects` or the associations (counted together) answers
    /// 429 `Retry later` in plain text without rate-limit headers; the others go through.
    pub burst_429_every: Option<usize>,
    /// With `burst_429_every`: the `Retry-After` seconds of those 429s (none when `None`).
    pub retry_after_429: Option<u64>,
    /// `RateLimit-Remaining` on every answer, whatever was observed (a client that should slow
    /// down).
    pub rate_limit_remaining: Option<u64>,
    /// Added before every answer.
    pub latency: Duration,
    /// Holds every request to the associations (the first request of a discovery on 17.4+)
    /// until [`Hold::release`]: a GitLab that is slow for as long as a test needs, without
    /// timing.
    pub hold: Option<Hold>,
    /// Answer every API call with this status (429 with a text body, 5xx with HTML).
    pub fail_status: Option<u16>,
    /// Redirect every API call to this origin (keeping the path).
    pub redirect_to: Option<String>,
    /// What a rotation request gets.
    pub rotation: RotationMode,
    /// The longest token lifetime this instance allows (an admin's setting): a rotation asking for
    /// a later `expires_at` gets 400 and revokes nothing.
    pub max_lifetime_days: Option<i64>,
    /// Tokens issued by rotation and tokens revoked: GitLab's memory.
    pub tokens: Arc<Mutex<Tokens>>,
    /// The groups and projects every persona but `glpat-guest` sees.
    pub world: Arc<Mutex<World>>,
    /// API requests in the current rate-limit window.
    pub rate_window: Arc<Mutex<RateWindow>>,
    /// Requests to the listings `burst_429_every` counts.
    pub listing_requests: Arc<AtomicUsize>,
    pub hits: Arc<Mutex<Vec<Hit>>>,
    /// Requests being answered right now, and the most there ever were at once.
    pub in_flight: Arc<(AtomicUsize, AtomicUsize)>,
}

/// A gate for [`FakeGitlab::hold`]: requests wait at it until it is released; tests wait for
/// requests to arrive at it.
#[derive(Clone)]
pub struct Hold(Arc<(tokio::sync::watch::Sender<bool>, tokio::sync::watch::Sender<usize>)>);

impl Default for Hold {
    fn default() -> Self {
        Hold(Arc::new((tokio::sync::watch::Sender::new(false), tokio::sync::watch::Sender::new(0))))
    }
}

impl Hold {
    /// Lets every held request (and every later one) through.
    pub fn release(&self) {
        self.0 .0.send_replace(true);
    }

    /// Requests that arrived at the gate so far.
    pub fn arrived(&self) -> usize {
        *self.0 .1.borrow()
    }

    /// Waits until `n` requests arrived at the gate.
    pub async fn until_arrived(&self, n: usize) {
        let _ = self.0 .1.subscribe().wait_for(|a| *a >= n).await;
    }

    async fn pass(&self) {
        self.0 .1.send_modify(|a| *a += 1);
        let _ = self.0 .0.subscribe().wait_for(|open| *open).await;
    }
}

/// A fixed 60-second window of API requests, as `RateLimit-*` headers tell it.
#[derive(Debug, Default)]
pub struct RateWindow {
    start: u64,
    observed: u64,
}

const RATE_LIMIT: u64 = 2000;
const RATE_WINDOW_SECONDS: u64 = 60;

/// How the double answers `POST /personal_access_tokens/self/rotate`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RotationMode {
    /// As GitLab does.
    #[default]
    Answer,
    /// Rotates (the old token is revoked), then never answers: the client times out. The answer
    /// with the new token is lost.
    LoseAnswer,
    /// Never answers and rotates nothing (a proxy that swallowed the request).
    Hang,
    /// Answers 502 from a proxy after rotating.
    BadGatewayAfter,
}

/// The tokens a GitLab has issued by rotation, and the ones it revoked.
#[derive(Debug, Default)]
pub struct Tokens {
    issued: HashMap<String, Issued>,
    revoked: HashSet<String>,
    /// Family of every token that was ever rotated or issued: the persona token it descends from.
    family: HashMap<String, String>,
    /// Rotations performed (not requests: a refused one is not counted).
    pub rotations: usize,
    /// Families revoked because a revoked token was rotated again.
    pub families_revoked: usize,
}

#[derive(Clone, Debug)]
struct Issued {
    persona: String,
    id: i64,
    expires_at: String,
    created_at: String,
}

impl Tokens {
    /// Whether GitLab would accept this token now.
    pub fn is_active(&self, token: &str) -> bool {
        !self.revoked.contains(token)
    }

    /// The newest token of the family `persona` descends from, if it was ever rotated.
    pub fn newest_of(&self, persona: &str) -> Option<String> {
        self.issued.iter().filter(|(_, i)| i.persona == persona).max_by_key(|(_, i)| i.id).map(|(t, _)| t.clone())
    }
}

/// Counts a request as in flight until it is answered.
struct InFlight(Arc<(AtomicUsize, AtomicUsize)>);

impl InFlight {
    fn enter(counters: &Arc<(AtomicUsize, AtomicUsize)>) -> Self {
        let now = counters.0.fetch_add(1, Ordering::SeqCst) + 1;
        counters.1.fetch_max(now, Ordering::SeqCst);
        InFlight(counters.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `glpat-guest`'s world, which nothing changes.
fn guest_world() -> &'static World {
    static GUEST: OnceLock<World> = OnceLock::new();
    GUEST.get_or_init(World::guest)
}

impl FakeGitlab {
    /// A GitLab whose world is [`World::big`]`(groups, projects)`.
    pub fn big(groups: usize, projects: usize) -> FakeGitlab {
        FakeGitlab { world: Arc::new(Mutex::new(World::big(groups, projects))), ..FakeGitlab::default() }
    }

    pub fn router(self) -> Router {
        Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: axum::body::Bytes| {
            let fake = self.clone();
            async move { fake.answer(method, uri, headers, body).await }
        })
    }

    /// The most requests this GitLab was answering at the same moment.
    pub fn most_at_once(&self) -> usize {
        self.in_flight.1.load(Ordering::SeqCst)
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// How many requests asked for `endpoint`.
    pub fn hits_to(&self, endpoint: Endpoint) -> usize {
        self.hits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|h| self.endpoint_of(&h.path) == endpoint)
            .count()
    }

    /// What a request for `path` (with the prefix) asks for.
    pub fn endpoint_of(&self, path: &str) -> Endpoint {
        let Some(rest) = path.strip_prefix(self.prefix.as_str()) else { return Endpoint::Other };
        if rest == "/_fake/projects" {
            return Endpoint::FakeControl;
        }
        rest.strip_prefix("/api/v4").map_or(Endpoint::Other, |api| Endpoint::route(api).0)
    }

    /// How many times this GitLab rotated a token.
    pub fn rotations(&self) -> usize {
        self.tokens.lock().unwrap_or_else(|e| e.into_inner()).rotations
    }

    /// Adds a project to the world, as `POST {prefix}/_fake/projects` does: its id.
    pub fn add_project(&self, path_with_namespace: &str) -> Result<u64, String> {
        self.world.lock().unwrap_or_else(|e| e.into_inner()).add_project(path_with_namespace).map_err(|e| e.to_string())
    }

    fn with_world<R>(&self, persona: &str, f: impl FnOnce(&World) -> R) -> R {
        if persona == "glpat-guest" {
            f(guest_world())
        } else {
            f(&self.world.lock().unwrap_or_else(|e| e.into_inner()))
        }
    }

    /// What `web_url`s start with.
    fn web(&self, host: &str) -> String {
        match &self.external_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{host}{}", self.prefix),
        }
    }

    /// Counts an API request in the current window: (requests observed in it, its end).
    fn observe(&self) -> (u64, u64) {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let start = now - now % RATE_WINDOW_SECONDS;
        let mut window = self.rate_window.lock().unwrap_or_else(|e| e.into_inner());
        if window.start != start {
            *window = RateWindow { start, observed: 0 };
        }
        window.observed += 1;
        (window.observed, start + RATE_WINDOW_SECONDS)
    }

    fn with_rate_headers(&self, mut response: Response, (observed, reset): (u64, u64)) -> Response {
        let remaining = self.rate_limit_remaining.unwrap_or_else(|| RATE_LIMIT.saturating_sub(observed));
        let headers = response.headers_mut();
        for (name, value) in [
            ("ratelimit-limit", RATE_LIMIT),
            ("ratelimit-observed", observed),
            ("ratelimit-remaining", remaining),
            ("ratelimit-reset", reset),
        ] {
            headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
        }
        response
    }

    async fn answer(&self, method: Method, uri: Uri, headers: HeaderMap, body: axum::body::Bytes) -> Response {
        let token = headers.get("private-token").and_then(|v| v.to_str().ok()).map(str::to_owned).or_else(|| {
            headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::to_owned)
        });
        self.hits.lock().unwrap_or_else(|e| e.into_inner()).push(Hit {
            path: uri.path().to_owned(),
            query: uri.query().unwrap_or_default().to_owned(),
            with_token: token.is_some(),
        });
        let _in_flight = InFlight::enter(&self.in_flight);
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        if let Some(hold) = &self.hold {
            if self.endpoint_of(uri.path()) == Endpoint::Associations {
                hold.pass().await;
            }
        }
        let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("gitlab.test").to_owned();
        let Some(rest) = uri.path().strip_prefix(self.prefix.as_str()) else { return not_found_page() };
        if rest == "/_fake/projects" {
            return self.control_add_project(&method, &body, &host);
        }
        let Some(api) = rest.strip_prefix("/api/v4") else {
            return match rest {
                "/users/sign_in" => (StatusCode::OK, html("GitLab")).into_response(),
                _ if self.sign_in_only => {
                    let location = format!("http://{host}{}/users/sign_in", self.prefix);
                    (StatusCode::FOUND, [("location", location)], html("redirected")).into_response()
                }
                "/jdoe" => (StatusCode::OK, html("GitLab")).into_response(),
                _ => not_found_page(),
            };
        };
        let rate = self.observe();
        if self.rate_limited_path.is_some_and(|p| api == p) {
            return (StatusCode::TOO_MANY_REQUESTS, [("content-type", "text/plain")], "Retry later\n").into_response();
        }
        if let Some(every) = self.burst_429_every.filter(|n| *n > 0) {
            if Endpoint::route(api).0.is_listing()
                && (self.listing_requests.fetch_add(1, Ordering::SeqCst) + 1).is_multiple_of(every)
            {
                let mut response =
                    (StatusCode::TOO_MANY_REQUESTS, [("content-type", "text/plain")], "Retry later\n").into_response();
                if let Some(seconds) = self.retry_after_429 {
                    response.headers_mut().insert("retry-after", HeaderValue::from(seconds));
                }
                return response;
            }
        }
        if let Some(origin) = &self.redirect_to {
            return (StatusCode::MOVED_PERMANENTLY, [("location", format!("{origin}{}", uri.path()))]).into_response();
        }
        match self.fail_status {
            Some(429) => {
                return (
                    StatusCode::TOO_MANY_REQUESTS,
                    [("retry-after", "30"), ("content-type", "text/plain")],
                    "Retry later\n",
                )
                    .into_response()
            }
            Some(code) => {
                let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY);
                return (status, html("<h1>502 Bad Gateway</h1>")).into_response();
            }
            None => {}
        }
        let response = if api == "/personal_access_tokens/self/rotate" {
            if method == Method::POST {
                self.rotate(token.as_deref(), &body).await
            } else {
                json_answer(StatusCode::METHOD_NOT_ALLOWED, json!({"error": "405 Method Not Allowed"}), &[])
            }
        } else if method != Method::GET {
            json_answer(StatusCode::METHOD_NOT_ALLOWED, json!({"error": "405 Method Not Allowed"}), &[])
        } else {
            self.api(api, uri.query().unwrap_or_default(), token.as_deref(), &host)
        };
        self.with_rate_headers(response, rate)
    }

    /// `POST {prefix}/_fake/projects`: the test-only control route.
    fn control_add_project(&self, method: &Method, body: &[u8], host: &str) -> Response {
        if method != Method::POST {
            return json_answer(StatusCode::METHOD_NOT_ALLOWED, json!({"error": "405 Method Not Allowed"}), &[]);
        }
        let asked = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|b| b.get("path_with_namespace").and_then(Value::as_str).map(str::to_owned));
        let Some(path) = asked else {
            return json_answer(StatusCode::BAD_REQUEST, json!({"error": "path_with_namespace is missing"}), &[]);
        };
        let mut world = self.world.lock().unwrap_or_else(|e| e.into_inner());
        match world.add_project(&path) {
            Ok(id) => match world.project(&id.to_string()) {
                Some(project) => {
                    json_answer(StatusCode::CREATED, project_item(&world, project, &self.web(host), false), &[])
                }
                None => json_answer(StatusCode::NOT_FOUND, json!({"message": "404 Project Not Found"}), &[]),
            },
            Err(world::AddError::NamespaceNotFound) => {
                json_answer(StatusCode::NOT_FOUND, json!({"message": "404 Namespace Not Found"}), &[])
            }
            Err(world::AddError::Taken) => {
                json_answer(StatusCode::BAD_REQUEST, json!({"message": {"path": ["has already been taken"]}}), &[])
            }
            Err(world::AddError::InvalidPath) => json_answer(
                StatusCode::BAD_REQUEST,
                json!({"message": {"path": ["can contain only letters, digits, '_', '-' and '.'. Cannot start with '-', end in '.git' or end in '.atom'"]}}),
                &[],
            ),
        }
    }

    /// `POST /personal_access_tokens/self/rotate`, as GitLab 16.10+ answers it.
    async fn rotate(&self, token: Option<&str>, body: &[u8]) -> Response {
        let Some(token) = token else { return unauthorized() };
        let today = time::OffsetDateTime::now_utc().date();
        let answer = {
            let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
            if tokens.revoked.contains(token) {
                // Reuse detection: the whole family goes, the newest token included.
                let family = tokens.family.get(token).cloned().unwrap_or_else(|| token.to_owned());
                let members: Vec<String> =
                    tokens.family.iter().filter(|(_, f)| **f == family).map(|(t, _)| t.clone()).collect();
                tokens.revoked.extend(members);
                tokens.families_revoked += 1;
                return unauthorized();
            }
            let persona = tokens.issued.get(token).map_or_else(|| token.to_owned(), |i| i.persona.clone());
            match persona.as_str() {
                "glpat-good" | "glpat-soon" | "glpat-noscope" | "glpat-noexpiry" | "glpat-guest" | "glpat-service" => {}
                "glpat-readuser" => {
                    return json_answer(StatusCode::FORBIDDEN, json!({"message": "403 Forbidden"}), &[]);
                }
                "glpat-bot" => {
                    return json_answer(
                        StatusCode::METHOD_NOT_ALLOWED,
                        json!({"message": "405 Method Not Allowed"}),
                        &[],
                    );
                }
                _ => return unauthorized(),
            }
            let asked = serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|b| b.get("expires_at").and_then(|v| v.as_str()).map(str::to_owned));
            let expires_at = match asked {
                Some(date) => {
                    let format = time::macros::format_description!("[year]-[month]-[day]");
                    let Ok(date) = time::Date::parse(&date, &format) else {
                        return json_answer(StatusCode::BAD_REQUEST, json!({"error": "expires_at is invalid"}), &[]);
                    };
                    if self.max_lifetime_days.is_some_and(|max| (date - today).whole_days() > max) {
                        return json_answer(
                            StatusCode::BAD_REQUEST,
                            json!({"message": "400 Bad request - Expiration date must be before the maximum allowable lifetime"}),
                            &[],
                        );
                    }
                    date
                }
                // GitLab's default where expiry is required: one week.
                None => today + time::Duration::days(7),
            };
            if self.rotation == RotationMode::Hang {
                None
            } else {
                tokens.rotations += 1;
                let n = tokens.rotations;
                // The counter last: the last four characters (all Onramp shows) change.
                let new = format!("{persona}-r{n:04}");
                let family = tokens.family.get(token).cloned().unwrap_or_else(|| token.to_owned());
                tokens.family.insert(token.to_owned(), family.clone());
                tokens.family.insert(new.clone(), family);
                tokens.revoked.insert(token.to_owned());
                let issued = Issued {
                    persona: persona.clone(),
                    id: 100 + i64::try_from(n).unwrap_or(0),
                    expires_at: expires_at.to_string(),
                    created_at: format!("{today}T10:00:00.000Z"),
                };
                tokens.issued.insert(new.clone(), issued.clone());
                Some(json!({
                    "id": issued.id, "name": "Onramp", "revoked": false, "active": true,
                    "scopes": ["api", "read_api", "read_user", "read_repository"], "user_id": 1,
                    "created_at": issued.created_at, "last_used_at": null, "expires_at": issued.expires_at,
                    "token": new,
                }))
            }
        };
        match (self.rotation, answer) {
            (RotationMode::Answer, Some(body)) => json_answer(StatusCode::OK, body, &[]),
            (RotationMode::BadGatewayAfter, _) => {
                (StatusCode::BAD_GATEWAY, html("<h1>502 Bad Gateway</h1>")).into_response()
            }
            _ => {
                // The answer never comes: the client gives up.
                tokio::time::sleep(Duration::from_secs(3600)).await;
                not_found_page()
            }
        }
    }

    fn api(&self, path: &str, query: &str, token: Option<&str>, host: &str) -> Response {
        let (endpoint, project_id) = Endpoint::route(path);
        let gone = endpoint == Endpoint::Associations && (self.legacy || self.no_associations);
        if matches!(endpoint, Endpoint::Other | Endpoint::Rotate | Endpoint::FakeControl) || gone {
            return json_answer(StatusCode::NOT_FOUND, json!({"error": "404 Not Found"}), &[]);
        }
        let Some(token) = token else { return unauthorized() };
        let (token, issued) = {
            let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
            if tokens.revoked.contains(token) {
                return json_answer(
                    StatusCode::UNAUTHORIZED,
                    json!({"error":"invalid_token","error_description":"Token was revoked. You have to re-authorize from the user."}),
                    &[],
                );
            }
            match tokens.issued.get(token) {
                Some(issued) => (issued.persona.clone(), Some(issued.clone())),
                None => (token.to_owned(), None),
            }
        };
        let token = token.as_str();
        let persona = match token {
            "glpat-good" | "glpat-noscope" | "glpat-readuser" | "glpat-blocked" | "glpat-soon" | "glpat-noexpiry"
            | "glpat-guest" | "glpat-bot" | "glpat-pending" | "glpat-deactivated" | "glpat-unconfirmed"
            | "glpat-terms" | "glpat-password" | "glpat-service" => token,
            "glpat-expired" => {
                return json_answer(
                    StatusCode::UNAUTHORIZED,
                    json!({"error":"invalid_token","error_description":"Token is expired. You can either do re-authorization or token refresh."}),
                    &[],
                )
            }
            "glpat-revoked" => {
                return json_answer(
                    StatusCode::UNAUTHORIZED,
                    json!({"error":"invalid_token","error_description":"Token was revoked. You have to re-authorize from the user."}),
                    &[],
                )
            }
            _ => return unauthorized(),
        };
        if persona == "glpat-blocked" {
            return json_answer(
                StatusCode::FORBIDDEN,
                json!({"message": "403 Forbidden - Your account has been blocked."}),
                &[],
            );
        }
        let web = self.web(host);
        let refused = match persona {
            "glpat-pending" => Some("Your account is pending approval from your GitLab administrator and hence blocked. Please contact your GitLab administrator if you think this is an error.".to_owned()),
            "glpat-deactivated" => Some(format!("Your account has been deactivated by your administrator. Please log back in from a web browser to reactivate your account at {web}")),
            "glpat-unconfirmed" => Some(format!("Your primary email address is not confirmed. Please check your inbox for the confirmation instructions. In case the link is expired, you can request a new confirmation email at {web}/users/confirmation/new")),
            "glpat-terms" => Some(format!("You (@jdoe) must accept the Terms of Service in order to perform this action. To accept these terms, please access GitLab from a web browser at {web}.")),
            "glpat-password" => Some("Your password expired. Please access GitLab from a web browser to update your password.".to_owned()),
            _ => None,
        };
        if let Some(reason) = refused {
            return json_answer(StatusCode::FORBIDDEN, json!({"message": format!("403 Forbidden - {reason}")}), &[]);
        }
        let scopes: &[&str] = match persona {
            "glpat-noscope" => &["api", "read_api", "read_user"],
            "glpat-readuser" => &["read_user"],
            _ => &["api", "read_api", "read_user", "read_repository"],
        };
        let api_scope = scopes.contains(&"api") || scopes.contains(&"read_api");
        let listing = Listing {
            params: Params::parse(query),
            web: &web,
            url: format!("http://{host}{}/api/v4{path}", self.prefix),
        };
        match endpoint {
            Endpoint::Metadata if self.legacy => {
                json_answer(StatusCode::NOT_FOUND, json!({"error": "404 Not Found"}), &[])
            }
            Endpoint::Metadata => json_answer(
                StatusCode::OK,
                json!({"version": "17.5.1", "revision": "abc123", "enterprise": false}),
                &[],
            ),
            Endpoint::Version => json_answer(
                StatusCode::OK,
                json!({"version": if self.legacy { "14.10.5" } else { "17.5.1" }, "revision": "abc123"}),
                &[],
            ),
            Endpoint::TokenSelf if self.legacy || self.no_token_self == Some(404) => {
                json_answer(StatusCode::NOT_FOUND, json!({"error": "404 Not Found"}), &[])
            }
            Endpoint::TokenSelf if self.no_token_self.is_some() => unauthorized(),
            Endpoint::TokenSelf => {
                let today = time::OffsetDateTime::now_utc().date();
                let (id, expires_at, created_at) = match (&issued, persona) {
                    (Some(i), _) => (i.id, Value::from(i.expires_at.clone()), i.created_at.clone()),
                    (None, "glpat-soon") => (
                        7,
                        Value::from((today + time::Duration::days(10)).to_string()),
                        format!("{}T10:00:00.000Z", today - time::Duration::days(80)),
                    ),
                    (None, "glpat-noexpiry") => (7, Value::Null, "2023-01-01T10:00:00.000Z".to_owned()),
                    (None, _) => (7, Value::from("2099-01-01"), "2025-01-01T10:00:00.000Z".to_owned()),
                };
                json_answer(
                    StatusCode::OK,
                    json!({"id": id, "name": "Onramp", "revoked": false, "active": true, "scopes": scopes, "expires_at": expires_at, "created_at": created_at, "last_used_at": null}),
                    &[],
                )
            }
            Endpoint::User => {
                let (username, bot) = match persona {
                    "glpat-bot" => ("project_7_bot_1", true),
                    "glpat-service" => ("onramp-reader", true),
                    _ => ("jdoe", false),
                };
                let name = if persona == "glpat-service" { "Onramp reader" } else { "Jane Doe" };
                json_answer(
                    StatusCode::OK,
                    json!({"id": 1, "username": username, "name": name, "state": "active", "web_url": format!("{web}/{username}"), "bot": bot}),
                    &[],
                )
            }
            _ if !api_scope => insufficient_scope(),
            Endpoint::Associations => self.with_world(persona, |w| listing.associations(w)).unwrap_or_else(bad),
            Endpoint::Groups => self.with_world(persona, |w| listing.groups(w)).unwrap_or_else(bad),
            Endpoint::Projects => self.with_world(persona, |w| listing.projects(w)).unwrap_or_else(bad),
            Endpoint::MergeRequests | Endpoint::Pipelines | Endpoint::Deployments => self
                .with_world(persona, |w| listing.counts(w, endpoint, project_id.unwrap_or_default()))
                .unwrap_or_else(bad),
            _ => json_answer(StatusCode::NOT_FOUND, json!({"error": "404 Not Found"}), &[]),
        }
    }
}

// ---------------------------------------------------------------- the world's listings

/// A parameter GitLab refuses: 400 `{"error": "..."}`.
#[derive(Debug)]
struct BadRequest(String);

fn bad(BadRequest(error): BadRequest) -> Response {
    json_answer(StatusCode::BAD_REQUEST, json!({ "error": error }), &[])
}

/// A query string as GitLab reads it (the last of repeated keys wins; an empty value is none).
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(query: &str) -> Params {
        Params(url::form_urlencoded::parse(query.as_bytes()).into_owned().collect())
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }

    fn number(&self, key: &str) -> Result<Option<u64>, BadRequest> {
        self.get(key).map(|v| v.parse::<u64>().map_err(|_| BadRequest(format!("{key} is invalid")))).transpose()
    }

    fn boolean(&self, key: &str) -> Result<Option<bool>, BadRequest> {
        self.get(key)
            .map(|v| match v.to_ascii_lowercase().as_str() {
                "true" | "t" | "1" | "yes" | "y" => Ok(true),
                "false" | "f" | "0" | "no" | "n" => Ok(false),
                _ => Err(BadRequest(format!("{key} is invalid"))),
            })
            .transpose()
    }

    /// One of `allowed` (the first is the default).
    fn one_of<'a>(&self, key: &str, allowed: &[&'a str]) -> Result<&'a str, BadRequest> {
        match self.get(key) {
            None => Ok(allowed.first().copied().unwrap_or_default()),
            Some(v) => allowed
                .iter()
                .find(|a| **a == v)
                .copied()
                .ok_or_else(|| BadRequest(format!("{key} does not have a valid value"))),
        }
    }

    /// `min_access_level`: one of GitLab's roles; 0 when not asked.
    fn min_access_level(&self) -> Result<u64, BadRequest> {
        self.min_access_level_asked().map(|level| level.unwrap_or(0))
    }

    /// `min_access_level` when asked (`values: Gitlab::Access.all_values`), `None` when not.
    fn min_access_level_asked(&self) -> Result<Option<u64>, BadRequest> {
        match self.number("min_access_level") {
            Ok(None) => Ok(None),
            Ok(Some(level)) if [0, 5, 10, 15, 20, 30, 40, 50].contains(&level) => Ok(Some(level)),
            _ => Err(BadRequest("min_access_level does not have a valid value".to_owned())),
        }
    }

    /// A date filter: ISO 8601 (a date, or a date and time with or without offset; without one
    /// it is UTC, GitLab's default time zone), or 400 `<key> is invalid`.
    fn date(&self, key: &str) -> Result<Option<time::OffsetDateTime>, BadRequest> {
        let Some(value) = self.get(key) else { return Ok(None) };
        let date = time::macros::format_description!("[year]-[month]-[day]");
        let local = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
        let local_fraction =
            time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond]");
        time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
            .ok()
            .or_else(|| time::Date::parse(value, &date).ok().map(|d| d.midnight().assume_utc()))
            .or_else(|| time::PrimitiveDateTime::parse(value, &local).ok().map(|t| t.assume_utc()))
            .or_else(|| time::PrimitiveDateTime::parse(value, &local_fraction).ok().map(|t| t.assume_utc()))
            .map(Some)
            .ok_or_else(|| BadRequest(format!("{key} is invalid")))
    }

    fn paging(&self) -> Result<Paging, BadRequest> {
        let per_page = self.number("per_page")?.filter(|p| *p > 0).unwrap_or(20).min(100);
        let page = self.number("page")?.filter(|p| *p > 0).unwrap_or(1);
        let as_usize = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        Ok(Paging { page: as_usize(page), per_page: as_usize(per_page) })
    }

    /// `url` with this query, `set` replacing (or adding) some keys.
    fn url_with(&self, url: &str, set: &[(&str, String)]) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.0 {
            if !set.iter().any(|(s, _)| s == k) {
                query.append_pair(k, v);
            }
        }
        for (k, v) in set {
            query.append_pair(k, v);
        }
        format!("{url}?{}", query.finish())
    }
}

#[derive(Clone, Copy, Debug)]
struct Paging {
    /// From 1.
    page: usize,
    /// 1 to 100.
    per_page: usize,
}

impl Paging {
    fn skip(self) -> usize {
        (self.page - 1).saturating_mul(self.per_page)
    }

    /// The rows of this page among those `rows` yields, and how many it yields in all: only the
    /// page's rows are kept.
    fn take<T>(self, rows: impl Iterator<Item = T>) -> (Vec<T>, usize) {
        let (skip, mut total, mut shown) = (self.skip(), 0, Vec::new());
        for row in rows {
            if total >= skip && shown.len() < self.per_page {
                shown.push(row);
            }
            total += 1;
        }
        (shown, total)
    }

    /// GitLab's offset-pagination headers for `total` rows: `x-total` and `x-total-pages` (and the
    /// `last` link) left out above 10,000 rows.
    fn headers(self, total: usize, params: &Params, url: &str) -> Vec<(&'static str, String)> {
        let Paging { page, per_page } = self;
        let pages = total.div_ceil(per_page).max(1);
        let link = |p: usize, rel: &str| {
            let to = params.url_with(url, &[("page", p.to_string()), ("per_page", per_page.to_string())]);
            format!("<{to}>; rel=\"{rel}\"")
        };
        let mut links = Vec::new();
        if page > 1 {
            links.push(link(page - 1, "prev"));
        }
        if page < pages {
            links.push(link(page + 1, "next"));
        }
        links.push(link(1, "first"));
        let mut headers = vec![
            ("x-page", page.to_string()),
            ("x-per-page", per_page.to_string()),
            ("x-next-page", if page < pages { (page + 1).to_string() } else { String::new() }),
            ("x-prev-page", if page > 1 { (page - 1).to_string() } else { String::new() }),
        ];
        if total <= 10_000 {
            headers.push(("x-total", total.to_string()));
            headers.push(("x-total-pages", pages.to_string()));
            links.push(link(pages, "last"));
        }
        headers.push(("link", links.join(", ")));
        headers
    }
}

/// One listing request: its query, what `web_url`s start with, and its own URL (for `Link`).
struct Listing<'a> {
    params: Params,
    web: &'a str,
    url: String,
}

impl Listing<'_> {
    /// `GET /personal_access_tokens/self/associations`, as GitLab's
    /// `lib/api/personal_access_tokens/self_information.rb` answers it: `paginate(GroupsFinder
    /// .new(current_user, finder_params).execute)` and `paginate(ProjectsFinder.new(...)
    /// .execute)`, the only finder parameter being `min_access_level` when asked.
    ///
    /// - Without `min_access_level` both finders return everything *visible* to the user
    ///   (`app/finders/groups_finder.rb` `all_groups`: `authorized_groups.self_and_ancestors` plus
    ///   `Group.public_to_user`; `app/finders/projects_finder.rb` `collection_with_user`:
    ///   `Project.public_or_visible_to_user`): strangers' public and internal groups and projects
    ///   too.
    /// - With it: groups where the user's own membership is at least that level and their
    ///   descendants (`groups_with_min_access_level`: `current_user.groups.where(members
    ///   .access_level >= ?).self_and_descendants`; groups reached only through a share are not
    ///   there), and `current_user.authorized_projects(min)` (`project_authorizations`, which
    ///   counts shares).
    /// - Both ordered by id, newest first (`Namespaces::GroupsFilter#sort`: `order_id_desc`;
    ///   `ProjectsFinder#sort`: `projects_order_id_desc`).
    /// - Paged independently, and since both `paginate` calls set the same headers
    ///   (`lib/api/helpers/pagination.rb` → `lib/gitlab/pagination/offset_pagination.rb`
    ///   `add_pagination_headers`), the answer carries the *projects'* `x-total`, `x-total-pages`,
    ///   `x-next-page` and `Link`: a user with more pages of groups than of projects is told there
    ///   are no more pages while groups remain.
    /// - Entities: `lib/api/entities/group_association_details.rb` (`BasicGroupDetails`: `id`,
    ///   `web_url`, `name`; then `parent_id`, `organization_id`, `access_levels` =
    ///   `group.highest_group_member(user)&.access_level` (the group and its ancestors),
    ///   `visibility`: no `full_path`) and `lib/api/entities/project_association_details.rb`
    ///   (`ProjectIdentity`: `id`, `description`, `name`, `name_with_namespace`, `path`,
    ///   `path_with_namespace`, `created_at`; then `access_levels: {project_access_level:
    ///   project.member(user) (direct only), group_access_level: project.group
    ///   .highest_group_member(user) (the project's own group chain only)}`, `visibility`,
    ///   `web_url`, `namespace` (`NamespaceBasic`): **no `archived`**, and a project shared with
    ///   one of the user's groups shows both levels `null`).
    fn associations(&self, world: &World) -> Result<Response, BadRequest> {
        let min = self.params.min_access_level_asked()?;
        let paging = self.params.paging()?;
        let groups: Vec<&Group> = match min {
            Some(min) => world
                .groups()
                .iter()
                .filter(|g| {
                    // The group or one of its ancestors has a direct membership at `min` or more.
                    let mut at = Some(*g);
                    while let Some(group) = at {
                        if group.direct_level.is_some_and(|l| l >= min) {
                            return true;
                        }
                        at = group.parent_id.and_then(|p| world.group(p));
                    }
                    false
                })
                .collect(),
            None => {
                // authorized_groups (member groups and the namespaces of authorized projects),
                // their ancestors, and every group that is not private.
                let mut shown: HashSet<u64> = HashSet::new();
                let seeds = world.groups().iter().filter(|g| g.direct_level.is_some()).map(|g| g.id).chain(
                    world
                        .projects()
                        .iter()
                        .filter(|p| p.level().is_some() && p.namespace_kind == world::NamespaceKind::Group)
                        .map(|p| p.namespace_id),
                );
                for seed in seeds {
                    let mut at = world.group(seed);
                    while let Some(group) = at {
                        shown.insert(group.id);
                        at = group.parent_id.and_then(|p| world.group(p));
                    }
                }
                world
                    .groups()
                    .iter()
                    .filter(|g| shown.contains(&g.id) || g.visibility != world::Visibility::Private)
                    .collect()
            }
        };
        let (groups, _) = paging.take(groups.into_iter().rev());
        let wanted = |p: &&Project| match min {
            Some(min) => p.level().is_some_and(|level| level >= min),
            None => p.visible(),
        };
        let (projects, project_total) = paging.take(world.projects().iter().rev().filter(wanted));
        let groups: Vec<Value> = groups
            .into_iter()
            .map(|g| {
                json!({
                    "id": g.id, "web_url": format!("{}/groups/{}", self.web, g.full_path), "name": g.name,
                    "parent_id": g.parent_id, "organization_id": 1, "access_levels": g.level,
                    "visibility": g.visibility.as_str(),
                })
            })
            .collect();
        let projects: Vec<Value> = projects
            .into_iter()
            .map(|p| {
                let namespace = namespace_item(world, p, self.web);
                json!({
                    "id": p.id, "description": null, "name": p.name,
                    "name_with_namespace": format!("{} / {}", namespace["name"].as_str().unwrap_or_default(), p.name),
                    "path": p.path, "path_with_namespace": p.path_with_namespace,
                    "created_at": "2024-01-01T10:00:00.000Z",
                    "access_levels": {"project_access_level": p.project_access, "group_access_level": p.group_access},
                    "visibility": p.visibility.as_str(),
                    "web_url": format!("{}/{}", self.web, p.path_with_namespace),
                    "namespace": namespace,
                })
            })
            .collect();
        let headers = paging.headers(project_total, &self.params, &self.url);
        Ok(json_with(StatusCode::OK, json!({"groups": groups, "projects": projects}), headers))
    }

    /// `GET /groups`: jdoe's groups, without jdoe's level.
    fn groups(&self, world: &World) -> Result<Response, BadRequest> {
        let min = self.params.min_access_level()?;
        let paging = self.params.paging()?;
        let order_by = self.params.one_of("order_by", &["name", "path", "id", "similarity"])?;
        let desc = self.params.one_of("sort", &["asc", "desc"])? == "desc";
        for flag in ["all_available", "simple", "statistics", "owned", "top_level_only"] {
            self.params.boolean(flag)?;
        }
        let mut groups: Vec<&Group> =
            world.groups().iter().filter(|g| g.level.is_some_and(|level| level >= min)).collect();
        match order_by {
            "name" => groups.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id))),
            "path" => groups.sort_by(|a, b| a.path.cmp(&b.path).then(a.id.cmp(&b.id))),
            _ => groups.sort_by_key(|g| g.id),
        }
        if desc {
            groups.reverse();
        }
        let (shown, total) = paging.take(groups.into_iter());
        let items: Vec<Value> = shown.into_iter().map(|g| group_item(g, self.web)).collect();
        Ok(json_with(StatusCode::OK, Value::from(items), paging.headers(total, &self.params, &self.url)))
    }

    /// `GET /projects`: jdoe's projects, by offset or keyset pagination.
    fn projects(&self, world: &World) -> Result<Response, BadRequest> {
        let params = &self.params;
        let min = params.min_access_level_asked()?;
        let paging = params.paging()?;
        let archived = params.boolean("archived")?;
        let simple = params.boolean("simple")?.unwrap_or(false);
        let membership = params.boolean("membership")?.unwrap_or(false);
        for flag in ["owned", "starred", "statistics", "with_issues_enabled"] {
            params.boolean(flag)?;
        }
        // `lib/api/helpers.rb` `project_finder_params_visibility_ce`: `visibility` becomes
        // `visibility_level`, `membership` becomes `non_public` (the user's authorized projects),
        // `archived=true` becomes `'only'`; `app/finders/projects_finder.rb`: with
        // `min_access_level` `authorized_projects(min)`, else with `non_public` all authorized
        // ones, else `Project.public_or_visible_to_user` (strangers' public projects too).
        let visibility = match params.get("visibility") {
            None => None,
            Some(_) => Some(params.one_of("visibility", &["private", "internal", "public"])?),
        };
        let order_by = params.one_of(
            "order_by",
            &["created_at", "id", "name", "path", "updated_at", "last_activity_at", "similarity", "star_count"],
        )?;
        let desc = params.one_of("sort", &["desc", "asc"])? == "desc";
        let search = params.get("search");
        let wanted = |p: &&Project| {
            let listed = match min {
                Some(min) => p.level().is_some_and(|level| level >= min),
                None if membership => p.level().is_some(),
                None => p.visible(),
            };
            listed
                && visibility.is_none_or(|v| p.visibility.as_str() == v)
                && archived.is_none_or(|a| p.archived == a)
                && search.is_none_or(|s| contains_ignoring_case(&p.path_with_namespace, s))
        };
        let item = |p: &Project| project_item(world, p, self.web, simple);
        let all = world.projects();
        if params.get("pagination") == Some("keyset") {
            if order_by != "id" {
                return Ok(json_answer(
                    StatusCode::METHOD_NOT_ALLOWED,
                    json!({"error": "Keyset pagination is not yet available for this type of request"}),
                    &[],
                ));
            }
            // Projects are in id order: the page starts after id_after (or ends before id_before).
            let per_page = paging.per_page;
            let (mut rows, cursor): (Vec<&Project>, &str) = if desc {
                let end =
                    params.number("id_before")?.map_or(all.len(), |before| all.partition_point(|p| p.id < before));
                (
                    all.get(..end).unwrap_or_default().iter().rev().filter(wanted).take(per_page + 1).collect(),
                    "id_before",
                )
            } else {
                let start = params.number("id_after")?.map_or(0, |after| all.partition_point(|p| p.id <= after));
                (all.get(start..).unwrap_or_default().iter().filter(wanted).take(per_page + 1).collect(), "id_after")
            };
            let more = rows.len() > per_page;
            rows.truncate(per_page);
            let mut headers = vec![("x-per-page", per_page.to_string())];
            if let (true, Some(last)) = (more, rows.last()) {
                let next = params.url_with(&self.url, &[(cursor, last.id.to_string())]);
                headers.push(("link", format!("<{next}>; rel=\"next\"")));
            }
            let items: Vec<Value> = rows.into_iter().map(item).collect();
            return Ok(json_with(StatusCode::OK, Value::from(items), headers));
        }
        let (shown, total) = if matches!(order_by, "name" | "path") {
            let mut rows: Vec<&Project> = all.iter().filter(wanted).collect();
            rows.sort_by(|a, b| {
                let key = |p: &&Project| {
                    if order_by == "name" {
                        p.name.to_ascii_lowercase()
                    } else {
                        p.path.to_ascii_lowercase()
                    }
                };
                key(a).cmp(&key(b)).then(a.id.cmp(&b.id))
            });
            if desc {
                rows.reverse();
            }
            paging.take(rows.into_iter())
        } else if desc {
            paging.take(all.iter().rev().filter(wanted))
        } else {
            paging.take(all.iter().filter(wanted))
        };
        let items: Vec<Value> = shown.into_iter().map(item).collect();
        Ok(json_with(StatusCode::OK, Value::from(items), paging.headers(total, params, &self.url)))
    }

    /// `GET /projects/:id/merge_requests`, `/pipelines`, `/deployments`: the project's items,
    /// filtered by date as GitLab's finders do, and counted in `x-total`.
    ///
    /// Each item has one date (merge requests: `created_at`, and `updated_at` the same;
    /// pipelines and deployments: `updated_at`), all at 00:00 UTC: [`counted`] recent ones 1 to
    /// 30 days before today, [`counted_old`] more 120 to 319 days before. So the last 90 days
    /// hold exactly the recent ones, whenever the test runs, and a client that leaves the date
    /// out counts more. The filters are inclusive: `created_after`/`updated_after` are
    /// `created_at >= ?` / `updated_at >= ?`, `*_before` `<=` (`app/models/concerns/
    /// created_at_filterable.rb`, `updated_at_filterable.rb`, used by `IssuableFinder`
    /// (`app/finders/merge_requests_finder.rb` for `lib/api/merge_requests.rb`),
    /// `Ci::PipelinesFinder#by_updated_at` (`lib/api/ci/pipelines.rb`) and
    /// `DeploymentsFinder#by_updated_at` (`lib/api/deployments.rb`)).
    fn counts(&self, world: &World, endpoint: Endpoint, project: &str) -> Result<Response, BadRequest> {
        let params = &self.params;
        let paging = params.paging()?;
        let (after, before) = match endpoint {
            Endpoint::MergeRequests => {
                let [ca, cb, ua, ub] =
                    ["created_after", "created_before", "updated_after", "updated_before"].map(|k| params.date(k));
                let (ca, cb, ua, ub) = (ca?, cb?, ua?, ub?);
                (ca.max(ua), [cb, ub].into_iter().flatten().min())
            }
            _ => (params.date("updated_after")?, params.date("updated_before")?),
        };
        let state = match endpoint {
            Endpoint::MergeRequests => params.one_of("state", &["all", "opened", "closed", "locked", "merged"])?,
            _ => "all",
        };
        let not_found = || json_answer(StatusCode::NOT_FOUND, json!({"message": "404 Project Not Found"}), &[]);
        let Some(project) = percent_decode(project).and_then(|p| world.project(&p)) else { return Ok(not_found()) };
        if !project.visible() {
            return Ok(not_found());
        }
        if !project.readable() {
            return Ok(json_answer(StatusCode::FORBIDDEN, json!({"message": "403 Forbidden"}), &[]));
        }
        let today = time::OffsetDateTime::now_utc().date().midnight().assume_utc();
        let day = time::Duration::days(1);
        let recent = (0..counted(project.id, endpoint, state)).map(|k| today - day * (1 + (k % 30) as i32));
        let old = (0..counted_old(project.id, endpoint, state)).map(|k| today - day * (120 + (k % 200) as i32));
        let within = |at: &time::OffsetDateTime| after.is_none_or(|a| *at >= a) && before.is_none_or(|b| *at <= b);
        let (shown, total) = paging.take(recent.chain(old).filter(within).enumerate().map(|(n, _)| n));
        let base = project.id.saturating_mul(100_000);
        let items: Vec<Value> = shown.into_iter().map(|n| json!({"id": base.saturating_add(n as u64 + 1)})).collect();
        Ok(json_with(StatusCode::OK, Value::from(items), paging.headers(total, params, &self.url)))
    }
}

/// How many merge requests (in `state`), pipelines or deployments project `id` has in the last
/// 30 days.
pub fn counted(id: u64, endpoint: Endpoint, state: &str) -> usize {
    let n = match endpoint {
        Endpoint::MergeRequests => merge_requests_in(state, (id % 40) * 7 % 40 + 1),
        Endpoint::Pipelines if id == 101 => 12_000,
        Endpoint::Pipelines => (id % 200) * 13 % 200,
        Endpoint::Deployments => (id % 5) * 3,
        _ => 0,
    };
    usize::try_from(n).unwrap_or(0)
}

/// How many more project `id` has 120 to 319 days ago (older than any preview looks).
pub fn counted_old(id: u64, endpoint: Endpoint, state: &str) -> usize {
    let n = match endpoint {
        Endpoint::MergeRequests => merge_requests_in(state, id % 4 + 3),
        Endpoint::Pipelines => id % 6 + 2,
        Endpoint::Deployments => id % 3 + 1,
        _ => 0,
    };
    usize::try_from(n).unwrap_or(0)
}

/// Of `all` merge requests, two thirds merged and the rest open: how many are in `state`.
fn merge_requests_in(state: &str, all: u64) -> u64 {
    let merged = all * 2 / 3;
    match state {
        "merged" => merged,
        "opened" => all - merged,
        "all" => all,
        _ => 0,
    }
}

fn group_item(g: &Group, web: &str) -> Value {
    json!({
        "id": g.id, "name": g.name, "path": g.path, "full_path": g.full_path, "parent_id": g.parent_id,
        "web_url": format!("{web}/groups/{}", g.full_path), "visibility": g.visibility.as_str(),
    })
}

fn namespace_item(world: &World, p: &Project, web: &str) -> Value {
    let full_path = p.namespace_full_path();
    let (name, path, parent_id, web_url) = match world.group(p.namespace_id) {
        Some(g) if p.namespace_kind == world::NamespaceKind::Group => {
            (g.name.as_str(), g.path.as_str(), g.parent_id, format!("{web}/groups/{full_path}"))
        }
        _ => ("Jane Doe", full_path, None, format!("{web}/{full_path}")),
    };
    json!({
        "id": p.namespace_id, "name": name, "path": path, "kind": p.namespace_kind.as_str(),
        "full_path": full_path, "parent_id": parent_id, "web_url": web_url,
    })
}

/// A project as `/projects` lists it (`simple`: without `permissions`, as GitLab's simple entity).
fn project_item(world: &World, p: &Project, web: &str, simple: bool) -> Value {
    let mut item = json!({
        "id": p.id, "name": p.name, "path": p.path, "path_with_namespace": p.path_with_namespace,
        "archived": p.archived, "visibility": p.visibility.as_str(),
        "web_url": format!("{web}/{}", p.path_with_namespace),
        "namespace": namespace_item(world, p, web),
    });
    if !simple {
        let access = |level: Option<u64>| level.map(|l| json!({"access_level": l, "notification_level": 3}));
        item["permissions"] =
            json!({"project_access": access(p.project_access), "group_access": access(p.group_access)});
    }
    item
}

fn contains_ignoring_case(haystack: &str, needle: &str) -> bool {
    let needle = needle.as_bytes();
    needle.is_empty() || haystack.as_bytes().windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle))
}

/// A path segment's `%XX` decoded (`None` when that is not UTF-8 or a `%` is not followed by two
/// hex digits).
fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3).filter(|h| h.iter().all(u8::is_ascii_hexdigit))?;
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

// ---------------------------------------------------------------- answers

fn json_answer(status: StatusCode, body: Value, headers: &[(&str, &str)]) -> Response {
    let mut builder = Response::builder().status(status).header("content-type", "application/json");
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    builder.body(Body::from(body.to_string())).unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn json_with(status: StatusCode, body: Value, headers: Vec<(&'static str, String)>) -> Response {
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    json_answer(status, body, &headers)
}

fn unauthorized() -> Response {
    json_answer(StatusCode::UNAUTHORIZED, json!({"message": "401 Unauthorized"}), &[])
}

fn insufficient_scope() -> Response {
    json_answer(
        StatusCode::FORBIDDEN,
        json!({"error": "insufficient_scope", "error_description": "The request requires higher privileges than provided by the access token.", "scope": "api read_api"}),
        &[],
    )
}

fn html(text: &str) -> ([(&'static str, &'static str); 1], String) {
    ([("content-type", "text/html; charset=utf-8")], format!("<!DOCTYPE html><html><body>{text}</body></html>"))
}

fn not_found_page() -> Response {
    (StatusCode::NOT_FOUND, html("<h1>404 Page not found</h1>")).into_response()
}
