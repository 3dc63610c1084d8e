//! Black-box tests: Onramp on a random port, fake GitLabs on others, over real HTTP.

use crate::support::*;
use fake_gitlab::FakeGitlab;
use std::time::Duration;

// ---------------------------------------------------------------- pages

#[tokio::test]
async fn every_step_is_server_rendered_with_its_title() {
    let onramp = spawn_onramp().await;
    for n in 1..=13u8 {
        let step = app::wizard::Step::get(n).unwrap();
        let (status, body) = onramp.get(&format!("/integrations/gitlab/step/{n}")).await;
        assert_eq!(status, 200, "step {n}");
        assert!(
            body.contains(&format!("<title>{}</title>", step.document_title().replace('\'', "&#x27;")))
                || body.contains(&format!("<title>{}</title>", step.document_title())),
            "step {n} title"
        );
        assert!(body.contains(&format!("Step {n} of 13")), "step {n} caption");
        assert_eq!(body.matches("<h1").count(), 1, "step {n}: one h1");
        assert_eq!(body.matches(r#"aria-current="step""#).count(), 1, "step {n}: one current step");
        assert_eq!(body.matches("(completed)").count(), usize::from(n - 1), "step {n}: completed steps");
        let back = body.find("back-link").expect("a back link");
        assert!(back < body.find("<main").unwrap(), "step {n}: Back comes before <main>");
        // Links that make sense out of context: where Back and Continue go, for screen readers.
        let to = |m: u8| format!(r#"<span class="visually-hidden"> to step {m}</span>"#);
        assert!(n == 1 || body.contains(&to(n - 1)), "step {n}: Back says where");
        assert!(n > 11 || body.contains(&to(n + 1)), "step {n}: Continue says where");
    }
}

#[tokio::test]
async fn unknown_steps_and_pages_are_404_with_a_way_back() {
    let onramp = spawn_onramp().await;
    for path in [
        "/integrations/gitlab/step/0",
        "/integrations/gitlab/step/14",
        "/integrations/gitlab/step/abc",
        "/integrations/gitlab/step/08",
        "/nope",
        "/integrations/gitlab/step/1/x",
    ] {
        let (status, body) = onramp.get(path).await;
        assert_eq!(status, 404, "{path}");
        assert!(body.contains(r#"href="/integrations/gitlab/step/1""#), "{path} links to step 1");
    }
}

#[tokio::test]
async fn wizard_root_redirects_to_step_one_keeping_base() {
    let onramp = spawn_onramp().await;
    let r =
        onramp.client.get(onramp.server.url("/integrations/gitlab/step?base=gitlab.example.com")).send().await.unwrap();
    assert!(r.status().is_redirection());
    assert_eq!(r.headers()["location"], "/integrations/gitlab/step/1?base=https%3A%2F%2Fgitlab.example.com");
}

#[tokio::test]
async fn base_rides_along_and_deep_links_prefill_the_token_page() {
    let onramp = spawn_onramp().await;
    // Confirmed once in this browser ("Yes, this is my GitLab"): see tests/hardening.rs.
    let r = onramp
        .client
        .post(onramp.server.url("/api/wizard/confirm_instance"))
        .header("accept", "text/html")
        .form(&[("base", "https://git.acme.io:8443/gitlab"), ("step", "8")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/integrations/gitlab/step/8?base=https%3A%2F%2Fgit.acme.io%3A8443%2Fgitlab");
    let (status, body) = onramp.get("/integrations/gitlab/step/8?base=https%3A%2F%2Fgit.acme.io%3A8443%2Fgitlab").await;
    assert_eq!(status, 200);
    assert!(body.contains("https://git.acme.io:8443/gitlab/-/user_settings/personal_access_tokens?name=Onramp&amp;"));
    assert!(body.contains("scopes=api,read_api,read_user,read_repository"));
    assert!(
        body.contains("https://git.acme.io:8443/gitlab/-/profile/personal_access_tokens?"),
        "the older page as fallback"
    );
    assert!(body.contains(
        r#"href="/integrations/gitlab/step/9?base=https%3A%2F%2Fgit.acme.io%3A8443%2Fgitlab" class="button">Continue"#
    ));
    let (_, body) = onramp.get("/integrations/gitlab/step/5?base=https%3A%2F%2Fgit.acme.io").await;
    assert!(body.contains("https://git.acme.io/users/sign_in"));
}

#[tokio::test]
async fn a_bad_base_is_explained_not_ignored() {
    let onramp = spawn_onramp().await;
    let (status, body) = onramp.get("/integrations/gitlab/step/7?base=javascript%3Aalert(1)").await;
    assert_eq!(status, 200);
    assert!(body.contains("<title>Error: Step 7 of 13"));
    assert!(body.contains("There is a problem"));
    assert!(body.contains("Only http:// and https:// addresses can be used"));
    assert!(!body.contains(r#"href="javascript"#));
}

#[tokio::test]
async fn step_11_derives_the_base_url_without_javascript() {
    let onramp = spawn_onramp().await;
    let (_, body) =
        onramp.get("/integrations/gitlab/step/11?profile=https%3A%2F%2Fgit.acme.io%3A8443%2Fgitlab%2Fjdoe%2F").await;
    assert!(body.contains(r#"<strong>https://git.acme.io:8443/gitlab</strong>"#), "derived base shown");
    assert!(body.contains(
        r#"href="/integrations/gitlab/step/12?base=https%3A%2F%2Fgit.acme.io%3A8443%2Fgitlab" class="button">Continue"#
    ));
    let (_, body) = onramp.get("/integrations/gitlab/step/11?profile=gitlab.com").await;
    assert!(body.contains("<title>Error: Step 11 of 13"));
    assert!(body.contains("This address has no user name at the end"));
    assert!(body.contains(r#"value="gitlab.com""#), "what was typed is kept");
}

#[tokio::test]
async fn settings_and_integration_pages_lead_into_the_wizard() {
    let onramp = spawn_onramp().await;
    let (status, body) = onramp.get("/settings/integrations").await;
    assert_eq!(status, 200);
    assert!(body.contains(r#"href="/integrations/gitlab""#) && body.contains(">Integrate<"));
    let (status, body) = onramp.get("/integrations/gitlab").await;
    assert_eq!(status, 200);
    assert!(body.contains(r#"href="/integrations/gitlab/step/5""#) && body.contains(">Integrate GitLab<"));
}

#[tokio::test]
async fn pages_are_compressed_for_browsers_that_accept_it() {
    let onramp = spawn_onramp().await;
    let r = onramp
        .client
        .get(onramp.server.url("/integrations/gitlab/step/1"))
        .header("accept-encoding", "br")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-encoding"], "br");
}

#[tokio::test]
async fn security_headers_on_pages() {
    let onramp = spawn_onramp().await;
    let r = onramp.client.get(onramp.server.url("/integrations/gitlab/step/1")).send().await.unwrap();
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.headers()["referrer-policy"], "same-origin");
    assert!(r.headers()["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
}

// ---------------------------------------------------------------- the connection check

const ALL_PASS: [&str; 8] =
    ["url:pass", "reachable:warn", "gitlab:pass", "token:pass", "user:pass", "scopes:pass", "expiry:pass", "role:pass"];

#[tokio::test]
async fn a_good_token_passes_every_check() {
    let fake = spawn_fake(FakeGitlab::default()).await;
    let onramp = spawn_onramp().await;
    let report = onramp.validate(&fake.url(""), "glpat-good").await;
    assert_eq!(statuses(&report), ALL_PASS, "{report:#}");
    assert_eq!(report["ok"], true);
    assert_eq!(report["base_url"], fake.url(""));
    assert_eq!(report["gitlab_version"], "17.5.1");
    assert_eq!(report["user"]["username"], "jdoe");
    assert_eq!(report["user"]["bot"], false);
    assert!(report["elapsed_ms"].is_u64());
    assert!(check(&report, "role")["message"].as_str().unwrap().contains("2 groups and 5 projects"));
    assert!(
        check(&report, "reachable")["message"].as_str().unwrap().contains("unencrypted"),
        "plain http is a warning"
    );
}

#[tokio::test]
async fn each_token_problem_is_told_apart_with_its_fix_step() {
    let fake = spawn_fake(FakeGitlab::default()).await;
    let onramp = spawn_onramp().await;
    // (token, check, status, fix step, words the message must contain)
    let cases = [
        ("glpat-unknown", "token", "fail", 9, "does not know this token"),
        ("glpat-expired", "token", "fail", 7, "expired"),
        ("glpat-revoked", "token", "fail", 7, "revoked"),
        ("glpat-noscope", "scopes", "fail", 8, "Missing scopes: read_repository"),
        ("glpat-readuser", "scopes", "fail", 8, "Missing scopes: api, read_api, read_repository"),
        ("glpat-blocked", "user", "fail", 5, "blocked"),
        ("glpat-pending", "user", "fail", 5, "approval"),
        ("glpat-deactivated", "user", "fail", 5, "reactivate"),
        ("glpat-unconfirmed", "user", "fail", 5, "not confirmed"),
        ("glpat-terms", "user", "fail", 5, "Terms of Service"),
        ("glpat-password", "user", "fail", 5, "password has expired"),
        ("glpat-soon", "expiry", "warn", 7, "expires in 10 days"),
        ("glpat-guest", "role", "fail", 6, "not Maintainer of any group or project"),
        ("glpat-bot", "user", "warn", 6, "bot user"),
        ("  ", "token", "fail", 9, "Paste the token"),
    ];
    for (token, id, status, fix, words) in cases {
        let report = onramp.validate(&fake.url(""), token).await;
        let c = check(&report, id);
        assert_eq!(c["status"], status, "{token}: {report:#}");
        assert_eq!(c["fix_step"], fix, "{token}");
        assert!(c["message"].as_str().unwrap().contains(words), "{token}: {}", c["message"]);
        assert_eq!(report["ok"], status != "fail", "{token}");
    }
    // All eight checks per persona, in order (url, reachable, gitlab, token, user, scopes, expiry,
    // role): a finding in the wrong place (a blocked account read as an old GitLab) shows here.
    // P pass, W warn, F fail, S skipped; the fake speaks plain http, hence W for reachable.
    let all_eight = [
        ("glpat-good", "PWPPPPPP"),
        ("glpat-unknown", "PWPFSSSS"),
        ("glpat-expired", "PWPFSSSS"),
        ("glpat-revoked", "PWPFSSSS"),
        ("glpat-noscope", "PWPPPFPP"),
        ("glpat-readuser", "PWPPPFPS"),
        ("glpat-blocked", "PWPPFSSS"),
        ("glpat-pending", "PWPPFSSS"),
        ("glpat-deactivated", "PWPPFSSS"),
        ("glpat-unconfirmed", "PWPPFSSS"),
        ("glpat-terms", "PWPPFSSS"),
        ("glpat-password", "PWPPFSSS"),
        ("glpat-soon", "PWPPPPWP"),
        ("glpat-guest", "PWPPPPPF"),
        ("glpat-bot", "PWPPWPPP"),
        ("glpat-noexpiry", "PWPPPPPP"),
        ("  ", "PWPFSSSS"),
    ];
    for (token, expected) in all_eight {
        let report = onramp.validate(&fake.url(""), token).await;
        assert_eq!(letters(&report), expected, "{token}: {report:#}");
        let messages = report["checks"].as_array().unwrap().iter().map(|c| c["message"].as_str().unwrap());
        for message in messages {
            assert!(!message.is_empty() && !message.contains("older than"), "{token}: {message}");
        }
    }
    let report = onramp.validate(&fake.url(""), "glpat-noexpiry").await;
    assert_eq!(check(&report, "expiry")["status"], "pass");
    assert!(check(&report, "expiry")["message"].as_str().unwrap().contains("does not expire"));
    // A blocked account: only the account is blamed; what GitLab refused because of it is not
    // mistaken for an old GitLab or missing scopes.
    let report = onramp.validate(&fake.url(""), "glpat-blocked").await;
    assert_eq!(
        statuses(&report),
        [
            "url:pass",
            "reachable:warn",
            "gitlab:pass",
            "token:pass",
            "user:fail",
            "scopes:skipped",
            "expiry:skipped",
            "role:skipped"
        ],
        "{report:#}"
    );
    assert!(!report.to_string().contains("older than"), "{report:#}");
    // skipped, not failed, after the token is refused
    let report = onramp.validate(&fake.url(""), "glpat-expired").await;
    assert_eq!(check(&report, "scopes")["status"], "skipped");
    assert_eq!(check(&report, "role")["status"], "skipped");
}

#[tokio::test]
async fn gitlab_under_a_subpath_found_from_profile_and_project_urls() {
    let fake = spawn_fake(FakeGitlab { prefix: "/gitlab".into(), ..FakeGitlab::default() }).await;
    let onramp = spawn_onramp().await;
    let base = fake.url("/gitlab");
    for pasted in [
        base.clone(),
        format!("{base}/"),
        format!("{base}/api/v4"),
        format!("{base}/jdoe"),
        format!("{base}/acme/widgets/-/tree/main"),
        format!("{base}/acme/widgets"),
    ] {
        let report = onramp.validate(&pasted, "glpat-good").await;
        assert_eq!(report["ok"], true, "{pasted}: {report:#}");
        assert_eq!(report["base_url"], base, "{pasted}");
        assert_eq!(check(&report, "user")["status"], "pass", "{pasted}: the profile matches");
    }
    let report = onramp.validate(&format!("{base}/alice"), "glpat-good").await;
    assert_eq!(check(&report, "user")["status"], "warn", "someone else's profile");
    // Nothing there at all
    let report = onramp.validate(&fake.url("/elsewhere"), "glpat-good").await;
    assert_eq!(check(&report, "gitlab")["status"], "fail");
    assert!(check(&report, "gitlab")["message"].as_str().unwrap().starts_with("No GitLab answers at"));
}

#[tokio::test]
async fn gitlab_older_than_15_5_infers_what_it_can() {
    let fake = spawn_fake(FakeGitlab { legacy: true, ..FakeGitlab::default() }).await;
    let onramp = spawn_onramp().await;
    let report = onramp.validate(&fake.url(""), "glpat-good").await;
    assert_eq!(report["gitlab_version"], "14.10.5", "from /version");
    assert_eq!(check(&report, "scopes")["status"], "warn");
    assert_eq!(check(&report, "expiry")["status"], "skipped");
    assert_eq!(check(&report, "role")["status"], "pass");
    assert_eq!(report["ok"], true);
}

#[tokio::test]
async fn rate_limits_and_bad_gateways_are_findings_not_errors() {
    let onramp = spawn_onramp().await;
    let limited = spawn_fake(FakeGitlab { fail_status: Some(429), ..FakeGitlab::default() }).await;
    let report = onramp.validate(&limited.url(""), "glpat-good").await;
    assert_eq!(check(&report, "gitlab")["status"], "fail");
    assert!(check(&report, "gitlab")["message"].as_str().unwrap().contains("Try again in 30 seconds"), "{report:#}");
    let broken = spawn_fake(FakeGitlab { fail_status: Some(502), ..FakeGitlab::default() }).await;
    let report = onramp.validate(&broken.url(""), "glpat-good").await;
    assert!(check(&report, "gitlab")["message"].as_str().unwrap().contains("502 Bad Gateway"), "{report:#}");
}

#[tokio::test]
async fn a_server_slower_than_the_timeout() {
    let slow = spawn_fake(FakeGitlab { latency: Duration::from_secs(5), ..FakeGitlab::default() }).await;
    let onramp = spawn_onramp_with(|c| c.outbound.request_timeout = Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let report = onramp.validate(&slow.url(""), "glpat-good").await;
    assert!(started.elapsed() < Duration::from_secs(4), "gave up at the timeout");
    assert_eq!(check(&report, "reachable")["status"], "fail");
    assert!(check(&report, "reachable")["message"].as_str().unwrap().contains("did not answer in time"));
}

#[tokio::test]
async fn an_unknown_host_is_a_dns_failure() {
    let onramp = spawn_onramp().await;
    let report = onramp.validate("https://no-such-gitlab.invalid", "glpat-good").await;
    let reachable = check(&report, "reachable");
    assert_eq!(reachable["status"], "fail");
    assert!(reachable["message"].as_str().unwrap().contains("No such host"), "{reachable}");
    assert_eq!(reachable["fix_step"], 11);
}

#[tokio::test]
async fn nothing_listening_is_a_refused_connection() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let onramp = spawn_onramp().await;
    let report = onramp.validate(&format!("http://127.0.0.1:{port}"), "glpat-good").await;
    assert!(check(&report, "reachable")["message"].as_str().unwrap().contains("refused the connection"), "{report:#}");
}

#[tokio::test]
async fn private_ca_trusted_only_when_given() {
    let (fake, ca_pem) = spawn_tls_fake(FakeGitlab::default()).await;
    let base = format!("https://localhost:{}", fake.addr.port());
    let onramp = spawn_onramp().await;
    let report = onramp.validate(&base, "glpat-good").await;
    let reachable = check(&report, "reachable");
    assert_eq!(reachable["status"], "fail");
    assert!(reachable["message"].as_str().unwrap().contains("not trusted"), "{reachable}");
    assert!(
        reachable["message"].as_str().unwrap().contains("issued by \u{201c}CN=Onramp Test CA\u{201d}"),
        "{reachable}"
    );
    let r = onramp
        .validate_raw(&[("base_url", &base), ("token", "glpat-good"), ("ca_pem", &ca_pem)], "application/json")
        .await;
    let report: serde_json::Value = r.json().await.unwrap();
    assert_eq!(report["ok"], true, "{report:#}");
    assert_eq!(check(&report, "reachable")["status"], "pass");
    let r = onramp
        .validate_raw(&[("base_url", &base), ("token", "glpat-good"), ("ca_pem", "not a pem")], "application/json")
        .await;
    let report: serde_json::Value = r.json().await.unwrap();
    assert!(check(&report, "reachable")["message"].as_str().unwrap().contains("CA certificate"), "{report:#}");
}

#[tokio::test]
async fn the_guard_refuses_private_addresses_by_ip_and_by_name() {
    let onramp = spawn_onramp_with(|c| c.outbound.guard = Default::default()).await;
    let cases = [
        ("http://127.0.0.1:9", "loopback"),
        ("http://169.254.169.254", "link-local addresses (169.254.169.254)"),
        ("http://10.0.0.1", "private"),
        ("http://172.16.5.4", "private"),
        ("http://192.168.1.1", "private"),
        ("http://100.64.0.1", "carrier-grade NAT"),
        ("http://0.0.0.0", "unspecified"),
        ("http://224.0.0.1", "multicast"),
        ("http://[::1]", "loopback"),
        ("http://[::ffff:127.0.0.1]", "loopback"),
        ("http://[::ffff:169.254.169.254]", "link-local"),
        ("http://[fd00::1]", "private"),
        ("http://[fe80::1]", "link-local"),
        ("http://localhost:9", "loopback"),
    ];
    for (base, words) in cases {
        let report = onramp.validate(base, "glpat-good").await;
        let url = check(&report, "url");
        assert_eq!(url["status"], "fail", "{base}: {report:#}");
        assert!(url["message"].as_str().unwrap().contains(words), "{base}: {}", url["message"]);
        assert_eq!(url["fix_step"], 11);
        assert_eq!(check(&report, "reachable")["status"], "skipped", "{base}: nothing was sent");
    }
}

#[tokio::test]
async fn redirects_are_reported_and_never_followed_with_the_token() {
    let elsewhere_fake = FakeGitlab::default();
    let elsewhere = spawn_fake(elsewhere_fake.clone()).await;
    let origin = format!("http://localhost:{}", elsewhere.addr.port());
    let redirecting = spawn_fake(FakeGitlab { redirect_to: Some(origin.clone()), ..FakeGitlab::default() }).await;
    let onramp = spawn_onramp_with(|c| {
        c.outbound.guard = app::gitlab::guard::OutboundGuard::parse("127.0.0.0/8, ::1/128").unwrap()
    })
    .await;
    let report = onramp.validate(&redirecting.url(""), "glpat-good").await;
    let reachable = check(&report, "reachable");
    assert_eq!(reachable["status"], "fail", "{report:#}");
    assert!(reachable["message"].as_str().unwrap().contains(&format!("use {origin} as the base URL")), "{reachable}");
    assert!(elsewhere_fake.hits().is_empty(), "the redirect target saw: {:?}", elsewhere_fake.hits());
}

#[tokio::test]
async fn the_check_takes_one_round_trip_when_the_base_is_right() {
    // Each answer takes a while: five requests sent one after the other would never overlap.
    let fake_gitlab = FakeGitlab { latency: Duration::from_millis(500), ..FakeGitlab::default() };
    let fake = spawn_fake(fake_gitlab.clone()).await;
    let onramp = spawn_onramp().await;
    onramp.validate(&fake.url(""), "glpat-good").await;
    let paths: Vec<String> = fake_gitlab.hits().into_iter().map(|h| h.path).collect();
    assert_eq!(paths.len(), 5, "{paths:?}");
    assert_eq!(fake_gitlab.most_at_once(), 5, "all five were in flight together: one round trip");
}

// ---------------------------------------------------------------- the API contract

#[tokio::test]
async fn the_token_is_in_no_answer_url_page_or_log() {
    let fake = spawn_fake(FakeGitlab::default()).await;
    let onramp = spawn_onramp().await;
    let secret = "glpat-Sup3rSecretValue-do-not-leak";
    let mut ids = Vec::new();
    for token in ["glpat-good", secret] {
        // JSON
        let r = onramp.validate_raw(&[("base_url", &fake.url("")), ("token", token)], "application/json").await;
        ids.push(request_id(&r));
        let body = r.text().await.unwrap();
        assert!(!body.contains(token), "JSON answer");
        // A browser without JavaScript: redirect, then the result page.
        let r = onramp
            .validate_raw(&[("base_url", &fake.url("")), ("token", token)], "text/html,application/xhtml+xml")
            .await;
        assert!(r.status().is_redirection(), "{}", r.status());
        let location = r.headers()["location"].to_str().unwrap().to_owned();
        assert!(!location.contains(token), "redirect URL");
        let (status, page) = onramp.get(&location).await;
        assert_eq!(status, 200);
        assert!(!page.contains(token), "result page");
    }
    // The positive control reads the lines of this test's own checks (by their request ids).
    assert!(log_of_requests(&ids).contains("gitlab connection check"), "the checks are logged");
    let log = captured_log();
    assert!(!log.contains(secret) && !log.contains("Sup3rSecret"), "the token is never logged");
}

#[tokio::test]
async fn without_javascript_warnings_need_one_more_click_and_failures_go_back_to_12() {
    let fake = spawn_fake(FakeGitlab::default()).await;
    let onramp = spawn_onramp().await;
    let html = "text/html";
    // Plain http is a warning: the page asks before saving.
    let r = onramp.validate_raw(&[("base_url", &fake.url("")), ("token", "glpat-good")], html).await;
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("/integrations/gitlab/step/12?base="), "{location}");
    let (_, page) = onramp.get(&location).await;
    assert!(page.contains("Integrate anyway"));
    assert!(page.contains("unencrypted"));
    assert!(!page.contains("glpat-good"));
    let check_id = location.split("check=").nth(1).unwrap().to_owned();
    let r = onramp
        .client
        .post(onramp.server.url("/api/gitlab/accept"))
        .header("accept", html)
        .form(&[("check", check_id.as_str())])
        .send()
        .await
        .unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("/integrations/gitlab/step/13"), "{location}");
    let (_, page) = onramp.get(&location).await;
    assert!(page.contains("You have successfully integrated GitLab"));
    assert!(page.contains("@jdoe"));
    assert!(page.contains(&fake.url("")));
    assert!(page.contains("…good"), "only the last four characters of the token");

    let r = onramp.validate_raw(&[("base_url", &fake.url("")), ("token", "glpat-noscope")], html).await;
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("/integrations/gitlab/step/12?base="), "{location}");
    let (_, page) = onramp.get(&location).await;
    assert!(page.contains("<title>Error: Step 12 of 13"));
    assert!(page.contains("There is a problem"));
    assert!(page.contains("Missing scopes: read_repository"));
    assert!(page.contains("Fix this in step 8"));
    assert!(!page.contains("Integrate anyway"));
    assert!(page.contains(&format!(r#"value="{}""#, fake.url(""))), "the base URL typed is kept");

    let r = onramp.validate_raw(&[("base_url", "ftp://x"), ("token", "glpat-good")], html).await;
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let (_, page) = onramp.get(&location).await;
    assert!(page.contains(r##"href="#base_url""##), "the summary links to the field");
    assert!(page.contains(r#"value="ftp://x""#));
}

#[tokio::test]
async fn malformed_requests_are_400_and_floods_429() {
    let onramp = spawn_onramp_with(|c| c.settings.checks_per_minute = std::num::NonZeroU32::new(3).unwrap()).await;
    let r = onramp.validate_raw(&[("token", "x")], "application/json").await;
    assert_eq!(r.status(), 400);
    let r = onramp
        .client
        .post(onramp.server.url("/api/gitlab/validate"))
        .body("%%%&&base_url[x]=1")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "garbage is a 400, never a 500");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "bad_request");
    for _ in 0..2 {
        let r = onramp.validate_raw(&[("base_url", "http://10.0.0.1"), ("token", "x")], "application/json").await;
        assert_eq!(r.status(), 200, "within the limit");
    }
    let r = onramp.validate_raw(&[("base_url", "http://10.0.0.1"), ("token", "x")], "application/json").await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "rate_limited");
}

// ---------------------------------------------------------------- the command line

#[tokio::test]
async fn onramp_check_prints_the_report_and_exits_by_outcome() {
    let fake = spawn_fake(FakeGitlab::default()).await;
    let run = |token: &'static str, args: Vec<String>| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_onramp"));
        cmd.arg("check").args(args).env("ONRAMP_OUTBOUND_ALLOW", "127.0.0.1").env("ONRAMP_GITLAB_TOKEN", token);
        async move { cmd.output().await.unwrap() }
    };
    let out = run("glpat-good", vec!["--base-url".into(), fake.url("")]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("PASS  scopes"), "{stdout}");
    assert!(stdout.contains("Connected: no check failed."));
    let out = run("glpat-expired", vec!["--base-url".into(), fake.url(""), "--json".into()]).await;
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(check(&report, "token")["status"], "fail");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("glpat-expired"));
    let out = run("glpat-good", vec![]).await;
    assert_eq!(out.status.code(), Some(2), "missing --base-url is a usage error");
}

#[tokio::test]
async fn onramp_check_into_a_closed_pipe_exits_quietly() {
    // `onramp check … | head -1`: the reader is gone before the report is written.
    let fake = spawn_fake(FakeGitlab::default()).await;
    for token in ["glpat-good", "glpat-expired"] {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_onramp"))
            .args(["check", "--base-url", &fake.url("")])
            .env("ONRAMP_OUTBOUND_ALLOW", "127.0.0.1")
            .env("ONRAMP_GITLAB_TOKEN", token)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // the read end closes at once
        let out = child.wait_with_output().await.unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{stderr}");
        let expected = if token == "glpat-good" { 0 } else { 1 };
        assert_eq!(out.status.code(), Some(expected), "the exit code still tells the outcome");
    }
}

#[tokio::test]
async fn an_https_address_of_a_plain_http_server_is_told_as_such() {
    let fake = spawn_fake(FakeGitlab::default()).await;
    let onramp = spawn_onramp().await;
    let plain = fake.url("");
    let host_port = plain.trim_start_matches("http://").to_owned();
    // typed with https://, and bare (which means https://)
    for typed in [format!("https://{host_port}"), host_port.clone()] {
        let report = onramp.validate(&typed, "glpat-good").await;
        let reachable = check(&report, "reachable");
        assert_eq!(reachable["status"], "fail", "{report}");
        let message = reachable["message"].as_str().unwrap();
        assert!(message.contains("answers plain HTTP"), "{message}");
        assert!(message.contains(&plain), "suggests the http:// address: {message}");
        assert!(!message.contains("InvalidContentType"), "{message}");
    }
}

#[tokio::test]
async fn the_double_filters_and_pages_as_gitlab_does() {
    let fake = spawn_fake(FakeGitlab::default()).await;
    let client = reqwest::Client::new();
    let get = |query: &str| {
        let request = client.get(fake.url(&format!("/api/v4/projects?{query}"))).header("private-token", "glpat-good");
        async move {
            let r = request.send().await.unwrap();
            let header = |k: &str| r.headers().get(k).map(|v| v.to_str().unwrap().to_owned());
            let headers =
                (header("x-total"), header("x-page"), header("x-next-page"), header("link").unwrap_or_default());
            (headers, r.json::<serde_json::Value>().await.unwrap())
        }
    };
    // Every membership with membership=true, every visible project (a stranger's public one too)
    // without a filter (projects_finder.rb); only Maintainer and above with min_access_level=40.
    let ((total, ..), _) = get("membership=true&per_page=1").await;
    assert_eq!(total.as_deref(), Some("8"));
    let ((total, ..), _) = get("per_page=1").await;
    assert_eq!(total.as_deref(), Some("9"));
    let ((total, ..), _) = get("min_access_level=40&per_page=1").await;
    assert_eq!(total.as_deref(), Some("5"));
    // Pages: the last one has an empty x-next-page and no rel="next".
    let ((_, page, next, link), items) = get("membership=true&per_page=3&page=1").await;
    assert_eq!((page.as_deref(), next.as_deref(), items.as_array().unwrap().len()), (Some("1"), Some("2"), 3));
    assert!(link.contains("rel=\"next\""), "{link}");
    let ((_, page, next, link), items) = get("membership=true&per_page=3&page=3").await;
    assert_eq!((page.as_deref(), next.as_deref(), items.as_array().unwrap().len()), (Some("3"), Some(""), 2));
    assert!(!link.contains("rel=\"next\""), "{link}");
}

#[tokio::test]
async fn a_profile_pasted_by_another_address_of_the_same_gitlab_is_the_users() {
    // GitLab's web_url comes from its external URL; people paste the address they reach it by.
    let fake = spawn_fake(FakeGitlab {
        external_url: Some("https://gitlab.internal.example".into()),
        ..FakeGitlab::default()
    })
    .await;
    let onramp = spawn_onramp().await;
    let report = onramp.validate(&fake.url("/jdoe"), "glpat-good").await;
    assert_eq!(report["user"]["web_url"], "https://gitlab.internal.example/jdoe");
    assert_eq!(check(&report, "user")["status"], "pass", "{report:#}");
    let report = onramp.validate(&fake.url("/JDoe/"), "glpat-good").await;
    assert_eq!(check(&report, "user")["status"], "pass", "user names are case-insensitive: {report:#}");
    let report = onramp.validate(&fake.url("/alice"), "glpat-good").await;
    assert_eq!(check(&report, "user")["status"], "warn", "another user's profile is still told");
}

#[tokio::test]
async fn gitlab_15_2_to_15_4_private_instances_and_one_rate_limited_list() {
    let onramp = spawn_onramp().await;
    // /metadata (15.2+) but no /personal_access_tokens/self (15.5+): 401 or 404 for a good token.
    for status in [401, 404] {
        let fake = spawn_fake(FakeGitlab { no_token_self: Some(status), ..FakeGitlab::default() }).await;
        let report = onramp.validate(&fake.url(""), "glpat-good").await;
        assert_eq!(letters(&report), "PWPPPWSP", "{status}: {report:#}");
        assert_eq!(report["ok"], true);
        assert!(check(&report, "scopes")["message"].as_str().unwrap().contains("older than 15.5"));
    }
    // A private instance: the pasted profile page redirects to sign-in; the API is still found.
    let fake = spawn_fake(FakeGitlab { sign_in_only: true, ..FakeGitlab::default() }).await;
    let report = onramp.validate(&fake.url("/jdoe"), "glpat-good").await;
    assert_eq!(letters(&report), "PWPPPPPP", "{report:#}");
    assert_eq!(report["base_url"], fake.url(""));
    // gitlab.com rate-limits /groups alone: the projects settle the role, the 429 is mentioned.
    let fake = spawn_fake(FakeGitlab { rate_limited_path: Some("/groups"), ..FakeGitlab::default() }).await;
    let report = onramp.validate(&fake.url(""), "glpat-good").await;
    assert_eq!(letters(&report), "PWPPPPPP", "{report:#}");
    let role = check(&report, "role")["message"].as_str().unwrap().to_owned();
    assert!(role.contains("5 projects") && role.contains("429"), "{role}");
    // ...but a Guest gets no pass from a list that did not answer.
    let report = onramp.validate(&fake.url(""), "glpat-guest").await;
    assert_eq!(check(&report, "role")["status"], "fail", "{report:#}");
}

/// Steps 5–11 each show a drawing of the GitLab screen with its markers named; the address bar
/// shows the reader's GitLab once it is confirmed (gitlab.com always is), never an unconfirmed
/// one from a link; Onramp's own steps have none.
#[tokio::test]
async fn every_gitlab_step_has_its_figure_with_the_readers_gitlab_once_confirmed() {
    let onramp = spawn_onramp().await;
    let figure_of =
        |page: &str| page.split("<figure").nth(1).and_then(|f| f.split("</figure>").next()).map(str::to_owned);
    for n in 5..=11 {
        let (status, page) = onramp.get(&format!("/integrations/gitlab/step/{n}?base=https%3A%2F%2Fgitlab.com")).await;
        assert_eq!(status, 200);
        let figure = figure_of(&page).unwrap_or_else(|| panic!("step {n} has no figure"));
        assert!(figure.contains(r#"role="img" aria-labelledby="figure-title figure-desc""#), "step {n}");
        assert!(figure.contains("<figcaption>") && figure.contains("<ol class=\"figure-markers\"><li>"), "step {n}");
        let address = if n == 11 {
            r#"<text class="f-url" x="0" y="16"><tspan class="f-base">https://gitlab.com</tspan><tspan class="f-name">/jdoe</tspan>"#
        } else {
            r#"<text class="f-url" x="0" y="16">https://gitlab.com/"#
        };
        assert!(figure.contains(address), "step {n}: {figure}");
    }
    let (_, step8) = onramp.get("/integrations/gitlab/step/8?base=https%3A%2F%2Fgitlab.com").await;
    let figure = figure_of(&step8).unwrap();
    for scope in ["api", "read_api", "read_user", "read_repository"] {
        assert!(figure.contains(&format!("<li>{scope}</li>")), "{scope}");
    }
    // A link's instance that the reader has not confirmed is not drawn as theirs.
    let (_, page) = onramp.get("/integrations/gitlab/step/8?base=https%3A%2F%2Fgit.lookalike.example").await;
    let figure = figure_of(&page).unwrap();
    assert!(figure.contains("https://gitlab.example.com/") && !figure.contains("lookalike"), "{figure}");
    for n in [1, 4, 13] {
        let (_, page) = onramp.get(&format!("/integrations/gitlab/step/{n}")).await;
        assert!(figure_of(&page).is_none(), "step {n} happens in Onramp");
    }
}
