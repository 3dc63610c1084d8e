//! A saved GitLab integration as pages and the JSON API show it: never the token, only its name and
//! last four characters.

use crate::gitlab::report::Report;
use serde::{Deserialize, Serialize};

/// Days before expiry from which Onramp warns (the check's report and the pages' health alike).
pub const EXPIRY_WARNING_DAYS: i64 = 30;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Integration {
    pub id: String,
    /// The workspace that owns it.
    pub workspace_id: String,
    pub base_url: String,
    pub gitlab_version: Option<String>,
    pub username: String,
    pub token_name: Option<String>,
    pub token_last4: String,
    pub scopes: Vec<String>,
    /// `YYYY-MM-DD`, or none when the token does not expire.
    pub expires_at: Option<String>,
    /// Unix seconds.
    pub last_check_at: i64,
    pub last_check_ok: bool,
    pub last_report: Report,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What the user should know about a saved connection right now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    Healthy,
    /// Expires within [`EXPIRY_WARNING_DAYS`] days (the number of days left).
    ExpiresSoon(i64),
    Expired,
    /// The last re-check failed.
    CheckFailed,
}

impl Integration {
    /// Whole days from `today` (`YYYY-MM-DD`) until the token expires.
    pub fn days_left(&self, today: &str) -> Option<i64> {
        Some(days_from_civil(self.expires_at.as_deref()?)? - days_from_civil(today)?)
    }

    pub fn health(&self, today: &str) -> Health {
        match self.days_left(today) {
            Some(d) if d <= 0 => Health::Expired,
            _ if !self.last_check_ok => Health::CheckFailed,
            Some(d) if d <= EXPIRY_WARNING_DAYS => Health::ExpiresSoon(d),
            _ => Health::Healthy,
        }
    }
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date (proleptic Gregorian), without a date library, so
/// that it is usable on both sides.
fn days_from_civil(date: &str) -> Option<i64> {
    let mut parts = date.get(..10)?.splitn(3, '-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let d: i64 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn integration(expires_at: Option<&str>, ok: bool) -> Integration {
        Integration {
            id: "i".into(),
            workspace_id: "w".into(),
            base_url: "https://gitlab.com".into(),
            gitlab_version: None,
            username: "jdoe".into(),
            token_name: None,
            token_last4: "abcd".into(),
            scopes: vec![],
            expires_at: expires_at.map(str::to_owned),
            last_check_at: 0,
            last_check_ok: ok,
            last_report: Report::new("https://gitlab.com".into(), None, None, None, vec![], 0),
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn days_and_health() {
        assert_eq!(days_from_civil("1970-01-01"), Some(0));
        assert_eq!(days_from_civil("2000-03-01"), Some(11017));
        assert_eq!(days_from_civil("nope"), None);
        let today = "2026-11-25";
        assert_eq!(integration(Some("2026-12-25"), true).days_left(today), Some(30));
        assert_eq!(integration(Some("2026-12-25"), true).health(today), Health::ExpiresSoon(30));
        assert_eq!(integration(Some("2027-06-01"), true).health(today), Health::Healthy);
        assert_eq!(integration(Some("2026-11-25"), true).health(today), Health::Expired);
        assert_eq!(integration(None, true).health(today), Health::Healthy);
        assert_eq!(integration(None, false).health(today), Health::CheckFailed);
    }
}
