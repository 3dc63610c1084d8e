//! Background jobs, one file per job: [`recheck`] (saved connections re-checked daily),
//! [`rotate`] (tokens rotated before they expire, reminders), [`discover`] (a connection's list of
//! groups and projects refreshed after a good re-check), [`mail`] (pending connection events
//! mailed) and [`purge`] (expired sessions, flashes, kept checks, old audit events).
//!
//! A job is a **pass**: one public `run` that does what is due at the `now` it is given and returns
//! what it did (counts), so tests call it directly with a fixed time. A pass never sleeps and
//! never loops; `server` schedules passes (sleep until due, call `run`).
//!
//! A pass run by the server is **leased** ([`leased`]): it first claims its job's row in
//! `job_leases` ([`crate::store::leases`]), so of several Onramp processes on one database one runs
//! a job's pass at a time, and the others skip it. The lease only saves duplicate work: each
//! connection keeps its own claim (the re-check's `claim_due`, the rotation ledger's row per
//! token, the discovery's claim in `connection_scopes`), which is what makes a connection handled
//! once even when passes overlap (a lease that ran out, a test calling `run` beside a server).

pub mod deliver;
pub mod discover;
pub mod mail;
pub mod purge;
pub mod recheck;
pub mod rotate;

use crate::state::AppState;
use crate::store::{leases, StoreError};
use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;
use time::OffsetDateTime;

/// The jobs that take a lease, by the name of their row in `job_leases`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Job {
    Recheck,
    Rotate,
    Mail,
    Purge,
}

impl Job {
    /// The key of the job's lease.
    pub fn name(self) -> &'static str {
        match self {
            Job::Recheck => "recheck",
            Job::Rotate => "rotate",
            Job::Mail => "mail",
            Job::Purge => "purge",
        }
    }
}

/// This process, as the holder of leases: one id for the life of the process.
pub fn holder() -> &'static str {
    static HOLDER: OnceLock<String> = OnceLock::new();
    HOLDER.get_or_init(crate::store::new_id)
}

/// Runs `pass` when this process gets `job`'s lease (for `ttl` from `now`), and releases the lease
/// after it. `Ok(None)`: another process holds it, nothing ran. A holder that dies keeps the lease
/// until `ttl` runs out; pick `ttl` so that a pass left by a dead process is taken over by the
/// next one due.
pub async fn leased<T, F>(
    state: &AppState,
    job: Job,
    now: OffsetDateTime,
    ttl: Duration,
    pass: F,
) -> Result<Option<T>, StoreError>
where
    F: Future<Output = Result<T, StoreError>>,
{
    let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
    if !leases::claim(&state.db, job.name(), holder(), now.unix_timestamp(), ttl).await? {
        tracing::debug!(job = job.name(), "another process holds the job's lease");
        return Ok(None);
    }
    let done = pass.await;
    if let Err(e) = leases::release(&state.db, job.name(), holder()).await {
        tracing::warn!(error = %e, job = job.name(), "cannot release a job's lease; it runs out by itself");
    }
    done.map(Some)
}
