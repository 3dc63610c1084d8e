//! A standing HTTP fuzzer: thousands of generated requests against a running `onramp` binary,
//! every route, mutated paths and unknown ones. `make fuzz` runs it against the release build with
//! 10,000 requests (scripts/fuzz.sh); `cargo test -p server --test fuzz` runs 2,000 against the
//! test-profile build.
//!
//! It proves, for every run:
//!
//! - no answer is 500 or above;
//! - every request gets a complete HTTP answer: no reset, no connection closed early, no body cut
//!   short, nothing left unanswered for 30 s;
//! - the process is alive at the end, `/healthz` answers 200, nothing panicked (standard error is
//!   captured too);
//! - the secrets it sends never come back and never reach the log (see [`Markers`]);
//! - no path reads a file outside the site root (the binary runs in the workspace root, so
//!   `Cargo.toml` is two `..` above `target/site/pkg`);
//! - no header smuggled in a value (`…\r\nSet-Cookie: evil=1`) shows up in an answer.
//!
//! Environment:
//!
//! - `ONRAMP_FUZZ_REQUESTS`: how many requests (default 2000), 8 at a time.
//! - `ONRAMP_FUZZ_SEED`: the seed (default: from the clock; printed first). Every request is made
//!   from (seed, its index) alone, so a seed replays a run and `#index` in a failure names its
//!   request. Only values Onramp hands out at run time (the session, the API token, kept check ids
//!   picked up from earlier answers) differ between replays.
//! - `ONRAMP_FUZZ_BINARY`: the binary to fuzz (relative paths are from the workspace root); default
//!   the test-profile `onramp`. Either is started with the environment of `support::start_binary`,
//!   plus `ONRAMP_LOG=debug` and limits high enough that nothing is rate-limited but log-ins.
//!
//! How a request is made ([`generate`]): a route, weighted towards the API; one in seven is a
//! well-formed request with sensible values (so the deep paths run: checks against the fake
//! GitLabs, saved connections, kept checks), the rest are hostile: any method (`FOO` and friends),
//! mutated paths (extra segments, `..`, `%00`, `%E2%82`, long segments, Unicode), random queries,
//! bodies of every shape up to 300 KiB (form, JSON, bytes, multipart, chunked, oversized), any
//! `Content-Type` and `Accept`, `Origin` / `Sec-Fetch-Site`, forwarding headers, credentials real
//! and fake. About three requests in ten are written byte by byte on a plain TCP connection
//! (`Connection: close`, read to the end): one in seven by chance, and every one `reqwest` cannot
//! send as generated (raw `..`, `#`, spaces, raw UTF-8, odd HTTP versions, malformed header
//! lines, chunked bodies, `CONNECT`, `*`, authority- and absolute-form targets, targets over
//! 64 KiB).
//!
//! No dropped connection is excused. A body over a route's limit with `Content-Length` is answered
//! 413 before it is read (`limit_body` in server/src/lib.rs), and a request line hyper cannot
//! parse 400, 414 or 431; the client reads while it writes, and an answer already received stays
//! readable even if the server then resets the connection over the unread rest, so a 413 arrives
//! as a 413 (tens of thousands of requests while this was written, thousands of 413s among
//! them: not one reset). Connections are
//! not reused (one per request): a connection the server closes is blamed on the request that was
//! on it, never on the next one.

mod support;

use fake_gitlab::FakeGitlab;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{browser_client, onramp_command, spawn_fake, spawn_tls_fake, Running, PASSWORD};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

const CONCURRENCY: usize = 8;
const TIMEOUT: Duration = Duration::from_secs(30);
/// Failures printed per kind.
const SHOWN: usize = 20;
const EMAIL_A: &str = "fuzz-a@example.com";
const EMAIL_B: &str = "fuzz-b@example.com";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_every_route() {
    let started = Instant::now();
    let requests: usize =
        std::env::var("ONRAMP_FUZZ_REQUESTS").ok().and_then(|n| n.trim().parse().ok()).unwrap_or(2000);
    let seed: u64 = std::env::var("ONRAMP_FUZZ_SEED").ok().and_then(|s| s.trim().parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
    });
    let binary = binary();
    // A stream of its own: request #0's generator starts from `seed` itself, so markers drawn from
    // it came back as that request's made-up ids, and the log then "leaked" a marker the fuzzer
    // had put in a path (seen once with seed 1796302545594482272).
    let markers = Markers::new(&mut Rng(seed ^ MARKER_STREAM));
    println!("fuzz: seed {seed} (replay with ONRAMP_FUZZ_SEED={seed}), {requests} requests, {}", binary.display());
    println!("fuzz: markers {} (credentials) and {} (typed fields)", markers.secret, markers.typed);

    // Two fake GitLabs on loopback: plain http (checks warn about it) and https with a private CA.
    let fake = spawn_fake(FakeGitlab::default()).await;
    let (tls_fake, tls_ca) = spawn_tls_fake(FakeGitlab::default()).await;
    let data = tempfile::tempdir().expect("a temp dir");
    let mut onramp = start(&binary, data.path()).await;
    let server = &onramp.server;
    let origin = format!("http://{}", server.addr);

    // User A: signed in (the session is sent by the fuzzer) and connected to the https fake.
    let a = browser_client(server);
    let r = a
        .post(server.url("/api/auth/signup"))
        .header("accept", "text/html")
        .form(&[("email", EMAIL_A), ("password", PASSWORD), ("next", "/settings/integrations")])
        .send()
        .await
        .expect("sign-up answers");
    assert_eq!(location(r.headers()), "/settings/integrations", "user A signed up");
    let session = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("onramp_session=").map(|v| v.split(';').next().unwrap_or_default().to_owned()))
        .expect("a session cookie");
    let r = a
        .post(server.url("/api/gitlab/validate"))
        .header("accept", "text/html")
        .form(&[
            ("base_url", format!("https://{}", tls_fake.addr).as_str()),
            ("token", "glpat-good"),
            ("ca_pem", tls_ca.as_str()),
        ])
        .send()
        .await
        .expect("validate answers");
    let mut to = location(r.headers());
    if let Some(check) = to.split("check=").nth(1) {
        let r = a
            .post(server.url("/api/gitlab/accept"))
            .header("accept", "text/html")
            .form(&[("check", check.split('&').next().unwrap_or_default())])
            .send()
            .await
            .expect("accept answers");
        to = location(r.headers());
    }
    assert!(to.starts_with("/integrations/gitlab/step/13"), "user A connected to the https fake: {to}");
    let connection =
        to.split("connection=").nth(1).unwrap_or_default().split('&').next().unwrap_or_default().to_owned();
    assert!(!connection.is_empty(), "step 13 names the saved connection: {to}");

    // User B: an Onramp API token for scripts.
    let b = browser_client(server);
    let r = b
        .post(server.url("/api/auth/signup"))
        .header("accept", "text/html")
        .form(&[("email", EMAIL_B), ("password", PASSWORD)])
        .send()
        .await
        .expect("sign-up answers");
    assert!(r.status().is_redirection(), "user B signed up: {}", r.status());
    let r = b
        .post(server.url("/api/tokens/create"))
        .header("accept", "application/json")
        .form(&[("name", "fuzz")])
        .send()
        .await
        .expect("token creation answers");
    let api_token: String = r.json().await.expect("the token, as a JSON string");
    assert!(api_token.starts_with("onr_"), "{api_token}");

    let ctx = Arc::new(Ctx {
        addr: server.addr,
        origin,
        fake: fake.url(""),
        tls_fake: format!("https://{}", tls_fake.addr),
        tls_ca,
        session,
        api_token,
        markers,
        checks: Mutex::new(Vec::new()),
        connection,
    });
    let stats = Arc::new(Mutex::new(Stats::default()));
    let next = Arc::new(AtomicUsize::new(0));
    let fuzz_started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..CONCURRENCY {
        let (ctx, stats, next) = (ctx.clone(), stats.clone(), next.clone());
        // Each worker speaks from its own loopback address: per-address limits see 8 clients.
        let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10 + w as u8));
        workers.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .pool_max_idle_per_host(0)
                .local_address(source)
                .timeout(TIMEOUT)
                .build()
                .expect("a client");
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= requests {
                    return;
                }
                let req = generate(&ctx, seed, index);
                let result = if req.raw { send_raw(&ctx, source, &req).await } else { send(&client, &ctx, &req).await };
                judge(&ctx, &req, result, &mut stats.lock().unwrap());
            }
        }));
    }
    for worker in workers {
        worker.await.expect("a worker finished");
    }
    let fuzz_time = fuzz_started.elapsed();

    // Afterwards: alive, healthy, and user A's session still works (the fuzzer never sends it
    // where it would end it, so a 302 to /login here would mean sessions are lost).
    let mut problems = Vec::new();
    let probe = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    match probe.get(onramp.server.url("/healthz")).send().await {
        Ok(r) if r.status() == 200 => {}
        Ok(r) => problems.push(format!("GET /healthz answered {} after the run", r.status())),
        Err(e) => problems.push(format!("GET /healthz failed after the run: {}", chain(&e))),
    }
    match onramp.child.try_wait() {
        Ok(None) => {}
        other => problems.push(format!("the onramp process exited during the run: {other:?}")),
    }
    let r = probe
        .get(onramp.server.url("/settings/integrations"))
        .header("cookie", format!("onramp_session={}", ctx.session))
        .send()
        .await;
    if !matches!(&r, Ok(r) if r.status() == 200) {
        problems.push(format!("user A's session no longer works: {:?}", r.map(|r| r.status())));
    }

    // The log: everything the process wrote, until it exited.
    let _ = onramp.child.start_kill();
    let _ = tokio::time::timeout(Duration::from_secs(10), onramp.child.wait()).await;
    let mut log = onramp.stdout.await.unwrap_or_default();
    log.extend(onramp.stderr.await.unwrap_or_default());
    let log = String::from_utf8_lossy(&log).into_owned();

    let stats = stats.lock().unwrap();
    print_routes(&stats);
    for (what, list) in [
        ("answers of 500 or above", &stats.server_errors),
        ("requests without a complete answer", &stats.transport),
        ("answers that carry a credential the fuzzer sent", &stats.leaks),
        ("answers with a file from outside the site root", &stats.traversal),
        ("answers with a header the fuzzer smuggled in a value", &stats.injected),
        ("compressed answers that could not be decoded", &stats.undecodable),
    ] {
        if !list.is_empty() {
            let shown: Vec<&str> = list.iter().take(SHOWN).map(String::as_str).collect();
            problems.push(format!("{} {what} (first {}):\n  {}", list.len(), shown.len(), shown.join("\n  ")));
        }
    }
    // Positive controls: answers and the log are really searched.
    if requests >= 1000 && stats.typed_echoes == 0 {
        problems.push("no answer showed a typed value back (step pages do): are answers searched?".to_owned());
    }
    if requests >= 1000 {
        let reached = |keep: &dyn Fn(&str) -> bool| -> usize {
            stats.signed_in.iter().filter(|(route, _)| keep(route)).map(|(_, n)| n).sum()
        };
        for (what, n) in [
            ("signed-in pages", reached(&|r| !r.starts_with("/api/"))),
            ("signed-in API routes", reached(&|r| r.starts_with("/api/"))),
            ("a connection's own pages and API", reached(&|r| r.contains("connections/{id}"))),
        ] {
            if n == 0 {
                problems.push(format!("no request got past authentication to {what}: are the session and token sent?"));
            }
        }
        if stats.decoded == 0 {
            problems.push("no compressed answer was decoded and searched: is Accept-Encoding sent?".to_owned());
        }
    }
    if !log.contains("gitlab connection check") {
        problems.push("the log has no connection check: is the log captured, did checks run?".to_owned());
    }
    let all: Vec<&str> = log.lines().collect();
    for (name, needle) in [
        // The random tail finds the whole marker too.
        ("the credential marker (or its random tail)", tail(&ctx.markers.secret)),
        ("the typed-field marker (or its random tail)", tail(&ctx.markers.typed)),
        ("a panic", "panicked at"),
    ] {
        let hits: Vec<usize> = (0..all.len()).filter(|&i| all[i].contains(needle)).collect();
        if hits.is_empty() {
            continue;
        }
        let mut text = format!("{} log lines carry {name}, e.g.:", hits.len());
        for &i in hits.iter().take(5) {
            // A panic's message is on the line after.
            let next = if needle == "panicked at" { all.get(i + 1).copied().unwrap_or_default() } else { "" };
            text.push_str(&format!("\n  {}", clip(&format!("{} {next}", all[i]), 400)));
        }
        // The requests they were logged for, by the request id in the line's span.
        let mut shown = Vec::new();
        for &i in &hits {
            let Some(id) = all[i].split("request{id=").nth(1).and_then(|r| r.split([' ', '}']).next()) else {
                continue;
            };
            let Some(&index) = stats.request_ids.get(id) else { continue };
            if shown.len() < 3 && !shown.contains(&index) {
                shown.push(index);
                let req = generate(&ctx, seed, index);
                text.push_str(&format!("\n  logged for (regenerated from the seed): {}", describe(&req)));
            }
        }
        problems.push(text);
    }
    let statuses: Vec<String> = stats.by_status.iter().map(|(s, n)| format!("{s}: {n}")).collect();
    println!(
        "fuzz: {} requests, {} errors, {} 5xx, by status: {{{}}}, seed {seed}, {:.1} s \
         ({} raw, {} leaks, {} compressed answers decoded and searched, {} signed-in answers, {} answers echo a typed value, \
         {} KiB of log, {:.1} s fuzzing)",
        stats.total,
        stats.transport.len(),
        stats.server_errors.len(),
        statuses.join(", "),
        started.elapsed().as_secs_f64(),
        stats.raw,
        stats.leaks.len(),
        stats.decoded,
        stats.signed_in.values().sum::<usize>(),
        stats.typed_echoes,
        log.len() / 1024,
        fuzz_time.as_secs_f64(),
    );
    assert_eq!(stats.total, requests, "every request was judged");
    assert!(problems.is_empty(), "fuzz (seed {seed}) found:\n{}", problems.join("\n"));
}

// --- The run's context and the markers -----------------------------------------------------------

struct Ctx {
    addr: SocketAddr,
    /// Onramp's own origin: the `Origin` of a same-site request.
    origin: String,
    fake: String,
    tls_fake: String,
    tls_ca: String,
    /// User A's session secret.
    session: String,
    /// User B's Onramp API token.
    api_token: String,
    markers: Markers,
    /// Ids of kept checks seen in `Location` headers, offered back in `check` fields and queries.
    checks: Mutex<Vec<String>>,
    /// User A's saved connection: `{id}` in a path is this one in a third of the requests, so the
    /// deep paths of a connection's pages and scope run.
    connection: String,
}

/// Two markers, random per run (from the seed), one per promise Onramp makes:
///
/// - `secret` (`glpat-FUZZSECRET…`) goes only where a credential goes: the GitLab `token` of
///   validate and replace, the `password` of sign-up and log-in, `Authorization` and the session
///   cookies. Onramp promises such a value is never in a URL, never sent back to the browser,
///   never in an error, never logged: it must appear in no answer (headers or body) and not in
///   the log. It is never put in a URL by the fuzzer itself (a URL it typed would legitimately
///   come back in the `next=` of a redirect to /login).
/// - `typed` (`glpat-FUZZMARKER…`) goes into every other field (addresses, profile, e-mail, names,
///   ids, `next`, `step`), into query values and into forwarding, `Host` and junk headers. Pages
///   rightly show such values back to the person who typed them (`?base=`, `?profile=`, `email=`
///   in the form to correct, the whole path and query in the `next=` of a redirect to /login), so
///   answers may contain it; the log must not (addresses are logged redacted, paths without
///   their queries).
///
/// Neither is ever put in a path: the access log records paths on purpose. Each is looked for
/// whole and by its 20-character random tail alone, case-sensitively.
struct Markers {
    secret: String,
    typed: String,
}

impl Markers {
    fn new(rng: &mut Rng) -> Self {
        Markers {
            secret: format!("glpat-FUZZSECRET{}", rng.alnum(20)),
            typed: format!("glpat-FUZZMARKER{}", rng.alnum(20)),
        }
    }

    /// The whole marker or its random tail alone.
    fn secret_in(&self, text: &str) -> bool {
        text.contains(tail(&self.secret))
    }
}

fn tail(marker: &str) -> &str {
    &marker[marker.len() - 20..]
}

/// splitmix64: small, fast, and the same sequence everywhere for a seed.
/// Mixed into the seed for the markers' generator (no request index maps to it).
const MARKER_STREAM: u64 = 0x6D61_726B_6572_7321;

struct Rng(u64);

impl Rng {
    fn for_request(seed: u64, index: usize) -> Self {
        let mut rng = Rng(seed ^ (index as u64).wrapping_mul(0xA076_1D64_78BD_642F));
        rng.next();
        rng
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn range(&mut self, low: usize, high: usize) -> usize {
        low + self.below(high - low + 1)
    }

    fn percent(&mut self, p: u64) -> bool {
        self.next() % 100 < p
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn alnum(&mut self, n: usize) -> String {
        const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..n).map(|_| *self.pick(CHARS) as char).collect()
    }

    fn hex(&mut self, n: usize) -> String {
        (0..n).map(|_| *self.pick(b"0123456789abcdef") as char).collect()
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

// --- Routes and values -----------------------------------------------------------------------------

struct Route {
    method: &'static str,
    path: &'static str,
    fields: &'static [&'static str],
    weight: usize,
}

const fn route(method: &'static str, path: &'static str, fields: &'static [&'static str], weight: usize) -> Route {
    Route { method, path, fields, weight }
}

/// Every route (app/src/lib.rs, app/src/api.rs, server/src/lib.rs), weighted towards the API.
/// `{n}` is a step number or junk, `{id}` an id or secret made up; `{unknown}` an address Onramp
/// does not serve.
const ROUTES: &[Route] = &[
    route("GET", "/", &[], 2),
    route("GET", "/login", &[], 2),
    route("GET", "/signup", &[], 2),
    route("GET", "/settings/integrations", &[], 2),
    route("GET", "/settings/api-tokens", &[], 2),
    route("GET", "/integrations/gitlab", &[], 3),
    route("GET", "/integrations/gitlab/connections/{id}", &[], 2),
    route("GET", "/integrations/gitlab/connections/{id}/disconnect", &[], 1),
    route("GET", "/integrations/gitlab/connections/{id}/scope", &["q", "role", "archived", "group", "page"], 2),
    route("POST", "/integrations/gitlab/connections/{id}/scope", &["intent", "shown_project", "project_in"], 2),
    route("GET", "/integrations/gitlab/connections/{id}/scope/preview", &[], 1),
    route("POST", "/integrations/gitlab/connections/{id}/scope/refresh", &[], 1),
    route("GET", "/api/gitlab/connections/{id}/scope", &["search", "role", "per_page", "page"], 2),
    route("PUT", "/api/gitlab/connections/{id}/scope", &["groups", "projects", "exclude"], 2),
    route("POST", "/api/gitlab/connections/{id}/scope/refresh", &[], 1),
    route("GET", "/api/gitlab/connections/{id}/scope/preview", &[], 1),
    route("GET", "/settings/workspace", &[], 2),
    route("GET", "/settings/audit", &[], 1),
    route("GET", "/invite/{id}", &[], 2),
    route("GET", "/api/workspaces", &[], 1),
    route("GET", "/api/workspaces/members", &["workspace"], 1),
    route("GET", "/api/audit", &["workspace", "before"], 1),
    route("POST", "/api/workspaces/create", &["name"], 2),
    route("POST", "/api/workspaces/switch", &["workspace", "next"], 2),
    route("POST", "/api/workspaces/rename", &["name", "workspace"], 1),
    route("POST", "/api/workspaces/set_role", &["user_id", "role", "workspace"], 2),
    route("POST", "/api/workspaces/remove", &["user_id", "workspace"], 1),
    route("POST", "/api/workspaces/leave", &["workspace"], 1),
    route("POST", "/api/invitations/create", &["role", "email", "step", "base", "workspace"], 3),
    route("POST", "/api/invitations/revoke", &["id", "workspace"], 1),
    route("POST", "/api/invitations/accept", &["invite"], 2),
    route("POST", "/api/invitations/decline", &["invite"], 1),
    route("GET", "/integrations/gitlab/step", &[], 2),
    route("GET", "/integrations/gitlab/step/{n}", &[], 8),
    route("GET", "/healthz", &[], 1),
    route("GET", "/readyz", &[], 1),
    route("GET", "/metrics", &[], 1),
    route("GET", "/robots.txt", &[], 1),
    route("GET", "/pkg/onramp.css", &[], 1),
    route("GET", "/api/integrations", &[], 2),
    route("POST", "/api/gitlab/validate", &["base_url", "token", "ca_pem"], 10),
    route("POST", "/api/gitlab/accept", &["check", "replace"], 4),
    route("POST", "/api/gitlab/recheck", &["id"], 3),
    route("POST", "/api/gitlab/replace", &["id", "token"], 5),
    route("POST", "/api/gitlab/disconnect", &["id"], 1),
    route("POST", "/api/gitlab/rotate", &["id"], 2),
    route("GET", "/api/gitlab/events", &["id"], 1),
    route("POST", "/api/auth/signup", &["email", "password", "next", "invite"], 4),
    route("POST", "/api/auth/login", &["email", "password", "next", "invite"], 4),
    route("POST", "/api/auth/logout", &[], 2),
    route("POST", "/api/auth/logout_everywhere", &[], 2),
    route("POST", "/api/tokens/create", &["name"], 3),
    route("POST", "/api/tokens/revoke", &["id"], 3),
    route("POST", "/api/wizard/confirm_instance", &["base", "profile", "step"], 5),
    route("GET", "{unknown}", &[], 6),
];

/// Routes that answer 2xx only to a signed-in caller (a session cookie or an API token); the
/// others redirect to the log-in page or answer 401.
const NEEDS_LOGIN: &[&str] = &[
    "/settings/integrations",
    "/settings/api-tokens",
    "/integrations/gitlab/connections/{id}",
    "/integrations/gitlab/connections/{id}/disconnect",
    "/integrations/gitlab/connections/{id}/scope",
    "/integrations/gitlab/connections/{id}/scope/preview",
    "/api/gitlab/connections/{id}/scope",
    "/api/gitlab/connections/{id}/scope/preview",
    "/settings/workspace",
    "/settings/audit",
    "/api/workspaces",
    "/api/workspaces/members",
    "/api/audit",
    "/api/gitlab/events",
];

const ALL_FIELDS: &[&str] = &[
    "base_url",
    "token",
    "ca_pem",
    "check",
    "email",
    "password",
    "next",
    "name",
    "id",
    "base",
    "profile",
    "step",
    "workspace",
    "role",
    "user_id",
    "invite",
    "replace",
    "before",
    "q",
    "intent",
    "shown_project",
    "project_in",
    "per_page",
    "page",
    "groups",
    "projects",
    "exclude",
];

/// Methods: HTTP's, WebDAV's, nonsense tokens. `reqwest` sends any valid token.
const METHODS: &[&str] = &[
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "FOO", "PROPFIND", "M-SEARCH", "get", "post",
];
/// Only on a raw connection: what `reqwest` would refuse or handle itself.
const RAW_METHODS: &[&str] = &["CONNECT", "G@T", "GET\u{7f}", "PO ST", "\u{e9}T", "PRI"];

const GITLAB_TOKENS: &[&str] = &[
    "glpat-good",
    "glpat-noscope",
    "glpat-readuser",
    "glpat-expired",
    "glpat-revoked",
    "glpat-blocked",
    "glpat-pending",
    "glpat-deactivated",
    "glpat-unconfirmed",
    "glpat-terms",
    "glpat-password",
    "glpat-soon",
    "glpat-noexpiry",
    "glpat-guest",
    "glpat-bot",
    "glpat-unknown",
];

const UNKNOWN: &[&str] = &[
    "/wp-login.php",
    "/.env",
    "/.git/config",
    "/api",
    "/api/",
    "/api/v4/user",
    "/api/gitlab",
    "/api/gitlab/validate2",
    "/api/gitlab/validate/",
    "/api/auth",
    "/api/tokens",
    "/api/integrations/1",
    "/settings",
    "/settings/",
    "/integrations",
    "/integrations/gitlab/",
    "/integrations/gitlab/step/1/2",
    "/integrations/gitlab/step/12/check",
    "/favicon.ico",
    "/pkg",
    "/pkg/",
    "/pkg/onramp.js",
    "/pkg/onramp.wasm",
    "/pkg/nope.css",
    "/pkg/%2e%2e/%2e%2e/Cargo.toml",
    "/pkg/..%2f..%2fCargo.toml",
    "/pkg/%252e%252e/Cargo.toml",
    "/robots.txt/",
    "/healthz/x",
    "/metrics.json",
    "/server-status",
    "/cgi-bin/test.cgi",
    "/index.html",
    "/%",
    "/%00",
    "/%E2%82",
    "/%ZZ",
    "/\u{fffd}",
];

/// Only on a raw connection: the URL parser would normalise or refuse these.
const UNKNOWN_RAW: &[&str] = &[
    "/pkg/../../Cargo.toml",
    "/pkg/../../../../../../etc/passwd",
    "/pkg/....//....//Cargo.toml",
    "/pkg/..\\..\\Cargo.toml",
    "/api/gitlab/../gitlab/validate",
    "/api/../api/gitlab/validate",
    "/integrations/gitlab/step/../12",
    "/./settings/integrations",
    "*",
    "/a b",
    "/\u{fc}n\u{ef}c\u{f8}d\u{e9}/\u{20ac}",
    "/#fragment",
    "/?#",
    "//",
    "http://127.0.0.1/login",
    "http://evil.example/settings/integrations",
    "https://evil.example/api/gitlab/validate",
    "127.0.0.1:80",
    "",
];

const STEP_JUNK: &[&str] = &[
    "00",
    "01",
    "012",
    "1e1",
    "0x0c",
    "+5",
    "%205",
    "\u{661}\u{662}",
    "\u{ff11}\u{ff12}",
    "12abc",
    "99999999999999999999",
    "255",
    "256",
    "-0",
    "1.5",
    "%31%32",
    "12%00",
    "NaN",
];

/// Hostile values with no marker in them.
fn nasty(rng: &mut Rng, ctx: &Ctx) -> String {
    const FIXED: &[&str] = &[
        "",
        " ",
        "   \t  ",
        "\u{a0}",
        "\u{20ac}\u{20ac}\u{20ac}",
        "\u{202e}gitlab.example\u{202c}",
        "\u{5e9}\u{5dc}\u{5d5}\u{5dd}.example",
        "e\u{301}\u{301}\u{301}\u{20dd}",
        "\u{feff}https://gitlab.example",
        "\u{1f600}",
        "\u{10ffff}",
        "javascript:alert(1)",
        "https://https://x",
        "http://",
        "https://",
        "//",
        "///",
        "http:/x",
        "https:\\\\gitlab.example",
        "ftp://gitlab.example",
        "file:///etc/passwd",
        "data:text/html,<script>alert(1)</script>",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1",
        "http://[::1]/",
        "http://0.0.0.0/",
        "http://127.0.0.1:1",
        "http://127.0.0.1:0",
        "http://127.0.0.1:65536",
        "http://localhost",
        "https://gitlab.com",
        "https://gitlab.com/jdoe",
        "https://gitlab.example/group/sub/project",
        "https://b\u{fc}cher.example",
        "https://xn--bcher-kva.example",
        " https://gitlab.example ",
        "%",
        "%%",
        "%zz",
        "%E2%82",
        "%00",
        "%0d%0a",
        "\0",
        "a\0b",
        "\r\n",
        "x\r\nSet-Cookie: evil=1",
        "\u{85}",
        "' OR 1=1 --",
        "\"; DROP TABLE users; --",
        "1; SELECT pg_sleep(10)",
        "<script>alert(1)</script>",
        "\"><img src=x onerror=alert(1)>",
        "{{7*7}}",
        "${jndi:ldap://x/a}",
        "../../../../etc/passwd",
        "..\\..\\windows\\win.ini",
        "-1",
        "0",
        "00",
        "13",
        "99999999999999999999999",
        "1e309",
        "NaN",
        "null",
        "true",
        "[]",
        "{}",
        "a@b",
        "@",
        "x@y@z",
        "jane@example.com",
        " FUZZ-A@EXAMPLE.COM ",
        "user@[127.0.0.1]",
        "\"quoted\"@example.com",
        "glpat-",
        "glpat-good\n",
        "onr_",
        "Bearer x",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----",
        "/",
        "/settings/integrations",
        "//evil.example",
        "/\\evil.example",
        "/%2F%2Fevil.example",
    ];
    match rng.below(12) {
        0 => format!("{}{}", ctx.fake, rng.pick(&["", "/", "/gitlab", "/jdoe", "/api/v4", "//", "/.."])),
        1 => format!("{}{}", ctx.tls_fake, rng.pick(&["", "/", "/jdoe"])),
        2 => "a".repeat(*rng.pick(&[254, 255, 256, 1024, 8 * 1024, 64 * 1024])),
        3 => format!("{}@example.com", "a".repeat(rng.range(60, 400))),
        4 => {
            let n = rng.range(1, 64);
            rng.alnum(n)
        }
        5 => "\u{20ac}".repeat(rng.range(1, 3000)),
        6 => format!("a{}", "\u{301}".repeat(rng.range(1, 500))),
        7 => {
            let n = rng.range(1, 64);
            String::from_utf8_lossy(&rng.bytes(n)).into_owned()
        }
        _ => rng.pick(FIXED).to_string(),
    }
}

/// A value with the credential marker: only for `token` and `password`.
fn secret_value(rng: &mut Rng, ctx: &Ctx) -> String {
    let s = &ctx.markers.secret;
    match rng.below(8) {
        0 => format!(" {s}\n"),
        1 => format!("{s}{s}"),
        2 => format!("{s}\u{200b}"),
        3 => format!("Bearer {s}"),
        4 => format!("{s}\r\nX-Evil: 1"),
        5 => format!("{s}\u{20ac}"),
        _ => s.clone(),
    }
}

/// A value with the typed-field marker, often inside an address Onramp will try.
fn typed_value(rng: &mut Rng, ctx: &Ctx) -> String {
    let t = &ctx.markers.typed;
    match rng.below(12) {
        0 => format!("https://{t}.example/"),
        1 => format!("{}/{t}", ctx.fake),
        2 => format!("{}/{t}/jdoe", ctx.fake),
        3 => format!("http://127.0.0.1:1/{t}"),
        4 => format!("https://gitlab.example/{t}/x"),
        5 => format!("{t}@example.com"),
        6 => format!("https://user:{t}@gitlab.example"),
        7 => format!("{}/{t}", ctx.tls_fake),
        8 => format!("{}/?private_token={t}", ctx.fake),
        9 => format!("{} {t}", ctx.fake),
        _ => t.clone(),
    }
}

/// What a person or script might actually send in `field`.
fn sensible(rng: &mut Rng, ctx: &Ctx, field: &str) -> String {
    match field {
        "base_url" | "base" => match rng.below(6) {
            0 => ctx.tls_fake.clone(),
            1 => format!("{}/", ctx.fake),
            2 => ctx.fake.trim_start_matches("http://").to_owned(),
            3 => "https://gitlab.com".to_owned(),
            _ => ctx.fake.clone(),
        },
        "token" => rng.pick(GITLAB_TOKENS).to_string(),
        "ca_pem" => {
            if rng.percent(50) {
                ctx.tls_ca.clone()
            } else {
                String::new()
            }
        }
        "check" => kept_check(rng, ctx),
        "email" => match rng.below(4) {
            0 => EMAIL_A.to_owned(),
            1 => EMAIL_B.to_owned(),
            _ => format!("fuzz-{}@example.com", rng.hex(8)),
        },
        "password" => rng.pick(&[PASSWORD, "short", "correct horse battery staple!", &"x".repeat(201)]).to_string(),
        "next" => rng
            .pick(&[
                "/settings/integrations",
                "/integrations/gitlab/step/12?base=x",
                "https://evil.example",
                "//evil.example",
                "",
            ])
            .to_string(),
        "name" => format!("fuzz token {}", rng.hex(4)),
        "id" => rng.hex(32),
        "profile" => match rng.below(3) {
            0 => format!("{}/jdoe", ctx.fake),
            1 => format!("{}/group/project", ctx.tls_fake),
            _ => "https://gitlab.com/jdoe".to_owned(),
        },
        "step" => step_segment(rng),
        _ => nasty(rng, ctx),
    }
}

fn field_value(rng: &mut Rng, ctx: &Ctx, field: &str, happy: bool) -> String {
    let credential = matches!(field, "token" | "password");
    if happy {
        return match rng.below(5) {
            0 if credential => ctx.markers.secret.clone(),
            0 => typed_for(rng, ctx, field),
            _ => sensible(rng, ctx, field),
        };
    }
    match rng.below(10) {
        0..=3 => nasty(rng, ctx),
        4..=5 if credential => secret_value(rng, ctx),
        4..=5 => typed_for(rng, ctx, field),
        _ => sensible(rng, ctx, field),
    }
}

/// The typed-field marker in the shape `field` expects: addresses Onramp will really try.
fn typed_for(rng: &mut Rng, ctx: &Ctx, field: &str) -> String {
    let t = &ctx.markers.typed;
    match field {
        "base_url" | "base" | "profile" => match rng.below(8) {
            0 => format!("http://127.0.0.1:1/{t}"),
            1 => format!("http://127.0.0.1:1/group/{t}/jdoe"),
            2 => format!("{}/{t}", ctx.fake),
            3 => format!("{}/{t}/jdoe", ctx.fake),
            4 => format!("{}/{t}", ctx.tls_fake),
            5 => format!("{}/{t}", ctx.tls_fake.replace("127.0.0.1", "localhost")),
            _ => typed_value(rng, ctx),
        },
        "email" => format!("{}{t}@example.com", rng.pick(&["", "a.", "\"\"", " "])),
        _ => typed_value(rng, ctx),
    }
}

/// A kept check id seen earlier (or random). Draws the same from `rng` either way, so that what
/// was harvested never changes the rest of a request made from the seed.
fn kept_check(rng: &mut Rng, ctx: &Ctx) -> String {
    let (roll, random) = (rng.next(), rng.hex(32));
    let checks = ctx.checks.lock().unwrap();
    if !checks.is_empty() && roll % 100 < 70 {
        checks[(roll / 100) as usize % checks.len()].clone()
    } else {
        random
    }
}

fn step_segment(rng: &mut Rng) -> String {
    if rng.percent(75) {
        (rng.range(0, 21) as i64 - 1).to_string()
    } else {
        rng.pick(STEP_JUNK).to_string()
    }
}

fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn form(pairs: &[(String, String)]) -> String {
    pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
}

// --- One request ---------------------------------------------------------------------------------

struct Req {
    index: usize,
    /// The route it was made from (its template), for the table by route.
    label: &'static str,
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    body_desc: String,
    /// Sent on a plain TCP connection, byte by byte.
    raw: bool,
    /// Raw only: the HTTP version, the `Host` header (None: none), header lines as bytes
    /// (possibly malformed), and chunked framing (Some(false): broken chunked framing).
    version: &'static str,
    host: Option<String>,
    junk_lines: Vec<u8>,
    chunked: Option<bool>,
}

fn generate(ctx: &Ctx, seed: u64, index: usize) -> Req {
    let mut rng = Rng::for_request(seed, index);
    let total: usize = ROUTES.iter().map(|r| r.weight).sum();
    let mut roll = rng.below(total);
    let route = ROUTES
        .iter()
        .find(|r| {
            if roll < r.weight {
                return true;
            }
            roll -= r.weight;
            false
        })
        .expect("a route");
    let happy = rng.percent(15);
    let mut raw = rng.percent(15);

    let mut path = match route.path {
        "/integrations/gitlab/step/{n}" => format!("/integrations/gitlab/step/{}", step_segment(&mut rng)),
        p if p.contains("{id}") && p.contains("/connections/") && rng.percent(33) => p.replace("{id}", &ctx.connection),
        p if p.contains("{id}") => {
            let n = rng.range(1, 70);
            p.replace("{id}", &rng.alnum(n))
        }
        "{unknown}" => match rng.below(4) {
            0 => {
                raw = true;
                rng.pick(UNKNOWN_RAW).to_string()
            }
            1 => {
                let n = rng.range(1, 30);
                format!("/{}", rng.alnum(n))
            }
            _ => rng.pick(UNKNOWN).to_string(),
        },
        p => p.to_owned(),
    };
    let mut method = route.method.to_owned();
    if !happy && rng.percent(25) {
        method = rng.pick(METHODS).to_string();
        if rng.percent(10) {
            method = rng.pick(RAW_METHODS).to_string();
            raw = true;
        }
    }
    if !happy && rng.percent(25) {
        raw |= mutate_path(&mut rng, &mut path);
    }
    let query = if happy {
        happy_query(&mut rng, ctx, &path)
    } else if rng.percent(45) {
        fuzz_query(&mut rng, ctx)
    } else {
        String::new()
    };
    let target = format!("{path}{query}");

    // The body, and the type it claims.
    let fields: Vec<&str> = if route.fields.is_empty() || rng.percent(10) {
        (0..rng.below(4)).map(|_| *rng.pick(ALL_FIELDS)).collect()
    } else {
        route.fields.to_vec()
    };
    let pairs = |rng: &mut Rng| -> Vec<(String, String)> {
        let mut pairs = Vec::new();
        for field in &fields {
            if happy || rng.percent(85) {
                pairs.push((field.to_string(), field_value(rng, ctx, field, happy)));
            }
        }
        pairs
    };
    let mut chunked = None;
    let (body, kind, natural): (Vec<u8>, &str, Option<&str>) = if happy {
        if method == "GET" {
            (Vec::new(), "none", None)
        } else {
            (form(&pairs(&mut rng)).into_bytes(), "form", Some("application/x-www-form-urlencoded"))
        }
    } else {
        match rng.below(100) {
            0..=14 => (Vec::new(), "none", None),
            15..=49 => {
                let mut text = form(&pairs(&mut rng));
                if rng.percent(15) {
                    text.push_str(rng.pick::<&str>(&[
                        "&",
                        "&&",
                        "&=",
                        "&%",
                        "&%E2%82=x",
                        "&a=%ZZ",
                        "&token=a&token=b",
                        "&=&=&",
                    ]));
                }
                (text.into_bytes(), "form", Some("application/x-www-form-urlencoded"))
            }
            50..=56 => {
                let mut junk = Vec::new();
                for _ in 0..rng.range(1, 6) {
                    let n = rng.range(0, 12);
                    let key = rng.alnum(n);
                    let value = if rng.percent(50) { typed_value(&mut rng, ctx) } else { nasty(&mut rng, ctx) };
                    junk.push((key, value));
                }
                (form(&junk).into_bytes(), "form (random fields)", Some("application/x-www-form-urlencoded"))
            }
            57..=62 => {
                let n = *rng.pick(&[0, 1, 16, 512, 4096]);
                (rng.bytes(n), "random bytes", None)
            }
            63..=70 => {
                let object: serde_json::Map<String, serde_json::Value> =
                    pairs(&mut rng).into_iter().map(|(k, v)| (k, serde_json::Value::String(v))).collect();
                (serde_json::Value::Object(object).to_string().into_bytes(), "JSON", Some("application/json"))
            }
            71..=74 => {
                let junk = match rng.below(5) {
                    0 => "[".repeat(rng.range(1, 5000)),
                    1 => "{\"base_url\":".to_owned(),
                    2 => "null".to_owned(),
                    3 => "{\"token\":[1,2,{\"a\":null}],\"base_url\":1e999}".to_owned(),
                    _ => "\u{feff}{}".to_owned(),
                };
                (junk.into_bytes(), "JSON junk", Some("application/json"))
            }
            75..=80 => {
                let mut text = String::new();
                for (k, v) in pairs(&mut rng) {
                    text.push_str(&format!("--fuzz\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"));
                }
                text.push_str(rng.pick::<&str>(&["--fuzz--\r\n", "--fuzz", "", "--other--"]));
                (text.into_bytes(), "multipart", Some("multipart/form-data; boundary=fuzz"))
            }
            81..=88 => {
                // Larger than a route reads (16 KiB; 256 KiB for validate), or just under.
                let size: usize =
                    *rng.pick(&[16 * 1024 - 64, 16 * 1024 + 1, 64 * 1024, 200 * 1024, 256 * 1024 + 1, 300 * 1024]);
                let mut text = form(&pairs(&mut rng));
                text.push_str("&pad=");
                let pad = size.saturating_sub(text.len());
                text.push_str(&"a".repeat(pad));
                (text.into_bytes(), "form, oversized", Some("application/x-www-form-urlencoded"))
            }
            _ => {
                // Chunked (no Content-Length): the limit applies while the body is read.
                raw = true;
                chunked = Some(rng.percent(85));
                let size: usize = *rng.pick(&[10, 4 * 1024, 16 * 1024 + 1, 100 * 1024, 300 * 1024]);
                let mut text = form(&pairs(&mut rng));
                text.push_str("&pad=");
                let pad = size.saturating_sub(text.len());
                text.push_str(&"b".repeat(pad));
                (text.into_bytes(), "form, chunked", Some("application/x-www-form-urlencoded"))
            }
        }
    };
    let content_type = if happy || rng.percent(65) {
        natural.map(str::to_owned)
    } else {
        rng.pick(&[
            Some("application/x-www-form-urlencoded"),
            Some("application/x-www-form-urlencoded; charset=ebcdic"),
            Some("application/json"),
            Some("multipart/form-data; boundary=fuzz"),
            Some("multipart/form-data"),
            Some("text/plain"),
            Some("application/cbor"),
            Some("*/*"),
            Some(""),
            Some("garbage;;;=;"),
            None,
        ])
        .map(str::to_owned)
    };
    let body_desc = format!(
        "{kind}{}, {} B, content-type {:?}: {}",
        match chunked {
            Some(true) => " (chunked)",
            Some(false) => " (broken chunked framing)",
            None => "",
        },
        body.len(),
        content_type,
        clip(&String::from_utf8_lossy(&body), 200)
    );

    let headers = headers(&mut rng, ctx, &path, happy, content_type);
    let version = if rng.percent(88) {
        "HTTP/1.1"
    } else {
        rng.pick(&["HTTP/1.0", "HTTP/1.0", "HTTP/2.0", "HTTP/1.2", "HTTP/1.1x", "http/1.1"])
    };
    let host = match rng.below(20) {
        0 => None,
        1 => Some("evil.example".to_owned()),
        2 => Some(format!("{}.example", ctx.markers.typed)),
        3 => Some(format!("{}\r\nHost: evil.example", ctx.addr)),
        _ => Some(ctx.addr.to_string()),
    };
    let junk_lines = if raw && rng.percent(8) {
        rng.pick(&[
            &b"X-Control: a\x01b\r\n"[..],
            b"NoColon\r\n",
            b" folded: continuation\r\n",
            b"X-Space : x\r\n",
            b"X-Empty:\r\n",
            b"Content-Length: 5\r\nContent-Length: 6\r\n",
            b"Transfer-Encoding: gzip\r\n",
            b"X-High: \xff\xfe\r\n",
        ])
        .to_vec()
    } else {
        Vec::new()
    };
    let mut req = Req {
        index,
        label: route.path,
        method,
        target,
        headers,
        body,
        body_desc,
        raw,
        version,
        host,
        junk_lines,
        chunked,
    };
    // http::Uri refuses targets over 64 KiB: longer ones are sent raw (hyper answers 414).
    if !req.raw && req.target.len() < 60 * 1024 {
        // What reqwest will put on the wire (it normalises `..` and drops `#…`): shown in reports.
        match reqwest::Url::parse(&format!("http://{}{}", ctx.addr, req.target)) {
            Ok(url) => {
                req.target = format!("{}{}", url.path(), url.query().map(|q| format!("?{q}")).unwrap_or_default())
            }
            Err(_) => req.raw = true,
        }
    } else {
        req.raw = true;
    }
    req
}

/// Changes `path`; true when only a raw connection can send the result as it is.
fn mutate_path(rng: &mut Rng, path: &mut String) -> bool {
    let mut raw = false;
    match rng.below(13) {
        0 => path.push('/'),
        1 => {
            path.push('/');
            let n = rng.range(1, 20);
            path.push_str(&rng.alnum(n));
        }
        2 => {
            *path = format!("{path}/../{}", path.trim_start_matches('/'));
            raw = true;
        }
        3 => {
            *path = format!("/%2e%2e{path}");
            raw = true;
        }
        4 => path.push_str("%00"),
        5 => path.push_str("/%E2%82"),
        6 => {
            path.push('/');
            path.push_str(&"a".repeat(rng.range(100, 9000)));
        }
        7 => {
            path.push_str("/\u{fc}n\u{ef}c\u{f8}d\u{e9}\u{20ac}\u{1f600}");
            raw = rng.percent(50);
        }
        8 => *path = path.to_uppercase(),
        9 => *path = path.replace('/', "//"),
        10 => path.push_str(rng.pick::<&str>(&[";jsessionid=x", "%2F", "%2f..%2f", "/.", "/..", "%20", "\\"])),
        11 => {
            path.push_str(rng.pick::<&str>(&["#frag", "/a b", "/./"]));
            raw = true;
        }
        _ => path.push_str(&"/x".repeat(rng.range(10, 300))),
    }
    raw
}

fn fuzz_query(rng: &mut Rng, ctx: &Ctx) -> String {
    const KEYS: &[&str] = &[
        "base",
        "profile",
        "check",
        "limited",
        "error",
        "next",
        "email",
        "created",
        "rechecked",
        "replaced",
        "disconnected",
        "logged_out",
        "revoked",
        "step",
    ];
    let mut parts = Vec::new();
    for _ in 0..rng.range(1, 4) {
        let key = if rng.percent(85) {
            rng.pick(KEYS).to_string()
        } else {
            {
                let n = rng.range(0, 10);
                rng.alnum(n)
            }
        };
        let value = match (key.as_str(), rng.below(10)) {
            ("error", 0..=5) => rng
                .pick(&[
                    "limited_5",
                    "limited_",
                    "limited_-1",
                    "limited_99999999999999999999",
                    "limited_\u{20ac}",
                    "invalid",
                    "busy",
                    "email_taken",
                    "password_short",
                    "name",
                ])
                .to_string(),
            ("limited", 0..=5) => rng.pick(&["0", "1", "30", "-1", "99999999999999999999", "1.5", "x"]).to_string(),
            ("check", 0..=5) => kept_check(rng, ctx),
            ("created", 0..=3) => rng.hex(32),
            ("base" | "next", 0..=2) => sensible(rng, ctx, "base"),
            (_, 0..=2) => typed_value(rng, ctx),
            (_, 3) => "v".repeat(8 * 1024),
            _ => nasty(rng, ctx),
        };
        parts.push(format!("{}={}", encode(&key), encode(&value)));
    }
    if rng.percent(20) {
        parts.push(
            rng.pick(&["", "&", "=", "==", "a=b=c", "%", "%E2%82", "%00", "+", "%zz", "a[]=1", "a[b]=1", "?", ";"])
                .to_string(),
        );
    }
    format!("?{}", parts.join("&"))
}

fn happy_query(rng: &mut Rng, ctx: &Ctx, path: &str) -> String {
    if !path.starts_with("/integrations") || rng.percent(50) {
        return String::new();
    }
    match rng.below(3) {
        0 => format!("?base={}", encode(&sensible(rng, ctx, "base"))),
        1 => format!("?check={}", encode(&kept_check(rng, ctx))),
        _ => format!("?profile={}", encode(&sensible(rng, ctx, "profile"))),
    }
}

fn headers(rng: &mut Rng, ctx: &Ctx, path: &str, happy: bool, content_type: Option<String>) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = Vec::new();
    let mut add = |name: &str, value: String| {
        // A header value is one line of visible characters (obs-text allowed).
        let value: String = value.chars().filter(|c| !c.is_control() || *c == '\t').collect();
        h.push((name.to_owned(), value));
    };
    if let Some(ct) = content_type {
        add("content-type", ct);
    }
    let accept = if happy {
        *rng.pick(&[Some("text/html"), Some("application/json")])
    } else {
        *rng.pick(&[
            Some("text/html"),
            Some("text/html"),
            Some("application/json"),
            Some("application/json"),
            Some("*/*"),
            Some("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
            Some("application/json, text/html"),
            Some("text/*"),
            Some("image/png"),
            Some(""),
            None,
            None,
        ])
    };
    if let Some(accept) = accept {
        add("accept", accept.to_owned());
    }
    // Where it claims to come from (CSRF).
    let origin = if happy {
        Some(ctx.origin.clone())
    } else {
        match rng.below(20) {
            0..=8 => Some(ctx.origin.clone()),
            9 => Some(ctx.origin.replace("http://", "https://")),
            10 | 11 => Some("https://evil.example".to_owned()),
            12 => Some("null".to_owned()),
            13 => Some(typed_value(rng, ctx)),
            _ => None,
        }
    };
    if let Some(origin) = origin {
        add("origin", origin);
    }
    if !happy && rng.percent(20) {
        add(
            "sec-fetch-site",
            rng.pick(&["same-origin", "same-site", "cross-site", "none", "SAME-ORIGIN", "x"]).to_string(),
        );
    }
    // Who is asking. User A's real session never goes to /api/auth/*: logging out (everywhere),
    // in or up there would end it, and the rest of the run would be anonymous.
    let auth_route = path.to_ascii_lowercase().contains("auth");
    let (session, token) = if happy {
        if rng.percent(60) && !auth_route {
            (true, false)
        } else {
            (false, true)
        }
    } else {
        (rng.percent(35) && !auth_route, rng.percent(15))
    };
    let mut cookies = Vec::new();
    if session {
        cookies.push(format!("onramp_session={}", ctx.session));
    }
    if !happy {
        match rng.below(20) {
            0 => cookies.push(format!("onramp_session={}", ctx.markers.secret)),
            1 => cookies.push(format!(
                "__Host-onramp_session={}",
                if auth_route { ctx.markers.secret.clone() } else { ctx.session.clone() }
            )),
            2 => cookies.push(format!("__Host-onramp_session={}", rng.alnum(43))),
            3 => cookies.push(format!("onramp_gitlab_hosts={}", encode(&typed_value(rng, ctx)))),
            4 => cookies.push(format!("onramp_gitlab_hosts={}", nasty(rng, ctx))),
            5 => cookies.push(";;;==;onramp_session;onramp_session=;=x".to_owned()),
            6 => {
                let n = rng.range(0, 100);
                cookies.push(format!("onramp_session={}", rng.alnum(n)))
            }
            _ => {}
        }
    }
    if !cookies.is_empty() {
        add("cookie", cookies.join(if rng.percent(80) { "; " } else { ";" }));
    }
    if token {
        add("authorization", format!("Bearer {}", ctx.api_token));
    } else if !happy {
        match rng.below(20) {
            0 => add("authorization", format!("Bearer onr_{}", rng.alnum(43))),
            1 => add("authorization", format!("Bearer onr_{}", ctx.markers.secret)),
            2 => add("authorization", format!("Bearer {}", ctx.markers.secret)),
            3 => add("authorization", format!("Basic {}", rng.alnum(24))),
            4 => add(
                "authorization",
                rng.pick(&["Bearer ", "Bearer", "bearer onr_x", "Bearer  onr_", "Bearer onr_\u{20ac}"]).to_string(),
            ),
            _ => {}
        }
    }
    if happy {
        return h;
    }
    // Forwarding headers from a client nobody said to trust: to be ignored.
    if rng.percent(15) {
        let value = match rng.below(8) {
            0 => typed_value(rng, ctx),
            1 => "1.2.3.4, ".repeat(rng.range(1, 500)),
            _ => rng
                .pick(&[
                    "1.2.3.4",
                    "::1",
                    "unknown",
                    "999.999.999.999",
                    "1.1.1.1, 2.2.2.2",
                    "127.0.0.1",
                    "",
                    "[::1]:80",
                    "2001:db8::1",
                ])
                .to_string(),
        };
        add("x-forwarded-for", value);
    }
    if rng.percent(8) {
        let value = if rng.percent(30) {
            format!("for={}", typed_value(rng, ctx))
        } else {
            rng.pick(&[
                "for=1.2.3.4;proto=https",
                "for=\"[::1]\"",
                "proto=https",
                "for=unknown",
                ";;;",
                "for=1.2.3.4, for=5.6.7.8",
            ])
            .to_string()
        };
        add("forwarded", value);
    }
    if rng.percent(8) {
        add("x-forwarded-proto", rng.pick(&["https", "http", "https, http", "http, https", "gopher", ""]).to_string());
    }
    if rng.percent(5) {
        add("x-forwarded-host", rng.pick(&["evil.example", "127.0.0.1", ""]).to_string());
    }
    if rng.percent(5) {
        add("x-request-id", if rng.percent(50) { typed_value(rng, ctx) } else { nasty(rng, ctx) });
    }
    if rng.percent(8) {
        add(
            "accept-encoding",
            rng.pick(&["gzip", "br", "gzip, br", "deflate", "identity", "*;q=0", "zstd", "x"]).to_string(),
        );
    }
    if rng.percent(4) {
        add("range", rng.pick(&["bytes=0-10", "bytes=-5", "bytes=99999999-", "bytes=x"]).to_string());
    }
    if rng.percent(3) {
        add("if-none-match", "\"x\"".to_owned());
    }
    if rng.percent(2) && path.starts_with('/') {
        add("expect", "100-continue".to_owned());
    }
    if rng.percent(5) {
        let name = format!("x-fuzz-{}", rng.alnum(6).to_lowercase());
        let value = if rng.percent(50) { typed_value(rng, ctx) } else { nasty(rng, ctx) };
        add(&name, value);
    }
    h
}

// --- Sending -------------------------------------------------------------------------------------

struct Answer {
    status: u16,
    /// Status line and headers, as text.
    head: String,
    body: Vec<u8>,
    /// A `Content-Encoding` other than identity: the body cannot be searched.
    /// `Content-Encoding` (not identity): the body is decoded before it is searched.
    encoded: Option<String>,
    location: String,
}

async fn send(client: &reqwest::Client, ctx: &Ctx, req: &Req) -> Result<Answer, String> {
    let method = reqwest::Method::from_bytes(req.method.as_bytes()).map_err(|e| format!("(fuzzer) method: {e}"))?;
    let mut builder = client.request(method, format!("http://{}{}", ctx.addr, req.target));
    for (name, value) in &req.headers {
        let value =
            reqwest::header::HeaderValue::from_bytes(value.as_bytes()).map_err(|e| format!("(fuzzer) {name}: {e}"))?;
        builder = builder.header(name.as_str(), value);
    }
    if !req.body.is_empty() || req.method == "POST" {
        builder = builder.body(req.body.clone());
    }
    let r = builder.send().await.map_err(|e| chain(&e))?;
    let status = r.status().as_u16();
    let mut head = format!("{:?} {}\n", r.version(), r.status());
    for (name, value) in r.headers() {
        head.push_str(&format!("{name}: {}\n", String::from_utf8_lossy(value.as_bytes())));
    }
    let encoded = r
        .headers()
        .get("content-encoding")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_ascii_lowercase())
        .filter(|v| v != "identity");
    let location = location(r.headers());
    let body = r.bytes().await.map_err(|e| format!("answer {status}, then its body failed: {}", chain(&e)))?;
    Ok(Answer { status, head, body: body.to_vec(), encoded, location })
}

fn raw_request(req: &Req) -> Vec<u8> {
    let mut out = format!("{} {} {}\r\n", req.method, req.target, req.version).into_bytes();
    if let Some(host) = &req.host {
        out.extend_from_slice(format!("Host: {host}\r\n").as_bytes());
    }
    for (name, value) in &req.headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(&req.junk_lines);
    match req.chunked {
        Some(_) => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        None if !req.body.is_empty() || req.method == "POST" => {
            out.extend_from_slice(format!("Content-Length: {}\r\n", req.body.len()).as_bytes())
        }
        None => {}
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    match req.chunked {
        Some(well_formed) => {
            for chunk in req.body.chunks(8 * 1024) {
                out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                out.extend_from_slice(chunk);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(if well_formed { b"0\r\n\r\n" } else { b"zz\r\n\r\n" });
        }
        None => out.extend_from_slice(&req.body),
    }
    out
}

/// Writes the request and reads the answer at the same time (a server may answer before it has
/// read the body, e.g. 413), never half-closing: hyper closes a connection whose client shut its
/// writing side. Reads until the server closes (`Connection: close`), then checks the framing.
async fn send_raw(ctx: &Ctx, source: IpAddr, req: &Req) -> Result<Answer, String> {
    let bytes = raw_request(req);
    let socket = tokio::net::TcpSocket::new_v4().map_err(|e| format!("(fuzzer) socket: {e}"))?;
    socket.bind(SocketAddr::new(source, 0)).map_err(|e| format!("(fuzzer) bind: {e}"))?;
    let mut stream = tokio::time::timeout(TIMEOUT, socket.connect(ctx.addr))
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| format!("connect: {e}"))?;
    let (mut reader, mut writer) = stream.split();
    let write = async {
        let result = writer.write_all(&bytes).await;
        let _ = writer.flush().await;
        result
    };
    let read = async {
        let mut buf = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            match reader.read(&mut chunk).await {
                Ok(0) => return (buf, None),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) => return (buf, Some(e)),
            }
        }
    };
    let (written, (buf, read_error)) = tokio::time::timeout(TIMEOUT, async { tokio::join!(write, read) })
        .await
        .map_err(|_| format!("no complete answer within {} s", TIMEOUT.as_secs()))?;
    let head_request = req.method.eq_ignore_ascii_case("HEAD");
    parse_answer(&buf, head_request, read_error.is_none()).map_err(|what| {
        format!(
            "{what} ({} bytes read{}{}): {}",
            buf.len(),
            read_error.map(|e| format!(", read: {e}")).unwrap_or_default(),
            written.err().map(|e| format!(", write: {e}")).unwrap_or_default(),
            clip(&String::from_utf8_lossy(&buf), 200)
        )
    })
}

/// An HTTP/1 answer read from a connection that was then closed: interim 1xx answers skipped,
/// the body complete by `Content-Length`, chunked framing, or (with neither) a clean close.
fn parse_answer(buf: &[u8], head_request: bool, clean_close: bool) -> Result<Answer, String> {
    let mut rest = buf;
    loop {
        let end = find(rest, b"\r\n\r\n").ok_or("no complete status line and headers")?;
        let head = String::from_utf8_lossy(&rest[..end]).into_owned();
        let after = &rest[end + 4..];
        if !head.starts_with("HTTP/1.") {
            return Err("not an HTTP/1 answer".to_owned());
        }
        let status: u16 = head.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or("no status code")?;
        if (100..200).contains(&status) && status != 101 {
            rest = after;
            continue;
        }
        let header = |name: &str| {
            head.lines().skip(1).find_map(|line| {
                let (n, v) = line.split_once(':')?;
                n.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
        };
        let body = if head_request || status == 204 || status == 304 || (100..200).contains(&status) {
            Vec::new()
        } else if header("transfer-encoding").is_some_and(|te| te.to_ascii_lowercase().contains("chunked")) {
            dechunk(after)?
        } else if let Some(length) = header("content-length") {
            let length: usize = length.parse().map_err(|_| format!("Content-Length {length:?}"))?;
            if after.len() < length {
                return Err(format!("body cut short: {} of {length} bytes", after.len()));
            }
            after[..length].to_vec()
        } else if clean_close {
            after.to_vec()
        } else {
            return Err("a body without length, ended by an error rather than a close".to_owned());
        };
        let encoded = header("content-encoding").map(|e| e.to_ascii_lowercase()).filter(|e| e != "identity");
        let location = header("location").unwrap_or_default();
        return Ok(Answer { status, head, body, encoded, location });
    }
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let end = find(data, b"\r\n").ok_or("chunked body cut short (no size line)")?;
        let line = String::from_utf8_lossy(&data[..end]);
        let size = usize::from_str_radix(line.split(';').next().unwrap_or_default().trim(), 16)
            .map_err(|_| format!("chunk size {line:?}"))?;
        data = &data[end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if data.len() < size + 2 {
            return Err(format!("chunked body cut short ({} bytes so far)", body.len() + data.len()));
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// A body in `encoding` (what Onramp's compression layer and its kept pages send: gzip, br), decoded.
fn decode(encoding: &str, body: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut out = Vec::new();
    match encoding {
        _ if body.is_empty() => {}
        "gzip" | "x-gzip" => {
            flate2::read::GzDecoder::new(body).read_to_end(&mut out).map_err(|e| format!("gzip: {e}"))?;
        }
        "br" => {
            brotli::Decompressor::new(body, 4096).read_to_end(&mut out).map_err(|e| format!("br: {e}"))?;
        }
        "deflate" => {
            flate2::read::ZlibDecoder::new(body).read_to_end(&mut out).map_err(|e| format!("deflate: {e}"))?;
        }
        other => return Err(format!("an encoding the fuzzer did not ask for: {other:?}")),
    }
    Ok(out)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

// --- Judging -------------------------------------------------------------------------------------

#[derive(Default)]
struct Stats {
    total: usize,
    raw: usize,
    by_status: BTreeMap<u16, usize>,
    by_route: BTreeMap<&'static str, BTreeMap<String, usize>>,
    server_errors: Vec<String>,
    transport: Vec<String>,
    leaks: Vec<String>,
    traversal: Vec<String>,
    /// Compressed answers, decoded before they were searched.
    decoded: usize,
    /// Answers whose compressed body could not be decoded: a fault of the server, or of the fuzzer.
    undecodable: Vec<String>,
    /// 2xx answers on pages and API routes that need a signed-in caller, by route: proof that the
    /// fuzzer's requests got past authentication (and that the deep routes were exercised).
    signed_in: BTreeMap<&'static str, usize>,
    /// Answers that show the typed-field marker back (allowed): proof that answers are searched.
    typed_echoes: usize,
    injected: Vec<String>,
    /// `X-Request-Id` of each answer: the request index, to name the request behind a log line.
    request_ids: std::collections::HashMap<String, usize>,
}

fn judge(ctx: &Ctx, req: &Req, result: Result<Answer, String>, stats: &mut Stats) {
    stats.total += 1;
    stats.raw += usize::from(req.raw);
    let answer = match result {
        Ok(answer) => answer,
        Err(e) => {
            *stats.by_route.entry(req.label).or_default().entry("error".to_owned()).or_default() += 1;
            stats.transport.push(format!("{}\n    -> {}", describe(req), clip(&e, 400)));
            return;
        }
    };
    *stats.by_status.entry(answer.status).or_default() += 1;
    *stats.by_route.entry(req.label).or_default().entry(answer.status.to_string()).or_default() += 1;
    // A compressed body is decoded first: it is searched like any other (and shown decoded).
    let decoded = answer.encoded.as_deref().map(|encoding| decode(encoding, &answer.body));
    let body = match &decoded {
        None => String::from_utf8_lossy(&answer.body),
        Some(Ok(plain)) => {
            stats.decoded += 1;
            String::from_utf8_lossy(plain)
        }
        Some(Err(e)) => {
            let raw = String::from_utf8_lossy(&answer.body);
            stats.undecodable.push(format!("{}\n    -> {} {e}: {}", describe(req), answer.status, clip(&raw, 100)));
            String::new().into()
        }
    };
    let shown = || format!("{}\n    -> {} {}", describe(req), answer.status, clip(&body, 300));
    if answer.status >= 500 {
        stats.server_errors.push(shown());
    }
    if answer.head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("x-evil") || l.starts_with("set-cookie: evil")
    }) {
        stats.injected.push(format!("{}\n    headers:\n{}", shown(), answer.head));
    }
    if answer.head.contains(tail(&ctx.markers.typed)) || body.contains(tail(&ctx.markers.typed)) {
        stats.typed_echoes += 1;
    }
    if ctx.markers.secret_in(&answer.head) {
        stats.leaks.push(format!("{}\n    credential marker in the headers:\n{}", shown(), answer.head));
    }
    if ctx.markers.secret_in(&body) {
        let at = body.find(tail(&ctx.markers.secret)).unwrap_or(0);
        let start = body[..at].char_indices().rev().nth(150).map_or(0, |(i, _)| i);
        let context: String = body[start..].chars().take(300).collect();
        stats.leaks.push(format!("{}\n    credential marker in the body: …{}…", shown(), clip(&context, 300)));
    }
    if body.contains("[workspace]") || body.contains("root:x:0:0") {
        stats.traversal.push(shown());
    }
    if (200..300).contains(&answer.status) && NEEDS_LOGIN.contains(&req.label) {
        *stats.signed_in.entry(req.label).or_default() += 1;
    }
    let request_id =
        answer.head.lines().find_map(|l| l.strip_prefix("x-request-id:").or_else(|| l.strip_prefix("X-Request-Id:")));
    if let Some(id) = request_id {
        stats.request_ids.insert(id.trim().to_owned(), req.index);
    }
    if let Some(id) = answer.location.split("check=").nth(1) {
        let id = id.split('&').next().unwrap_or_default();
        let mut checks = ctx.checks.lock().unwrap();
        if !id.is_empty() && checks.len() < 100 && !checks.iter().any(|c| c == id) {
            checks.push(id.to_owned());
        }
    }
}

fn describe(req: &Req) -> String {
    let mut s = format!(
        "#{} [{}] {} {}",
        req.index,
        if req.raw { "raw" } else { "reqwest" },
        clip(&req.method, 20),
        clip(&req.target, 300)
    );
    if req.raw {
        s.push_str(&format!(" {} host={:?}", req.version, req.host.as_deref().map(|h| clip(h, 80))));
        if !req.junk_lines.is_empty() {
            s.push_str(&format!(" junk-lines={}", clip(&String::from_utf8_lossy(&req.junk_lines), 80)));
        }
    }
    for (name, value) in &req.headers {
        s.push_str(&format!("\n      {name}: {}", clip(value, 120)));
    }
    s.push_str(&format!("\n      body: {}", req.body_desc));
    s
}

fn print_routes(stats: &Stats) {
    println!("fuzz: answers by route (template):");
    for (route, statuses) in &stats.by_route {
        let statuses: Vec<String> = statuses.iter().map(|(s, n)| format!("{s}: {n}")).collect();
        println!("  {route:<36} {}", statuses.join(", "));
    }
}

/// At most `n` characters, control characters escaped.
fn clip(text: &str, n: usize) -> String {
    let mut out: String = text
        .chars()
        .take(n)
        .flat_map(|c| if c.is_control() { c.escape_default().collect::<Vec<_>>() } else { vec![c] })
        .collect();
    if text.chars().nth(n).is_some() {
        out.push_str(&format!("…({} chars)", text.chars().count()));
    }
    out
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(&format!(": {e}"));
        source = e.source();
    }
    text
}

fn location(headers: &reqwest::header::HeaderMap) -> String {
    headers.get("location").map(|l| String::from_utf8_lossy(l.as_bytes()).into_owned()).unwrap_or_default()
}

// --- The process ---------------------------------------------------------------------------------

struct Process {
    child: tokio::process::Child,
    server: Running,
    stdout: tokio::task::JoinHandle<Vec<u8>>,
    stderr: tokio::task::JoinHandle<Vec<u8>>,
}

/// `ONRAMP_FUZZ_BINARY` (relative to the workspace root), else the test-profile build.
fn binary() -> PathBuf {
    match std::env::var_os("ONRAMP_FUZZ_BINARY").filter(|b| !b.is_empty()) {
        Some(path) => {
            let path = workspace().join(path);
            assert!(path.is_file(), "ONRAMP_FUZZ_BINARY: no file {}", path.display());
            path
        }
        None => PathBuf::from(env!("CARGO_BIN_EXE_onramp")),
    }
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace").to_owned()
}

/// `support::start_binary` for any binary, with both output streams captured (it discards
/// standard error, where a panic would be reported) and the workspace root as working
/// directory (so /pkg/ is served from target/site). Same environment, plus debug logging and
/// limits that leave only log-ins rate-limited.
async fn start(binary: &Path, data: &Path) -> Process {
    let (mut command, server) = onramp_command(binary, data).await;
    let mut child = command
        .current_dir(workspace())
        .env("ONRAMP_LOG", "debug")
        .env("NO_COLOR", "1")
        .env("ONRAMP_CHECK_RATE_PER_MIN", "1000000")
        .env("ONRAMP_SIGNUPS_PER_IP_PER_HOUR", "1000000")
        .env("ONRAMP_HASH_WAIT_MS", "60000")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
    let stdout = capture(child.stdout.take().expect("stdout"));
    let stderr = capture(child.stderr.take().expect("stderr"));
    let probe = reqwest::Client::new();
    for _ in 0..600 {
        if probe.get(server.url("/healthz")).send().await.is_ok() {
            return Process { child, server, stdout, stderr };
        }
        if let Ok(Some(status)) = child.try_wait() {
            let out = String::from_utf8_lossy(&stdout.await.unwrap_or_default()).into_owned();
            let err = String::from_utf8_lossy(&stderr.await.unwrap_or_default()).into_owned();
            panic!("onramp exited at start ({status}):\n{out}\n{err}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("onramp did not start within 30 s");
}

/// Reads a pipe to its end (the process exiting) in the background, so it never fills up.
fn capture(mut pipe: impl AsyncRead + Unpin + Send + 'static) -> tokio::task::JoinHandle<Vec<u8>> {
    tokio::spawn(async move {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf).await;
        buf
    })
}
