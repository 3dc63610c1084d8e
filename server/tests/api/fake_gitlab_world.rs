//! The fake GitLab's world (crates/fake-gitlab/src/lib.rs): what discovery lists (associations,
//! groups, projects) and preview counts, pagination at 10,000 projects, rate limits and the
//! control route that adds a project.

use fake_gitlab::{Endpoint, FakeGitlab, World};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

async fn spawn(fake: FakeGitlab) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let addr = listener.local_addr().expect("an address");
    tokio::spawn(async move { axum::serve(listener, fake.router()).await.expect("serves") });
    format!("http://{addr}")
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| v.to_str().expect("an ASCII header").to_owned())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    fn total(&self) -> Option<usize> {
        self.header("x-total").map(|t| t.parse().expect("a number"))
    }

    fn next_link(&self) -> Option<String> {
        let link = self.header("link")?;
        link.split(", ")
            .find(|l| l.ends_with("rel=\"next\""))
            .and_then(|l| l.strip_prefix('<'))
            .and_then(|l| l.split_once('>'))
            .map(|(url, _)| url.to_owned())
    }
}

async fn get_url(url: &str, token: &str) -> Answer {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    let client = CLIENT.get_or_init(reqwest::Client::new);
    let r = client.get(url).header("private-token", token).send().await.expect("the fake answers");
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    Answer { status, headers, text: r.text().await.expect("a body") }
}

async fn get(base: &str, path: &str) -> Answer {
    get_url(&format!("{base}/api/v4{path}"), "glpat-good").await
}

/// path_with_namespace → the higher of associations' `access_levels` (0: both `null`).
fn association_levels(projects: &Value) -> BTreeMap<String, u64> {
    let array = projects.as_array().expect("a list");
    array
        .iter()
        .map(|p| {
            let levels = &p["access_levels"];
            let level = levels["project_access_level"].as_u64().max(levels["group_access_level"].as_u64());
            (p["path_with_namespace"].as_str().unwrap().to_owned(), level.unwrap_or(0))
        })
        .collect()
}

/// path_with_namespace → the higher of `/projects`' `permissions` (0: both `null`).
fn permission_levels(projects: &Value) -> BTreeMap<String, u64> {
    let array = projects.as_array().expect("a list");
    array
        .iter()
        .map(|p| {
            let access = |kind: &str| p["permissions"][kind]["access_level"].as_u64();
            let level = access("project_access").max(access("group_access"));
            (p["path_with_namespace"].as_str().unwrap().to_owned(), level.unwrap_or(0))
        })
        .collect()
}

/// A group's full path from its `web_url` (the association entity has no `full_path`).
fn group_path(base: &str, group: &Value) -> String {
    let web = group["web_url"].as_str().expect("a web_url");
    web.strip_prefix(&format!("{base}/groups/")).unwrap_or_else(|| panic!("{web}")).to_owned()
}

#[tokio::test]
async fn the_small_world_is_the_same_through_associations_and_through_groups_and_projects() {
    let base = spawn(FakeGitlab::default()).await;
    let associations = get(&base, "/personal_access_tokens/self/associations?min_access_level=10&per_page=100").await;
    assert_eq!(associations.status, 200, "{}", associations.text);
    assert_eq!(associations.total(), Some(8), "the projects' total (the last `paginate`): 8");
    let body = associations.json();
    let expected: BTreeMap<String, u64> = [
        ("acme/platform/api", 40),
        ("acme/platform/worker", 40),
        ("acme/website", 40),
        ("jdoe/dotfiles", 50),
        ("acme/legacy", 40),
        // Shared with acme (jdoe Maintainer there) as Developer: 30 in project_authorizations,
        // but no entity shows it (project_association_details.rb, project_with_access.rb).
        ("partner/sdk", 0),
        ("data-team/warehouse", 20),
        ("contractors/portal", 10),
    ]
    .into_iter()
    .map(|(p, l)| (p.to_owned(), l))
    .collect();
    assert_eq!(association_levels(&body["projects"]), expected);
    let ids: Vec<u64> = body["projects"].as_array().unwrap().iter().map(|p| p["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, [108, 107, 106, 105, 104, 103, 102, 101], "newest first (projects_order_id_desc)");
    let groups: BTreeMap<String, u64> = body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (group_path(&base, g), g["access_levels"].as_u64().unwrap()))
        .collect();
    let expected_groups: BTreeMap<String, u64> = [("acme", 40), ("acme/platform", 40), ("contractors", 10)]
        .into_iter()
        .map(|(g, l)| (g.to_owned(), l))
        .collect();
    assert_eq!(groups, expected_groups, "partner and data-team are no groups of jdoe's");
    let sdk = body["projects"].as_array().unwrap().iter().find(|p| p["id"] == 106).unwrap();
    assert_eq!(sdk["access_levels"], json!({"project_access_level": null, "group_access_level": null}), "a share");
    assert_eq!(sdk["namespace"]["kind"], "group");
    // The entities' fields, and nothing else: no `archived`, no group `full_path`.
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<BTreeSet<String>>();
    let strings = |list: &[&str]| list.iter().map(|k| (*k).to_owned()).collect::<BTreeSet<String>>();
    assert_eq!(
        keys(sdk),
        strings(&[
            "id",
            "description",
            "name",
            "name_with_namespace",
            "path",
            "path_with_namespace",
            "created_at",
            "access_levels",
            "visibility",
            "web_url",
            "namespace"
        ])
    );
    assert_eq!(
        keys(&body["groups"][0]),
        strings(&["id", "web_url", "name", "parent_id", "organization_id", "access_levels", "visibility"])
    );
    // Without min_access_level: everything visible, a stranger's public group and project too
    // (groups_finder.rb `public_groups`, projects_finder.rb `public_or_visible_to_user`), and the
    // groups of projects jdoe reaches (authorized_groups).
    let all = get(&base, "/personal_access_tokens/self/associations?per_page=100").await.json();
    let all_groups: BTreeSet<String> = all["groups"].as_array().unwrap().iter().map(|g| group_path(&base, g)).collect();
    assert_eq!(
        all_groups,
        strings(&["acme", "acme/platform", "contractors", "partner", "data-team", "gitlab-org"]),
        "{all}"
    );
    let stranger = all["projects"].as_array().unwrap().iter().find(|p| p["path_with_namespace"] == "gitlab-org/gitlab");
    assert_eq!(
        stranger.map(|p| p["access_levels"].clone()),
        Some(json!({"project_access_level": null, "group_access_level": null}))
    );
    let dotfiles = body["projects"].as_array().unwrap().iter().find(|p| p["id"] == 104).unwrap();
    assert_eq!(dotfiles["namespace"]["kind"], "user");
    assert_eq!(dotfiles["namespace"]["full_path"], "jdoe");

    // The same through the lists every GitLab has.
    let listed = get(&base, "/groups?per_page=100&all_available=false&order_by=name&sort=asc").await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let listed = listed.json();
    let paths: BTreeSet<String> =
        listed.as_array().unwrap().iter().map(|g| g["full_path"].as_str().unwrap().to_owned()).collect();
    assert_eq!(paths, expected_groups.keys().cloned().collect());
    assert!(listed[0].get("access_levels").is_none() && listed[0].get("access_level").is_none(), "{listed}");
    assert_eq!(listed[0]["web_url"], format!("{base}/groups/{}", listed[0]["full_path"].as_str().unwrap()));
    let projects = get(&base, "/projects?membership=true&per_page=100").await;
    assert_eq!(projects.status, 200, "{}", projects.text);
    assert_eq!(permission_levels(&projects.json()), expected);

    // min_access_level filters all three alike.
    for (min, groups, projects) in [(40, 2, 5), (30, 2, 6), (20, 2, 7), (10, 3, 8)] {
        let a = get(&base, &format!("/personal_access_tokens/self/associations?min_access_level={min}")).await.json();
        assert_eq!(a["groups"].as_array().unwrap().len(), groups, "associations, {min}");
        assert_eq!(a["projects"].as_array().unwrap().len(), projects, "associations, {min}");
        let g = get(&base, &format!("/groups?min_access_level={min}&per_page=1")).await;
        assert_eq!(g.total(), Some(groups), "groups, {min}");
        let p = get(&base, &format!("/projects?membership=true&min_access_level={min}&per_page=1")).await;
        assert_eq!(p.total(), Some(projects), "projects, {min}");
    }
    // What Onramp's connection check counts, unchanged.
    assert_eq!(get(&base, "/groups?min_access_level=40&per_page=1&simple=true").await.total(), Some(2));
    assert_eq!(get(&base, "/projects?min_access_level=40&per_page=1&simple=true").await.total(), Some(5));
    assert_eq!(get(&base, "/projects?per_page=1").await.total(), Some(9), "visible: the stranger's public one too");
    assert_eq!(get(&base, "/projects?membership=true&archived=true&per_page=1").await.total(), Some(1), "'only'");
    let private = get(&base, "/projects?membership=true&min_access_level=20&visibility=private&per_page=100").await;
    let private: BTreeSet<u64> = private.json().as_array().unwrap().iter().map(|p| p["id"].as_u64().unwrap()).collect();
    assert_eq!(private, BTreeSet::from([101, 102, 104, 105, 106, 107]), "the share counts at its level");
    // archived=false hides acme/legacy; search looks in the path.
    assert_eq!(get(&base, "/projects?membership=true&archived=false&per_page=1").await.total(), Some(7));
    let found = get(&base, "/projects?membership=true&search=PLATFORM").await.json();
    let found: BTreeSet<&str> = found.as_array().unwrap().iter().map(|p| p["path"].as_str().unwrap()).collect();
    assert_eq!(found, BTreeSet::from(["api", "worker"]));
    // simple=true: no permissions, as GitLab's simple entity.
    let simple = get(&base, "/projects?simple=true&per_page=1").await.json();
    assert!(simple[0].get("permissions").is_none(), "{simple}");
    // A bad parameter is GitLab's 400.
    let refused = get(&base, "/projects?min_access_level=41").await;
    assert_eq!(
        (refused.status, refused.json()),
        (400, json!({"error": "min_access_level does not have a valid value"}))
    );
    assert_eq!(get(&base, "/groups?page=two").await.status, 400);
}

#[tokio::test]
async fn associations_are_paged_and_missing_before_gitlab_17_4() {
    let base = spawn(FakeGitlab::default()).await;
    let page = get(&base, "/personal_access_tokens/self/associations?min_access_level=10&per_page=2&page=2").await;
    let body = page.json();
    assert_eq!(body["groups"].as_array().unwrap().len(), 1, "3 groups: 1 on page 2");
    assert_eq!(body["projects"].as_array().unwrap().len(), 2, "8 projects: 2 on page 2");
    assert_eq!(page.header("x-next-page").as_deref(), Some("3"));
    assert_eq!((page.total(), page.header("x-total-pages").as_deref()), (Some(8), Some("4")));
    assert!(page.next_link().is_some_and(|l| l.contains("page=3") && l.contains("per_page=2")));
    let last = get(&base, "/personal_access_tokens/self/associations?min_access_level=10&per_page=2&page=4").await;
    assert_eq!(last.header("x-next-page").as_deref(), Some(""));
    assert_eq!(last.json()["groups"], json!([]));
    assert!(last.next_link().is_none());

    for fake in [
        FakeGitlab { no_associations: true, ..FakeGitlab::default() },
        FakeGitlab { legacy: true, ..FakeGitlab::default() },
    ] {
        let base = spawn(fake).await;
        let gone = get(&base, "/personal_access_tokens/self/associations").await;
        assert_eq!((gone.status, gone.json()), (404, json!({"error": "404 Not Found"})));
        assert_eq!(get(&base, "/groups?min_access_level=40&per_page=1").await.total(), Some(2), "the lists stay");
    }
    // read_user alone reaches none of it.
    for path in
        ["/personal_access_tokens/self/associations", "/groups", "/projects?membership=true", "/projects/101/pipelines"]
    {
        let refused = get_url(&format!("{base}/api/v4{path}"), "glpat-readuser").await;
        assert_eq!((refused.status, refused.json()["error"].as_str()), (403, Some("insufficient_scope")), "{path}");
    }
    // glpat-guest keeps its tiny world: Guest of 1 group, Reporter of 2 projects.
    let guest =
        get_url(&format!("{base}/api/v4/personal_access_tokens/self/associations?min_access_level=10"), "glpat-guest")
            .await
            .json();
    assert_eq!(guest["groups"].as_array().unwrap().len(), 1);
    // More groups than projects: the headers are the projects' and say nothing of the groups left.
    let base = spawn(FakeGitlab::big(500, 10)).await;
    let first = get(&base, "/personal_access_tokens/self/associations?min_access_level=10&per_page=100").await;
    assert_eq!((first.total(), first.header("x-next-page").as_deref()), (Some(10), Some("")));
    assert_eq!(first.json()["groups"].as_array().unwrap().len(), 100);
    let second = get(&base, "/personal_access_tokens/self/associations?min_access_level=10&per_page=100&page=2").await;
    assert!(!second.json()["groups"].as_array().unwrap().is_empty(), "groups go on past the projects' last page");
    assert_eq!(association_levels(&guest["projects"]).values().copied().collect::<Vec<_>>(), [20, 20]);
}

#[tokio::test]
async fn ten_thousand_projects_page_by_keyset_once_each_and_by_offset_without_a_total() {
    let fake = FakeGitlab::big(500, 10_000);
    let base = spawn(fake.clone()).await;
    let started = std::time::Instant::now();
    let mut url =
        Some(format!("{base}/api/v4/projects?membership=true&pagination=keyset&order_by=id&sort=asc&per_page=100"));
    let mut ids = Vec::new();
    let mut pages = 0;
    while let Some(next) = url {
        let page = get_url(&next, "glpat-good").await;
        assert_eq!(page.status, 200, "{}", page.text);
        assert!(page.total().is_none() && page.header("x-page").is_none() && page.header("x-next-page").is_none());
        ids.extend(page.json().as_array().unwrap().iter().map(|p| p["id"].as_u64().unwrap()));
        url = page.next_link();
        pages += 1;
        assert!(pages <= 100, "keyset pagination ends");
    }
    assert_eq!(pages, 100, "no empty last page: the link comes only while more remain");
    assert_eq!(ids, (1..=10_000).collect::<Vec<u64>>(), "every project once, in id order");
    assert_eq!(fake.hits_to(Endpoint::Projects), 100);
    eprintln!("keyset walk of 10,000 projects: {:?}", started.elapsed());
    // Descending keyset pages by id_before.
    let desc = get(&base, "/projects?pagination=keyset&order_by=id&sort=desc&per_page=3&id_before=10").await;
    let desc: Vec<u64> = desc.json().as_array().unwrap().iter().map(|p| p["id"].as_u64().unwrap()).collect();
    assert_eq!(desc, [9, 8, 7]);
    assert_eq!(get(&base, "/projects?pagination=keyset&order_by=name").await.status, 405);

    // Offset pages: 10,000 rows still have their totals; above, GitLab leaves them out and
    // x-next-page still leads on.
    let exactly = get(&base, "/projects?membership=true&per_page=100").await;
    assert_eq!((exactly.total(), exactly.header("x-total-pages").as_deref()), (Some(10_000), Some("100")));
    assert_eq!(fake.add_project("org/g1/p-extra"), Ok(10_001));
    let first = get(&base, "/projects?membership=true&per_page=100").await;
    assert_eq!((first.total(), first.header("x-total-pages")), (None, None));
    assert_eq!(first.header("x-next-page").as_deref(), Some("2"));
    assert!(!first.header("link").unwrap().contains("rel=\"last\""));
    let newest = first.json()[0]["id"].as_u64();
    assert_eq!(newest, Some(10_001), "newest first, as GitLab's default order");
    let second = get_url(&first.next_link().expect("a next link"), "glpat-good").await;
    assert_eq!(second.header("x-page").as_deref(), Some("2"));
    let last = get(&base, "/projects?membership=true&per_page=100&page=101").await;
    assert_eq!(last.header("x-next-page").as_deref(), Some(""));
    assert_eq!(last.json().as_array().unwrap().len(), 1);
    // Fewer rows: the totals are back.
    let maintainer = get(&base, "/projects?membership=true&min_access_level=40&per_page=1").await;
    assert!(maintainer.total().is_some_and(|t| t > 0 && t < 10_000));

    // The layout: nested at least 4 deep, roles varied, the same on every build.
    let world = World::big(500, 10_000);
    assert_eq!(world.groups()[0].full_path, "org");
    let depth = world.groups().iter().map(|g| g.full_path.matches('/').count()).max();
    assert!(depth >= Some(4), "{depth:?}");
    let projects = world.projects();
    let guests = projects.iter().filter(|p| p.level() == Some(10)).count();
    let unreadable = projects.iter().filter(|p| !p.readable()).count();
    let archived = projects.iter().filter(|p| p.archived).count();
    let personal = projects.iter().filter(|p| p.path_with_namespace.starts_with("jdoe/")).count();
    let mut by_level = BTreeMap::new();
    for p in projects {
        *by_level.entry(p.level().unwrap_or(0)).or_insert(0) += 1;
    }
    eprintln!(
        "big(500, 10000): {} groups of jdoe's, levels {by_level:?}, {unreadable} unreadable, {archived} archived, {personal} personal, e.g. {}",
        world.groups().iter().filter(|g| g.level.is_some()).count(),
        projects[1233].path_with_namespace
    );
    assert_eq!((guests, unreadable, archived, personal), (500, 500, 200, 10));
    assert!(by_level[&30] + by_level[&40] > 8_000, "{by_level:?}");
    let again = World::big(500, 10_000);
    assert!(again.projects().iter().zip(projects).all(|(a, b)| a.path_with_namespace == b.path_with_namespace));
    // Associations of the big world: 10,001 projects, so no total either.
    let associations = get(&base, "/personal_access_tokens/self/associations?per_page=100&page=100").await;
    assert_eq!(associations.total(), None);
    assert_eq!(associations.header("x-next-page").as_deref(), Some("101"));
    assert_eq!(associations.json()["groups"], json!([]), "jdoe's few hundred groups ended long before");
}

#[tokio::test]
async fn bursts_of_429_carry_no_rate_limit_headers_and_the_retry_goes_through() {
    let fake = FakeGitlab { burst_429_every: Some(3), retry_after_429: Some(7), ..FakeGitlab::default() };
    let base = spawn(fake.clone()).await;
    let first = get(&base, "/groups?min_access_level=40").await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("ratelimit-limit").as_deref(), Some("2000"));
    let observed: u64 = first.header("ratelimit-observed").unwrap().parse().unwrap();
    let remaining: u64 = first.header("ratelimit-remaining").unwrap().parse().unwrap();
    assert_eq!(observed + remaining, 2000);
    let reset: u64 = first.header("ratelimit-reset").unwrap().parse().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(reset > now && reset <= now + 60 && reset.is_multiple_of(60), "{reset} vs {now}");
    let second = get(&base, "/projects?min_access_level=40").await;
    assert_eq!(second.status, 200);
    let after: u64 = second.header("ratelimit-remaining").unwrap().parse().unwrap();
    assert!(after < remaining, "{after} < {remaining}");
    // Counts, the user and the token are never part of the burst.
    assert_eq!(get(&base, "/projects/101/pipelines").await.status, 200);
    let limited = get(&base, "/personal_access_tokens/self/associations").await;
    assert_eq!((limited.status, limited.text.as_str()), (429, "Retry later\n"));
    assert_eq!(limited.header("content-type").as_deref(), Some("text/plain"));
    assert_eq!(limited.header("retry-after").as_deref(), Some("7"));
    assert!(limited.headers.keys().all(|k| !k.as_str().starts_with("ratelimit")), "{:?}", limited.headers);
    let retried = get(&base, "/personal_access_tokens/self/associations").await;
    assert_eq!(retried.status, 200);
    assert!(retried.header("ratelimit-remaining").is_some());
    assert_eq!(fake.hits_to(Endpoint::Associations), 2);
    assert_eq!((fake.hits_to(Endpoint::Groups), fake.hits_to(Endpoint::Pipelines)), (1, 1));

    // Without retry_after_429 the 429 says nothing about when; rate_limit_remaining is told as set.
    let base =
        spawn(FakeGitlab { burst_429_every: Some(1), rate_limit_remaining: Some(5), ..FakeGitlab::default() }).await;
    let limited = get(&base, "/groups").await;
    assert_eq!((limited.status, limited.header("retry-after")), (429, None));
    assert_eq!(get(&base, "/user").await.header("ratelimit-remaining").as_deref(), Some("5"));
}

#[tokio::test]
async fn preview_counts_per_project() {
    let base = spawn(FakeGitlab::default()).await;
    let days_ago = |days: i64| {
        let at = time::OffsetDateTime::now_utc() - time::Duration::days(days);
        at.replace_nanosecond(0).unwrap().format(&time::format_description::well_known::Rfc3339).unwrap()
    };
    let since = format!("created_after={}&per_page=1", days_ago(90));
    let count = |path: String| {
        let base = base.clone();
        async move {
            let a = get(&base, &path).await;
            assert_eq!(a.status, 200, "{path}: {}", a.text);
            assert_eq!(a.json().as_array().map(Vec::len), Some(1), "{path}");
            a.total()
        }
    };
    // Merge requests of project 101 in the last 90 days: (101*7)%40+1 = 28, two thirds merged;
    // 101%4+3 = 4 more, 120 days old or more.
    assert_eq!(count(format!("/projects/101/merge_requests?{since}&state=all")).await, Some(28));
    assert_eq!(count(format!("/projects/101/merge_requests?{since}&state=merged")).await, Some(18));
    assert_eq!(count(format!("/projects/101/merge_requests?{since}&state=opened")).await, Some(10));
    assert_eq!(count(format!("/projects/acme%2Fplatform%2Fapi/merge_requests?{since}")).await, Some(28), "by path");
    assert_eq!(count("/projects/101/merge_requests?per_page=1".into()).await, Some(32), "no date: all of them");
    let old = format!("created_before={}&per_page=1", days_ago(60));
    assert_eq!(count(format!("/projects/101/merge_requests?{old}")).await, Some(4), "only the old ones");
    let future = get(&base, &format!("/projects/101/merge_requests?created_after={}", days_ago(-1))).await;
    assert_eq!((future.total(), future.json()), (Some(0), json!([])));
    // Pipelines: (id*13)%200, but project 101 has 12,000: no x-total, x-next-page goes on.
    let pipelines = get(&base, &format!("/projects/101/pipelines?updated_after={}&per_page=1", days_ago(90))).await;
    assert_eq!((pipelines.status, pipelines.total(), pipelines.header("x-total-pages")), (200, None, None));
    assert_eq!(pipelines.header("x-next-page").as_deref(), Some("2"));
    assert_eq!(count(format!("/projects/102/pipelines?updated_after={}&per_page=1", days_ago(90))).await, Some(126));
    assert_eq!(count("/projects/102/pipelines?per_page=1".into()).await, Some(126 + 2));
    // Deployments: (id%5)*3 (and id%3+1 old ones).
    let recent = format!("updated_after={}&order_by=updated_at&per_page=1", days_ago(90));
    assert_eq!(count(format!("/projects/acme%2Fplatform%2Fworker/deployments?{recent}")).await, Some(6));
    assert_eq!(count("/projects/acme%2Fplatform%2Fworker/deployments?per_page=1".into()).await, Some(6 + 1));
    let none = get(&base, &format!("/projects/105/deployments?{recent}")).await;
    assert_eq!((none.total(), none.json()), (Some(0), json!([])));
    // A date without a time is midnight UTC, and inclusive.
    let today = time::OffsetDateTime::now_utc().date();
    assert_eq!(
        count(format!("/projects/102/deployments?updated_after={}&per_page=1", today - time::Duration::days(1))).await,
        Some(1)
    );
    // A private project where jdoe is Guest: 403. Unknown: 404.
    let guest = get(&base, "/projects/contractors%2Fportal/merge_requests?per_page=1").await;
    assert_eq!((guest.status, guest.json()), (403, json!({"message": "403 Forbidden"})));
    assert_eq!(get(&base, "/projects/108/pipelines").await.status, 403);
    let unknown = get(&base, "/projects/999/pipelines").await;
    assert_eq!((unknown.status, unknown.json()), (404, json!({"message": "404 Project Not Found"})));
    let other = get_url(&format!("{base}/api/v4/projects/101/pipelines"), "glpat-guest").await;
    assert_eq!(other.status, 404, "not a project of the guest's");
    // Dates must be dates.
    let refused = get(&base, "/projects/101/merge_requests?created_after=last-week").await;
    assert_eq!((refused.status, refused.json()), (400, json!({"error": "created_after is invalid"})));
    assert_eq!(get(&base, "/projects/101/merge_requests?state=draft").await.status, 400);
}

#[tokio::test]
async fn a_project_added_at_run_time_is_listed_with_its_groups_level() {
    let fake = FakeGitlab::default();
    let base = spawn(fake.clone()).await;
    let client = reqwest::Client::new();
    let add =
        |path: &str| client.post(format!("{base}/_fake/projects")).json(&json!({"path_with_namespace": path})).send();
    let added = add("acme/platform/new-service").await.unwrap();
    assert_eq!(added.status(), 201);
    let project: Value = added.json().await.unwrap();
    assert_eq!(project["id"], 111, "the next free id");
    assert_eq!(project["permissions"]["group_access"]["access_level"], 40, "inherited from acme");
    assert_eq!((project["visibility"].as_str(), project["archived"].as_bool()), (Some("private"), Some(false)));
    assert_eq!(add("nowhere/new-service").await.unwrap().status(), 404);
    assert_eq!(add("acme/platform/new-service").await.unwrap().status(), 400, "taken");
    assert_eq!(add("acme/-bad").await.unwrap().status(), 400);

    let listed = get(&base, "/projects?membership=true&min_access_level=40&per_page=100").await;
    assert_eq!(listed.total(), Some(6));
    assert_eq!(permission_levels(&listed.json()).get("acme/platform/new-service"), Some(&40));
    let associations = get(&base, "/personal_access_tokens/self/associations?per_page=100").await.json();
    assert_eq!(association_levels(&associations["projects"]).get("acme/platform/new-service"), Some(&40));
    assert_eq!(fake.add_project("contractors/extra"), Ok(112));
    assert_eq!(fake.add_project("contractors/extra").map_err(|e| e.contains("taken")), Err(true));
    let extra = get(&base, "/projects/contractors%2Fextra/pipelines").await;
    assert_eq!(extra.status, 403, "Guest through contractors, private");
    assert_eq!(fake.hits_to(Endpoint::FakeControl), 4);
}

#[tokio::test]
async fn no_query_string_breaks_the_double() {
    let base = spawn(FakeGitlab::big(40, 300)).await;
    let queries = [
        "page=-1",
        "page=18446744073709551615&per_page=100",
        "per_page=99999999999999999999999",
        "page=0&per_page=0",
        "min_access_level=abc",
        "pagination=keyset&order_by=id&id_after=18446744073709551615",
        "pagination=keyset&order_by=id&sort=desc&id_before=0",
        "pagination=keyset&order_by=id&id_after=-4",
        "search=%FF%FE&archived=maybe",
        "sort=sideways&order_by=%00",
        "%ZZ=%&&&==&page",
        "membership=true&search=",
        "state=all&created_after=9999-99-99",
    ];
    for path in ["/projects", "/groups", "/personal_access_tokens/self/associations", "/projects/1/merge_requests"] {
        for query in queries {
            let a = get(&base, &format!("{path}?{query}")).await;
            assert!([200, 400, 405].contains(&a.status), "{path}?{query}: {} {}", a.status, a.text);
        }
    }
    for path in ["/projects/%FF/pipelines", "/projects/%/pipelines", "/projects//pipelines", "/projects/1/nothing"] {
        let a = get(&base, path).await;
        assert_eq!(a.status, 404, "{path}: {}", a.text);
    }
}
