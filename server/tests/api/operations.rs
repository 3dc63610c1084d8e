//! What an operator relies on: health and readiness, metrics for the right callers only, a
//! request id in answers and logs, JSON logs, and a SIGTERM that lets a running check finish.

use crate::support::*;
use fake_gitlab::FakeGitlab;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncBufReadExt;

#[tokio::test]
async fn health_and_readiness() {
    let onramp = spawn_onramp().await;
    let (status, body) = onramp.get("/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (status, _) = onramp.get("/readyz").await;
    assert_eq!(status, 200);
    onramp.state.db.pool().close().await;
    let (status, body) = onramp.get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    let (status, _) = onramp.get("/healthz").await;
    assert_eq!(status, 200, "the process is still up");
}

#[tokio::test]
async fn metrics_for_loopback_or_an_admin_token_only() {
    let fake = spawn_fake(FakeGitlab::default()).await;
    // Behind a trusted proxy, so a forwarded client address can be made non-loopback.
    let onramp = spawn_onramp_with(|c| {
        c.settings.trusted_proxies = app::client::TrustedProxies::parse("127.0.0.1").unwrap();
    })
    .await;
    onramp.validate(&fake.url(""), "glpat-good").await;
    onramp.get("/integrations/gitlab/step/8").await;
    let scrape = |xff: Option<&'static str>, bearer: Option<String>| {
        let mut r = onramp.anon.get(onramp.server.url("/metrics"));
        if let Some(xff) = xff {
            r = r.header("x-forwarded-for", xff);
        }
        if let Some(token) = bearer {
            r = r.header("authorization", format!("Bearer {token}"));
        }
        async move {
            let r = r.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (status, text) = scrape(None, None).await;
    assert_eq!(status, 200);
    for metric in [
        "onramp_http_requests_total",
        r#"route="/integrations/gitlab/step/:n""#,
        "onramp_http_request_duration_seconds_bucket",
        r#"onramp_checks_total{outcome="ok"}"#,
        "onramp_gitlab_request_duration_seconds",
        r#"onramp_db_pool_connections{state="idle"}"#,
    ] {
        assert!(text.contains(metric), "{metric} missing from:\n{text}");
    }
    // From elsewhere: not there, unless with an admin token.
    assert_eq!(scrape(Some("198.51.100.7"), None).await.0, 404);
    let user_token: String = onramp.create_api_token("ci").await;
    assert_eq!(scrape(Some("198.51.100.7"), Some(user_token)).await.0, 404, "an ordinary API token");
    let admin = app::store::accounts::create_admin_token(&onramp.state.db, "jane@example.com", "prometheus")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(scrape(Some("198.51.100.7"), Some(admin)).await.0, 200);
}

#[tokio::test]
async fn every_answer_carries_a_request_id_of_its_own() {
    let onramp = spawn_onramp().await;
    let get = || {
        onramp
            .anon
            .get(onramp.server.url("/integrations/gitlab/step/1"))
            .header("x-request-id", "chosen-by-the-client")
            .send()
    };
    let a = get().await.unwrap().headers()["x-request-id"].to_str().unwrap().to_owned();
    let b = get().await.unwrap().headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(a, b);
    assert_eq!(a.len(), 32, "{a}");
    assert!(a.chars().all(|c| c.is_ascii_hexdigit()), "made by Onramp, not taken from the client: {a}");
}

#[tokio::test]
async fn json_logs_carry_the_request_id() {
    let data = tempfile::tempdir().unwrap();
    let (mut child, server) = start_binary(data.path(), &[("ONRAMP_LOG_FORMAT", "json")], Stdio::piped()).await;
    let r = reqwest::get(server.url("/integrations/gitlab/step/3")).await.unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let value: serde_json::Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            if value["span"]["id"] == id.as_str() {
                return value;
            }
            seen.push(value);
        }
        panic!("no log line for request {id}: {seen:?}");
    })
    .await
    .expect("a log line for the request");
    assert_eq!(found["span"]["path"], "/integrations/gitlab/step/3");
    assert!(found["level"].is_string() && found["timestamp"].is_string(), "{found}");
}

#[tokio::test]
async fn sigterm_lets_a_running_check_finish() {
    let slow = spawn_fake(FakeGitlab { latency: Duration::from_millis(1500), ..FakeGitlab::default() }).await;
    let data = tempfile::tempdir().unwrap();
    let (mut child, server) = start_binary(data.path(), &[], Stdio::null()).await;
    let client = browser_client(&server);
    enter_at(&client, &server, "/api/auth/signup", "jane@example.com").await;
    let running = tokio::spawn({
        let (client, url, base) = (client.clone(), server.url("/api/gitlab/validate"), slow.url(""));
        async move {
            client
                .post(url)
                .header("accept", "application/json")
                .form(&[("base_url", base.as_str()), ("token", "glpat-good")])
                .send()
                .await
        }
    });
    // The check is under way (the fake answers after 1.5 s) when the signal comes.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        reqwest::Client::new().get(server.url("/healthz")).send().await.is_err(),
        "no new connections after the signal"
    );
    let answer = running.await.unwrap().expect("the check in flight is answered");
    assert_eq!(answer.status(), 200);
    let report: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(check(&report, "token")["status"], "pass", "{report}");
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait()).await.expect("it exits").unwrap();
    assert!(status.success(), "a clean exit: {status:?}");
}
