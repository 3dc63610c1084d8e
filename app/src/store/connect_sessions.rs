//! Connect sessions (issue 22): a platform's single-use link that signs its end user in and opens
//! the wizard for the workspace it names. [`create`] finds or makes the workspace (an
//! instance-level key's tenant, by the platform's external id) and the end user (by theirs, per
//! key) and stores the link's secret as its SHA-256; [`open`] spends the link once and starts a
//! browser session tied to it; [`complete`] records the connection the end user saved.
//!
//! An end user is an account of their own: no password (its hash is `!`, which never verifies)
//! and an address under the reserved `.invalid` domain, so a platform can neither sign in as, take
//! over, nor block an Onramp account by naming its address. The address the platform gave is
//! kept in `platform_end_users` and is what pages show and mail goes to ([`super::EMAIL_OF_U`]).

use super::{get, hash_secret, new_id, now, random_secret, Db, StoreError};
use crate::embed::{return_href, ConnectSpec, Embed, SessionStatus};
use crate::store::platform::PlatformKey;
use sqlx::any::AnyRow;

/// What [`create`] made.
#[derive(Clone, Debug)]
pub struct Created {
    pub id: String,
    /// The link's secret, shown once: `/connect/{secret}`.
    pub secret: String,
    pub workspace_id: String,
    pub expires_at: i64,
}

/// A connect session as its platform sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectSession {
    pub id: String,
    pub workspace_id: String,
    pub status: SessionStatus,
    pub connection_id: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub opened_at: Option<i64>,
    pub completed_at: Option<i64>,
}

const COLUMNS: &str =
    "id, workspace_id, status, connection_id, created_at, expires_at, opened_at, completed_at, return_url, state";

fn session(row: &AnyRow, now: i64) -> Result<ConnectSession, StoreError> {
    let status: String = get(row, "status")?;
    let expires_at = get(row, "expires_at")?;
    let opened_at = get(row, "opened_at")?;
    Ok(ConnectSession {
        id: get(row, "id")?,
        workspace_id: get(row, "workspace_id")?,
        status: SessionStatus::of(&status, expires_at, opened_at, now),
        connection_id: get(row, "connection_id")?,
        created_at: get(row, "created_at")?,
        expires_at,
        opened_at,
        completed_at: get(row, "completed_at")?,
    })
}

/// Makes a connect session for `key` (which has `connect_sessions:write`). In one write
/// transaction: the workspace (an instance-level key's tenant, created with its name the first
/// time and renamed when the platform renames it), the end user (created the first time, their
/// address and name updated after), their membership with the role asked for (an owner made in
/// Onramp stays owner), and the session.
pub async fn create(db: &Db, key: &PlatformKey, spec: &ConnectSpec) -> Result<Created, StoreError> {
    let now = now();
    let mut tx = db.begin_write().await?;
    let workspace_id = match (&key.workspace_id, &spec.workspace) {
        (Some(own), _) => own.clone(),
        (None, Some((external_id, name))) => {
            let found: Option<String> =
                sqlx::query_scalar("SELECT workspace_id FROM platform_tenants WHERE key_id = $1 AND external_id = $2")
                    .bind(&key.id)
                    .bind(external_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            match found {
                Some(id) => {
                    sqlx::query("UPDATE workspaces SET name = $1 WHERE id = $2 AND name <> $1")
                        .bind(name)
                        .bind(&id)
                        .execute(&mut *tx)
                        .await?;
                    id
                }
                None => {
                    let id = new_id();
                    sqlx::query("INSERT INTO workspaces (id, name, created_at) VALUES ($1, $2, $3)")
                        .bind(&id)
                        .bind(name)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(
                        "INSERT INTO platform_tenants (key_id, external_id, workspace_id, created_at) \
                         VALUES ($1, $2, $3, $4)",
                    )
                    .bind(&key.id)
                    .bind(external_id)
                    .bind(&id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    id
                }
            }
        }
        (None, None) => return Err(StoreError::Config("an instance-level key's session names no workspace".into())),
    };
    let found: Option<String> =
        sqlx::query_scalar("SELECT user_id FROM platform_end_users WHERE key_id = $1 AND external_id = $2")
            .bind(&key.id)
            .bind(&spec.user_external_id)
            .fetch_optional(&mut *tx)
            .await?;
    let user_id = match found {
        Some(user_id) => {
            sqlx::query("UPDATE platform_end_users SET email = $1, name = $2 WHERE user_id = $3")
                .bind(&spec.email)
                .bind(&spec.name)
                .bind(&user_id)
                .execute(&mut *tx)
                .await?;
            user_id
        }
        None => {
            let user_id = new_id();
            // Unique, never deliverable (RFC 2606), and nobody's: see the module's comment.
            let own_address = format!("{user_id}@platform-user.invalid");
            sqlx::query(
                "INSERT INTO users (id, email, password_hash, created_at, current_workspace_id) \
                 VALUES ($1, $2, '!', $3, $4)",
            )
            .bind(&user_id)
            .bind(&own_address)
            .bind(now)
            .bind(&workspace_id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO platform_end_users (key_id, external_id, user_id, email, name, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&key.id)
            .bind(&spec.user_external_id)
            .bind(&user_id)
            .bind(&spec.email)
            .bind(&spec.name)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            user_id
        }
    };
    let role: Option<String> =
        sqlx::query_scalar("SELECT role FROM memberships WHERE workspace_id = $1 AND user_id = $2")
            .bind(&workspace_id)
            .bind(&user_id)
            .fetch_optional(&mut *tx)
            .await?;
    match role.as_deref() {
        None => {
            sqlx::query("INSERT INTO memberships (workspace_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)")
                .bind(&workspace_id)
                .bind(&user_id)
                .bind(spec.role.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        Some("owner") => {}
        Some(_) => {
            sqlx::query("UPDATE memberships SET role = $1 WHERE workspace_id = $2 AND user_id = $3")
                .bind(spec.role.as_str())
                .bind(&workspace_id)
                .bind(&user_id)
                .execute(&mut *tx)
                .await?;
        }
    }
    let id = format!("cs_{}", new_id());
    let secret = random_secret();
    let expires_at = now.saturating_add(spec.expires_in);
    sqlx::query(
        "INSERT INTO connect_sessions (id, key_id, workspace_id, user_id, secret_hash, return_url, refresh_url, \
         state, base_url, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&id)
    .bind(&key.id)
    .bind(&workspace_id)
    .bind(&user_id)
    .bind(hash_secret(&secret))
    .bind(&spec.return_url)
    .bind(&spec.refresh_url)
    .bind(&spec.state)
    .bind(&spec.base_url)
    .bind(now)
    .bind(expires_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Created { id, secret, workspace_id, expires_at })
}

/// A connect session of `key`, by id; another key's is `None`.
pub async fn find(db: &Db, key: &PlatformKey, id: &str) -> Result<Option<ConnectSession>, StoreError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM connect_sessions WHERE id = $1 AND key_id = $2"))
        .bind(id)
        .bind(&key.id)
        .fetch_optional(db.pool())
        .await?;
    row.map(|row| session(&row, now())).transpose()
}

/// What opening a link found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Opened {
    /// Spent now: the browser session's secret, and where the wizard opens.
    Opened { session_secret: String, base_url: Option<String> },
    /// Expired, used, or its key revoked: where the platform asked such a browser to go.
    Spent { refresh_url: Option<String> },
    /// No link has this secret.
    Unknown,
}

/// Spends a link once: a pending, unexpired session of a live key whose end user is still a
/// member of its workspace becomes `opened` (one statement, so two tabs opening it at once get it
/// once), the end user's current workspace becomes the session's, and a browser session tied to
/// the connect session starts.
pub async fn open(db: &Db, secret: &str) -> Result<Opened, StoreError> {
    let now = now();
    let hash = hash_secret(secret);
    let spent = sqlx::query(
        "UPDATE connect_sessions SET status = 'opened', opened_at = $1 WHERE secret_hash = $2 AND status = 'pending' \
         AND expires_at > $1 AND EXISTS (SELECT 1 FROM platform_keys k WHERE k.id = connect_sessions.key_id \
         AND k.revoked_at IS NULL) AND EXISTS (SELECT 1 FROM memberships m WHERE \
         m.workspace_id = connect_sessions.workspace_id AND m.user_id = connect_sessions.user_id)",
    )
    .bind(now)
    .bind(&hash)
    .execute(db.pool())
    .await?;
    let row = sqlx::query(
        "SELECT id, user_id, workspace_id, base_url, refresh_url FROM connect_sessions WHERE secret_hash = $1",
    )
    .bind(&hash)
    .fetch_optional(db.pool())
    .await?;
    let Some(row) = row else {
        return Ok(Opened::Unknown);
    };
    if spent.rows_affected() == 0 {
        return Ok(Opened::Spent { refresh_url: get(&row, "refresh_url")? });
    }
    let (id, user_id, workspace_id): (String, String, String) =
        (get(&row, "id")?, get(&row, "user_id")?, get(&row, "workspace_id")?);
    sqlx::query("UPDATE users SET current_workspace_id = $1 WHERE id = $2")
        .bind(&workspace_id)
        .bind(&user_id)
        .execute(db.pool())
        .await?;
    let session_secret = super::accounts::create_session_for(db, &user_id, Some(&id)).await?;
    Ok(Opened::Opened { session_secret, base_url: get(&row, "base_url")? })
}

/// A connection was saved (or its token replaced) in the workspace by the browser session of
/// connect session `id`: the session is completed with it, once, and its platform hears
/// `connect_session.completed` in the same transaction. True when this call completed it.
pub async fn complete(db: &Db, id: &str, workspace_id: &str, connection_id: &str) -> Result<bool, StoreError> {
    let mut tx = db.begin_write().await?;
    let done = sqlx::query(
        "UPDATE connect_sessions SET status = 'completed', connection_id = $1, completed_at = $2 \
         WHERE id = $3 AND workspace_id = $4 AND status = 'opened'",
    )
    .bind(connection_id)
    .bind(now())
    .bind(id)
    .bind(workspace_id)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    let data = serde_json::json!({ "connect_session_id": id });
    let audience = super::platform_events::Audience::Workspace(workspace_id);
    let kind = crate::platform::EventType::ConnectSessionCompleted;
    let emitted = super::platform_events::emit_in(&mut tx, audience, Some(connection_id), kind, data).await?;
    tx.commit().await?;
    emitted.sent(db);
    Ok(true)
}

/// What the pages of a browser session opened by connect session `id` say: the platform, the
/// workspace, and the way back once it is completed.
pub async fn embed(db: &Db, id: &str) -> Result<Option<Embed>, StoreError> {
    let row = sqlx::query(
        "SELECT s.id, s.workspace_id, s.status, s.connection_id, s.return_url, s.state, k.name AS platform, \
         w.name AS workspace FROM connect_sessions s JOIN platform_keys k ON k.id = s.key_id \
         JOIN workspaces w ON w.id = s.workspace_id WHERE s.id = $1",
    )
    .bind(id)
    .fetch_optional(db.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let id: String = get(&row, "id")?;
    let connection: Option<String> = get(&row, "connection_id")?;
    let status: String = get(&row, "status")?;
    let back_href = match (status.as_str(), connection) {
        ("completed", Some(connection)) => {
            let (return_url, state): (String, String) = (get(&row, "return_url")?, get(&row, "state")?);
            return_href(&return_url, &id, &connection, &state)
        }
        _ => None,
    };
    Ok(Some(Embed {
        session_id: id,
        platform: get(&row, "platform")?,
        workspace_id: get(&row, "workspace_id")?,
        workspace: get(&row, "workspace")?,
        back_href,
    }))
}

/// Forgets connect sessions made more than `days` ago (their links ran out long before; the
/// connections they made stay).
pub async fn purge(db: &Db, days: i64) -> Result<u64, StoreError> {
    let done = sqlx::query("DELETE FROM connect_sessions WHERE created_at < $1")
        .bind(now() - days * 24 * 3600)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected())
}
