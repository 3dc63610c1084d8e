//! A saved GitLab integration as pages and the JSON API show it: never the token, only its name and
//! last four characters.

use crate::gitlab::report::Report;
use serde::{Deserialize, Serialize};

/// Days before expiry from which Onramp warns: GitLab's rule, kept by the `gitlab` crate.
pub use crate::gitlab::report::EXPIRY_WARNING_DAYS;

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
    /// GitLab's id of the stored token (known from the first check that read
    /// `/personal_access_tokens/self`); a rotation gives the connection a new one.
    pub token_id: Option<i64>,
    /// When GitLab created the stored token (its timestamp as GitLab wrote it).
    pub token_created_at: Option<String>,
    /// When Onramp last rotated the token (Unix seconds).
    pub rotated_at: Option<i64>,
}

/// One rotation, as the connection's page and the API show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotation {
    pub id: String,
    pub integration_id: String,
    pub workspace_id: String,
    pub token_id: i64,
    /// `sending`, `rotated`, `lost`, `refused`, `kept`.
    pub state: String,
    /// `schedule` or `manual`.
    pub trigger: String,
    pub new_expires_at: Option<String>,
    pub message: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
}

/// What the connection's page says about rotation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationView {
    /// Why Onramp cannot rotate this token (then it reminds instead); `None` when it can.
    pub cannot: Option<String>,
    /// The day Onramp rotates it (`YYYY-MM-DD`), when it can.
    pub rotates_on: Option<String>,
    /// The latest rotation, if any.
    pub latest: Option<Rotation>,
}

/// Something that happened to a connection that someone should hear about: shown on its page,
/// listed by the API, mailed when SMTP is set up. Never holds the token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionEvent {
    pub id: String,
    /// One of [`event`]'s kinds.
    pub kind: String,
    /// What happened and what to do, in a sentence or two.
    pub detail: String,
    /// The wizard step that fixes it, if something needs fixing.
    pub fix_step: Option<u8>,
    /// Unix seconds.
    pub created_at: i64,
    /// `pending`, `sending`, `sent`, `failed` (gave up), `none` (no mail server, or nobody to tell).
    pub mail_state: String,
}

/// The kinds of [`ConnectionEvent`].
pub mod event {
    pub const ROTATED: &str = "rotated";
    pub const ROTATION_FAILED: &str = "rotation_failed";
    pub const ROTATION_LOST: &str = "rotation_lost";
    pub const CHECK_FAILED: &str = "check_failed";
    pub const EXPIRES_SOON: &str = "expires_soon";

    /// A mail's subject line for an event of this kind on the connection named `connection`.
    pub fn subject(kind: &str, connection: &str) -> String {
        match kind {
            ROTATED => format!("Onramp rotated the GitLab token of {connection}"),
            ROTATION_FAILED => format!("Onramp could not rotate the GitLab token of {connection}"),
            ROTATION_LOST => format!("{connection} needs a new GitLab token"),
            CHECK_FAILED => format!("The GitLab connection {connection} stopped working"),
            EXPIRES_SOON => format!("The GitLab token of {connection} expires soon"),
            _ => format!("News about the GitLab connection {connection}"),
        }
    }
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
            token_id: None,
            token_created_at: None,
            rotated_at: None,
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

/// What the pages show of a connection's scope: where discovery stands, the saved selection and
/// what it includes, the last preview of it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeSummary {
    /// `discovering`, `ready` or `failed`; empty when discovery never ran.
    pub state: String,
    pub started_at: i64,
    pub discovered_at: Option<i64>,
    pub groups_found: i64,
    pub projects_found: i64,
    /// Running for longer than a run may take (its process stopped): it can be started again.
    pub stalled: bool,
    pub error: Option<String>,
    pub selection: crate::gitlab::scope::Selection,
    pub saved_at: Option<i64>,
    /// Unsaved changes in the picker.
    pub draft: Option<crate::gitlab::scope::Selection>,
    /// Projects the saved selection includes, and of those the ones new since the list before.
    pub included: usize,
    pub included_new: usize,
    /// Projects discovered, and how many the user cannot read (role too low).
    pub projects: usize,
    pub unreadable: usize,
    pub preview: Option<crate::gitlab::scope::Preview>,
}

/// A group row of the picker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRow {
    pub full_path: String,
    pub name: String,
    pub access_level: u8,
    /// Included in the selection being edited.
    pub included: bool,
    /// Included through this ancestor (its checkbox decides).
    pub through: Option<String>,
    /// Projects under it (subgroups included).
    pub projects: usize,
}

/// The picker page: the summary, the filters, one page of groups and one of projects, all with
/// the selection being edited applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Picker {
    pub summary: ScopeSummary,
    pub filter: crate::gitlab::scope::Filter,
    pub groups: crate::gitlab::scope::Page<GroupRow>,
    pub projects: crate::gitlab::scope::Page<crate::gitlab::scope::ProjectView>,
    /// Projects the edited selection includes.
    pub editing_included: usize,
    /// The preview of the edited selection (on the preview page), or why there is none.
    pub preview: Option<Result<crate::gitlab::scope::Preview, String>>,
    /// Whether the viewer may change the selection.
    pub may_edit: bool,
}

/// The most connections one workspace may have: each is discovered, re-checked and rotated, and
/// its snapshot kept (up to 100,000 entries).
pub const MAX_PER_WORKSPACE: i64 = 50;

/// What to tell someone whose workspace has [`MAX_PER_WORKSPACE`] connections and adds one.
pub fn full_message() -> String {
    format!(
        "This workspace has {MAX_PER_WORKSPACE} GitLab connections, the most one workspace may have: remove one you no \
         longer need on its page, then connect again."
    )
}
