//! The platform side (issue 22): platform keys made with `onramp platform-key` while the server
//! runs, and what `/api/v1` lets them read — their scopes, their tenants, 404 across keys, the
//! audit trail, paging and refusals.

use crate::support::*;
use fake_gitlab::FakeGitlab;
use serde_json::Value;

/// `onramp platform-key ARGS…` on this Onramp's storage: (exit code, stdout, stderr).
async fn platform_key(onramp: &Onramp, args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_onramp"))
        .arg("platform-key")
        .args(args)
        .env("ONRAMP_DATA_DIR", onramp.data_dir.path())
        // the database this Onramp runs on (PostgreSQL in the second run of `make unit`)
        .env("DATABASE_URL", onramp.database_url.clone().unwrap_or_default())
        .env_remove("ONRAMP_SECRET_KEY")
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The key `create` printed: alone, on the last line.
fn key_of(stdout: &str) -> String {
    let last = stdout.lines().last().unwrap_or_default().to_owned();
    assert!(last.starts_with("onp_") && !last.contains(' '), "the key is not alone on the last line: {stdout}");
    last
}

async fn call(onramp: &Onramp, key: &str, path: &str) -> (u16, Value) {
    let r = onramp.anon.get(onramp.server.url(path)).bearer_auth(key).send().await.unwrap();
    let status = r.status().as_u16();
    if status == 200 {
        assert_eq!(r.headers()["cache-control"], "no-store", "{path}");
    }
    let body = r.text().await.unwrap();
    let body: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{path} answered no JSON: {body}"));
    if path.starts_with("/api/v1/") {
        contract::check("GET", path, status, &body);
    }
    (status, body)
}

#[tokio::test]
async fn platform_keys_reach_only_their_own_workspaces_with_their_own_scopes() {
    let fake = spawn_fake(FakeGitlab::default()).await;
    let onramp = spawn_onramp().await;
    connect(&onramp, &onramp.client, &fake, "glpat-good").await;
    let (workspace, connection) = only_connection(&onramp).await;

    // Made from the command line while the server runs, printed once, kept hashed.
    let (code, out, err) = platform_key(
        &onramp,
        &[
            "create",
            "--name",
            "DevDynamics",
            "--scopes",
            "connections:read",
            "--return-origin",
            "https://platform.example.com",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let instance = key_of(&out);
    let (code, out, _) =
        platform_key(&onramp, &["create", "--name", "Creds only", "--scopes", "credentials:read"]).await;
    assert_eq!(code, 0);
    let creds_only = key_of(&out);
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT key_hash FROM platform_keys").fetch_all(onramp.state.db.pool()).await.unwrap();
    assert!(stored.iter().all(|h| h.len() == 64 && !h.contains(&instance[4..])));
    // A workspace-level key, for a team's own collector; none for a workspace that is not there.
    let (code, _, err) =
        platform_key(&onramp, &["create", "--name", "x", "--scopes", "connections:read", "--workspace", "nope"]).await;
    assert!(code == 1 && err.contains("no workspace"), "{err}");
    let (code, out, err) = platform_key(
        &onramp,
        &["create", "--name", "our collector", "--scopes", "connections:read", "--workspace", &workspace],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let team = key_of(&out);
    let (_, listed, _) = platform_key(&onramp, &["list", "--workspace", &workspace]).await;
    assert!(listed.contains("our collector") && !listed.contains("DevDynamics"), "{listed}");

    // The workspace-level key sees its workspace and its connection, never the token.
    let (status, body) = call(&onramp, &team, "/api/v1/workspaces").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"][0]["id"], workspace.as_str());
    assert_eq!(body["next"], Value::Null);
    let (status, list) = call(&onramp, &team, "/api/v1/connections").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["data"][0]["id"], connection.as_str());
    let (status, one) = call(&onramp, &team, &format!("/api/v1/connections/{connection}")).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["base_url"], fake.url("").trim_end_matches('/'));
    assert_eq!(one["health"]["ok"], true);
    assert!(one["health"]["findings"].as_array().is_some_and(|f| !f.is_empty()));
    for answer in [&list, &one] {
        assert!(!answer.to_string().contains("glpat-good"), "a token left through /api/v1: {answer}");
    }

    // The instance-level key created no workspace yet: it reaches nothing, and says 404.
    let (status, body) = call(&onramp, &instance, "/api/v1/workspaces").await;
    assert_eq!((status, body["data"].as_array().map(Vec::len)), (200, Some(0)));
    for path in [format!("/api/v1/connections/{connection}"), format!("/api/v1/connections?workspace_id={workspace}")] {
        let (status, body) = call(&onramp, &instance, &path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body["error"], "not_found");
        assert!(!body.to_string().contains("glpat"), "{body}");
    }
    let (status, body) = call(&onramp, &team, "/api/v1/connections/no-such-id").await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = call(&onramp, &instance, "/api/v1/connections").await;
    assert_eq!(status, 400, "an instance-level key must say which workspace: {body}");

    // A call outside the key's scopes is 403 naming the scope.
    let (status, body) = call(&onramp, &creds_only, "/api/v1/workspaces").await;
    assert_eq!(status, 403, "{body}");
    assert!(body["message"].as_str().unwrap().contains("connections:read"), "{body}");

    // Only a live platform key opens /api/v1: no session, no person's API token, no revoked key.
    let r = onramp.client.get(onramp.server.url("/api/v1/workspaces")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let person = onramp.create_api_token("script").await;
    assert_eq!(call(&onramp, &person, "/api/v1/workspaces").await.0, 401);
    assert_eq!(call(&onramp, "onp_made-up", "/api/v1/workspaces").await.0, 401);
    for unknown in ["/api/v1/nothing-here", "/api/v1"] {
        let (status, body) = call(&onramp, &team, unknown).await;
        assert_eq!((status, body["error"].as_str()), (404, Some("not_found")), "{unknown}");
    }

    // Paging refuses what Onramp did not give.
    for bad in ["?limit=0", "?limit=101", "?after=%25%25", "?after=_w"] {
        let (status, body) = call(&onramp, &team, &format!("/api/v1/workspaces{bad}")).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("bad_request")), "{bad}: {body}");
    }

    // Every use on a workspace is in its audit log, with the key's name and the client address.
    let actors: Vec<(String, String)> =
        sqlx::query_as("SELECT actor_email, ip FROM audit_events WHERE workspace_id = $1 AND action = 'platform.read'")
            .bind(&workspace)
            .fetch_all(onramp.state.db.pool())
            .await
            .unwrap();
    assert!(actors.len() >= 2, "{actors:?}");
    assert!(actors.iter().all(|(who, ip)| who.contains("our collector") && ip == "127.0.0.1"), "{actors:?}");

    // `list` shows the keys and their last use, never a secret; `revoke` stops one at once.
    let (code, listed, _) = platform_key(&onramp, &["list"]).await;
    assert_eq!(code, 0);
    assert!(listed.contains("DevDynamics") && listed.contains("https://platform.example.com"), "{listed}");
    assert!(!listed.contains("onp_"), "a key's secret was listed: {listed}");
    assert!(!listed.lines().find(|l| l.contains("DevDynamics")).unwrap().contains("last used never"), "{listed}");
    let (code, _, _) = platform_key(&onramp, &["revoke", "DevDynamics"]).await;
    assert_eq!(code, 0);
    assert_eq!(call(&onramp, &instance, "/api/v1/workspaces").await.0, 401);
    let (code, _, err) = platform_key(&onramp, &["revoke", "DevDynamics"]).await;
    assert_eq!(code, 1, "a second revoke: {err}");
    // A workspace's key is revoked only by naming its workspace, and that is in its audit log.
    let (code, _, _) = platform_key(&onramp, &["revoke", "our collector"]).await;
    assert_eq!(code, 1, "an instance-level revoke reached a workspace's key");
    let (code, _, _) = platform_key(&onramp, &["revoke", "our collector", "--workspace", &workspace]).await;
    assert_eq!(code, 0);
    assert_eq!(call(&onramp, &team, "/api/v1/workspaces").await.0, 401);
    let changes: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_events WHERE workspace_id = $1 AND action LIKE 'platform_key.%' ORDER BY id",
    )
    .bind(&workspace)
    .fetch_all(onramp.state.db.pool())
    .await
    .unwrap();
    assert_eq!(changes, ["platform_key.created", "platform_key.revoked"]);
}

#[tokio::test]
async fn platform_key_creation_refuses_bad_scopes_and_origins_with_what_to_type() {
    let onramp = spawn_onramp().await;
    let (code, out, err) = platform_key(&onramp, &["create", "--name", "x", "--scopes", "api"]).await;
    assert_eq!(code, 1);
    assert!(out.is_empty() && err.contains("connections:read"), "{err}");
    for origin in
        ["http://platform.example.com", "https://platform.example.com/return", "https://u:p@platform.example.com"]
    {
        let (code, out, err) = platform_key(
            &onramp,
            &["create", "--name", "x", "--scopes", "connections:read", "--return-origin", origin],
        )
        .await;
        assert_eq!(code, 1, "{origin} was taken");
        assert!(out.is_empty() && err.contains("--return-origin"), "{err}");
    }
    let (code, _, err) =
        platform_key(&onramp, &["create", "--name", "two\nlines", "--scopes", "connections:read"]).await;
    assert_eq!(code, 1, "{err}");
    let count: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM platform_keys").fetch_one(onramp.state.db.pool()).await.unwrap();
    assert_eq!(count, 0, "a refused key was stored");
}

/// A workspace-level key with `scopes`, as the workspace's settings will make it.
async fn workspace_key(onramp: &Onramp, workspace: &str, name: &str, scopes: &str) -> String {
    let (_, secret) = app::store::platform::create_key(
        &onramp.state.db,
        app::store::platform::NewKey {
            name,
            scopes: app::platform::Scopes::parse(scopes).unwrap(),
            return_origins: vec![],
            workspace_id: Some(workspace),
        },
    )
    .await
    .unwrap()
    .unwrap();
    secret
}

#[tokio::test]
async fn a_collector_reads_the_chosen_projects_and_the_token_only_with_credentials_read() {
    use crate::scope::{ready, scope_path, send_json};
    let fake = spawn_fake(FakeGitlab::default()).await;
    let onramp = spawn_onramp().await;
    connect(&onramp, &onramp.client, &fake, "glpat-good").await;
    let (workspace, connection) = only_connection(&onramp).await;
    let reader = workspace_key(&onramp, &workspace, "reader", "connections:read").await;
    let collector = workspace_key(&onramp, &workspace, "collector", "connections:read,credentials:read").await;
    let credentials = format!("/api/v1/connections/{connection}/credentials");
    let scope = format!("/api/v1/connections/{connection}/scope");

    // The token leaves only with credentials:read, uncached, and each read is audited.
    let (status, body) = call(&onramp, &reader, &credentials).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["message"].as_str().unwrap().contains("credentials:read"));
    let (status, body) = call(&onramp, &collector, &credentials).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token"], "glpat-good");
    assert_eq!(body["base_url"], fake.url("").trim_end_matches('/'));
    assert_eq!(body["token_expires_at"], "2099-01-01");
    let reads: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_events WHERE workspace_id = $1 AND action = 'platform.read' AND target LIKE 'read the token%'",
    )
    .bind(&workspace)
    .fetch_one(onramp.state.db.pool())
    .await
    .unwrap();
    assert_eq!(reads, 1);
    assert!(!captured_log().contains("glpat-good"), "the token was logged");

    // Nothing chosen yet: 409 saying where to choose.
    ready(&onramp.client, &onramp, &connection).await;
    let (status, body) = call(&onramp, &reader, &scope).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("not_ready")), "{body}");
    assert!(body["message"].as_str().unwrap().contains(&format!("/connections/{connection}/scope")), "{body}");

    // Chosen: the projects of the selection, with GitLab's ids and the role, paged by path.
    let selection =
        r#"{"groups": ["acme/platform"], "projects": ["jdoe/dotfiles"], "exclude": ["acme/platform/worker"]}"#;
    let (status, saved) = send_json(&onramp.client, &onramp, "PUT", &scope_path(&connection), selection).await;
    assert_eq!(status, 200, "{saved}");
    let (status, all) = call(&onramp, &reader, &scope).await;
    assert_eq!(status, 200, "{all}");
    let paths: Vec<&str> =
        all["data"].as_array().unwrap().iter().map(|p| p["path_with_namespace"].as_str().unwrap()).collect();
    assert!(paths.contains(&"acme/platform/api") && paths.contains(&"jdoe/dotfiles"), "{paths:?}");
    assert!(!paths.contains(&"acme/platform/worker") && !paths.contains(&"acme/website"), "{paths:?}");
    assert!(all["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["id"].as_u64().is_some_and(|id| id > 0) && p["role"].is_string()));
    let mut walked = Vec::new();
    let mut next = String::new();
    loop {
        let (status, page) = call(&onramp, &reader, &format!("{scope}?limit=1&after={next}")).await;
        assert_eq!(status, 200, "{page}");
        walked.extend(
            page["data"].as_array().unwrap().iter().map(|p| p["path_with_namespace"].as_str().unwrap().to_owned()),
        );
        match page["next"].as_str() {
            Some(n) => next = n.to_owned(),
            None => break,
        }
    }
    assert_eq!(walked, paths, "paging one by one walks the same projects once each");

    // A connection whose token failed its last check answers 409 with the step that fixes it.
    sqlx::query("UPDATE integrations SET last_check_ok = 0 WHERE id = $1")
        .bind(&connection)
        .execute(onramp.state.db.pool())
        .await
        .unwrap();
    let (status, body) = call(&onramp, &collector, &credentials).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("conflict")), "{body}");
    assert!(!body.to_string().contains("glpat-good"));
}

#[tokio::test]
async fn an_owner_makes_and_revokes_a_workspace_key_at_settings_platform_and_an_admin_cannot() {
    let onramp = spawn_onramp().await;
    let pool = onramp.state.db.pool();
    let workspace: String = sqlx::query_scalar("SELECT id FROM workspaces").fetch_one(pool).await.unwrap();

    // A browser posting the form (no JavaScript) sees the key once, on the page, never in a URL.
    let r = post(
        &onramp.client,
        &onramp,
        "/api/platform_keys/create",
        "text/html",
        &[("name", "nightly collector"), ("connections_read", "on")],
    )
    .await;
    assert!(r.status().is_redirection(), "{}", r.status());
    let shown = location(&r);
    assert!(shown.starts_with("/settings/platform?created=") && !shown.contains("onp_"), "{shown}");
    let page = onramp.client.get(onramp.server.url(&shown)).send().await.unwrap().text().await.unwrap();
    let key =
        page.split(r#"<code id="new-platform-key">"#).nth(1).and_then(|s| s.split('<').next()).unwrap().to_owned();
    assert!(key.starts_with("onp_"), "{key}");
    let again = onramp.client.get(onramp.server.url(&shown)).send().await.unwrap().text().await.unwrap();
    assert!(!again.contains(&key) && again.contains("nightly collector"), "the key was shown twice");
    let (status, body) = call(&onramp, &key, "/api/v1/workspaces").await;
    assert_eq!((status, body["data"][0]["id"].as_str()), (200, Some(workspace.as_str())), "{body}");

    // No scope ticked: the page says what to do; nothing is stored.
    let r = post(&onramp.client, &onramp, "/api/platform_keys/create", "text/html", &[("name", "x")]).await;
    assert_eq!(location(&r), "/settings/platform?error=scopes");
    let page = onramp
        .client
        .get(onramp.server.url("/settings/platform?error=scopes"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Tick at least one thing the key may do"), "{page}");
    // A return origin that is not one: said so, nothing stored.
    let bad = [("name", "embed"), ("connect_sessions_write", "on"), ("return_origin", "http://platform.example/x")];
    let r = post(&onramp.client, &onramp, "/api/platform_keys/create", "text/html", &bad).await;
    assert_eq!(location(&r), "/settings/platform?error=origin");
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM platform_keys").fetch_one(pool).await.unwrap();
    assert_eq!(count, 1);
    // With one, the key's connect sessions may send people back there.
    let good = [("name", "embed"), ("connect_sessions_write", "on"), ("return_origin", "https://platform.example")];
    let r = post(&onramp.client, &onramp, "/api/platform_keys/create", "application/json", &good).await;
    let embed_key: String = r.json().await.unwrap();
    let session = onramp
        .anon
        .post(onramp.server.url("/api/v1/connect_sessions"))
        .bearer_auth(&embed_key)
        .json(&serde_json::json!({
            "end_user": {"external_id": "u1", "email": "u1@example.com"},
            "role": "viewer",
            "return_url": "https://platform.example/done",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(session.status(), 201);
    let listed = onramp.client.get(onramp.server.url("/settings/platform")).send().await.unwrap().text().await.unwrap();
    assert!(listed.contains("returns to https://platform.example"), "{listed}");
    sqlx::query("DELETE FROM platform_keys WHERE name = 'embed'").execute(pool).await.unwrap();

    // An admin of the workspace may not make or revoke its keys.
    let admin = member_of(&onramp, "admin", "ada@example.com").await;
    let key_id: String = sqlx::query_scalar("SELECT id FROM platform_keys").fetch_one(pool).await.unwrap();
    for (path, form) in [
        (
            "/api/platform_keys/create",
            vec![
                ("name", "mine"),
                ("connections_read", "on"),
                ("credentials_read", "on"),
                ("workspace", workspace.as_str()),
            ],
        ),
        ("/api/platform_keys/revoke", vec![("id", key_id.as_str()), ("workspace", workspace.as_str())]),
    ] {
        let r =
            admin.post(onramp.server.url(path)).header("accept", "application/json").form(&form).send().await.unwrap();
        assert_eq!(r.status(), 403, "{path}");
    }
    assert_eq!(call(&onramp, &key, "/api/v1/workspaces").await.0, 200, "an admin revoked the key");

    // The owner revokes it: it stops working at once.
    let r = post(&onramp.client, &onramp, "/api/platform_keys/revoke", "text/html", &[("id", &key_id)]).await;
    assert_eq!(location(&r), "/settings/platform?revoked=1");
    assert_eq!(call(&onramp, &key, "/api/v1/workspaces").await.0, 401);
    let page = onramp.client.get(onramp.server.url("/settings/platform")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("— revoked") && !page.contains(&key), "{page}");
}
