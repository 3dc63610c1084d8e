//! The embed end to end over HTTP (issue 22): a platform's connect session sends its end user
//! through the wizard against the fake GitLab and back; the platform hears the events, signed,
//! pulls them, and reads the chosen projects and the token. Links are single use and expire;
//! return URLs, keys and tenants are checked; webhooks are retried through a receiver that fails,
//! times out and recovers, and go only where the outbound guard allows. SQLite and PostgreSQL.

use crate::scope::{ready, scope_path, send_json};
use crate::support::*;
use app::platform::{ReturnOrigin, Scopes};
use app::signing::WebhookSecret;
use app::store::platform::{create_key, NewKey};
use fake_gitlab::FakeGitlab;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the platform's origin is in these tests.
const ORIGIN: &str = "https://platform.example";

/// A platform key made as `onramp platform-key create` makes one (the CLI is tested elsewhere).
async fn key(onramp: &Onramp, name: &str, scopes: &str, workspace: Option<&str>) -> String {
    let new = NewKey {
        name,
        scopes: Scopes::parse(scopes).unwrap(),
        return_origins: vec![ReturnOrigin::parse(ORIGIN).unwrap()],
        workspace_id: workspace,
    };
    create_key(&onramp.state.db, new).await.unwrap().unwrap().1
}

const ALL: &str = "connect_sessions:write,connections:read,credentials:read,webhooks:write";

async fn api(onramp: &Onramp, key: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = onramp.anon.request(method.parse().unwrap(), onramp.server.url(path)).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() };
    contract::check(method, path, status, &body);
    (status, body)
}

fn session_request(workspace: &str, user: &str) -> Value {
    json!({
        "workspace": {"external_id": workspace, "name": format!("Customer {workspace}")},
        "end_user": {"external_id": user, "email": format!("{user}@customer.example"), "name": "Lee Lead"},
        "role": "admin",
        "return_url": format!("{ORIGIN}/integrations/gitlab/done?tab=1"),
        "refresh_url": format!("{ORIGIN}/integrations/gitlab/start"),
        "state": "opaque-42",
    })
}

/// One request a [`Receiver`] got.
#[derive(Clone, Debug)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

/// What the receiver does with the next request.
#[derive(Clone, Copy, Debug)]
enum Then {
    Answer(u16),
    /// Answers only after this long (longer than Onramp's request timeout: a timeout).
    Hang(Duration),
}

/// The platform's webhook endpoint: keeps every request, answers as told (then 204).
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    plan: Arc<Mutex<VecDeque<Then>>>,
}

impl Receiver {
    async fn spawn() -> (Receiver, Running) {
        let receiver = Receiver::default();
        let r = receiver.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let r = r.clone();
                async move {
                    let header = |n: &str| headers.get(n).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
                    r.got.lock().unwrap().push(Received {
                        id: header("webhook-id"),
                        timestamp: header("webhook-timestamp"),
                        signature: header("webhook-signature"),
                        body,
                    });
                    let then = r.plan.lock().unwrap().pop_front().unwrap_or(Then::Answer(204));
                    match then {
                        Then::Answer(status) => axum::http::StatusCode::from_u16(status).unwrap(),
                        Then::Hang(wait) => {
                            tokio::time::sleep(wait).await;
                            axum::http::StatusCode::OK
                        }
                    }
                }
            }),
        );
        (receiver, spawn_router(app).await)
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    fn then(&self, plan: &[Then]) {
        self.plan.lock().unwrap().extend(plan.iter().copied());
    }

    /// The types of what arrived, each checked against the endpoint's secret as a platform
    /// would with a Standard Webhooks library.
    fn verified_types(&self, secret: &WebhookSecret) -> Vec<String> {
        self.got()
            .iter()
            .map(|r| {
                let ts: i64 = r.timestamp.parse().unwrap();
                secret
                    .verify(&r.id, &r.timestamp, &r.signature, r.body.as_bytes(), ts)
                    .unwrap_or_else(|e| panic!("a delivery's signature does not verify: {e}: {r:?}"));
                let body: Value = serde_json::from_str(&r.body).unwrap();
                assert!(body["timestamp"].is_string() && body["data"].is_object(), "{body}");
                body["type"].as_str().unwrap().to_owned()
            })
            .collect()
    }
}

/// Sends what is due now (as the server's delivery loop does).
async fn deliver(onramp: &Onramp, at: i64) -> app::jobs::deliver::Report {
    app::jobs::deliver::run(&onramp.state, at).await.unwrap()
}

fn now() -> i64 {
    app::store::now()
}

#[tokio::test]
async fn a_platform_sends_its_user_through_the_wizard_hears_the_events_and_reads_the_projects() {
    let fake = spawn_fake(FakeGitlab::default()).await;
    let onramp = spawn_onramp_with(|c| c.settings.discovery.backoff_ms = 10).await;
    let platform = key(&onramp, "DevDynamics", ALL, None).await;
    let (receiver, hooks) = Receiver::spawn().await;

    let (status, endpoint) =
        api(&onramp, &platform, "POST", "/api/v1/webhooks", Some(json!({"url": hooks.url("/hook"), "events": ["*"]})))
            .await;
    assert_eq!(status, 201, "{endpoint}");
    let secret = WebhookSecret::parse(endpoint["secret"].as_str().unwrap()).unwrap();
    let (_, listed) = api(&onramp, &platform, "GET", "/api/v1/webhooks", None).await;
    assert!(!listed.to_string().contains("whsec_"), "a secret is shown once: {listed}");

    // The platform's backend makes a session for its user; the browser follows the link.
    let mut request = session_request("cust-1", "u-7");
    request["base_url"] = json!(fake.url(""));
    let (status, session) = api(&onramp, &platform, "POST", "/api/v1/connect_sessions", Some(request)).await;
    assert_eq!(status, 201, "{session}");
    let link = session["url"].as_str().unwrap().to_owned();
    let session_id = session["id"].as_str().unwrap().to_owned();
    let (_, pending) = api(&onramp, &platform, "GET", &format!("/api/v1/connect_sessions/{session_id}"), None).await;
    assert_eq!(pending["status"], "pending");

    let browser = browser_client(&onramp.server);
    let r = browser.get(&link).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    let step_5 = location(&r);
    assert!(step_5.starts_with("/integrations/gitlab/step/5?base="), "{step_5}");
    let secret_part = link.rsplit('/').next().unwrap();
    assert!(!step_5.contains(secret_part), "the link's secret left the address bar");
    let page = browser.get(onramp.server.url(&step_5)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("DevDynamics") && page.contains("Customer cust-1"), "the banner names both");
    // Single use: the same link again goes to the platform's refresh_url.
    let again = browser.get(&link).send().await.unwrap();
    assert_eq!(location(&again), format!("{ORIGIN}/integrations/gitlab/start"));
    let (_, opened) = api(&onramp, &platform, "GET", &format!("/api/v1/connect_sessions/{session_id}"), None).await;
    assert_eq!(opened["status"], "opened");

    // Steps 12–13 save into the platform's workspace; step 13 offers the way back.
    let step_13 = connect_at(&browser, &onramp.server, &fake, "glpat-good").await;
    let (workspace, connection) = only_connection(&onramp).await;
    assert_eq!(workspace, session["workspace_id"].as_str().unwrap());
    let back = format!(
        "{ORIGIN}/integrations/gitlab/done?tab=1&amp;connect_session={session_id}&amp;connection_id={connection}&amp;state=opaque-42"
    );
    assert!(step_13.contains(&back) && step_13.contains("Back to DevDynamics"), "{step_13}");
    let (_, done) = api(&onramp, &platform, "GET", &format!("/api/v1/connect_sessions/{session_id}"), None).await;
    assert_eq!(
        (done["status"].as_str(), done["connection_id"].as_str()),
        (Some("completed"), Some(connection.as_str()))
    );

    // The end user picks projects.
    let listed = ready(&browser, &onramp, &connection).await;
    let readable = listed["projects"].as_array().unwrap().iter().find(|p| p["readable"] == true).unwrap();
    let chosen = readable["path_with_namespace"].as_str().unwrap().to_owned();
    let (status, saved) = send_json(
        &browser,
        &onramp,
        "PUT",
        &scope_path(&connection),
        &json!({"groups": [], "projects": [chosen], "exclude": []}).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{saved}");

    // The platform heard all of it, each delivery signed; the same events can be pulled.
    let sent = deliver(&onramp, now()).await;
    assert_eq!(sent.delivered, 3, "{sent:?}");
    let heard = receiver.verified_types(&secret);
    assert_eq!(heard, ["connection.created", "connect_session.completed", "scope.updated"]);
    let (status, events) = api(&onramp, &platform, "GET", "/api/v1/events?limit=2", None).await;
    assert_eq!(status, 200, "{events}");
    assert_eq!(events["data"][0]["type"], "connection.created");
    assert_eq!(events["data"][1]["data"]["connect_session_id"], session_id.as_str());
    let first_id = events["data"][0]["id"].as_str().unwrap();
    assert_eq!(first_id, receiver.got()[0].id, "the pull and the push share the event's id");
    let next = events["next"].as_str().unwrap();
    let (_, rest) = api(&onramp, &platform, "GET", &format!("/api/v1/events?after={next}"), None).await;
    assert_eq!(rest["data"][0]["type"], "scope.updated");
    assert_eq!(rest["next"], Value::Null);
    let (_, caught_up) = api(&onramp, &platform, "GET", &format!("/api/v1/events?after={first_id}"), None).await;
    assert_eq!(caught_up["data"].as_array().unwrap().len(), 2, "an event id works as `after`: {caught_up}");

    // Its collector reads the chosen projects and counts their merge requests with the token.
    let (_, scope) = api(&onramp, &platform, "GET", &format!("/api/v1/connections/{connection}/scope"), None).await;
    assert_eq!(scope["data"].as_array().unwrap().len(), 1, "{scope}");
    let (_, creds) =
        api(&onramp, &platform, "GET", &format!("/api/v1/connections/{connection}/credentials"), None).await;
    let project = scope["data"][0]["id"].as_u64().unwrap();
    let mrs: Value = reqwest::Client::new()
        .get(format!("{}/api/v4/projects/{project}/merge_requests", creds["base_url"].as_str().unwrap()))
        .header("private-token", creds["token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!mrs.as_array().unwrap().is_empty());

    // The end user is an account of their own: the address Onramp shows is the platform's, the
    // stored one is nobody's, and no password opens it.
    let stored: String =
        sqlx::query_scalar("SELECT u.email FROM users u JOIN platform_end_users p ON p.user_id = u.id")
            .fetch_one(onramp.state.db.pool())
            .await
            .unwrap();
    assert!(stored.ends_with("@platform-user.invalid"), "{stored}");
    let members = browser.get(onramp.server.url("/settings/workspace")).send().await.unwrap().text().await.unwrap();
    assert!(members.contains("u-7@customer.example"));
    let r = post(
        &onramp.anon,
        &onramp,
        "/api/auth/login",
        "application/json",
        &[("email", "u-7@customer.example"), ("password", "!")],
    )
    .await;
    assert!(!r.status().is_success(), "no password signs a platform's user in");

    // No secret of the embed reached a log line: the link's, the key, the webhook secret, the token.
    let log = captured_log();
    for secret in [secret_part, platform.as_str(), endpoint["secret"].as_str().unwrap(), "glpat-good"] {
        assert!(!log.contains(secret), "a secret was logged: {secret}");
    }
}

#[tokio::test]
async fn session_links_are_single_use_expire_and_return_only_to_the_keys_origins() {
    let onramp = spawn_onramp().await;
    let platform = key(&onramp, "LinearB", "connect_sessions:write", None).await;
    let create = |body: Value| api(&onramp, &platform, "POST", "/api/v1/connect_sessions", Some(body));

    // Refused, each with a message naming the field.
    for (change, field) in [
        (json!({"return_url": "https://evil.example/x"}), "return_url"),
        (json!({"return_url": "http://platform.example/x"}), "return_url"),
        (json!({"refresh_url": "javascript:alert(1)"}), "refresh_url"),
        (json!({"workspace": null}), "workspace"),
        (json!({"role": "owner"}), "role"),
        (json!({"expires_in": 90_000}), "expires_in"),
        (json!({"end_user": {"external_id": "u", "email": "nope"}}), "end_user.email"),
    ] {
        let mut body = session_request("c", "u");
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, answer) = create(body).await;
        assert_eq!(status, 400, "{change}: {answer}");
        assert!(answer["message"].as_str().unwrap().contains(field), "{answer}");
    }
    let r = onramp
        .anon
        .post(onramp.server.url("/api/v1/connect_sessions"))
        .bearer_auth(&platform)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // The same external ids find the same workspace and user again (renamed as the platform says).
    let (_, one) = create(session_request("acme", "lee")).await;
    let mut renamed = session_request("acme", "lee");
    renamed["workspace"]["name"] = json!("Acme Corp");
    let (_, two) = create(renamed).await;
    assert_eq!(one["workspace_id"], two["workspace_id"]);
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM workspaces WHERE id = $1")
        .bind(one["workspace_id"].as_str().unwrap())
        .fetch_all(onramp.state.db.pool())
        .await
        .unwrap();
    assert_eq!(names, ["Acme Corp"]);
    let users: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM platform_end_users").fetch_one(onramp.state.db.pool()).await.unwrap();
    assert_eq!(users, 1);

    // Expired: to the refresh_url; without one, a page that says so; unknown: 404.
    let (_, expired) = create(session_request("acme", "lee")).await;
    sqlx::query("UPDATE connect_sessions SET expires_at = $1 WHERE id = $2")
        .bind(now() - 1)
        .bind(expired["id"].as_str().unwrap())
        .execute(onramp.state.db.pool())
        .await
        .unwrap();
    let browser = browser_client(&onramp.server);
    let r = browser.get(expired["url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(location(&r), format!("{ORIGIN}/integrations/gitlab/start"));
    assert!(r.headers().get("set-cookie").is_none(), "an expired link signs nobody in");
    let (_, status) =
        api(&onramp, &platform, "GET", &format!("/api/v1/connect_sessions/{}", expired["id"].as_str().unwrap()), None)
            .await;
    assert_eq!(status["status"], "expired");
    let mut no_refresh = session_request("acme", "lee");
    no_refresh.as_object_mut().unwrap().remove("refresh_url");
    let (_, used) = create(no_refresh).await;
    let url = used["url"].as_str().unwrap();
    assert_eq!(browser.get(url).send().await.unwrap().status(), 303);
    let r = browser.get(url).send().await.unwrap();
    assert_eq!(location(&r), "/connect/ended");
    let r = browser.get(onramp.server.url("/connect/ended")).send().await.unwrap();
    assert_eq!(r.status(), 410);
    assert!(r.text().await.unwrap().contains("This link no longer works"));
    let r =
        browser.get(onramp.server.url("/connect/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")).send().await.unwrap();
    assert_eq!(r.status(), 404);

    // A revoked key's links stop working.
    let (_, live) = create(session_request("acme", "lee")).await;
    let key_id: String =
        sqlx::query_scalar("SELECT id FROM platform_keys").fetch_one(onramp.state.db.pool()).await.unwrap();
    assert!(app::store::platform::revoke_key(&onramp.state.db, None, &key_id).await.unwrap());
    let r = browser.get(live["url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(location(&r), format!("{ORIGIN}/integrations/gitlab/start"));
}

#[tokio::test]
async fn two_platforms_and_two_workspace_keys_never_see_each_others_sessions_connections_events_or_webhooks() {
    let fake = spawn_fake(FakeGitlab::default()).await;
    let onramp = spawn_onramp().await;
    let a = key(&onramp, "Platform A", ALL, None).await;
    let b = key(&onramp, "Platform B", ALL, None).await;
    let (_, hooks) = Receiver::spawn().await;

    // A's customer connects GitLab through A.
    let (_, session) =
        api(&onramp, &a, "POST", "/api/v1/connect_sessions", Some(session_request("same-id", "same-user"))).await;
    let browser = browser_client(&onramp.server);
    browser.get(session["url"].as_str().unwrap()).send().await.unwrap();
    connect_at(&browser, &onramp.server, &fake, "glpat-good").await;
    let (workspace, connection) = only_connection(&onramp).await;
    let (_, endpoint) =
        api(&onramp, &a, "POST", "/api/v1/webhooks", Some(json!({"url": hooks.url("/hook"), "events": ["*"]}))).await;
    let endpoint = endpoint["id"].as_str().unwrap().to_owned();
    // B uses the same external ids: its own workspace, its own user.
    let (_, other) =
        api(&onramp, &b, "POST", "/api/v1/connect_sessions", Some(session_request("same-id", "same-user"))).await;
    assert_ne!(other["workspace_id"], session["workspace_id"]);

    // Two workspace-level keys: Jane's workspace (no connection) and A's customer's.
    let jane_ws: String = sqlx::query_scalar("SELECT id FROM workspaces WHERE id <> $1 AND id <> $2 LIMIT 1")
        .bind(&workspace)
        .bind(other["workspace_id"].as_str().unwrap())
        .fetch_one(onramp.state.db.pool())
        .await
        .unwrap();
    let jane = key(&onramp, "Jane's collector", ALL, Some(&jane_ws)).await;
    let theirs = key(&onramp, "Their collector", ALL, Some(&workspace)).await;
    let (status, _) = api(&onramp, &theirs, "GET", &format!("/api/v1/connections/{connection}"), None).await;
    assert_eq!(status, 200, "a workspace-level key reads its own workspace");

    let sid = session["id"].as_str().unwrap();
    let paths = [
        ("GET", format!("/api/v1/connect_sessions/{sid}")),
        ("GET", format!("/api/v1/connections/{connection}")),
        ("GET", format!("/api/v1/connections/{connection}/scope")),
        ("GET", format!("/api/v1/connections/{connection}/credentials")),
        ("GET", format!("/api/v1/connections?workspace_id={workspace}")),
        ("GET", format!("/api/v1/webhooks/{endpoint}/deliveries")),
        ("POST", format!("/api/v1/webhooks/{endpoint}/test")),
        ("POST", format!("/api/v1/webhooks/{endpoint}/deliveries/dlv_x/retry")),
        ("DELETE", format!("/api/v1/webhooks/{endpoint}")),
    ];
    for stranger in [&b, &jane] {
        for (method, path) in &paths {
            let (status, body) = api(&onramp, stranger, method, path, None).await;
            assert_eq!(status, 404, "{method} {path}: {body}");
            assert!(!body.to_string().contains("glpat"), "{body}");
        }
        let (_, events) = api(&onramp, stranger, "GET", "/api/v1/events", None).await;
        assert!(
            events["data"].as_array().unwrap().iter().all(|e| e["workspace_id"] != workspace.as_str()),
            "another platform's events leaked: {events}"
        );
        let (status, _) =
            api(&onramp, stranger, "GET", &format!("/api/v1/events?after={}", first_event(&onramp).await), None).await;
        assert_eq!(status, 400, "another key's event is no place to read from");
        let (_, endpoints) = api(&onramp, stranger, "GET", "/api/v1/webhooks", None).await;
        assert_eq!(endpoints["data"].as_array().unwrap().len(), 0);
    }
    // A workspace-level key's sessions go to its workspace; naming another is refused.
    let (status, answer) =
        api(&onramp, &jane, "POST", "/api/v1/connect_sessions", Some(session_request("x", "y"))).await;
    assert_eq!(status, 400, "{answer}");
    let mut own = session_request("x", "y");
    own.as_object_mut().unwrap().remove("workspace");
    let (status, made) = api(&onramp, &jane, "POST", "/api/v1/connect_sessions", Some(own)).await;
    assert_eq!((status, made["workspace_id"].as_str()), (201, Some(jane_ws.as_str())));
}

async fn first_event(onramp: &Onramp) -> String {
    sqlx::query_scalar("SELECT id FROM platform_events ORDER BY seq LIMIT 1")
        .fetch_one(onramp.state.db.pool())
        .await
        .unwrap()
}

/// A workspace-level key of Jane's workspace with a webhook endpoint at `url`: (key, endpoint
/// id, its secret).
async fn endpoint_at(onramp: &Onramp, url: &str) -> (String, String, WebhookSecret) {
    let (workspace, _) = only_connection(onramp).await;
    let key = key(onramp, "collector", ALL, Some(&workspace)).await;
    let (status, made) =
        api(onramp, &key, "POST", "/api/v1/webhooks", Some(json!({"url": url, "events": ["*"]}))).await;
    assert_eq!(status, 201, "{made}");
    (key, made["id"].as_str().unwrap().to_owned(), WebhookSecret::parse(made["secret"].as_str().unwrap()).unwrap())
}

#[tokio::test]
async fn a_delivery_is_retried_through_failures_and_a_timeout_with_one_id_and_fresh_signatures() {
    let fake = spawn_fake(FakeGitlab::default()).await;
    let sink = spawn_smtp_sink().await;
    let onramp = spawn_onramp_with(|config| config.mail = Some(sink.settings())).await;
    connect(&onramp, &onramp.client, &fake, "glpat-good").await;
    let (receiver, hooks) = Receiver::spawn().await;
    let (key, endpoint, secret) = endpoint_at(&onramp, &hooks.url("/hook")).await;

    // 500, then no answer within the timeout (3 s in tests), then 204.
    receiver.then(&[Then::Answer(500), Then::Hang(Duration::from_secs(5))]);
    let (status, queued) = api(&onramp, &key, "POST", &format!("/api/v1/webhooks/{endpoint}/test"), None).await;
    assert_eq!(status, 202, "{queued}");
    let start = now();
    assert_eq!(deliver(&onramp, start).await.retrying, 1);
    assert_eq!(deliver(&onramp, start).await.sent, 0, "not due again at once");
    assert_eq!(deliver(&onramp, now() + 30).await.retrying, 1, "the first retry comes within 30 s");
    assert_eq!(deliver(&onramp, now() + 60).await.sent, 0, "backing off");
    assert_eq!(deliver(&onramp, now() + 400).await.delivered, 1);
    let got = receiver.got();
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|r| r.id == got[0].id), "one webhook-id on every try");
    assert_eq!(receiver.verified_types(&secret), ["ping", "ping", "ping"]);

    let (_, deliveries) = api(&onramp, &key, "GET", &format!("/api/v1/webhooks/{endpoint}/deliveries"), None).await;
    let attempts = &deliveries["data"][0]["attempts"];
    let statuses: Vec<Value> = attempts.as_array().unwrap().iter().map(|a| a["status"].clone()).collect();
    assert_eq!(statuses, [json!(500), Value::Null, json!(204)], "{deliveries}");
    assert!(attempts[1]["error"].as_str().unwrap().contains("no answer within 3 s"), "{attempts}");
    assert_eq!(deliveries["data"][0]["state"], "delivered");

    // Sent again on request, with the same id.
    let delivery = deliveries["data"][0]["id"].as_str().unwrap();
    let (status, _) =
        api(&onramp, &key, "POST", &format!("/api/v1/webhooks/{endpoint}/deliveries/{delivery}/retry"), None).await;
    assert_eq!(status, 202);
    assert_eq!(deliver(&onramp, now()).await.delivered, 1);
    assert_eq!(receiver.got().last().unwrap().id, got[0].id);

    // An endpoint failing for 5 days is disabled: an event, a mail to the workspace's owner.
    sqlx::query("UPDATE webhook_endpoints SET failing_since = $1")
        .bind(now() - 5 * 24 * 3600)
        .execute(onramp.state.db.pool())
        .await
        .unwrap();
    receiver.then(&[Then::Answer(503)]);
    api(&onramp, &key, "POST", &format!("/api/v1/webhooks/{endpoint}/test"), None).await;
    assert_eq!(deliver(&onramp, now()).await.disabled, 1);
    let (_, listed) = api(&onramp, &key, "GET", "/api/v1/webhooks", None).await;
    assert!(listed["data"][0]["disabled_at"].is_string(), "{listed}");
    api(&onramp, &key, "POST", &format!("/api/v1/webhooks/{endpoint}/test"), None).await;
    assert_eq!(deliver(&onramp, now() + 3600).await.sent, 0, "nothing goes to a disabled endpoint");
    let (_, events) = api(&onramp, &key, "GET", "/api/v1/events", None).await;
    assert!(events["data"].as_array().unwrap().iter().any(|e| e["type"] == "webhook_endpoint.disabled"), "{events}");
    // A revoked key's deliveries are not sent.
    sqlx::query("UPDATE webhook_endpoints SET disabled_at = NULL").execute(onramp.state.db.pool()).await.unwrap();
    let key_id: String =
        sqlx::query_scalar("SELECT key_id FROM webhook_endpoints").fetch_one(onramp.state.db.pool()).await.unwrap();
    let workspace = jane_workspace(&onramp).await;
    assert!(app::store::platform::revoke_key(&onramp.state.db, Some(&workspace), &key_id).await.unwrap());
    assert_eq!(deliver(&onramp, now() + 3600).await.sent, 0, "nothing goes out for a revoked key");
    let mails = sink.mails();
    assert!(
        mails.iter().any(|m| m.to.iter().any(|t| t.contains("jane@example.com")) && m.data.contains("disabled")),
        "{mails:?}"
    );
}

#[tokio::test]
async fn webhook_urls_go_only_where_the_outbound_guard_allows() {
    // This Onramp may call only 127.0.0.2: the receiver on 127.0.0.1 is off limits.
    let onramp = spawn_onramp_with(|c| {
        c.outbound.guard = app::gitlab::guard::OutboundGuard::parse("127.0.0.2/32").unwrap();
    })
    .await;
    let workspace = jane_workspace(&onramp).await;
    let key = key(&onramp, "collector", ALL, Some(&workspace)).await;
    for url in [
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:8080/x",
        "http://127.0.0.1:9/x",
    ] {
        let (status, answer) =
            api(&onramp, &key, "POST", "/api/v1/webhooks", Some(json!({"url": url, "events": ["*"]}))).await;
        assert_eq!(status, 400, "{url}: {answer}");
        assert!(answer["message"].as_str().unwrap().contains("does not send"), "{answer}");
    }
    for (url, events) in [
        ("ftp://x.example/", json!(["*"])),
        ("https://x.example/", json!(["connection.made"])),
        ("https://x.example/", json!([])),
    ] {
        let (status, _) =
            api(&onramp, &key, "POST", "/api/v1/webhooks", Some(json!({"url": url, "events": events}))).await;
        assert_eq!(status, 400, "{url} {events}");
    }
    // A name is judged when a delivery resolves it.
    let (receiver, hooks) = Receiver::spawn().await;
    let by_name = hooks.url("/hook").replace("127.0.0.1", "localhost");
    let (status, made) =
        api(&onramp, &key, "POST", "/api/v1/webhooks", Some(json!({"url": by_name, "events": ["*"]}))).await;
    assert_eq!(status, 201, "{made}");
    let endpoint = made["id"].as_str().unwrap();
    api(&onramp, &key, "POST", &format!("/api/v1/webhooks/{endpoint}/test"), None).await;
    assert_eq!(deliver(&onramp, now()).await.retrying, 1);
    assert!(receiver.got().is_empty(), "nothing reached the loopback receiver");
    let (_, deliveries) = api(&onramp, &key, "GET", &format!("/api/v1/webhooks/{endpoint}/deliveries"), None).await;
    let error = deliveries["data"][0]["attempts"][0]["error"].as_str().unwrap();
    assert!(error.contains("does not send"), "{error}");
}

async fn jane_workspace(onramp: &Onramp) -> String {
    sqlx::query_scalar("SELECT id FROM workspaces LIMIT 1").fetch_one(onramp.state.db.pool()).await.unwrap()
}

#[tokio::test]
async fn two_processes_on_one_database_send_each_delivery_once() {
    let fake = spawn_fake(FakeGitlab::default()).await;
    let onramp = spawn_onramp().await;
    connect(&onramp, &onramp.client, &fake, "glpat-good").await;
    let (receiver, hooks) = Receiver::spawn().await;
    let (key, endpoint, _) = endpoint_at(&onramp, &hooks.url("/hook")).await;
    for _ in 0..40 {
        api(&onramp, &key, "POST", &format!("/api/v1/webhooks/{endpoint}/test"), None).await;
    }
    let (_second, other) = spawn_second(&onramp).await;
    let at = now();
    let (one, two) = tokio::join!(
        async {
            let mut n = 0;
            for _ in 0..4 {
                n += app::jobs::deliver::run(&onramp.state, at).await.unwrap().delivered;
            }
            n
        },
        async {
            let mut n = 0;
            for _ in 0..4 {
                n += app::jobs::deliver::run(&other, at).await.unwrap().delivered;
            }
            n
        },
    );
    assert_eq!(one + two, 40, "every delivery was sent ({one} + {two})");
    let mut ids: Vec<String> = receiver.got().into_iter().map(|r| r.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 40, "each once");
    assert_eq!(receiver.got().len(), 40, "none twice");
}

#[tokio::test]
async fn the_openapi_document_is_openapi_3_1_served_without_a_key_and_covers_every_call() {
    let onramp = spawn_onramp().await;
    let r = onramp.anon.get(onramp.server.url("/api/v1/openapi.json")).send().await.unwrap();
    assert_eq!(r.status(), 200, "no key needed for the document");
    let text = r.text().await.unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(&doc, contract::document());
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    let parsed = oas3::from_json(&text).expect("the document reads as OpenAPI 3.1");
    assert!(parsed.components.is_some());
    // Every schema is valid JSON Schema 2020-12, and every $ref points at one that exists.
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        let mut s = schema.clone();
        s["$schema"] = "https://json-schema.org/draft/2020-12/schema".into();
        assert!(jsonschema::meta::is_valid(&s), "{name} is no valid JSON Schema");
    }
    for reference in text.split("\"$ref\":\"").skip(1).map(|r| r.split('"').next().unwrap()) {
        assert!(doc.pointer(&reference.replacen('#', "", 1)).is_some(), "{reference} points nowhere");
    }
    // The calls the server routes are the calls the document describes.
    for (method, path) in [
        ("post", "/api/v1/connect_sessions"),
        ("get", "/api/v1/connect_sessions/{id}"),
        ("get", "/api/v1/workspaces"),
        ("get", "/api/v1/connections"),
        ("get", "/api/v1/connections/{id}"),
        ("get", "/api/v1/connections/{id}/scope"),
        ("get", "/api/v1/connections/{id}/credentials"),
        ("get", "/api/v1/events"),
        ("post", "/api/v1/webhooks"),
        ("get", "/api/v1/webhooks"),
        ("delete", "/api/v1/webhooks/{id}"),
        ("post", "/api/v1/webhooks/{id}/test"),
        ("get", "/api/v1/webhooks/{id}/deliveries"),
        ("post", "/api/v1/webhooks/{id}/deliveries/{delivery_id}/retry"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path} is not documented");
    }
    // Without a key every call is 401 with the one error shape the document promises.
    let (status, body) = api(&onramp, "onp_wrong", "GET", "/api/v1/workspaces", None).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("unauthorized")));
}

#[tokio::test]
async fn one_end_user_in_two_workspaces_at_once_saves_each_connection_where_its_link_said() {
    let fake = spawn_fake(FakeGitlab::default()).await;
    let onramp = spawn_onramp().await;
    let platform = key(&onramp, "DevDynamics", ALL, None).await;
    let (_, first) =
        api(&onramp, &platform, "POST", "/api/v1/connect_sessions", Some(session_request("w1", "lee"))).await;
    let (_, second) =
        api(&onramp, &platform, "POST", "/api/v1/connect_sessions", Some(session_request("w2", "lee"))).await;
    let (one, two) = (browser_client(&onramp.server), browser_client(&onramp.server));
    one.get(first["url"].as_str().unwrap()).send().await.unwrap();
    // Opening the second link makes w2 the account's current workspace...
    two.get(second["url"].as_str().unwrap()).send().await.unwrap();
    // ...yet the first browser still works in w1, and saves there.
    let step_13 = connect_at(&one, &onramp.server, &fake, "glpat-good").await;
    assert!(step_13.contains("Back to DevDynamics"), "{step_13}");
    let (workspace, _) = only_connection(&onramp).await;
    assert_eq!(workspace, first["workspace_id"].as_str().unwrap());
}

#[tokio::test]
async fn events_ended_deliveries_and_sessions_are_forgotten_after_30_days_and_no_sooner() {
    let fake = spawn_fake(FakeGitlab::default()).await;
    let onramp = spawn_onramp().await;
    connect(&onramp, &onramp.client, &fake, "glpat-good").await;
    let (_, hooks) = Receiver::spawn().await;
    let (key, endpoint, _) = endpoint_at(&onramp, &hooks.url("/hook")).await;
    let platform = key_with_origin(&onramp).await;
    api(&onramp, &platform, "POST", "/api/v1/connect_sessions", Some(session_request("old", "u"))).await;
    for _ in 0..2 {
        api(&onramp, &key, "POST", &format!("/api/v1/webhooks/{endpoint}/test"), None).await;
    }
    assert_eq!(deliver(&onramp, now()).await.delivered, 2);
    // Two more events for the pull list (they queue deliveries too, pending).
    let (ws, id) = only_connection(&onramp).await;
    for _ in 0..2 {
        let kind = app::platform::EventType::ScopeUpdated;
        app::store::platform_events::emit_logged(&onramp.state.db, &ws, Some(&id), kind, json!({})).await;
    }
    let pool = onramp.state.db.pool();
    let month = 31 * 24 * 3600;
    // One of each is old, one is not.
    sqlx::query(
        "UPDATE webhook_deliveries SET ended_at = ended_at - $1 WHERE id = (SELECT MIN(id) FROM webhook_deliveries WHERE state = 'delivered')",
    )
    .bind(month)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE platform_events SET created_at = created_at - $1 WHERE seq = (SELECT MIN(seq) FROM platform_events)",
    )
    .bind(month)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query("UPDATE connect_sessions SET created_at = created_at - $1").bind(month).execute(pool).await.unwrap();
    let count = |table: &'static str| async move {
        sqlx::query_scalar::<_, i64>(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(pool).await.unwrap()
    };
    let (events, deliveries, attempts) =
        (count("platform_events").await, count("webhook_deliveries").await, count("webhook_attempts").await);
    let done = app::jobs::purge::run(&onramp.state).await.unwrap();
    assert_eq!(done.events_and_deliveries, 3, "{done:?}");
    assert_eq!(count("platform_events").await, events - 1);
    assert_eq!(count("webhook_deliveries").await, deliveries - 1, "pending ones and recent ones stay");
    assert_eq!(count("webhook_attempts").await, attempts - 1, "an old delivery's attempts go with it");
    assert_eq!(count("connect_sessions").await, 0);
}

/// An instance-level key with every scope (and the tests' return origin).
async fn key_with_origin(onramp: &Onramp) -> String {
    key(onramp, "Platform", ALL, None).await
}

#[tokio::test]
async fn a_change_and_the_event_that_reports_it_are_written_together_or_not_at_all() {
    let fake = spawn_fake(FakeGitlab::default()).await;
    let onramp = spawn_onramp().await;
    let platform = key(&onramp, "DevDynamics", ALL, None).await;
    let (_, session) =
        api(&onramp, &platform, "POST", "/api/v1/connect_sessions", Some(session_request("c", "u"))).await;
    let browser = browser_client(&onramp.server);
    browser.get(session["url"].as_str().unwrap()).send().await.unwrap();
    connect_at(&browser, &onramp.server, &fake, "glpat-good").await;
    let (_, connection) = only_connection(&onramp).await;
    let pool = onramp.state.db.pool();
    // The event store cannot take an event (its counter row is gone): the disconnect fails whole.
    sqlx::query("DELETE FROM platform_event_seq").execute(pool).await.unwrap();
    let r = post(&browser, &onramp, "/api/gitlab/disconnect", "application/json", &[("id", connection.as_str())]).await;
    assert!(r.status().is_server_error(), "{}", r.status());
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM integrations").fetch_one(pool).await.unwrap();
    assert_eq!(left, 1, "no connection.deleted event, no deletion");
    // With the store whole again, both happen.
    let last: i64 = sqlx::query_scalar("SELECT MAX(seq) FROM platform_events").fetch_one(pool).await.unwrap();
    sqlx::query("INSERT INTO platform_event_seq (id, last) VALUES (1, $1)").bind(last).execute(pool).await.unwrap();
    let r = post(&browser, &onramp, "/api/gitlab/disconnect", "application/json", &[("id", connection.as_str())]).await;
    assert!(r.status().is_success(), "{}", r.status());
    let (_, events) = api(&onramp, &platform, "GET", "/api/v1/events", None).await;
    let types: Vec<&str> = events["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["connection.created", "connect_session.completed", "connection.deleted"]);
}

#[tokio::test]
async fn a_rotation_is_heard_by_the_workspaces_platforms_with_its_new_expiry() {
    let fake = spawn_fake(FakeGitlab::default()).await;
    let onramp = spawn_onramp().await;
    connect(&onramp, &onramp.client, &fake, "glpat-soon").await;
    let (receiver, hooks) = Receiver::spawn().await;
    let (key, _, secret) = endpoint_at(&onramp, &hooks.url("/hook")).await;
    let first_expiry: Option<String> =
        sqlx::query_scalar("SELECT expires_at FROM integrations").fetch_one(onramp.state.db.pool()).await.unwrap();
    let today = time::OffsetDateTime::now_utc().date();
    let rotated = app::jobs::rotate::run(&onramp.state, today.midnight().assume_utc()).await.unwrap().rotated;
    assert_eq!(rotated, 1);
    let (_, events) = api(&onramp, &key, "GET", "/api/v1/events", None).await;
    let event = events["data"].as_array().unwrap().iter().find(|e| e["type"] == "connection.token_rotated").cloned();
    let event = event.unwrap_or_else(|| panic!("no connection.token_rotated in {events}"));
    let stored: Option<String> =
        sqlx::query_scalar("SELECT expires_at FROM integrations").fetch_one(onramp.state.db.pool()).await.unwrap();
    assert_eq!(event["data"]["token_expires_at"].as_str(), stored.as_deref(), "the new expiry: {event}");
    assert_ne!(event["data"]["token_expires_at"].as_str(), first_expiry.as_deref(), "not the old one");
    assert_eq!(deliver(&onramp, now()).await.delivered, 1);
    assert_eq!(receiver.verified_types(&secret), ["connection.token_rotated"]);
    assert!(!receiver.got()[0].body.contains("glpat"), "no token in a webhook");
}
