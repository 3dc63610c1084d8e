//! What a connection covers, end to end over HTTP against the fake GitLab: discovery (both of
//! GitLab's routes, big instances, 429s), the selection (API and the picker's form without
//! JavaScript), new projects of an included group after a refresh, the preview, and who may see
//! and change it. Runs on SQLite and, in `make unit`, on PostgreSQL.

use crate::support::*;
use fake_gitlab::FakeGitlab;
use serde_json::Value;
use std::time::Duration;

const HTML: &str = "text/html";

pub(crate) async fn get_json(client: &reqwest::Client, onramp: &Onramp, path: &str) -> (u16, Value) {
    let r = client.get(onramp.server.url(path)).header("accept", "application/json").send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

pub(crate) async fn send_json(
    client: &reqwest::Client,
    onramp: &Onramp,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, Value) {
    let r = client
        .request(method.parse().unwrap(), onramp.server.url(path))
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

pub(crate) fn scope_path(id: &str) -> String {
    format!("/api/gitlab/connections/{id}/scope")
}

/// Waits until discovery is no longer running (at most 30 s, then fails); the last answer.
pub(crate) async fn ready(client: &reqwest::Client, onramp: &Onramp, id: &str) -> Value {
    for _ in 0..600 {
        let (status, answer) = get_json(client, onramp, &scope_path(id)).await;
        assert_eq!(status, 200, "{answer}");
        if answer["state"] != "discovering" {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("discovery did not finish");
}

/// (path, access level, archived, readable) of every project, sorted.
fn projects(answer: &Value) -> Vec<(String, u64, bool, bool)> {
    let mut all: Vec<_> = answer["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["path_with_namespace"].as_str().unwrap().to_owned(),
                p["access_level"].as_u64().unwrap(),
                p["archived"].as_bool().unwrap(),
                p["readable"].as_bool().unwrap(),
            )
        })
        .collect();
    all.sort();
    all
}

fn project<'a>(answer: &'a Value, path: &str) -> &'a Value {
    answer["projects"].as_array().unwrap().iter().find(|p| p["path_with_namespace"] == path).unwrap_or_else(|| {
        panic!("no project {path} in {answer}");
    })
}

async fn connected(fake: FakeGitlab) -> (Onramp, Running, String) {
    let fake = spawn_fake(fake).await;
    let onramp = spawn_onramp_with(|c| c.settings.discovery.backoff_ms = 10).await;
    connect(&onramp, &onramp.client, &fake, "glpat-good").await;
    let (_, id) = only_connection(&onramp).await;
    (onramp, fake, id)
}

#[tokio::test]
async fn discovery_lists_every_reachable_group_and_project_with_roles_the_same_on_old_and_new_gitlab() {
    let (onramp, _fake, id) = connected(FakeGitlab::default()).await;
    let answer = ready(&onramp.client, &onramp, &id).await;
    assert_eq!(answer["state"], "ready", "{answer}");
    assert!(answer["discovered_at"].as_i64().unwrap() > 0);
    let groups: Vec<(String, u64)> = answer["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["full_path"].as_str().unwrap().to_owned(), g["access_level"].as_u64().unwrap()))
        .collect();
    assert_eq!(groups, [("acme".into(), 40), ("acme/platform".into(), 40), ("contractors".into(), 10)]);
    let found = projects(&answer);
    let paths: Vec<&str> = found.iter().map(|p| p.0.as_str()).collect();
    // Personal, shared with a group, a direct membership outside the user's groups, archived: all there.
    for expected in ["jdoe/dotfiles", "partner/sdk", "data-team/warehouse", "acme/legacy", "acme/platform/api"] {
        assert!(paths.contains(&expected), "{expected} missing from {paths:?}");
    }
    let portal = project(&answer, "contractors/portal");
    assert_eq!((portal["access_level"].as_u64(), portal["readable"].as_bool()), (Some(10), Some(false)));
    assert!(portal["problem"].as_str().unwrap().contains("Reporter"), "{portal}");
    assert_eq!(project(&answer, "acme/legacy")["archived"], true);
    assert!(answer["projects"].as_array().unwrap().iter().all(|p| p["included"] == false && p["new"] == false));

    // GitLab before 17.4 (no associations endpoint): the same answer from /groups and /projects.
    let (old, _old_fake, old_id) = connected(FakeGitlab { no_associations: true, ..Default::default() }).await;
    let old_answer = ready(&old.client, &old, &old_id).await;
    assert_eq!(old_answer["state"], "ready", "{old_answer}");
    assert_eq!(projects(&old_answer), found);
    assert_eq!(old_answer["groups"], answer["groups"]);
}

#[tokio::test]
async fn a_selection_includes_groups_minus_exclusions_and_picks_up_new_projects_after_a_refresh() {
    let (onramp, fake_gitlab, id) = {
        let fake = FakeGitlab::default();
        let handle = fake.clone();
        let (onramp, _running, id) = connected(fake).await;
        (onramp, handle, id)
    };
    ready(&onramp.client, &onramp, &id).await;
    let selection =
        r#"{"groups": ["acme/platform"], "projects": ["jdoe/dotfiles"], "exclude": ["acme/platform/worker"]}"#;
    let (status, saved) = send_json(&onramp.client, &onramp, "PUT", &scope_path(&id), selection).await;
    assert_eq!(status, 200, "{saved}");
    let answer = ready(&onramp.client, &onramp, &id).await;
    assert_eq!(project(&answer, "acme/platform/api")["included"], true);
    assert_eq!(project(&answer, "acme/platform/worker")["included"], false, "excluded");
    assert_eq!(project(&answer, "jdoe/dotfiles")["included"], true);
    assert_eq!(project(&answer, "acme/website")["included"], false);
    let platform = answer["groups"].as_array().unwrap().iter().find(|g| g["full_path"] == "acme/platform").unwrap();
    assert_eq!(platform["included"], true);

    // Wrong paths and shapes are refused with what to do; nothing changes.
    for bad in [r#"{"groups": ["acme/plaform"]}"#, r#"{"projects": "jdoe/dotfiles"}"#, "not json"] {
        let (status, error) = send_json(&onramp.client, &onramp, "PUT", &scope_path(&id), bad).await;
        assert_eq!(status, 400, "{bad}: {error}");
        assert!(error["message"].as_str().unwrap().len() > 20, "{error}");
    }
    assert_eq!(ready(&onramp.client, &onramp, &id).await["selection"], saved);

    // A project created in the included group shows up after a refresh, new and included.
    fake_gitlab.add_project("acme/platform/new-service").unwrap();
    let r = onramp.client.post(onramp.server.url(&format!("{}/refresh", scope_path(&id)))).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let answer = ready(&onramp.client, &onramp, &id).await;
    let new = project(&answer, "acme/platform/new-service");
    assert_eq!((new["new"].as_bool(), new["included"].as_bool()), (Some(true), Some(true)), "{new}");
    assert_eq!(project(&answer, "acme/platform/api")["new"], false);
}

#[tokio::test]
async fn the_preview_counts_the_last_90_days_per_project_and_flags_what_cannot_be_read() {
    let (onramp, _fake, id) = connected(FakeGitlab::default()).await;
    ready(&onramp.client, &onramp, &id).await;
    let selection = r#"{"groups": ["acme/platform"], "projects": ["contractors/portal", "acme/legacy"]}"#;
    let (status, _) = send_json(&onramp.client, &onramp, "PUT", &scope_path(&id), selection).await;
    assert_eq!(status, 200);
    let (status, preview) = get_json(&onramp.client, &onramp, &format!("{}/preview", scope_path(&id))).await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["days"], 90);
    let rows = preview["projects"].as_array().unwrap();
    let row = |path: &str| rows.iter().find(|r| r["path_with_namespace"] == path).unwrap();
    // Project 101 has more pipelines than GitLab counts.
    assert_eq!(row("acme/platform/api")["pipelines"], "10000+");
    // Exact: the double's items of the last 90 days only (it has older ones too).
    assert_eq!(row("acme/platform/worker")["merge_requests_opened"], 35);
    assert!(row("contractors/portal")["problem"].as_str().unwrap().contains("Reporter"));
    assert!(row("acme/legacy")["problem"].as_str().unwrap().contains("Archived"));
    assert!(row("acme/platform/worker")["problem"].is_null());
    let sum = |key: &str| rows.iter().filter_map(|r| r[key].as_u64()).sum::<u64>();
    assert_eq!(preview["totals"]["deployments"].as_u64(), Some(sum("deployments")));
    assert!(preview["totals"]["pipelines"].as_str().unwrap().ends_with('+'), "a total over an uncounted one");
}

#[tokio::test]
async fn a_big_instance_is_listed_whole_with_few_requests_in_flight_through_429s() {
    // Older GitLab (no associations): keyset pages for more than 10,000 projects, bursts of 429
    // without headers.
    let fake = FakeGitlab { no_associations: true, burst_429_every: Some(9), ..FakeGitlab::big(500, 10_050) };
    let handle = fake.clone();
    let (onramp, _running, id) = connected(fake).await;
    let answer = ready(&onramp.client, &onramp, &id).await;
    assert_eq!(answer["state"], "ready", "{}", answer["error"]);
    assert_eq!(answer["total_projects"].as_u64(), Some(answer["found"]["projects"].as_u64().unwrap()));
    assert!(answer["found"]["projects"].as_u64().unwrap() >= 10_050, "{}", answer["found"]);
    assert!(answer["groups"].as_array().unwrap().len() > 400, "the user is in most of the 500 groups");
    assert!(handle.most_at_once() <= 4 + 1, "{} requests at once (the check's own included)", handle.most_at_once());
    // A plain GET returns everything; pages on request.
    let (_, page) = get_json(&onramp.client, &onramp, &format!("{}?per_page=100&page=3", scope_path(&id))).await;
    assert_eq!(page["projects"].as_array().unwrap().len(), 100);
    assert_eq!((page["page"].as_u64(), page["next_page"].as_u64()), (Some(3), Some(4)));
    // A page size above the most (10,000) is clamped, and the answer says so; following its next
    // links (or next_page) sees every project exactly once.
    let total = answer["found"]["projects"].as_u64().unwrap() as usize;
    let mut seen = std::collections::BTreeSet::new();
    let mut next = Some(format!("{}?per_page=25000&archived=true", scope_path(&id)));
    let mut pages = 0;
    while let Some(path) = next.take() {
        let r = onramp.client.get(onramp.server.url(&path)).send().await.unwrap();
        let link = r.headers().get("link").map(|l| l.to_str().unwrap().to_owned());
        let page: Value = r.json().await.unwrap();
        assert_eq!(page["per_page"], 10_000, "the size used, not the one asked for");
        assert_eq!(page["total_projects"].as_u64(), Some(total as u64));
        for p in page["projects"].as_array().unwrap() {
            assert!(seen.insert(p["path_with_namespace"].as_str().unwrap().to_owned()), "{p} seen twice");
        }
        pages += 1;
        match (link, page["next_page"].as_u64()) {
            (Some(link), Some(n)) => {
                assert!(link.ends_with("rel=\"next\"") && link.contains(&format!("page={n}")), "{link}");
                assert!(link.contains("per_page=10000") && link.contains("archived=true"), "{link}");
                next = Some(link.trim_start_matches('<').split_once('>').unwrap().0.to_owned());
            }
            (None, None) => {}
            other => panic!("the Link header and next_page disagree: {other:?}"),
        }
    }
    assert_eq!((seen.len(), pages), (total, total.div_ceil(10_000)));
}

#[tokio::test]
async fn only_members_see_a_scope_and_only_owners_and_admins_change_it() {
    let (onramp, _fake, id) = connected(FakeGitlab::default()).await;
    ready(&onramp.client, &onramp, &id).await;
    let (status, error) = get_json(&onramp.anon, &onramp, &scope_path(&id)).await;
    assert_eq!(status, 401, "{error}");
    let stranger = browser_client(&onramp.server);
    onramp.sign_up(&stranger, "stranger@example.com").await;
    for path in [scope_path(&id), format!("{}/preview", scope_path(&id))] {
        let (status, _) = get_json(&stranger, &onramp, &path).await;
        assert_eq!(status, 404, "{path}: another workspace's connection is no one's");
    }
    let (status, _) = send_json(&stranger, &onramp, "PUT", &scope_path(&id), r#"{"groups": ["acme"]}"#).await;
    assert_eq!(status, 404);
    // A viewer of the workspace sees, and may not change.
    let viewer = member_of(&onramp, "viewer", "viewer@example.com").await;
    let (status, _) = get_json(&viewer, &onramp, &scope_path(&id)).await;
    assert_eq!(status, 200);
    let (status, error) = send_json(&viewer, &onramp, "PUT", &scope_path(&id), r#"{"groups": ["acme"]}"#).await;
    assert_eq!(status, 403, "{error}");
    let r = viewer.post(onramp.server.url(&format!("{}/refresh", scope_path(&id)))).send().await.unwrap();
    assert_eq!(r.status(), 403);
    // An API token works like the session.
    let token = onramp.create_api_token("script").await;
    let r = onramp.anon.get(onramp.server.url(&scope_path(&id))).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn without_javascript_the_picker_searches_includes_a_group_excludes_a_project_previews_and_saves() {
    let (onramp, _fake, id) = connected(FakeGitlab::default()).await;
    ready(&onramp.client, &onramp, &id).await;
    let picker = format!("/integrations/gitlab/connections/{id}/scope");
    let (status, page) = onramp.get(&picker).await;
    assert_eq!(status, 200);
    assert!(page.contains("acme/platform") && page.contains("Maintainer") && page.contains("Guest"), "{page}");
    assert!(!page.contains("acme/legacy"), "archived projects are hidden by default");
    let (_, found) = onramp.get(&format!("{picker}?q=WORKER")).await;
    assert!(found.contains("acme/platform/worker") && !found.contains("acme/website"), "search ignores case");

    // Tick the group acme/platform (the page showed it unticked).
    let form = [("shown_group", "acme/platform"), ("group_in", "acme/platform"), ("intent", "apply")];
    let r = post(&onramp.client, &onramp, &picker, HTML, &form).await;
    assert_eq!(r.status(), 303);
    let (_, page) = onramp.get(&format!("{picker}?q=platform")).await;
    assert!(page.contains("(not saved yet)"), "a draft until saved");
    // Untick one project of it: left out; then preview.
    let form = [
        ("q", "platform"),
        ("shown_project", "acme/platform/worker"),
        ("was_project", "acme/platform/worker"),
        ("shown_project", "acme/platform/api"),
        ("was_project", "acme/platform/api"),
        ("project_in", "acme/platform/api"),
        ("intent", "preview"),
    ];
    let r = post(&onramp.client, &onramp, &picker, HTML, &form).await;
    assert_eq!(r.status(), 303);
    let to = location(&r);
    assert!(to.starts_with(&format!("{picker}/preview")), "{to}");
    let (status, preview) = onramp.get(&to).await;
    assert_eq!(status, 200);
    assert!(preview.contains("acme/platform/api") && !preview.contains("acme/platform/worker"), "{preview}");
    assert!(preview.contains("preview-totals"));
    // Save: the connection's page says what is included.
    let r = post(&onramp.client, &onramp, &picker, HTML, &[("intent", "save")]).await;
    assert_eq!(location(&r), format!("/integrations/gitlab/connections/{id}?scope=saved#scope"));
    let (_, connection) = onramp.get(&format!("/integrations/gitlab/connections/{id}")).await;
    assert!(connection.contains("1 whole group") && connection.contains("1 left out"), "{connection}");
    let (_, answer) = get_json(&onramp.client, &onramp, &scope_path(&id)).await;
    assert_eq!(answer["selection"]["groups"], serde_json::json!(["acme/platform"]));
    assert_eq!(answer["selection"]["exclude"], serde_json::json!(["acme/platform/worker"]));
    assert_eq!(project(&answer, "acme/platform/worker")["included"], false);
    assert_eq!(project(&answer, "acme/platform/api")["included"], true);
}

#[tokio::test]
async fn the_daily_recheck_refreshes_the_list_and_picks_up_new_projects() {
    let fake = FakeGitlab::default();
    let handle = fake.clone();
    let (onramp, _running, id) = connected(fake).await;
    ready(&onramp.client, &onramp, &id).await;
    let (status, _) = send_json(&onramp.client, &onramp, "PUT", &scope_path(&id), r#"{"groups": ["acme"]}"#).await;
    assert_eq!(status, 200);
    handle.add_project("acme/platform/nightly").unwrap();
    // The re-check pass, a day and an hour after the connection was checked: it lists again.
    let now = time::OffsetDateTime::now_utc() + time::Duration::hours(25);
    let done = app::jobs::recheck::run(&onramp.state, now, Duration::from_secs(24 * 3600)).await.unwrap();
    assert_eq!((done.checked, done.refreshed), (1, 1), "{done:?}");
    let (_, answer) = get_json(&onramp.client, &onramp, &scope_path(&id)).await;
    let seen = answer["projects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["path_with_namespace"] == "acme/platform/nightly")
        .cloned();
    let nightly = seen.expect("the re-check pass listed the groups and projects again");
    assert_eq!((nightly["new"].as_bool(), nightly["included"].as_bool()), (Some(true), Some(true)));
}

#[tokio::test]
async fn a_selection_saved_without_a_preview_gets_one_on_the_connections_page() {
    let (onramp, _fake, id) = connected(FakeGitlab::default()).await;
    ready(&onramp.client, &onramp, &id).await;
    let picker = format!("/integrations/gitlab/connections/{id}/scope");
    let form = [("shown_group", "acme/platform"), ("group_in", "acme/platform"), ("intent", "save")];
    let r = post(&onramp.client, &onramp, &picker, HTML, &form).await;
    assert_eq!(location(&r), format!("/integrations/gitlab/connections/{id}?scope=saved#scope"));
    let mut page = String::new();
    for _ in 0..100 {
        page = onramp.get(&format!("/integrations/gitlab/connections/{id}")).await.1;
        if page.contains("preview-totals") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(page.contains("preview-totals") && page.contains("acme/platform/api"), "{page}");
}

#[tokio::test]
async fn a_list_left_running_by_a_stopped_process_can_be_started_again_from_the_page() {
    let (onramp, _fake, id) = connected(FakeGitlab::default()).await;
    ready(&onramp.client, &onramp, &id).await;
    // As if the process making the list had died an hour ago.
    sqlx::query("UPDATE connection_scopes SET state = 'discovering', started_at = $1 WHERE integration_id = $2")
        .bind(app::store::now() - 3600)
        .bind(&id)
        .execute(onramp.state.db.pool())
        .await
        .unwrap();
    let picker = format!("/integrations/gitlab/connections/{id}/scope");
    let (_, page) = onramp.get(&picker).await;
    assert!(page.contains("running for more than 15 minutes") && page.contains("Refresh the list"), "{page}");
    let r = post(&onramp.client, &onramp, &format!("{picker}/refresh"), HTML, &[]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(ready(&onramp.client, &onramp, &id).await["state"], "ready");
}

/// Sets the connection's row as a first discovery that failed leaves it: no snapshot.
async fn as_if_the_first_list_failed(onramp: &Onramp, id: &str) {
    sqlx::query(
        "UPDATE connection_scopes SET state = 'failed', error = 'GitLab said no', snapshot = NULL, \
         discovered_at = NULL WHERE integration_id = $1",
    )
    .bind(id)
    .execute(onramp.state.db.pool())
    .await
    .unwrap();
}

#[tokio::test]
async fn a_selection_is_refused_until_a_list_exists_and_must_name_what_the_list_has() {
    let (onramp, _fake, id) = connected(FakeGitlab::default()).await;
    ready(&onramp.client, &onramp, &id).await;
    as_if_the_first_list_failed(&onramp, &id).await;
    // Nothing to check the paths against: refused, saying what to do; nothing saved.
    let (status, error) =
        send_json(&onramp.client, &onramp, "PUT", &scope_path(&id), r#"{"groups": ["anything"]}"#).await;
    assert_eq!(status, 409, "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("wait") && message.contains("refresh"), "{message}");
    let (_, answer) = get_json(&onramp.client, &onramp, &scope_path(&id)).await;
    assert_eq!(answer["selection"]["groups"], serde_json::json!([]), "{answer}");
    // The picker's form without a list: back to the picker, nothing saved.
    let picker = format!("/integrations/gitlab/connections/{id}/scope");
    let form = [("shown_group", "anything"), ("group_in", "anything"), ("intent", "save")];
    assert_eq!(post(&onramp.client, &onramp, &picker, HTML, &form).await.status(), 303);
    assert_eq!(
        get_json(&onramp.client, &onramp, &scope_path(&id)).await.1["selection"]["groups"],
        serde_json::json!([])
    );

    // With a list: the most paths a list may hold, every one unknown, is refused by name, and
    // one more than the most by its size.
    let r = onramp.client.post(onramp.server.url(&format!("{}/refresh", scope_path(&id)))).send().await.unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(ready(&onramp.client, &onramp, &id).await["state"], "ready");
    for (n, said) in [(20_000, "acme/nope-0"), (20_001, "at most 20000")] {
        let paths: Vec<String> = (0..n).map(|i| format!("acme/nope-{i}")).collect();
        let body = serde_json::json!({ "groups": ["acme"], "exclude": paths }).to_string();
        let (status, error) = send_json(&onramp.client, &onramp, "PUT", &scope_path(&id), &body).await;
        assert_eq!(status, 400, "{n}: {error}");
        assert!(error["message"].as_str().unwrap().contains(said), "{n}: {error}");
    }
    let (status, _) = send_json(&onramp.client, &onramp, "PUT", &scope_path(&id), r#"{"groups": ["acme"]}"#).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn saving_a_selection_is_audited_with_the_client_address() {
    let (onramp, _fake, id) = connected(FakeGitlab::default()).await;
    ready(&onramp.client, &onramp, &id).await;
    let (status, _) = send_json(&onramp.client, &onramp, "PUT", &scope_path(&id), r#"{"groups": ["acme"]}"#).await;
    assert_eq!(status, 200);
    let picker = format!("/integrations/gitlab/connections/{id}/scope");
    let form = [("shown_group", "acme/platform"), ("group_in", "acme/platform"), ("intent", "save")];
    assert_eq!(post(&onramp.client, &onramp, &picker, HTML, &form).await.status(), 303);
    let (status, events) = get_json(&onramp.client, &onramp, "/api/audit").await;
    assert_eq!(status, 200, "{events}");
    let saved: Vec<&Value> =
        events.as_array().unwrap().iter().filter(|e| e["action"] == "connection.scope_saved").collect();
    assert_eq!(saved.len(), 2, "{events}");
    assert!(saved.iter().all(|e| e["ip"] == "127.0.0.1"), "{saved:?}");
}

#[tokio::test]
async fn pages_read_a_snapshot_parsed_once_per_list_and_a_new_list_replaces_it() {
    let fake = FakeGitlab::default();
    let handle = fake.clone();
    let (onramp, _running, id) = connected(fake).await;
    ready(&onramp.client, &onramp, &id).await;
    let cache = onramp.state.db.snapshots();
    let connection = format!("/integrations/gitlab/connections/{id}");
    let picker = format!("{connection}/scope");
    let (_, first) = onramp.get(&picker).await;
    assert!(first.contains("acme/platform/api"));
    let parsed = cache.parses();
    for _ in 0..12 {
        assert_eq!(onramp.get(&connection).await.0, 200);
        assert_eq!(onramp.get(&format!("{picker}?q=API")).await.0, 200);
        assert_eq!(get_json(&onramp.client, &onramp, &scope_path(&id)).await.0, 200);
    }
    assert_eq!(cache.parses(), parsed, "36 more views, no snapshot parsed again");
    // A new list is a new version: read and parsed once, and shown.
    handle.add_project("acme/platform/fresh").unwrap();
    let r = onramp.client.post(onramp.server.url(&format!("{}/refresh", scope_path(&id)))).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let answer = ready(&onramp.client, &onramp, &id).await;
    assert_eq!(project(&answer, "acme/platform/fresh")["new"], true);
    let (_, page) = onramp.get(&format!("{picker}?q=fresh")).await;
    assert!(page.contains("acme/platform/fresh"), "{page}");
    assert_eq!(cache.parses(), parsed + 1, "the new list parsed once");

    // The connection's page shows counts only: stored with the selection, so even a process that
    // has parsed nothing yet (the cache emptied) does not read the snapshot for it.
    let (status, _) = send_json(&onramp.client, &onramp, "PUT", &scope_path(&id), r#"{"groups": ["acme"]}"#).await;
    assert_eq!(status, 200);
    let answer = ready(&onramp.client, &onramp, &id).await;
    let included = answer["projects"].as_array().unwrap().iter().filter(|p| p["included"] == true).count();
    assert!(included > 2, "{answer}");
    cache.clear();
    let parsed = cache.parses();
    for _ in 0..12 {
        let (status, page) = onramp.get(&connection).await;
        assert_eq!(status, 200);
        assert!(page.contains(&format!("{included} projects included")), "{page}");
    }
    assert_eq!(cache.parses(), parsed, "no snapshot parsed for the connection's page");
    // A new list counts the saved selection again, new projects included.
    handle.add_project("acme/platform/fresher").unwrap();
    let r = onramp.client.post(onramp.server.url(&format!("{}/refresh", scope_path(&id)))).send().await.unwrap();
    assert_eq!(r.status(), 202);
    ready(&onramp.client, &onramp, &id).await;
    let (_, page) = onramp.get(&connection).await;
    assert!(page.contains(&format!("{} projects included", included + 1)), "{page}");
}

#[tokio::test]
async fn a_workspace_holds_at_most_50_connections_and_the_51st_is_refused_with_the_cap() {
    use app::gitlab::report::{GitlabUser, Report, TokenInfo};
    let fake = spawn_fake(FakeGitlab::default()).await;
    let onramp = spawn_onramp().await;
    let (ws, user): (String, String) = {
        let row = sqlx::query("SELECT workspace_id, user_id FROM memberships")
            .fetch_one(onramp.state.db.pool())
            .await
            .unwrap();
        (sqlx::Row::get(&row, "workspace_id"), sqlx::Row::get(&row, "user_id"))
    };
    let token = app::gitlab::token::GitlabToken::parse("glpat-filler-token-1234").unwrap();
    let report = |n: i64| {
        let user = GitlabUser { username: format!("filler-{n}"), name: "F".into(), web_url: "u".into(), bot: false };
        let token = TokenInfo { name: Some("Onramp".into()), scopes: vec!["api".into()], ..Default::default() };
        Report::new("https://gitlab.example.com".into(), Some("17.5.1".into()), Some(user), Some(token), vec![], 5)
    };
    for n in 0..app::integration::MAX_PER_WORKSPACE {
        let saved =
            app::store::integrations::save(&onramp.state.db, &onramp.state.keys, &ws, &user, &report(n), &token, "")
                .await
                .unwrap();
        assert!(matches!(saved, app::store::integrations::Saved::Saved(_)), "{n}: {saved:?}");
    }
    let r = onramp
        .client
        .post(onramp.server.url("/api/gitlab/validate"))
        .header("accept", "text/html")
        .form(&[("base_url", fake.url("").as_str()), ("token", "glpat-good")])
        .send()
        .await
        .unwrap();
    // The fake's token passes with warnings: step 12 keeps the check, "Integrate anyway" saves.
    let check = location(&r).split("check=").nth(1).unwrap().to_owned();
    let r = post(&onramp.client, &onramp, "/api/gitlab/accept", HTML, &[("check", &check)]).await;
    let to = location(&r);
    assert_eq!(to, "/settings/integrations?full=1");
    let r = post(&onramp.client, &onramp, "/api/gitlab/accept", "application/json", &[("check", &check)]).await;
    assert_eq!(r.status(), 409);
    let error: Value = r.json().await.unwrap();
    assert!(error["message"].as_str().unwrap().contains("50 GitLab connections"), "{error}");
    let (_, page) = onramp.get(&to).await;
    assert!(page.contains("This workspace has 50 GitLab connections, the most one workspace may have"), "{page}");
    let count = sqlx::query("SELECT COUNT(*) AS n FROM integrations").fetch_one(onramp.state.db.pool()).await.unwrap();
    assert_eq!(sqlx::Row::get::<i64, _>(&count, "n"), 50, "nothing saved");
}
