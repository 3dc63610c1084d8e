//! Token rotation against a GitLab double that rotates as GitLab does (the old token revoked at
//! once, reuse of a rotated token revoking the whole family): due tokens rotated once and kept
//! working, a lost answer never sent again, a refused date asked again shorter, two processes due
//! at the same moment, a crash between request and commit, reminders and mail. Runs on SQLite
//! and, in `make unit`, on PostgreSQL.

use crate::support::*;
use app::rotation::{self, Outcome, Trigger};
use app::store::{events, integrations, rotations};
use fake_gitlab::{FakeGitlab, RotationMode};
use std::time::Duration;

fn today() -> time::Date {
    time::OffsetDateTime::now_utc().date()
}

/// The rotation job's pass on `day`: how many tokens it rotated.
async fn scheduled(state: &app::state::AppState, day: time::Date) -> usize {
    app::jobs::rotate::run(state, day.midnight().assume_utc()).await.unwrap().rotated
}

/// Onramp with a connection made with `token` (by jane, owner of her workspace) to `fake`.
async fn connected(fake: &FakeGitlab, token: &str) -> (Onramp, Running, String, String) {
    let onramp = spawn_onramp().await;
    let gitlab = spawn_fake(fake.clone()).await;
    connect(&onramp, &onramp.client, &gitlab, token).await;
    let (workspace, id) = only_connection(&onramp).await;
    (onramp, gitlab, workspace, id)
}

/// Changes what the saved connection says about its token (`assignment`: SQL `column = 'value'`),
/// as an older check or another GitLab would have left it.
async fn change_connection(onramp: &Onramp, id: &str, assignment: &str) {
    sqlx::query(&format!("UPDATE integrations SET {assignment} WHERE id = $1"))
        .bind(id)
        .execute(onramp.state.db.pool())
        .await
        .unwrap();
}

async fn stored_token(onramp: &Onramp, workspace: &str, id: &str) -> String {
    let (_, token, _) = integrations::with_token(&onramp.state.db, &onramp.state.keys, workspace, id)
        .await
        .unwrap()
        .expect("the connection");
    token.expose().to_owned()
}

#[tokio::test]
async fn a_due_token_is_rotated_once_and_the_connection_keeps_working() {
    let fake = FakeGitlab::default();
    let (onramp, _gitlab, ws, id) = connected(&fake, "glpat-soon").await;
    let before = integrations::find(&onramp.state.db, &ws, &id).await.unwrap().unwrap();
    assert_eq!(before.token_id, Some(7), "the check keeps GitLab's token id");

    // A token with 10 days left is not due at 5 days before, and is at 14.
    let early = rotation::rotate(&onramp.state, &ws, &id, Trigger::Schedule, today() - time::Duration::days(10)).await;
    assert_eq!(early.unwrap(), Outcome::NotDue);
    assert_eq!(fake.rotations(), 0);

    assert_eq!(scheduled(&onramp.state, today()).await, 1);
    assert_eq!(fake.rotations(), 1);
    let new = stored_token(&onramp, &ws, &id).await;
    {
        let tokens = fake.tokens.lock().unwrap();
        assert_eq!(Some(new.clone()), tokens.newest_of("glpat-soon"), "the new token is stored");
        assert!(!tokens.is_active("glpat-soon"), "GitLab revoked the old token");
        assert!(tokens.is_active(&new));
    }

    let after = integrations::find(&onramp.state.db, &ws, &id).await.unwrap().unwrap();
    // The same lifetime as before (90 days), from today.
    let expected = (today() + time::Duration::days(90)).to_string();
    assert_eq!(after.expires_at.as_deref(), Some(expected.as_str()));
    assert_eq!(after.token_id, Some(101));
    assert_eq!(after.token_last4, new.chars().rev().take(4).collect::<String>().chars().rev().collect::<String>());
    assert!(after.rotated_at.is_some());
    assert!(
        after.last_check_ok,
        "re-checked with the new token: {:?}",
        after.last_report.failures().collect::<Vec<_>>()
    );
    assert!(after.last_check_at >= before.last_check_at);
    let ledger = rotations::all(&onramp.state.db, &ws, &id).await.unwrap();
    assert_eq!(ledger.len(), 1);
    assert_eq!((ledger[0].state.as_str(), ledger[0].token_id), ("rotated", 7));
    let kinds: Vec<String> =
        events::list(&onramp.state.db, &ws, &id, 10).await.unwrap().into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds, ["rotated"]);

    // The new token is not due: nothing more is sent, not even by a second pass.
    assert_eq!(scheduled(&onramp.state, today()).await, 0);
    assert_eq!(fake.rotations(), 1);

    // The page says so, and never shows the token.
    let (status, page) = onramp.get(&format!("/integrations/gitlab/connections/{id}")).await;
    assert_eq!(status, 200);
    assert!(page.contains("Rotated on"), "{page}");
    assert!(page.contains(&expected), "{page}");
    assert!(!page.contains(&new));
}

#[tokio::test]
async fn a_rotation_whose_answer_is_lost_is_never_sent_again() {
    let fake = FakeGitlab { rotation: RotationMode::LoseAnswer, ..FakeGitlab::default() };
    let (onramp, _gitlab, ws, id) = connected(&fake, "glpat-soon").await;
    let outcome = rotation::rotate(&onramp.state, &ws, &id, Trigger::Manual, today()).await.unwrap();
    assert_eq!(outcome, Outcome::Lost);
    assert_eq!(fake.rotations(), 1);
    let ledger = rotations::all(&onramp.state.db, &ws, &id).await.unwrap();
    assert_eq!(ledger[0].state, "lost");
    let saved = integrations::find(&onramp.state.db, &ws, &id).await.unwrap().unwrap();
    assert!(!saved.last_check_ok, "the connection says it needs a new token");
    let failure = saved.last_report.failures().next().unwrap();
    assert_eq!(failure.fix_step, Some(7));
    assert!(failure.message.contains("needs a new token"), "{}", failure.message);
    let events = events::list(&onramp.state.db, &ws, &id, 10).await.unwrap();
    assert_eq!(events[0].kind, "rotation_lost");

    // Neither a scheduled pass nor "Rotate now" sends it again: that would revoke the family.
    assert_eq!(scheduled(&onramp.state, today()).await, 0);
    let again = rotation::rotate(&onramp.state, &ws, &id, Trigger::Manual, today()).await.unwrap();
    assert_eq!(again, Outcome::Taken);
    assert_eq!(fake.rotations(), 1);
    assert_eq!(fake.tokens.lock().unwrap().families_revoked, 0);
    let rotate_calls = fake.hits().iter().filter(|h| h.path.ends_with("/rotate")).count();
    assert_eq!(rotate_calls, 1, "GitLab saw one rotation request");
}

#[tokio::test]
async fn a_lost_request_that_rotated_nothing_is_kept_and_may_be_tried_again() {
    for mode in [RotationMode::Hang, RotationMode::BadGatewayAfter] {
        let fake = FakeGitlab { rotation: mode, ..FakeGitlab::default() };
        let (onramp, _gitlab, ws, id) = connected(&fake, "glpat-soon").await;
        let outcome = rotation::rotate(&onramp.state, &ws, &id, Trigger::Manual, today()).await.unwrap();
        match mode {
            // GitLab rotated nothing: the old token lives, and a later rotation may try again.
            RotationMode::Hang => {
                assert!(matches!(outcome, Outcome::Kept(_)), "{outcome:?}");
                assert_eq!(stored_token(&onramp, &ws, &id).await, "glpat-soon");
                let again = rotation::rotate(&onramp.state, &ws, &id, Trigger::Manual, today()).await.unwrap();
                assert!(matches!(again, Outcome::Kept(_)), "{again:?}");
                let rotate_calls = fake.hits().iter().filter(|h| h.path.ends_with("/rotate")).count();
                assert_eq!(rotate_calls, 2);
            }
            // A proxy's 502 after GitLab rotated: the same as a lost answer.
            _ => {
                assert_eq!(outcome, Outcome::Lost);
                assert_eq!(fake.rotations(), 1);
            }
        }
        assert_eq!(fake.tokens.lock().unwrap().families_revoked, 0);
    }
}

#[tokio::test]
async fn a_refused_date_is_asked_again_shorter() {
    let fake = FakeGitlab { max_lifetime_days: Some(30), ..FakeGitlab::default() };
    let (onramp, _gitlab, ws, id) = connected(&fake, "glpat-soon").await;
    let outcome = rotation::rotate(&onramp.state, &ws, &id, Trigger::Manual, today()).await.unwrap();
    // 90 days refused, 45 refused, 22 accepted.
    let expected = (today() + time::Duration::days(22)).to_string();
    assert_eq!(outcome, Outcome::Rotated(Some(expected.clone())));
    assert_eq!(fake.rotations(), 1);
    let rotate_calls = fake.hits().iter().filter(|h| h.path.ends_with("/rotate")).count();
    assert_eq!(rotate_calls, 3);
    let saved = integrations::find(&onramp.state.db, &ws, &id).await.unwrap().unwrap();
    assert_eq!(saved.expires_at, Some(expected));
}

#[tokio::test]
async fn two_processes_due_at_the_same_moment_rotate_once() {
    let fake = FakeGitlab { latency: Duration::from_millis(300), ..FakeGitlab::default() };
    let (onramp, _gitlab, ws, id) = connected(&fake, "glpat-soon").await;
    let (_second, other) = spawn_second(&onramp).await;
    let (a, b) = tokio::join!(
        rotation::rotate(&onramp.state, &ws, &id, Trigger::Schedule, today()),
        rotation::rotate(&other, &ws, &id, Trigger::Schedule, today()),
    );
    let mut outcomes = [a.unwrap(), b.unwrap()];
    outcomes.sort_by_key(|o| matches!(o, Outcome::Taken));
    assert!(matches!(outcomes[0], Outcome::Rotated(_)), "{outcomes:?}");
    assert_eq!(outcomes[1], Outcome::Taken);
    assert_eq!(fake.rotations(), 1);
    assert_eq!(fake.tokens.lock().unwrap().families_revoked, 0);
    let new = stored_token(&onramp, &ws, &id).await;
    assert_eq!(Some(new), fake.tokens.lock().unwrap().newest_of("glpat-soon"));
}

#[tokio::test]
async fn tokens_that_cannot_rotate_get_one_reminder_per_threshold() {
    let fake = FakeGitlab::default();
    let (onramp, _gitlab, ws, id) = connected(&fake, "glpat-soon").await;
    // A read-only token (as made before the api scope was asked for): GitLab would refuse.
    change_connection(&onramp, &id, "scopes = 'read_api,read_user,read_repository'").await;
    for _ in 0..2 {
        assert_eq!(scheduled(&onramp.state, today()).await, 0);
    }
    let found = events::list(&onramp.state.db, &ws, &id, 10).await.unwrap();
    assert_eq!(found.len(), 1, "one reminder, not one per pass: {found:?}");
    assert_eq!((found[0].kind.as_str(), found[0].fix_step), ("expires_soon", Some(7)));
    assert!(found[0].detail.contains("in 10 days"), "{}", found[0].detail);
    assert!(found[0].detail.contains("api or self_rotate"), "{}", found[0].detail);
    let (_, page) = onramp.get(&format!("/integrations/gitlab/connections/{id}")).await;
    assert!(page.contains("The token expires soon"), "{page}");
    assert!(page.contains("api or self_rotate"), "{page}");
    assert!(!page.contains("Rotate now"));
    // Four days on: 6 days left, past the 7-day threshold.
    scheduled(&onramp.state, today() + time::Duration::days(4)).await;
    scheduled(&onramp.state, today() + time::Duration::days(4)).await;
    let found = events::list(&onramp.state.db, &ws, &id, 10).await.unwrap();
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found.iter().any(|e| e.detail.contains("in 6 days")), "{found:?}");
    assert_eq!(fake.rotations(), 0);
    assert!(fake.hits().iter().all(|h| !h.path.ends_with("/rotate")));
}

#[tokio::test]
async fn events_are_mailed_once_to_owners_and_admins_and_never_hold_the_token() {
    let sink = spawn_smtp_sink().await;
    let onramp = spawn_onramp_with(|config| config.mail = Some(sink.settings())).await;
    let fake = FakeGitlab::default();
    let gitlab = spawn_fake(fake.clone()).await;
    connect(&onramp, &onramp.client, &gitlab, "glpat-soon").await;
    let (ws, id) = only_connection(&onramp).await;
    scheduled(&onramp.state, today()).await;
    let new = stored_token(&onramp, &ws, &id).await;

    app::jobs::mail::run(&onramp.state).await.unwrap();
    app::jobs::mail::run(&onramp.state).await.unwrap();
    let mails = sink.mails();
    assert_eq!(mails.len(), 1, "one mail per event: {mails:?}");
    let mail = &mails[0];
    // Quoted-printable: soft line breaks and escaped "=" undone.
    let text = mail.data.replace("=\n", "").replace("=3D", "=");
    assert_eq!(mail.to, ["jane@example.com"]);
    assert!(mail.from.contains("onramp@example.com"));
    assert!(mail.data.contains("Subject: Onramp rotated the GitLab token of jdoe on 127.0.0.1"), "{}", mail.data);
    assert!(text.contains(&format!("https://onramp.example.com/integrations/gitlab/connections/{id}")), "{text}");
    assert!(text.contains("Nothing to do."), "{text}");
    assert!(!text.contains(&new) && !text.contains("glpat-soon"), "no token in a mail");
    let found = events::list(&onramp.state.db, &ws, &id, 10).await.unwrap();
    assert_eq!(found[0].mail_state, "sent");
}

#[tokio::test]
async fn a_failed_mail_is_tried_again_then_given_up() {
    // A port nobody listens on.
    let port = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let onramp = spawn_onramp_with(|config| {
        config.mail = Some(app::mail::MailSettings {
            smtp_url: format!("smtp://127.0.0.1:{port}"),
            from: "onramp@example.com".into(),
            origin: "https://onramp.example.com".into(),
        });
    })
    .await;
    let gitlab = spawn_fake(FakeGitlab::default()).await;
    connect(&onramp, &onramp.client, &gitlab, "glpat-soon").await;
    let (ws, id) = only_connection(&onramp).await;
    scheduled(&onramp.state, today()).await;
    for attempt in 1..=events::MAIL_ATTEMPTS {
        app::jobs::mail::run(&onramp.state).await.unwrap();
        let state = events::list(&onramp.state.db, &ws, &id, 1).await.unwrap()[0].mail_state.clone();
        let expected = if attempt < events::MAIL_ATTEMPTS { "pending" } else { "failed" };
        assert_eq!(state, expected, "after attempt {attempt}");
    }
}

async fn json(r: reqwest::Response) -> (u16, serde_json::Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
}

#[tokio::test]
async fn rotate_now_over_the_api_and_the_page_for_admins_only() {
    let fake = FakeGitlab::default();
    let (onramp, _gitlab, ws, id) = connected(&fake, "glpat-soon").await;

    // A script: rotates now, whether due or not, and says how it went.
    let (status, answer) =
        json(post(&onramp.client, &onramp, "/api/gitlab/rotate", "application/json", &[("id", &id)]).await).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outcome"], "rotated");
    assert_eq!(answer["expires_at"], (today() + time::Duration::days(90)).to_string());
    assert_eq!(fake.rotations(), 1);

    // A browser: back to the connection's page, which says so.
    let r = post(&onramp.client, &onramp, "/api/gitlab/rotate", "text/html", &[("id", &id)]).await;
    assert_eq!(location(&r), format!("/integrations/gitlab/connections/{id}?rotation=rotated"));
    let (_, page) = onramp.get(&location(&r)).await;
    assert!(page.contains("The token was rotated"), "{page}");
    assert_eq!(fake.rotations(), 2, "the new token may rotate again: it has its own id");
    assert_eq!(fake.tokens.lock().unwrap().families_revoked, 0);

    let (status, answer) =
        json(onramp.client.get(onramp.server.url(&format!("/api/gitlab/events?id={id}"))).send().await.unwrap()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["events"].as_array().unwrap().iter().filter(|e| e["kind"] == "rotated").count(), 2);
    assert_eq!(answer["rotation"]["latest"]["state"], "rotated");
    assert!(answer["rotation"]["cannot"].is_null());
    assert!(!answer.to_string().contains("glpat-"), "no token in the answer: {answer}");

    // Somebody else: the connection does not exist for them. A viewer: sees, may not rotate.
    let mallory = browser_client(&onramp.server);
    onramp.sign_up(&mallory, "mallory@example.com").await;
    let (status, _) =
        json(post(&mallory, &onramp, "/api/gitlab/rotate", "application/json", &[("id", &id)]).await).await;
    assert_eq!(status, 404);
    let (status, _) =
        json(mallory.get(onramp.server.url(&format!("/api/gitlab/events?id={id}"))).send().await.unwrap()).await;
    assert_eq!(status, 404);
    let mallory_id: String = sqlx::query_scalar("SELECT id FROM users WHERE email = 'mallory@example.com'")
        .fetch_one(onramp.state.db.pool())
        .await
        .unwrap();
    sqlx::query("INSERT INTO memberships (workspace_id, user_id, role, created_at) VALUES ($1, $2, 'viewer', 0)")
        .bind(&ws)
        .bind(&mallory_id)
        .execute(onramp.state.db.pool())
        .await
        .unwrap();
    let (status, _) =
        json(post(&mallory, &onramp, "/api/gitlab/rotate", "application/json", &[("id", &id)]).await).await;
    assert_eq!(status, 403);
    let (status, _) =
        json(mallory.get(onramp.server.url(&format!("/api/gitlab/events?id={id}"))).send().await.unwrap()).await;
    assert_eq!(status, 200);
    let nobody = browser_client(&onramp.server);
    let (status, _) =
        json(post(&nobody, &onramp, "/api/gitlab/rotate", "application/json", &[("id", &id)]).await).await;
    assert_eq!(status, 401);
    assert_eq!(fake.rotations(), 2);
}

#[tokio::test]
async fn a_token_that_cannot_rotate_says_why_and_sends_nothing() {
    let fake = FakeGitlab::default();
    let (onramp, _gitlab, _ws, id) = connected(&fake, "glpat-good").await;
    change_connection(&onramp, &id, "gitlab_version = '16.4.2'").await;
    let (status, answer) =
        json(post(&onramp.client, &onramp, "/api/gitlab/rotate", "application/json", &[("id", &id)]).await).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outcome"], "cannot");
    assert!(answer["message"].as_str().unwrap().contains("GitLab 16.4.2 cannot rotate"), "{answer}");
    let (_, page) = onramp.get(&format!("/integrations/gitlab/connections/{id}")).await;
    assert!(page.contains("GitLab 16.4.2 cannot rotate"), "{page}");
    assert!(!page.contains("Rotate now"), "no button for what cannot be done");
    assert!(fake.hits().iter().all(|h| !h.path.ends_with("/rotate")));
}

/// kill -9 while GitLab is rotating (the request sent, its answer not yet committed): the next
/// process never sends the rotation again; it asks GitLab and records what happened.
#[tokio::test]
async fn a_crash_between_request_and_commit_ends_in_a_state_that_says_what_happened() {
    let fake = FakeGitlab { rotation: RotationMode::LoseAnswer, ..FakeGitlab::default() };
    let gitlab = spawn_fake(fake.clone()).await;
    let data = tempfile::tempdir().unwrap();
    let env = [
        ("ONRAMP_RECHECK_INTERVAL_SECS", "1"),
        ("ONRAMP_REQUEST_TIMEOUT_MS", "3000"),
        // As short as allowed: twice the request timeout, and a second.
        ("ONRAMP_ROTATION_LEASE_SECS", "1"),
        ("ONRAMP_CHECK_RATE_PER_MIN", "100000"),
    ];
    let (mut child, server) = start_binary(data.path(), &env, std::process::Stdio::null()).await;
    let client = browser_client(&server);
    enter_at(&client, &server, "/api/auth/signup", "jane@example.com").await;
    connect_at(&client, &server, &gitlab, "glpat-soon").await;
    // The background pass (every second here) finds the token due and sends the rotation.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while fake.rotations() == 0 {
        assert!(tokio::time::Instant::now() < deadline, "no rotation was sent");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.start_kill().unwrap();
    child.wait().await.unwrap();

    let config = test_config(data.path(), None);
    let (db, _keys) = server::open_storage(&config).await.unwrap();
    let state: String = sqlx::query_scalar("SELECT state FROM rotations").fetch_one(db.pool()).await.unwrap();
    assert_eq!(state, "sending", "killed before the answer was recorded");

    // Restarted: once the lease runs out, it asks GitLab with the old token (revoked: lost).
    let (_child, _server) = start_binary(data.path(), &env, std::process::Stdio::null()).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let state = loop {
        let state: String = sqlx::query_scalar("SELECT state FROM rotations").fetch_one(db.pool()).await.unwrap();
        if state != "sending" {
            break state;
        }
        assert!(tokio::time::Instant::now() < deadline, "the rotation was never settled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(state, "lost");
    // The pass records the rotation's end, then the failed check, then the event (three writes,
    // while the re-check pass writes too): wait for the last before reading them.
    let kinds = loop {
        let kinds: Vec<String> =
            sqlx::query_scalar("SELECT kind FROM connection_events").fetch_all(db.pool()).await.unwrap();
        if kinds.iter().any(|k| k == "rotation_lost") || tokio::time::Instant::now() >= deadline {
            break kinds;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(kinds.contains(&"rotation_lost".to_owned()), "{kinds:?}");
    let ok: i64 = sqlx::query_scalar("SELECT last_check_ok FROM integrations").fetch_one(db.pool()).await.unwrap();
    assert_eq!(ok, 0, "the connection says it needs a new token");
    assert_eq!(fake.rotations(), 1);
    assert_eq!(fake.hits().iter().filter(|h| h.path.ends_with("/rotate")).count(), 1, "sent once, ever");
    assert_eq!(fake.tokens.lock().unwrap().families_revoked, 0);
}

/// The token that outlives a person: a service account's, reported as such, and rotated like a
/// person's (it gets no expiry mail from GitLab, so Onramp's rotation matters most here).
#[tokio::test]
async fn a_service_account_is_reported_as_such_and_its_token_rotates() {
    let onramp = spawn_onramp().await;
    let fake = FakeGitlab::default();
    let gitlab = spawn_fake(fake.clone()).await;
    let report = onramp.validate(&gitlab.url(""), "glpat-service").await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["user"]["bot"], true);
    let user = check(&report, "user");
    assert_eq!(user["status"], "pass", "{report}");
    assert!(user["message"].as_str().unwrap().contains("service account Onramp reader (@onramp-reader)"), "{user}");
    assert_eq!(check(&report, "role")["status"], "pass", "{report}");

    connect(&onramp, &onramp.client, &gitlab, "glpat-service").await;
    let (ws, id) = only_connection(&onramp).await;
    let outcome = rotation::rotate(&onramp.state, &ws, &id, Trigger::Manual, today()).await.unwrap();
    assert!(matches!(outcome, Outcome::Rotated(_)), "{outcome:?}");
    assert_eq!(Some(stored_token(&onramp, &ws, &id).await), fake.tokens.lock().unwrap().newest_of("glpat-service"));

    // The project access token's bot is told apart: it cannot rotate this way.
    let (status, answer) = json(
        post(
            &onramp.client,
            &onramp,
            "/api/gitlab/validate",
            "application/json",
            &[("base_url", gitlab.url("").as_str()), ("token", "glpat-bot")],
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(check(&answer, "user")["status"], "warn", "{answer}");
}

/// An expired token cannot rotate (GitLab refuses it): nothing is sent, the page says what to do.
#[tokio::test]
async fn an_expired_token_is_not_sent_to_rotate() {
    let fake = FakeGitlab::default();
    let (onramp, _gitlab, ws, id) = connected(&fake, "glpat-soon").await;
    let outcome = rotation::rotate(&onramp.state, &ws, &id, Trigger::Manual, today() + time::Duration::days(10)).await;
    assert_eq!(outcome.unwrap(), Outcome::Cannot(app::gitlab::rotation::CannotRotate::Expired));
    // Expired yesterday, whenever the test runs (a fixed date would stop meaning "expired" once
    // the clock passes it the other way, or mean it for the wrong reason).
    let yesterday = today() - time::Duration::days(1);
    change_connection(&onramp, &id, &format!("expires_at = '{yesterday}'")).await;
    let (_, page) = onramp.get(&format!("/integrations/gitlab/connections/{id}")).await;
    assert!(page.contains("GitLab does not rotate an expired token"), "{page}");
    assert!(!page.contains("Rotate now"));
    assert!(fake.hits().iter().all(|h| !h.path.ends_with("/rotate")));
}

/// When GitLab cannot be reached at all (here: an Onramp whose guard no longer admits its
/// address), nothing is sent: the rotation is `kept`, and a later pass that reaches GitLab rotates.
#[tokio::test]
async fn a_rotation_that_could_not_be_sent_is_tried_again() {
    let fake = FakeGitlab::default();
    let (onramp, _gitlab, ws, id) = connected(&fake, "glpat-soon").await;
    let mut config = test_config(onramp.data_dir.path(), onramp.database_url.clone());
    config.outbound.guard = app::gitlab::guard::OutboundGuard::default();
    let (db, keys) = server::open_storage(&config).await.unwrap();
    let (_, cut_off) = server::router(config, db, keys);

    let outcome = rotation::rotate(&cut_off, &ws, &id, Trigger::Schedule, today()).await.unwrap();
    match &outcome {
        Outcome::Kept(why) => assert!(why.contains("not one Onramp may connect to"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(fake.hits().iter().all(|h| !h.path.ends_with("/rotate")), "nothing was sent");
    assert_eq!(rotations::all(&onramp.state.db, &ws, &id).await.unwrap()[0].state, "kept");

    assert_eq!(scheduled(&onramp.state, today()).await, 1);
    assert_eq!(fake.rotations(), 1);
    let ledger = rotations::all(&onramp.state.db, &ws, &id).await.unwrap();
    assert_eq!((ledger.len(), ledger[0].state.as_str()), (1, "rotated"), "the same rotation, taken up again");
}

/// GitLab has rotated (the old token is revoked at once) and the store refuses the write that
/// keeps the new token for a moment: the new token is offered again and kept, never dropped.
#[tokio::test]
async fn a_rotated_token_survives_a_storage_failure_right_after_gitlabs_answer() {
    let fake = FakeGitlab::default();
    let (onramp, _gitlab, ws, id) = connected(&fake, "glpat-soon").await;
    let db = onramp.state.db.clone();
    // A storage failure injected into the one write that stores a token, while `fail_rotated`
    // has a row.
    let statements: &[&str] = if onramp.database_url.is_none() {
        &[
            "CREATE TABLE fail_rotated (n INTEGER)",
            "INSERT INTO fail_rotated VALUES (1)",
            "CREATE TRIGGER fail_rotated BEFORE UPDATE OF token_ciphertext ON integrations \
             WHEN EXISTS (SELECT 1 FROM fail_rotated) BEGIN SELECT RAISE(ABORT, 'injected storage failure'); END",
        ]
    } else {
        &[
            "CREATE TABLE fail_rotated (n INTEGER)",
            "INSERT INTO fail_rotated VALUES (1)",
            "CREATE FUNCTION fail_rotated() RETURNS trigger AS $$ BEGIN \
             IF EXISTS (SELECT 1 FROM fail_rotated) THEN RAISE EXCEPTION 'injected storage failure'; END IF; \
             RETURN NEW; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER fail_rotated BEFORE UPDATE OF token_ciphertext ON integrations \
             FOR EACH ROW EXECUTE FUNCTION fail_rotated()",
        ]
    };
    for statement in statements {
        sqlx::query(statement).execute(db.pool()).await.unwrap();
    }
    let heal = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        sqlx::query("DELETE FROM fail_rotated").execute(db.pool()).await.unwrap();
    });
    let outcome = rotation::rotate(&onramp.state, &ws, &id, Trigger::Manual, today()).await;
    heal.await.unwrap();
    assert!(matches!(outcome, Ok(Outcome::Rotated(_))), "{outcome:?}");
    assert_eq!(fake.rotations(), 1, "sent once");
    let kept = stored_token(&onramp, &ws, &id).await;
    assert!(kept.starts_with("glpat-soon-r"), "the new token is the connection's: {kept}");
    assert!(captured_log().contains("storing a rotated token failed; trying again"));
    assert!(!captured_log().contains(&kept), "never logged");
}
