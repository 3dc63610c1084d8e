//! Workspaces end to end over HTTP: the lead invites the colleague who has the GitLab role, the
//! colleague's connection lands in the lead's workspace, several connections side by side, and
//! every route tried by whoever may not use it (a viewer, a member of another workspace, a removed
//! member, an expired invitation). Runs on SQLite and, in `make unit`, on PostgreSQL.

use crate::support::*;
use fake_gitlab::FakeGitlab;

const HTML: &str = "text/html";
const JSON: &str = "application/json";

/// POSTs as a script: the status and the JSON answer.
async fn call(
    client: &reqwest::Client,
    onramp: &Onramp,
    path: &str,
    form: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    let r = post(client, onramp, path, JSON, form).await;
    let status = r.status().as_u16();
    let body = r.text().await.unwrap();
    (status, serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)))
}

async fn get_json(client: &reqwest::Client, onramp: &Onramp, path: &str) -> (u16, serde_json::Value) {
    let r = client.get(onramp.server.url(path)).header("accept", JSON).send().await.unwrap();
    let status = r.status().as_u16();
    let body = r.text().await.unwrap();
    (status, serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)))
}

async fn page(client: &reqwest::Client, onramp: &Onramp, path: &str) -> (u16, String) {
    let r = client.get(onramp.server.url(path)).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The current workspace of a signed-in client.
async fn current_workspace(client: &reqwest::Client, onramp: &Onramp) -> String {
    let (status, answer) = get_json(client, onramp, "/api/workspaces").await;
    assert_eq!(status, 200, "{answer}");
    answer["current"].as_str().unwrap().to_owned()
}

/// An invitation made by a script: its link's secret.
async fn invite(client: &reqwest::Client, onramp: &Onramp, role: &str) -> String {
    let (status, answer) = call(client, onramp, "/api/invitations/create", &[("role", role)]).await;
    assert_eq!(status, 200, "{answer}");
    let link = answer["link"].as_str().unwrap();
    link.rsplit_once("/invite/").unwrap().1.to_owned()
}

/// A new account in its own browser, signed up, with the invitation accepted when given.
async fn colleague(onramp: &Onramp, email: &str, secret: Option<&str>) -> reqwest::Client {
    let client = browser_client(&onramp.server);
    onramp.sign_up(&client, email).await;
    if let Some(secret) = secret {
        let (status, answer) = call(&client, onramp, "/api/invitations/accept", &[("invite", secret)]).await;
        assert_eq!(status, 200, "{answer}");
    }
    client
}

async fn audit_actions(client: &reqwest::Client, onramp: &Onramp) -> Vec<String> {
    let (status, events) = get_json(client, onramp, "/api/audit").await;
    assert_eq!(status, 200, "{events}");
    events.as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap().to_owned()).collect()
}

/// What a refused write must leave as it was, read back from the database: every workspace's
/// name, every membership and its role, every invitation and its state, the number of audit
/// events and of API tokens.
async fn written_state(onramp: &Onramp) -> Vec<String> {
    let pool = onramp.state.db.pool();
    let mut rows: Vec<String> = Vec::new();
    let names: Vec<(String, String)> =
        sqlx::query_as("SELECT id, name FROM workspaces ORDER BY id").fetch_all(pool).await.unwrap();
    rows.extend(names.into_iter().map(|(id, name)| format!("workspace {id} {name}")));
    let members: Vec<(String, String, String)> =
        sqlx::query_as("SELECT workspace_id, user_id, role FROM memberships ORDER BY workspace_id, user_id")
            .fetch_all(pool)
            .await
            .unwrap();
    rows.extend(members.into_iter().map(|(w, u, r)| format!("member {w} {u} {r}")));
    let invitations: Vec<(String, String, String)> =
        sqlx::query_as("SELECT id, role, state FROM invitations ORDER BY id").fetch_all(pool).await.unwrap();
    rows.extend(invitations.into_iter().map(|(i, r, st)| format!("invitation {i} {r} {st}")));
    let audit: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events").fetch_one(pool).await.unwrap();
    let tokens: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_tokens").fetch_one(pool).await.unwrap();
    rows.push(format!("audit events {audit}, api tokens {tokens}"));
    rows
}

#[tokio::test]
async fn the_lead_sends_step_8_and_the_colleague_connects_into_the_leads_workspace() {
    let fake = spawn_fake(FakeGitlab::default()).await;
    let onramp = spawn_onramp().await; // jane@example.com, the lead
    let lead = &onramp.client;
    let lead_ws = current_workspace(lead, &onramp).await;
    let base = fake.url("");
    // The lead makes a link to step 8 of their instance, as the step's form does without JavaScript.
    let r = post(lead, &onramp, "/api/invitations/create", HTML, &[("step", "8"), ("role", "admin"), ("base", &base)])
        .await;
    assert_eq!(r.status(), 302);
    let shown_at = location(&r);
    assert!(shown_at.starts_with("/integrations/gitlab/step/8?base=") && shown_at.contains("invited="), "{shown_at}");
    let (_, step_8) = page(lead, &onramp, &shown_at).await;
    let link = input_value(&step_8, "invite-link");
    assert!(link.starts_with(&format!("http://{}/invite/", onramp.server.addr)), "{link}");
    let (_, again) = page(lead, &onramp, &shown_at).await;
    assert!(!again.contains(&link), "the link is shown once");
    let secret = link.rsplit_once("/invite/").unwrap().1.to_owned();

    // The colleague opens it in a fresh browser: who invites, to what, and how to join.
    let dev = browser_client(&onramp.server);
    let (status, invitation) = page(&dev, &onramp, &format!("/invite/{secret}")).await;
    assert_eq!(status, 200);
    assert!(invitation.contains("jane@example.com") && invitation.contains("invites you to the workspace"));
    assert!(invitation.contains(&format!("/signup?invite={secret}")));
    let (_, signup) = page(&dev, &onramp, &format!("/signup?invite={secret}")).await;
    assert!(signup.contains("name=\"invite\"") && signup.contains("invites you to the workspace"));
    // Signing up with the invitation joins at once and lands on step 8 of the same instance.
    let r = post(
        &dev,
        &onramp,
        "/api/auth/signup",
        HTML,
        &[("email", "dev@example.com"), ("password", PASSWORD), ("invite", &secret)],
    )
    .await;
    let landed = location(&r);
    assert!(landed.starts_with("/integrations/gitlab/step/8?base=") && landed.ends_with("joined=1"), "{landed}");
    let (_, welcome) = page(&dev, &onramp, &landed).await;
    assert!(welcome.contains("Welcome to") && welcome.contains("jane's workspace"), "the lead's workspace is named");
    assert_eq!(current_workspace(&dev, &onramp).await, lead_ws, "the colleague works in the lead's workspace");
    let (_, step_12) = page(&dev, &onramp, "/integrations/gitlab/step/12").await;
    assert!(step_12.contains("The connection will be saved to the workspace"));

    // The colleague connects; the lead sees the connection and its health.
    let done = connect(&onramp, &dev, &fake, "glpat-good").await;
    assert!(done.contains("You have successfully integrated GitLab"));
    let (_, listed) = get_json(lead, &onramp, "/api/integrations").await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(
        (listed[0]["workspace_id"].as_str(), listed[0]["username"].as_str()),
        (Some(lead_ws.as_str()), Some("jdoe"))
    );
    let (_, integrations) = page(lead, &onramp, "/integrations/gitlab").await;
    assert!(integrations.contains(&base) && integrations.contains("Working"), "the lead sees it and its health");

    // The audit log has each step, with who did it and never a token.
    let actions = audit_actions(lead, &onramp).await;
    for expected in ["member.invited", "member.joined", "connection.saved"] {
        assert!(actions.iter().any(|a| a == expected), "{expected} in {actions:?}");
    }
    let (_, events) = get_json(lead, &onramp, "/api/audit").await;
    let saved = events.as_array().unwrap().iter().find(|e| e["action"] == "connection.saved").unwrap();
    assert_eq!(saved["actor"], "dev@example.com");
    assert!(!events.to_string().contains("glpat-good") && !events.to_string().contains(&secret));
    let (_, audit_page) = page(lead, &onramp, "/settings/audit").await;
    assert!(audit_page.contains("saved a GitLab connection") && audit_page.contains("dev@example.com"));

    // The link worked once.
    let late = browser_client(&onramp.server);
    let (status, used) = page(&late, &onramp, &format!("/invite/{secret}")).await;
    assert_eq!(status, 410);
    assert!(used.contains("already been used"));
    onramp.sign_up(&late, "late@example.com").await;
    let before = written_state(&onramp).await;
    let (status, _) = call(&late, &onramp, "/api/invitations/accept", &[("invite", &secret)]).await;
    assert_eq!(status, 404);
    assert_ne!(current_workspace(&late, &onramp).await, lead_ws);
    assert_eq!(written_state(&onramp).await, before, "the refused accept changed nothing");
    assert_eq!(role_in(&onramp, &lead_ws, "late@example.com").await, None);
}

#[tokio::test]
async fn every_route_refuses_who_may_not_use_it() {
    let fake = spawn_fake(FakeGitlab::default()).await;
    let onramp = spawn_onramp().await;
    let lead = &onramp.client;
    connect(&onramp, lead, &fake, "glpat-good").await;
    let lead_ws = current_workspace(lead, &onramp).await;
    let (_, listed) = get_json(lead, &onramp, "/api/integrations").await;
    let id = listed[0]["id"].as_str().unwrap().to_owned();
    let row_before: (String, i64) = sqlx::query_as("SELECT token_last4, updated_at FROM integrations")
        .fetch_one(onramp.state.db.pool())
        .await
        .unwrap();

    let viewer_secret = invite(lead, &onramp, "viewer").await;
    let viewer = colleague(&onramp, "viewer@example.com", Some(&viewer_secret)).await;
    let mallory = colleague(&onramp, "mallory@example.com", None).await;
    let removed_secret = invite(lead, &onramp, "admin").await;
    let removed = colleague(&onramp, "gone@example.com", Some(&removed_secret)).await;
    let (_, members) = get_json(lead, &onramp, "/api/workspaces/members").await;
    let gone_id = members.as_array().unwrap().iter().find(|m| m["email"] == "gone@example.com").unwrap()["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let viewer_id = members.as_array().unwrap().iter().find(|m| m["email"] == "viewer@example.com").unwrap()["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = call(lead, &onramp, "/api/workspaces/remove", &[("user_id", &gone_id)]).await;
    assert_eq!(status, 200);
    // An expired invitation lets nobody in.
    let expired_secret = invite(lead, &onramp, "admin").await;
    sqlx::query("UPDATE invitations SET expires_at = 1 WHERE state = 'pending'")
        .execute(onramp.state.db.pool())
        .await
        .unwrap();
    let late = colleague(&onramp, "late@example.com", None).await;
    let before = written_state(&onramp).await;
    let (status, answer) = call(&late, &onramp, "/api/invitations/accept", &[("invite", &expired_secret)]).await;
    assert_eq!(status, 404, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("expired"), "{answer}");
    assert_eq!(written_state(&onramp).await, before, "the expired invitation let nobody in");
    assert_eq!(role_in(&onramp, &lead_ws, "late@example.com").await, None);
    let (status, expired_page) = page(&late, &onramp, &format!("/invite/{expired_secret}")).await;
    assert_eq!(status, 410);
    assert!(expired_page.contains("has expired"));

    let (_, open) = call(lead, &onramp, "/api/invitations/create", &[("role", "viewer")]).await;
    let open_id = open["id"].as_str().unwrap().to_owned();
    let ws = lead_ws.as_str();
    let changes: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("/api/gitlab/recheck", vec![("id", &id)]),
        ("/api/gitlab/replace", vec![("id", &id), ("token", "glpat-soon")]),
        ("/api/gitlab/disconnect", vec![("id", &id)]),
        ("/api/gitlab/rotate", vec![("id", &id)]),
        ("/api/gitlab/accept", vec![("check", "nope"), ("replace", &id)]),
        ("/api/invitations/create", vec![("role", "viewer"), ("workspace", ws)]),
        ("/api/invitations/revoke", vec![("id", &open_id), ("workspace", ws)]),
        ("/api/workspaces/set_role", vec![("user_id", &viewer_id), ("role", "owner"), ("workspace", ws)]),
        ("/api/workspaces/remove", vec![("user_id", &viewer_id), ("workspace", ws)]),
        ("/api/workspaces/rename", vec![("name", "pwned"), ("workspace", ws)]),
    ];
    let before = written_state(&onramp).await;
    // A viewer sees, and changes nothing: 403 (the kept check of `accept` is not theirs: 404).
    for (path, form) in &changes {
        let (status, answer) = call(&viewer, &onramp, path, form).await;
        let expected = if *path == "/api/gitlab/accept" { 404 } else { 403 };
        assert_eq!(status, expected, "viewer {path}: {answer}");
    }
    let (status, seen) = get_json(&viewer, &onramp, "/api/integrations").await;
    assert_eq!((status, seen[0]["id"].as_str()), (200, Some(id.as_str())), "a viewer sees the connection");
    assert_eq!(get_json(&viewer, &onramp, "/api/audit").await.0, 403);
    let (status, connection_page) = page(&viewer, &onramp, &format!("/integrations/gitlab/connections/{id}")).await;
    assert_eq!(status, 200);
    assert!(connection_page.contains("You are a viewer") && !connection_page.contains("Re-check now"));
    assert_eq!(page(&viewer, &onramp, &format!("/integrations/gitlab/connections/{id}/disconnect")).await.0, 404);
    assert_eq!(page(&viewer, &onramp, "/settings/audit").await.0, 403);
    let (_, step_12) = page(&viewer, &onramp, "/integrations/gitlab/step/12").await;
    assert!(step_12.contains("You are a viewer in the workspace"));
    let r =
        post(&viewer, &onramp, "/api/gitlab/validate", HTML, &[("base_url", &fake.url("")), ("token", "glpat-good")])
            .await;
    assert_eq!(r.status(), 403, "a viewer cannot save a connection into the workspace");

    // A member of another workspace, and a removed member, are told nothing exists: 404, and no
    // answer carries anything of the lead's workspace.
    for (who, client) in [("mallory", &mallory), ("removed", &removed)] {
        for (path, form) in &changes {
            let (status, answer) = call(client, &onramp, path, form).await;
            assert_eq!(status, 404, "{who} {path}: {answer}");
            assert!(!answer.to_string().contains("jdoe"), "{who} {path}: {answer}");
        }
        let (_, seen) = get_json(client, &onramp, "/api/integrations").await;
        assert_eq!(seen, serde_json::json!([]), "{who}");
        for path in ["/api/audit", "/api/workspaces/members"] {
            let (status, answer) = get_json(client, &onramp, &format!("{path}?workspace={ws}")).await;
            assert_eq!(status, 404, "{who} {path}: {answer}");
        }
        let (status, answer) = get_json(client, &onramp, &format!("/api/gitlab/events?id={id}")).await;
        assert_eq!(status, 404, "{who} events: {answer}");
        let (status, _) = call(client, &onramp, "/api/workspaces/switch", &[("workspace", ws)]).await;
        assert_eq!(status, 404, "{who} cannot switch into it");
        for path in [
            format!("/integrations/gitlab/connections/{id}"),
            format!("/integrations/gitlab/connections/{id}/disconnect"),
        ] {
            let (status, body) = page(client, &onramp, &path).await;
            assert_eq!(status, 404, "{who} {path}");
            assert!(!body.contains("jdoe") && !body.contains(&fake.url("")), "{who} {path}");
        }
        assert_ne!(current_workspace(client, &onramp).await, lead_ws, "{who} works elsewhere");
    }

    // Nothing changed the lead's connection, nor the workspace's name, members, invitations or
    // audit log: each refused write is read back as it was.
    let row_after: (String, i64) = sqlx::query_as("SELECT token_last4, updated_at FROM integrations")
        .fetch_one(onramp.state.db.pool())
        .await
        .unwrap();
    assert_eq!(row_before, row_after);
    assert_eq!(written_state(&onramp).await, before);
    assert_eq!(role_in(&onramp, ws, "viewer@example.com").await.as_deref(), Some("viewer"));
    let open_state: String = sqlx::query_scalar("SELECT state FROM invitations WHERE id = $1")
        .bind(&open_id)
        .fetch_one(onramp.state.db.pool())
        .await
        .unwrap();
    assert_eq!(open_state, "pending", "not revoked by those who may not");
    let (status, _) = call(lead, &onramp, "/api/gitlab/recheck", &[("id", &id)]).await;
    assert_eq!(status, 200, "the owner still may");
}

#[tokio::test]
async fn a_workspace_holds_several_connections_and_names_the_one_it_has_already() {
    let first = spawn_fake(FakeGitlab::default()).await;
    let second = spawn_fake(FakeGitlab::default()).await;
    let onramp = spawn_onramp().await;
    let lead = &onramp.client;
    connect(&onramp, lead, &first, "glpat-good").await;
    connect(&onramp, lead, &second, "glpat-good").await;
    let (_, listed) = get_json(lead, &onramp, "/api/integrations").await;
    assert_eq!(listed.as_array().unwrap().len(), 2, "side by side: {listed}");
    let first_id = listed.as_array().unwrap().iter().find(|i| i["base_url"] == first.url("")).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, list_page) = page(lead, &onramp, "/integrations/gitlab").await;
    assert!(list_page.contains(&first.url("")) && list_page.contains(&second.url("")));
    // Without an id a change must say which.
    let (status, answer) = call(lead, &onramp, "/api/gitlab/recheck", &[]).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("several connections"));

    // The same instance and GitLab user again: step 12 names the connection and offers its token.
    let r = post(lead, &onramp, "/api/gitlab/validate", HTML, &[("base_url", &first.url("")), ("token", "glpat-soon")])
        .await;
    let at = location(&r);
    assert!(at.contains("check=") && at.contains(&format!("exists={first_id}")), "{at}");
    let (_, step_12) = page(lead, &onramp, &at).await;
    assert!(
        step_12.contains("This GitLab is connected already") && step_12.contains("Replace its token with this one")
    );
    let check = at.split("check=").nth(1).unwrap().split('&').next().unwrap().to_owned();
    let r = post(lead, &onramp, "/api/gitlab/accept", HTML, &[("check", &check), ("replace", &first_id)]).await;
    assert_eq!(location(&r), format!("/integrations/gitlab/connections/{first_id}?replaced=1"));
    let (_, listed) = get_json(lead, &onramp, "/api/integrations").await;
    assert_eq!(listed.as_array().unwrap().len(), 2, "replaced, not added");
    let replaced = listed.as_array().unwrap().iter().find(|i| i["id"] == first_id.as_str()).unwrap();
    assert_eq!(replaced["token_last4"], "soon");
    assert!(audit_actions(lead, &onramp).await.iter().any(|a| a == "connection.token_replaced"));
}

#[tokio::test]
async fn a_workspace_always_keeps_an_owner_and_roles_change_with_a_record() {
    let onramp = spawn_onramp().await;
    let lead = &onramp.client;
    let (_, members) = get_json(lead, &onramp, "/api/workspaces/members").await;
    let jane_id = members[0]["user_id"].as_str().unwrap().to_owned();
    let ws = current_workspace(lead, &onramp).await;
    let before = written_state(&onramp).await;
    let (status, answer) =
        call(lead, &onramp, "/api/workspaces/set_role", &[("user_id", &jane_id), ("role", "admin")]).await;
    assert_eq!(status, 409, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("at least one owner"));
    let (status, _) = call(lead, &onramp, "/api/workspaces/leave", &[]).await;
    assert_eq!(status, 409, "the last owner cannot leave");
    assert_eq!(written_state(&onramp).await, before, "refused: nothing changed");
    assert_eq!(role_in(&onramp, &ws, "jane@example.com").await.as_deref(), Some("owner"));
    // An admin cannot hand out ownership.
    let admin_secret = invite(lead, &onramp, "admin").await;
    let admin = colleague(&onramp, "admin@example.com", Some(&admin_secret)).await;
    let before = written_state(&onramp).await;
    let (status, _) = call(&admin, &onramp, "/api/invitations/create", &[("role", "owner")]).await;
    assert_eq!(status, 403);
    assert_eq!(written_state(&onramp).await, before, "no invitation was made");
    let (status, _) = call(&admin, &onramp, "/api/invitations/create", &[("role", "viewer")]).await;
    assert_eq!(status, 200, "but may invite viewers");
    // An invitation for an address is for that address only.
    let (status, answer) =
        call(lead, &onramp, "/api/invitations/create", &[("role", "viewer"), ("email", "only@example.com")]).await;
    assert_eq!(status, 200, "{answer}");
    let secret = answer["link"].as_str().unwrap().rsplit_once("/invite/").unwrap().1.to_owned();
    let other = colleague(&onramp, "other@example.com", None).await;
    let before = written_state(&onramp).await;
    assert_eq!(call(&other, &onramp, "/api/invitations/accept", &[("invite", &secret)]).await.0, 403);
    assert_eq!(written_state(&onramp).await, before, "still pending, and other is no member");
    assert_eq!(role_in(&onramp, &ws, "other@example.com").await, None);
    let only = colleague(&onramp, "only@example.com", None).await;
    assert_eq!(call(&only, &onramp, "/api/invitations/accept", &[("invite", &secret)]).await.0, 200);
    // Hand over ownership, then step down.
    let (_, members) = get_json(lead, &onramp, "/api/workspaces/members").await;
    let admin_id = members.as_array().unwrap().iter().find(|m| m["email"] == "admin@example.com").unwrap()["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) =
        call(lead, &onramp, "/api/workspaces/set_role", &[("user_id", &admin_id), ("role", "owner")]).await;
    assert_eq!(status, 200);
    let (status, _) =
        call(lead, &onramp, "/api/workspaces/set_role", &[("user_id", &jane_id), ("role", "viewer")]).await;
    assert_eq!(status, 200);
    let before = written_state(&onramp).await;
    assert_eq!(call(lead, &onramp, "/api/workspaces/rename", &[("name", "Acme")]).await.0, 403, "now a viewer");
    assert_eq!(written_state(&onramp).await, before, "the name stayed");
    let (_, events) = get_json(&admin, &onramp, "/api/audit").await;
    let changes: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "member.role_changed")
        .map(|e| e["target"].as_str().unwrap())
        .collect();
    assert_eq!(changes, ["jane@example.com: owner → viewer", "admin@example.com: admin → owner"]);
    assert!(events.as_array().unwrap().iter().all(|e| e["ip"] == "127.0.0.1"), "{events}");
}

/// A database (PostgreSQL under `ONRAMP_TEST_DATABASE_URL`, else SQLite in `dir`) made by the
/// migrations `texts` gives for the backend ("sqlite" or "postgres"), as an earlier Onramp made it.
async fn database_made_by(
    dir: &std::path::Path,
    texts: impl Fn(&str) -> Vec<(String, String)>,
) -> (String, sqlx::AnyPool) {
    let (url, backend) = match fresh_database_url(dir).await {
        Some(url) => (url, "postgres"),
        None => (format!("sqlite://{}?mode=rwc", dir.join("old.db").display()), "sqlite"),
    };
    let old = dir.join("migrations");
    std::fs::create_dir(&old).unwrap();
    for (name, text) in texts(backend) {
        std::fs::write(old.join(name), text).unwrap();
    }
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    sqlx::migrate::Migrator::new(old.as_path()).await.unwrap().run(&pool).await.unwrap();
    (url, pool)
}

/// Databases made while migration 0001 had its earlier texts (before it was edited) still open:
/// schema and checksum are brought up to date first, then every migration runs.
#[tokio::test]
async fn databases_made_by_earlier_texts_of_0001_still_open() {
    for earlier in ["0001_before_flashes.sql", "0001_flashes_nonce_ciphertext.sql"] {
        let dir = tempfile::tempdir().unwrap();
        let (url, pool) = database_made_by(dir.path(), |backend| {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../app/migrations/edited")
                .join(backend)
                .join(earlier);
            vec![("0001_accounts_and_integrations.sql".to_owned(), std::fs::read_to_string(path).unwrap())]
        })
        .await;
        sqlx::query(
            "INSERT INTO users (id, email, password_hash, created_at) VALUES ('u1', 'early@example.com', 'x', 1)",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
        let db = app::store::Db::connect(&url).await.unwrap_or_else(|e| panic!("{earlier}: {e}"));
        let (all, _) = app::store::workspaces::memberships(&db, "u1").await.unwrap();
        assert_eq!(all.len(), 1, "{earlier}: the account got its workspace");
        // the flashes table has its current shape
        let keys = app::store::crypto::Keyring::new(app::store::crypto::Cipher::generate().1);
        let flash = app::store::accounts::put_flash(&db, &keys, "u1", "onr_shown_once").await.unwrap();
        let shown = app::store::accounts::take_flash(&db, &keys, "u1", &flash).await.unwrap();
        assert!(shown.is_some(), "{earlier}: a flash is sealed, stored and opened again");
        db.pool().close().await;
        // and it opens again, with nothing left to repair
        app::store::Db::connect(&url).await.unwrap();
    }
}

/// A database written by the version before workspaces (migrations 0001–0003, one connection per
/// account, its token sealed for the account) opens with nothing lost: the connection is in the
/// account's personal workspace, named after it, and its token opens. On SQLite and PostgreSQL.
#[tokio::test]
async fn a_database_from_before_workspaces_keeps_every_connection() {
    use app::store::crypto::{bind, Cipher, Keyring};
    let dir = tempfile::tempdir().unwrap();
    let shipped = |backend: &str| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../app/migrations").join(backend);
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                ["0001", "0002", "0003"].iter().any(|v| p.file_name().unwrap().to_string_lossy().starts_with(v))
            })
            .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(p).unwrap()))
            .collect::<Vec<_>>()
    };
    let (url, pool) = database_made_by(dir.path(), shipped).await;
    let keys = Keyring::new(Cipher::generate().1);
    let token = app::gitlab::token::GitlabToken::parse("glpat-from-before-4242").unwrap();
    let (user, id, base) = ("u1", "c1", "https://gitlab.example.com");
    let sealed = keys.current.seal(&token, &bind(&["integration", id, user, base, ""]));
    let report = app::gitlab::report::Report::new(base.into(), None, None, None, vec![], 1);
    sqlx::query("INSERT INTO users (id, email, password_hash, created_at) VALUES ($1, 'old.lead@example.com', 'x', 1)")
        .bind(user)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO integrations (id, user_id, base_url, username, token_last4, scopes, extra_ca_pem, key_id, \
         token_nonce, token_ciphertext, last_check_at, last_check_ok, last_report, created_at, updated_at, \
         aad_version) VALUES ($1, $2, $3, 'jdoe', '4242', 'api', '', $4, $5, $6, 1, 1, $7, 1, 1, 2)",
    )
    .bind(id)
    .bind(user)
    .bind(base)
    .bind(&sealed.key_id)
    .bind(&sealed.nonce)
    .bind(&sealed.ciphertext)
    .bind(serde_json::to_string(&report).unwrap())
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let db = app::store::Db::connect(&url).await.unwrap();
    let (all, current) = app::store::workspaces::memberships(&db, user).await.unwrap();
    assert_eq!(all.len(), 1);
    let current = current.unwrap();
    assert_eq!((current.name.as_str(), current.role), ("old.lead's workspace", app::workspace::Role::Owner));
    let saved = app::store::integrations::list(&db, &current.id).await.unwrap();
    assert_eq!(saved.len(), 1);
    let (_, opened, _) = app::store::integrations::with_token(&db, &keys, &current.id, id).await.unwrap().unwrap();
    assert_eq!(opened.expose(), "glpat-from-before-4242");
    // and a second connection can now be added beside it
    let other = app::gitlab::report::Report::new("https://gitlab.com".into(), None, None, None, vec![], 1);
    let added = app::store::integrations::save(&db, &keys, &current.id, user, &other, &token, "").await.unwrap();
    assert!(matches!(added, app::store::integrations::Saved::Saved(_)));
    assert_eq!(app::store::integrations::list(&db, &current.id).await.unwrap().len(), 2);
}

/// The user id of the member with this address, as the members list has it.
async fn member_id(client: &reqwest::Client, onramp: &Onramp, email: &str) -> String {
    let (status, members) = get_json(client, onramp, "/api/workspaces/members").await;
    assert_eq!(status, 200, "{members}");
    members.as_array().unwrap().iter().find(|m| m["email"] == email).unwrap_or_else(|| panic!("{email}: {members}"))
        ["user_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The state of the invitation whose link is `secret`, read from the database.
async fn invitation_state(onramp: &Onramp, secret: &str) -> String {
    let hash = app::store::hash_secret(secret);
    sqlx::query_scalar("SELECT state FROM invitations WHERE secret_hash = $1")
        .bind(hash)
        .fetch_one(onramp.state.db.pool())
        .await
        .unwrap()
}

/// The role of the member with this address in the lead's workspace, or `None`.
async fn role_in(onramp: &Onramp, workspace: &str, email: &str) -> Option<String> {
    sqlx::query_scalar(
        "SELECT m.role FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.workspace_id = $1 AND u.email = $2",
    )
    .bind(workspace)
    .bind(email)
    .fetch_optional(onramp.state.db.pool())
    .await
    .unwrap()
}

/// Removal and demotion stick: the links an admin made stop working when they are removed or
/// made viewer (withdrawn in the same transaction), nobody becomes admin through one, and the
/// links of an admin who is still admin keep working. On SQLite and PostgreSQL.
#[tokio::test]
async fn a_removed_or_demoted_admins_links_stop_working() {
    let onramp = spawn_onramp().await;
    let lead = &onramp.client;
    let ws = current_workspace(lead, &onramp).await;
    let b_secret = invite(lead, &onramp, "admin").await;
    let b = colleague(&onramp, "b@example.com", Some(&b_secret)).await;
    let b_id = member_id(lead, &onramp, "b@example.com").await;

    // Demoted to viewer: B's admin link is withdrawn, and B cannot make themself admin with it.
    let by_b = invite(&b, &onramp, "admin").await;
    let (status, answer) =
        call(lead, &onramp, "/api/workspaces/set_role", &[("user_id", &b_id), ("role", "viewer")]).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(invitation_state(&onramp, &by_b).await, "revoked");
    let (status, answer) = call(&b, &onramp, "/api/invitations/accept", &[("invite", &by_b)]).await;
    assert_eq!(status, 404, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("withdrawn"), "{answer}");
    assert_eq!(role_in(&onramp, &ws, "b@example.com").await.as_deref(), Some("viewer"), "still a viewer");
    let c = colleague(&onramp, "c@example.com", None).await;
    let (status, _) = call(&c, &onramp, "/api/invitations/accept", &[("invite", &by_b)]).await;
    assert_eq!(status, 404);
    assert_eq!(role_in(&onramp, &ws, "c@example.com").await, None, "nobody joined as admin");
    let (status, page_of_link) = page(&c, &onramp, &format!("/invite/{by_b}")).await;
    assert_eq!(status, 410, "the link's page says it no longer works");
    assert!(page_of_link.contains("withdrawn"));

    // Admin again, B makes two links; then B is removed: both stop working.
    let (status, _) = call(lead, &onramp, "/api/workspaces/set_role", &[("user_id", &b_id), ("role", "admin")]).await;
    assert_eq!(status, 200);
    let by_b_admin = invite(&b, &onramp, "admin").await;
    let by_b_viewer = invite(&b, &onramp, "viewer").await;
    let (status, answer) = call(lead, &onramp, "/api/workspaces/remove", &[("user_id", &b_id)]).await;
    assert_eq!(status, 200, "{answer}");
    for secret in [&by_b_admin, &by_b_viewer] {
        assert_eq!(invitation_state(&onramp, secret).await, "revoked");
        let (status, answer) = call(&b, &onramp, "/api/invitations/accept", &[("invite", secret)]).await;
        assert_eq!(status, 404, "B does not come back: {answer}");
        let (status, _) = call(&c, &onramp, "/api/invitations/accept", &[("invite", secret)]).await;
        assert_eq!(status, 404);
    }
    assert_eq!(role_in(&onramp, &ws, "b@example.com").await, None);
    assert_eq!(role_in(&onramp, &ws, "c@example.com").await, None);
    let (_, log) = get_json(lead, &onramp, "/api/audit").await;
    let removed = log.as_array().unwrap().iter().find(|e| e["action"] == "member.removed").unwrap();
    assert_eq!(removed["target"], "b@example.com (their 2 open invitations were withdrawn)");

    // An admin who is still admin: their link works.
    let d_secret = invite(lead, &onramp, "admin").await;
    let d = colleague(&onramp, "d@example.com", Some(&d_secret)).await;
    let by_d = invite(&d, &onramp, "admin").await;
    let (status, answer) = call(&c, &onramp, "/api/invitations/accept", &[("invite", &by_d)]).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(role_in(&onramp, &ws, "c@example.com").await.as_deref(), Some("admin"));
}

/// The audit log pages by event, not by second: an event followed by 150 more in the same second
/// is on exactly one page, and walking the pages (API and page links alike) shows every event
/// once. Links made when `before=` was a time still work; anything else is refused, saying why.
#[tokio::test]
async fn the_audit_log_pages_by_event_not_by_second() {
    let onramp = spawn_onramp().await;
    let lead = &onramp.client;
    let ws = current_workspace(lead, &onramp).await;
    let actor = app::store::workspaces::Actor { email: "jane@example.com".into(), ip: "127.0.0.1".into() };
    let db = &onramp.state.db;
    app::store::workspaces::record(db, &ws, &actor, "member.invited", "the first").await.unwrap();
    for i in 0..150 {
        app::store::workspaces::record(db, &ws, &actor, "member.invited", &format!("burst {i}")).await.unwrap();
    }
    let mut all: Vec<String> = sqlx::query_scalar("SELECT id FROM audit_events WHERE workspace_id = $1")
        .bind(&ws)
        .fetch_all(db.pool())
        .await
        .unwrap();
    assert_eq!(all.len(), 151);
    all.sort();
    // An id starts with its microsecond, in 16 hex digits.
    let second_of = |id: &str| u64::from_str_radix(&id[..16], 16).unwrap() / 1_000_000;
    let (first_second, last_second) = (second_of(&all[0]), second_of(&all[150]));
    // All in one second, as a burst is.
    sqlx::query("UPDATE audit_events SET at = $1 WHERE workspace_id = $2")
        .bind(first_second as i64)
        .bind(&ws)
        .execute(db.pool())
        .await
        .unwrap();

    // The API: `before` = the id of the last event read.
    let mut seen = Vec::new();
    let mut next = "/api/audit".to_owned();
    for _ in 0..10 {
        let (status, events) = get_json(lead, &onramp, &next).await;
        assert_eq!(status, 200, "{next}: {events}");
        let events = events.as_array().unwrap().clone();
        let Some(last) = events.last() else { break };
        next = format!("/api/audit?before={}", last["id"].as_str().unwrap());
        seen.extend(events.iter().map(|e| (e["id"].as_str().unwrap().to_owned(), e["target"].clone())));
    }
    let mut ids: Vec<String> = seen.iter().map(|(id, _)| id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!((ids.len(), seen.len()), (151, 151), "every event once");
    assert_eq!(seen.iter().filter(|(_, target)| target == "the first").count(), 1, "the first event is on one page");
    assert_eq!(seen.last().unwrap().1, "the first", "oldest last");

    // The pages: "Older events" links walk the same events.
    let mut rows = 0;
    let mut first = 0;
    let mut next = Some("/settings/audit".to_owned());
    while let Some(path) = next.take() {
        let (status, body) = page(lead, &onramp, &path).await;
        assert_eq!(status, 200, "{path}");
        rows += body.matches("<tr data-action=").count();
        first += body.matches(": the first<").count();
        next = body
            .split(r#"<a href="/settings/audit?before="#)
            .nth(1)
            .map(|rest| format!("/settings/audit?before={}", rest.split('"').next().unwrap()));
        assert!(rows <= 151, "no event twice");
    }
    assert_eq!((rows, first), (151, 1));

    // A time, as earlier links carried: the events before that second.
    let (status, events) = get_json(lead, &onramp, &format!("/api/audit?before={}", last_second + 1)).await;
    assert_eq!((status, events.as_array().unwrap().len()), (200, 100));
    let (status, events) = get_json(lead, &onramp, &format!("/api/audit?before={first_second}")).await;
    assert_eq!((status, events.as_array().unwrap().len()), (200, 0), "none before that second");
    let (status, answer) = get_json(lead, &onramp, "/api/audit?before=yesterday").await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("the last event of the page"), "{answer}");
    let (status, body) = page(lead, &onramp, "/settings/audit?before=yesterday").await;
    assert_eq!(status, 400);
    assert!(body.contains("start from the newest events"));
}

/// What invitees read cannot lie: workspace names with bidi controls or zero-width characters
/// are refused (create and rename, with a message, the name unchanged); an invitation for an
/// address like `x<victim@corp.example>` or with a NUL is refused and none is made; and wherever
/// an address is shown to others (the team list, the invitation page, the audit log) it is
/// marked unverified, since Onramp verifies none.
#[tokio::test]
async fn names_and_addresses_others_see_cannot_hide_what_they_are() {
    let onramp = spawn_onramp().await;
    let lead = &onramp.client;
    let ws = current_workspace(lead, &onramp).await;
    let pool = onramp.state.db.pool().clone();
    let name_of = |id: String| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, String>("SELECT name FROM workspaces WHERE id = $1")
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let workspaces_before: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM workspaces").fetch_one(onramp.state.db.pool()).await.unwrap();
    for hidden in ["Acme\u{202E}gnp.exe", "Acme\u{2066}x\u{2069}", "Ac\u{200B}me", "Acme\u{FEFF}", "Acme\u{2028}Corp"] {
        for (path, form) in [("/api/workspaces/rename", ("name", hidden)), ("/api/workspaces/create", ("name", hidden))]
        {
            let (status, answer) = call(lead, &onramp, path, &[form]).await;
            assert_eq!(status, 400, "{path} {hidden:?}: {answer}");
            assert!(answer["message"].as_str().unwrap().contains("invisible characters"), "{answer}");
        }
    }
    let r = post(lead, &onramp, "/api/workspaces/rename", HTML, &[("name", "Acme\u{202E}gnp")]).await;
    assert_eq!(location(&r), "/settings/workspace?error=invisible_name");
    let (_, body) = page(lead, &onramp, &location(&r)).await;
    assert!(body.contains("cannot contain invisible characters"));
    assert_eq!(name_of(ws.clone()).await, "jane's workspace", "the name did not change");
    let workspaces_after: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM workspaces").fetch_one(onramp.state.db.pool()).await.unwrap();
    assert_eq!(workspaces_before, workspaces_after, "no workspace was made");
    assert_eq!(call(lead, &onramp, "/api/workspaces/rename", &[("name", "Équipe données")]).await.0, 200);

    for (email, message) in [
        ("x<victim@corp.example>", "Type only the address"),
        ("victim@corp.example\u{0}", "control characters"),
        ("\"victim\"@corp.example", "quotes"),
    ] {
        let (status, answer) =
            call(lead, &onramp, "/api/invitations/create", &[("role", "viewer"), ("email", email)]).await;
        assert_eq!(status, 400, "{email:?}: {answer}");
        assert!(answer["message"].as_str().unwrap().contains(message), "{answer}");
    }
    let r = post(lead, &onramp, "/api/invitations/create", HTML, &[("role", "viewer"), ("email", "x<v@corp.example>")])
        .await;
    assert_eq!(location(&r), "/settings/workspace?error=invite_email_not_just_an_address#invite");
    let (_, body) = page(lead, &onramp, "/settings/workspace?error=invite_email_not_just_an_address").await;
    assert!(body.contains("Type only the address"));
    let invitations: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM invitations").fetch_one(onramp.state.db.pool()).await.unwrap();
    assert_eq!(invitations, 0, "none was made");
    let (status, answer) =
        call(lead, &onramp, "/api/invitations/create", &[("role", "viewer"), ("email", " Dev@Corp.Example ")]).await;
    assert_eq!(status, 200, "{answer}");
    let stored: Option<String> =
        sqlx::query_scalar("SELECT email FROM invitations").fetch_one(onramp.state.db.pool()).await.unwrap();
    assert_eq!(stored.as_deref(), Some("dev@corp.example"), "stored canonical");

    // "unverified" where others see an address.
    let secret = invite(lead, &onramp, "viewer").await;
    let anonymous = browser_client(&onramp.server);
    let (_, invitation) = page(&anonymous, &onramp, &format!("/invite/{secret}")).await;
    assert!(invitation.contains("jane@example.com</strong>"), "the inviter");
    assert!(invitation.contains("(unverified address)") && invitation.contains("Onramp has not verified this address"));
    let _dev = colleague(&onramp, "dev2@example.com", Some(&secret)).await;
    let (_, team) = page(lead, &onramp, "/settings/workspace").await;
    assert_eq!(team.matches("(unverified)").count(), 2 + 1, "each member, and the open invitation's maker");
    let (_, members) = get_json(lead, &onramp, "/api/workspaces/members").await;
    assert!(members.as_array().unwrap().iter().all(|m| m["email_verified"] == false), "{members}");
    let (_, audit) = page(lead, &onramp, "/settings/audit").await;
    assert!(audit.contains("Who (unverified address)"));
}
