//! Two Onramp processes on one database, as behind a load balancer (run on SQLite and, by
//! `make unit`, on PostgreSQL): sessions and kept checks work on either, and the daily re-check
//! checks each connection once, whichever process gets there first.

use crate::support::*;
use fake_gitlab::FakeGitlab;

#[tokio::test]
async fn either_server_continues_what_the_other_started() {
    let fake = spawn_fake(FakeGitlab::default()).await;
    let first = spawn_onramp().await;
    let (second, _) = spawn_second(&first).await;
    // A session made on the first (its cookie, as a browser sends it to the same site)...
    let jar_cookie = {
        let r = first
            .anon
            .post(first.server.url("/api/auth/login"))
            .header("accept", "text/html")
            .header("origin", format!("http://{}", first.server.addr))
            .form(&[("email", "jane@example.com"), ("password", PASSWORD)])
            .send()
            .await
            .unwrap();
        r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned()
    };
    let on_second = |path: &str| {
        first
            .anon
            .get(second.url(path))
            .header("cookie", jar_cookie.clone())
            .header("origin", format!("http://{}", second.addr))
    };
    // ...works on the second.
    assert_eq!(on_second("/settings/integrations").send().await.unwrap().status(), 200, "a session in the database");
    // A check kept by the first is accepted on the second.
    let r = first
        .anon
        .post(first.server.url("/api/gitlab/validate"))
        .header("accept", "text/html")
        .header("origin", format!("http://{}", first.server.addr))
        .header("cookie", jar_cookie.clone())
        .form(&[("base_url", fake.url("").as_str()), ("token", "glpat-good")])
        .send()
        .await
        .unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let check = location.split("check=").nth(1).expect("a kept check").to_owned();
    let r = first
        .anon
        .post(second.url("/api/gitlab/accept"))
        .header("accept", "text/html")
        .header("origin", format!("http://{}", second.addr))
        .header("cookie", jar_cookie.clone())
        .form(&[("check", check)])
        .send()
        .await
        .unwrap();
    assert!(r.headers()["location"].to_str().unwrap().starts_with("/integrations/gitlab/step/13"));
    let page = on_second("/integrations/gitlab").send().await.unwrap().text().await.unwrap();
    assert!(page.contains("@jdoe"), "the connection saved through the second is there");
}

#[tokio::test]
async fn the_daily_recheck_checks_each_connection_once_across_servers() {
    let fake = FakeGitlab::default();
    let hits = fake.hits.clone();
    let fake = spawn_fake(fake).await;
    let first = spawn_onramp().await;
    connect(&first, &first.client, &fake, "glpat-good").await;
    let (_, second_state) = spawn_second(&first).await;
    sqlx::query("UPDATE integrations SET last_check_at = 0").execute(first.state.db.pool()).await.unwrap();
    hits.lock().unwrap().clear();
    // Both processes make their pass at the same moment.
    let (now, interval) = (time::OffsetDateTime::now_utc(), std::time::Duration::from_secs(3600));
    let (a, b) = tokio::join!(
        app::jobs::recheck::run(&first.state, now, interval),
        app::jobs::recheck::run(&second_state, now, interval),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    // Checked once in all. Whether the slower pass still saw it due (and found it taken) or
    // listed it after the other had claimed it depends on the scheduler: both are right.
    assert_eq!(a.checked + b.checked, 1, "{a:?} {b:?}");
    for r in [&a, &b] {
        assert_eq!(
            (r.due, r.errors),
            (r.checked + r.taken, 0),
            "every due connection was checked or found taken: {r:?}"
        );
    }
    let tokens = hits.lock().unwrap().iter().filter(|h| h.path.ends_with("/personal_access_tokens/self")).count();
    assert_eq!(
        tokens,
        1,
        "one re-check in all: {:?}",
        hits.lock().unwrap().iter().map(|h| &h.path).collect::<Vec<_>>()
    );
}
