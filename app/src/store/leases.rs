//! Leases of background jobs (`job_leases`): one row per job, held by one process until it
//! releases it or its time runs out. Several Onramp processes on one database claim a job's lease
//! before running its pass, so one pass of a job runs at a time (see `crate::jobs`).
//!
//! A claim is one statement on both backends, `INSERT … ON CONFLICT (job) DO UPDATE … WHERE
//! lease_until <= now`: PostgreSQL re-evaluates the `WHERE` on the row a concurrent claim just
//! wrote, so of two claims at once one updates and the other changes nothing; SQLite takes the
//! write lock before the statement reads (what `BEGIN IMMEDIATE` does for a transaction), so a
//! second writer waits for the busy timeout instead of failing on a stale read, and no
//! transaction is ever left open on an error.

use super::{Db, StoreError};

/// Claims `job` for `holder` until `now + ttl_seconds` when nobody holds it or its lease ran out
/// (`lease_until <= now`). True when this call got it.
pub async fn claim(db: &Db, job: &str, holder: &str, now: i64, ttl_seconds: i64) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO job_leases (job, holder, lease_until) VALUES ($1, $2, $3) \
         ON CONFLICT (job) DO UPDATE SET holder = excluded.holder, lease_until = excluded.lease_until \
         WHERE job_leases.lease_until <= $4",
    )
    .bind(job)
    .bind(holder)
    .bind(now.saturating_add(ttl_seconds.max(1)))
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Gives `job` up, when `holder` still holds it (a lease taken over after it ran out stays with
/// its new holder). True when it was released.
pub async fn release(db: &Db, job: &str, holder: &str) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM job_leases WHERE job = $1 AND holder = $2")
        .bind(job)
        .bind(holder)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_db::sqlite;

    #[tokio::test]
    async fn of_claims_at_once_one_wins() {
        let (db, _dir) = sqlite().await;
        let claims = (0..8).map(|i| {
            let db = db.clone();
            tokio::spawn(async move { claim(&db, "recheck", &format!("process-{i}"), 1_000, 60).await.unwrap() })
        });
        let mut won = 0;
        for claim in claims {
            won += usize::from(claim.await.unwrap());
        }
        assert_eq!(won, 1, "exactly one process holds the lease");
        // Another job has its own lease.
        assert!(claim(&db, "purge", "process-0", 1_000, 60).await.unwrap());
    }

    #[tokio::test]
    async fn a_held_lease_is_refused_until_it_runs_out_then_taken_over() {
        let (db, _dir) = sqlite().await;
        assert!(claim(&db, "rotate", "a", 1_000, 60).await.unwrap());
        assert!(!claim(&db, "rotate", "b", 1_059, 60).await.unwrap(), "held until 1060");
        assert!(!claim(&db, "rotate", "a", 1_059, 60).await.unwrap(), "not even its holder claims it twice");
        assert!(claim(&db, "rotate", "b", 1_060, 60).await.unwrap(), "ran out: taken over");
        // The first holder, back late, cannot release what is now b's.
        assert!(!release(&db, "rotate", "a").await.unwrap());
        assert!(!claim(&db, "rotate", "c", 1_100, 60).await.unwrap(), "b holds it");
    }

    #[tokio::test]
    async fn release_frees_the_lease() {
        let (db, _dir) = sqlite().await;
        assert!(claim(&db, "mail", "a", 1_000, 600).await.unwrap());
        assert!(release(&db, "mail", "a").await.unwrap());
        assert!(!release(&db, "mail", "a").await.unwrap(), "released once");
        assert!(claim(&db, "mail", "b", 1_001, 600).await.unwrap(), "free again long before it would run out");
    }
}
