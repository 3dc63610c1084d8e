//! Server-side state shared by pages, server functions and the middleware (Leptos context and
//! axum state).

use crate::client::TrustedProxies;
use crate::gitlab::outbound::{Outbound, OutboundConfig};
use crate::store::crypto::Keyring;
use crate::store::Db;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

/// The knobs of [`AppState`] that come from the environment, with their defaults.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `ONRAMP_CHECK_RATE_PER_MIN`: connection checks per client and per user, and minute.
    pub checks_per_minute: NonZeroU32,
    /// `ONRAMP_SIGNUPS_PER_IP_PER_HOUR`: new accounts per client address (IPv6: per /64).
    pub signups_per_hour: NonZeroU32,
    /// New Onramp API tokens per account and hour (each is a row in every workspace's audit log).
    pub api_tokens_per_hour: NonZeroU32,
    /// `ONRAMP_PLATFORM_RATE_PER_MIN`: `/api/v1` calls per platform key and minute (600).
    pub platform_calls_per_minute: NonZeroU32,
    /// `ONRAMP_TRUSTED_PROXIES`: whose `X-Forwarded-For` / `-Proto` is believed.
    pub trusted_proxies: TrustedProxies,
    /// `ONRAMP_AUDIT_DAYS`: how long the audit log keeps an event.
    pub audit_days: i64,
    /// Rotate a token this many days before it expires (`ONRAMP_ROTATE_DAYS_BEFORE`).
    pub rotate_days_before: i64,
    /// How long a process may wait for a rotation's answer before another one asks GitLab
    /// whether it happened. Longer than any request's timeout.
    pub rotation_lease_seconds: i64,
    /// How hard discovery and previews press on a GitLab.
    pub discovery: crate::gitlab::discover::Knobs,
    /// `ONRAMP_PUBLIC_URL` (trimmed, no trailing slash): where people reach Onramp, for the links
    /// they copy; `https://` there means the browser speaks https even when a proxy in front of
    /// Onramp does not. Read once at start, like every setting.
    pub public_url: Option<String>,
}

impl Settings {
    /// Onramp is reached over https, as `ONRAMP_PUBLIC_URL` says.
    pub fn public_url_is_https(&self) -> bool {
        self.public_url.as_deref().is_some_and(|u| u.starts_with("https://"))
    }

    /// `ONRAMP_PUBLIC_URL` as typed, tidied; `None` when unset or blank.
    pub fn public_url_from(value: Option<&str>) -> Option<String> {
        value.map(|u| u.trim().trim_end_matches('/').to_owned()).filter(|u| !u.is_empty())
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            checks_per_minute: NonZeroU32::new(30).expect("non-zero"),
            signups_per_hour: NonZeroU32::new(10).expect("non-zero"),
            api_tokens_per_hour: NonZeroU32::new(API_TOKENS_PER_HOUR).expect("non-zero"),
            platform_calls_per_minute: NonZeroU32::new(600).expect("non-zero"),
            trusted_proxies: TrustedProxies::default(),
            audit_days: crate::workspace::AUDIT_DAYS,
            rotate_days_before: crate::gitlab::rotation::DEFAULT_DAYS_BEFORE,
            rotation_lease_seconds: 300,
            discovery: crate::gitlab::discover::Knobs::default(),
            public_url: None,
        }
    }
}

/// New API tokens an account may create per hour (a burst of this many, then one every
/// 3600 / this seconds).
pub const API_TOKENS_PER_HOUR: u32 = 20;

/// Log-in attempts per client address and minute, whatever the account.
pub const LOGINS_PER_IP_PER_MINUTE: u32 = 30;
/// Log-in attempts per account from one client address and minute: guessing is slow, and the
/// owner, trying from another address, is not locked out by someone else's guesses.
pub const LOGINS_PER_ACCOUNT_AND_IP_PER_MINUTE: u32 = 5;
/// Log-in attempts per account and minute from all addresses together: the ceiling for a guesser
/// with many addresses, far above what the owner needs.
pub const LOGINS_PER_ACCOUNT_PER_MINUTE: u32 = 60;

/// Everything the handlers share, behind one `Arc`: the router clones the state of its
/// middleware for every request, and a clone of a dozen `Arc`s (and their drop) had become a
/// third of the CPU time of a step page served from memory.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] holds.
#[derive(Clone)]
pub struct Shared {
    pub outbound: Arc<Outbound>,
    pub db: Db,
    pub keys: Keyring,
    pub trusted_proxies: Arc<TrustedProxies>,
    pub settings: Arc<Settings>,
    /// Connection checks, per client address and per user.
    pub checks_per_ip: Limiter<IpAddr>,
    pub checks_per_user: Limiter<String>,
    /// Sign-ups per client address.
    pub signups_per_ip: Limiter<IpAddr>,
    /// New API tokens per account.
    pub api_tokens_per_user: Limiter<String>,
    /// Log-in attempts (see the constants above). Accounts are keyed by a hash of the address
    /// typed, so a limiter never holds more than 16 bytes of it.
    pub logins_per_ip: Limiter<IpAddr>,
    pub logins_per_account_and_ip: Limiter<([u8; 16], IpAddr)>,
    pub logins_per_account: Limiter<[u8; 16]>,
    /// `/api/v1` calls per platform key.
    pub platform_calls: Limiter<String>,
    /// The mail server, when one is set up: connection events then wait to be mailed.
    pub mailer: Option<Arc<crate::mail::Mailer>>,
}

impl AppState {
    pub fn new(outbound: OutboundConfig, db: Db, keys: Keyring, settings: Settings) -> Self {
        fn per_minute<K: Hash + Eq + Clone>(n: u32) -> Limiter<K> {
            Limiter::new(Quota::per_minute(NonZeroU32::new(n).expect("non-zero")))
        }
        AppState(Arc::new(Shared {
            outbound: Arc::new(Outbound::new(outbound)),
            db,
            keys,
            trusted_proxies: Arc::new(settings.trusted_proxies.clone()),
            checks_per_ip: Limiter::new(Quota::per_minute(settings.checks_per_minute)),
            checks_per_user: Limiter::new(Quota::per_minute(settings.checks_per_minute)),
            signups_per_ip: Limiter::new(Quota::per_hour(settings.signups_per_hour)),
            api_tokens_per_user: Limiter::new(Quota::per_hour(settings.api_tokens_per_hour)),
            logins_per_ip: per_minute(LOGINS_PER_IP_PER_MINUTE),
            logins_per_account_and_ip: per_minute(LOGINS_PER_ACCOUNT_AND_IP_PER_MINUTE),
            logins_per_account: per_minute(LOGINS_PER_ACCOUNT_PER_MINUTE),
            platform_calls: Limiter::new(Quota::per_minute(settings.platform_calls_per_minute)),
            settings: Arc::new(settings),
            mailer: None,
        }))
    }

    /// Mails connection events through `mailer` from now on.
    pub fn with_mailer(self, mailer: crate::mail::Mailer) -> Self {
        let mut shared = Arc::unwrap_or_clone(self.0);
        shared.mailer = Some(Arc::new(mailer));
        AppState(Arc::new(shared))
    }

    /// Forgets rate-limit windows that have refilled, so the limiters' memory follows the number
    /// of clients active within the last window, not every client ever seen. Run every minute.
    pub fn forget_idle_limits(&self) -> usize {
        self.checks_per_ip.forget_idle()
            + self.checks_per_user.forget_idle()
            + self.signups_per_ip.forget_idle()
            + self.api_tokens_per_user.forget_idle()
            + self.logins_per_ip.forget_idle()
            + self.logins_per_account_and_ip.forget_idle()
            + self.logins_per_account.forget_idle()
            + self.platform_calls.forget_idle()
    }
}

/// A keyed rate limiter (per process: behind a load balancer, each server counts on its own).
#[derive(Clone)]
pub struct Limiter<K: Hash + Eq + Clone> {
    limiter: Arc<DefaultKeyedRateLimiter<K>>,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    pub fn new(quota: Quota) -> Self {
        Limiter { limiter: Arc::new(RateLimiter::keyed(quota)) }
    }

    pub fn per_minute(n: NonZeroU32) -> Self {
        Self::new(Quota::per_minute(n))
    }

    /// `Ok` when `key` may go ahead now, else the seconds to wait.
    pub fn check(&self, key: &K) -> Result<(), u64> {
        use governor::clock::{Clock, DefaultClock};
        self.limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }

    /// Drops the keys whose window is full again (they behave exactly like unseen keys); returns
    /// how many keys are left.
    pub fn forget_idle(&self) -> usize {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
        self.limiter.len()
    }

    pub fn len(&self) -> usize {
        self.limiter.len()
    }

    pub fn is_empty(&self) -> bool {
        self.limiter.is_empty()
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

    #[test]
    fn idle_keys_are_forgotten() {
        // 1000 per second: a key's window refills within a millisecond.
        let limiter: Limiter<u32> = Limiter::new(Quota::per_second(NonZeroU32::new(1000).unwrap()));
        for key in 0..10_000 {
            limiter.check(&key).unwrap();
        }
        assert_eq!(limiter.len(), 10_000);
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(limiter.forget_idle(), 0);
        // a key still inside its window is kept
        let slow: Limiter<u32> = Limiter::per_minute(NonZeroU32::new(5).unwrap());
        slow.check(&1).unwrap();
        assert_eq!(slow.forget_idle(), 1);
    }

    #[test]
    fn the_public_url_is_tidied_once() {
        assert_eq!(
            Settings::public_url_from(Some(" https://onramp.example.com/ ")).as_deref(),
            Some("https://onramp.example.com")
        );
        assert_eq!(Settings::public_url_from(Some("  ")), None);
        assert_eq!(Settings::public_url_from(None), None);
        let https =
            Settings { public_url: Settings::public_url_from(Some("https://o.example")), ..Settings::default() };
        assert!(https.public_url_is_https());
        let http = Settings { public_url: Settings::public_url_from(Some("http://o.example")), ..Settings::default() };
        assert!(!http.public_url_is_https());
        assert!(!Settings::default().public_url_is_https());
    }
}
