//! Acme Analytics: a small analytics platform written against Onramp's `/api/v1`, the way a real
//! one would use it (and what Onramp's end-to-end test drives, with and without JavaScript).
//!
//! - `GET /` is its "Settings → Integrations" page: an "Integrate GitLab" button (a form) that
//!   makes a connect session for the signed-in customer and user and redirects to Onramp.
//! - `GET /integrations/gitlab/done` is the return page: it checks the `state` it gave, then asks
//!   Onramp whether the session really completed (never trusting the redirect alone).
//! - `POST /webhooks/onramp` receives events, verified with the Standard Webhooks library.
//! - `POST /collect` is the collector: the chosen projects (`/scope`), the token
//!   (`/credentials`), and each project's merge requests counted straight from GitLab.
//!
//! Configuration (environment): `ONRAMP_URL` (default `http://127.0.0.1:3000`),
//! `ONRAMP_PLATFORM_KEY` (a key with every scope: `onramp platform-key create --name "Acme
//! Analytics" --scopes connect_sessions:write,connections:read,credentials:read,webhooks:write
//! --return-origin http://127.0.0.1:4000`), `PLATFORM_ADDR` (default `127.0.0.1:4000`),
//! `PLATFORM_PUBLIC_URL` (default `http://` + the address). The demo has no accounts of its own:
//! `/?customer=…&user=…` says who is signed in.

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone)]
struct Platform {
    onramp: String,
    key: String,
    public_url: String,
    http: reqwest::Client,
    webhook: Arc<standardwebhooks::Webhook>,
    seen: Arc<Mutex<Seen>>,
}

#[derive(Default)]
struct Seen {
    /// `state` values handed out, with the customer they were for: a return must bring one back.
    states: HashMap<String, String>,
    /// Verified events, oldest first: (id, type, connection id).
    events: Vec<(String, String, Option<String>)>,
    /// The customers' connections, as confirmed with Onramp.
    connections: HashMap<String, String>,
}

fn esc(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width, initial-scale=1\"><link rel=\"icon\" href=\"data:,\"><title>{t} · Acme Analytics</title><style>body{{font:16px/1.5 \
         system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem}}button{{font:inherit;padding:.5rem \
         1rem}}</style></head><body><header><p><strong>Acme Analytics</strong></p></header><main><h1>{t}</h1>{body}\
         </main></body></html>",
        t = esc(title)
    ))
}

/// An unguessable value for `state` (the process's random hasher keys, a counter and the time).
fn random_state() -> String {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut out = String::new();
    for _ in 0..2 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

impl Platform {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, String> {
        let mut request = self.http.request(method, format!("{}{path}", self.onramp)).bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let r = request.send().await.map_err(|e| format!("Onramp did not answer: {e}"))?;
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(format!("Onramp answered {status}: {}", body["message"].as_str().unwrap_or_default()));
        }
        Ok(body)
    }

    /// Every item of a paged `/api/v1` list.
    async fn all(&self, path: &str) -> Result<Vec<Value>, String> {
        let mut items = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let sep = if path.contains('?') { '&' } else { '?' };
            let url = match &after {
                Some(a) => format!("{path}{sep}limit=100&after={a}"),
                None => format!("{path}{sep}limit=100"),
            };
            let page = self.call(reqwest::Method::GET, &url, None).await?;
            items.extend(page["data"].as_array().cloned().unwrap_or_default());
            match page["next"].as_str() {
                Some(next) => after = Some(next.to_owned()),
                None => return Ok(items),
            }
        }
    }
}

#[derive(Deserialize, Default)]
struct Who {
    customer: Option<String>,
    user: Option<String>,
}

impl Who {
    fn customer(&self) -> String {
        self.customer.clone().filter(|c| !c.is_empty()).unwrap_or_else(|| "acme".into())
    }
    fn user(&self) -> String {
        self.user.clone().filter(|u| !u.is_empty()).unwrap_or_else(|| "lee".into())
    }
}

/// "Settings → Integrations": the GitLab card with its button, and what was heard so far.
async fn home(State(p): State<Platform>, Query(who): Query<Who>) -> Html<String> {
    let (customer, user) = (who.customer(), who.user());
    let seen = p.seen.lock().unwrap();
    let connected = seen
        .connections
        .get(&customer)
        .map(|c| format!("<p id=\"connected\">GitLab is connected (connection <code>{}</code>).</p>", esc(c)));
    page(
        "Settings → Integrations",
        &format!(
            "<section aria-labelledby=\"gitlab\"><h2 id=\"gitlab\">GitLab</h2><p>Merge requests, pipelines and \
             deployments from your GitLab.</p>{}<form method=\"post\" action=\"/integrate\"><input type=\"hidden\" \
             name=\"customer\" value=\"{c}\"><input type=\"hidden\" name=\"user\" value=\"{u}\"><button \
             type=\"submit\">Integrate GitLab</button></form></section>{}",
            connected.unwrap_or_default(),
            events(&seen),
            c = esc(&customer),
            u = esc(&user),
        ),
    )
}

fn events(seen: &Seen) -> String {
    let items: String = seen
        .events
        .iter()
        .map(|(id, kind, _)| {
            format!("<li><code>{}</code> <span class=\"id\">{}</span> (signature verified)</li>", esc(kind), esc(id))
        })
        .collect();
    format!("<h2>Events from Onramp</h2><ul id=\"events\">{items}</ul>")
}

/// Makes a connect session for the customer and user and sends the browser to it.
async fn start(p: &Platform, who: &Who) -> Response {
    let (customer, user) = (who.customer(), who.user());
    let state = random_state();
    let done = format!("{}/integrations/gitlab/done", p.public_url);
    let again = reqwest::Url::parse_with_params(
        &format!("{}/integrations/gitlab/start", p.public_url),
        [("customer", customer.as_str()), ("user", user.as_str())],
    )
    .map(String::from)
    .unwrap_or_default();
    let body = json!({
        "workspace": {"external_id": customer, "name": format!("{customer} (Acme Analytics)")},
        "end_user": {"external_id": user, "email": format!("{user}@{customer}.example"), "name": user},
        "role": "admin",
        "return_url": done,
        "refresh_url": again,
        "state": state,
    });
    match p.call(reqwest::Method::POST, "/api/v1/connect_sessions", Some(body)).await {
        Ok(session) => {
            p.seen.lock().unwrap().states.insert(state, customer);
            // The link holds a secret: redirect at once, never show or log it.
            Redirect::to(session["url"].as_str().unwrap_or("/")).into_response()
        }
        Err(e) => {
            (StatusCode::BAD_GATEWAY, page("Cannot reach Onramp", &format!("<p>{}</p>", esc(&e)))).into_response()
        }
    }
}

async fn integrate(State(p): State<Platform>, Form(who): Form<Who>) -> Response {
    start(&p, &who).await
}

/// Onramp's `refresh_url`: a link that expired or was used; a new session resumes the user.
async fn restart(State(p): State<Platform>, Query(who): Query<Who>) -> Response {
    start(&p, &who).await
}

#[derive(Deserialize)]
struct Returned {
    connect_session: Option<String>,
    connection_id: Option<String>,
    state: Option<String>,
}

/// The return: our `state` back, and Onramp confirms the session completed with that connection.
async fn done(State(p): State<Platform>, Query(r): Query<Returned>) -> Response {
    let customer = r.state.as_deref().and_then(|s| p.seen.lock().unwrap().states.get(s).cloned());
    let (Some(customer), Some(session), Some(connection)) = (customer, r.connect_session, r.connection_id) else {
        return (StatusCode::BAD_REQUEST, page("Not from us", "<p>This return does not carry a state we gave.</p>"))
            .into_response();
    };
    let confirmed = match p.call(reqwest::Method::GET, &format!("/api/v1/connect_sessions/{session}"), None).await {
        Ok(s) => s["status"] == "completed" && s["connection_id"].as_str() == Some(connection.as_str()),
        Err(_) => false,
    };
    if !confirmed {
        return (StatusCode::BAD_REQUEST, page("Not connected", "<p>Onramp does not confirm this connection.</p>"))
            .into_response();
    }
    let mut seen = p.seen.lock().unwrap();
    seen.connections.insert(customer.clone(), connection.clone());
    page(
        "You have now integrated GitLab",
        &format!(
            "<p id=\"connected\">GitLab is connected (connection <code>{}</code>).</p><form method=\"post\" \
             action=\"/collect\"><input type=\"hidden\" name=\"connection_id\" value=\"{}\"><button \
             type=\"submit\">Collect merge requests</button></form>{}<p><a href=\"/\">Back to Settings → Integrations</a></p>",
            esc(&connection),
            esc(&connection),
            events(&seen),
        ),
    )
    .into_response()
}

/// Onramp's events: verified with the Standard Webhooks library, else refused.
async fn receive(State(p): State<Platform>, headers: HeaderMap, body: axum::body::Bytes) -> StatusCode {
    if p.webhook.verify(&body, &headers).is_err() {
        return StatusCode::BAD_REQUEST;
    }
    let Ok(event) = serde_json::from_slice::<Value>(&body) else { return StatusCode::BAD_REQUEST };
    let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let mut seen = p.seen.lock().unwrap();
    // The same message may come twice (a retry): keep it once.
    if !seen.events.iter().any(|(seen_id, _, _)| *seen_id == id) {
        let connection = event["data"]["connection_id"].as_str().map(str::to_owned);
        seen.events.push((id, event["type"].as_str().unwrap_or_default().to_owned(), connection));
    }
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct Collect {
    connection_id: String,
}

/// The collector: chosen projects, the token, and each project's merge requests from GitLab.
async fn collect(State(p): State<Platform>, Form(c): Form<Collect>) -> Response {
    match count(&p, &c.connection_id).await {
        Ok(rows) => {
            let total: u64 = rows.iter().map(|(_, n)| n).sum();
            let rows: String = rows
                .iter()
                .map(|(path, n)| format!("<tr><th scope=\"row\">{}</th><td>{n}</td></tr>", esc(path)))
                .collect();
            page(
                "Merge requests collected",
                &format!(
                    "<table id=\"collected\"><thead><tr><th scope=\"col\">Project</th><th scope=\"col\">Merge \
                     requests</th></tr></thead><tbody>{rows}</tbody></table><p id=\"total\">{total} merge requests in all.</p>"
                ),
            )
            .into_response()
        }
        Err(e) => (StatusCode::BAD_GATEWAY, page("Collecting failed", &format!("<p>{}</p>", esc(&e)))).into_response(),
    }
}

async fn count(p: &Platform, connection: &str) -> Result<Vec<(String, u64)>, String> {
    let projects = p.all(&format!("/api/v1/connections/{connection}/scope")).await?;
    let creds = p.call(reqwest::Method::GET, &format!("/api/v1/connections/{connection}/credentials"), None).await?;
    let base = creds["base_url"].as_str().ok_or("no base_url")?.to_owned();
    let token = creds["token"].as_str().ok_or("no token")?.to_owned();
    let mut gitlab = reqwest::Client::builder().timeout(Duration::from_secs(20));
    if let Some(pem) = creds["ca_pem"].as_str() {
        gitlab =
            gitlab.add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).map_err(|e| e.to_string())?);
    }
    let gitlab = gitlab.build().map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for project in projects {
        let (id, path) =
            (project["id"].as_u64().unwrap_or_default(), project["path_with_namespace"].as_str().unwrap_or_default());
        let mut n = 0u64;
        let mut page_number = 1;
        // GitLab pages with `x-next-page` (empty on the last page); at most 50 pages here.
        while page_number <= 50 {
            let r = gitlab
                .get(format!("{base}/api/v4/projects/{id}/merge_requests?state=all&per_page=100&page={page_number}"))
                .header("private-token", &token)
                .send()
                .await
                .map_err(|e| format!("GitLab did not answer: {e}"))?;
            if !r.status().is_success() {
                return Err(format!("GitLab answered {} for {path}", r.status()));
            }
            let next = r.headers().get("x-next-page").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
            n += r.json::<Vec<Value>>().await.map_err(|e| e.to_string())?.len() as u64;
            match next.parse() {
                Ok(next) => page_number = next,
                Err(_) => break,
            }
        }
        out.push((path.to_owned(), n));
    }
    Ok(out)
}

/// Registers the webhook endpoint (replacing one this platform left at the same URL).
async fn register(http: &reqwest::Client, onramp: &str, key: &str, url: &str) -> Result<String, String> {
    let listed: Value = http
        .get(format!("{onramp}/api/v1/webhooks"))
        .bearer_auth(key)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    for old in listed["data"].as_array().cloned().unwrap_or_default().iter().filter(|e| e["url"] == url) {
        let id = old["id"].as_str().unwrap_or_default();
        http.delete(format!("{onramp}/api/v1/webhooks/{id}"))
            .bearer_auth(key)
            .send()
            .await
            .map_err(|e| e.to_string())?;
    }
    let made: Value = http
        .post(format!("{onramp}/api/v1/webhooks"))
        .bearer_auth(key)
        .json(&json!({"url": url, "events": ["*"]}))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    made["secret"].as_str().map(str::to_owned).ok_or_else(|| format!("Onramp refused the webhook: {made}"))
}

#[tokio::main]
async fn main() {
    let onramp = std::env::var("ONRAMP_URL").unwrap_or_else(|_| "http://127.0.0.1:3000".into());
    let onramp = onramp.trim_end_matches('/').to_owned();
    let Ok(key) = std::env::var("ONRAMP_PLATFORM_KEY") else {
        eprintln!("Set ONRAMP_PLATFORM_KEY to a platform key (see the comment at the top of this file).");
        std::process::exit(2);
    };
    let addr = std::env::var("PLATFORM_ADDR").unwrap_or_else(|_| "127.0.0.1:4000".into());
    let public_url = std::env::var("PLATFORM_PUBLIC_URL").unwrap_or_else(|_| format!("http://{addr}"));
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("an HTTP client");
    let secret = match register(&http, &onramp, &key, &format!("{public_url}/webhooks/onramp")).await {
        Ok(secret) => secret,
        Err(e) => {
            eprintln!("Cannot register the webhook with Onramp at {onramp}: {e}");
            std::process::exit(1);
        }
    };
    let webhook = standardwebhooks::Webhook::new(&secret).expect("Onramp's secret is whsec_ base64");
    let platform = Platform { onramp, key, public_url, http, webhook: Arc::new(webhook), seen: Arc::default() };
    let app = Router::new()
        .route("/", get(home))
        .route("/integrate", post(integrate))
        .route("/integrations/gitlab/start", get(restart))
        .route("/integrations/gitlab/done", get(done))
        .route("/webhooks/onramp", post(receive))
        .route("/collect", post(collect))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(platform);
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("the address is free");
    println!("Acme Analytics listening on http://{addr}");
    axum::serve(listener, app).await.expect("serves");
}
