//! Workspaces, their members and invitations, and the audit log. The rules (who may do what, the
//! last owner) are pure, in [`crate::workspace`]; this module keeps them true under concurrency:
//! every change to a workspace's members runs in a transaction that first writes the workspace's
//! row, so two owners demoting each other at once are serialised (SQLite: one writer; PostgreSQL:
//! the row lock) and the workspace keeps an owner.

use super::accounts::{Email, User};
use super::EMAIL_OF_U;
use super::{get, hash_secret, new_id, now, random_secret, Db, StoreError};
use crate::workspace::{
    leaves_an_owner, AuditEvent, Invitation, InvitationInfo, InvitationState, Member, MemberError, Membership, Role,
    INVITATION_SECONDS,
};
use sqlx::any::AnyRow;

pub use crate::workspace::{MAX_OPEN_INVITATIONS, MAX_OWNED_WORKSPACES};
/// Ended or expired invitations are forgotten after this long.
const INVITATIONS_KEPT_SECONDS: i64 = 30 * 24 * 3600;

/// The `role` column of a membership row.
pub(crate) fn role(row: &AnyRow) -> Result<Role, StoreError> {
    let text: String = get(row, "role")?;
    Role::parse(&text).ok_or_else(|| StoreError::Config(format!("unknown role {text:?}")))
}

/// A member row: `u.id, u.email, m.role, m.created_at`.
fn member(row: &AnyRow) -> Result<Member, StoreError> {
    Ok(Member {
        user_id: get(row, "id")?,
        email: get(row, "email")?,
        // Onramp sends no confirmation mail: no address is verified.
        email_verified: false,
        role: role(row)?,
        joined_at: get(row, "created_at")?,
    })
}

fn membership(row: &AnyRow) -> Result<Membership, StoreError> {
    Ok(Membership { id: get(row, "id")?, name: get(row, "name")?, role: role(row)? })
}

/// Creates the personal workspace of a new account, inside the transaction that creates it.
pub(crate) async fn create_personal(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    user_id: &str,
    name: &str,
) -> Result<String, StoreError> {
    let id = new_id();
    let now = now();
    sqlx::query("INSERT INTO workspaces (id, name, created_at) VALUES ($1, $2, $3)")
        .bind(&id)
        .bind(name)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    sqlx::query("INSERT INTO memberships (workspace_id, user_id, role, created_at) VALUES ($1, $2, 'owner', $3)")
        .bind(&id)
        .bind(user_id)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    sqlx::query("UPDATE users SET current_workspace_id = $1 WHERE id = $2")
        .bind(&id)
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(id)
}

/// The account's workspaces (by name) and the one it works in: the chosen one while it is still a
/// member, else the first.
pub async fn memberships(db: &Db, user_id: &str) -> Result<(Vec<Membership>, Option<Membership>), StoreError> {
    let rows = sqlx::query(
        "SELECT w.id, w.name, m.role FROM memberships m JOIN workspaces w ON w.id = m.workspace_id \
         WHERE m.user_id = $1 ORDER BY w.name, w.id",
    )
    .bind(user_id)
    .fetch_all(db.pool())
    .await?;
    let all = rows.iter().map(membership).collect::<Result<Vec<_>, _>>()?;
    let chosen: Option<String> = sqlx::query_scalar("SELECT current_workspace_id FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(db.pool())
        .await?
        .flatten();
    let current = chosen.and_then(|c| all.iter().find(|m| m.id == c).cloned()).or_else(|| all.first().cloned());
    Ok((all, current))
}

/// The account's role in a workspace, when it is a member.
pub async fn role_of(db: &Db, workspace_id: &str, user_id: &str) -> Result<Option<Role>, StoreError> {
    let row = sqlx::query("SELECT role FROM memberships WHERE workspace_id = $1 AND user_id = $2")
        .bind(workspace_id)
        .bind(user_id)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(role).transpose()
}

/// Makes `workspace_id` the account's current workspace; false when it is not a member.
pub async fn switch(db: &Db, user_id: &str, workspace_id: &str) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE users SET current_workspace_id = $1 WHERE id = $2 AND EXISTS \
         (SELECT 1 FROM memberships WHERE workspace_id = $1 AND user_id = $2)",
    )
    .bind(workspace_id)
    .bind(user_id)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A new workspace owned by the account, made its current one.
pub async fn create(db: &Db, user_id: &str, name: &str) -> Result<Result<Membership, MemberError>, StoreError> {
    let name = match crate::workspace::parse_name(name) {
        Ok(name) => name,
        Err(e) => return Ok(Err(e)),
    };
    let mut tx = db.begin_write().await?;
    // Serialise this account's creations: the cap cannot be raced past.
    sqlx::query("UPDATE users SET current_workspace_id = current_workspace_id WHERE id = $1")
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    let owned: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM memberships WHERE user_id = $1 AND role = 'owner'")
        .bind(user_id)
        .fetch_one(&mut *tx)
        .await?;
    if owned >= MAX_OWNED_WORKSPACES {
        return Ok(Err(MemberError::TooManyWorkspaces(MAX_OWNED_WORKSPACES)));
    }
    let id = create_personal(&mut tx, user_id, &name).await?;
    tx.commit().await?;
    Ok(Ok(Membership { id, name, role: Role::Owner }))
}

pub async fn rename(db: &Db, workspace_id: &str, name: &str) -> Result<Result<String, MemberError>, StoreError> {
    let name = match crate::workspace::parse_name(name) {
        Ok(name) => name,
        Err(e) => return Ok(Err(e)),
    };
    sqlx::query("UPDATE workspaces SET name = $1 WHERE id = $2")
        .bind(&name)
        .bind(workspace_id)
        .execute(db.pool())
        .await?;
    Ok(Ok(name))
}

pub async fn members(db: &Db, workspace_id: &str) -> Result<Vec<Member>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT u.id, {EMAIL_OF_U} AS email, m.role, m.created_at FROM memberships m \
             JOIN users u ON u.id = m.user_id WHERE m.workspace_id = $1 ORDER BY email"
    ))
    .bind(workspace_id)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(member).collect()
}

/// Starts a transaction that holds the workspace's row: member changes of one workspace run one
/// after the other.
async fn lock_workspace(db: &Db, workspace_id: &str) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
    let mut tx = db.begin_write().await?;
    sqlx::query("UPDATE workspaces SET name = name WHERE id = $1").bind(workspace_id).execute(&mut *tx).await?;
    Ok(tx)
}

async fn owners(tx: &mut sqlx::Transaction<'_, sqlx::Any>, workspace_id: &str) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM memberships WHERE workspace_id = $1 AND role = 'owner'")
        .bind(workspace_id)
        .fetch_one(&mut **tx)
        .await?)
}

async fn member_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    workspace_id: &str,
    user_id: &str,
) -> Result<Option<Member>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT u.id, {EMAIL_OF_U} AS email, m.role, m.created_at FROM memberships m \
             JOIN users u ON u.id = m.user_id WHERE m.workspace_id = $1 AND m.user_id = $2"
    ))
    .bind(workspace_id)
    .bind(user_id)
    .fetch_optional(&mut **tx)
    .await?;
    row.as_ref().map(member).transpose()
}

/// Withdraws the open invitations `member` made in the workspace for a role they may no longer
/// hand out with `role` (`None`: they are no longer a member, so all of them), inside the
/// transaction that changes their membership. Answers how many.
async fn revoke_invitations_of(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    workspace_id: &str,
    member: &Member,
    role: Option<Role>,
) -> Result<u64, StoreError> {
    let mut revoked = 0;
    for offered in Role::ALL.into_iter().filter(|offered| !role.is_some_and(|r| r.may_grant(*offered))) {
        revoked += sqlx::query(
            "UPDATE invitations SET state = 'revoked', ended_at = $1 WHERE workspace_id = $2 AND invited_by_email = $3 \
             AND role = $4 AND state = 'pending'",
        )
        .bind(now())
        .bind(workspace_id)
        .bind(&member.email)
        .bind(offered.as_str())
        .execute(&mut **tx)
        .await?
        .rows_affected();
    }
    Ok(revoked)
}

/// A member whose role changed or who left, and how many of their open invitations were
/// withdrawn with it (those for a role they can no longer hand out).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Changed {
    /// The member as they were.
    pub member: Member,
    pub invitations_revoked: u64,
}

/// Gives a member another role. Their open invitations for roles the new one cannot hand out
/// (all of them for a viewer) are withdrawn in the same transaction.
pub async fn set_role(
    db: &Db,
    workspace_id: &str,
    user_id: &str,
    new_role: Role,
) -> Result<Result<Changed, MemberError>, StoreError> {
    let mut tx = lock_workspace(db, workspace_id).await?;
    let Some(member) = member_in(&mut tx, workspace_id, user_id).await? else {
        return Ok(Err(MemberError::NotAMember));
    };
    if new_role != Role::Owner {
        if let Err(e) = leaves_an_owner(member.role, owners(&mut tx, workspace_id).await?) {
            return Ok(Err(e));
        }
    }
    sqlx::query("UPDATE memberships SET role = $1 WHERE workspace_id = $2 AND user_id = $3")
        .bind(new_role.as_str())
        .bind(workspace_id)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    let invitations_revoked = revoke_invitations_of(&mut tx, workspace_id, &member, Some(new_role)).await?;
    tx.commit().await?;
    Ok(Ok(Changed { member, invitations_revoked }))
}

/// Removes a member (or lets one leave), withdrawing their open invitations in the same
/// transaction: a link they made cannot bring them, or anyone, back.
pub async fn remove(db: &Db, workspace_id: &str, user_id: &str) -> Result<Result<Changed, MemberError>, StoreError> {
    let mut tx = lock_workspace(db, workspace_id).await?;
    let Some(member) = member_in(&mut tx, workspace_id, user_id).await? else {
        return Ok(Err(MemberError::NotAMember));
    };
    if let Err(e) = leaves_an_owner(member.role, owners(&mut tx, workspace_id).await?) {
        return Ok(Err(e));
    }
    sqlx::query("DELETE FROM memberships WHERE workspace_id = $1 AND user_id = $2")
        .bind(workspace_id)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    let invitations_revoked = revoke_invitations_of(&mut tx, workspace_id, &member, None).await?;
    tx.commit().await?;
    Ok(Ok(Changed { member, invitations_revoked }))
}

/// A new invitation; answers its id and the secret of its link (shown once, stored hashed).
pub async fn create_invitation(
    db: &Db,
    workspace_id: &str,
    role: Role,
    email: Option<&Email>,
    next: Option<&str>,
    invited_by: &str,
) -> Result<Result<(String, String), MemberError>, StoreError> {
    let mut tx = lock_workspace(db, workspace_id).await?;
    let open: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM invitations WHERE workspace_id = $1 AND state = 'pending' AND expires_at > $2",
    )
    .bind(workspace_id)
    .bind(now())
    .fetch_one(&mut *tx)
    .await?;
    if open >= MAX_OPEN_INVITATIONS {
        return Ok(Err(MemberError::TooManyInvitations(MAX_OPEN_INVITATIONS)));
    }
    let (id, secret) = (new_id(), random_secret());
    let now = now();
    sqlx::query(
        "INSERT INTO invitations (id, workspace_id, secret_hash, role, email, next_path, invited_by_email, created_at, \
         expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&id)
    .bind(workspace_id)
    .bind(hash_secret(&secret))
    .bind(role.as_str())
    .bind(email.map(Email::as_str))
    .bind(next)
    .bind(invited_by)
    .bind(now)
    .bind(now + INVITATION_SECONDS)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Ok((id, secret)))
}

/// The workspace's invitations that can still be used, newest first.
pub async fn open_invitations(db: &Db, workspace_id: &str) -> Result<Vec<Invitation>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, role, email, invited_by_email, created_at, expires_at FROM invitations \
         WHERE workspace_id = $1 AND state = 'pending' AND expires_at > $2 ORDER BY created_at DESC, id",
    )
    .bind(workspace_id)
    .bind(now())
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Invitation {
                id: get(r, "id")?,
                role: role(r)?,
                email: get(r, "email")?,
                invited_by: get(r, "invited_by_email")?,
                created_at: get(r, "created_at")?,
                expires_at: get(r, "expires_at")?,
            })
        })
        .collect()
}

/// Withdraws an open invitation of the workspace; false when there is none with this id.
pub async fn revoke_invitation(db: &Db, workspace_id: &str, id: &str) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE invitations SET state = 'revoked', ended_at = $1 WHERE id = $2 AND workspace_id = $3 AND state = 'pending'",
    )
    .bind(now())
    .bind(id)
    .bind(workspace_id)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

fn state_of(row: &AnyRow) -> Result<InvitationState, StoreError> {
    let state: String = get(row, "state")?;
    Ok(match state.as_str() {
        "pending" if get::<i64>(row, "expires_at")? <= now() => InvitationState::Expired,
        "pending" => InvitationState::Pending,
        "accepted" => InvitationState::Accepted,
        "declined" => InvitationState::Declined,
        _ => InvitationState::Revoked,
    })
}

const INVITATION_COLUMNS: &str = "i.id, i.workspace_id, w.name, i.role, i.email, i.next_path, i.invited_by_email, \
                                  i.state, i.expires_at";

async fn invitation_row(
    conn: impl sqlx::Executor<'_, Database = sqlx::Any>,
    secret: &str,
) -> Result<Option<AnyRow>, StoreError> {
    Ok(sqlx::query(&format!(
        "SELECT {INVITATION_COLUMNS} FROM invitations i JOIN workspaces w ON w.id = i.workspace_id \
         WHERE i.secret_hash = $1"
    ))
    .bind(hash_secret(secret))
    .fetch_optional(conn)
    .await?)
}

fn info(row: &AnyRow) -> Result<InvitationInfo, StoreError> {
    Ok(InvitationInfo {
        workspace_name: get(row, "name")?,
        invited_by: get(row, "invited_by_email")?,
        // Onramp sends no confirmation mail: no address is verified.
        invited_by_verified: false,
        role: role(row)?,
        email: get(row, "email")?,
        next: get(row, "next_path")?,
        state: state_of(row)?,
    })
}

/// Whether the member with address `inviter` may hand out `offered` in the workspace now.
async fn inviter_may_grant(
    conn: impl sqlx::Executor<'_, Database = sqlx::Any>,
    workspace_id: &str,
    inviter: &str,
    offered: Role,
) -> Result<bool, StoreError> {
    let row = sqlx::query(
        "SELECT m.role FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.workspace_id = $1 AND u.email = $2",
    )
    .bind(workspace_id)
    .bind(inviter)
    .fetch_optional(conn)
    .await?;
    Ok(row.as_ref().map(role).transpose()?.is_some_and(|r| r.may_grant(offered)))
}

/// What an invitation link offers, whatever its state; `None` for a link that never existed. A
/// pending link whose maker may no longer hand out its role is shown withdrawn, as accepting it
/// would make it.
pub async fn invitation(db: &Db, secret: &str) -> Result<Option<InvitationInfo>, StoreError> {
    let Some(row) = invitation_row(db.pool(), secret).await? else { return Ok(None) };
    let mut info = info(&row)?;
    if info.state == InvitationState::Pending {
        let workspace_id: String = get(&row, "workspace_id")?;
        if !inviter_may_grant(db.pool(), &workspace_id, &info.invited_by, info.role).await? {
            info.state = InvitationState::Revoked;
        }
    }
    Ok(Some(info))
}

/// An accepted or declined invitation: which workspace, and what the link offered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answered {
    pub workspace_id: String,
    pub info: InvitationInfo,
    /// The role the account has in the workspace now (never lowered by an invitation).
    pub role: Role,
}

/// Accepts an invitation for `user`: single use, in one transaction; the account joins the
/// workspace (keeping a higher role it already has) and works in it from now on.
pub async fn accept(db: &Db, secret: &str, user: &User) -> Result<Result<Answered, MemberError>, StoreError> {
    answer(db, secret, user, true).await
}

/// Declines an invitation: the link no longer works, the workspace sees it was declined.
pub async fn decline(db: &Db, secret: &str, user: &User) -> Result<Result<Answered, MemberError>, StoreError> {
    answer(db, secret, user, false).await
}

async fn answer(db: &Db, secret: &str, user: &User, accept: bool) -> Result<Result<Answered, MemberError>, StoreError> {
    let mut tx = db.begin_write().await?;
    let Some(row) = invitation_row(&mut *tx, secret).await? else {
        return Ok(Err(MemberError::NotPending(InvitationState::Revoked)));
    };
    let info = info(&row)?;
    if info.state != InvitationState::Pending {
        return Ok(Err(MemberError::NotPending(info.state)));
    }
    if info.email.as_deref().is_some_and(|e| e != user.email) {
        return Ok(Err(MemberError::OtherEmail));
    }
    let id: String = get(&row, "id")?;
    let workspace_id: String = get(&row, "workspace_id")?;
    // Member changes of this workspace wait for this answer, and it for them (PostgreSQL: the
    // row lock; SQLite: one writer): the inviter read below is the inviter now.
    sqlx::query("UPDATE workspaces SET name = name WHERE id = $1").bind(&workspace_id).execute(&mut *tx).await?;
    if accept {
        // The link offers what its maker may hand out *now*: a member removed or demoted since
        // cannot come back, or promote anyone, through a link made while they could.
        if !inviter_may_grant(&mut *tx, &workspace_id, &info.invited_by, info.role).await? {
            sqlx::query("UPDATE invitations SET state = 'revoked', ended_at = $1 WHERE id = $2 AND state = 'pending'")
                .bind(now())
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(Err(MemberError::InviterCannotInvite));
        }
    }
    let done = sqlx::query("UPDATE invitations SET state = $1, ended_at = $2 WHERE id = $3 AND state = 'pending'")
        .bind(if accept { "accepted" } else { "declined" })
        .bind(now())
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() != 1 {
        return Ok(Err(MemberError::NotPending(InvitationState::Accepted)));
    }
    let existing: Option<String> =
        sqlx::query_scalar("SELECT role FROM memberships WHERE workspace_id = $1 AND user_id = $2")
            .bind(&workspace_id)
            .bind(&user.id)
            .fetch_optional(&mut *tx)
            .await?;
    let existing = existing.as_deref().and_then(Role::parse);
    let role = match (accept, existing) {
        (false, existing) => existing.unwrap_or(info.role),
        (true, Some(existing)) => {
            let role = existing.min(info.role);
            sqlx::query("UPDATE memberships SET role = $1 WHERE workspace_id = $2 AND user_id = $3")
                .bind(role.as_str())
                .bind(&workspace_id)
                .bind(&user.id)
                .execute(&mut *tx)
                .await?;
            role
        }
        (true, None) => {
            sqlx::query("INSERT INTO memberships (workspace_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)")
                .bind(&workspace_id)
                .bind(&user.id)
                .bind(info.role.as_str())
                .bind(now())
                .execute(&mut *tx)
                .await?;
            info.role
        }
    };
    if accept {
        sqlx::query("UPDATE users SET current_workspace_id = $1 WHERE id = $2")
            .bind(&workspace_id)
            .bind(&user.id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(Ok(Answered { workspace_id, info, role }))
}

/// Who did something, and from where, for the audit log.
#[derive(Clone, Debug)]
pub struct Actor {
    pub email: String,
    pub ip: String,
}

/// An id that sorts by creation time (microseconds, then random): events of the same second keep
/// their order in the log.
fn ordered_id() -> String {
    let micros = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000;
    format!("{micros:016x}{}", &new_id()[..8]) // ok: new_id() is 32 ASCII hex digits
}

/// Records an event in a workspace's audit log. `target` names what changed (a member's address,
/// a connection's instance and user), never a secret.
pub async fn record(db: &Db, workspace_id: &str, actor: &Actor, action: &str, target: &str) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_events (id, workspace_id, at, actor_email, ip, action, target) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(ordered_id())
    .bind(workspace_id)
    .bind(now())
    .bind(&actor.email)
    .bind(&actor.ip)
    .bind(action)
    .bind(target)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Records an event of the account itself (an API token) in every workspace it belongs to: each
/// of them can be read and changed with it.
pub async fn record_everywhere(
    db: &Db,
    user_id: &str,
    actor: &Actor,
    action: &str,
    target: &str,
) -> Result<(), StoreError> {
    let (all, _) = memberships(db, user_id).await?;
    for workspace in all {
        record(db, &workspace.id, actor, action, target).await?;
    }
    Ok(())
}

/// A page of the workspace's audit log, newest first by id (unique, in the order events were
/// recorded): events whose id sorts below `before` (see [`crate::workspace::audit_cursor`]), at
/// most `limit`. Ids are fixed-length lower-case hex, so text order is their order.
pub async fn audit_log(
    db: &Db,
    workspace_id: &str,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<AuditEvent>, StoreError> {
    // "g" sorts after every hex digit: no bound.
    let rows = sqlx::query(
        "SELECT id, at, actor_email, ip, action, target FROM audit_events WHERE workspace_id = $1 AND id < $2 \
         ORDER BY id DESC LIMIT $3",
    )
    .bind(workspace_id)
    .bind(before.unwrap_or("g"))
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(AuditEvent {
                id: get(r, "id")?,
                at: get(r, "at")?,
                actor: get(r, "actor_email")?,
                ip: get(r, "ip")?,
                action: get(r, "action")?,
                target: get(r, "target")?,
            })
        })
        .collect()
}

/// Forgets audit events older than `days`, and invitations that ended or expired a month ago
/// (housekeeping). Answers how many rows went.
pub async fn purge(db: &Db, days: i64) -> Result<u64, StoreError> {
    let events =
        sqlx::query("DELETE FROM audit_events WHERE at < $1").bind(now() - days * 24 * 3600).execute(db.pool()).await?;
    let invitations = sqlx::query(
        "DELETE FROM invitations WHERE (state <> 'pending' AND ended_at < $1) OR (state = 'pending' AND expires_at < $1)",
    )
    .bind(now() - INVITATIONS_KEPT_SECONDS)
    .execute(db.pool())
    .await?;
    Ok(events.rows_affected() + invitations.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::signup::create_user;
    use crate::store::test_db;

    async fn user(db: &Db, email: &str) -> User {
        create_user(db, &Email::parse(email).unwrap(), "correct horse battery").await.unwrap().unwrap()
    }

    #[tokio::test]
    async fn every_account_starts_in_a_workspace_of_its_own() {
        let (db, _dir) = test_db::sqlite().await;
        let jane = user(&db, "jane@example.com").await;
        let (all, current) = memberships(&db, &jane.id).await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(current.as_ref(), all.first());
        assert_eq!(all[0].role, Role::Owner);
        assert_eq!(all[0].name, "jane's workspace");
    }

    #[tokio::test]
    async fn an_invitation_works_once_for_its_address_and_never_lowers_a_role() {
        let (db, _dir) = test_db::sqlite().await;
        let lead = user(&db, "lead@example.com").await;
        let colleague = user(&db, "dev@example.com").await;
        let other = user(&db, "other@example.com").await;
        let (_, Some(ws)) = memberships(&db, &lead.id).await.unwrap() else { panic!() };
        let email = Email::parse("dev@example.com").unwrap();
        let (_, secret) =
            create_invitation(&db, &ws.id, Role::Admin, Some(&email), Some("/x"), &lead.email).await.unwrap().unwrap();
        assert_eq!(accept(&db, &secret, &other).await.unwrap(), Err(MemberError::OtherEmail));
        let joined = accept(&db, &secret, &colleague).await.unwrap().unwrap();
        assert_eq!((joined.role, joined.info.next.as_deref()), (Role::Admin, Some("/x")));
        assert_eq!(memberships(&db, &colleague.id).await.unwrap().1.unwrap().id, ws.id, "now works there");
        assert_eq!(
            accept(&db, &secret, &colleague).await.unwrap(),
            Err(MemberError::NotPending(InvitationState::Accepted)),
            "single use"
        );
        // a viewer invitation does not demote the owner who accepts it
        let (_, secret) = create_invitation(&db, &ws.id, Role::Viewer, None, None, &lead.email).await.unwrap().unwrap();
        assert_eq!(accept(&db, &secret, &lead).await.unwrap().unwrap().role, Role::Owner);
        // expired
        let (_, secret) = create_invitation(&db, &ws.id, Role::Viewer, None, None, &lead.email).await.unwrap().unwrap();
        sqlx::query("UPDATE invitations SET expires_at = 1 WHERE state = 'pending'").execute(db.pool()).await.unwrap();
        assert_eq!(invitation(&db, &secret).await.unwrap().unwrap().state, InvitationState::Expired);
        assert_eq!(accept(&db, &secret, &other).await.unwrap(), Err(MemberError::NotPending(InvitationState::Expired)));
        assert_eq!(role_of(&db, &ws.id, &other.id).await.unwrap(), None);
    }

    /// The check at accept, apart from the withdrawal at removal: a link whose maker lost the
    /// role (here changed behind the store's back, as before links were withdrawn) is refused,
    /// and it stops working.
    #[tokio::test]
    async fn a_link_offers_only_what_its_maker_may_still_hand_out() {
        let (db, _dir) = test_db::sqlite().await;
        let lead = user(&db, "lead@example.com").await;
        let b = user(&db, "b@example.com").await;
        let c = user(&db, "c@example.com").await;
        let (_, Some(ws)) = memberships(&db, &lead.id).await.unwrap() else { panic!() };
        let (_, secret) = create_invitation(&db, &ws.id, Role::Admin, None, None, &lead.email).await.unwrap().unwrap();
        accept(&db, &secret, &b).await.unwrap().unwrap();
        let (_, by_b) = create_invitation(&db, &ws.id, Role::Admin, None, None, &b.email).await.unwrap().unwrap();
        sqlx::query("UPDATE memberships SET role = 'viewer' WHERE user_id = $1")
            .bind(&b.id)
            .execute(db.pool())
            .await
            .unwrap();
        assert_eq!(invitation(&db, &by_b).await.unwrap().unwrap().state, InvitationState::Revoked, "its page says so");
        assert_eq!(
            accept(&db, &by_b, &b).await.unwrap(),
            Err(MemberError::InviterCannotInvite),
            "no way back to admin"
        );
        assert_eq!(role_of(&db, &ws.id, &b.id).await.unwrap(), Some(Role::Viewer));
        assert_eq!(
            invitation(&db, &by_b).await.unwrap().unwrap().state,
            InvitationState::Revoked,
            "and it is withdrawn"
        );
        assert_eq!(accept(&db, &by_b, &c).await.unwrap(), Err(MemberError::NotPending(InvitationState::Revoked)));
        // gone altogether
        let (_, by_lead) =
            create_invitation(&db, &ws.id, Role::Viewer, None, None, &lead.email).await.unwrap().unwrap();
        sqlx::query("UPDATE memberships SET role = 'admin' WHERE user_id = $1")
            .bind(&b.id)
            .execute(db.pool())
            .await
            .unwrap();
        let (_, by_b) = create_invitation(&db, &ws.id, Role::Viewer, None, None, &b.email).await.unwrap().unwrap();
        sqlx::query("DELETE FROM memberships WHERE user_id = $1").bind(&b.id).execute(db.pool()).await.unwrap();
        assert_eq!(accept(&db, &by_b, &c).await.unwrap(), Err(MemberError::InviterCannotInvite));
        assert_eq!(role_of(&db, &ws.id, &c.id).await.unwrap(), None);
        // a link of a member who still may works
        assert_eq!(accept(&db, &by_lead, &c).await.unwrap().unwrap().role, Role::Viewer);
    }

    /// Removal and demotion withdraw the member's open links in the same transaction: only
    /// those for a role they can no longer hand out.
    #[tokio::test]
    async fn removal_and_demotion_withdraw_the_members_links() {
        let (db, _dir) = test_db::sqlite().await;
        let lead = user(&db, "lead@example.com").await;
        let b = user(&db, "b@example.com").await;
        let (_, Some(ws)) = memberships(&db, &lead.id).await.unwrap() else { panic!() };
        let (_, secret) = create_invitation(&db, &ws.id, Role::Owner, None, None, &lead.email).await.unwrap().unwrap();
        accept(&db, &secret, &b).await.unwrap().unwrap();
        for role in Role::ALL {
            create_invitation(&db, &ws.id, role, None, None, &b.email).await.unwrap().unwrap();
        }
        let kept = create_invitation(&db, &ws.id, Role::Admin, None, None, &lead.email).await.unwrap().unwrap();
        let open_of = |who: String| {
            let db = db.clone();
            let ws = ws.id.clone();
            async move {
                let mut roles: Vec<Role> = open_invitations(&db, &ws)
                    .await
                    .unwrap()
                    .into_iter()
                    .filter(|i| i.invited_by == who)
                    .map(|i| i.role)
                    .collect();
                roles.sort();
                roles
            }
        };
        let changed = set_role(&db, &ws.id, &b.id, Role::Admin).await.unwrap().unwrap();
        assert_eq!(changed.invitations_revoked, 1);
        assert_eq!(
            open_of(b.email.clone()).await,
            [Role::Admin, Role::Viewer],
            "an admin's links stay, not an owner's"
        );
        let changed = set_role(&db, &ws.id, &b.id, Role::Viewer).await.unwrap().unwrap();
        assert_eq!(changed.invitations_revoked, 2);
        assert!(open_of(b.email.clone()).await.is_empty());
        set_role(&db, &ws.id, &b.id, Role::Admin).await.unwrap().unwrap();
        create_invitation(&db, &ws.id, Role::Viewer, None, None, &b.email).await.unwrap().unwrap();
        assert_eq!(remove(&db, &ws.id, &b.id).await.unwrap().unwrap().invitations_revoked, 1);
        assert!(open_of(b.email.clone()).await.is_empty());
        assert_eq!(open_of(lead.email.clone()).await, [Role::Admin], "nobody else's: {kept:?}");
    }

    #[tokio::test]
    async fn a_workspace_always_keeps_an_owner() {
        let (db, _dir) = test_db::sqlite().await;
        let lead = user(&db, "lead@example.com").await;
        let dev = user(&db, "dev@example.com").await;
        let (_, Some(ws)) = memberships(&db, &lead.id).await.unwrap() else { panic!() };
        assert_eq!(set_role(&db, &ws.id, &lead.id, Role::Admin).await.unwrap(), Err(MemberError::LastOwner));
        assert_eq!(remove(&db, &ws.id, &lead.id).await.unwrap(), Err(MemberError::LastOwner));
        let (_, secret) = create_invitation(&db, &ws.id, Role::Owner, None, None, &lead.email).await.unwrap().unwrap();
        accept(&db, &secret, &dev).await.unwrap().unwrap();
        // two owners demote each other at once: one of them stays owner
        let (a, b) =
            tokio::join!(set_role(&db, &ws.id, &lead.id, Role::Viewer), set_role(&db, &ws.id, &dev.id, Role::Viewer));
        assert_eq!([a.unwrap().is_ok(), b.unwrap().is_ok()].iter().filter(|ok| **ok).count(), 1);
        let owners = members(&db, &ws.id).await.unwrap().into_iter().filter(|m| m.role == Role::Owner).count();
        assert_eq!(owners, 1);
    }

    #[tokio::test]
    async fn open_invitations_are_capped_and_old_rows_purged() {
        let (db, _dir) = test_db::sqlite().await;
        let lead = user(&db, "lead@example.com").await;
        let (_, Some(ws)) = memberships(&db, &lead.id).await.unwrap() else { panic!() };
        for _ in 0..MAX_OPEN_INVITATIONS {
            create_invitation(&db, &ws.id, Role::Viewer, None, None, &lead.email).await.unwrap().unwrap();
        }
        let refused = create_invitation(&db, &ws.id, Role::Viewer, None, None, &lead.email).await.unwrap();
        assert_eq!(refused, Err(MemberError::TooManyInvitations(MAX_OPEN_INVITATIONS)));
        let actor = Actor { email: lead.email.clone(), ip: "127.0.0.1".into() };
        record(&db, &ws.id, &actor, "member.invited", "x").await.unwrap();
        sqlx::query("UPDATE audit_events SET at = 1").execute(db.pool()).await.unwrap();
        sqlx::query("UPDATE invitations SET expires_at = 1").execute(db.pool()).await.unwrap();
        assert_eq!(purge(&db, 365).await.unwrap(), 1 + MAX_OPEN_INVITATIONS as u64);
        assert!(audit_log(&db, &ws.id, None, 10).await.unwrap().is_empty());
    }
}
