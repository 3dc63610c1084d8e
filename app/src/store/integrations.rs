//! Saved GitLab connections (several per workspace, one per instance and GitLab user) and kept
//! check reports, with the token sealed by [`Keyring`]. Every query of a connection is scoped by
//! its workspace's id, and kept checks by their user's: there is no way to read or change another
//! workspace's rows through this module. Who may do what in a workspace is decided by
//! [`crate::auth`], before any of this is called.

use super::crypto::{Cipher, CryptoError, Keyring, Sealed};
use super::keys::{check_aad, flash_aad, integration_aad, saved_aad, sealed};
use super::platform_events::{self, Audience};
use super::workspaces::role;
use super::{get, new_id, now, Db, StoreError};
use crate::gitlab::report::{Report, StoredCheck};
use crate::gitlab::token::GitlabToken;
use crate::integration::Integration;
use crate::platform::EventType;
use crate::workspace::Role;
use sqlx::any::AnyRow;

const COLUMNS: &str = "id, workspace_id, base_url, gitlab_version, username, token_name, token_last4, scopes, \
                       expires_at, last_check_at, last_check_ok, last_report, created_at, updated_at, token_id, \
                       token_created_at, rotated_at";

fn integration(row: &AnyRow) -> Result<Integration, StoreError> {
    let scopes: String = get(row, "scopes")?;
    let report: String = get(row, "last_report")?;
    Ok(Integration {
        id: get(row, "id")?,
        workspace_id: get(row, "workspace_id")?,
        base_url: get(row, "base_url")?,
        gitlab_version: get(row, "gitlab_version")?,
        username: get(row, "username")?,
        token_name: get(row, "token_name")?,
        token_last4: get(row, "token_last4")?,
        scopes: scopes.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
        expires_at: get(row, "expires_at")?,
        last_check_at: get(row, "last_check_at")?,
        last_check_ok: get::<i64>(row, "last_check_ok")? != 0,
        last_report: serde_json::from_str(&report)
            .map_err(|e| StoreError::Config(format!("a stored report is unreadable: {e}")))?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
        token_id: get(row, "token_id")?,
        token_created_at: get(row, "token_created_at")?,
        rotated_at: get(row, "rotated_at")?,
    })
}

/// What a report says about the token, flattened for the row.
struct Facts {
    username: String,
    gitlab_version: Option<String>,
    token_name: Option<String>,
    scopes: String,
    expires_at: Option<String>,
    token_id: Option<i64>,
    token_created_at: Option<String>,
    report: String,
}

fn facts(report: &Report) -> Facts {
    Facts {
        username: report.user.as_ref().map(|u| u.username.clone()).unwrap_or_default(),
        gitlab_version: report.gitlab_version.clone(),
        token_name: report.token.as_ref().and_then(|t| t.name.clone()),
        scopes: report.token.as_ref().map(|t| t.scopes.join(",")).unwrap_or_default(),
        expires_at: report.token.as_ref().and_then(|t| t.expires_at.clone()),
        token_id: report.token.as_ref().and_then(|t| t.id),
        token_created_at: report.token.as_ref().and_then(|t| t.created_at.clone()),
        report: serde_json::to_string(report).expect("a report serialises"),
    }
}

/// The outcome of saving a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Saved {
    /// Saved (a new connection, or the token of this one replaced).
    Saved(Integration),
    /// The workspace already has a connection to this instance as this GitLab user: this one.
    /// Nothing was written.
    Exists(Integration),
    /// The connection to replace is not (or no longer) in the workspace.
    Gone,
    /// The workspace has [`MAX_PER_WORKSPACE`] connections already. Nothing was written.
    Full,
}

pub use crate::integration::{full_message, MAX_PER_WORKSPACE};

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// The workspace's connection to this instance as this GitLab user, if it has one.
pub async fn find_by_instance(
    db: &Db,
    workspace_id: &str,
    base_url: &str,
    username: &str,
) -> Result<Option<Integration>, StoreError> {
    Ok(match existing(db, workspace_id, base_url, username).await? {
        Saved::Exists(found) => Some(found),
        _ => None,
    })
}

async fn existing(db: &Db, workspace_id: &str, base_url: &str, username: &str) -> Result<Saved, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM integrations WHERE workspace_id = $1 AND base_url = $2 AND username = $3"
    ))
    .bind(workspace_id)
    .bind(base_url)
    .bind(username)
    .fetch_optional(db.pool())
    .await?;
    Ok(match row {
        Some(row) => Saved::Exists(integration(&row)?),
        // The other row went away meanwhile: the caller may try again.
        None => Saved::Gone,
    })
}

/// Saves a new connection in the workspace with a token whose check passed. One statement: the
/// row is there whole, or not at all; not at all when the workspace has [`MAX_PER_WORKSPACE`]
/// connections (counted in the same statement).
pub async fn save(
    db: &Db,
    keys: &Keyring,
    workspace_id: &str,
    created_by: &str,
    report: &Report,
    token: &GitlabToken,
    extra_ca_pem: &str,
) -> Result<Saved, StoreError> {
    let f = facts(report);
    let id = new_id();
    let sealed = keys.current.seal(token, &integration_aad(&id, workspace_id, &report.base_url, extra_ca_pem));
    let now = now();
    let mut tx = db.begin_write().await?;
    let done = sqlx::query(
        "INSERT INTO integrations (id, workspace_id, created_by, base_url, gitlab_version, username, token_name, \
         token_last4, scopes, expires_at, extra_ca_pem, key_id, token_nonce, token_ciphertext, last_check_at, \
         last_check_ok, last_report, created_at, updated_at, aad_version, token_id, token_created_at) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, 2, $20, $21 \
         WHERE (SELECT COUNT(*) FROM integrations WHERE workspace_id = $22) < $23",
    )
    .bind(&id)
    .bind(workspace_id)
    .bind(created_by)
    .bind(&report.base_url)
    .bind(&f.gitlab_version)
    .bind(&f.username)
    .bind(&f.token_name)
    .bind(token.last_four())
    .bind(&f.scopes)
    .bind(&f.expires_at)
    .bind(extra_ca_pem)
    .bind(&sealed.key_id)
    .bind(&sealed.nonce)
    .bind(&sealed.ciphertext)
    .bind(now)
    .bind(i64::from(report.ok))
    .bind(&f.report)
    .bind(now)
    .bind(now)
    .bind(f.token_id)
    .bind(&f.token_created_at)
    .bind(workspace_id)
    .bind(MAX_PER_WORKSPACE)
    .execute(&mut *tx)
    .await;
    // Its platforms hear of it in the same transaction (`connection.created`).
    let emitted = match &done {
        Ok(d) if d.rows_affected() == 1 => {
            let data = platform_events::connection_data(&report.base_url, &f.username, f.expires_at.as_deref());
            let emitted = platform_events::emit_in(
                &mut tx,
                Audience::Workspace(workspace_id),
                Some(&id),
                EventType::ConnectionCreated,
                data,
            )
            .await?;
            tx.commit().await?;
            Some(emitted)
        }
        _ => {
            drop(tx); // nothing written: rolled back
            None
        }
    };
    if let Some(emitted) = emitted {
        emitted.sent(db);
    }
    match done {
        Ok(done) if done.rows_affected() == 0 => {
            Ok(match existing(db, workspace_id, &report.base_url, &f.username).await? {
                Saved::Exists(found) => Saved::Exists(found),
                _ => Saved::Full,
            })
        }
        Ok(_) => Ok(find(db, workspace_id, &id).await?.map(Saved::Saved).unwrap_or(Saved::Gone)),
        Err(e) if is_unique_violation(&e) => existing(db, workspace_id, &report.base_url, &f.username).await,
        Err(e) => Err(e.into()),
    }
}

/// Swaps a new token (whose check against the connection's instance passed) into a connection of
/// the workspace, in one statement. The instance and CA stay; the GitLab user may change, unless
/// another connection of the workspace already uses it.
pub async fn replace(
    db: &Db,
    keys: &Keyring,
    workspace_id: &str,
    id: &str,
    report: &Report,
    token: &GitlabToken,
) -> Result<Saved, StoreError> {
    let Some(row) = sqlx::query("SELECT base_url, extra_ca_pem FROM integrations WHERE id = $1 AND workspace_id = $2")
        .bind(id)
        .bind(workspace_id)
        .fetch_optional(db.pool())
        .await?
    else {
        return Ok(Saved::Gone);
    };
    let (base_url, ca): (String, String) = (get(&row, "base_url")?, get(&row, "extra_ca_pem")?);
    if report.base_url != base_url {
        return Err(StoreError::Config("a replacement token was checked against another instance".into()));
    }
    let f = facts(report);
    let sealed = keys.current.seal(token, &integration_aad(id, workspace_id, &base_url, &ca));
    let now = now();
    let mut tx = db.begin_write().await?;
    let done = sqlx::query(
        "UPDATE integrations SET gitlab_version = $1, username = $2, token_name = $3, token_last4 = $4, scopes = $5, \
         expires_at = $6, key_id = $7, token_nonce = $8, token_ciphertext = $9, last_check_at = $10, \
         last_check_ok = $11, last_report = $12, updated_at = $13, aad_version = 2, token_id = $18, \
         token_created_at = $19, rotated_at = NULL \
         WHERE id = $14 AND workspace_id = $15 AND base_url = $16 AND extra_ca_pem = $17",
    )
    .bind(&f.gitlab_version)
    .bind(&f.username)
    .bind(&f.token_name)
    .bind(token.last_four())
    .bind(&f.scopes)
    .bind(&f.expires_at)
    .bind(&sealed.key_id)
    .bind(&sealed.nonce)
    .bind(&sealed.ciphertext)
    .bind(now)
    .bind(i64::from(report.ok))
    .bind(&f.report)
    .bind(now)
    .bind(id)
    .bind(workspace_id)
    .bind(&base_url)
    .bind(&ca)
    .bind(f.token_id)
    .bind(&f.token_created_at)
    .execute(&mut *tx)
    .await;
    if matches!(&done, Ok(d) if d.rows_affected() == 1) {
        let data = platform_events::connection_data(&base_url, &f.username, f.expires_at.as_deref());
        let kind = EventType::ConnectionTokenReplaced;
        let emitted =
            platform_events::emit_in(&mut tx, Audience::Workspace(workspace_id), Some(id), kind, data).await?;
        tx.commit().await?;
        emitted.sent(db);
    } else {
        drop(tx); // nothing written: rolled back
    }
    match done {
        Ok(done) if done.rows_affected() == 1 => {
            Ok(find(db, workspace_id, id).await?.map(Saved::Saved).unwrap_or(Saved::Gone))
        }
        Ok(_) => Ok(Saved::Gone),
        Err(e) if is_unique_violation(&e) => existing(db, workspace_id, &base_url, &f.username).await,
        Err(e) => Err(e.into()),
    }
}

/// The workspace's connections, oldest first.
pub async fn list(db: &Db, workspace_id: &str) -> Result<Vec<Integration>, StoreError> {
    let rows =
        sqlx::query(&format!("SELECT {COLUMNS} FROM integrations WHERE workspace_id = $1 ORDER BY created_at, id"))
            .bind(workspace_id)
            .fetch_all(db.pool())
            .await?;
    rows.iter().map(integration).collect()
}

/// Every connection of every workspace the account belongs to, with its role there.
pub async fn list_for_user(db: &Db, user_id: &str) -> Result<Vec<(Integration, Role)>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {}, m.role FROM integrations i JOIN memberships m ON m.workspace_id = i.workspace_id \
         WHERE m.user_id = $1 ORDER BY i.created_at, i.id",
        prefixed("i")
    ))
    .bind(user_id)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(|r| Ok((integration(r)?, role(r)?))).collect()
}

/// A connection by id, when the account is a member of its workspace, with its role there.
pub async fn find_for_user(db: &Db, user_id: &str, id: &str) -> Result<Option<(Integration, Role)>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {}, m.role FROM integrations i JOIN memberships m ON m.workspace_id = i.workspace_id \
         WHERE i.id = $1 AND m.user_id = $2",
        prefixed("i")
    ))
    .bind(id)
    .bind(user_id)
    .fetch_optional(db.pool())
    .await?;
    row.map(|r| Ok((integration(&r)?, role(&r)?))).transpose()
}

fn prefixed(table: &str) -> String {
    COLUMNS.split(',').map(|c| format!("{table}.{}", c.trim())).collect::<Vec<_>>().join(", ")
}

pub async fn find(db: &Db, workspace_id: &str, id: &str) -> Result<Option<Integration>, StoreError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM integrations WHERE id = $1 AND workspace_id = $2"))
        .bind(id)
        .bind(workspace_id)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(integration).transpose()
}

/// The workspace a connection belongs to, to find it through a platform key's tenants.
pub async fn workspace_of(db: &Db, id: &str) -> Result<Option<String>, StoreError> {
    Ok(sqlx::query_scalar("SELECT workspace_id FROM integrations WHERE id = $1")
        .bind(id)
        .fetch_optional(db.pool())
        .await?)
}

/// A connection with its token (decrypted) and CA, for a re-check. A row changed outside Onramp
/// (or sealed under a key that is not loaded) is `Err(StoreError::Crypto(_))`: its address and CA
/// must not be used either.
pub async fn with_token(
    db: &Db,
    keys: &Keyring,
    workspace_id: &str,
    id: &str,
) -> Result<Option<(Integration, GitlabToken, String)>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS}, extra_ca_pem, key_id, token_nonce, token_ciphertext, aad_version FROM integrations \
         WHERE id = $1 AND workspace_id = $2"
    ))
    .bind(id)
    .bind(workspace_id)
    .fetch_optional(db.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let integration = integration(&row)?;
    let sealed = sealed(&row)?.ok_or(CryptoError::Decrypt)?;
    let token = keys.open(&sealed, &saved_aad(&row)?)?;
    Ok(Some((integration, token, get(&row, "extra_ca_pem")?)))
}

/// Records a re-check of the stored token. The expiry is updated only when GitLab told it.
pub async fn record_check(db: &Db, workspace_id: &str, id: &str, report: &Report) -> Result<(), StoreError> {
    let f = facts(report);
    let expiry = if report.token.is_some() { "expires_at = $5" } else { "expires_at = COALESCE($5, expires_at)" };
    sqlx::query(&format!(
        "UPDATE integrations SET last_check_at = $1, last_check_ok = $2, last_report = $3, \
         gitlab_version = COALESCE($4, gitlab_version), {expiry}, updated_at = $6, \
         token_id = COALESCE(token_id, $9), token_created_at = COALESCE(token_created_at, $10) \
         WHERE id = $7 AND workspace_id = $8"
    ))
    .bind(now())
    .bind(i64::from(report.ok))
    .bind(&f.report)
    .bind(&f.gitlab_version)
    .bind(&f.expires_at)
    .bind(now())
    .bind(id)
    .bind(workspace_id)
    .bind(f.token_id)
    .bind(&f.token_created_at)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Deletes a connection of the workspace (and with it the token). False when there was none.
pub async fn delete(db: &Db, workspace_id: &str, id: &str) -> Result<bool, StoreError> {
    let mut tx = db.begin_write().await?;
    let Some(data) = platform_events::connection_data_of(&mut tx, workspace_id, id).await? else { return Ok(false) };
    sqlx::query("DELETE FROM integrations WHERE id = $1 AND workspace_id = $2")
        .bind(id)
        .bind(workspace_id)
        .execute(&mut *tx)
        .await?;
    // Its platforms hear of it in the same transaction (`connection.deleted`).
    let kind = EventType::ConnectionDeleted;
    let emitted = platform_events::emit_in(&mut tx, Audience::Workspace(workspace_id), Some(id), kind, data).await?;
    tx.commit().await?;
    emitted.sent(db);
    Ok(true)
}

/// Connections last checked before `before` (Unix seconds), oldest first, as (workspace, id):
/// what the periodic re-check has to do.
pub async fn due(db: &Db, before: i64) -> Result<Vec<(String, String)>, StoreError> {
    let rows = sqlx::query("SELECT workspace_id, id FROM integrations WHERE last_check_at < $1 ORDER BY last_check_at")
        .bind(before)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(|r| Ok((get(r, "workspace_id")?, get(r, "id")?))).collect()
}

/// Connections whose token expires on or before `date` (`YYYY-MM-DD`), soonest first, as
/// (workspace, id): candidates for rotation and reminders.
pub async fn expiring(db: &Db, date: &str) -> Result<Vec<(String, String)>, StoreError> {
    let rows = sqlx::query(
        "SELECT workspace_id, id FROM integrations WHERE expires_at IS NOT NULL AND expires_at <= $1 \
         ORDER BY expires_at, id",
    )
    .bind(date)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(|r| Ok((get(r, "workspace_id")?, get(r, "id")?))).collect()
}

/// Claims a connection for a scheduled re-check when it is still due (last checked before
/// `before`): one atomic update, so of several Onramp processes on one database exactly one gets
/// `true`. The claim marks it checked now; the re-check then records its result.
pub async fn claim_due(db: &Db, id: &str, before: i64) -> Result<bool, StoreError> {
    let done = sqlx::query("UPDATE integrations SET last_check_at = $1 WHERE id = $2 AND last_check_at < $3")
        .bind(now())
        .bind(id)
        .bind(before)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() == 1)
}

/// How long a kept check report lives.
pub const CHECK_TTL_SECONDS: i64 = 30 * 60;

/// At most this many kept checks per user: each may hold a CA of up to 64 KiB.
pub const CHECKS_KEPT_PER_USER: i64 = 20;

/// Deletes kept checks past their time (the background task, hourly; `put_check` too).
pub async fn purge_old_checks(db: &Db) -> Result<u64, StoreError> {
    let done = sqlx::query("DELETE FROM checks WHERE created_at < $1")
        .bind(now() - CHECK_TTL_SECONDS)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected())
}

/// Keeps a check for the page that shows it (post/redirect/get), with the token sealed when it
/// passed with warnings and may still be saved ("Integrate anyway").
pub async fn put_check(
    db: &Db,
    keys: &Keyring,
    user_id: &str,
    check: &StoredCheck,
    token: Option<&GitlabToken>,
) -> Result<String, StoreError> {
    let id = new_id();
    let aad = check_aad(&id, user_id, &check.report.base_url, &check.extra_ca_pem);
    let sealed = token.map(|t| keys.current.seal(t, &aad));
    purge_old_checks(db).await?;
    sqlx::query(
        "INSERT INTO checks (id, user_id, report, typed_base_url, extra_ca_pem, key_id, token_nonce, token_ciphertext, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&id)
    .bind(user_id)
    .bind(serde_json::to_string(&check.report).expect("a report serialises"))
    .bind(&check.typed_base_url)
    .bind(&check.extra_ca_pem)
    .bind(sealed.as_ref().map(|s| s.key_id.clone()))
    .bind(sealed.as_ref().map(|s| s.nonce.clone()))
    .bind(sealed.as_ref().map(|s| s.ciphertext.clone()))
    .bind(now())
    .execute(db.pool())
    .await?;
    // Only the newest few per user are kept: a loop of failed checks cannot fill the disk.
    sqlx::query(
        "DELETE FROM checks WHERE user_id = $1 AND id NOT IN \
         (SELECT id FROM checks WHERE user_id = $1 ORDER BY created_at DESC, id LIMIT $2)",
    )
    .bind(user_id)
    .bind(CHECKS_KEPT_PER_USER)
    .execute(db.pool())
    .await?;
    Ok(id)
}

/// One of the user's kept checks, and its token when one was kept.
pub async fn get_check(
    db: &Db,
    keys: &Keyring,
    user_id: &str,
    id: &str,
) -> Result<Option<(StoredCheck, Option<GitlabToken>)>, StoreError> {
    let row = sqlx::query(
        "SELECT report, typed_base_url, extra_ca_pem, key_id, token_nonce, token_ciphertext FROM checks \
         WHERE id = $1 AND user_id = $2 AND created_at >= $3",
    )
    .bind(id)
    .bind(user_id)
    .bind(now() - CHECK_TTL_SECONDS)
    .fetch_optional(db.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let report: String = get(&row, "report")?;
    let check = StoredCheck {
        report: serde_json::from_str(&report)
            .map_err(|e| StoreError::Config(format!("a kept report is unreadable: {e}")))?,
        typed_base_url: get(&row, "typed_base_url")?,
        extra_ca_pem: get(&row, "extra_ca_pem")?,
    };
    let aad = check_aad(id, user_id, &check.report.base_url, &check.extra_ca_pem);
    let token = sealed(&row)?.map(|s| keys.open(&s, &aad)).transpose()?;
    Ok(Some((check, token)))
}

/// Forgets a kept check (after its token was saved).
pub async fn delete_check(db: &Db, user_id: &str, id: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM checks WHERE id = $1 AND user_id = $2").bind(id).bind(user_id).execute(db.pool()).await?;
    Ok(())
}

/// Re-encrypts every sealed secret under `new` (saved tokens, tokens of kept checks, API tokens
/// waiting to be shown once), in one transaction: all rows move or none do. Saved tokens still
/// bound the old way (version 1) are re-bound too, so `rotate_key(db, keys, &keys.current)` at
/// start upgrades them. Returns how many secrets were re-encrypted.
pub async fn rotate_key(db: &Db, keys: &Keyring, new: &Cipher) -> Result<usize, StoreError> {
    let mut tx = db.begin_write().await?;
    let mut count = 0;
    let rows = sqlx::query(
        "SELECT id, workspace_id, base_url, extra_ca_pem, aad_version, key_id, token_nonce, token_ciphertext \
         FROM integrations",
    )
    .fetch_all(&mut *tx)
    .await?;
    for row in &rows {
        let Some(old) = sealed(row)? else { continue };
        let (id, owner): (String, String) = (get(row, "id")?, get(row, "workspace_id")?);
        if old.key_id == new.key_id() && get::<i64>(row, "aad_version")? == 2 {
            continue;
        }
        let token = keys.open(&old, &saved_aad(row)?)?;
        let aad = integration_aad(&id, &owner, &get::<String>(row, "base_url")?, &get::<String>(row, "extra_ca_pem")?);
        let fresh = new.seal(&token, &aad);
        sqlx::query(
            "UPDATE integrations SET key_id = $1, token_nonce = $2, token_ciphertext = $3, aad_version = 2 WHERE id = $4",
        )
        .bind(&fresh.key_id)
        .bind(&fresh.nonce)
        .bind(&fresh.ciphertext)
        .bind(&id)
        .execute(&mut *tx)
        .await?;
        count += 1;
    }
    // Kept checks and flashes: the same re-seal, each bound to its own associated data.
    for (table, columns) in [("checks", "report, extra_ca_pem"), ("flashes", "'' AS report, '' AS extra_ca_pem")] {
        let rows = sqlx::query(&format!(
            "SELECT id, user_id, {columns}, key_id, token_nonce, token_ciphertext FROM {table} WHERE key_id IS NOT NULL"
        ))
        .fetch_all(&mut *tx)
        .await?;
        for row in &rows {
            let Some(old) = sealed(row)? else { continue };
            if old.key_id == new.key_id() {
                continue;
            }
            let (id, owner): (String, String) = (get(row, "id")?, get(row, "user_id")?);
            let aad = if table == "checks" {
                let report: Report = serde_json::from_str(&get::<String>(row, "report")?)
                    .map_err(|e| StoreError::Config(format!("a kept report is unreadable: {e}")))?;
                check_aad(&id, &owner, &report.base_url, &get::<String>(row, "extra_ca_pem")?)
            } else {
                flash_aad(&id, &owner)
            };
            let secret = keys.open_str(&old, &aad)?;
            let fresh = new.seal_str(secrecy::ExposeSecret::expose_secret(&secret), &aad);
            reseal(&mut tx, table, &id, &fresh).await?;
            count += 1;
        }
    }
    // Webhook endpoints' signing secrets (issue 22).
    count += super::webhooks::reseal(&mut tx, keys, new).await?;
    tx.commit().await?;
    Ok(count)
}

/// Re-binds saved tokens sealed before the binding covered owner, base URL and CA (version 1),
/// each under the current key. A row that does not open is left alone (it will be reported as
/// needing a new token); returns how many were upgraded. Run at start.
pub async fn upgrade_bindings(db: &Db, keys: &Keyring) -> Result<usize, StoreError> {
    let rows = sqlx::query(
        "SELECT id, workspace_id, base_url, extra_ca_pem, aad_version, key_id, token_nonce, token_ciphertext \
         FROM integrations WHERE aad_version = 1",
    )
    .fetch_all(db.pool())
    .await?;
    let mut upgraded = 0;
    for row in &rows {
        let (id, owner): (String, String) = (get(row, "id")?, get(row, "workspace_id")?);
        let Some(old) = sealed(row)? else { continue };
        let Ok(token) = keys.open(&old, id.as_bytes()) else { continue };
        let aad = integration_aad(&id, &owner, &get::<String>(row, "base_url")?, &get::<String>(row, "extra_ca_pem")?);
        let fresh = keys.current.seal(&token, &aad);
        sqlx::query(
            "UPDATE integrations SET key_id = $1, token_nonce = $2, token_ciphertext = $3, aad_version = 2 \
             WHERE id = $4 AND aad_version = 1",
        )
        .bind(&fresh.key_id)
        .bind(&fresh.nonce)
        .bind(&fresh.ciphertext)
        .bind(&id)
        .execute(db.pool())
        .await?;
        upgraded += 1;
    }
    Ok(upgraded)
}

async fn reseal(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    table: &str,
    id: &str,
    fresh: &Sealed,
) -> Result<(), StoreError> {
    sqlx::query(&format!("UPDATE {table} SET key_id = $1, token_nonce = $2, token_ciphertext = $3 WHERE id = $4"))
        .bind(&fresh.key_id)
        .bind(&fresh.nonce)
        .bind(&fresh.ciphertext)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::gitlab::report::{GitlabUser, TokenInfo};
    use crate::store::accounts::Email;
    use crate::store::signup::create_user;
    use crate::store::test_db;

    /// A new account and its personal workspace's id.
    pub(crate) async fn account(db: &Db, email: &str) -> (crate::store::accounts::User, String) {
        let user = create_user(db, &Email::parse(email).unwrap(), "correct horse battery").await.unwrap().unwrap();
        let ws = crate::store::workspaces::memberships(db, &user.id).await.unwrap().1.unwrap().id;
        (user, ws)
    }

    fn report_as(base: &str, username: &str, expiry: &str) -> Report {
        Report::new(
            base.into(),
            Some("17.5.1".into()),
            Some(GitlabUser { username: username.into(), name: "Jane".into(), web_url: "u".into(), bot: false }),
            Some(TokenInfo {
                name: Some("Onramp".into()),
                scopes: vec!["api".into(), "read_api".into()],
                expires_at: Some(expiry.into()),
                ..Default::default()
            }),
            vec![],
            5,
        )
    }

    pub(crate) fn report(expiry: &str) -> Report {
        report_as("https://gitlab.example.com", "jdoe", expiry)
    }

    pub(crate) fn saved(s: Saved) -> Integration {
        match s {
            Saved::Saved(i) => i,
            other => panic!("not saved: {other:?}"),
        }
    }

    #[tokio::test]
    async fn save_replace_recheck_delete_scoped_by_workspace() {
        let (db, _dir) = test_db::sqlite().await;
        let keys = Keyring::new(Cipher::generate().1);
        let (jane, ws) = account(&db, "jane@example.com").await;
        let (_, other_ws) = account(&db, "m@example.com").await;
        let token = GitlabToken::parse("glpat-first-token-1234").unwrap();
        let first = saved(save(&db, &keys, &ws, &jane.id, &report("2027-01-01"), &token, "").await.unwrap());
        assert_eq!((first.token_last4.as_str(), first.workspace_id.as_str()), ("1234", ws.as_str()));
        assert_eq!(first.scopes, ["api", "read_api"]);
        assert!(find(&db, &other_ws, &first.id).await.unwrap().is_none(), "scoped by workspace");
        assert!(list(&db, &other_ws).await.unwrap().is_empty());

        // the same instance and GitLab user again: refused, naming the existing one
        let again = save(&db, &keys, &ws, &jane.id, &report("2028-01-01"), &token, "").await.unwrap();
        assert_eq!(again, Saved::Exists(first.clone()));
        // another GitLab user on the same instance, and another instance: side by side
        let second = report_as("https://gitlab.example.com", "ops-bot", "2027-01-01");
        saved(save(&db, &keys, &ws, &jane.id, &second, &token, "").await.unwrap());
        let third = report_as("https://gitlab.com", "jdoe", "2027-01-01");
        saved(save(&db, &keys, &ws, &jane.id, &third, &token, "").await.unwrap());
        assert_eq!(list(&db, &ws).await.unwrap().len(), 3);

        let replacement = GitlabToken::parse("glpat-second-token-9999").unwrap();
        assert_eq!(
            replace(&db, &keys, &other_ws, &first.id, &report("2028-01-01"), &replacement).await.unwrap(),
            Saved::Gone
        );
        let replaced = saved(replace(&db, &keys, &ws, &first.id, &report("2028-01-01"), &replacement).await.unwrap());
        assert_eq!((replaced.id.as_str(), replaced.expires_at.as_deref()), (first.id.as_str(), Some("2028-01-01")));
        assert_eq!(
            with_token(&db, &keys, &ws, &first.id).await.unwrap().unwrap().1.expose(),
            "glpat-second-token-9999"
        );
        // a replacement whose GitLab user another connection already has: refused, nothing changed
        let clash = report_as("https://gitlab.example.com", "ops-bot", "2029-01-01");
        assert!(matches!(replace(&db, &keys, &ws, &first.id, &clash, &token).await.unwrap(), Saved::Exists(_)));
        assert_eq!(find(&db, &ws, &first.id).await.unwrap().unwrap().username, "jdoe");

        let mut failed = report("2028-01-01");
        failed.ok = false;
        record_check(&db, &other_ws, &first.id, &failed).await.unwrap();
        assert!(find(&db, &ws, &first.id).await.unwrap().unwrap().last_check_ok, "not from another workspace");
        record_check(&db, &ws, &first.id, &failed).await.unwrap();
        assert!(!find(&db, &ws, &first.id).await.unwrap().unwrap().last_check_ok);

        assert!(!delete(&db, &other_ws, &first.id).await.unwrap());
        assert!(delete(&db, &ws, &first.id).await.unwrap());
        assert!(with_token(&db, &keys, &ws, &first.id).await.unwrap().is_none());
        assert_eq!(list(&db, &ws).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn members_find_connections_by_id_with_their_role() {
        let (db, _dir) = test_db::sqlite().await;
        let keys = Keyring::new(Cipher::generate().1);
        let (jane, ws) = account(&db, "jane@example.com").await;
        let (mallory, _) = account(&db, "m@example.com").await;
        let token = GitlabToken::parse("glpat-x").unwrap();
        let first = saved(save(&db, &keys, &ws, &jane.id, &report("2027-01-01"), &token, "").await.unwrap());
        assert_eq!(find_for_user(&db, &jane.id, &first.id).await.unwrap().map(|(_, r)| r), Some(Role::Owner));
        assert_eq!(find_for_user(&db, &mallory.id, &first.id).await.unwrap(), None);
        assert!(list_for_user(&db, &mallory.id).await.unwrap().is_empty());
        assert_eq!(list_for_user(&db, &jane.id).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn checks_keep_tokens_sealed_and_key_rotation_moves_everything() {
        let (db, _dir) = test_db::sqlite().await;
        let old = Keyring::new(Cipher::generate().1);
        let (jane, ws) = account(&db, "jane@example.com").await;
        let token = GitlabToken::parse("glpat-kept-token-abcd").unwrap();
        let check =
            StoredCheck { report: report("2027-01-01"), typed_base_url: "x".into(), extra_ca_pem: String::new() };
        let id = put_check(&db, &old, &jane.id, &check, Some(&token)).await.unwrap();
        let conn = saved(save(&db, &old, &ws, &jane.id, &report("2027-01-01"), &token, "").await.unwrap());
        assert!(get_check(&db, &old, "someone-else", &id).await.unwrap().is_none());

        let new = Cipher::generate().1;
        let flash = crate::store::accounts::put_flash(&db, &old, &jane.id, "onr_shown_once").await.unwrap();
        assert_eq!(rotate_key(&db, &old, &new).await.unwrap(), 3, "the integration, the kept check and the flash");
        let rotated = Keyring::new(new);
        assert_eq!(
            get_check(&db, &rotated, &jane.id, &id).await.unwrap().unwrap().1.unwrap().expose(),
            "glpat-kept-token-abcd"
        );
        assert_eq!(
            with_token(&db, &rotated, &ws, &conn.id).await.unwrap().unwrap().1.expose(),
            "glpat-kept-token-abcd"
        );
        assert!(with_token(&db, &old, &ws, &conn.id).await.is_err(), "the old key no longer opens it");
        use secrecy::ExposeSecret;
        let shown = crate::store::accounts::take_flash(&db, &rotated, &jane.id, &flash).await.unwrap().unwrap();
        assert_eq!(shown.expose_secret(), "onr_shown_once");
    }

    #[tokio::test]
    async fn a_due_connection_is_claimed_once() {
        let (db, _dir) = test_db::sqlite().await;
        let keys = Keyring::new(Cipher::generate().1);
        let (jane, ws) = account(&db, "jane@example.com").await;
        let token = GitlabToken::parse("glpat-x").unwrap();
        let conn = saved(save(&db, &keys, &ws, &jane.id, &report("2027-01-01"), &token, "").await.unwrap());
        assert!(!claim_due(&db, &conn.id, now() - 3600).await.unwrap(), "checked just now: not due");
        sqlx::query("UPDATE integrations SET last_check_at = 0").execute(db.pool()).await.unwrap();
        assert_eq!(due(&db, now() - 3600).await.unwrap(), [(ws.clone(), conn.id.clone())]);
        let claims = futures::future::join_all((0..8).map(|_| claim_due(&db, &conn.id, now() - 3600))).await;
        assert_eq!(claims.into_iter().filter(|c| *c.as_ref().unwrap()).count(), 1, "one claim wins");
    }

    #[tokio::test]
    async fn a_row_pointed_elsewhere_without_the_key_does_not_open() {
        let (db, _dir) = test_db::sqlite().await;
        let keys = Keyring::new(Cipher::generate().1);
        let (jane, ws) = account(&db, "jane@example.com").await;
        let token = GitlabToken::parse("glpat-bound-token-0000").unwrap();
        let conn = saved(save(&db, &keys, &ws, &jane.id, &report("2027-01-01"), &token, "").await.unwrap());
        for (column, value) in [("base_url", "https://gitlab.attacker.example"), ("extra_ca_pem", "-----BEGIN…")] {
            let before: String =
                sqlx::query_scalar(&format!("SELECT {column} FROM integrations")).fetch_one(db.pool()).await.unwrap();
            sqlx::query(&format!("UPDATE integrations SET {column} = $1"))
                .bind(value)
                .execute(db.pool())
                .await
                .unwrap();
            let opened = with_token(&db, &keys, &ws, &conn.id).await;
            assert!(matches!(opened, Err(StoreError::Crypto(CryptoError::Decrypt))), "{column} changed");
            sqlx::query(&format!("UPDATE integrations SET {column} = $1"))
                .bind(before)
                .execute(db.pool())
                .await
                .unwrap();
            assert!(with_token(&db, &keys, &ws, &conn.id).await.is_ok(), "{column} restored");
        }
        // moved to another workspace
        let (_, other_ws) = account(&db, "m@example.com").await;
        sqlx::query("UPDATE integrations SET workspace_id = $1").bind(&other_ws).execute(db.pool()).await.unwrap();
        assert!(matches!(with_token(&db, &keys, &other_ws, &conn.id).await, Err(StoreError::Crypto(_))));
    }

    #[tokio::test]
    async fn tokens_sealed_before_the_binding_are_upgraded_at_start() {
        let (db, _dir) = test_db::sqlite().await;
        let keys = Keyring::new(Cipher::generate().1);
        let (jane, ws) = account(&db, "jane@example.com").await;
        let token = GitlabToken::parse("glpat-legacy-token-7777").unwrap();
        let conn = saved(save(&db, &keys, &ws, &jane.id, &report("2027-01-01"), &token, "").await.unwrap());
        // as a version before 0002 wrote it: bound to the row id only
        let legacy = keys.current.seal(&token, conn.id.as_bytes());
        sqlx::query("UPDATE integrations SET aad_version = 1, token_nonce = $1, token_ciphertext = $2")
            .bind(&legacy.nonce)
            .bind(&legacy.ciphertext)
            .execute(db.pool())
            .await
            .unwrap();
        assert_eq!(with_token(&db, &keys, &ws, &conn.id).await.unwrap().unwrap().1.expose(), "glpat-legacy-token-7777");
        assert_eq!(upgrade_bindings(&db, &keys).await.unwrap(), 1);
        assert_eq!(upgrade_bindings(&db, &keys).await.unwrap(), 0, "once");
        let version: i64 =
            sqlx::query_scalar("SELECT aad_version FROM integrations").fetch_one(db.pool()).await.unwrap();
        assert_eq!(version, 2);
        assert_eq!(with_token(&db, &keys, &ws, &conn.id).await.unwrap().unwrap().1.expose(), "glpat-legacy-token-7777");
        sqlx::query("UPDATE integrations SET base_url = 'https://elsewhere.example'").execute(db.pool()).await.unwrap();
        assert!(with_token(&db, &keys, &ws, &conn.id).await.is_err(), "and now bound to its address");
    }
}
