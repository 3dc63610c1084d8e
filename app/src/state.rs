//! Server-side state shared by pages, server functions and the middleware (Leptos context and
//! axum state).

use crate::gitlab::outbound::{Outbound, OutboundConfig};
use crate::store::crypto::Keyring;
use crate::store::Db;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub outbound: Arc<Outbound>,
    pub db: Db,
    pub keys: Keyring,
    /// Connection checks, per client IP and per user.
    pub checks_per_ip: Limiter<IpAddr>,
    pub checks_per_user: Limiter<String>,
    /// Log-in attempts, per client IP and per account.
    pub logins_per_ip: Limiter<IpAddr>,
    pub logins_per_account: Limiter<String>,
}

impl AppState {
    pub fn new(outbound: OutboundConfig, db: Db, keys: Keyring, checks_per_minute: NonZeroU32) -> Self {
        AppState {
            outbound: Arc::new(Outbound::new(outbound)),
            db,
            keys,
            checks_per_ip: Limiter::per_minute(checks_per_minute),
            checks_per_user: Limiter::per_minute(checks_per_minute),
            logins_per_ip: Limiter::per_minute(NonZeroU32::new(30).expect("non-zero")),
            logins_per_account: Limiter::per_minute(NonZeroU32::new(5).expect("non-zero")),
        }
    }
}

/// A keyed rate limiter (per process: behind a load balancer, each server counts on its own).
#[derive(Clone)]
pub struct Limiter<K: Hash + Eq + Clone> {
    limiter: Arc<DefaultKeyedRateLimiter<K>>,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    pub fn per_minute(n: NonZeroU32) -> Self {
        Limiter { limiter: Arc::new(RateLimiter::keyed(Quota::per_minute(n))) }
    }

    /// `Ok` when `key` may go ahead now, else the seconds to wait.
    pub fn check(&self, key: &K) -> Result<(), u64> {
        use governor::clock::{Clock, DefaultClock};
        self.limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_counts_per_key() {
        let limiter = Limiter::per_minute(NonZeroU32::new(2).unwrap());
        let a: IpAddr = "203.0.113.1".parse().unwrap();
        let b: IpAddr = "203.0.113.2".parse().unwrap();
        assert!(limiter.check(&a).is_ok());
        assert!(limiter.check(&a).is_ok());
        let wait = limiter.check(&a).unwrap_err();
        assert!((1..=60).contains(&wait), "{wait}");
        assert!(limiter.check(&b).is_ok());
    }
}
