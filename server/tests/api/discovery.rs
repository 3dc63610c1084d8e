//! Discovery and the preview against a double that answers as GitLab's source does
//! (crates/fake-gitlab): what the associations list without and with `min_access_level`, the
//! archived and shared projects they do not describe, the paging GitLab sends (groups past the
//! projects' last page, keyset `Link`s), exact date-filtered counts, who may make GitLab count,
//! one preview at a time, the request budget, and discovery turns per workspace.

use crate::scope::{get_json, ready, scope_path, send_json};
use crate::support::*;
use fake_gitlab::{Endpoint, FakeGitlab, Hold, World};
use serde_json::Value;
use std::time::Duration;

async fn put_selection(client: &reqwest::Client, onramp: &Onramp, id: &str, body: &str) {
    let (status, answer) = send_json(client, onramp, "PUT", &scope_path(id), body).await;
    assert_eq!(status, 200, "{answer}");
}

fn project<'a>(answer: &'a Value, path: &str) -> Option<&'a Value> {
    answer["projects"].as_array().unwrap().iter().find(|p| p["path_with_namespace"] == path)
}

async fn connected_with(fake: FakeGitlab, adjust: impl FnOnce(&mut server::Config)) -> (Onramp, Running, String) {
    let fake = spawn_fake(fake).await;
    let onramp = spawn_onramp_with(|c| {
        c.settings.discovery.backoff_ms = 10;
        adjust(c);
    })
    .await;
    connect(&onramp, &onramp.client, &fake, "glpat-good").await;
    let (_, id) = only_connection(&onramp).await;
    (onramp, fake, id)
}

/// Requests to the three count endpoints.
fn counts_asked(fake: &FakeGitlab) -> usize {
    [Endpoint::MergeRequests, Endpoint::Pipelines, Endpoint::Deployments].iter().map(|e| fake.hits_to(*e)).sum()
}

#[tokio::test]
async fn on_17_4_only_memberships_are_listed_archived_ones_as_archived_and_a_shared_project_is_readable() {
    let fake = FakeGitlab::default();
    let handle = fake.clone();
    let (onramp, _running, id) = connected_with(fake, |_| {}).await;
    let answer = ready(&onramp.client, &onramp, &id).await;
    assert_eq!(answer["state"], "ready", "{answer}");
    // Without min_access_level GitLab would list a stranger's public group and project too.
    assert!(project(&answer, "gitlab-org/gitlab").is_none(), "a stranger's public project in the picker");
    assert!(answer["groups"].as_array().unwrap().iter().all(|g| g["full_path"] != "gitlab-org"), "{answer}");
    let associations: Vec<String> = handle
        .hits()
        .into_iter()
        .filter(|h| handle.endpoint_of(&h.path) == Endpoint::Associations)
        .map(|h| h.query)
        .collect();
    assert_eq!(associations, ["min_access_level=10&per_page=100&page=1"]);
    // The association entity has no `archived`: listed apart, and shown.
    assert_eq!(project(&answer, "acme/legacy").map(|p| p["archived"].clone()), Some(Value::Bool(true)));
    assert_eq!(project(&answer, "acme/website").map(|p| p["archived"].clone()), Some(Value::Bool(false)));
    // Shared with acme as Developer: GitLab shows no level; the Reporter listing proves it readable.
    let sdk = project(&answer, "partner/sdk").expect("the shared project");
    assert_eq!((sdk["access_level"].as_u64(), sdk["readable"].as_bool()), (Some(20), Some(true)), "{sdk}");
    assert!(sdk["problem"].is_null(), "{sdk}");
    // A Guest of a private project stays listed, unreadable, with what to do.
    let portal = project(&answer, "contractors/portal").unwrap();
    assert_eq!((portal["access_level"].as_u64(), portal["readable"].as_bool()), (Some(10), Some(false)));
    // The follow-ups, once each: the archived listing and the Reporter listing of private projects.
    let listings: Vec<String> = handle
        .hits()
        .into_iter()
        .filter(|h| {
            handle.endpoint_of(&h.path) == Endpoint::Projects && h.query.contains("membership=true&simple=true")
        })
        .map(|h| h.query)
        .collect();
    assert_eq!(listings.len(), 2, "{listings:?}");
    assert!(listings.iter().any(|q| q.contains("archived=true") && q.contains("min_access_level=10")));
    assert!(listings.iter().any(|q| q.contains("min_access_level=20") && q.contains("visibility=private")));
}

#[tokio::test]
async fn groups_are_read_past_the_projects_last_page() {
    // 10 projects, hundreds of groups: GitLab's paging headers are the projects' (one page).
    let fake = FakeGitlab::big(500, 10);
    let (onramp, _running, id) = connected_with(fake, |_| {}).await;
    let answer = ready(&onramp.client, &onramp, &id).await;
    assert_eq!(answer["state"], "ready", "{answer}");
    let world = World::big(500, 10);
    let mine = world.groups().iter().filter(|g| g.level.is_some()).count();
    assert!(mine > 100, "more than one page of groups: {mine}");
    assert_eq!(answer["groups"].as_array().unwrap().len(), mine);
    assert_eq!(answer["total_projects"], 10);
}

#[tokio::test]
async fn keyset_pages_are_followed_as_gitlab_links_them() {
    // GitLab before 17.4, more than 10,000 projects: no totals, so keyset pages
    // (lib/gitlab/pagination/keyset/request_context.rb: `Link: <…&id_after=N>; rel="next"`).
    let fake = FakeGitlab { no_associations: true, ..FakeGitlab::big(20, 10_050) };
    let handle = fake.clone();
    let (onramp, _running, id) = connected_with(fake, |_| {}).await;
    let answer = ready(&onramp.client, &onramp, &id).await;
    assert_eq!(answer["state"], "ready", "{}", answer["error"]);
    assert_eq!(answer["total_projects"], 10_050);
    let keyset: Vec<String> = handle
        .hits()
        .into_iter()
        .filter(|h| handle.endpoint_of(&h.path) == Endpoint::Projects && h.query.contains("pagination=keyset"))
        .map(|h| h.query)
        .collect();
    assert_eq!(keyset.len(), 10_050usize.div_ceil(50), "one request per page, no page twice");
    assert!(!keyset[0].contains("id_after"), "{}", keyset[0]);
    let cursors: Vec<u64> = keyset[1..]
        .iter()
        .map(|q| {
            let after = q.split('&').find_map(|p| p.strip_prefix("id_after=")).unwrap_or_else(|| panic!("{q}"));
            after.parse().unwrap()
        })
        .collect();
    let expected: Vec<u64> = (1..=200).map(|page| page * 50).collect();
    assert_eq!(cursors, expected, "each page starts after the last id of the one before");
    assert!(keyset.iter().all(|q| q.contains("order_by=id") && q.contains("per_page=50")));
}

#[tokio::test]
async fn the_preview_counts_exactly_the_last_90_days() {
    let fake = FakeGitlab::default();
    let handle = fake.clone();
    let (onramp, _running, id) = connected_with(fake, |_| {}).await;
    ready(&onramp.client, &onramp, &id).await;
    let selection = r#"{"groups": ["acme/platform"], "projects": ["contractors/portal", "acme/legacy"]}"#;
    put_selection(&onramp.client, &onramp, &id, selection).await;
    let (status, preview) = get_json(&onramp.client, &onramp, &format!("{}/preview", scope_path(&id))).await;
    assert_eq!(status, 200, "{preview}");
    let rows = preview["projects"].as_array().unwrap();
    let row = |path: &str| {
        let r = rows.iter().find(|r| r["path_with_namespace"] == path).unwrap();
        [&r["merge_requests_opened"], &r["merge_requests_merged"], &r["pipelines"], &r["deployments"]]
            .map(|v| v.to_string())
    };
    // The double's recent items (1–30 days old) only; each project also has older ones.
    assert_eq!(row("acme/platform/api"), ["28", "18", "\"10000+\"", "3"]);
    assert_eq!(row("acme/platform/worker"), ["35", "23", "126", "6"]);
    assert_eq!(row("acme/legacy"), ["16", "10", "165", "0"]);
    assert_eq!(row("contractors/portal"), ["0", "0", "0", "0"], "not asked: Guest of a private project");
    let t = &preview["totals"];
    assert_eq!(
        [&t["merge_requests_opened"], &t["merge_requests_merged"], &t["pipelines"], &t["deployments"]]
            .map(|v| v.to_string()),
        ["79", "51", "\"10291+\"", "9"]
    );
    assert_eq!(counts_asked(&handle), 12, "four per readable project");
}

#[tokio::test]
async fn a_viewer_reads_the_kept_preview_and_never_makes_gitlab_count() {
    let fake = FakeGitlab::default();
    let handle = fake.clone();
    let (onramp, _running, id) = connected_with(fake, |_| {}).await;
    ready(&onramp.client, &onramp, &id).await;
    put_selection(&onramp.client, &onramp, &id, r#"{"groups": ["acme/platform"]}"#).await;
    let viewer = member_of(&onramp, "viewer", "viewer@example.com").await;
    let preview = format!("{}/preview", scope_path(&id));
    let (status, refused) = get_json(&viewer, &onramp, &preview).await;
    assert_eq!(status, 409, "nothing kept yet: {refused}");
    assert!(refused["message"].as_str().unwrap().contains("owner or admin"), "{refused}");
    let page_of = |client: &reqwest::Client| {
        let r = client.get(onramp.server.url(&format!("/integrations/gitlab/connections/{id}/scope/preview"))).send();
        async move { r.await.unwrap().text().await.unwrap() }
    };
    assert!(page_of(&viewer).await.contains("owner or admin"), "the viewer's page says who counts");
    assert_eq!(counts_asked(&handle), 0, "a viewer's preview sends GitLab nothing");
    // The owner counts the saved selection; the viewer then reads it, without a request.
    let (status, counted) = get_json(&onramp.client, &onramp, &preview).await;
    assert_eq!(status, 200, "{counted}");
    let asked = counts_asked(&handle);
    assert_eq!(asked, 8);
    let (status, seen) = get_json(&viewer, &onramp, &preview).await;
    assert_eq!((status, &seen), (200, &counted));
    assert!(page_of(&viewer).await.contains("preview-totals"), "the page shows the kept count");
    assert_eq!(counts_asked(&handle), asked, "a viewer's preview sends GitLab nothing");
}

#[tokio::test]
async fn two_previews_at_once_ask_gitlab_once() {
    let fake = FakeGitlab { latency: Duration::from_millis(30), ..FakeGitlab::default() };
    let handle = fake.clone();
    let (onramp, _running, id) = connected_with(fake, |_| {}).await;
    ready(&onramp.client, &onramp, &id).await;
    put_selection(&onramp.client, &onramp, &id, r#"{"groups": ["acme/platform"], "projects": ["acme/legacy"]}"#).await;
    let preview = format!("{}/preview", scope_path(&id));
    let (a, b) = tokio::join!(get_json(&onramp.client, &onramp, &preview), get_json(&onramp.client, &onramp, &preview));
    assert_eq!((a.0, b.0), (200, 200), "{} {}", a.1, b.1);
    assert_eq!(a.1, b.1, "the second waited for the first and took its count");
    assert_eq!(counts_asked(&handle), 12, "three projects counted once");
}

#[tokio::test]
async fn previews_past_the_connections_budget_are_refused_with_when_to_retry() {
    // 12 requests per ten minutes: one preview of three projects.
    let fake = FakeGitlab::default();
    let handle = fake.clone();
    let (onramp, _running, id) = connected_with(fake, |c| c.settings.discovery.preview_budget = 12).await;
    ready(&onramp.client, &onramp, &id).await;
    put_selection(&onramp.client, &onramp, &id, r#"{"groups": ["acme/platform"], "projects": ["acme/legacy"]}"#).await;
    let preview = format!("{}/preview", scope_path(&id));
    assert_eq!(get_json(&onramp.client, &onramp, &preview).await.0, 200);
    assert_eq!(get_json(&onramp.client, &onramp, &preview).await.0, 200, "the kept count, nothing spent");
    put_selection(&onramp.client, &onramp, &id, r#"{"groups": ["acme"]}"#).await;
    let r = onramp.client.get(onramp.server.url(&preview)).header("accept", "application/json").send().await.unwrap();
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(wait > 0 && wait <= 600, "{wait}");
    let body: Value = r.json().await.unwrap();
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("12 requests") && message.contains(&format!("preview again in {wait} seconds")),
        "{message}"
    );
    assert_eq!(counts_asked(&handle), 12, "the refused one sent nothing");
}

#[tokio::test]
async fn four_slow_connections_of_one_workspace_do_not_keep_another_workspaces_list_waiting() {
    // A held request must outlast the test's steps, not Onramp's request timeout.
    let onramp = spawn_onramp_with(|c| c.outbound.request_timeout = Duration::from_secs(600)).await;
    // Workspace A: four GitLabs whose associations hang until released.
    let hold = Hold::default();
    let mut slow = Vec::new();
    for _ in 0..4 {
        let fake = spawn_fake(FakeGitlab { hold: Some(hold.clone()), ..FakeGitlab::default() }).await;
        connect(&onramp, &onramp.client, &fake, "glpat-good").await;
        slow.push(fake);
    }
    hold.until_arrived(1).await;
    let rows = sqlx::query("SELECT id FROM integrations").fetch_all(onramp.state.db.pool()).await.unwrap();
    let a: Vec<String> = rows.iter().map(|r| sqlx::Row::get(r, "id")).collect();
    assert_eq!(a.len(), 4);
    // Workspace B (another account's own) connects a GitLab that answers at once.
    let other = browser_client(&onramp.server);
    onramp.sign_up(&other, "other@example.com").await;
    let quick = spawn_fake(FakeGitlab::default()).await;
    connect_at(&other, &onramp.server, &quick, "glpat-good").await;
    let row = sqlx::query("SELECT id FROM integrations WHERE id NOT IN ($1, $2, $3, $4)")
        .bind(&a[0])
        .bind(&a[1])
        .bind(&a[2])
        .bind(&a[3])
        .fetch_one(onramp.state.db.pool())
        .await
        .unwrap();
    let b: String = sqlx::Row::get(&row, "id");
    let answer = ready(&other, &onramp, &b).await;
    assert_eq!(answer["state"], "ready", "{answer}");
    // A's lists are all still being made, one of them at GitLab, the others waiting their turn.
    for id in &a {
        let (_, scope) = get_json(&onramp.client, &onramp, &scope_path(id)).await;
        assert_eq!(scope["state"], "discovering", "{scope}");
    }
    assert_eq!(hold.arrived(), 1, "one discovery at a time per workspace");
    hold.release();
    for id in &a {
        assert_eq!(ready(&onramp.client, &onramp, id).await["state"], "ready");
    }
    assert_eq!(hold.arrived(), 4);
}

#[tokio::test]
async fn a_request_sleeping_on_a_429_holds_no_shared_slot() {
    use app::gitlab::{base_url::BaseUrl, discover, guard::OutboundGuard, outbound, token::GitlabToken};
    // GitLab X answers every listing 429 with `Retry-After: 60`; GitLab Y answers at once.
    let x = FakeGitlab { burst_429_every: Some(1), retry_after_429: Some(60), ..FakeGitlab::default() };
    let (x_handle, x) = (x.clone(), spawn_fake(x).await);
    let y = spawn_fake(FakeGitlab::default()).await;
    let out = outbound::Outbound::new(outbound::OutboundConfig {
        guard: OutboundGuard::parse("127.0.0.0/8").unwrap(),
        ..outbound::OutboundConfig::default()
    });
    let at = |running: &Running| {
        let base = BaseUrl::parse(&running.url("")).unwrap();
        let target = out.target(&base, vec![running.addr], &[]).unwrap();
        (base, target)
    };
    let ((xb, xt), (yb, yt)) = (at(&x), at(&y));
    let token = GitlabToken::parse("glpat-good").unwrap();
    // One shared slot for both discoveries.
    let shared = tokio::sync::Semaphore::new(1);
    let knobs = discover::Knobs::default();
    let (px, _) = tokio::sync::watch::channel(discover::Progress::default());
    let (py, _) = tokio::sync::watch::channel(discover::Progress::default());
    let a = discover::discover(&xt, &xb, &token, knobs, &shared, &px);
    tokio::pin!(a);
    // A sends its first request (then sleeps a minute on the 429)…
    tokio::select! {
        _ = &mut a => panic!("every answer of X is a 429: A cannot be done"),
        _ = async { while x_handle.hits_to(Endpoint::Associations) == 0 { tokio::task::yield_now().await } } => {}
    }
    // …and B, wanting the same single slot, is listed while A sleeps.
    let b = tokio::time::timeout(Duration::from_secs(30), discover::discover(&yt, &yb, &token, knobs, &shared, &py));
    tokio::select! {
        _ = &mut a => panic!("A cannot be done before its minute of back-off"),
        b = b => {
            let snapshot = b.expect("B got the slot A does not hold while sleeping").expect("B's list");
            assert_eq!(snapshot.projects.len(), 8);
        }
    }
    assert_eq!(x_handle.hits_to(Endpoint::Associations), 1, "A is still sleeping");
}
