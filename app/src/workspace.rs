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
    pub role: Role,
    /// Unix seconds.
    pub joined_at: i64,
}

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

/// A workspace name as typed: trimmed, 1 to 80 characters, no control characters.
pub fn parse_name(text: &str) -> Result<String, MemberError> {
    let name = text.trim();
    let count = name.chars().count();
    if (1..=80).contains(&count) && !name.chars().any(char::is_control) {
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
            _ => "changed something",
        }
    }
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
    fn roles_and_names_parse() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
        assert_eq!(parse_name("  Acme platform "), Ok("Acme platform".into()));
        assert_eq!(parse_name("   "), Err(MemberError::BadName));
        assert_eq!(parse_name(&"é".repeat(80)), Ok("é".repeat(80)));
        assert_eq!(parse_name(&"é".repeat(81)), Err(MemberError::BadName));
        assert_eq!(parse_name("a\u{0}b"), Err(MemberError::BadName));
        assert_eq!(personal_name("jane.doe@example.com"), "jane.doe's workspace");
        assert!(parse_name(&personal_name(&format!("{}@example.com", "a".repeat(64)))).is_ok(), "always a valid name");
    }
}
