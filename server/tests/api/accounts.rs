//! Accounts, saved integrations and their protection, black-box over HTTP. Runs against SQLite,
//! and against PostgreSQL when `ONRAMP_TEST_DATABASE_URL` is set (`make unit` does both).

use crate::support::*;
use fake_gitlab::FakeGitlab;

const HTML: &str = "text/html";

async fn get(client: &reqwest::Client, onramp: &Onramp, path: &str) -> (u16, String, Option<String>) {
    let r = client.get(onramp.server.url(path)).send().await.unwrap();
    let location = r.headers().get("location").map(|l| l.to_str().unwrap().to_owned());
    (r.status().as_u16(), r.text().await.unwrap(), location)
}

#[tokio::test]
async fn runs_on_the_database_it_was_given() {
    let onramp = spawn_onramp().await;
    let expected = if std::env::var("ONRAMP_TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
        app::store::DbKind::Postgres
    } else {
        app::store::DbKind::Sqlite
    };
    assert_eq!(onramp.state.db.kind(), expected);
}

#[tokio::test]
async fn logged_out_visitors_are_sent_to_log_in_and_back() {
    let onramp = spawn_onramp().await;
    for n in 1..=11 {
        let (status, _, _) = get(&onramp.anon, &onramp, &format!("/integrations/gitlab/step/{n}")).await;
        assert_eq!(status, 200, "step {n} is public");
    }
    for path in [
        "/integrations/gitlab/step/12?base=https%3A%2F%2Fgitlab.com",
        "/integrations/gitlab/step/13",
        "/settings/integrations",
        "/integrations/gitlab",
        "/settings/api-tokens",
    ] {
        let (status, _, location) = get(&onramp.anon, &onramp, path).await;
        assert!((300..400).contains(&status), "{path}: {status}");
        let next: String = url::form_urlencoded::byte_serialize(path.as_bytes()).collect();
        assert_eq!(location.unwrap(), format!("/login?next={next}"), "{path}");
    }
    let r = onramp
        .anon
        .post(onramp.server.url("/api/gitlab/validate"))
        .header("accept", "application/json")
        .header("origin", format!("http://{}", onramp.server.addr))
        .form(&[("base_url", "https://gitlab.com"), ("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["error"], "unauthorized");
    let r = onramp.anon.get(onramp.server.url("/api/integrations")).send().await.unwrap();
    assert_eq!(r.status(), 401);

    // Log in from the login page: back to the page asked for, only if it is on this site.
    let visitor = browser_client(&onramp.server);
    for (next, expected) in [
        ("/integrations/gitlab/step/12?base=x", "/integrations/gitlab/step/12?base=x"),
        ("https://evil.example/", "/settings/integrations"),
        ("//evil.example", "/settings/integrations"),
    ] {
        let r = visitor
            .post(onramp.server.url("/api/auth/login"))
            .header("accept", HTML)
            .form(&[("email", "jane@example.com"), ("password", PASSWORD), ("next", next)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["location"], expected, "next={next}");
    }
}

#[tokio::test]
async fn sessions_rotate_at_log_in_and_end_at_log_out() {
    let onramp = spawn_onramp().await;
    let visitor = browser_client(&onramp.server);
    let login = || async {
        let r = visitor
            .post(onramp.server.url("/api/auth/login"))
            .header("accept", HTML)
            .form(&[("email", "jane@example.com"), ("password", PASSWORD)])
            .send()
            .await
            .unwrap();
        let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
        assert!(!cookie.contains("Secure"), "plain http on loopback keeps working");
        cookie.split(';').next().unwrap().to_owned()
    };
    let first = login().await;
    let second = login().await;
    assert_ne!(first, second, "a new session id at each log-in");
    let stale = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = stale.get(onramp.server.url("/settings/integrations")).header("cookie", &first).send().await.unwrap();
    assert!(r.status().is_redirection(), "the old session ended when the new one began");
    let r = stale.get(onramp.server.url("/settings/integrations")).header("cookie", &second).send().await.unwrap();
    assert_eq!(r.status(), 200);
    visitor.post(onramp.server.url("/api/auth/logout")).header("accept", HTML).send().await.unwrap();
    let r = stale.get(onramp.server.url("/settings/integrations")).header("cookie", &second).send().await.unwrap();
    assert!(r.status().is_redirection(), "logged out");

    // X-Forwarded-Proto from a peer nobody said to trust changes nothing.
    let https = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let login_via_proxy = |onramp: &Onramp| {
        https
            .post(onramp.server.url("/api/auth/login"))
            .header("accept", HTML)
            .header("origin", format!("http://{}", onramp.server.addr))
            .header("x-forwarded-proto", "https")
            .form(&[("email", "jane@example.com"), ("password", PASSWORD)])
            .send()
    };
    let r = login_via_proxy(&onramp).await.unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("onramp_session=") && !cookie.contains("Secure"), "{cookie}");

    // Behind a trusted proxy that terminates TLS: Secure, and the __Host- name a sibling
    // subdomain cannot set.
    let behind_proxy = spawn_onramp_with(|c| {
        c.settings.trusted_proxies = app::client::TrustedProxies::parse("127.0.0.1").unwrap();
    })
    .await;
    let r = login_via_proxy(&behind_proxy).await.unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("__Host-onramp_session="), "{cookie}");
    assert!(cookie.contains("; Secure") && cookie.contains("Path=/") && !cookie.contains("Domain"), "{cookie}");
    let session = cookie.split(';').next().unwrap().to_owned();
    let page = |cookie: String| {
        https
            .get(behind_proxy.server.url("/settings/integrations"))
            .header("x-forwarded-proto", "https")
            .header("cookie", cookie)
            .send()
    };
    assert_eq!(page(session.clone()).await.unwrap().status(), 200, "the __Host- session works over https");
    // the same secret under the plain name (as a sibling subdomain could plant it) is not a session
    let planted = session.replacen("__Host-onramp_session", "onramp_session", 1);
    assert!(page(planted).await.unwrap().status().is_redirection(), "a cookie without the prefix is ignored");
}

#[tokio::test]
async fn sign_up_and_log_in_explain_mistakes() {
    let onramp = spawn_onramp().await;
    let visitor = browser_client(&onramp.server);
    let cases = [
        ("/api/auth/signup", "not-an-email", PASSWORD, "error=email_format"),
        ("/api/auth/signup", "jane@example.com", "not jane's password", "error=email_taken"),
        ("/api/auth/signup", "new@example.com", "tiny-pw", "error=password_short"),
        ("/api/auth/login", "jane@example.com", "wrong password!", "error=invalid"),
    ];
    for (path, email, password, expected) in cases {
        let r = visitor
            .post(onramp.server.url(path))
            .header("accept", HTML)
            .form(&[("email", email), ("password", password)])
            .send()
            .await
            .unwrap();
        // A browser without JavaScript follows only a real redirect, never a 400 with Location.
        assert_eq!(r.status(), 302, "{path} {email}");
        let location = r.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.contains(expected), "{path} {email}: {location}");
        assert!(!location.contains(password), "the password is never in a URL");
        let (_, page, _) = get(&visitor, &onramp, &location).await;
        assert!(page.contains("<title>Error: "), "{location}");
        assert!(page.contains("There is a problem"));
    }
}

#[tokio::test]
async fn failed_log_ins_are_rate_limited_per_account() {
    let onramp = spawn_onramp().await;
    let visitor = browser_client(&onramp.server);
    let mut limited = None;
    for _ in 0..8 {
        let r = visitor
            .post(onramp.server.url("/api/auth/login"))
            .header("accept", "application/json")
            .form(&[("email", "jane@example.com"), ("password", "guess guess guess")])
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            limited = Some(r.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap());
            break;
        }
        assert_eq!(r.status(), 401);
    }
    let wait = limited.expect("rate-limited after a few attempts");
    assert!((1..=60).contains(&wait));
}

#[tokio::test]
async fn save_recheck_replace_and_disconnect() {
    let fake = spawn_fake(FakeGitlab::default()).await;
    let onramp = spawn_onramp().await;
    let page = connect(&onramp, &onramp.client, &fake, "glpat-good").await;
    assert!(page.contains("You have successfully integrated GitLab"));

    let (_, settings, _) = get(&onramp.client, &onramp, "/settings/integrations").await;
    assert!(settings.contains("Connected") && settings.contains("@jdoe"));
    assert!(settings.contains("Token expires in"), "expiry countdown");

    let list: serde_json::Value =
        onramp.client.get(onramp.server.url("/api/integrations")).send().await.unwrap().json().await.unwrap();
    assert_eq!(list[0]["username"], "jdoe");
    assert_eq!(list[0]["token_last4"], "good");
    assert!(!list.to_string().contains("glpat-good"));

    let id = list[0]["id"].as_str().unwrap().to_owned();
    let page = format!("/integrations/gitlab/connections/{id}");

    // Re-check now (the workspace's only connection: the id may be left out).
    let r = onramp.client.post(onramp.server.url("/api/gitlab/recheck")).header("accept", HTML).send().await.unwrap();
    assert_eq!(r.headers()["location"].to_str().unwrap(), format!("{page}?rechecked=1"));
    let (_, manage, _) = get(&onramp.client, &onramp, &format!("{page}?rechecked=1")).await;
    assert!(manage.contains("Checked again"));

    // Replace with a bad token: refused, the old one stays.
    let r = onramp
        .client
        .post(onramp.server.url("/api/gitlab/replace"))
        .header("accept", HTML)
        .form(&[("id", id.as_str()), ("token", "glpat-expired")])
        .send()
        .await
        .unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let (_, manage, _) = get(&onramp.client, &onramp, &location).await;
    assert!(manage.contains("The new token was not saved") && manage.contains("expired"), "{location}");
    assert!(manage.contains("…good"));
    // Replace with a good one (it expires soon: saved, and warned about).
    let r = onramp
        .client
        .post(onramp.server.url("/api/gitlab/replace"))
        .header("accept", HTML)
        .form(&[("id", id.as_str()), ("token", "glpat-soon")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"].to_str().unwrap(), format!("{page}?replaced=1"));
    let (_, manage, _) = get(&onramp.client, &onramp, &format!("{page}?replaced=1")).await;
    assert!(manage.contains("…soon"));
    // It expires in 10 days, and Onramp may rotate it (api scope, GitLab 17.5): nothing to do.
    assert!(manage.contains("Onramp rotates the token before it expires"), "{manage}");
    assert!(manage.contains("It expires in 10 days"), "{manage}");

    // Disconnect: asks first, then deletes.
    let (status, confirm, _) = get(&onramp.client, &onramp, &format!("{page}/disconnect")).await;
    assert_eq!(status, 200);
    assert!(confirm.contains("Yes, disconnect"));
    let r = onramp
        .client
        .post(onramp.server.url("/api/gitlab/disconnect"))
        .header("accept", HTML)
        .form(&[("id", id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/integrations/gitlab?disconnected=1");
    let (status, _, _) = get(&onramp.client, &onramp, &page).await;
    assert_eq!(status, 404, "the connection's page is gone with it");
    let list: serde_json::Value =
        onramp.client.get(onramp.server.url("/api/integrations")).send().await.unwrap().json().await.unwrap();
    assert_eq!(list, serde_json::json!([]));
}

#[tokio::test]
async fn nobody_reaches_another_users_integration() {
    let fake = spawn_fake(FakeGitlab::default()).await;
    let onramp = spawn_onramp().await;
    // Jane connects, and leaves a kept check with a token behind.
    connect(&onramp, &onramp.client, &fake, "glpat-good").await;
    let r = onramp
        .client
        .post(onramp.server.url("/api/gitlab/validate"))
        .header("accept", HTML)
        .form(&[("base_url", fake.url("").as_str()), ("token", "glpat-soon")])
        .send()
        .await
        .unwrap();
    let janes_check = r.headers()["location"].to_str().unwrap().split("check=").nth(1).unwrap().to_owned();
    let token: String = onramp.create_api_token("jane's script").await;
    let tokens_page =
        onramp.client.get(onramp.server.url("/settings/api-tokens")).send().await.unwrap().text().await.unwrap();
    let janes_token_id =
        tokens_page.split(r#"name="id" value=""#).nth(1).unwrap().split('"').next().unwrap().to_owned();

    // Mallory has an account of her own.
    let mallory = browser_client(&onramp.server);
    onramp.sign_up(&mallory, "mallory@example.com").await;
    let (_, page, _) = get(&mallory, &onramp, &format!("/integrations/gitlab/step/12?check={janes_check}")).await;
    assert!(!page.contains("Connection check") && !page.contains("jdoe"), "Jane's report is not shown to Mallory");
    let r = mallory
        .post(onramp.server.url("/api/gitlab/accept"))
        .header("accept", "application/json")
        .form(&[("check", janes_check.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "Mallory cannot save Jane's kept token");
    // Aimed at Jane's connection by its id, with a token of Mallory's own: not found, and nothing
    // about Jane in the answer. Without an id: Mallory's workspace has no connection.
    let (_, janes_id) = only_connection(&onramp).await;
    let janes_row = || async {
        sqlx::query_as::<_, (String, i64, i64)>("SELECT token_last4, updated_at, last_check_at FROM integrations")
            .fetch_one(onramp.state.db.pool())
            .await
            .unwrap()
    };
    let before = janes_row().await;
    for path in ["/api/gitlab/recheck", "/api/gitlab/replace", "/api/gitlab/disconnect", "/api/gitlab/rotate"] {
        for form in [vec![("id", janes_id.as_str()), ("token", "glpat-soon")], vec![("token", "glpat-soon")]] {
            let r = mallory
                .post(onramp.server.url(path))
                .header("accept", "application/json")
                .form(&form)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 404, "{path} {form:?}");
            let body = r.text().await.unwrap();
            assert!(!body.contains("jdoe") && !body.contains(&fake.url("")), "{path}: {body}");
        }
    }
    assert_eq!(janes_row().await, before, "Jane's connection is unchanged");
    let r = mallory
        .post(onramp.server.url("/api/tokens/revoke"))
        .header("accept", "application/json")
        .form(&[("id", janes_token_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let list: serde_json::Value =
        mallory.get(onramp.server.url("/api/integrations")).send().await.unwrap().json().await.unwrap();
    assert_eq!(list, serde_json::json!([]));
    let (_, settings, _) = get(&mallory, &onramp, "/settings/integrations").await;
    assert!(!settings.contains("Connected"));

    // Jane's connection and token are untouched.
    let list: serde_json::Value = onramp
        .anon
        .get(onramp.server.url("/api/integrations"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["username"], "jdoe");
}

#[tokio::test]
async fn cross_site_requests_are_refused_api_tokens_need_no_origin() {
    let onramp = spawn_onramp().await;
    let session = onramp.client.get(onramp.server.url("/settings/integrations")).send().await.unwrap();
    assert_eq!(session.status(), 200);
    // A forged form from another site, with the victim's cookie.
    let jar_client = onramp.client.clone();
    for origin in ["http://evil.example", "null"] {
        let r = jar_client
            .post(onramp.server.url("/api/gitlab/disconnect"))
            .header("origin", origin)
            .header("accept", HTML)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "Origin {origin}");
    }
    let r = jar_client
        .post(onramp.server.url("/api/tokens/create"))
        .header("origin", "http://evil.example")
        .header("sec-fetch-site", "cross-site")
        .form(&[("name", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Same-origin fetches without Origin but with Sec-Fetch-Site pass.
    let plain =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).cookie_store(true).build().unwrap();
    onramp.sign_up(&browser_client(&onramp.server), "x@example.com").await;
    let r = plain
        .post(onramp.server.url("/api/auth/login"))
        .header("sec-fetch-site", "same-origin")
        .header("accept", HTML)
        .form(&[("email", "x@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection());
    let r = plain
        .post(onramp.server.url("/api/auth/login"))
        .header("accept", HTML)
        .form(&[("email", "x@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "no Origin, no Sec-Fetch-Site: refused");

    // Scripts: an API token, no Origin needed.
    let token: String = onramp
        .client
        .post(onramp.server.url("/api/tokens/create"))
        .header("accept", "application/json")
        .form(&[("name", "ci")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(token.starts_with("onr_"));
    let r = onramp
        .anon
        .post(onramp.server.url("/api/gitlab/validate"))
        .bearer_auth(&token)
        .header("accept", "application/json")
        .form(&[("base_url", "http://10.0.0.1"), ("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = onramp.anon.get(onramp.server.url("/api/integrations")).bearer_auth("onr_forged").send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn api_tokens_are_shown_once_and_stored_hashed() {
    let onramp = spawn_onramp().await;
    let r = onramp
        .client
        .post(onramp.server.url("/api/tokens/create"))
        .header("accept", HTML)
        .form(&[("name", "nightly export")])
        .send()
        .await
        .unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let (_, page, _) = get(&onramp.client, &onramp, &location).await;
    let secret = page.split(r#"<code id="new-api-token">"#).nth(1).unwrap().split('<').next().unwrap().to_owned();
    assert!(secret.starts_with("onr_") && secret.len() > 40);
    let (_, again, _) = get(&onramp.client, &onramp, &location).await;
    assert!(!again.contains(&secret), "shown once");
    assert!(again.contains("nightly export"));
    let r = onramp.anon.get(onramp.server.url("/api/integrations")).bearer_auth(&secret).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        !database_bytes(&onramp).await.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "only its hash is stored"
    );
}

/// Everything the database holds, as bytes: the SQLite file and its WAL, or a PostgreSQL dump of
/// every table.
async fn database_bytes(onramp: &Onramp) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(onramp.data_dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with("onramp.db") {
            bytes.extend(std::fs::read(path).unwrap());
        }
    }
    // Every column of every table, as text, bytes or a number: a column that cannot be read fails
    // the test rather than being skipped (on PostgreSQL the files above are not there).
    for table in [
        "users",
        "sessions",
        "api_tokens",
        "integrations",
        "checks",
        "flashes",
        "workspaces",
        "memberships",
        "invitations",
        "audit_events",
    ] {
        let rows = sqlx::query(&format!("SELECT * FROM {table}")).fetch_all(onramp.state.db.pool()).await.unwrap();
        for row in rows {
            use sqlx::Row;
            for i in 0..row.len() {
                let value = if let Ok(text) = row.try_get::<Option<String>, _>(i) {
                    text.map(String::into_bytes)
                } else if let Ok(blob) = row.try_get::<Option<Vec<u8>>, _>(i) {
                    blob
                } else if let Ok(number) = row.try_get::<Option<i64>, _>(i) {
                    number.map(|n| n.to_string().into_bytes())
                } else {
                    panic!("{table}: column {i} could not be read");
                };
                bytes.extend(value.unwrap_or_default());
            }
        }
    }
    bytes
}

#[tokio::test]
async fn the_saved_token_is_nowhere_in_plaintext() {
    let fake = spawn_fake(FakeGitlab::default()).await;
    let onramp = spawn_onramp().await;
    let page = connect(&onramp, &onramp.client, &fake, "glpat-good").await;
    assert!(!page.contains("glpat-good"));
    for path in ["/settings/integrations", "/integrations/gitlab", "/integrations/gitlab/step/13", "/api/integrations"]
    {
        let (_, body, _) = get(&onramp.client, &onramp, path).await;
        assert!(!body.contains("glpat-good"), "{path}");
    }
    let bytes = database_bytes(&onramp).await;
    // the scan reached the saved connection's row (its user name is stored in the clear)
    assert!(bytes.windows(4).any(|w| w == b"jdoe"), "the scan read the integrations table");
    assert!(!bytes.windows(10).any(|w| w == b"glpat-good"), "the database holds the token only encrypted");
    assert!(!captured_log().contains("glpat-good"), "the logs never hold it");
}

#[tokio::test]
async fn pages_carry_a_content_security_policy_with_the_scripts_nonce() {
    let fake = spawn_fake(FakeGitlab::default()).await;
    let onramp = spawn_onramp().await;
    connect(&onramp, &onramp.client, &fake, "glpat-good").await;
    let (_, id) = only_connection(&onramp).await;
    let connection = format!("/integrations/gitlab/connections/{id}");
    let anonymous = [
        "/",
        "/login",
        "/signup",
        "/integrations/gitlab/step/1",
        "/integrations/gitlab/step/8",
        "/nope",
        "/invite/nope",
    ];
    let signed_in = [
        "/settings/integrations",
        "/settings/workspace",
        "/settings/audit",
        "/settings/api-tokens",
        "/integrations/gitlab",
        connection.as_str(),
        "/integrations/gitlab/step/12",
        "/integrations/gitlab/step/13",
    ];
    let pages = anonymous.iter().map(|p| (&onramp.anon, *p)).chain(signed_in.iter().map(|p| (&onramp.client, *p)));
    for (client, path) in pages {
        let mut nonces = Vec::new();
        for _ in 0..2 {
            let r = client.get(onramp.server.url(path)).send().await.unwrap();
            let csp = r.headers()["content-security-policy"].to_str().unwrap().to_owned();
            let page = r.text().await.unwrap();
            // the page's own policy, not the router-wide one for files and API answers
            let nonce =
                csp.split("'nonce-").nth(1).unwrap_or_else(|| panic!("{path}: {csp}")).split('\'').next().unwrap();
            let scripts: Vec<&str> = page.split("<script").skip(1).collect();
            assert!(!scripts.is_empty(), "{path}: the hydration script is there");
            for script in scripts {
                let tag = script.split('>').next().unwrap();
                assert!(
                    tag.contains(&format!(r#"nonce="{nonce}""#)),
                    "{path}: every script carries this answer's nonce"
                );
            }
            for part in ["frame-ancestors 'none'", "script-src 'self' 'wasm-unsafe-eval'", "form-action 'self'"] {
                assert!(csp.contains(part), "{path}: {csp}");
            }
            assert!(!csp.contains("unsafe-inline"), "{path}");
            nonces.push(nonce.to_owned());
        }
        assert_ne!(nonces[0], nonces[1], "{path}: a new nonce per answer");
    }
}

/// A step page for a visitor without a cookie comes out of memory, compressed: the same bytes
/// each time, its inline scripts allowed by hash (no nonce left on a tag), and it is exactly the
/// page the renderer makes. A signed-in visitor never gets it.
#[tokio::test]
async fn step_pages_kept_for_anonymous_visitors_allow_their_scripts_by_hash() {
    use base64::Engine;
    use sha2::Digest;
    use std::io::Read;
    let onramp = spawn_onramp().await;
    let path = "/integrations/gitlab/step/8?base=https%3A%2F%2Fgitlab.example.com";
    let get = |client: &reqwest::Client, encoding: &'static str| {
        client.get(onramp.server.url(path)).header("accept-encoding", encoding).send()
    };
    let mut bodies = Vec::new();
    for encoding in ["br, gzip", "br", "gzip"] {
        let r = get(&onramp.anon, encoding).await.unwrap();
        assert_eq!(r.status(), 200);
        let csp = r.headers()["content-security-policy"].to_str().unwrap().to_owned();
        let used = r.headers()["content-encoding"].to_str().unwrap().to_owned();
        assert_eq!(used, if encoding == "gzip" { "gzip" } else { "br" });
        assert_eq!(r.headers()["vary"], "accept-encoding");
        assert_eq!(r.headers()["x-frame-options"], "DENY", "the usual headers still apply");
        let raw = r.bytes().await.unwrap();
        let mut page = String::new();
        if used == "br" {
            brotli::Decompressor::new(&raw[..], 4096).read_to_string(&mut page).unwrap();
        } else {
            flate2::read::GzDecoder::new(&raw[..]).read_to_string(&mut page).unwrap();
        }
        assert!(!csp.contains("'nonce-") && !page.contains("nonce="), "{csp}");
        assert!(!csp.contains("unsafe-inline"));
        let scripts: Vec<&str> = page.split("<script").skip(1).collect();
        assert!(scripts.len() >= 2, "the hydration scripts are there");
        for script in scripts {
            let (tag, rest) = script.split_once('>').unwrap();
            if tag.contains(" src=") {
                continue;
            }
            let body = rest.split("</script>").next().unwrap();
            let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(body));
            assert!(csp.contains(&format!("'sha256-{hash}'")), "each inline script is allowed by its hash: {csp}");
        }
        bodies.push(page);
    }
    assert!(bodies.iter().all(|b| b == &bodies[0]), "one page for every encoding");
    // The page as the renderer makes it for this request (no compression asked for).
    let rendered = onramp.anon.get(onramp.server.url(path)).send().await.unwrap();
    let csp = rendered.headers()["content-security-policy"].to_str().unwrap().to_owned();
    let nonce = csp.split("'nonce-").nth(1).unwrap().split('\'').next().unwrap().to_owned();
    let rendered = rendered.text().await.unwrap();
    let rendered = rendered
        .replace(&format!(r#" nonce="{nonce}""#), "")
        .replace(&format!(r#" crossorigin="{nonce}""#), r#" crossorigin="anonymous""#);
    assert_eq!(bodies[0], rendered, "the kept page is the page");

    // Signed in, the same address is that person's page, with a fresh nonce.
    let r = get(&onramp.client, "br, gzip").await.unwrap();
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("'nonce-"), "{csp}");
    let mut page = String::new();
    brotli::Decompressor::new(&r.bytes().await.unwrap()[..], 4096).read_to_string(&mut page).unwrap();
    assert!(page.contains("Log out"), "the signed-in header");
}

#[tokio::test]
async fn the_background_task_rechecks_saved_connections() {
    let fake_gitlab = FakeGitlab::default();
    let fake = spawn_fake(fake_gitlab.clone()).await;
    let onramp = spawn_onramp().await;
    connect(&onramp, &onramp.client, &fake, "glpat-good").await;
    let (ws, id) = only_connection(&onramp).await;
    let before = app::store::integrations::find(&onramp.state.db, &ws, &id).await.unwrap().unwrap().last_check_at;
    let hits_before = fake_gitlab.hits().len();
    // Last checked a day and an hour before the pass's "now" (and a second ago: the re-check's
    // time is the clock's, in whole seconds).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let now = time::OffsetDateTime::now_utc() + time::Duration::hours(25);
    let done = app::jobs::recheck::run(&onramp.state, now, std::time::Duration::from_secs(24 * 3600)).await.unwrap();
    assert_eq!(done.checked, 1, "{done:?}");
    let now = app::store::integrations::find(&onramp.state.db, &ws, &id).await.unwrap().unwrap();
    let rechecked = now.last_check_at > before;
    assert!(now.last_check_ok);
    assert!(rechecked, "the saved connection was re-checked with its stored token");
    assert!(fake_gitlab.hits().len() > hits_before);
    assert!(fake_gitlab.hits().iter().skip(hits_before).all(|h| h.with_token || h.path.ends_with("/metadata")));
}

#[tokio::test]
async fn onramp_rotate_key_re_encrypts_every_token() {
    let fake = spawn_fake(FakeGitlab::default()).await;
    let onramp = spawn_onramp().await;
    connect(&onramp, &onramp.client, &fake, "glpat-good").await;
    let key_file = onramp.data_dir.path().join("secret.key");
    let old_key = std::fs::read_to_string(&key_file).unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_onramp"))
        .arg("rotate-key")
        .env("ONRAMP_DATA_DIR", onramp.data_dir.path())
        // the database this Onramp runs on (PostgreSQL in the second run of `make unit`)
        .env("DATABASE_URL", onramp.database_url.clone().unwrap_or_default())
        .env_remove("ONRAMP_SECRET_KEY")
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Re-encrypted 1 token(s)"));
    let new_key = std::fs::read_to_string(&key_file).unwrap();
    assert_ne!(old_key, new_key);
    assert!(!onramp.data_dir.path().join("secret.key.next").exists());
    let keys = app::store::crypto::Keyring::new(app::store::crypto::Cipher::from_base64(&new_key).unwrap());
    let (ws, id) = only_connection(&onramp).await;
    let (_, token, _) = app::store::integrations::with_token(&onramp.state.db, &keys, &ws, &id).await.unwrap().unwrap();
    assert_eq!(token.expose(), "glpat-good");
}

/// `ONRAMP_PUBLIC_URL` is read once, into the settings: behind a proxy that terminates TLS the
/// session cookie is `__Host-` and `Secure` although the request came over plain http, and links
/// people copy point at the public address, not at the Host the request named.
#[tokio::test]
async fn the_public_url_in_the_settings_makes_cookies_secure_and_links_public() {
    let onramp = spawn_onramp_with(|c| c.settings.public_url = Some("https://onramp.example.com".into())).await;
    let r = onramp
        .anon
        .post(onramp.server.url("/api/auth/signup"))
        .header("accept", "text/html")
        .header("origin", format!("http://{}", onramp.server.addr))
        .form(&[("email", "lead@example.com"), ("password", PASSWORD), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("__Host-onramp_session=") && cookie.contains("; Secure"), "{cookie}");
    let session = cookie.split(';').next().unwrap().to_owned();

    let r = onramp
        .anon
        .post(onramp.server.url("/api/invitations/create"))
        .header("accept", "application/json")
        .header("origin", format!("http://{}", onramp.server.addr))
        .header("cookie", session)
        .form(&[("role", "viewer")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let answer: serde_json::Value = r.json().await.unwrap();
    let link = answer["link"].as_str().unwrap();
    assert!(link.starts_with("https://onramp.example.com/invite/"), "{link}");
}

/// Addresses are a strict `addr-spec`: a display name (`x<victim@corp.example>`, which a mail
/// library reads as the victim's address), quotes, NUL and the like are refused at sign-up, each
/// with a message saying what to type, and nothing is stored; a good address is stored in its
/// canonical form.
#[tokio::test]
async fn sign_up_takes_only_a_plain_address_and_keeps_it_canonical() {
    let onramp = spawn_onramp().await;
    let visitor = browser_client(&onramp.server);
    let cases = [
        ("x<victim@corp.example>", "not_just_an_address", "no name, spaces, quotes, brackets or commas"),
        ("Jane Doe <jane.doe@corp.example>", "not_just_an_address", "Type only the address"),
        ("\"jane\"@corp.example", "not_just_an_address", "quotes"),
        ("jane\u{0}@corp.example", "control", "control characters"),
        ("jane@corp.example\r\nBcc: all@corp.example", "control", "control characters"),
        ("jäne@corp.example", "not_ascii", "xn--"),
        ("jane@corp", "domain", "a domain like example.com"),
        ("jane@-corp.example", "domain", "a domain like example.com"),
        (".jane@corp.example", "local_part", "not at either end"),
        ("jane@@corp.example", "format", "one @"),
    ];
    let too_long_local = format!("{}@corp.example", "a".repeat(65));
    let too_long = format!("a@{}.example", "b".repeat(250));
    let cases = cases.iter().map(|(e, c, m)| (e.to_string(), *c, *m)).chain([
        (too_long_local, "local_too_long", "longer than 64 characters"),
        (too_long, "too_long", "longer than 254 characters"),
    ]);
    for (email, code, message) in cases {
        let r = post(&visitor, &onramp, "/api/auth/signup", HTML, &[("email", &email), ("password", PASSWORD)]).await;
        assert_eq!(r.status(), 302, "{email:?}");
        let at = location(&r);
        assert!(at.contains(&format!("error=email_{code}")), "{email:?}: {at}");
        let (_, body, _) = get(&visitor, &onramp, &at).await;
        assert!(body.contains("There is a problem") && body.contains(message), "{email:?}: {message}");
        let r = post(
            &visitor,
            &onramp,
            "/api/auth/signup",
            "application/json",
            &[("email", &email), ("password", PASSWORD)],
        )
        .await;
        assert_eq!(r.status(), 400, "{email:?}");
        let answer: serde_json::Value = r.json().await.unwrap();
        assert!(answer["message"].as_str().unwrap().contains(message), "{email:?}: {answer}");
    }
    let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(onramp.state.db.pool()).await.unwrap();
    assert_eq!(users, 1, "only jane, from before");
    // The canonical form: trimmed and lower-cased (the local part too: one account per address
    // whatever its case, as before).
    let dev = browser_client(&onramp.server);
    enter_at(&dev, &onramp.server, "/api/auth/signup", "  O'Brien+Onramp@Corp.EXAMPLE ").await;
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT email FROM users ORDER BY email").fetch_all(onramp.state.db.pool()).await.unwrap();
    assert_eq!(stored, ["jane@example.com", "o'brien+onramp@corp.example"]);
    let again = browser_client(&onramp.server);
    enter_at(&again, &onramp.server, "/api/auth/login", "o'brien+onramp@corp.example").await;
}

/// Signed-in answers and pages that show a secret once carry `Cache-Control: no-store`: a new
/// API token's page and answer, an invitation link's creation and its `/invite/…` page (also for
/// a visitor without a session), log-in opened from one, any page of a signed-in person, and the
/// sign-up that sets the session cookie. A public step page for an anonymous visitor keeps being
/// served from memory, without it.
#[tokio::test]
async fn secrets_and_signed_in_pages_stay_out_of_caches() {
    let onramp = spawn_onramp().await;
    let no_store = |r: &reqwest::Response| r.headers().get("cache-control").map(|v| v.to_str().unwrap().to_owned());
    let store_none = Some("no-store".to_owned());
    // A new API token: the JSON answer (session cookie), its page, and with the token itself.
    let r = post(&onramp.client, &onramp, "/api/tokens/create", "application/json", &[("name", "ci")]).await;
    assert_eq!(no_store(&r), store_none, "the API answer with the secret");
    let secret: String = r.json().await.unwrap();
    let r = post(&onramp.client, &onramp, "/api/tokens/create", HTML, &[("name", "ci 2")]).await;
    let shown_at = location(&r);
    let r = onramp.client.get(onramp.server.url(&shown_at)).send().await.unwrap();
    assert_eq!(no_store(&r), store_none, "the page that shows the new token");
    assert!(r.text().await.unwrap().contains("new-api-token"));
    let r = onramp.anon.get(onramp.server.url("/api/integrations")).bearer_auth(&secret).send().await.unwrap();
    assert_eq!((r.status().as_u16(), no_store(&r)), (200, store_none.clone()), "an API token's answers");
    // An invitation link: made (JSON and page), and its page for someone without a session.
    let r = post(&onramp.client, &onramp, "/api/invitations/create", "application/json", &[("role", "viewer")]).await;
    assert_eq!(no_store(&r), store_none);
    let answer: serde_json::Value = r.json().await.unwrap();
    let invite = answer["link"].as_str().unwrap().rsplit_once("/invite/").unwrap().1.to_owned();
    let r = post(&onramp.client, &onramp, "/api/invitations/create", HTML, &[("role", "viewer")]).await;
    let r = onramp.client.get(onramp.server.url(&location(&r))).send().await.unwrap();
    assert_eq!(no_store(&r), store_none, "the workspace page showing the new link");
    for path in
        [format!("/invite/{invite}"), format!("/login?invite={invite}"), format!("/signup?next=%2F&invite={invite}")]
    {
        let r = onramp.anon.get(onramp.server.url(&path)).send().await.unwrap();
        assert_eq!((r.status().as_u16(), no_store(&r)), (200, store_none.clone()), "{path}");
    }
    // Any signed-in page, a step page included; the sign-up that sets the cookie.
    for path in ["/integrations/gitlab/step/8", "/settings/workspace", "/settings/audit", "/integrations/gitlab"] {
        let r = onramp.client.get(onramp.server.url(path)).header("accept-encoding", "br").send().await.unwrap();
        assert_eq!((r.status().as_u16(), no_store(&r)), (200, store_none.clone()), "{path}");
    }
    let visitor = browser_client(&onramp.server);
    let r = post(&visitor, &onramp, "/api/auth/signup", HTML, &[("email", "new@example.com"), ("password", PASSWORD)])
        .await;
    assert!(r.headers().contains_key("set-cookie"));
    assert_eq!(no_store(&r), store_none, "the answer that sets the session cookie");
    // An anonymous step page: kept in memory and compressed, no no-store.
    for _ in 0..2 {
        let r = onramp
            .anon
            .get(onramp.server.url("/integrations/gitlab/step/8"))
            .header("accept-encoding", "br")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(no_store(&r), None, "a public step page keeps its caching");
        assert_eq!(r.headers()["content-encoding"], "br", "served from the page cache");
    }
    let r = onramp.anon.get(onramp.server.url("/login")).send().await.unwrap();
    assert_eq!(no_store(&r), None, "log-in without an invitation has nothing to hide");
}
