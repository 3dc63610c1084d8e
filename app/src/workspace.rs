//! Workspaces: who may do what with a team's GitLab connections. Plain data and pure rules, used
//! by [`crate::auth`] (the one place that decides) and tested here.
//!
//! A workspace owns connections; accounts are its members with a [`Role`]. An account may belong
//! to several workspaces and works in one at a time (its *current* workspace, kept on the account,
//! so that the wizard's step URLs stay the same for everybody).

use serde::{Deserialize, Serialize};

/// A member's role in a workspace, from most to least powerful.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Manages members and everything an admin does.
    Owner,
    /// Connects, replaces, re-checks and disconnects connections; invites admins and viewers.
    Admin,
    /// Sees connections and their health; never a secret, never a change.
    Viewer,
}

/// Something a member may want to do in a workspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// See the connections, their health and check history.
    ViewConnections,
    /// Connect, replace a token, re-check, disconnect, choose projects.
    ManageConnections,
    /// Create and revoke invitations (for roles up to one's own).
    Invite,
    /// Change roles, remove members, rename the workspace.
    ManageMembers,
    /// Read the audit log.
    ViewAudit,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Owner, Role::Admin, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text.trim())
    }

    /// As pages show it.
    pub fn label(self) -> &'static str {
        match self {
            Role::Owner => "Owner",
            Role::Admin => "Admin",
            Role::Viewer => "Viewer",
        }
    }

    /// What the role allows, to follow "you" or "they can".
    pub fn explain(self) -> &'static str {
        match self {
            Role::Owner => "manage members, and connect and manage GitLab connections",
            Role::Admin => "connect, re-check, replace and disconnect GitLab connections",
            Role::Viewer => "see the connections and their health, and change nothing",
        }
    }

    pub fn may(self, action: Action) -> bool {
        match action {
            Action::ViewConnections => true,
            Action::ManageConnections | Action::Invite | Action::ViewAudit => self <= Role::Admin,
            Action::ManageMembers => self == Role::Owner,
        }
    }

    /// Whether a member with this role may hand out `other` (in an invitation): never more than
    /// one's own role.
    pub fn may_grant(self, other: Role) -> bool {
        self.may(Action::Invite) && self <= other
    }
}

/// One of the viewer's workspaces, with their role in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub id: String,
    pub name: String,
    pub role: Role,
}

/// A member as the workspace's settings list them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub user_id: String,
    pub email: String,
    /// Whether Onramp checked that the address is this member's. It sends no confirmation mail,
    /// so never yet: pages say "unverified" wherever others see the address.
    #[serde(default)]
    pub email_verified: bool,
    pub role: Role,
    /// Unix seconds.
    pub joined_at: i64,
}

/// What pages add to an address others see when Onramp has not verified it.
pub const UNVERIFIED: &str = "unverified";

/// A pending invitation as listed (never its secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    pub id: String,
    pub role: Role,
    /// Only this address may accept it; `None`: whoever has the link.
    pub email: Option<String>,
    pub invited_by: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// What the invitation page shows before someone accepts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationInfo {
    pub workspace_name: String,
    pub invited_by: String,
    /// Whether Onramp checked that `invited_by` is its owner's address (never yet, see
    /// [`Member::email_verified`]).
    #[serde(default)]
    pub invited_by_verified: bool,
    pub role: Role,
    pub email: Option<String>,
    /// Where the colleague goes after joining (a wizard step), when the link was made there.
    pub next: Option<String>,
    pub state: InvitationState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvitationState {
    Pending,
    Accepted,
    Declined,
    Revoked,
    Expired,
}

impl InvitationState {
    /// Why an invitation that is not pending cannot be used, in words.
    pub fn explain(self) -> &'static str {
        match self {
            InvitationState::Pending => "This invitation is waiting for you.",
            InvitationState::Accepted => {
                "This invitation has already been used. Each link works once: ask for a new one."
            }
            InvitationState::Declined => "This invitation was declined. Ask for a new one if that was a mistake.",
            InvitationState::Revoked => "This invitation was withdrawn by the workspace. Ask for a new one.",
            InvitationState::Expired => "This invitation has expired (links last 7 days). Ask for a new one.",
        }
    }
}

/// Why a change to a workspace's members was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MemberError {
    #[error("A workspace needs at least one owner: make someone else owner first.")]
    LastOwner,
    #[error("This account is not a member of the workspace.")]
    NotAMember,
    #[error("You cannot give a role above your own.")]
    AboveOwnRole,
    #[error("This invitation is for another email address: log in with the address it was sent to.")]
    OtherEmail,
    #[error("{}", .0.explain())]
    NotPending(InvitationState),
    #[error("This workspace has too many open invitations ({0}): revoke some first.")]
    TooManyInvitations(i64),
    #[error("You own too many workspaces ({0}).")]
    TooManyWorkspaces(i64),
    #[error("Give the workspace a name of 1 to 80 characters.")]
    BadName,
    #[error(
        "A workspace name cannot contain invisible characters (control, bidi or zero-width characters): type it \
         again by hand."
    )]
    InvisibleName,
    #[error(
        "The colleague who made this link can no longer invite to this workspace (they left, or their role \
         changed). Ask an owner or admin of the workspace for a new link."
    )]
    InviterCannotInvite,
}

/// Whether a member with `role` may stop being an owner (role change or removal), given how many
/// owners the workspace has now.
pub fn leaves_an_owner(role: Role, owners: i64) -> Result<(), MemberError> {
    if role == Role::Owner && owners <= 1 {
        Err(MemberError::LastOwner)
    } else {
        Ok(())
    }
}

/// The name of a new account's own workspace: "jane's workspace" for jane@example.com.
pub fn personal_name(email: &str) -> String {
    let local = email.split('@').next().filter(|l| !l.is_empty()).unwrap_or(email);
    format!("{local}'s workspace")
}

/// A character that shows nothing, or moves or reorders the text around it: control characters
/// (Cc), format characters (Cf: bidi controls such as U+202E, zero-width spaces and joiners, the
/// BOM…) and the line and paragraph separators (Zl, Zp). Names that others are shown may not have
/// them: `Acme\u{202E}gnp.exe` would read differently from what it is.
pub fn is_invisible(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    matches!(
        c.general_category(),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    )
}

/// A workspace name as typed: trimmed, 1 to 80 characters, no invisible characters
/// ([`is_invisible`]): invitees read it to decide whom they join.
pub fn parse_name(text: &str) -> Result<String, MemberError> {
    let name = text.trim();
    if name.chars().any(is_invisible) {
        return Err(MemberError::InvisibleName);
    }
    let count = name.chars().count();
    if (1..=80).contains(&count) {
        Ok(name.to_owned())
    } else {
        Err(MemberError::BadName)
    }
}

/// Open invitations a workspace may have at once.
pub const MAX_OPEN_INVITATIONS: i64 = 50;
/// Workspaces one account may own.
pub const MAX_OWNED_WORKSPACES: i64 = 20;

/// How long an invitation link works.
pub const INVITATION_SECONDS: i64 = 7 * 24 * 3600;

/// An entry of the audit log: who did what, when, from where. Never a secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub id: String,
    /// Unix seconds.
    pub at: i64,
    pub actor: String,
    pub ip: String,
    pub action: String,
    pub target: String,
}

/// The actions the audit log records, as stored and as the API answers them.
pub mod audit {
    pub const MEMBER_INVITED: &str = "member.invited";
    pub const INVITATION_REVOKED: &str = "invitation.revoked";
    pub const INVITATION_DECLINED: &str = "invitation.declined";
    pub const MEMBER_JOINED: &str = "member.joined";
    pub const MEMBER_ROLE_CHANGED: &str = "member.role_changed";
    pub const MEMBER_REMOVED: &str = "member.removed";
    pub const MEMBER_LEFT: &str = "member.left";
    pub const WORKSPACE_CREATED: &str = "workspace.created";
    pub const WORKSPACE_RENAMED: &str = "workspace.renamed";
    pub const CONNECTION_SAVED: &str = "connection.saved";
    pub const CONNECTION_RECHECKED: &str = "connection.rechecked";
    pub const TOKEN_REPLACED: &str = "connection.token_replaced";
    pub const TOKEN_ROTATED: &str = "connection.token_rotated";
    pub const CONNECTION_DISCONNECTED: &str = "connection.disconnected";
    pub const API_TOKEN_CREATED: &str = "api_token.created";
    pub const API_TOKEN_REVOKED: &str = "api_token.revoked";
    pub const SCOPE_SAVED: &str = "connection.scope_saved";
    pub const PLATFORM_READ: &str = "platform.read";
    pub const PLATFORM_KEY_CREATED: &str = "platform_key.created";
    pub const PLATFORM_KEY_REVOKED: &str = "platform_key.revoked";

    /// How the audit page says it.
    pub fn describe(action: &str) -> &'static str {
        match action {
            MEMBER_INVITED => "invited a member",
            INVITATION_REVOKED => "revoked an invitation",
            INVITATION_DECLINED => "declined an invitation",
            MEMBER_JOINED => "joined",
            MEMBER_ROLE_CHANGED => "changed a role",
            MEMBER_REMOVED => "removed a member",
            MEMBER_LEFT => "left the workspace",
            WORKSPACE_CREATED => "created the workspace",
            WORKSPACE_RENAMED => "renamed the workspace",
            CONNECTION_SAVED => "saved a GitLab connection",
            CONNECTION_RECHECKED => "re-checked a connection",
            TOKEN_REPLACED => "replaced a connection's token",
            TOKEN_ROTATED => "asked Onramp to rotate a connection's token",
            CONNECTION_DISCONNECTED => "disconnected GitLab",
            API_TOKEN_CREATED => "created an API token",
            API_TOKEN_REVOKED => "revoked an API token",
            SCOPE_SAVED => "chose the groups and projects a connection reads",
            PLATFORM_READ => "read through the platform API",
            PLATFORM_KEY_CREATED => "created a platform key",
            PLATFORM_KEY_REVOKED => "revoked a platform key",
            _ => "changed something",
        }
    }
}

/// Why a `before=` of the audit log was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "`before` is the `id` of the last event of the page you read (the next page has the events before it), or \
     Unix seconds (events before that second)."
)]
pub struct BadAuditCursor;

/// Where a page of the audit log starts, newest first, as a bound on event ids (events whose id
/// sorts below it): `before=` the `id` of the last event of the page read (24 hex digits: its
/// creation in microseconds, then random, see `store::workspaces::ordered_id`), so a page never
/// cuts inside a second. Links made when pages were cut by time carry Unix seconds (at most 18
/// digits, never 24 characters): they mean the events before that second, whose ids sort below
/// the 16 hex digits of its first microsecond. `None`: from the newest.
pub fn audit_cursor(before: Option<&str>) -> Result<Option<String>, BadAuditCursor> {
    let Some(text) = before.map(str::trim).filter(|b| !b.is_empty()) else { return Ok(None) };
    if text.len() == 24 && text.chars().all(|c| c.is_ascii_hexdigit()) {
        return Ok(Some(text.to_ascii_lowercase()));
    }
    if text.len() <= 18 && text.chars().all(|c| c.is_ascii_digit()) {
        let seconds: u64 = text.parse().map_err(|_| BadAuditCursor)?;
        return Ok(seconds.checked_mul(1_000_000).map(|micros| format!("{micros:016x}")));
    }
    Err(BadAuditCursor)
}

/// How long the audit log keeps an event by default (`ONRAMP_AUDIT_DAYS`).
pub const AUDIT_DAYS: i64 = 365;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_each_role_may_do() {
        use Action::*;
        let table = [
            (ViewConnections, [true, true, true]),
            (ManageConnections, [true, true, false]),
            (Invite, [true, true, false]),
            (ViewAudit, [true, true, false]),
            (ManageMembers, [true, false, false]),
        ];
        for (action, allowed) in table {
            for (role, allowed) in Role::ALL.into_iter().zip(allowed) {
                assert_eq!(role.may(action), allowed, "{role:?} {action:?}");
            }
        }
    }

    #[test]
    fn nobody_grants_above_their_role() {
        assert!(Role::Owner.may_grant(Role::Owner));
        assert!(Role::Admin.may_grant(Role::Admin));
        assert!(Role::Admin.may_grant(Role::Viewer));
        assert!(!Role::Admin.may_grant(Role::Owner));
        assert!(!Role::Viewer.may_grant(Role::Viewer), "viewers invite nobody");
    }

    #[test]
    fn the_last_owner_stays() {
        assert_eq!(leaves_an_owner(Role::Owner, 1), Err(MemberError::LastOwner));
        assert_eq!(leaves_an_owner(Role::Owner, 2), Ok(()));
        assert_eq!(leaves_an_owner(Role::Admin, 1), Ok(()));
    }

    #[test]
    fn audit_pages_start_after_an_event_or_before_a_second() {
        assert_eq!(audit_cursor(None), Ok(None));
        assert_eq!(audit_cursor(Some(" ")), Ok(None));
        let id = "00064a1b2c3d4e5fA1b2c3d4";
        assert_eq!(audit_cursor(Some(id)), Ok(Some(id.to_ascii_lowercase())));
        // a second: every id made within it or later sorts at or above the bound
        let bound = audit_cursor(Some("1764780000")).unwrap().unwrap();
        let first_micro = format!("{:016x}{}", 1_764_780_000_000_000u64, "00000000");
        let just_before = format!("{:016x}{}", 1_764_779_999_999_999u64, "ffffffff");
        assert!(first_micro.as_str() > bound.as_str() && just_before.as_str() < bound.as_str());
        assert_eq!(audit_cursor(Some("0")), Ok(Some("0".repeat(16))));
        assert_eq!(audit_cursor(Some("999999999999999999")), Ok(None), "beyond any id: from the newest");
        for bad in ["yesterday", "-5", "1.5", "00064a1b2c3d4e5fa1b2c3d", "00064a1b2c3d4e5fa1b2c3d4x", "'; DROP"] {
            assert_eq!(audit_cursor(Some(bad)), Err(BadAuditCursor), "{bad:?}");
        }
    }

    #[test]
    fn roles_and_names_parse() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
        assert_eq!(parse_name("  Acme platform "), Ok("Acme platform".into()));
        assert_eq!(parse_name("   "), Err(MemberError::BadName));
        assert_eq!(parse_name(&"é".repeat(80)), Ok("é".repeat(80)));
        assert_eq!(parse_name(&"é".repeat(81)), Err(MemberError::BadName));
        assert_eq!(parse_name("a\u{0}b"), Err(MemberError::InvisibleName));
        // bidi controls, zero-width characters, the BOM, separators: refused wherever they are
        for hidden in ['\u{202E}', '\u{2066}', '\u{200B}', '\u{200D}', '\u{FEFF}', '\u{2028}', '\u{61C}', '\u{E0041}'] {
            assert_eq!(parse_name(&format!("Acme{hidden}gnp")), Err(MemberError::InvisibleName), "{hidden:?}");
            assert!(is_invisible(hidden), "{hidden:?}");
        }
        for shown in ['a', 'é', '日', ' ', '\'', '-', '🙂'] {
            assert!(!is_invisible(shown), "{shown:?}");
        }
        assert_eq!(parse_name("Équipe données 日本"), Ok("Équipe données 日本".into()));
        assert_eq!(personal_name("jane.doe@example.com"), "jane.doe's workspace");
        assert!(parse_name(&personal_name(&format!("{}@example.com", "a".repeat(64)))).is_ok(), "always a valid name");
    }
}
