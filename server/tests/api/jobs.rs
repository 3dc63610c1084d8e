//! The background jobs' passes (`app::jobs`), each called once with a fixed "now" against the
//! fake GitLab, instead of starting the server's loops and waiting for them: what is due is done,
//! what is not due is left, and each pass says what it did. Runs on SQLite and, in `make unit`, on
//! PostgreSQL.

use crate::support::*;
use app::jobs::{self, Job};
use fake_gitlab::FakeGitlab;
use std::time::Duration;
use time::OffsetDateTime;

const DAY: Duration = Duration::from_secs(24 * 3600);

/// When the connection was last checked.
async fn last_checked(onramp: &Onramp) -> OffsetDateTime {
    let at: i64 =
        sqlx::query_scalar("SELECT last_check_at FROM integrations").fetch_one(onramp.state.db.pool()).await.unwrap();
    OffsetDateTime::from_unix_timestamp(at).unwrap()
}

#[tokio::test]
async fn the_recheck_pass_checks_what_was_last_checked_an_interval_ago_and_nothing_else() {
    let fake = FakeGitlab::default();
    let gitlab = spawn_fake(fake.clone()).await;
    let onramp = spawn_onramp().await;
    connect(&onramp, &onramp.client, &gitlab, "glpat-good").await;
    let checked = last_checked(&onramp).await;
    // A save starts listing the connection's groups and projects in the background: let that
    // finish, or its requests land among the ones counted below.
    let (_, id) = only_connection(&onramp).await;
    crate::scope::ready(&onramp.client, &onramp, &id).await;
    let hits = fake.hits().len();

    // Checked an hour before "now": not due.
    let done = jobs::recheck::run(&onramp.state, checked + time::Duration::hours(1), DAY).await.unwrap();
    assert_eq!(done, jobs::recheck::Report::default(), "nothing due");
    assert_eq!(fake.hits().len(), hits, "nothing sent");

    // Checked 25 hours before "now": re-checked with its stored token.
    let done = jobs::recheck::run(&onramp.state, checked + time::Duration::hours(25), DAY).await.unwrap();
    assert_eq!((done.due, done.checked, done.failed, done.taken, done.errors), (1, 1, 0, 0, 0), "{done:?}");
    assert!(fake.hits().iter().skip(hits).any(|h| h.with_token && h.path.ends_with("/personal_access_tokens/self")));
}

#[tokio::test]
async fn the_rotation_pass_rotates_a_token_on_its_due_date_and_not_before() {
    let fake = FakeGitlab::default();
    let gitlab = spawn_fake(fake.clone()).await;
    let onramp = spawn_onramp().await;
    // A token with 10 days left: due 14 days before its expiry, so from 4 days before today on.
    connect(&onramp, &onramp.client, &gitlab, "glpat-soon").await;
    let now = OffsetDateTime::now_utc();

    let early = jobs::rotate::run(&onramp.state, now - time::Duration::days(10)).await.unwrap();
    assert_eq!((early.expiring, early.rotated, early.errors), (1, 0, 0), "not due yet: {early:?}");
    assert_eq!(fake.rotations(), 0, "nothing sent");

    let due = jobs::rotate::run(&onramp.state, now).await.unwrap();
    assert_eq!((due.expiring, due.rotated, due.errors), (1, 1, 0), "{due:?}");
    assert_eq!(fake.rotations(), 1);

    // The new token is not due: a second pass at the same moment sends nothing.
    let again = jobs::rotate::run(&onramp.state, now).await.unwrap();
    assert_eq!(again.rotated, 0, "{again:?}");
    assert_eq!(fake.rotations(), 1);
}

#[tokio::test]
async fn a_good_recheck_refreshes_the_list_of_groups_and_projects() {
    let fake = FakeGitlab::default();
    let gitlab = spawn_fake(fake.clone()).await;
    let onramp = spawn_onramp().await;
    connect(&onramp, &onramp.client, &gitlab, "glpat-good").await;
    let (ws, id) = only_connection(&onramp).await;
    // The list made on save, in the background: wait for it once.
    for _ in 0..600 {
        if app::store::scopes::known(&onramp.state.db, &ws, &id).await.unwrap() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let listed = |snapshot: Option<std::sync::Arc<app::gitlab::scope::Listed>>| -> Vec<String> {
        snapshot.expect("a list").snapshot.projects.iter().map(|p| p.path_with_namespace.clone()).collect()
    };
    let before = listed(app::store::scopes::snapshot(&onramp.state.db, &ws, &id).await.unwrap());
    assert!(!before.iter().any(|p| p == "acme/platform/nightly"), "{before:?}");
    fake.add_project("acme/platform/nightly").unwrap();

    let now = last_checked(&onramp).await + time::Duration::hours(25);
    assert_eq!(
        jobs::discover::run(&onramp.state, &ws, "no-such-connection").await.unwrap(),
        jobs::discover::Refresh::NeverListed
    );
    let done = jobs::recheck::run(&onramp.state, now, DAY).await.unwrap();
    assert_eq!((done.checked, done.refreshed), (1, 1), "{done:?}");
    let after = listed(app::store::scopes::snapshot(&onramp.state.db, &ws, &id).await.unwrap());
    assert!(after.iter().any(|p| p == "acme/platform/nightly"), "the new project is listed: {after:?}");
}

#[tokio::test]
async fn a_leased_pass_runs_once_at_a_time_and_frees_its_lease() {
    let onramp = spawn_onramp().await;
    let state = &onramp.state;
    let now = OffsetDateTime::now_utc();
    let minute = Duration::from_secs(60);
    // While a pass holds the job's lease, another pass of that job (here: this process again, as a
    // second process would) does not run; another job does.
    let inner = jobs::leased(state, Job::Purge, now, minute, async {
        let same = jobs::leased(state, Job::Purge, now, minute, jobs::purge::run(state)).await?;
        let other = jobs::leased(state, Job::Mail, now, minute, jobs::mail::run(state)).await?;
        Ok((same.is_some(), other.is_some()))
    })
    .await
    .unwrap();
    assert_eq!(inner, Some((false, true)));
    // Released when the pass ended.
    let done = jobs::leased(state, Job::Purge, now, minute, jobs::purge::run(state)).await.unwrap();
    assert!(done.is_some());
    // A lease its holder never released (it died) is taken over once it ran out.
    assert!(app::store::leases::claim(&state.db, Job::Rotate.name(), "a dead process", now.unix_timestamp(), 60)
        .await
        .unwrap());
    let pass = || async { Ok::<_, app::store::StoreError>(()) };
    assert!(jobs::leased(state, Job::Rotate, now, minute, pass()).await.unwrap().is_none());
    let later = now + time::Duration::seconds(60);
    assert!(jobs::leased(state, Job::Rotate, later, minute, pass()).await.unwrap().is_some());
}
