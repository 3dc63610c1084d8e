//! Server-side state shared by pages and server functions (provided as Leptos context).

use crate::gitlab::outbound::{Outbound, OutboundConfig};
use crate::gitlab::report::StoredCheck;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone)]
pub struct AppState {
    pub outbound: Arc<Outbound>,
    pub reports: ReportStore,
    pub check_limiter: CheckLimiter,
}

impl AppState {
    pub fn new(outbound: OutboundConfig, checks_per_minute: NonZeroU32) -> Self {
        AppState {
            outbound: Arc::new(Outbound::new(outbound)),
            reports: ReportStore::default(),
            check_limiter: CheckLimiter::new(checks_per_minute),
        }
    }
}

#[derive(Clone, Default)]
pub struct ReportStore {
    inner: Arc<Mutex<HashMap<String, (Instant, StoredCheck)>>>,
}

impl ReportStore {
    const TTL: Duration = Duration::from_secs(30 * 60);
    const MAX: usize = 10_000;

    /// Keeps `check` and returns its id (128 random bits, so ids cannot be guessed).
    pub fn put(&self, check: StoredCheck) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let now = Instant::now();
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, (at, _)| now.duration_since(*at) < Self::TTL);
        if map.len() >= Self::MAX {
            if let Some(oldest) = map.iter().min_by_key(|(_, (at, _))| *at).map(|(k, _)| k.clone()) {
                map.remove(&oldest);
            }
        }
        map.insert(id.clone(), (now, check));
        id
    }

    pub fn get(&self, id: &str) -> Option<StoredCheck> {
        let map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        map.get(id).filter(|(at, _)| at.elapsed() < Self::TTL).map(|(_, c)| c.clone())
    }
}

/// Limits connection checks per client IP (each check makes requests on the caller's behalf).
#[derive(Clone)]
pub struct CheckLimiter {
    limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

impl CheckLimiter {
    pub fn new(per_minute: NonZeroU32) -> Self {
        CheckLimiter { limiter: Arc::new(RateLimiter::keyed(Quota::per_minute(per_minute))) }
    }

    /// `Ok` when `ip` may run a check now, else the seconds to wait.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        use governor::clock::{Clock, DefaultClock};
        self.limiter.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gitlab::report::Report;

    #[test]
    fn limiter_counts_per_ip() {
        let limiter = CheckLimiter::new(NonZeroU32::new(2).unwrap());
        let a: IpAddr = "203.0.113.1".parse().unwrap();
        let b: IpAddr = "203.0.113.2".parse().unwrap();
        assert!(limiter.check(a).is_ok());
        assert!(limiter.check(a).is_ok());
        let wait = limiter.check(a).unwrap_err();
        assert!((1..=60).contains(&wait), "{wait}");
        assert!(limiter.check(b).is_ok());
    }

    #[test]
    fn store_round_trips_and_ids_differ() {
        let store = ReportStore::default();
        let report = Report::new("https://gitlab.com".into(), None, None, None, vec![], 1);
        let check = StoredCheck { report, typed_base_url: "gitlab.com".into(), extra_ca_pem: String::new() };
        let a = store.put(check.clone());
        let b = store.put(check);
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert_eq!(store.get(&a).unwrap().typed_base_url, "gitlab.com");
        assert!(store.get("nope").is_none());
    }
}
