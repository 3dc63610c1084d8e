//! What an attacker tries first, each found once and fixed (issue 7): panics on non-ASCII input,
//! floods of sign-ups and log-ins, someone else's guesses locking the owner out, forwarding headers
//! from anyone, oversized bodies and kept junk, text reflected from links, shared links that point
//! at a look-alike GitLab, secrets in logs. Black-box over HTTP, like a browser or a script.

use crate::support::*;
use fake_gitlab::FakeGitlab;
use std::net::IpAddr;

const HTML: &str = "text/html";
const JSON: &str = "application/json";

/// A browser-like client (cookies, `Origin`) whose connections come from `source` (any address
/// of 127.0.0.0/8 works on loopback), so rate limits see different clients.
fn client_from(onramp: &Onramp, source: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("origin", format!("http://{}", onramp.server.addr).parse().unwrap());
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .default_headers(headers)
        .local_address(source.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

#[tokio::test]
async fn non_ascii_input_is_answered_never_a_dropped_connection() {
    let onramp = spawn_onramp().await;
    for path in [
        "/integrations/gitlab/step?base=%E2%82%AC%E2%82%AC%E2%82%AC",
        "/integrations/gitlab/step/5?base=%E2%82%AC%E2%82%AC%E2%82%AC",
        "/integrations/gitlab/step/5?base=ht%E2%82%AC",
        "/integrations/gitlab/step/11?profile=%E2%82%AC%E2%82%AC%E2%82%AC",
        "/integrations/gitlab/step/11?profile=https%3A%2F%E2%82%AC",
        "/integrations/gitlab/step/12?base=%E2%82%AC%E2%82%AC%E2%82%AC",
    ] {
        let (status, _) = onramp.get(path).await;
        assert!(status < 500, "{path}: {status}");
    }
    let r = onramp.validate_raw(&[("base_url", "€€€"), ("token", "glpat-x")], JSON).await;
    assert_eq!(r.status(), 200);
    let r = onramp.validate_raw(&[("base_url", "https:/€"), ("token", "glpat-x")], JSON).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn international_hosts_are_shown_in_both_forms() {
    let onramp = spawn_onramp().await;
    let (_, body) = onramp.get("/integrations/gitlab/step/8?base=https%3A%2F%2Fb%C3%BCcher.example").await;
    assert!(body.contains("https://xn--bcher-kva.example"), "the ASCII form");
    assert!(body.contains("bücher.example"), "the Unicode form next to it");
}

#[tokio::test]
async fn sign_ups_are_limited_per_client_address() {
    let onramp = spawn_onramp_with(|c| c.settings.signups_per_hour = std::num::NonZeroU32::new(3).unwrap()).await;
    // jane signed up from 127.0.0.1 already: two more, then no more from there
    for i in 0..2 {
        let r = post(
            &client_from(&onramp, "127.0.0.1"),
            &onramp,
            "/api/auth/signup",
            HTML,
            &[("email", &format!("a{i}@example.com")), ("password", PASSWORD)],
        )
        .await;
        assert_eq!(location(&r), "/integrations/gitlab/step/2", "sign-up {i}");
    }
    let r = post(
        &client_from(&onramp, "127.0.0.1"),
        &onramp,
        "/api/auth/signup",
        JSON,
        &[("email", "a2@example.com"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=3600).contains(&wait), "{wait}");
    let r = post(
        &client_from(&onramp, "127.0.0.1"),
        &onramp,
        "/api/auth/signup",
        HTML,
        &[("email", "a3@example.com"), ("password", PASSWORD)],
    )
    .await;
    let back = location(&r);
    assert!(back.starts_with("/signup?error=limited_"), "{back}");
    let (_, page) = onramp.get(&back).await;
    assert!(page.contains("Too many new accounts from your network"));
    // another client is not affected
    let r = post(
        &client_from(&onramp, "127.0.0.2"),
        &onramp,
        "/api/auth/signup",
        HTML,
        &[("email", "b@example.com"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(location(&r), "/integrations/gitlab/step/2");
}

#[tokio::test]
async fn a_guesser_does_not_lock_the_owner_out() {
    let onramp = spawn_onramp().await;
    let guesser = client_from(&onramp, "127.0.0.1");
    let mut limited = false;
    for _ in 0..8 {
        let r = post(
            &guesser,
            &onramp,
            "/api/auth/login",
            JSON,
            &[("email", "jane@example.com"), ("password", "guess guess guess")],
        )
        .await;
        if r.status() == 429 {
            limited = true;
            break;
        }
        assert_eq!(r.status(), 401);
    }
    assert!(limited, "guessing is limited");
    // While limited, even the right password is refused from the guesser's address...
    let r = post(&guesser, &onramp, "/api/auth/login", JSON, &[("email", "jane@example.com"), ("password", PASSWORD)])
        .await;
    assert_eq!(r.status(), 429);
    // ...and another address of the same person's? Typed in another case, it is the same account.
    let r = post(&guesser, &onramp, "/api/auth/login", JSON, &[("email", "JANE@example.com"), ("password", PASSWORD)])
        .await;
    assert_eq!(r.status(), 429, "the account key is normalised");
    // The owner, from their own address, gets in.
    let owner = client_from(&onramp, "127.0.0.2");
    let r =
        post(&owner, &onramp, "/api/auth/login", HTML, &[("email", "jane@example.com"), ("password", PASSWORD)]).await;
    assert_eq!(location(&r), "/settings/integrations");
    let (status, _) = (owner.get(onramp.server.url("/settings/integrations")).send().await.unwrap().status(), ());
    assert_eq!(status, 200, "and is signed in");
}

#[tokio::test]
async fn forwarding_headers_count_only_from_trusted_proxies() {
    let signup = |onramp: &Onramp, client: reqwest::Client, xff: &'static str, email: String| {
        let url = onramp.server.url("/api/auth/signup");
        async move {
            client
                .post(url)
                .header("accept", JSON)
                .header("x-forwarded-for", xff)
                .form(&[("email", email.as_str()), ("password", PASSWORD)])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    // Trusted: each forwarded client has its own bucket of 2 (jane used none of them: she came
    // without the header, as 127.0.0.1).
    let onramp = spawn_onramp_with(|c| {
        c.settings.signups_per_hour = std::num::NonZeroU32::new(2).unwrap();
        c.settings.trusted_proxies = app::client::TrustedProxies::parse("127.0.0.1").unwrap();
    })
    .await;
    let c = || client_from(&onramp, "127.0.0.1");
    // a spoofed first hop written by the client changes nothing: the rightmost untrusted counts
    assert!(signup(&onramp, c(), "6.6.6.6, 198.51.100.1", "x1@example.com".into()).await.as_u16() < 400);
    assert!(signup(&onramp, c(), "7.7.7.7, 198.51.100.1", "x2@example.com".into()).await.as_u16() < 400);
    assert_eq!(signup(&onramp, c(), "198.51.100.1", "x3@example.com".into()).await, 429);
    assert!(signup(&onramp, c(), "198.51.100.2", "x4@example.com".into()).await.as_u16() < 400);
    // IPv6 clients are counted per /64
    assert!(signup(&onramp, c(), "2001:db8:1:2::1", "y1@example.com".into()).await.as_u16() < 400);
    assert!(signup(&onramp, c(), "2001:db8:1:2::2", "y2@example.com".into()).await.as_u16() < 400);
    assert_eq!(signup(&onramp, c(), "2001:db8:1:2::3", "y3@example.com".into()).await, 429);

    // Untrusted (the default): the header is ignored, everyone is 127.0.0.2.
    let onramp = spawn_onramp_with(|c| c.settings.signups_per_hour = std::num::NonZeroU32::new(2).unwrap()).await;
    let c = || client_from(&onramp, "127.0.0.2");
    assert!(signup(&onramp, c(), "198.51.100.1", "z1@example.com".into()).await.as_u16() < 400);
    assert!(signup(&onramp, c(), "198.51.100.2", "z2@example.com".into()).await.as_u16() < 400);
    assert_eq!(signup(&onramp, c(), "198.51.100.3", "z3@example.com".into()).await, 429);
}

#[tokio::test]
async fn oversized_bodies_and_junk_are_refused_not_kept() {
    let fake = spawn_fake(FakeGitlab::default()).await;
    let onramp = spawn_onramp().await;
    // A 1 MB "email": refused before anything reads it, so no limiter or hash ever sees it.
    let huge = "a".repeat(1024 * 1024);
    let r = post(&onramp.anon, &onramp, "/api/auth/login", JSON, &[("email", &huge), ("password", "x")]).await;
    assert_eq!(r.status(), 413);
    let r = post(
        &onramp.client,
        &onramp,
        "/api/gitlab/validate",
        JSON,
        &[("base_url", &fake.url("")), ("token", "glpat-good"), ("ca_pem", &huge)],
    )
    .await;
    assert_eq!(r.status(), 413);
    // A CA field of 100 KiB (under the body limit): explained, and not kept with the check.
    let big_ca = format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", "A".repeat(100 * 1024));
    let r =
        onramp.validate_raw(&[("base_url", &fake.url("")), ("token", "glpat-good"), ("ca_pem", &big_ca)], JSON).await;
    let report: serde_json::Value = r.json().await.unwrap();
    assert!(check(&report, "reachable")["message"].as_str().unwrap().contains("more than the 64 KiB"), "{report}");
    let r =
        onramp.validate_raw(&[("base_url", &fake.url("")), ("token", "glpat-good"), ("ca_pem", &big_ca)], HTML).await;
    assert!(location(&r).contains("check="), "{}", location(&r));
    let kept: Vec<String> =
        sqlx::query_scalar("SELECT extra_ca_pem FROM checks").fetch_all(onramp.state.db.pool()).await.unwrap();
    assert_eq!(kept, [String::new()], "junk is reported, never stored");
}

#[tokio::test]
async fn kept_checks_are_capped_per_user() {
    let fake = spawn_fake(FakeGitlab::default()).await;
    let onramp = spawn_onramp().await;
    for _ in 0..25 {
        let r = onramp.validate_raw(&[("base_url", &fake.url("")), ("token", "glpat-noscope")], HTML).await;
        assert!(location(&r).contains("check="));
    }
    let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM checks").fetch_one(onramp.state.db.pool()).await.unwrap();
    assert_eq!(kept, app::store::integrations::CHECKS_KEPT_PER_USER);
}

#[tokio::test]
async fn log_out_everywhere_ends_every_session() {
    let onramp = spawn_onramp().await;
    let laptop = client_from(&onramp, "127.0.0.3");
    let r =
        post(&laptop, &onramp, "/api/auth/login", HTML, &[("email", "jane@example.com"), ("password", PASSWORD)]).await;
    assert_eq!(location(&r), "/settings/integrations");
    let settings = |c: &reqwest::Client| c.get(onramp.server.url("/settings/integrations")).send();
    assert_eq!(settings(&laptop).await.unwrap().status(), 200);
    assert_eq!(settings(&onramp.client).await.unwrap().status(), 200);
    let (_, page) = onramp.get("/settings/api-tokens").await;
    assert!(page.contains("Log out everywhere"));
    let r = post(&onramp.client, &onramp, "/api/auth/logout_everywhere", HTML, &[]).await;
    assert_eq!(location(&r), "/login?logged_out=everywhere");
    assert!(settings(&laptop).await.unwrap().status().is_redirection(), "the other device is logged out");
    assert!(settings(&onramp.client).await.unwrap().status().is_redirection(), "and this one");
    let r = post(&onramp.anon, &onramp, "/api/auth/logout_everywhere", JSON, &[]).await;
    assert!(r.status() == 401 || r.status() == 403, "{}", r.status());
}

#[tokio::test]
async fn links_can_only_make_pages_show_numbers() {
    let onramp = spawn_onramp().await;
    let (_, page) = onramp.get("/login?error=limited_%3Cb%3Eyour%20account%20is%20closed%3C%2Fb%3E").await;
    assert!(!page.contains("account is closed"), "no text from the link is shown");
    let (_, page) = onramp.get("/login?error=limited_42").await;
    assert!(page.contains("Try again in 42 seconds"));
    let (_, page) = onramp.get("/integrations/gitlab/step/12?limited=call%20us%20at%20555").await;
    assert!(!page.contains("call us"));
    let (_, page) = onramp.get("/integrations/gitlab?limited=call%20us%20at%20555").await;
    assert!(!page.contains("call us"));
}

#[tokio::test]
async fn a_shared_link_asks_before_linking_into_its_instance() {
    let onramp = spawn_onramp().await;
    let evil = "/integrations/gitlab/step/8?base=https%3A%2F%2Fgitlab-acme.evil";
    for path in [evil, "/integrations/gitlab/step/5?base=https%3A%2F%2Fgitlab-acme.evil"] {
        let body = onramp.anon.get(onramp.server.url(path)).send().await.unwrap().text().await.unwrap();
        assert!(body.contains("Is this your GitLab?"), "{path}");
        assert!(body.contains(r#"<strong class="instance-host">gitlab-acme.evil</strong>"#), "{path}");
        assert!(!body.contains(r#"href="https://gitlab-acme.evil"#), "{path}: no link into it");
        assert!(body.contains("Yes, this is my GitLab"));
    }
    // gitlab.com needs no question
    let (_, body) = onramp.get("/integrations/gitlab/step/8?base=https%3A%2F%2Fgitlab.com").await;
    assert!(!body.contains("Is this your GitLab?") && body.contains(r#"href="https://gitlab.com/-/user_settings"#));
    // a look-alike in another script is called out
    let (_, body) = onramp.get("/integrations/gitlab/step/8?base=https%3A%2F%2Fgit%D0%B0b.acme.com").await;
    assert!(body.contains("mixes letters of different alphabets"));
    // step 12 does not prefill it: the token goes where that field says
    let (_, body) = onramp.get("/integrations/gitlab/step/12?base=https%3A%2F%2Fgitlab-acme.evil").await;
    assert_eq!(input_value(&body, "base_url"), "");
    // Confirmed (a plain form post), it is linked and prefilled, in this browser only.
    let r = post(
        &onramp.client,
        &onramp,
        "/api/wizard/confirm_instance",
        HTML,
        &[("base", "https://gitlab-acme.evil"), ("step", "8")],
    )
    .await;
    assert_eq!(location(&r), evil);
    let cookie = r.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("onramp_gitlab_hosts=gitlab-acme.evil;") && cookie.contains("HttpOnly"), "{cookie}");
    let (_, body) = onramp.get(evil).await;
    assert!(
        !body.contains("Is this your GitLab?") && body.contains(r#"href="https://gitlab-acme.evil/-/user_settings"#)
    );
    let (_, body) = onramp.get("/integrations/gitlab/step/12?base=https%3A%2F%2Fgitlab-acme.evil").await;
    assert_eq!(input_value(&body, "base_url"), "https://gitlab-acme.evil");
    let body = onramp.anon.get(onramp.server.url(evil)).send().await.unwrap().text().await.unwrap();
    assert!(body.contains("Is this your GitLab?"), "another browser still asks");
    // Typing an address on step 11 is confirming it.
    let r = post(
        &onramp.client,
        &onramp,
        "/api/wizard/confirm_instance",
        HTML,
        &[("profile", "https://git.typed.example/jdoe"), ("step", "11")],
    )
    .await;
    assert_eq!(location(&r), "/integrations/gitlab/step/11?profile=https%3A%2F%2Fgit.typed.example%2Fjdoe");
    let (_, body) = onramp.get("/integrations/gitlab/step/12?base=https%3A%2F%2Fgit.typed.example").await;
    assert_eq!(input_value(&body, "base_url"), "https://git.typed.example");
}

#[tokio::test]
async fn a_token_typed_as_the_address_never_reaches_the_logs() {
    let onramp = spawn_onramp().await;
    let mut ids = Vec::new();
    let r = onramp.validate_raw(&[("base_url", "glpat-AddressFieldSecret42"), ("token", "glpat-x")], JSON).await;
    assert_eq!(r.status(), 200);
    ids.push(request_id(&r));
    let r = onramp
        .validate_raw(&[("base_url", "https://h/glpat-AddressFieldSecret43/x"), ("token", "glpat-x")], JSON)
        .await;
    assert_eq!(r.status(), 200);
    ids.push(request_id(&r));
    // A refused connection: the HTTP client's error names the whole URL (found by the fuzzer).
    let r = onramp
        .validate_raw(&[("base_url", "http://127.0.0.1:1/glpat-AddressFieldSecret44"), ("token", "glpat-x")], JSON)
        .await;
    assert_eq!(r.status(), 200);
    ids.push(request_id(&r));
    // The positive controls read this test's own requests' lines: the whole log has every test's.
    let ours = log_of_requests(&ids);
    assert!(ours.contains("outbound request failed"), "the failure was logged: {ours}");
    assert!(ours.contains("gitlab connection check"), "the check was logged: {ours}");
    assert!(!captured_log().contains("AddressFieldSecret"), "but not what looked like a token");
}

#[tokio::test]
async fn a_stored_token_is_never_sent_where_the_database_was_changed_to_point() {
    let gitlab = spawn_fake(FakeGitlab::default()).await;
    let attacker = FakeGitlab::default();
    let attacker_hits = attacker.hits.clone();
    let attacker = spawn_fake(attacker).await;
    let onramp = spawn_onramp().await;
    connect(&onramp, &onramp.client, &gitlab, "glpat-good").await;
    // Someone who can write the database, but has no key, points the connection at their host.
    sqlx::query("UPDATE integrations SET base_url = $1")
        .bind(attacker.url(""))
        .execute(onramp.state.db.pool())
        .await
        .unwrap();
    let r = post(&onramp.client, &onramp, "/api/gitlab/recheck", JSON, &[]).await;
    assert_eq!(r.status(), 200);
    let report: serde_json::Value = r.json().await.unwrap();
    assert_eq!(report["ok"], false);
    assert!(check(&report, "token")["message"].as_str().unwrap().contains("cannot use the stored token"), "{report}");
    let (_, id) = only_connection(&onramp).await;
    let (_, page) = onramp.get(&format!("/integrations/gitlab/connections/{id}")).await;
    assert!(page.contains("cannot use the stored token"), "the connection's page says so");
    // Replacing the token would send the new one to the row's address: refused too.
    let r = post(&onramp.client, &onramp, "/api/gitlab/replace", JSON, &[("token", "glpat-good")]).await;
    assert_eq!(r.status(), 400);
    assert!(attacker_hits.lock().unwrap().is_empty(), "nothing was sent to the attacker's host");
}

#[tokio::test]
async fn a_flood_of_sign_ups_waits_for_a_hashing_slot_or_is_told_to_come_back() {
    // One slot, hardly any wait: most of a burst must be turned away with 503 + Retry-After.
    let data = tempfile::tempdir().unwrap();
    let (_child, server) = start_binary(
        data.path(),
        &[("ONRAMP_HASHES_AT_ONCE", "1"), ("ONRAMP_HASH_WAIT_MS", "1"), ("ONRAMP_SIGNUPS_PER_IP_PER_HOUR", "1000")],
        std::process::Stdio::null(),
    )
    .await;
    let client = reqwest::Client::new();
    let burst = (0..12).map(|i| {
        let (client, url) = (client.clone(), server.url("/api/auth/signup"));
        tokio::spawn(async move {
            let r = client
                .post(url)
                .header("origin", "http://127.0.0.1")
                .header("sec-fetch-site", "same-origin")
                .header("accept", JSON)
                .form(&[("email", format!("flood{i}@example.com")), ("password", PASSWORD.to_owned())])
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned()))
        })
    });
    let mut answers = Vec::new();
    for task in burst.collect::<Vec<_>>() {
        answers.push(task.await.unwrap());
    }
    let busy: Vec<_> = answers.iter().filter(|(s, _)| *s == 503).collect();
    assert!(answers.iter().all(|(s, _)| *s == 200 || *s == 503), "{answers:?}");
    assert!(answers.iter().any(|(s, _)| *s == 200), "some get through: {answers:?}");
    assert!(!busy.is_empty(), "the rest are told to come back: {answers:?}");
    assert!(busy.iter().all(|(_, retry)| retry.as_deref() == Some("2")), "{answers:?}");
}

/// `onramp check` through `HTTP_PROXY=proxy`, with `allow` as the allow-list.
async fn check_through_proxy(proxy: &Running, base: &str, allow: &str) -> (Option<i32>, serde_json::Value) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_onramp"))
        .args(["check", "--json", "--base-url", base])
        .env("HTTP_PROXY", proxy.url(""))
        .env("ONRAMP_GITLAB_TOKEN", "glpat-good")
        .env("ONRAMP_OUTBOUND_ALLOW", allow)
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .env_remove("HTTPS_PROXY")
        .env_remove("ALL_PROXY")
        .output()
        .await
        .unwrap();
    let report =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), report)
}

#[tokio::test]
async fn with_a_proxy_the_guard_still_judges_the_target_first() {
    // The fake GitLab also answers absolute-form requests, as a forward proxy receives them.
    let proxy = FakeGitlab::default();
    let hits = proxy.hits.clone();
    let proxy = spawn_fake(proxy).await;
    // A private address is refused before anything is sent to the proxy.
    let (code, report) = check_through_proxy(&proxy, "http://127.0.0.1:9", "").await;
    assert_eq!(code, Some(1));
    assert_eq!(check(&report, "url")["status"], "fail", "{report}");
    // So is a name Onramp cannot resolve itself, even if the proxy could.
    let (code, _) = check_through_proxy(&proxy, "http://gitlab.only-the-proxy-knows.invalid", "").await;
    assert_eq!(code, Some(1));
    assert!(hits.lock().unwrap().is_empty(), "the proxy saw nothing: {:?}", hits.lock().unwrap().len());
    // An admitted target goes through the proxy (which resolves the name again: see README).
    let (code, report) = check_through_proxy(&proxy, "http://127.0.0.1:9", "127.0.0.1").await;
    assert_eq!(check(&report, "token")["status"], "pass", "{report}");
    assert_eq!(code, Some(0));
    assert!(!hits.lock().unwrap().is_empty(), "the request went through the proxy");
}

#[tokio::test]
async fn odd_request_targets_and_methods_are_answered_not_dropped() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let onramp = spawn_onramp().await;
    // An authority-form target (only CONNECT may use it) once panicked a handler: found by the fuzzer.
    for target in ["127.0.0.1:80", "evil.example:443", "x:1"] {
        let mut tcp = tokio::net::TcpStream::connect(onramp.server.addr).await.unwrap();
        let request = format!("GET {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", onramp.server.addr);
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        tcp.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 400"), "{target}: {answer:?}");
    }
    // Files and the not-found page answer GET and HEAD only.
    for method in ["FOO", "CONNECT", "TRACE", "DELETE"] {
        let r = onramp
            .anon
            .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), onramp.server.url("/robots.txt"))
            .header("sec-fetch-site", "same-origin")
            .send()
            .await
            .unwrap();
        if method == "CONNECT" {
            // sent in authority form by the client: refused as a target without a path
            assert_eq!(r.status(), 400, "{method}");
            continue;
        }
        assert_eq!(r.status(), 405, "{method}");
        assert_eq!(r.headers()["allow"], "GET, HEAD");
    }
}

#[tokio::test]
async fn connection_checks_are_limited_per_address_and_per_user_apart() {
    let onramp =
        spawn_onramp_with(|c| c.settings.checks_per_minute = std::num::NonZeroU32::new(3).expect("non-zero")).await;
    // Jane from two addresses; Mark from Jane's first address and from one of his own.
    let (jane_here, jane_there) = (client_from(&onramp, "127.0.0.3"), client_from(&onramp, "127.0.0.4"));
    let (mark_here, mark_there) = (client_from(&onramp, "127.0.0.3"), client_from(&onramp, "127.0.0.5"));
    enter_at(&jane_here, &onramp.server, "/api/auth/login", "jane@example.com").await;
    enter_at(&jane_there, &onramp.server, "/api/auth/login", "jane@example.com").await;
    enter_at(&mark_here, &onramp.server, "/api/auth/signup", "mark@example.com").await;
    enter_at(&mark_there, &onramp.server, "/api/auth/login", "mark@example.com").await;
    let check = |client: &reqwest::Client| {
        let form = [("base_url", "http://127.0.0.1:1"), ("token", "glpat-x")];
        let request = client.post(onramp.server.url("/api/gitlab/validate")).header("accept", JSON).form(&form);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    for _ in 0..3 {
        assert_eq!(check(&jane_here).await, 200);
    }
    assert_eq!(check(&jane_here).await, 429, "Jane's address and Jane are both used up");
    assert_eq!(check(&jane_there).await, 429, "per user: Jane from another address");
    assert_eq!(check(&mark_here).await, 429, "per address: another user from Jane's address");
    assert_eq!(check(&mark_there).await, 200, "another user from another address");
}

/// The audit rows of one action in the signed-in user's current workspace, newest first.
async fn audit_targets(onramp: &Onramp, action: &str) -> Vec<String> {
    let r = onramp.client.get(onramp.server.url("/api/audit")).header("accept", JSON).send().await.unwrap();
    let events: serde_json::Value = r.json().await.unwrap();
    events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == action)
        .map(|e| e["target"].as_str().unwrap().to_owned())
        .collect()
}

async fn create_token(client: &reqwest::Client, onramp: &Onramp, name: &str) -> (u16, serde_json::Value) {
    let r = post(client, onramp, "/api/tokens/create", JSON, &[("name", name)]).await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

async fn token_count(onramp: &Onramp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM api_tokens").fetch_one(onramp.state.db.pool()).await.unwrap()
}

/// API-token names reach every workspace's audit log: a 2,500-character name is cut to 100 characters
/// (characters, not bytes) there and in the list, a name with a line break or an invisible
/// character is refused with a message and leaves no row, and the page says the limit.
#[tokio::test]
async fn api_token_names_are_one_line_of_at_most_100_characters() {
    let onramp = spawn_onramp().await;
    let long = "é".repeat(2_500); // 5,000 bytes, 15,000 once form-encoded (the body limit is 16 KiB)
    let (status, secret) = create_token(&onramp.client, &onramp, &long).await;
    assert_eq!(status, 200, "{secret}");
    assert_eq!(audit_targets(&onramp, "api_token.created").await, ["é".repeat(100)]);
    let stored: String =
        sqlx::query_scalar("SELECT name FROM api_tokens").fetch_one(onramp.state.db.pool()).await.unwrap();
    assert_eq!(stored, "é".repeat(100));
    for bad in ["nightly\nexport", "a\r\nb", "tab\there", "right\u{202E}lt", "zero\u{200B}width", "nul\u{0}"] {
        let (status, answer) = create_token(&onramp.client, &onramp, bad).await;
        assert_eq!(status, 400, "{bad:?}: {answer}");
        assert!(answer["message"].as_str().unwrap().contains("one line of visible text"), "{answer}");
    }
    assert_eq!(token_count(&onramp).await, 1, "nothing stored for the refused names");
    assert_eq!(audit_targets(&onramp, "api_token.created").await.len(), 1, "nor audited");
    // A browser is sent back to the form, which says why and what the limits are.
    let r = post(&onramp.client, &onramp, "/api/tokens/create", HTML, &[("name", "a\nb")]).await;
    assert_eq!(location(&r), "/settings/api-tokens?error=name_invisible");
    let (_, body) = onramp.get(&location(&r)).await;
    assert!(body.contains("There is a problem") && body.contains("one line of visible text"));
    assert!(body.contains("at most 100 characters") && body.contains(r#"maxlength="100""#));
}

/// An account has at most 20 API tokens (the refusal says so), and creates at most 20 an hour
/// however many it revokes meanwhile (429 with `Retry-After`).
#[tokio::test]
async fn api_tokens_are_capped_per_account_and_their_creation_rate_limited() {
    let onramp = spawn_onramp_with(|c| c.settings.api_tokens_per_hour = std::num::NonZeroU32::new(1000).unwrap()).await;
    for i in 0..20 {
        let (status, answer) = create_token(&onramp.client, &onramp, &format!("t{i}")).await;
        assert_eq!(status, 200, "{answer}");
    }
    let (status, answer) = create_token(&onramp.client, &onramp, "one too many").await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("You have 20 API tokens"), "{answer}");
    assert_eq!(token_count(&onramp).await, 20);
    let r = post(&onramp.client, &onramp, "/api/tokens/create", HTML, &[("name", "x")]).await;
    assert_eq!(location(&r), "/settings/api-tokens?error=too_many");
    let (_, body) = onramp.get(&location(&r)).await;
    assert!(body.contains("You have 20 API tokens"));

    // The rate: the default 20 an hour, revoking in between.
    let onramp = spawn_onramp().await;
    for i in 0..20 {
        let (status, answer) = create_token(&onramp.client, &onramp, &format!("t{i}")).await;
        assert_eq!(status, 200, "{i}: {answer}");
        let id: String =
            sqlx::query_scalar("SELECT id FROM api_tokens").fetch_one(onramp.state.db.pool()).await.unwrap();
        let r = post(&onramp.client, &onramp, "/api/tokens/revoke", JSON, &[("id", &id)]).await;
        assert_eq!(r.status(), 200);
    }
    let r = post(&onramp.client, &onramp, "/api/tokens/create", JSON, &[("name", "t21")]).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let answer: serde_json::Value = r.json().await.unwrap();
    assert!(answer["message"].as_str().unwrap().starts_with("Too many new API tokens"), "{answer}");
    assert_eq!(token_count(&onramp).await, 0, "nothing made");
    let r = post(&onramp.client, &onramp, "/api/tokens/create", HTML, &[("name", "t21")]).await;
    let (_, body) = onramp.get(&location(&r)).await;
    assert!(body.contains("Too many new API tokens. Try again in"), "{}", location(&r));
}
