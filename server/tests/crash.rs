//! kill -9 in the middle of sign-ups and saves (each sign-up is a multi-statement transaction:
//! account, workspace, membership): confirmed saves survive whole, nothing is half-written. On
//! SQLite, and on PostgreSQL under `ONRAMP_TEST_DATABASE_URL` (`make unit` runs both).

mod support;

use fake_gitlab::FakeGitlab;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;

async fn free_port() -> u16 {
    tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port()
}

#[tokio::test]
async fn kill_9_during_saves_leaves_a_consistent_database() {
    let fake = spawn_fake(FakeGitlab::default()).await;
    let data = tempfile::tempdir().unwrap();
    let database_url = fresh_database_url(data.path()).await;
    for round in 0..2u64 {
        let port = free_port().await;
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_onramp"))
            .env("ONRAMP_DATA_DIR", data.path())
            .env("DATABASE_URL", database_url.clone().unwrap_or_default())
            .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
            .env("LEPTOS_OUTPUT_NAME", "onramp")
            .env("ONRAMP_OUTBOUND_ALLOW", "127.0.0.1")
            .env("ONRAMP_CHECK_RATE_PER_MIN", "100000")
            .env("ONRAMP_SIGNUPS_PER_IP_PER_HOUR", "100000")
            .env_remove("ONRAMP_SECRET_KEY")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let server = Running { addr: format!("127.0.0.1:{port}").parse().unwrap() };
        wait_until_up(&server).await; // panics after 30 s

        // Many users saving at once; remember whose save was confirmed.
        let committed = Arc::new(Mutex::new(Vec::<String>::new()));
        let mut tasks = Vec::new();
        for i in 0..16 {
            let server_url = server.url("");
            let base = fake.url("");
            let committed = committed.clone();
            let email = format!("user{round}-{i}@example.com");
            let client = browser_client(&server);
            tasks.push(tokio::spawn(async move {
                for _ in 0..3 {
                    let signup = client
                        .post(format!("{server_url}/api/auth/signup"))
                        .header("accept", "text/html")
                        .form(&[("email", email.as_str()), ("password", PASSWORD)])
                        .send()
                        .await
                        .ok()?;
                    if signup.status().is_redirection() {
                        break;
                    }
                }
                let r = client
                    .post(format!("{server_url}/api/gitlab/validate"))
                    .header("accept", "text/html")
                    .form(&[("base_url", base.as_str()), ("token", "glpat-good")])
                    .send()
                    .await
                    .ok()?;
                let check = r.headers().get("location")?.to_str().ok()?.split("check=").nth(1)?.to_owned();
                let r = client
                    .post(format!("{server_url}/api/gitlab/accept"))
                    .header("accept", "text/html")
                    .form(&[("check", check)])
                    .send()
                    .await
                    .ok()?;
                if r.headers().get("location")?.to_str().ok()?.starts_with("/integrations/gitlab/step/13") {
                    committed.lock().unwrap().push(email);
                }
                Some(())
            }));
        }
        // Kill while saves are in flight: once a few were confirmed, the others are mid-way.
        let wanted = 2 + 4 * round as usize;
        for _ in 0..1200 {
            if committed.lock().unwrap().len() >= wanted {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        child.start_kill().unwrap();
        child.wait().await.unwrap();
        for t in tasks {
            // A request cut by the kill ends the task early (None); a panic fails the test.
            t.await.expect("a save task panicked");
        }

        // Reopen what the killed process left behind.
        let config = server::Config {
            leptos: leptos::config::LeptosOptions::builder().output_name("onramp").build(),
            outbound: Default::default(),
            settings: app::state::Settings {
                checks_per_minute: std::num::NonZeroU32::new(1).unwrap(),
                ..Default::default()
            },
            data_dir: data.path().to_owned(),
            database_url: database_url.clone(),
            secret_key: None,
            recheck_interval: Duration::from_secs(3600),
            mail: None,
        };
        let (db, keys) = server::open_storage(&config).await.expect("the database opens after kill -9");
        if database_url.is_none() {
            let integrity: String = sqlx::query_scalar("PRAGMA integrity_check").fetch_one(db.pool()).await.unwrap();
            assert_eq!(integrity, "ok");
        }
        // No sign-up is half there: every account owns a workspace, every workspace has an owner.
        for (half_written, query) in [
            (
                "an account without its workspace",
                "SELECT COUNT(*) FROM users u WHERE NOT EXISTS \
                 (SELECT 1 FROM memberships m WHERE m.user_id = u.id AND m.role = 'owner')",
            ),
            (
                "a workspace without its owner",
                "SELECT COUNT(*) FROM workspaces w WHERE NOT EXISTS \
                 (SELECT 1 FROM memberships m WHERE m.workspace_id = w.id AND m.role = 'owner')",
            ),
        ] {
            let found: i64 = sqlx::query_scalar(query).fetch_one(db.pool()).await.unwrap();
            assert_eq!(found, 0, "{half_written}");
        }
        let committed = committed.lock().unwrap().clone();
        for email in &committed {
            let row = sqlx::query(
                "SELECT i.workspace_id, i.id FROM integrations i JOIN memberships m ON m.workspace_id = i.workspace_id \
                 JOIN users u ON u.id = m.user_id WHERE u.email = $1",
            )
            .bind(email)
            .fetch_one(db.pool())
            .await
            .unwrap();
            let (ws, id): (String, String) = (sqlx::Row::get(&row, "workspace_id"), sqlx::Row::get(&row, "id"));
            let (integration, token, _) = app::store::integrations::with_token(&db, &keys, &ws, &id)
                .await
                .unwrap()
                .expect("a confirmed save survives");
            assert_eq!(token.expose(), "glpat-good");
            assert_eq!(integration.username, "jdoe");
        }
        // Every row that exists is whole: it decrypts and its report parses.
        let owners: Vec<(String, String)> = sqlx::query("SELECT workspace_id, id FROM integrations")
            .fetch_all(db.pool())
            .await
            .unwrap()
            .iter()
            .map(|r| (sqlx::Row::get(r, "workspace_id"), sqlx::Row::get(r, "id")))
            .collect();
        eprintln!("round {round}: {} confirmed saves, {} rows", committed.len(), owners.len());
        assert!(!committed.is_empty(), "the kill came after some saves");
        assert!(committed.len() < 16, "and while others were still under way");
        assert!(owners.len() >= committed.len());
        for (ws, id) in owners {
            let (_, token, _) = app::store::integrations::with_token(&db, &keys, &ws, &id).await.unwrap().unwrap();
            assert_eq!(token.expose(), "glpat-good");
        }
        db.pool().close().await;
    }
}

async fn start_onramp(data: &std::path::Path) -> (tokio::process::Child, Running) {
    start_binary(data, &[], Stdio::null()).await
}

async fn rotate_key(data: &std::path::Path) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_onramp"))
        .arg("rotate-key")
        .env("ONRAMP_DATA_DIR", data)
        .env_remove("DATABASE_URL")
        .env_remove("ONRAMP_SECRET_KEY")
        .output()
        .await
        .unwrap()
}

#[tokio::test]
async fn rotate_key_refuses_while_a_server_runs_and_no_token_is_lost() {
    let fake = spawn_fake(FakeGitlab::default()).await;
    let data = tempfile::tempdir().unwrap();
    let (mut child, server) = start_onramp(data.path()).await;
    let client = browser_client(&server);
    enter_at(&client, &server, "/api/auth/signup", "jane@example.com").await;
    // While the server runs, a rotation would leave it sealing with the discarded key.
    let out = rotate_key(data.path()).await;
    assert_eq!(out.status.code(), Some(1), "refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Stop every Onramp server"));
    let key_before = std::fs::read_to_string(data.path().join("secret.key")).unwrap();
    assert!(!data.path().join("secret.key.next").exists(), "nothing was changed");

    // Connected through the browser flow (saved on a passing check with warnings accepted).
    connect_at(&client, &server, &fake, "glpat-good").await;

    child.kill().await.unwrap();
    child.wait().await.unwrap();
    let out = rotate_key(data.path()).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Re-encrypted 1 token(s)"));
    assert_ne!(std::fs::read_to_string(data.path().join("secret.key")).unwrap(), key_before);

    // The restarted server opens the token with the new key.
    let (_child, server) = start_onramp(data.path()).await;
    let client = browser_client(&server);
    enter_at(&client, &server, "/api/auth/login", "jane@example.com").await;
    let r = client.post(server.url("/api/gitlab/recheck")).header("accept", "application/json").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let report: serde_json::Value = r.json().await.unwrap();
    assert_eq!(check_status(&report, "token"), "pass", "{report}");
}

fn check_status(report: &serde_json::Value, id: &str) -> String {
    check(report, id)["status"].as_str().unwrap().to_owned()
}

/// A webhook endpoint that keeps every request's `webhook-id`; the first request it gets is never
/// answered (the sender is killed while it waits), the others get 204.
async fn hanging_receiver() -> (Arc<Mutex<Vec<String>>>, Arc<tokio::sync::Notify>, Running) {
    let got = Arc::new(Mutex::new(Vec::<String>::new()));
    let arrived = Arc::new(tokio::sync::Notify::new());
    let (g, a) = (got.clone(), arrived.clone());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap| {
            let (got, arrived) = (g.clone(), a.clone());
            async move {
                let id = headers["webhook-id"].to_str().unwrap().to_owned();
                let first = {
                    let mut got = got.lock().unwrap();
                    got.push(id);
                    got.len() == 1
                };
                arrived.notify_one();
                if first {
                    std::future::pending::<()>().await;
                }
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    (got, arrived, spawn_router(app).await)
}

#[tokio::test]
async fn kill_9_while_a_webhook_is_being_sent_loses_no_delivery() {
    let data = tempfile::tempdir().unwrap();
    let database_url = fresh_database_url(data.path()).await.unwrap_or_default();
    let env = [("DATABASE_URL", database_url.as_str())];
    let (mut child, server) = start_binary(data.path(), &env, Stdio::null()).await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_onramp"))
        .args(["platform-key", "create", "--name", "DevDynamics", "--scopes", "webhooks:write"])
        .env("ONRAMP_DATA_DIR", data.path())
        .env("DATABASE_URL", &database_url)
        .env_remove("ONRAMP_SECRET_KEY")
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let key = String::from_utf8_lossy(&out.stdout).lines().last().unwrap().to_owned();
    let (got, arrived, hooks) = hanging_receiver().await;
    let api = reqwest::Client::new();
    let made: serde_json::Value = api
        .post(server.url("/api/v1/webhooks"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"url": hooks.url("/hook"), "events": ["*"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let endpoint = made["id"].as_str().unwrap().to_owned();
    let r = api.post(server.url(&format!("/api/v1/webhooks/{endpoint}/test"))).bearer_auth(&key).send().await.unwrap();
    assert_eq!(r.status(), 202);

    // The server's sender picks it up at once; killed while the endpoint has not answered.
    tokio::time::timeout(Duration::from_secs(30), arrived.notified()).await.expect("the delivery was sent");
    child.kill().await.unwrap();
    child.wait().await.unwrap();

    // Its lease runs out and another sender sends it again, with the same id.
    let config = test_config(data.path(), Some(database_url.clone()).filter(|u| !u.is_empty()));
    let (db, keys) = server::open_storage(&config).await.unwrap();
    let (_, state) = server::router(config, db, keys);
    let later = app::store::now() + app::store::webhooks::LEASE_SECONDS + 1;
    let done = app::jobs::deliver::run(&state, later).await.unwrap();
    assert_eq!(done.delivered, 1, "{done:?}");
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0], got[1], "the same webhook-id, so the platform can tell it is the same message");
    let state_now: String =
        sqlx::query_scalar("SELECT state FROM webhook_deliveries").fetch_one(state.db.pool()).await.unwrap();
    assert_eq!(state_now, "delivered");
}
